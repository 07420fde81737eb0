//! How much memory a job may take, and fallible allocation of its big buffers.
//!
//! The budget is what the machine has available now: `MemAvailable` from /proc/meminfo
//! on Linux. Where that file is missing or unreadable there is no up-front budget and
//! big buffers rely on `try_reserve` alone (which an overcommitting kernel may grant).

use crate::{Error, Result};

/// Bytes the machine can give a new job, if the platform says.
pub(crate) fn available() -> Option<u64> {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| mem_available(&text))
}

/// The `MemAvailable:` line of /proc/meminfo, in bytes.
fn mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    kib.checked_mul(1024)
}

/// `Ok` when `needed` bytes fit in `budget` (no budget: always); the error names `param`.
pub(crate) fn check(param: &str, needed: u128, budget: Option<u64>) -> Result<()> {
    match budget {
        Some(available) if needed > u128::from(available) => Err(Error::OutOfMemory {
            param: param.to_owned(),
            needed: u64::try_from(needed).unwrap_or(u64::MAX),
            available,
        }),
        _ => Ok(()),
    }
}

/// Bytes of `rows × cols` values of `T`, without overflow.
pub(crate) fn bytes_of<T>(rows: usize, cols: usize) -> u128 {
    rows as u128 * cols as u128 * std::mem::size_of::<T>() as u128
}

/// `n` copies of `value`, or an error naming `param` when the allocation fails.
pub(crate) fn filled<T: Clone>(n: usize, value: T, param: &str) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| Error::OutOfMemory {
        param: param.to_owned(),
        needed: u64::try_from(bytes_of::<T>(n, 1)).unwrap_or(u64::MAX),
        available: available().unwrap_or(0),
    })?;
    v.resize(n, value);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_mem_available_in_bytes() {
        let text = "MemTotal:       24000000 kB\nMemFree:  100 kB\nMemAvailable:   2048 kB\n";
        assert_eq!(mem_available(text), Some(2 << 20));
        assert_eq!(mem_available("MemTotal: 5 kB\n"), None);
    }

    #[test]
    fn an_impossible_buffer_is_an_error_not_an_abort() {
        let e = filled(usize::MAX / 8, 0f32, "dim").unwrap_err();
        assert!(
            matches!(&e, Error::OutOfMemory { param, .. } if param == "dim"),
            "{e}"
        );
        let e = check("factors", 10_000, Some(100)).unwrap_err();
        assert!(e.to_string().contains("`factors`"), "{e}");
        assert!(check("factors", 10_000, None).is_ok());
    }
}
