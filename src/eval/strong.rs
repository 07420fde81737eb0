//! The STRONG protocol (strong generalisation, Liang et al. 2018): whole users are held
//! out, training never sees them, and each is scored from part of its history after
//! training. The split is a 64-bit hash of the data set's own ids, not an RNG, so any
//! implementation in any language reproduces it line for line (docs/EVALUATION.md).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use super::metrics::{strong_user_metrics, EvalEvent, StrongMetrics};
use super::{train_db, train_options, Catalog, EvalOptions, Outcome};
use crate::{
    Db, Error, Metric, ProgressSink, QueryOptions, RawEvent, Result, SearchOptions, TableSearcher,
};

/// Ratings at or above this are positives.
pub(crate) const POSITIVE: f32 = 4.0;
/// Fewest positives of an eligible user, and fewest in-set positives of a scored user.
pub(crate) const MIN_POSITIVES: usize = 5;
/// Items ranked per held-out user: the deepest cut-off (NDCG@100).
pub(crate) const RANKED: usize = 100;

/// The splitmix64 finaliser of `x + 0x9E3779B97F4A7C15` (wrapping): the protocol's hash.
pub(crate) fn mix64(x: u64) -> u64 {
    crate::storage::id_hash::splitmix64(x)
}

/// Where a positive goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    Train,
    ValidIn,
    ValidOut,
    TestIn,
    TestOut,
    /// A validation or test user's positive on an item outside the item set.
    Drop,
}

impl Part {
    /// The name the shared split files use.
    #[cfg(test)]
    pub fn as_str(self) -> &'static str {
        match self {
            Part::Train => "train",
            Part::ValidIn => "valid_in",
            Part::ValidOut => "valid_out",
            Part::TestIn => "test_in",
            Part::TestOut => "test_out",
            Part::Drop => "drop",
        }
    }
}

/// The split: one line per positive of an eligible user, sorted by (user, item).
#[derive(Debug, Clone)]
pub(crate) struct StrongSplit {
    pub lines: Vec<(u32, u32, Part)>,
    /// Held-out users on each side (the protocol's n).
    pub n: usize,
    pub eligible: usize,
}

/// The default n: 100 per thousand eligible users, rounded, at least 100 (600 on ML-1M's
/// 6,034 eligible users, 100 on ML-100K's 938).
pub(crate) fn default_heldout(eligible: usize) -> usize {
    100 * ((eligible + 500) / 1000).max(1)
}

