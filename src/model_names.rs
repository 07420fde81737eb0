//! Model names: what an unknown or unsuitable model name is told, and the nearest
//! known name for a typo.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::train::MODELS;
use crate::{Db, Error, Result, TableView};

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

/// The vectors a query reads from a model.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Needs {
    /// `similar`: `<model>.items` with a direction per item.
    ItemVectors,
    /// `recommend`, `predict`: `<model>.users` and `<model>.items`.
    UserVectors,
}

impl Db {
    /// The names of the database's tables.
    fn table_names(&self) -> Result<Vec<String>> {
        Ok(self.tables()?.into_iter().map(|t| t.name).collect())
    }

    /// `<model>.items` for `similar`: one direction per item (a one-column table such as
    /// `popular`'s counts has none: every cosine would be 1).
    pub(crate) fn item_vectors(&self, model: &str) -> Result<Arc<TableView>> {
        let table = self
            .table(&format!("{model}.items"))
            .map_err(|e| self.explain_model(model, Needs::ItemVectors, e))?;
        if table.dim() < 2 {
            return Err(self.no_vectors(model, Needs::ItemVectors)?);
        }
        Ok(table)
    }

    /// Turn a missing `<model>.*` table into what is true: an unknown model (with the
    /// nearest name), or a trained model without the vectors the query needs. Other
    /// errors, and the tables of a known model not trained yet, pass unchanged.
    pub(crate) fn explain_model(&self, model: &str, needs: Needs, e: Error) -> Error {
        let Error::UnknownTable(missing) = &e else {
            return e;
        };
        let names = match self.table_names() {
            Ok(n) => n,
            Err(_) => return e,
        };
        let prefix = format!("{model}.");
        if names.iter().any(|n| n.starts_with(&prefix)) {
            // A trained model that never has the table the query needs; any other
            // missing table (e.g. one dropped) is reported as it is.
            let wanted = match needs {
                Needs::ItemVectors => "items",
                Needs::UserVectors => "users",
            };
            if *missing == format!("{model}.{wanted}") {
                return self.no_vectors(model, needs).unwrap_or(e);
            }
            return e;
        }
        if MODELS.contains(&model) {
            return e;
        }
        let known: BTreeSet<String> = MODELS
            .iter()
            .map(|m| m.to_string())
            .chain(
                names
                    .iter()
                    .filter_map(|n| Some(n.split_once('.')?.0.to_owned())),
            )
            .collect();
        unknown_model(model, known.into_iter().collect())
    }

    /// [`Error::NoVectors`] for `model`, listing the trained models that have them.
    fn no_vectors(&self, model: &str, needs: Needs) -> Result<Error> {
        let tables = self.tables()?;
        let has = |m: &str, suffix: &str, min_dim: u64| {
            tables
                .iter()
                .any(|t| t.name == format!("{m}.{suffix}") && t.dim >= min_dim)
        };
        let mut models: BTreeSet<String> = BTreeSet::new();
        for t in &tables {
            let Some((m, _)) = t.name.split_once('.') else {
                continue;
            };
            let fits = match needs {
                Needs::ItemVectors => has(m, "items", 2),
                Needs::UserVectors => has(m, "users", 1) && has(m, "items", 1),
            };
            if fits && m != model {
                models.insert(m.to_owned());
            }
        }
        Ok(Error::NoVectors {
            model: model.to_owned(),
            kind: match needs {
                Needs::ItemVectors => "item",
                Needs::UserVectors => "user",
            }
            .to_owned(),
            models: models.into_iter().collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_their_model() {
        assert_eq!(distance("alss", "als"), 1);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(nearest("alss", MODELS.iter().copied()), Some("als"));
        assert_eq!(nearest("itm2vec", MODELS.iter().copied()), Some("item2vec"));
        assert_eq!(nearest("zzzzzz", MODELS.iter().copied()), None);
    }
}
