//! Evaluation: the protocols of docs/EVALUATION.md run end to end, and the metrics they
//! report. A protocol splits a data set (MovieLens, LEE) or the log of the user's own
//! database, trains on a fresh temporary [`Db`] through the same import, job and query
//! paths an application uses, and scores the held-out part. This module drives a `Db`;
//! nothing below `db` uses it.
//!
//! - [`metrics`]: the splits and HR / NDCG / RMSE, as pure functions on triples;
//! - [`similarity`]: Pearson r, cosines and TF-IDF for the LEE protocol;
//! - [`next`], [`rating`], [`strong`], [`lee`]: the protocols; [`report`]: what they return.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

mod ctr;
mod lee;
mod metrics;
mod next;
mod rating;
mod report;
mod similarity;
mod strong;

pub use lee::LEE_DEFAULTS;
pub use report::EvalReport;

use crate::{
    Db, Error, ItemRecord, NoProgress, Params, ProgressSink, RawEvent, Result, UserRecord,
};
use metrics::EvalEvent;

/// Which protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Leave-last-out next item, HR@10 / NDCG@10 (ML-100K).
    Next,
    /// Fixed 80/20 split on `(user*31 + item) % 5`, RMSE (ML-100K).
    Rating,
    /// Document similarity: Pearson r against human judgements (Lee corpus, doc2vec).
    Lee,
    /// Strong generalisation: whole users held out by a hash of their ids, scored from a
    /// fold-in part of their history; Recall@20/50, NDCG@100. `heldout_users` is n, the
    /// test users (and as many validation users); `None` picks it from the data's size.
    Strong { heldout_users: Option<usize> },
    /// Click-through prediction: rating ≥ 4 is a click, RATING's split; AUC and
    /// log-loss of a ranker (`wide-deep`, or its parts `wide`, `deep`, `lr`).
    /// `drop_neutral` leaves every rating of 3 out.
    Ctr { drop_neutral: bool },
}

impl std::str::FromStr for Protocol {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "next" => Ok(Protocol::Next),
            "rating" => Ok(Protocol::Rating),
            "lee" => Ok(Protocol::Lee),
            "ctr" => Ok(Protocol::Ctr {
                drop_neutral: false,
            }),
            "strong" => Ok(Protocol::Strong {
                heldout_users: None,
            }),
            other => Err(Error::param(
                "protocol",
                format!("`{other}`: expected next, rating, strong, ctr or lee"),
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
            Protocol::Strong { .. } => "strong",
            Protocol::Ctr { .. } => "ctr",
        }
    }

    /// The file the protocol's data directory must hold (`*.inter`: exactly one).
    fn data_file(self) -> &'static str {
        match self {
            Protocol::Next | Protocol::Rating | Protocol::Strong { .. } | Protocol::Ctr { .. } => {
                "*.inter"
            }
            Protocol::Lee => "lee.cor",
        }
    }
}

/// What to evaluate.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    pub protocol: Protocol,
    pub model: String,
    /// The data directory (`--data DIR`, relative to the current directory): a directory
    /// of atomic files (one `*.inter`, optionally one `*.item`, and for NEXT and RATING
    /// one `*.user`) for NEXT, RATING and STRONG, the LEE corpus for LEE. [`evaluate`] requires it;
    /// [`evaluate_db`] reads the database instead and ignores it.
    pub data: Option<PathBuf>,
    pub params: Params,
    pub seed: u64,
    pub threads: Option<usize>,
    /// NEXT only: two stages, `model` proposing candidates that this ranker re-scores.
    pub rank: Option<Rerank>,
    /// NEXT only: the validation split: each user's last event is left out and the
    /// one before it is held out, so hyperparameters are chosen without the test.
    pub validation: bool,
}

/// The second stage of a two-stage NEXT evaluation: the ranker is trained after the
/// candidate model, on the same training split, and re-scores its `candidates`.
#[derive(Debug, Clone)]
pub struct Rerank {
    pub model: String,
    pub params: Params,
    /// How many candidates the candidate model proposes per user.
    pub candidates: usize,
}

