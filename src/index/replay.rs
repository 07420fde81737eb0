//! A table version's delta replayed: the rows it serves instead of (or beyond) the
//! version's stored rows, and the base rows it hides. Queries scan it next to the base
//! table; an update derives the next state from this one.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::delta::{DeltaOp, StoredDelta};
use super::{dot, Metric, TopK};
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
    pub(crate) next_seq: u64,
    ops: u64,
    pub(crate) segments: u32,
    /// Base rows not served from the base (deleted, replaced, or dead for good as
    /// tombstones carried over by a compaction), one bit a row: the filter of every
    /// base scan tests it, so it must cost a bit test, not a map lookup.
    hidden: Arc<Vec<u64>>,
    /// Rows written: `Some` put, `None` deleted.
    state: BTreeMap<u32, Option<Arc<DeltaRow>>>,
    pub(crate) logical: usize,
    /// External ids of rows appended to an `other` table (row → id, and id → row).
    appended: BTreeMap<u32, Arc<str>>,
    pub(crate) appended_rows: HashMap<Arc<str>, u32>,
}

impl Delta {
    /// The delta state of `base` with no operation yet.
    pub(crate) fn empty(base: &TableView) -> Delta {
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
