//! Byte ranges of the data file and where a region lives.

use crate::PAGE_SIZE;

/// A half-open byte range `[start, start + len)` of the data file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Extent {
    /// First byte of the range.
    pub start: u64,
    /// Number of bytes in the range.
    pub len: u64,
}

impl Extent {
    /// Makes the range `[start, start + len)`.
    pub const fn new(start: u64, len: u64) -> Self {
        Self { start, len }
    }

    /// One past the last byte of the range (saturating at `u64::MAX`).
    pub const fn end(&self) -> u64 {
        self.start.saturating_add(self.len)
    }

    /// Whether `other` lies entirely inside this range.
    pub const fn contains(&self, other: &Extent) -> bool {
        other.start >= self.start && other.end() <= self.end()
    }

    /// Whether the two ranges share at least one byte.
    pub const fn overlaps(&self, other: &Extent) -> bool {
        self.start < other.end() && other.start < self.end()
    }
}

/// Where a region lives: `reserved` bytes from `start`, of which the first
/// `len` hold data.
///
/// A valid placement has `start` and `reserved` page-aligned,
/// `reserved >= PAGE_SIZE` and `len <= reserved`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// First byte of the reservation; page-aligned.
    pub start: u64,
    /// Bytes set aside for the region; page-aligned, at least [`PAGE_SIZE`].
    pub reserved: u64,
    /// Bytes of data the region holds; at most `reserved`.
    pub len: u64,
}

impl Placement {
    /// The reserved byte range.
    pub const fn extent(&self) -> Extent {
        Extent::new(self.start, self.reserved)
    }

    /// One past the last reserved byte (saturating at `u64::MAX`).
    pub const fn end(&self) -> u64 {
        self.start.saturating_add(self.reserved)
    }

    /// The reservation the region would need if it were packed tightly:
    /// `len` rounded up to a page, at least one page.
    pub const fn tight_reserved(&self) -> u64 {
        tight_reserved(self.len)
    }
}

/// Rounds `n` up to a multiple of [`PAGE_SIZE`]; `None` on overflow.
pub const fn round_up_to_page(n: u64) -> Option<u64> {
    match n.checked_add(PAGE_SIZE - 1) {
        Some(v) => Some(v & !(PAGE_SIZE - 1)),
        None => None,
    }
}

/// Whether `n` is a multiple of [`PAGE_SIZE`].
pub const fn is_page_aligned(n: u64) -> bool {
    n.is_multiple_of(PAGE_SIZE)
}

/// `max(round_up(len), PAGE_SIZE)`; saturates to the largest page multiple
/// for lengths that cannot be rounded (never the case for a valid placement).
pub(crate) const fn tight_reserved(len: u64) -> u64 {
    let rounded = match round_up_to_page(len) {
        Some(r) => r,
        None => !(PAGE_SIZE - 1),
    };
    if rounded < PAGE_SIZE {
        PAGE_SIZE
    } else {
        rounded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_up_rounds_to_pages_and_reports_overflow() {
        assert_eq!(round_up_to_page(0), Some(0));
        assert_eq!(round_up_to_page(1), Some(PAGE_SIZE));
        assert_eq!(round_up_to_page(PAGE_SIZE), Some(PAGE_SIZE));
        assert_eq!(round_up_to_page(PAGE_SIZE + 1), Some(2 * PAGE_SIZE));
        assert_eq!(round_up_to_page(u64::MAX), None);
    }

    #[test]
    fn tight_reserved_is_at_least_one_page() {
        assert_eq!(tight_reserved(0), PAGE_SIZE);
        assert_eq!(tight_reserved(5), PAGE_SIZE);
        assert_eq!(tight_reserved(3 * PAGE_SIZE + 1), 4 * PAGE_SIZE);
    }

    #[test]
    fn extent_relations() {
        let a = Extent::new(0, 10);
        let b = Extent::new(10, 5);
        assert_eq!(a.end(), 10);
        assert!(!a.overlaps(&b));
        assert!(a.overlaps(&Extent::new(9, 5)));
        assert!(a.contains(&Extent::new(2, 8)));
        assert!(!a.contains(&Extent::new(2, 9)));
    }
}
