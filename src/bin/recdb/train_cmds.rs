//! Training and its jobs: `train`, `jobs`, `jobs cancel`, `retrain`.

use anyhow::Result;
use serde_json::{json, Value};

use recdb::{JobInfo, Params, TrainOptions};

use crate::args::{MfKind, ParamArgs};
use crate::grammar::TrainArgs;
use crate::output::{short_floats, Body, Output};
use crate::progress::Bar;
use crate::session::{still_running, wait_at_most, RunMode, Session, Waited};

/// `jobs`: every job record.
pub fn jobs(s: &mut Session) -> Result<()> {
    let jobs = s.db()?.jobs()?;
    s.print(&jobs_output(&jobs)?);
    Ok(())
}

/// `jobs cancel ID`.
pub fn cancel(s: &mut Session, id: u64) -> Result<()> {
    s.db()?.cancel_job(id)?;
    s.print(&Output::text(
        format!("asked job {id} to stop"),
        json!({"cancelled": id}),
    ));
    Ok(())
}

/// `retrain MODEL --every N`: the retrain policy.
pub fn retrain(
    s: &mut Session,
    model: &str,
    kind: &MfKind,
    every: u64,
    params: &ParamArgs,
) -> Result<()> {
    let model = kind.resolve(model)?;
    let p = params.to_params()?;
    s.db()?.set_retrain_policy(&model, &p, every)?;
    s.print(&Output::text(
        format!("{model} will retrain every {every} new events"),
        json!({"model": model, "every": every}),
    ));
    Ok(())
}

/// `train MODEL [flags]`, in the foreground with a progress bar or `--background`.
pub fn train(s: &mut Session, a: TrainArgs) -> Result<()> {
    let model = a.kind.resolve(&a.model)?;
    let mut p = Params::new();
    if let Some(v) = a.factors {
        p.insert("factors", v);
    }
    if let Some(v) = a.epochs {
        p.insert("epochs", v);
    }
    if let Some(v) = a.iterations {
        p.insert("iterations", v);
    }
    if let Some(v) = a.lr {
        p.insert("learning_rate", v);
    }
    if let Some(v) = a.reg {
        p.insert("reg", v);
    }
    if let Some(v) = a.alpha {
        p.insert("alpha", v);
    }
    a.item2vec.apply(&mut p);
    if let Some(v) = &a.docs {
        p.insert("docs", v);
    }
    if a.dm || a.dbow {
        p.insert("dm", a.dm);
    }
    if a.dbow_words {
        p.insert("dbow_words", true);
    }
    a.params.insert_into(&mut p)?;
    let mut opts = TrainOptions::default();
    if let Some(seed) = a.seed {
        opts.seed = seed;
    }
    opts.threads = a.threads.threads;
    let run_mode = s.run_mode;
    let db = s.db()?.clone();
    if let (RunMode::Served { wait }, false) = (run_mode, a.background.background) {
        // Over a server the job runs in the background: a slow one answers after
        // `wait` and goes on, rather than holding a request slot for minutes.
        let h = db.spawn_train(&model, &p, &opts)?;
        match wait_at_most(&db, h, wait) {
            Waited::Ended(r) => s.print(&job_output(&r?)?),
            Waited::Running(h) => s.print(&still_running(h.id, &model, wait)),
        }
        return Ok(());
    }
    if a.background.background {
        let h = db.spawn_train(&model, &p, &opts)?;
        let id = h.id;
        s.print(&Output::text(
            format!("started job {id} ({model}) in the background"),
            json!({"job": id, "model": model, "background": true}),
        ));
        match run_mode {
            RunMode::Shell | RunMode::Served { .. } => s.keep_background(h),
            RunMode::OneShot => {
                eprintln!("waiting for job {id}: the process is about to end and would interrupt it (use the shell to keep working meanwhile)");
                let info = h.wait()?;
                s.print(&job_output(&info)?);
            }
        }
        return Ok(());
    }
    let bar = std::sync::Arc::new(Bar::new(&model));
    opts.control.progress = Some(bar.clone());
    let r = db.train(&model, &p, &opts);
    bar.finish();
    let info = r?;
    s.print(&job_output(&info)?);
    s.wait_maintenance_if_one_shot();
    Ok(())
}

/// A job as JSON, its params with short floats.
fn job_json(info: &JobInfo) -> Result<Value> {
    let mut info = info.clone();
    info.params = short_floats(info.params);
    Ok(serde_json::to_value(&info)?)
}

fn job_output(info: &JobInfo) -> Result<Output> {
    let json = job_json(info)?;
    let pairs = vec![
        ("job".to_owned(), info.id.to_string()),
        ("model".to_owned(), info.model.clone()),
        ("state".to_owned(), info.state.to_string()),
        ("seconds".to_owned(), format!("{:.2}", info.seconds)),
        ("message".to_owned(), info.message.clone()),
        (
            "params".to_owned(),
            short_floats(info.params.clone()).to_string(),
        ),
        ("watermark".to_owned(), info.watermark.to_string()),
        ("tables".to_owned(), info.tables.join(", ")),
    ];
    Ok(Output::new(json).block(None, Body::Pairs(pairs)))
}

fn jobs_output(jobs: &[JobInfo]) -> Result<Output> {
    let rows = jobs
        .iter()
        .map(|j| {
            vec![
                j.id.to_string(),
                j.model.clone(),
                j.state.to_string(),
                format!("{:.0}%", j.progress * 100.0),
                format!("{:.2}", j.seconds),
                j.watermark.to_string(),
                j.tables.join(", "),
                j.error.clone(),
            ]
        })
        .collect();
    Ok(Output::table(
        &[
            "id",
            "model",
            "state",
            "progress",
            "seconds",
            "watermark",
            "tables",
            "error",
        ],
        rows,
        Value::Array(jobs.iter().map(job_json).collect::<Result<_>>()?),
    ))
}
