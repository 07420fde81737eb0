//! `table ...`: derived tables and single-row updates.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Subcommand;
use serde_json::json;

use crate::commands::Session;
use crate::output::Output;

#[derive(Debug, Subcommand)]
pub enum TableAction {
    /// `table concat NAME A B [...]`: L2-normalise each table's rows and concatenate
    /// them by row id into a new table NAME (same row space; every id in every table).
    Concat {
        name: String,
        #[arg(required = true, num_args = 2..)]
        tables: Vec<String>,
    },
    /// `table put TABLE ID V1 V2 ...` or `table put TABLE --file F.tsv`: put rows
    /// (replace an id's row or add one); the index is updated incrementally.
    Put {
        table: String,
        id: Option<String>,
        #[arg(allow_negative_numbers = true)]
        values: Vec<f32>,
        /// Rows as `id<TAB>v1<TAB>...` lines.
        #[arg(long, conflicts_with = "id")]
        file: Option<PathBuf>,
    },
    /// `table delete TABLE ID [...]`: delete rows (tombstones; no rebuild).
    Delete {
        table: String,
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// `table compact TABLE`: fold the rows put/deleted since publish into a new version.
    Compact { table: String },
}

pub fn run(s: &mut Session, action: TableAction) -> Result<()> {
    match action {
        TableAction::Concat { name, tables } => {
            let srcs: Vec<&str> = tables.iter().map(String::as_str).collect();
            let db = s.db()?;
            let version = db.concat_tables(&name, &srcs)?;
            let dim = db.table(&name)?.dim();
            s.print(&Output::text(
                format!(
                    "published {name} version {version} ({dim} dims from {})",
                    tables.join(" + ")
                ),
                json!({"table": name, "version": version, "dim": dim, "sources": tables}),
            ));
        }
        TableAction::Put {
            table,
            id,
            values,
            file,
        } => {
            let rows = match (id, file) {
                (Some(id), None) => {
                    if values.is_empty() {
                        bail!("table put {table} {id}: no values");
                    }
                    vec![(id, values)]
                }
                (None, Some(f)) => {
                    let bytes = recdb::read_text_file(&f)?;
                    let p = recdb::parse_tsv_vectors(&f.display().to_string(), &bytes)?;
                    let dim = p.dim;
                    p.ids
                        .into_iter()
                        .zip(p.rows.chunks_exact(dim).map(<[f32]>::to_vec))
                        .collect()
                }
                _ => bail!("table put: give ID and values, or --file"),
            };
            let r = s.db()?.upsert_rows(&table, &rows)?;
            s.print(&Output::text(
                format!(
                    "put {} row(s) into {table} version {} ({} operations since publish{})",
                    r.rows,
                    r.version,
                    r.delta_ops,
                    r.compact_job
                        .map(|j| format!("; compacting in job {j}"))
                        .unwrap_or_default()
                ),
                serde_json::to_value(&r)?,
            ));
        }
        TableAction::Delete { table, ids } => {
            let r = s.db()?.delete_rows(&table, &ids)?;
            s.print(&Output::text(
                format!(
                    "deleted {} row(s) from {table} version {} ({} operations since publish)",
                    r.rows, r.version, r.delta_ops
                ),
                serde_json::to_value(&r)?,
            ));
        }
        TableAction::Compact { table } => {
            let info = s.db()?.compact(&table, &Default::default())?;
            s.print(&Output::text(
                format!("job {}: {}", info.id, info.message),
                serde_json::to_value(&info)?,
            ));
        }
    }
    Ok(())
}
