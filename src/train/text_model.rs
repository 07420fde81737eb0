//! A trained word or paragraph-vector model read back from its tables, for `infer`
//! and sentence vectors.

use super::doc2vec::Doc2VecParams;
use super::sgns::{self, Embeddings};
use super::text::{tokenize, Vocab};
use crate::{Error, Result};

/// SIF weight a/(a + p(w)) (Arora et al.): frequent words count less.
const SIF_A: f64 = 1e-3;

pub(crate) struct TextModel {
    pub model: String,
    pub vocab: Vocab,
    pub emb: Embeddings,
    pub params: Doc2VecParams,
    /// The default seed of `infer` (the training job's).
    pub seed: u64,
    /// The table of trained document vectors (doc2vec only).
    pub doc_table: Option<String>,
}

impl TextModel {
    /// The ids of the known words of `text`; an error if there is none.
    pub fn known_words(&self, text: &str) -> Result<Vec<u32>> {
        let ids = self.vocab.ids(&tokenize(text));
        if ids.is_empty() {
            return Err(Error::InvalidInput(format!(
                "no word of the text is known to `{}` ({} words; tokens are lowercase runs of 2-15 letters a-z)",
                self.model,
                self.vocab.len()
            )));
        }
        Ok(ids)
    }

    /// A paragraph vector for `text` with the words and output weights frozen.
    /// Deterministic for `seed`.
    pub fn infer(&self, text: &str, seed: u64) -> Result<Vec<f32>> {
        if self.doc_table.is_none() {
            return Err(Error::InvalidInput(format!(
                "`{}` has no document vectors to infer (use doc2vec, or a sentence vector)",
                self.model
            )));
        }
        let ids = self.known_words(text)?;
        self.infer_ids(&ids, seed)
    }

    pub fn infer_ids(&self, ids: &[u32], seed: u64) -> Result<Vec<f32>> {
        sgns::infer(
            &self.emb,
            &self.vocab.counts,
            ids,
            &self.params.cfg,
            self.params.mode,
            self.params.infer_epochs,
            seed,
        )
    }

    /// Mean of the input vectors of the known words, optionally SIF-weighted.
    // why: weights are summed in f64 and applied as f32, on purpose.
    #[allow(clippy::cast_possible_truncation)]
    pub fn sentence_vector(&self, text: &str, weighted: bool) -> Result<Vec<f32>> {
        let ids = self.known_words(text)?;
        let total = self.vocab.total().max(1) as f64;
        let mut v = vec![0f32; self.emb.dim];
        let mut wsum = 0f64;
        for &id in &ids {
            let w = if weighted {
                let p = self.vocab.counts[id as usize] as f64 / total;
                SIF_A / (SIF_A + p)
            } else {
                1.0
            };
            wsum += w;
            for (a, &x) in v.iter_mut().zip(self.emb.input_row(id as usize)) {
                *a += (w as f32) * x;
            }
        }
        let inv = (1.0 / wsum) as f32;
        v.iter_mut().for_each(|x| *x *= inv);
        Ok(v)
    }
}