/// Split `events` (user id, item id, rating) as STRONG says, with `n` held-out users on
/// each side (`None`: [`default_heldout`]).
pub(crate) fn strong_split(events: &[(u32, u32, f32)], n: Option<usize>) -> Result<StrongSplit> {
    // 1. Positives, a duplicate (user, item) once.
    let mut pos: Vec<(u32, u32)> = events
        .iter()
        .filter(|e| e.2 >= POSITIVE)
        .map(|e| (e.0, e.1))
        .collect();
    pos.sort_unstable();
    pos.dedup();
    // Each user's stretch of `pos`.
    let mut ranges: Vec<(u32, std::ops::Range<usize>)> = Vec::new();
    let mut start = 0;
    for k in 1..=pos.len() {
        if k == pos.len() || pos[k].0 != pos[start].0 {
            ranges.push((pos[start].0, start..k));
            start = k;
        }
    }
    // 2. Eligible users; 3. in hash order.
    let mut eligible: Vec<u32> = ranges
        .iter()
        .filter(|(_, r)| r.len() >= MIN_POSITIVES)
        .map(|(u, _)| *u)
        .collect();
    eligible.sort_unstable_by_key(|&u| (mix64(u64::from(u)), u));
    let n = n.unwrap_or_else(|| default_heldout(eligible.len()));
    if n == 0 || 2 * n >= eligible.len() {
        return Err(Error::param(
            "heldout_users",
            format!(
                "{n} test and {n} validation users leave no train users among {} eligible users \
                 (users with at least {MIN_POSITIVES} ratings >= {POSITIVE})",
                eligible.len()
            ),
        ));
    }
    // 0: test, 1: validation; train users are absent.
    let role: HashMap<u32, u8> = eligible[..2 * n]
        .iter()
        .enumerate()
        .map(|(k, &u)| (u, u8::from(k >= n)))
        .collect();
    // 4. Items with a positive from a train user.
    let item_set: HashSet<u32> = ranges
        .iter()
        .filter(|(u, r)| r.len() >= MIN_POSITIVES && !role.contains_key(u))
        .flat_map(|(_, r)| pos[r.clone()].iter().map(|p| p.1))
        .collect();
    // 5. Fold-in and held-out items of the held-out users.
    let mut lines = Vec::with_capacity(pos.len());
    for (u, r) in &ranges {
        if r.len() < MIN_POSITIVES {
            continue;
        }
        let Some(&side) = role.get(u) else {
            lines.extend(pos[r.clone()].iter().map(|&(u, i)| (u, i, Part::Train)));
            continue;
        };
        let (fold, out) = if side == 0 {
            (Part::TestIn, Part::TestOut)
        } else {
            (Part::ValidIn, Part::ValidOut)
        };
        let mut kept: Vec<u32> = Vec::with_capacity(r.len());
        for &(_, i) in &pos[r.clone()] {
            if item_set.contains(&i) {
                kept.push(i);
            } else {
                lines.push((*u, i, Part::Drop));
            }
        }
        let m = kept.len();
        let h = if m < MIN_POSITIVES { 0 } else { m / 5 };
        kept.sort_unstable_by_key(|&i| (mix64((u64::from(*u) << 32) | u64::from(i)), i));
        for (k, &i) in kept.iter().enumerate() {
            lines.push((*u, i, if k < h { out } else { fold }));
        }
    }
    lines.sort_unstable_by_key(|&(u, i, _)| (u, i));
    Ok(StrongSplit {
        lines,
        n,
        eligible: eligible.len(),
    })
}

