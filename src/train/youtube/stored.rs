//! What a trained `youtube` model publishes, and reading it back for serving.
//!
//! - `<model>.items` (Items, D+1 columns): each item's output vector then its bias, so
//!   a score is `[u, 1]·row`: a maximum-inner-product search.
//! - `<model>.inputs` (Items, `dim` columns): the input item embeddings the history
//!   mean reads.
//! - `<model>.tower` (Other, one column): everything else, as f32 values: a header
//!   (magic, version, the sizes, the flags, the age scale as f64 halves, the encoder's
//!   byte count), the slots' vocabularies and the layers' widths, then the token
//!   embeddings, each slot's embeddings, the recency weights, each layer's weights and
//!   biases, and the fitted feature encoder's bytes (one per value). Integers are
//!   stored exactly (below 2²⁴). Reading checks every size against the header and the
//!   two other tables; a mismatch is `Error::Corrupted`, never a panic.

// why: header integers are below 2^24 (checked) and f32 is the tables' precision.
#![allow(clippy::cast_possible_truncation)]

use super::examples::AgeScale;
use super::net::{Net, Shape, Tower};
use super::ServeAge;
use crate::features::Encoder;
use crate::jobs::TableOutput;
use crate::storage::tables::{RowSpace, TableView};
use crate::train::nn::dense::Dense;
use crate::train::nn::stored::{check_shape, column, count, output, Values};
use crate::train::nn::Activation;
use crate::{Error, Result};

/// "YT" in ASCII and a version: the first two values of every `.tower` table.
const MAGIC: f32 = 22_868.0;
const VERSION: f32 = 1.0;
/// Values of the fixed header, before the slots' vocabularies and layers' widths.
const HEADER: usize = 19;

/// The three tables of a trained network.
pub(crate) fn to_tables(model: &str, net: &Net) -> Vec<TableOutput> {
    let t = &net.tower;
    let s = &t.shape;
    let d = s.out_dim();
    let mut items = Vec::with_capacity(s.n_items * (d + 1));
    for (row, b) in net.out.chunks(d.max(1)).zip(&net.out_b) {
        items.extend_from_slice(row);
        items.push(*b);
    }
    let bytes = t.encoder.to_bytes();
    let [end_hi, end_lo] = split(t.age.end);
    let [span_hi, span_lo] = split(t.age.span);
    let mut v = vec![
        MAGIC,
        VERSION,
        s.n_items as f32,
        s.n_tokens as f32,
        s.dim as f32,
        s.feature_dim as f32,
        s.slot_vocab.len() as f32,
        s.n_numeric as f32,
        f32::from(u8::from(s.age)),
        s.serve_age.code() as f32,
        s.history as f32,
        f32::from(u8::from(s.recency)),
        s.layers.len() as f32,
        end_hi,
        end_lo,
        span_hi,
        span_lo,
        bytes.len() as f32,
        s.last as f32,
    ];
    v.extend(s.slot_vocab.iter().map(|&n| n as f32));
    v.extend(s.layers.iter().map(|&n| n as f32));
    v.extend_from_slice(&t.tokens);
    for table in &t.slots {
        v.extend_from_slice(table);
    }
    v.extend_from_slice(&t.pos_w);
    for l in &t.layers {
        v.extend_from_slice(&l.w);
        v.extend_from_slice(&l.b);
    }
    v.extend(bytes.iter().map(|&b| f32::from(b)));
    vec![
        output(model, "items", RowSpace::Items, d + 1, items),
        output(model, "inputs", RowSpace::Items, s.dim, net.item_in.clone()),
        output(model, "tower", RowSpace::Other, 1, v),
    ]
}

/// An f64 as two f32s whose sum is it to about 2⁻⁴⁸ (timestamps do not fit one f32).
fn split(x: f64) -> [f32; 2] {
    let hi = x as f32;
    [hi, (x - f64::from(hi)) as f32]
}

/// Parse `.tower` values as the fuzz target gives them: the other tables shaped as the
/// header says. True when it parses.
#[cfg(any(test, feature = "testkit"))]
pub(crate) fn fuzz_parse(v: &[f32]) -> bool {
    let at = |i: usize| v.get(i).and_then(|x| count(*x, "", "").ok()).unwrap_or(0);
    let (n_items, dim, n_slots, n_layers) = (at(2), at(4), at(6), at(12));
    let d = if n_layers > 0 {
        at(HEADER + n_slots + n_layers - 1)
    } else {
        0
    };
    parse(
        v,
        "fuzz.tower",
        ("fuzz.inputs", n_items, dim),
        ("fuzz.items", n_items, d + 1),
    )
    .is_ok()
}

/// Read `.tower` and check it against `.inputs` and `.items` (of the same publish).
pub(crate) fn read(tower: &TableView, inputs: &TableView, items: &TableView) -> Result<Tower> {
    parse(
        &column(tower)?,
        tower.name(),
        (inputs.name(), inputs.rows(), inputs.dim()),
        (items.name(), items.rows(), items.dim()),
    )
}

