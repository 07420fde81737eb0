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
use crate::train::nn::stored::{check_shape, column, count, output, Values};
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
    vec![
        output(model, "items", RowSpace::Items, d + 1, items),
        output(
            model,
            "enc",
            RowSpace::Items,
            net.first.n_out,
            net.first.w.clone(),
        ),
        output(model, "net", RowSpace::Other, 1, v),
    ]
}

/// Parse `.net` values as the fuzz target gives them: `.enc` shaped as the header says,
/// `.items` tried at each width the header's layers could end with, so the parse gets as
/// far as the weights. True when some width parses.
#[cfg(any(test, feature = "testkit"))]
pub(crate) fn fuzz_parse(v: &[f32]) -> bool {
    let at = |i: usize| v.get(i).and_then(|x| count(*x, "", "").ok()).unwrap_or(0);
    let (n_items, d1) = (at(4), at(5));
    let mut widths = vec![d1, d1 / 2];
    for j in 0..at(8).min(16) {
        let out = at(HEADER + 3 * j + 1);
        widths.extend([out, out / 2]);
    }
    widths.iter().any(|&d| {
        StoredNet::parse(
            v,
            "fuzz.net",
            ("fuzz.enc", n_items, d1),
            ("fuzz.items", n_items, d + 1),
        )
        .is_ok()
    })
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
        Self::parse(
            &column(net)?,
            net.name(),
            (enc.name(), enc.rows(), enc.dim()),
            (items.name(), items.rows(), items.dim()),
        )
    }

    /// [`StoredNet::read`] on the `.net` values, given the (name, rows, columns) of
    /// `.enc` and `.items`.
    fn parse(
        v: &[f32],
        name: &str,
        enc: (&str, usize, usize),
        items: (&str, usize, usize),
    ) -> Result<StoredNet> {
        let bad = |what: String| Error::corrupted(format!("table `{name}`: {what}"));
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
        check_shape(enc, (n_items, d1))?;
        check_shape(items, (n_items, d_last + 1))?;
        let mut values = Values::new(v, shapes_end);
        let mut take = |n: usize| values.take(n);
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    #[test]
    fn a_damaged_network_is_corrupted_never_a_panic() {
        for (kind, hidden) in [
            (Kind::Vae, &[6, 3][..]),
            (Kind::Dae, &[4, 2][..]),
            (Kind::Vae, &[3][..]),
        ] {
            let net = Net::new(kind, 7, hidden, &mut SmallRng::seed_from_u64(1));
            let t = to_tables("m", &net, 4.0);
            let (enc, items) = (("m.enc", 7, t[1].dim), ("m.items", 7, t[0].dim));
            let v = &t[2].rows;
            let ok = StoredNet::parse(v, "m.net", enc, items).unwrap();
            assert_eq!(ok.positive_min, 4.0);
            assert_eq!(ok.mid.len(), net.mid.len());
            assert_eq!(ok.mid.last().map(|l| &l.w), net.mid.last().map(|l| &l.w));
            let corrupted = |v: &[f32], enc, items| {
                matches!(
                    StoredNet::parse(v, "m.net", enc, items),
                    Err(Error::Corrupted { .. })
                )
            };
            for n in 0..v.len() {
                assert!(corrupted(&v[..n], enc, items), "{kind:?}: truncated to {n}");
            }
            let mut longer = v.clone();
            longer.push(0.0);
            assert!(corrupted(&longer, enc, items));
            for at in 0..HEADER + 3 * net.mid.len() {
                for bad in [-1.0, 0.5, 1e9, f32::NAN, 3.0] {
                    let mut w = v.clone();
                    if w[at] == bad || at == 3 {
                        continue;
                    }
                    w[at] = bad;
                    // Never a panic; a change of a value the header checks is an error
                    // unless it happens to describe another valid network.
                    let _ = StoredNet::parse(&w, "m.net", enc, items);
                }
            }
            assert!(corrupted(v, ("m.enc", 8, enc.2), items));
            assert!(corrupted(v, enc, ("m.items", 7, items.2 + 1)));
        }
    }

    #[test]
    fn the_fuzz_entry_parses_a_real_network() {
        for (kind, hidden) in [(Kind::Vae, &[6, 3][..]), (Kind::Dae, &[4][..])] {
            let net = Net::new(kind, 7, hidden, &mut SmallRng::seed_from_u64(2));
            let v = &to_tables("m", &net, 4.0)[2].rows;
            assert!(
                fuzz_parse(v),
                "{kind:?}: the fuzz entry must reach a full parse"
            );
            assert!(!fuzz_parse(&v[..v.len() - 1]));
        }
        // The fuzz target's seeds are whole networks too.
        for seed in [
            &include_bytes!("../../../fuzz/seeds/autoencoder_net/dae")[..],
            &include_bytes!("../../../fuzz/seeds/autoencoder_net/vae")[..],
        ] {
            let v: Vec<f32> = seed
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            assert!(fuzz_parse(&v));
        }
    }
}
