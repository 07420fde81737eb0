//! Carrying an index over to the next version of its table (a compaction folds the
//! delta into a new version): rows whose values did not change keep their lists (two
//! for a spilled row) and their codes, and the others are placed in one list by the
//! build's rule and encoded with the build's levels (they are not spilled: that needs
//! the whole table's losses; the rebuild after a tenth of the rows are placed does it).
//! No k-means and no tuning, so the new version is served by an index from its first
//! query, for the cost of one pass over the codes. The centroids age as rows are
//! placed; `placed` counts them so that the index policy rebuilds in time.

use super::super::fastscan;
use super::*;

impl IvfIndex {
    /// The index of a new version of the table with rows `rows` (row-major, `dim`
    /// wide), in which old row `r` is new row `kept(r)`, with the same values, when that
    /// is `Some`. Every new row no old row is kept as is placed and encoded. `None` for a
    /// dot index when a new row is longer than φ: the MIPS transform of the build does
    /// not cover it, and only a fresh build does.
    // why: row numbers are below the table's row count, a u32 in the stored format
    // (proven once by the table, not per row).
    #[allow(clippy::cast_possible_truncation)]
    pub fn carry_over(&self, rows: &[f32], kept: &dyn Fn(u32) -> Option<u32>) -> Option<IvfIndex> {
        let started = std::time::Instant::now();
        let dim = self.dim;
        let n = rows.len() / dim.max(1);
        let row = |r: usize| &rows[r * dim..(r + 1) * dim];
        let cols = self.sq.cols();
        let bb = fastscan::block_bytes(cols);
        // Entries per new row so far: a kept row keeps both of its entries if it was
        // spilled, and no row gets more than two (were `kept` not one-to-one).
        let mut entries = vec![0u8; n];
        // Per list: its new rows and their codes (row-major, one code per byte).
        let mut lists: Vec<(Vec<u32>, Vec<u8>)> = vec![Default::default(); self.lists];
        for (l, (ids, codes)) in lists.iter_mut().enumerate() {
            let (lo, hi) = (self.offsets[l] as usize, self.offsets[l + 1] as usize);
            let (b0, b1) = (self.blocks[l] as usize, self.blocks[l + 1] as usize);
            let old = fastscan::unpack(&self.codes[b0 * bb..b1 * bb], cols, hi - lo);
            for (i, &r) in self.ids[lo..hi].iter().enumerate() {
                let Some(new) = kept(r).filter(|&x| (x as usize) < n) else {
                    continue;
                };
                let e = &mut entries[new as usize];
                if *e < 2 && ids.last() != Some(&new) {
                    *e += 1;
                    ids.push(new);
                    codes.extend_from_slice(&old[i * cols..(i + 1) * cols]);
                }
            }
        }
        let mut rows = entries.iter().filter(|&&e| e > 0).count();
        let mut placed = 0;
        let mut resid = vec![0f32; dim];
        for r in (0..n).filter(|&r| entries[r] == 0) {
            let v = row(r);
            // Kept rows are under φ already; only a placed one can be longer.
            let norm = dot(v, v).sqrt();
            if self.metric == Metric::Dot && norm > self.phi * (1.0 + 1e-5) {
                return None;
            }
            // A zero row of a cosine index stays out, as in the build.
            let Some(l) = self.place(v) else { continue };
            let scale = match self.metric {
                Metric::Cosine => 1.0 / norm,
                Metric::Dot => 1.0,
            };
            let c = &self.centroids[l as usize * dim..][..dim];
            for ((e, x), c) in resid.iter_mut().zip(v).zip(c) {
                *e = x * scale - c;
            }
            let (ids, codes) = &mut lists[l as usize];
            ids.push(r as u32);
            self.sq.encode(&resid, codes);
            placed += 1;
            rows += 1;
        }
        let mut offsets = Vec::with_capacity(self.lists + 1);
        offsets.push(0u32);
        let (mut ids, mut c4) = (Vec::new(), Vec::new());
        for (li, lc) in lists {
            ids.extend(li);
            c4.extend(lc);
            offsets.push(ids.len() as u32);
        }
        let codes = fastscan::pack_lists(&c4, cols, &offsets);
        Some(IvfIndex {
            metric: self.metric,
            dim,
            lists: self.lists,
            nprobe: self.nprobe,
            rerank: self.rerank,
            phi: self.phi,
            seed: self.seed,
            target_recall: self.target_recall,
            recall: self.recall,
            build_seconds: started.elapsed().as_secs_f64(),
            placed: self.placed + placed,
            table_rows: n,
            rows,
            centroids: self.centroids.clone(),
            half: self.half.clone(),
            sq: self.sq.clone(),
            blocks: fastscan::list_blocks(&offsets),
            axis: self.axis.clone(),
            offsets,
            ids,
            codes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::NoHooks;
    use crate::testkit::clustered_vectors;
    use crate::{Db, RowSpace};

    const N: usize = 20_000;
    const DIM: usize = 32;

    /// Row `r`'s code in dimension `d` and its list, from the stored layout.
    fn code_of(ix: &IvfIndex, at: usize, d: usize) -> u8 {
        let l = ix.offsets.partition_point(|&o| o as usize <= at) - 1;
        let i = at - ix.offsets[l] as usize;
        let bb = fastscan::block_bytes(ix.sq.cols());
        let block0 = ix.blocks[l] as usize * bb;
        fastscan::code_at(&ix.codes[block0..], ix.sq.cols(), i, d)
    }

    /// Where each (row, list) entry is.
    fn position_of(ix: &IvfIndex) -> std::collections::HashMap<(u32, u32), usize> {
        (0..ix.lists)
            .flat_map(|l| (ix.offsets[l]..ix.offsets[l + 1]).map(move |p| (l as u32, p as usize)))
            .map(|(l, p)| ((ix.ids[p], l), p))
            .collect()
    }

    /// A compaction's new rows: every 11th old row deleted (the rows after it move up),
    /// every 7th other one replaced, 500 appended.
    fn next_version(old: &[f32], fresh: &[f32]) -> (Vec<f32>, Vec<u32>, usize) {
        let (mut rows, mut kept, mut changed) = (Vec::new(), vec![u32::MAX; N], 0);
        let mut f = fresh.chunks_exact(DIM);
        for (r, v) in old.chunks_exact(DIM).enumerate() {
            if r % 11 == 0 {
                continue;
            }
            if r % 7 == 0 {
                rows.extend_from_slice(f.next().unwrap());
                changed += 1;
            } else {
                kept[r] = (rows.len() / DIM) as u32;
                rows.extend_from_slice(v);
            }
        }
        for _ in 0..500 {
            rows.extend_from_slice(f.next().unwrap());
            changed += 1;
        }
        (rows, kept, changed)
    }

    #[test]
    fn unchanged_rows_keep_list_and_codes_and_the_rest_are_placed() {
        for (metric, bits) in [(Metric::Cosine, 4), (Metric::Dot, 4), (Metric::Cosine, 8)] {
            let db = Db::temporary().unwrap();
            // Old rows, the fresh rows of the next version and the queries share one
            // distribution.
            let mut old = clustered_vectors(N + 4100, DIM, 5);
            let queries = old.split_off((N + 4000) * DIM);
            let mut fresh = old.split_off(N * DIM);
            if metric == Metric::Dot {
                fresh.iter_mut().for_each(|x| *x *= 0.5);
                // Norms 0.5-1 (the new rows stay under φ).
                for (i, row) in old.chunks_exact_mut(DIM).enumerate() {
                    row.iter_mut()
                        .for_each(|x| *x *= 0.5 + (i % 100) as f32 / 200.0);
                }
            }
            db.put_table("t", RowSpace::Other, DIM, &old, vec![])
                .unwrap();
            let view = db.table("t").unwrap();
            let mut ix = IvfIndex::build(
                &view,
                metric,
                None,
                bits,
                crate::index::spill::SPILL,
                3,
                &NoHooks,
            )
            .unwrap();
            ix.tune(&view, 0.95, None, &NoHooks).unwrap();
            assert_eq!((ix.bits(), ix.sq.cols()), (bits, DIM * bits as usize / 4));
            let (rows, kept, changed) = next_version(&old, &fresh);
            let new = ix
                .carry_over(&rows, &|r| {
                    Some(kept[r as usize]).filter(|&x| x != u32::MAX)
                })
                .unwrap();
            let n = rows.len() / DIM;
            assert_eq!(
                (new.len(), new.table_rows, new.placed),
                (n, n, changed),
                "{metric:?}"
            );
            assert_eq!(
                (new.nprobe, new.lists, &new.centroids),
                (ix.nprobe, ix.lists, &ix.centroids)
            );
            let (was, now) = (ix.lists_of_rows(), new.lists_of_rows());
            let (pos_old, pos_new) = (position_of(&ix), position_of(&new));
            let mut spilled = 0;
            for (r, &k) in kept.iter().enumerate().filter(|(_, &k)| k != u32::MAX) {
                let lists = &was[&(r as u32)];
                assert_eq!(&now[&k], lists, "{metric:?}: kept row {r} moved");
                spilled += lists.len() - 1;
                for &l in lists {
                    for d in 0..new.sq.cols() {
                        assert_eq!(
                            code_of(&new, pos_new[&(k, l)], d),
                            code_of(&ix, pos_old[&(r as u32, l)], d),
                            "{metric:?}: row {r} list {l} dim {d}"
                        );
                    }
                }
            }
            // Kept rows keep their second entries; placed rows get one.
            assert!(spilled > 0);
            assert_eq!(new.spilled(), spilled, "{metric:?}");
            let placed_rows: Vec<u32> = (0..n as u32).filter(|r| !kept.contains(r)).collect();
            assert_eq!(placed_rows.len(), changed);
            for &r in &placed_rows {
                let v = &rows[r as usize * DIM..][..DIM];
                assert_eq!(now[&r], vec![new.place(v).unwrap()], "{metric:?}: row {r}");
            }
            // Served on the new rows, it answers like exact search (fresh queries).
            db.put_table("t2", RowSpace::Other, DIM, &rows, vec![])
                .unwrap();
            let view2 = db.table("t2").unwrap();
            assert!(new.serves(&view2, metric));
            let (mut hit, mut all) = (0, 0);
            for q in queries.chunks_exact(DIM) {
                let truth: Vec<u32> = crate::index::ExactSearch
                    .search(&view2, q, metric, 10, &|_| true)
                    .iter()
                    .map(|h| h.0)
                    .collect();
                let got = new.search_with(&view2, q, 10, &|_| true, new.nprobe);
                hit += got.iter().filter(|h| truth.contains(&h.0)).count();
                all += truth.len();
            }
            let recall = hit as f64 / all as f64;
            eprintln!("{metric:?}: recall {recall}");
            assert!(recall >= 0.9, "{metric:?}: recall {recall}");
        }
    }

    #[test]
    fn a_dot_row_longer_than_phi_needs_a_fresh_build_and_zero_cosine_rows_stay_out() {
        let db = Db::temporary().unwrap();
        let old = clustered_vectors(3000, DIM, 6);
        db.put_table("t", RowSpace::Other, DIM, &old, vec![])
            .unwrap();
        let view = db.table("t").unwrap();
        let keep_all = |r: u32| Some(r);
        let dot = IvfIndex::build(
            &view,
            Metric::Dot,
            None,
            4,
            crate::index::spill::SPILL,
            3,
            &NoHooks,
        )
        .unwrap();
        let mut rows = old.clone();
        rows.extend(old[..DIM].iter().map(|x| x * 1.5));
        assert!(dot.carry_over(&rows, &keep_all).is_none());
        rows.truncate(old.len());
        rows.extend(old[..DIM].iter().map(|x| x * 0.5));
        assert_eq!(dot.carry_over(&rows, &keep_all).unwrap().len(), 3001);
        // A deleted row of a users/items table is a zero row: a cosine index leaves it out.
        let cos = IvfIndex::build(
            &view,
            Metric::Cosine,
            None,
            8,
            crate::index::spill::SPILL,
            3,
            &NoHooks,
        )
        .unwrap();
        rows[..DIM].fill(0.0);
        let c = cos.carry_over(&rows, &|r| (r != 0).then_some(r)).unwrap();
        assert_eq!((c.len(), c.placed), (3000, 1));
        assert!(!c.lists_of_rows().contains_key(&0));
    }
}
