//! What a new user meets: errors that name the right model, and the shell's commands
//! for finding items, searching any table and reading output.

mod common;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{load_synthetic, put_genres, train_als};
use recdb::{
    Db, Error, EvalOptions, ItemRecord, Metric, NoProgress, Params, ProgressSink, Protocol,
    QueryOptions, TrainOptions,
};

/// 40 users, 24 items with titles, and `popular`, `als` and `item2vec` trained.
fn trained_db() -> Db {
    let db = Db::temporary().unwrap();
    load_synthetic(&db, 40, 24, 5, 7);
    put_genres(&db, 24);
    let opts = TrainOptions::default();
    db.train("popular", &Params::new(), &opts).unwrap();
    train_als(&db, 1);
    let p = Params::new().set("dim", 8).set("epochs", 1);
    db.train("item2vec", &p, &opts).unwrap();
    db
}

#[test]
fn similar_on_popular_is_an_error_naming_models_with_item_vectors() {
    let db = trained_db();
    let e = db
        .similar("i1", &QueryOptions::model("popular").k(5))
        .unwrap_err();
    match &e {
        Error::NoVectors {
            model,
            kind,
            models,
        } => {
            assert_eq!(model, "popular");
            assert_eq!(kind, "item");
            assert_eq!(models, &["als", "item2vec"]);
        }
        other => panic!("expected NoVectors, got {other:?}"),
    }
}

#[test]
fn predict_on_item2vec_says_it_has_no_user_vectors() {
    let db = trained_db();
    let e = db.predict("u1", "i1", "item2vec").unwrap_err();
    assert!(
        matches!(&e, Error::NoVectors { model, kind, models }
            if model == "item2vec" && kind == "user" && models == &["als", "popular"]),
        "{e:?}"
    );
    assert!(!e.to_string().contains("train a model first"), "{e}");
}

#[test]
fn a_misspelt_model_is_unknown_with_a_suggestion() {
    let db = trained_db();
    for e in [
        db.recommend("u1", &QueryOptions::model("alss"))
            .unwrap_err(),
        db.similar("i1", &QueryOptions::model("alss")).unwrap_err(),
        db.predict("u1", "i1", "alss").unwrap_err(),
        db.train("alss", &Params::new(), &TrainOptions::default())
            .unwrap_err(),
    ] {
        match &e {
            Error::UnknownModel {
                name,
                known,
                suggestion,
            } => {
                assert_eq!(name, "alss");
                assert!(known.iter().any(|k| k == "item2vec"), "{known:?}");
                assert_eq!(suggestion.as_deref(), Some("als"));
            }
            other => panic!("expected UnknownModel, got {other:?}"),
        }
        let msg = e.to_string();
        assert!(msg.starts_with("unknown model `alss` (known: "), "{msg}");
        assert!(msg.ends_with("; did you mean `als`?)"), "{msg}");
    }
    // A known model not trained yet still says which table is missing.
    assert!(matches!(
        db.recommend("u1", &QueryOptions::model("bpr")),
        Err(Error::UnknownTable(t)) if t == "bpr.users"
    ));
}

#[test]
fn a_model_without_parameters_says_so() {
    let db = trained_db();
    let e = db
        .train(
            "popular",
            &Params::new().set("epochs", 3),
            &TrainOptions::default(),
        )
        .unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("`popular` takes no parameters"), "{msg}");
    assert!(!msg.contains("(known: )"), "{msg}");
}

/// Items with titles, one title shared by two items, a year kept apart from the title.
fn titled_db() -> Db {
    let db = Db::temporary().unwrap();
    load_synthetic(&db, 40, 24, 5, 7);
    let rec = |id: &str, title: &str, year: &str| ItemRecord {
        id: id.into(),
        title: Some(title.into()),
        genres: vec!["Sci-Fi".into()],
        attrs: vec![("release_year".into(), year.into())],
        ..Default::default()
    };
    db.put_items(&[
        rec("i1", "Star Wars", "1977"),
        rec("i2", "Hamlet", "1948"),
        rec("i3", "Hamlet", "1996"),
        // A title that is another item's id: the id wins.
        rec("i4", "i5", "2000"),
    ])
    .unwrap();
    db
}

