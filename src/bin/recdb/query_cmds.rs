//! Item queries: `similar`, `recommend`, `predict`.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _, Result};
use serde_json::{json, Value};

use recdb::{Db, QueryOptions};

use crate::args::QueryArgs;
use crate::output::Output;
use crate::session::Session;

/// `similar ITEM`: items nearest to an item id or title.
pub fn similar(s: &mut Session, item: &str, query: QueryArgs) -> Result<()> {
    let db = s.db()?;
    let opts = query.options(false);
    let item = db.resolve_item(item)?;
    let hits = db.similar(&item, &opts)?;
    let out = hits_output(db, &hits)?;
    s.print(&out);
    Ok(())
}

/// `recommend USER` or `recommend --users FILE`.
pub fn recommend(
    s: &mut Session,
    user: Option<String>,
    users: Option<PathBuf>,
    opts: &QueryOptions,
) -> Result<()> {
    let db = s.db()?;
    let out = match (user, users) {
        (Some(user), _) => hits_output(db, &db.recommend(&user, opts)?)?,
        (None, Some(file)) => recommend_users(db, &file, opts)?,
        (None, None) => bail!("recommend needs USER or --users FILE"),
    };
    s.print(&out);
    Ok(())
}

/// `predict USER ITEM`: the model's score of the pair.
pub fn predict(s: &mut Session, user: &str, item: &str, model: &str) -> Result<()> {
    let score = s.db()?.predict(user, item, model)?;
    s.print(&Output::text(
        format!("{score:.4}"),
        json!({"user": user, "item": item, "model": model, "score": score}),
    ));
    Ok(())
}

/// `rank USER ITEM...`: the items scored by a ranking model, best first.
pub fn rank(s: &mut Session, user: &str, items: &[String], model: &str) -> Result<()> {
    let db = s.db()?;
    let ids: Vec<&str> = items.iter().map(String::as_str).collect();
    let out = hits_output(db, &db.rank(user, &ids, model)?)?;
    s.print(&out);
    Ok(())
}

/// `recommend --users FILE`: every listed user's list from one batched call; an unknown
/// user is reported with its line. (No titles: one item lookup per hit is what a bulk
/// export should not pay.)
fn recommend_users(db: &Db, file: &Path, opts: &QueryOptions) -> Result<Output> {
    let text = String::from_utf8(recdb::read_text_file(file)?)
        .with_context(|| format!("reading {}", file.display()))?;
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty())
        .collect();
    let users: Vec<&str> = lines.iter().map(|&(_, u)| u).collect();
    let lists = db.recommend_batch(&users, opts).map_err(|e| match &e {
        recdb::Error::UnknownUser(u) => match lines.iter().find(|(_, l)| l == u) {
            Some((n, _)) => anyhow!("{}, line {n}: {e}", file.display()),
            None => e.into(),
        },
        _ => e.into(),
    })?;
    let (mut rows, mut js) = (Vec::new(), Vec::with_capacity(users.len()));
    for (user, hits) in users.iter().zip(&lists) {
        for (i, h) in hits.iter().enumerate() {
            rows.push(vec![
                user.to_string(),
                (i + 1).to_string(),
                h.id.clone(),
                format!("{:.4}", h.score),
            ]);
        }
        let items: Vec<Value> = hits
            .iter()
            .enumerate()
            .map(|(i, h)| json!({"rank": i + 1, "id": h.id, "score": h.score}))
            .collect();
        js.push(json!({"user": user, "items": items}));
    }
    Ok(Output::table(
        &["user", "rank", "item", "score"],
        rows,
        Value::Array(js),
    ))
}

/// Ranked hits with titles and genres.
pub fn hits_output(db: &Db, hits: &[recdb::Hit]) -> Result<Output> {
    let mut rows = Vec::with_capacity(hits.len());
    let mut js = Vec::with_capacity(hits.len());
    for (i, h) in hits.iter().enumerate() {
        let rec = db.item(&h.id).ok();
        let title = rec
            .as_ref()
            .and_then(|r| r.title.clone())
            .unwrap_or_default();
        let genres = rec.map(|r| r.genres).unwrap_or_default();
        rows.push(vec![
            (i + 1).to_string(),
            h.id.clone(),
            title.clone(),
            genres.join(", "),
            format!("{:.4}", h.score),
        ]);
        js.push(
            json!({"rank": i + 1, "id": h.id, "title": title, "genres": genres, "score": h.score}),
        );
    }
    Ok(Output::table(
        &["rank", "item", "title", "genres", "score"],
        rows,
        Value::Array(js),
    ))
}
