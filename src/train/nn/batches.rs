//! Seeded minibatches: an epoch visits every example (a user, for the autoencoders)
//! once, in an order shuffled from the job's seed and the epoch number, cut into batches
//! of `size` (the last one shorter). The same seed gives the same batches on any number
//! of threads.

use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::error::{Error, Result};

/// The order of one epoch over `0..n`.
pub(crate) struct Batches {
    order: Vec<u32>,
    size: usize,
}

impl Batches {
    /// Epoch `epoch` over `n` examples, shuffled from `seed` (e.g. `ctx.sub_seed(k)`).
    pub fn new(n: usize, size: usize, seed: u64, epoch: u64) -> Result<Self> {
        if size == 0 {
            return Err(Error::param("batch", "the batch size must be at least 1"));
        }
        let n = u32::try_from(n)
            .map_err(|_| Error::param("batch", format!("{n} examples exceed 2³²")))?;
        let mut order: Vec<u32> = (0..n).collect();
        // Mix the epoch in so consecutive epochs do not share a stream prefix.
        let mut rng = SmallRng::seed_from_u64(seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        order.shuffle(&mut rng);
        Ok(Batches { order, size })
    }

    /// How many batches.
    pub fn len(&self) -> usize {
        self.order.len().div_ceil(self.size)
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The batches in order, each a slice of example indices.
    pub fn iter(&self) -> std::slice::Chunks<'_, u32> {
        self.order.chunks(self.size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_epoch_visits_each_example_once_in_a_seeded_order() {
        let b = Batches::new(1003, 100, 42, 0).unwrap();
        assert_eq!(b.len(), 11);
        let sizes: Vec<usize> = b.iter().map(<[u32]>::len).collect();
        assert_eq!(sizes.last(), Some(&3));
        let mut all: Vec<u32> = b.iter().flatten().copied().collect();
        let first: Vec<u32> = all.clone();
        all.sort_unstable();
        assert_eq!(all, (0..1003).collect::<Vec<_>>());
        // Same seed and epoch: same order; another epoch or seed: another order.
        let same: Vec<u32> = Batches::new(1003, 7, 42, 0)
            .unwrap()
            .iter()
            .flatten()
            .copied()
            .collect();
        assert_eq!(same, first);
        let next: Vec<u32> = Batches::new(1003, 100, 42, 1)
            .unwrap()
            .iter()
            .flatten()
            .copied()
            .collect();
        assert_ne!(next, first);
        let other: Vec<u32> = Batches::new(1003, 100, 43, 0)
            .unwrap()
            .iter()
            .flatten()
            .copied()
            .collect();
        assert_ne!(other, first);
        assert!(Batches::new(10, 0, 1, 0).is_err());
        assert!(Batches::new(0, 5, 1, 0).unwrap().is_empty());
    }
}
