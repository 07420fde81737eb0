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

/// Check an integer parameter against its documented range (docs/SHELL.md lists them).
pub(crate) fn check_int(name: &str, v: u64, range: std::ops::RangeInclusive<u64>) -> Result<()> {
    if range.contains(&v) {
        return Ok(());
    }
    Err(Error::param(
        name,
        format!("{v} is outside {}..={}", range.start(), range.end()),
    ))
}

/// The range of a real-valued parameter: `[min, max]`, or `(min, max]` when `min` is
/// excluded (a step size of 0 would never learn). Never NaN or infinite.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Real {
    pub min: f64,
    pub max: f64,
    pub min_excluded: bool,
}

impl Real {
    pub const fn closed(min: f64, max: f64) -> Real {
        Real {
            min,
            max,
            min_excluded: false,
        }
    }

    pub const fn above(min: f64, max: f64) -> Real {
        Real {
            min,
            max,
            min_excluded: true,
        }
    }

    fn contains(&self, v: f64) -> bool {
        let low = if self.min_excluded {
            v > self.min
        } else {
            v >= self.min
        };
        low && v <= self.max
    }
}

impl std::fmt::Display for Real {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let open = if self.min_excluded { '(' } else { '[' };
        write!(f, "{open}{}, {}]", self.min, self.max)
    }
}

/// Check a real-valued parameter against its documented range.
pub(crate) fn check_real(name: &str, v: f64, range: Real) -> Result<()> {
    if range.contains(v) {
        return Ok(());
    }
    Err(Error::param(name, format!("{v} is outside {range}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_name_the_parameter_and_the_range() {
        let e = check_int("epochs", 4_294_967_295, 1..=10_000).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid parameter `epochs`: 4294967295 is outside 1..=10000"
        );
        assert!(check_int("epochs", 10_000, 1..=10_000).is_ok());
        let lr = Real::above(0.0, 10.0);
        assert!(check_real("learning_rate", 0.0, lr).is_err());
        assert!(check_real("learning_rate", f64::NAN, lr).is_err());
        assert!(check_real("learning_rate", 10.0, lr).is_ok());
        assert_eq!(
            check_real("reg", -1.0, Real::closed(0.0, 1e6))
                .unwrap_err()
                .to_string(),
            "invalid parameter `reg`: -1 is outside [0, 1000000]"
        );
    }
}
