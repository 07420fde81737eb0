//! Two-stage `recommend` (candidates → rank) on synthetic data: the answer equals the
//! naive two stages (retrieve n, score each with `predict`, sort), filters reach the
//! candidates, batch equals one at a time, parameters and rankers are validated, and the
//! shell's `--candidates MODEL:N --rank RANKER`.

mod common;

use common::cli::{ok, recdb, text, write_events};
use common::{als_params, grouped_db, ids, seen_items, user};
use recdb::{Db, Params, QueryOptions, TrainOptions, MAX_CANDIDATES};

fn opts() -> TrainOptions {
    TrainOptions {
        seed: 1,
        threads: Some(2),
        ..Default::default()
    }
}

/// `ease` retrieves, `als` ranks.
fn trained() -> Db {
    let db = grouped_db();
    db.train("ease", &Params::new().set("lambda", 10), &opts())
        .unwrap();
    db.train("als", &als_params(), &opts()).unwrap();
    db
}

/// The two stages by hand: `retrieval`'s top `n` (with `base`'s filters), each scored by
/// `predict` of the ranker, sorted by that score (ties in retrieval order), top `k`.
fn naive(db: &Db, u: &str, base: &QueryOptions, n: usize, ranker: &str) -> Vec<(String, f32)> {
    let retrieve = QueryOptions {
        k: n,
        ..base.clone()
    };
    let cands = db.recommend(u, &retrieve).unwrap();
    let mut scored: Vec<(String, f32)> = cands
        .iter()
        .map(|h| (h.id.clone(), db.predict(u, &h.id, ranker).unwrap()))
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1));
    scored.truncate(base.k);
    scored
}

/// `ease` retrieves by name (its items mapped back to dense ids), `als` as a factor
/// model with dense ids throughout (only the answer is named): both equal the naive.
#[test]
fn equals_the_naive_two_stages() {
    let db = trained();
    for (retrieval, n, genre, include_seen) in [
        ("ease", 30, None, false),
        ("ease", 10, None, false),
        ("ease", 50, Some("Comedy"), false),
        ("ease", 25, None, true),
        ("als", 30, None, false),
        ("als", 50, Some("Comedy"), false),
        ("als", 25, None, true),
    ] {
        let base = QueryOptions {
            genre: genre.map(str::to_owned),
            include_seen,
            ..QueryOptions::model(retrieval).k(10)
        };
        let two = base.clone().candidates(n).rank("als");
        for u in [0, 3, 17, 222] {
            let want = naive(&db, &user(u), &base, n, "als");
            let got = db.recommend(&user(u), &two).unwrap();
            assert_eq!(got.len(), 10);
            for (g, (id, s)) in got.iter().zip(&want) {
                assert_eq!(&g.id, id, "{retrieval}: user {u} n {n}");
                assert!((g.score - s).abs() < 1e-4, "{} vs {s}", g.score);
            }
            if !include_seen {
                let seen = seen_items(&db, &user(u));
                assert!(got.iter().all(|h| !seen.contains(&h.id)));
            }
        }
    }
}

#[test]
fn the_answer_is_among_the_candidates_and_batch_equals_one_at_a_time() {
    let db = trained();
    let two = QueryOptions::model("ease").k(5).candidates(20).rank("als");
    let names: Vec<String> = (0..40).map(user).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let batch = db.recommend_batch(&refs, &two).unwrap();
    for (u, got) in refs.iter().zip(&batch) {
        assert_eq!(got, &db.recommend(u, &two).unwrap(), "{u}");
        let cands = ids(&db.recommend(u, &QueryOptions::model("ease").k(20)).unwrap());
        assert!(got.iter().all(|h| cands.contains(&h.id)));
    }
    // Default candidate count: the options need only the ranker.
    let d = db
        .recommend(&user(1), &QueryOptions::model("ease").k(5).rank("als"))
        .unwrap();
    assert_eq!(d.len(), 5);
}

