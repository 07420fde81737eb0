//! The search log's stored formats: a run of searches (columnar, tokens packed in one
//! column with end offsets) and the search header (counts kept beside the database
//! header, which stays as it was so existing databases open unchanged).

use rkyv::{Archive, Deserialize, Serialize};

use super::record::Record;
use crate::event::SearchEvent;
use crate::storage::backend::{Backend, WriteBatch};
use crate::storage::codec::{self, Tag};
use crate::storage::keys;
use crate::{Error, Result};

/// Searches of one bucket, column by column, sorted by (user, timestamp, seq). Search
/// `i` has tokens `tokens[ends[i-1]..ends[i]]` (`ends[-1]` = 0). Cost per search: 24
/// bytes of columns plus 4 per token, before the backend's own overhead.
#[derive(Archive, Serialize, Deserialize, Debug, Default, Clone, PartialEq)]
pub(crate) struct SearchSegment {
    pub users: Vec<u32>,
    pub timestamps: Vec<i64>,
    pub seqs: Vec<u64>,
    pub ends: Vec<u32>,
    pub tokens: Vec<u32>,
}

impl Record for SearchEvent {
    const SEGMENT: u8 = b'Q';
    const MANIFEST: u8 = b'q';
    const WHAT: &'static str = "search segment";
    fn user(&self) -> u32 {
        self.user
    }
    fn order(&self) -> (u32, i64, u64) {
        (self.user, self.timestamp, self.seq)
    }
    // why: a run's tokens are bounded by a commit's memory; a u32 offset overflow would need 16 GiB of token ids in one bucket.
    #[allow(clippy::cast_possible_truncation)]
    fn encode_run(sorted: &[Self]) -> Vec<u8> {
        let mut seg = SearchSegment {
            users: sorted.iter().map(|s| s.user).collect(),
            timestamps: sorted.iter().map(|s| s.timestamp).collect(),
            seqs: sorted.iter().map(|s| s.seq).collect(),
            ends: Vec::with_capacity(sorted.len()),
            tokens: Vec::with_capacity(sorted.iter().map(|s| s.tokens.len()).sum()),
        };
        for s in sorted {
            seg.tokens.extend_from_slice(&s.tokens);
            seg.ends.push(seg.tokens.len() as u32);
        }
        codec::encode(Tag::SearchSegment, &seg)
    }
    fn decode_run(
        v: &[u8],
        checked: bool,
        lo: u32,
        hi: u32,
        watermark: u64,
        what: &dyn Fn() -> String,
        out: &mut Vec<Self>,
    ) -> Result<()> {
        let seg: &ArchivedSearchSegment =
            codec::access_maybe_checked(Tag::SearchSegment, v, checked, what)?;
        let lens = [seg.timestamps.len(), seg.seqs.len(), seg.ends.len()];
        let rows = super::record::user_rows(seg.users.as_slice(), &lens, lo, hi, what)?;
        for i in rows {
            let from = if i == 0 {
                0
            } else {
                seg.ends[i - 1].to_native() as usize
            };
            let to = seg.ends[i].to_native() as usize;
            let Some(tokens) = seg.tokens.get(from..to).filter(|t| !t.is_empty()) else {
                return Err(Error::corrupted(format!(
                    "{} (token offsets {from}..{to} of {})",
                    what(),
                    seg.tokens.len()
                )));
            };
            let seq = seg.seqs[i].to_native();
            if seq >= watermark {
                continue;
            }
            out.push(SearchEvent {
                user: seg.users[i].to_native(),
                tokens: tokens.iter().map(|t| t.to_native()).collect(),
                timestamp: seg.timestamps[i].to_native(),
                seq,
            });
        }
        Ok(())
    }
}

/// Counts of the search log, written with every commit that logs searches.
#[derive(Archive, Serialize, Deserialize, Debug, Default, Clone, PartialEq)]
pub(crate) struct SearchHeader {
    /// Searches logged (each took one sequence number of the database header's).
    pub searches: u64,
    /// Tokens in the search vocabulary.
    pub tokens: u32,
}

impl SearchHeader {
    pub fn load(b: &dyn Backend) -> Result<SearchHeader> {
        match b.get(keys::SEARCH_HEADER)? {
            None => Ok(SearchHeader::default()),
            Some(v) => codec::decode(Tag::SearchHeader, &v, &|| "search header".into()),
        }
    }

    pub fn put(&self, batch: &mut WriteBatch) {
        batch.put(
            keys::SEARCH_HEADER.to_vec(),
            codec::encode(Tag::SearchHeader, self),
        );
    }
}
