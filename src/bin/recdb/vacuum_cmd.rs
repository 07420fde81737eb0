//! `vacuum`: rewrite the database compactly (the library's `Db::vacuum`).

use anyhow::{anyhow, Result};
use serde_json::json;

use recdb::Db;

use crate::commands::Session;
use crate::output::Output;

pub fn run(s: &mut Session) -> Result<()> {
    let path = s
        .db_path
        .clone()
        .ok_or_else(|| anyhow!("no database: pass --db PATH"))?;
    // The copy needs the database closed, in this process too.
    s.close();
    let r = Db::vacuum(&path)?;
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    let text = format!(
        "vacuumed {}: {:.1} MiB -> {:.1} MiB ({} keys, {:.1} MiB of keys and values)",
        path.display(),
        mib(r.bytes_before),
        mib(r.bytes_after),
        r.keys,
        mib(r.live_bytes)
    );
    s.print(&Output::text(text, json!(r)));
    Ok(())
}
