//! Parquet in and out, for training on another engine (Spark, DuckDB, ...): the log
//! written as part files of bounded size, and factor tables read as Spark MLlib's ALS
//! writes them (`id: int`, `features: array<float>`, one file or a directory of parts).
//!
//! The `parquet` crate parses the bytes (its record API: no arrow, whose crates cost
//! minutes of compile); this module checks the schema and every value and names the
//! file, the row and the field of the first thing it rejects. Nothing is returned
//! partially.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parquet::basic::Compression;
use parquet::data_type::{ByteArray, ByteArrayType, FloatType, Int32Type, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{ChunkReader, FileReader, SerializedFileReader};
use parquet::file::writer::SerializedFileWriter;
use parquet::record::Field;
use parquet::schema::types::Type;

use super::perr;
use crate::{Error, Result};

/// Factor rows read from Parquet: row-major `rows` of `dim` values, one integer id a row
/// (ids unique, in file order).
#[derive(Debug, Clone, PartialEq)]
pub struct ParquetFactors {
    pub dim: usize,
    pub ids: Vec<i64>,
    pub rows: Vec<f32>,
}

/// The columns of an exported log, in file order. `user_idx`/`item_idx` are recdb's
/// dense ids (0..users, 0..items): the integer ids Spark's ALS needs, which an import
/// of `<model>.users`/`<model>.items` maps back to the external ids.
pub const LOG_SCHEMA: &str = "
message recdb_log {
  REQUIRED BYTE_ARRAY user (UTF8);
  REQUIRED BYTE_ARRAY item (UTF8);
  REQUIRED INT32 user_idx;
  REQUIRED INT32 item_idx;
  REQUIRED BYTE_ARRAY kind (UTF8);
  REQUIRED FLOAT value;
  REQUIRED INT64 timestamp;
}
";

/// One event of an exported log, with its external and dense ids.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LogRow<'a> {
    pub user: &'a str,
    pub item: &'a str,
    pub user_idx: u32,
    pub item_idx: u32,
    pub kind: &'static str,
    pub value: f32,
    pub timestamp: i64,
}

fn pq_err(file: &str, e: parquet::errors::ParquetError) -> Error {
    Error::InvalidInput(format!("{file}: not a readable Parquet file: {e}"))
}

/// The part files of `path`: itself if a file; else its `*.parquet` files, sorted, less
/// hidden ones (Spark leaves `.part-*.crc` and `_SUCCESS` beside its parts).
pub(crate) fn part_files(path: &Path) -> Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let io = |e| Error::io(path, e);
    let mut parts = Vec::new();
    for entry in std::fs::read_dir(path).map_err(io)? {
        let p = entry.map_err(io)?.path();
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
        let hidden = name
            .as_deref()
            .is_none_or(|n| n.starts_with('.') || n.starts_with('_'));
        if !hidden && p.extension().is_some_and(|x| x == "parquet") && p.is_file() {
            parts.push(p);
        }
    }
    parts.sort();
    if parts.is_empty() {
        return Err(Error::Empty(format!(
            "{}: no *.parquet files in the directory",
            path.display()
        )));
    }
    Ok(parts)
}

/// Read factor rows from a Parquet file or a directory of part files (all parts must
/// agree on the width).
pub(crate) fn read_factors(path: &Path) -> Result<ParquetFactors> {
    let mut out = ParquetFactors {
        dim: 0,
        ids: Vec::new(),
        rows: Vec::new(),
    };
    let mut seen = std::collections::HashMap::new();
    for part in part_files(path)? {
        let file = part.display().to_string();
        let f = std::fs::File::open(&part).map_err(|e| Error::io(&part, e))?;
        push_factors(&file, f, &mut out, &mut seen)?;
    }
    if out.ids.is_empty() {
        return Err(Error::Empty(format!("{}: no rows", path.display())));
    }
    Ok(out)
}

/// Factor rows from the bytes of one Parquet file (what the fuzz target calls).
pub fn parse_parquet_factors(file: &str, bytes: &[u8]) -> Result<ParquetFactors> {
    let mut out = ParquetFactors {
        dim: 0,
        ids: Vec::new(),
        rows: Vec::new(),
    };
    let data = bytes::Bytes::copy_from_slice(bytes);
    push_factors(file, data, &mut out, &mut std::collections::HashMap::new())?;
    if out.ids.is_empty() {
        return Err(Error::Empty(format!("{file}: no rows")));
    }
    Ok(out)
}

