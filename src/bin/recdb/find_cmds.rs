//! `find TEXT` (items by title or attribute) and `search TABLE` (nearest rows of any
//! table, by a row's id or a raw vector).

use anyhow::{anyhow, bail, Result};
use serde_json::{json, Value};

use recdb::{Metric, RowSpace, SearchOptions};

use crate::commands::Session;
use crate::output::Output;

/// `find TEXT [-n N]`: items whose id, title, genres or attributes contain TEXT.
pub fn find(s: &mut Session, text: &str, limit: usize) -> Result<()> {
    let found = s.db()?.find_items(text, limit)?;
    let rows = found
        .iter()
        .map(|r| {
            vec![
                r.id.clone(),
                r.title.clone().unwrap_or_default(),
                r.genres.join(", "),
            ]
        })
        .collect();
    let js: Vec<Value> = found
        .iter()
        .map(|r| json!({"id": r.id, "title": r.title, "genres": r.genres}))
        .collect();
    s.print(&Output::table(
        &["item", "title", "genres"],
        rows,
        Value::Array(js),
    ));
    Ok(())
}

/// What `search` looks for: a row of the table, or a vector.
pub struct SearchQuery {
    pub id: Option<String>,
    pub vector: Option<String>,
    pub k: usize,
    pub metric: Option<String>,
    pub exact: bool,
}

/// `search TABLE --id X | --vector "…"`: the k nearest rows of TABLE.
pub fn search(s: &mut Session, table: &str, q: &SearchQuery) -> Result<()> {
    let db = s.db()?;
    let searcher = db.searcher(table)?;
    let metric: Metric = match &q.metric {
        Some(m) => m.parse()?,
        None => searcher.index_metric().unwrap_or(Metric::Cosine),
    };
    let (query, skip) = match (&q.id, &q.vector) {
        (Some(id), None) => {
            let r = row_of(db, &searcher, id)?
                .ok_or_else(|| anyhow!("no row `{id}` in table `{table}`"))?;
            let v = searcher
                .row(r)
                .ok_or_else(|| anyhow!("row `{id}` was deleted from table `{table}`"))?;
            (v, Some(r as u32))
        }
        (None, Some(text)) => (parse_vector(text)?, None),
        _ => bail!("search {table}: give --id ROW or --vector \"x y …\" (one of them)"),
    };
    let opts = SearchOptions {
        k: q.k,
        metric,
        exact: q.exact,
        nprobe: None,
    };
    let hits = searcher.search_filtered(&query, &opts, &|r| Some(r) != skip)?;
    let mut rows = Vec::with_capacity(hits.len());
    let mut js = Vec::with_capacity(hits.len());
    for (i, (r, score)) in hits.iter().enumerate() {
        let id = db.searcher_row_id(&searcher, *r as usize);
        rows.push(vec![(i + 1).to_string(), id.clone(), format!("{score:.4}")]);
        js.push(json!({"rank": i + 1, "id": id, "score": score}));
    }
    s.print(&Output::table(
        &["rank", "id", "score"],
        rows,
        Value::Array(js),
    ));
    Ok(())
}

/// The row of `id` in the searcher's table (items and users by their ids, other
/// tables by their own row ids).
fn row_of(db: &recdb::Db, s: &recdb::TableSearcher, id: &str) -> Result<Option<usize>> {
    let row = match s.view().space() {
        space @ (RowSpace::Items | RowSpace::Users) => db.dense_id(space, id)?.map(|r| r as usize),
        RowSpace::Other => (0..s.rows()).find(|&r| db.searcher_row_id(s, r) == id),
    };
    Ok(row.filter(|&r| r < s.rows()))
}

/// `"0.1 0.2, 0.3"`: numbers separated by spaces or commas.
fn parse_vector(text: &str) -> Result<Vec<f32>> {
    text.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .enumerate()
        .map(|(i, w)| {
            w.parse::<f32>()
                .map_err(|_| anyhow!("--vector: value {} `{w}` is not a number", i + 1))
        })
        .collect()
}
