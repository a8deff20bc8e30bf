//! Seeded sampling of `count` records from a stream read once.
//!
//! Each record gets a pseudo-random key from (seed, position); the sample is the
//! `count` usable records with the smallest keys, in key order. That equals
//! "shuffle with the seed, take the first `count`" but needs memory for only
//! `count` records, and lets callers skip costly work (tokenizing) for records
//! whose key could not make the cut.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// SplitMix64 finaliser over the seed and position: cheap, and keys for
/// neighbouring positions or seeds are unrelated.
pub(crate) fn key(seed: u64, position: u64) -> u64 {
    let mut z = seed
        .wrapping_add(position.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

struct Keyed<T> {
    key: u64,
    position: u64,
    item: T,
}

impl<T> Keyed<T> {
    fn rank(&self) -> (u64, u64) {
        (self.key, self.position)
    }
}

impl<T> PartialEq for Keyed<T> {
    fn eq(&self, other: &Self) -> bool {
        self.rank() == other.rank()
    }
}
impl<T> Eq for Keyed<T> {}
impl<T> PartialOrd for Keyed<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Keyed<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.rank().cmp(&other.rank())
    }
}

/// Keeps the `k` records with the smallest (key, position).
pub(crate) struct BottomK<T> {
    k: usize,
    seed: u64,
    /// Max-heap: the root is the record to evict first.
    heap: BinaryHeap<Keyed<T>>,
}

impl<T> BottomK<T> {
    pub(crate) fn new(k: usize, seed: u64) -> Self {
        BottomK {
            k,
            seed,
            heap: BinaryHeap::with_capacity(k.min(1 << 16)),
        }
    }

    /// Offers the record at `position` (positions must increase); `make` runs
    /// only when the record could enter the sample, and returns `None` for a
    /// record that is not usable.
    pub(crate) fn offer<E>(
        &mut self,
        position: u64,
        make: impl FnOnce() -> Result<Option<T>, E>,
    ) -> Result<(), E> {
        let key = key(self.seed, position);
        if self.k == 0 {
            return Ok(());
        }
        if self.heap.len() == self.k
            && self
                .heap
                .peek()
                .is_some_and(|worst| (key, position) >= worst.rank())
        {
            return Ok(());
        }
        let Some(item) = make()? else {
            return Ok(());
        };
        if self.heap.len() == self.k {
            self.heap.pop();
        }
        self.heap.push(Keyed {
            key,
            position,
            item,
        });
        Ok(())
    }

    /// The sample, in key order, repeated in that order until it holds
    /// `k` records when fewer usable records were offered.
    pub(crate) fn into_cycled(self) -> Vec<T>
    where
        T: Clone,
    {
        let k = self.k;
        let sample: Vec<T> = self
            .heap
            .into_sorted_vec()
            .into_iter()
            .map(|keyed| keyed.item)
            .collect();
        if sample.is_empty() {
            return sample;
        }
        sample.iter().cycle().take(k).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    fn sample(k: usize, seed: u64, n: u64, usable: impl Fn(u64) -> bool) -> Vec<u64> {
        let mut bottom = BottomK::new(k, seed);
        for p in 0..n {
            bottom
                .offer(p, || Ok::<_, Infallible>(usable(p).then_some(p)))
                .expect("infallible");
        }
        bottom.into_cycled()
    }

    #[test]
    fn equals_shuffle_then_take() {
        let n = 500;
        let mut all: Vec<u64> = (0..n).filter(|p| p % 3 != 0).collect();
        all.sort_by_key(|&p| (key(7, p), p));
        assert_eq!(sample(40, 7, n, |p| p % 3 != 0), all[..40].to_vec());
    }

    #[test]
    fn seeds_differ_and_repeat() {
        let a = sample(20, 1, 1000, |_| true);
        assert_eq!(a, sample(20, 1, 1000, |_| true));
        assert_ne!(a, sample(20, 2, 1000, |_| true));
        let mut unique = a.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 20);
    }

    #[test]
    fn cycles_when_short() {
        let got = sample(7, 3, 3, |_| true);
        assert_eq!(got.len(), 7);
        assert_eq!(got[..3], got[3..6]);
        assert_eq!(got[6], got[0]);
        assert!(sample(5, 3, 10, |_| false).is_empty());
        assert!(sample(0, 3, 10, |_| true).is_empty());
    }

    #[test]
    fn skips_work_for_hopeless_records() {
        let mut bottom = BottomK::new(10, 9);
        let mut made = 0;
        for p in 0..100_000u64 {
            bottom
                .offer(p, || {
                    made += 1;
                    Ok::<_, Infallible>(Some(p))
                })
                .expect("infallible");
        }
        // Expected about k·(1 + ln(n/k)) ≈ 102 builds.
        assert!(made < 1_000, "built {made} records");
    }
}
