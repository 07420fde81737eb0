//! Model names: what an unknown or unsuitable model name is told, and the nearest
//! known name for a typo.

use crate::Error;

/// Edit distance (insertions, deletions, substitutions) between two short names.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let next = (diag + usize::from(ca != cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// The candidate nearest to `name`, if it is close enough to be a typo (a third of
/// the name's letters, at least one).
pub fn nearest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (distance(name, c), c))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// [`Error::UnknownModel`] for `name` among `known`, with the nearest as a suggestion.
pub(crate) fn unknown_model(name: &str, known: Vec<String>) -> Error {
    let suggestion = nearest(name, known.iter().map(String::as_str)).map(str::to_owned);
    Error::UnknownModel {
        name: name.to_owned(),
        known,
        suggestion,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::MODELS;

    #[test]
    fn typos_find_their_model() {
        assert_eq!(distance("alss", "als"), 1);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(nearest("alss", MODELS.iter().copied()), Some("als"));
        assert_eq!(nearest("itm2vec", MODELS.iter().copied()), Some("item2vec"));
        assert_eq!(nearest("zzzzzz", MODELS.iter().copied()), None);
    }
}
