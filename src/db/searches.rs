//! Reading the search log: a user's searches with their text, and the dense form the
//! queries and jobs read.

use super::Db;
use crate::{Error, Result};

/// One search of a user, its text rebuilt from the stored tokens (lowercased words,
/// joined by single spaces: what the tokenizer kept of the query).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SearchEntry {
    pub text: String,
    pub timestamp: i64,
}

impl Db {
    /// A user's searches in (timestamp, arrival) order. A user who only searched exists.
    pub fn searches(&self, user: &str) -> Result<Vec<SearchEntry>> {
        let st = self.state()?;
        let b = self.backend();
        let uid = st
            .users
            .get(b, user)?
            .ok_or_else(|| Error::UnknownUser(user.to_owned()))?;
        st.searches
            .history(b, uid)?
            .into_iter()
            .map(|s| {
                let words = s
                    .tokens
                    .iter()
                    .map(|&t| {
                        st.tokens.name(b, t)?.ok_or_else(|| {
                            Error::corrupted(format!(
                                "search {} (token {t} of {})",
                                s.seq,
                                st.tokens.len()
                            ))
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(SearchEntry {
                    text: words.join(" "),
                    timestamp: s.timestamp,
                })
            })
            .collect()
    }

    /// Searches logged.
    pub fn search_count(&self) -> Result<u64> {
        Ok(self.state()?.search.searches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EventKind;

    /// Searches and events share sequence numbers in push order, so a job's watermark
    /// (the header's count when it starts) splits both logs at the same commit.
    #[test]
    fn searches_share_the_watermark_and_only_searchers_exist() {
        let db = Db::temporary().unwrap();
        let mut b = db.batch();
        b.push("alice", "i1", EventKind::View, 1.0, 10).unwrap();
        b.push_search("alice", "Space Opera!", 5).unwrap();
        b.push_search("carol", "jazz", 7).unwrap();
        b.push("bob", "i2", EventKind::View, 1.0, 11).unwrap();
        let r = b.commit().unwrap();
        assert_eq!(
            (r.events, r.searches, r.total_events, r.new_users),
            (2, 2, 4, 3)
        );
        let watermark = db.state().unwrap().meta.events;
        let mut b = db.batch();
        b.push_search("alice", "opera house", 20).unwrap();
        b.commit().unwrap();
        let st = db.state().unwrap();
        let seqs: Vec<u64> = st
            .searches
            .snapshot(db.backend(), u64::MAX)
            .unwrap()
            .iter()
            .map(|s| s.seq)
            .collect();
        assert_eq!(seqs, vec![1, 4, 2]); // alice (5, 20), then carol
        let before = st.searches.snapshot(db.backend(), watermark).unwrap();
        assert_eq!(before.len(), 2);
        assert_eq!(st.log.snapshot(db.backend(), watermark).unwrap().len(), 2);
        assert_eq!(st.tokens.len(), 4); // space opera jazz house
        drop(st);
        let alice: Vec<String> = db
            .searches("alice")
            .unwrap()
            .into_iter()
            .map(|s| s.text)
            .collect();
        assert_eq!(alice, vec!["space opera", "opera house"]);
        assert_eq!(db.searches("carol").unwrap()[0].timestamp, 7);
        assert!(db.history("carol").unwrap().is_empty());
        let uid = db.user_id("alice").unwrap();
        let dense = crate::query::Source::searches_dense(&db, uid).unwrap();
        assert_eq!(dense[1].tokens, vec![1, 3]);
        let stats = db.stats().unwrap();
        assert_eq!(
            (stats.events, stats.searches, stats.search_tokens),
            (2, 3, 4)
        );
        let check = db.check().unwrap();
        assert_eq!((check.events, check.searches), (2, 3));
        // No word, or only a search: errors name the push.
        let mut b = db.batch();
        let err = b.push_search("dave", "?! 1 a", 1).unwrap_err().to_string();
        assert!(err.contains("no word"), "{err}");
        assert!(b.push_search("", "jazz", 1).is_err());
        assert!(b.push_search("dave", &"ab ".repeat(2000), 1).is_err());
    }
}
