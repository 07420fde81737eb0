//! `import table`: vectors trained elsewhere, published as a table version.

use std::path::{Path, PathBuf};

use super::{Db, TableFormat};
use crate::ingest::{parse_f32_rows, parse_ids, parse_tsv_vectors};
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

fn read(path: &Path) -> Result<Vec<u8>> {
    Ok(crate::ingest::read_file(path)?.1)
}

impl Db {
    /// Read every file, validate every row, then publish them as a new version of
    /// `name` (an `other` table whose rows are named by the ids) in one atomic publish.
    /// A rejected file leaves the database as it was. Durable on return.
    pub fn import_table(&self, name: &str, spec: &TableImport) -> Result<TableImportReport> {
        crate::storage::tables::check_name(name)?;
        let file = spec.file.display().to_string();
        let (dim, rows, ids) = match spec.format {
            TableFormat::F32 => {
                let bytes = crate::ingest::read_binary(&spec.file)?;
                let dim = spec
                    .dim
                    .ok_or_else(|| Error::param("dim", "required with --format f32"))?;
                let rows = parse_f32_rows(&file, &bytes, dim)?;
                let n = rows.len() / dim;
                let ids = match &spec.ids {
                    Some(p) => parse_ids(&p.display().to_string(), &read(p)?, n)?,
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
                let p = parse_tsv_vectors(&file, &read(&spec.file)?)?;
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
        let version = self.put_table(name, RowSpace::Other, dim, &rows, ids)?;
        Ok(TableImportReport {
            table: name.to_owned(),
            version,
            rows: n as u64,
            dim: dim as u64,
        })
    }
}
