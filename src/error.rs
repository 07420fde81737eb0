//! The one error type of recdb.

use std::path::PathBuf;

/// Everything that can go wrong in recdb, with the context needed to act on it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The storage engine failed (I/O, or sled reported an error). `kind` is the I/O
    /// kind when sled failed on I/O; `source` is sled's error itself.
    #[error("storage error: {source}")]
    Storage {
        kind: Option<std::io::ErrorKind>,
        #[source]
        source: sled::Error,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An operating-system call failed outside any one file (starting a thread, a
    /// writer handed in by the caller): `what` says which.
    #[error("{what}: {source}")]
    System {
        what: &'static str,
        kind: std::io::ErrorKind,
        #[source]
        source: std::io::Error,
    },
    /// A lock inside the database was poisoned: a thread panicked while holding it, so
    /// what it guards may be half-updated. Reopen the database.
    #[error("internal lock `{what}` is poisoned (a thread panicked while holding it); reopen the database")]
    LockPoisoned { what: &'static str },
    /// A count past what the stored format can hold (e.g. a table or a log past
    /// `u32::MAX` rows): refused rather than wrapped.
    #[error("{what} is too large: the limit is {limit}")]
    TooLarge { what: String, limit: u64 },
    /// A limit on work at once was reached (e.g. the jobs running in one database,
    /// `Config::max_jobs`): nothing was started; retry when some of it ends.
    #[error("too many {what}: at most {limit} at once; retry when one ends")]
    Busy { what: String, limit: u64 },
    /// Stored bytes failed validation (checksum, structure, or an impossible value).
    #[error("corrupted {what}")]
    Corrupted { what: String },
    /// The database was written by a newer or a foreign format.
    #[error("unsupported database format: {found} (this build reads format {supported})")]
    UnsupportedFormat { found: String, supported: u32 },
    /// A line of an input file was rejected.
    #[error("{file}:{line}: field `{field}`: {msg}")]
    Parse {
        file: String,
        line: u64,
        field: String,
        msg: String,
    },
    /// A user id that the database has never seen.
    #[error("unknown user `{0}`")]
    UnknownUser(String),
    /// An item id that the database has never seen.
    #[error("unknown item `{0}`")]
    UnknownItem(String),
    /// A title shared by several items: their ids (the first few of `matches`).
    #[error("`{text}` is the title of {matches} items: {} (use an item id)", .candidates.join(", "))]
    AmbiguousItem {
        text: String,
        matches: usize,
        candidates: Vec<String>,
    },
    /// A table (model output) that does not exist.
    #[error("no table `{0}` (train a model first, or see `stats` for the tables there are)")]
    UnknownTable(String),
    /// A model name recdb does not know (neither trainable nor trained here).
    #[error("unknown model `{name}` (known: {}{})", .known.join(", "), did_you_mean(.suggestion))]
    UnknownModel {
        name: String,
        known: Vec<String>,
        /// The nearest known name, when `name` looks like a typo of it.
        suggestion: Option<String>,
    },
    /// A trained model without the vectors a query needs (e.g. `similar` on `popular`,
    /// whose one column is a count; `predict` on `item2vec`, which has no user vectors).
    #[error("model `{model}` has no {kind} vectors; this needs a model with {kind} vectors ({})", models_with(.models))]
    NoVectors {
        model: String,
        /// `item` or `user`.
        kind: String,
        /// The trained models that have them.
        models: Vec<String>,
    },
    /// A user or item id newer than the model asked about (`kind` is `user` or `item`).
    #[error("{kind} `{id}` arrived after model `{model}` was trained; retrain it")]
    NotInModel {
        kind: &'static str,
        id: String,
        model: String,
    },
    /// A row that was deleted from a table (`kind`: `user`, `item` or `row`).
    #[error("{kind} `{id}` was deleted from table `{table}`")]
    RowDeleted {
        kind: &'static str,
        id: String,
        table: String,
    },
    /// A row id that a table does not hold.
    #[error("no row `{id}` in table `{table}`")]
    UnknownRow { id: String, table: String },
    /// An event (or record) of a batch or an import refused before anything is written:
    /// `index` counts from 0 in the batch or the file.
    #[error("{}event {index}: {reason}", file_prefix(.file))]
    InvalidEvent {
        file: Option<String>,
        index: usize,
        reason: String,
    },
    /// A table with nothing to work on (`what`: e.g. `rows`, `non-zero rows to index`).
    #[error("empty input: table `{table}` has no {what}")]
    EmptyTable { table: String, what: &'static str },
    /// Training found nothing to learn from (`what`: `events`, `interactions`, `ratings`).
    #[error("empty input: no {what} to train on")]
    NoEvents { what: &'static str },
    /// A job id that does not exist.
    #[error("unknown job {0}")]
    UnknownJob(u64),
    /// A parameter outside its valid range.
    #[error("invalid parameter `{name}`: {msg}")]
    InvalidParameter { name: String, msg: String },
    /// Two vectors or a vector and a table disagree on dimension.
    #[error("dimension mismatch: expected {expected}, got {got}")]
    DimensionMismatch { expected: usize, got: usize },
    /// A vector with zero norm where a direction is needed.
    #[error("zero-norm vector for {0}")]
    ZeroVector(String),
    /// There is nothing to work on (no events, an empty file, an empty table).
    #[error("empty input: {0}")]
    Empty(String),
    /// A job was cancelled before it finished.
    #[error("job cancelled")]
    Cancelled,
    /// A job failed (including a panic inside it).
    #[error("job failed: {0}")]
    JobFailed(String),
    /// A job needs more memory than the machine has available (or an allocation failed).
    #[error(
        "not enough memory for parameter `{param}`: the job needs {needed} bytes ({} MiB), \
         {available} bytes ({} MiB) are available",
        needed >> 20,
        available >> 20
    )]
    OutOfMemory {
        param: String,
        needed: u64,
        available: u64,
    },
    /// A restore stopped before it finished (the process died): the database holds
    /// part of the dump `dump`. Restoring again replaces it with the whole dump.
    #[error("incomplete restore from `{dump}`: the database holds part of that dump; run `restore` again to replace it with the whole dump")]
    IncompleteRestore { dump: String },
    /// Any other invalid request.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Another process has the database open; sled lets one process open a directory
    /// at a time.
    #[error(
        "database {} is held by {}; a database is open in one process at a time \
         (to share one between processes, run `recdb serve` on it and `recdb --connect`)",
        .path.display(),
        describe_holder(.pid, .program, .activity)
    )]
    Locked {
        path: PathBuf,
        /// The holder's process id, when its owner file names a live process.
        pid: Option<u32>,
        /// The holder's program name (e.g. `recdb`).
        program: Option<String>,
        /// What the holder is doing (e.g. `train als 30 %`); empty when idle.
        activity: Option<String>,
    },
}

