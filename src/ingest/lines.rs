//! Bounded reading: every text input is read line by line under a cap, so a file with
//! one endless line (`/dev/zero`, a line of tabs) is an error naming the file and the
//! line, not an allocation as large as the input.

use std::io::{BufRead, Read};
use std::path::Path;

use super::perr;
use crate::{Error, Result};

/// The longest line an input file may have, in bytes (newline excluded): events, items,
/// users, `import table` TSV vectors and ids, `import docs`.
pub const MAX_LINE: usize = 1 << 20;

/// Counts lines as bytes go by and fails on the first one longer than `max`.
pub(crate) struct LineMeter<'f> {
    file: &'f str,
    max: usize,
    line: u64,
    len: usize,
}

impl<'f> LineMeter<'f> {
    pub fn new(file: &'f str, max: usize) -> Self {
        LineMeter {
            file,
            max,
            line: 1,
            len: 0,
        }
    }

    pub fn feed(&mut self, bytes: &[u8]) -> Result<()> {
        for part in bytes.split_inclusive(|&b| b == b'\n') {
            let ends = part.last() == Some(&b'\n');
            self.len += part.len() - usize::from(ends);
            if self.len > self.max {
                return Err(too_long(self.file, self.line, self.max));
            }
            if ends {
                self.line += 1;
                self.len = 0;
            }
        }
        Ok(())
    }
}

pub(crate) fn too_long(file: &str, line: u64, max: usize) -> Error {
    perr(
        file,
        line,
        "(line)",
        format!("line longer than {max} bytes (the limit of a line)"),
    )
}

/// The lines of `bytes` with their 1-based numbers, the newline and a trailing CR
/// removed (blank lines included; each parser has its own idea of blank). A line longer
/// than [`MAX_LINE`] is an error naming it, checked where the line is split: the one
/// pass every text parser reads its input with.
pub(crate) fn lines<'a, 'f>(file: &'f str, bytes: &'a [u8]) -> Lines<'a, 'f> {
    Lines {
        file,
        rest: Some(bytes),
        line: 0,
    }
}

/// The iterator of [`lines`].
pub(crate) struct Lines<'a, 'f> {
    file: &'f str,
    rest: Option<&'a [u8]>,
    line: u64,
}

impl<'a> Iterator for Lines<'a, '_> {
    type Item = Result<(u64, &'a [u8])>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.rest?;
        let (l, tail) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        self.rest = tail;
        self.line += 1;
        if l.len() > MAX_LINE {
            self.rest = None;
            return Some(Err(too_long(self.file, self.line, MAX_LINE)));
        }
        Some(Ok((self.line, l.strip_suffix(b"\r").unwrap_or(l))))
    }
}

/// `bytes` has no line longer than [`MAX_LINE`] (for the CSV reader, whose quoted
/// fields may span lines).
pub(crate) fn check_lines(file: &str, bytes: &[u8]) -> Result<()> {
    LineMeter::new(file, MAX_LINE).feed(bytes)
}

/// A whole text file, read under the line cap: (its name for errors, its bytes).
pub(crate) fn read_file(path: &Path) -> Result<(String, Vec<u8>)> {
    let file = path.display().to_string();
    let io = |e| Error::io(path, e);
    let f = std::fs::File::open(path).map_err(io)?;
    let mut r = std::io::BufReader::with_capacity(1 << 16, f);
    let mut meter = LineMeter::new(&file, MAX_LINE);
    let mut bytes = Vec::new();
    loop {
        let chunk = r.fill_buf().map_err(io)?;
        if chunk.is_empty() {
            break;
        }
        meter.feed(chunk)?;
        bytes
            .try_reserve(chunk.len())
            .map_err(|_| Error::InvalidInput(format!("{file}: too large to read into memory")))?;
        bytes.extend_from_slice(chunk);
        let n = chunk.len();
        r.consume(n);
    }
    Ok((file, bytes))
}

/// A whole text file under the line cap of [`MAX_LINE`] (what the shell reads lists
/// and rows with): an endless or one-line-forever input is an error naming the line.
pub fn read_text_file(path: impl AsRef<Path>) -> Result<Vec<u8>> {
    Ok(read_file(path.as_ref())?.1)
}

/// A whole binary file; only a regular file (its size is known before reading), so a
/// device or a pipe that never ends is refused.
pub fn read_binary_file(path: impl AsRef<Path>) -> Result<Vec<u8>> {
    let path = path.as_ref();
    let io = |e| Error::io(path, e);
    let f = std::fs::File::open(path).map_err(io)?;
    let meta = f.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(Error::InvalidInput(format!(
            "{}: not a regular file (a binary input must have a size)",
            path.display()
        )));
    }
    let mut bytes = Vec::new();
    let len = usize::try_from(meta.len()).unwrap_or(usize::MAX);
    bytes.try_reserve(len).map_err(|_| {
        Error::InvalidInput(format!("{}: too large to read into memory", path.display()))
    })?;
    f.take(meta.len()).read_to_end(&mut bytes).map_err(io)?;
    Ok(bytes)
}

/// Read the next line of `r` into `buf` (cleared; newline kept), at most `max` bytes
/// besides the newline; `line` is its 1-based number for the error. `false` at the end.
pub(crate) fn read_line(
    r: &mut dyn BufRead,
    buf: &mut Vec<u8>,
    max: usize,
    file: &str,
    line: u64,
) -> Result<bool> {
    buf.clear();
    let got = r
        .take(max as u64 + 1)
        .read_until(b'\n', buf)
        .map_err(|e| Error::io(file, e))?;
    if got > max && buf.last() != Some(&b'\n') {
        return Err(too_long(file, line, max));
    }
    Ok(got > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An endless stream of zeros: what `/dev/zero` gives.
    struct Zeros;
    impl Read for Zeros {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            buf.fill(0);
            Ok(buf.len())
        }
    }

    #[test]
    fn a_line_past_the_cap_names_file_and_line() {
        let mut m = LineMeter::new("f.tsv", 4);
        assert!(m.feed(b"abcd\nab").is_ok());
        let e = m.feed(b"cde\n").unwrap_err().to_string();
        assert_eq!(
            e,
            "f.tsv:2: field `(line)`: line longer than 4 bytes (the limit of a line)"
        );
    }

    #[test]
    fn an_endless_line_ends_with_an_error_after_the_cap() {
        let mut r = std::io::BufReader::new(Zeros);
        let mut buf = Vec::new();
        let e = read_line(&mut r, &mut buf, 1000, "zero", 1).unwrap_err();
        assert!(e.to_string().starts_with("zero:1: field `(line)`"), "{e}");
        assert!(buf.len() <= 1001);
        let mut r: &[u8] = b"ab\ncd";
        assert!(read_line(&mut r, &mut buf, 2, "x", 1).unwrap());
        assert_eq!(buf, b"ab\n");
        assert!(read_line(&mut r, &mut buf, 2, "x", 2).unwrap());
        assert_eq!(buf, b"cd");
        assert!(!read_line(&mut r, &mut buf, 2, "x", 3).unwrap());
    }

    #[test]
    #[cfg(unix)]
    fn dev_zero_is_refused_as_text_and_as_binary() {
        let e = read_file(Path::new("/dev/zero")).unwrap_err();
        assert!(
            e.to_string().starts_with("/dev/zero:1: field `(line)`"),
            "{e}"
        );
        assert!(read_binary_file(Path::new("/dev/zero")).is_err());
    }
}