/// The top-level field `name` of the file's schema, or an error naming the file.
fn top_field<'a>(file: &str, root: &'a Type, name: &str) -> Result<&'a Type> {
    root.get_fields()
        .iter()
        .find(|f| f.name() == name)
        .map(|f| &**f)
        .ok_or_else(|| {
            let have: Vec<&str> = root.get_fields().iter().map(|f| f.name()).collect();
            perr(
                file,
                0,
                name,
                format!(
                    "no `{name}` column (the file has {}); expected Spark ALS factors: `id: int`, `features: array<float>`",
                    have.join(", ")
                ),
            )
        })
}

/// Append the rows of one file to `out`; `seen` maps each id to the file and row
/// that gave it, across parts.
// why: Parquet row counts are i64 but a row index here counts rows already held in
// memory (a usize); ids are checked to fit before they are kept.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn push_factors<R: ChunkReader + 'static>(
    file: &str,
    r: R,
    out: &mut ParquetFactors,
    seen: &mut std::collections::HashMap<i64, (String, u64)>,
) -> Result<()> {
    // The crate asserts on some malformed metadata (a negative column offset, ...):
    // those are checked first, and any panic left is caught and reported as the file's
    // error (the caller drops `out` then, so no half state escapes).
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        push_factors_unchecked(file, r, out, seen)
    }));
    caught.unwrap_or_else(|_| {
        Err(Error::InvalidInput(format!(
            "{file}: not a readable Parquet file (its metadata is malformed)"
        )))
    })
}

// why: see push_factors.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn push_factors_unchecked<R: ChunkReader + 'static>(
    file: &str,
    r: R,
    out: &mut ParquetFactors,
    seen: &mut std::collections::HashMap<i64, (String, u64)>,
) -> Result<()> {
    let len = r.len();
    let reader = SerializedFileReader::new(r).map_err(|e| pq_err(file, e))?;
    for g in reader.metadata().row_groups() {
        for c in g.columns() {
            let start = c.dictionary_page_offset().unwrap_or(c.data_page_offset());
            let size = c.compressed_size();
            let inside = start >= 0
                && size >= 0
                && (start as u64)
                    .checked_add(size as u64)
                    .is_some_and(|end| end <= len);
            if !inside {
                return Err(Error::InvalidInput(format!(
                    "{file}: not a readable Parquet file (column `{}` claims bytes {start}..+{size} of {len})",
                    c.column_path()
                )));
            }
        }
    }
    let meta = reader.metadata().file_metadata();
    let root = meta.schema();
    let id = top_field(file, root, "id")?;
    if id.is_group() {
        return Err(perr(file, 0, "id", "a group, expected an integer column"));
    }
    let features = top_field(file, root, "features")?;
    if !features.is_group() {
        return Err(perr(
            file,
            0,
            "features",
            "not a list, expected `features: array<float>`",
        ));
    }
    let rows = usize::try_from(meta.num_rows().max(0)).unwrap_or(usize::MAX);
    out.ids
        .try_reserve(rows)
        .map_err(|_| Error::InvalidInput(format!("{file}: {rows} rows do not fit in memory")))?;
    let iter = reader.get_row_iter(None).map_err(|e| pq_err(file, e))?;
    for (k, row) in iter.enumerate() {
        let line = k as u64 + 1;
        let row = row.map_err(|e| pq_err(&format!("{file} row {line}"), e))?;
        let mut id = None;
        let mut values = None;
        for (name, field) in row.get_column_iter() {
            match name.as_str() {
                "id" => id = Some(int_of(file, line, field)?),
                "features" => values = Some(features_of(file, line, field)?),
                _ => {}
            }
        }
        let id = id.ok_or_else(|| perr(file, line, "id", "missing"))?;
        let values = values.ok_or_else(|| perr(file, line, "features", "missing"))?;
        if values.is_empty() {
            return Err(perr(file, line, "features", "an empty vector"));
        }
        if out.ids.is_empty() {
            out.dim = values.len();
        } else if values.len() != out.dim {
            return Err(perr(
                file,
                line,
                "features",
                format!(
                    "{} values, but the first row has {} (ragged factors)",
                    values.len(),
                    out.dim
                ),
            ));
        }
        if let Some((f, l)) = seen.insert(id, (file.to_owned(), line)) {
            return Err(perr(
                file,
                line,
                "id",
                format!("duplicate id {id} (first at {f} row {l})"),
            ));
        }
        out.rows.try_reserve(out.dim).map_err(|_| {
            Error::InvalidInput(format!("{file}: the factors do not fit in memory"))
        })?;
        out.rows.extend_from_slice(&values);
        out.ids.push(id);
    }
    Ok(())
}

