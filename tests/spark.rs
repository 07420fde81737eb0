//! Training past one machine (docs/SCALE.md): the log out as Parquet, factors in from
//! Parquet, through the shell. The round trip with Apache Spark itself is ignored by
//! default (it needs pyspark and Java; `.ci/run` installs pyspark into a virtual
//! environment and points `RECDB_SPARK_PYTHON` at its python).
#![cfg(feature = "parquet")]

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::cli::{ok, recdb, text, write_events};
use recdb::{Db, EventKind, Params, QueryOptions, RawEvent};

/// The shell's `export log` and `import table --format parquet` on a small database:
/// part files of the asked size; factors keyed by the export's dense ids land as the
/// model's users and items and serve `recommend --model`; a bad file changes nothing.
#[test]
fn shell_exports_the_log_and_imports_factors() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let events = dir.path().join("events.tsv");
    write_events(&events);
    ok(&db, &["import", "events", events.to_str().unwrap()]);
    let log = dir.path().join("log");
    let out = ok(
        &db,
        &[
            "export",
            "log",
            "--format",
            "parquet",
            "--rows-per-file",
            "100",
            log.to_str().unwrap(),
        ],
    );
    assert!(
        out.contains("exported 240 events (30 users, 20 items) to 3 Parquet files"),
        "{out}"
    );
    assert!(log.join("part-00002.parquet").is_file());
    // Exporting again into the same directory would mix two logs: refused.
    let again = recdb(
        &db,
        &[
            "export",
            "log",
            "--format",
            "parquet",
            log.to_str().unwrap(),
        ],
    );
    assert!(!again.status.success());
    assert!(text(&again.stderr).contains("already holds Parquet files"));

    // Factors for 30 users and 20 items (dense ids 0..): item i's vector is (i, 1), every
    // user's (1, 0), so the unseen item with the highest dense id comes first.
    let users = dir.path().join("users.parquet");
    let items = dir.path().join("items.parquet");
    let uid: Vec<i32> = (0..30).collect();
    let iid: Vec<i32> = (0..20).collect();
    std::fs::write(
        &users,
        recdb::spark_factors_bytes(&uid, &vec![vec![1.0, 0.0]; 30]),
    )
    .unwrap();
    let item_rows: Vec<Vec<f32>> = (0..20).map(|i| vec![i as f32, 1.0]).collect();
    std::fs::write(&items, recdb::spark_factors_bytes(&iid, &item_rows)).unwrap();
    for (t, f) in [("spark.users", &users), ("spark.items", &items)] {
        let out = ok(
            &db,
            &[
                "import",
                "table",
                t,
                "--format",
                "parquet",
                f.to_str().unwrap(),
            ],
        );
        assert!(out.contains("published"), "{out}");
    }
    ok(&db, &["index", "build", "spark.items"]);
    let out = ok(&db, &["recommend", "u0", "--model", "spark", "-k", "1"]);
    // The best: the item u0 has not seen with the highest dense id.
    let want = {
        let d = Db::open(&db).unwrap();
        let seen: HashSet<String> = d
            .history("u0")
            .unwrap()
            .into_iter()
            .map(|h| h.item)
            .collect();
        let names = d.item_ids().unwrap();
        names.into_iter().rev().find(|n| !seen.contains(n)).unwrap()
    };
    assert!(out.contains(&want), "{want}: {out}");

    // A factor file with an id past the users: an error naming file, row and field.
    let bad = dir.path().join("bad.parquet");
    std::fs::write(
        &bad,
        recdb::spark_factors_bytes(&[0, 30], &[vec![1.0, 0.0], vec![0.0, 1.0]]),
    )
    .unwrap();
    let before = ok(&db, &["tables"]);
    let out = recdb(
        &db,
        &[
            "import",
            "table",
            "spark.users",
            "--format",
            "parquet",
            bad.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("bad.parquet: row 2 of the factors: field `id`: unknown user id 30"),
        "{err}"
    );
    assert_eq!(ok(&db, &["tables"]), before);
}

fn ml100k() -> PathBuf {
    let dir = PathBuf::from(
        std::env::var("RECDB_DATA")
            .expect("RECDB_DATA must name the real-data directory (ml-100k/ml-100k.inter inside)"),
    );
    let f = dir.join("ml-100k").join("ml-100k.inter");
    assert!(f.is_file(), "real data missing: {}", f.display());
    f
}

