//! Job records and stored retrain policies: what ran, with which parameters, and how
//! it ended.

use rkyv::{Archive, Deserialize, Serialize};

use crate::storage::backend::{Backend, WriteBatch};
use crate::storage::codec::{self, Tag};
use crate::storage::keys;
use crate::Result;

/// How a job ended, or where it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum JobState {
    Queued = 0,
    Running = 1,
    Done = 2,
    Failed = 3,
    /// The process stopped while the job ran; nothing of it was published.
    Interrupted = 4,
    Cancelled = 5,
}

impl JobState {
    pub(crate) fn from_u8(b: u8) -> JobState {
        match b {
            0 => JobState::Queued,
            1 => JobState::Running,
            2 => JobState::Done,
            3 => JobState::Failed,
            5 => JobState::Cancelled,
            _ => JobState::Interrupted,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
            JobState::Interrupted => "interrupted",
            JobState::Cancelled => "cancelled",
        }
    }
    pub fn is_finished(self) -> bool {
        !matches!(self, JobState::Queued | JobState::Running)
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Serialized as its name (`"done"`), as `recdb jobs --json` shows it.
impl serde::Serialize for JobState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub(crate) struct JobRecord {
    pub id: u64,
    pub model: String,
    /// Validated parameters as JSON.
    pub params: String,
    pub state: u8,
    pub progress: f32,
    pub message: String,
    pub created_unix: i64,
    pub started_unix: i64,
    pub finished_unix: i64,
    pub seconds: f64,
    pub error: String,
    pub watermark: u64,
    pub seed: u64,
    pub tables: Vec<String>,
}

pub(crate) fn put(batch: &mut WriteBatch, rec: &JobRecord) {
    batch.put(keys::job(rec.id), codec::encode(Tag::Job, rec));
}

pub(crate) fn get(b: &dyn Backend, id: u64) -> Result<Option<JobRecord>> {
    match b.get(&keys::job(id))? {
        None => Ok(None),
        Some(v) => codec::decode(Tag::Job, &v, &|| format!("record of job {id}")).map(Some),
    }
}

pub(crate) fn all(b: &dyn Backend) -> Result<Vec<JobRecord>> {
    b.scan_prefix(b"J")?
        .into_iter()
        .map(|(k, v)| {
            let id = keys::be_u64(&k[1..]).unwrap_or(0);
            codec::decode(Tag::Job, &v, &|| format!("record of job {id}"))
        })
        .collect()
}

/// Rerun a model when `every_events` new events have arrived since its last run.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub(crate) struct Policy {
    pub model: String,
    pub params: String,
    pub every_events: u64,
}

pub(crate) fn put_policy(batch: &mut WriteBatch, p: &Policy) {
    batch.put(keys::policy(&p.model), codec::encode(Tag::Policy, p));
}

pub(crate) fn policies(b: &dyn Backend) -> Result<Vec<Policy>> {
    b.scan_prefix(b"P")?
        .into_iter()
        .map(|(k, v)| {
            let name = String::from_utf8_lossy(&k[1..]).into_owned();
            codec::decode(Tag::Policy, &v, &|| format!("retrain policy of `{name}`"))
        })
        .collect()
}
