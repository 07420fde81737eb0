//! `table ...`: derived tables built from published ones (issue 3).

use anyhow::Result;
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
    }
    Ok(())
}
