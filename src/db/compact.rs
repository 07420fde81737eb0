//! Compaction: fold a version's delta into a new version, as a `compact` job on the one
//! runner. Rows written meanwhile are carried over into the new version's delta, and
//! the version's index is carried over (unchanged rows keep their list and codes,
//! changed ones are placed); the index policy rebuilds it once a tenth of the rows were
//! placed.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use super::Db;
use crate::index::delta::{self as store, DeltaOp, StoredDelta};
use crate::index::replay::Delta;
use crate::jobs::record::JobRecord;
use crate::jobs::runner::{self, JobSlot, RunSpec};
use crate::jobs::{JobContext, JobControl, JobHandle, JobInfo, JobState, TableOutput};
use crate::storage::tables::{RowSpace, TableView};
use crate::{Error, Result};

impl Db {
    pub(super) fn compaction_running(&self, table: &str) -> bool {
        let params = serde_json::json!({ "table": table });
        self.jobs().is_ok_and(|js| {
            js.iter()
                .any(|j| j.model == "compact" && j.state == JobState::Running && j.params == params)
        })
    }

    /// Fold the delta of `table` into a new version (one publish; rows written
    /// meanwhile are carried over into the new version's delta). The index policy then
    /// rebuilds the index of the new version. Durable on return.
    pub fn compact(&self, table: &str, opts: &CompactOptions) -> Result<JobInfo> {
        let (rec, _slot) = self.start_compact(table)?;
        self.run_compact(table, opts, runner::cancel_flag(&opts.control), rec)
    }

    /// [`Db::compact`] on a background thread.
    pub fn spawn_compact(&self, table: &str, opts: &CompactOptions) -> Result<JobHandle> {
        let (rec, slot) = self.start_compact(table)?;
        let id = rec.id;
        let cancel = runner::cancel_flag(&opts.control);
        let (db, t, o, c) = (self.clone(), table.to_owned(), opts.clone(), cancel.clone());
        self.runner().spawn(id, cancel, move || {
            let _slot = slot;
            db.run_compact(&t, &o, c, rec)
        })
    }

    fn start_compact(&self, table: &str) -> Result<(JobRecord, JobSlot)> {
        let slot = self.job_slot()?;
        let params = serde_json::json!({ "table": table }).to_string();
        Ok((self.start_record(&slot, "compact", params, 0)?, slot))
    }

