//! A small deterministic PRNG (splitmix64) and labelled seeds, so every value the
//! simulator serves is a pure function of the configured seed and its coordinates.

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// The splitmix64 finaliser: a bijective 64-bit mix with good avalanche.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A seed derived from labelled parts, in order: `("ab", "c")` and `("a", "bc")`
/// differ, and adding a part never yields the seed of a sibling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Seed(u64);

impl Seed {
    pub(crate) fn new(seed: u64) -> Self {
        Self(mix(seed ^ GOLDEN))
    }

    /// This seed extended by a number.
    #[must_use]
    pub(crate) fn with(self, part: u64) -> Self {
        Self(mix(self.0.rotate_left(17) ^ mix(part.wrapping_add(GOLDEN))))
    }

    /// This seed extended by a string (FNV-1a over its bytes, then its length).
    #[must_use]
    pub(crate) fn with_str(self, part: &str) -> Self {
        let hash = part.bytes().fold(0xCBF2_9CE4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3)
        });
        self.with(hash).with(part.len() as u64)
    }

    /// This seed extended by bytes, such as a request body.
    #[must_use]
    pub(crate) fn with_bytes(self, part: &[u8]) -> Self {
        let hash = part.iter().fold(0xCBF2_9CE4_8422_2325_u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01B3)
        });
        self.with(hash).with(part.len() as u64)
    }

    pub(crate) fn value(self) -> u64 {
        self.0
    }

    /// A uniform number in `[0, 1)`.
    pub(crate) fn unit(self) -> f64 {
        unit(self.0)
    }

    pub(crate) fn rng(self) -> Rng {
        Rng { state: self.0 }
    }
}

fn unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1_u64 << 53) as f64
}

/// splitmix64: fast, tiny state, deterministic across platforms.
#[derive(Debug, Clone)]
pub(crate) struct Rng {
    state: u64,
}

impl Rng {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN);
        mix(self.state)
    }

    /// A uniform number in `0..n` (0 when `n` is 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A uniform number in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo).saturating_add(1))
    }

    /// True with probability `p`.
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        unit(self.next_u64()) < p
    }

    /// One element of a non-empty slice.
    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        let i = self.below(items.len() as u64) as usize;
        &items[i.min(items.len().saturating_sub(1))]
    }

    /// One element of a non-empty table, with probability proportional to its weight.
    pub(crate) fn weighted<'a, T>(&mut self, table: &'a [(T, u32)]) -> &'a T {
        let total: u64 = table.iter().map(|(_, w)| u64::from(*w)).sum();
        let mut roll = self.below(total);
        for (item, weight) in table {
            if roll < u64::from(*weight) {
                return item;
            }
            roll -= u64::from(*weight);
        }
        &table[table.len() - 1].0
    }

    /// `len` lowercase hexadecimal digits.
    pub(crate) fn hex(&mut self, len: usize) -> String {
        self.chars_from(b"0123456789abcdef", len)
    }

    /// `len` characters drawn from `alphabet` (non-empty, ASCII).
    pub(crate) fn chars_from(&mut self, alphabet: &[u8], len: usize) -> String {
        (0..len).map(|_| char::from(*self.pick(alphabet))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_sequence() {
        // GIVEN two generators from the same labelled seed
        let mut a = Seed::new(7).with_str("us-east-1").with(3).rng();
        let mut b = Seed::new(7).with_str("us-east-1").with(3).rng();
        // WHEN both draw
        let xs: Vec<u64> = (0..16).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..16).map(|_| b.next_u64()).collect();
        // THEN they agree
        assert_eq!(xs, ys);
    }

    #[test]
    fn labels_are_ordered_and_delimited() {
        let base = Seed::new(1);
        assert_ne!(
            base.with_str("ab").with_str("c"),
            base.with_str("a").with_str("bc")
        );
        assert_ne!(base.with(1).with(2), base.with(2).with(1));
        assert_ne!(Seed::new(1).with(0), Seed::new(2).with(0));
    }

    #[test]
    fn known_splitmix64_output() {
        // The reference splitmix64 sequence for state 0 starts with this value.
        let mut rng = Rng { state: 0 };
        assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn below_and_range_stay_in_bounds() {
        let mut rng = Seed::new(3).rng();
        for _ in 0..10_000 {
            assert!(rng.below(7) < 7);
            let r = rng.range(2, 64);
            assert!((2..=64).contains(&r));
        }
        assert_eq!(rng.below(0), 0);
    }

    #[test]
    fn weighted_respects_zero_weights_and_rough_proportions() {
        let mut rng = Seed::new(9).rng();
        let table = [("never", 0), ("rare", 1), ("common", 9)];
        let mut rare = 0;
        for _ in 0..10_000 {
            let pick = *rng.weighted(&table);
            assert_ne!(pick, "never");
            rare += usize::from(pick == "rare");
        }
        assert!((700..1_300).contains(&rare), "{rare}");
    }
}
