//! [`ExtentHold`]: who still views one extent of the data file, and when the extent may be
//! reused.
//!
//! A database region's bytes live in one extent of the data file until the region moves
//! (it outgrew its reservation, was compacted, or was copied so that a write could not
//! touch what a reader views) or is removed. Readers are snapshots: a reader made before
//! the move keeps viewing the old extent. The extent's hold counts those readers' views;
//! once the region has moved away the extent is *retired*, and it is *reclaimed* (handed
//! back to the allocator, to be reused or punched) only when no view is left. The three
//! steps race: views are dropped on any thread, the move happens under the region's lock,
//! and a flush or a hole punch looks for extents to reclaim.
//!
//! Everything is one atomic word: the number of holders, a *retired* bit and a
//! *reclaimed* bit. Every change is a read-modify-write of that word, so all of them are
//! totally ordered and no pattern of crossed loads (store buffering) can arise. The
//! protocol, with `tests/loom_retirement.rs` model-checking it under `--cfg loom`:
//!
//! * [`acquire`](ExtentHold::acquire) adds a holder unless the extent is retired (it then
//!   refuses: no new view of a retired extent);
//! * [`release`](ExtentHold::release) removes one, with release ordering, after the
//!   holder's last read of the extent;
//! * [`retire`](ExtentHold::retire) sets the retired bit; when no holder is left it sets the
//!   reclaimed bit too, and the caller may reuse the extent at once;
//! * [`try_reclaim`](ExtentHold::try_reclaim) sets the reclaimed bit when the extent is
//!   retired and has no holder, and says whether it did: it does so once, for exactly one
//!   caller, and its acquire ordering makes every holder's reads happen-before whatever
//!   the caller then writes to the extent.

use std::fmt;

use crate::sync_shim::{AtomicUsize, Ordering};

/// Set once no new holder may come.
const RETIRED: usize = 1 << (usize::BITS - 1);
/// Set by the one caller that reclaimed the extent.
const RECLAIMED: usize = 1 << (usize::BITS - 2);
/// The bits that count holders.
const HOLDERS: usize = RECLAIMED - 1;

/// The holders of one extent and its retirement (see the module documentation).
pub struct ExtentHold {
    state: AtomicUsize,
}

impl ExtentHold {
    /// A hold with no holder, not retired.
    pub fn new() -> Self {
        ExtentHold {
            state: AtomicUsize::new(0),
        }
    }

    /// Add a holder. Returns false, changing nothing, once the extent is retired.
    ///
    /// # Panics
    ///
    /// When the count of holders would overflow (2^62 on 64-bit targets).
    pub fn acquire(&self) -> bool {
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state & RETIRED != 0 {
                return false;
            }
            assert!(state & HOLDERS < HOLDERS, "too many holders of one extent");
            // Acquire: the holder's reads of the extent come after this, and after the
            // writes that made the extent current (ordered by the caller's region lock).
            match self.state.compare_exchange_weak(
                state,
                state + 1,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => state = now,
            }
        }
    }

    /// Remove a holder: its last read of the extent is done.
    pub fn release(&self) {
        // Release: the holder's reads happen-before the reclaimer's acquire that sees the
        // count this leaves.
        let before = self.state.fetch_sub(1, Ordering::Release);
        debug_assert!(before & HOLDERS > 0, "release without a holder");
    }

    /// The extent is no longer current: no holder may come any more. Returns true when
    /// none is left, in which case the extent is reclaimed by this call and the caller
    /// may reuse it at once; otherwise [`try_reclaim`](Self::try_reclaim) reclaims it
    /// once the last holder is gone. Retiring twice returns false the second time.
    pub fn retire(&self) -> bool {
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state & RETIRED != 0 {
                return false;
            }
            let free = state & HOLDERS == 0;
            let next = state | RETIRED | if free { RECLAIMED } else { 0 };
            match self
                .state
                .compare_exchange_weak(state, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return free,
                Err(now) => state = now,
            }
        }
    }

    /// Reclaim a retired extent that no holder views any more. Returns true for the one
    /// call that does; false while a holder is left, before the extent is retired, and
    /// once it has been reclaimed.
    pub fn try_reclaim(&self) -> bool {
        self.state
            .compare_exchange(
                RETIRED,
                RETIRED | RECLAIMED,
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .is_ok()
    }

    /// The number of holders now. Another thread may add or remove one right after,
    /// unless the caller rules that out (the database counts the holders of a region's
    /// current extent under the region's write lock, when none can be added).
    pub fn holders(&self) -> usize {
        self.state.load(Ordering::Acquire) & HOLDERS
    }

    /// Whether the extent was retired.
    pub fn is_retired(&self) -> bool {
        self.state.load(Ordering::Acquire) & RETIRED != 0
    }

    /// Whether the extent was reclaimed.
    pub fn is_reclaimed(&self) -> bool {
        self.state.load(Ordering::Acquire) & RECLAIMED != 0
    }
}

impl Default for ExtentHold {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ExtentHold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.load(Ordering::Relaxed);
        f.debug_struct("ExtentHold")
            .field("holders", &(state & HOLDERS))
            .field("retired", &(state & RETIRED != 0))
            .field("reclaimed", &(state & RECLAIMED != 0))
            .finish()
    }
}

// Loom's atomics work only inside a loom model: under `--cfg loom` these tests are replaced
// by `tests/loom_retirement.rs`.
#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_retired_extent_is_reclaimed_once_its_last_holder_goes() {
        let hold = ExtentHold::new();
        assert!(hold.acquire() && hold.acquire());
        assert!(!hold.try_reclaim(), "not retired yet");
        assert!(!hold.retire(), "two holders left");
        assert!(!hold.acquire(), "no new holder once retired");
        hold.release();
        assert!(!hold.try_reclaim(), "one holder left");
        hold.release();
        assert_eq!(hold.holders(), 0);
        assert!(hold.try_reclaim());
        assert!(!hold.try_reclaim(), "only once");
        assert!(hold.is_reclaimed() && hold.is_retired());
        assert!(!hold.retire(), "already retired");
    }

    #[test]
    fn an_extent_nobody_holds_is_reclaimed_by_retiring_it() {
        let hold = ExtentHold::new();
        assert!(hold.acquire());
        hold.release();
        assert!(hold.retire());
        assert!(hold.is_reclaimed());
        assert!(!hold.try_reclaim(), "already reclaimed");
    }

    #[test]
    fn holders_from_many_threads_leave_exactly_one_reclaimer() {
        let hold = std::sync::Arc::new(ExtentHold::new());
        for _ in 0..4 {
            assert!(hold.acquire());
        }
        let reclaimed = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    hold.release();
                    if hold.try_reclaim() {
                        reclaimed.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
            if hold.retire() {
                reclaimed.fetch_add(1, Ordering::Relaxed);
            }
        });
        if hold.try_reclaim() {
            reclaimed.fetch_add(1, Ordering::Relaxed);
        }
        assert_eq!(reclaimed.load(Ordering::Relaxed), 1);
    }
}
