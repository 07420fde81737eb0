//! Features from attributes, through the public surface: the encoder's stored bytes
//! (the fuzz entry and its seeds), users known only from their attributes, and the
//! evaluation reading a data directory's `*.user` file.

use std::path::Path;

use recdb::testkit::fuzzing::{features_encoder, features_encoder_samples};
use recdb::{
    evaluate_quiet, Db, EvalOptions, EventKind, Params, Protocol, QueryOptions, TrainOptions,
    UserRecord,
};

#[test]
fn stored_encoders_parse_and_any_damage_is_an_error() {
    let samples = features_encoder_samples();
    assert!(samples.len() >= 5);
    for bytes in &samples {
        assert!(features_encoder(bytes));
        for cut in 0..bytes.len() {
            assert!(!features_encoder(&bytes[..cut]), "cut at {cut}");
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            assert!(!features_encoder(&b), "byte {i} flipped");
        }
    }
    assert!(!features_encoder(b""));
    assert!(!features_encoder(&[0xff; 64]));
}

/// `RECDB_WRITE_SEEDS=$PWD/fuzz/seeds/features_encoder cargo test --test features`
/// rewrites the fuzz target's seeds.
#[test]
fn write_features_encoder_seeds() {
    let Ok(dir) = std::env::var("RECDB_WRITE_SEEDS") else {
        return;
    };
    for (i, v) in features_encoder_samples().iter().enumerate() {
        std::fs::write(format!("{dir}/encoder{i}"), v).unwrap();
    }
}

fn pair(n: &str, v: &str) -> (String, String) {
    (n.to_string(), v.to_string())
}

#[test]
fn a_user_known_only_from_attributes_is_a_known_user() {
    let db = Db::temporary().unwrap();
    let mut b = db.batch();
    for u in 0..5 {
        for i in 0..=u {
            b.push(
                &format!("u{u}"),
                &format!("i{i}"),
                EventKind::View,
                1.0,
                i64::from(i),
            )
            .unwrap();
        }
    }
    b.commit().unwrap();
    db.put_users(&[UserRecord {
        id: "newcomer".into(),
        attrs: vec![pair("gender", "F"), pair("age", "25")],
    }])
    .unwrap();
    assert!(db.user_ids().unwrap().contains(&"newcomer".to_string()));
    db.train("popular", &Params::new(), &TrainOptions::default())
        .unwrap();
    let opts = QueryOptions {
        k: 3,
        model: "popular".into(),
        ..QueryOptions::default()
    };
    let hits = db.recommend("newcomer", &opts).unwrap();
    assert_eq!(hits.len(), 3);
    assert!(matches!(
        db.recommend("stranger", &opts),
        Err(recdb::Error::UnknownUser(_))
    ));
}

/// A small data directory: 40 users with 12 events each over 30 items, and (when
/// `users` is given) a `.user` file.
fn data_dir(dir: &Path, users: Option<&str>) {
    let mut inter = String::from("user_id:token\titem_id:token\trating:float\ttimestamp:float\n");
    for u in 0..40u32 {
        for t in 0..12u32 {
            let item = (u * 7 + t * t * 3) % 30;
            inter.push_str(&format!(
                "{u}\t{item}\t{}\t{}\n",
                1 + (u + t) % 5,
                u * 100 + t
            ));
        }
    }
    std::fs::write(dir.join("toy.inter"), inter).unwrap();
    if let Some(users) = users {
        std::fs::write(dir.join("toy.user"), users).unwrap();
    }
}

fn next(dir: &Path, model: &str) -> recdb::Result<recdb::EvalReport> {
    evaluate_quiet(&EvalOptions {
        protocol: Protocol::Next,
        model: model.into(),
        data: Some(dir.to_path_buf()),
        params: Params::new(),
        seed: 7,
        threads: Some(1),
        rank: None,
        validation: false,
    })
}

#[test]
fn next_reads_the_user_file_without_changing_other_models_figures() {
    let mut users =
        String::from("user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n");
    for u in 0..40 {
        users.push_str(&format!("{u}\t{}\tM\t{}\t4806{u}\n", 18 + u % 3, u % 5));
    }
    let (with, without) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    data_dir(with.path(), Some(&users));
    data_dir(without.path(), None);
    for model in ["als", "popular"] {
        let a = next(with.path(), model).unwrap();
        let b = next(without.path(), model).unwrap();
        assert_eq!(a.metrics, b.metrics, "{model}");
        assert_eq!(a.users, b.users, "{model}");
    }
    // The file is read: a broken one is refused, naming it.
    let broken = tempfile::tempdir().unwrap();
    data_dir(broken.path(), Some("user_id:token\tage:token\n\t25\n"));
    let err = next(broken.path(), "popular").unwrap_err().to_string();
    assert!(err.contains("toy.user"), "{err}");
}
