//! What a trained `wide-deep` model publishes: one table `<model>.ranker` (Other, one
//! column) holding the whole network as f32 values, self-describing:
//!
//! - a header: magic, format version, the parts (bits: wide 1, deep 2, fm 4), the
//!   embedding width, the number of fields, dense inputs, hidden layers, wide weights
//!   and their non-zero ones, input tables, the byte counts of the two encoders and of
//!   the wide spec, and the wide bucket count;
//! - each field's vocabulary, each hidden layer's width;
//! - per input table: users (1) or items (0), its width, its version (three 16-bit
//!   parts) and its name's byte count;
//! - the embeddings, each layer's weights and biases (the output layer last), the
//!   non-zero wide weights as (index, weight) pairs; for an ensemble (`ensemble=N`,
//!   format 3, the network count closing the header) the same for each further
//!   network, after its own non-zero wide count;
//! - the user encoder's bytes, the item encoder's, the wide spec's and the tables'
//!   names, one value per byte.
//!
//! Integers are exact (below 2²⁴). Reading checks every size against the header and
//! the encoders; a mismatch or damage is `Error::Corrupted`, never a panic.

// why: header integers are below 2^24 (checked when read) and f32 is the tables' type.
#![allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]

use super::deep::{Net, Shape};
use super::inputs::{HistoryInput, InputTable, Spec};
use super::wide::WideSpec;
use super::Parts;
use crate::features::Encoder;
use crate::jobs::TableOutput;
use crate::storage::tables::{RowSpace, TableView};
use crate::train::nn::dense::Dense;
use crate::train::nn::Activation;
use crate::{Error, Result};

/// "WD" in ASCII, then the format version: 2 adds the history length and the recent
/// count to the header, 3 (written only for an ensemble) the number of networks, each
/// after the first with its own non-zero wide count before its weights. Formats 1 and
/// 2 are still read (one network).
const MAGIC: f32 = 22_340.0;
const VERSION: f32 = 3.0;
/// The format of a single network, readable by the versions before ensembles.
const SINGLE: f32 = 2.0;

/// The suffix of the published table.
pub(crate) const SUFFIX: &str = "ranker";

/// The published table of a trained network.
pub(crate) fn to_table(model: &str, nets: &[Net], spec: &Spec) -> TableOutput {
    TableOutput {
        name: format!("{model}.{SUFFIX}"),
        space: RowSpace::Other,
        dim: 1,
        rows: to_values(nets, spec),
        offset: 0.0,
        row_ids: vec![],
    }
}

/// The networks (one, or an ensemble of one shape) and spec as the table's values.
pub(crate) fn to_values(nets: &[Net], spec: &Spec) -> Vec<f32> {
    let Some(net) = nets.first() else {
        return Vec::new();
    };
    let s = &net.shape;
    let ub = spec.user_enc.to_bytes();
    let ib = spec.item_enc.to_bytes();
    let wb = spec.wide.to_spec().into_bytes();
    let history = spec.history.as_ref().map(|h| &h.table);
    let tables: Vec<(&InputTable, u8)> = spec
        .tables
        .iter()
        .map(|t| (t, u8::from(t.users)))
        .chain(history.map(|t| (t, 2)))
        .collect();
    let names: Vec<u8> = tables.iter().flat_map(|(t, _)| t.name.bytes()).collect();
    // Each network's non-zero wide weights: the first's count is in the header.
    let nonzero: Vec<Vec<(usize, f32)>> = nets
        .iter()
        .map(|net| {
            net.wide
                .iter()
                .enumerate()
                .filter(|(_, w)| **w != 0.0)
                .map(|(k, w)| (k, *w))
                .collect()
        })
        .collect();
    let parts = u8::from(s.parts.wide) + 2 * u8::from(s.parts.deep) + 4 * u8::from(s.parts.fm);
    let mut v = vec![
        MAGIC,
        if nets.len() > 1 { VERSION } else { SINGLE },
        f32::from(parts),
        s.dim as f32,
        s.vocab.len() as f32,
        s.n_dense as f32,
        s.layers.len() as f32,
        s.wide_len as f32,
        nonzero[0].len() as f32,
        tables.len() as f32,
        ub.len() as f32,
        ib.len() as f32,
        wb.len() as f32,
        spec.wide.buckets as f32,
        spec.history.as_ref().map_or(0.0, |h| h.len as f32),
        spec.recent as f32,
    ];
    if nets.len() > 1 {
        v.push(nets.len() as f32);
    }
    v.extend(s.vocab.iter().map(|&n| n as f32));
    v.extend(s.layers.iter().map(|&n| n as f32));
    for (t, space) in &tables {
        v.push(f32::from(*space));
        v.push(t.dim as f32);
        for k in [32, 16, 0] {
            v.push(((t.version >> k) & 0xFFFF) as f32);
        }
        v.push(t.name.len() as f32);
    }
    for (m, (net, pairs)) in nets.iter().zip(&nonzero).enumerate() {
        if m > 0 {
            v.push(pairs.len() as f32);
        }
        for e in &net.emb {
            v.extend_from_slice(e);
        }
        for l in &net.layers {
            v.extend_from_slice(&l.w);
            v.extend_from_slice(&l.b);
        }
        for &(k, w) in pairs {
            v.push(k as f32);
            v.push(w);
        }
    }
    for b in [&ub, &ib, &wb, &names] {
        v.extend(b.iter().map(|&x| f32::from(x)));
    }
    v
}

