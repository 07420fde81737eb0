//! Embedding tables: named, versioned, stored in blocks of rows as rkyv archives and
//! read in place. A version becomes visible through one catalog write; readers hold the
//! blocks they opened (sled values are reference-counted), so a publish or a garbage
//! collection never changes what a reader sees.

use std::collections::HashMap;
use std::sync::Arc;

use rkyv::{Archive, Deserialize, Serialize};

use super::backend::{Backend, Value, WriteBatch};
use super::codec::{self, Tag};
use super::keys;
use crate::{Error, Result};

/// Bytes of row data per block: large enough for few gets, small enough to rewrite.
const BLOCK_BYTES: usize = 64 * 1024;

/// What the rows of a table stand for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum RowSpace {
    /// Row r is the user with dense id r.
    Users = 0,
    /// Row r is the item with dense id r.
    Items = 1,
    /// Rows of something else (words, documents); ids are kept with the table.
    Other = 2,
}

impl RowSpace {
    pub(crate) fn from_u8(b: u8) -> Option<RowSpace> {
        match b {
            0 => Some(RowSpace::Users),
            1 => Some(RowSpace::Items),
            2 => Some(RowSpace::Other),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            RowSpace::Users => "users",
            RowSpace::Items => "items",
            RowSpace::Other => "other",
        }
    }
}

/// One version of a table, as the catalog records it.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub(crate) struct VersionInfo {
    pub version: u64,
    pub rows: u32,
    pub dim: u32,
    pub rows_per_block: u32,
    pub blocks: u32,
    pub space: u8,
    pub created_unix: i64,
    pub job: u64,
    pub watermark: u64,
    /// Added to a dot product to get the model's prediction (e.g. the global mean rating).
    pub offset: f32,
    /// Row ids for `RowSpace::Other` tables (empty otherwise).
    pub row_ids: Vec<String>,
}

/// The catalog entry of a table: its versions, oldest first; the last is current.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub(crate) struct CatalogEntry {
    pub name: String,
    pub versions: Vec<VersionInfo>,
}

impl CatalogEntry {
    pub fn current(&self) -> Option<&VersionInfo> {
        self.versions.last()
    }
}

#[derive(Archive, Serialize, Deserialize, Debug)]
pub(crate) struct TableBlock {
    pub first_row: u32,
    pub dim: u32,
    pub values: Vec<f32>,
}

/// Table names are keys and file-safe words: `[a-z0-9_.-]`, 1 to 64 bytes.
pub(crate) fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b))
        // `.` and `..` read as directories wherever names become paths (dumps, exports).
        && name.bytes().any(|b| b != b'.');
    if ok {
        Ok(())
    } else {
        Err(Error::param(
            "table",
            format!(
                "`{name}` is not a valid table name ([a-z0-9_.-], 1 to 64 bytes, not only dots)"
            ),
        ))
    }
}

pub(crate) fn load_catalog(b: &dyn Backend) -> Result<Vec<CatalogEntry>> {
    b.scan_prefix(b"C")?
        .into_iter()
        .map(|(k, v)| {
            let name = String::from_utf8_lossy(&k[1..]).into_owned();
            codec::decode(Tag::Catalog, &v, &|| {
                format!("catalog entry of table `{name}`")
            })
        })
        .collect()
}

pub(crate) fn get_entry(b: &dyn Backend, name: &str) -> Result<Option<CatalogEntry>> {
    match b.get(&keys::catalog(name))? {
        None => Ok(None),
        Some(v) => codec::decode(Tag::Catalog, &v, &|| {
            format!("catalog entry of table `{name}`")
        })
        .map(Some),
    }
}

pub(crate) fn put_entry(batch: &mut WriteBatch, entry: &CatalogEntry) {
    batch.put(
        keys::catalog(&entry.name),
        codec::encode(Tag::Catalog, entry),
    );
}

