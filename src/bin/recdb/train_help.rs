//! The model list of `train --help`: every model with the parameters it trains with by
//! default, read from the library so it cannot drift from what a job does.

use std::sync::OnceLock;

use crate::output::{scalar, short_floats};

/// `MODEL  key=value ...` a line, for every model of [`recdb::MODELS`].
pub fn models_text() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        let mut s = String::from(
            "Models and their defaults (set any with --param KEY=VALUE, or its option):\n",
        );
        let w = recdb::MODELS.iter().map(|m| m.len()).max().unwrap_or(0);
        for m in recdb::MODELS {
            s.push_str(&format!("  {m:<w$}  {}\n", defaults(m)));
        }
        s.push_str("  mf        sgd, als or bpr by --kind (default als)\n");
        s
    })
}

/// A model's defaults as `key=value` words.
fn defaults(model: &str) -> String {
    // A blend has no defaults for its required component list.
    if model == "blend" {
        return "models=M1,M2[,..] (trained models, required) weights=1,1 norm=z".into();
    }
    let json = recdb::model_defaults(model)
        .ok()
        .and_then(|j| serde_json::from_str::<serde_json::Value>(&j).ok());
    let pairs: Vec<String> = match json.map(short_floats) {
        Some(serde_json::Value::Object(m)) => m
            .iter()
            .map(|(k, v)| format!("{k}={}", scalar(v)))
            .collect(),
        _ => Vec::new(),
    };
    if pairs.is_empty() {
        "(no parameters)".into()
    } else {
        pairs.join(" ")
    }
}
