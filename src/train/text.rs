//! Text for the word and paragraph-vector jobs: the tokenizer and the vocabulary.
//!
//! A token is a maximal run of ASCII letters, lowercased, kept when it is 2 to 15
//! letters long: the LEE protocol's definition (docs/EVALUATION.md), used for all text so that
//! training, `infer` and the evaluation agree.

use std::collections::HashMap;

/// Shortest and longest token kept.
pub(crate) const MIN_LEN: usize = 2;
pub(crate) const MAX_LEN: usize = 15;

/// The tokens of `text`, in order.
pub(crate) fn tokenize(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    // A trailing sentinel closes the last run.
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_alphabetic() {
            cur.push(c.to_ascii_lowercase());
        } else {
            if (MIN_LEN..=MAX_LEN).contains(&cur.len()) {
                out.push(std::mem::take(&mut cur));
            }
            cur.clear();
        }
    }
    out
}

/// Words and their counts over a corpus, most frequent first (ties by word), so ids do
/// not depend on the order documents come in.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Vocab {
    pub words: Vec<String>,
    pub counts: Vec<u64>,
    index: HashMap<String, u32>,
}

impl Vocab {
    /// The words seen at least `min_count` times in `docs` (token lists).
    pub fn build<S: AsRef<str>>(docs: &[Vec<S>], min_count: u64) -> Vocab {
        let mut counts: HashMap<&str, u64> = HashMap::new();
        for d in docs {
            for w in d {
                *counts.entry(w.as_ref()).or_insert(0) += 1;
            }
        }
        let mut kept: Vec<(&str, u64)> = counts
            .into_iter()
            .filter(|&(_, c)| c >= min_count.max(1))
            .collect();
        kept.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        Vocab::from_counts(kept.into_iter().map(|(w, c)| (w.to_owned(), c)).collect())
    }

    /// A vocabulary from (word, count) rows, in that order (e.g. read back from tables).
    // why: a vocabulary is a table's rows or `prune_vocab`'s output, both capped at u32.
    #[allow(clippy::cast_possible_truncation)]
    pub fn from_counts(rows: Vec<(String, u64)>) -> Vocab {
        let index = rows
            .iter()
            .enumerate()
            .map(|(i, (w, _))| (w.clone(), i as u32))
            .collect();
        let (words, counts) = rows.into_iter().unzip();
        Vocab {
            words,
            counts,
            index,
        }
    }

    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    pub fn id(&self, word: &str) -> Option<u32> {
        self.index.get(word).copied()
    }

    /// The ids of the known words of `tokens`, in order (unknown words dropped).
    pub fn ids<S: AsRef<str>>(&self, tokens: &[S]) -> Vec<u32> {
        tokens.iter().filter_map(|t| self.id(t.as_ref())).collect()
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_lowercase_letter_runs_of_2_to_15() {
        assert_eq!(
            tokenize("The U.S. isn't 42nd-best; Ünïcode a bb ccc"),
            vec!["the", "isn", "nd", "best", "code", "bb", "ccc"]
        );
        assert_eq!(
            tokenize("abcdefghijklmno abcdefghijklmnop x"),
            vec!["abcdefghijklmno"]
        );
        assert!(tokenize("").is_empty());
        assert!(tokenize("1 2 3 - a").is_empty());
        assert_eq!(tokenize("tail"), vec!["tail"]);
    }

    #[test]
    fn vocab_orders_by_count_then_word_and_prunes() {
        let docs = vec![
            tokenize("b a a c"),
            tokenize("bb aa aa cc dd"),
            tokenize("cc aa bb"),
        ];
        let v = Vocab::build(&docs, 2);
        assert_eq!(v.words, vec!["aa", "bb", "cc"]);
        assert_eq!(v.counts, vec![3, 2, 2]);
        assert_eq!(v.id("cc"), Some(2));
        assert_eq!(v.id("dd"), None);
        assert_eq!(v.ids(&["dd", "cc", "aa"]), vec![2, 0]);
        assert_eq!(v.total(), 7);
        let all = Vocab::build(&docs, 1);
        assert_eq!(all.len(), 4);
        assert_eq!(Vocab::build(&docs, 0), all);
    }
}