#[test]
fn parameters_and_rankers_are_validated() {
    let db = grouped_db();
    db.train("ease", &Params::new().set("lambda", 10), &opts())
        .unwrap();
    let base = QueryOptions::model("ease").k(10);
    let err = |o: &QueryOptions| db.recommend(&user(1), o).unwrap_err().to_string();
    // A ranker that is not trained, or does not exist (nearest name suggested).
    let e = err(&base.clone().rank("als"));
    assert!(e.contains("rank") && e.contains("`als`"), "{e}");
    let e = err(&base.clone().rank("alss"));
    assert!(e.contains("rank") && e.contains("alss"), "{e}");
    // A model without user vectors cannot rank.
    db.train("item2vec", &Params::new().set("epochs", 1), &opts())
        .unwrap();
    let e = err(&base.clone().rank("item2vec"));
    assert!(e.contains("rank"), "{e}");
    db.train("als", &als_params(), &opts()).unwrap();
    // Too few candidates for k, too many, a count without a ranker.
    let e = err(&base.clone().candidates(5).rank("als"));
    assert!(e.contains("candidates") && e.contains("k"), "{e}");
    let e = err(&base.clone().candidates(MAX_CANDIDATES + 1).rank("als"));
    assert!(e.contains("candidates"), "{e}");
    let e = err(&base.clone().candidates(50));
    assert!(e.contains("rank"), "{e}");
    let e = db
        .recommend_batch(&[&user(1)], &base.clone().candidates(50))
        .unwrap_err();
    assert!(e.to_string().contains("rank"), "{e}");
    // An unknown user fails as with one stage.
    let e = db
        .recommend("nobody", &base.clone().rank("als"))
        .unwrap_err();
    assert!(matches!(e, recdb::Error::UnknownUser(_)), "{e}");
}

#[test]
fn shell_recommend_with_candidates_and_rank() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.tsv");
    write_events(&events);
    let db = dir.path().join("db");
    ok(&db, &["import", "events", events.to_str().unwrap()]);
    ok(&db, &["train", "popular"]);
    ok(
        &db,
        &[
            "train",
            "mf",
            "--kind",
            "als",
            "--factors",
            "8",
            "--iterations",
            "3",
        ],
    );
    let out = ok(
        &db,
        &[
            "--format",
            "json",
            "recommend",
            "u1",
            "--candidates",
            "popular:12",
            "--rank",
            "als",
            "-k",
            "3",
        ],
    );
    // The library gives the same list.
    let lib = Db::open(&db).unwrap();
    let want = lib
        .recommend(
            "u1",
            &QueryOptions::model("popular")
                .k(3)
                .candidates(12)
                .rank("als"),
        )
        .unwrap();
    drop(lib);
    assert_eq!(want.len(), 3);
    for h in &want {
        assert!(out.contains(&format!("\"{}\"", h.id)), "{out}");
    }
    let bad = recdb(
        &db,
        &[
            "recommend",
            "u1",
            "--candidates",
            "popular:x",
            "--rank",
            "als",
        ],
    );
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("candidates"),
        "{}",
        text(&bad.stderr)
    );
    let bad = recdb(&db, &["recommend", "u1", "--candidates", "popular:12"]);
    assert!(!bad.status.success());
    assert!(text(&bad.stderr).contains("rank"), "{}", text(&bad.stderr));
    let bad = recdb(
        &db,
        &[
            "recommend",
            "u1",
            "--candidates",
            "popular:2",
            "--rank",
            "als",
            "-k",
            "3",
        ],
    );
    assert!(
        text(&bad.stderr).contains("candidates"),
        "{}",
        text(&bad.stderr)
    );
}

/// A small `youtube` candidate generator on the grouped data.
fn youtube_db() -> Db {
    let db = grouped_db();
    let p = Params::new()
        .set("layers", "32")
        .set("dim", 16)
        .set("epochs", 3)
        .set("batch", 128);
    db.train("youtube", &p, &opts()).unwrap();
    db
}

