//! Readers for vectors trained elsewhere (`import table`): raw little-endian f32 rows
//! with an optional ids file (one id a line), or TSV lines `id<TAB>v1<TAB>v2...`.
//!
//! Like the other readers these only parse bytes (what the fuzz targets call) and
//! name the file, the line (or row) and the field of the first thing they reject;
//! nothing is returned partially.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use super::perr;
use crate::{Error, Result};

/// Vectors parsed from a file: row-major `rows` with `dim` columns, one id per row.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedVectors {
    pub dim: usize,
    pub rows: Vec<f32>,
    pub ids: Vec<String>,
}

impl ParsedVectors {
    pub fn len(&self) -> usize {
        self.ids.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

fn check_finite(file: &str, row: usize, col: usize, v: f32) -> Result<f32> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(perr(
            file,
            row as u64 + 1,
            &format!("value {}", col + 1),
            format!("row {}: {v} is not a finite number", row + 1),
        ))
    }
}

/// Raw little-endian f32 rows of `dim` values. The "line" of an error is the 1-based row.
pub fn parse_f32_rows(file: &str, bytes: &[u8], dim: usize) -> Result<Vec<f32>> {
    check_f32_shape(file, bytes.len(), dim)?;
    let mut out = Vec::with_capacity(bytes.len() / 4);
    push_f32s(file, bytes, dim, &mut out)?;
    Ok(out)
}

/// [`parse_f32_rows`] of a regular file, read in steps straight into the rows: the
/// data is held once, not as the file's bytes and again as the rows.
pub(crate) fn read_f32_rows(path: &Path, dim: usize) -> Result<Vec<f32>> {
    let file = path.display().to_string();
    let io = |e| Error::io(path, e);
    let f = std::fs::File::open(path).map_err(io)?;
    let meta = f.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(Error::InvalidInput(format!(
            "{file}: not a regular file (a binary input must have a size)"
        )));
    }
    let len = usize::try_from(meta.len())
        .map_err(|_| Error::InvalidInput(format!("{file}: too large to read into memory")))?;
    check_f32_shape(&file, len, dim)?;
    let mut out = Vec::new();
    out.try_reserve_exact(len / 4)
        .map_err(|_| Error::InvalidInput(format!("{file}: too large to read into memory")))?;
    let mut r = f.take(len as u64);
    // A multiple of 4, so a step never splits a value.
    let mut step = vec![0u8; 1 << 16];
    let mut left = len;
    while left > 0 {
        let n = left.min(step.len());
        r.read_exact(&mut step[..n]).map_err(io)?;
        push_f32s(&file, &step[..n], dim, &mut out)?;
        left -= n;
    }
    Ok(out)
}

/// `len` bytes are a whole, non-zero number of rows of `dim` f32 values.
fn check_f32_shape(file: &str, len: usize, dim: usize) -> Result<()> {
    if dim == 0 {
        return Err(Error::param("dim", "must be at least 1"));
    }
    if len == 0 {
        return Err(Error::Empty(format!("{file}: no rows")));
    }
    let row_bytes = dim
        .checked_mul(4)
        .ok_or_else(|| Error::param("dim", format!("{dim} is too large")))?;
    if !len.is_multiple_of(row_bytes) {
        return Err(perr(
            file,
            (len / row_bytes) as u64 + 1,
            "bytes",
            format!(
                "{len} bytes is not a whole number of rows of {dim} f32 values ({row_bytes} bytes each): {} bytes left over",
                len % row_bytes
            ),
        ));
    }
    Ok(())
}

/// Append the little-endian values of `bytes` (whole values) to `out`, each finite; a
/// value's row and column come from its place in `out`.
fn push_f32s(file: &str, bytes: &[u8], dim: usize, out: &mut Vec<f32>) -> Result<()> {
    for c in bytes.chunks_exact(4) {
        let i = out.len();
        let v = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        out.push(check_finite(file, i / dim, i % dim, v)?);
    }
    Ok(())
}

