//! The interaction log, packed by user.
//!
//! Users are grouped in buckets of 64 consecutive ids. Each commit writes, for every
//! bucket it touches, one *run*: a columnar segment of that bucket's new events sorted
//! by (user, timestamp, seq). A bucket's manifest lists its runs; when a bucket has
//! [`MAX_RUNS`] runs, the small ones are merged (size-tiered), so a user's history is a
//! handful of gets and a binary search, and a full scan reads few large values.
//! Every event keeps its global sequence number, so a snapshot "up to a watermark" is a
//! filter, and the order in which events arrived is never lost.

use crate::error::OrPoisoned;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

use rayon::prelude::*;
use rkyv::{Archive, Deserialize, Serialize};

use super::backend::{Backend, Value, WriteBatch};
use super::codec::{self, Tag};
use super::keys;
use crate::event::{Event, EventKind};
use crate::{Error, Result};

pub(crate) const BUCKET_SHIFT: u32 = 6;
pub(crate) const MAX_RUNS: usize = 16;

pub(crate) fn bucket_of(user: u32) -> u32 {
    user >> BUCKET_SHIFT
}

/// Events of one bucket, column by column, sorted by (user, timestamp, seq).
#[derive(Archive, Serialize, Deserialize, Debug, Default, Clone, PartialEq)]
pub(crate) struct Segment {
    pub users: Vec<u32>,
    pub items: Vec<u32>,
    pub kinds: Vec<u8>,
    pub values: Vec<f32>,
    pub timestamps: Vec<i64>,
    pub groups: Vec<u32>,
    pub seqs: Vec<u64>,
}

impl Segment {
    fn from_sorted(events: &[Event]) -> Segment {
        Segment {
            users: events.iter().map(|e| e.user).collect(),
            items: events.iter().map(|e| e.item).collect(),
            kinds: events.iter().map(|e| e.kind as u8).collect(),
            values: events.iter().map(|e| e.value).collect(),
            timestamps: events.iter().map(|e| e.timestamp).collect(),
            groups: events.iter().map(|e| e.group).collect(),
            seqs: events.iter().map(|e| e.seq).collect(),
        }
    }
}

#[derive(Archive, Serialize, Deserialize, Debug, Default, Clone, PartialEq)]
pub(crate) struct RunInfo {
    pub run: u64,
    pub events: u32,
}

/// The runs of one bucket, oldest first.
#[derive(Archive, Serialize, Deserialize, Debug, Default, Clone, PartialEq)]
pub(crate) struct Manifest {
    pub runs: Vec<RunInfo>,
}

/// The stored value of one run (its absence is corruption: the manifest lists it).
fn read_run(b: &dyn Backend, bucket: u32, run: u64) -> Result<Value> {
    b.get(&keys::segment(bucket, run))?
        .ok_or_else(|| Error::corrupted(format!("{} (missing)", seg_what(bucket, run)())))
}

fn seg_what(bucket: u32, run: u64) -> impl Fn() -> String {
    move || format!("log segment (bucket {bucket}, run {run})")
}

/// Decode the events of `seg` for users in `[lo, hi)` whose seq is below `watermark`.
fn push_events(
    seg: &ArchivedSegment,
    lo: u32,
    hi: u32,
    watermark: u64,
    what: &dyn Fn() -> String,
    out: &mut Vec<Event>,
) -> Result<()> {
    let n = seg.users.len();
    if [
        seg.items.len(),
        seg.kinds.len(),
        seg.values.len(),
        seg.timestamps.len(),
        seg.groups.len(),
        seg.seqs.len(),
    ]
    .iter()
    .any(|&l| l != n)
    {
        return Err(Error::corrupted(format!(
            "{} (columns of different lengths)",
            what()
        )));
    }
    let start = seg.users.partition_point(|u| u.to_native() < lo);
    let end = seg.users.partition_point(|u| u.to_native() < hi);
    for i in start..end {
        let seq = seg.seqs[i].to_native();
        if seq >= watermark {
            continue;
        }
        let kind = EventKind::from_u8(seg.kinds[i])
            .ok_or_else(|| Error::corrupted(format!("{} (event kind {})", what(), seg.kinds[i])))?;
        out.push(Event {
            user: seg.users[i].to_native(),
            item: seg.items[i].to_native(),
            kind,
            value: seg.values[i].to_native(),
            timestamp: seg.timestamps[i].to_native(),
            group: seg.groups[i].to_native(),
            seq,
        });
    }
    Ok(())
}

