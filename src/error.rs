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