    /// Reads the table's current version and its delta; produces the new version, its
    /// delta carried over, and its index carried over.
    fn run_compact(
        &self,
        table: &str,
        opts: &CompactOptions,
        cancel: Arc<AtomicBool>,
        rec: JobRecord,
    ) -> Result<JobInfo> {
        let spec = RunSpec {
            seed: 0,
            pool: None,
            memory_limit: None,
            progress: opts.control.progress.as_deref(),
            cancel,
            activity: format!("compact {table}"),
        };
        let work = |_: &JobContext<'_>| -> Result<Compacted> {
            let view = self.table(table)?;
            let Some(delta) = self.delta_of(&view)? else {
                return Err(Error::InvalidInput(format!(
                    "table `{table}` has no rows written since its last version"
                )));
            };
            let (out, tombstones, kept) = materialize(self, &view, &delta);
            // The version's index carried over (outside the write lock: one pass over
            // the codes, and a placement per changed row).
            let index = self.index_of(&view)?.and_then(|ix| {
                ix.carry_over(&out.rows, &|r| {
                    kept.get(r as usize).copied().filter(|&x| x != u32::MAX)
                })
            });
            Ok(Compacted {
                view,
                delta,
                out,
                tombstones,
                index,
            })
        };
        let publish = |c: Compacted, rec: &mut JobRecord| self.publish_compacted(table, c, rec);
        self.runner()
            .run(rec, spec, work, publish)
            .map(|(_, info)| info)
    }

    /// Publish a compaction's version, with the operations written since its snapshot
    /// and its carried-over index in the same batch.
    // why: the compacted table has no more rows than the served one, whose row count is a u32.
    #[allow(clippy::cast_possible_truncation)]
    fn publish_compacted(&self, table: &str, c: Compacted, rec: &mut JobRecord) -> Result<()> {
        let Compacted {
            view,
            delta,
            out,
            tombstones,
            index: carried_index,
        } = c;
        let mut published_as = None;
        let upto = delta.next_seq();
        let new_ids: HashMap<String, u32> = out
            .row_ids
            .iter()
            .enumerate()
            .map(|(r, s)| (s.clone(), r as u32))
            .collect();
        let space = view.space();
        let mut n_rows = (out.rows.len() / out.dim) as u32;
        rec.message = format!("published; folded {} delta operations", delta.ops());
        if let Some(ix) = &carried_index {
            rec.message += &format!(
                "; index carried over ({} of {} rows placed since k-means)",
                ix.placed,
                ix.len()
            );
        }
        let (name, old) = (table.to_owned(), view.version());
        self.publish_with(
            std::slice::from_ref(&out),
            rec,
            &mut |b, versions, batch| {
                // Under the write lock: operations written after the snapshot move to the
                // new version, re-resolved by id.
                let Some(&(_, version)) = versions.first() else {
                    return Ok(());
                };
                let cur = store::load(b, &name, old)?
                    .map(|(d, _)| d)
                    .unwrap_or_default();
                let mut carried = StoredDelta {
                    next_seq: 0,
                    tombstones: tombstones.clone(),
                    ops: Vec::new(),
                };
                let mut appended: HashMap<String, u32> = HashMap::new();
                for op in cur.ops.into_iter().filter(|o| o.seq >= upto) {
                    let row = match space {
                        RowSpace::Other => match new_ids.get(&op.id).or(appended.get(&op.id)) {
                            Some(&r) => r,
                            None if op.values.is_empty() => continue,
                            None => {
                                n_rows += 1;
                                appended.insert(op.id.clone(), n_rows - 1);
                                n_rows - 1
                            }
                        },
                        _ => op.row,
                    };
                    carried.ops.push(DeltaOp {
                        seq: carried.next_seq,
                        row,
                        ..op
                    });
                    carried.next_seq += 1;
                }
                if !carried.ops.is_empty() || !carried.tombstones.is_empty() {
                    store::put(batch, &name, version, 0, &carried);
                }
                if let Some(ix) = &carried_index {
                    let (h, ids, codes) = ix.to_stored();
                    crate::index::stored::stage(batch, &name, version, &h, ids, codes);
                    published_as = Some(version);
                }
                Ok(())
            },
        )?;
        if let (Some(ix), Some(version)) = (carried_index, published_as) {
            let view = self.table(table)?;
            if view.version() == version {
                self.install_index_if_absent(&view, Arc::new(ix));
            }
        }
        Ok(())
    }
}

/// Options of a compaction ([`Db::compact`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CompactOptions {
    /// Progress sink and cancel flag.
    pub control: JobControl,
}

/// What a compaction produced, before publish.
struct Compacted {
    view: Arc<TableView>,
    delta: Arc<Delta>,
    out: TableOutput,
    tombstones: Vec<u32>,
    index: Option<crate::index::IvfIndex>,
}

/// The rows a version serves, as a new table: `other` tables drop deleted rows; users
/// and items tables keep every position (a row is its dense id), deleted rows become
/// zeros listed in the returned tombstones. The third part maps each base row to its
/// new row when its values are unchanged (`u32::MAX` when deleted or replaced).
// why: r < n, the logical row count of a delta, which numbers rows with u32.
#[allow(clippy::cast_possible_truncation)]
fn materialize(db: &Db, view: &TableView, d: &Delta) -> (TableOutput, Vec<u32>, Vec<u32>) {
    let dim = view.dim();
    let n = d.logical_rows();
    let mut rows = Vec::with_capacity(n * dim);
    let mut ids = Vec::new();
    let mut tombstones = Vec::new();
    let mut kept = vec![u32::MAX; view.rows()];
    let other = view.space() == RowSpace::Other;
    for r in 0..n {
        if let Some(k) = kept.get_mut(r) {
            if d.row(r as u32).is_none() && !d.hides(r as u32) {
                *k = (rows.len() / dim) as u32;
            }
        }
        let v: Option<Vec<f32>> = d
            .row(r as u32)
            .map(<[f32]>::to_vec)
            .or_else(|| (r < view.rows() && !d.hides(r as u32)).then(|| view.row(r).to_vec()));
        match v {
            Some(v) => {
                rows.extend_from_slice(&v);
                if other {
                    ids.push(
                        d.appended_id(r as u32)
                            .map(str::to_owned)
                            .unwrap_or_else(|| db.row_id(view, r)),
                    );
                }
            }
            None if other => {}
            None => {
                rows.extend(std::iter::repeat_n(0.0, dim));
                tombstones.push(r as u32);
            }
        }
    }
    let out = TableOutput {
        name: view.name().to_owned(),
        space: view.space(),
        dim,
        rows,
        offset: view.offset(),
        row_ids: ids,
    };
    (out, tombstones, kept)
}
