//! `recdb eval`: run a protocol end to end on a fresh temporary database, through the
//! same import, job and query paths an application uses, on a data set (ML-100K, LEE)
//! or on the log of the user's own database.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

mod lee;

pub use lee::LEE_DEFAULTS;

use crate::eval::{self, EvalEvent, Metrics};
use crate::{
    Db, Error, ItemRecord, NoProgress, Params, ProgressSink, QueryOptions, RawEvent, Result,
    TrainOptions,
};

/// Which protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Leave-last-out next item, HR@10 / NDCG@10 (ML-100K).
    Next,
    /// Fixed 80/20 split on `(user*31 + item) % 5`, RMSE (ML-100K).
    Rating,
    /// Document similarity: Pearson r against human judgements (Lee corpus, doc2vec).
    Lee,
}

impl std::str::FromStr for Protocol {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "next" => Ok(Protocol::Next),
            "rating" => Ok(Protocol::Rating),
            "lee" => Ok(Protocol::Lee),
            other => Err(Error::param(
                "protocol",
                format!("`{other}`: expected next, rating or lee"),
            )),
        }
    }
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Next => "next",
            Protocol::Rating => "rating",
            Protocol::Lee => "lee",
        }
    }
}

/// What to evaluate.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    pub protocol: Protocol,
    pub model: String,
    /// The data directory; `None` looks in the default `../shared/data/ml-100k`
    /// (`../shared/data/lee` for LEE); see docs/EVALUATION.md.
    pub data: Option<PathBuf>,
    pub params: Params,
    pub seed: u64,
    pub threads: Option<usize>,
}

/// The outcome of an evaluation.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EvalReport {
    pub protocol: String,
    pub model: String,
    pub params: serde_json::Value,
    pub metrics: BTreeMap<String, f64>,
    /// Test users (NEXT) or test ratings (RATING) evaluated.
    pub users: u64,
    pub train_seconds: f64,
    /// The `popular` baseline on the same split (NEXT).
    pub baseline: Option<BTreeMap<String, f64>>,
    pub data: String,
}

impl std::fmt::Display for EvalReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "protocol {} on {}, model {}",
            self.protocol.to_uppercase(),
            self.data,
            self.model
        )?;
        writeln!(f, "params {}", self.params)?;
        for (k, v) in &self.metrics {
            writeln!(f, "{k:>10}  {v:.4}")?;
        }
        if let Some(b) = &self.baseline {
            for (k, v) in b {
                writeln!(f, "{:>10}  {v:.4}  (popular)", k)?;
            }
        }
        write!(
            f,
            "evaluated {}; training took {:.2} s",
            self.users, self.train_seconds
        )
    }
}

/// Where the ML-100K data is: `dir` if given (relative to the current directory), else
/// the default data directory `../shared/data/ml-100k` when present (docs/EVALUATION.md).
pub fn resolve_data(dir: Option<&Path>) -> Result<PathBuf> {
    if let Some(d) = dir {
        return given_data_dir(d, "ml-100k.inter");
    }
    let candidates = [
        PathBuf::from("../shared/data/ml-100k"),
        PathBuf::from("../../shared/data/ml-100k"),
    ];
    for c in &candidates {
        if c.join("ml-100k.inter").is_file() {
            return Ok(c.clone());
        }
    }
    Err(Error::InvalidInput(format!(
        "ML-100K not found: expected ml-100k.inter in {} (pass --data DIR)",
        candidates
            .iter()
            .map(|c| c.display().to_string())
            .collect::<Vec<_>>()
            .join(" or ")
    )))
}

/// `--data DIR` as given: a directory holding `file`, or an error saying where it looked.
pub(crate) fn given_data_dir(dir: &Path, file: &str) -> Result<PathBuf> {
    let shown = match std::env::current_dir() {
        Ok(cwd) if dir.is_relative() => format!(
            "{} (from the current directory {})",
            dir.display(),
            cwd.display()
        ),
        _ => dir.display().to_string(),
    };
    if !dir.is_dir() {
        return Err(Error::param("data", format!("{shown}: no such directory")));
    }
    if !dir.join(file).is_file() {
        return Err(Error::param("data", format!("{shown}: no {file} in it")));
    }
    Ok(dir.to_path_buf())
}

/// Numeric ids where the data has them, so that ties sort as the protocol says.
// why: ids of one evaluation file, far fewer than u32::MAX.
#[allow(clippy::cast_possible_truncation)]
fn numeric(id: &str, fallback: &mut BTreeMap<String, u32>) -> u32 {
    id.parse().unwrap_or_else(|_| {
        let n = fallback.len() as u32;
        *fallback.entry(id.to_owned()).or_insert(n)
    })
}

