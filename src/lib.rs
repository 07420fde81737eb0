//! recdb: an embedded recommender database.
#![forbid(unsafe_code)]

mod error;
mod event;
pub mod ingest;
mod synth;
mod train;

pub use error::{Error, Result};
pub use event::{Event, EventKind, ItemRecord, RawEvent, UserRecord};
pub use ingest::Format;
pub use synth::{generate, generate_dense, Synth, SynthConfig};
pub use train::context::{JobContext, NoProgress, ProgressSink};