#[test]
fn find_items_matches_titles_genres_and_attributes_ignoring_case() {
    let db = titled_db();
    let ids = |v: Vec<ItemRecord>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(ids(db.find_items("star WARS", 10).unwrap()), ["i1"]);
    assert_eq!(ids(db.find_items("hamlet", 10).unwrap()), ["i2", "i3"]);
    assert_eq!(ids(db.find_items("1996", 10).unwrap()), ["i3"]);
    assert_eq!(db.find_items("sci-fi", 10).unwrap().len(), 4);
    assert_eq!(db.find_items("sci-fi", 2).unwrap().len(), 2);
    assert!(db.find_items("sci-fi", 0).unwrap().is_empty());
    assert!(db.find_items("nothing like it", 10).unwrap().is_empty());
}

#[test]
fn resolve_item_takes_ids_then_unique_titles() {
    let db = titled_db();
    assert_eq!(db.resolve_item("i1").unwrap(), "i1");
    assert_eq!(db.resolve_item("star wars").unwrap(), "i1");
    assert_eq!(db.resolve_item("Star Wars (1977)").unwrap(), "i1");
    assert_eq!(db.resolve_item("Hamlet (1996)").unwrap(), "i3");
    assert_eq!(db.resolve_item("i5").unwrap(), "i5", "an exact id wins");
    match db.resolve_item("Hamlet").unwrap_err() {
        Error::AmbiguousItem {
            text,
            matches,
            candidates,
        } => {
            assert_eq!(text, "Hamlet");
            assert_eq!(matches, 2);
            assert_eq!(candidates, ["i2", "i3"]);
        }
        other => panic!("expected AmbiguousItem, got {other:?}"),
    }
    assert!(matches!(
        db.resolve_item("Star Wars (1980)"),
        Err(Error::UnknownItem(t)) if t == "Star Wars (1980)"
    ));
}

#[test]
fn item_event_count_counts_the_log() {
    let db = Db::temporary().unwrap();
    let events = load_synthetic(&db, 40, 24, 5, 7);
    for i in [0, 1, 5] {
        let want = events.iter().filter(|&&(_, it)| it == i).count() as u64;
        assert_eq!(db.item_event_count(&common::item(i)).unwrap(), want);
    }
    assert!(matches!(
        db.item_event_count("nope"),
        Err(Error::UnknownItem(_))
    ));
}

#[test]
fn prior_import_remembers_a_file_by_its_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.tsv"), dir.path().join("b.tsv"));
    std::fs::write(&a, "user_id\titem_id\nu1\ti1\nu2\ti1\n").unwrap();
    std::fs::write(&b, "user_id\titem_id\nu1\ti2\n").unwrap();
    let db = Db::temporary().unwrap();
    assert_eq!(db.prior_import(&a).unwrap(), None);
    db.import_events(&a, None).unwrap();
    let p = db.prior_import(&a).unwrap().expect("recorded");
    assert_eq!(p.events, 2);
    assert!(p.unix > 1_600_000_000, "{p:?}");
    // The same bytes under another name are the same file; other bytes are not.
    let copy = dir.path().join("copy.tsv");
    std::fs::copy(&a, &copy).unwrap();
    assert_eq!(db.prior_import(&copy).unwrap(), Some(p));
    assert_eq!(db.prior_import(&b).unwrap(), None);
    // Importing again is legal: the log appends.
    db.import_events(&a, None).unwrap();
    assert_eq!(db.stats().unwrap().events, 4);
}

