//! The LEE protocol: paragraph vectors on the 300 background documents
//! plus the 50 of `lee.cor`; Pearson r of the pairwise cosines of the 50 against the
//! upper triangle of the human similarity matrix, for trained and inferred vectors;
//! the self-nearest sanity check; and the TF-IDF cosine baseline.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use super::similarity::{cosine, pearson, sparse_cosine, tfidf, upper_triangle};
use super::{train_options, EvalOptions, EvalReport};
use crate::train::text::{tokenize, Vocab};
use crate::{Db, Error, Params, ProgressSink, Result};

/// The defaults `--protocol lee` trains with (tuned on this protocol's own data, as
/// the field does for LEE; see docs/DOC2VEC.md). `--param k=v` overrides any of them.
pub const LEE_DEFAULTS: &[(&str, &str)] = &[
    ("dm", "false"),
    ("dbow_words", "false"),
    ("dim", "300"),
    ("window", "5"),
    ("negative", "5"),
    ("epochs", "100"),
    ("min_count", "3"),
    ("sample", "0.0001"),
    ("infer_epochs", "50"),
];

const BACKGROUND: usize = 300;
const TEST: usize = 50;

fn read_lines(path: &Path, want: usize) -> Result<Vec<String>> {
    // The corpus is Latin-1; its non-ASCII letters are never part of a token anyway.
    let bytes = crate::ingest::read_text_file(path)?;
    let s: String = bytes.iter().map(|&b| b as char).collect();
    let lines: Vec<String> = s
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect();
    if lines.len() != want {
        return Err(Error::InvalidInput(format!(
            "{}: {} documents, the protocol has {want}",
            path.display(),
            lines.len()
        )));
    }
    Ok(lines)
}

/// The upper triangle of the 50×50 human similarity matrix.
fn read_similarities(path: &Path) -> Result<Vec<f64>> {
    let s = String::from_utf8(crate::ingest::read_text_file(path)?).map_err(|e| {
        Error::io(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        )
    })?;
    let mut m = Vec::with_capacity(TEST);
    for (i, line) in s.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let row: Vec<f64> = line
            .split_whitespace()
            .map(|x| {
                x.parse().map_err(|_| Error::Parse {
                    file: path.display().to_string(),
                    line: i as u64 + 1,
                    field: "similarity".into(),
                    msg: format!("not a number: `{x}`"),
                })
            })
            .collect::<Result<_>>()?;
        if row.len() != TEST {
            return Err(Error::InvalidInput(format!(
                "{}: row {} has {} values, expected {TEST}",
                path.display(),
                i + 1,
                row.len()
            )));
        }
        m.push(row);
    }
    if m.len() != TEST {
        return Err(Error::InvalidInput(format!(
            "{}: {} rows, expected {TEST}",
            path.display(),
            m.len()
        )));
    }
    Ok(upper_triangle(TEST, |i, j| m[i][j]))
}

/// The protocol's parameters: the LEE defaults, then the user's, on imported docs.
fn lee_params(user: &Params) -> Params {
    let mut p = Params::new();
    for (k, v) in LEE_DEFAULTS {
        p.insert(k, v);
    }
    for (k, v) in user.iter() {
        p.insert(k, v);
    }
    p.insert("docs", "imported");
    p
}

