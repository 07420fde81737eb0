//! recdb: an embedded recommender database.
#![forbid(unsafe_code)]

mod error;
#[allow(dead_code)] // wired into `recdb eval` later
mod eval;
mod event;
mod train;

pub use error::{Error, Result};
pub use event::{Event, EventKind, ItemRecord, RawEvent, UserRecord};
pub use train::context::{JobContext, NoProgress, ProgressSink};
