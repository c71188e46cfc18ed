//! A region's newest bytes, gathered in memory until they are written to the data file.

use std::sync::atomic::{AtomicUsize, Ordering};

/// A tail keeps no more than this much capacity once emptied, so that a region that once
/// buffered a lot does not hold the memory for good.
const KEEP_CAPACITY: usize = 128 * 1024;

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
///   write lock.
#[derive(Debug, Default)]
pub(crate) struct Tail {
    bytes: Vec<u8>,
    synced: AtomicUsize,
}

impl Tail {
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

    /// Record that every byte is in the data file. Shared holders call it under the
    /// region's lent-buffer mutex, after writing [`unsynced`](Self::unsynced).
    pub fn mark_synced(&self) {
        self.synced.store(self.bytes.len(), Ordering::Relaxed);
    }

    /// Whether every byte of a non-empty tail is in the data file.
    #[inline]
    pub fn is_all_synced(&mut self) -> bool {
        !self.bytes.is_empty() && *self.synced.get_mut() == self.bytes.len()
    }

    /// Append bytes (not in the file yet).
    #[inline]
    pub fn extend(&mut self, data: &[u8]) {
        self.bytes.extend_from_slice(data);
    }

    /// Keep only the first `len` bytes.
    pub fn truncate(&mut self, len: usize) {
        self.bytes.truncate(len);
        let synced = self.synced.get_mut();
        *synced = (*synced).min(len);
    }

    /// Drop every byte, and the memory if the tail once grew large.
    pub fn clear(&mut self) {
        self.truncate(0);
        if self.bytes.capacity() > KEEP_CAPACITY {
            self.bytes = Vec::new();
        }
    }

    /// Forget which bytes are in the file (the region moved: they are at its old place).
    pub fn unsync(&mut self) {
        *self.synced.get_mut() = 0;
    }
}