/// The python with pyspark: `RECDB_SPARK_PYTHON`, else `python3`; fails loudly without.
fn spark_python() -> String {
    let py = std::env::var("RECDB_SPARK_PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = Command::new(&py)
        .args([
            "-c",
            "import pyspark.ml.recommendation, pyspark; print(pyspark.__version__)",
        ])
        .output();
    match probe {
        Ok(o) if o.status.success() => py,
        _ => panic!(
            "pyspark is missing for `{py}`: python3 -m venv V && V/bin/pip install pyspark numpy, then RECDB_SPARK_PYTHON=V/bin/python (Java 17 must be on the PATH)"
        ),
    }
}

/// ML-100K's events and the NEXT split of `recdb eval --protocol next`: per user, events
/// by (timestamp, item id); the last is held out.
fn next_split(file: &Path) -> (Vec<RawEvent>, Vec<(String, String)>) {
    let body = std::fs::read_to_string(file).unwrap();
    let mut rows: Vec<(u64, i64, u64, f32)> = body
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (
                f[0].parse().unwrap(),
                f[3].parse::<f64>().unwrap() as i64,
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
            )
        })
        .collect();
    rows.sort_by_key(|&(u, ts, i, _)| (u, ts, i));
    let mut train = Vec::new();
    let mut test = Vec::new();
    for (k, &(u, ts, i, v)) in rows.iter().enumerate() {
        if rows.get(k + 1).is_none_or(|n| n.0 != u) {
            test.push((u.to_string(), i.to_string()));
        } else {
            train.push(RawEvent {
                user: u.to_string(),
                item: i.to_string(),
                kind: EventKind::Rating,
                value: v,
                timestamp: ts,
                group: None,
            });
        }
    }
    (train, test)
}

fn hr_at_10(db: &Db, model: &str, test: &[(String, String)]) -> f64 {
    let opts = QueryOptions::model(model).k(10);
    let users: Vec<&str> = test.iter().map(|(u, _)| u.as_str()).collect();
    let lists = db.recommend_batch(&users, &opts).unwrap();
    let hits = lists
        .iter()
        .zip(test)
        .filter(|(l, (_, item))| l.iter().any(|h| &h.id == item))
        .count();
    hits as f64 / test.len() as f64
}

/// The round trip on ML-100K's NEXT split: recdb's log out as Parquet, Spark MLlib's ALS
/// (implicit) in local mode, its factors back as `spark.users` / `spark.items`, indexed
/// and served; HR@10 within noise of recdb's own `als` on the same split.
#[test]
#[ignore = "needs pyspark, Java and RECDB_DATA; .ci/run runs it"]
fn spark_als_round_trip_ml100k() {
    let inter = ml100k();
    let py = spark_python();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let (train, test) = next_split(&inter);
    let test_users: HashSet<&str> = test.iter().map(|(u, _)| u.as_str()).collect();
    let trained: HashSet<&str> = train.iter().map(|e| e.user.as_str()).collect();
    // ML-100K users have 20+ ratings: every test user has training events.
    assert_eq!(test_users.len(), trained.len());
    let als_hr = {
        let db = Db::open(&path).unwrap();
        db.log_events(&train).unwrap();
        db.train("als", &Params::new(), &Default::default())
            .unwrap();
        hr_at_10(&db, "als", &test)
    };

    let log = dir.path().join("log");
    let factors = dir.path().join("factors");
    ok(
        &path,
        &[
            "export",
            "log",
            "--format",
            "parquet",
            log.to_str().unwrap(),
        ],
    );
    let t = std::time::Instant::now();
    let run = Command::new(&py)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/spark_als.py"))
        .arg(&log)
        .arg(&factors)
        .output()
        .expect("run scripts/spark_als.py");
    assert!(
        run.status.success(),
        "spark_als.py failed:\n{}",
        text(&run.stderr)
    );
    let spark_seconds = t.elapsed().as_secs_f64();
    for (table, sub) in [("spark.users", "users"), ("spark.items", "items")] {
        ok(
            &path,
            &[
                "import",
                "table",
                table,
                "--format",
                "parquet",
                factors.join(sub).to_str().unwrap(),
            ],
        );
    }
    ok(&path, &["index", "build", "spark.items"]);
    let db = Db::open(&path).unwrap();
    let spark_hr = hr_at_10(&db, "spark", &test);
    let figures: BTreeMap<&str, f64> = [
        ("als_hr@10", als_hr),
        ("spark_hr@10", spark_hr),
        ("spark_script_seconds", spark_seconds),
    ]
    .into();
    println!("spark round trip, ML-100K NEXT: {figures:?}");
    // 943 test users: one standard error of an HR near 0.1 is ~0.01. Measured: recdb
    // als 0.10, Spark 0.09-0.095 across reg 0.01-0.3 and alpha 2-10.
    assert!(spark_hr >= 0.08, "Spark's factors: HR@10 {spark_hr:.4}");
    assert!(
        (als_hr - spark_hr).abs() <= 0.03,
        "Spark {spark_hr:.4} vs recdb als {als_hr:.4}: more than noise apart"
    );
}
