//! Training: the job abstraction, its context, and one file per model.
pub(crate) mod context;
pub(crate) mod job;
pub(crate) mod params;
mod popular;

use crate::{Error, Params, Result};
use job::Job;

/// The models recdb can train, by name.
pub const MODELS: &[&str] = &["popular"];

/// Build (and so validate) the job for `model`.
pub(crate) fn make_job(model: &str, params: &Params) -> Result<Box<dyn Job>> {
    match model {
        "popular" => Ok(Box::new(popular::Popular::from_params(params)?)),
        other => Err(Error::UnknownModel(format!("{other} (known: {})", MODELS.join(", ")))),
    }
}
