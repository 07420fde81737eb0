//! The command set: one grammar for command-line arguments, `-c`, the shell and piped stdin.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::{json, Value};

use recdb::{
    Config, Db, EvalOptions, Format, JobHandle, JobInfo, Params, Protocol, QueryOptions,
    TableFormat, TrainOptions,
};

use crate::output::{json_pairs, short_floats, Body, Mode, Output};
use crate::progress::Bar;

/// One command, as typed after `recdb [global options]` or at the shell prompt.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Import a file: `import events|items|users|docs FILE [--format tsv|csv|jsonl|atomic]`
    /// (docs: `tag<TAB>text` a line), or vectors: `import table NAME --format f32 --dim D
    /// FILE [--ids FILE]` / `import table NAME --format tsv FILE`.
    Import {
        what: ImportKind,
        /// FILE (or NAME FILE for `table`).
        #[arg(required = true, num_args = 1..=2, value_name = "FILE")]
        args: Vec<PathBuf>,
        /// Input format; detected from the header when left out (table: f32 or tsv).
        #[arg(long, value_name = "tsv|csv|jsonl|atomic|f32")]
        format: Option<String>,
        /// `table --format f32`: values per row.
        #[arg(long, value_name = "D")]
        dim: Option<usize>,
        /// `table --format f32`: ids one a line (default 0..N-1).
        #[arg(long, value_name = "FILE")]
        ids: Option<PathBuf>,
        /// `events`: import a file imported before without a notice (its events append).
        #[arg(long)]
        allow_duplicate: bool,
        /// `table`: replace a table of another dimension or row space (a model's).
        #[arg(long)]
        replace: bool,
    },
    /// Train a model: `train als --factors 64`, `train mf --kind bpr`, `train popular`.
    #[command(after_help = crate::train_help::models_text())]
    Train(TrainArgs),
    /// List jobs, or `jobs cancel ID`.
    Jobs {
        #[command(subcommand)]
        action: Option<JobsAction>,
    },
    /// Retrain MODEL in the background whenever N new events have arrived.
    Retrain {
        model: String,
        /// With `mf`: sgd, als or bpr.
        #[arg(long)]
        kind: Option<String>,
        #[arg(long, value_name = "N")]
        every: u64,
        #[arg(long = "param", value_name = "K=V")]
        params: Vec<String>,
    },
    /// Items most similar to ITEM, an item id or a title (cosine over the model's item
    /// table).
    Similar {
        item: String,
        /// How many results.
        #[arg(short = 'k', long = "k", default_value_t = 10)]
        k: usize,
        /// The model whose tables answer.
        #[arg(long, default_value = "als")]
        model: String,
        /// Only items with this genre or tag.
        #[arg(long)]
        genre: Option<String>,
        /// Scan every row even when the table has an index.
        #[arg(long)]
        exact: bool,
    },
    /// Recommendations for USER (seen items left out unless --include-seen), or for
    /// every user of `--users FILE` (one id a line) at once.
    Recommend {
        #[arg(required_unless_present = "users", conflicts_with = "users")]
        user: Option<String>,
        /// Users, one id a line (blank lines skipped): one table row per (user, rank).
        #[arg(long, value_name = "FILE")]
        users: Option<PathBuf>,
        /// How many results.
        #[arg(short = 'k', long = "k", default_value_t = 10)]
        k: usize,
        /// The model whose tables answer.
        #[arg(long, default_value = "als")]
        model: String,
        #[arg(long)]
        include_seen: bool,
        #[arg(long)]
        genre: Option<String>,
        /// Scan every row even when the table has an index.
        #[arg(long)]
        exact: bool,
    },
    /// The model's score for one (user, item) pair.
    Predict {
        user: String,
        item: String,
        /// The model whose tables answer.
        #[arg(long, default_value = "als")]
        model: String,
    },
    /// A user's events in time order.
    History {
        user: String,
        /// Only the last N events.
        #[arg(short = 'n', long, value_name = "N")]
        last: Option<usize>,
    },
    /// An item's attributes and event count (ID: an item id or a title).
    Item { id: String },
    /// Items whose id, title, genres or attributes contain TEXT (ignoring case).
    Find {
        text: String,
        /// At most N items.
        #[arg(short = 'n', long, default_value_t = 20, value_name = "N")]
        limit: usize,
    },
    /// The nearest rows of any table (a model's or an imported one) to one of its rows
    /// (`--id`) or to a vector (`--vector "0.1 0.2 ..."`).
    Search {
        table: String,
        /// The id of a row of TABLE.
        #[arg(long, conflicts_with = "vector", required_unless_present = "vector")]
        id: Option<String>,
        /// The query vector: TABLE's dim numbers, separated by spaces or commas.
        #[arg(long, value_name = "\"X Y ...\"")]
        vector: Option<String>,
        #[arg(short = 'k', long = "k", default_value_t = 10)]
        k: usize,
        /// cosine or dot (default: the index's metric, else cosine).
        #[arg(long, value_name = "cosine|dot")]
        metric: Option<String>,
        /// Scan every row even when the table has an index.
        #[arg(long)]
        exact: bool,
    },
    /// A user's attributes.
    User { id: String },
    /// Counts of users, items and events; tables, jobs, size on disk.
    Stats {
        #[arg(long)]
        format: Option<Mode>,
    },
    /// Verify every stored structure.
    Check,
    /// Rewrite the database compactly, reclaiming the space of old table versions
    /// (needs it closed in every other process).
    Vacuum,
    /// Write a portable JSON-lines copy of the database to FILE.
    Dump { file: PathBuf },
    /// Load a dump (from `dump`) into an empty database.
    Restore { file: PathBuf },
    /// The embedding tables.
    Tables,
    /// `export table NAME --format f32|tsv FILE`.
    Export {
        #[command(subcommand)]
        what: ExportWhat,
    },
    /// `drop table NAME`.
    Drop {
        #[command(subcommand)]
        what: DropWhat,
    },
    /// `index build|bench|info TABLE`: the vector index.
    Index {
        #[command(subcommand)]
        action: crate::index_cmds::IndexAction,
    },
    /// `table concat|put|delete|compact ...`: derived tables and row updates.
    Table {
        #[command(subcommand)]
        action: crate::table_cmds::TableAction,
    },
    /// Evaluate a model on a protocol (next, rating: ML-100K or, with --db, the database's
    /// own log; lee: the LEE corpus), training on a fresh temporary database.
    Eval(EvalArgs),
    /// A paragraph vector for TEXT (doc2vec), or with -k its nearest documents.
    Infer {
        text: String,
        #[arg(long, default_value = "doc2vec")]
        model: String,
        /// Show the K nearest documents instead of the vector.
        #[arg(short = 'k', long = "k")]
        k: Option<usize>,
    },
    /// Documents nearest to TEXT (infer, then cosine search of the document vectors).
    SimilarText {
        text: String,
        #[arg(short = 'k', long = "k", default_value_t = 10)]
        k: usize,
        #[arg(long, default_value = "doc2vec")]
        model: String,
        /// Scan every row even when the table has an index.
        #[arg(long)]
        exact: bool,
    },
    /// Words nearest to WORD (cosine of word vectors).
    SimilarWord {
        word: String,
        #[arg(short = 'k', long = "k", default_value_t = 10)]
        k: usize,
        #[arg(long, default_value = "word2vec", value_name = "word2vec|doc2vec")]
        model: String,
    },
    /// Generate synthetic data, train, and show similar items and recommendations.
    Demo(DemoArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ImportKind {
    Events,
    Items,
    Users,
    Docs,
    Table,
}

impl ImportKind {
    fn as_str(self) -> &'static str {
        match self {
            ImportKind::Events => "events",
            ImportKind::Items => "items",
            ImportKind::Users => "users",
            ImportKind::Docs => "docs",
            ImportKind::Table => "table",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum JobsAction {
    /// Ask a running job to stop.
    Cancel { id: u64 },
}

#[derive(Debug, Subcommand)]
pub enum ExportWhat {
    Table {
        name: String,
        #[arg(long, value_name = "f32|tsv")]
        format: String,
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum DropWhat {
    Table { name: String },
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// `mf` (with --kind) or a model name: popular, sgd, als, bpr, item2vec, doc2vec,
    /// word2vec (their defaults below).
    pub model: String,
    /// With `mf`: sgd, als or bpr (default als).
    #[arg(long)]
    pub kind: Option<String>,
    #[arg(long)]
    pub factors: Option<usize>,
    #[arg(long)]
    pub epochs: Option<usize>,
    #[arg(long)]
    pub iterations: Option<usize>,
    #[arg(long, visible_alias = "learning-rate")]
    pub lr: Option<f64>,
    #[arg(long)]
    pub reg: Option<f64>,
    #[arg(long)]
    pub alpha: Option<f64>,
    /// doc2vec/word2vec: which documents (items, users, imported).
    #[arg(long, value_name = "items|users|imported")]
    pub docs: Option<String>,
    /// doc2vec: PV-DM.
    #[arg(long, conflicts_with = "dbow")]
    pub dm: bool,
    /// doc2vec: PV-DBOW (the default).
    #[arg(long)]
    pub dbow: bool,
    /// doc2vec PV-DBOW: train word vectors (skip-gram) too.
    #[arg(long)]
    pub dbow_words: bool,
    /// Any other hyperparameter, repeated: `--param k=v`.
    #[arg(long = "param", value_name = "K=V")]
    pub params: Vec<String>,
    #[arg(long)]
    pub seed: Option<u64>,
    #[arg(long)]
    pub threads: Option<usize>,
    /// Start the job and return at once.
    #[arg(long)]
    pub background: bool,
    #[command(flatten)]
    pub item2vec: crate::item2vec_args::Item2VecArgs,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    #[arg(long, value_name = "next|rating|lee")]
    pub protocol: String,
    /// `mf` (with --kind) or a model name.
    #[arg(long)]
    pub model: String,
    #[arg(long)]
    pub kind: Option<String>,
    /// The data directory, relative to the current directory (default
    /// ../shared/data/ml-100k; ../shared/data/lee for lee). The data layout and
    /// each protocol are described in docs/EVALUATION.md.
    #[arg(long, conflicts_with = "db")]
    pub data: Option<PathBuf>,
    /// Evaluate on this database's log instead of a data set (next or rating; the
    /// database is only read).
    #[arg(long)]
    pub db: Option<PathBuf>,
    #[arg(long = "param", value_name = "K=V")]
    pub params: Vec<String>,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[arg(long)]
    pub threads: Option<usize>,
    #[arg(long)]
    pub format: Option<Mode>,
    /// Fail (exit 1) when HR@10 is below this.
    #[arg(long, value_name = "F")]
    pub min_hr: Option<f64>,
    /// Fail (exit 1) when RMSE is above this.
    #[arg(long, value_name = "F")]
    pub max_rmse: Option<f64>,
    /// LEE: fail (exit 1) when Pearson r of trained vectors is below this.
    #[arg(long, value_name = "F")]
    pub min_r: Option<f64>,
    /// LEE: fail (exit 1) when Pearson r of inferred vectors is below this.
    #[arg(long, value_name = "F")]
    pub min_r_inferred: Option<f64>,
    /// LEE: fail (exit 1) when the self-nearest fraction is below this.
    #[arg(long, value_name = "F")]
    pub min_self_nearest: Option<f64>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the demo data in this database instead of a temporary one.
    #[arg(long)]
    pub db: Option<PathBuf>,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[arg(long)]
    pub users: Option<usize>,
    #[arg(long)]
    pub items: Option<usize>,
}

/// A command line typed at the shell, in `-c` or on stdin.
#[derive(Debug, Parser)]
#[command(
    name = "recdb",
    no_binary_name = true,
    disable_version_flag = true,
    subcommand_required = true
)]
pub struct Line {
    #[command(subcommand)]
    pub cmd: Command,
}

/// How the commands are being run; decides what `--background` means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    /// One command, or `-c`: the process ends after the commands.
    OneShot,
    /// The interactive shell or piped stdin: jobs may outlive a command.
    Shell,
}

/// State shared by the commands of one process.
pub struct Session {
    pub db_path: Option<PathBuf>,
    pub threads: Option<usize>,
    pub mode: Mode,
    pub run_mode: RunMode,
    db: Option<Db>,
    background: Vec<JobHandle>,
}

impl Session {
    pub fn new(
        db_path: Option<PathBuf>,
        threads: Option<usize>,
        mode: Mode,
        run_mode: RunMode,
    ) -> Session {
        Session {
            db_path,
            threads,
            mode,
            run_mode,
            db: None,
            background: Vec::new(),
        }
    }

    /// The database, opened on first use.
    pub fn db(&mut self) -> Result<&Db> {
        if self.db.is_none() {
            let path = self.db_path.clone().ok_or_else(|| {
                anyhow!("no database: pass --db PATH (only `demo` and `eval` run without one)")
            })?;
            self.db = Some(open_db(&path, self.threads)?);
        }
        Ok(self.db.as_ref().expect("opened above"))
    }

    /// Close the database (jobs joined first); the next command opens it again.
    pub fn close(&mut self) {
        self.finish_background();
        self.db = None;
    }

    /// Switch to another database (the shell's `.open`).
    pub fn open(&mut self, path: PathBuf) -> Result<()> {
        self.finish_background();
        let db = open_db(&path, self.threads)?;
        self.db = Some(db);
        self.db_path = Some(path);
        Ok(())
    }

    pub(crate) fn print(&self, out: &Output) {
        out.print(self.mode);
    }

    pub fn print_out(&self, out: &Output) {
        self.print(out);
    }

    /// Report and join background jobs that have ended (called before each prompt).
    pub fn reap(&mut self) {
        let Some(db) = self.db.clone() else { return };
        let mut still = Vec::new();
        for h in self.background.drain(..) {
            let done = db.job(h.id).map(|j| j.state.is_finished()).unwrap_or(true);
            if done {
                let id = h.id;
                match h.wait() {
                    Ok(info) => eprintln!(
                        "[job {id} {} {} in {:.2} s]",
                        info.model, info.state, info.seconds
                    ),
                    Err(e) => eprintln!("[job {id} ended: {e}]"),
                }
            } else {
                still.push(h);
            }
        }
        self.background = still;
    }

    /// Keep a background job to report when it ends.
    pub fn keep_background(&mut self, h: JobHandle) {
        self.background.push(h);
    }

    /// In one-shot mode, wait for the maintenance jobs a publish started (index builds):
    /// the process is about to end and would interrupt them.
    pub fn wait_maintenance_if_one_shot(&self) {
        if self.run_mode == RunMode::OneShot {
            self.wait_maintenance();
        }
    }

    fn wait_maintenance(&self) {
        let Some(db) = &self.db else { return };
        let n = db.maintenance_pending();
        if n == 0 {
            return;
        }
        eprintln!(
            "waiting for {n} maintenance job(s) (index builds after a publish; `jobs` lists them)"
        );
        for r in db.wait_maintenance() {
            match r {
                Ok(info) => eprintln!(
                    "[job {} {} {} in {:.2} s: {}]",
                    info.id, info.model, info.state, info.seconds, info.message
                ),
                Err(e) => eprintln!("[maintenance job ended: {e}]"),
            }
        }
    }

    /// Wait for background jobs before the process ends (it would interrupt them).
    pub fn finish_background(&mut self) {
        self.wait_maintenance();
        if self.background.is_empty() {
            return;
        }
        eprintln!(
            "waiting for {} background job(s) to finish (ending the process would interrupt them)",
            self.background.len()
        );
        for h in self.background.drain(..) {
            let id = h.id;
            match h.wait() {
                Ok(info) => eprintln!(
                    "[job {id} {} {} in {:.2} s]",
                    info.model, info.state, info.seconds
                ),
                Err(e) => eprintln!("[job {id} ended: {e}]"),
            }
        }
    }
}

fn open_db(path: &Path, threads: Option<usize>) -> Result<Db> {
    let db = Db::open_with(Config {
        path: Some(path.to_path_buf()),
        threads: threads.unwrap_or(0),
        ..Config::default()
    })
    .map_err(|e| anyhow!("cannot open {}: {e}", path.display()))?;
    if let Some(dump) = db.incomplete_restore()? {
        eprintln!(
            "warning: {} holds an incomplete restore of `{dump}`; run `restore` again to finish it",
            path.display()
        );
    }
    Ok(db)
}

pub use crate::split::{split_commands, split_words};

/// The outcome of parsing one line.
pub enum Parsed {
    Run(Box<Command>),
    /// `help`, `--help`: text to print, not an error.
    Help(String),
}

/// Parse one command line (without `recdb`).
pub fn parse_line(line: &str) -> Result<Parsed> {
    let words = split_words(line)?;
    match Line::try_parse_from(words) {
        Ok(l) => Ok(Parsed::Run(Box::new(l.cmd))),
        Err(e) => match e.kind() {
            clap::error::ErrorKind::DisplayHelp
            | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            | clap::error::ErrorKind::DisplayVersion => Ok(Parsed::Help(e.to_string())),
            _ => Err(anyhow!(short_clap_error(&e))),
        },
    }
}

/// The first line of a clap error, without its `error: ` prefix, plus a hint.
pub fn short_clap_error(e: &clap::Error) -> String {
    let s = e.to_string();
    let first = s.lines().next().unwrap_or("bad command").trim();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    // clap's "a similar subcommand exists" line: the nearest command to a typo.
    match s.lines().map(str::trim).find(|l| l.starts_with("tip: ")) {
        Some(tip) => format!("{first} ({}; try `help` or `COMMAND --help`)", &tip[5..]),
        None => format!("{first} (try `help` or `COMMAND --help`)"),
    }
}

/// Run a line of text: `;`-separated commands. Stops at the first error.
pub fn run_text(s: &mut Session, text: &str) -> Result<()> {
    for cmd in split_commands(text) {
        if crate::pipe::closed() {
            break;
        }
        match parse_line(&cmd)? {
            Parsed::Help(h) => print!("{h}"),
            Parsed::Run(c) => run(s, *c)?,
        }
    }
    Ok(())
}

/// Run one parsed command and print its result.
pub fn run(s: &mut Session, cmd: Command) -> Result<()> {
    match cmd {
        Command::Import {
            what: ImportKind::Table,
            args,
            format,
            dim,
            ids,
            allow_duplicate,
            replace,
        } => {
            if allow_duplicate {
                bail!("--allow-duplicate goes with `import events`");
            }
            let [name, file] = &args[..] else {
                bail!("import table NAME FILE: give a table name and a file");
            };
            let name = name.display().to_string();
            let format: TableFormat = format
                .as_deref()
                .ok_or_else(|| anyhow!("import table: --format f32 or --format tsv is required"))?
                .parse()?;
            let spec = recdb::TableImport {
                format,
                file: file.clone(),
                dim,
                ids,
            };
            let r = if replace {
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
        }
        Command::Import {
            what,
            args,
            format,
            dim,
            ids,
            allow_duplicate,
            replace,
        } => {
            let [file] = &args[..] else {
                bail!("import {}: takes one FILE", what.as_str());
            };
            if dim.is_some() || ids.is_some() || replace {
                bail!("--dim, --ids and --replace go with `import table`");
            }
            let file = file.clone();
            let format = parse_format(format.as_deref())?;
            let db = s.db()?;
            if let (ImportKind::Events, false) = (what, allow_duplicate) {
                if let Some(notice) = crate::import_note::prior_import_notice(db, &file)? {
                    eprintln!("{notice}");
                }
            } else if allow_duplicate && !matches!(what, ImportKind::Events) {
                bail!("--allow-duplicate goes with `import events`");
            }
            let title = format!("imported {} from {}", what.as_str(), file.display());
            let json = match what {
                ImportKind::Events => serde_json::to_value(db.import_events(&file, format)?)?,
                ImportKind::Items => serde_json::to_value(db.import_items(&file, format)?)?,
                ImportKind::Users => serde_json::to_value(db.import_users(&file, format)?)?,
                ImportKind::Docs => serde_json::to_value(db.import_docs(&file)?)?,
                ImportKind::Table => unreachable!("handled above"),
            };
            let pairs = json_pairs(&json);
            let out = Output::new(json).block(Some(&title), Body::Pairs(pairs));
            s.print(&out);
        }
        Command::Train(a) => train(s, a)?,
        Command::Jobs { action: None } => {
            let jobs = s.db()?.jobs()?;
            s.print(&jobs_output(&jobs)?);
        }
        Command::Jobs {
            action: Some(JobsAction::Cancel { id }),
        } => {
            s.db()?.cancel_job(id)?;
            s.print(&Output::text(
                format!("asked job {id} to stop"),
                json!({"cancelled": id}),
            ));
        }
        Command::Retrain {
            model,
            kind,
            every,
            params,
        } => {
            let model = resolve_model(&model, kind.as_deref())?;
            let p = params_from(&params)?;
            s.db()?.set_retrain_policy(&model, &p, every)?;
            s.print(&Output::text(
                format!("{model} will retrain every {every} new events"),
                json!({"model": model, "every": every}),
            ));
        }
        Command::Similar {
            item,
            k,
            model,
            genre,
            exact,
        } => {
            let db = s.db()?;
            let opts = QueryOptions {
                k,
                model,
                include_seen: false,
                genre,
                exact,
            };
            let item = db.resolve_item(&item)?;
            let hits = db.similar(&item, &opts)?;
            let out = hits_output(db, &hits)?;
            s.print(&out);
        }
        Command::Recommend {
            user,
            users,
            k,
            model,
            include_seen,
            genre,
            exact,
        } => {
            let db = s.db()?;
            let opts = QueryOptions {
                k,
                model,
                include_seen,
                genre,
                exact,
            };
            let out = match (user, users) {
                (Some(user), _) => hits_output(db, &db.recommend(&user, &opts)?)?,
                (None, Some(file)) => recommend_users(db, &file, &opts)?,
                (None, None) => bail!("recommend needs USER or --users FILE"),
            };
            s.print(&out);
        }
        Command::Predict { user, item, model } => {
            let score = s.db()?.predict(&user, &item, &model)?;
            s.print(&Output::text(
                format!("{score:.4}"),
                json!({"user": user, "item": item, "model": model, "score": score}),
            ));
        }
        Command::History { user, last } => {
            let db = s.db()?;
            let mut h = db.history(&user)?;
            if let Some(n) = last {
                let skip = h.len().saturating_sub(n);
                h.drain(..skip);
            }
            let mut rows = Vec::with_capacity(h.len());
            let mut js = Vec::with_capacity(h.len());
            for e in &h {
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
        }
        Command::Item { id } => {
            let db = s.db()?;
            let r = db.item(&db.resolve_item(&id)?)?;
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
            let attrs: serde_json::Map<String, Value> = r
                .attrs
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            let js = json!({"id": r.id, "title": r.title, "genres": r.genres, "events": events,
                "text": r.text, "attrs": attrs});
            s.print(&Output::new(js).block(None, Body::Pairs(pairs)));
        }
        Command::Find { text, limit } => crate::find_cmds::find(s, &text, limit)?,
        Command::Search {
            table,
            id,
            vector,
            k,
            metric,
            exact,
        } => {
            let q = crate::find_cmds::SearchQuery {
                id,
                vector,
                k,
                metric,
                exact,
            };
            crate::find_cmds::search(s, &table, &q)?
        }
        Command::User { id } => {
            let r = s.db()?.user(&id)?;
            let mut pairs = vec![("id".to_owned(), r.id.clone())];
            pairs.extend(r.attrs.iter().cloned());
            let attrs: serde_json::Map<String, Value> = r
                .attrs
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            s.print(
                &Output::new(json!({"id": r.id, "attrs": attrs})).block(None, Body::Pairs(pairs)),
            );
        }
        Command::Stats { format } => {
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
            if let Some(dump) = &st.incomplete_restore {
                pairs.push((
                    "incomplete restore".to_owned(),
                    format!("{dump} (run restore again)"),
                ));
            }
            let mut out = Output::new(js).block(None, Body::Pairs(pairs));
            if !st.tables.is_empty() {
                let t = tables_output(&st.tables)?;
                out = out.block(Some("tables"), t.blocks[0].body.clone());
            }
            s.print(&out.with_mode(format));
        }
        Command::Vacuum => crate::vacuum_cmd::run(s)?,
        Command::Check => {
            let r = s.db()?.check()?;
            let out = Output::pairs_of(serde_json::to_value(&r)?);
            let out = out.block(None, Body::Text("ok".into()));
            s.print(&out);
        }
        Command::Dump { file } => {
            let f = std::fs::File::create(&file)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let r = s.db()?.dump(&mut std::io::BufWriter::new(f))?;
            let text = format!(
                "dumped {} users, {} items, {} events, {} tables to {}",
                r.users,
                r.items,
                r.events,
                r.tables,
                file.display()
            );
            s.print(&Output::text(text, serde_json::to_value(&r)?));
        }
        Command::Restore { file } => {
            let f = std::fs::File::open(&file)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let name = file.display().to_string();
            let r = s.db()?.restore(&mut std::io::BufReader::new(f), &name)?;
            let text = format!(
                "restored {} users, {} items, {} events, {} tables",
                r.users, r.items, r.events, r.tables
            );
            s.print(&Output::text(text, serde_json::to_value(&r)?));
        }
        Command::Tables => {
            let t = s.db()?.tables()?;
            s.print(&tables_output(&t)?);
        }
        Command::Export {
            what: ExportWhat::Table { name, format, file },
        } => {
            let f: TableFormat = format.parse()?;
            let rows = s.db()?.export_table(&name, f, &file)?;
            s.print(&Output::text(
                format!("exported {rows} rows of {name} to {}", file.display()),
                json!({"table": name, "rows": rows, "file": file.display().to_string()}),
            ));
        }
        Command::Drop {
            what: DropWhat::Table { name },
        } => {
            s.db()?.drop_table(&name)?;
            s.print(&Output::text(
                format!("dropped table {name}"),
                json!({"dropped": name}),
            ));
        }
        Command::Table { action } => crate::table_cmds::run(s, action)?,
        Command::Index { action } => crate::index_cmds::run(s, action)?,
        Command::Eval(a) => eval(s, a)?,
        Command::Demo(a) => crate::demo::run(s, a)?,
        Command::Infer { text, model, k } => crate::text_cmds::infer(s, &text, &model, k)?,
        Command::SimilarText {
            text,
            k,
            model,
            exact,
        } => crate::text_cmds::similar_text(s, &text, &model, k, exact)?,
        Command::SimilarWord { word, k, model } => {
            crate::text_cmds::similar_word(s, &word, &model, k)?
        }
    }
    Ok(())
}

/// `--format` of `import`, through the library's parser.
fn parse_format(s: Option<&str>) -> Result<Option<Format>> {
    Ok(match s {
        None => None,
        Some(f) => Some(f.parse::<Format>()?),
    })
}

/// `mf --kind als` → `als`; a plain model name stays.
pub fn resolve_model(model: &str, kind: Option<&str>) -> Result<String> {
    match (model, kind) {
        ("mf", None) => Ok("als".into()),
        ("mf", Some(k)) => match k {
            "sgd" | "als" | "bpr" => Ok(k.to_owned()),
            other => bail!("unknown --kind `{other}` for mf (expected sgd, als or bpr)"),
        },
        (m, Some(k)) if m != k => bail!("--kind goes with `mf` (got model `{m}` and --kind `{k}`)"),
        (m, _) => Ok(m.to_owned()),
    }
}

fn params_from(kvs: &[String]) -> Result<Params> {
    let mut p = Params::new();
    for kv in kvs {
        p.insert_kv(kv)?;
    }
    Ok(p)
}

fn train(s: &mut Session, a: TrainArgs) -> Result<()> {
    let model = resolve_model(&a.model, a.kind.as_deref())?;
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
    for kv in &a.params {
        p.insert_kv(kv)?;
    }
    let mut opts = TrainOptions::default();
    if let Some(seed) = a.seed {
        opts.seed = seed;
    }
    opts.threads = a.threads;
    let run_mode = s.run_mode;
    let db = s.db()?.clone();
    if a.background {
        let h = db.spawn_train(&model, &p, &opts)?;
        let id = h.id;
        s.print(&Output::text(
            format!("started job {id} ({model}) in the background"),
            json!({"job": id, "model": model, "background": true}),
        ));
        match run_mode {
            RunMode::Shell => s.background.push(h),
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

fn tables_output(tables: &[recdb::TableInfo]) -> Result<Output> {
    let rows = tables
        .iter()
        .map(|t| {
            vec![
                t.name.clone(),
                t.version.to_string(),
                t.rows.to_string(),
                t.dim.to_string(),
                t.space.to_owned(),
                t.versions
                    .iter()
                    .filter(|&&v| v != t.version)
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
                t.job.to_string(),
                t.watermark.to_string(),
            ]
        })
        .collect();
    Ok(Output::table(
        &[
            "name",
            "version",
            "rows",
            "dim",
            "space",
            "older versions",
            "job",
            "watermark",
        ],
        rows,
        serde_json::to_value(tables)?,
    ))
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

fn format_value(v: f32) -> String {
    if v.fract() == 0.0 && v.abs() < 1e9 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

pub fn human_bytes(b: u64) -> String {
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

fn eval(s: &mut Session, a: EvalArgs) -> Result<()> {
    let protocol: Protocol = a.protocol.parse()?;
    let model = resolve_model(&a.model, a.kind.as_deref())?;
    let opts = EvalOptions {
        protocol,
        model: model.clone(),
        data: a.data.clone(),
        params: params_from(&a.params)?,
        seed: a.seed,
        threads: a.threads.or(s.threads),
    };
    let bar = Bar::new(&format!("eval {model}"));
    let r = match &a.db {
        None => recdb::evaluate(&opts, &bar),
        // The session's own database is already open (and locked) in this process.
        Some(p) if s.db_path.as_deref() == Some(p.as_path()) => {
            recdb::evaluate_db(s.db()?, &opts, &bar)
        }
        Some(p) => recdb::evaluate_db(&open_db(p, s.threads)?, &opts, &bar),
    };
    bar.finish();
    let mut report = r?;
    report.params = short_floats(report.params);
    let out = Output::text(report.to_string(), serde_json::to_value(&report)?).with_mode(a.format);
    s.print(&out);
    if let Some(min) = a.min_hr {
        let hr = *report
            .metrics
            .get("hr@10")
            .context("--min-hr: the report has no hr@10 (use --protocol next)")?;
        if hr < min {
            bail!("hr@10 {hr:.4} is below --min-hr {min}");
        }
    }
    if let Some(max) = a.max_rmse {
        let rmse = *report
            .metrics
            .get("rmse")
            .context("--max-rmse: the report has no rmse (use --protocol rating)")?;
        if rmse > max {
            bail!("rmse {rmse:.4} is above --max-rmse {max}");
        }
    }
    crate::text_cmds::check_lee(&report, &a)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_commands() {
        assert_eq!(
            split_words(r#"similar "a b" -k 3 'c d' e\ f"#).unwrap(),
            vec!["similar", "a b", "-k", "3", "c d", "e f"]
        );
        assert_eq!(
            split_commands(r#"stats; similar "a;b" ; ;tables"#),
            vec!["stats", r#"similar "a;b""#, "tables"]
        );
        assert!(split_words("x 'y").is_err());
    }

    #[test]
    fn models() {
        assert_eq!(resolve_model("mf", Some("bpr")).unwrap(), "bpr");
        assert_eq!(resolve_model("popular", None).unwrap(), "popular");
        assert!(resolve_model("popular", Some("als")).is_err());
        assert!(resolve_model("mf", Some("xx")).is_err());
    }
}
