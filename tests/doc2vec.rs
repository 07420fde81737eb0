//! Documents, paragraph vectors, word vectors and text queries, on synthetic corpora.

use recdb::{Db, Error, EventKind, ItemRecord, Params, TrainOptions};

const FRUIT: &[&str] = &[
    "apple", "banana", "cherry", "grape", "lemon", "mango", "peach", "pear", "plum", "melon",
];
const CARS: &[&str] = &[
    "engine", "wheel", "brake", "clutch", "piston", "gear", "axle", "motor", "tyre", "exhaust",
];

/// A deterministic pseudo-random stream (no dependency on the crate's RNG).
struct Lcg(u64);
impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

/// `n` documents per topic, `len` words each, tags `fruit00`, `cars00`, ...
fn two_topics(n: usize, len: usize) -> Vec<(String, String)> {
    let mut r = Lcg(7);
    let mut docs = Vec::new();
    for (name, words) in [("fruit", FRUIT), ("cars", CARS)] {
        for i in 0..n {
            let text: Vec<&str> = (0..len).map(|_| words[r.below(words.len())]).collect();
            docs.push((format!("{name}{i:02}"), text.join(" ")));
        }
    }
    docs
}

fn opts() -> TrainOptions {
    TrainOptions {
        seed: 3,
        threads: Some(1),
        ..Default::default()
    }
}

fn params() -> Params {
    Params::new()
        .set("docs", "imported")
        .set("dim", 16)
        .set("epochs", 40)
        .set("min_count", 1)
        .set("sample", 0)
        .set("dbow_words", true)
}

fn cos(a: &[f32], b: &[f32]) -> f32 {
    let d: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let n = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    d / (n(a) * n(b))
}

fn trained(docs: &[(String, String)]) -> Db {
    let db = Db::temporary().unwrap();
    db.put_docs(docs).unwrap();
    db.train("doc2vec", &params(), &opts()).unwrap();
    db
}

#[test]
fn bad_doc_files_are_rejected_whole_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("db")).unwrap();
    let good = dir.path().join("good.tsv");
    std::fs::write(&good, "a\tfirst text\nb\tsecond text\n").unwrap();
    let r = db.import_docs(&good).unwrap();
    assert_eq!((r.records, r.new_ids), (2, 2));
    let before = db.docs().unwrap();
    let cases: [(&str, &[u8], u64, &str); 4] = [
        ("tab.tsv", b"c\tok\nmissing tab\n", 2, "no tab"),
        ("tag.tsv", b"c\tok\n\tno tag\n", 2, "empty tag"),
        ("dup.tsv", b"c\tone\nd\ttwo\nc\tthree\n", 3, "duplicate tag"),
        ("utf.tsv", b"c\tok\nd\tbad \xc3\x28 bytes\n", 2, "UTF-8"),
    ];
    for (name, bytes, line, msg) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        match db.import_docs(&path) {
            Err(Error::Parse {
                file,
                line: l,
                msg: m,
                ..
            }) => {
                assert!(file.ends_with(name), "{file}");
                assert_eq!(l, line, "{name}: {m}");
                assert!(m.contains(msg), "{name}: {m}");
            }
            other => panic!("{name}: expected a parse error, got {other:?}"),
        }
        assert_eq!(db.docs().unwrap(), before, "{name} changed the database");
        assert_eq!(db.doc("c").unwrap(), None);
    }
    assert_eq!(db.doc("a").unwrap().as_deref(), Some("first text"));
    assert_eq!(db.stats().unwrap().docs, 2);
    assert_eq!(db.check().unwrap().docs, 2);
    assert!(matches!(db.put_docs(&[]), Err(Error::Empty(_))));
}

#[test]
fn same_topic_documents_are_nearest() {
    let docs = two_topics(12, 40);
    let db = trained(&docs);
    let s = db.searcher("doc2vec.docs").unwrap();
    assert_eq!(s.view().rows(), docs.len());
    let mut right = 0;
    for r in 0..s.view().rows() {
        let q = s.view().row(r).to_vec();
        let hits = s
            .search(
                &q,
                &recdb::SearchOptions {
                    k: 2,
                    ..Default::default()
                },
            )
            .unwrap();
        let me = db.row_id(s.view(), r);
        let other = hits.iter().find(|h| h.0 as usize != r).unwrap();
        let them = db.row_id(s.view(), other.0 as usize);
        right += usize::from(me[..4] == them[..4]);
    }
    assert!(right >= docs.len() * 9 / 10, "{right} of {}", docs.len());
    // Inferred vectors of unseen texts land with their topic too.
    let hits = db
        .similar_text(
            "mango peach plum apple cherry grape lemon",
            "doc2vec",
            5,
            true,
        )
        .unwrap();
    assert!(hits.iter().all(|h| h.id.starts_with("fruit")), "{hits:?}");
    let words = db.similar_word("piston", "doc2vec", 3).unwrap();
    assert!(
        words.iter().all(|h| CARS.contains(&h.id.as_str())),
        "{words:?}"
    );
}