/// Write the blocks of a new version (not yet visible), in batches of bounded size.
/// `rows` is row-major with `dim` columns.
// why: block numbers, first rows and rows per block are <= n_rows, checked to fit u32.
#[allow(clippy::cast_possible_truncation)]
pub(crate) fn write_blocks(
    b: &dyn Backend,
    name: &str,
    version: u64,
    dim: usize,
    rows: &[f32],
) -> Result<(u32, u32)> {
    let dim = dim.max(1);
    let rows_per_block = (BLOCK_BYTES / (4 * dim)).max(1);
    let n_rows = rows.len() / dim;
    crate::error::to_u32(n_rows, "table rows")?;
    let dim_u32 = crate::error::to_u32(dim, "table dimension")?;
    let mut batch = WriteBatch::default();
    let mut blocks = 0u32;
    for (i, chunk) in rows.chunks(rows_per_block * dim).enumerate() {
        let block = TableBlock {
            first_row: (i * rows_per_block) as u32,
            dim: dim_u32,
            values: chunk.to_vec(),
        };
        batch.put(
            keys::table_block(name, version, i as u32),
            codec::encode(Tag::TableBlock, &block),
        );
        blocks += 1;
        if batch.bytes() > 16 << 20 {
            b.apply(std::mem::take(&mut batch))?;
        }
    }
    if !batch.is_empty() {
        b.apply(batch)?;
    }
    debug_assert_eq!(blocks as usize, n_rows.div_ceil(rows_per_block));
    Ok((rows_per_block as u32, blocks))
}

/// Delete the blocks of one version, its delta and its index.
pub(crate) fn delete_blocks(
    b: &dyn Backend,
    name: &str,
    version: u64,
    batch: &mut WriteBatch,
) -> Result<()> {
    for prefix in [
        keys::table_prefix(name, version),
        keys::delta_prefix(name, version),
        keys::index_prefix(name, version),
    ] {
        for k in b.keys_with_prefix(&prefix)? {
            batch.delete(k.to_vec());
        }
    }
    Ok(())
}

/// A validated, immutable version of a table, read in place from the stored blocks.
pub struct TableView {
    pub(crate) name: String,
    pub(crate) info: VersionInfo,
    /// Each block with the byte offset of its first float inside the stored value.
    blocks: Vec<(Value, usize)>,
    /// Id → row of the stored row ids, built on first lookup (row updates resolve ids
    /// one at a time; a map per call would cost O(rows)).
    id_rows: std::sync::OnceLock<std::collections::HashMap<String, u32>>,
}

impl std::fmt::Debug for TableView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableView")
            .field("name", &self.name)
            .field("version", &self.info.version)
            .finish()
    }
}

impl TableView {
    /// Load every block of `info` and validate it once.
    pub(crate) fn load(b: &dyn Backend, name: &str, info: &VersionInfo) -> Result<Arc<TableView>> {
        let dim = info.dim as usize;
        let rpb = info.rows_per_block as usize;
        let mut blocks = Vec::with_capacity(info.blocks as usize);
        for i in 0..info.blocks {
            let what = || format!("block {i} of table `{name}` version {}", info.version);
            let v = b
                .get(&keys::table_block(name, info.version, i))?
                .ok_or_else(|| Error::corrupted(format!("{} (missing)", what())))?;
            let block: &ArchivedTableBlock = codec::access(Tag::TableBlock, &v, &what)?;
            let expect_rows = rpb.min(info.rows as usize - i as usize * rpb);
            if block.dim.to_native() as usize != dim
                || block.first_row.to_native() as usize != i as usize * rpb
                || block.values.len() != expect_rows * dim
            {
                return Err(Error::corrupted(format!(
                    "{} (shape disagrees with the catalog)",
                    what()
                )));
            }
            // Where the floats start inside the stored value: pointer difference, no deref.
            let offset = block.values.as_slice().as_ptr() as usize - v.as_ptr() as usize;
            blocks.push((v, offset));
        }
        if rpb == 0 || (info.blocks as usize) != (info.rows as usize).div_ceil(rpb) {
            return Err(Error::corrupted(format!(
                "catalog entry of table `{name}` (block count)"
            )));
        }
        Ok(Arc::new(TableView {
            name: name.to_owned(),
            info: info.clone(),
            blocks,
            id_rows: std::sync::OnceLock::new(),
        }))
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn version(&self) -> u64 {
        self.info.version
    }
    pub fn rows(&self) -> usize {
        self.info.rows as usize
    }
    pub fn dim(&self) -> usize {
        self.info.dim as usize
    }
    pub fn space(&self) -> RowSpace {
        RowSpace::from_u8(self.info.space).unwrap_or(RowSpace::Other)
    }
    pub fn offset(&self) -> f32 {
        self.info.offset
    }
    pub(crate) fn row_ids(&self) -> &[String] {
        &self.info.row_ids
    }

    /// The stored row of external id `id` in an `other` table: its position in the row
    /// ids, or, when the table has none, the row whose decimal number `id` is.
    pub(crate) fn row_of_id(&self, id: &str) -> Option<u32> {
        if self.info.row_ids.is_empty() {
            let r: u32 = id.parse().ok()?;
            return ((r as usize) < self.rows() && r.to_string() == id).then_some(r);
        }
        self.id_rows
            .get_or_init(|| {
                self.info
                    .row_ids
                    .iter()
                    .enumerate()
                    // why: a stored table has at most u32::MAX rows (its `rows` is u32).
                    .map(|(r, s)| (s.clone(), u32::try_from(r).unwrap_or(u32::MAX)))
                    .collect()
            })
            .get(id)
            .copied()
    }

    /// Row `r`, in place: little-endian f32 bytes.
    pub fn row(&self, r: usize) -> Row<'_> {
        let rpb = self.info.rows_per_block as usize;
        let dim = self.dim();
        let (v, off) = &self.blocks[r / rpb];
        let start = off + (r % rpb) * dim * 4;
        Row(&v[start..start + dim * 4])
    }