/// "recdb (pid 12, running: train als 30 %)", or "another process" when unknown.
fn describe_holder(
    pid: &Option<u32>,
    program: &Option<String>,
    activity: &Option<String>,
) -> String {
    let Some(pid) = pid else {
        return "another process".into();
    };
    let program = program.as_deref().unwrap_or("a process");
    match activity.as_deref() {
        Some(a) if !a.is_empty() => format!("{program} (pid {pid}, running: {a})"),
        _ => format!("{program} (pid {pid}, idle)"),
    }
}

fn file_prefix(file: &Option<String>) -> String {
    file.as_ref().map(|f| format!("{f}: ")).unwrap_or_default()
}

fn did_you_mean(s: &Option<String>) -> String {
    s.as_ref()
        .map(|m| format!("; did you mean `{m}`?"))
        .unwrap_or_default()
}

fn models_with(models: &[String]) -> String {
    if models.is_empty() {
        "none trained here yet".into()
    } else {
        format!("trained here: {}", models.join(", "))
    }
}

/// `Result` with recdb's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn corrupted(what: impl Into<String>) -> Self {
        Error::Corrupted { what: what.into() }
    }

    pub(crate) fn param(name: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::InvalidParameter {
            name: name.into(),
            msg: msg.into(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// An I/O error outside any one file, with what was being done.
    pub(crate) fn system(what: &'static str, source: std::io::Error) -> Self {
        Error::System {
            what,
            kind: source.kind(),
            source,
        }
    }

    pub(crate) fn too_large(what: impl Into<String>, limit: u64) -> Self {
        Error::TooLarge {
            what: what.into(),
            limit,
        }
    }

    /// The I/O kind behind this error, when an I/O failure caused it.
    pub fn io_kind(&self) -> Option<std::io::ErrorKind> {
        match self {
            Error::Io { source, .. } => Some(source.kind()),
            Error::System { kind, .. } => Some(*kind),
            Error::Storage { kind, .. } => *kind,
            _ => None,
        }
    }
}

/// A count as `u32`, or [`Error::TooLarge`] naming `what` past `u32::MAX`: the stored
/// formats number rows, items and events with `u32`.
pub(crate) fn to_u32(n: usize, what: &str) -> Result<u32> {
    u32::try_from(n).map_err(|_| Error::too_large(format!("{what} ({n})"), u32::MAX.into()))
}

/// The one way recdb takes a lock: `.lock().or_poisoned("what")?` turns a poisoned
/// lock into [`Error::LockPoisoned`]. Only code that cannot return an error (progress
/// reports, cache fills and clears, `Drop`) uses `.recover()`, and only on data a panic
/// cannot leave half-updated: a value replaced in one assignment, or a cache whose
/// entries are whole `Arc`s that a reader reloads when missing.
pub(crate) trait OrPoisoned<G> {
    fn or_poisoned(self, what: &'static str) -> Result<G>;
    fn recover(self) -> G;
}

impl<G> OrPoisoned<G> for std::sync::LockResult<G> {
    fn or_poisoned(self, what: &'static str) -> Result<G> {
        self.map_err(|_| Error::LockPoisoned { what })
    }
    fn recover(self) -> G {
        self.unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::system("I/O error", e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;
    use std::io;
    use std::sync::{Mutex, RwLock};

    #[test]
    fn sled_io_error_keeps_kind_and_source() {
        let e = Error::from(sled::Error::Io(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "denied",
        )));
        assert!(matches!(e, Error::Storage { .. }), "{e:?}");
        assert_eq!(e.io_kind(), Some(io::ErrorKind::PermissionDenied));
        let source = e.source().expect("sled error kept as the source");
        assert!(source.to_string().contains("denied"), "{source}");
        assert!(e.to_string().starts_with("storage error: "), "{e}");
    }

    #[test]
    fn io_error_keeps_kind_and_source() {
        let e = Error::from(io::Error::new(io::ErrorKind::NotFound, "gone"));
        assert_eq!(e.io_kind(), Some(io::ErrorKind::NotFound));
        assert!(e.source().is_some());
        let e = Error::io("a/b.tsv", io::Error::new(io::ErrorKind::NotFound, "gone"));
        assert_eq!(e.io_kind(), Some(io::ErrorKind::NotFound));
        assert!(e.source().is_some());
        assert_eq!(e.to_string(), "a/b.tsv: gone");
    }

    #[test]
    fn a_poisoned_lock_is_an_error() {
        let m = Mutex::new(0);
        let l = RwLock::new(0);
        let _ = std::panic::catch_unwind(|| {
            let _g = m.lock().unwrap();
            let _w = l.write().unwrap();
            panic!("poison");
        });
        let poisoned = |r: Result<()>, name: &str| matches!(r, Err(Error::LockPoisoned { what }) if what == name);
        assert!(poisoned(m.lock().or_poisoned("m").map(drop), "m"));
        assert!(poisoned(l.read().or_poisoned("l").map(drop), "l"));
        assert!(poisoned(l.write().or_poisoned("l").map(drop), "l"));
        assert_eq!(*m.lock().recover(), 0);
        let e = m.lock().or_poisoned("m").unwrap_err();
        assert!(e.to_string().contains("`m` is poisoned"), "{e}");
    }

    #[test]
    fn structured_variants_keep_the_messages() {
        let e = Error::NotInModel {
            kind: "user",
            id: "ann".into(),
            model: "als".into(),
        };
        assert_eq!(
            e.to_string(),
            "user `ann` arrived after model `als` was trained; retrain it"
        );
        let e = Error::RowDeleted {
            kind: "item",
            id: "x".into(),
            table: "t".into(),
        };
        assert_eq!(e.to_string(), "item `x` was deleted from table `t`");
        let e = Error::UnknownRow {
            id: "zz".into(),
            table: "emb".into(),
        };
        assert_eq!(e.to_string(), "no row `zz` in table `emb`");
        let mut e = Error::InvalidEvent {
            file: None,
            index: 3,
            reason: "empty user id".into(),
        };
        assert_eq!(e.to_string(), "event 3: empty user id");
        if let Error::InvalidEvent { file, .. } = &mut e {
            *file = Some("a.csv".into());
        }
        assert_eq!(e.to_string(), "a.csv: event 3: empty user id");
        let e = Error::EmptyTable {
            table: "t".into(),
            what: "rows",
        };
        assert_eq!(e.to_string(), "empty input: table `t` has no rows");
        let e = Error::NoEvents { what: "ratings" };
        assert_eq!(e.to_string(), "empty input: no ratings to train on");
        let e = Error::param("factors", "must be at least 1");
        assert!(e.to_string().contains("`factors`"), "{e}");
    }

    #[test]
    fn a_count_past_u32_is_too_large() {
        assert_eq!(to_u32(7, "rows").unwrap(), 7);
        let n = usize::try_from(u64::from(u32::MAX) + 1).unwrap();
        match to_u32(n, "rows of table `t`") {
            Err(Error::TooLarge { what, limit }) => {
                assert!(what.contains("rows of table `t`"), "{what}");
                assert_eq!(limit, u64::from(u32::MAX));
            }
            other => panic!("{other:?}"),
        }
    }
}
