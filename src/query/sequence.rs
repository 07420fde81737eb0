//! `recommend` for sequence models (item2vec): there is no user table, so the query is
//! built from the user's most recent items. See docs/ITEM2VEC.md for the choice.

use super::{check_k, in_genre, Queries, Source};
use crate::index::Metric;
use crate::{Error, Hit, QueryOptions, Result};

/// How a sequence model scores candidates for a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SequenceScoring {
    /// Recent items' input vectors · candidates' output vectors (`<model>.out`): what the
    /// model was trained to predict as a neighbour — the best next-item predictor.
    #[default]
    InputOutput,
    /// Cosine between recent items' input vectors and candidates' (`<model>.items`):
    /// "more like what I just looked at".
    InputInput,
}

/// The query of a sequence model: the last `last` items of the user's history, the most
/// recent weighted 1, the one before `decay`, then `decay²`, ...
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SequenceQuery {
    pub scoring: SequenceScoring,
    /// How many recent items make the query (at least 1).
    pub last: usize,
    /// Weight ratio between consecutive items, in (0, 1].
    pub decay: f32,
}

impl Default for SequenceQuery {
    /// Tuned on ML-100K NEXT (docs/ITEM2VEC.md).
    fn default() -> Self {
        SequenceQuery {
            scoring: SequenceScoring::InputOutput,
            last: 2,
            decay: 0.5,
        }
    }
}

impl SequenceQuery {
    fn validate(&self) -> Result<()> {
        if self.last == 0 {
            return Err(Error::param("last", "must be at least 1"));
        }
        if !(self.decay > 0.0 && self.decay <= 1.0) {
            return Err(Error::param("decay", "must be in (0, 1]"));
        }
        Ok(())
    }
}

fn unit(v: &[f32]) -> Option<Vec<f32>> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    (n > 0.0).then(|| v.iter().map(|x| x / n).collect())
}

/// Does `model` answer `recommend` from item sequences (it published `<model>.out`)?
pub(crate) fn is_sequence_model<S: Source + ?Sized>(db: &S, model: &str) -> bool {
    db.table(&format!("{model}.out")).is_ok() && db.table(&format!("{model}.users")).is_err()
}

/// `recommend` for a sequence model (one that published `<model>.items` and
/// `<model>.out`), with the query built and scored as `sq` says.
pub(crate) fn recommend_sequence<S: Queries + ?Sized>(
    db: &S,
    user: &str,
    opts: &QueryOptions,
    sq: &SequenceQuery,
) -> Result<Vec<Hit>> {
    check_k(opts.k)?;
    sq.validate()?;
    let uid = db.user_id(user)?;
    let model = &opts.model;
    let mut v = db.tables_consistent(&[&format!("{model}.items"), &format!("{model}.out")])?;
    let out = v.pop().expect("two tables");
    let input = v.pop().expect("two tables");
    let history = db.history_dense(uid)?;
    let mut seen = vec![false; input.rows()];
    if !opts.include_seen {
        for e in &history {
            if let Some(s) = seen.get_mut(e.item as usize) {
                *s = true;
            }
        }
    }
    let d = input.dim();
    let mut q = vec![0f32; d];
    let (mut w, mut used) = (1f32, 0usize);
    for e in history.iter().rev() {
        if used == sq.last {
            break;
        }
        if e.item as usize >= input.rows() {
            continue; // arrived after training
        }
        let Some(x) = unit(&input.row(e.item as usize).to_vec()) else {
            continue; // too rare for the model
        };
        for (a, b) in q.iter_mut().zip(&x) {
            *a += w * b;
        }
        w *= sq.decay;
        used += 1;
    }
    if used == 0 {
        return Err(Error::ZeroVector(format!(
            "user `{user}`: none of their items has a vector in `{model}` (too rare or unseen when it was trained)"
        )));
    }
    let (table, metric) = match sq.scoring {
        SequenceScoring::InputOutput => (&out, Metric::Dot),
        SequenceScoring::InputInput => (&input, Metric::Cosine),
    };
    let genre = db.allowed_genre(&opts.genre)?;
    let allow = |r: u32| !seen.get(r as usize).copied().unwrap_or(false) && in_genre(&genre, r);
    let served = db.served(table.clone())?;
    let hits = served.search(&q, metric, opts.k, opts.exact, None, &allow);
    db.to_hits(hits)
}
