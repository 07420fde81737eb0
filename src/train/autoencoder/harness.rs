//! A tuning harness on protocol STRONG's split of MovieLens 1M (ignored: it needs
//! `$RECDB_DATA`). Trains on the train users, scores the validation and test users from
//! their fold-in items every few epochs, and prints NDCG@100 and Recall@20/50:
//!
//! RECDB_DATA=... RECDB_AE_MODEL=mult-vae RECDB_AE_PARAMS="epochs=100;hidden=600,200" \
//!   cargo test --release --lib harness -- --ignored --nocapture

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;

use super::data::Histories;
use super::*;
use crate::jobs::NoProgress;
use crate::train::nn::sparse::SparseRows;

struct Split {
    n_items: usize,
    train: Histories,
    /// (fold-in, held-out) per evaluated user.
    valid: Vec<(Vec<u32>, Vec<u32>)>,
    test: Vec<(Vec<u32>, Vec<u32>)>,
}

fn read_split(path: &str) -> Split {
    let text = std::fs::read_to_string(path).expect("the split file");
    let mut rows: Vec<(u32, u32, String)> = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        rows.push((
            f[0].parse().unwrap(),
            f[1].parse().unwrap(),
            f[2].to_owned(),
        ));
    }
    let mut items: Vec<u32> = rows
        .iter()
        .filter(|r| r.2 == "train")
        .map(|r| r.1)
        .collect();
    items.sort_unstable();
    items.dedup();
    let col: HashMap<u32, u32> = items
        .iter()
        .enumerate()
        .map(|(c, &i)| (i, c as u32))
        .collect();
    let mut by_user: std::collections::BTreeMap<u32, HashMap<&str, Vec<u32>>> = Default::default();
    for (u, i, part) in &rows {
        if let Some(&c) = col.get(i) {
            by_user
                .entry(*u)
                .or_default()
                .entry(part.as_str())
                .or_default()
                .push(c);
        }
    }
    let mut train = Histories {
        users: vec![],
        offsets: vec![0],
        items: vec![],
    };
    let (mut valid, mut test) = (vec![], vec![]);
    for (u, parts) in by_user {
        let get = |p: &str| {
            let mut v = parts.get(p).cloned().unwrap_or_default();
            v.sort_unstable();
            v
        };
        if let Some(t) = parts.get("train") {
            let mut t = t.clone();
            t.sort_unstable();
            train.users.push(u);
            train.items.extend(t);
            train.offsets.push(train.items.len());
        }
        if !get("valid_out").is_empty() {
            valid.push((get("valid_in"), get("valid_out")));
        }
        if !get("test_out").is_empty() {
            test.push((get("test_in"), get("test_out")));
        }
    }
    Split {
        n_items: items.len(),
        train,
        valid,
        test,
    }
}

/// Mean (NDCG@100, Recall@20, Recall@50).
fn evaluate(net: &Net, users: &[(Vec<u32>, Vec<u32>)]) -> (f64, f64, f64) {
    let (mut ndcg, mut r20, mut r50) = (0.0, 0.0, 0.0);
    for chunk in users.chunks(500) {
        let mut x = SparseRows::default();
        for (fold, _) in chunk {
            x.push_uniform(fold, 1.0);
        }
        x.l2_normalize();
        let s = net.scores(&x);
        let n = net.n_items();
        for (r, (fold, held)) in chunk.iter().enumerate() {
            let mut sr: Vec<(f32, u32)> = s[r * n..(r + 1) * n]
                .iter()
                .enumerate()
                .map(|(i, &v)| (v, i as u32))
                .collect();
            for &f in fold {
                sr[f as usize].0 = f32::NEG_INFINITY;
            }
            sr.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            let hit = |i: u32| held.binary_search(&i).is_ok();
            let dcg: f64 = sr[..100]
                .iter()
                .enumerate()
                .filter(|(_, (_, i))| hit(*i))
                .map(|(k, _)| 1.0 / ((k + 2) as f64).log2())
                .sum();
            let idcg: f64 = (0..held.len().min(100))
                .map(|k| 1.0 / ((k + 2) as f64).log2())
                .sum();
            ndcg += dcg / idcg;
            let hits = |k: usize| {
                sr[..k].iter().filter(|(_, i)| hit(*i)).count() as f64 / k.min(held.len()) as f64
            };
            r20 += hits(20);
            r50 += hits(50);
        }
    }
    let m = users.len() as f64;
    (ndcg / m, r20 / m, r50 / m)
}

#[test]
#[ignore]
fn harness() {
    let data = std::env::var("RECDB_DATA").expect("RECDB_DATA");
    let split = read_split(&format!("{data}/splits/ml-1m-strong.tsv"));
    let model = std::env::var("RECDB_AE_MODEL").unwrap_or_else(|_| VAE.into());
    let mut p = Params::new();
    for kv in std::env::var("RECDB_AE_PARAMS")
        .unwrap_or_default()
        .split(';')
        .filter(|s| !s.is_empty())
    {
        p.insert_kv(kv).unwrap();
    }
    let every: usize = std::env::var("RECDB_AE_EVERY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let seed: u64 = std::env::var("RECDB_AE_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(42);
    let job = Autoencoder::from_params(&model, &p).unwrap();
    println!(
        "{model} {} train users, {} items, {} valid, {} test users; {}",
        split.train.len(),
        split.n_items,
        split.valid.len(),
        split.test.len(),
        job.params_json()
    );
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let cancel = AtomicBool::new(false);
    let ctx = JobContext::new(seed, &cancel, &NoProgress, &pool);
    let started = std::time::Instant::now();
    let mut train_secs = 0.0;
    let mut last = std::time::Instant::now();
    let mut best = (0.0, 0, (0.0, 0.0, 0.0));
    job.train(&split.train, split.n_items, &ctx, |epoch, net| {
        train_secs += last.elapsed().as_secs_f64();
        if epoch % every == 0 {
            let v = evaluate(net, &split.valid);
            let t = evaluate(net, &split.test);
            println!(
                "epoch {epoch:4} {:.3} s/epoch valid ndcg@100 {:.4} | test ndcg@100 {:.4} r@20 {:.4} r@50 {:.4}",
                train_secs / epoch as f64, v.0, t.0, t.1, t.2
            );
            if v.0 > best.0 {
                best = (v.0, epoch, t);
            }
        }
        last = std::time::Instant::now();
    })
    .unwrap();
    let (v, e, t) = best;
    println!(
        "best validation epoch {e} (ndcg@100 {v:.4}): test ndcg@100 {:.4} recall@20 {:.4} recall@50 {:.4}; {:.3} s/epoch training, {:.0} s in all",
        t.0, t.1, t.2, train_secs / job.params.epochs as f64, started.elapsed().as_secs_f64()
    );
}