#[test]
fn eval_on_a_database_matches_eval_on_the_same_events_as_files() {
    let db = Db::temporary().unwrap();
    let events = load_synthetic(&db, 60, 32, 6, 3);
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("user_id\titem_id\trating\ttimestamp\n");
    for (n, (u, i)) in events.iter().enumerate() {
        // load_synthetic's timestamps: u * 1000 + rank within the user.
        let rank = events[..n].iter().filter(|(v, _)| v == u).count() + 1;
        text.push_str(&format!("u{u}\ti{i}\t1\t{}\n", u * 1000 + rank));
    }
    std::fs::write(dir.path().join("ml-100k.inter"), text).unwrap();
    // The catalog in the database's order: ties in popularity rank alike.
    let mut catalog = String::from("item_id\ttitle\n");
    for id in db.item_ids().unwrap() {
        catalog.push_str(&format!("{id}\tTitle of {id}\n"));
    }
    std::fs::write(dir.path().join("ml-100k.item"), catalog).unwrap();
    for protocol in [Protocol::Next, Protocol::Rating] {
        let opts = EvalOptions {
            protocol,
            model: "popular".into(),
            data: Some(dir.path().to_path_buf()),
            params: Params::new(),
            seed: 1,
            threads: None,
            rank: None,
            validation: false,
        };
        let on_files = recdb::evaluate_quiet(&opts).unwrap();
        let on_db = recdb::evaluate_db(&db, &opts, &NoProgress).unwrap();
        assert_eq!(on_db.users, on_files.users, "{protocol:?}");
        assert_eq!(on_db.metrics, on_files.metrics, "{protocol:?}");
        assert!(on_db.users > 0);
    }
    let lee = EvalOptions {
        protocol: Protocol::Lee,
        model: "doc2vec".into(),
        data: None,
        params: Params::new(),
        seed: 1,
        threads: None,
        rank: None,
        validation: false,
    };
    assert!(matches!(
        recdb::evaluate_db(&db, &lee, &NoProgress),
        Err(Error::InvalidParameter { name, .. }) if name == "protocol"
    ));
}

#[test]
fn eval_data_is_relative_to_the_current_directory_and_missing_data_says_where() {
    let opts = EvalOptions {
        protocol: Protocol::Next,
        model: "popular".into(),
        data: Some("no/such/dir".into()),
        params: Params::new(),
        seed: 1,
        threads: None,
        rank: None,
        validation: false,
    };
    let msg = recdb::evaluate_quiet(&opts).unwrap_err().to_string();
    let cwd = std::env::current_dir().unwrap();
    assert!(msg.contains("no/such/dir"), "{msg}");
    assert!(msg.contains(&cwd.display().to_string()), "{msg}");
    assert!(msg.contains("no such directory"), "{msg}");
    let empty = tempfile::tempdir().unwrap();
    let opts = EvalOptions {
        data: Some(empty.path().to_path_buf()),
        ..opts
    };
    let msg = recdb::evaluate_quiet(&opts).unwrap_err().to_string();
    assert!(msg.contains("no *.inter file in it"), "{msg}");
}

/// Records every progress report.
#[derive(Default)]
struct Messages(Mutex<Vec<(f64, String)>>);

impl ProgressSink for Messages {
    fn report(&self, fraction: f64, message: &str) {
        self.0.lock().unwrap().push((fraction, message.to_owned()));
    }
}

#[test]
fn progress_says_which_epoch_of_how_many() {
    let db = Db::temporary().unwrap();
    load_synthetic(&db, 40, 24, 5, 7);
    let sink = std::sync::Arc::new(Messages::default());
    let p = Params::new().set("dim", 8).set("epochs", 2);
    let opts = TrainOptions {
        control: recdb::JobControl {
            progress: Some(sink.clone()),
            cancel: None,
        },
        ..Default::default()
    };
    db.train("item2vec", &p, &opts).unwrap();
    let msgs = sink.0.lock().unwrap();
    assert!(msgs.iter().any(|(_, m)| m == "epoch 1/2"), "{msgs:?}");
    assert!(msgs.iter().any(|(_, m)| m == "epoch 2/2"), "{msgs:?}");
}