#[test]
fn infer_is_deterministic_and_stable() {
    let db = trained(&two_topics(10, 40));
    let text = "engine brake clutch gear axle wheel motor piston";
    let a = db.infer(text, "doc2vec").unwrap();
    assert_eq!(a, db.infer(text, "doc2vec").unwrap());
    assert_eq!(a.len(), 16);
    let b = db.infer_seeded(text, "doc2vec", 999).unwrap();
    assert!(cos(&a, &b) >= 0.95, "cosine {}", cos(&a, &b));
    // Words it does not know are skipped; a text of none of them is an error.
    let c = db.infer(&format!("{text} zebra 123"), "doc2vec").unwrap();
    assert!(cos(&a, &c) >= 0.95);
    assert!(matches!(
        db.infer("zebra quokka 42", "doc2vec"),
        Err(Error::InvalidInput(_))
    ));
    let plain = db.sentence_vector(text, "doc2vec", false).unwrap();
    let sif = db.sentence_vector(text, "doc2vec", true).unwrap();
    assert_eq!((plain.len(), sif.len()), (16, 16));
    assert!(plain.iter().chain(&sif).all(|x| x.is_finite()));
}

#[test]
fn each_document_inferred_again_finds_itself() {
    // Every document has words of its own besides the shared ones.
    let mut r = Lcg(11);
    let docs: Vec<(String, String)> = (0..16)
        .map(|i| {
            let own: Vec<String> = (0..4)
                .map(|j| format!("own{}x{}", letter(i), letter(j)))
                .collect();
            let mut words: Vec<String> = Vec::new();
            for _ in 0..30 {
                words.push(if r.below(2) == 0 {
                    own[r.below(4)].clone()
                } else {
                    FRUIT[r.below(FRUIT.len())].to_string()
                });
            }
            (format!("d{i:02}"), words.join(" "))
        })
        .collect();
    let db = trained(&docs);
    let mut own = 0;
    for (tag, text) in &docs {
        let hits = db.similar_text(text, "doc2vec", 1, true).unwrap();
        own += usize::from(hits[0].id == *tag);
    }
    assert!(own >= 15, "{own} of 16 found themselves");
}

fn letter(i: usize) -> char {
    (b'a' + i as u8) as char
}

#[test]
fn infer_after_reopen_matches() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let text = "apple pear plum cherry";
    let before = {
        let db = Db::open(&path).unwrap();
        db.put_docs(&two_topics(6, 30)).unwrap();
        db.train("doc2vec", &params(), &opts()).unwrap();
        db.infer(text, "doc2vec").unwrap()
    };
    let db = Db::open(&path).unwrap();
    assert_eq!(db.infer(text, "doc2vec").unwrap(), before);
    assert!(db.doc("fruit00").unwrap().is_some());
}

#[test]
fn bad_parameters_and_empty_corpora_are_errors() {
    let db = Db::temporary().unwrap();
    assert!(matches!(
        db.train("doc2vec", &params(), &opts()),
        Err(Error::Empty(_))
    ));
    db.put_docs(&[("x".into(), "1 2 3 !".into())]).unwrap();
    assert!(matches!(
        db.train("doc2vec", &params(), &opts()),
        Err(Error::Empty(_))
    ));
    for (k, v) in [
        ("dim", "0"),
        ("window", "0"),
        ("negative", "0"),
        ("epochs", "0"),
        ("min_count", "0"),
        ("alpha", "-1"),
        ("docs", "books"),
        ("infer_epochs", "0"),
    ] {
        match db.train("doc2vec", &params().set(k, v), &opts()) {
            Err(Error::InvalidParameter { name, .. }) => assert_eq!(name, k),
            other => panic!("{k}={v}: {other:?}"),
        }
    }
    match db.train("doc2vec", &params().set("dm", true), &opts()) {
        Err(Error::InvalidParameter { name, .. }) => assert_eq!(name, "dbow_words"),
        other => panic!("dm with dbow_words: {other:?}"),
    }
    assert!(matches!(
        db.infer("apple", "doc2vec"),
        Err(Error::UnknownTable(_))
    ));
}

