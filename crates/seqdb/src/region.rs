//! A region's metadata as callers see it, and its live state inside the database.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex;
use seqdb_sys::Consumer;

use crate::format::RegionEntry;
use crate::tail::Tail;

/// A snapshot of one region's metadata.
///
/// `start` and `reserved` are multiples of [`PAGE_SIZE`](crate::PAGE_SIZE) and
/// `len <= reserved`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    name: String,
    number: usize,
    start: u64,
    len: u64,
    reserved: u64,
}

impl Region {
    /// The region's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The region's number, stable across reopen.
    pub fn number(&self) -> usize {
        self.number
    }
    /// Offset of the region's first byte in the data file (page-aligned).
    pub fn start(&self) -> u64 {
        self.start
    }
    /// Number of bytes in the region.
    pub fn len(&self) -> u64 {
        self.len
    }
    /// Whether the region holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Bytes of the data file set aside for the region (page-aligned, at least `len`).
    pub fn reserved(&self) -> u64 {
        self.reserved
    }
}

/// The live state of a region, behind its own lock.
///
/// The region's bytes, in order: `[0, written)` in the data file; then the in-memory
/// [`Tail`] of small appends (a prefix of which may also be in the file); then `collected`
/// bytes taken from a lent buffer by a holder of the shared lock, which are in the file.
/// So the region's length is `written + tail.len() + collected`, and `collected` is
/// non-zero only while the whole tail is in the file too (a shared holder writes the tail
/// out before collecting past it). The next holder of the write lock folds both into
/// `written` ([`Inner::fold`](crate::database::Inner::fold)).
///
/// A thread appending to the region over and over may be lent a buffer of its own
/// (see `fast_append`): its bytes follow all of the above until they are collected, and
/// the reservation always has room for all the buffer could hold.
#[derive(Debug)]
pub(crate) struct RegionState {
    pub name: String,
    pub number: usize,
    pub start: u64,
    pub reserved: u64,
    pub written: u64,
    pub tail: Tail,
    /// Bytes in the file after the tail, collected under a shared lock.
    pub collected: AtomicU64,
    /// The receiving end of a buffer lent to one appending thread. Its mutex also keeps
    /// `collected` and the tail's synced prefix from changing while held.
    pub lent: Mutex<Option<Consumer>>,
    /// Set when the region is removed; stale handles then see an unknown region.
    pub removed: bool,
    /// Whether the region is in the list of regions changed since the last commit.
    pub dirty: AtomicBool,
    /// The length the last durable commit recorded (bytes up to it must not be punched).
    pub committed_len: AtomicU64,
}

impl RegionState {
    pub fn new(name: String, number: usize, start: u64, reserved: u64) -> Self {
        RegionState {
            name,
            number,
            start,
            reserved,
            written: 0,
            tail: Tail::default(),
            collected: AtomicU64::new(0),
            lent: Mutex::new(None),
            removed: false,
            dirty: AtomicBool::new(false),
            committed_len: AtomicU64::new(0),
        }
    }

    pub fn from_entry(entry: RegionEntry, number: usize) -> Self {
        RegionState {
            name: entry.name,
            number,
            start: entry.start,
            reserved: entry.reserved,
            written: entry.len,
            tail: Tail::default(),
            collected: AtomicU64::new(0),
            lent: Mutex::new(None),
            removed: false,
            dirty: AtomicBool::new(false),
            committed_len: AtomicU64::new(entry.len),
        }
    }

    /// The region's length: the bytes in the file and those still in the tail (not
    /// those of a lent buffer not collected yet).
    #[inline]
    pub fn len(&self) -> u64 {
        self.written + self.tail.len() as u64 + self.collected.load(Ordering::Acquire)
    }

    /// Where the bytes collected from a lent buffer under a shared lock go next.
    pub fn collect_offset(&self) -> u64 {
        self.start + self.len()
    }

    /// Room the reservation keeps beyond the length for a lent buffer: what it holds
    /// and what it may still take.
    #[inline]
    pub fn headroom(&mut self) -> u64 {
        self.lent
            .get_mut()
            .as_ref()
            .map_or(0, |lent| lent.reach() as u64)
    }

    /// The metadata as callers see it: the length counts bytes still in memory, in the
    /// tail or a lent buffer (the reservation has room for them).
    pub fn snapshot(&self) -> Region {
        let lent = self.lent.lock();
        let pending = lent.as_ref().map_or(0, |lent| lent.pending().len());
        self.snapshot_with_len(self.len() + pending as u64)
    }

    /// The metadata with a given length (a reader's, say).
    pub fn snapshot_with_len(&self, len: u64) -> Region {
        Region {
            name: self.name.clone(),
            number: self.number,
            start: self.start,
            len,
            reserved: self.reserved,
        }
    }

    /// The metadata a commit records: only bytes in the data file count.
    pub fn entry(&self) -> RegionEntry {
        RegionEntry {
            number: self.number as u64,
            start: self.start,
            reserved: self.reserved,
            len: self.len(),
            name: self.name.clone(),
        }
    }

    /// Mark the region changed; returns true when the caller must add it to the dirty list.
    #[inline]
    pub fn mark_dirty(&self) -> bool {
        !self.dirty.load(Ordering::Acquire) && !self.dirty.swap(true, Ordering::AcqRel)
    }

    pub fn committed_len(&self) -> u64 {
        self.committed_len.load(Ordering::Acquire)
    }
}
