//! Text commands: `infer`, `similar-text`, `similar-word`.

use anyhow::Result;
use serde_json::{json, Value};

use recdb::Hit;

use crate::output::Output;
use crate::session::Session;

/// `infer TEXT`: the inferred vector, or with `-k` its nearest documents.
pub fn infer(s: &mut Session, text: &str, model: &str, k: Option<usize>) -> Result<()> {
    let db = s.db()?;
    let out = match k {
        None => {
            let v = db.infer(text, model)?;
            let shown: Vec<String> = v.iter().map(|x| format!("{x:.5}")).collect();
            Output::text(shown.join(" "), json!({"model": model, "vector": v}))
        }
        Some(k) => hits(&db.similar_text(text, model, k, false)?, "doc"),
    };
    s.print(&out);
    Ok(())
}

/// `similar-text TEXT`: nearest trained documents of the inferred vector.
pub fn similar_text(s: &mut Session, text: &str, model: &str, k: usize, exact: bool) -> Result<()> {
    let out = hits(&s.db()?.similar_text(text, model, k, exact)?, "doc");
    s.print(&out);
    Ok(())
}

/// `similar-word WORD`: nearest words by cosine of their vectors.
pub fn similar_word(s: &mut Session, word: &str, model: &str, k: usize) -> Result<()> {
    let out = hits(&s.db()?.similar_word(word, model, k)?, "word");
    s.print(&out);
    Ok(())
}

fn hits(hits: &[Hit], what: &str) -> Output {
    let rows = hits
        .iter()
        .enumerate()
        .map(|(i, h)| vec![(i + 1).to_string(), h.id.clone(), format!("{:.4}", h.score)])
        .collect();
    let js: Vec<Value> = hits
        .iter()
        .enumerate()
        .map(|(i, h)| json!({"rank": i + 1, "id": h.id, "score": h.score}))
        .collect();
    Output::table(&["rank", what, "score"], rows, Value::Array(js))
}
