//! Model checks of [`seqdb_sys::CurrentMark`] with loom: the mark by which readers share a
//! region's snapshot while the region does not change.
//!
//! A database reader of a region that has not changed since the last snapshot shares
//! that snapshot: its thread remembers the snapshot and checks its mark, with no lock.
//! Whoever changes the region clears the mark under the region's write lock. The models
//! check that a reader that comes after a change, by taking the region's lock after the
//! writer or by learning of the change from the writer's thread without it, never shares
//! the snapshot from before; and that a reader sharing a snapshot reads its bytes while the
//! writer writes the region's new bytes elsewhere (copy-on-write), with no data race.
//!
//! ```sh
//! RUSTFLAGS="--cfg loom" cargo test -p seqdb-sys --release --test loom_current_mark
//! ```
//!
//! `cargo xtask ci` runs it. `LOOM_MAX_PREEMPTIONS=<n>` changes the bound (default
//! `loom_common::PREEMPTIONS`).
#![cfg(loom)]

use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::{Arc, RwLock};
use loom::thread;

use seqdb_sys::CurrentMark;

mod loom_common;

use loom_common::check;

/// A region: its length under its lock, the mark of its published snapshot, the bytes the
/// snapshot views (never written once taken) and the place the region writes next.
struct Region {
    len: RwLock<u64>,
    mark: CurrentMark,
    snapshot_bytes: UnsafeCell<u8>,
    new_bytes: UnsafeCell<u8>,
    /// Set by the writer's thread after its write returned, for a reader that learns of
    /// the write without the region's lock.
    written: AtomicBool,
}

impl Region {
    fn new() -> Arc<Self> {
        Arc::new(Region {
            len: RwLock::new(1),
            mark: CurrentMark::new(true),
            snapshot_bytes: UnsafeCell::new(7),
            new_bytes: UnsafeCell::new(0),
            written: AtomicBool::new(false),
        })
    }

    /// An append that changes the region: under the write lock, its bytes go to their new
    /// place, the length grows and the mark is cleared before the lock is let go.
    fn append(&self) {
        let mut len = self.len.write().unwrap();
        self.new_bytes.with_mut(|byte| {
            // SAFETY: the cell is alive (the region is) and only the holder of the write
            // lock writes it; that no snapshot read races with it is what loom checks.
            unsafe { *byte = 8 }
        });
        *len = 2;
        self.mark.clear();
        drop(len);
        self.written.store(true, Ordering::Release);
    }

    /// A reader by the thread's memory: it shares the snapshot if the mark says current,
    /// and then reads the snapshot's bytes. Returns whether it shared it.
    fn share(&self) -> bool {
        if !self.mark.is_current() {
            return false;
        }
        let byte = self.snapshot_bytes.with(|byte| {
            // SAFETY: the cell is alive, and nobody writes a snapshot's bytes.
            unsafe { *byte }
        });
        assert_eq!(byte, 7, "a shared snapshot changed");
        true
    }
}

/// A reader that takes the region's lock and sees the append's length never shares the
/// snapshot from before it.
#[test]
fn a_reader_after_the_writers_lock_never_shares_the_old_snapshot() {
    check(|| {
        let region = Region::new();
        let writer = {
            let region = region.clone();
            thread::spawn(move || region.append())
        };
        let len = *region.len.read().unwrap();
        if len == 2 {
            assert!(
                !region.share(),
                "shared a snapshot older than what the lock showed"
            );
        }
        writer.join().unwrap();
        assert!(
            !region.share(),
            "shared a snapshot after the writer was joined"
        );
    });
}

/// A reader on another thread that learns of the append from the writer's thread, without
/// the region's lock, never shares the snapshot from before it; one that has not learned
/// of it may, and then reads bytes nobody writes.
#[test]
fn a_reader_told_of_the_write_never_shares_the_old_snapshot() {
    check(|| {
        let region = Region::new();
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let region = region.clone();
                thread::spawn(move || {
                    let told = region.written.load(Ordering::Acquire);
                    let shared = region.share();
                    assert!(!(told && shared), "shared the snapshot after being told");
                })
            })
            .collect();
        region.append();
        assert!(
            !region.share(),
            "the writer's own thread shared the old snapshot"
        );
        for reader in readers {
            reader.join().unwrap();
        }
    });
}
