//! Document-similarity metrics: Pearson correlation and the TF-IDF cosine baseline.

use crate::{Error, Result};

/// Pearson's r of two equally long series.
pub(crate) fn pearson(a: &[f64], b: &[f64]) -> Result<f64> {
    if a.len() != b.len() {
        return Err(Error::DimensionMismatch {
            expected: a.len(),
            got: b.len(),
        });
    }
    if a.len() < 2 {
        return Err(Error::Empty("pearson needs at least two pairs".into()));
    }
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        let (dx, dy) = (x - ma, y - mb);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    if saa == 0.0 || sbb == 0.0 {
        return Err(Error::InvalidInput(
            "pearson of a constant series is undefined".into(),
        ));
    }
    Ok(sab / (saa.sqrt() * sbb.sqrt()))
}

/// A sparse vector: (word id, weight), ids ascending.
pub(crate) type Sparse = Vec<(u32, f64)>;

/// TF-IDF vectors of `docs` (word ids < `n_words`): raw term count times
/// ln(N / document frequency), the IDF taken over `docs` themselves.
pub(crate) fn tfidf(docs: &[Vec<u32>], n_words: usize) -> Vec<Sparse> {
    let mut df = vec![0u32; n_words];
    let tfs: Vec<Sparse> = docs
        .iter()
        .map(|d| {
            let mut ids = d.clone();
            ids.sort_unstable();
            let mut tf: Sparse = Vec::new();
            for id in ids {
                match tf.last_mut() {
                    Some((last, c)) if *last == id => *c += 1.0,
                    _ => tf.push((id, 1.0)),
                }
            }
            for &(id, _) in &tf {
                df[id as usize] += 1;
            }
            tf
        })
        .collect();
    let n = docs.len() as f64;
    tfs.into_iter()
        .map(|tf| {
            tf.into_iter()
                .map(|(id, c)| (id, c * (n / df[id as usize] as f64).ln()))
                .collect()
        })
        .collect()
}

/// Cosine of two sparse vectors (0 when either is all zero).
pub(crate) fn sparse_cosine(a: &Sparse, b: &Sparse) -> f64 {
    let (mut i, mut j, mut dot) = (0, 0, 0.0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                dot += a[i].1 * b[j].1;
                i += 1;
                j += 1;
            }
        }
    }
    let norm = |v: &Sparse| v.iter().map(|x| x.1 * x.1).sum::<f64>().sqrt();
    let d = norm(a) * norm(b);
    if d == 0.0 {
        0.0
    } else {
        dot / d
    }
}

/// Cosine of two dense vectors (0 when either is all zero).
pub(crate) fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        dot += x as f64 * y as f64;
        na += x as f64 * x as f64;
        nb += y as f64 * y as f64;
    }
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na.sqrt() * nb.sqrt())
    }
}

/// The upper triangle (no diagonal) of the pairwise similarities of `n` things, row by row.
pub(crate) fn upper_triangle(n: usize, sim: impl Fn(usize, usize) -> f64) -> Vec<f64> {
    let mut out = Vec::with_capacity(n * n.saturating_sub(1) / 2);
    for i in 0..n {
        for j in i + 1..n {
            out.push(sim(i, j));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pearson_by_hand() {
        // x = 1,2,3; y = 2,4,7: means 2, 13/3; r = 5 / sqrt(2 * 12.6667).
        let r = pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 7.0]).unwrap();
        assert!(
            (r - 5.0 / (2.0f64 * 38.0 / 3.0).sqrt()).abs() < 1e-12,
            "{r}"
        );
        assert!((pearson(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]).unwrap() + 1.0).abs() < 1e-12);
        assert!(pearson(&[1.0, 1.0], &[1.0, 2.0]).is_err());
        assert!(pearson(&[1.0], &[1.0]).is_err());
        assert!(pearson(&[1.0, 2.0], &[1.0]).is_err());
    }

    #[test]
    fn tfidf_by_hand() {
        // Three docs over words 0..3. Word 0 is in every doc: idf ln(3/3) = 0.
        let docs = vec![vec![0, 1, 1], vec![0, 2], vec![0, 1, 2]];
        let v = tfidf(&docs, 3);
        let l = (3.0f64 / 2.0).ln();
        assert_eq!(v[0], vec![(0, 0.0), (1, 2.0 * l)]);
        assert_eq!(v[1], vec![(0, 0.0), (2, l)]);
        assert_eq!(v[2], vec![(0, 0.0), (1, l), (2, l)]);
        assert_eq!(sparse_cosine(&v[0], &v[1]), 0.0);
        assert!((sparse_cosine(&v[0], &v[2]) - 1.0 / 2f64.sqrt()).abs() < 1e-12);
        assert!((sparse_cosine(&v[1], &v[2]) - 1.0 / 2f64.sqrt()).abs() < 1e-12);
        assert_eq!(sparse_cosine(&vec![], &v[2]), 0.0);
    }

    #[test]
    fn dense_cosine_and_triangle() {
        assert!((cosine(&[1.0, 0.0], &[1.0, 1.0]) - 0.5f64.sqrt()).abs() < 1e-7);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 1.0]), 0.0);
        let t = upper_triangle(3, |i, j| (10 * i + j) as f64);
        assert_eq!(t, vec![1.0, 2.0, 12.0]);
    }
}
