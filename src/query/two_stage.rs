//! Two-stage `recommend`: the retrieval model (`QueryOptions::model`) proposes `n`
//! candidates through its index, with the user's seen items and the genre filter
//! already applied there; the ranker (`QueryOptions::rank`) re-scores those `n` in one
//! batch; the top `k` by the ranker's score are the answer, each with that score.
//!
//! A ranker is any trained model that scores a (user, item) pair: a factor model
//! (`<model>.users` · `<model>.items` + offset, as `predict`) or `wide-deep`, which
//! also reads each candidate's retrieval score as a feature. See docs/TWO_STAGE.md.

use super::{check_k, Queries};
use crate::index::served::Served;
use crate::{Error, Hit, QueryOptions, Result};

/// How many candidates the retrieval model proposes when the options name a ranker
/// but no count: the hundreds a ranking network is meant to score.
pub const DEFAULT_CANDIDATES: usize = 200;
/// The most candidates one call may ask for: the ranker scores all of them per user,
/// and a ranker that has to see the whole catalogue is not a second stage.
pub const MAX_CANDIDATES: usize = 10_000;

/// The candidate count `opts` asks for, checked against `k` and the bound.
pub(crate) fn candidate_count(opts: &QueryOptions) -> Result<usize> {
    let n = opts.candidates.unwrap_or(DEFAULT_CANDIDATES);
    if n < opts.k {
        return Err(Error::param(
            "candidates",
            format!(
                "{n} candidates cannot fill the {} results asked for (k)",
                opts.k
            ),
        ));
    }
    if n > MAX_CANDIDATES {
        return Err(Error::param(
            "candidates",
            format!("{n} is more than the {MAX_CANDIDATES} a ranker scores per user"),
        ));
    }
    Ok(n)
}

/// A loaded ranker, read once per call.
enum Ranker {
    /// A factor model's served user and item tables.
    Factors(Served, Served),
    /// A `wide-deep` ranker, and whether it reads the candidate scores (it was trained
    /// on this retrieval model's: `labels=next`).
    WideDeep(String, bool),
}

impl Ranker {
    fn load<S: Queries + ?Sized>(db: &S, model: &str, retrieval: &str) -> Result<Ranker> {
        if super::wide_deep::is_wide_deep(db, model) {
            // The scores mean something only on the scale the ranker learned them.
            let reads = match db.table(&format!("{model}.candidates")) {
                Ok(t) => match t.row_ids().first().map(String::as_str) {
                    None | Some("-") => false,
                    Some(m) if m == retrieval => true,
                    Some(m) => {
                        return Err(Error::param(
                            "rank",
                            format!(
                                "`{model}` learned from `{m}`'s candidates, not `{retrieval}`'s: re-rank `{m}`, or retrain `{model}` with candidates={retrieval}"
                            ),
                        ))
                    }
                },
                Err(_) => false,
            };
            return Ok(Ranker::WideDeep(model.to_owned(), reads));
        }
        let (users, items) = db.factor_tables(model).map_err(|e| {
            Error::param(
                "rank",
                format!(
                    "ranker `{model}` is not a trained model that scores (user, item) pairs ({e})"
                ),
            )
        })?;
        Ok(Ranker::Factors(users, items))
    }

    /// The scores of `items` (dense ids) for `user`; `candidate_scores` are the
    /// retrieval model's scores of the same items, in order.
    fn score<S: Queries + ?Sized>(
        &self,
        db: &S,
        (user, model): (&str, &str),
        items: &[u32],
        candidate_scores: &[f32],
    ) -> Result<Vec<f32>> {
        match self {
            Ranker::WideDeep(m, reads) => {
                let uid = db.user_id(user)?;
                super::wide_deep::score(db, m, uid, items, reads.then_some(candidate_scores))
            }
            Ranker::Factors(users, table) => {
                let (_, q) = db.user_vector(users, user, model)?;
                let offset = table.view().offset();
                Ok(items
                    .iter()
                    .map(|&i| {
                        // An item newer than the ranker, or deleted from its table, has
                        // no score there: it ranks last rather than failing the call.
                        table.row(i as usize).map_or(f32::NEG_INFINITY, |r| {
                            r.iter().zip(&q).map(|(a, b)| a * b).sum::<f32>() + offset
                        })
                    })
                    .collect())
            }
        }
    }
}

/// The ranker's top `k` of `hits` (the candidates, best first by retrieval; dense
/// ids), ties kept in retrieval order; each with the ranker's score.
fn rerank(hits: &[(u32, f32)], scores: &[f32], k: usize) -> Vec<(u32, f32)> {
    let mut order: Vec<usize> = (0..hits.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    order.truncate(k);
    order.into_iter().map(|j| (hits[j].0, scores[j])).collect()
}

/// Two-stage `recommend` for each of `users` (answers in order): the candidates of all
/// users come from one batch of the retrieval model, as dense ids (only the `k` items
/// returned are named), the ranker is read once. `opts.rank` names the ranker.
pub(crate) fn recommend_batch<S: Queries + ?Sized>(
    db: &S,
    users: &[&str],
    opts: &QueryOptions,
) -> Result<Vec<Vec<Hit>>> {
    check_k(opts.k)?;
    let Some(rank) = opts.rank.as_deref() else {
        return Err(Error::param("rank", "two-stage recommend needs a ranker"));
    };
    let n = candidate_count(opts)?;
    let ranker = Ranker::load(db, rank, &opts.model)?;
    let retrieve = QueryOptions {
        k: n,
        rank: None,
        candidates: None,
        ..opts.clone()
    };
    let lists = db.candidates_dense(users, &retrieve)?;
    let mut out = Vec::with_capacity(users.len());
    for (user, hits) in users.iter().zip(lists) {
        let items: Vec<u32> = hits.iter().map(|h| h.0).collect();
        let retrieval: Vec<f32> = hits.iter().map(|h| h.1).collect();
        let scores = ranker.score(db, (user, rank), &items, &retrieval)?;
        out.push(db.to_hits(rerank(&hits, &scores, opts.k))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rerank_orders_by_ranker_keeping_ties_in_retrieval_order() {
        let hits = [(10, 3.0), (11, 2.0), (12, 1.0), (13, 0.0)];
        let got = rerank(&hits, &[0.5, 0.9, 0.5, f32::NEG_INFINITY], 3);
        assert_eq!(got, [(11, 0.9), (10, 0.5), (12, 0.5)]);
    }

    #[test]
    fn candidate_count_is_bounded() {
        let o = QueryOptions::model("m").k(10);
        assert_eq!(candidate_count(&o).unwrap(), DEFAULT_CANDIDATES);
        assert!(candidate_count(&o.clone().candidates(5)).is_err());
        assert!(candidate_count(&o.clone().candidates(MAX_CANDIDATES + 1)).is_err());
        assert_eq!(candidate_count(&o.candidates(10)).unwrap(), 10);
    }
}
