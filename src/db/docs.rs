//! Tagged text documents: `import docs FILE` (`tag<TAB>text` a line, at most
//! [`crate::ingest::MAX_LINE`] bytes), and the texts
//! the word and paragraph-vector jobs read.

use std::collections::HashSet;
use std::path::Path;

use super::Db;
use crate::jobs::TextInput;
use crate::storage::backend::WriteBatch;
use crate::storage::{attrs, docs};
use crate::{Error, ImportReport, Result};

/// Longest tag accepted, in bytes (tags are sled keys).
const MAX_TAG: usize = 1024;

/// Parse `tag<TAB>text` lines. Every problem names `file` and the line; nothing is
/// returned unless the whole input is good.
// why: a document number read back from a u64 key the database wrote from a usize.
#[allow(clippy::cast_possible_truncation)]
pub(crate) fn parse_docs(bytes: &[u8], file: &str) -> Result<Vec<(String, String)>> {
    let bad = |line: usize, field: &str, msg: &str| Error::Parse {
        file: file.to_owned(),
        line: line as u64,
        field: field.to_owned(),
        msg: msg.to_owned(),
    };
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for l in crate::ingest::lines(file, bytes) {
        let (n, raw) = l?;
        let n = n as usize;
        if raw.is_empty() {
            continue;
        }
        let line = std::str::from_utf8(raw).map_err(|e| {
            bad(
                n,
                "(line)",
                &format!("invalid UTF-8 at byte {}", e.valid_up_to()),
            )
        })?;
        let (tag, text) = line
            .split_once('\t')
            .ok_or_else(|| bad(n, "tag", "no tab: expected `tag<TAB>text`"))?;
        if tag.trim().is_empty() {
            return Err(bad(n, "tag", "empty tag"));
        }
        if tag.len() > MAX_TAG {
            return Err(bad(n, "tag", "tag longer than 1024 bytes"));
        }
        if !seen.insert(tag) {
            return Err(bad(n, "tag", &format!("duplicate tag `{tag}` in the file")));
        }
        out.push((tag.to_owned(), text.to_owned()));
    }
    Ok(out)
}

impl Db {
    /// Import documents from `path`, one `tag<TAB>text` a line. The whole file is
    /// checked first; a bad line rejects the import and leaves the database as it was.
    /// Replaces documents with the same tags. Atomic and durable.
    pub fn import_docs(&self, path: &Path) -> Result<ImportReport> {
        let (file, bytes) = crate::ingest::read_file(path)?;
        let parsed = parse_docs(&bytes, &file)?;
        self.put_docs(&parsed)
    }

    /// Store documents as (tag, text), replacing those with the same tags. Atomic and
    /// durable. `new_ids` counts tags that were not stored before.
    pub fn put_docs(&self, docs_in: &[(String, String)]) -> Result<ImportReport> {
        if docs_in.is_empty() {
            return Err(Error::Empty("no documents".into()));
        }
        let mut seen = HashSet::new();
        for (i, (tag, _)) in docs_in.iter().enumerate() {
            if tag.trim().is_empty() || tag.len() > MAX_TAG {
                return Err(Error::InvalidInput(format!(
                    "document {i}: tag must be 1 to {MAX_TAG} bytes, not blank"
                )));
            }
            if !seen.insert(tag.as_str()) {
                return Err(Error::InvalidInput(format!(
                    "document {i}: duplicate tag `{tag}`"
                )));
            }
        }
        let _w = self.lock_write();
        let b = self.backend();
        let mut batch = WriteBatch::default();
        let mut new_ids = 0;
        for (tag, text) in docs_in {
            if !docs::exists(b, tag)? {
                new_ids += 1;
            }
            docs::put(&mut batch, tag, text);
        }
        b.apply(batch)?;
        b.flush()?;
        Ok(ImportReport {
            records: docs_in.len() as u64,
            new_ids,
        })
    }

    /// The text of document `tag`, if there is one.
    pub fn doc(&self, tag: &str) -> Result<Option<String>> {
        docs::get(self.backend(), tag)
    }

    /// Every document as (tag, text), in tag order.
    pub fn docs(&self) -> Result<Vec<(String, String)>> {
        docs::all(self.backend())
    }

    /// What a job of `input` reads besides the log: (tag, text) pairs. Items come in
    /// dense-id order (so rows line up with the items table), their text being title,
    /// genres and description.
    pub(crate) fn texts_for(&self, input: TextInput) -> Result<Vec<(String, String)>> {
        match input {
            TextInput::None => Ok(Vec::new()),
            TextInput::Docs => self.docs(),
            TextInput::ItemNames | TextInput::ItemTexts => {
                let names = self.item_ids()?;
                let mut texts = vec![String::new(); names.len()];
                if input == TextInput::ItemTexts {
                    for (item, a) in attrs::all_items(self.backend())? {
                        if let Some(slot) = texts.get_mut(item as usize) {
                            let mut parts: Vec<&str> = Vec::new();
                            parts.extend(a.title.as_deref());
                            parts.extend(a.genres.iter().map(String::as_str));
                            parts.extend(a.text.as_deref());
                            *slot = parts.join(" ");
                        }
                    }
                }
                Ok(names.into_iter().zip(texts).collect())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names_file_line_and_problem() {
        let ok = parse_docs(b"a\tone two\r\n\nb\t\n", "f.tsv").unwrap();
        assert_eq!(
            ok,
            vec![("a".into(), "one two".into()), ("b".into(), String::new())]
        );
        let long = format!("a\tx\nb\t{}\n", "\t".repeat(2 * crate::ingest::MAX_LINE));
        let cases: [(&[u8], u64, &str); 5] = [
            (long.as_bytes(), 2, "line longer than"),
            (b"a\tx\nno tab here\n", 2, "no tab"),
            (b"a\tx\n \ty\n", 2, "empty tag"),
            (b"a\tx\nb\ty\na\tz\n", 3, "duplicate tag `a`"),
            (b"a\tx\nb\t\xff\xfe\n", 2, "invalid UTF-8"),
        ];
        for (input, line, msg) in cases {
            match parse_docs(input, "f.tsv") {
                Err(Error::Parse {
                    file,
                    line: l,
                    msg: m,
                    ..
                }) => {
                    assert_eq!(file, "f.tsv");
                    assert_eq!(l, line, "{m}");
                    assert!(m.contains(msg), "{m}");
                }
                other => panic!("expected a parse error, got {other:?}"),
            }
        }
    }
}
