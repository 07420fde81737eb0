//! What one (user, item) pair becomes as model inputs, the same way in training and
//! serving: per embedded field the rows to average, the dense values, the wide buckets.
//!
//! Fields, in order: the user id, the item id, the user encoder's slots, the item
//! encoder's slots, and for a ranker trained with `recent=N` the user's latest `N`
//! items before the pair's moment (their rows averaged, as a genre slot's). Row 0 of the id fields is "unknown" (a user or item the network did
//! not train on); dense id `d` is row `d + 1`. Dense values: the user's numeric
//! attributes, the item's, every input table's row (zeros where the table has no row),
//! then the example's extra score (a candidate generator's; 0 when absent) and, for a
//! ranker trained with `list_inputs=on`, the candidate's place in its list: its score's
//! gap to the list's top score and ln(1 + its rank) (0 when absent), and for a ranker
//! trained with `history=TABLE`, how like the user's recent items the item is
//! ([`Recent`]).

use std::sync::Arc;

use super::examples::Example;
use super::wide::WideSpec;
use crate::features::{Encoded, Encoder};
use crate::storage::tables::TableView;

/// A published table read as a frozen feature.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct InputTable {
    pub name: String,
    /// A users table (looked up by the user), else an items table.
    pub users: bool,
    pub dim: usize,
    /// The version trained on: serving refuses another (its vectors live in another
    /// space).
    pub version: u64,
}

/// Everything that turns a pair into inputs; published with the network.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub user_enc: Encoder,
    pub item_enc: Encoder,
    pub wide: WideSpec,
    pub tables: Vec<InputTable>,
    /// The two list inputs follow the score.
    pub list_inputs: bool,
    /// The history inputs come last.
    pub history: Option<HistoryInput>,
    /// The user's latest this many items are the last field (0: no such field).
    pub recent: usize,
}

/// How many list inputs follow the score when a spec has them.
pub(crate) const LIST_INPUTS: usize = 2;

/// How many history inputs a spec with [`Spec::history`] ends with.
pub(crate) const HISTORY_INPUTS: usize = 3;

/// `history=TABLE`: an items table whose rows say how alike two items are (cosine), and
/// how many of the user's latest items the candidate is compared with.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HistoryInput {
    pub table: InputTable,
    pub len: usize,
}

/// The user's latest items (most recent first) as unit vectors of the history table,
/// for the history inputs of any number of candidates: the cosine of the candidate
/// with the latest item, the largest and the mean cosine with the latest `len`. An
/// item without a row (newer than the table, or of zero norm) is skipped; a candidate
/// without one, or a user without any, gets zeros.
pub(crate) struct Recent {
    dim: usize,
    /// `n × dim`, most recent first.
    unit: Vec<f32>,
}

impl Recent {
    /// `latest`: the user's items, most recent first; the first `len` with a row count.
    pub fn new(view: &TableView, latest: impl IntoIterator<Item = u32>, len: usize) -> Recent {
        let dim = view.dim();
        let mut unit = Vec::with_capacity(len.min(64) * dim);
        for item in latest {
            if unit.len() >= len * dim {
                break;
            }
            if let Some(u) = unit_row(view, item) {
                unit.extend_from_slice(&u);
            }
        }
        Recent { dim, unit }
    }

    /// The history inputs of `item`.
    // why: at most `len` (≤ 1000) cosines are averaged.
    #[allow(clippy::cast_precision_loss)]
    pub fn inputs(&self, view: &TableView, item: u32) -> [f32; HISTORY_INPUTS] {
        if self.unit.is_empty() || self.dim == 0 {
            return [0.0; HISTORY_INPUTS];
        }
        let r = item as usize;
        if r >= view.rows() {
            return [0.0; HISTORY_INPUTS];
        }
        let row = view.row(r);
        let norm = row.norm();
        if !(norm > 0.0 && norm.is_finite()) {
            return [0.0; HISTORY_INPUTS];
        }
        let mut first = None;
        let (mut max, mut sum, mut n) = (f32::NEG_INFINITY, 0.0f32, 0usize);
        // The stored row against each unit vector: no copy of the candidate's row.
        for u in self.unit.chunks_exact(self.dim) {
            let cos = row.dot(u) / norm;
            first.get_or_insert(cos);
            max = max.max(cos);
            sum += cos;
            n += 1;
        }
        [first.unwrap_or(0.0), max, sum / n as f32]
    }
}

/// `item`'s row of `view` scaled to unit length; `None` without a row or of zero norm.
fn unit_row(view: &TableView, item: u32) -> Option<Vec<f32>> {
    let r = item as usize;
    if r >= view.rows() {
        return None;
    }
    let row = view.row(r);
    let norm = row.norm();
    if !(norm > 0.0 && norm.is_finite()) {
        return None;
    }
    Some(row.iter().map(|x| x / norm).collect())
}

/// The layout of a batch row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dims {
    pub n_fields: usize,
    pub n_dense: usize,
}

/// One side (user or item) of a pair, encoded.
#[derive(Debug, Clone, Default)]
pub(crate) struct Side {
    pub id: Option<u32>,
    pub enc: Encoded,
    /// Wide keys per field of the wide spec.
    pub keys: Vec<Vec<u64>>,
}

