//! `blend`: a query-time ensemble of trained models. Training fits nothing: it checks
//! the parameters and publishes a marker table naming the components and their weights,
//! so retraining a component changes the blend at once. Serving is in `query::blend`.

use crate::jobs::{Job, JobContext, Snapshot, TableOutput};
use crate::storage::tables::RowSpace;
use crate::{Error, Params, Result};

pub(crate) const MODEL: &str = "blend";
/// `<model>.blend`: one row per component (row id = its model name), column 0 = weight.
pub(crate) const MARKER: &str = "blend";
pub(crate) const MAX_COMPONENTS: usize = 8;
/// The marker row holding the normalisation (no model name starts with `@`).
pub(crate) const NORM_ROW: &str = "@norm";

/// A blend's parameters before any are given: no components, equal weights, z-scores.
pub(crate) fn defaults_json() -> String {
    serde_json::json!({ "models": "", "weights": "", "norm": Norm::ZScore.name() }).to_string()
}

/// How each component's scores are put on a common scale per user before weighting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Norm {
    /// (s − mean) / sd over the items: scale-free, keeps each model's score gaps.
    ZScore,
    /// s − log Σ exp s: the autoencoders' own log-probabilities.
    LogSoftmax,
    /// 1 (best) down to 0 (worst): only each model's order counts.
    Rank,
}

impl Norm {
    const NAMES: [(&'static str, Norm); 3] = [
        ("z", Norm::ZScore),
        ("log-softmax", Norm::LogSoftmax),
        ("rank", Norm::Rank),
    ];

    fn code(self) -> f32 {
        match self {
            Norm::ZScore => 0.0,
            Norm::LogSoftmax => 1.0,
            Norm::Rank => 2.0,
        }
    }

    pub(crate) fn from_code(c: f32) -> Result<Norm> {
        Norm::NAMES
            .iter()
            .map(|&(_, n)| n)
            .find(|n| n.code() == c)
            .ok_or_else(|| Error::corrupted(format!("blend normalisation code {c}")))
    }

    fn name(self) -> &'static str {
        Norm::NAMES
            .iter()
            .find(|(_, n)| *n == self)
            .map_or("z", |(s, _)| s)
    }
}

pub(crate) struct Blend {
    components: Vec<(String, f32)>,
    norm: Norm,
}

impl Blend {
    pub fn from_params(p: &Params) -> Result<Self> {
        let models: String = p.get("models", String::new())?;
        let names: Vec<String> = models
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        if !(2..=MAX_COMPONENTS).contains(&names.len()) {
            return Err(Error::param(
                "models",
                format!(
                    "2 to {MAX_COMPONENTS} comma-separated model names, got {}",
                    names.len()
                ),
            ));
        }
        for n in &names {
            if n == MODEL {
                return Err(Error::param("models", "a blend cannot contain a blend"));
            }
        }
        // Default: equal weights (they need not sum to 1; only ratios matter).
        let weights: String = p.get("weights", String::new())?;
        let weights: Vec<f32> = if weights.trim().is_empty() {
            vec![1.0; names.len()]
        } else {
            weights
                .split(',')
                .map(|w| {
                    w.trim()
                        .parse::<f32>()
                        .ok()
                        .filter(|w| w.is_finite() && *w > 0.0)
                        .ok_or_else(|| {
                            Error::param("weights", format!("`{w}` is not a number > 0"))
                        })
                })
                .collect::<Result<_>>()?
        };
        if weights.len() != names.len() {
            return Err(Error::param(
                "weights",
                format!("{} weights for {} models", weights.len(), names.len()),
            ));
        }
        let norm_name: String = p.get("norm", "z".to_owned())?;
        let norm = Norm::NAMES
            .iter()
            .find(|(s, _)| *s == norm_name)
            .map(|&(_, n)| n)
            .ok_or_else(|| Error::param("norm", "one of z, log-softmax, rank"))?;
        p.finish(MODEL)?;
        Ok(Blend {
            components: names.into_iter().zip(weights).collect(),
            norm,
        })
    }

    /// The component model names, which must be trained before the blend is.
    fn component_names(&self) -> impl Iterator<Item = &str> {
        self.components.iter().map(|(n, _)| n.as_str())
    }
}