fn int_of(file: &str, line: u64, f: &Field) -> Result<i64> {
    match f {
        Field::Int(v) => Ok(i64::from(*v)),
        Field::Long(v) => Ok(*v),
        Field::Short(v) => Ok(i64::from(*v)),
        Field::Null => Err(perr(file, line, "id", "null")),
        other => Err(perr(
            file,
            line,
            "id",
            format!("`{other}` is not an integer id"),
        )),
    }
}

// why: a double factor (Spark with `features: array<double>`) narrows to the f32 rows
// recdb stores.
#[allow(clippy::cast_possible_truncation)]
fn features_of(file: &str, line: u64, f: &Field) -> Result<Vec<f32>> {
    let Field::ListInternal(list) = f else {
        return Err(perr(
            file,
            line,
            "features",
            format!("`{f}` is not a list of numbers"),
        ));
    };
    let mut v = Vec::with_capacity(list.len());
    for (j, x) in list.elements().iter().enumerate() {
        let field = format!("features[{j}]");
        let x = match x {
            Field::Float(x) => *x,
            Field::Double(x) => *x as f32,
            other => {
                return Err(perr(
                    file,
                    line,
                    &field,
                    format!("`{other}` is not a number"),
                ))
            }
        };
        if !x.is_finite() {
            return Err(perr(
                file,
                line,
                &field,
                format!("{x} is not a finite number"),
            ));
        }
        v.push(x);
    }
    Ok(v)
}

/// Writes the log as `part-00000.parquet`, `part-00001.parquet`, ... in `dir`, each of
/// at most `rows_per_file` rows (one row group a file: a reader holds one group, so the
/// cap bounds the memory of writer and reader alike).
pub(crate) struct LogWriter {
    dir: PathBuf,
    rows_per_file: usize,
    schema: Arc<Type>,
    buf: LogColumns,
    pub files: u64,
    pub rows: u64,
}

#[derive(Default)]
struct LogColumns {
    user: Vec<ByteArray>,
    item: Vec<ByteArray>,
    user_idx: Vec<i32>,
    item_idx: Vec<i32>,
    kind: Vec<ByteArray>,
    value: Vec<f32>,
    timestamp: Vec<i64>,
}

