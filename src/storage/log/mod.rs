//! The interaction log, packed by user.
//!
//! Users are grouped in buckets of 64 consecutive ids. Each commit writes, for every
//! bucket it touches, one *run*: a columnar segment of that bucket's new events sorted
//! by (user, timestamp, seq). A bucket's manifest lists its runs; when a bucket has
//! [`MAX_RUNS`] runs, the small ones are merged (size-tiered), so a user's history is a
//! handful of gets and a binary search, and a full scan reads few large values.
//! Every event keeps its global sequence number, so a snapshot "up to a watermark" is a
//! filter, and the order in which events arrived is never lost.

mod checked;
mod record;
mod search;
mod segment;
#[cfg(test)]
mod tests;

use crate::error::OrPoisoned;
use std::collections::BTreeMap;
use std::sync::Mutex;

use rayon::prelude::*;

use self::checked::CheckedRuns;
pub(crate) use self::record::Record;
pub(crate) use self::search::SearchHeader;
#[cfg(any(test, feature = "testkit"))]
pub(crate) use self::search::SearchSegment;
#[cfg(any(test, feature = "testkit"))]
pub(crate) use self::segment::Segment;
pub(crate) use self::segment::{ArchivedSegment, Manifest, RunInfo};
use super::backend::{Backend, Value, WriteBatch};
use super::codec::{self, Tag};
use super::keys;
use crate::event::Event;
use crate::{Error, Result};

pub(crate) const BUCKET_SHIFT: u32 = 6;
pub(crate) const MAX_RUNS: usize = 16;

pub(crate) fn bucket_of(user: u32) -> u32 {
    user >> BUCKET_SHIFT
}

/// The stored value of one run (its absence is corruption: the manifest lists it).
fn read_run<R: Record>(b: &dyn Backend, bucket: u32, run: u64) -> Result<Value> {
    b.get(&keys::segment_in(R::SEGMENT, bucket, run))?
        .ok_or_else(|| Error::corrupted(format!("{} (missing)", seg_what::<R>(bucket, run)())))
}

fn seg_what<R: Record>(bucket: u32, run: u64) -> impl Fn() -> String {
    move || format!("{} (bucket {bucket}, run {run})", R::WHAT)
}

/// A bucket's new manifest and the writes (put or delete) that produce it.
type PlannedBucket = (u32, Manifest, Vec<(Vec<u8>, Option<Vec<u8>>)>);

/// The in-memory list of manifests, one per bucket that has records. `R` says what
/// the log holds: interactions ([`Event`], the default) or searches.
#[derive(Debug)]
pub(crate) struct Log<R: Record = Event> {
    manifests: BTreeMap<u32, Manifest>,
    checked: Mutex<CheckedRuns>,
    _records: std::marker::PhantomData<fn() -> R>,
}

impl<R: Record> Default for Log<R> {
    fn default() -> Self {
        Log {
            manifests: BTreeMap::new(),
            checked: Mutex::default(),
            _records: std::marker::PhantomData,
        }
    }
}

/// What a commit will change in the log, applied to [`Log`] once the batch is durable.
pub(crate) struct LogUpdate {
    manifests: Vec<(u32, Manifest)>,
}

impl<R: Record> Log<R> {
    pub fn load(b: &dyn Backend) -> Result<Log<R>> {
        let mut manifests = BTreeMap::new();
        for (k, v) in b.scan_prefix(&[R::MANIFEST])? {
            let bucket = keys::be_u32(&k[1..])
                .ok_or_else(|| Error::corrupted(format!("{} manifest key", R::WHAT)))?;
            let m: Manifest = codec::decode(Tag::Manifest, &v, &|| {
                format!("{} manifest (bucket {bucket})", R::WHAT)
            })?;
            manifests.insert(bucket, m);
        }
        Ok(Log {
            manifests,
            ..Log::default()
        })
    }

    pub fn runs(&self) -> usize {
        self.manifests.values().map(|m| m.runs.len()).sum()
    }

