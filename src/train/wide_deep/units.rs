//! What a batch takes whole, and the loss over it (`loss=`):
//!
//! - `logistic` (the default): every example its own unit, each scored alone (its
//!   logistic loss): the output is a click probability;
//! - `list`: each positive and the negatives drawn for it (a builder writes them
//!   together, the positive first) one unit, a list the ranker picks the positive from:
//!   softmax cross-entropy over the list ([`list_softmax`]). Only how candidates for
//!   the same moment differ counts, as when re-ranking one user's candidates; the output
//!   is a score, not a calibrated probability.
//!
//! The validation tenth is chosen per unit (by its first example's pair), so a list is
//! never split between training and validation.

use super::examples::Example;
use super::is_validation;
use crate::train::nn::listwise::list_softmax;
use crate::train::nn::logistic::logistic;
use crate::{Error, Result};

/// The training loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Loss {
    Logistic,
    List,
}

impl Loss {
    pub fn parse(s: &str) -> Result<Loss> {
        match s {
            "logistic" => Ok(Loss::Logistic),
            "list" => Ok(Loss::List),
            _ => Err(Error::param(
                "loss",
                format!("`{s}`: expected logistic or list"),
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Loss::Logistic => "logistic",
            Loss::List => "list",
        }
    }

    /// The summed loss of a batch cut into units by `offsets`, its gradient in `grad`,
    /// and the weight it is averaged by (the examples' for `logistic`, the lists' for
    /// `list`).
    pub fn of(
        self,
        logits: &[f32],
        (labels, weights): (&[f32], &[f32]),
        offsets: &[u32],
        grad: &mut [f32],
    ) -> (f64, f64) {
        match self {
            Loss::Logistic => (
                logistic(logits, labels, Some(weights), grad),
                weights.iter().map(|&w| f64::from(w)).sum(),
            ),
            Loss::List => (
                list_softmax(logits, labels, weights, offsets, grad),
                // The lists that cost something: those with a positive.
                offsets
                    .windows(2)
                    .filter(|g| {
                        labels[g[0] as usize..g[1] as usize]
                            .iter()
                            .any(|&y| y > 0.0)
                    })
                    .map(|g| f64::from(weights[g[0] as usize]))
                    .sum(),
            ),
        }
    }
}

/// Examples in units: unit `u` is `ex[off[u]..off[u + 1]]`.
#[derive(Debug, Default)]
pub(crate) struct Units {
    pub ex: Vec<Example>,
    off: Vec<u32>,
}

impl Units {
    pub fn len(&self) -> usize {
        self.off.len().saturating_sub(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn unit(&self, u: usize) -> &[Example] {
        &self.ex[self.off[u] as usize..self.off[u + 1] as usize]
    }

    fn push(&mut self, unit: &[Example]) {
        if self.off.is_empty() {
            self.off.push(0);
        }
        self.ex.extend_from_slice(unit);
        // why: the examples fit in memory as u32-indexed batches (checked by Batches).
        #[allow(clippy::cast_possible_truncation)]
        self.off.push(self.ex.len() as u32);
    }
}

/// `all` cut into units as `loss` takes them, then into training and validation (the
/// validation tenth, when `validation`); a log too small for both trains on all. The
/// training units stay in `all`'s buffer (compacted in place), so the examples are held
/// once plus the validation tenth, not twice.
pub(crate) fn split(mut all: Vec<Example>, loss: Loss, validation: bool) -> Result<(Units, Units)> {
    if u32::try_from(all.len()).is_err() {
        return Err(Error::param(
            "negatives",
            format!("{} examples exceed 2³²", all.len()),
        ));
    }
    let mut valid = Units::default();
    let mut off = vec![0u32];
    // Training units are written at `kept` ≤ `start`: nothing unread is overwritten.
    let (mut start, mut kept) = (0, 0);
    while start < all.len() {
        let len = match loss {
            Loss::Logistic => 1,
            Loss::List => {
                1 + all[start + 1..]
                    .iter()
                    .take_while(|e| e.label != 1.0)
                    .count()
            }
        };
        let first = all[start];
        if validation && is_validation(first.user, first.item) {
            valid.push(&all[start..start + len]);
        } else {
            all.copy_within(start..start + len, kept);
            kept += len;
            // why: kept ≤ all.len(), checked to fit u32 above.
            #[allow(clippy::cast_possible_truncation)]
            off.push(kept as u32);
        }
        start += len;
    }
    all.truncate(kept);
    let train = Units { ex: all, off };
    if train.is_empty() {
        return Ok((valid, Units::default()));
    }
    Ok((train, valid))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(user: u32, item: u32, label: f32) -> Example {
        Example {
            user,
            item,
            label,
            weight: 1.0,
            score: 0.0,
            list: [0.0; 2],
            history: [0.0; 3],
            at: 0,
        }
    }

    #[test]
    fn lists_stay_whole_and_examples_keep_their_order() {
        let mut all = Vec::new();
        for u in 0..200u32 {
            all.push(ex(u, u % 7, 1.0));
            for j in 0..(u % 4) {
                all.push(ex(u, 100 + j, 0.0));
            }
        }
        let (t, v) = split(all.clone(), Loss::List, true).unwrap();
        assert_eq!(t.len() + v.len(), 200);
        assert!(!v.is_empty() && v.len() < 60, "{}", v.len());
        for set in [&t, &v] {
            for u in 0..set.len() {
                let unit = set.unit(u);
                assert_eq!(unit[0].label, 1.0);
                assert!(unit[1..]
                    .iter()
                    .all(|e| e.label == 0.0 && e.user == unit[0].user));
                assert_eq!(unit.len() as u32, 1 + unit[0].user % 4);
                assert_eq!(
                    is_validation(unit[0].user, unit[0].item),
                    std::ptr::eq(set, &v)
                );
            }
        }
        // Logistic: one example a unit, the validation tenth per example, order kept.
        let (t, v) = split(all.clone(), Loss::Logistic, true).unwrap();
        assert_eq!(t.len() + v.len(), all.len());
        let want: Vec<&Example> = all
            .iter()
            .filter(|e| !is_validation(e.user, e.item))
            .collect();
        let got: Vec<&Example> = (0..t.len()).map(|u| &t.unit(u)[0]).collect();
        assert_eq!(got, want);
        // Without validation, or too small for both: everything trains.
        let (t, v) = split(all.clone(), Loss::List, false).unwrap();
        assert_eq!((t.len(), v.len()), (200, 0));
        let tiny: Vec<Example> = all
            .iter()
            .copied()
            .filter(|e| is_validation(e.user, e.item))
            .collect();
        let (t, v) = split(tiny.clone(), Loss::Logistic, true).unwrap();
        assert_eq!((t.len(), v.len()), (tiny.len(), 0));
    }
}
