//! Plain word vectors (skip-gram or CBOW) over imported documents or item texts, on
//! the shared SGNS core. Publishes `word2vec.words`, `.out` and `.counts`.

use super::doc2vec::{cfg_json, check_common, word_tables, Corpus};
use super::sgns::{self, Arch, SgnsConfig};
use crate::jobs::JobContext;
use crate::jobs::TableOutput;
use crate::jobs::{Job, Snapshot, Summary, TextInput};
use crate::{Error, Params, Result};

pub(crate) struct Word2Vec {
    docs: TextInput,
    cfg: SgnsConfig,
    min_count: u64,
    summary: Summary,
}

impl Word2Vec {
    pub fn from_params(p: &Params) -> Result<Self> {
        let d = SgnsConfig::default();
        let docs = match p.get("docs", "imported".to_string())?.as_str() {
            "imported" | "docs" => TextInput::Docs,
            "items" => TextInput::ItemTexts,
            other => {
                return Err(Error::param(
                    "docs",
                    format!("`{other}`: expected imported or items"),
                ))
            }
        };
        let cfg = SgnsConfig::from_params(p, &d)?;
        let min_count = p.get("min_count", 2u64)?;
        check_common(&cfg, min_count)?;
        p.finish("word2vec")?;
        Ok(Word2Vec {
            docs,
            cfg,
            min_count,
            summary: Summary::default(),
        })
    }
}

impl Job for Word2Vec {
    fn model(&self) -> &str {
        "word2vec"
    }

    fn params_json(&self) -> String {
        let mut j = cfg_json(&self.cfg, self.min_count);
        j["docs"] = if self.docs == TextInput::Docs {
            "imported"
        } else {
            "items"
        }
        .into();
        j["arch"] = if self.cfg.arch == Arch::Cbow {
            "cbow"
        } else {
            "skipgram"
        }
        .into();
        j.to_string()
    }

    fn text_input(&self) -> TextInput {
        self.docs
    }

    fn summary(&self) -> Option<String> {
        self.summary.get()
    }

    fn run(&self, snap: &Snapshot, ctx: &JobContext<'_>) -> Result<Vec<TableOutput>> {
        let corpus = Corpus::from_texts(&snap.texts, self.min_count)?;
        let started = std::time::Instant::now();
        let emb = sgns::train(&corpus.sentences, &corpus.vocab.counts, &self.cfg, ctx)?;
        self.summary
            .words_per_second(corpus.sentences.total_tokens(), self.cfg.epochs, started);
        Ok(word_tables("word2vec", &corpus.vocab, &emb))
    }
}