#[test]
fn items_users_and_word2vec_corpora() {
    let db = Db::temporary().unwrap();
    let mut batch = db.batch();
    for u in 0..20 {
        for i in 0..6 {
            let item = if u % 2 == 0 {
                format!("f{}", (u + i) % 8)
            } else {
                format!("c{}", (u + i) % 8)
            };
            batch
                .push(&format!("u{u}"), &item, EventKind::View, 1.0, i)
                .unwrap();
        }
    }
    batch.commit().unwrap();
    let mut items: Vec<ItemRecord> = (0..8)
        .flat_map(|i| {
            [
                ItemRecord {
                    id: format!("f{i}"),
                    title: Some(format!("{} {}", FRUIT[i], FRUIT[i + 1])),
                    genres: vec!["fruit".into()],
                    ..Default::default()
                },
                ItemRecord {
                    id: format!("c{i}"),
                    title: Some(format!("{} {}", CARS[i], CARS[i + 1])),
                    genres: vec!["cars".into()],
                    ..Default::default()
                },
            ]
        })
        .collect();
    // A cold-start item: text, no events.
    items.push(ItemRecord {
        id: "cold".into(),
        text: Some("apple mango fruit".into()),
        ..Default::default()
    });
    db.put_items(&items).unwrap();
    let p = params().set("docs", "items");
    db.train("doc2vec", &p, &opts()).unwrap();
    let t = db.table("doc2vec.items").unwrap();
    assert_eq!(t.rows(), db.item_ids().unwrap().len());
    assert_eq!(t.space(), recdb::RowSpace::Items);
    assert!(db
        .similar("cold", &recdb::QueryOptions::model("doc2vec").k(3))
        .is_ok());

    db.train("doc2vec", &params().set("docs", "users"), &opts())
        .unwrap();
    let u = db.table("doc2vec.users").unwrap();
    assert_eq!((u.rows(), u.space()), (20, recdb::RowSpace::Users));

    db.put_docs(&two_topics(8, 30)).unwrap();
    let info = db
        .train(
            "word2vec",
            &Params::new()
                .set("dim", 12)
                .set("epochs", 20)
                .set("min_count", 1),
            &opts(),
        )
        .unwrap();
    assert!(info.message.contains("words/s"), "{}", info.message);
    assert!(db.table("word2vec.words").unwrap().rows() >= 20);
    let near = db.similar_word("brake", "word2vec", 3).unwrap();
    assert_eq!(near.len(), 3);
    assert!(db.sentence_vector("apple pear", "word2vec", true).is_ok());
    assert!(matches!(
        db.infer("apple pear", "word2vec"),
        Err(Error::InvalidInput(_))
    ));
    assert!(db.similar_word("zebra", "word2vec", 3).is_err());
}

#[test]
fn docs_survive_dump_and_restore() {
    let db = Db::temporary().unwrap();
    let docs = two_topics(3, 5);
    db.put_docs(&docs).unwrap();
    let mut dump = Vec::new();
    let r = db.dump(&mut dump).unwrap();
    assert_eq!(r.docs, 6);
    let copy = Db::temporary().unwrap();
    let back = copy.restore(&mut dump.as_slice(), "dump").unwrap();
    assert_eq!(back, r);
    assert_eq!(copy.docs().unwrap(), db.docs().unwrap());
    let mut again = Vec::new();
    copy.dump(&mut again).unwrap();
    assert_eq!(again, dump);
    // A dump cut before its end line restores nothing.
    let cut = &dump[..dump.len() - 10];
    let empty = Db::temporary().unwrap();
    assert!(empty.restore(&mut &cut[..], "cut").is_err());
    assert!(empty.docs().unwrap().is_empty());
}