impl LogWriter {
    /// A writer into `dir` (created if missing). A directory that already holds
    /// `*.parquet` files is refused: a reader takes every part, so old parts would mix
    /// into the new export.
    pub fn new(dir: &Path, rows_per_file: usize) -> Result<LogWriter> {
        if rows_per_file == 0 {
            return Err(Error::param("rows_per_file", "must be at least 1"));
        }
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
            let p = entry.map_err(|e| Error::io(dir, e))?.path();
            if p.extension().is_some_and(|x| x == "parquet") {
                return Err(Error::InvalidInput(format!(
                    "{}: the directory already holds Parquet files ({}); export into an empty directory",
                    dir.display(),
                    p.display()
                )));
            }
        }
        let schema = parquet::schema::parser::parse_message_type(LOG_SCHEMA)
            .map_err(|e| Error::InvalidInput(format!("log schema: {e}")))?;
        Ok(LogWriter {
            dir: dir.to_path_buf(),
            // A file's columns are buffered whole; past a few million rows the parts
            // only grow the writer's memory.
            rows_per_file: rows_per_file.min(1 << 24),
            schema: Arc::new(schema),
            buf: LogColumns::default(),
            files: 0,
            rows: 0,
        })
    }

    // why: the dense ids are u32 below 2^31 (the id maps' bound) to fit Spark's `int`;
    // `push` checked them.
    #[allow(clippy::cast_possible_wrap)]
    pub fn push(&mut self, r: &LogRow<'_>) -> Result<()> {
        for (what, v) in [("user", r.user_idx), ("item", r.item_idx)] {
            if v > i32::MAX as u32 {
                return Err(Error::TooLarge {
                    what: format!("{what} id {v} for a Parquet int column"),
                    limit: i32::MAX as u64,
                });
            }
        }
        let b = &mut self.buf;
        b.user.push(r.user.as_bytes().to_vec().into());
        b.item.push(r.item.as_bytes().to_vec().into());
        b.user_idx.push(r.user_idx as i32);
        b.item_idx.push(r.item_idx as i32);
        b.kind.push(r.kind.as_bytes().to_vec().into());
        b.value.push(r.value);
        b.timestamp.push(r.timestamp);
        if b.value.len() >= self.rows_per_file {
            self.flush_part()?;
        }
        Ok(())
    }

    /// Write the buffered rows as the next part file.
    fn flush_part(&mut self) -> Result<()> {
        if self.buf.value.is_empty() {
            return Ok(());
        }
        let path = self.dir.join(format!("part-{:05}.parquet", self.files));
        let file = path.display().to_string();
        let w = |e| Error::InvalidInput(format!("{file}: writing Parquet: {e}"));
        let f = std::fs::File::create(&path).map_err(|e| Error::io(&path, e))?;
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_created_by("recdb".into())
            .build();
        let mut writer =
            SerializedFileWriter::new(f, self.schema.clone(), Arc::new(props)).map_err(&w)?;
        let mut group = writer.next_row_group().map_err(&w)?;
        let b = std::mem::take(&mut self.buf);
        let mut col = 0;
        while let Some(mut c) = group.next_column().map_err(&w)? {
            match col {
                0 => c.typed::<ByteArrayType>().write_batch(&b.user, None, None),
                1 => c.typed::<ByteArrayType>().write_batch(&b.item, None, None),
                2 => c.typed::<Int32Type>().write_batch(&b.user_idx, None, None),
                3 => c.typed::<Int32Type>().write_batch(&b.item_idx, None, None),
                4 => c.typed::<ByteArrayType>().write_batch(&b.kind, None, None),
                5 => c.typed::<FloatType>().write_batch(&b.value, None, None),
                _ => c.typed::<Int64Type>().write_batch(&b.timestamp, None, None),
            }
            .map_err(&w)?;
            c.close().map_err(&w)?;
            col += 1;
        }
        group.close().map_err(&w)?;
        writer.close().map_err(&w)?;
        self.files += 1;
        self.rows += b.value.len() as u64;
        Ok(())
    }

    /// Write the last part; returns (files, rows).
    pub fn finish(mut self) -> Result<(u64, u64)> {
        self.flush_part()?;
        Ok((self.files, self.rows))
    }
}

