//! What a query tells about a model name: the vectors it needs that the model lacks, an
//! unknown name with the nearest known one.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::Source;
use crate::model_names::unknown_model;
use crate::storage::tables::TableView;
use crate::train::MODELS;
use crate::{Error, Result};

/// The vectors a query reads from a model.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Needs {
    /// `similar`: `<model>.items` with a direction per item.
    ItemVectors,
    /// `recommend`, `predict`: `<model>.users` and `<model>.items`.
    UserVectors,
}

/// `<model>.items` for `similar`: one direction per item (a one-column table such as
/// `popular`'s counts has none: every cosine would be 1).
pub(crate) fn item_vectors<S: Source + ?Sized>(db: &S, model: &str) -> Result<Arc<TableView>> {
    let table = db
        .table(&format!("{model}.items"))
        .map_err(|e| explain_model(db, model, Needs::ItemVectors, e))?;
    if table.dim() < 2 {
        return Err(no_vectors(db, model, Needs::ItemVectors)?);
    }
    Ok(table)
}

/// Turn a missing `<model>.*` table into what is true: an unknown model (with the
/// nearest name), or a trained model without the vectors the query needs. Other
/// errors, and the tables of a known model not trained yet, pass unchanged.
pub(crate) fn explain_model<S: Source + ?Sized>(
    db: &S,
    model: &str,
    needs: Needs,
    e: Error,
) -> Error {
    let Error::UnknownTable(missing) = &e else {
        return e;
    };
    let names: Vec<String> = match db.table_shapes() {
        Ok(t) => t.into_iter().map(|t| t.name).collect(),
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
            return no_vectors(db, model, needs).unwrap_or(e);
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
fn no_vectors<S: Source + ?Sized>(db: &S, model: &str, needs: Needs) -> Result<Error> {
    let tables = db.table_shapes()?;
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