/// The LEE protocol on the corpus in `dir` (checked to hold `lee.cor`).
pub(super) fn evaluate_lee(
    opts: &EvalOptions,
    dir: &Path,
    sink: &dyn ProgressSink,
) -> Result<EvalReport> {
    if opts.model != "doc2vec" {
        return Err(Error::param(
            "model",
            format!("`{}`: the lee protocol evaluates doc2vec", opts.model),
        ));
    }
    let background = read_lines(&dir.join("lee_background.cor"), BACKGROUND)?;
    let test = read_lines(&dir.join("lee.cor"), TEST)?;
    let human = read_similarities(&dir.join("similarities0-1.txt"))?;
    // Tags sort as the documents come: background first, then the 50 test documents.
    let docs: Vec<(String, String)> = background
        .iter()
        .enumerate()
        .map(|(i, t)| (format!("bg{i:03}"), t.clone()))
        .chain(
            test.iter()
                .enumerate()
                .map(|(i, t)| (format!("lee{i:02}"), t.clone())),
        )
        .collect();
    let db = Db::open_with(crate::Config {
        threads: opts.threads.unwrap_or(0),
        ..crate::Config::default()
    })?;
    db.put_docs(&docs)?;
    let train_opts = train_options(opts);
    let t = Instant::now();
    let info = db.train_reporting("doc2vec", &lee_params(&opts.params), &train_opts, sink)?;
    let train_seconds = t.elapsed().as_secs_f64();

    let table = db.table("doc2vec.docs")?;
    let row_of: BTreeMap<String, usize> = (0..table.rows())
        .map(|r| (db.row_id(&table, r), r))
        .collect();
    let trained: Vec<Vec<f32>> = docs
        .iter()
        .map(|(tag, _)| {
            row_of
                .get(tag)
                .map(|&r| table.row(r).to_vec())
                .ok_or_else(|| Error::corrupted(format!("doc2vec.docs (no row for `{tag}`)")))
        })
        .collect::<Result<_>>()?;
    let test_trained = &trained[BACKGROUND..];
    let r_trained = pearson(
        &upper_triangle(TEST, |i, j| cosine(&test_trained[i], &test_trained[j])),
        &human,
    )?;

    let model = db.text_model("doc2vec")?;
    let seed = opts.seed;
    let inferred: Vec<Vec<f32>> = test
        .iter()
        .map(|t| model.infer(t, seed))
        .collect::<Result<_>>()?;
    let r_inferred = pearson(
        &upper_triangle(TEST, |i, j| cosine(&inferred[i], &inferred[j])),
        &human,
    )?;

    // Sanity check: each training document, inferred again, finds its own vector first.
    let text_of: BTreeMap<&String, &String> = docs.iter().map(|(t, x)| (t, x)).collect();
    let mut own = 0usize;
    for (i, (tag, text)) in docs.iter().enumerate() {
        sink.report(i as f64 / docs.len() as f64, "self-nearest check");
        let q = model.infer(text, seed)?;
        let hit = db.nearest("doc2vec.docs", &q, 1, true, None)?;
        // The corpus holds 7 pairs of identical texts: finding the twin counts, since no
        // content-based method can tell the two apart.
        own += usize::from(
            hit.first()
                .is_some_and(|h| h.id == *tag || text_of.get(&h.id) == Some(&text)),
        );
    }
    let self_nearest = own as f64 / docs.len() as f64;

    // TF-IDF baseline: IDF over all 350 documents, every word kept.
    let tokens: Vec<Vec<String>> = docs.iter().map(|(_, t)| tokenize(t)).collect();
    let vocab = Vocab::build(&tokens, 1);
    let ids: Vec<Vec<u32>> = tokens.iter().map(|t| vocab.ids(t)).collect();
    let tf = tfidf(&ids, vocab.len());
    let tf_test = &tf[BACKGROUND..];
    let r_tfidf = pearson(
        &upper_triangle(TEST, |i, j| sparse_cosine(&tf_test[i], &tf_test[j])),
        &human,
    )?;

    let metrics = BTreeMap::from([
        ("pearson".to_string(), r_trained),
        ("pearson_inferred".to_string(), r_inferred),
        ("self_nearest".to_string(), self_nearest),
        ("tfidf_pearson".to_string(), r_tfidf),
    ]);
    Ok(EvalReport {
        protocol: "lee".into(),
        model: opts.model.clone(),
        params: info.params.clone(),
        metrics,
        users: TEST as u64,
        train_seconds,
        baseline: None,
        data: dir.display().to_string(),
        validation: None,
        validation_users: None,
        seconds_per_epoch: super::per_epoch(&info.params, train_seconds),
        heldout_users: None,
    })
}
