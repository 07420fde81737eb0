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
use std::collections::HashMap;
use std::sync::Arc;

use super::compact::CompactOptions;
use super::Db;
use crate::index::delta::{self as store, DeltaOp, StoredDelta};
use crate::index::replay::Delta;
use crate::jobs::policy;
use crate::storage::backend::WriteBatch;
use crate::storage::tables::{RowSpace, TableView};
use crate::{Error, Result};

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
            match self.spawn_compact(table, &CompactOptions::default()) {
                Ok(h) => {
                    report.compact_job = Some(h.id);
                    self.keep_maintenance(h);
                }
                // At the job cap: the rows are durable; the compaction stays due and
                // starts with a later update.
                Err(Error::Busy { .. }) => {}
                Err(e) => return Err(e),
            }
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
