//! The index commands of the `recdb` binary: `import table`, `index build|bench|info`,
//! `table put|delete|compact`, and how `jobs` and `check` show them.

use std::path::Path;

mod common;
use common::cli::{ok, recdb, text};

/// Fails, and says `want` on stderr.
fn fails(db: &Path, args: &[&str], want: &str) {
    let out = recdb(db, args);
    assert!(!out.status.success(), "recdb {args:?} succeeded");
    let err = text(&out.stderr);
    assert!(
        err.contains(want),
        "recdb {args:?}: wanted {want:?} in {err}"
    );
}

fn le(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[test]
fn import_index_bench_update_check() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let p = |n: &str| dir.path().join(n).display().to_string();
    let dim = 16;
    let mut rows = recdb::testkit::clustered_vectors(4100, dim, 5);
    let queries = rows.split_off(4000 * dim);
    std::fs::write(p("v.f32"), le(&rows)).unwrap();
    let ids: String = (0..4000).map(|i| format!("v{i}\n")).collect();
    std::fs::write(p("v.ids"), ids).unwrap();
    std::fs::write(p("q.f32"), le(&queries)).unwrap();
    std::fs::write(p("bad.f32"), &le(&rows[..40])[..150]).unwrap();
    std::fs::write(p("t.tsv"), "a\t1\t2\nb\t3\t4\n").unwrap();
    std::fs::write(p("ragged.tsv"), "a\t1\t2\nb\t3\n").unwrap();

    let out = ok(
        &db,
        &[
            "import",
            "table",
            "emb",
            "--format",
            "f32",
            "--dim",
            "16",
            &p("v.f32"),
            "--ids",
            &p("v.ids"),
        ],
    );
    assert!(
        out.contains("published emb version 1 (4000 rows x 16 dims"),
        "{out}"
    );
    fails(
        &db,
        &[
            "import",
            "table",
            "bad",
            "--format",
            "f32",
            "--dim",
            "16",
            &p("bad.f32"),
        ],
        "bad.f32:3: field `bytes`",
    );
    fails(
        &db,
        &[
            "import",
            "table",
            "bad",
            "--format",
            "tsv",
            &p("ragged.tsv"),
        ],
        "ragged.tsv:2: field `value 2`",
    );
    fails(
        &db,
        &["import", "table", "bad", &p("t.tsv")],
        "--format f32, tsv or parquet is required",
    );
    fails(&db, &["import", "events", "a", "b"], "takes one FILE");
    ok(
        &db,
        &["import", "table", "small", "--format", "tsv", &p("t.tsv")],
    );
    let tables = ok(&db, &["tables"]);
    assert!(!tables.contains("bad"), "{tables}");

    fails(
        &db,
        &["index", "build", "emb", "--bits", "6"],
        "6: expected 8 or 4",
    );
    fails(
        &db,
        &["index", "build", "emb", "--metric", "l2"],
        "expected cosine or dot",
    );
    fails(
        &db,
        &["index", "build", "emb", "--spill", "1.5"],
        "`spill`: must be in [0, 1]",
    );
    fails(
        &db,
        &["index", "build", "emb", "--rerank", "5"],
        "`rerank`: 5: must be between 10 and 10000",
    );
    // `index build emb` with 60 lists and `extra` options; then `index info emb` as JSON.
    let build = |extra: &[&str]| {
        let mut args = vec![
            "index",
            "build",
            "emb",
            "--lists",
            "60",
            "--target-recall",
            "0.9",
            "--threads",
            "1",
        ];
        args.extend_from_slice(extra);
        let out = ok(&db, &args);
        assert!(
            out.contains("index built") && out.contains("nprobe"),
            "{out}"
        );
        let info = ok(&db, &["--format", "json", "index", "info", "emb"]);
        serde_json::from_str::<serde_json::Value>(info.trim()).unwrap()
    };
    let info = build(&[]);
    assert_eq!(
        (info["lists"].as_u64(), info["bits"].as_u64()),
        (Some(60), Some(4))
    );
    // 30 % of the 4000 rows are in a second list.
    assert_eq!(
        (info["rows"].as_u64(), info["spilled"].as_u64()),
        (Some(4000), Some(1200))
    );
    assert!(info["recall"].as_f64().unwrap() >= 0.9);

    let out = ok(
        &db,
        &[
            "index",
            "bench",
            "emb",
            "--queries",
            &p("q.f32"),
            "--nprobe",
            "2,60",
            "--format",
            "json",
        ],
    );
    let last = out.lines().last().unwrap();
    let b: serde_json::Value = serde_json::from_str(last).unwrap();
    let pts = b["points"].as_array().unwrap();
    assert_eq!(pts.len(), 2);
    assert_eq!(pts[1]["nprobe"], 60);
    // Every list probed: the index answers by the exact scan.
    assert_eq!(pts[1]["recall"], 1.0);
    assert!(pts[0]["recall"].as_f64().unwrap() < 1.0);
    assert!(pts[0]["qps_cpu"].as_f64().unwrap() > 0.0);
    assert!(pts[0]["qps_cpu_batched"].as_f64().unwrap() > 0.0);
    assert!(pts.iter().all(|p| p["batched_same"] == true), "{last}");
    assert_eq!(b["exact_batched_same"], true);
    assert!(b["exact_ms_cpu_batched"].as_f64().unwrap() > 0.0);
    assert_eq!(
        (b["queries"].as_u64(), b["k"].as_u64()),
        (Some(100), Some(10))
    );
    // At least the 4-bit codes (dim / 2 bytes) and a 4-byte row id; at most the D + 8 budget
    // (30 % of the rows have a second entry).
    let bpv = b["bytes_per_vector"].as_f64().unwrap();
    assert!((12.0..=24.0).contains(&bpv), "{bpv} bytes per vector");
    let table = ok(&db, &["index", "bench", "emb", "--queries", &p("q.f32")]);
    assert!(
        table.contains("recall") && table.contains("qps (cpu)"),
        "{table}"
    );
    fails(
        &db,
        &["index", "bench", "small", "--queries", &p("q.f32")],
        "has no index",
    );
    // A set rerank depth is served as set.
    let info = build(&["--rerank", "300"]);
    assert_eq!(info["rerank"].as_u64(), Some(300));
    // 8-bit codes: dim bytes and a 4-byte id an entry, 1.3 entries a row (30 % of the rows
    // spilled), and 60 lists of 4000 rows pad about 4 bytes a row; the row updates and
    // the compaction below run on this index.
    let info = build(&["--bits", "8"]);
    assert_eq!(
        (info["lists"].as_u64(), info["bits"].as_u64()),
        (Some(60), Some(8))
    );
    assert!(info["recall"].as_f64().unwrap() >= 0.9);
    let bpv = info["bytes"].as_f64().unwrap() / info["rows"].as_f64().unwrap();
    assert!((26.0..=34.0).contains(&bpv), "{bpv} bytes per vector");

    // Row updates: put a row equal to a query, find it first; delete it, it is gone.
    let q0: Vec<String> = queries[..dim].iter().map(|x| x.to_string()).collect();
    let mut args = vec!["table", "put", "emb", "fresh"];
    args.extend(q0.iter().map(String::as_str));
    let out = ok(&db, &args);
    assert!(
        out.contains("put 1 row(s) into emb version 1 (1 operations"),
        "{out}"
    );
    ok(&db, &["table", "delete", "emb", "v1", "v2"]);
    fails(&db, &["table", "delete", "emb", "v1"], "already deleted");
    fails(
        &db,
        &["table", "put", "emb", "x", "1", "2"],
        "dimension mismatch",
    );
    let check = ok(&db, &["--format", "json", "check"]);
    let c: serde_json::Value = serde_json::from_str(check.trim()).unwrap();
    assert_eq!(
        (c["indexes"].as_u64(), c["delta_ops"].as_u64()),
        (Some(1), Some(3))
    );
    let out = ok(&db, &["table", "compact", "emb"]);
    assert!(out.contains("folded 3 delta operations"), "{out}");
    // The compaction carried the index over to the new version (1 new row placed, far
    // under a tenth of the rows), so no index job ran after it.
    assert!(
        out.contains("index carried over (1 of 3999 rows placed since k-means)"),
        "{out}"
    );
    let jobs = ok(&db, &["--format", "json", "jobs"]);
    let jobs: serde_json::Value = serde_json::from_str(jobs.trim()).unwrap();
    let models: Vec<(&str, &str)> = jobs
        .as_array()
        .unwrap()
        .iter()
        .map(|j| (j["model"].as_str().unwrap(), j["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        models,
        [
            ("import", "done"),
            ("import", "done"),
            ("index", "done"),
            ("index", "done"),
            ("index", "done"),
            ("compact", "done")
        ]
    );
    let info = ok(&db, &["--format", "json", "index", "info", "emb"]);
    let info: serde_json::Value = serde_json::from_str(info.trim()).unwrap();
    assert_eq!(
        (
            info["version"].as_u64(),
            info["rows"].as_u64(),
            info["bits"].as_u64()
        ),
        (Some(3), Some(3999), Some(8))
    );
    ok(&db, &["check"]);
}
