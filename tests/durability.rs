//! What survives on disk: a corrupt sled snapshot does not lock the data out.

use std::path::{Path, PathBuf};

use recdb::{Db, Params, SynthConfig, TrainOptions};

fn snapshot_files(db: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(db)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("snap.")
        })
        .collect()
}

/// Everything a query can see, to compare before and after.
fn contents(db: &Db) -> (String, Vec<String>, Vec<f32>) {
    let stats = db.stats().unwrap();
    let histories = db
        .user_ids()
        .iter()
        .map(|u| format!("{:?}", db.history(u).unwrap()))
        .collect();
    let table = db.table("als.items").unwrap();
    let rows = (0..table.rows())
        .flat_map(|r| table.row(r).to_vec())
        .collect();
    (
        format!("{} {} {}", stats.users, stats.items, stats.events),
        histories,
        rows,
    )
}

#[test]
fn a_flipped_bit_in_the_snapshot_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let before = {
        let db = Db::open(&path).unwrap();
        let synth = recdb::generate(&SynthConfig {
            users: 200,
            items: 100,
            ..SynthConfig::default()
        });
        db.put_items(&synth.items).unwrap();
        db.log_events(&synth.events).unwrap();
        db.train(
            "als",
            &Params::new().set("factors", 8),
            &TrainOptions::default(),
        )
        .unwrap();
        contents(&db)
    };
    // sled writes its snapshot when it opens a directory that has a log.
    drop(Db::open(&path).unwrap());
    let snaps = snapshot_files(&path);
    assert!(!snaps.is_empty(), "sled wrote no snapshot to corrupt");
    for snap in &snaps {
        let mut bytes = std::fs::read(snap).unwrap();
        let at = bytes.len() / 2;
        bytes[at] ^= 0x04;
        std::fs::write(snap, bytes).unwrap();
    }
    let db = Db::open(&path).unwrap();
    db.check().unwrap();
    assert_eq!(contents(&db), before);
    drop(db);
    // The corrupt files are kept for inspection under a name sled does not read.
    for snap in &snaps {
        let name = snap.file_name().unwrap().to_string_lossy();
        assert!(snap.with_file_name(format!("recdb.bad-{name}")).exists());
    }
    Db::open(&path).unwrap().check().unwrap();
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            if m.is_dir() {
                dir_bytes(&e.path())
            } else {
                m.len()
            }
        })
        .sum()
}

/// Retrains in short-lived opens (as separate `recdb train` commands run them) leave
/// sled's cleaner no time: each kept ~7 MiB of old versions (215 MiB after 30). The
/// vacuum at open bounds the directory to 4 × (or 64 MiB over) its compact size.
#[test]
fn disk_stays_bounded_over_many_short_retrains() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let synth = recdb::generate(&SynthConfig::default());
    {
        let db = Db::open(&path).unwrap();
        db.put_items(&synth.items).unwrap();
        db.log_events(&synth.events).unwrap();
    }
    let params = Params::new().set("factors", 128).set("iterations", 1);
    let mut largest = 0;
    for _ in 0..30 {
        let db = Db::open(&path).unwrap();
        db.train("als", &params, &TrainOptions::default()).unwrap();
        drop(db);
        largest = largest.max(dir_bytes(&path));
    }
    assert!(largest < 100 << 20, "the directory reached {largest} bytes");
    let db = Db::open(&path).unwrap();
    db.check().unwrap();
    assert_eq!(db.table("als.items").unwrap().rows(), 1000);
    assert_eq!(db.stats().unwrap().events, synth.events.len() as u64);
}
