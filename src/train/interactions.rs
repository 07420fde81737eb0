//! The training view of an interaction log: a CSR matrix with one row per user.

use crate::{Error, Result};

/// A sparse user x item matrix in CSR form: row `u` holds the items of user `u`
/// (sorted ascending) in `indices[indptr[u]..indptr[u + 1]]` and their values in `values`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Interactions {
    pub n_users: usize,
    pub n_items: usize,
    pub indptr: Vec<usize>,
    pub indices: Vec<u32>,
    pub values: Vec<f32>,
}

impl Interactions {
    /// Builds the matrix from `(user, item, value)` triples with dense ids.
    ///
    /// Several triples for one (user, item) pair keep the value of the LAST one in
    /// `triples` order (a re-rating replaces the old rating; callers that want a sum
    /// aggregate before). Ids out of range and non-finite values are errors.
    pub fn from_triples(
        n_users: usize,
        n_items: usize,
        triples: &[(u32, u32, f32)],
    ) -> Result<Self> {
        if n_items > u32::MAX as usize {
            return Err(Error::param("n_items", "more than u32::MAX items"));
        }
        for (k, &(u, i, v)) in triples.iter().enumerate() {
            if u as usize >= n_users {
                return Err(Error::InvalidInput(format!(
                    "triple {k}: user {u} out of range (n_users = {n_users})"
                )));
            }
            if i as usize >= n_items {
                return Err(Error::InvalidInput(format!(
                    "triple {k}: item {i} out of range (n_items = {n_items})"
                )));
            }
            if !v.is_finite() {
                return Err(Error::InvalidInput(format!(
                    "triple {k}: value {v} is not finite"
                )));
            }
        }
        // Stable sort by (user, item) keeps input order among duplicates, so the last
        // duplicate is the last of its run.
        let mut order: Vec<usize> = (0..triples.len()).collect();
        order.sort_by_key(|&k| (triples[k].0, triples[k].1));
        let mut indptr = vec![0usize; n_users + 1];
        let mut indices = Vec::with_capacity(triples.len());
        let mut values = Vec::with_capacity(triples.len());
        let mut last: Option<(u32, u32)> = None;
        for &k in &order {
            let (u, i, v) = triples[k];
            if last == Some((u, i)) {
                *values.last_mut().expect("a previous entry exists") = v;
                continue;
            }
            last = Some((u, i));
            indptr[u as usize + 1] += 1;
            indices.push(i);
            values.push(v);
        }
        for u in 0..n_users {
            indptr[u + 1] += indptr[u];
        }
        Ok(Interactions {
            n_users,
            n_items,
            indptr,
            indices,
            values,
        })
    }

    /// Number of stored (user, item) entries.
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    /// Items and values of row `u`.
    pub fn row(&self, u: usize) -> (&[u32], &[f32]) {
        let (a, b) = (self.indptr[u], self.indptr[u + 1]);
        (&self.indices[a..b], &self.values[a..b])
    }

    /// The same matrix in CSR by item (rows = items, columns = users, sorted ascending).
    // why: user numbers are dense u32 ids.
    #[allow(clippy::cast_possible_truncation)]
    pub fn transpose(&self) -> Interactions {
        let mut indptr = vec![0usize; self.n_items + 1];
        for &i in &self.indices {
            indptr[i as usize + 1] += 1;
        }
        for i in 0..self.n_items {
            indptr[i + 1] += indptr[i];
        }
        let mut next = indptr.clone();
        let mut indices = vec![0u32; self.nnz()];
        let mut values = vec![0f32; self.nnz()];
        // Users are visited in increasing order, so each item row comes out sorted.
        for u in 0..self.n_users {
            let (items, vals) = self.row(u);
            for (&i, &v) in items.iter().zip(vals) {
                let slot = &mut next[i as usize];
                indices[*slot] = u as u32;
                values[*slot] = v;
                *slot += 1;
            }
        }
        Interactions {
            n_users: self.n_items,
            n_items: self.n_users,
            indptr,
            indices,
            values,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_keep_last_and_rows_are_sorted() {
        let m = Interactions::from_triples(
            3,
            4,
            &[
                (1, 3, 1.0),
                (0, 2, 5.0),
                (1, 0, 2.0),
                (0, 2, 4.0),
                (2, 1, 3.0),
            ],
        )
        .unwrap();
        assert_eq!(m.nnz(), 4);
        assert_eq!(m.row(0), (&[2u32][..], &[4.0f32][..]));
        assert_eq!(m.row(1), (&[0u32, 3][..], &[2.0f32, 1.0][..]));
        assert_eq!(m.row(2), (&[1u32][..], &[3.0f32][..]));
    }

    #[test]
    fn transpose_twice_is_identity() {
        let m =
            Interactions::from_triples(3, 4, &[(1, 3, 1.0), (0, 2, 5.0), (1, 0, 2.0), (2, 2, 3.0)])
                .unwrap();
        let t = m.transpose();
        assert_eq!((t.n_users, t.n_items), (4, 3));
        assert_eq!(t.row(2), (&[0u32, 2][..], &[5.0f32, 3.0][..]));
        assert_eq!(t.transpose(), m);
    }

    #[test]
    fn out_of_range_and_nan_rejected() {
        assert!(Interactions::from_triples(1, 1, &[(1, 0, 1.0)]).is_err());
        assert!(Interactions::from_triples(1, 1, &[(0, 1, 1.0)]).is_err());
        assert!(Interactions::from_triples(1, 1, &[(0, 0, f32::NAN)]).is_err());
    }
}
