//! Data in and out: `import`, `export table`, `dump`, `restore`.

use std::path::Path;

use anyhow::{anyhow, bail, Result};
use serde_json::json;

use recdb::{Format, TableFormat};

use crate::grammar::{ImportArgs, ImportKind};
use crate::output::{json_pairs, Body, Output};
use crate::session::Session;

/// `import events|items|users|docs FILE` or `import table NAME FILE`.
pub fn import(s: &mut Session, a: ImportArgs) -> Result<()> {
    match a.what {
        ImportKind::Table => import_table(s, a),
        _ => import_file(s, a),
    }
}

fn import_table(s: &mut Session, a: ImportArgs) -> Result<()> {
    if a.allow_duplicate {
        bail!("--allow-duplicate goes with `import events`");
    }
    let [name, file] = &a.args[..] else {
        bail!("import table NAME FILE: give a table name and a file");
    };
    let name = name.display().to_string();
    let format: TableFormat = a
        .format
        .as_deref()
        .ok_or_else(|| anyhow!("import table: --format f32, tsv or parquet is required"))?
        .parse()?;
    let spec = recdb::TableImport {
        format,
        file: file.clone(),
        dim: a.dim,
        ids: a.ids,
    };
    let r = if a.replace {
        s.db()?.replace_table(&name, &spec)?
    } else {
        s.db()?.import_table(&name, &spec)?
    };
    s.print(&Output::text(
        format!(
            "published {name} version {} ({} rows x {} dims from {})",
            r.version,
            r.rows,
            r.dim,
            file.display()
        ),
        serde_json::to_value(&r)?,
    ));
    s.wait_maintenance_if_one_shot();
    Ok(())
}

fn import_file(s: &mut Session, a: ImportArgs) -> Result<()> {
    let what = a.what;
    let [file] = &a.args[..] else {
        bail!("import {}: takes one FILE", what.as_str());
    };
    if a.dim.is_some() || a.ids.is_some() || a.replace {
        bail!("--dim, --ids and --replace go with `import table`");
    }
    let format = parse_format(a.format.as_deref())?;
    let db = s.db()?;
    if let (ImportKind::Events, false) = (what, a.allow_duplicate) {
        if let Some(notice) = crate::import_note::prior_import_notice(db, file)? {
            eprintln!("{notice}");
        }
    } else if a.allow_duplicate && !matches!(what, ImportKind::Events) {
        bail!("--allow-duplicate goes with `import events`");
    }
    let title = format!("imported {} from {}", what.as_str(), file.display());
    let json = match what {
        ImportKind::Events => serde_json::to_value(db.import_events(file, format)?)?,
        ImportKind::Items => serde_json::to_value(db.import_items(file, format)?)?,
        ImportKind::Users => serde_json::to_value(db.import_users(file, format)?)?,
        ImportKind::Docs => serde_json::to_value(db.import_docs(file)?)?,
        ImportKind::Table => unreachable!("import_table handles tables"),
    };
    let pairs = json_pairs(&json);
    let out = Output::new(json).block(Some(&title), Body::Pairs(pairs));
    s.print(&out);
    Ok(())
}

/// `--format` of `import`, through the library's parser.
fn parse_format(s: Option<&str>) -> Result<Option<Format>> {
    Ok(match s {
        None => None,
        Some(f) => Some(f.parse::<Format>()?),
    })
}

/// `export table NAME --format f32|tsv FILE`.
pub fn export_table(s: &mut Session, name: &str, format: &str, file: &Path) -> Result<()> {
    let f: TableFormat = format.parse()?;
    let rows = s.db()?.export_table(name, f, file)?;
    s.print(&Output::text(
        format!("exported {rows} rows of {name} to {}", file.display()),
        json!({"table": name, "rows": rows, "file": file.display().to_string()}),
    ));
    Ok(())
}

/// `export log --format parquet [--rows-per-file N] DIR`.
#[cfg(feature = "parquet")]
pub fn export_log(s: &mut Session, format: &str, rows: Option<usize>, dir: &Path) -> Result<()> {
    if format != "parquet" {
        bail!("export log: --format parquet is the one log format");
    }
    let r = s
        .db()?
        .export_log_parquet(dir, rows.unwrap_or(recdb::PARQUET_ROWS_PER_FILE))?;
    s.print(&Output::text(
        format!(
            "exported {} events ({} users, {} items) to {} Parquet files in {}",
            r.events, r.users, r.items, r.files, r.dir
        ),
        serde_json::to_value(&r)?,
    ));
    Ok(())
}

/// `export log` in a build without the `parquet` feature.
#[cfg(not(feature = "parquet"))]
pub fn export_log(_: &mut Session, _: &str, _: Option<usize>, _: &Path) -> Result<()> {
    bail!("export log: this build has no Parquet support (cargo feature `parquet`)")
}

/// `, N searches` when a dump has searches (nothing otherwise, as before searches).
fn searches_note(n: u64) -> String {
    if n == 0 {
        String::new()
    } else {
        format!(", {n} searches")
    }
}

/// `dump FILE`: a portable JSON-lines copy of the database.
pub fn dump(s: &mut Session, file: &Path) -> Result<()> {
    let f = std::fs::File::create(file).map_err(|e| anyhow!("{}: {e}", file.display()))?;
    let r = s.db()?.dump(&mut std::io::BufWriter::new(f))?;
    let text = format!(
        "dumped {} users, {} items, {} events{}, {} tables to {}",
        r.users,
        r.items,
        r.events,
        searches_note(r.searches),
        r.tables,
        file.display()
    );
    s.print(&Output::text(text, serde_json::to_value(&r)?));
    Ok(())
}

/// `restore FILE`: load a dump into an empty database.
pub fn restore(s: &mut Session, file: &Path) -> Result<()> {
    let f = std::fs::File::open(file).map_err(|e| anyhow!("{}: {e}", file.display()))?;
    let name = file.display().to_string();
    let r = s.db()?.restore(&mut std::io::BufReader::new(f), &name)?;
    let text = format!(
        "restored {} users, {} items, {} events{}, {} tables",
        r.users,
        r.items,
        r.events,
        searches_note(r.searches),
        r.tables
    );
    s.print(&Output::text(text, serde_json::to_value(&r)?));
    Ok(())
}