/// Run STRONG: train on the train users' positives in a fresh database, log the held-out
/// users' fold-in positives after training, `recommend` 100 items to every scored user.
pub(super) fn run(
    opts: &EvalOptions,
    heldout_users: Option<usize>,
    keyed: &[(EvalEvent, &RawEvent)],
    sink: &dyn ProgressSink,
) -> Result<Outcome> {
    let triples: Vec<(u32, u32, f32)> = keyed.iter().map(|(k, _)| (k.0, k.1, k.2)).collect();
    let split = strong_split(&triples, heldout_users)?;
    sink.report(
        0.0,
        &format!(
            "split: {} test and {} validation users of {} eligible",
            split.n, split.n, split.eligible
        ),
    );
    // The event behind each positive: its earliest positive rating (the first logged on
    // a tie), so a duplicate is logged once with a real rating and time.
    let mut first: HashMap<(u32, u32), usize> = HashMap::new();
    for (j, (k, _)) in keyed.iter().enumerate() {
        if k.2 >= POSITIVE {
            first
                .entry((k.0, k.1))
                .and_modify(|f| {
                    if keyed[*f].0 .3 > k.3 {
                        *f = j;
                    }
                })
                .or_insert(j);
        }
    }
    let part: HashMap<(u32, u32), Part> =
        split.lines.iter().map(|&(u, i, p)| ((u, i), p)).collect();
    // Events of the chosen parts in the data's own order.
    let events_of = |want: &[Part]| -> Vec<RawEvent> {
        keyed
            .iter()
            .enumerate()
            .filter(|(j, (k, _))| {
                first.get(&(k.0, k.1)) == Some(j)
                    && part.get(&(k.0, k.1)).is_some_and(|p| want.contains(p))
            })
            .map(|(_, (_, e))| (*e).clone())
            .collect()
    };
    // No catalog: the database's items are the train users' items, the protocol's set.
    let db = train_db(
        &Catalog::default(),
        &events_of(&[Part::Train]),
        opts.threads,
    )?;
    let t = Instant::now();
    let params = super::train_inputs_first(&db, opts, sink)?;
    let info = db.train_reporting(&opts.model, &params, &train_options(opts), sink)?;
    let train_seconds = t.elapsed().as_secs_f64();
    // After training, as an application would: the serving path must fold them in.
    let fold_in = events_of(&[Part::ValidIn, Part::TestIn]);
    if !fold_in.is_empty() {
        db.log_events(&fold_in)?;
    }
    // Held-out items by user, and each user's and item's external id.
    let mut held: BTreeMap<u32, (bool, HashSet<u32>)> = BTreeMap::new();
    for &(u, i, p) in &split.lines {
        if matches!(p, Part::TestOut | Part::ValidOut) {
            held.entry(u)
                .or_insert_with(|| (p == Part::TestOut, HashSet::new()))
                .1
                .insert(i);
        }
    }
    let mut user_name: HashMap<u32, &str> = HashMap::new();
    let mut item_num: HashMap<&str, u32> = HashMap::new();
    for (k, e) in keyed {
        user_name.entry(k.0).or_insert(&e.user);
        item_num.entry(&e.item).or_insert(k.1);
    }
    let mut fold = FoldIn::new(&opts.model, &info.params)?;
    let (mut test, mut valid) = (Vec::new(), Vec::new());
    for (n, (u, (is_test, out))) in held.iter().enumerate() {
        let name = user_name.get(u).copied().unwrap_or_default();
        let ranked: Vec<u32> = fold
            .recommend(&db, name)?
            .iter()
            .filter_map(|item| item_num.get(item.as_str()).copied())
            .collect();
        let m = strong_user_metrics(out, &ranked);
        if *is_test { &mut test } else { &mut valid }.push(m);
        if n % 100 == 0 {
            sink.report(n as f64 / held.len() as f64, "scoring held-out users");
        }
    }
    let test = StrongMetrics::mean(&test)?;
    let valid = StrongMetrics::mean(&valid)?;
    Ok(Outcome {
        metrics: test.to_map(),
        baseline: None,
        users: test.n as u64,
        train_seconds,
        params: info.params,
        validation: Some((valid.to_map(), valid.n as u64)),
        heldout_users: Some(split.n as u64),
    })
}

/// How a user the trained model never saw gets a ranking: `recommend` first (the
/// autoencoders, EASE and item2vec build the query from the user's current history);
/// a factor model without a row for the user is folded in here from its published item
/// table, the way ALS solves a user row.
struct FoldIn {
    model: String,
    /// `<model>.items` with its rows read once, the factor part and the Gram matrix.
    items: Option<ItemFactors>,
    kind: Kind,
}

#[derive(Clone, Copy)]
enum Kind {
    /// `popular`: every user's vector is the single column 1 (rank by count).
    Popular,
    /// ALS-like: the first `factors` columns are factors; column `factors` (if present)
    /// is an item bias (user column 1), `factors + 1` a user bias (0 for a new user).
    Factors {
        factors: usize,
        reg: f64,
        alpha: f64,
        binarize: bool,
    },
    /// Other models answer `recommend` for every user that has a history.
    None,
}

struct ItemFactors {
    searcher: TableSearcher,
    /// Row-major `rows x factors`.
    y: Vec<f64>,
    /// `YtY + reg I`, row-major `factors x factors`.
    gram: Vec<f64>,
}