/// A bucket's new manifest and the writes (put or delete) that produce it.
type PlannedBucket = (u32, Manifest, Vec<(Vec<u8>, Option<Vec<u8>>)>);

/// The in-memory list of manifests, one per bucket that has events.
#[derive(Debug, Default)]
pub(crate) struct Log {
    manifests: BTreeMap<u32, Manifest>,
    checked: Mutex<CheckedRuns>,
}

/// Large segments whose checksum was verified, held (the same immutable buffers) so
/// that a history lookup in a bucket with a heavy user does not checksum megabytes per
/// query: a bucket is 64 users, and one user with a million events made every lookup
/// of its 63 neighbours read and checksum a 33 MB value (`benches/recommend.rs`: p99
/// 2.9 ms against a p50 of 0.18). A run key is written once and never reused (a merge
/// writes a new run), and a run leaves the cache when its bucket's manifest drops it.
#[derive(Debug, Default)]
struct CheckedRuns {
    runs: HashMap<(u32, u64), Value>,
    /// Insertion order, for eviction when over [`CHECKED_BYTES`].
    order: VecDeque<(u32, u64)>,
    bytes: usize,
}

/// Segments smaller than this are checksummed on every read (cheap).
const CHECKED_MIN: usize = 256 << 10;
/// Bytes of checked segments held at most.
const CHECKED_BYTES: usize = 128 << 20;

impl CheckedRuns {
    /// Small segments are cheap to checksum again, and not worth a lock and a clone.
    fn worth_holding(v: &Value) -> bool {
        (CHECKED_MIN..=CHECKED_BYTES).contains(&v.len())
    }

    fn get(&self, key: (u32, u64)) -> Option<Value> {
        self.runs.get(&key).cloned()
    }

    fn insert(&mut self, key: (u32, u64), v: Value) {
        if !Self::worth_holding(&v) || self.runs.contains_key(&key) {
            return;
        }
        while self.bytes + v.len() > CHECKED_BYTES {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(o) = self.runs.remove(&old) {
                self.bytes -= o.len();
            }
        }
        self.bytes += v.len();
        self.order.push_back(key);
        self.runs.insert(key, v);
    }

    /// Drop the runs of `bucket` that `keep` no longer lists.
    fn retain(&mut self, bucket: u32, keep: &Manifest) {
        let gone: Vec<(u32, u64)> = self
            .runs
            .keys()
            .filter(|k| k.0 == bucket && !keep.runs.iter().any(|r| r.run == k.1))
            .copied()
            .collect();
        for k in gone {
            if let Some(o) = self.runs.remove(&k) {
                self.bytes -= o.len();
            }
            self.order.retain(|o| *o != k);
        }
    }
}

/// What a commit will change in the log, applied to [`Log`] once the batch is durable.
pub(crate) struct LogUpdate {
    manifests: Vec<(u32, Manifest)>,
}

impl Log {
    pub fn load(b: &dyn Backend) -> Result<Log> {
        let mut manifests = BTreeMap::new();
        for (k, v) in b.scan_prefix(b"h")? {
            let bucket =
                keys::be_u32(&k[1..]).ok_or_else(|| Error::corrupted("log manifest key"))?;
            let m: Manifest = codec::decode(Tag::Manifest, &v, &|| {
                format!("log manifest (bucket {bucket})")
            })?;
            manifests.insert(bucket, m);
        }
        Ok(Log {
            manifests,
            checked: Mutex::default(),
        })
    }

    pub fn runs(&self) -> usize {
        self.manifests.values().map(|m| m.runs.len()).sum()
    }