/// A small `wide-deep` ranker on youtube's 40 candidates, with `extra` parameters.
fn next_ranker(db: &Db, extra: &[(&str, &str)]) -> recdb::Result<recdb::JobInfo> {
    let mut p = Params::new()
        .set("labels", "next")
        .set("candidates", "youtube:40")
        .set("layers", "16")
        .set("epochs", 2);
    for (k, v) in extra {
        p = p.set(k, *v);
    }
    db.train("wide-deep", &p, &opts())
}

/// `labels=next` with `last=L`: the ranker learns from each user's last L events, each
/// with the list youtube serves from the history before it; it re-ranks youtube's
/// candidates; `last` is validated and needs a generator that serves from a history.
#[test]
fn ranker_learns_from_lists_made_before_each_last_event() {
    let db = youtube_db();
    let wd = |extra: &[(&str, &str)]| next_ranker(&db, extra);
    let info = wd(&[("last", "3")]).unwrap();
    assert_eq!(info.params["last"], 3, "{}", info.params);
    assert!(info.params.get("list_inputs").is_none(), "{}", info.params);
    // With the list inputs (the candidate's gap to the top score, its rank): the
    // network reads them back from its stored width and serves with them.
    let info = wd(&[("last", "3"), ("list_inputs", "on")]).unwrap();
    assert_eq!(info.params["list_inputs"], "on", "{}", info.params);
    let two = QueryOptions::model("youtube")
        .k(10)
        .candidates(40)
        .rank("wide-deep");
    let got = db.recommend(&user(5), &two).unwrap();
    assert_eq!(got.len(), 10);
    let cands = ids(&db
        .recommend(&user(5), &QueryOptions::model("youtube").k(40))
        .unwrap());
    assert!(got.iter().all(|h| cands.contains(&h.id)));
    // Out of bounds, not a number.
    let e = wd(&[("last", "1001")]).unwrap_err();
    assert!(
        matches!(&e, recdb::Error::InvalidParameter { name, .. } if name == "last"),
        "{e}"
    );
    let e = wd(&[("last", "x")]).unwrap_err();
    assert!(e.to_string().contains("last"), "{e}");
    let e = wd(&[("list_inputs", "maybe")]).unwrap_err();
    assert!(e.to_string().contains("list_inputs"), "{e}");
    // The list inputs exist only with next-item labels.
    let e = db
        .train(
            "wide-deep",
            &Params::new()
                .set("labels", "rating")
                .set("list_inputs", "on"),
            &opts(),
        )
        .unwrap_err();
    assert!(
        matches!(&e, recdb::Error::InvalidParameter { name, .. } if name == "list_inputs"),
        "{e}"
    );
    // A generator without a tower cannot serve from a past history.
    db.train("ease", &Params::new().set("lambda", 10), &opts())
        .unwrap();
    let e = db
        .train(
            "wide-deep",
            &Params::new()
                .set("labels", "next")
                .set("candidates", "ease:40")
                .set("last", 2),
            &opts(),
        )
        .unwrap_err();
    assert!(
        e.to_string().contains("last") && e.to_string().contains("ease"),
        "{e}"
    );
}

/// `ensemble=N`: N networks trained from different seeds on the same examples, the
/// score their mean logit. The first network is the one a single-network job trains,
/// so scores that move show the others are read; two-stage serving uses them all.
#[test]
fn an_ensemble_ranker_scores_with_all_its_networks() {
    let db = youtube_db();
    let base = [("last", "3"), ("list_inputs", "on")];
    let scores = || -> Vec<f32> {
        (0..20)
            .map(|i| db.predict("u5", &format!("i{i}"), "wide-deep").unwrap())
            .collect()
    };
    next_ranker(&db, &base).unwrap();
    let single = scores();
    // The same job again: the same network.
    next_ranker(&db, &base).unwrap();
    assert_eq!(scores(), single);
    let info = next_ranker(&db, &[&base[..], &[("ensemble", "3")]].concat()).unwrap();
    assert_eq!(info.params["ensemble"], 3, "{}", info.params);
    assert!(info.message.contains("3 networks"), "{}", info.message);
    let three = scores();
    assert_ne!(three, single);
    assert!(three.iter().all(|p| (0.0..=1.0).contains(p)), "{three:?}");
    let two = QueryOptions::model("youtube")
        .k(10)
        .candidates(40)
        .rank("wide-deep");
    let got = db.recommend("u5", &two).unwrap();
    assert_eq!(got.len(), 10);
    let e = next_ranker(&db, &[("ensemble", "17")]).unwrap_err();
    assert!(
        matches!(&e, recdb::Error::InvalidParameter { name, .. } if name == "ensemble"),
        "{e}"
    );
}

