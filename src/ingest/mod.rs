//! TEMPORARY shim until the readers land.
use std::path::Path;
use crate::{ItemRecord, RawEvent, Result, UserRecord};
#[derive(Debug, Clone, Copy)]
pub enum Format { Tsv }
pub fn read_events(_: &Path, _: Option<Format>) -> Result<Vec<RawEvent>> { unimplemented!() }
pub fn read_items(_: &Path, _: Option<Format>) -> Result<Vec<ItemRecord>> { unimplemented!() }
pub fn read_users(_: &Path, _: Option<Format>) -> Result<Vec<UserRecord>> { unimplemented!() }