    /// The stored blocks in row order: (first row, that block's rows as contiguous
    /// little-endian f32 bytes). Lets a full scan walk memory without per-row lookups.
    pub(crate) fn blocks_le(&self) -> impl Iterator<Item = (usize, &[u8])> + '_ {
        let rpb = self.info.rows_per_block as usize;
        let (n, width) = (self.rows(), self.dim() * 4);
        self.blocks.iter().enumerate().map(move |(b, (v, off))| {
            let first = b * rpb;
            let count = rpb.min(n - first);
            (first, &v[*off..*off + count * width])
        })
    }
}

/// One row of a table, borrowed from the stored block (any alignment).
#[derive(Clone, Copy)]
pub struct Row<'a>(&'a [u8]);

impl<'a> Row<'a> {
    pub fn len(&self) -> usize {
        self.0.len() / 4
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn get(&self, i: usize) -> f32 {
        f32::from_le_bytes(self.0[i * 4..i * 4 + 4].try_into().expect("4 bytes"))
    }
    pub fn iter(&self) -> impl Iterator<Item = f32> + 'a {
        self.0
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
    }
    pub fn to_vec(&self) -> Vec<f32> {
        self.iter().collect()
    }
    /// The stored little-endian f32 bytes (for the index's SIMD kernels).
    pub(crate) fn le_bytes(&self) -> &'a [u8] {
        self.0
    }
    /// Dot product with a native vector of the same length.
    pub fn dot(&self, q: &[f32]) -> f32 {
        // Eight independent accumulators so the compiler can vectorise the loop. (Measured:
        // this exact shape vectorises; a 16-wide variant of it does not, and is 10x slower.)
        let mut acc = [0f32; 8];
        let chunks = self.0.chunks_exact(32);
        let rem = chunks.remainder();
        for (c, qs) in chunks.zip(q.chunks_exact(8)) {
            for j in 0..8 {
                acc[j] += f32::from_le_bytes([c[4 * j], c[4 * j + 1], c[4 * j + 2], c[4 * j + 3]])
                    * qs[j];
            }
        }
        let tail = q.len() - rem.len() / 4;
        let mut s: f32 = acc.iter().sum();
        for (c, &x) in rem.chunks_exact(4).zip(&q[tail..]) {
            s += f32::from_le_bytes([c[0], c[1], c[2], c[3]]) * x;
        }
        s
    }
    /// Euclidean norm (vectorised like [`Row::dot`]).
    pub fn norm(&self) -> f32 {
        let mut acc = [0f32; 8];
        let chunks = self.0.chunks_exact(32);
        let rem = chunks.remainder();
        for c in chunks {
            for j in 0..8 {
                let x = f32::from_le_bytes([c[4 * j], c[4 * j + 1], c[4 * j + 2], c[4 * j + 3]]);
                acc[j] += x * x;
            }
        }
        let mut s: f32 = acc.iter().sum();
        for c in rem.chunks_exact(4) {
            let x = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            s += x * x;
        }
        s.sqrt()
    }
}