/// `infer` reads the training job's hyperparameters and seed: they must survive a dump
/// and a restore into a fresh database (PV-DM, non-default window and infer_epochs).
#[test]
fn infer_after_dump_and_restore_matches() {
    let db = Db::temporary().unwrap();
    db.put_docs(&two_topics(6, 30)).unwrap();
    let p = params()
        .set("dbow_words", false)
        .set("dm", true)
        .set("window", 3)
        .set("infer_epochs", 7);
    db.train("doc2vec", &p, &opts()).unwrap();
    let text = "apple pear plum cherry";
    let before = db.infer(text, "doc2vec").unwrap();
    let mut dump = Vec::new();
    db.dump(&mut dump).unwrap();
    let copy = Db::temporary().unwrap();
    copy.restore(&mut dump.as_slice(), "dump").unwrap();
    assert_eq!(copy.infer(text, "doc2vec").unwrap(), before);
    assert_eq!(
        copy.infer_seeded(text, "doc2vec", 11).unwrap(),
        db.infer_seeded(text, "doc2vec", 11).unwrap()
    );
    let mut again = Vec::new();
    copy.dump(&mut again).unwrap();
    assert_eq!(again, dump);
}

fn recdb(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_recdb"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn cli_import_train_and_text_queries() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let db = db.to_str().unwrap();
    let file = dir.path().join("docs.tsv");
    let lines: Vec<String> = two_topics(8, 30)
        .iter()
        .map(|(t, x)| format!("{t}\t{x}"))
        .collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    let ok = |args: &[&str]| {
        let out = recdb(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    ok(&["--db", db, "import", "docs", file.to_str().unwrap()]);
    let train = ok(&[
        "--db",
        db,
        "train",
        "doc2vec",
        "--docs",
        "imported",
        "--dbow",
        "--dbow-words",
        "--epochs",
        "30",
        "--param",
        "dim=8",
        "--param",
        "min_count=1",
        "--threads",
        "1",
    ]);
    assert!(train.contains("words/s"), "{train}");
    let hits = ok(&["--db", db, "similar-text", "brake clutch gear", "-k", "3"]);
    assert!(hits.contains("cars"), "{hits}");
    let vector = ok(&["--db", db, "--format", "json", "infer", "apple pear"]);
    assert!(vector.contains("\"vector\""), "{vector}");
    ok(&[
        "--db",
        db,
        "similar-word",
        "apple",
        "--model",
        "doc2vec",
        "-k",
        "2",
    ]);
    let bad = recdb(&["--db", db, "similar-text", "zzz qqq"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no word"));
}

/// A synthetic corpus with the LEE layout: the protocol's plumbing and its thresholds.
#[test]
fn lee_protocol_runs_on_synthetic_files_and_thresholds_fail_loudly() {
    let dir = tempfile::tempdir().unwrap();
    let docs = two_topics(175, 20);
    let text = |r: std::ops::Range<usize>| -> String {
        r.map(|i| docs[i].1.clone()).collect::<Vec<_>>().join("\n")
    };
    std::fs::write(dir.path().join("lee_background.cor"), text(25..325)).unwrap();
    // 25 fruit + 25 cars documents; humans say: same topic similar.
    let test: Vec<usize> = (0..25).chain(325..350).collect();
    std::fs::write(
        dir.path().join("lee.cor"),
        test.iter()
            .map(|&i| docs[i].1.clone())
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .unwrap();
    let sim: Vec<String> = (0..50)
        .map(|i| {
            (0..50)
                .map(|j| if (i < 25) == (j < 25) { "0.9" } else { "0.1" })
                .collect::<Vec<_>>()
                .join("\t")
        })
        .collect();
    std::fs::write(dir.path().join("similarities0-1.txt"), sim.join("\n")).unwrap();
    let data = dir.path().to_str().unwrap();
    let args = [
        "eval",
        "--protocol",
        "lee",
        "--model",
        "doc2vec",
        "--data",
        data,
        "--format",
        "json",
        "--threads",
        "1",
        "--param",
        "dim=16",
        "--param",
        "epochs=20",
        "--param",
        "min_count=1",
        "--param",
        "sample=0",
    ];
    let out = recdb(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let m = &report["metrics"];
    for k in [
        "pearson",
        "pearson_inferred",
        "self_nearest",
        "tfidf_pearson",
    ] {
        assert!(m[k].as_f64().is_some(), "{k} missing: {stdout}");
    }
    assert!(m["pearson"].as_f64().unwrap() > 0.5, "{stdout}");
    let mut strict = args.to_vec();
    strict.extend(["--min-r", "1.01"]);
    let out = recdb(&strict);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("below --min-r"));
    std::fs::remove_file(dir.path().join("lee.cor")).unwrap();
    let out = recdb(&args);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("lee.cor"));
}
