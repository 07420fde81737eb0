//! An index to and from its stored form (`index::stored`).

use super::super::sq4::Sq4;
use super::super::{fastscan, Metric};
use super::{mips_axis, IvfIndex};
use crate::index::stored::{self as store, IndexHeader, INDEX_FORMAT};
use crate::{Error, Result};

impl IvfIndex {
    // why: every count is bounded by the table's row count or dimension, both u32
    // in the stored table this index was built from.
    #[allow(clippy::cast_possible_truncation)]
    pub fn to_stored(&self) -> (IndexHeader, &[u32], &[u8]) {
        let block_lists = store::plan_blocks(&self.offsets, self.dim);
        (
            IndexHeader {
                format: INDEX_FORMAT,
                metric: self.metric.stored_byte(),
                dim: self.dim as u32,
                table_rows: self.table_rows as u32,
                lists: self.lists as u32,
                nprobe: self.nprobe as u32,
                rerank: self.rerank as u32,
                phi: self.phi,
                seed: self.seed,
                target_recall: self.target_recall,
                recall: self.recall,
                build_seconds: self.build_seconds,
                centroids: self.centroids.clone(),
                half_norms: self.half.clone(),
                levels: self.sq.levels.clone(),
                offsets: self.offsets.clone(),
                block_lists,
                code_bytes: self.codes.len() as u64,
                placed: self.placed as u32,
            },
            &self.ids,
            &self.codes,
        )
    }

    /// From validated stored parts (see [`store::load`], which checks the levels too).
    pub fn from_stored(loaded: store::Loaded) -> Result<IvfIndex> {
        let store::Loaded {
            header: h,
            ids,
            codes,
            rows,
        } = loaded;
        let metric = Metric::from_stored_byte(h.metric);
        let sq = Sq4::from_levels(h.levels, h.dim as usize)
            .ok_or_else(|| Error::corrupted("index header (code levels)"))?;
        let axis = mips_axis(metric, &h.centroids, &h.half_norms, h.dim as usize);
        Ok(IvfIndex {
            metric,
            dim: h.dim as usize,
            lists: h.lists as usize,
            nprobe: h.nprobe as usize,
            rerank: (h.rerank as usize).max(1),
            phi: h.phi,
            seed: h.seed,
            target_recall: h.target_recall,
            recall: h.recall,
            build_seconds: h.build_seconds,
            placed: h.placed as usize,
            rows,
            table_rows: h.table_rows as usize,
            centroids: h.centroids,
            half: h.half_norms,
            sq,
            blocks: fastscan::list_blocks(&h.offsets),
            axis,
            offsets: h.offsets,
            ids,
            codes,
        })
    }
}
