//! Delimited text: the hand-written TSV splitter (also for atomic files), CSV through the
//! `csv` crate, and the number parsers they share.

use super::perr;
use super::schema::Schema;
use crate::{Error, Result};

/// The fields of one row, whatever reader produced them.
pub(crate) trait Row {
    fn n_fields(&self) -> usize;
    fn field(&self, i: usize) -> &[u8];
}

impl Row for [&[u8]] {
    fn n_fields(&self) -> usize {
        self.len()
    }
    fn field(&self, i: usize) -> &[u8] {
        self[i]
    }
}

impl Row for csv::ByteRecord {
    fn n_fields(&self) -> usize {
        self.len()
    }
    fn field(&self, i: usize) -> &[u8] {
        &self[i]
    }
}

pub(crate) fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// A blank line: nothing but spaces (and the `\r` of CRLF).
fn is_blank(line: &[u8]) -> bool {
    line.iter().all(|&b| b == b' ' || b == b'\r')
}

/// Decodes a header line's fields.
fn header_names<R: Row + ?Sized>(file: &str, line: u64, row: &R) -> Result<Vec<String>> {
    (0..row.n_fields())
        .map(|i| {
            std::str::from_utf8(row.field(i))
                .map(|s| s.trim().to_string())
                .map_err(|e| {
                    perr(
                        file,
                        line,
                        "(header)",
                        format!(
                            "invalid UTF-8 in column {} at byte {}",
                            i + 1,
                            e.valid_up_to()
                        ),
                    )
                })
        })
        .collect()
}

fn count_error(file: &str, line: u64, names: &[String], found: usize) -> Error {
    let field = if found < names.len() {
        names[found].as_str()
    } else {
        "(row)"
    };
    let what = if found < names.len() { "few" } else { "many" };
    perr(
        file,
        line,
        field,
        format!(
            "too {what} fields: the header has {}, this row has {found}",
            names.len()
        ),
    )
}

/// A consumer of parsed records; an error from it stops the read.
pub(crate) type Sink<'s, T> = &'s mut dyn FnMut(T) -> Result<()>;

/// Reads the header, then hands every row as `S::Out` to the sink, keeping physical
/// line numbers.
struct Driver<'f, 's, S: Schema> {
    file: &'f str,
    atomic: bool,
    header: Option<(Vec<String>, S)>,
    sink: Sink<'s, S::Out>,
    rows: u64,
}

impl<'f, 's, S: Schema> Driver<'f, 's, S> {
    fn new(file: &'f str, atomic: bool, sink: Sink<'s, S::Out>) -> Self {
        Driver {
            file,
            atomic,
            header: None,
            sink,
            rows: 0,
        }
    }

    fn line<R: Row + ?Sized>(&mut self, line: u64, row: &R) -> Result<()> {
        match &self.header {
            None => {
                let names = header_names(self.file, line, row)?;
                let schema = S::from_header(self.file, line, &names, self.atomic)?;
                self.header = Some((names, schema));
            }
            Some((names, schema)) => {
                if row.n_fields() != names.len() {
                    return Err(count_error(self.file, line, names, row.n_fields()));
                }
                let index = self.rows;
                (self.sink)(schema.row(self.file, line, index, row)?)?;
                self.rows += 1;
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<u64> {
        if self.header.is_none() {
            return Err(Error::Empty(format!("{}: the file is empty", self.file)));
        }
        if self.rows == 0 {
            return Err(Error::Empty(format!(
                "{}: a header and no data rows",
                self.file
            )));
        }
        Ok(self.rows)
    }
}

/// Collect the records of a streaming reader into a Vec sized from the line count.
pub(crate) fn collect<T>(
    bytes: &[u8],
    each: impl FnOnce(Sink<'_, T>) -> Result<u64>,
) -> Result<Vec<T>> {
    let mut out = Vec::with_capacity(bytes.iter().filter(|&&b| b == b'\n').count() + 1);
    each(&mut |r| {
        out.push(r);
        Ok(())
    })?;
    Ok(out)
}

/// Tab-separated values (no quoting); `atomic` only changes how genres are split.
/// Returns the number of records given to `sink`.
pub(crate) fn each_tsv<S: Schema>(
    file: &str,
    bytes: &[u8],
    atomic: bool,
    sink: Sink<'_, S::Out>,
) -> Result<u64> {
    let bytes = strip_bom(bytes);
    let mut d = Driver::<S>::new(file, atomic, sink);
    let mut fields: Vec<&[u8]> = Vec::with_capacity(16);
    for l in super::lines(file, bytes) {
        let (line_no, line) = l?;
        if is_blank(line) {
            continue;
        }
        fields.clear();
        fields.extend(line.split(|&b| b == b'\t'));
        d.line(line_no, fields.as_slice())?;
    }
    d.finish()
}

/// Comma-separated values with double-quote quoting. Returns the number of records.
// why: csv positions are byte offsets into `bytes`, an in-memory slice.
#[allow(clippy::cast_possible_truncation)]
pub(crate) fn each_csv<S: Schema>(file: &str, bytes: &[u8], sink: Sink<'_, S::Out>) -> Result<u64> {
    let bytes = strip_bom(bytes);
    let mut d = Driver::<S>::new(file, false, sink);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut rec = csv::ByteRecord::new();
    let (mut line, mut counted_to) = (1u64, 0usize);
    loop {
        match reader.read_byte_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let at = e.position().map_or(counted_to, |p| p.byte() as usize);
                let at = at.clamp(counted_to, bytes.len());
                line += bytes[counted_to..at]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count() as u64;
                return Err(perr(file, line, "(row)", format!("malformed CSV: {e}")));
            }
        }
        // The csv crate's own line count skips blank lines; count newlines up to the
        // record's first byte instead (incrementally, so linear overall).
        let start = rec.position().map_or(counted_to, |p| p.byte() as usize);
        let mut start = start.clamp(counted_to, bytes.len());
        // The reported start includes blank lines skipped before the record.
        while start < bytes.len() && (bytes[start] == b'\r' || bytes[start] == b'\n') {
            start += 1;
        }
        line += bytes[counted_to..start]
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u64;
        counted_to = start;
        if rec.len() == 1 && is_blank(&rec[0]) {
            continue;
        }
        d.line(line, &rec)?;
    }
    d.finish()
}

/// Decodes a text field (trimmed).
pub(crate) fn utf8<'a>(file: &str, line: u64, field: &str, b: &'a [u8]) -> Result<&'a str> {
    std::str::from_utf8(b.trim_ascii()).map_err(|e| {
        perr(
            file,
            line,
            field,
            format!("invalid UTF-8 at byte {} of the field", e.valid_up_to()),
        )
    })
}