#[test]
fn a_running_job_shows_its_seconds_and_a_cancelled_one_keeps_its_progress() {
    let db = Db::temporary().unwrap();
    load_synthetic(&db, 2000, 64, 12, 7);
    // Enough epochs (the most allowed) to run for minutes; cancelled long before the end.
    let p = Params::new().set("dim", 16).set("epochs", 10_000);
    let h = db
        .spawn_train("item2vec", &p, &TrainOptions::default())
        .unwrap();
    let id = h.id;
    let start = Instant::now();
    loop {
        let info = db.job(id).unwrap();
        assert_eq!(info.state, recdb::JobState::Running, "{info:?}");
        if info.progress > 0.0 && start.elapsed() > Duration::from_millis(2100) {
            assert!(
                info.seconds >= 1.0,
                "elapsed seconds of a running job: {info:?}"
            );
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "no progress");
        std::thread::sleep(Duration::from_millis(50));
    }
    db.cancel_job(id).unwrap();
    assert!(matches!(h.wait(), Err(Error::Cancelled)));
    let info = db.job(id).unwrap();
    assert_eq!(info.state, recdb::JobState::Cancelled);
    assert!(
        info.progress > 0.0 && info.progress < 1.0,
        "a cancelled job keeps its progress: {info:?}"
    );
}

#[test]
fn every_model_has_defaults_and_metrics_print_lowercase() {
    for m in recdb::MODELS {
        let json: serde_json::Value =
            serde_json::from_str(&recdb::model_defaults(m).unwrap()).unwrap();
        assert!(json.is_object(), "{m}: {json}");
    }
    let als: serde_json::Value =
        serde_json::from_str(&recdb::model_defaults("als").unwrap()).unwrap();
    assert!(als.get("factors").is_some(), "{als}");
    assert!(matches!(
        recdb::model_defaults("alss"),
        Err(Error::UnknownModel { .. })
    ));
    assert_eq!(serde_json::to_value(Metric::Dot).unwrap(), "dot");
    assert_eq!(serde_json::to_value(Metric::Cosine).unwrap(), "cosine");
}

// ---- the `recdb` binary ----

use common::cli::{ok, piped, recdb, text, write_events};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// A database directory with events (30 users, 20 items) and titled items imported.
struct Cli {
    dir: tempfile::TempDir,
    db: PathBuf,
    events: PathBuf,
}

fn cli() -> Cli {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.tsv");
    write_events(&events);
    let items = dir.path().join("items.tsv");
    let mut f = std::fs::File::create(&items).unwrap();
    writeln!(f, "item_id\ttitle\tgenres\trelease_year").unwrap();
    for i in 0..20 {
        let title = match i {
            0 => "Star Wars".to_string(),
            1 | 2 => "Hamlet".to_string(),
            _ => format!("Movie {i}"),
        };
        writeln!(f, "i{i}\t{title}\tDrama\t{}", 1970 + i).unwrap();
    }
    let db = dir.path().join("db");
    ok(&db, &["import", "events", events.to_str().unwrap()]);
    ok(&db, &["import", "items", items.to_str().unwrap()]);
    Cli { dir, db, events }
}

fn fails(db: &Path, args: &[&str]) -> String {
    let out = recdb(db, args);
    assert!(!out.status.success(), "recdb {args:?} succeeded");
    text(&out.stderr)
}

#[test]
fn cli_find_item_counts_and_titles_in_similar() {
    let c = cli();
    let found = ok(&c.db, &["find", "HAMLET"]);
    assert!(found.contains("i1") && found.contains("i2"), "{found}");
    assert!(!found.contains("Star Wars"), "{found}");
    // i0 is in the events of the users with u*3 + j*j ≡ 0 (mod 20).
    let item = ok(&c.db, &["item", "Star Wars (1970)"]);
    let want = (0..30u32)
        .flat_map(|u| (0..8u32).map(move |j| (u * 3 + j * j) % 20))
        .filter(|&i| i == 0)
        .count();
    assert!(item.contains(&format!("events        {want}")), "{item}");
    ok(
        &c.db,
        &["train", "als", "--factors", "4", "--iterations", "2"],
    );
    let by_title = ok(&c.db, &["similar", "star wars", "-k", "3"]);
    let by_id = ok(&c.db, &["similar", "i0", "-k", "3"]);
    assert_eq!(by_title, by_id);
    let e = fails(&c.db, &["similar", "Hamlet"]);
    assert!(
        e.contains("`Hamlet` is the title of 2 items: i1, i2"),
        "{e}"
    );
}

