//! Stored vector indexes: one header block (parameters, centroids, quantizer, list
//! offsets) and a few posting blocks (contiguous runs of lists: their row ids, and the
//! matching share of the packed code bytes), keyed by table name and version so that
//! an index lives and dies with its version.

use rkyv::{Archive, Deserialize, Serialize};

use crate::storage::backend::{Backend, WriteBatch};
use crate::storage::codec::{self, Tag};
use crate::storage::keys;
use crate::{Error, Result};

/// Bump when the stored layout changes; an index of another format is ignored (rebuilt).
/// 1: int8 codes of the rows, row-major. 2: 4-bit codes of the residuals to the list
/// centroids, packed in 32-row fast-scan blocks (`index::fastscan`). 3: the header
/// counts the rows placed since the centroids were trained (`placed`), under a new tag
/// (a format-2 header cannot be decoded as a format-3 one, so its tag tells it apart).
/// 4: a row may be in two lists (spilled, `index::spill`), so the lists hold up to twice
/// the table's rows (a format-3 reader would take that for corruption).
pub(crate) const INDEX_FORMAT: u32 = 4;

/// Bytes of ids + codes per posting block (a bigger list gets a block of its own).
const POSTING_BYTES: usize = 1 << 20;

#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub(crate) struct IndexHeader {
    pub format: u32,
    pub metric: u8,
    pub dim: u32,
    /// Rows of the table version the index was built on.
    pub table_rows: u32,
    pub lists: u32,
    pub nprobe: u32,
    pub rerank: u32,
    /// Dot: the largest row norm (φ of the MIPS transform); cosine: 1.
    pub phi: f32,
    pub seed: u64,
    pub target_recall: f32,
    /// Recall@10 measured at `nprobe` on the held-out sample.
    pub recall: f32,
    pub build_seconds: f64,
    /// `lists × dim` (the first `dim` coordinates of each centroid).
    pub centroids: Vec<f32>,
    /// `‖c‖²/2` of each full centroid (with the MIPS coordinate for Dot).
    pub half_norms: Vec<f32>,
    /// 16 ascending levels per code column: one column per dimension (4 bits) or two
    /// (8 bits: the second stage codes the first one's error), `index::sq4`.
    pub levels: Vec<f32>,
    /// `lists + 1` offsets into the concatenated postings.
    pub offsets: Vec<u32>,
    /// First list of each posting block, plus `lists` at the end.
    pub block_lists: Vec<u32>,
    /// Length of the packed codes (`index::code_bytes(offsets, cols)`).
    pub code_bytes: u64,
    /// Rows placed in the lists by compactions since k-means trained the centroids
    /// (0 after a build): the index policy rebuilds once they are a tenth of the rows.
    pub placed: u32,
}

#[derive(Archive, Serialize, Deserialize, Debug)]
pub(crate) struct PostingBlock {
    pub first_list: u32,
    pub end_list: u32,
    pub ids: Vec<u32>,
    /// Bytes `code_split(first row)..code_split(end row)` of the packed codes.
    pub codes: Vec<u8>,
}

/// Where the share of the packed codes of the rows before `row` ends: the codes are
/// one packed array (blocks of 32 rows cross list boundaries), cut in proportion to
/// the rows of each posting block.
fn code_split(row: usize, rows: usize, code_bytes: usize) -> usize {
    if rows == 0 {
        return 0;
    }
    (row as u128 * code_bytes as u128 / rows as u128) as usize
}

/// Group lists into posting blocks of about `POSTING_BYTES`: the first list of each
/// block, then `lists`.
// why: `lists` is the header's u32 list count (offsets has lists + 1 entries).
#[allow(clippy::cast_possible_truncation)]
pub(crate) fn plan_blocks(offsets: &[u32], dim: usize) -> Vec<u32> {
    let lists = offsets.len() - 1;
    let mut starts = vec![0u32];
    let mut bytes = 0usize;
    for l in 0..lists {
        let b = (offsets[l + 1] - offsets[l]) as usize * (dim + 4);
        if bytes > 0 && bytes + b > POSTING_BYTES {
            starts.push(l as u32);
            bytes = 0;
        }
        bytes += b;
    }
    starts.push(lists as u32);
    starts
}

/// Replace the index of `name`@`version` in one atomic batch (the index job stages it
/// with its record instead).
#[cfg(test)]
pub(crate) fn write(
    b: &dyn Backend,
    name: &str,
    version: u64,
    header: &IndexHeader,
    ids: &[u32],
    codes: &[u8],
) -> Result<()> {
    let mut batch = WriteBatch::default();
    delete(b, name, version, &mut batch)?;
    stage(&mut batch, name, version, header, ids, codes);
    b.apply(batch)
}

/// Stage the blocks of the index of `name`@`version` (a version without one yet, or
/// after [`delete`] in the same batch).
pub(crate) fn stage(
    batch: &mut WriteBatch,
    name: &str,
    version: u64,
    header: &IndexHeader,
    ids: &[u32],
    codes: &[u8],
) {
    let rows = ids.len();
    batch.put(
        keys::index_block(name, version, 0),
        codec::encode(Tag::IndexHeader, header),
    );
    for (i, w) in header.block_lists.windows(2).enumerate() {
        let (lo, hi) = (
            header.offsets[w[0] as usize] as usize,
            header.offsets[w[1] as usize] as usize,
        );
        let block = PostingBlock {
            first_list: w[0],
            end_list: w[1],
            ids: ids[lo..hi].to_vec(),
            codes: codes[code_split(lo, rows, codes.len())..code_split(hi, rows, codes.len())]
                .to_vec(),
        };
        batch.put(
            // why: one block per list at most, and the list count is a u32.
            #[allow(clippy::cast_possible_truncation)]
            keys::index_block(name, version, i as u32 + 1),
            codec::encode(Tag::Postings, &block),
        );
    }
}

