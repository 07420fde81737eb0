//! Running the `recdb` binary from the integration tests.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

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

/// Write the CLI tests' events file: 30 users (`u0`..) with 8 ratings each over 20 items
/// (`i0`..), header `user_id item_id rating timestamp`.
pub fn write_events(path: &Path) {
    let mut f = std::fs::File::create(path).unwrap();
    writeln!(f, "user_id\titem_id\trating\ttimestamp").unwrap();
    for u in 0..30u32 {
        for j in 0..8u32 {
            let i = (u * 3 + j * j) % 20;
            writeln!(f, "u{u}\ti{i}\t{}\t{}", 1 + (u + j) % 5, 1000 + u * 10 + j).unwrap();
        }
    }
}

/// Run `cmd` with `input` on its stdin (closed after it); returns what it printed.
pub fn with_stdin(mut cmd: Command, input: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run recdb");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    drop(stdin);
    child.wait_with_output().unwrap()
}

/// Run `recdb --db DB` with `input` on its stdin.
pub fn piped(db: &Path, input: &str) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_recdb"));
    cmd.arg("--db").arg(db);
    with_stdin(cmd, input)
}
