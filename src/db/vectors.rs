//! `import table`: vectors trained elsewhere, published as a table version.

use std::path::PathBuf;

use super::{Db, TableFormat};
use crate::ingest::{ids_of, read_f32_rows, tsv_vectors_of};
use crate::storage::tables::RowSpace;
use crate::{Error, Result};

/// What to import ([`Db::import_table`]).
#[derive(Debug, Clone)]
pub struct TableImport {
    pub format: TableFormat,
    pub file: PathBuf,
    /// Values per row; required for `F32`, checked against the file for `Tsv`.
    pub dim: Option<usize>,
    /// `F32` only: ids one a line (default `0..N`).
    pub ids: Option<PathBuf>,
}

/// What [`Db::import_table`] published.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TableImportReport {
    pub table: String,
    pub version: u64,
    pub rows: u64,
    pub dim: u64,
}

impl Db {
    /// Read every file, validate every row, then publish them as a new version of
    /// `name` (an `other` table whose rows are named by the ids) in one atomic publish.
    /// A rejected file leaves the database as it was. Durable on return.
    /// An existing table of another dimension or row space (a model's users or items
    /// table) is refused: see [`Db::replace_table`].
    pub fn import_table(&self, name: &str, spec: &TableImport) -> Result<TableImportReport> {
        self.import_table_as(name, spec, false)
    }

    /// [`Db::import_table`] that may also replace a table of another dimension or row
    /// space (whose queries, and a model's other table, then see the new rows).
    pub fn replace_table(&self, name: &str, spec: &TableImport) -> Result<TableImportReport> {
        self.import_table_as(name, spec, true)
    }

    fn import_table_as(
        &self,
        name: &str,
        spec: &TableImport,
        replace: bool,
    ) -> Result<TableImportReport> {
        crate::storage::tables::check_name(name)?;
        let file = spec.file.display().to_string();
        let (dim, rows, ids) = match spec.format {
            #[cfg(feature = "parquet")]
            TableFormat::Parquet => return self.import_parquet_table(name, spec, replace),
            TableFormat::F32 => {
                let dim = spec
                    .dim
                    .ok_or_else(|| Error::param("dim", "required with --format f32"))?;
                let rows = read_f32_rows(&spec.file, dim)?;
                let n = rows.len() / dim;
                let ids = match &spec.ids {
                    Some(p) => ids_of(
                        &p.display().to_string(),
                        &crate::ingest::read_text_file(p)?,
                        n,
                    )?,
                    None => Vec::new(),
                };
                (dim, rows, ids)
            }
            TableFormat::Tsv => {
                if spec.ids.is_some() {
                    return Err(Error::param(
                        "ids",
                        "a TSV table carries its ids in its first column",
                    ));
                }
                let p = tsv_vectors_of(&file, &crate::ingest::read_text_file(&spec.file)?)?;
                if let Some(d) = spec.dim.filter(|&d| d != p.dim) {
                    return Err(Error::Parse {
                        file,
                        line: 1,
                        field: "value 1".into(),
                        msg: format!("{} values a row, but --dim is {d}", p.dim),
                    });
                }
                (p.dim, p.rows, p.ids)
            }
        };
        let n = rows.len() / dim;
        if !replace {
            self.refuse_reshape(name, dim, RowSpace::Other)?;
        }
        let version = self.put_table(name, RowSpace::Other, dim, &rows, ids)?;
        Ok(TableImportReport {
            table: name.to_owned(),
            version,
            rows: n as u64,
            dim: dim as u64,
        })
    }

