//! Arguments shared by several commands, flattened into each (`#[command(flatten)]`) so a
//! flag is spelled, documented and defaulted once.

use anyhow::{bail, Result};
use clap::Args;

use recdb::{Params, QueryOptions};

use crate::output::Mode;

/// `-k`: how many results a query returns.
#[derive(Debug, Args)]
pub struct TopK {
    /// How many results.
    #[arg(short = 'k', long = "k", default_value_t = 10)]
    pub k: usize,
}

/// `--exact`: bypass the index.
#[derive(Debug, Args)]
pub struct Exact {
    /// Scan every row even when the table has an index.
    #[arg(long)]
    pub exact: bool,
}

/// The options of the item queries (`similar`, `recommend`) but `--include-seen`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    #[command(flatten)]
    pub top: TopK,
    /// The model whose tables answer.
    #[arg(long, default_value = "als")]
    pub model: String,
    /// Only items with this genre or tag.
    #[arg(long)]
    pub genre: Option<String>,
    #[command(flatten)]
    pub exact: Exact,
}

impl QueryArgs {
    pub fn options(self, include_seen: bool) -> QueryOptions {
        QueryOptions {
            k: self.top.k,
            model: self.model,
            include_seen,
            genre: self.genre,
            exact: self.exact.exact,
            rank: None,
            candidates: None,
        }
    }
}

/// `recommend`'s two stages: `--candidates MODEL[:N] --rank RANKER`.
#[derive(Debug, Args)]
pub struct TwoStageArgs {
    /// Two stages: MODEL proposes N candidates (default 200) through its index, seen
    /// items left out, and --rank re-scores them (replaces --model).
    #[arg(
        long,
        value_name = "MODEL[:N]",
        requires = "rank",
        conflicts_with = "model"
    )]
    pub candidates: Option<String>,
    /// The ranker that re-scores the candidates (of --candidates, else of --model's
    /// top 200), e.g. wide-deep.
    #[arg(long, value_name = "MODEL")]
    pub rank: Option<String>,
}

impl TwoStageArgs {
    /// `opts` with the two stages these arguments ask for.
    pub fn apply(self, mut opts: QueryOptions) -> Result<QueryOptions> {
        if let Some(c) = self.candidates {
            let (model, n) = match c.split_once(':') {
                Some((m, n)) => match n.parse::<usize>() {
                    Ok(n) => (m.to_owned(), Some(n)),
                    Err(_) => bail!("--candidates {c}: N must be a count, as in youtube:200"),
                },
                None => (c, None),
            };
            if model.is_empty() {
                bail!("--candidates needs a model, as in youtube:200");
            }
            opts.model = model;
            opts.candidates = n;
        }
        opts.rank = self.rank;
        Ok(opts)
    }
}

/// `--format`: one command's output mode, overriding the session's.
#[derive(Debug, Args)]
pub struct FormatOpt {
    #[arg(long)]
    pub format: Option<Mode>,
}

/// `--kind`: which matrix factorisation `mf` means.
#[derive(Debug, Args)]
pub struct MfKind {
    /// With `mf`: sgd, als or bpr (default als).
    #[arg(long)]
    pub kind: Option<String>,
}

impl MfKind {
    /// The model that MODEL (with this `--kind`) names.
    pub fn resolve(&self, model: &str) -> Result<String> {
        resolve_model(model, self.kind.as_deref())
    }
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

/// `--param K=V`, repeated: hyperparameters by name.
#[derive(Debug, Args)]
pub struct ParamArgs {
    /// Any other hyperparameter, repeated: `--param k=v`.
    #[arg(long = "param", value_name = "K=V")]
    pub params: Vec<String>,
}

impl ParamArgs {
    /// Add every `K=V` to `p` (later ones win).
    pub fn insert_into(&self, p: &mut Params) -> Result<()> {
        for kv in &self.params {
            p.insert_kv(kv)?;
        }
        Ok(())
    }

    pub fn to_params(&self) -> Result<Params> {
        let mut p = Params::new();
        self.insert_into(&mut p)?;
        Ok(p)
    }
}

/// `--threads` of one job.
#[derive(Debug, Args)]
pub struct ThreadsOpt {
    /// Threads of this job (default: the database's pool).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

/// `--background` of a job.
#[derive(Debug, Args)]
pub struct Background {
    /// Start the job and return at once; `jobs` shows progress, `jobs cancel ID` stops it.
    #[arg(long)]
    pub background: bool,
}

/// `--model` of the document commands.
#[derive(Debug, Args)]
pub struct TextModel {
    /// The doc2vec model whose tables answer.
    #[arg(long, default_value = "doc2vec")]
    pub model: String,
}

/// `--seed` of a reproducible run.
#[derive(Debug, Args)]
pub struct Seed {
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models() {
        assert_eq!(resolve_model("mf", Some("bpr")).unwrap(), "bpr");
        assert_eq!(resolve_model("popular", None).unwrap(), "popular");
        assert!(resolve_model("popular", Some("als")).is_err());
        assert!(resolve_model("mf", Some("xx")).is_err());
    }
}
