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
    /// A table (model output) that does not exist.
    #[error("no table `{0}` (train a model first, or see `stats` for the tables there are)")]
    UnknownTable(String),
    /// A model or job kind recdb does not know.
    #[error("unknown model `{0}`")]
    UnknownModel(String),
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
    /// A restore stopped before it finished (the process died): the database holds
    /// part of the dump `dump`. Restoring again replaces it with the whole dump.
    #[error("incomplete restore from `{dump}`: the database holds part of that dump; run `restore` again to replace it with the whole dump")]
    IncompleteRestore { dump: String },
    /// Any other invalid request.
    #[error("invalid input: {0}")]
    InvalidInput(String),
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
