//! Running the `recdb` binary from the integration tests.

use std::path::Path;
use std::process::{Command, Output};

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Run `recdb --db DB ARGS...`.
pub fn recdb(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_recdb"))
        .arg("--db")
        .arg(db)
        .args(args)
        .output()
        .expect("run recdb")
}

/// Run and insist on success; returns stdout.
pub fn ok(db: &Path, args: &[&str]) -> String {
    let out = recdb(db, args);
    assert!(
        out.status.success(),
        "recdb {args:?} failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}
