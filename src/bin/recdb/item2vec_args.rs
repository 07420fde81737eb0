//! The `train item2vec` flags, mapped onto the job's `key=value` parameters.

use clap::Args;
use recdb::Params;

/// Flags of `train item2vec` (word2vec over item sequences; see docs/ITEM2VEC.md).
#[derive(Debug, Args, Default)]
pub struct Item2VecArgs {
    /// Sentences: history (a user's whole history), session or basket.
    #[arg(long, value_name = "history|session|basket")]
    pub mode: Option<String>,
    /// Skip-gram (the default).
    #[arg(long, conflicts_with = "cbow")]
    pub sg: bool,
    /// CBOW (mean of the context predicts the centre item).
    #[arg(long)]
    pub cbow: bool,
    #[arg(long)]
    pub dim: Option<usize>,
    #[arg(long)]
    pub window: Option<usize>,
    #[arg(long)]
    pub negative: Option<usize>,
    /// Subsampling threshold of frequent items (0 disables).
    #[arg(long)]
    pub sample: Option<f64>,
    #[arg(long)]
    pub min_count: Option<u64>,
    /// Negatives are drawn from count^this (may be negative).
    #[arg(long, allow_negative_numbers = true)]
    pub ns_exponent: Option<f64>,
    /// Session mode: a gap longer than this many seconds starts a new session.
    #[arg(long, value_name = "SECS")]
    pub session_gap: Option<i64>,
}

impl Item2VecArgs {
    /// Add the given flags to `p` (`--alpha`, `--epochs`, `--seed` are the common ones).
    pub fn apply(&self, p: &mut Params) {
        if let Some(v) = &self.mode {
            p.insert("mode", v);
        }
        if self.sg {
            p.insert("arch", "sg");
        }
        if self.cbow {
            p.insert("arch", "cbow");
        }
        let nums: [(&str, Option<String>); 7] = [
            ("dim", self.dim.map(|v| v.to_string())),
            ("window", self.window.map(|v| v.to_string())),
            ("negative", self.negative.map(|v| v.to_string())),
            ("sample", self.sample.map(|v| v.to_string())),
            ("min_count", self.min_count.map(|v| v.to_string())),
            ("ns_exponent", self.ns_exponent.map(|v| v.to_string())),
            ("session_gap", self.session_gap.map(|v| v.to_string())),
        ];
        for (k, v) in nums {
            if let Some(v) = v {
                p.insert(k, v);
            }
        }
    }
}
