//! Hyperparameters as `key=value` pairs, parsed and validated by each job.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use crate::{Error, Result};

/// Hyperparameters for a training job: `key=value` pairs. Unknown keys, unparsable
/// values and values out of range are errors that name the parameter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params {
    map: BTreeMap<String, String>,
    used: RefCell<BTreeSet<String>>,
}

impl Params {
    pub fn new() -> Self {
        Params::default()
    }

    /// Builder form: `Params::new().set("factors", 64)`.
    pub fn set(mut self, key: &str, value: impl ToString) -> Self {
        self.insert(key, value);
        self
    }

    pub fn insert(&mut self, key: &str, value: impl ToString) {
        self.map.insert(
            key.trim().replace('-', "_"),
            value.to_string().trim().to_owned(),
        );
    }

    /// Parse `key=value`.
    pub fn insert_kv(&mut self, kv: &str) -> Result<()> {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| Error::param(kv, "expected key=value"))?;
        if k.trim().is_empty() {
            return Err(Error::param(kv, "empty parameter name"));
        }
        self.insert(k, v);
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.map.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The value of `key` parsed as `T`, or `default`.
    pub(crate) fn get<T: FromStr>(&self, key: &str, default: T) -> Result<T> {
        self.used.borrow_mut().insert(key.to_owned());
        match self.map.get(key) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| Error::param(key, format!("cannot parse `{v}`"))),
        }
    }

    /// Error on any key that no `get` asked for.
    pub(crate) fn finish(&self, model: &str) -> Result<()> {
        let used = self.used.borrow();
        match self.map.keys().find(|k| !used.contains(*k)) {
            None => Ok(()),
            Some(k) => {
                let known: Vec<&str> = used.iter().map(String::as_str).collect();
                let msg = if known.is_empty() {
                    format!("`{model}` takes no parameters")
                } else {
                    format!("not a parameter of `{model}` (known: {})", known.join(", "))
                };
                Err(Error::param(k.clone(), msg))
            }
        }
    }
}