impl FoldIn {
    fn new(model: &str, params: &serde_json::Value) -> Result<FoldIn> {
        let num = |k: &str| params.get(k).and_then(serde_json::Value::as_f64);
        let kind = if model == "popular" {
            Kind::Popular
        } else if let Some(f) = num("factors").filter(|_| model == "als" || model == "bpr") {
            // BPR has no confidence weights: its factors are folded in with ALS's
            // default reg and alpha (docs/EVALUATION.md).
            let d: serde_json::Value = serde_json::from_str(&crate::train::model_defaults("als")?)
                .map_err(|e| Error::corrupted(format!("als defaults: {e}")))?;
            let def = |k: &str| d.get(k).and_then(serde_json::Value::as_f64).unwrap_or(1.0);
            let (reg, alpha) = if model == "als" {
                (
                    num("reg").unwrap_or_else(|| def("reg")),
                    num("alpha").unwrap_or_else(|| def("alpha")),
                )
            } else {
                (def("reg"), def("alpha"))
            };
            Kind::Factors {
                // why: a factor count read back from the job's own validated parameters.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                factors: f as usize,
                reg,
                alpha,
                binarize: model == "bpr"
                    || params
                        .get("binarize")
                        .and_then(serde_json::Value::as_bool)
                        .unwrap_or(true),
            }
        } else {
            Kind::None
        };
        Ok(FoldIn {
            model: model.to_owned(),
            items: None,
            kind,
        })
    }

    /// `RANKED` item ids for `user`, best first, fold-in items excluded.
    fn recommend(&mut self, db: &Db, user: &str) -> Result<Vec<String>> {
        let q = QueryOptions::model(&self.model).k(RANKED);
        match db.recommend(user, &q) {
            Ok(hits) => Ok(hits.into_iter().map(|h| h.id).collect()),
            Err(Error::NotInModel { .. }) if !matches!(self.kind, Kind::None) => {
                self.fold_in(db, user)
            }
            Err(e) => Err(e),
        }
    }

    fn fold_in(&mut self, db: &Db, user: &str) -> Result<Vec<String>> {
        let uid = db.user_id(user)?;
        let mut seen: Vec<u32> = db.history_dense(uid)?.iter().map(|e| e.item).collect();
        seen.sort_unstable();
        seen.dedup();
        if self.items.is_none() {
            self.items = Some(self.load(db)?);
        }
        let query = self.query(db, uid)?;
        let Some(items) = &self.items else {
            return Err(Error::corrupted("fold-in tables not loaded"));
        };
        let opts = SearchOptions {
            k: RANKED,
            metric: Metric::Dot,
            exact: false,
            nprobe: None,
        };
        let allow = |r: u32| seen.binary_search(&r).is_err();
        let hits = items.searcher.search_filtered(&query, &opts, &allow)?;
        Ok(hits
            .into_iter()
            .map(|(r, _)| db.searcher_row_id(&items.searcher, r as usize))
            .collect())
    }

    /// The query vector of user `uid` from its history, in the item table's columns.
    // why: the f64 solution becomes an f32 query like every stored row.
    #[allow(clippy::cast_possible_truncation)]
    fn query(&self, db: &Db, uid: u32) -> Result<Vec<f32>> {
        let history = db.history_dense(uid)?;
        let Some(items) = &self.items else {
            return Err(Error::corrupted("fold-in tables not loaded"));
        };
        let dim = items.searcher.view().dim();
        let query = match self.kind {
            Kind::Popular | Kind::None => vec![1.0; dim],
            Kind::Factors {
                factors,
                alpha,
                binarize,
                ..
            } => {
                let f = factors;
                // (YtY + reg I + sum (c - 1) y yT) x = sum c y, c = 1 + alpha * w.
                let mut a = items.gram.clone();
                let mut b = vec![0f64; f];
                let mut weight: HashMap<u32, f64> = HashMap::new();
                for e in &history {
                    // The last logged value of a repeated item, as training's matrix has it.
                    weight.insert(e.item, f64::from(e.value));
                }
                for (&i, &w) in &weight {
                    let Some(y) = items.y.get(i as usize * f..(i as usize + 1) * f) else {
                        continue;
                    };
                    let c = 1.0 + alpha * if binarize { 1.0 } else { w };
                    for r in 0..f {
                        b[r] += c * y[r];
                        for s in 0..f {
                            a[r * f + s] += (c - 1.0) * y[r] * y[s];
                        }
                    }
                }
                let x = cholesky_solve(&mut a, &mut b, f)?;
                let mut q: Vec<f32> = x.iter().map(|&v| v as f32).collect();
                // The bias columns of the published tables (see MfModel::to_tables).
                if dim > f {
                    q.push(1.0);
                }
                q.resize(dim, 0.0);
                q
            }
        };
        Ok(query)
    }

