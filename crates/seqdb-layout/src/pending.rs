//! Space freed since the last durable commit, space still held by readers, and the
//! tickets that free it.

use std::collections::{BTreeMap, VecDeque};

use crate::Extent;

/// Proof that the pending frees captured at
/// [`Layout::begin_commit`](crate::Layout::begin_commit) exist.
///
/// Only `begin_commit` makes one, and it cannot be copied: hand it to
/// [`Layout::finish_commit`](crate::Layout::finish_commit) once the commit is
/// durable, or drop it if the commit failed. A ticket belongs to the layout
/// that issued it.
#[derive(Debug)]
#[must_use = "finish the commit with this ticket once it is durable"]
pub struct CommitTicket {
    /// Every pending extent with a sequence number below this was captured.
    pub(crate) upto: u64,
}

/// One freed extent that is not free space yet.
#[derive(Debug, Clone, Copy)]
struct Entry {
    len: u64,
    /// When it was freed.
    seq: u64,
    /// Still waiting for a commit (in the queue).
    queued: bool,
    /// Still viewed by a reader: not free even after its commit.
    held: bool,
}

/// Freed extents that are not free space yet: those waiting for a commit, in the order
/// they were freed (for commits), and those *held* (viewed by readers) whether their
/// commit is done or not. All of them by start, for queries and for the end of the file.
///
/// An extent is free once its commit is durable and it is not held, whichever comes
/// last.
#[derive(Debug, Clone, Default)]
pub(crate) struct Pending {
    queue: VecDeque<(u64, Extent)>,
    by_start: BTreeMap<u64, Entry>,
    next_seq: u64,
    /// Bytes of extents that are not held.
    bytes: u64,
    /// Bytes of held extents.
    held_bytes: u64,
}

impl Pending {
    pub(crate) fn push(&mut self, extent: Extent) {
        debug_assert!(extent.len > 0);
        self.queue.push_back((self.next_seq, extent));
        self.by_start.insert(
            extent.start,
            Entry {
                len: extent.len,
                seq: self.next_seq,
                queued: true,
                held: false,
            },
        );
        self.next_seq += 1;
        self.bytes += extent.len;
    }

    pub(crate) fn ticket(&self) -> CommitTicket {
        CommitTicket {
            upto: self.next_seq,
        }
    }

    /// Removes and returns the oldest pending extent that `ticket` captured and that is
    /// not held; captured extents that are held stay, no longer waiting for a commit.
    pub(crate) fn pop_captured(&mut self, ticket: &CommitTicket) -> Option<Extent> {
        loop {
            let &(seq, extent) = self.queue.front()?;
            if seq >= ticket.upto {
                return None;
            }
            self.queue.pop_front();
            let Some(entry) = self.by_start.get_mut(&extent.start) else {
                continue;
            };
            if entry.held {
                entry.queued = false;
                continue;
            }
            self.by_start.remove(&extent.start);
            self.bytes -= extent.len;
            return Some(extent);
        }
    }

    /// Marks a pending extent as held. False when `extent` is not exactly a pending
    /// extent that is not held already.
    pub(crate) fn hold(&mut self, extent: Extent) -> bool {
        match self.by_start.get_mut(&extent.start) {
            Some(entry) if entry.len == extent.len && !entry.held => {
                entry.held = true;
                self.bytes -= extent.len;
                self.held_bytes += extent.len;
                true
            }
            _ => false,
        }
    }

    /// Ends the hold of `extent`. Returns it when it is free now (its commit is done);
    /// otherwise it waits for its commit as before, or was not held (`Err`).
    pub(crate) fn unhold(&mut self, extent: Extent) -> Result<Option<Extent>, ()> {
        match self.by_start.get_mut(&extent.start) {
            Some(entry) if entry.len == extent.len && entry.held => {
                entry.held = false;
                self.held_bytes -= extent.len;
                if entry.queued {
                    self.bytes += extent.len;
                    Ok(None)
                } else {
                    self.by_start.remove(&extent.start);
                    Ok(Some(extent))
                }
            }
            _ => Err(()),
        }
    }

    /// Every extent not free yet, held or not.
    pub(crate) fn iter(&self) -> impl Iterator<Item = Extent> + '_ {
        self.by_start
            .iter()
            .map(|(&start, entry)| Extent::new(start, entry.len))
    }

    /// The held extents.
    pub(crate) fn iter_held(&self) -> impl Iterator<Item = Extent> + '_ {
        self.by_start
            .iter()
            .filter(|(_, entry)| entry.held)
            .map(|(&start, entry)| Extent::new(start, entry.len))
    }

    /// Sequence number the next freed extent will get.
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Whether any extent freed before sequence number `seq` (held ones included)
    /// overlaps `extent`. Costs the number of pending extents overlapping it.
    pub(crate) fn overlaps_freed_before(&self, extent: Extent, seq: u64) -> bool {
        self.by_start
            .range(..extent.end())
            .rev()
            .take_while(|&(&start, entry)| start + entry.len > extent.start)
            .any(|(_, entry)| entry.seq < seq)
    }

    /// The extents waiting for a commit, by start, as the index says; for consistency
    /// checks.
    pub(crate) fn iter_waiting(&self) -> impl Iterator<Item = Extent> + '_ {
        self.by_start
            .iter()
            .filter(|(_, entry)| entry.queued)
            .map(|(&start, entry)| Extent::new(start, entry.len))
    }

    /// The extents waiting for a commit, in freeing order; for consistency checks.
    pub(crate) fn iter_queued(&self) -> impl Iterator<Item = Extent> + '_ {
        self.queue.iter().map(|&(_, extent)| extent)
    }

    /// Extents not free yet, held or not.
    pub(crate) fn len(&self) -> usize {
        self.by_start.len()
    }

    /// Whether every freed extent is free space again.
    pub(crate) fn is_empty(&self) -> bool {
        self.by_start.is_empty()
    }

    /// Bytes of extents waiting only for a commit.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Bytes of held extents.
    pub(crate) fn held_bytes(&self) -> u64 {
        self.held_bytes
    }
}
