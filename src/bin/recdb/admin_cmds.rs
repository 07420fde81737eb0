//! Administration: `stats`, `check`, `vacuum`.

use anyhow::{anyhow, Result};
use serde_json::json;

use recdb::Db;

use crate::output::{Body, Mode, Output};
use crate::session::Session;

/// `stats`: counts, tables, jobs, size on disk.
pub fn stats(s: &mut Session, format: Option<Mode>) -> Result<()> {
    let st = s.db()?.stats()?;
    let js = serde_json::to_value(&st)?;
    let mut pairs = vec![
        ("users".to_owned(), st.users.to_string()),
        ("items".to_owned(), st.items.to_string()),
        ("events".to_owned(), st.events.to_string()),
        ("groups".to_owned(), st.groups.to_string()),
        ("docs".to_owned(), st.docs.to_string()),
        ("log segments".to_owned(), st.log_segments.to_string()),
        ("jobs".to_owned(), st.jobs.to_string()),
        ("size on disk".to_owned(), human_bytes(st.size_on_disk)),
        ("format".to_owned(), st.format.to_string()),
    ];
    if st.searches > 0 {
        let at = pairs
            .iter()
            .position(|p| p.0 == "events")
            .map_or(0, |i| i + 1);
        pairs.insert(
            at,
            (
                "searches".to_owned(),
                format!("{} ({} words)", st.searches, st.search_tokens),
            ),
        );
    }
    if let Some(dump) = &st.incomplete_restore {
        pairs.push((
            "incomplete restore".to_owned(),
            format!("{dump} (run restore again)"),
        ));
    }
    let mut out = Output::new(js).block(None, Body::Pairs(pairs));
    if !st.tables.is_empty() {
        let t = crate::table_cmds::tables_output(&st.tables)?;
        out = out.block(Some("tables"), t.blocks[0].body.clone());
    }
    s.print(&out.with_mode(format));
    Ok(())
}

/// `check`: verify every stored structure.
pub fn check(s: &mut Session) -> Result<()> {
    let r = s.db()?.check()?;
    let out = Output::pairs_of(serde_json::to_value(&r)?);
    let out = out.block(None, Body::Text("ok".into()));
    s.print(&out);
    Ok(())
}

/// `vacuum`: rewrite the database compactly (the library's `Db::vacuum`).
pub fn vacuum(s: &mut Session) -> Result<()> {
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

fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}
