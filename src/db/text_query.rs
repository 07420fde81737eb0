//! Text queries: `infer`, sentence vectors, `similar-text` and `similar-word`, over
//! the tables of a `doc2vec` or `word2vec` job.

use super::Db;
use crate::index::Metric;
use crate::query::Hit;
use crate::train::doc2vec::{params_from_json, Doc2VecParams};
use crate::train::sgns::Embeddings;
use crate::train::text::Vocab;
use crate::train::text_model::TextModel;
use crate::{Error, Params, Result, SearchOptions};

impl Db {
    /// The model's word tables and hyperparameters, as its last publish left them.
    // why: word counts are stored as whole f32s; `as u64` saturates, never wraps.
    #[allow(clippy::cast_possible_truncation)]
    pub(crate) fn text_model(&self, model: &str) -> Result<TextModel> {
        let names = [
            format!("{model}.words"),
            format!("{model}.out"),
            format!("{model}.counts"),
        ];
        let views = self.tables_consistent(&[&names[0], &names[1], &names[2]])?;
        let (words, out, counts) = (&views[0], &views[1], &views[2]);
        let (rows, dim) = (words.rows(), words.dim());
        if out.rows() != rows || out.dim() != dim || counts.rows() != rows {
            return Err(Error::corrupted(format!(
                "tables of `{model}` (words, out and counts disagree in shape)"
            )));
        }
        let vocab = Vocab::from_counts(
            (0..rows)
                .map(|r| (self.row_id(words, r), counts.row(r).get(0).max(0.0) as u64))
                .collect(),
        );
        let job = self
            .tables()?
            .into_iter()
            .find(|t| t.name == names[0])
            .map(|t| t.job);
        let info = job.and_then(|id| self.job(id).ok());
        // A job record that is not this model's (e.g. after `restore`) leaves the defaults.
        let json = info
            .as_ref()
            .filter(|i| i.model == model)
            .map(|i| i.params.to_string());
        let mut p = json.as_deref().map(params_from_json).unwrap_or_default();
        p.insert("dim", dim);
        let params = Doc2VecParams::from_params(&p)
            .or_else(|_| Doc2VecParams::from_params(&Params::new().set("dim", dim)))?;
        let doc_table =
            (model == "doc2vec").then(|| format!("{model}.{}", params.docs.table_suffix()));
        let emb = Embeddings {
            dim,
            input: (0..rows).flat_map(|r| words.row(r).to_vec()).collect(),
            output: (0..rows).flat_map(|r| out.row(r).to_vec()).collect(),
        };
        Ok(TextModel {
            model: model.to_owned(),
            vocab,
            emb,
            params,
            seed: info.map_or(42, |i| i.seed),
            doc_table,
        })
    }

    /// A paragraph vector for unseen `text` (doc2vec): words and output weights stay
    /// frozen, only the new vector trains. Deterministic (seeded by the training job);
    /// an error if no word of the text is known.
    pub fn infer(&self, text: &str, model: &str) -> Result<Vec<f32>> {
        let m = self.text_model(model)?;
        m.infer(text, m.seed)
    }

    /// [`Db::infer`] with an explicit seed.
    pub fn infer_seeded(&self, text: &str, model: &str, seed: u64) -> Result<Vec<f32>> {
        self.text_model(model)?.infer(text, seed)
    }

    /// The mean of the word vectors of `text`'s known words; `weighted` uses SIF
    /// weights a/(a + p(w)), a = 1e-3, so frequent words count less.
    pub fn sentence_vector(&self, text: &str, model: &str, weighted: bool) -> Result<Vec<f32>> {
        self.text_model(model)?.sentence_vector(text, weighted)
    }

    /// Documents nearest to unseen `text` by cosine: infer, then search the doc2vec
    /// document table through the same path (index or exact) as `similar`.
    pub fn similar_text(&self, text: &str, model: &str, k: usize, exact: bool) -> Result<Vec<Hit>> {
        let m = self.text_model(model)?;
        let q = m.infer(text, m.seed)?;
        let table = m.doc_table.as_deref().unwrap_or_default();
        self.nearest(table, &q, k, exact, None)
    }

    /// Words nearest to `word` by cosine over the model's input word vectors.
    pub fn similar_word(&self, word: &str, model: &str, k: usize) -> Result<Vec<Hit>> {
        let table = format!("{model}.words");
        let view = self.table(&table)?;
        let w = word.to_lowercase();
        let row = view
            .row_of_id(&w)
            .map(|r| r as usize)
            .ok_or_else(|| Error::InvalidInput(format!("unknown word `{word}` in `{table}`")))?;
        let q = view.row(row).to_vec();
        // why: `row` came from a u32 above.
        #[allow(clippy::cast_possible_truncation)]
        let row = row as u32;
        self.nearest(&table, &q, k, false, Some(row))
    }

    /// The `k` rows of `table` nearest to `q` by cosine, named, `skip` left out.
    pub(crate) fn nearest(
        &self,
        table: &str,
        q: &[f32],
        k: usize,
        exact: bool,
        skip: Option<u32>,
    ) -> Result<Vec<Hit>> {
        let s = self.searcher(table)?;
        let opts = SearchOptions {
            k,
            metric: Metric::Cosine,
            exact,
            nprobe: None,
        };
        let hits = s.search_filtered(q, &opts, &|r| Some(r) != skip)?;
        let view = s.view();
        Ok(hits
            .into_iter()
            .map(|(r, score)| Hit {
                id: self.row_id(view, r as usize),
                score,
            })
            .collect())
    }
}
