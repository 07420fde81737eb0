//! word2vec's precomputed sigmoid: a table lookup instead of an `exp` per dot product.

/// Beyond ±MAX_EXP the sigmoid is clamped to its value at the edge.
const MAX_EXP: f32 = 6.0;
const TABLE_SIZE: usize = 1024;

/// σ(x) = 1/(1 + e^-x) at the nearest of `TABLE_SIZE + 1` evenly spaced points of
/// [-MAX_EXP, MAX_EXP], as word2vec's EXP_TABLE: at most 0.0015 off the exact value, and
/// exact at 0 (word2vec's buckets are offset by half a step).
pub(crate) struct Sigmoid {
    table: Box<[f32; TABLE_SIZE + 1]>,
}

impl Sigmoid {
    // why: the table is computed in f64 and stored as f32, on purpose.
    #[allow(clippy::cast_possible_truncation)]
    pub fn new() -> Self {
        let mut table = Box::new([0f32; TABLE_SIZE + 1]);
        for (i, t) in table.iter_mut().enumerate() {
            let x = (i as f64 / TABLE_SIZE as f64 * 2.0 - 1.0) * MAX_EXP as f64;
            *t = (1.0 / (1.0 + (-x).exp())) as f32;
        }
        Sigmoid { table }
    }

    #[inline]
    // why: `as usize` saturates (negatives and NaN give 0), then min(TABLE_SIZE).
    #[allow(clippy::cast_possible_truncation)]
    pub fn get(&self, x: f32) -> f32 {
        let scaled = (x + MAX_EXP) * (TABLE_SIZE as f32 / (2.0 * MAX_EXP)) + 0.5;
        // `as usize` saturates: negatives and NaN give 0.
        let i = (scaled as usize).min(TABLE_SIZE);
        self.table[i]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_close_to_exact_and_clamps() {
        let s = Sigmoid::new();
        let mut worst = 0f64;
        for k in -8000..=8000 {
            let x = k as f32 / 1000.0;
            let exact = 1.0 / (1.0 + (-(x.clamp(-MAX_EXP, MAX_EXP)) as f64).exp());
            worst = worst.max((s.get(x) as f64 - exact).abs());
        }
        assert!(worst < 0.0015, "worst error {worst}");
        assert!(s.get(100.0) > 0.997 && s.get(-100.0) < 0.003);
        assert!(s.get(f32::NAN) < 0.003);
        assert_eq!(s.get(0.0), 0.5);
        assert!(s.get(1e-4) == 0.5 && s.get(0.1) > 0.52);
    }
}
