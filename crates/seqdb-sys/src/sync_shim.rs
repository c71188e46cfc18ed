//! The concurrency primitives of the [`handoff`](fn@crate::handoff) buffer and of
//! [`ExtentHold`](crate::ExtentHold), taken from `std` in normal builds and from
//! [loom](https://docs.rs/loom) when the crate is built with `--cfg loom`, so that loom can
//! check their protocols over the interleavings of their threads and the values their
//! atomic loads may return (`tests/loom_handoff.rs`, `tests/loom_retirement.rs`).
//!
//! In a normal build `Arc` and the atomics are the `std` items themselves, and
//! [`ByteCells`] is a boxed slice of `std::cell::UnsafeCell` whose two accessors are one
//! `memcpy` and one slice construction: nothing is added to the buffer's fast path.

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;

pub(crate) use std::sync::atomic::Ordering;

#[cfg(loom)]
pub(crate) use loom::sync::Arc;
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicUsize};
#[cfg(not(loom))]
pub(crate) use std::sync::Arc;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicUsize};

/// A fixed number of bytes, initially uninitialised, that threads share without a lock.
/// Every access goes through an `unsafe` method whose caller promises that no write of a
/// byte is concurrent with another access to that byte: the callers order them with
/// atomics.
///
/// Under loom each byte also has a `loom::cell::UnsafeCell<()>`, its shadow: each write of
/// the byte happens inside a `with_mut` of its shadow, and each read is registered with a
/// `with` of it. Loom then reports any two accesses to one byte, one of them a write, that
/// are not ordered by happens-before: a data race, found even in interleavings where the
/// bytes read happen to be right. One cell per byte is costly for loom, so loom tests use
/// buffers of a few bytes.
pub(crate) struct ByteCells {
    bytes: Box<[UnsafeCell<MaybeUninit<u8>>]>,
    #[cfg(loom)]
    shadow: Box<[loom::cell::UnsafeCell<()>]>,
}

// SAFETY: the only accesses to the bytes through a shared reference are `write` and `read`,
// both `unsafe`, whose callers promise that no write is concurrent with another access to
// the same byte. Sharing the array between threads therefore cannot make a data race.
unsafe impl Sync for ByteCells {}

impl ByteCells {
    /// `len` uninitialised bytes.
    pub(crate) fn new(len: usize) -> Self {
        ByteCells {
            bytes: std::iter::repeat_with(|| UnsafeCell::new(MaybeUninit::uninit()))
                .take(len)
                .collect(),
            #[cfg(loom)]
            shadow: std::iter::repeat_with(|| loom::cell::UnsafeCell::new(()))
                .take(len)
                .collect(),
        }
    }

    /// How many bytes there are.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Copy `data` into the bytes from `at` on.
    ///
    /// # Safety
    ///
    /// `at + data.len() <= self.len()`, and no other thread accesses any of the bytes
    /// `[at, at + data.len())` unless this call happens-before that access (for instance,
    /// the caller publishes them afterwards with a release store that the reader loads
    /// with acquire ordering) or that access happens-before this call.
    #[inline]
    pub(crate) unsafe fn write(&self, at: usize, data: &[u8]) {
        #[cfg(not(loom))]
        // SAFETY: the range is inside the array (the caller's promise), so the destination
        // is valid for `data.len()` bytes, and no other thread accesses it meanwhile (the
        // caller's promise). `data` is a shared borrow, so it cannot overlap bytes that
        // are only ever reached through `UnsafeCell`.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.base().add(at), data.len());
        }
        #[cfg(loom)]
        for (i, &byte) in data.iter().enumerate() {
            let cell = &self.bytes[at + i];
            self.shadow[at + i].with_mut(|_| {
                // SAFETY: the byte is inside the array (indexing checked it) and, by the
                // caller's promise, no other thread accesses it meanwhile; loom checks
                // that promise through the shadow's `with_mut` around this write.
                unsafe { cell.get().write(MaybeUninit::new(byte)) }
            });
        }
    }

    /// The bytes `[start, end)`.
    ///
    /// # Safety
    ///
    /// `start <= end <= self.len()`; each byte of the range has been written by
    /// [`write`](Self::write), and that write happens-before this call; and no thread
    /// writes any byte of the range while the returned slice lives.
    #[inline]
    pub(crate) unsafe fn read(&self, start: usize, end: usize) -> &[u8] {
        #[cfg(loom)]
        for shadow in &self.shadow[start..end] {
            // Register a read of each byte now. The slice is read later, but by this
            // thread and before anything it does could order a new write of the range
            // after these reads: the caller promises no write while the slice lives.
            shadow.with(|_| ());
        }
        // SAFETY: the range is inside the array and initialised, the writes of its bytes
        // happen-before this call, and none is written while the slice lives (all by the
        // caller's promise); `MaybeUninit<u8>` in an `UnsafeCell` has the layout of `u8`.
        unsafe { std::slice::from_raw_parts(self.base().add(start).cast_const(), end - start) }
    }

    /// The address of the first byte.
    #[inline]
    fn base(&self) -> *mut u8 {
        UnsafeCell::raw_get(self.bytes.as_ptr()).cast::<u8>()
    }
}

/// The check the handoff's loom tests rely on, shown on the smallest case: one byte
/// written, then published through an atomic flag, then read by a thread that saw the
/// flag. With a release store loom accepts it; with a relaxed one the write does not
/// happen-before the read and loom must report it.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::thread;

    fn publish_one_byte(store: Ordering) {
        loom::model(move || {
            let cells = Arc::new(ByteCells::new(1));
            let published = Arc::new(AtomicBool::new(false));
            let writer = {
                let (cells, published) = (cells.clone(), published.clone());
                thread::spawn(move || {
                    // SAFETY: the byte is in the array, and the reader reads it only after
                    // seeing `published`, which is stored after this write.
                    unsafe { cells.write(0, b"x") };
                    published.store(true, store);
                })
            };
            if published.load(Ordering::Acquire) {
                // SAFETY: with a release store of `published`, loaded here with acquire,
                // the write happens-before this read. With a relaxed store the promise is
                // broken on purpose: loom's check in `read` panics before any byte is read.
                let byte = unsafe { cells.read(0, 1) };
                assert_eq!(byte, b"x");
            }
            writer.join().unwrap();
        });
    }

    #[test]
    fn a_release_store_publishes_the_byte() {
        publish_one_byte(Ordering::Release);
    }

    #[test]
    #[should_panic(expected = "Causality violation")]
    fn a_relaxed_store_does_not() {
        publish_one_byte(Ordering::Relaxed);
    }
}
