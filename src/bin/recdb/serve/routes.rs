//! The endpoints under `/v1`. Each parses its request on the executor and runs the
//! database call on the blocking pool ([`blocking`]; a query under `--query-timeout`,
//! [`query`]).

use std::sync::Mutex;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use recdb::{Db, Hit, ItemRecord, Params, QueryOptions, TrainOptions, UserRecord};

use super::errors::ApiError;
use super::events::{self, Row};
use super::limits::{self, Batch};
use super::{auth, State as AppState, MAX_BATCH, MAX_BODY, MAX_K, MAX_SHELL_OUTPUT};
use crate::output::Mode;
use crate::session::Session;

type ApiResult = Result<Response, ApiError>;

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/v1/stats", get(stats))
        .route("/v1/tables", get(tables))
        .route("/v1/events", post(ingest_events))
        .route("/v1/items", post(put_items))
        .route("/v1/users", post(put_users))
        .route("/v1/items/{id}", get(get_item))
        .route("/v1/users/{id}", get(get_user))
        .route("/v1/recommend", get(recommend_get).post(recommend_post))
        .route("/v1/similar", get(similar))
        .route("/v1/predict", get(predict))
        .route("/v1/rank", post(rank))
        .route("/v1/jobs", get(list_jobs).post(start_job))
        .route("/v1/jobs/{id}", get(one_job))
        .route("/v1/jobs/{id}/cancel", post(cancel_job))
        .route("/v1/shell", post(shell))
        // The gate (token, shutdown, declared size) first, then a request slot.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limits::admit,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::gate,
        ));
    Router::new()
        // Open without the token: says only that the server runs (for load balancers).
        .route("/v1/health", get(health))
        .merge(api)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// Run `f` on the blocking pool with the database. The call holds the request's slot
/// until it ends, even when the request is answered or dropped before.
async fn blocking<T, F>(state: &AppState, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&Db) -> Result<T, ApiError> + Send + 'static,
{
    let db = state.db.clone();
    let slot = limits::current_slot();
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        f(&db)
    })
    .await
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Panic",
            format!("the request's handler failed: {e}"),
        )
    })?
}

/// A read-only [`blocking`] call, answered 503 `Timeout` past `--query-timeout`. The
/// call itself cannot be stopped: it goes on to its end, on its request's slot.
/// Writes do not go through here: their answer says whether they are durable.
async fn query<T, F>(state: &AppState, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&Db) -> Result<T, ApiError> + Send + 'static,
{
    let limit = state.limits.query_timeout;
    match tokio::time::timeout(limit, blocking(state, f)).await {
        Ok(r) => r,
        Err(_) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Timeout",
            format!(
                "the query ran past the server's limit of {} s (--query-timeout)",
                limit.as_secs_f64()
            ),
        )
        .with("limit_seconds", limit.as_secs_f64())),
    }
}

fn ok(v: Value) -> ApiResult {
    Ok(Json(v).into_response())
}

/// A JSON body, or a `Parse` error naming where it broke.
fn json_body<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::from(recdb::Error::Parse {
            file: "request body".into(),
            line: e.line() as u64,
            field: String::new(),
            msg: e.to_string(),
        })
    })
}

/// The body, or the rejection as a JSON error (413 past [`MAX_BODY`]).
pub(super) fn bytes(b: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    b.map_err(|e| {
        let status = e.status();
        let kind = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "BodyTooLarge"
        } else {
            "BadBody"
        };
        ApiError::new(
            status,
            kind,
            format!("{} (the limit is {MAX_BODY} bytes)", e.body_text()),
        )
        .with("limit", MAX_BODY)
    })
}

fn query_params<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(t)| t)
        .map_err(|e| ApiError::bad_request("InvalidQuery", e.body_text()))
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "NoSuchEndpoint",
        "no such endpoint (see docs/SERVER.md; every path starts with /v1/)",
    )
}