impl Spec {
    pub fn dims(&self) -> Dims {
        Dims {
            n_fields: 2
                + self.user_enc.slots().len()
                + self.item_enc.slots().len()
                + usize::from(self.recent > 0),
            n_dense: self.user_enc.numeric_width()
                + self.item_enc.numeric_width()
                + self.tables.iter().map(|t| t.dim).sum::<usize>()
                + 1
                + if self.list_inputs { LIST_INPUTS } else { 0 }
                + if self.history.is_some() {
                    HISTORY_INPUTS
                } else {
                    0
                },
        }
    }

    pub fn user_side(&self, id: Option<u32>, attrs: &[(String, String)]) -> Side {
        Side {
            id,
            enc: self.user_enc.encode(attrs),
            keys: self.wide.keys("user", id, attrs),
        }
    }

    pub fn item_side(&self, id: Option<u32>, attrs: &[(String, String)]) -> Side {
        Side {
            id,
            enc: self.item_enc.encode(attrs),
            keys: self.wide.keys("item", id, attrs),
        }
    }
}

/// The input tables' current views, in the spec's order.
pub(crate) struct TableRows {
    users: Vec<bool>,
    views: Vec<Arc<TableView>>,
}

impl TableRows {
    pub fn new(tables: &[InputTable], views: Vec<Arc<TableView>>) -> TableRows {
        TableRows {
            users: tables.iter().map(|t| t.users).collect(),
            views,
        }
    }

    /// Append every table's row for the pair (zeros for an id without a row).
    fn push(&self, user: Option<u32>, item: Option<u32>, out: &mut Vec<f32>) {
        for (view, &by_user) in self.views.iter().zip(&self.users) {
            let id = if by_user { user } else { item };
            match id.filter(|&r| (r as usize) < view.rows()) {
                Some(r) => out.extend(view.row(r as usize).iter()),
                None => out.extend(std::iter::repeat_n(0.0, view.dim())),
            }
        }
    }
}

/// A batch of pairs, laid out for the network.
#[derive(Debug, Default, Clone)]
pub(crate) struct Batch {
    pub n: usize,
    /// Rows to average, per (pair, field): `ids[off[k]..off[k + 1]]` for k = pair ×
    /// fields + field. Id fields hold the embedding row (dense id + 1, or 0).
    pub ids: Vec<u32>,
    pub id_off: Vec<u32>,
    /// `n × n_dense` dense values.
    pub dense: Vec<f32>,
    /// Wide buckets per pair: `wide[wide_off[r]..wide_off[r + 1]]`.
    pub wide: Vec<u32>,
    pub wide_off: Vec<u32>,
    pub labels: Vec<f32>,
    pub weights: Vec<f32>,
}

// why: a batch holds at most 65,536 pairs of a few hundred ids each.
#[allow(clippy::cast_possible_truncation)]
impl Batch {
    pub fn clear(&mut self) {
        self.n = 0;
        self.ids.clear();
        self.id_off.clear();
        self.id_off.push(0);
        self.dense.clear();
        self.wide.clear();
        self.wide_off.clear();
        self.wide_off.push(0);
        self.labels.clear();
        self.weights.clear();
    }

    /// Append one pair: its sides, the tables' rows, the example's label, weight and
    /// extra score; `recent` the user's latest items (dense ids, most recent first; only
    /// the first `spec.recent` are read).
    pub fn push(
        &mut self,
        spec: &Spec,
        (user, item): (&Side, &Side),
        tables: &TableRows,
        e: &Example,
        recent: &[u32],
    ) {
        if self.id_off.is_empty() {
            self.clear();
        }
        let id_row = |id: Option<u32>| id.map_or(0, |d| d.saturating_add(1));
        self.ids.push(id_row(user.id));
        self.id_off.push(self.ids.len() as u32);
        self.ids.push(id_row(item.id));
        self.id_off.push(self.ids.len() as u32);
        for slot in user.enc.ids.iter().chain(&item.enc.ids) {
            self.ids.extend_from_slice(slot);
            self.id_off.push(self.ids.len() as u32);
        }
        if spec.recent > 0 {
            let n = recent.len().min(spec.recent);
            self.ids
                .extend(recent[..n].iter().map(|&i| id_row(Some(i))));
            self.id_off.push(self.ids.len() as u32);
        }
        self.dense.extend_from_slice(&user.enc.numeric);
        self.dense.extend_from_slice(&item.enc.numeric);
        tables.push(user.id, item.id, &mut self.dense);
        self.dense.push(e.score);
        if spec.list_inputs {
            self.dense.extend_from_slice(&e.list);
        }
        if spec.history.is_some() {
            self.dense.extend_from_slice(&e.history);
        }
        spec.wide.buckets_of(&user.keys, &item.keys, &mut self.wide);
        self.wide_off.push(self.wide.len() as u32);
        self.labels.push(e.label);
        self.weights.push(e.weight);
        self.n += 1;
    }

    /// The rows of field `f` of pair `r`.
    pub fn field(&self, n_fields: usize, r: usize, f: usize) -> &[u32] {
        let k = r * n_fields + f;
        &self.ids[self.id_off[k] as usize..self.id_off[k + 1] as usize]
    }

    pub fn buckets(&self, r: usize) -> &[u32] {
        &self.wide[self.wide_off[r] as usize..self.wide_off[r + 1] as usize]
    }
}