/// An id field: trimmed, non-empty UTF-8.
pub(crate) fn id(file: &str, line: u64, field: &str, b: &[u8]) -> Result<String> {
    let s = utf8(file, line, field, b)?;
    if s.is_empty() {
        return Err(perr(file, line, field, "empty id"));
    }
    Ok(s.to_string())
}

/// A finite value (rating or weight).
pub(crate) fn value(file: &str, line: u64, field: &str, b: &[u8]) -> Result<f32> {
    let b = b.trim_ascii();
    if let Some(v) = fast_small_decimal(b) {
        return Ok(v);
    }
    let s = utf8(file, line, field, b)?;
    if s.is_empty() {
        return Err(perr(file, line, field, "empty value"));
    }
    match s.parse::<f64>() {
        Ok(v) => super::check_value(file, line, field, s, v),
        Err(_) => Err(perr(file, line, field, format!("`{s}` is not a number"))),
    }
}

/// `d` or `d.d` with one digit each side: the shape of almost every rating.
#[inline]
fn fast_small_decimal(b: &[u8]) -> Option<f32> {
    match *b {
        [d] if d.is_ascii_digit() => Some((d - b'0') as f32),
        [d, b'.', f] if d.is_ascii_digit() && f.is_ascii_digit() => {
            Some(((d - b'0') as f32 * 10.0 + (f - b'0') as f32) / 10.0)
        }
        _ => None,
    }
}

/// A timestamp: an integer, or a decimal number of seconds floored.
pub(crate) fn timestamp(file: &str, line: u64, field: &str, b: &[u8]) -> Result<i64> {
    let b = b.trim_ascii();
    if let Some(t) = parse_timestamp(b) {
        return Ok(t);
    }
    let s = utf8(file, line, field, b)?;
    let msg = if s.is_empty() {
        "empty timestamp".to_string()
    } else {
        format!("`{s}` is not a timestamp (expected integer or decimal seconds)")
    };
    Err(perr(file, line, field, msg))
}

/// Parses `[+-]digits[.digits]` quickly, anything else (exponents) through `f64`.
// why: range-checked against i64 before the cast.
#[allow(clippy::cast_possible_truncation)]
pub(crate) fn parse_timestamp(b: &[u8]) -> Option<i64> {
    let (neg, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    let mut v: i64 = 0;
    let mut i = 0;
    while i < digits.len() && digits[i].is_ascii_digit() && i < 18 {
        v = v * 10 + (digits[i] - b'0') as i64;
        i += 1;
    }
    if i > 0 {
        if i == digits.len() {
            return Some(if neg { -v } else { v });
        }
        if digits[i] == b'.' {
            let frac = &digits[i + 1..];
            if frac.iter().all(u8::is_ascii_digit) {
                let nonzero = frac.iter().any(|&d| d != b'0');
                return Some(if neg { -v - nonzero as i64 } else { v });
            }
        }
    }
    // Slow path: exponents, very long numbers.
    let f: f64 = std::str::from_utf8(b).ok()?.parse().ok()?;
    if !f.is_finite() {
        return None;
    }
    let f = f.floor();
    (f >= i64::MIN as f64 && f < i64::MAX as f64).then_some(f as i64)
}