/// 200 while the server takes requests, 503 once it is stopping.
async fn health(State(s): State<AppState>) -> Response {
    let version = env!("CARGO_PKG_VERSION");
    if s.stopping.load(std::sync::atomic::Ordering::SeqCst) {
        let body = json!({"status": "stopping", "version": version});
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    }
    Json(json!({"status": "ok", "version": version})).into_response()
}

async fn stats(State(s): State<AppState>) -> ApiResult {
    let st = query(&s, |db| Ok(db.stats()?)).await?;
    ok(json!(st))
}

async fn tables(State(s): State<AppState>) -> ApiResult {
    let t = query(&s, |db| Ok(db.tables()?)).await?;
    ok(json!(t))
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `POST /v1/events`: one atomic commit, durable before the answer.
async fn ingest_events(
    State(s): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let body = bytes(body)?;
    let receipt = blocking(&s, move |db| {
        let rows = events::event_rows(&body, now_unix())?;
        let mut b = db.batch();
        for r in &rows {
            match r {
                Row::Event(e) => b.push_raw(e)?,
                Row::Search(q) => b.push_search(&q.user, &q.text, q.timestamp)?,
            }
        }
        Ok(b.commit()?)
    })
    .await?;
    ok(json!(receipt))
}

async fn put_items(State(s): State<AppState>, body: Result<Bytes, BytesRejection>) -> ApiResult {
    let body = bytes(body)?;
    let r = blocking(&s, move |db| {
        Ok(db.put_items(&events::item_records(&body)?)?)
    })
    .await?;
    ok(json!(r))
}

async fn put_users(State(s): State<AppState>, body: Result<Bytes, BytesRejection>) -> ApiResult {
    let body = bytes(body)?;
    let r = blocking(&s, move |db| {
        Ok(db.put_users(&events::user_records(&body)?)?)
    })
    .await?;
    ok(json!(r))
}

fn attrs_json(attrs: &[(String, String)]) -> Value {
    Value::Object(
        attrs
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect::<Map<_, _>>(),
    )
}

fn item_json(it: &ItemRecord) -> Value {
    json!({"id": it.id, "title": it.title, "genres": it.genres, "text": it.text,
           "attrs": attrs_json(&it.attrs)})
}

fn user_json(u: &UserRecord) -> Value {
    json!({"id": u.id, "attrs": attrs_json(&u.attrs)})
}

async fn get_item(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let it = query(&s, move |db| Ok(db.item(&id)?)).await?;
    ok(item_json(&it))
}

async fn get_user(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let u = query(&s, move |db| Ok(db.user(&id)?)).await?;
    ok(user_json(&u))
}

/// The options of `recommend` and `similar`, from a query string or a JSON body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryArgs {
    user: Option<String>,
    /// Read up to [`MAX_BATCH`] ids: a longer list is only counted.
    users: Option<Batch>,
    item: Option<String>,
    k: Option<usize>,
    model: Option<String>,
    genre: Option<String>,
    include_seen: Option<bool>,
    exact: Option<bool>,
    /// Two stages: the ranker that re-scores `candidates` items `model` proposes.
    rank: Option<String>,
    candidates: Option<usize>,
}

impl QueryArgs {
    fn options(&self) -> Result<QueryOptions, ApiError> {
        let d = QueryOptions::default();
        let k = self.k.unwrap_or(d.k);
        if k == 0 || k > MAX_K {
            return Err(ApiError::param(
                "k",
                format!("must be 1 to {MAX_K}, got {k}"),
            ));
        }
        Ok(QueryOptions {
            k,
            model: self.model.clone().unwrap_or(d.model),
            include_seen: self.include_seen.unwrap_or(d.include_seen),
            genre: self.genre.clone(),
            exact: self.exact.unwrap_or(d.exact),
            rank: self.rank.clone(),
            candidates: self.candidates,
        })
    }
}

fn hits_json(hits: &[Hit]) -> Value {
    json!(hits)
}

fn missing(name: &str) -> ApiError {
    ApiError::param(name, "missing")
}

async fn recommend_get(
    State(s): State<AppState>,
    q: Result<Query<QueryArgs>, QueryRejection>,
) -> ApiResult {
    recommend(s, query_params(q)?).await
}

