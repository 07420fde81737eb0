//! What an evaluation reports, and how it prints.

use std::collections::BTreeMap;

/// The outcome of an evaluation.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EvalReport {
    pub protocol: String,
    pub model: String,
    pub params: serde_json::Value,
    pub metrics: BTreeMap<String, f64>,
    /// Test users (NEXT) or test ratings (RATING) evaluated.
    pub users: u64,
    pub train_seconds: f64,
    /// The `popular` baseline on the same split (NEXT).
    pub baseline: Option<BTreeMap<String, f64>>,
    pub data: String,
}

impl std::fmt::Display for EvalReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "protocol {} on {}, model {}",
            self.protocol.to_uppercase(),
            self.data,
            self.model
        )?;
        writeln!(f, "params {}", self.params)?;
        for (k, v) in &self.metrics {
            writeln!(f, "{k:>10}  {v:.4}")?;
        }
        if let Some(b) = &self.baseline {
            for (k, v) in b {
                writeln!(f, "{:>10}  {v:.4}  (popular)", k)?;
            }
        }
        write!(
            f,
            "evaluated {}; training took {:.2} s",
            self.users, self.train_seconds
        )
    }
}