/// A fresh database with the item catalog (so items seen only in test are ranked too)
/// and the training events.
fn train_db(catalog: &[ItemRecord], events: &[RawEvent], threads: Option<usize>) -> Result<Db> {
    let db = Db::open_with(crate::Config {
        threads: threads.unwrap_or(0),
        ..crate::Config::default()
    })?;
    if !catalog.is_empty() {
        db.put_items(catalog)?;
    }
    db.log_events(events)?;
    Ok(db)
}

// why: j indexes the held-out test list, far fewer than u32::MAX entries.
#[allow(clippy::cast_possible_truncation)]
fn hr_ndcg(db: &Db, model: &str, test: &[RawEvent]) -> Result<Metrics> {
    let opts = QueryOptions::model(model).k(10);
    let mut pairs = Vec::with_capacity(test.len());
    let mut ranked = Vec::with_capacity(test.len());
    for (j, e) in test.iter().enumerate() {
        // A test user with no training events cannot be ranked for: a miss.
        let hits = match db.recommend(&e.user, &opts) {
            Ok(h) => h,
            Err(Error::UnknownUser(_)) => Vec::new(),
            Err(err) => return Err(err),
        };
        pairs.push((j as u32, 0u32));
        // Relabel: the held-out item is 0, anything else 1.
        ranked.push(
            hits.iter()
                .map(|h| u32::from(h.id != e.item))
                .collect::<Vec<u32>>(),
        );
    }
    eval::hr_ndcg_at_k(&pairs, &ranked, 10)
}

/// Run one evaluation. Progress goes to `sink`.
pub fn evaluate(opts: &EvalOptions, sink: &dyn ProgressSink) -> Result<EvalReport> {
    if opts.protocol == Protocol::Lee {
        return lee::evaluate_lee(opts, sink);
    }
    let dir = resolve_data(opts.data.as_deref())?;
    let events = crate::read_events(dir.join("ml-100k.inter"), None)?;
    let catalog = dir.join("ml-100k.item");
    let items = if catalog.is_file() {
        crate::read_items(&catalog, None)?
    } else {
        Vec::new()
    };
    run_protocol(opts, &events, &items, dir.display().to_string(), sink)
}

/// [`evaluate`] on the log of `db` (NEXT or RATING): its events are split as the
/// protocol says and a model trained on a fresh temporary database; `db` is only read.
pub fn evaluate_db(db: &Db, opts: &EvalOptions, sink: &dyn ProgressSink) -> Result<EvalReport> {
    if opts.protocol == Protocol::Lee {
        return Err(Error::param(
            "protocol",
            "lee scores the LEE corpus; on a database use next or rating",
        ));
    }
    // The whole log in one read (what `dump` and training read), not a history per
    // user: that reads the user's whole bucket and names each event's item again.
    let log = db.logged_events()?;
    let mut logged = log.events;
    // Users in dense-id order, each in (timestamp, seq) order: as `history` lists them.
    logged.sort_unstable_by_key(|e| (e.user, e.timestamp, e.seq));
    let name = |names: &[String], id: u32| {
        names
            .get(id as usize)
            .cloned()
            .ok_or_else(|| Error::corrupted(format!("event id {id} out of range")))
    };
    let mut events = Vec::new();
    events
        .try_reserve_exact(logged.len())
        .map_err(|_| Error::InvalidInput("the log does not fit in memory".into()))?;
    for e in &logged {
        events.push(RawEvent {
            user: name(&log.users, e.user)?,
            item: name(&log.items, e.item)?,
            kind: e.kind,
            value: e.value,
            timestamp: e.timestamp,
            group: None,
        });
    }
    drop(logged);
    if events.is_empty() {
        return Err(Error::Empty(
            "the database has no events to evaluate on".into(),
        ));
    }
    let items: Vec<ItemRecord> = log
        .items
        .into_iter()
        .map(|id| ItemRecord {
            id,
            ..ItemRecord::default()
        })
        .collect();
    let label = db.path().map_or_else(
        || "a temporary database".into(),
        |p| p.display().to_string(),
    );
    run_protocol(opts, &events, &items, label, sink)
}