/// [`read`] on the `.tower` values, given the (name, rows, columns) of `.inputs` and
/// `.items`.
pub(crate) fn parse(
    v: &[f32],
    name: &str,
    inputs: (&str, usize, usize),
    items: (&str, usize, usize),
) -> Result<Tower> {
    let bad = |what: String| Error::corrupted(format!("table `{name}`: {what}"));
    if v.len() < HEADER || v[0] != MAGIC || v[1] != VERSION {
        return Err(bad("not a youtube network of this version".into()));
    }
    let c = |i: usize, what: &str| count(v[i], what, name);
    let flag = |i: usize, what: &str| match c(i, what)? {
        0 => Ok(false),
        1 => Ok(true),
        f => Err(bad(format!("{what} is {f}"))),
    };
    let n_items = c(2, "the item count")?;
    let n_tokens = c(3, "the token count")?;
    let dim = c(4, "the input width")?;
    let feature_dim = c(5, "the feature width")?;
    let n_slots = c(6, "the slot count")?;
    let n_numeric = c(7, "the numeric width")?;
    let age = flag(8, "the age flag")?;
    let serve_age = u32::try_from(c(9, "the serving age")?)
        .ok()
        .and_then(ServeAge::from_code)
        .ok_or_else(|| bad("unknown serving age".into()))?;
    let history = c(10, "the history length")?;
    let recency = flag(11, "the recency flag")?;
    let n_layers = c(12, "the layer count")?;
    let end = f64::from(v[13]) + f64::from(v[14]);
    let span = f64::from(v[15]) + f64::from(v[16]);
    if !(end.is_finite() && span.is_finite() && span > 0.0) {
        return Err(bad(format!("age scale {end}, {span}")));
    }
    let n_bytes = c(17, "the encoder's size")?;
    let last = c(18, "the last items' count")?;
    if last > history {
        return Err(bad(format!("{last} last items of a history of {history}")));
    }
    let sizes_end = HEADER + n_slots + n_layers;
    if v.len() < sizes_end {
        return Err(bad("truncated sizes".into()));
    }
    let slot_vocab = (0..n_slots)
        .map(|j| c(HEADER + j, "a vocabulary"))
        .collect::<Result<Vec<_>>>()?;
    let widths = (0..n_layers)
        .map(|j| c(HEADER + n_slots + j, "a width"))
        .collect::<Result<Vec<_>>>()?;
    if dim == 0 || n_layers == 0 || widths.contains(&0) || history == 0 {
        return Err(bad("a zero size".into()));
    }
    let shape = Shape {
        n_items,
        n_tokens,
        dim,
        feature_dim,
        slot_vocab,
        n_numeric,
        age,
        serve_age,
        history,
        recency,
        last,
        layers: widths,
    };
    // Sizes summed in u128: no header can overflow them.
    let w = |a: usize, b: usize| a as u128 * b as u128;
    let mut want = sizes_end as u128 + w(n_tokens, dim) + n_bytes as u128;
    want += shape
        .slot_vocab
        .iter()
        .map(|&n| w(n, feature_dim))
        .sum::<u128>();
    if recency {
        want += history as u128;
    }
    let mut n_in = w(dim, 1 + last)
        + w(shape.search_width(), 1)
        + w(shape.slot_vocab.len(), feature_dim)
        + n_numeric as u128
        + if age { 3 } else { 0 };
    for &out in &shape.layers {
        want += n_in * out as u128 + out as u128;
        n_in = out as u128;
    }
    if v.len() as u128 != want {
        return Err(bad(format!("{} values, the header says {want}", v.len())));
    }
    let d = shape.out_dim();
    check_shape(inputs, (n_items, dim))?;
    check_shape(items, (n_items, d + 1))?;
    let mut values = Values::new(v, sizes_end);
    let mut take = |n: usize| values.take(n);
    let tokens = take(n_tokens * dim);
    let slots = shape
        .slot_vocab
        .iter()
        .map(|&n| take(n * feature_dim))
        .collect();
    let pos_w = take(if recency { history } else { 0 });
    let mut layers = Vec::with_capacity(n_layers);
    let mut n_in = shape.input_width();
    for &n_out in &shape.layers {
        layers.push(Dense {
            n_in,
            n_out,
            w: take(n_in * n_out),
            b: take(n_out),
            act: Activation::Relu,
        });
        n_in = n_out;
    }
    let bytes: Vec<u8> = take(n_bytes)
        .into_iter()
        .map(|x| {
            u8::try_from(count(x, "an encoder byte", name)?)
                .map_err(|_| bad("an encoder byte above 255".into()))
        })
        .collect::<Result<_>>()?;
    let encoder = Encoder::from_bytes(&bytes)?;
    if encoder.slots().iter().map(|s| s.vocab).collect::<Vec<_>>() != shape.slot_vocab
        || encoder.numeric_width() != n_numeric
    {
        return Err(bad("the feature encoder does not match the network".into()));
    }
    Ok(Tower {
        shape,
        tokens,
        slots,
        pos_w,
        layers,
        encoder,
        age: AgeScale { end, span },
    })
}
