//! The store-buffering pattern between a collector and a flush, model-checked with loom.
//!
//! The database (crate `seqdb`) collects a lent buffer under a region's shared lock: the
//! collector writes the bytes to the file, adds them to the region's `collected` count,
//! and then marks the region dirty, loading the `dirty` flag first and swapping it in only
//! when it is clear (`RegionState::mark_dirty`). A flush clears the flag with a swap and,
//! when it was set, records the region's length, which counts `collected`. Each side
//! writes one location and then reads the other: with release stores and acquire loads
//! both reads may return the old value (store buffering), so the collector sees the flag
//! still set and leaves it, and the flush records the length without the collected bytes
//! and leaves the region clean. The bytes are then in the file but in no commit, and no
//! later flush records them until something else marks the region dirty.
//!
//! The models below give the outcome that matters: after both, either the flush recorded
//! the collected bytes or the region is still dirty (so the next flush does). Loom finds
//! the losing execution of the release/acquire protocol; three fixes never lose: the
//! collector marking the region with a swap even when the flag looks set, a
//! sequentially consistent fence on both sides, or the lock that guards the collection
//! (the region's `lent` mutex) held by the flush around its swap and its read too.
//!
//! Loom 0.7 treats `SeqCst` loads and stores as acquire/release (its documentation says
//! so), so "SeqCst on all four accesses", although correct, is reported as a loss by this
//! model; `fence(SeqCst)` is modelled exactly, hence the fence variant.
//!
//! ```sh
//! RUSTFLAGS="--cfg loom" cargo test -p seqdb-sys --release --test loom_store_buffering
//! ```
#![cfg(loom)]

use std::sync::atomic::Ordering::{AcqRel, Acquire, Release, SeqCst};

use loom::sync::atomic::{AtomicBool, AtomicU64, fence};
use loom::sync::{Arc, Mutex};
use loom::thread;

/// Bytes the collector takes from the lent buffer.
const TAKEN: u64 = 3;

/// How the collector and the flush order their accesses.
#[derive(Clone, Copy, Debug)]
enum Protocol {
    /// The database's: release store, acquire load of the flag, swap only when clear.
    ReleaseAcquire,
    /// The collector swaps the flag in whatever it looks like: the two swaps are ordered.
    CollectorSwaps,
    /// `fence(SeqCst)` between each side's write and its read.
    SeqCstFences,
    /// Both sides do their write and their read under one lock.
    Lock,
}

/// The part of a region both sides touch.
struct Region {
    /// Bytes collected into the file since the last commit recorded the region.
    collected: AtomicU64,
    /// Whether the next flush must record the region.
    dirty: AtomicBool,
    /// The lock held around a collection (the region's `lent` mutex).
    lent: Mutex<()>,
}

impl Region {
    /// A region changed since the last commit (so dirty), with nothing collected yet.
    fn new() -> Self {
        Region {
            collected: AtomicU64::new(0),
            dirty: AtomicBool::new(true),
            lent: Mutex::new(()),
        }
    }

    /// Count `taken` collected bytes, then mark the region dirty.
    fn collect(&self, taken: u64, protocol: Protocol) {
        let _lent = self.lent.lock().unwrap();
        let collected = self.collected.load(Acquire);
        self.collected.store(collected + taken, Release);
        match protocol {
            Protocol::CollectorSwaps => {
                self.dirty.swap(true, AcqRel);
            }
            Protocol::SeqCstFences => {
                fence(SeqCst);
                self.mark_dirty();
            }
            Protocol::ReleaseAcquire | Protocol::Lock => self.mark_dirty(),
        }
    }

    /// The database's way: a load first, to skip the locked instruction when set.
    fn mark_dirty(&self) {
        if !self.dirty.load(Acquire) {
            self.dirty.swap(true, AcqRel);
        }
    }

    /// Clear the flag; when it was set, return the count the commit records.
    fn flush(&self, protocol: Protocol) -> Option<u64> {
        let _lent = matches!(protocol, Protocol::Lock).then(|| self.lent.lock().unwrap());
        if !self.dirty.swap(false, AcqRel) {
            return None;
        }
        if let Protocol::SeqCstFences = protocol {
            fence(SeqCst);
        }
        Some(self.collected.load(Acquire))
    }
}

/// A collector and a flush run at once; afterwards the bytes must be recorded or the
/// region still dirty.
fn collect_during_a_flush(protocol: Protocol) {
    // The model is tiny: loom explores it without a preemption bound unless
    // `LOOM_MAX_PREEMPTIONS` sets one.
    let builder = loom::model::Builder::new();
    builder.check(move || {
        let region = Arc::new(Region::new());
        let collector = {
            let region = region.clone();
            thread::spawn(move || region.collect(TAKEN, protocol))
        };
        let recorded = region.flush(protocol);
        collector.join().unwrap();
        let dirty = region.dirty.load(Acquire);
        assert!(
            recorded == Some(TAKEN) || dirty,
            "collected bytes lost ({protocol:?}): the flush recorded {recorded:?} of \
             {TAKEN} and left the region clean"
        );
    });
}

#[test]
#[should_panic(expected = "collected bytes lost")]
fn release_acquire_on_both_sides_can_lose_the_collected_bytes() {
    collect_during_a_flush(Protocol::ReleaseAcquire);
}

#[test]
fn a_collector_that_always_swaps_never_loses_them() {
    collect_during_a_flush(Protocol::CollectorSwaps);
}

#[test]
fn seq_cst_fences_on_both_sides_never_lose_them() {
    collect_during_a_flush(Protocol::SeqCstFences);
}

#[test]
fn one_lock_around_both_sides_never_loses_them() {
    collect_during_a_flush(Protocol::Lock);
}
