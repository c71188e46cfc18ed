//! Space freed since the last durable commit, and the tickets that free it.

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

/// Pending extents in the order they were freed (for commits) and by start
/// (for queries and for the end of the file).
#[derive(Debug, Clone, Default)]
pub(crate) struct Pending {
    queue: VecDeque<(u64, Extent)>,
    /// Start -> (length, sequence number).
    by_start: BTreeMap<u64, (u64, u64)>,
    next_seq: u64,
    bytes: u64,
}

impl Pending {
    pub(crate) fn push(&mut self, extent: Extent) {
        debug_assert!(extent.len > 0);
        self.queue.push_back((self.next_seq, extent));
        self.next_seq += 1;
        self.by_start
            .insert(extent.start, (extent.len, self.next_seq - 1));
        self.bytes += extent.len;
    }

    pub(crate) fn ticket(&self) -> CommitTicket {
        CommitTicket {
            upto: self.next_seq,
        }
    }

    /// Removes and returns the oldest pending extent if `ticket` captured it.
    pub(crate) fn pop_captured(&mut self, ticket: &CommitTicket) -> Option<Extent> {
        let &(seq, extent) = self.queue.front()?;
        if seq >= ticket.upto {
            return None;
        }
        self.queue.pop_front();
        self.by_start.remove(&extent.start);
        self.bytes -= extent.len;
        Some(extent)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = Extent> + '_ {
        self.by_start
            .iter()
            .map(|(&start, &(len, _))| Extent::new(start, len))
    }

    /// Sequence number the next freed extent will get.
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Whether any extent freed before sequence number `seq` overlaps
    /// `extent`. Costs the number of pending extents overlapping it.
    pub(crate) fn overlaps_freed_before(&self, extent: Extent, seq: u64) -> bool {
        self.by_start
            .range(..extent.end())
            .rev()
            .take_while(|&(&start, &(len, _))| start + len > extent.start)
            .any(|(_, &(_, freed))| freed < seq)
    }

    /// The queue in freeing order; for consistency checks.
    pub(crate) fn iter_queued(&self) -> impl Iterator<Item = Extent> + '_ {
        self.queue.iter().map(|&(_, extent)| extent)
    }

    pub(crate) fn len(&self) -> usize {
        self.by_start.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }
}