#[test]
fn cli_model_errors_are_the_libraries() {
    let c = cli();
    let e = fails(&c.db, &["train", "alss"]);
    assert!(e.contains("unknown model `alss` (known: "), "{e}");
    assert!(e.contains("; did you mean `als`?)"), "{e}");
    let e = fails(&c.db, &["train", "popular", "--epochs", "3"]);
    assert!(e.contains("`popular` takes no parameters"), "{e}");
    ok(&c.db, &["train", "popular"]);
    let e = fails(&c.db, &["similar", "i1", "--model", "popular"]);
    assert!(e.contains("model `popular` has no item vectors"), "{e}");
}

#[test]
fn cli_search_any_table_by_id_or_vector() {
    let c = cli();
    let vecs = c.dir.path().join("emb.tsv");
    std::fs::write(&vecs, "a\t1\t0\nb\t0.9\t0.1\nc\t0\t1\nd\t-1\t0\n").unwrap();
    ok(
        &c.db,
        &[
            "import",
            "table",
            "emb",
            vecs.to_str().unwrap(),
            "--format",
            "tsv",
        ],
    );
    let out = ok(
        &c.db,
        &["--format", "csv", "search", "emb", "--id", "a", "-k", "2"],
    );
    let rows: Vec<&str> = out.lines().collect();
    assert_eq!(rows[0], "rank,id,score");
    assert!(rows[1].starts_with("1,b,"), "{out}");
    assert!(rows[2].starts_with("2,c,"), "{out}");
    assert_eq!(rows.len(), 3, "the row itself is left out: {out}");
    let out = ok(
        &c.db,
        &[
            "--format", "csv", "search", "emb", "--vector", "0, 1", "-k", "1",
        ],
    );
    assert_eq!(out, "rank,id,score\n1,c,1.0000\n");
    let e = fails(&c.db, &["search", "emb", "--id", "zz"]);
    assert!(e.contains("no row `zz` in table `emb`"), "{e}");
    let e = fails(&c.db, &["search", "emb", "--vector", "1 2 3"]);
    assert!(e.contains("dimension mismatch"), "{e}");
}

#[test]
fn cli_search_a_model_table_by_item_or_user_id() {
    let c = cli();
    ok(&c.db, &["train", "als", "--factors", "4"]);
    let out = ok(
        &c.db,
        &[
            "--format",
            "csv",
            "search",
            "als.items",
            "--id",
            "i7",
            "-k",
            "3",
        ],
    );
    let rows: Vec<&str> = out.lines().collect();
    assert_eq!(rows[0], "rank,id,score");
    assert_eq!(rows.len(), 4, "{out}");
    assert!(
        rows[1..]
            .iter()
            .all(|r| r.split(',').nth(1).unwrap().starts_with('i')),
        "{out}"
    );
    assert!(!out.contains(",i7,"), "the row itself is left out: {out}");
    let e = fails(&c.db, &["search", "als.items", "--id", "u3"]);
    assert!(e.contains("no row `u3` in table `als.items`"), "{e}");
}

#[test]
fn cli_importing_a_file_twice_says_so_unless_allowed() {
    let c = cli();
    let file = c.events.to_str().unwrap();
    let out = recdb(&c.db, &["import", "events", file]);
    assert!(out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("file already imported on "), "{err}");
    assert!(
        err.contains("(240 events); importing again appends"),
        "{err}"
    );
    let out = recdb(&c.db, &["import", "events", file, "--allow-duplicate"]);
    assert!(out.status.success());
    assert!(!text(&out.stderr).contains("already imported"));
    assert!(ok(&c.db, &["stats"]).contains("720"));
}

