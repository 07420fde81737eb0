//! recdb: an embedded recommender database.
#![forbid(unsafe_code)]

mod error;
mod event;
mod storage;
mod train;

pub use error::{Error, Result};
pub use event::{Event, EventKind, ItemRecord, RawEvent, UserRecord};
pub use train::context::{JobContext, NoProgress, ProgressSink};