/// The data directory of `opts`: given, a directory, and holding the protocol's file;
/// else an error saying what is missing.
fn data_dir(opts: &EvalOptions) -> Result<PathBuf> {
    let file = opts.protocol.data_file();
    match &opts.data {
        Some(dir) => given_data_dir(dir, file),
        None => Err(Error::param(
            "data",
            format!(
                "no data directory: pass --data DIR, a directory holding {file} (docs/EVALUATION.md)"
            ),
        )),
    }
}

/// `--data DIR` as given: a directory holding `file`, or an error saying where it looked.
fn given_data_dir(dir: &Path, file: &str) -> Result<PathBuf> {
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
    if !file.starts_with('*') && !dir.join(file).is_file() {
        return Err(Error::param("data", format!("{shown}: no {file} in it")));
    }
    Ok(dir.to_path_buf())
}

/// The one file of `dir` named `*.<ext>`: `None` when there is none and `required` is
/// off; else an error naming what was found.
fn one_file(dir: &Path, ext: &str, required: bool) -> Result<Option<PathBuf>> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::param("data", format!("{}: {e}", dir.display())))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == ext))
        .collect();
    found.sort();
    match found.len() {
        1 => Ok(found.pop()),
        0 if !required => Ok(None),
        0 => Err(Error::param(
            "data",
            format!("{}: no *.{ext} file in it", dir.display()),
        )),
        _ => Err(Error::param(
            "data",
            format!(
                "{}: {} *.{ext} files ({}); keep one per directory",
                dir.display(),
                found.len(),
                found
                    .iter()
                    .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

/// The validation split is the NEXT protocol's: refused with another (STRONG has its
/// own validation users).
fn check_next_only(opts: &EvalOptions) -> Result<()> {
    if opts.validation && opts.protocol != Protocol::Next {
        return Err(Error::param(
            "validation",
            "the validation split is the next protocol's",
        ));
    }
    Ok(())
}

/// Run one evaluation on the data directory of `opts`. Progress goes to `sink`.
pub fn evaluate(opts: &EvalOptions, sink: &dyn ProgressSink) -> Result<EvalReport> {
    check_next_only(opts)?;
    let dir = data_dir(opts)?;
    if opts.protocol == Protocol::Lee {
        return lee::evaluate_lee(opts, &dir, sink);
    }
    let Some(inter) = one_file(&dir, "inter", true)? else {
        return Err(Error::param("data", "no *.inter file"));
    };
    let events = crate::ingest::read_events(&inter, None)?;
    let items = match one_file(&dir, "item", false)? {
        Some(catalog) => crate::ingest::read_items(&catalog, None)?,
        None => Vec::new(),
    };
    // User attributes (MovieLens' demographics) reach the models that read them;
    // the others ignore them.
    let users = match one_file(&dir, "user", false)? {
        Some(file) => crate::ingest::read_users(&file, None)?,
        None => Vec::new(),
    };
    // The data set by its file's name, and where it was read.
    let name = inter
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let label = format!("{name} ({})", dir.display());
    let catalog = Catalog { items, users };
    run_protocol(opts, &events, &catalog, label, sink)
}

/// [`evaluate`] without progress.
pub fn evaluate_quiet(opts: &EvalOptions) -> Result<EvalReport> {
    evaluate(opts, &NoProgress)
}

/// [`evaluate`] on the log of `db` (NEXT or RATING): its events are split as the
/// protocol says and a model trained on a fresh temporary database; `db` is only read.
pub fn evaluate_db(db: &Db, opts: &EvalOptions, sink: &dyn ProgressSink) -> Result<EvalReport> {
    check_next_only(opts)?;
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
    let catalog = Catalog {
        users: user_records(db, &log.users)?,
        items: log
            .items
            .into_iter()
            .map(|id| ItemRecord {
                id,
                ..ItemRecord::default()
            })
            .collect(),
    };
    let label = db.path().map_or_else(
        || "a temporary database".into(),
        |p| p.display().to_string(),
    );
    run_protocol(opts, &events, &catalog, label, sink)
}

/// The users of `db` that have attributes, as records the evaluation database takes
/// (`users`: external id by dense id): the models that read demographics see them as
/// they would from a data directory's `*.user` file.
fn user_records(db: &Db, users: &[String]) -> Result<Vec<UserRecord>> {
    Ok(crate::storage::attrs::all_users(db.backend())?
        .into_iter()
        .filter_map(|(u, a)| {
            let id = users.get(u as usize)?.clone();
            let attrs = a.into_pairs();
            (!attrs.is_empty()).then_some(UserRecord { id, attrs })
        })
        .collect())
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

/// What a data directory says besides its events: the item catalog and the users'
/// attributes (either may be empty).
#[derive(Debug, Default)]
struct Catalog {
    items: Vec<ItemRecord>,
    users: Vec<UserRecord>,
}

/// A fresh database with the item catalog (so items seen only in test are ranked too),
/// the training events, then the users' attributes.
fn train_db(catalog: &Catalog, events: &[RawEvent], threads: Option<usize>) -> Result<Db> {
    let db = Db::open_with(crate::Config {
        threads: threads.unwrap_or(0),
        ..crate::Config::default()
    })?;
    if !catalog.items.is_empty() {
        db.put_items(&catalog.items)?;
    }
    db.log_events(events)?;
    // After the events: a user's dense id comes from their first event as before, so
    // the models that ignore attributes see the same ids and give the same figures.
    if !catalog.users.is_empty() {
        db.put_users(&catalog.users)?;
    }
    Ok(db)
}

/// What a protocol on events measured.
struct Outcome {
    metrics: BTreeMap<String, f64>,
    baseline: Option<BTreeMap<String, f64>>,
    users: u64,
    train_seconds: f64,
    /// The trained job's parameters.
    params: serde_json::Value,
    /// STRONG: the validation users' figures and how many were scored.
    validation: Option<(BTreeMap<String, f64>, u64)>,
    /// STRONG's n.
    heldout_users: Option<u64>,
}

/// Split `events` as the protocol says, train on the first part, score the second.
fn run_protocol(
    opts: &EvalOptions,
    events: &[RawEvent],
    catalog: &Catalog,
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
    if opts.rank.is_some() && opts.protocol != Protocol::Next {
        return Err(Error::param(
            "rank",
            "a ranker is evaluated by the next protocol only",
        ));
    }
    let out = match opts.protocol {
        Protocol::Next => next::run(opts, &keyed, catalog, sink)?,
        Protocol::Rating => rating::run(opts, &keyed, catalog, sink)?,
        Protocol::Strong { heldout_users } => strong::run(opts, heldout_users, &keyed, sink)?,
        Protocol::Ctr { drop_neutral } => ctr::run(opts, drop_neutral, &keyed, catalog, sink)?,
        Protocol::Lee => {
            return Err(Error::param(
                "protocol",
                "lee scores the LEE corpus, not events",
            ))
        }
    };
    let seconds_per_epoch = per_epoch(&out.params, out.train_seconds);
    Ok(EvalReport {
        protocol: if opts.validation {
            format!("{} (validation split)", opts.protocol.as_str())
        } else {
            opts.protocol.as_str().into()
        },
        model: match &opts.rank {
            Some(r) => format!(
                "{} ({} candidates) ranked by {}",
                opts.model, r.candidates, r.model
            ),
            None => opts.model.clone(),
        },
        params: out.params,
        metrics: out.metrics,
        users: out.users,
        train_seconds: out.train_seconds,
        baseline: out.baseline,
        data,
        validation: out.validation.as_ref().map(|v| v.0.clone()),
        validation_users: out.validation.map(|v| v.1),
        seconds_per_epoch,
        heldout_users: out.heldout_users,
    })
}

/// Training seconds over the epochs the job ran (`epochs_run`, when early stopping set
/// it; else `epochs`; ALS: `iterations`), when it has them.
fn per_epoch(params: &serde_json::Value, train_seconds: f64) -> Option<f64> {
    ["epochs_run", "epochs", "iterations"]
        .iter()
        .find_map(|k| params.get(k).and_then(serde_json::Value::as_f64))
        .filter(|e| *e > 0.0)
        .map(|e| train_seconds / e)
}

/// Train, on the evaluation database `db` (the training part of the split only, so
/// nothing held out leaks), what `opts.model` reads, and return the model's own
/// parameters: a blend's components, or the models whose published tables its job
/// names as inputs (`init=item2vec.items` trains `item2vec`), each with its defaults
/// overridden by the `<model>.<key>=value` parameters. A table already there is kept.
fn train_inputs_first(db: &Db, opts: &EvalOptions, sink: &dyn ProgressSink) -> Result<Params> {
    let train = |m: &str, p: &Params| {
        db.train_reporting(m, p, &train_options(opts), sink)
            .map(|_| ())
    };
    if opts.model == crate::train::blend::MODEL {
        return crate::train::blend::train_components_first(&opts.model, &opts.params, train);
    }
    let (own, mut inputs) = split_input_params(&opts.params);
    let job = crate::train::make_job(&opts.model, &own)?;
    for table in job.input_tables() {
        // A table of no known model stays missing: training `opts.model` names it.
        let Some(m) = table
            .split_once('.')
            .map(|(m, _)| m)
            .filter(|m| crate::train::MODELS.contains(m))
        else {
            continue;
        };
        let p = inputs.remove(m).unwrap_or_default();
        if db.table(&table).is_err() {
            train(m, &p)?;
        }
    }
    // Parameters of a model nothing here trains would be silently ignored.
    if let Some((m, p)) = inputs.into_iter().next() {
        let key = p.iter().next().map_or(String::new(), |(k, _)| k.to_owned());
        return Err(Error::param(
            format!("{}.{key}", m.replace('-', "_")),
            format!("`{}` reads no table of `{m}`", opts.model),
        ));
    }
    Ok(own)
}

/// Split `<model>.<key>=value` parameters (any trainable model's name) from the rest.
fn split_input_params(params: &Params) -> (Params, BTreeMap<&'static str, Params>) {
    // Parameter keys are stored with `_` for `-`, so `mult-dae.epochs` is `mult_dae.epochs`.
    let prefix = |m: &str| format!("{}.", m.replace('-', "_"));
    let mut own = Params::new();
    let mut inputs: BTreeMap<&'static str, Params> = BTreeMap::new();
    for (k, v) in params.iter() {
        match crate::train::MODELS
            .iter()
            .find_map(|m| k.strip_prefix(&prefix(m)).map(|key| (*m, key)))
        {
            Some((m, key)) => inputs.entry(m).or_default().insert(key, v),
            None => own.insert(k, v),
        }
    }
    (own, inputs)
}

/// The training options of an evaluation.
fn train_options(opts: &EvalOptions) -> crate::TrainOptions {
    crate::TrainOptions {
        seed: opts.seed,
        threads: opts.threads,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 60 users, each with 10 events among one of three groups of 10 items.
    fn grouped() -> Db {
        let db = Db::temporary().unwrap();
        let mut events = Vec::new();
        for u in 0..60u32 {
            for n in 0..10u32 {
                events.push(RawEvent {
                    user: format!("u{u}"),
                    item: format!("i{}", (u % 3) * 10 + (u + 3 * n) % 10),
                    kind: crate::EventKind::Interaction,
                    value: 1.0,
                    timestamp: i64::from(n),
                    group: None,
                });
            }
        }
        db.log_events(&events).unwrap();
        db
    }

    fn next_opts(params: &[(&str, &str)]) -> EvalOptions {
        let mut p = Params::new();
        for (k, v) in params {
            p.insert(k, v);
        }
        EvalOptions {
            protocol: Protocol::Next,
            model: "youtube".into(),
            data: None,
            params: p,
            seed: 1,
            threads: Some(1),
            rank: None,
            validation: false,
        }
    }

    const TINY: [(&str, &str); 4] = [
        ("dim", "8"),
        ("layers", "8"),
        ("epochs", "1"),
        ("negatives", "8"),
    ];

    #[test]
    fn the_models_whose_tables_a_model_reads_are_trained_first_with_their_parameters() {
        let db = grouped();
        let mut p = TINY.to_vec();
        p.extend([
            ("init", "item2vec.items"),
            ("item2vec.dim", "8"),
            ("item2vec.epochs", "1"),
        ]);
        let r = evaluate_db(&db, &next_opts(&p), &NoProgress).unwrap();
        assert_eq!(r.params["init"], "item2vec.items");
        assert!(r.params.get("item2vec.dim").is_none());
        // item2vec at its default width (64) would not fit youtube's 8.
        p.retain(|(k, _)| *k != "item2vec.dim");
        let err = evaluate_db(&db, &next_opts(&p), &NoProgress).unwrap_err();
        assert!(
            matches!(
                err,
                Error::DimensionMismatch {
                    expected: 8,
                    got: 64
                }
            ),
            "{err}"
        );
        // Parameters of a model the evaluated one does not read are refused by name.
        let mut p = TINY.to_vec();
        p.push(("item2vec.dim", "8"));
        let err = evaluate_db(&db, &next_opts(&p), &NoProgress).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidParameter { name, .. } if name == "item2vec.dim"),
            "{err}"
        );
    }

    #[test]
    fn an_evaluation_on_a_database_carries_its_users_attributes() {
        let db = grouped();
        let pair = |n: &str, v: &str| (n.to_string(), v.to_string());
        let rec = |u: u32| UserRecord {
            id: format!("u{u}"),
            attrs: vec![pair("group", &(u % 3).to_string())],
        };
        db.put_users(&(0..60).step_by(2).map(rec).collect::<Vec<_>>())
            .unwrap();
        let log = db.logged_events().unwrap();
        let mut got = user_records(&db, &log.users).unwrap();
        got.sort_by_key(|r| r.id[1..].parse::<u32>().unwrap());
        let want: Vec<UserRecord> = (0..60).step_by(2).map(rec).collect();
        assert_eq!(got, want);
        // And the evaluation trains on them (youtube reads user attributes).
        let r = evaluate_db(&db, &next_opts(&TINY), &NoProgress).unwrap();
        assert_eq!(r.users, 60);
    }

    #[test]
    fn input_parameters_are_split_by_model_name() {
        let p = Params::new()
            .set("init", "item2vec.items")
            .set("item2vec.dim", 8)
            .set("mult-dae.epochs", 2)
            .set("epochs", 3);
        let (own, inputs) = split_input_params(&p);
        let keys = |p: &Params| {
            p.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(&own), ["epochs=3", "init=item2vec.items"]);
        assert_eq!(keys(&inputs["item2vec"]), ["dim=8"]);
        assert_eq!(keys(&inputs["mult-dae"]), ["epochs=2"]);
    }

    #[test]
    fn evaluate_without_a_data_directory_asks_for_data() {
        for (protocol, file) in [(Protocol::Next, "*.inter"), (Protocol::Lee, "lee.cor")] {
            let opts = EvalOptions {
                protocol,
                model: "doc2vec".into(),
                data: None,
                params: Params::new(),
                seed: 1,
                threads: None,
                rank: None,
                validation: false,
            };
            let err = evaluate_quiet(&opts).unwrap_err();
            assert!(
                matches!(&err, Error::InvalidParameter { name, .. } if name == "data"),
                "{err}"
            );
            let msg = err.to_string();
            assert!(msg.contains("--data") && msg.contains(file), "{msg}");
        }
    }
}
