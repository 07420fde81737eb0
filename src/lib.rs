//! recdb: an embedded recommender database.
#![forbid(unsafe_code)]

mod db;
mod error;
mod eval;
mod evaluate;
mod event;
mod index;
mod ingest;
mod query;
mod storage;
mod synth;
mod train;

pub use db::{CheckReport, CommitReceipt, Config, Db, HistoryEntry, ImportReport, IngestBatch, JobHandle, JobInfo, Stats, TableFormat, TableInfo, TrainOptions};
pub use error::{Error, Result};
pub use evaluate::{evaluate, evaluate_quiet, EvalOptions, EvalReport, Protocol};
pub use event::{Event, EventKind, ItemRecord, RawEvent, UserRecord};
pub use index::Metric;
pub use ingest::{detect as detect_format, parse_events, parse_items, parse_users, read_events, read_items, read_users, Format};
pub use query::{Hit, QueryOptions};
pub use storage::jobs::JobState;
pub use storage::tables::{Row, RowSpace, TableView};
pub use synth::{generate, generate_dense, Synth, SynthConfig};
pub use train::context::{JobContext, NoProgress, ProgressSink};
pub use train::params::Params;
pub use train::MODELS;