    /// Plan the writes for `events` (seq already assigned). Runs on `pool`.
    pub fn plan_append(
        &self,
        b: &dyn Backend,
        mut events: Vec<Event>,
        next_run: &mut u64,
        batch: &mut WriteBatch,
    ) -> Result<LogUpdate> {
        // Scatter by bucket (one pass), then sort and encode each bucket in parallel:
        // small sorts that stay in cache instead of one big sort of the whole batch.
        let (lo, hi) = events.iter().fold((u32::MAX, 0), |(lo, hi), e| {
            (lo.min(bucket_of(e.user)), hi.max(bucket_of(e.user)))
        });
        let mut by_bucket: Vec<Vec<Event>> = Vec::new();
        if !events.is_empty() {
            let mut counts = vec![0usize; (hi - lo) as usize + 1];
            for e in &events {
                counts[(bucket_of(e.user) - lo) as usize] += 1;
            }
            by_bucket = counts.iter().map(|&c| Vec::with_capacity(c)).collect();
            for e in events.drain(..) {
                by_bucket[(bucket_of(e.user) - lo) as usize].push(e);
            }
        }
        let groups: Vec<(u32, Vec<Event>)> = by_bucket
            .into_iter()
            .enumerate()
            .filter(|(_, v)| !v.is_empty())
            // why: i <= hi - lo, both u32 bucket numbers.
            .map(|(i, v)| (lo + u32::try_from(i).unwrap_or(u32::MAX), v))
            .collect();
        let first_run = *next_run;
        *next_run += groups.len() as u64;
        let planned: Vec<Result<PlannedBucket>> = groups
            .into_par_iter()
            .enumerate()
            .map(|(i, (bucket, mut evs))| {
                evs.sort_unstable_by_key(|e| (e.user, e.timestamp, e.seq));
                self.plan_bucket(b, bucket, &evs, first_run + i as u64)
            })
            .collect();
        let mut manifests = Vec::with_capacity(planned.len());
        for p in planned {
            let (bucket, manifest, writes) = p?;
            for (k, v) in writes {
                match v {
                    Some(v) => batch.put(k, v),
                    None => batch.delete(k),
                }
            }
            batch.put(
                keys::manifest(bucket),
                codec::encode(Tag::Manifest, &manifest),
            );
            manifests.push((bucket, manifest));
        }
        Ok(LogUpdate { manifests })
    }

    fn plan_bucket(
        &self,
        b: &dyn Backend,
        bucket: u32,
        new: &[Event],
        run: u64,
    ) -> Result<PlannedBucket> {
        let mut manifest = self.manifests.get(&bucket).cloned().unwrap_or_default();
        let mut writes = Vec::new();
        if manifest.runs.len() + 1 < MAX_RUNS {
            writes.push((
                keys::segment(bucket, run),
                Some(codec::encode(Tag::Segment, &Segment::from_sorted(new))),
            ));
            manifest.runs.push(RunInfo {
                run,
                events: crate::error::to_u32(new.len(), "events in one log segment")?,
            });
            return Ok((bucket, manifest, writes));
        }
        // Size-tiered merge: fold the newest runs into the new one while the result would
        // be at least as large as the run before it, so sizes decrease from oldest to
        // newest and each event is rewritten O(log n) times.
        let n = manifest.runs.len();
        let mut from = n;
        let mut total = new.len() as u64;
        while from > 0 && (from == n || total >= manifest.runs[from - 1].events as u64) {
            from -= 1;
            total += manifest.runs[from].events as u64;
        }
        let from = from.min(MAX_RUNS - 2);
        let mut merged: Vec<Event> = new.to_vec();
        for r in &manifest.runs[from..] {
            let what = seg_what(bucket, r.run);
            let v = read_run(b, bucket, r.run)?;
            let seg: &ArchivedSegment = codec::access(Tag::Segment, &v, &what)?;
            push_events(seg, 0, u32::MAX, u64::MAX, &what, &mut merged)?;
            writes.push((keys::segment(bucket, r.run), None));
        }
        merged.sort_unstable_by_key(|e| (e.user, e.timestamp, e.seq));
        manifest.runs.truncate(from);
        writes.push((
            keys::segment(bucket, run),
            Some(codec::encode(Tag::Segment, &Segment::from_sorted(&merged))),
        ));
        manifest.runs.push(RunInfo {
            run,
            events: crate::error::to_u32(merged.len(), "events in one log segment")?,
        });
        Ok((bucket, manifest, writes))
    }

    pub fn install(&mut self, update: LogUpdate) {
        let checked = self.checked.get_mut().recover();
        for (bucket, m) in update.manifests {
            checked.retain(bucket, &m);
            self.manifests.insert(bucket, m);
        }
    }

    /// Bytes of checked segments held (tests).
    #[cfg(test)]
    fn checked_bytes(&self) -> usize {
        self.checked.lock().unwrap().bytes
    }

    fn read_runs(&self, b: &dyn Backend, bucket: u32) -> Result<Vec<(u64, Value)>> {
        let Some(m) = self.manifests.get(&bucket) else {
            return Ok(Vec::new());
        };
        m.runs
            .iter()
            .map(|r| Ok((r.run, read_run(b, bucket, r.run)?)))
            .collect()
    }

