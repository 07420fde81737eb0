//! Scalar quantization: each dimension maps its [min, max] range linearly onto 0..=255.
//!
//! `x_d ≈ min_d + scale_d · code_d`, so `q · x ≈ Σ q_d·min_d + Σ (q_d·scale_d)·code_d`:
//! the first term is the same for every row of a query, so candidates are ranked by the
//! integer dot product of the codes with `q_d·scale_d` quantized to i16.

use super::kernels;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sq8 {
    pub min: Vec<f32>,
    /// (max − min) / 255 per dimension (0 for a constant dimension).
    pub scale: Vec<f32>,
}

impl Sq8 {
    /// Fit per-dimension ranges to `rows` (row-major, `dim` columns, using the first
    /// `dim` values of each row of width `stride`).
    pub fn train(rows: &[f32], stride: usize, dim: usize) -> Sq8 {
        let mut min = vec![f32::INFINITY; dim];
        let mut max = vec![f32::NEG_INFINITY; dim];
        for r in rows.chunks_exact(stride) {
            for d in 0..dim {
                min[d] = min[d].min(r[d]);
                max[d] = max[d].max(r[d]);
            }
        }
        let scale = min
            .iter_mut()
            .zip(&max)
            .map(|(lo, &hi)| {
                if !lo.is_finite() {
                    *lo = 0.0;
                    return 0.0;
                }
                (hi - *lo) / 255.0
            })
            .collect();
        Sq8 { min, scale }
    }

    /// Append the codes of one vector (values outside the trained range are clamped).
    pub fn encode(&self, x: &[f32], out: &mut Vec<u8>) {
        for ((&v, &lo), &s) in x.iter().zip(&self.min).zip(&self.scale) {
            let c = if s > 0.0 { ((v - lo) / s).round() } else { 0.0 };
            out.push(c.clamp(0.0, 255.0) as u8);
        }
    }

    #[cfg(test)]
    pub fn decode(&self, codes: &[u8]) -> Vec<f32> {
        codes
            .iter()
            .zip(self.min.iter().zip(&self.scale))
            .map(|(&c, (&lo, &s))| lo + s * c as f32)
            .collect()
    }

    /// The i16 query whose integer dot product with codes ranks rows like `q · x̂`.
    pub fn prepare_query(&self, q: &[f32], out: &mut Vec<i16>) {
        let scaled: Vec<f32> = q.iter().zip(&self.scale).map(|(a, s)| a * s).collect();
        kernels::quantize_query(&scaled, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_roundtrip_within_half_a_step_and_rank_like_floats() {
        let dim = 16;
        let rows: Vec<f32> = (0..200 * dim)
            .map(|i| ((i * 7919 % 1013) as f32 / 1013.0 - 0.5) * (1 + i % dim) as f32)
            .collect();
        let sq = Sq8::train(&rows, dim, dim);
        let mut codes = Vec::new();
        for r in rows.chunks_exact(dim) {
            sq.encode(r, &mut codes);
        }
        for (r, c) in rows.chunks_exact(dim).zip(codes.chunks_exact(dim)) {
            for ((x, y), s) in r.iter().zip(sq.decode(c)).zip(&sq.scale) {
                assert!((x - y).abs() <= s * 0.5 + 1e-5);
            }
        }
        // The integer score is an affine, increasing function of the dot with decoded rows.
        let q: Vec<f32> = (0..dim).map(|d| (d as f32 * 0.37).sin()).collect();
        let mut qi = Vec::new();
        sq.prepare_query(&q, &mut qi);
        let mut pairs: Vec<(i32, f32)> = codes
            .chunks_exact(dim)
            .map(|c| {
                let x = sq.decode(c);
                (kernels::dot_u8_i16(c, &qi), kernels::dot(&q, &x))
            })
            .collect();
        pairs.sort_by_key(|p| p.0);
        let mut inversions = 0;
        for w in pairs.windows(2) {
            if w[1].1 < w[0].1 - 1e-3 {
                inversions += 1;
            }
        }
        assert_eq!(inversions, 0);
    }

    #[test]
    fn constant_dimensions_do_not_divide_by_zero() {
        let rows = vec![1.0f32, 2.0, 1.0, 3.0];
        let sq = Sq8::train(&rows, 2, 2);
        let mut c = Vec::new();
        sq.encode(&[1.0, 2.5], &mut c);
        assert_eq!(c[0], 0);
        assert_eq!(sq.decode(&c)[0], 1.0);
    }
}
