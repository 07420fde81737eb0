//! Paragraph vectors (doc2vec) as a job: PV-DBOW (optionally with skip-gram word
//! training) or PV-DM over imported documents, item texts or user histories, on the
//! shared SGNS core. Publishes the document vectors plus what `infer` needs after a
//! reopen: input word vectors, output weights and word counts.

use super::params::check_int;
use super::sgns::{self, Arch, Embeddings, PvMode, Sentences, SgnsConfig};
use super::text::{tokenize, Vocab};
use crate::jobs::JobContext;
use crate::jobs::TableOutput;
use crate::jobs::{Job, Snapshot, Summary, TextInput};
use crate::storage::tables::RowSpace;
use crate::{Error, Params, Result};

/// Which documents a job trains on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DocSource {
    /// Imported documents (`import docs`): `<model>.docs`, rows named by tag.
    Imported,
    /// Item title + genres + text: `<model>.items`, content vectors for every item.
    Items,
    /// A user's history as a document whose words are item ids: `<model>.users`.
    Users,
}

impl DocSource {
    fn parse(s: &str) -> Result<DocSource> {
        match s {
            "imported" | "docs" => Ok(DocSource::Imported),
            "items" => Ok(DocSource::Items),
            "users" => Ok(DocSource::Users),
            other => Err(Error::param(
                "docs",
                format!("`{other}`: expected items, users or imported"),
            )),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            DocSource::Imported => "imported",
            DocSource::Items => "items",
            DocSource::Users => "users",
        }
    }
    /// The suffix of the document table.
    pub fn table_suffix(self) -> &'static str {
        match self {
            DocSource::Imported => "docs",
            DocSource::Items => "items",
            DocSource::Users => "users",
        }
    }
    fn text_input(self) -> TextInput {
        match self {
            DocSource::Imported => TextInput::Docs,
            DocSource::Items => TextInput::ItemTexts,
            DocSource::Users => TextInput::ItemNames,
        }
    }
}

/// Validated doc2vec hyperparameters.
#[derive(Debug, Clone)]
pub(crate) struct Doc2VecParams {
    pub docs: DocSource,
    pub mode: PvMode,
    pub cfg: SgnsConfig,
    pub min_count: u64,
    /// Passes of `infer` over an unseen document.
    pub infer_epochs: usize,
}

impl Doc2VecParams {
    pub fn from_params(p: &Params) -> Result<Self> {
        let d = SgnsConfig::default();
        let docs = DocSource::parse(&p.get("docs", "items".to_string())?)?;
        let dm: bool = p.get("dm", false)?;
        let dbow_words: bool = p.get("dbow_words", false)?;
        if dm && dbow_words {
            return Err(Error::param(
                "dbow_words",
                "only with PV-DBOW (dm=false): PV-DM always trains word vectors",
            ));
        }
        let mode = if dm {
            PvMode::Dm
        } else {
            PvMode::Dbow {
                train_words: dbow_words,
            }
        };
        let epochs = p.get("epochs", 20usize)?;
        let cfg = SgnsConfig {
            arch: if dm { Arch::Cbow } else { Arch::SkipGram },
            dim: p.get("dim", d.dim)?,
            window: p.get("window", d.window)?,
            negative: p.get("negative", d.negative)?,
            epochs,
            alpha: p.get("alpha", 0.025f32)?,
            min_alpha: p.get("min_alpha", d.min_alpha)?,
            sample: p.get("sample", d.sample)?,
            ns_exponent: p.get("ns_exponent", d.ns_exponent)?,
            whole_window: false,
        };
        let min_count: u64 = p.get("min_count", 2u64)?;
        let infer_epochs: usize = p.get("infer_epochs", epochs)?;
        check_common(&cfg, min_count)?;
        check_int("infer_epochs", infer_epochs as u64, sgns::EPOCHS)?;
        Ok(Doc2VecParams {
            docs,
            mode,
            cfg,
            min_count,
            infer_epochs,
        })
    }

    pub fn to_json(&self) -> serde_json::Value {
        let (dm, dbow_words) = match self.mode {
            PvMode::Dm => (true, false),
            PvMode::Dbow { train_words } => (false, train_words),
        };
        let mut j = cfg_json(&self.cfg, self.min_count);
        j["docs"] = self.docs.as_str().into();
        j["dm"] = dm.into();
        j["dbow_words"] = dbow_words.into();
        j["infer_epochs"] = self.infer_epochs.into();
        j
    }
}

/// Checks shared with word2vec, each naming its parameter.
pub(crate) fn check_common(cfg: &SgnsConfig, min_count: u64) -> Result<()> {
    cfg.validate()?;
    check_int("min_count", min_count, sgns::MIN_COUNT)
}

pub(crate) fn cfg_json(cfg: &SgnsConfig, min_count: u64) -> serde_json::Value {
    serde_json::json!({
        "dim": cfg.dim, "window": cfg.window, "negative": cfg.negative, "epochs": cfg.epochs,
        "alpha": short(cfg.alpha), "min_alpha": short(cfg.min_alpha), "sample": cfg.sample,
        "ns_exponent": cfg.ns_exponent, "min_count": min_count,
    })
}

/// An f32 as the f64 with the same shortest decimal form (0.025, not 0.0250000004).
fn short(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(x as f64)
}

/// Params back from a job record's JSON (numbers and strings as `key=value`).
pub(crate) fn params_from_json(json: &str) -> Params {
    let mut p = Params::new();
    if let Ok(serde_json::Value::Object(m)) = serde_json::from_str(json) {
        for (k, v) in m {
            match v {
                serde_json::Value::String(s) => p.insert(&k, s),
                other => p.insert(&k, other),
            }
        }
    }
    p
}