/// Reads values in order, every read checked.
struct Cursor<'a> {
    v: &'a [f32],
    at: usize,
    name: &'a str,
}

impl Cursor<'_> {
    fn bad(&self, what: &str) -> Error {
        Error::corrupted(format!("table `{}`: {what}", self.name))
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&[f32]> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.v.len())
            .ok_or_else(|| self.bad(&format!("ends inside {what}")))?;
        let s = &self.v[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn count(&mut self, what: &str) -> Result<usize> {
        let x = self.take(1, what)?[0];
        if (0.0..16_777_216.0).contains(&x) && x.fract() == 0.0 {
            // why: an integer below 2^24, checked just above.
            #[allow(clippy::cast_sign_loss)]
            Ok(x as usize)
        } else {
            Err(self.bad(&format!("{what} is {x}")))
        }
    }

    fn bytes(&mut self, n: usize, what: &str) -> Result<Vec<u8>> {
        let s = self.take(n, what)?;
        s.iter()
            .map(|&x| {
                if (0.0..256.0).contains(&x) && x.fract() == 0.0 {
                    #[allow(clippy::cast_sign_loss)]
                    Ok(x as u8)
                } else {
                    Err(Error::corrupted(format!("{what}: byte {x}")))
                }
            })
            .collect()
    }
}

/// Read a `.ranker` table back: its networks (one, or an ensemble) and spec.
pub(crate) fn read(view: &TableView) -> Result<(Vec<Net>, Spec)> {
    if view.dim() != 1 {
        return Err(Error::corrupted(format!(
            "table `{}`: {} columns, not 1",
            view.name(),
            view.dim()
        )));
    }
    let v: Vec<f32> = (0..view.rows()).map(|r| view.row(r).get(0)).collect();
    parse(&v, view.name())
}

