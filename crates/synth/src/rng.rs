//! The one source of randomness in this crate.
//!
//! Every draw goes through [`Draw`], which only ever calls
//! `RngCore::next_u64` on a ChaCha8 stream. ChaCha's keystream is fixed by
//! its specification, so the data generated for a seed stays the same across
//! platforms and across `rand` releases that change their distribution
//! algorithms (we do not use `rand`'s distributions at all).

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Which generator a stream feeds. Separate purposes get separate keys, so
/// adding a field to the clinic never shifts the patients of the same seed.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Purpose {
    Patient,
    Clinic,
    Coverage,
}

impl Purpose {
    fn tag(self) -> [u8; 8] {
        match self {
            Purpose::Patient => *b"patient\0",
            Purpose::Clinic => *b"clinic\0\0",
            Purpose::Coverage => *b"coverage",
        }
    }
}

/// A deterministic stream of draws.
pub(crate) struct Draw(ChaCha8Rng);

impl Draw {
    /// The stream for `(seed, purpose, stream)`.
    ///
    /// The seed and purpose form the ChaCha key and `stream` selects one of
    /// ChaCha's 2^64 independent streams, so the n-th patient is reached in
    /// constant time and no two `(seed, index)` pairs can ever share a stream
    /// (unlike XOR-mixing the two numbers into one 64-bit seed).
    pub(crate) fn new(seed: u64, purpose: Purpose, stream: u64) -> Self {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&seed.to_le_bytes());
        key[8..16].copy_from_slice(&purpose.tag());
        let mut rng = ChaCha8Rng::from_seed(key);
        rng.set_stream(stream);
        Draw(rng)
    }

    /// A number in `0..n` (`n > 0`).
    ///
    /// Multiply-shift maps 64 random bits onto the range; its bias is at most
    /// `n / 2^64`, far below anything synthetic data could show.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        ((u128::from(self.0.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A number in `lo..=hi`.
    pub(crate) fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `per_mille / 1000`.
    pub(crate) fn chance(&mut self, per_mille: u32) -> bool {
        self.below(1000) < u64::from(per_mille)
    }

    /// A uniformly chosen element of a non-empty slice.
    pub(crate) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    /// An index chosen with the given relative weights (not all zero).
    pub(crate) fn weighted_index<T>(&mut self, items: &[T], weight: impl Fn(&T) -> u32) -> usize {
        let total: u64 = items.iter().map(|i| u64::from(weight(i))).sum();
        let mut x = self.below(total);
        for (i, item) in items.iter().enumerate() {
            let w = u64::from(weight(item));
            if x < w {
                return i;
            }
            x -= w;
        }
        unreachable!("x < total")
    }

    /// A value from a `(value, weight)` table.
    pub(crate) fn weighted<T: Copy>(&mut self, items: &[(T, u32)]) -> T {
        items[self.weighted_index(items, |&(_, w)| w)].0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let draws = |seed, stream| {
            let mut d = Draw::new(seed, Purpose::Patient, stream);
            (0..4).map(|_| d.below(1_000_000)).collect::<Vec<_>>()
        };
        assert_eq!(draws(1, 7), draws(1, 7));
        assert_ne!(draws(1, 7), draws(1, 8));
        assert_ne!(draws(1, 7), draws(2, 7));
        let mut a = Draw::new(1, Purpose::Patient, 0);
        let mut b = Draw::new(1, Purpose::Clinic, 0);
        assert_ne!(a.below(u64::MAX), b.below(u64::MAX));
    }

    #[test]
    fn ranges_are_respected() {
        let mut d = Draw::new(3, Purpose::Patient, 0);
        for _ in 0..10_000 {
            assert!(d.below(7) < 7);
            assert!((5..=9).contains(&d.between(5, 9)));
        }
        assert_eq!(d.weighted(&[("never", 0), ("always", 3)]), "always");
    }
}