/// Split `events` as the protocol says, train on the first part, score the second.
// why: the f64 mean is a rating, as f32 like every prediction.
#[allow(clippy::cast_possible_truncation)]
fn run_protocol(
    opts: &EvalOptions,
    events: &[RawEvent],
    catalog: &[ItemRecord],
    data: String,
    sink: &dyn ProgressSink,
) -> Result<EvalReport> {
    let mut fb_u = BTreeMap::new();
    let mut fb_i = BTreeMap::new();
    let keyed: Vec<(EvalEvent, &RawEvent)> = events
        .iter()
        .map(|e| {
            (
                (
                    numeric(&e.user, &mut fb_u),
                    numeric(&e.item, &mut fb_i),
                    e.value,
                    e.timestamp,
                ),
                e,
            )
        })
        .collect();
    let train_opts = TrainOptions {
        seed: opts.seed,
        threads: opts.threads,
        ..Default::default()
    };
    let mut metrics = BTreeMap::new();
    let mut baseline = None;
    let (users, train_seconds, params);
    match opts.protocol {
        Protocol::Next => {
            let (train, test) =
                eval::next_split(&keyed.iter().map(|(k, _)| *k).collect::<Vec<_>>());
            let by_key: BTreeMap<(u32, u32, i64), &RawEvent> =
                keyed.iter().map(|(k, e)| ((k.0, k.1, k.3), *e)).collect();
            let raw_train: Vec<RawEvent> = train
                .iter()
                .map(|t| by_key[&(t.0, t.1, t.3)].clone())
                .collect();
            let test_set: std::collections::HashSet<(u32, u32)> = test.iter().copied().collect();
            let test_raw: Vec<RawEvent> = keyed
                .iter()
                .filter(|(k, _)| test_set.contains(&(k.0, k.1)))
                .map(|(_, e)| (*e).clone())
                .collect();
            let db = train_db(catalog, &raw_train, opts.threads)?;
            let t = Instant::now();
            let info = db.train_with_progress(&opts.model, &opts.params, &train_opts, sink)?;
            train_seconds = t.elapsed().as_secs_f64();
            params = info.params;
            let m = hr_ndcg(&db, &opts.model, &test_raw)?;
            metrics.insert("hr@10".into(), m.hr.unwrap_or(0.0));
            metrics.insert("ndcg@10".into(), m.ndcg.unwrap_or(0.0));
            users = m.n as u64;
            if opts.model != "popular" {
                db.train("popular", &Params::new(), &train_opts)?;
                let b = hr_ndcg(&db, "popular", &test_raw)?;
                baseline = Some(BTreeMap::from([
                    ("hr@10".to_string(), b.hr.unwrap_or(0.0)),
                    ("ndcg@10".to_string(), b.ndcg.unwrap_or(0.0)),
                ]));
            }
        }
        Protocol::Lee => return lee::evaluate_lee(opts, sink),
        Protocol::Rating => {
            let (train, test) = eval::rating_split(&keyed, |(k, _)| (k.0 as u64, k.1 as u64));
            let raw_train: Vec<RawEvent> = train.iter().map(|(_, e)| (*e).clone()).collect();
            let db = train_db(catalog, &raw_train, opts.threads)?;
            let t = Instant::now();
            let info = db.train_with_progress(&opts.model, &opts.params, &train_opts, sink)?;
            train_seconds = t.elapsed().as_secs_f64();
            params = info.params;
            let mean = raw_train.iter().map(|e| e.value as f64).sum::<f64>()
                / raw_train.len().max(1) as f64;
            let mut pairs = Vec::with_capacity(test.len());
            for (_, e) in &test {
                // Users or items never seen in training get the global mean.
                let p = match db.predict(&e.user, &e.item, &opts.model) {
                    Ok(p) => p,
                    Err(Error::UnknownUser(_) | Error::UnknownItem(_)) => mean as f32,
                    Err(err) => return Err(err),
                };
                // Clipped to the rating scale, as rating libraries do.
                pairs.push((p.clamp(1.0, 5.0), e.value));
            }
            let m = Metrics::from_rmse(&pairs)?;
            metrics.insert("rmse".into(), m.rmse.unwrap_or(f64::NAN));
            users = m.n as u64;
        }
    }
    Ok(EvalReport {
        protocol: opts.protocol.as_str().into(),
        model: opts.model.clone(),
        params: serde_json::from_str(&params).unwrap_or(serde_json::Value::Null),
        metrics,
        users,
        train_seconds,
        baseline,
        data,
    })
}

/// [`evaluate`] without progress.
pub fn evaluate_quiet(opts: &EvalOptions) -> Result<EvalReport> {
    evaluate(opts, &NoProgress)
}
