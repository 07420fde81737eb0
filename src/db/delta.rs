//! Rows put or deleted after a table version was published, served on top of it.
//!
//! The index of a version is never edited in place: a delta holds the rows written
//! since publish (scanned exactly, merged with the index's answer) and hides the base
//! rows they replace or delete (filtered inside the index scan through its `allow`
//! filter). Each update writes one new segment of the version's delta (its own
//! operations) in one atomic put and swaps the served `Arc<Delta>`, so a query sees one
//! whole state. When the delta grows past the compaction threshold
//! (`jobs::policy::compact_threshold`), a `compact` job (`compact.rs`) folds it into a
//! new table version.

use crate::error::OrPoisoned;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::compact::CompactOptions;
use super::Db;
use crate::index::delta::{self as store, DeltaOp, StoredDelta};
use crate::index::{dot, Metric, TopK};
use crate::jobs::policy;
use crate::storage::backend::WriteBatch;
use crate::storage::tables::{RowSpace, TableView};
use crate::{Error, Result};

/// A row the delta holds: its values and norm (shared between successive states).
#[derive(Debug)]
struct DeltaRow {
    values: Vec<f32>,
    norm: f32,
}

/// The served state of a delta: its operations replayed. An update derives the next
/// state from this one by applying only its own operations; the maps share their rows
/// and ids (`Arc`), so that costs a copy of pointers, not of the rows.
#[derive(Debug, Clone)]
pub(crate) struct Delta {
    base_rows: usize,
    dim: usize,
    /// Sequence number of the next operation, operations applied, stored segments (the
    /// next update writes segment `segments`).
    next_seq: u64,
    ops: u64,
    segments: u32,
    /// Base rows not served from the base (deleted, replaced, or dead for good as
    /// tombstones carried over by a compaction), one bit a row: the filter of every
    /// base scan tests it, so it must cost a bit test, not a map lookup.
    hidden: Arc<Vec<u64>>,
    /// Rows written: `Some` put, `None` deleted.
    state: BTreeMap<u32, Option<Arc<DeltaRow>>>,
    logical: usize,
    /// External ids of rows appended to an `other` table (row → id, and id → row).
    appended: BTreeMap<u32, Arc<str>>,
    appended_rows: HashMap<Arc<str>, u32>,
}

impl Delta {
    /// The delta state of `base` with no operation yet.
    fn empty(base: &TableView) -> Delta {
        Delta {
            base_rows: base.rows(),
            dim: base.dim(),
            next_seq: 0,
            ops: 0,
            segments: 0,
            hidden: Arc::new(vec![0; base.rows().div_ceil(64)]),
            state: BTreeMap::new(),
            logical: base.rows(),
            appended: BTreeMap::new(),
            appended_rows: HashMap::new(),
        }
    }

    /// The state of a stored delta (merged from its `segments` segments).
    pub fn replay(base: &TableView, stored: StoredDelta, segments: u32) -> Result<Delta> {
        let t = &stored.tombstones;
        if t.windows(2).any(|w| w[0] >= w[1])
            || t.last().is_some_and(|&r| r as usize >= base.rows())
        {
            return Err(Self::bad(base, "tombstones".into()));
        }
        let mut empty = Delta::empty(base);
        let bits = Arc::make_mut(&mut empty.hidden);
        for &r in t {
            bits[r as usize / 64] |= 1 << (r % 64);
        }
        let mut d = empty.apply(base, &stored.ops)?;
        if d.next_seq > stored.next_seq {
            return Err(Self::bad(base, "operations past the sequence".into()));
        }
        d.next_seq = stored.next_seq;
        d.segments = segments;
        Ok(d)
    }

    fn bad(base: &TableView, why: String) -> Error {
        Error::corrupted(format!(
            "delta of table `{}` version {} ({why})",
            base.name(),
            base.version()
        ))
    }

    /// This state after `ops` (which must continue its sequence), written as one more
    /// segment.
    pub fn apply(&self, base: &TableView, ops: &[DeltaOp]) -> Result<Delta> {
        let mut d = self.clone();
        for op in ops {
            if op.seq < d.next_seq {
                return Err(Self::bad(
                    base,
                    format!("operation {} out of order", op.seq),
                ));
            }
            d.next_seq = op.seq + 1;
            if !op.values.is_empty() && op.values.len() != d.dim {
                return Err(Self::bad(
                    base,
                    format!("row {} has {} values", op.row, op.values.len()),
                ));
            }
            if op.values.iter().any(|x| !x.is_finite()) {
                return Err(Self::bad(base, format!("row {} is not finite", op.row)));
            }
            let row = (!op.values.is_empty()).then(|| {
                Arc::new(DeltaRow {
                    values: op.values.clone(),
                    norm: dot(&op.values, &op.values).sqrt(),
                })
            });
            d.state.insert(op.row, row);
            if (op.row as usize) < d.base_rows {
                Arc::make_mut(&mut d.hidden)[op.row as usize / 64] |= 1 << (op.row % 64);
            }
            d.logical = d.logical.max(op.row as usize + 1);
            if op.row as usize >= d.base_rows
                && base.space() == RowSpace::Other
                && !d.appended.contains_key(&op.row)
            {
                let id: Arc<str> = op.id.as_str().into();
                d.appended.insert(op.row, id.clone());
                d.appended_rows.insert(id, op.row);
            }
        }
        d.ops += ops.len() as u64;
        d.segments += 1;
        Ok(d)
    }

