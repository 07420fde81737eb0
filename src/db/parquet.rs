//! Training on another engine: the log out as Parquet, factors back in from Parquet
//! (docs/SCALE.md). Spark's ALS needs integer ids, so the export carries recdb's dense
//! ids (`user_idx`, `item_idx`) beside the external ones, and an import of
//! `<model>.users` / `<model>.items` reads the factor file's `id` as that dense id: the
//! rows land where `recommend --model <model>` looks for them.

use std::path::Path;

use super::{Db, TableImport, TableImportReport};
use crate::ingest::{read_factors, LogRow, LogWriter};
use crate::storage::tables::RowSpace;
use crate::{Error, Result};

/// Rows a part file of [`Db::export_log_parquet`] holds by default: ~1M rows is tens of
/// MB compressed, what Spark reads well as one task.
pub const PARQUET_ROWS_PER_FILE: usize = 1 << 20;

/// What [`Db::export_log_parquet`] wrote.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LogExportReport {
    pub dir: String,
    pub files: u64,
    pub events: u64,
    pub users: u64,
    pub items: u64,
}

/// The row space an import of `name` fills: a model's users or items by the name's
/// suffix, else an `other` table.
fn space_of(name: &str) -> RowSpace {
    if name.ends_with(".users") {
        RowSpace::Users
    } else if name.ends_with(".items") {
        RowSpace::Items
    } else {
        RowSpace::Other
    }
}

impl Db {
    /// Write the whole log to `dir` as `part-00000.parquet`, ... (snappy), each of at
    /// most `rows_per_file` events, in user order and each user's in time order.
    /// Columns: `user`, `item` (external ids), `user_idx`, `item_idx` (dense ids, the
    /// integers Spark's ALS takes and [`Db::import_table`] of a model's `.users` /
    /// `.items` maps back), `kind`, `value`, `timestamp`. `dir` is created if missing
    /// and must hold no `*.parquet` file. The log is read whole (as `dump` does).
    // why: users and items are the id maps, whose dense ids are u32.
    #[allow(clippy::cast_possible_truncation)]
    pub fn export_log_parquet(&self, dir: &Path, rows_per_file: usize) -> Result<LogExportReport> {
        let mut w = LogWriter::new(dir, rows_per_file)?;
        let log = self.logged_events()?;
        let name = |v: &[String], i: u32| -> Result<usize> {
            if (i as usize) < v.len() {
                Ok(i as usize)
            } else {
                Err(Error::corrupted(format!("event id {i} out of range")))
            }
        };
        for e in &log.events {
            let (u, i) = (name(&log.users, e.user)?, name(&log.items, e.item)?);
            w.push(&LogRow {
                user: &log.users[u],
                item: &log.items[i],
                user_idx: e.user,
                item_idx: e.item,
                kind: e.kind.as_str(),
                value: e.value,
                timestamp: e.timestamp,
            })?;
        }
        let (files, events) = w.finish()?;
        Ok(LogExportReport {
            dir: dir.display().to_string(),
            files,
            events,
            users: log.users.len() as u64,
            items: log.items.len() as u64,
        })
    }

