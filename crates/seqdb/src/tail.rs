//! A region's newest bytes, gathered in memory until they are written to the data file,
//! and the budget that bounds all regions' tails together.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// A tail keeps no more than this much capacity once emptied, so that a region that once
/// buffered a lot does not hold the memory for good.
const KEEP_CAPACITY: usize = 128 * 1024;
/// Tails are counted against the budget in whole pages, so that the shared counter is
/// touched once per page rather than once per append.
const ACCOUNT_SHIFT: u32 = 12;

/// The bytes held in all regions' tails, counted in whole pages.
#[derive(Debug, Default)]
pub(crate) struct Budget(AtomicU64);

impl Budget {
    /// Bytes counted (a multiple of the page size).
    pub fn bytes(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// A tail went from `before` to `after` bytes.
    #[inline]
    fn account(&self, before: usize, after: usize) {
        let (b, a) = (before >> ACCOUNT_SHIFT, after >> ACCOUNT_SHIFT);
        if a > b {
            self.0
                .fetch_add(((a - b) as u64) << ACCOUNT_SHIFT, Ordering::Relaxed);
        } else if b > a {
            self.0
                .fetch_sub(((b - a) as u64) << ACCOUNT_SHIFT, Ordering::Relaxed);
        }
    }
}

/// The bytes of a region after those known to be in the data file (`written`).
///
/// A prefix of the tail may also have been written to the file, right after `written`,
/// by a holder of the region's *shared* lock (a flush or a new reader), which may not
/// change the tail itself: [`synced`](Self::synced) says how long that prefix is. A holder
/// of the write lock later writes only the rest. Invariants:
///
/// * `synced <= len`;
/// * the file holds `bytes[..synced]` at the region's `written` offset;
/// * `synced` grows only under the region's shared lock *and* its lent-buffer mutex (so
///   two shared holders never write the same bytes at once), and shrinks only under the
///   write lock;
/// * every change of the length is counted in the [`Budget`] passed along.
#[derive(Debug, Default)]
pub(crate) struct Tail {
    bytes: Vec<u8>,
    synced: AtomicUsize,
}

impl Tail {
    /// An empty tail.
    pub const fn new() -> Self {
        Tail {
            bytes: Vec::new(),
            synced: AtomicUsize::new(0),
        }
    }

    /// Bytes in the tail.
    #[inline]
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the tail holds no bytes.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// How many of the first bytes are also in the data file.
    #[inline]
    pub fn synced(&self) -> usize {
        self.synced.load(Ordering::Relaxed)
    }

    /// The bytes not yet in the data file, and their offset within the tail.
    pub fn unsynced(&self) -> (usize, &[u8]) {
        let synced = self.synced();
        (synced, &self.bytes[synced..])
    }

    /// Record that every byte is in the data file. Shared holders call it with the
    /// region's lent-buffer mutex held, after writing [`unsynced`](Self::unsynced).
    pub fn mark_synced(&self) {
        self.synced.store(self.bytes.len(), Ordering::Relaxed);
    }

    /// Whether every byte of a non-empty tail is in the data file.
    #[inline]
    pub fn is_all_synced(&mut self) -> bool {
        !self.bytes.is_empty() && *self.synced.get_mut() == self.bytes.len()
    }

    /// Whether `n` more bytes stay within the tail's current page of the budget, so that
    /// appending them touches no shared counter.
    #[inline]
    pub fn same_page_after(&self, n: usize) -> bool {
        let before = self.bytes.len();
        (before >> ACCOUNT_SHIFT) == ((before + n) >> ACCOUNT_SHIFT)
    }

    /// Append bytes (not in the file yet).
    #[inline]
    pub fn extend(&mut self, data: &[u8], budget: &Budget) {
        let before = self.bytes.len();
        self.bytes.extend_from_slice(data);
        budget.account(before, self.bytes.len());
    }

    /// Keep only the first `len` bytes.
    pub fn truncate(&mut self, len: usize, budget: &Budget) {
        let before = self.bytes.len();
        self.bytes.truncate(len);
        budget.account(before, self.bytes.len());
        let synced = self.synced.get_mut();
        *synced = (*synced).min(len);
    }

    /// Drop every byte, and the memory if the tail once grew large.
    pub fn clear(&mut self, budget: &Budget) {
        self.truncate(0, budget);
        if self.bytes.capacity() > KEEP_CAPACITY {
            self.bytes = Vec::new();
        }
    }

    /// Forget which bytes are in the file (the region moved: they are at its old place).
    pub fn unsync(&mut self) {
        *self.synced.get_mut() = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_counts_whole_pages_of_every_change() {
        let budget = Budget::default();
        let mut tail = Tail::default();
        tail.extend(&[1; 4095], &budget);
        assert_eq!(budget.bytes(), 0);
        assert!(!tail.same_page_after(1));
        tail.extend(&[2; 2], &budget);
        assert_eq!(budget.bytes(), 4096);
        tail.truncate(10, &budget);
        assert_eq!(budget.bytes(), 0);
        tail.extend(&[3; 9000], &budget);
        assert_eq!(budget.bytes(), 8192);
        tail.clear(&budget);
        assert_eq!((budget.bytes(), tail.len()), (0, 0));
    }

    #[test]
    fn the_synced_prefix_never_outgrows_the_tail() {
        let budget = Budget::default();
        let mut tail = Tail::default();
        tail.extend(b"abcdef", &budget);
        tail.mark_synced();
        assert!(tail.is_all_synced());
        tail.extend(b"gh", &budget);
        assert_eq!(tail.unsynced(), (6, &b"gh"[..]));
        tail.truncate(4, &budget);
        assert_eq!(tail.unsynced(), (4, &b""[..]));
        tail.unsync();
        assert_eq!(tail.unsynced(), (0, &b"abcd"[..]));
    }
}
