//! 4-bit scalar quantization of residuals with 16 levels per dimension placed by a 1-D
//! Lloyd (k-means) fit, not evenly between min and max: residuals are bell-shaped, and
//! even levels spend most of their range on a few outliers (the fitted levels have
//! about a third of the squared error of even ones on Gaussian data). The fast-scan
//! table takes any level values, so uneven levels cost nothing at query time.
//!
//! 8 bits per dimension are two such codes (residual scalar quantisation): the second
//! stage's 16 levels are fitted to the error the first stage leaves. A dimension's value
//! is the sum of its two levels, so the fast scan reads the two stages as two code
//! columns with their own tables, and nothing else changes.

/// Levels per dimension.
pub(crate) const LEVELS: usize = 16;
/// Values per dimension the levels are fitted on (evenly spaced rows).
const SAMPLE: usize = 20_000;
const ITERS: usize = 12;

/// Stages a code may have: 1 (4 bits per dimension) or 2 (8 bits).
pub(crate) const MAX_STAGES: usize = 2;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sq4 {
    /// `16 · cols` ascending levels, code column by column. Column `d · stages + s` is
    /// stage `s` of dimension `d`.
    pub levels: Vec<f32>,
    /// 4-bit codes per dimension (1 or 2).
    pub stages: usize,
}

impl Sq4 {
    /// Fit `stages` codes per dimension to `rows` (row-major, `dim` columns): stage 0
    /// to the values, each later stage to the error the stages before it leave.
    pub fn train(rows: &[f32], dim: usize, stages: usize) -> Sq4 {
        let n = rows.len() / dim.max(1);
        let take = n.clamp(1, SAMPLE);
        let mut levels = vec![0f32; LEVELS * dim * stages];
        let mut xs = Vec::with_capacity(take);
        for d in 0..dim {
            // The error left so far, for the sampled rows of this dimension.
            let mut left: Vec<f32> = (0..take.min(n))
                .map(|i| rows[(i * n / take) * dim + d])
                .collect();
            for s in 0..stages {
                xs.clear();
                xs.extend_from_slice(&left);
                let lv = fit(&mut xs);
                for e in left.iter_mut() {
                    *e -= lv[nearest(&lv, *e)];
                }
                levels[(d * stages + s) * LEVELS..][..LEVELS].copy_from_slice(&lv);
            }
        }
        Sq4 { levels, stages }
    }

    /// The stages of `bits` per dimension (4 → 1, 8 → 2), else a parameter error.
    pub fn stages_for(bits: u8) -> crate::Result<usize> {
        match bits {
            4 | 8 => Ok(bits as usize / 4),
            b => Err(crate::Error::param("bits", format!("{b}: expected 8 or 4"))),
        }
    }

    /// The stages of the stored levels of a `dim`-dimensional index, if they are
    /// usable: 1 or 2 stages (told by their count), finite, ascending in each column.
    pub fn stages_of(levels: &[f32], dim: usize) -> Option<usize> {
        let stages = (levels.len() / LEVELS).checked_div(dim)?;
        let ok = (1..=MAX_STAGES).contains(&stages)
            && levels.len() == LEVELS * dim * stages
            && levels.iter().all(|x| x.is_finite())
            && levels
                .chunks_exact(LEVELS)
                .all(|l| l.windows(2).all(|w| w[0] <= w[1]));
        ok.then_some(stages)
    }

    /// Stored levels of a `dim`-dimensional index, if usable ([`Sq4::stages_of`]).
    pub fn from_levels(levels: Vec<f32>, dim: usize) -> Option<Sq4> {
        let stages = Sq4::stages_of(&levels, dim)?;
        Some(Sq4 { levels, stages })
    }

    /// Code columns per row: `dim · stages`.
    pub fn cols(&self) -> usize {
        self.levels.len() / LEVELS
    }

    /// Bits per dimension.
    // why: stages is 1 or 2 (checked by `stages_for`).
    #[allow(clippy::cast_possible_truncation)]
    pub fn bits(&self) -> u8 {
        4 * self.stages as u8
    }

    /// The 4-bit codes (one per byte, [`Sq4::cols`] of them) of one vector: per
    /// dimension and stage, the level nearest to the error the earlier stages leave.
    // why: c is a level number, below LEVELS (16).
    #[allow(clippy::cast_possible_truncation)]
    pub fn encode(&self, x: &[f32], out: &mut Vec<u8>) {
        let mut cols = self.levels.chunks_exact(LEVELS);
        for &v in x {
            let mut left = v;
            for l in cols.by_ref().take(self.stages) {
                let c = nearest(l, left);
                left -= l[c];
                out.push(c as u8);
            }
        }
    }

    /// The value a dimension's codes stand for (tests).
    #[cfg(test)]
    pub fn decode(&self, codes: &[u8], d: usize) -> f32 {
        (0..self.stages)
            .map(|s| self.levels[(d * self.stages + s) * LEVELS + codes[s] as usize])
            .sum()
    }
}

/// The nearest of ascending levels: count the midpoints below `v`.
fn nearest(l: &[f32], v: f32) -> usize {
    l.windows(2).filter(|w| v > 0.5 * (w[0] + w[1])).count()
}