async fn recommend_post(
    State(s): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let body = bytes(body)?;
    recommend(s, json_body(&body)?).await
}

/// `recommend`: `user` for one, `users` (at most [`MAX_BATCH`]) for a batch.
async fn recommend(s: AppState, a: QueryArgs) -> ApiResult {
    let opts = a.options()?;
    match (a.user, a.users) {
        (Some(user), None) => {
            let hits = query(&s, move |db| Ok(db.recommend(&user, &opts)?)).await?;
            ok(json!({"hits": hits_json(&hits)}))
        }
        (None, Some(Batch(users))) => {
            let users = users.within(MAX_BATCH).map_err(|n| {
                ApiError::param(
                    "users",
                    format!("must hold 1 to {MAX_BATCH} users, got {n}"),
                )
            })?;
            let all = query(&s, move |db| {
                let ids: Vec<&str> = users.iter().map(String::as_str).collect();
                let lists = db.recommend_batch(&ids, &opts)?;
                Ok(users
                    .iter()
                    .zip(lists)
                    .map(|(u, hits)| json!({"user": u, "hits": hits_json(&hits)}))
                    .collect::<Vec<_>>())
            })
            .await?;
            ok(json!({"results": all}))
        }
        (Some(_), Some(_)) => Err(ApiError::param("users", "give `user` or `users`, not both")),
        (None, None) => Err(missing("user")),
    }
}

/// `GET /v1/similar?item=ID`.
async fn similar(
    State(s): State<AppState>,
    q: Result<Query<QueryArgs>, QueryRejection>,
) -> ApiResult {
    let a = query_params(q)?;
    let opts = a.options()?;
    let item = a.item.ok_or_else(|| missing("item"))?;
    let hits = query(&s, move |db| Ok(db.similar(&item, &opts)?)).await?;
    ok(json!({"hits": hits_json(&hits)}))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PredictArgs {
    user: String,
    item: String,
    model: Option<String>,
}

/// `GET /v1/predict?user=U&item=I[&model=M]`.
async fn predict(
    State(s): State<AppState>,
    q: Result<Query<PredictArgs>, QueryRejection>,
) -> ApiResult {
    let a = query_params(q)?;
    let model = a.model.unwrap_or_else(|| QueryOptions::default().model);
    let score = query(&s, move |db| Ok(db.predict(&a.user, &a.item, &model)?)).await?;
    ok(json!({"score": score}))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RankArgs {
    user: String,
    /// Read up to [`MAX_BATCH`] ids: a longer list is only counted.
    items: Batch,
    model: Option<String>,
}

/// `POST /v1/rank {"user", "items", "model"}`: the items by score, best first.
// The model's own ranking call will replace the per-item `predict` once the library
// has one (`Db::rank`); the answer's shape stays.
async fn rank(State(s): State<AppState>, body: Result<Bytes, BytesRejection>) -> ApiResult {
    let body = bytes(body)?;
    let a: RankArgs = json_body(&body)?;
    let items = a.items.0.within(MAX_BATCH).map_err(|n| {
        ApiError::param(
            "items",
            format!("must hold 1 to {MAX_BATCH} items, got {n}"),
        )
    })?;
    let model = a.model.unwrap_or_else(|| QueryOptions::default().model);
    let user = a.user;
    let hits = query(&s, move |db| {
        let mut hits = items
            .iter()
            .map(|it| {
                Ok(Hit {
                    id: it.clone(),
                    score: db.predict(&user, it, &model)?,
                })
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        hits.sort_by(|x, y| y.score.total_cmp(&x.score));
        Ok(hits)
    })
    .await?;
    ok(json!({"hits": hits_json(&hits)}))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StartJob {
    model: String,
    #[serde(default)]
    params: Map<String, Value>,
    seed: Option<u64>,
    threads: Option<usize>,
}

/// One start at a time, so two requests cannot both pass the conflict check.
static STARTING: Mutex<()> = Mutex::new(());

/// `POST /v1/jobs`: start training in the background; 202 with the job's id at once.
/// 409 while a job of the same model runs.
async fn start_job(State(s): State<AppState>, body: Result<Bytes, BytesRejection>) -> ApiResult {
    let body = bytes(body)?;
    let a: StartJob = json_body(&body)?;
    let mut p = Params::new();
    for (k, v) in &a.params {
        let v = match v {
            Value::String(s) => s.clone(),
            Value::Number(_) | Value::Bool(_) => v.to_string(),
            other => {
                return Err(ApiError::param(
                    k,
                    format!("expected a string, number or boolean, got {other}"),
                ))
            }
        };
        p.insert(k, v);
    }
    let mut opts = TrainOptions::default();
    if let Some(seed) = a.seed {
        opts.seed = seed;
    }
    opts.threads = a.threads;
    let model = crate::args::resolve_model(&a.model, None).map_err(ApiError::from)?;
    let id = blocking(&s, move |db| {
        let _one = STARTING.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(j) = db
            .jobs()?
            .into_iter()
            .find(|j| j.model == model && !j.state.is_finished())
        {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "JobConflict",
                format!(
                    "job {} is already training `{model}`; cancel it or wait",
                    j.id
                ),
            )
            .with("model", model)
            .with("job", j.id));
        }
        Ok(db.spawn_train(&model, &p, &opts)?.id)
    })
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"job": id, "status": format!("/v1/jobs/{id}")})),
    )
        .into_response())
}

