//! The notice of `import events` when the same file was imported before.

use std::path::Path;

use anyhow::Result;

use recdb::Db;

/// The notice for `file` if a file with its bytes was imported before.
pub fn prior_import_notice(db: &Db, file: &Path) -> Result<Option<String>> {
    Ok(db.prior_import(file)?.map(|p| {
        format!(
            "{}: file already imported on {} ({} events); importing again appends (--allow-duplicate: no notice)",
            file.display(),
            utc_date(p.unix),
            p.events
        )
    }))
}

/// `YYYY-MM-DD` (UTC) of a unix time (the civil calendar from days since 1970).
pub fn utc_date(unix: i64) -> String {
    let z = unix.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates() {
        assert_eq!(super::utc_date(0), "1970-01-01");
        assert_eq!(super::utc_date(951_782_400), "2000-02-29");
        assert_eq!(super::utc_date(1_796_515_200), "2026-12-06");
    }
}
