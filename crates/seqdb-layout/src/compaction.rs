//! Compaction: rounds of moves that pack the regions from the start of the
//! space the layout manages.

use crate::extent::tight_reserved;
use crate::{Extent, Layout, Move, Placement, RegionKey};

impl Layout {
    /// Whether the layout is compact: no holes, nothing pending, and the
    /// regions packed from the layout's [base](Self::base), each reserving exactly
    /// `max(round_up(len), PAGE_SIZE)`. Constant time.
    pub fn is_compact(&self) -> bool {
        self.holes.is_empty() && self.pending.is_empty() && self.reserved_bytes == self.tight_bytes
    }

    /// One round of compaction: the moves that are safe to execute now,
    /// already applied to the layout. Empty when the layout is
    /// [compact](Self::is_compact), or when every remaining move waits for
    /// pending space that only a commit frees.
    ///
    /// The caller copies each move's bytes, makes a commit durable
    /// ([`begin_commit`](Self::begin_commit), then
    /// [`finish_commit`](Self::finish_commit)) and calls again until the
    /// round is empty. Committing before the first round lets compaction
    /// reuse space freed earlier; from a committed state, compaction needs at
    /// most two rounds with moves.
    ///
    /// Regions keep their relative order. Each one's target is the sum of the
    /// tight reservations of the regions before it; a moved region reserves
    /// exactly `max(round_up(len), PAGE_SIZE)`, and its old extent becomes
    /// pending. A region whose target is free space moves there. A region
    /// whose target overlaps space freed before this round waits for the
    /// commit that frees it. A region whose target is otherwise occupied (by
    /// its own extent, another region, or space freed earlier in this round)
    /// moves past the end of the file, and a later round brings it down; one
    /// already there waits for the regions in its way to leave. A region
    /// already at its target with a larger reservation keeps its bytes where
    /// they are: its reservation shrinks (the tail becomes pending) and the
    /// round reports a move with `from == to` and `len == 0`.
    ///
    /// Destinations never overlap pending space, live regions, or each
    /// other, so the bytes referenced by the last durable commit stay intact
    /// until the next one.
    pub fn compaction_step(&mut self) -> Vec<Move> {
        if self.is_compact() {
            self.parked.clear();
            return Vec::new();
        }
        let mut order: Vec<(u64, bool, RegionKey)> = self
            .regions
            .iter()
            .map(|(&key, placement)| match self.parked.get(&key) {
                Some(&position) => (position, false, key),
                None => (placement.start, true, key),
            })
            .collect();
        order.sort_unstable();

        let round = self.pending.next_seq();
        let mut moves = Vec::new();
        let mut target = self.base;
        for (_, _, key) in order {
            let Some(placement) = self.get(key) else {
                continue;
            };
            let size = tight_reserved(placement.len);
            if placement.start == target {
                if placement.reserved > size {
                    self.pending.push(Extent::new(
                        placement.start + size,
                        placement.reserved - size,
                    ));
                    self.put(
                        key,
                        Placement {
                            reserved: size,
                            ..placement
                        },
                    );
                    moves.push(Move {
                        region: key,
                        from: placement.start,
                        to: placement.start,
                        len: 0,
                    });
                }
            } else if let Some(hole) = self.holes.containing(Extent::new(target, size)) {
                self.holes.carve(hole, Extent::new(target, size));
                moves.push(self.relocate(key, placement, Extent::new(target, size)));
            } else if self.should_park(key, placement, Extent::new(target, size), round)
                && let Some(end) = self.file_end.checked_add(size)
            {
                let destination = Extent::new(self.file_end, size);
                self.file_end = end;
                moves.push(self.relocate(key, placement, destination));
            }
            // Every region now sits at its target or remembers it, so the
            // next round sees the same order.
            if self.get(key).is_some_and(|now| now.start == target) {
                self.parked.remove(&key);
            } else {
                self.parked.insert(key, target);
            }
            target += size;
        }
        moves
    }

    /// Whether a region whose target is not free space should move past the
    /// end of the file now rather than wait.
    fn should_park(
        &self,
        key: RegionKey,
        placement: Placement,
        target: Extent,
        round: u64,
    ) -> bool {
        if self.pending.overlaps_freed_before(target, round) {
            // A commit frees the target; moving now would be wasted.
            return false;
        }
        // A region parked above its target waits for the regions in its way
        // to leave; one in its own way, or below its target, has to move.
        !self.parked.contains_key(&key)
            || target.overlaps(&placement.extent())
            || placement.start < target.start
    }

    /// Moves `key` from `placement` to `destination` (already taken out of
    /// the free space); the old reservation becomes pending.
    fn relocate(&mut self, key: RegionKey, placement: Placement, destination: Extent) -> Move {
        self.pending.push(placement.extent());
        self.put(
            key,
            Placement {
                start: destination.start,
                reserved: destination.len,
                len: placement.len,
            },
        );
        Move {
            region: key,
            from: placement.start,
            to: destination.start,
            len: placement.len,
        }
    }
}
