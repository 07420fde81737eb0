//! The baseline every report shows: most popular items.

use crate::jobs::memory;
use crate::jobs::JobContext;
use crate::jobs::TableOutput;
use crate::jobs::{Job, Snapshot};
use crate::storage::tables::RowSpace;
use crate::{Error, Params, Result};

/// Scores every item by its number of distinct users. Publishes `popular.items` (one
/// column: the count) and `popular.users` (one column of ones), so that `recommend`
/// ranks by popularity through the same dot product as every other model.
pub(crate) struct Popular;

impl Popular {
    pub fn from_params(p: &Params) -> Result<Self> {
        p.finish("popular")?;
        Ok(Popular)
    }
}

impl Job for Popular {
    fn model(&self) -> &str {
        "popular"
    }
    fn params_json(&self) -> String {
        "{}".into()
    }
    fn run(&self, snap: &Snapshot, ctx: &JobContext<'_>) -> Result<Vec<TableOutput>> {
        if snap.events.is_empty() {
            return Err(Error::NoEvents { what: "events" });
        }
        let mut counts = memory::filled(snap.n_items, 0f32, "items")?;
        let mut last: Option<(u32, u32)> = None;
        let mut seen = std::collections::HashSet::new();
        for e in &snap.events {
            if last.map(|(u, _)| u) != Some(e.user) {
                seen.clear();
            }
            if seen.insert(e.item) {
                counts[e.item as usize] += 1.0;
            }
            last = Some((e.user, e.item));
        }
        ctx.progress(1.0, "counted");
        Ok(vec![
            TableOutput {
                name: "popular.users".into(),
                space: RowSpace::Users,
                dim: 1,
                rows: memory::filled(snap.n_users, 1.0, "users")?,
                offset: 0.0,
                row_ids: vec![],
            },
            TableOutput {
                name: "popular.items".into(),
                space: RowSpace::Items,
                dim: 1,
                rows: counts,
                offset: 0.0,
                row_ids: vec![],
            },
        ])
    }
}
