//! 4-bit "fast scan" (after faiss's IVF fast-scan): codes of 32 rows are interleaved so
//! that one 32-byte load holds the 4-bit codes of all 32 rows for two dimensions, and
//! the per-query lookup table (16 u8 entries per dimension) is applied with `pshufb`
//! (see `simd::fs4_scan`). Half the bytes of int8 codes per row, and no widening
//! multiplies: the scan of a list costs about as much as reading it.
//!
//! Layout of one block (32 rows, `dim` rounded up to even = `de`): for each dimension
//! `d`, 16 bytes; byte `i` holds the code of row `i` (low nibble) and of row `i + 16`
//! (high nibble). Dimension pairs are adjacent, so the table of a pair is the 32
//! contiguous bytes `lut[16·d..16·d + 32]`.

use super::simd::{self, Ahead};

/// Rows per block.
pub(crate) const BLOCK: usize = 32;

/// `dim` rounded up to even (an odd last dimension gets a zero partner).
pub(crate) fn even(dim: usize) -> usize {
    dim + (dim & 1)
}

/// Bytes of one packed block.
pub(crate) fn block_bytes(dim: usize) -> usize {
    even(dim) * 16
}

/// Bytes of the packed codes of `n` rows.
pub(crate) fn packed_len(n: usize, dim: usize) -> usize {
    n.div_ceil(BLOCK) * block_bytes(dim)
}

/// Pack 4-bit codes (one per byte, low nibble, row-major with `dim` per row).
pub(crate) fn pack(codes: &[u8], dim: usize) -> Vec<u8> {
    let n = codes.len() / dim.max(1);
    let bb = block_bytes(dim);
    let mut out = vec![0u8; packed_len(n, dim)];
    for (r, row) in codes.chunks_exact(dim.max(1)).enumerate() {
        let (b, i) = (r / BLOCK, r % BLOCK);
        let shift = if i < 16 { 0 } else { 4 };
        for (d, &c) in row.iter().enumerate() {
            out[b * bb + d * 16 + (i & 15)] |= (c & 15) << shift;
        }
    }
    out
}

/// First block of each list when every list starts a new block (`lists + 1` entries,
/// from the lists' row offsets): padding a list to whole blocks costs on average 16
/// rows' codes per list and spares scanning its neighbours' rows.
// why: BLOCK is a small constant (32).
#[allow(clippy::cast_possible_truncation)]
pub(crate) fn list_blocks(offsets: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(offsets.len());
    let mut b = 0u32;
    out.push(0);
    for w in offsets.windows(2) {
        b += (w[1] - w[0]).div_ceil(BLOCK as u32);
        out.push(b);
    }
    out
}

/// Pack the 4-bit codes of rows grouped in lists (`offsets`), each list from a new block.
pub(crate) fn pack_lists(codes: &[u8], dim: usize, offsets: &[u32]) -> Vec<u8> {
    let mut out = Vec::new();
    for w in offsets.windows(2) {
        out.extend(pack(&codes[w[0] as usize * dim..w[1] as usize * dim], dim));
    }
    out
}

/// The row-major 4-bit codes (one per byte) of the first `n` rows of `packed`: the
/// inverse of [`pack`].
pub(crate) fn unpack(packed: &[u8], dim: usize, n: usize) -> Vec<u8> {
    let bb = block_bytes(dim);
    let mut out = Vec::with_capacity(n * dim);
    for r in 0..n {
        let (b, i) = (r / BLOCK, r % BLOCK);
        let shift = if i < 16 { 0 } else { 4 };
        let block = &packed[b * bb..(b + 1) * bb];
        out.extend((0..dim).map(|d| (block[d * 16 + (i & 15)] >> shift) & 15));
    }
    out
}

/// The 4-bit code of row `r`, dimension `d` (tests and checks).
#[cfg(test)]
pub(crate) fn code_at(packed: &[u8], dim: usize, r: usize, d: usize) -> u8 {
    let byte = packed[(r / BLOCK) * block_bytes(dim) + d * 16 + ((r % BLOCK) & 15)];
    if r % BLOCK < 16 {
        byte & 15
    } else {
        byte >> 4
    }
}

/// Largest table entry for `dim` dimensions: the u16 sum over `even(dim)` entries
/// must not overflow.
// why: dim is a table dimension, stored as u32.
#[allow(clippy::cast_possible_truncation)]
pub(crate) fn lut_max(dim: usize) -> u32 {
    (65535 / even(dim).max(1) as u32).min(255)
}