/// Lines of a text file with their 1-based numbers: BOM and CR stripped, blank lines kept
/// out.
fn lines<'a, 'f>(
    file: &'f str,
    bytes: &'a [u8],
) -> impl Iterator<Item = Result<(u64, &'a [u8])>> + use<'a, 'f> {
    super::lines(file, super::text::strip_bom(bytes))
        .filter(|l| l.as_ref().map_or(true, |(_, l)| !l.trim_ascii().is_empty()))
}

fn utf8<'a>(file: &str, line: u64, field: &str, b: &'a [u8]) -> Result<&'a str> {
    std::str::from_utf8(b).map_err(|_| perr(file, line, field, "not valid UTF-8"))
}

/// Remember `id` (from `line`); a repeat is an error naming both lines.
fn unique(seen: &mut HashMap<String, u64>, file: &str, line: u64, id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(perr(file, line, "id", "empty id"));
    }
    if let Some(first) = seen.insert(id.to_owned(), line) {
        return Err(perr(
            file,
            line,
            "id",
            format!("duplicate id `{id}` (first on line {first})"),
        ));
    }
    Ok(())
}

#[cfg(any(test, feature = "testkit"))]
/// An ids file: one id a line (surrounding spaces trimmed), exactly `rows` of them, no
/// repeats.
pub fn parse_ids(file: &str, bytes: &[u8], rows: usize) -> Result<Vec<String>> {
    // Bytes from a caller: a line past the cap is the error even after a bad line.
    super::check_lines(file, bytes)?;
    ids_of(file, bytes, rows)
}

/// [`parse_ids`] of bytes whose lines [`super::read_file`] metered.
pub(crate) fn ids_of(file: &str, bytes: &[u8], rows: usize) -> Result<Vec<String>> {
    let mut seen = HashMap::new();
    let mut ids = Vec::new();
    let mut last = 0;
    for l in lines(file, bytes) {
        let (line, l) = l?;
        let id = utf8(file, line, "id", l.trim_ascii())?;
        unique(&mut seen, file, line, id)?;
        ids.push(id.to_owned());
        last = line;
    }
    if ids.len() != rows {
        return Err(perr(
            file,
            last,
            "id",
            format!("{} ids for {rows} rows of vectors", ids.len()),
        ));
    }
    Ok(ids)
}

/// TSV vectors: `id<TAB>v1<TAB>...<TAB>vD` a line, no header, every line with the same
/// number of values (the first line decides `D`).
pub fn parse_tsv_vectors(file: &str, bytes: &[u8]) -> Result<ParsedVectors> {
    super::check_lines(file, bytes)?;
    tsv_vectors_of(file, bytes)
}

