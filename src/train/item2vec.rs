//! item2vec / product2vec: word2vec (SGNS) over item sentences cut from the log.
//! Publishes `item2vec.items` (input vectors) and `item2vec.out` (output vectors), one
//! row per dense item id; items below `min_count` or absent from the log get zero rows.

use super::doc2vec::check_common;
use super::item_sentences::{self, SentenceMode};
use super::sgns::{self, Arch, Sentences, SgnsConfig};
use crate::jobs::memory;
use crate::jobs::JobContext;
use crate::jobs::TableOutput;
use crate::jobs::{Job, Snapshot};
use crate::storage::tables::RowSpace;
use crate::{Error, Params, Result};

pub(crate) const MODEL: &str = "item2vec";

/// Seconds between two events of one session (a year at most).
const SESSION_GAP: std::ops::RangeInclusive<i64> = 0..=365 * 24 * 3600;

pub(crate) struct Item2Vec {
    mode: SentenceMode,
    cfg: SgnsConfig,
    min_count: u64,
}

/// Defaults tuned on ML-100K NEXT (docs/ITEM2VEC.md).
fn defaults() -> SgnsConfig {
    SgnsConfig {
        arch: Arch::SkipGram,
        dim: 64,
        window: 3,
        negative: 10,
        epochs: 40,
        alpha: 0.025,
        min_alpha: 0.0001,
        sample: 1e-3,
        ns_exponent: 0.0,
        whole_window: false,
    }
}

impl Item2Vec {
    pub fn from_params(p: &Params) -> Result<Self> {
        let d = defaults();
        let gap: i64 = p.get("session_gap", 1800)?;
        if !SESSION_GAP.contains(&gap) {
            return Err(Error::param(
                "session_gap",
                format!(
                    "{gap} is outside {}..={}",
                    SESSION_GAP.start(),
                    SESSION_GAP.end()
                ),
            ));
        }
        let mode = SentenceMode::parse(&p.get::<String>("mode", "history".into())?, gap)?;
        let cfg = SgnsConfig::from_params(
            p,
            &SgnsConfig {
                whole_window: mode == SentenceMode::Basket,
                ..d
            },
        )?;
        let min_count: u64 = p.get("min_count", 1)?;
        check_common(&cfg, min_count)?;
        p.finish(MODEL)?;
        Ok(Item2Vec {
            mode,
            cfg,
            min_count,
        })
    }
}

/// Sentences over kept ids, dropping pruned tokens.
fn remap(s: &Sentences, map: &[Option<u32>]) -> Sentences {
    let mut out = Sentences::new();
    let mut buf = Vec::new();
    for i in 0..s.len() {
        buf.clear();
        buf.extend(s.get(i).iter().filter_map(|&t| map[t as usize]));
        if buf.len() >= 2 {
            out.push(&buf);
        }
    }
    out
}

impl Job for Item2Vec {
    fn model(&self) -> &str {
        MODEL
    }

    fn params_json(&self) -> String {
        let c = &self.cfg;
        let gap = match self.mode {
            SentenceMode::Session { gap } => Some(gap),
            _ => None,
        };
        serde_json::json!({
            "mode": self.mode.name(), "arch": if c.arch == Arch::Cbow { "cbow" } else { "sg" },
            "dim": c.dim, "window": c.window, "negative": c.negative, "epochs": c.epochs,
            "alpha": c.alpha, "min_alpha": c.min_alpha, "sample": c.sample,
            "ns_exponent": c.ns_exponent, "min_count": self.min_count, "session_gap": gap,
        })
        .to_string()
    }

    fn run(&self, snap: &Snapshot, ctx: &JobContext<'_>) -> Result<Vec<TableOutput>> {
        if snap.events.is_empty() {
            return Err(Error::NoEvents { what: "events" });
        }
        let raw = item_sentences::build(&snap.events, self.mode)?;
        let mut counts = vec![0u64; snap.n_items];
        for &t in &raw.tokens {
            counts[t as usize] += 1;
        }
        let (map, kept) = sgns::prune_vocab(&counts, self.min_count);
        let sentences = remap(&raw, &map);
        if sentences.total_tokens() == 0 {
            return Err(Error::Empty(format!(
                "no {} sentence of two or more items seen at least min_count={} times",
                self.mode.name(),
                self.min_count
            )));
        }
        // Training tables (kept items) and the published ones (every item), input + output.
        ctx.check_memory(
            "dim",
            2 * memory::bytes_of::<f32>(kept.len() + snap.n_items, self.cfg.dim),
        )?;
        let emb = sgns::train(&sentences, &kept, &self.cfg, ctx)?;
        let d = emb.dim;
        let mut input = memory::filled(snap.n_items * d, 0f32, "dim")?;
        let mut output = memory::filled(snap.n_items * d, 0f32, "dim")?;
        for (raw_id, k) in map.iter().enumerate() {
            if let Some(k) = k {
                let r = raw_id * d..(raw_id + 1) * d;
                input[r.clone()].copy_from_slice(emb.input_row(*k as usize));
                output[r].copy_from_slice(emb.output_row(*k as usize));
            }
        }
        let table = |name: &str, rows| TableOutput {
            name: format!("{MODEL}.{name}"),
            space: RowSpace::Items,
            dim: d,
            rows,
            offset: 0.0,
            row_ids: vec![],
        };
        Ok(vec![table("items", input), table("out", output)])
    }
}
