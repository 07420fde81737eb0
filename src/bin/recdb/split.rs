//! Shell line splitting: words with quotes and escapes, commands on `;`. Pure and
//! dependency-light so `fuzz/fuzz_targets/shell_split.rs` can include it by path.

use anyhow::{bail, Result};

/// Split a line into words: whitespace separates, '…' and "…" quote, backslash escapes.
pub fn split_words(line: &str) -> Result<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') => cur.extend(chars.next()),
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, '\\') => {
                cur.extend(chars.next());
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        bail!("unclosed quote");
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// Split `cmd; cmd` on semicolons outside quotes.
pub fn split_commands(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut escape = false;
    for c in s.chars() {
        if escape {
            cur.push(c);
            escape = false;
            continue;
        }
        match (quote, c) {
            (_, '\\') if quote != Some('\'') => {
                escape = true;
                cur.push(c);
            }
            (Some(q), c) if c == q => {
                quote = None;
                cur.push(c);
            }
            (None, '\'' | '"') => {
                quote = Some(c);
                cur.push(c);
            }
            (None, ';') => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter()
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_commands() {
        assert_eq!(
            split_words(r#"similar "a b" -k 3 'c d' e\ f"#).unwrap(),
            vec!["similar", "a b", "-k", "3", "c d", "e f"]
        );
        assert_eq!(
            split_commands(r#"stats; similar "a;b" ; ;tables"#),
            vec!["stats", r#"similar "a;b""#, "tables"]
        );
        assert!(split_words("x 'y").is_err());
    }
}