async fn list_jobs(State(s): State<AppState>) -> ApiResult {
    let jobs = query(&s, |db| Ok(db.jobs()?)).await?;
    ok(json!(jobs))
}

async fn one_job(State(s): State<AppState>, Path(id): Path<u64>) -> ApiResult {
    let job = query(&s, move |db| Ok(db.job(id)?)).await?;
    ok(json!(job))
}

/// `POST /v1/jobs/{id}/cancel`: 404 for an unknown job, 409 for one already ended.
async fn cancel_job(State(s): State<AppState>, Path(id): Path<u64>) -> ApiResult {
    blocking(&s, move |db| {
        let job = db.job(id)?;
        if job.state.is_finished() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "JobFinished",
                format!("job {id} has already ended ({})", job.state),
            )
            .with("job", id)
            .with("state", job.state.to_string()));
        }
        Ok(db.cancel_job(id)?)
    })
    .await?;
    ok(json!({"cancelled": id}))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShellArgs {
    /// One line of `;`-separated shell commands.
    line: String,
    /// `table` (default), `json` or `csv`.
    format: Option<String>,
}

/// `POST /v1/shell {"line": "...", "format": "table"}`: run a shell command line in a
/// session on the server's database; its printed output comes back as `stdout` and
/// `stderr`, and a failure as `error` with the status of the error.
async fn shell(State(s): State<AppState>, body: Result<Bytes, BytesRejection>) -> ApiResult {
    let body = bytes(body)?;
    let a: ShellArgs = json_body(&body)?;
    let mode: Mode = match &a.format {
        None => Mode::Table,
        Some(f) => f
            .parse()
            .map_err(|e: anyhow::Error| ApiError::param("format", e.to_string()))?,
    };
    let path = s.db_path.clone();
    // Not under `--query-timeout`: a command may write. One that would run a job in
    // the foreground waits for it at most that long (see `RunMode::Served`).
    let wait = s.limits.query_timeout;
    let (result, out, err) = blocking(&s, move |db| {
        let mut session = Session::with_db(db.clone(), path, mode, wait);
        Ok(crate::pipe::capture(MAX_SHELL_OUTPUT, || {
            crate::dispatch::run_text(&mut session, &a.line)
        }))
    })
    .await?;
    match result {
        Ok(()) => ok(json!({"stdout": out, "stderr": err})),
        Err(e) => {
            let e = ApiError::from(e);
            let body = json!({"error": e.json(), "stdout": out, "stderr": err});
            Ok((e.status, Json(body)).into_response())
        }
    }
}