#[cfg(any(test, feature = "testkit"))]
/// A factor file as Spark's ALS writes it (`id: int`, `features: array<float>` as a
/// three-level LIST), for tests and fuzz seeds.
pub fn spark_factors_bytes(ids: &[i32], rows: &[Vec<f32>]) -> Vec<u8> {
    let schema = parquet::schema::parser::parse_message_type(
        "message spark_schema {
          REQUIRED INT32 id;
          OPTIONAL group features (LIST) {
            REPEATED group list {
              REQUIRED FLOAT element;
            }
          }
        }",
    )
    .expect("a valid schema");
    let mut out = Vec::new();
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut w = SerializedFileWriter::new(&mut out, Arc::new(schema), Arc::new(props))
        .expect("a writer over a Vec");
    let mut g = w.next_row_group().expect("a row group");
    let mut c = g.next_column().expect("id").expect("id");
    c.typed::<Int32Type>()
        .write_batch(ids, None, None)
        .expect("ids");
    c.close().expect("id column");
    let mut c = g.next_column().expect("features").expect("features");
    let (mut vals, mut def, mut rep) = (Vec::new(), Vec::new(), Vec::new());
    for r in rows {
        if r.is_empty() {
            def.push(1);
            rep.push(0);
        }
        for (j, &x) in r.iter().enumerate() {
            vals.push(x);
            def.push(2);
            rep.push(i16::from(j > 0));
        }
    }
    c.typed::<FloatType>()
        .write_batch(&vals, Some(&def), Some(&rep))
        .expect("features");
    c.close().expect("features column");
    g.close().expect("row group");
    w.close().expect("file");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::record::RowAccessor;

    #[test]
    fn spark_layout_reads_back() {
        let bytes = spark_factors_bytes(
            &[3, 0, 7],
            &[vec![1.0, 2.0], vec![3.0, 4.0], vec![5.0, -6.5]],
        );
        let f = parse_parquet_factors("u.parquet", &bytes).unwrap();
        assert_eq!(f.dim, 2);
        assert_eq!(f.ids, vec![3, 0, 7]);
        assert_eq!(f.rows, vec![1.0, 2.0, 3.0, 4.0, 5.0, -6.5]);
    }

    #[test]
    fn bad_factors_name_file_row_field() {
        let e = parse_parquet_factors(
            "u",
            &spark_factors_bytes(&[1, 2], &[vec![1.0, 2.0], vec![3.0]]),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "u:2: field `features`: 1 values, but the first row has 2 (ragged factors)"
        );
        let e = parse_parquet_factors(
            "u",
            &spark_factors_bytes(&[1, 2], &[vec![1.0], vec![f32::NAN]]),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(e, "u:2: field `features[0]`: NaN is not a finite number");
        let e = parse_parquet_factors("u", &spark_factors_bytes(&[1, 1], &[vec![1.0], vec![2.0]]))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("u:2: field `id`: duplicate id 1 (first at u row 1)"),
            "{e}"
        );
        let e = parse_parquet_factors("u", &spark_factors_bytes(&[1], &[vec![]]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("an empty vector"), "{e}");
        let e = parse_parquet_factors("u", b"PAR1 not really")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("invalid input: u: not a readable Parquet file"),
            "{e}"
        );
    }

    #[test]
    fn wrong_schema_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = LogWriter::new(dir.path(), 10).unwrap();
        w.push(&LogRow {
            user: "u",
            item: "i",
            user_idx: 0,
            item_idx: 0,
            kind: "view",
            value: 1.0,
            timestamp: 5,
        })
        .unwrap();
        w.finish().unwrap();
        let bytes = std::fs::read(dir.path().join("part-00000.parquet")).unwrap();
        let e = parse_parquet_factors("log.parquet", &bytes)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(
                "log.parquet:0: field `id`: no `id` column (the file has user, item, user_idx"
            ),
            "{e}"
        );
    }

    #[test]
    fn log_parts_are_bounded_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = LogWriter::new(dir.path(), 2).unwrap();
        let names = ["a", "b", "c", "d", "e"];
        for (k, n) in names.iter().enumerate() {
            w.push(&LogRow {
                user: n,
                item: "x",
                user_idx: k as u32,
                item_idx: 9,
                kind: "rating",
                value: k as f32,
                timestamp: 100 + k as i64,
            })
            .unwrap();
        }
        assert_eq!(w.finish().unwrap(), (3, 5));
        let parts = part_files(dir.path()).unwrap();
        assert_eq!(parts.len(), 3);
        let mut users = Vec::new();
        for p in &parts {
            let r = SerializedFileReader::try_from(p.as_path()).unwrap();
            assert!(r.metadata().file_metadata().num_rows() <= 2);
            for row in r.get_row_iter(None).unwrap() {
                let row = row.unwrap();
                users.push(row.get_string(0).unwrap().clone());
                assert_eq!(row.get_string(1).unwrap(), "x");
                assert_eq!(row.get_int(3).unwrap(), 9);
                assert_eq!(row.get_string(4).unwrap(), "rating");
                assert_eq!(
                    row.get_long(6).unwrap(),
                    100 + row.get_int(2).unwrap() as i64
                );
            }
        }
        assert_eq!(users, names);
        // A second export into the same directory would mix parts: refused.
        assert!(LogWriter::new(dir.path(), 2).is_err());
    }

    proptest::proptest! {
        /// Arbitrary bytes, and a valid file with bytes flipped: an error or well-formed
        /// rows, never a panic.
        #[test]
        fn reader_never_panics(
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            flips in proptest::collection::vec((0usize..4096, proptest::prelude::any::<u8>()), 0..4),
        ) {
            if let Ok(f) = parse_parquet_factors("f", &data) {
                proptest::prop_assert_eq!(f.rows.len(), f.ids.len() * f.dim);
            }
            let mut good = spark_factors_bytes(&[1, 2], &[vec![1.0, 2.0], vec![3.0, 4.0]]);
            let n = good.len();
            for (at, b) in flips {
                good[at % n] ^= b;
            }
            if let Ok(f) = parse_parquet_factors("f", &good) {
                proptest::prop_assert_eq!(f.rows.len(), f.ids.len() * f.dim);
            }
        }
    }
}
