//! The `recdb` binary end to end: import, train, queries, output modes, `-c`, piped stdin,
//! errors and the demo.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

mod common;
use common::cli::{ok, piped, recdb, text, with_stdin, write_events};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_recdb"))
}

/// A temporary directory with a small events file and an items file: 30 users, 20 items.
struct Fixture {
    _dir: tempfile::TempDir,
    db: PathBuf,
    events: PathBuf,
    items: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.tsv");
    write_events(&events);
    let items = dir.path().join("items.tsv");
    let mut f = std::fs::File::create(&items).unwrap();
    writeln!(f, "item_id\ttitle\tgenres").unwrap();
    for i in 0..20 {
        let g = if i % 2 == 0 { "Drama" } else { "Action" };
        writeln!(f, "i{i}\tMovie {i}\t{g}").unwrap();
    }
    let db = dir.path().join("db");
    Fixture {
        _dir: dir,
        db,
        events,
        items,
    }
}

/// A fixture with data imported and `popular` + `als` trained.
fn trained() -> Fixture {
    let fx = fixture();
    let out = ok(&fx.db, &["import", "events", fx.events.to_str().unwrap()]);
    assert!(out.contains("240"), "{out}");
    ok(
        &fx.db,
        &[
            "import",
            "items",
            fx.items.to_str().unwrap(),
            "--format",
            "tsv",
        ],
    );
    let out = ok(&fx.db, &["train", "popular"]);
    assert!(out.contains("popular.items"), "{out}");
    let out = ok(
        &fx.db,
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
    assert!(out.contains("als.items") && out.contains("done"), "{out}");
    fx
}

#[test]
fn import_train_query_stats() {
    let fx = trained();
    let out = ok(&fx.db, &["recommend", "u1", "-k", "3"]);
    assert!(out.contains("rank") && out.contains("Movie"), "{out}");
    assert_eq!(out.lines().count(), 2 + 3, "{out}");

    let out = ok(&fx.db, &["similar", "i1", "-k", "4", "--model", "als"]);
    assert!(out.contains("Movie") && !out.contains(" i1 "), "{out}");

    let out = ok(&fx.db, &["similar", "i1", "-k", "3", "--genre", "action"]);
    assert!(!out.contains("Drama"), "{out}");

    let out = ok(
        &fx.db,
        &[
            "--format",
            "json",
            "recommend",
            "u2",
            "-k",
            "2",
            "--model",
            "popular",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);

    // Many users at once: the same lists as one at a time, one row per (user, rank).
    let users = fx.db.with_file_name("users.txt");
    std::fs::write(&users, "u1\n\n  u2\nu7\n").unwrap();
    let users = users.display().to_string();
    let out = ok(&fx.db, &["recommend", "--users", &users, "-k", "3"]);
    assert!(out.starts_with("user") && out.contains("rank"), "{out}");
    assert_eq!(out.lines().count(), 2 + 9, "{out}");
    let out = ok(
        &fx.db,
        &[
            "--format",
            "json",
            "recommend",
            "--users",
            &users,
            "-k",
            "3",
        ],
    );
    let batch: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let batch = batch.as_array().unwrap();
    assert_eq!(batch.len(), 3);
    for (got, user) in batch.iter().zip(["u1", "u2", "u7"]) {
        assert_eq!(got["user"], user);
        let one = ok(&fx.db, &["--format", "json", "recommend", user, "-k", "3"]);
        let one: serde_json::Value = serde_json::from_str(one.trim()).unwrap();
        let ids = |v: &serde_json::Value| -> Vec<String> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|h| h["id"].to_string())
                .collect()
        };
        assert_eq!(ids(&got["items"]), ids(&one), "{user}");
    }
    std::fs::write(fx.db.with_file_name("bad_users.txt"), "u1\nu2\nnobody\n").unwrap();
    let bad = fx.db.with_file_name("bad_users.txt").display().to_string();
    let out = recdb(&fx.db, &["recommend", "--users", &bad]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("bad_users.txt, line 3: unknown user `nobody`"),
        "{err}"
    );
    let out = recdb(&fx.db, &["recommend"]);
    assert!(!out.status.success());
    let out = recdb(&fx.db, &["recommend", "u1", "--users", &users]);
    assert!(!out.status.success());

    let out = ok(&fx.db, &["--format", "csv", "similar", "i2", "-k", "2"]);
    assert!(out.starts_with("rank,item,title,genres,score\n"), "{out}");
    assert_eq!(out.lines().count(), 3);

    let out = ok(&fx.db, &["stats", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["users"], 30);
    assert_eq!(v["items"], 20);
    assert_eq!(v["events"], 240);
    assert!(v["tables"].as_array().unwrap().len() >= 4);

    let out = ok(&fx.db, &["jobs"]);
    assert!(out.contains("popular") && out.contains("als"), "{out}");
    let out = ok(&fx.db, &["item", "i3"]);
    assert!(out.contains("Movie 3"), "{out}");
    let out = ok(&fx.db, &["history", "u2"]);
    assert_eq!(out.lines().count(), 2 + 8, "{out}");
    ok(&fx.db, &["check"]);
    let out = ok(&fx.db, &["tables"]);
    assert!(out.contains("als.users"), "{out}");

    let tsv = fx.db.with_extension("items.tsv");
    let out = ok(
        &fx.db,
        &[
            "export",
            "table",
            "als.items",
            "--format",
            "tsv",
            tsv.to_str().unwrap(),
        ],
    );
    assert!(out.contains("20 rows"), "{out}");
    assert_eq!(std::fs::read_to_string(&tsv).unwrap().lines().count(), 20);
}

#[test]
fn errors_are_clear() {
    let fx = trained();
    let out = recdb(&fx.db, &["recommend", "nobody"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("error: unknown user `nobody`"),
        "{}",
        text(&out.stderr)
    );

    let out = recdb(&fx.db, &["recommend", "u1", "-k", "0"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("error:") && err.contains("`k`"), "{err}");

    let out = recdb(&fx.db, &["similar", "i1", "--model", "bpr"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("bpr.items"),
        "{}",
        text(&out.stderr)
    );

    // No --db: a clear error.
    let out = bin().args(["stats"]).output().unwrap();
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("--db"), "{}", text(&out.stderr));
}

#[test]
fn dash_c_runs_commands_and_stops_at_first_error() {
    let fx = trained();
    let out = recdb(&fx.db, &["-c", "stats; similar i1 -k 2"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.contains("events") && s.contains("rank"), "{s}");

    let out = recdb(&fx.db, &["-c", "recommend nobody; stats"]);
    assert!(!out.status.success());
    assert!(
        !text(&out.stdout).contains("events"),
        "the second command ran"
    );
}

#[test]
fn piped_stdin_continues_after_errors() {
    let fx = trained();
    let out = piped(
        &fx.db,
        "# a comment\n\nitem i3\nfrobnicate now\nrecommend nobody\nitem i4\n",
    );
    assert!(!out.status.success(), "a failed command must fail the run");
    let s = text(&out.stdout);
    assert!(s.contains("Movie 3") && s.contains("Movie 4"), "{s}");
    let err = text(&out.stderr);
    assert_eq!(err.matches("error:").count(), 2, "{err}");
}

#[test]
fn background_train_in_one_shot_waits() {
    let fx = trained();
    let out = recdb(&fx.db, &["train", "popular", "--background"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("waiting"),
        "{}",
        text(&out.stderr)
    );
    let out = ok(&fx.db, &["--format", "json", "jobs"]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert!(
        v.as_array().unwrap().iter().all(|j| j["state"] == "done"),
        "{v}"
    );
}

#[test]
fn demo_prints_tables() {
    let out = bin()
        .args(["demo", "--users", "300", "--items", "200"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.contains("similar to") && s.contains("recommended"), "{s}");
    assert!(s.contains("300 users"), "{s}");
    // The shell's own multi-line titles keep their line breaks (only data is escaped).
    assert!(s.contains("\nrecommended:") && !s.contains("\\x0a"), "{s}");
}

/// Runs `recdb` (no database) in `dir` with `script` on stdin; returns (ok, stderr).
fn run_script_in(dir: &std::path::Path, script: &str) -> (bool, String) {
    let mut cmd = bin();
    cmd.current_dir(dir);
    let out = with_stdin(cmd, script);
    (out.status.success(), text(&out.stderr))
}

/// Scripts that `.read` each other in a cycle stop at once with one error naming the
/// cycle (they used to recurse until out of file descriptors, then print thousands).
#[test]
fn read_cycles_stop_with_one_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("self.rql"), ".mode json\n.read self.rql\n").unwrap();
    std::fs::write(
        dir.path().join("a.rql"),
        ".mode csv\n.read b.rql\n.mode json\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("b.rql"), ".mode table\n.read a.rql\n").unwrap();
    for start in ["self.rql", "a.rql"] {
        let (ok, err) = run_script_in(dir.path(), &format!(".read {start}\n.mode json\n"));
        assert!(!ok, "{start}: a refused .read fails the run");
        assert_eq!(err.matches("error:").count(), 1, "{start}: {err}");
        assert!(err.contains("cycle"), "{start}: {err}");
    }
}

/// `.read` nests at most 16 scripts deep: a chain of 20 stops with one error.
#[test]
fn read_nesting_is_capped() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..20 {
        std::fs::write(
            dir.path().join(format!("s{i}.rql")),
            format!(".mode json\n.read s{}.rql\n", i + 1),
        )
        .unwrap();
    }
    std::fs::write(dir.path().join("s20.rql"), ".mode csv\n").unwrap();
    let (ok, err) = run_script_in(dir.path(), ".read s0.rql\n");
    assert!(!ok);
    assert_eq!(err.matches("error:").count(), 1, "{err}");
    assert!(err.contains("deeper than 16"), "{err}");
    // 16 levels (s5 to s20) are fine.
    let (ok, err) = run_script_in(dir.path(), ".read s5.rql\n");
    assert!(ok, "{err}");
}

/// A reader that goes away (`recdb … 2>&1 | head`) ends the run quietly with 141
/// (128 + SIGPIPE), and durable work is not cut: the index build that a publish started
/// finishes before the process exits, so no job is left interrupted.
#[test]
fn a_closed_pipe_ends_quietly_and_keeps_durable_work() {
    use std::io::Read;
    let fx = trained();
    ok(&fx.db, &["index", "build", "als.items"]);
    let (mut reader, writer) = std::io::pipe().unwrap();
    let mut child = bin()
        .arg("--db")
        .arg(&fx.db)
        .stdin(Stdio::piped())
        .stdout(writer.try_clone().unwrap())
        .stderr(writer)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"stats\n").unwrap();
    let mut first = [0u8; 16];
    assert!(reader.read(&mut first).unwrap() > 0);
    drop(reader);
    stdin
        .write_all(b"train als --factors 8 --iterations 3\nstats\nitem i3\n")
        .unwrap();
    drop(stdin);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(141), "{status:?}");
    let out = ok(&fx.db, &["--format", "json", "jobs"]);
    let jobs: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let jobs = jobs.as_array().unwrap();
    assert!(jobs.iter().all(|j| j["state"] == "done"), "{jobs:?}");
    let index_jobs = jobs.iter().filter(|j| j["model"] == "index").count();
    assert_eq!(
        index_jobs, 2,
        "the build and the rebuild after the publish: {jobs:?}"
    );
}

/// Ids are data: in table output their control characters (ESC, BEL, ...) are shown
/// escaped so they cannot drive the terminal; CSV carries them verbatim (quoted as any
/// field) and JSON escapes them, so both give the id back exactly.
#[test]
fn control_characters_in_ids_are_escaped_on_the_terminal() {
    let fx = fixture();
    let (user, item) = ("u\x1b[31mred", "i\x1b]0;pwn\x07x");
    let events = fx.events.with_file_name("esc.tsv");
    std::fs::write(
        &events,
        format!("user_id\titem_id\trating\ttimestamp\n{user}\t{item}\t4\t10\n{user}\ti1\t4\t11\nu2\ti1\t4\t12\n"),
    )
    .unwrap();
    ok(&fx.db, &["import", "events", events.to_str().unwrap()]);
    ok(&fx.db, &["train", "popular"]);
    let query = ["recommend", "u2", "--model", "popular"];
    let table = ok(&fx.db, &query);
    assert!(!table.contains(['\x1b', '\x07']), "{table:?}");
    assert!(table.contains(r"i\x1b]0;pwn\x07x"), "{table}");
    let csv = ok(&fx.db, &[&["--format", "csv"][..], &query].concat());
    let mut rows = csv::Reader::from_reader(csv.as_bytes());
    let first = rows.records().next().unwrap().unwrap();
    assert_eq!(&first[1], item, "{csv:?}");
    let json = ok(&fx.db, &[&["--format", "json"][..], &query].concat());
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(v[0]["id"], item, "{json}");
    let err = recdb(&fx.db, &["recommend", user, "--model", "nope\x1b[2J"]);
    let err = text(&err.stderr);
    assert!(
        !err.contains('\x1b') && err.contains(r"nope\x1b[2J"),
        "{err:?}"
    );
}