/// [`parse_tsv_vectors`] of bytes whose lines [`super::read_file`] metered.
pub(crate) fn tsv_vectors_of(file: &str, bytes: &[u8]) -> Result<ParsedVectors> {
    let mut seen = HashMap::new();
    let mut ids = Vec::new();
    let mut rows = Vec::new();
    let mut dim = 0;
    for l in lines(file, bytes) {
        let (line, l) = l?;
        let mut fields = l.split(|&b| b == b'\t');
        let id = utf8(file, line, "id", fields.next().unwrap_or(&[]).trim_ascii())?;
        unique(&mut seen, file, line, id)?;
        let before = rows.len();
        for (j, f) in fields.enumerate() {
            let field = format!("value {}", j + 1);
            let s = utf8(file, line, &field, f.trim_ascii())?;
            let v: f32 = s
                .parse()
                .map_err(|_| perr(file, line, &field, format!("`{s}` is not a number")))?;
            if !v.is_finite() {
                return Err(perr(
                    file,
                    line,
                    &field,
                    format!("{s} is not a finite number"),
                ));
            }
            rows.push(v);
        }
        let got = rows.len() - before;
        if ids.is_empty() {
            if got == 0 {
                return Err(perr(file, line, "value 1", "no values after the id"));
            }
            dim = got;
        } else if got != dim {
            return Err(perr(
                file,
                line,
                &format!("value {}", got.min(dim) + 1),
                format!("{got} values, but the first line has {dim}"),
            ));
        }
        ids.push(id.to_owned());
    }
    if ids.is_empty() {
        return Err(Error::Empty(format!("{file}: no rows")));
    }
    Ok(ParsedVectors { dim, rows, ids })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn le(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn f32_rows_roundtrip_and_errors() {
        assert_eq!(
            parse_f32_rows("v.f32", &le(&[1.0, 2.0, 3.0, 4.0]), 2).unwrap(),
            vec![1.0, 2.0, 3.0, 4.0]
        );
        let e = parse_f32_rows("v.f32", &le(&[1.0, 2.0, 3.0]), 2).unwrap_err();
        assert!(e.to_string().starts_with("v.f32:2: field `bytes`"), "{e}");
        let e = parse_f32_rows("v.f32", &le(&[1.0, 2.0, 3.0, f32::NAN]), 2).unwrap_err();
        assert_eq!(
            e.to_string(),
            "v.f32:2: field `value 2`: row 2: NaN is not a finite number"
        );
        let e = parse_f32_rows("v.f32", &le(&[f32::INFINITY, 2.0]), 2).unwrap_err();
        assert!(e.to_string().contains("v.f32:1: field `value 1`"), "{e}");
        assert!(matches!(parse_f32_rows("v", &[], 2), Err(Error::Empty(_))));
        assert!(parse_f32_rows("v", &le(&[1.0]), 0).is_err());
    }

    #[test]
    fn ids_count_and_repeats() {
        assert_eq!(
            parse_ids("i", b"a\r\n\n b \nc", 3).unwrap(),
            ["a", "b", "c"]
        );
        let e = parse_ids("i", b"a\nb\n", 3).unwrap_err();
        assert_eq!(
            e.to_string(),
            "i:2: field `id`: 2 ids for 3 rows of vectors"
        );
        let e = parse_ids("i", b"a\nb\na\n", 3).unwrap_err();
        assert_eq!(
            e.to_string(),
            "i:3: field `id`: duplicate id `a` (first on line 1)"
        );
    }

    #[test]
    fn tsv_vectors_and_ragged_rows() {
        let p = parse_tsv_vectors("t", b"\xEF\xBB\xBFa\t1\t2\nb\t3\t4.5\r\n").unwrap();
        assert_eq!(p.dim, 2);
        assert_eq!(p.rows, vec![1.0, 2.0, 3.0, 4.5]);
        assert_eq!(p.ids, ["a", "b"]);
        let e = parse_tsv_vectors("t", b"a\t1\t2\nb\t3\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "t:2: field `value 2`: 1 values, but the first line has 2"
        );
        let e = parse_tsv_vectors("t", b"a\t1\nb\tx\n").unwrap_err();
        assert_eq!(e.to_string(), "t:2: field `value 1`: `x` is not a number");
        let e = parse_tsv_vectors("t", b"a\t1\nb\tinf\n").unwrap_err();
        assert!(e.to_string().contains("not a finite number"), "{e}");
        let e = parse_tsv_vectors("t", b"a\t1\na\t2\n").unwrap_err();
        assert!(e.to_string().contains("duplicate id `a`"), "{e}");
        assert!(matches!(
            parse_tsv_vectors("t", b"\n\n"),
            Err(Error::Empty(_))
        ));
        assert!(parse_tsv_vectors("t", b"a\n").is_err());
    }

    proptest::proptest! {
        /// Arbitrary bytes: an error or well-formed rows, never a panic.
        #[test]
        fn parsers_never_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200), dim in 1usize..5) {
            if let Ok(rows) = parse_f32_rows("f", &data, dim) {
                proptest::prop_assert!(rows.len() % dim == 0 && rows.iter().all(|x| x.is_finite()));
            }
            let _ = parse_ids("i", &data, dim);
            if let Ok(p) = parse_tsv_vectors("t", &data) {
                proptest::prop_assert_eq!(p.rows.len(), p.ids.len() * p.dim);
            }
        }
    }
}