/// `out[32·b + i]` = Σ_d `lut[16·d + code(row 32·b + i, d)]` for every block of
/// `blocks` (whole packed blocks). `lut` holds `16·even(dim)` entries, each at most
/// [`lut_max`]. `ahead` (what is scanned next) moves on by a block per block scanned.
pub(crate) fn scan(blocks: &[u8], lut: &[u8], dim: usize, out: &mut [u16], ahead: &mut Ahead) {
    let bb = block_bytes(dim);
    assert!(blocks.len().is_multiple_of(bb) && out.len() == blocks.len() / bb * BLOCK);
    assert_eq!(lut.len(), bb);
    if simd::fs4_scan(blocks, lut, out, ahead).is_none() {
        ahead.advance(blocks.len());
        scan_portable(blocks, lut, out);
    }
}

/// The portable twin of [`scan`].
pub(crate) fn scan_portable(blocks: &[u8], lut: &[u8], out: &mut [u16]) {
    let bb = lut.len();
    for (block, o) in blocks.chunks_exact(bb).zip(out.chunks_exact_mut(BLOCK)) {
        let mut acc = [0u16; BLOCK];
        for (codes, t) in block.chunks_exact(16).zip(lut.chunks_exact(16)) {
            for (i, &c) in codes.iter().enumerate() {
                acc[i] = acc[i].wrapping_add(t[(c & 15) as usize] as u16);
                acc[i + 16] = acc[i + 16].wrapping_add(t[(c >> 4) as usize] as u16);
            }
        }
        o.copy_from_slice(&acc);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_prefetch_stream_runs_through_its_ranges_in_order() {
        let bytes = vec![0u8; 300];
        let ranges = vec![
            &bytes[..10],
            &bytes[10..10],
            &bytes[10..110],
            &bytes[110..115],
        ];
        let mut a = Ahead::new(ranges, 20);
        assert_eq!(a.issued(), 20);
        a.advance(50);
        assert_eq!(a.issued(), 70);
        a.advance(1000);
        assert_eq!(a.issued(), 115);
        a.advance(1);
        assert_eq!(a.issued(), 115);
        // A scan moves it on by a block per block scanned.
        let codes: Vec<u8> = (0..70 * 4).map(|i| (i % 16) as u8).collect();
        let packed = pack(&codes, 4);
        let mut out = vec![0u16; 3 * BLOCK];
        let mut a = Ahead::new(vec![&bytes[..], &bytes[..]], 0);
        scan(&packed, &[1u8; 64], 4, &mut out, &mut a);
        assert_eq!(a.issued(), 3 * block_bytes(4));
    }

    proptest! {
        /// The SIMD scan, the portable twin and a per-row reference agree, for any width
        /// (odd dims too) and row count (a partial last block), with extreme tables.
        #[test]
        fn fast_scan_matches_its_twins(dim in 1usize..80, rows in 1usize..100, seed in any::<u64>()) {
            let mut s = seed | 1;
            let mut next = move || { s ^= s << 13; s ^= s >> 7; s ^= s << 17; s };
            let codes: Vec<u8> = (0..rows * dim).map(|_| (next() % 16) as u8).collect();
            let max = lut_max(dim) as u64;
            let de = even(dim);
            let lut: Vec<u8> = (0..de * 16)
                .map(|_| { let x = next(); if x % 3 == 0 { max as u8 } else { (x % (max + 1)) as u8 } })
                .collect();
            let packed = pack(&codes, dim);
            prop_assert_eq!(&unpack(&packed, dim, rows), &codes);
            let nb = rows.div_ceil(BLOCK);
            let (mut a, mut b) = (vec![0u16; nb * BLOCK], vec![0u16; nb * BLOCK]);
            scan(&packed, &lut, dim, &mut a, &mut Ahead::new(vec![&packed], 64));
            scan_portable(&packed, &lut, &mut b);
            prop_assert_eq!(&a, &b);
            for r in 0..rows {
                let want: u32 = (0..dim).map(|d| lut[16 * d + codes[r * dim + d] as usize] as u32).sum::<u32>()
                    + if dim % 2 == 1 { lut[16 * dim] as u32 } else { 0 };
                prop_assert_eq!(a[r] as u32, want);
                for d in 0..dim {
                    prop_assert_eq!(code_at(&packed, dim, r, d), codes[r * dim + d]);
                }
            }
        }
    }
}
