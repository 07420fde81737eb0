//! What a trained autoencoder publishes, and reading it back for serving.
//!
//! - `<model>.items` (Items, D+1 columns): the decoder's last layer, item i's column of
//!   weights then its bias, so a score is [h, 1]·row: a maximum-inner-product search.
//! - `<model>.enc` (Items, d₁ columns): the first layer's weight row of each item.
//! - `<model>.net` (Other, one column): everything else the encoder needs, as f32
//!   values: a header (magic, version, kind, positive_min, item count, d₁, the first
//!   activation, the split layer, the middle layers' count and shapes), then the first
//!   layer's bias, then each middle layer's weights and bias. Integers are stored
//!   exactly (below 2²⁴). Reading checks every size against the header and the two
//!   other tables, and a mismatch is `Error::Corrupted`, never a panic.

use super::net::{Kind, Net};
use crate::jobs::TableOutput;
use crate::storage::tables::{RowSpace, TableView};
use crate::train::nn::dense::Dense;
use crate::train::nn::Activation;
use crate::{Error, Result};

/// "AE" in ASCII and a version: the first two values of every `.net` table.
const MAGIC: f32 = 16_709.0;
const VERSION: f32 = 1.0;
/// Values of the fixed header, before the middle layers' shapes.
const HEADER: usize = 9;

/// The encoder as served: everything but the first layer's weights (`.enc`) and the
/// last layer (`.items`).
#[derive(Debug, Clone)]
pub(crate) struct StoredNet {
    pub positive_min: f32,
    pub n_items: usize,
    pub first_b: Vec<f32>,
    pub first_act: Activation,
    pub split: Option<usize>,
    pub mid: Vec<Dense>,
}

/// The three tables of a trained network.
pub(crate) fn to_tables(model: &str, net: &Net, positive_min: f32) -> Vec<TableOutput> {
    let n_items = net.n_items();
    let d = net.last.n_in;
    let mut items = Vec::with_capacity(n_items * (d + 1));
    for i in 0..n_items {
        items.extend((0..d).map(|k| net.last.w[k * n_items + i]));
        items.push(net.last.b[i]);
    }
    let mut v = vec![
        MAGIC,
        VERSION,
        match net.kind {
            Kind::Dae => 0.0,
            Kind::Vae => 1.0,
        },
        positive_min,
        n_items as f32,
        net.first.n_out as f32,
        net.first_act.code() as f32,
        net.split.map_or(0.0, |s| (s + 1) as f32),
        net.mid.len() as f32,
    ];
    for l in &net.mid {
        v.extend([l.n_in as f32, l.n_out as f32, l.act.code() as f32]);
    }
    v.extend_from_slice(&net.first.b);
    for l in &net.mid {
        v.extend_from_slice(&l.w);
        v.extend_from_slice(&l.b);
    }
    let table = |suffix: &str, space, dim, rows| TableOutput {
        name: format!("{model}.{suffix}"),
        space,
        dim,
        rows,
        offset: 0.0,
        row_ids: vec![],
    };
    vec![
        table("items", RowSpace::Items, d + 1, items),
        table("enc", RowSpace::Items, net.first.n_out, net.first.w.clone()),
        table("net", RowSpace::Other, 1, v),
    ]
}

/// A header value that must be an exact count.
fn count(v: f32, what: &str, name: &str) -> Result<usize> {
    if (0.0..16_777_216.0).contains(&v) && v.fract() == 0.0 {
        // why: an integer below 2^24, checked just above.
        #[allow(clippy::cast_possible_truncation)]
        Ok(v as usize)
    } else {
        Err(Error::corrupted(format!("table `{name}`: {what} is {v}")))
    }
}

fn activation(v: f32, name: &str) -> Result<Activation> {
    let c = count(v, "an activation code", name)?;
    u32::try_from(c)
        .ok()
        .and_then(Activation::from_code)
        .ok_or_else(|| Error::corrupted(format!("table `{name}`: unknown activation {c}")))
}

impl StoredNet {
    /// Read `.net` and check it against `.enc` and `.items` (of the same publish).
    pub fn read(net: &TableView, enc: &TableView, items: &TableView) -> Result<StoredNet> {
        let name = net.name();
        let bad = |what: String| Error::corrupted(format!("table `{name}`: {what}"));
        if net.dim() != 1 {
            return Err(bad(format!("{} columns, not 1", net.dim())));
        }
        let v: Vec<f32> = (0..net.rows()).map(|r| net.row(r).get(0)).collect();
        if v.len() < HEADER || v[0] != MAGIC || v[1] != VERSION {
            return Err(bad("not an autoencoder network of this version".into()));
        }
        let kind = match count(v[2], "the kind", name)? {
            0 => Kind::Dae,
            1 => Kind::Vae,
            k => return Err(bad(format!("unknown kind {k}"))),
        };
        let positive_min = v[3];
        let n_items = count(v[4], "the item count", name)?;
        let d1 = count(v[5], "the first width", name)?;
        let first_act = activation(v[6], name)?;
        let split = match count(v[7], "the split layer", name)? {
            0 => None,
            s => Some(s - 1),
        };
        let n_mid = count(v[8], "the layer count", name)?;
        let shapes_end = HEADER + 3 * n_mid;
        if v.len() < shapes_end {
            return Err(bad("truncated layer shapes".into()));
        }
        let mut shapes = Vec::with_capacity(n_mid);
        let mut width = d1;
        for j in 0..n_mid {
            let s = &v[HEADER + 3 * j..HEADER + 3 * j + 3];
            let (n_in, n_out) = (count(s[0], "a width", name)?, count(s[1], "a width", name)?);
            let input = if split == Some(j) { width / 2 } else { width };
            if n_in != input || n_in == 0 || n_out == 0 {
                return Err(bad(format!(
                    "layer {} reads {n_in} values, not {input}",
                    j + 1
                )));
            }
            shapes.push((n_in, n_out, activation(s[2], name)?));
            width = n_out;
        }
        let d_last = if split == Some(n_mid) {
            width / 2
        } else {
            width
        };
        if split.is_some_and(|s| s > n_mid) || (kind == Kind::Vae) != split.is_some() {
            return Err(bad("the latent layer is not in the network".into()));
        }
        let want: usize = shapes_end + d1 + shapes.iter().map(|(i, o, _)| i * o + o).sum::<usize>();
        if v.len() != want {
            return Err(bad(format!("{} values, the header says {want}", v.len())));
        }
        if enc.rows() != n_items || enc.dim() != d1 {
            return Err(Error::corrupted(format!(
                "table `{}`: {} × {}, the network says {n_items} × {d1}",
                enc.name(),
                enc.rows(),
                enc.dim()
            )));
        }
        if items.rows() != n_items || items.dim() != d_last + 1 {
            return Err(Error::corrupted(format!(
                "table `{}`: {} × {}, the network says {n_items} × {}",
                items.name(),
                items.rows(),
                items.dim(),
                d_last + 1
            )));
        }
        let mut at = shapes_end;
        let mut take = |n: usize| {
            at += n;
            v[at - n..at].to_vec()
        };
        let first_b = take(d1);
        let mid = shapes
            .into_iter()
            .map(|(n_in, n_out, act)| Dense {
                n_in,
                n_out,
                w: take(n_in * n_out),
                b: take(n_out),
                act,
            })
            .collect();
        Ok(StoredNet {
            positive_min,
            n_items,
            first_b,
            first_act,
            split,
            mid,
        })
    }
}
