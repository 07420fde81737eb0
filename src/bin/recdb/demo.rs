//! `recdb demo`: synthetic data in, similar items and recommendations out.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::{anyhow, Result};
use serde_json::{json, Value};

// The record types `synth` builds (it names them through `super::`).
use recdb::UserRecord;
use recdb::{Config, Db, EventKind, ItemRecord, Params, QueryOptions, RawEvent, TrainOptions};

// The library's synthetic world, compiled here: the library ships it only with the
// `testkit` feature. The demo uses part of it.
#[allow(dead_code)]
#[path = "../../synth/mod.rs"]
mod synth;

use synth::SynthConfig;

use crate::grammar::DemoArgs;
use crate::output::{Body, Output};
use crate::progress::Bar;
use crate::query_cmds::hits_output;
use crate::session::Session;

/// Items and users shown.
const SHOW: usize = 3;
/// Results per table.
const K: usize = 5;

pub fn run(s: &mut Session, a: DemoArgs) -> Result<()> {
    let mut cfg = SynthConfig {
        seed: a.seed.seed,
        ..SynthConfig::default()
    };
    if let Some(u) = a.users {
        cfg.users = u;
    }
    if let Some(i) = a.items {
        cfg.items = i;
    }
    if cfg.users == 0 {
        return Err(anyhow!("--users must be at least 1"));
    }
    let t0 = Instant::now();
    let synth = synth::generate(&cfg);
    let gen_s = t0.elapsed().as_secs_f64();

    let path = a.db.or_else(|| s.db_path.clone());
    let db = Db::open_with(Config {
        path: path.clone(),
        threads: s.threads.unwrap_or(0),
        ..Config::default()
    })?;
    let where_ = match &path {
        Some(p) => p.display().to_string(),
        None => "a temporary database".to_owned(),
    };

    let t1 = Instant::now();
    db.put_items(&synth.items)?;
    db.put_users(&synth.users)?;
    let receipt = db.log_events(&synth.events)?;
    let load_s = t1.elapsed().as_secs_f64();

    let opts = TrainOptions {
        seed: a.seed.seed,
        threads: None,
        ..Default::default()
    };
    let mut trained = Vec::new();
    // The ALS defaults are tuned for next-item hits on ML-100K; on the synthetic data,
    // more factors and less shrinkage give neighbours that share genres.
    let als = Params::new()
        .set("factors", 64)
        .set("reg", 0.1)
        .set("alpha", 1);
    for (model, params) in [("popular", Params::new()), ("als", als)] {
        let bar = std::sync::Arc::new(Bar::new(model));
        let opts = TrainOptions {
            control: recdb::JobControl {
                progress: Some(bar.clone()),
                cancel: None,
            },
            ..opts.clone()
        };
        let r = db.train(model, &params, &opts);
        bar.finish();
        let info = r?;
        trained.push((model, info.seconds));
    }

    let st = db.stats()?;
    let mut out = Output::new(Value::Null);
    let summary = format!(
        "recdb demo: synthetic data (seed {}) in {where_}\n\
         {} users, {} items, {} events, {} genres; generated in {gen_s:.2} s, loaded in {load_s:.2} s\n\
         trained {}",
        a.seed.seed,
        st.users,
        st.items,
        receipt.total_events,
        synth.genres.len(),
        trained
            .iter()
            .map(|(m, t)| format!("{m} in {t:.2} s"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    out = out.block(None, Body::Text(summary));

    // The most popular items, by number of events.
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for e in &synth.events {
        *counts.entry(e.item.as_str()).or_default() += 1;
    }
    let mut popular: Vec<(&str, usize)> = counts.into_iter().collect();
    popular.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));

    let mut js_similar = Vec::new();
    for (item, n) in popular.iter().take(SHOW) {
        let rec = db.item(item)?;
        let title = rec.title.clone().unwrap_or_else(|| item.to_string());
        let hits = db.similar(item, &QueryOptions::model("als").k(K))?;
        let table = hits_output(&db, &hits)?;
        out = out.block(
            Some(&format!(
                "similar to \"{title}\" ({}; {n} events)",
                rec.genres.join(", ")
            )),
            table.blocks[0].body.clone(),
        );
        js_similar.push(
            json!({"item": item, "title": title, "genres": rec.genres, "similar": table.json}),
        );
    }

    // A few users with some history.
    let mut js_recs = Vec::new();
    let users: Vec<&str> = synth
        .users
        .iter()
        .map(|u| u.id.as_str())
        .filter(|u| db.history(u).map(|h| h.len() >= 5).unwrap_or(false))
        .take(SHOW)
        .collect();
    for user in users {
        let hist = db.history(user)?;
        let recent: Vec<String> = hist
            .iter()
            .rev()
            .take(K)
            .map(|e| {
                db.item(&e.item)
                    .ok()
                    .and_then(|r| r.title)
                    .unwrap_or_else(|| e.item.clone())
            })
            .collect();
        let hits = db.recommend(user, &QueryOptions::model("als").k(K))?;
        let table = hits_output(&db, &hits)?;
        out = out.block(
            Some(&format!(
                "user {user} ({} events); recently: {}\nrecommended:",
                hist.len(),
                recent.join("; ")
            )),
            table.blocks[0].body.clone(),
        );
        js_recs.push(json!({"user": user, "events": hist.len(), "recent": recent, "recommended": table.json}));
    }
    out.json = json!({
        "users": st.users,
        "items": st.items,
        "events": receipt.total_events,
        "trained": trained.iter().map(|(m, t)| json!({"model": m, "seconds": t})).collect::<Vec<_>>(),
        "similar": js_similar,
        "recommendations": js_recs,
    });
    out.print(s.mode);
    Ok(())
}