    /// One user's events, in (timestamp, seq) order.
    pub fn history(&self, b: &dyn Backend, user: u32) -> Result<Vec<Event>> {
        let bucket = bucket_of(user);
        let mut out = Vec::new();
        let Some(m) = self.manifests.get(&bucket) else {
            return Ok(out);
        };
        for r in &m.runs {
            let what = seg_what(bucket, r.run);
            let key = (bucket, r.run);
            let held = self
                .checked
                .lock()
                .or_poisoned("checked segments")?
                .get(key);
            let v = match &held {
                Some(v) => v.clone(),
                None => read_run(b, bucket, r.run)?,
            };
            let seg: &ArchivedSegment = if held.is_some() {
                codec::access_checked_before(Tag::Segment, &v, &what)?
            } else {
                let seg = codec::access(Tag::Segment, &v, &what)?;
                if CheckedRuns::worth_holding(&v) {
                    self.checked
                        .lock()
                        .or_poisoned("checked segments")?
                        .insert(key, v.clone());
                }
                seg
            };
            push_events(seg, user, user + 1, u64::MAX, &what, &mut out)?;
        }
        out.sort_unstable_by_key(|e| (e.timestamp, e.seq));
        Ok(out)
    }

    /// Every event with seq below `watermark`, grouped by user and in (timestamp, seq)
    /// order within a user.
    pub fn snapshot(&self, b: &dyn Backend, watermark: u64) -> Result<Vec<Event>> {
        let buckets: Vec<u32> = self.manifests.keys().copied().collect();
        let parts: Vec<Result<Vec<Event>>> = buckets
            .par_iter()
            .map(|&bucket| {
                let mut evs = Vec::new();
                for (run, v) in self.read_runs(b, bucket)? {
                    let what = seg_what(bucket, run);
                    let seg: &ArchivedSegment = codec::access(Tag::Segment, &v, &what)?;
                    push_events(seg, 0, u32::MAX, watermark, &what, &mut evs)?;
                }
                if self.manifests[&bucket].runs.len() > 1 {
                    evs.sort_unstable_by_key(|e| (e.user, e.timestamp, e.seq));
                }
                Ok(evs)
            })
            .collect();
        let mut out = Vec::new();
        for p in parts {
            out.extend(p?);
        }
        Ok(out)
    }

    /// How many events with seq below `watermark` name `item`: one segment at a time,
    /// counted in place, so no event is decoded into memory.
    pub fn count_item(&self, b: &dyn Backend, item: u32, watermark: u64) -> Result<u64> {
        let mut n = 0u64;
        for (&bucket, m) in &self.manifests {
            for r in &m.runs {
                let what = seg_what(bucket, r.run);
                let v = read_run(b, bucket, r.run)?;
                let seg: &ArchivedSegment = codec::access(Tag::Segment, &v, &what)?;
                if seg.items.len() != seg.seqs.len() {
                    return Err(Error::corrupted(format!(
                        "{} (columns of different lengths)",
                        what()
                    )));
                }
                n += seg
                    .items
                    .iter()
                    .zip(seg.seqs.iter())
                    .filter(|(i, s)| i.to_native() == item && s.to_native() < watermark)
                    .count() as u64;
            }
        }
        Ok(n)
    }

    /// Read and validate every segment; returns the number of events.
    pub fn verify(&self, b: &dyn Backend) -> Result<u64> {
        let mut n = 0u64;
        for &bucket in self.manifests.keys() {
            for (run, v) in self.read_runs(b, bucket)? {
                let what = seg_what(bucket, run);
                let seg: &ArchivedSegment = codec::access(Tag::Segment, &v, &what)?;
                let mut evs = Vec::new();
                push_events(seg, 0, u32::MAX, u64::MAX, &what, &mut evs)?;
                if evs.iter().any(|e| bucket_of(e.user) != bucket) {
                    return Err(Error::corrupted(format!(
                        "{} (user outside its bucket)",
                        what()
                    )));
                }
                n += evs.len() as u64;
            }
        }
        Ok(n)
    }