/// 16 Lloyd levels of a sample (sorted in place), started at its quantiles.
// why: levels are averaged in f64 and stored as f32, on purpose.
#[allow(clippy::cast_possible_truncation)]
fn fit(xs: &mut [f32]) -> [f32; LEVELS] {
    let mut lv = [0f32; LEVELS];
    if xs.is_empty() {
        return lv;
    }
    xs.sort_by(f32::total_cmp);
    let n = xs.len();
    for (h, l) in lv.iter_mut().enumerate() {
        *l = xs[((2 * h + 1) * n / (2 * LEVELS)).min(n - 1)];
    }
    for _ in 0..ITERS {
        let mut sums = [0f64; LEVELS];
        let mut counts = [0usize; LEVELS];
        let mut h = 0;
        // xs is sorted: walk the cells in order.
        for &x in xs.iter() {
            while h + 1 < LEVELS && x > 0.5 * (lv[h] + lv[h + 1]) {
                h += 1;
            }
            sums[h] += x as f64;
            counts[h] += 1;
        }
        for h in 0..LEVELS {
            if counts[h] > 0 {
                lv[h] = (sums[h] / counts[h] as f64) as f32;
            }
        }
        // An empty cell keeps its level; keep them ascending.
        for h in 1..LEVELS {
            lv[h] = lv[h].max(lv[h - 1]);
        }
    }
    lv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fitted_levels_beat_even_levels_on_bell_shaped_data() {
        let dim = 3;
        // Sums of uniforms: bell-shaped, with a long-ish range.
        let mut rng = super::super::kmeans::SplitMix(5);
        let rows: Vec<f32> = (0..30_000 * dim)
            .map(|_| {
                (0..6)
                    .map(|_| rng.below(1 << 20) as f32 / (1 << 20) as f32 - 0.5)
                    .sum()
            })
            .collect();
        let sq = Sq4::train(&rows, dim, 1);
        assert!(Sq4::from_levels(sq.levels.clone(), dim).is_some());
        let mut codes = Vec::new();
        for r in rows.chunks_exact(dim) {
            sq.encode(r, &mut codes);
        }
        assert!(codes.iter().all(|&c| c < 16));
        let err_fit: f64 = rows
            .iter()
            .zip(&codes)
            .enumerate()
            .map(|(i, (&x, &c))| (x - sq.levels[(i % dim) * LEVELS + c as usize]) as f64)
            .map(|e| e * e)
            .sum();
        // Even levels over [min, max] at the cell centres.
        let (lo, hi) = rows
            .iter()
            .fold((f32::MAX, f32::MIN), |(a, b), &x| (a.min(x), b.max(x)));
        let step = (hi - lo) / 16.0;
        let err_even: f64 = rows
            .iter()
            .map(|&x| {
                let c = ((x - lo) / step).floor().clamp(0.0, 15.0);
                let e = (x - (lo + step * (c + 0.5))) as f64;
                e * e
            })
            .sum();
        assert!(err_fit < 0.8 * err_even, "{err_fit} vs {err_even}");

        // A second stage fitted to the first one's error: each value decodes to the sum
        // of its two levels, with a small fraction of the one-stage error.
        let sq8 = Sq4::train(&rows, dim, 2);
        assert_eq!((sq8.cols(), sq8.bits()), (2 * dim, 8));
        assert_eq!(sq8.levels[..LEVELS], sq.levels[..LEVELS]);
        let mut c8 = Vec::new();
        for r in rows.chunks_exact(dim) {
            sq8.encode(r, &mut c8);
        }
        assert_eq!(c8.len(), 2 * rows.len());
        assert!(c8.iter().all(|&c| c < 16));
        let err8: f64 = rows
            .iter()
            .enumerate()
            .map(|(i, &x)| (x - sq8.decode(&c8[2 * i..2 * i + 2], i % dim)) as f64)
            .map(|e| e * e)
            .sum();
        // (About 1/24 here: the second stage's levels are shared by all first-stage
        // cells, and the outer cells are wide.)
        assert!(err8 < err_fit / 15.0, "{err8} vs {err_fit}");
    }

    #[test]
    fn constant_dimensions_and_tiny_samples() {
        for stages in 1..=MAX_STAGES {
            let sq = Sq4::train(&[1.0, 1.0, 1.0], 1, stages);
            assert_eq!(Sq4::from_levels(sq.levels.clone(), 1), Some(sq.clone()));
            let mut c = Vec::new();
            sq.encode(&[1.0], &mut c);
            assert!((sq.decode(&c, 0) - 1.0).abs() < 1e-6);
        }
        assert!(Sq4::from_levels(vec![f32::NAN; 16], 1).is_none());
        // Three stages, a count that is not a whole number of dimensions, descending.
        assert!(Sq4::from_levels(vec![0.0; 48], 1).is_none());
        assert!(Sq4::from_levels(vec![0.0; 48], 2).is_none());
        let mut down: Vec<f32> = (0..16).map(|i| i as f32).collect();
        assert!(Sq4::from_levels(down.clone(), 1).is_some());
        down.swap(3, 4);
        assert!(Sq4::from_levels(down, 1).is_none());
        assert!(Sq4::from_levels(Vec::new(), 0).is_none());
    }
}
