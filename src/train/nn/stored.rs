//! The pieces every stored network shares. A deep model publishes its item-side
//! parameters as `items`-space tables and everything else as one `other` table of one
//! column: f32 values, a header of exact counts (below 2²⁴) then the parameters. These
//! helpers read such a column back and check it, so a damaged table is
//! `Error::Corrupted` naming the table, never a panic.

use crate::jobs::TableOutput;
use crate::storage::tables::{RowSpace, TableView};
use crate::{Error, Result};

/// `<model>.<suffix>`, ready to publish.
pub(crate) fn output(
    model: &str,
    suffix: &str,
    space: RowSpace,
    dim: usize,
    rows: Vec<f32>,
) -> TableOutput {
    TableOutput {
        name: format!("{model}.{suffix}"),
        space,
        dim,
        rows,
        offset: 0.0,
        row_ids: vec![],
    }
}

/// A header value that must be an exact count.
pub(crate) fn count(v: f32, what: &str, name: &str) -> Result<usize> {
    if (0.0..16_777_216.0).contains(&v) && v.fract() == 0.0 {
        // why: an integer below 2^24, checked just above.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Ok(v as usize)
    } else {
        Err(Error::corrupted(format!("table `{name}`: {what} is {v}")))
    }
}

/// The values of a one-column table.
pub(crate) fn column(t: &TableView) -> Result<Vec<f32>> {
    if t.dim() != 1 {
        return Err(Error::corrupted(format!(
            "table `{}`: {} columns, not 1",
            t.name(),
            t.dim()
        )));
    }
    Ok((0..t.rows()).map(|r| t.row(r).get(0)).collect())
}

/// A table given as (name, rows, columns) has the shape the network's header implies.
pub(crate) fn check_shape(table: (&str, usize, usize), want: (usize, usize)) -> Result<()> {
    if (table.1, table.2) == want {
        return Ok(());
    }
    Err(Error::corrupted(format!(
        "table `{}`: {} × {}, the network says {} × {}",
        table.0, table.1, table.2, want.0, want.1
    )))
}

/// The parameters after a header, taken in order. The caller has checked the total
/// length against the header first, so every take is in bounds.
pub(crate) struct Values<'a> {
    v: &'a [f32],
    at: usize,
}

impl<'a> Values<'a> {
    pub fn new(v: &'a [f32], at: usize) -> Values<'a> {
        Values { v, at }
    }

    /// The next `n` values (fewer only if the caller's length check was wrong).
    pub fn take(&mut self, n: usize) -> Vec<f32> {
        let start = self.at.min(self.v.len());
        self.at = start.saturating_add(n).min(self.v.len());
        self.v[start..self.at].to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_exact_small_non_negative_integers() {
        assert_eq!(count(7.0, "x", "t").unwrap(), 7);
        for bad in [-1.0, 0.5, 16_777_216.0, f32::NAN, f32::INFINITY] {
            assert!(matches!(count(bad, "x", "t"), Err(Error::Corrupted { .. })));
        }
    }

    #[test]
    fn values_are_taken_in_order_and_never_past_the_end() {
        let v = [1.0, 2.0, 3.0, 4.0];
        let mut t = Values::new(&v, 1);
        assert_eq!(t.take(2), vec![2.0, 3.0]);
        assert_eq!(t.take(5), vec![4.0]);
        assert!(t.take(1).is_empty());
    }

    #[test]
    fn a_shape_mismatch_names_the_table() {
        assert!(check_shape(("a.items", 3, 4), (3, 4)).is_ok());
        let err = check_shape(("a.items", 3, 4), (3, 5))
            .unwrap_err()
            .to_string();
        assert!(err.contains("a.items"), "{err}");
    }
}