    /// Segment keys that no manifest names (left by nothing today; checked for safety).
    pub fn orphans(&self, b: &dyn Backend) -> Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        for k in b.keys_with_prefix(b"L")? {
            let (Some(run), Some(bucket)) = (keys::be_u64(&k[1..]), keys::be_u32(&k[9..])) else {
                out.push(k.to_vec());
                continue;
            };
            let named = self
                .manifests
                .get(&bucket)
                .is_some_and(|m| m.runs.iter().any(|r| r.run == run));
            if !named {
                out.push(k.to_vec());
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::backend::MemBackend;

    fn ev(user: u32, item: u32, ts: i64, seq: u64) -> Event {
        Event {
            user,
            item,
            kind: EventKind::Rating,
            value: 4.0,
            timestamp: ts,
            group: u32::MAX,
            seq,
        }
    }

    fn commit_events(log: &mut Log, b: &MemBackend, evs: Vec<Event>, next_run: &mut u64) {
        let mut batch = WriteBatch::default();
        let up = log.plan_append(b, evs, next_run, &mut batch).unwrap();
        b.apply(batch).unwrap();
        log.install(up);
    }

    #[test]
    fn histories_and_snapshots_match_a_naive_model_through_merges() {
        let b = MemBackend::default();
        let mut log = Log::default();
        let mut next_run = 0;
        let mut all = Vec::new();
        let mut seq = 0;
        for commit in 0..40u32 {
            let mut evs = Vec::new();
            for j in 0..(1 + commit % 7) * 13 {
                let user = (j * 7 + commit * 3) % 150;
                evs.push(ev(
                    user,
                    j + commit,
                    ((j * 31 + commit * 17) % 50) as i64,
                    seq,
                ));
                seq += 1;
            }
            all.extend(evs.iter().copied());
            commit_events(&mut log, &b, evs, &mut next_run);
            assert!(log.manifests.values().all(|m| m.runs.len() < MAX_RUNS));
        }
        let reloaded = Log::load(&b).unwrap();
        assert_eq!(reloaded.manifests, log.manifests);
        assert!(log.orphans(&b).unwrap().is_empty());
        for user in 0..150 {
            let mut want: Vec<Event> = all.iter().filter(|e| e.user == user).copied().collect();
            want.sort_by_key(|e| (e.timestamp, e.seq));
            assert_eq!(reloaded.history(&b, user).unwrap(), want, "user {user}");
        }
        let wm = seq / 2;
        let mut want: Vec<Event> = all.iter().filter(|e| e.seq < wm).copied().collect();
        want.sort_by_key(|e| (e.user, e.timestamp, e.seq));
        assert_eq!(reloaded.snapshot(&b, wm).unwrap(), want);
        for item in [0, 5, 30, 1000] {
            let n = want.iter().filter(|e| e.item == item).count() as u64;
            assert_eq!(reloaded.count_item(&b, item, wm).unwrap(), n, "item {item}");
        }
        assert_eq!(reloaded.verify(&b).unwrap(), seq);
    }

    /// A heavy user's large segment is checksummed once and then served from the held
    /// buffer; histories stay those of a naive model across merges (which drop merged
    /// runs from the cache), and a corrupted segment is still caught on first read.
    #[test]
    fn large_segments_are_checked_once_and_leave_with_their_runs() {
        let b = MemBackend::default();
        let mut log = Log::default();
        let (mut next_run, mut seq) = (0, 0u64);
        let mut all = Vec::new();
        for commit in 0..(MAX_RUNS as u32 + 4) {
            let mut evs = Vec::new();
            // User 0 is heavy in the first commit (a segment well over CHECKED_MIN).
            let heavy = if commit == 0 { 20_000 } else { 5 };
            for j in 0..heavy {
                evs.push(ev(0, j, j as i64, seq));
                seq += 1;
            }
            for u in 1..64 {
                evs.push(ev(u, commit, commit as i64, seq));
                seq += 1;
            }
            all.extend(evs.iter().copied());
            commit_events(&mut log, &b, evs, &mut next_run);
            for u in [0u32, 1, 63] {
                let mut want: Vec<Event> = all.iter().filter(|e| e.user == u).copied().collect();
                want.sort_by_key(|e| (e.timestamp, e.seq));
                assert_eq!(
                    log.history(&b, u).unwrap(),
                    want,
                    "user {u}, commit {commit}"
                );
            }
            // Only segments listed by the manifest are held.
            let held = log.checked.lock().unwrap();
            assert!(held
                .runs
                .keys()
                .all(|k| log.manifests[&k.0].runs.iter().any(|r| r.run == k.1)));
            assert_eq!(
                held.bytes,
                held.runs.values().map(|v| v.len()).sum::<usize>()
            );
        }
        assert!(
            log.checked_bytes() >= CHECKED_MIN,
            "the heavy segment is held"
        );
        // A fresh reader checks a corrupted large segment on its first read.
        let big = log.manifests[&0]
            .runs
            .iter()
            .max_by_key(|r| r.events)
            .unwrap()
            .run;
        let mut v = b.get(&keys::segment(0, big)).unwrap().unwrap().to_vec();
        let mid = v.len() / 2;
        v[mid] ^= 1;
        let mut batch = WriteBatch::default();
        batch.put(keys::segment(0, big), v);
        b.apply(batch).unwrap();
        let fresh = Log::load(&b).unwrap();
        let err = fresh.history(&b, 1).unwrap_err();
        assert!(err.to_string().contains("checksum"), "{err}");
    }
}