    /// An import over table `name` keeps its shape: `space` rows of `dim` values.
    pub(super) fn refuse_reshape(&self, name: &str, dim: usize, space: RowSpace) -> Result<()> {
        let Some(t) = self.tables()?.into_iter().find(|t| t.name == name) else {
            return Ok(());
        };
        if t.dim == dim as u64 && t.space == space.as_str() {
            return Ok(());
        }
        let job = crate::jobs::record::get(self.backend(), t.job)?;
        Err(Error::InvalidInput(format!(
            "table `{name}` holds {} {} rows of dim {} (from job {} `{}`) and the import has `{}` rows of dim {dim}: replacing it needs `replace_table` (shell: `import table --replace`)",
            t.rows,
            t.space,
            t.dim,
            t.job,
            job.map_or("?".into(), |j| j.model),
            space.as_str(),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EventKind, Params};
    use std::path::Path;

    fn tsv(dir: &Path, name: &str, dim: usize, rows: usize) -> PathBuf {
        let p = dir.join(name);
        let text: String = (0..rows)
            .map(|r| {
                let v: Vec<String> = (0..dim).map(|j| (r + j).to_string()).collect();
                format!("r{r}\t{}\n", v.join("\t"))
            })
            .collect();
        std::fs::write(&p, text).unwrap();
        p
    }

    fn spec(file: PathBuf) -> TableImport {
        TableImport {
            format: TableFormat::Tsv,
            file,
            dim: None,
            ids: None,
        }
    }

    #[test]
    fn an_import_over_a_table_of_another_shape_needs_replace() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::temporary().unwrap();
        let mut b = db.batch();
        for u in 0..20 {
            for i in 0..5 {
                let item = format!("i{}", (u + i) % 9);
                b.push(&format!("u{u}"), &item, EventKind::Click, 1.0, i as i64)
                    .unwrap();
            }
        }
        b.commit().unwrap();
        let p = Params::new().set("factors", 4).set("iterations", 1);
        db.train("als", &p, &Default::default()).unwrap();
        let before = db.tables().unwrap();
        // A model's table: another dimension, or the same one as `other` rows.
        for dim in [3, 4] {
            let e = db
                .import_table("als.items", &spec(tsv(dir.path(), "v.tsv", dim, 9)))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("table `als.items` holds 9 items rows of dim 4"),
                "{e}"
            );
            assert!(e.contains("import table --replace"), "{e}");
        }
        assert_eq!(db.tables().unwrap(), before);
        let r = db
            .replace_table("als.items", &spec(tsv(dir.path(), "v.tsv", 3, 9)))
            .unwrap();
        assert_eq!((r.rows, r.dim), (9, 3));
        assert_eq!(db.table("als.items").unwrap().dim(), 3);
        // An imported table takes new versions of its own shape only.
        db.import_table("emb", &spec(tsv(dir.path(), "e2.tsv", 2, 5)))
            .unwrap();
        db.import_table("emb", &spec(tsv(dir.path(), "e2b.tsv", 2, 7)))
            .unwrap();
        let e = db
            .import_table("emb", &spec(tsv(dir.path(), "e3.tsv", 3, 5)))
            .unwrap_err();
        assert!(e.to_string().contains("of dim 2"), "{e}");
        assert_eq!(db.table("emb").unwrap().rows(), 7);
    }

    #[test]
    fn long_lines_and_endless_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::temporary().unwrap();
        let p = dir.path().join("long.tsv");
        let text = format!("a\t1\nb{}\n", "\t".repeat(2 * crate::ingest::MAX_LINE));
        std::fs::write(&p, text).unwrap();
        let e = db
            .import_table("t", &spec(p.clone()))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!("{}:2: field `(line)`", p.display())),
            "{e}"
        );
        #[cfg(unix)]
        {
            let zero = TableImport {
                format: TableFormat::F32,
                file: "/dev/zero".into(),
                dim: Some(4),
                ids: None,
            };
            let e = db.import_table("t", &zero).unwrap_err().to_string();
            assert!(e.contains("not a regular file"), "{e}");
            let e = db.import_table("t", &spec("/dev/zero".into())).unwrap_err();
            assert!(
                e.to_string().starts_with("/dev/zero:1: field `(line)`"),
                "{e}"
            );
        }
        assert!(db.tables().unwrap().is_empty());
    }
}