/// Parse the values of a `.ranker` table.
pub(crate) fn parse(v: &[f32], name: &str) -> Result<(Vec<Net>, Spec)> {
    let mut c = Cursor { v, at: 0, name };
    let head = c.take(2, "the header")?;
    if head[0] != MAGIC {
        return Err(c.bad("not a wide-deep network (magic)"));
    }
    let format = head[1];
    if ![1.0, SINGLE, VERSION].contains(&format) {
        return Err(Error::UnsupportedFormat {
            found: format!("wide-deep network format {format}"),
            supported: 3,
        });
    }
    let parts_bits = c.count("the parts")?;
    if parts_bits == 0 || parts_bits > 7 {
        return Err(c.bad("the parts"));
    }
    let parts = Parts {
        wide: parts_bits & 1 != 0,
        deep: parts_bits & 2 != 0,
        fm: parts_bits & 4 != 0,
    };
    let dim = c.count("dim")?;
    let n_fields = c.count("the field count")?;
    let n_dense = c.count("the dense width")?;
    let n_layers = c.count("the layer count")?;
    let wide_len = c.count("the wide length")?;
    let n_nonzero = c.count("the wide non-zero count")?;
    let n_tables = c.count("the table count")?;
    let (ub, ib, wb) = (
        c.count("the user encoder's size")?,
        c.count("the item encoder's size")?,
        c.count("the wide spec's size")?,
    );
    let buckets = c.count("the bucket count")?;
    let (history_len, recent) = if format == 1.0 {
        (0, 0)
    } else {
        (
            c.count("the history length")?,
            c.count("the recent items' count")?,
        )
    };
    if recent > 1000 {
        return Err(c.bad("the recent items' count"));
    }
    let members = if format == VERSION {
        c.count("the network count")?
    } else {
        1
    };
    if members == 0 || members > super::MAX_ENSEMBLE {
        return Err(c.bad("the network count"));
    }
    if dim == 0 || n_fields < 2 || n_layers > 8 || n_nonzero > wide_len || n_tables > 17 {
        return Err(c.bad("the header's sizes"));
    }
    if parts.wide != (wide_len > 0) || parts.deep != (n_layers > 0) {
        return Err(c.bad("the parts and sizes disagree"));
    }
    let vocab = (0..n_fields)
        .map(|_| c.count("a vocabulary"))
        .collect::<Result<Vec<_>>>()?;
    if vocab.contains(&0) {
        return Err(c.bad("an empty vocabulary"));
    }
    let layers = (0..n_layers)
        .map(|_| c.count("a layer width"))
        .collect::<Result<Vec<_>>>()?;
    if layers.contains(&0) {
        return Err(c.bad("a layer of width 0"));
    }
    let mut tables = Vec::with_capacity(n_tables);
    let mut name_lens = Vec::with_capacity(n_tables);
    let mut spaces = Vec::with_capacity(n_tables);
    for k in 0..n_tables {
        let space = c.count("a table's space")?;
        // The history table, only last, only with a history length.
        let last = k + 1 == n_tables;
        if space > 2 || (space == 2 && !(last && history_len > 0)) {
            return Err(c.bad("a table's space"));
        }
        spaces.push(space);
        let users = space == 1;
        let dim = c.count("a table's width")?;
        let mut version = 0u64;
        for _ in 0..3 {
            let part = c.count("a table's version")?;
            if part > 0xFFFF {
                return Err(c.bad("a table's version"));
            }
            version = (version << 16) | part as u64;
        }
        name_lens.push(c.count("a table's name")?);
        tables.push(InputTable {
            name: String::new(),
            users,
            dim,
            version,
        });
    }
    let shape = Shape {
        parts,
        dim,
        vocab,
        n_dense,
        layers,
        wide_len,
    };
    let mut nets = Vec::with_capacity(members);
    for m in 0..members {
        let n_nonzero = if m == 0 {
            n_nonzero
        } else {
            c.count("a network's wide non-zero count")?
        };
        if n_nonzero > wide_len {
            return Err(c.bad("the wide non-zero count"));
        }
        nets.push(weights(&mut c, &shape, n_nonzero)?);
    }
    let user_enc = Encoder::from_bytes(&c.bytes(ub, "the user encoder")?)?;
    let item_enc = Encoder::from_bytes(&c.bytes(ib, "the item encoder")?)?;
    let wide_s = String::from_utf8(c.bytes(wb, "the wide spec")?)
        .map_err(|_| c.bad("the wide spec is not UTF-8"))?;
    let wide_spec =
        WideSpec::parse(&wide_s, buckets).map_err(|e| c.bad(&format!("the wide spec: {e}")))?;
    for (t, n) in tables.iter_mut().zip(name_lens) {
        t.name = String::from_utf8(c.bytes(n, "a table's name")?)
            .map_err(|_| c.bad("a table's name is not UTF-8"))?;
    }
    if c.at != v.len() {
        return Err(c.bad("values after the end"));
    }
    let history = if spaces.last() == Some(&2) {
        tables.pop().map(|table| HistoryInput {
            table,
            len: history_len,
        })
    } else if history_len > 0 {
        return Err(c.bad("a history length without a history table"));
    } else {
        None
    };
    if history.as_ref().is_some_and(|h| h.len > 1000) {
        return Err(c.bad("the history length"));
    }
    let mut spec = Spec {
        user_enc,
        item_enc,
        wide: wide_spec,
        tables,
        list_inputs: false,
        history,
        recent,
    };
    // A ranker with the list inputs has them right after the score: the dense width
    // says which (no format change).
    spec.list_inputs = n_dense == spec.dims().n_dense + super::inputs::LIST_INPUTS;
    // The network must fit the spec it is stored with.
    let dims = spec.dims();
    let mut slot_vocab: Vec<usize> = spec
        .user_enc
        .slots()
        .iter()
        .chain(spec.item_enc.slots().iter())
        .map(|s| s.vocab)
        .collect();
    if recent > 0 {
        // The recent items' field has the item ids' rows.
        slot_vocab.push(shape.vocab[1]);
    }
    if dims.n_fields != n_fields || dims.n_dense != n_dense || slot_vocab[..] != shape.vocab[2..] {
        return Err(c.bad("the network does not fit its encoders"));
    }
    if parts.wide && wide_len != buckets + 1 {
        return Err(c.bad("the wide length does not fit the buckets"));
    }
    Ok((nets, spec))
}

