//! Pages and opaque pagination tokens. A token names an offset and is bound to
//! what it was issued for (operation, caller, filters): any other token, or one
//! that was tampered with, is refused.

use std::ops::Range;

use crate::rng::Seed;

/// Issues and checks the tokens of one listing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pager {
    binding: Seed,
}

impl Pager {
    /// `binding` must include everything that defines the listing.
    pub(crate) fn new(binding: Seed) -> Self {
        Self { binding }
    }

    /// The token that resumes at `offset`: 32 hex digits.
    pub(crate) fn token(&self, offset: usize) -> String {
        let offset = offset as u64;
        let masked = offset ^ self.binding.with_str("mask").value();
        let check = self.binding.with(offset).value();
        format!("{masked:016x}{check:016x}")
    }

    /// The offset `token` resumes at, if this pager issued it.
    pub(crate) fn offset(&self, token: &str) -> Option<usize> {
        if token.len() != 32 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let masked = u64::from_str_radix(token.get(..16)?, 16).ok()?;
        let check = u64::from_str_radix(token.get(16..)?, 16).ok()?;
        let offset = masked ^ self.binding.with_str("mask").value();
        (self.binding.with(offset).value() == check)
            .then(|| usize::try_from(offset).ok())
            .flatten()
    }
}

/// The items of the page that starts at `offset` and holds at most `limit`
/// items, and where the next page starts, if there is one.
pub(crate) fn page(len: usize, offset: usize, limit: usize) -> (Range<usize>, Option<usize>) {
    let start = offset.min(len);
    let end = start.saturating_add(limit.max(1)).min(len);
    (start..end, (end < len).then_some(end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_are_bound() {
        let pager = Pager::new(Seed::new(1).with_str("DescribeSubnets"));
        let other = Pager::new(Seed::new(1).with_str("DescribeSecurityGroups"));
        for offset in [0, 1, 1_000, 123_456] {
            let token = pager.token(offset);
            assert_eq!(pager.offset(&token), Some(offset));
            assert_eq!(other.offset(&token), None);
        }
        let mut forged = pager.token(5).into_bytes();
        forged[3] = if forged[3] == b'0' { b'1' } else { b'0' };
        assert_eq!(pager.offset(&String::from_utf8(forged).unwrap()), None);
        for junk in ["", "abc", "zz", &"f".repeat(32), "é"] {
            assert_eq!(pager.offset(junk), None, "{junk}");
        }
    }

    #[test]
    fn pages_cover_everything_once() {
        assert_eq!(page(10, 0, 4), (0..4, Some(4)));
        assert_eq!(page(10, 8, 4), (8..10, None));
        assert_eq!(page(10, 12, 4), (10..10, None));
        assert_eq!(page(0, 0, 4), (0..0, None));
    }
}
