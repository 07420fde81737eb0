//! A table as queries see it, for what writes it out (`dump`, `export table`): its
//! current version with the rows put or deleted since that version was published, so
//! a copy holds every acknowledged write.

use super::index::Served;
use super::Db;
use crate::storage::tables::{Row, RowSpace};
use crate::Result;

/// A served row, borrowed: from the delta (rows put since publish) or the stored block.
#[derive(Clone, Copy)]
pub(crate) enum ServedRow<'a> {
    Delta(&'a [f32]),
    Stored(Row<'a>),
}

impl Served {
    /// [`Served::row`] without copying: `None` when deleted or never written.
    pub(crate) fn row_ref(&self, r: usize) -> Option<ServedRow<'_>> {
        if let Some(d) = &self.delta {
            // A position past u32 is in no delta (rows are numbered with u32).
            let r32 = u32::try_from(r).ok()?;
            if let Some(v) = d.row(r32) {
                return Some(ServedRow::Delta(v));
            }
            if d.hides(r32) {
                return None;
            }
        }
        (r < self.view.rows()).then(|| ServedRow::Stored(self.view.row(r)))
    }

    /// Row `r` is served (not deleted, and not a position never written).
    pub(crate) fn is_live(&self, r: usize) -> bool {
        match &self.delta {
            Some(d) => u32::try_from(r).is_ok_and(|r| d.live(r)),
            None => r < self.view.rows(),
        }
    }

    /// Rows that are served (what an `other` table keeps when written out).
    pub(crate) fn live_rows(&self) -> usize {
        (0..self.rows()).filter(|&r| self.is_live(r)).count()
    }

    /// Rows of users and items tables are dense ids, so a deleted one keeps its place.
    pub(crate) fn keeps_positions(&self) -> bool {
        self.view.space() != RowSpace::Other
    }
}

impl Db {
    /// Table `name` as queries see it, without its index (which writing out never
    /// reads).
    pub(crate) fn served_rows(&self, name: &str) -> Result<Served> {
        let view = self.table(name)?;
        let delta = self.delta_of(&view)?;
        Ok(Served {
            view,
            index: None,
            delta,
            tail: None,
        })
    }

    /// The external id of row `r` of `s` (rows appended since publish included).
    pub(crate) fn served_row_id(&self, s: &Served, r: usize) -> String {
        let appended = s
            .delta
            .as_ref()
            .zip(u32::try_from(r).ok())
            .and_then(|(d, r)| d.appended_id(r));
        match appended {
            Some(id) => id.to_owned(),
            None => self.row_id(&s.view, r),
        }
    }
}
