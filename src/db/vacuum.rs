//! The facade of `vacuum` (the copy and the crash-safe swap are in `storage::vacuum`).

use std::path::Path;

use super::Db;
use crate::storage::vacuum::{vacuum_until, Step, VacuumReport};
use crate::Result;

impl Db {
    /// Rewrite the database at `path` compactly (see `docs/RELIABILITY.md`, "Disk space
    /// and vacuum"): every key is copied into a sibling directory `PATH.vacuum-new`
    /// which then replaces `path`. Needs the database closed in every process (it
    /// fails with [`Error::Locked`](crate::Error::Locked) otherwise) and free space for one copy of the live
    /// data. Atomic: after a crash, the next open finds either the old or the new
    /// database, never a mix.
    pub fn vacuum(path: impl AsRef<Path>) -> Result<VacuumReport> {
        vacuum_until(path.as_ref(), Step::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::vacuum::{new_dir, old_dir, vacuum_until, Step, MARKER};
    use crate::testkit::SynthConfig;
    use crate::{Params, TrainOptions};

    fn retrain(path: &Path, times: usize) {
        for _ in 0..times {
            let db = Db::open(path).unwrap();
            db.train(
                "als",
                &Params::new().set("factors", 64).set("iterations", 1),
                &TrainOptions::default(),
            )
            .unwrap();
        }
    }

    fn contents(db: &Db) -> String {
        let st = db.stats().unwrap();
        let mut out = format!("{} {} {} {:?}", st.users, st.items, st.events, st.tables);
        for u in db.user_ids().unwrap() {
            out += &format!("{:?}", db.history(&u).unwrap());
        }
        for t in &st.tables {
            let view = db.table(&t.name).unwrap();
            for r in 0..view.rows() {
                out += &format!("{:?}", view.row(r).to_vec());
            }
        }
        out
    }

    /// A vacuum stopped after each of its steps (a crash there) leaves a database that
    /// opens with the same contents; one that finishes shrinks it.
    #[test]
    fn a_vacuum_stopped_at_any_step_keeps_every_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        {
            let db = Db::open(&path).unwrap();
            let synth = crate::testkit::generate(&SynthConfig {
                users: 300,
                items: 200,
                ..SynthConfig::default()
            });
            db.log_events(&synth.events).unwrap();
        }
        retrain(&path, 4);
        let want = contents(&Db::open(&path).unwrap());
        for stop in [Step::Copied, Step::Marked, Step::MovedOld, Step::Swapped] {
            vacuum_until(&path, stop).unwrap_err();
            let db = Db::open(&path).unwrap();
            db.check().unwrap();
            assert_eq!(contents(&db), want, "stopped after {stop:?}");
            drop(db);
            assert!(!new_dir(&path).exists() && !old_dir(&path).exists());
            assert!(!path.join(MARKER).exists());
        }
        let report = Db::vacuum(&path).unwrap();
        assert!(report.bytes_after < report.bytes_before, "{report:?}");
        assert_eq!(contents(&Db::open(&path).unwrap()), want);
    }

    #[test]
    fn vacuum_refuses_what_is_not_a_database() {
        let dir = tempfile::tempdir().unwrap();
        let err = Db::vacuum(dir.path().join("none")).unwrap_err();
        assert!(err.to_string().contains("is not a recdb database"), "{err}");
        assert!(!dir.path().join("none").exists());
    }
}