#[test]
fn cli_csv_is_one_csv_table_and_tables_has_no_repeated_column() {
    let c = cli();
    ok(
        &c.db,
        &["train", "als", "--factors", "4", "--iterations", "2"],
    );
    for args in [&["stats"][..], &["check"], &["tables"], &["jobs"]] {
        let mut a = vec!["--format", "csv"];
        a.extend_from_slice(args);
        let out = ok(&c.db, &a);
        let mut r = csv::ReaderBuilder::new().from_reader(out.as_bytes());
        let width = r.headers().unwrap().len();
        for rec in r.records() {
            assert_eq!(rec.unwrap().len(), width, "{args:?}: {out}");
        }
        assert!(
            !out.contains("\n\n") && !out.contains("ok\n"),
            "{args:?}: {out}"
        );
    }
    let t = ok(&c.db, &["--format", "csv", "tables"]);
    let header: Vec<&str> = t.lines().next().unwrap().split(',').collect();
    let rows: Vec<Vec<&str>> = t.lines().skip(1).map(|l| l.split(',').collect()).collect();
    for a in 0..header.len() {
        for b in a + 1..header.len() {
            assert!(
                rows.iter().any(|r| r[a] != r[b]),
                "columns {} and {} repeat each other: {t}",
                header[a],
                header[b]
            );
        }
    }
}

#[test]
fn cli_floats_print_short() {
    let c = cli();
    let out = ok(
        &c.db,
        &[
            "train",
            "sgd",
            "--lr",
            "0.01",
            "--epochs",
            "1",
            "--factors",
            "4",
        ],
    );
    assert!(out.contains("\"learning_rate\":0.01"), "{out}");
    assert!(!out.contains("0.0099999"), "{out}");
    let json = ok(&c.db, &["--format", "json", "jobs"]);
    assert!(!json.contains("0.0099999"), "{json}");
}

#[test]
fn cli_train_help_lists_every_model_with_defaults() {
    let c = cli();
    let help = ok(&c.db, &["train", "--help"]);
    for m in recdb::MODELS {
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(&format!("{m} "))),
            "{m} missing: {help}"
        );
    }
    assert!(help.contains("factors=32"), "{help}");
    assert!(
        help.lines()
            .any(|l| l.trim_start().starts_with("popular ") && l.ends_with("(no parameters)")),
        "{help}"
    );
}

#[test]
fn cli_eval_on_the_users_database() {
    let c = cli();
    let db = c.db.to_str().unwrap();
    let out = ok(
        &c.db,
        &[
            "eval",
            "--protocol",
            "next",
            "--model",
            "popular",
            "--db",
            db,
            "--format",
            "json",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    // Every user's last event is held out (a pair logged twice is held out twice).
    assert!(v["users"].as_u64().unwrap() >= 30, "{out}");
    assert!(v["metrics"]["hr@10"].is_number(), "{out}");
    assert_eq!(v["data"], db, "{out}");
    // The session's own database, already open in the process, works too.
    let out = ok(
        &c.db,
        &[
            "-c",
            &format!("stats; eval --protocol rating --model popular --db {db}"),
        ],
    );
    assert!(out.contains("rmse"), "{out}");
}

#[test]
fn shell_quits_on_quit_and_suggests_the_nearest_command() {
    let c = cli();
    assert!(text(&piped(&c.db, "stats\n").stdout).contains("events"));
    let out = piped(&c.db, "simlar i1\n");
    let e = text(&out.stderr);
    assert!(e.contains("unrecognized subcommand 'simlar'"), "{e}");
    assert!(e.contains("'similar'"), "the nearest command: {e}");
    for quit in ["quit", "exit"] {
        let out = piped(&c.db, &format!("{quit}\nstats\n"));
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(!text(&out.stdout).contains("events"), "{quit} did not quit");
    }
}
