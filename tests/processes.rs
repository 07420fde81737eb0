//! Several processes, one database: a second process that cannot open a database held
//! by a running `recdb` is told who holds it and what it is doing.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use recdb::testkit::SynthConfig;
use recdb::{Db, Error};

mod common;
use common::KillOnDrop;

fn owner_file(db: &Path) -> String {
    std::fs::read_to_string(db.join("recdb.owner")).unwrap_or_default()
}

#[test]
fn a_second_process_is_told_who_holds_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let db = Db::open(&path).unwrap();
        let synth = recdb::testkit::generate(&SynthConfig {
            users: 500,
            items: 300,
            ..SynthConfig::default()
        });
        db.log_events(&synth.events).unwrap();
    }
    // A training job far longer than the test: the holder.
    let holder = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_recdb"))
            .arg("--db")
            .arg(&path)
            .args(["train", "als", "--factors", "256", "--iterations", "10000"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = holder.0.id();
    let t0 = Instant::now();
    while !owner_file(&path).contains("\"activity\":\"train als") {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the holder never reported its job: {:?}",
            owner_file(&path)
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // The library: a structured error naming the holder, at once (no long retry).
    let t = Instant::now();
    match Db::open(&path) {
        Err(Error::Locked {
            path: p,
            pid: got,
            program,
            activity,
        }) => {
            assert_eq!(p, path);
            assert_eq!(got, Some(pid));
            assert_eq!(program.as_deref(), Some("recdb"));
            let activity = activity.unwrap();
            assert!(
                activity.starts_with("train als ") && activity.ends_with(" %"),
                "{activity}"
            );
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );

    // The shell, a real third process: the message says who and what.
    let out = Command::new(env!("CARGO_BIN_EXE_recdb"))
        .arg("--db")
        .arg(&path)
        .arg("stats")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{} is held by recdb (pid {pid}, running: train als",
            path.display()
        )),
        "{err}"
    );
    assert!(err.contains("recdb serve"), "{err}");

    // Once the holder is gone (killed: its owner file stays), the database opens.
    drop(holder);
    assert!(owner_file(&path).contains(&format!("\"pid\":{pid}")));
    let db = Db::open(&path).unwrap();
    db.check().unwrap();
    assert!(owner_file(&path).contains(&format!("\"pid\":{}", std::process::id())));
    drop(db);
    assert_eq!(
        owner_file(&path),
        "",
        "a clean close removes the owner file"
    );
}