/// Stage deletes of table and index blocks that no catalog entry names.
pub(crate) fn collect_orphans(b: &dyn Backend, batch: &mut WriteBatch) -> Result<()> {
    let catalog = load_catalog(b)?;
    let live: HashMap<&str, Vec<u64>> = catalog
        .iter()
        .map(|e| {
            (
                e.name.as_str(),
                e.versions.iter().map(|v| v.version).collect(),
            )
        })
        .collect();
    for k in b.keys_with_prefix(b"Y")? {
        let keep = keys::parse_delta_key(&k).is_some_and(|(name, version)| {
            live.get(name.as_str())
                .is_some_and(|vs| vs.contains(&version))
        });
        if !keep {
            batch.delete(k.to_vec());
        }
    }
    for prefix in [b"T", b"X"] {
        for k in b.keys_with_prefix(prefix)? {
            let keep = keys::parse_versioned_block(&k).is_some_and(|(name, version, _)| {
                live.get(name).is_some_and(|vs| vs.contains(&version))
            });
            if !keep {
                batch.delete(k.to_vec());
            }
        }
    }
    Ok(())
}

/// A view of `rows` (`dim` wide, `space`) held in memory, for tests of code that reads
/// views.
#[cfg(test)]
pub(crate) fn view_for_test(space: RowSpace, dim: usize, rows: &[f32]) -> Arc<TableView> {
    let b = crate::storage::backend::MemBackend::default();
    let (rows_per_block, blocks) = write_blocks(&b, "t", 1, dim, rows).expect("in memory");
    let info = VersionInfo {
        version: 1,
        rows: u32::try_from(rows.len() / dim.max(1)).expect("a test's rows"),
        dim: u32::try_from(dim).expect("a test's width"),
        rows_per_block,
        blocks,
        space: space as u8,
        created_unix: 0,
        job: 0,
        watermark: 0,
        offset: 0.0,
        row_ids: vec![],
    };
    TableView::load(&b, "t", &info).expect("just written")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::backend::MemBackend;

    #[test]
    fn rows_roundtrip_and_dot_matches_naive() {
        let b = MemBackend::default();
        for dim in [1usize, 3, 8, 13, 64, 100] {
            let n = 2000;
            let rows: Vec<f32> = (0..n * dim)
                .map(|i| ((i * 7919) % 1000) as f32 / 250.0 - 2.0)
                .collect();
            let (rpb, blocks) = write_blocks(&b, "t", dim as u64, dim, &rows).unwrap();
            let info = VersionInfo {
                version: dim as u64,
                rows: n as u32,
                dim: dim as u32,
                rows_per_block: rpb,
                blocks,
                space: 1,
                created_unix: 0,
                job: 0,
                watermark: 0,
                offset: 0.0,
                row_ids: vec![],
            };
            let view = TableView::load(&b, "t", &info).unwrap();
            let q: Vec<f32> = (0..dim).map(|i| i as f32 * 0.5 - 1.0).collect();
            for r in [0, 1, (rpb as usize).min(n - 1), n - 1] {
                let want = &rows[r * dim..(r + 1) * dim];
                assert_eq!(view.row(r).to_vec(), want);
                let naive: f32 = want.iter().zip(&q).map(|(a, b)| a * b).sum();
                assert!((view.row(r).dot(&q) - naive).abs() < 1e-3 * (1.0 + naive.abs()));
            }
            let mut bad = info.clone();
            bad.rows += 1;
            assert!(TableView::load(&b, "t", &bad).is_err());
        }
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("als.items").is_ok());
        for bad in ["", "A", "a/b", "a\0b", &"x".repeat(65), ".", "..", "..."] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