/// One network's weights: the embeddings, the tower, the non-zero wide weights.
fn weights(c: &mut Cursor<'_>, shape: &Shape, n_nonzero: usize) -> Result<Net> {
    let (parts, dim, n_layers, wide_len) =
        (shape.parts, shape.dim, shape.layers.len(), shape.wide_len);
    let mut emb = Vec::new();
    if parts.embeds() {
        for &rows in &shape.vocab {
            let n = rows
                .checked_mul(dim)
                .ok_or_else(|| c.bad("an embedding's size"))?;
            emb.push(c.take(n, "the embeddings")?.to_vec());
        }
    }
    let mut dense = Vec::with_capacity(n_layers + 1);
    if parts.deep {
        let mut n_in = shape.input_width();
        for (k, &h) in shape.layers.iter().chain(std::iter::once(&1)).enumerate() {
            let n = n_in.checked_mul(h).ok_or_else(|| c.bad("a layer's size"))?;
            let w = c.take(n, "a layer's weights")?.to_vec();
            let b = c.take(h, "a layer's biases")?.to_vec();
            dense.push(Dense {
                n_in,
                n_out: h,
                w,
                b,
                act: if k == n_layers {
                    Activation::Identity
                } else {
                    Activation::Relu
                },
            });
            n_in = h;
        }
    }
    let mut wide = Vec::new();
    if parts.wide {
        // Checked against the remaining values before the allocation.
        let pairs = c.take(
            n_nonzero
                .checked_mul(2)
                .ok_or_else(|| c.bad("the wide weights"))?,
            "the wide weights",
        )?;
        let pairs = pairs.to_vec();
        wide = vec![0f32; wide_len];
        for p in pairs.chunks_exact(2) {
            let k = p[0];
            if !((0.0..wide_len as f32).contains(&k) && k.fract() == 0.0 && p[1].is_finite()) {
                return Err(c.bad("a wide weight's index"));
            }
            #[allow(clippy::cast_sign_loss)]
            {
                wide[k as usize] = p[1];
            }
        }
    }
    Ok(Net {
        shape: shape.clone(),
        wide,
        emb,
        layers: dense,
    })
}

/// Parse arbitrary values (the fuzz target): true when they parse.
#[cfg(any(test, feature = "testkit"))]
pub(crate) fn fuzz_parse(v: &[f32]) -> bool {
    parse(v, "fuzz.ranker").is_ok()
}
