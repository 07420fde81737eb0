//! `index build|bench|info TABLE`: the vector index of a table (docs/INDEX.md).

use anyhow::Result;
use serde_json::json;

use recdb::{IndexBenchOptions, IndexOptions, Metric};

use crate::grammar::IndexAction;
use crate::output::{json_pairs, Body, Output};
use crate::progress::Bar;
use crate::session::{still_running, wait_at_most, RunMode, Session, Waited};

/// What `index build` prints of the index it built.
fn print_built(s: &Session, table: &str, info: &recdb::IndexInfo) -> Result<()> {
    if info.exhaustive && info.lists > 1 {
        eprintln!(
            "warning: index {table}: recall@10 {} not reached without probing every list; queries scan every row (`jobs` shows the closest point; try --bits 8, --rerank or --lists)",
            info.target_recall
        );
    }
    let js = serde_json::to_value(info)?;
    let pairs = json_pairs(&js);
    s.print(&Output::new(js).block(Some("index built"), Body::Pairs(pairs)));
    Ok(())
}

/// `index build|bench|info TABLE`.
pub fn run(s: &mut Session, action: IndexAction) -> Result<()> {
    match action {
        IndexAction::Build {
            table,
            metric,
            lists,
            bits,
            spill,
            target_recall,
            rerank,
            threads,
            seed,
            background,
            once,
        } => {
            let opts = IndexOptions {
                metric: metric.parse::<Metric>()?,
                lists,
                bits,
                spill,
                target_recall,
                rerank,
                seed: seed.seed,
                threads: threads.threads,
                rebuild_on_publish: !once,
                control: Default::default(),
            };
            let run_mode = s.run_mode;
            let db = s.db()?.clone();
            if let (RunMode::Served { wait }, false) = (run_mode, background.background) {
                // As `train` over a server: answered after `wait` at most.
                let h = db.spawn_build_index(&table, &opts)?;
                match wait_at_most(&db, h, wait) {
                    Waited::Ended(r) => {
                        r?;
                        let info = db.index_info(&table)?.ok_or_else(|| {
                            anyhow::anyhow!("index {table}: the job ended without an index")
                        })?;
                        print_built(s, &table, &info)?;
                    }
                    Waited::Running(h) => {
                        s.print(&still_running(h.id, &format!("index {table}"), wait));
                    }
                }
                return Ok(());
            }
            if background.background {
                let h = db.spawn_build_index(&table, &opts)?;
                s.print(&Output::text(
                    format!("started job {} (index {table}) in the background", h.id),
                    json!({"job": h.id, "table": table, "background": true}),
                ));
                match run_mode {
                    RunMode::Shell | RunMode::Served { .. } => s.keep_background(h),
                    RunMode::OneShot => {
                        eprintln!("waiting for job {}: the process is about to end", h.id);
                        h.wait()?;
                    }
                }
                return Ok(());
            }
            let bar = std::sync::Arc::new(Bar::new(&format!("index {table}")));
            let opts = IndexOptions {
                control: recdb::JobControl {
                    progress: Some(bar.clone()),
                    cancel: None,
                },
                ..opts
            };
            let r = db.build_index(&table, &opts);
            bar.finish();
            print_built(s, &table, &r?)?;
        }
        IndexAction::Bench {
            table,
            queries,
            top,
            threads,
            nprobe,
            format,
        } => {
            let bytes = recdb::read_binary_file(&queries)?;
            let db = s.db()?;
            let dim = db.table(&table)?.dim();
            let q = recdb::parse_f32_rows(&queries.display().to_string(), &bytes, dim)?;
            let r = db.bench_index(
                &table,
                &q,
                &IndexBenchOptions {
                    k: top.k,
                    threads,
                    nprobes: nprobe,
                },
            )?;
            let rows = r
                .points
                .iter()
                .map(|p| {
                    vec![
                        p.nprobe.to_string(),
                        format!("{:.4}", p.recall),
                        format!("{:.0}", p.qps_cpu),
                        format!("{:.0}", p.qps_wall),
                        format!("{:.1}", p.us_per_query_cpu),
                        format!("{:.0}", p.qps_cpu_batched),
                    ]
                })
                .collect();
            let title = format!(
                "{} v{}: {} x {}, {} queries, k {}, {} thread(s); {} lists, tuned nprobe {}; build {:.2} s; {:.1} bytes/vector; exact {:.3} ms/query (CPU), {:.3} batched",
                r.table, r.version, r.rows, r.dim, r.queries, r.k, r.threads, r.lists,
                r.nprobe, r.build_seconds, r.bytes_per_vector, r.exact_ms_cpu, r.exact_ms_cpu_batched
            );
            let out = Output::new(serde_json::to_value(&r)?)
                .block(
                    Some(&title),
                    Body::Table {
                        headers: [
                            "nprobe",
                            "recall",
                            "qps (cpu)",
                            "qps (wall)",
                            "us/query (cpu)",
                            "qps batched (cpu)",
                        ]
                        .iter()
                        .map(|h| h.to_string())
                        .collect(),
                        rows,
                    },
                )
                .with_mode(format.format);
            s.print(&out);
        }
        IndexAction::Info { table } => {
            let info = s.db()?.index_info(&table)?;
            match info {
                Some(i) => s.print(&Output::pairs_of(serde_json::to_value(&i)?)),
                None => s.print(&Output::text(
                    format!("table {table} has no index (queries scan it exactly)"),
                    json!({"table": table, "index": null}),
                )),
            }
        }
    }
    Ok(())
}
