//! The one error type of recdb.

use std::path::PathBuf;

/// Everything that can go wrong in recdb, with the context needed to act on it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The storage engine failed (I/O, or sled reported an error).
    #[error("storage error: {0}")]
    Storage(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
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
         (sharing one between processes is the job of a future `recdb serve`)",
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
}

impl From<sled::Error> for Error {
    fn from(e: sled::Error) -> Self {
        if let Some(locked) = crate::storage::backend::locked_error(&e) {
            return locked;
        }
        match e {
            sled::Error::Corruption { at, .. } => Error::Corrupted {
                what: format!("sled page at {at:?}"),
            },
            // sled refuses a directory written with another configuration: not ours.
            sled::Error::Unsupported(msg) => Error::UnsupportedFormat {
                found: format!("not a recdb database ({msg})"),
                supported: crate::storage::meta::FORMAT,
            },
            other => Error::Storage(other.to_string()),
        }
    }
}
