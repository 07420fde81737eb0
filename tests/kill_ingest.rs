//! Kill a writer mid-ingest (SIGKILL) and check that reopening shows whole batches only,
//! and every batch the writer was told was durable.
//!
//! The test re-runs its own binary as the child (`child_writer`, selected by an
//! environment variable), so no helper binary is needed.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use recdb::{Db, EventKind};

const DIR_VAR: &str = "RECDB_KILL_TEST_DIR";
const BATCH: usize = 2000;

/// The child: commit batches forever; after each commit returns, record its number.
#[test]
fn child_writer() {
    let Ok(dir) = std::env::var(DIR_VAR) else {
        return;
    };
    let dir = Path::new(&dir);
    let db = Db::open(dir.join("db")).unwrap();
    let mut acked = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("acked"))
        .unwrap();
    let start = db.stats().unwrap().events as usize / BATCH;
    for b in start.. {
        let mut batch = db.batch();
        for j in 0..BATCH {
            // 300 users so a batch spans several buckets; item ids carry the batch number.
            batch
                .push(
                    &format!("u{}", (j * 7 + b) % 300),
                    &format!("b{b}-{j}"),
                    EventKind::View,
                    1.0,
                    (b * BATCH + j) as i64,
                )
                .unwrap();
        }
        batch.commit().unwrap();
        writeln!(acked, "{b}").unwrap();
        acked.sync_all().unwrap();
    }
}

fn batches_present(db: &Db) -> BTreeMap<usize, usize> {
    let mut per_batch = BTreeMap::new();
    // Ids count too: an item id whose events are missing shows up as a torn batch.
    for item in db.item_ids() {
        let b: usize = item[1..item.find('-').unwrap()].parse().unwrap();
        *per_batch.entry(b).or_insert(0) += 0;
    }
    for user in db.user_ids() {
        for e in db.history(&user).unwrap() {
            let b: usize = e.item[1..e.item.find('-').unwrap()].parse().unwrap();
            *per_batch.entry(b).or_insert(0) += 1;
        }
    }
    per_batch
}

#[test]
fn killed_writer_leaves_whole_batches_and_every_acknowledged_one() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng: u64 = 0x2545_F491_4F6C_DD1D;
    let rounds = 15;
    let mut kills = 0;
    for round in 0..rounds {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let wait = 60 + rng % 340;
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "child_writer",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(DIR_VAR, dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(wait));
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;

        let acked: Vec<usize> = std::fs::read_to_string(dir.path().join("acked"))
            .unwrap_or_default()
            .lines()
            .map(|l| l.parse().unwrap())
            .collect();
        let db = Db::open(dir.path().join("db")).unwrap();
        db.check().unwrap();
        let present = batches_present(&db);
        for (&b, &n) in &present {
            assert_eq!(
                n, BATCH,
                "round {round}: batch {b} has {n} of {BATCH} events (a torn batch)"
            );
        }
        for b in &acked {
            assert!(
                present.contains_key(b),
                "round {round}: acknowledged batch {b} is missing"
            );
        }
        // Batches are consecutive: the log never skips one.
        let nums: Vec<usize> = present.keys().copied().collect();
        assert!(
            nums.iter().enumerate().all(|(i, &b)| i == b),
            "round {round}: batches {nums:?}"
        );
        assert_eq!(db.stats().unwrap().events as usize, present.len() * BATCH);
    }
    let total = batches_present(&Db::open(dir.path().join("db")).unwrap()).len();
    println!("{kills} kill points survived; {total} batches of {BATCH} events present at the end");
    assert!(
        total > 0,
        "the child never committed a batch: the test proved nothing"
    );
}
