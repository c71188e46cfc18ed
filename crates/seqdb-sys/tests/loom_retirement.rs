//! Model checks of the retirement of extents ([`seqdb_sys::ExtentHold`]) with loom.
//!
//! A database reader is a snapshot: it views the extent its region occupied when it was
//! made, and the region may move away meanwhile. The moved-from extent is retired; it is
//! reclaimed (reused, or punched) only once the last view of it is gone. Here a loom cell
//! stands for the extent's bytes: holders read it, and whoever reclaims the extent writes
//! it, as the next region given that space would. Loom reports a write not ordered after
//! every holder's read by happens-before as a data race, so these models check that no
//! write ever lands in an extent a live view reads, besides the counts asserted: an
//! extent is reclaimed exactly once, and always once every holder is gone.
//!
//! ```sh
//! RUSTFLAGS="--cfg loom" cargo test -p seqdb-sys --release --test loom_retirement
//! ```
//!
//! `cargo xtask ci` runs it. `LOOM_MAX_PREEMPTIONS=<n>` changes the bound (default
//! `loom_common::PREEMPTIONS`).
#![cfg(loom)]

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

use seqdb_sys::ExtentHold;

mod loom_common;

use loom_common::check;

/// One extent: its hold, one cell standing for its bytes, and how many times it was
/// reclaimed.
struct Extent {
    hold: ExtentHold,
    byte: UnsafeCell<u8>,
    reclaimed: AtomicUsize,
}

impl Extent {
    fn new() -> Arc<Self> {
        Arc::new(Extent {
            hold: ExtentHold::new(),
            byte: UnsafeCell::new(7),
            reclaimed: AtomicUsize::new(0),
        })
    }

    /// What a reader does with the extent while it holds it.
    fn read(&self) {
        let byte = self.byte.with(|byte| {
            // SAFETY: the cell is alive (this extent is), and a holder only reads it; that
            // no write of it races with this read is what loom checks.
            unsafe { *byte }
        });
        assert_eq!(byte, 7, "a holder saw the extent reused");
    }

    /// The extent was reclaimed by this thread: reuse it, as the next region would.
    fn reuse(&self) {
        self.reclaimed.fetch_add(1, Ordering::Relaxed);
        self.byte.with_mut(|byte| {
            // SAFETY: the cell is alive, and the one reclaimer is its only writer; that every
            // holder's read happens-before this write is what loom checks.
            unsafe { *byte = 8 }
        });
    }

    /// A flush or a punch: reclaim the extent if it may be.
    fn reclaim_pass(&self) {
        if self.hold.try_reclaim() {
            self.reuse();
        }
    }
}

/// Two readers drop their views on their own threads while the region moves away and a
/// flush looks for extents to reclaim. No reuse before both reads; exactly one reuse in
/// the end, after a last pass with every reader gone.
#[test]
fn readers_dropping_while_a_flush_reclaims() {
    check(|| {
        let extent = Extent::new();
        // Views are made while the extent is current (under the region's lock).
        assert!(extent.hold.acquire());
        assert!(extent.hold.acquire());
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let extent = extent.clone();
                thread::spawn(move || {
                    extent.read();
                    extent.hold.release();
                })
            })
            .collect();
        // The region moves away.
        if extent.hold.retire() {
            extent.reuse();
        }
        // A flush runs meanwhile.
        extent.reclaim_pass();
        for reader in readers {
            reader.join().unwrap();
        }
        // The next flush, with every reader gone.
        extent.reclaim_pass();
        assert_eq!(extent.reclaimed.load(Ordering::Relaxed), 1);
    });
}

/// A reader drops its view while two reclaim passes (a flush and a punch on other
/// threads) race: one of the three reclaims the extent, once.
#[test]
fn reclaim_passes_racing_each_other_reclaim_once() {
    check(|| {
        let extent = Extent::new();
        assert!(extent.hold.acquire());
        assert!(!extent.hold.retire());
        let passes: Vec<_> = (0..2)
            .map(|_| {
                let extent = extent.clone();
                thread::spawn(move || extent.reclaim_pass())
            })
            .collect();
        extent.read();
        extent.hold.release();
        for pass in passes {
            pass.join().unwrap();
        }
        extent.reclaim_pass();
        assert_eq!(extent.reclaimed.load(Ordering::Relaxed), 1);
    });
}

/// A holder arriving while the extent retires is either refused, or counted before the
/// retirement and then waited for: the extent is never reused under its read.
#[test]
fn a_holder_arriving_as_the_extent_retires() {
    check(|| {
        let extent = Extent::new();
        let late = {
            let extent = extent.clone();
            thread::spawn(move || {
                if extent.hold.acquire() {
                    extent.read();
                    extent.hold.release();
                }
            })
        };
        if extent.hold.retire() {
            extent.reuse();
        }
        extent.reclaim_pass();
        late.join().unwrap();
        extent.reclaim_pass();
        assert_eq!(extent.reclaimed.load(Ordering::Relaxed), 1);
        assert!(extent.hold.is_reclaimed());
        // Once retired, nobody is let in.
        assert!(!extent.hold.acquire());
    });
}

/// The database writes in place, instead of copying the region elsewhere, when its
/// current extent has no holder, counted under the region's write lock. A reader that
/// released its view on another thread is then ordered before the write.
#[test]
fn a_write_in_place_after_the_last_holder_left() {
    check(|| {
        let extent = Extent::new();
        assert!(extent.hold.acquire());
        let reader = {
            let extent = extent.clone();
            thread::spawn(move || {
                extent.read();
                extent.hold.release();
            })
        };
        if extent.hold.holders() == 0 {
            extent.byte.with_mut(|byte| {
                // SAFETY: the cell is alive; no holder is left and none can come (the
                // writer holds the region's lock), and that the reader's read
                // happens-before this write is what loom checks.
                unsafe { *byte = 9 }
            });
        }
        reader.join().unwrap();
    });
}
