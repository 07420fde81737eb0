//! Lookups: `find TEXT` (items by title or attribute), `search TABLE` (nearest rows of any
//! table, by a row's id or a raw vector), `item`, `user`, `history`.

use anyhow::{anyhow, bail, Result};
use serde_json::{json, Value};

use recdb::{Metric, RowSpace, SearchOptions};

use crate::output::{Body, Output};
use crate::session::Session;

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

/// `history USER [-n N]`: a user's events and searches in time order (a search shows
/// kind `search` and its words as the title).
pub fn history(s: &mut Session, user: &str, last: Option<usize>) -> Result<()> {
    let db = s.db()?;
    let h = db.history(user)?;
    let searches = db.searches(user)?;
    // (timestamp, event index or search index): events first at equal times.
    let mut order: Vec<(i64, usize, usize)> = h
        .iter()
        .enumerate()
        .map(|(i, e)| (e.timestamp, 0, i))
        .chain(
            searches
                .iter()
                .enumerate()
                .map(|(i, q)| (q.timestamp, 1, i)),
        )
        .collect();
    order.sort_unstable();
    if let Some(n) = last {
        let skip = order.len().saturating_sub(n);
        order.drain(..skip);
    }
    let mut rows = Vec::with_capacity(order.len());
    let mut js = Vec::with_capacity(order.len());
    for &(_, which, i) in &order {
        if which == 1 {
            let q = &searches[i];
            rows.push(vec![
                q.timestamp.to_string(),
                String::new(),
                q.text.clone(),
                "search".into(),
                String::new(),
            ]);
            js.push(json!({"timestamp": q.timestamp, "kind": "search", "query": q.text}));
            continue;
        }
        let e = &h[i];
        let title = db
            .item(&e.item)
            .ok()
            .and_then(|r| r.title)
            .unwrap_or_default();
        rows.push(vec![
            e.timestamp.to_string(),
            e.item.clone(),
            title.clone(),
            e.kind.to_string(),
            format_value(e.value),
        ]);
        js.push(
            json!({"timestamp": e.timestamp, "item": e.item, "title": title,
            "kind": e.kind.as_str(), "value": e.value}),
        );
    }
    s.print(&Output::table(
        &["timestamp", "item", "title", "kind", "value"],
        rows,
        Value::Array(js),
    ));
    Ok(())
}

/// `item ID`: an item's attributes and event count.
pub fn item(s: &mut Session, id: &str) -> Result<()> {
    let db = s.db()?;
    let r = db.item(&db.resolve_item(id)?)?;
    let events = db.item_event_count(&r.id)?;
    let mut pairs = vec![
        ("id".to_owned(), r.id.clone()),
        ("title".to_owned(), r.title.clone().unwrap_or_default()),
        ("genres".to_owned(), r.genres.join(", ")),
        ("events".to_owned(), events.to_string()),
    ];
    if let Some(t) = &r.text {
        pairs.push(("text".into(), t.clone()));
    }
    pairs.extend(r.attrs.iter().cloned());
    let attrs = attrs_json(&r.attrs);
    let js = json!({"id": r.id, "title": r.title, "genres": r.genres, "events": events,
        "text": r.text, "attrs": attrs});
    s.print(&Output::new(js).block(None, Body::Pairs(pairs)));
    Ok(())
}

/// `user ID`: a user's attributes.
pub fn user(s: &mut Session, id: &str) -> Result<()> {
    let r = s.db()?.user(id)?;
    let mut pairs = vec![("id".to_owned(), r.id.clone())];
    pairs.extend(r.attrs.iter().cloned());
    let attrs = attrs_json(&r.attrs);
    s.print(&Output::new(json!({"id": r.id, "attrs": attrs})).block(None, Body::Pairs(pairs)));
    Ok(())
}

fn format_value(v: f32) -> String {
    if v.fract() == 0.0 && v.abs() < 1e9 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

/// Attributes as a JSON object of strings.
fn attrs_json(attrs: &[(String, String)]) -> serde_json::Map<String, Value> {
    attrs
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect()
}
