//! recdb: an embedded recommender database.
#![forbid(unsafe_code)]

mod db;
mod error;
#[allow(dead_code)] // wired into `recdb eval` later
mod eval;
mod event;
mod index;
mod ingest;
mod query;
mod storage;
mod train;

pub use db::{CheckReport, CommitReceipt, Config, Db, HistoryEntry, ImportReport, IngestBatch, JobHandle, JobInfo, Stats, TableFormat, TableInfo, TrainOptions};
pub use error::{Error, Result};
pub use event::{Event, EventKind, ItemRecord, RawEvent, UserRecord};
pub use index::Metric;
pub use ingest::Format;
pub use query::{Hit, QueryOptions};
pub use storage::jobs::JobState;
pub use storage::tables::{Row, RowSpace, TableView};
pub use train::context::{JobContext, NoProgress, ProgressSink};
pub use train::params::Params;
pub use train::MODELS;