    /// Plan the writes for `events` (seq already assigned). Runs on `pool`.
    pub fn plan_append(
        &self,
        b: &dyn Backend,
        mut events: Vec<R>,
        next_run: &mut u64,
        batch: &mut WriteBatch,
    ) -> Result<LogUpdate> {
        // Scatter by bucket (one pass), then sort and encode each bucket in parallel:
        // small sorts that stay in cache instead of one big sort of the whole batch.
        let (lo, hi) = events.iter().fold((u32::MAX, 0), |(lo, hi), e| {
            (lo.min(bucket_of(e.user())), hi.max(bucket_of(e.user())))
        });
        let mut by_bucket: Vec<Vec<R>> = Vec::new();
        if !events.is_empty() {
            let mut counts = vec![0usize; (hi - lo) as usize + 1];
            for e in &events {
                counts[(bucket_of(e.user()) - lo) as usize] += 1;
            }
            by_bucket = counts.iter().map(|&c| Vec::with_capacity(c)).collect();
            for e in events.drain(..) {
                by_bucket[(bucket_of(e.user()) - lo) as usize].push(e);
            }
        }
        let groups: Vec<(u32, Vec<R>)> = by_bucket
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
                evs.sort_unstable_by_key(R::order);
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
                keys::manifest_in(R::MANIFEST, bucket),
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
        new: &[R],
        run: u64,
    ) -> Result<PlannedBucket> {
        let mut manifest = self.manifests.get(&bucket).cloned().unwrap_or_default();
        let mut writes = Vec::new();
        if manifest.runs.len() + 1 < MAX_RUNS {
            writes.push((
                keys::segment_in(R::SEGMENT, bucket, run),
                Some(R::encode_run(new)),
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
        let mut merged: Vec<R> = new.to_vec();
        for r in &manifest.runs[from..] {
            let what = seg_what::<R>(bucket, r.run);
            let v = read_run::<R>(b, bucket, r.run)?;
            R::decode_run(&v, false, 0, u32::MAX, u64::MAX, &what, &mut merged)?;
            writes.push((keys::segment_in(R::SEGMENT, bucket, r.run), None));
        }
        merged.sort_unstable_by_key(R::order);
        manifest.runs.truncate(from);
        writes.push((
            keys::segment_in(R::SEGMENT, bucket, run),
            Some(R::encode_run(&merged)),
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
            .map(|r| Ok((r.run, read_run::<R>(b, bucket, r.run)?)))
            .collect()
    }

    /// One user's events, in (timestamp, seq) order.
    pub fn history(&self, b: &dyn Backend, user: u32) -> Result<Vec<R>> {
        let bucket = bucket_of(user);
        let mut out = Vec::new();
        let Some(m) = self.manifests.get(&bucket) else {
            return Ok(out);
        };
        for r in &m.runs {
            let what = seg_what::<R>(bucket, r.run);
            let key = (bucket, r.run);
            let held = self
                .checked
                .lock()
                .or_poisoned("checked segments")?
                .get(key);
            let v = match &held {
                Some(v) => v.clone(),
                None => read_run::<R>(b, bucket, r.run)?,
            };
            R::decode_run(
                &v,
                held.is_some(),
                user,
                user + 1,
                u64::MAX,
                &what,
                &mut out,
            )?;
            if held.is_none() && CheckedRuns::worth_holding(&v) {
                self.checked
                    .lock()
                    .or_poisoned("checked segments")?
                    .insert(key, v.clone());
            }
        }
        out.sort_unstable_by_key(R::order);
        Ok(out)
    }

    /// Every event with seq below `watermark`, grouped by user and in (timestamp, seq)
    /// order within a user.
    pub fn snapshot(&self, b: &dyn Backend, watermark: u64) -> Result<Vec<R>> {
        let buckets: Vec<u32> = self.manifests.keys().copied().collect();
        let parts: Vec<Result<Vec<R>>> = buckets
            .par_iter()
            .map(|&bucket| {
                let mut evs = Vec::new();
                for (run, v) in self.read_runs(b, bucket)? {
                    let what = seg_what::<R>(bucket, run);
                    R::decode_run(&v, false, 0, u32::MAX, watermark, &what, &mut evs)?;
                }
                if self.manifests[&bucket].runs.len() > 1 {
                    evs.sort_unstable_by_key(R::order);
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

    /// Read and validate every segment; returns the number of records.
    pub fn verify(&self, b: &dyn Backend) -> Result<u64> {
        let mut n = 0u64;
        for &bucket in self.manifests.keys() {
            for (run, v) in self.read_runs(b, bucket)? {
                let what = seg_what::<R>(bucket, run);
                let mut evs = Vec::new();
                R::decode_run(&v, false, 0, u32::MAX, u64::MAX, &what, &mut evs)?;
                if evs.iter().any(|e| bucket_of(e.user()) != bucket) {
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
        for k in b.keys_with_prefix(&[R::SEGMENT])? {
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

impl Log<Event> {
    /// How many events with seq below `watermark` name `item`: one segment at a time,
    /// counted in place, so no event is decoded into memory.
    pub fn count_item(&self, b: &dyn Backend, item: u32, watermark: u64) -> Result<u64> {
        let mut n = 0u64;
        for (&bucket, m) in &self.manifests {
            for r in &m.runs {
                let what = seg_what::<Event>(bucket, r.run);
                let v = read_run::<Event>(b, bucket, r.run)?;
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
}