/// Stage the deletion of the index of one version (if any).
pub(crate) fn delete(
    b: &dyn Backend,
    name: &str,
    version: u64,
    batch: &mut WriteBatch,
) -> Result<()> {
    for k in b.keys_with_prefix(&keys::index_prefix(name, version))? {
        batch.delete(k.to_vec());
    }
    Ok(())
}

/// The header of the index of `name`@`version`; `Ok(None)` when there is none or it is
/// of an older format.
pub(crate) fn header(b: &dyn Backend, name: &str, version: u64) -> Result<Option<IndexHeader>> {
    let Some(v) = b.get(&keys::index_block(name, version, 0))? else {
        return Ok(None);
    };
    if v.first() == Some(&(Tag::IndexHeaderV2 as u8)) {
        return Ok(None);
    }
    let what = || format!("index block 0 of table `{name}` version {version}");
    let h: IndexHeader = codec::decode(Tag::IndexHeader, &v, &what)?;
    Ok((h.format == INDEX_FORMAT).then_some(h))
}

/// A loaded index.
pub(crate) struct Loaded {
    pub header: IndexHeader,
    /// Row ids list by list (a spilled row is in two lists).
    pub ids: Vec<u32>,
    pub codes: Vec<u8>,
    /// Distinct rows in the lists.
    pub rows: usize,
}

/// The index of `name`@`version`, validated: header, then every posting block, copied
/// into contiguous arrays. `Ok(None)` when the version has no index (or one of an older
/// format, which a rebuild replaces).
pub(crate) fn load(
    b: &dyn Backend,
    name: &str,
    version: u64,
    table_rows: usize,
    table_dim: usize,
) -> Result<Option<Loaded>> {
    let what = |i: u32| move || format!("index block {i} of table `{name}` version {version}");
    let Some(h) = header(b, name, version)? else {
        return Ok(None);
    };
    let bad = |why: &str| Err(Error::corrupted(format!("{} ({why})", what(0)())));
    let (dim, lists) = (h.dim as usize, h.lists as usize);
    if dim != table_dim || h.table_rows as usize != table_rows {
        return bad("shape disagrees with the table");
    }
    let Some(stages) = super::code_stages(&h.levels, dim) else {
        return bad("code levels");
    };
    let cols = dim * stages;
    if lists == 0
        || h.metric > 1
        || !h.phi.is_finite()
        || h.centroids.len() != lists * dim
        || h.half_norms.len() != lists
        || h.offsets.len() != lists + 1
        || h.offsets[0] != 0
        || h.offsets.windows(2).any(|w| w[0] > w[1])
        || h.offsets[lists] as usize > 2 * table_rows
        || h.nprobe == 0
        || h.nprobe as usize > lists
        || h.block_lists.len() < 2
        || h.block_lists[0] != 0
        || h.block_lists[h.block_lists.len() - 1] as usize != lists
        || h.block_lists.windows(2).any(|w| w[0] >= w[1])
    {
        return bad("inconsistent header");
    }
    let total = h.offsets[lists] as usize;
    let code_bytes = super::code_bytes(&h.offsets, cols);
    if h.code_bytes != code_bytes as u64 {
        return bad("code length disagrees with the rows");
    }
    let mut ids = Vec::with_capacity(total);
    let mut codes = Vec::with_capacity(code_bytes);
    // Per row: the list it was last seen in (lists come in order) and how many it is
    // in. A row is in one list, or two if it was spilled; never twice in one.
    let mut last = vec![u32::MAX; table_rows];
    let mut seen = vec![0u8; table_rows];
    let mut rows = 0;
    for (i, w) in h.block_lists.windows(2).enumerate() {
        // why: block_lists is a stored Vec<u32> of list numbers: i < its length.
        #[allow(clippy::cast_possible_truncation)]
        let i = i as u32 + 1;
        let v = b
            .get(&keys::index_block(name, version, i))?
            .ok_or_else(|| Error::corrupted(format!("{} (missing)", what(i)())))?;
        let p: &ArchivedPostingBlock = codec::access(Tag::Postings, &v, &what(i))?;
        let (lo, hi) = (
            h.offsets[w[0] as usize] as usize,
            h.offsets[w[1] as usize] as usize,
        );
        let want = code_split(hi, total, code_bytes) - code_split(lo, total, code_bytes);
        if p.first_list.to_native() != w[0]
            || p.end_list.to_native() != w[1]
            || p.ids.len() != hi - lo
            || p.codes.len() != want
        {
            return Err(Error::corrupted(format!(
                "{} (shape disagrees with the header)",
                what(i)()
            )));
        }
        for l in w[0]..w[1] {
            let (a, b) = (
                h.offsets[l as usize] as usize,
                h.offsets[l as usize + 1] as usize,
            );
            for id in p.ids[a - lo..b - lo].iter() {
                let id = id.to_native();
                let r = id as usize;
                let why = if r >= table_rows {
                    "out of range".to_owned()
                } else if last[r] == l {
                    format!("twice in list {l}")
                } else if seen[r] == 2 {
                    "in more than two lists".to_owned()
                } else {
                    rows += usize::from(seen[r] == 0);
                    (last[r], seen[r]) = (l, seen[r] + 1);
                    ids.push(id);
                    continue;
                };
                return Err(Error::corrupted(format!("{} (row {id} {why})", what(i)())));
            }
        }
        codes.extend_from_slice(p.codes.as_slice());
    }
    Ok(Some(Loaded {
        header: h,
        ids,
        codes,
        rows,
    }))
}