    /// `import table NAME --format parquet PATH`: factor rows (`id`, `features`) from a
    /// file or a directory of parts. For `<model>.users` / `<model>.items` the id is the
    /// dense id of [`Db::export_log_parquet`] (an id past the known users or items is an
    /// error) and a user or item the file lacks gets a zero row; any other name gets an
    /// `other` table whose rows are named by the ids. Published atomically, or nothing.
    // why: ids are checked against the id map's u32 length before they index a row.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    pub(super) fn import_parquet_table(
        &self,
        name: &str,
        spec: &TableImport,
        replace: bool,
    ) -> Result<TableImportReport> {
        if spec.ids.is_some() {
            return Err(Error::param(
                "ids",
                "a Parquet factor file carries its ids in its `id` column",
            ));
        }
        let f = read_factors(&spec.file)?;
        if let Some(d) = spec.dim.filter(|&d| d != f.dim) {
            return Err(Error::param(
                "dim",
                format!(
                    "{}: {} values a row, but --dim is {d}",
                    spec.file.display(),
                    f.dim
                ),
            ));
        }
        let space = space_of(name);
        let (rows, ids) = match space {
            RowSpace::Other => (f.rows, f.ids.iter().map(|i| i.to_string()).collect()),
            _ => {
                let n = {
                    let st = self.state()?;
                    if space == RowSpace::Users {
                        st.users.len()
                    } else {
                        st.items.len()
                    }
                } as usize;
                let total = n.checked_mul(f.dim).ok_or_else(|| {
                    Error::param("dim", format!("{} rows of {} values", n, f.dim))
                })?;
                let mut rows = Vec::new();
                rows.try_reserve_exact(total).map_err(|_| {
                    Error::InvalidInput(format!(
                        "{n} rows of {} values do not fit in memory",
                        f.dim
                    ))
                })?;
                rows.resize(total, 0f32);
                for (k, &id) in f.ids.iter().enumerate() {
                    if id < 0 || id as u64 >= n as u64 {
                        return Err(Error::InvalidInput(format!(
                            "{}: row {} of the factors: field `id`: unknown {} id {id} (the database has {n} {}, dense ids 0..{n}; export the log with `export log --format parquet` and train on its `{}` column)",
                            spec.file.display(),
                            k + 1,
                            space.as_str().trim_end_matches('s'),
                            space.as_str(),
                            if space == RowSpace::Users { "user_idx" } else { "item_idx" },
                        )));
                    }
                    let at = id as usize * f.dim;
                    rows[at..at + f.dim].copy_from_slice(&f.rows[k * f.dim..(k + 1) * f.dim]);
                }
                (rows, Vec::new())
            }
        };
        if !replace {
            self.refuse_reshape(name, f.dim, space)?;
        }
        let version = self.put_table(name, space, f.dim, &rows, ids)?;
        Ok(TableImportReport {
            table: name.to_owned(),
            version,
            rows: (rows.len() / f.dim) as u64,
            dim: f.dim as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::spark_factors_bytes;
    use crate::{EventKind, QueryOptions, TableFormat};
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::RowAccessor;

    /// Users u0..u3, items i0..i4; user u_k saw items k and k+1.
    fn small_db() -> Db {
        let db = Db::temporary().unwrap();
        let mut b = db.batch();
        for u in 0..4 {
            for i in u..u + 2 {
                b.push(
                    &format!("u{u}"),
                    &format!("i{i}"),
                    EventKind::View,
                    1.0,
                    i as i64,
                )
                .unwrap();
            }
        }
        b.commit().unwrap();
        db
    }

    fn spec(file: std::path::PathBuf) -> TableImport {
        TableImport {
            format: TableFormat::Parquet,
            file,
            dim: None,
            ids: None,
        }
    }

    #[test]
    fn log_out_factors_in_recommend() {
        let dir = tempfile::tempdir().unwrap();
        let db = small_db();
        let r = db.export_log_parquet(&dir.path().join("log"), 3).unwrap();
        assert_eq!((r.files, r.events, r.users, r.items), (3, 8, 4, 5));
        // Every event comes back with external ids matching its dense ids.
        let (users, items) = (db.user_ids().unwrap(), db.item_ids().unwrap());
        let mut n = 0;
        for p in crate::ingest::parquet_parts(&dir.path().join("log")).unwrap() {
            let f = SerializedFileReader::try_from(p.as_path()).unwrap();
            for row in f.get_row_iter(None).unwrap() {
                let row = row.unwrap();
                let (u, i) = (row.get_int(2).unwrap(), row.get_int(3).unwrap());
                assert_eq!(row.get_string(0).unwrap(), &users[u as usize]);
                assert_eq!(row.get_string(1).unwrap(), &items[i as usize]);
                assert_eq!(row.get_string(4).unwrap(), "view");
                n += 1;
            }
        }
        assert_eq!(n, 8);

        // Factors as Spark writes them, in a directory of parts with Spark's litter:
        // every user likes item i4 best (it is unseen by all but u3).
        let fdir = dir.path().join("items");
        std::fs::create_dir(&fdir).unwrap();
        let item_rows: Vec<Vec<f32>> = (0..5).map(|i| vec![i as f32, 1.0]).collect();
        std::fs::write(
            fdir.join("part-00000-x.snappy.parquet"),
            spark_factors_bytes(&[0, 1, 2], &item_rows[..3]),
        )
        .unwrap();
        std::fs::write(
            fdir.join("part-00001-x.snappy.parquet"),
            spark_factors_bytes(&[3, 4], &item_rows[3..]),
        )
        .unwrap();
        std::fs::write(fdir.join("_SUCCESS"), b"").unwrap();
        std::fs::write(fdir.join(".part-00000-x.snappy.parquet.crc"), b"junk").unwrap();
        // User u3 is left out of the file: a zero row.
        let ufile = dir.path().join("users.parquet");
        std::fs::write(
            &ufile,
            spark_factors_bytes(&[0, 1, 2], &vec![vec![1.0, 0.0]; 3]),
        )
        .unwrap();
        let r = db.import_table("m.items", &spec(fdir)).unwrap();
        assert_eq!((r.rows, r.dim), (5, 2));
        let r = db.import_table("m.users", &spec(ufile)).unwrap();
        assert_eq!((r.rows, r.dim), (4, 2));
        assert_eq!(db.table("m.users").unwrap().space(), RowSpace::Users);
        let hits = db.recommend("u0", &QueryOptions::model("m").k(2)).unwrap();
        let ids: Vec<&str> = hits.iter().map(|h| h.id.as_str()).collect();
        assert_eq!(ids, ["i4", "i3"]);
        assert_eq!(db.table("m.users").unwrap().row(3).to_vec(), vec![0.0, 0.0]);

        // Another name: an `other` table named by the ids.
        let ofile = dir.path().join("o.parquet");
        std::fs::write(
            &ofile,
            spark_factors_bytes(&[7, 9], &[vec![1.0], vec![2.0]]),
        )
        .unwrap();
        db.import_table("emb", &spec(ofile)).unwrap();
        assert_eq!(db.table("emb").unwrap().row_ids(), ["7", "9"]);
    }

    #[test]
    fn bad_factors_leave_the_database_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let db = small_db();
        let p = dir.path().join("u.parquet");
        // Id 4 is past the 4 users.
        std::fs::write(&p, spark_factors_bytes(&[0, 4], &[vec![1.0], vec![2.0]])).unwrap();
        let e = db
            .import_table("m.users", &spec(p.clone()))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("u.parquet: row 2 of the factors: field `id`: unknown user id 4 (the database has 4 users"),
            "{e}"
        );
        std::fs::write(
            &p,
            spark_factors_bytes(&[0, 1], &[vec![1.0], vec![f32::NAN]]),
        )
        .unwrap();
        let e = db
            .import_table("m.users", &spec(p.clone()))
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with("u.parquet:2: field `features[0]`: NaN is not a finite number"),
            "{e}"
        );
        std::fs::write(
            &p,
            spark_factors_bytes(&[0, 1], &[vec![1.0, 2.0], vec![3.0]]),
        )
        .unwrap();
        let e = db
            .import_table("m.users", &spec(p.clone()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("ragged factors"), "{e}");
        assert!(db.tables().unwrap().is_empty());
        let e = db
            .import_table("m.users", &spec(dir.path().join("nothing")))
            .unwrap_err();
        assert!(e.to_string().contains("nothing"), "{e}");
    }
}