    pub fn ops(&self) -> u64 {
        self.ops
    }
    /// Sequence number of the next operation.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }
    pub fn logical_rows(&self) -> usize {
        self.logical
    }
    /// Base row `r` is not served from the base (deleted or replaced).
    pub fn hides(&self, r: u32) -> bool {
        (r as usize) < self.base_rows && self.hidden[r as usize / 64] >> (r % 64) & 1 == 1
    }
    /// Row `r` when the delta holds it.
    pub fn row(&self, r: u32) -> Option<&[f32]> {
        self.state.get(&r)?.as_deref().map(|x| &x.values[..])
    }
    pub fn appended_id(&self, r: u32) -> Option<&str> {
        self.appended.get(&r).map(|s| &**s)
    }
    /// The rows the delta holds with their values (to place them in an index's lists).
    pub fn put_rows(&self) -> Vec<(u32, Option<&[f32]>)> {
        self.state
            .iter()
            .filter_map(|(&r, v)| Some((r, Some(&v.as_ref()?.values[..]))))
            .collect()
    }
    /// Whether row `r` is served (held by the delta, or a base row neither hidden nor
    /// tombstoned).
    pub fn live(&self, r: u32) -> bool {
        self.row(r).is_some() || ((r as usize) < self.base_rows && !self.hides(r))
    }
    /// Exact top-k over the delta's rows.
    pub fn scan(
        &self,
        q: &[f32],
        metric: Metric,
        k: usize,
        allow: &dyn Fn(u32) -> bool,
    ) -> Vec<(u32, f32)> {
        let qn = dot(q, q).sqrt();
        let mut top = TopK::new(k);
        for (&r, row) in &self.state {
            let Some(row) = row else { continue };
            top.offer_scored(r, (dot(&row.values, q), row.norm, qn), metric, allow);
        }
        top.into_sorted()
    }
}

/// What an update did ([`Db::upsert_rows`], [`Db::delete_rows`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DeltaReport {
    pub table: String,
    /// The table version the delta belongs to.
    pub version: u64,
    /// Rows written (or deleted) by this call.
    pub rows: u64,
    /// Operations in the version's delta after this call.
    pub delta_ops: u64,
    /// A background `compact` job started by this call, if the delta grew past the
    /// threshold.
    pub compact_job: Option<u64>,
}

impl Db {
    /// The delta of a table version (`None`: nothing written since publish), cached.
    pub(crate) fn delta_of(&self, view: &TableView) -> Result<Option<Arc<Delta>>> {
        let mut cache = self.inner.deltas.lock().or_poisoned("delta cache")?;
        if let Some((v, d)) = cache.get(view.name()) {
            if *v == view.version() {
                return Ok(d.clone());
            }
        }
        let d = match store::load(self.backend(), view.name(), view.version())? {
            Some((s, segments)) => Some(Arc::new(Delta::replay(view, s, segments)?)),
            None => None,
        };
        if cache
            .get(view.name())
            .is_none_or(|(v, _)| *v < view.version())
        {
            cache.insert(view.name().to_owned(), (view.version(), d.clone()));
        }
        Ok(d)
    }

    /// Row of `id` in `view` + `delta`, or `None` for a new id of an `other` table.
    fn row_of(&self, view: &TableView, delta: Option<&Delta>, id: &str) -> Result<Option<u32>> {
        match view.space() {
            RowSpace::Items => self.item_id(id).map(Some),
            RowSpace::Users => self.user_id(id).map(Some),
            RowSpace::Other => Ok(view
                .row_of_id(id)
                .or_else(|| delta.and_then(|d| d.appended_rows.get(id).copied()))),
        }
    }

