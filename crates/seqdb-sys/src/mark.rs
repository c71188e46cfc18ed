//! [`CurrentMark`]: whether a shared value still describes what it was taken of.

use crate::sync_shim::{AtomicBool, Ordering};

/// Whether a shared value (a region's snapshot) still describes the current state of what
/// it was taken of, so that a new user may share it rather than take a new one.
///
/// Whoever changes the state clears the mark under the lock that orders the changes,
/// before letting that lock go; users check it without a lock. The clear is a release
/// store and the check an acquire load, so a check that happens after the clear (its
/// thread took the lock after the changer, or learned of the change by any other
/// synchronisation, or is the changer) finds it cleared. Once cleared it stays cleared.
/// Loom checks this (`tests/loom_current_mark.rs`).
#[derive(Debug)]
pub struct CurrentMark(AtomicBool);

impl CurrentMark {
    /// A mark, current or not.
    pub fn new(current: bool) -> Self {
        CurrentMark(AtomicBool::new(current))
    }

    /// Whether the state has not changed since the value was taken.
    #[inline]
    pub fn is_current(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// The state changed, or is about to under the caller's lock: the value is not current
    /// any more.
    #[inline]
    pub fn clear(&self) {
        // A load first, so that clearing a cleared mark writes nothing: the cache line
        // stays shared among the threads that check it.
        if self.0.load(Ordering::Relaxed) {
            self.0.store(false, Ordering::Release);
        }
    }
}