/// A tokenised corpus: sentences of word ids, the document of each, the vocabulary.
pub(crate) struct Corpus {
    pub vocab: Vocab,
    pub sentences: Sentences,
    pub tags: Vec<u32>,
    pub n_docs: usize,
}

impl Corpus {
    /// Documents from texts: tokenise, keep words seen `min_count` times.
    pub fn from_texts(texts: &[(String, String)], min_count: u64) -> Result<Corpus> {
        let tokens: Vec<Vec<String>> = texts.iter().map(|(_, t)| tokenize(t)).collect();
        let vocab = Vocab::build(&tokens, min_count);
        let ids = tokens.iter().map(|t| vocab.ids(t)).collect();
        Corpus::assemble(vocab, ids)
    }

    /// Users' histories (item ids in time order) as documents over the item vocabulary.
    pub fn from_histories(snap: &Snapshot, min_count: u64) -> Result<Corpus> {
        let names: Vec<String> = snap.texts.iter().map(|(n, _)| n.clone()).collect();
        let mut docs: Vec<Vec<String>> = vec![Vec::new(); snap.n_users];
        // The snapshot is grouped by user in time order.
        for e in &snap.events {
            if let (Some(d), Some(n)) = (docs.get_mut(e.user as usize), names.get(e.item as usize))
            {
                d.push(n.clone());
            }
        }
        let vocab = Vocab::build(&docs, min_count);
        let ids: Vec<Vec<u32>> = docs.iter().map(|d| vocab.ids(d)).collect();
        Corpus::assemble(vocab, ids)
    }

    // why: documents are numbered by dense u32 item ids.
    #[allow(clippy::cast_possible_truncation)]
    fn assemble(vocab: Vocab, docs: Vec<Vec<u32>>) -> Result<Corpus> {
        let mut sentences = Sentences::new();
        let mut tags = Vec::new();
        for (i, d) in docs.iter().enumerate() {
            if !d.is_empty() {
                sentences.push(d);
                tags.push(i as u32);
            }
        }
        if vocab.is_empty() || sentences.len() == 0 {
            return Err(Error::Empty(
                "no document has a word kept by min_count (import docs or item texts first)".into(),
            ));
        }
        Ok(Corpus {
            vocab,
            sentences,
            tags,
            n_docs: docs.len(),
        })
    }
}

/// The word tables every text model publishes: input vectors, output weights and
/// counts (one column), rows named by word.
pub(crate) fn word_tables(model: &str, vocab: &Vocab, emb: &Embeddings) -> Vec<TableOutput> {
    let table = |suffix: &str, dim: usize, rows: Vec<f32>, ids: Vec<String>| TableOutput {
        name: format!("{model}.{suffix}"),
        space: RowSpace::Other,
        dim,
        rows,
        offset: 0.0,
        row_ids: ids,
    };
    vec![
        table("words", emb.dim, emb.input.clone(), vocab.words.clone()),
        table("out", emb.dim, emb.output.clone(), vocab.words.clone()),
        table(
            "counts",
            1,
            vocab.counts.iter().map(|&c| c as f32).collect(),
            vec![],
        ),
    ]
}

pub(crate) struct Doc2Vec {
    pub params: Doc2VecParams,
    summary: Summary,
}

impl Doc2Vec {
    pub fn from_params(p: &Params) -> Result<Self> {
        let params = Doc2VecParams::from_params(p)?;
        p.finish("doc2vec")?;
        Ok(Doc2Vec {
            params,
            summary: Summary::default(),
        })
    }

    /// Train on a corpus: (word embeddings, doc vectors n_docs × dim).
    pub fn train(&self, c: &Corpus, ctx: &JobContext<'_>) -> Result<(Embeddings, Vec<f32>)> {
        let started = std::time::Instant::now();
        let out = sgns::train_docs(
            &c.sentences,
            &c.tags,
            c.n_docs,
            &c.vocab.counts,
            &self.params.cfg,
            self.params.mode,
            ctx,
        )?;
        self.summary
            .words_per_second(c.sentences.total_tokens(), self.params.cfg.epochs, started);
        Ok(out)
    }
}

impl Job for Doc2Vec {
    fn model(&self) -> &str {
        "doc2vec"
    }

    fn params_json(&self) -> String {
        self.params.to_json().to_string()
    }

    fn text_input(&self) -> TextInput {
        self.params.docs.text_input()
    }

    fn summary(&self) -> Option<String> {
        self.summary.get()
    }

    fn run(&self, snap: &Snapshot, ctx: &JobContext<'_>) -> Result<Vec<TableOutput>> {
        let p = &self.params;
        let corpus = match p.docs {
            DocSource::Users => Corpus::from_histories(snap, p.min_count)?,
            _ => Corpus::from_texts(&snap.texts, p.min_count)?,
        };
        let (emb, docs) = self.train(&corpus, ctx)?;
        let (space, row_ids) = match p.docs {
            DocSource::Imported => (
                RowSpace::Other,
                snap.texts.iter().map(|(t, _)| t.clone()).collect(),
            ),
            DocSource::Items => (RowSpace::Items, vec![]),
            DocSource::Users => (RowSpace::Users, vec![]),
        };
        let mut out = vec![TableOutput {
            name: format!("doc2vec.{}", p.docs.table_suffix()),
            space,
            dim: emb.dim,
            rows: docs,
            offset: 0.0,
            row_ids,
        }];
        out.extend(word_tables("doc2vec", &corpus.vocab, &emb));
        Ok(out)
    }
}
