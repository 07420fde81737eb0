//! What an evaluation reports, and how it prints.

use std::collections::BTreeMap;

/// The outcome of an evaluation.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EvalReport {
    pub protocol: String,
    pub model: String,
    pub params: serde_json::Value,
    /// The reported figures (STRONG: the test users').
    pub metrics: BTreeMap<String, f64>,
    /// Test users (NEXT, STRONG) or test ratings (RATING) evaluated.
    pub users: u64,
    pub train_seconds: f64,
    /// The `popular` baseline on the same split (NEXT).
    pub baseline: Option<BTreeMap<String, f64>>,
    /// The data set's name and directory (or the database evaluated).
    pub data: String,
    /// STRONG: the validation users' figures, for choosing epochs or a regulariser (never
    /// the reported figure).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation: Option<BTreeMap<String, f64>>,
    /// STRONG: validation users evaluated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation_users: Option<u64>,
    /// `train_seconds` over the job's `epochs` (or ALS's `iterations`), when it has them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds_per_epoch: Option<f64>,
    /// STRONG's n: test users split off (and as many validation users).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heldout_users: Option<u64>,
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
        let valid = self.validation.as_ref();
        if let Some(v) = valid {
            writeln!(f, "{:>10}  {:>6}  {:>10}", "", "test", "validation")?;
            for (k, t) in &self.metrics {
                let v = v.get(k).copied().unwrap_or(f64::NAN);
                writeln!(f, "{k:>10}  {t:.4}  {v:>10.4}")?;
            }
        } else {
            for (k, v) in &self.metrics {
                writeln!(f, "{k:>10}  {v:.4}")?;
            }
        }
        if let Some(b) = &self.baseline {
            for (k, v) in b {
                writeln!(f, "{:>10}  {v:.4}  (popular)", k)?;
            }
        }
        match (self.validation_users, self.heldout_users) {
            (Some(v), Some(n)) => write!(
                f,
                "evaluated {} test and {v} validation users (of {n} held out each side)",
                self.users
            )?,
            _ => write!(f, "evaluated {}", self.users)?,
        }
        write!(f, "; training took {:.2} s", self.train_seconds)?;
        if let Some(s) = self.seconds_per_epoch {
            write!(f, " ({s:.3} s per epoch)")?;
        }
        Ok(())
    }
}
