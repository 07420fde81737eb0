//! The grammar: every command's clap definition and the parser of one command line,
//! shared by command-line arguments, `-c`, the shell and piped stdin.

use std::path::PathBuf;

use anyhow::{anyhow, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::args::{
    Background, Exact, FormatOpt, MfKind, ParamArgs, QueryArgs, Seed, TextModel, ThreadsOpt, TopK,
    TwoStageArgs,
};
use crate::split::split_words;

/// One command, as typed after `recdb [global options]` or at the shell prompt.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Import a file: `import events|items|users|docs FILE [--format tsv|csv|jsonl|atomic]`
    /// (docs: `tag<TAB>text` a line), or vectors: `import table NAME --format f32 --dim D
    /// FILE [--ids FILE]` / `import table NAME --format tsv FILE`.
    Import(ImportArgs),
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
        #[command(flatten)]
        kind: MfKind,
        #[arg(long, value_name = "N")]
        every: u64,
        #[command(flatten)]
        params: ParamArgs,
    },
    /// Items most similar to ITEM, an item id or a title (cosine over the model's item
    /// table).
    Similar {
        item: String,
        #[command(flatten)]
        query: QueryArgs,
    },
    /// Recommendations for USER (seen items left out unless --include-seen), or for
    /// every user of `--users FILE` (one id a line) at once.
    Recommend {
        #[arg(required_unless_present = "users", conflicts_with = "users")]
        user: Option<String>,
        /// Users, one id a line (blank lines skipped): one table row per (user, rank).
        #[arg(long, value_name = "FILE")]
        users: Option<PathBuf>,
        #[arg(long)]
        include_seen: bool,
        #[command(flatten)]
        query: QueryArgs,
        #[command(flatten)]
        stages: TwoStageArgs,
    },
    /// The model's score for one (user, item) pair.
    Predict {
        user: String,
        item: String,
        /// The model whose tables answer.
        #[arg(long, default_value = "als")]
        model: String,
    },
    /// Score a list of items for a user with a ranking model (`wide-deep`), best first.
    Rank {
        user: String,
        #[arg(required = true)]
        items: Vec<String>,
        /// The ranking model.
        #[arg(long, default_value = "wide-deep")]
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
        #[command(flatten)]
        top: TopK,
        /// cosine or dot (default: the index's metric, else cosine).
        #[arg(long, value_name = "cosine|dot")]
        metric: Option<String>,
        #[command(flatten)]
        exact: Exact,
    },
    /// A user's attributes.
    User { id: String },
    /// Counts of users, items and events; tables, jobs, size on disk.
    Stats {
        #[command(flatten)]
        format: FormatOpt,
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
    /// `export table NAME --format f32|tsv FILE`, `export log --format parquet DIR`.
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
        action: IndexAction,
    },
    /// `table concat|put|delete|compact ...`: derived tables and row updates.
    Table {
        #[command(subcommand)]
        action: TableAction,
    },
    /// Evaluate a model on a protocol (next, rating: ML-100K or, with --db, the database's
    /// own log; lee: the LEE corpus), training on a fresh temporary database.
    Eval(EvalArgs),
    /// A paragraph vector for TEXT (doc2vec), or with -k its nearest documents.
    Infer {
        text: String,
        #[command(flatten)]
        model: TextModel,
        /// Show the K nearest documents instead of the vector.
        #[arg(short = 'k', long = "k")]
        k: Option<usize>,
    },
    /// Documents nearest to TEXT (infer, then cosine search of the document vectors).
    SimilarText {
        text: String,
        #[command(flatten)]
        top: TopK,
        #[command(flatten)]
        model: TextModel,
        #[command(flatten)]
        exact: Exact,
    },
    /// Words nearest to WORD (cosine of word vectors).
    SimilarWord {
        word: String,
        #[command(flatten)]
        top: TopK,
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
    pub fn as_str(self) -> &'static str {
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
    /// The whole log as Parquet part files (`part-00000.parquet`, ...) in DIR, for
    /// training elsewhere (docs/SCALE.md).
    Log {
        #[arg(long, value_name = "parquet")]
        format: String,
        /// Events a part file holds at most.
        #[arg(long, value_name = "N")]
        rows_per_file: Option<usize>,
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum DropWhat {
    Table { name: String },
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    pub what: ImportKind,
    /// FILE (or NAME FILE for `table`).
    #[arg(required = true, num_args = 1..=2, value_name = "FILE")]
    pub args: Vec<PathBuf>,
    /// Input format; detected from the header when left out (table: f32, tsv or parquet).
    #[arg(long, value_name = "tsv|csv|jsonl|atomic|f32|parquet")]
    pub format: Option<String>,
    /// `table --format f32`: values per row.
    #[arg(long, value_name = "D")]
    pub dim: Option<usize>,
    /// `table --format f32`: ids one a line (default 0..N-1).
    #[arg(long, value_name = "FILE")]
    pub ids: Option<PathBuf>,
    /// `events`: import a file imported before without a notice (its events append).
    #[arg(long)]
    pub allow_duplicate: bool,
    /// `table`: replace a table of another dimension or row space (a model's).
    #[arg(long)]
    pub replace: bool,
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// `mf` (with --kind) or a model name: popular, sgd, als, bpr, item2vec, doc2vec,
    /// word2vec (their defaults below).
    pub model: String,
    #[command(flatten)]
    pub kind: MfKind,
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
    #[command(flatten)]
    pub params: ParamArgs,
    #[arg(long)]
    pub seed: Option<u64>,
    #[command(flatten)]
    pub threads: ThreadsOpt,
    #[command(flatten)]
    pub background: Background,
    #[command(flatten)]
    pub item2vec: crate::item2vec_args::Item2VecArgs,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    #[arg(long, value_name = "next|rating|strong|lee")]
    pub protocol: String,
    /// `mf` (with --kind) or a model name.
    #[arg(long)]
    pub model: String,
    #[command(flatten)]
    pub kind: MfKind,
    /// The data set's directory (e.g. ml-100k for next and rating, lee for lee),
    /// relative to the current directory; required unless --db. The data layout and
    /// each protocol are described in docs/EVALUATION.md.
    #[arg(
        long,
        value_name = "DIR",
        required_unless_present = "db",
        conflicts_with = "db"
    )]
    pub data: Option<PathBuf>,
    /// Evaluate on this database's log instead of a data set (next or rating; the
    /// database is only read).
    #[arg(long)]
    pub db: Option<PathBuf>,
    #[command(flatten)]
    pub params: ParamArgs,
    #[command(flatten)]
    pub seed: Seed,
    #[command(flatten)]
    pub threads: ThreadsOpt,
    #[command(flatten)]
    pub format: FormatOpt,
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
    /// STRONG: test users (and as many validation users) split off; default 100 per
    /// thousand eligible users, at least 100 (600 on ML-1M, 100 on ML-100K).
    #[arg(long, value_name = "N")]
    pub heldout_users: Option<usize>,
    /// STRONG: fail (exit 1) when the test users' NDCG@100 is below this.
    #[arg(long, value_name = "F")]
    pub min_ndcg: Option<f64>,
    /// NEXT: two stages; this ranker, trained after --model on the same split,
    /// re-scores --model's candidates (e.g. --model youtube --rank wide-deep).
    #[arg(long, value_name = "MODEL")]
    pub rank: Option<String>,
    /// NEXT: hold out each user's second-to-last event instead of the last (the last
    /// is left out): a split to choose hyperparameters on without seeing the test.
    #[arg(long)]
    pub validation: bool,
    /// With --rank: candidates per user.
    #[arg(long, value_name = "N", default_value_t = recdb::DEFAULT_CANDIDATES, requires = "rank")]
    pub candidates: usize,
    /// With --rank: a hyperparameter of the ranker, repeated: `--rank-param k=v`.
    #[arg(long = "rank-param", value_name = "K=V", requires = "rank")]
    pub rank_params: Vec<String>,
    /// CTR: leave every rating of 3 out (train and test), as some published tables do.
    #[arg(long)]
    pub drop_neutral: bool,
    /// CTR: fail (exit 1) when the test AUC is below this.
    #[arg(long, value_name = "F")]
    pub min_auc: Option<f64>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the demo data in this database instead of a temporary one.
    #[arg(long)]
    pub db: Option<PathBuf>,
    #[command(flatten)]
    pub seed: Seed,
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

#[derive(Debug, Subcommand)]
pub enum IndexAction {
    /// Build (as a recorded `index` job) the index of TABLE's current version, tuned so
    /// recall@10 on held-out rows reaches --target-recall; later publishes rebuild it
    /// with the same options.
    Build {
        table: String,
        #[arg(long, default_value = "cosine", value_name = "cosine|dot")]
        metric: String,
        /// Coarse lists (default about 4·√N).
        #[arg(long, value_name = "N")]
        lists: Option<usize>,
        /// Bits per dimension of the residual codes: 4, or 8 (two 4-bit stages, the
        /// second coding the first one's error: twice the bytes and scan time).
        #[arg(long, default_value_t = 4, value_name = "4|8")]
        bits: u8,
        /// Fraction of the rows (those nearest a list boundary) also placed in a second
        /// list: fewer lists scanned for the same recall, one more code per such row.
        #[arg(long, default_value_t = 0.3, value_name = "F")]
        spill: f32,
        #[arg(long, default_value_t = 0.95, value_name = "F")]
        target_recall: f32,
        /// Candidates reranked exactly for k = 10 (10-10000; default: tuned with nprobe).
        #[arg(long, value_name = "N")]
        rerank: Option<usize>,
        #[command(flatten)]
        threads: ThreadsOpt,
        #[command(flatten)]
        seed: Seed,
        #[command(flatten)]
        background: Background,
        /// Build this version only: later publishes do not rebuild the index.
        #[arg(long)]
        once: bool,
    },
    /// Recall@K against exact search and single-thread QPS at several nprobe values.
    Bench {
        table: String,
        /// Queries: raw little-endian f32 rows of the table's dim.
        #[arg(long, value_name = "FILE")]
        queries: PathBuf,
        #[command(flatten)]
        top: TopK,
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// nprobe values, comma separated (default: ½, 1, 1.5, 2, 3 × the tuned one).
        #[arg(long, value_delimiter = ',', value_name = "N,N,...")]
        nprobe: Option<Vec<usize>>,
        #[command(flatten)]
        format: FormatOpt,
    },
    /// What TABLE's current index holds (lists, nprobe, measured recall, bytes).
    Info { table: String },
}

#[derive(Debug, Subcommand)]
pub enum TableAction {
    /// `table concat NAME A B [...]`: L2-normalise each table's rows and concatenate
    /// them by row id into a new table NAME (same row space; every id in every table).
    Concat {
        name: String,
        #[arg(required = true, num_args = 2..)]
        tables: Vec<String>,
    },
    /// `table put TABLE ID V1 V2 ...` or `table put TABLE --file F.tsv`: put rows
    /// (replace an id's row or add one); the index is updated incrementally.
    Put {
        table: String,
        id: Option<String>,
        #[arg(allow_negative_numbers = true)]
        values: Vec<f32>,
        /// Rows as `id<TAB>v1<TAB>...` lines.
        #[arg(long, conflicts_with = "id")]
        file: Option<PathBuf>,
    },
    /// `table delete TABLE ID [...]`: delete rows (tombstones; no rebuild).
    Delete {
        table: String,
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// `table compact TABLE`: fold the rows put/deleted since publish into a new version.
    Compact { table: String },
}

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

/// The first line of a clap error, without its `error: ` prefix, plus a hint. A first
/// line that ends in `:` (missing arguments) keeps the list that follows it.
pub fn short_clap_error(e: &clap::Error) -> String {
    let s = e.to_string();
    let mut lines = s.lines();
    let first = lines.next().unwrap_or("bad command").trim();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    let listed: Vec<&str> = if first.ends_with(':') {
        lines.map(str::trim).take_while(|l| !l.is_empty()).collect()
    } else {
        Vec::new()
    };
    let first = if listed.is_empty() {
        first.to_owned()
    } else {
        format!("{first} {}", listed.join(", "))
    };
    // clap's "a similar subcommand exists" line: the nearest command to a typo.
    match s.lines().map(str::trim).find(|l| l.starts_with("tip: ")) {
        Some(tip) => format!("{first} ({}; try `help` or `COMMAND --help`)", &tip[5..]),
        None => format!("{first} (try `help` or `COMMAND --help`)"),
    }
}