/// For an evaluation protocol, which trains in a fresh database: when `model` is a
/// blend, train each component named by `models=` first (its defaults, overridden by
/// `<component>.<key>=value` parameters) with `train`, and return the blend's own
/// parameters; any other model's parameters come back unchanged.
pub(crate) fn train_components_first(
    model: &str,
    params: &Params,
    mut train: impl FnMut(&str, &Params) -> Result<()>,
) -> Result<Params> {
    if model != MODEL {
        return Ok(params.clone());
    }
    let mut own = Params::new();
    let models: String = params.get("models", String::new())?;
    let names: Vec<&str> = models.split(',').map(str::trim).collect();
    // Parameter keys are stored with `_` for `-`, so `mult-dae.epochs` is `mult_dae.epochs`.
    let prefix = |name: &str| format!("{}.", name.replace('-', "_"));
    for (k, v) in params.iter() {
        if !names.iter().any(|n| k.starts_with(&prefix(n))) {
            own.insert(k, v);
        }
    }
    // Validate the blend's own parameters before the (long) component training.
    Blend::from_params(&own.clone())?;
    for name in names {
        let mut p = Params::new();
        for (k, v) in params.iter() {
            if let Some(key) = k.strip_prefix(&prefix(name)) {
                p.insert(key, v);
            }
        }
        train(name, &p)?;
    }
    Ok(own)
}

impl Job for Blend {
    fn model(&self) -> &str {
        MODEL
    }

    fn params_json(&self) -> String {
        let names: Vec<&str> = self.component_names().collect();
        let weights: Vec<String> = self.components.iter().map(|(_, w)| w.to_string()).collect();
        serde_json::json!({
            "models": names.join(","),
            "weights": weights.join(","),
            "norm": self.norm.name(),
        })
        .to_string()
    }

    fn requires_models(&self) -> Vec<String> {
        self.component_names().map(str::to_owned).collect()
    }

    fn run(&self, _snap: &Snapshot, _ctx: &JobContext<'_>) -> Result<Vec<TableOutput>> {
        Ok(vec![TableOutput {
            name: format!("{MODEL}.{MARKER}"),
            space: RowSpace::Other,
            dim: 1,
            rows: self
                .components
                .iter()
                .map(|(_, w)| *w)
                .chain([self.norm.code()])
                .collect(),
            offset: 0.0,
            row_ids: self
                .component_names()
                .map(str::to_owned)
                .chain([NORM_ROW.to_owned()])
                .collect(),
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blend(kv: &[(&str, &str)]) -> Result<Blend> {
        let mut p = Params::new();
        for (k, v) in kv {
            p.insert(k, v);
        }
        Blend::from_params(&p)
    }

    #[test]
    fn parameters_are_validated() {
        assert!(blend(&[("models", "ease,mult-dae"), ("weights", "0.7,0.3")]).is_ok());
        assert!(blend(&[("models", "ease,mult-dae")]).is_ok());
        for bad in [
            vec![("models", "ease")],
            vec![("models", "ease,blend")],
            vec![("models", "a,b,c,d,e,f,g,h,i")],
            vec![("models", "ease,mult-dae"), ("weights", "0.7,0")],
            vec![("models", "ease,mult-dae"), ("weights", "0.7,-1")],
            vec![("models", "ease,mult-dae"), ("weights", "1")],
            vec![("models", "ease,mult-dae"), ("weights", "x,1")],
            vec![("models", "ease,mult-dae"), ("lambda", "1")],
            vec![("models", "ease,mult-dae"), ("norm", "max")],
        ] {
            assert!(blend(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_evaluation_trains_the_components_first_with_their_prefixed_parameters() {
        let p = Params::new()
            .set("models", "ease,mult-dae")
            .set("weights", "1,2")
            .set("ease.lambda", 200)
            .set("mult-dae.epochs", 5);
        let mut trained = Vec::new();
        let own = train_components_first(MODEL, &p, |m, p| {
            trained.push((
                m.to_owned(),
                p.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>(),
            ));
            Ok(())
        })
        .unwrap();
        assert_eq!(
            trained,
            vec![
                ("ease".to_owned(), vec!["lambda=200".to_owned()]),
                ("mult-dae".to_owned(), vec!["epochs=5".to_owned()]),
            ]
        );
        assert_eq!(
            own,
            Params::new()
                .set("models", "ease,mult-dae")
                .set("weights", "1,2")
        );
        // A bad blend parameter fails before any component trains.
        let bad = p.clone().set("weights", "1,0");
        let mut n = 0;
        assert!(train_components_first(MODEL, &bad, |_, _| {
            n += 1;
            Ok(())
        })
        .is_err());
        assert_eq!(n, 0);
        // Any other model's parameters pass through.
        let als = Params::new().set("factors", 8);
        assert_eq!(
            train_components_first("als", &als, |_, _| unreachable!()).unwrap(),
            als
        );
    }
}