    /// Apply `ops` (id, values; empty values = delete) to the current version's delta in
    /// one atomic write. Durable on return.
    fn update_rows(&self, table: &str, ops: Vec<(String, Vec<f32>)>) -> Result<DeltaReport> {
        if ops.is_empty() {
            return Err(Error::Empty("no rows".into()));
        }
        let n = ops.len() as u64;
        let (report, due) = {
            let _w = self.lock_write();
            let view = self.table(table)?;
            let cur = self.delta_of(&view)?;
            for (id, v) in &ops {
                if !v.is_empty() && v.len() != view.dim() {
                    return Err(Error::DimensionMismatch {
                        expected: view.dim(),
                        got: v.len(),
                    });
                }
                if let Some(j) = v.iter().position(|x| !x.is_finite()) {
                    return Err(Error::InvalidInput(format!(
                        "row `{id}`: value {} is not finite",
                        j + 1
                    )));
                }
                if id.is_empty() {
                    return Err(Error::param("id", "empty id"));
                }
            }
            let next_seq = cur.as_ref().map_or(0, |d| d.next_seq);
            let mut seg = StoredDelta {
                next_seq,
                tombstones: Vec::new(),
                ops: Vec::new(),
            };
            let mut next_row = crate::error::to_u32(
                cur.as_ref().map_or(view.rows(), |d| d.logical),
                "table rows",
            )?;
            let mut new_ids: HashMap<String, u32> = HashMap::new();
            // Rows put (true) or deleted (false) earlier in this call.
            let mut written: HashMap<u32, bool> = HashMap::new();
            for (id, values) in ops {
                let known = match new_ids.get(&id) {
                    Some(&r) => Some(r),
                    None => self.row_of(&view, cur.as_deref(), &id)?,
                };
                let row = match known {
                    Some(r) => r,
                    None if values.is_empty() => {
                        return Err(Error::UnknownRow {
                            id: id.clone(),
                            table: table.to_owned(),
                        })
                    }
                    None => {
                        next_row += 1;
                        new_ids.insert(id.clone(), next_row - 1);
                        next_row - 1
                    }
                };
                if values.is_empty() {
                    let live_before = match (written.get(&row), &cur) {
                        (Some(&put), _) => put,
                        (None, Some(d)) => d.live(row),
                        (None, None) => (row as usize) < view.rows(),
                    };
                    if !live_before {
                        return Err(Error::InvalidInput(format!(
                            "row `{id}` of table `{table}` is already deleted or was never written"
                        )));
                    }
                }
                written.insert(row, !values.is_empty());
                seg.ops.push(DeltaOp {
                    seq: seg.next_seq,
                    row,
                    id,
                    values,
                });
                seg.next_seq += 1;
            }
            // The update writes only its own segment, and the served state applies only
            // its own operations.
            let segment = cur.as_ref().map_or(0, |d| d.segments);
            let mut batch = WriteBatch::default();
            store::put(&mut batch, table, view.version(), segment, &seg);
            let delta = Arc::new(match &cur {
                Some(d) => d.apply(&view, &seg.ops)?,
                None => Delta::empty(&view).apply(&view, &seg.ops)?,
            });
            self.backend().apply(batch)?;
            self.backend().flush()?;
            self.inner
                .deltas
                .lock()
                .or_poisoned("delta cache")?
                .insert(table.to_owned(), (view.version(), Some(delta.clone())));
            let ops: Vec<(u32, Option<&[f32]>)> = seg
                .ops
                .iter()
                .map(|o| (o.row, (!o.values.is_empty()).then_some(&o.values[..])))
                .collect();
            self.advance_tail(&view, cur.as_ref(), &delta, &ops);
            let due = policy::compact_due(delta.ops(), view.rows());
            (
                DeltaReport {
                    table: table.to_owned(),
                    version: view.version(),
                    rows: n,
                    delta_ops: delta.ops(),
                    compact_job: None,
                },
                due,
            )
        };
        let mut report = report;
        if due && !self.compaction_running(table) {
            let h = self.spawn_compact(table, &CompactOptions::default())?;
            report.compact_job = Some(h.id);
            self.keep_maintenance(h);
        }
        Ok(report)
    }

    /// Put rows (`id`, values) into `table`: an existing id's row is replaced, a new id
    /// is appended (`other` tables) or takes its dense id's row (users and items tables).
    /// The served index is not rebuilt: the rows go to the version's delta. Durable on
    /// return.
    pub fn upsert_rows(&self, table: &str, rows: &[(String, Vec<f32>)]) -> Result<DeltaReport> {
        if let Some((id, _)) = rows.iter().find(|(_, v)| v.is_empty()) {
            return Err(Error::param("values", format!("row `{id}` has no values")));
        }
        self.update_rows(table, rows.to_vec())
    }

    /// Delete the rows of `ids` from `table` (tombstones in the version's delta).
    /// Durable on return.
    pub fn delete_rows(&self, table: &str, ids: &[String]) -> Result<DeltaReport> {
        self.update_rows(table, ids.iter().map(|i| (i.clone(), vec![])).collect())
    }
}