/// `history=TABLE`: the ranker compares each candidate with the user's latest items
/// through the table's cosines, in training (the items before each event) and serving
/// (the user's log now): logging an event changes a user's scores only for such a
/// ranker. The table must be an items table, is checked at query time like a feature
/// table, and `history_len` is validated.
#[test]
fn a_ranker_with_history_inputs_reads_the_users_latest_items() {
    let db = youtube_db();
    let wd = |extra: &[(&str, &str)]| {
        let base = [("last", "3"), ("list_inputs", "on")];
        next_ranker(&db, &[&base[..], extra].concat())
    };
    let scores = |u: &str| -> Vec<f32> {
        (0..20)
            .map(|i| db.predict(u, &format!("i{i}"), "wide-deep").unwrap())
            .collect()
    };
    let log = |u: &str, item: &str, t: i64| {
        db.log_events(&[recdb::RawEvent {
            user: u.to_owned(),
            item: item.to_owned(),
            kind: recdb::EventKind::Interaction,
            value: 1.0,
            timestamp: t,
            group: None,
        }])
        .unwrap();
    };
    // Without history inputs, a new event does not move the ranker's scores.
    wd(&[]).unwrap();
    let before = scores(&user(7));
    log(&user(7), "i3", 1 << 40);
    assert_eq!(scores(&user(7)), before);
    // The recent items as a learned field (`recent=N`) read the log the same way.
    let info = wd(&[("recent", "4")]).unwrap();
    assert_eq!(info.params["recent"], 4, "{}", info.params);
    let before = scores(&user(9));
    log(&user(9), "i12", 1 << 40);
    assert_ne!(scores(&user(9)), before, "the latest item is in the field");
    let info = wd(&[("history", "youtube.inputs"), ("history_len", "5")]).unwrap();
    assert_eq!(info.params["history"], "youtube.inputs", "{}", info.params);
    assert_eq!(info.params["history_len"], 5, "{}", info.params);
    let before = scores(&user(8));
    log(&user(8), "i11", 1 << 40);
    assert_ne!(scores(&user(8)), before, "the latest item is an input");
    let two = QueryOptions::model("youtube")
        .k(10)
        .candidates(40)
        .rank("wide-deep");
    assert_eq!(db.recommend(&user(5), &two).unwrap().len(), 10);
    // Validated: the width of the history, the table's space.
    let e = wd(&[("history", "youtube.inputs"), ("history_len", "0")]).unwrap_err();
    assert!(
        matches!(&e, recdb::Error::InvalidParameter { name, .. } if name == "history_len"),
        "{e}"
    );
    db.train("als", &als_params(), &opts()).unwrap();
    let e = wd(&[("history", "als.users")]).unwrap_err();
    assert!(
        matches!(&e, recdb::Error::InvalidParameter { name, .. } if name == "history"),
        "{e}"
    );
    // A republished history table: the ranker refuses it, naming it.
    db.train(
        "youtube",
        &Params::new()
            .set("layers", "32")
            .set("dim", 16)
            .set("epochs", 1)
            .set("batch", 128),
        &opts(),
    )
    .unwrap();
    let e = db.recommend(&user(5), &two).unwrap_err();
    assert!(e.to_string().contains("youtube.inputs"), "{e}");
}
