//! recdb: an embedded recommender database.
//!
//! An application links recdb like SQLite or sled: it logs what users do, trains
//! recommendation models in-process, and asks for similar items and recommendations.
//! Everything lives in one directory (a sled database): the interaction log in packed
//! segments, id maps, attributes, and versioned embedding tables read in place.
//!
//! ```
//! use recdb::{Db, EventKind, Params, QueryOptions, TrainOptions};
//!
//! # fn main() -> recdb::Result<()> {
//! let db = Db::temporary()?; // or Db::open("path/to/db")
//! let mut batch = db.batch();
//! for (user, item) in [("ann", "alien"), ("ann", "aliens"), ("bob", "alien"), ("bob", "aliens"), ("cid", "alien")] {
//!     batch.push(user, item, EventKind::View, 1.0, 0)?;
//! }
//! batch.commit()?; // atomic and durable on return
//! db.train("als", &Params::new().set("factors", 8), &TrainOptions::default())?;
//! let recs = db.recommend("cid", &QueryOptions::model("als").k(1))?;
//! assert_eq!(recs[0].id, "aliens");
//! # Ok(()) }
//! ```
//!
//! Durability: [`IngestBatch::commit`], the `import_*` calls, a finished training job
//! and [`Db::flush`] are durable when they return.
//!
//! Cargo feature `testkit` (off by default): `recdb::testkit`, the synthetic data,
//! bench helpers and fuzz entry points of recdb's own tests; not for applications.
#![deny(unsafe_code)]
// A narrowing `as` is an error, a checked conversion, or an `allow` that says why the
// value fits (test code, with its small fixed sizes, is exempt).
#![cfg_attr(not(test), warn(clippy::cast_possible_truncation))]

mod backup;
mod cpu;
mod db;
mod error;
mod eval;
mod event;
mod features;
mod index;
mod ingest;
mod jobs;
mod model_names;
mod query;
mod storage;
// The synthetic world: the test kit's and the demo's (which compiles it on its own).
#[cfg(any(test, feature = "testkit"))]
mod synth;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
mod train;

pub use db::{
    CheckReport, CommitReceipt, CompactOptions, Config, Db, DeltaReport, DumpReport, HistoryEntry,
    ImportReport, IndexBench, IndexBenchOptions, IndexInfo, IndexOptions, IngestBatch, JobHandle,
    JobInfo, OperatingPoint, SearchEntry, SearchOptions, Stats, TableFormat, TableImport,
    TableImportReport, TableInfo, TableSearcher, TrainOptions, VacuumReport,
};
#[cfg(feature = "parquet")]
pub use db::{LogExportReport, PARQUET_ROWS_PER_FILE};
pub use error::{Error, Result};
pub use eval::{
    evaluate, evaluate_db, evaluate_quiet, EvalOptions, EvalReport, Protocol, Rerank, LEE_DEFAULTS,
};
pub use event::{Event, EventKind, EventRow, ItemRecord, RawEvent, RawSearch, UserRecord};
pub use index::Metric;
#[cfg(all(feature = "parquet", feature = "testkit"))]
pub use ingest::spark_factors_bytes;
pub use ingest::{
    parse_f32_rows, parse_json_record, parse_tsv_vectors, read_binary_file, read_text_file, Format,
    JsonObject, JsonRecord, JsonSource, ParsedVectors, MAX_LINE, MAX_QUERY,
};
#[cfg(feature = "parquet")]
pub use ingest::{parse_parquet_factors, ParquetFactors};
pub use jobs::{JobContext, JobControl, JobState, NoProgress, ProgressSink, MAX_JOBS, MAX_THREADS};
pub use query::{
    Hit, QueryOptions, SequenceQuery, SequenceScoring, DEFAULT_CANDIDATES, MAX_CANDIDATES,
};
pub use storage::imports::PriorImport;
pub use storage::tables::{Row, RowSpace, TableView};
pub use train::params::Params;
pub use train::{model_defaults, MODELS};
