//! Tables: `tables`, `drop table`, and `table ...` (derived tables and single-row updates).
use anyhow::{bail, Result};
use serde_json::json;

use crate::grammar::TableAction;
use crate::output::Output;
use crate::session::{still_running, wait_at_most, RunMode, Session, Waited};

/// `table concat|put|delete|compact ...`.
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
            let info = match s.run_mode {
                // As `train` over a server: answered after `wait` at most.
                RunMode::Served { wait } => {
                    let db = s.db()?.clone();
                    let h = db.spawn_compact(&table, &Default::default())?;
                    match wait_at_most(&db, h, wait) {
                        Waited::Ended(r) => r?,
                        Waited::Running(h) => {
                            s.print(&still_running(h.id, &format!("compact {table}"), wait));
                            return Ok(());
                        }
                    }
                }
                _ => s.db()?.compact(&table, &Default::default())?,
            };
            s.print(&Output::text(
                format!("job {}: {}", info.id, info.message),
                serde_json::to_value(&info)?,
            ));
        }
    }
    Ok(())
}

/// `tables`: every embedding table.
pub fn list(s: &mut Session) -> Result<()> {
    let t = s.db()?.tables()?;
    s.print(&tables_output(&t)?);
    Ok(())
}

/// `drop table NAME`.
pub fn drop(s: &mut Session, name: &str) -> Result<()> {
    s.db()?.drop_table(name)?;
    s.print(&Output::text(
        format!("dropped table {name}"),
        json!({"dropped": name}),
    ));
    Ok(())
}

/// The table list (also a block of `stats`).
pub fn tables_output(tables: &[recdb::TableInfo]) -> Result<Output> {
    let rows = tables
        .iter()
        .map(|t| {
            vec![
                t.name.clone(),
                t.version.to_string(),
                t.rows.to_string(),
                t.dim.to_string(),
                t.space.to_owned(),
                t.versions
                    .iter()
                    .filter(|&&v| v != t.version)
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
                t.job.to_string(),
                t.watermark.to_string(),
            ]
        })
        .collect();
    Ok(Output::table(
        &[
            "name",
            "version",
            "rows",
            "dim",
            "space",
            "older versions",
            "job",
            "watermark",
        ],
        rows,
        serde_json::to_value(tables)?,
    ))
}
