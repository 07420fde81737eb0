//! Training: the job abstraction, its context, and one file per model.
pub(crate) mod autoencoder;
pub(crate) mod blend;
pub(crate) mod doc2vec;
pub(crate) mod ease;
pub(crate) mod interactions;
mod item2vec;
mod item_sentences;
pub(crate) mod mf;
mod mf_jobs;
pub(crate) mod nn;
pub(crate) mod params;
mod popular;
pub(crate) mod sgns;
pub(crate) mod text;
pub(crate) mod text_model;
pub(crate) mod wide_deep;
mod word2vec;
pub(crate) mod youtube;

use crate::jobs::Job;
use crate::{Params, Result};

/// The models recdb can train, by name.
pub const MODELS: &[&str] = &[
    "popular",
    "sgd",
    "als",
    "bpr",
    "item2vec",
    "doc2vec",
    "word2vec",
    "ease",
    "mult-dae",
    "mult-vae",
    "blend",
    "youtube",
    "wide-deep",
];

/// Build (and so validate) the job for `model`.
pub(crate) fn make_job(model: &str, params: &Params) -> Result<Box<dyn Job>> {
    match model {
        "popular" => Ok(Box::new(popular::Popular::from_params(params)?)),
        "sgd" | "als" | "bpr" => Ok(Box::new(mf_jobs::MfJob::from_params(model, params)?)),
        item2vec::MODEL => Ok(Box::new(item2vec::Item2Vec::from_params(params)?)),
        "doc2vec" => Ok(Box::new(doc2vec::Doc2Vec::from_params(params)?)),
        "word2vec" => Ok(Box::new(word2vec::Word2Vec::from_params(params)?)),
        ease::MODEL => Ok(Box::new(ease::Ease::from_params(params)?)),
        blend::MODEL => Ok(Box::new(blend::Blend::from_params(params)?)),
        autoencoder::DAE | autoencoder::VAE => Ok(Box::new(autoencoder::Autoencoder::from_params(
            model, params,
        )?)),
        youtube::MODEL => Ok(Box::new(youtube::Youtube::from_params(params)?)),
        wide_deep::MODEL => Ok(Box::new(wide_deep::WideDeep::from_params(params)?)),
        other => Err(crate::model_names::unknown_model(
            other,
            MODELS.iter().map(|m| m.to_string()).collect(),
        )),
    }
}

/// The parameters `model` trains with when none are given, as the JSON object its job
/// records hold (`{}` for `popular`, which takes none). A `blend` has no default
/// components: its `models` (and `weights`, equal by default) are empty here.
pub fn model_defaults(model: &str) -> Result<String> {
    if model == blend::MODEL {
        return Ok(blend::defaults_json());
    }
    Ok(make_job(model, &Params::new())?.params_json())
}