    fn load(&self, db: &Db) -> Result<ItemFactors> {
        let searcher = db.searcher(&format!("{}.items", self.model))?;
        let Kind::Factors {
            factors: f, reg, ..
        } = self.kind
        else {
            return Ok(ItemFactors {
                searcher,
                y: Vec::new(),
                gram: Vec::new(),
            });
        };
        if searcher.view().dim() < f {
            return Err(Error::DimensionMismatch {
                expected: f,
                got: searcher.view().dim(),
            });
        }
        let rows = searcher.rows();
        let mut y = vec![0f64; rows * f];
        for r in 0..rows {
            if let Some(row) = searcher.row(r) {
                for (d, v) in y[r * f..(r + 1) * f].iter_mut().zip(&row) {
                    *d = f64::from(*v);
                }
            }
        }
        let mut gram = vec![0f64; f * f];
        for row in y.chunks_exact(f) {
            for r in 0..f {
                for s in 0..f {
                    gram[r * f + s] += row[r] * row[s];
                }
            }
        }
        for r in 0..f {
            gram[r * f + r] += reg;
        }
        Ok(ItemFactors { searcher, y, gram })
    }
}

/// Solve `a x = b` for a symmetric positive definite `a` (row-major `f x f`, overwritten
/// by its Cholesky factor); `b` is overwritten by `x`.
fn cholesky_solve(a: &mut [f64], b: &mut [f64], f: usize) -> Result<Vec<f64>> {
    for j in 0..f {
        let mut d = a[j * f + j];
        for k in 0..j {
            d -= a[j * f + k] * a[j * f + k];
        }
        if d <= 0.0 || !d.is_finite() {
            return Err(Error::InvalidInput(
                "fold-in: the user's normal equations are not positive definite".into(),
            ));
        }
        let d = d.sqrt();
        a[j * f + j] = d;
        for i in j + 1..f {
            let mut s = a[i * f + j];
            for k in 0..j {
                s -= a[i * f + k] * a[j * f + k];
            }
            a[i * f + j] = s / d;
        }
    }
    // L z = b, then Lt x = z.
    for i in 0..f {
        let mut s = b[i];
        for k in 0..i {
            s -= a[i * f + k] * b[k];
        }
        b[i] = s / a[i * f + i];
    }
    for i in (0..f).rev() {
        let mut s = b[i];
        for k in i + 1..f {
            s -= a[k * f + i] * b[k];
        }
        b[i] = s / a[i * f + i];
    }
    Ok(b.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `$RECDB_DATA/<dir>/<dir>.inter` as (user, item, rating).
    fn atomic(data: &std::path::Path, set: &str) -> Vec<(u32, u32, f32)> {
        let path = data.join(set).join(format!("{set}.inter"));
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("missing {}: {e}", path.display()));
        text.lines()
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                let bad = format!("{}: bad line {l:?}", path.display());
                (
                    f[0].parse().expect(&bad),
                    f[1].parse().expect(&bad),
                    f[2].parse().expect(&bad),
                )
            })
            .collect()
    }

    /// recdb's split of ML-1M and ML-100K is the shared split file, line for line.
    #[test]
    #[ignore = "needs $RECDB_DATA with ml-1m, ml-100k and splits/; run with --ignored"]
    fn split_matches_the_shared_files() {
        let data = std::path::PathBuf::from(std::env::var_os("RECDB_DATA").expect(
            "RECDB_DATA is unset: point it at the data directory (ml-1m/, ml-100k/, splits/)",
        ));
        for (set, n, eligible) in [("ml-1m", 600, 6034), ("ml-100k", 100, 938)] {
            let split = strong_split(&atomic(&data, set), None).unwrap();
            assert_eq!(split.n, n, "{set}: default n");
            let path = data.join("splits").join(format!("{set}-strong.tsv"));
            let want = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("missing {}: {e}", path.display()));
            let mut got = String::from("user_id:token\titem_id:token\tpart:token\n");
            for (u, i, p) in &split.lines {
                got.push_str(&format!("{u}\t{i}\t{}\n", p.as_str()));
            }
            if got != want {
                let (g, w): (Vec<&str>, Vec<&str>) =
                    (got.lines().collect(), want.lines().collect());
                let k = g
                    .iter()
                    .zip(&w)
                    .position(|(a, b)| a != b)
                    .unwrap_or(g.len().min(w.len()));
                panic!(
                    "{set}: {} lines against {} in {}; first difference at line {}: {:?} vs {:?}",
                    g.len(),
                    w.len(),
                    path.display(),
                    k + 1,
                    g.get(k),
                    w.get(k)
                );
            }
            println!(
                "{set}: {} lines identical, {} eligible users",
                g_len(&got),
                split.eligible
            );
            assert_eq!(split.eligible, eligible, "{set}: eligible users");
        }
    }

    fn g_len(s: &str) -> usize {
        s.lines().count()
    }

    #[test]
    fn mix64_is_splitmix64() {
        // splitmix64's first outputs from states 0 and 1 (Vigna's reference code).
        assert_eq!(mix64(0), 0xE220_A839_7B1D_CDAF);
        assert_eq!(mix64(0x9E37_79B9_7F4A_7C15), 0x6E78_9E6A_A1B9_65F4);
    }

    /// The fold-in is the ALS user step: for a user the model trained on, it lands on
    /// (nearly: training's rows are a few CG steps from exact) the published row.
    #[test]
    fn als_fold_in_reproduces_a_trained_users_row() {
        let db = Db::temporary().unwrap();
        let mut events = Vec::new();
        for u in 0..60u32 {
            for k in 0..12u32 {
                let i = (u % 4) + 4 * ((u * 7 + k * 3) % 15);
                events.push(RawEvent {
                    user: format!("u{u}"),
                    item: format!("i{i}"),
                    kind: crate::EventKind::Rating,
                    value: 5.0,
                    timestamp: i64::from(k),
                    group: None,
                });
            }
        }
        db.log_events(&events).unwrap();
        let mut p = crate::Params::new();
        p.insert_kv("iterations=60").unwrap();
        p.insert_kv("factors=8").unwrap();
        let info = db
            .train("als", &p, &crate::TrainOptions::default())
            .unwrap();
        let users = db.table("als.users").unwrap();
        let mut fold = FoldIn::new("als", &info.params).unwrap();
        fold.items = Some(fold.load(&db).unwrap());
        for u in [0u32, 13, 42] {
            let got = fold
                .query(&db, db.user_id(&format!("u{u}")).unwrap())
                .unwrap();
            let want = users.row(u as usize).to_vec();
            let err: f32 = got.iter().zip(&want).map(|(a, b)| (a - b).powi(2)).sum();
            let norm: f32 = want.iter().map(|b| b * b).sum();
            assert!(err < 1e-3 * norm, "user {u}: {got:?} vs {want:?}");
        }
    }

    #[test]
    fn cholesky_solves() {
        let mut a = vec![4.0, 2.0, 2.0, 3.0];
        let mut b = vec![2.0, 1.0];
        let x = cholesky_solve(&mut a, &mut b, 2).unwrap();
        assert!((x[0] - 0.5).abs() < 1e-12 && x[1].abs() < 1e-12, "{x:?}");
        assert!(cholesky_solve(&mut [0.0], &mut [1.0], 1).is_err());
    }

    /// The rule on a hand-made set, every step checked against a computation by hand.
    #[test]
    fn split_by_hand() {
        let mut events = Vec::new();
        // Users 1..=8 with 6 positives each on items 1..=6, plus a rating-3 event.
        for u in 1..=8u32 {
            for i in 1..=6u32 {
                events.push((u, i, 4.0 + (i % 2) as f32));
            }
            events.push((u, 50, 3.0));
        }
        // User 9: four positives (ineligible) and a duplicate.
        events.extend([
            (9, 1, 5.0),
            (9, 2, 4.0),
            (9, 2, 5.0),
            (9, 3, 4.0),
            (9, 4, 4.0),
        ]);
        // Users 10, 11: ten positives, two on items (90, 91) no train user has.
        for u in [10u32, 11] {
            for i in (1..=6).chain([90, 91]).chain([7, 8]) {
                events.push((u, i, 5.0));
            }
        }
        // Users 12, 13: five positives, one outside the item set (m = 4 < 5).
        for u in [12u32, 13] {
            for i in [1, 2, 3, 4, 92] {
                events.push((u, i, 4.0));
            }
        }
        // Items 7 and 8 reach the item set only through a train user.
        for i in [7, 8] {
            events.push((1, i, 4.0));
            events.push((2, i, 4.0));
        }
        let s = strong_split(&events, Some(2)).unwrap();
        assert_eq!((s.n, s.eligible), (2, 12));
        let mut order: Vec<u32> = (1..=13).filter(|&u| u != 9).collect();
        order.sort_by_key(|&u| (mix64(u64::from(u)), u));
        let (test, valid) = (&order[..2], &order[2..4]);
        // User 9 is absent; rating-3 events are absent.
        assert!(s.lines.iter().all(|l| l.0 != 9 && l.1 != 50));
        assert!(s
            .lines
            .windows(2)
            .all(|w| (w[0].0, w[0].1) < (w[1].0, w[1].1)));
        for &u in &order {
            let mine: Vec<(u32, Part)> = s
                .lines
                .iter()
                .filter(|l| l.0 == u)
                .map(|l| (l.1, l.2))
                .collect();
            let side = if test.contains(&u) {
                Some((Part::TestIn, Part::TestOut))
            } else if valid.contains(&u) {
                Some((Part::ValidIn, Part::ValidOut))
            } else {
                None
            };
            let Some((fold, out)) = side else {
                assert!(mine.iter().all(|l| l.1 == Part::Train), "user {u}");
                continue;
            };
            // Items 90..=92 belong to no train user: dropped (10..=13 are never train
            // users unless n puts them there; then they make 90/91 in-set).
            let item_set_has = |i: u32| {
                order
                    .iter()
                    .filter(|v| !test.contains(v) && !valid.contains(v))
                    .any(|&v| events.iter().any(|e| e.0 == v && e.1 == i && e.2 >= 4.0))
            };
            let kept: Vec<u32> = mine
                .iter()
                .map(|l| l.0)
                .filter(|&i| item_set_has(i))
                .collect();
            for &(i, p) in &mine {
                if !item_set_has(i) {
                    assert_eq!(p, Part::Drop, "user {u} item {i}");
                }
            }
            let m = kept.len();
            let mut by_hash = kept.clone();
            by_hash.sort_by_key(|&i| (mix64((u64::from(u) << 32) | u64::from(i)), i));
            let h = if m < 5 { 0 } else { m / 5 };
            for (k, i) in by_hash.iter().enumerate() {
                let p = mine.iter().find(|l| l.0 == *i).unwrap().1;
                assert_eq!(p, if k < h { out } else { fold }, "user {u} item {i}");
            }
        }
        // Counts: 12 eligible users' distinct positives.
        let distinct: HashSet<(u32, u32)> = events
            .iter()
            .filter(|e| e.2 >= 4.0 && e.0 != 9)
            .map(|e| (e.0, e.1))
            .collect();
        assert_eq!(s.lines.len(), distinct.len());
        assert!(strong_split(&events, Some(6)).is_err());
        assert!(strong_split(&events, Some(0)).is_err());
        assert_eq!(default_heldout(938), 100);
        assert_eq!(default_heldout(6034), 600);
        assert_eq!(default_heldout(10), 100);
    }
}
