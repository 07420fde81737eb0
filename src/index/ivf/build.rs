//! Building an IVF index: k-means over the rows, assignment and spill, 4-bit codes.

use super::super::kmeans;
use super::super::spill;
use super::super::sq4::Sq4;
use super::super::{fastscan, BuildHooks, Metric};
use super::{default_lists, mips_axis, IvfIndex, ASSIGN_END, KMEANS_END, RERANK, SPILL_END};
use crate::storage::tables::TableView;
use crate::{Error, Result};

/// Rows a `metric` index of `table` holds: every row for dot, the non-zero ones for
/// cosine (as [`IvfIndex::build`] counts them).
pub(crate) fn indexable_rows(table: &TableView, metric: Metric) -> usize {
    match metric {
        Metric::Dot => table.rows(),
        Metric::Cosine => (0..table.rows())
            .filter(|&r| table.row(r).norm() != 0.0)
            .count(),
    }
}

/// `lists` k-means lists over `rows` indexable rows: each list needs a row.
pub(crate) fn check_lists(lists: usize, rows: usize) -> Result<()> {
    if lists == 0 || lists > rows {
        return Err(Error::param(
            "lists",
            format!("{lists}: must be between 1 and the {rows} rows"),
        ));
    }
    Ok(())
}

impl IvfIndex {
    /// Build on the current pool. Zero rows are left out of a cosine index (they never
    /// match, as in exact search). Reports progress up to [`BUILT`]; `Err(Cancelled)`
    /// as soon as `hooks` says so (checked before each k-means iteration and phase).
    /// `bits` per dimension: 4 (one code) or 8 (two, see [`Sq4`]); `spill`: the fraction
    /// of rows also placed in a second list (see `index::spill`).
    // why: row numbers are below the table's row count, a u32 in the stored format
    // (proven once by the table, not per row).
    #[allow(clippy::cast_possible_truncation)]
    pub fn build(
        table: &TableView,
        metric: Metric,
        lists: Option<usize>,
        bits: u8,
        spill: f32,
        seed: u64,
        hooks: &dyn BuildHooks,
    ) -> Result<IvfIndex> {
        let stages = Sq4::stages_for(bits)?;
        let started = std::time::Instant::now();
        let (n, dim) = (table.rows(), table.dim());
        let norms: Vec<f32> = (0..n).map(|r| table.row(r).norm()).collect();
        let phi = match metric {
            Metric::Cosine => 1.0,
            Metric::Dot => norms.iter().fold(0f32, |m, &x| m.max(x)),
        };
        let width = if metric == Metric::Dot { dim + 1 } else { dim };
        let mut rows = Vec::new();
        let mut vecs = Vec::with_capacity(n * width);
        for (r, &nr) in norms.iter().enumerate() {
            let row = table.row(r);
            match metric {
                Metric::Cosine => {
                    if nr == 0.0 {
                        continue;
                    }
                    vecs.extend(row.iter().map(|x| x / nr));
                }
                Metric::Dot => {
                    vecs.extend(row.iter());
                    vecs.push((phi * phi - nr * nr).max(0.0).sqrt());
                }
            }
            rows.push(r as u32);
        }
        let m = rows.len();
        if m == 0 {
            return Err(Error::EmptyTable {
                table: table.name().to_owned(),
                what: "non-zero rows to index",
            });
        }
        let lists = lists.unwrap_or_else(|| default_lists(m));
        check_lists(lists, m)?;
        let sample = (lists * 32).max(20_000).min(m);
        const ITERS: usize = 10;
        let mut go = |i: usize| {
            hooks.report(
                KMEANS_END * i as f64 / ITERS as f64,
                &format!(
                    "k-means iteration {}/{ITERS}: {lists} lists, {sample} sampled rows",
                    i + 1
                ),
            );
            !hooks.cancelled()
        };
        let full = kmeans::train(&vecs, width, lists, ITERS, sample, seed, &mut go)
            .ok_or(Error::Cancelled)?;
        hooks.report(KMEANS_END, &format!("assigning {m} rows to {lists} lists"));
        let (labels, second) = if spill > 0.0 {
            // Each row's nearest centroids after its own are the candidates for its
            // second list, found in the same pass.
            let nearest = kmeans::assign_m(&vecs, width, &full, spill::NEAR);
            let labels: Vec<u32> = nearest.iter().step_by(spill::NEAR).copied().collect();
            hooks.check()?;
            hooks.report(
                ASSIGN_END,
                &format!(
                    "placing {:.0} % of the rows in a second list",
                    100.0 * spill
                ),
            );
            let second = spill::second_lists(&vecs, width, &full, &nearest, spill::NEAR, spill);
            (labels, second)
        } else {
            (kmeans::assign(&vecs, width, &full), vec![None; m])
        };
        hooks.check()?;
        hooks.report(SPILL_END, "encoding residuals");
        let half = kmeans::half_norms(&full, width);
        let centroids: Vec<f32> = full
            .chunks_exact(width)
            .flat_map(|c| c[..dim].iter().copied())
            .collect();
        // Each row's entries: its first list and, if spilled, its second.
        let entries = |i: usize| std::iter::once(labels[i]).chain(second[i]);
        // Counting sort by list; rows stay in ascending order inside a list.
        let mut offsets = vec![0u32; lists + 1];
        for i in 0..m {
            for l in entries(i) {
                offsets[l as usize + 1] += 1;
            }
        }
        for l in 0..lists {
            offsets[l + 1] += offsets[l];
        }
        let total = offsets[lists] as usize;
        let mut fill: Vec<usize> = offsets[..lists].iter().map(|&o| o as usize).collect();
        let mut ids = vec![0u32; total];
        let mut order = vec![0usize; total];
        for (i, &r) in rows.iter().enumerate() {
            for l in entries(i) {
                let p = &mut fill[l as usize];
                ids[*p] = r;
                order[*p] = i;
                *p += 1;
            }
        }
        // Codes quantise the residual to the list's centroid (first `dim` coordinates):
        // q·x = q·c + q·(x − c), the first term is known per list, and residuals span a
        // much smaller range than the rows, so 4 bits go further.
        let mut resid = Vec::with_capacity(total * dim);
        for l in 0..lists {
            let c = &centroids[l * dim..][..dim];
            for &i in &order[offsets[l] as usize..offsets[l + 1] as usize] {
                resid.extend(
                    vecs[i * width..i * width + dim]
                        .iter()
                        .zip(c)
                        .map(|(x, c)| x - c),
                );
            }
        }
        let sq = Sq4::train(&resid, dim, stages);
        let mut c4 = Vec::with_capacity(m * sq.cols());
        for r in resid.chunks_exact(dim) {
            sq.encode(r, &mut c4);
        }
        drop(resid);
        hooks.check()?;
        let codes = fastscan::pack_lists(&c4, sq.cols(), &offsets);
        let blocks = fastscan::list_blocks(&offsets);
        let axis = mips_axis(metric, &centroids, &half, dim);
        Ok(IvfIndex {
            metric,
            dim,
            lists,
            nprobe: lists,
            rerank: RERANK,
            phi,
            seed,
            target_recall: 1.0,
            recall: 1.0,
            build_seconds: started.elapsed().as_secs_f64(),
            placed: 0,
            table_rows: n,
            rows: m,
            centroids,
            half,
            sq,
            offsets,
            blocks,
            axis,
            ids,
            codes,
        })
    }
}
