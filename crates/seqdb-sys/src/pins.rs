//! The pin table: which byte ranges are being read through views and which
//! are being modified, so that the two never meet.
//!
//! Read pins are kept as a step function, the number of views covering each
//! byte: a map from each offset where that number changes to the number from
//! there on. Whether a range is read by any view is then one lookup and one
//! step, whatever the number of views, so a database with a view published
//! for each of many regions still writes at the cost of a map lookup. Pinning
//! a view costs `O(log n + k)` for the `k` steps inside its range (views of
//! one region all start at the region's start, so `k` is the number of views
//! of that region with different lengths).
//!
//! Modifications in flight (writes, punches, length changes) are few, one per
//! thread at most: they are a plain vector.

use std::collections::BTreeMap;

/// What a pinned range is being used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PinKind {
    /// A live view reads the range: its bytes must not change.
    Read,
    /// A write or punch is changing the range: no view may see it meanwhile.
    Write,
    /// A change of the file's length from this offset on: nothing else may
    /// touch the range meanwhile.
    Exclusive,
}

/// Identifies one pin for [`Pins::unpin`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PinId {
    /// Unique among modifications; unused for reads, which are counted.
    id: u64,
    start: u64,
    end: u64,
    kind: PinKind,
}

/// A modification in flight.
#[derive(Debug)]
struct Change {
    id: u64,
    start: u64,
    end: u64,
    kind: PinKind,
}

/// A multiset of pinned half-open ranges. Empty ranges overlap nothing.
///
/// Invariants of `reads`: a key's value is the number of read pins covering
/// every byte from that key up to the next key (zero before the first key and
/// from the last key on); no key has the value of the step before it (zero
/// for the first key), so every key is a place where the count changes.
#[derive(Debug, Default)]
pub(crate) struct Pins {
    reads: BTreeMap<u64, u32>,
    /// Live read pins with a non-empty range.
    read_pins: usize,
    /// Live read pins with an empty range (counted, never stored).
    empty_reads: usize,
    changes: Vec<Change>,
    next_id: u64,
}

impl Pins {
    /// Pins `[start, end)` for `kind`, or returns `None` if an incompatible
    /// pin overlaps it. Reads share with reads; concurrent writes race only
    /// with each other, which cannot make a view observe a change; nothing
    /// overlaps an exclusive pin.
    pub(crate) fn try_pin(&mut self, start: u64, end: u64, kind: PinKind) -> Option<PinId> {
        let end = end.max(start);
        let clash_with_changes = self.changes.iter().any(|change| {
            change.start.max(start) < change.end.min(end)
                && !(kind == PinKind::Write && change.kind == PinKind::Write)
        });
        if clash_with_changes || (kind != PinKind::Read && self.read_overlaps(start, end)) {
            return None;
        }
        let id = self.next_id;
        self.next_id += 1;
        if kind == PinKind::Read {
            if start < end {
                self.add_reads(start, end, true);
                self.read_pins += 1;
            } else {
                self.empty_reads += 1;
            }
        } else {
            self.changes.push(Change {
                id,
                start,
                end,
                kind,
            });
        }
        Some(PinId {
            id,
            start,
            end,
            kind,
        })
    }

    /// Removes one pin.
    pub(crate) fn unpin(&mut self, pin: PinId) {
        if pin.kind != PinKind::Read {
            if let Some(index) = self.changes.iter().position(|change| change.id == pin.id) {
                self.changes.swap_remove(index);
            }
        } else if pin.start < pin.end {
            self.add_reads(pin.start, pin.end, false);
            self.read_pins -= 1;
        } else {
            self.empty_reads -= 1;
        }
    }

    /// Number of live pins.
    pub(crate) fn len(&self) -> usize {
        self.read_pins + self.empty_reads + self.changes.len()
    }

    /// Whether any read pin covers a byte of `[start, end)`.
    fn read_overlaps(&self, start: u64, end: u64) -> bool {
        // With no change of the count inside the range, the count at `start`
        // holds for all of it; the first change inside the range, if any,
        // is from zero to more when the count at `start` is zero.
        start < end
            && (self.reads_at(start) > 0
                || self
                    .reads
                    .range((
                        std::ops::Bound::Excluded(start),
                        std::ops::Bound::Excluded(end),
                    ))
                    .next()
                    .is_some())
    }

    /// The number of read pins covering byte `at`.
    fn reads_at(&self, at: u64) -> u32 {
        self.reads.range(..=at).next_back().map_or(0, |(_, &n)| n)
    }

    /// Counts one read pin more (or fewer) over `[start, end)`, `start < end`.
    fn add_reads(&mut self, start: u64, end: u64, more: bool) {
        // Make both ends places where the count may change.
        let at_end = self.reads_at(end);
        let at_start = self.reads_at(start);
        self.reads.entry(end).or_insert(at_end);
        self.reads.entry(start).or_insert(at_start);
        for (_, n) in self.reads.range_mut(start..end) {
            *n = if more {
                *n + 1
            } else {
                debug_assert!(*n > 0, "unpinning a read that is not pinned");
                n.saturating_sub(1)
            };
        }
        // Only the steps at both ends may now repeat the step before them.
        self.drop_if_no_change(end);
        self.drop_if_no_change(start);
    }

    fn drop_if_no_change(&mut self, at: u64) {
        let Some(&here) = self.reads.get(&at) else {
            return;
        };
        let before = self.reads.range(..at).next_back().map_or(0, |(_, &n)| n);
        if before == here {
            self.reads.remove(&at);
        }
    }
}

#[cfg(test)]
mod tests {
    use quickcheck::quickcheck;

    use super::*;

    #[test]
    fn reads_share_and_exclude_writes() {
        let mut pins = Pins::default();
        let a = pins.try_pin(10, 20, PinKind::Read).expect("first read");
        let b = pins.try_pin(15, 25, PinKind::Read).expect("reads share");
        assert!(pins.try_pin(19, 30, PinKind::Write).is_none());
        assert!(pins.try_pin(0, 11, PinKind::Exclusive).is_none());
        assert!(pins.try_pin(25, 30, PinKind::Write).is_some(), "adjacent");
        assert!(pins.try_pin(12, 12, PinKind::Write).is_some(), "empty");
        pins.unpin(a);
        assert!(pins.try_pin(10, 15, PinKind::Write).is_some());
        pins.unpin(b);
        assert!(pins.try_pin(14, 26, PinKind::Exclusive).is_none(), "writes");
        assert!(
            pins.try_pin(15, 25, PinKind::Exclusive).is_some(),
            "between"
        );
    }

    #[test]
    fn writes_exclude_reads_and_exclusive() {
        let mut pins = Pins::default();
        let w = pins.try_pin(100, 200, PinKind::Write).expect("write");
        assert!(pins.try_pin(150, 151, PinKind::Read).is_none());
        assert!(pins.try_pin(150, 400, PinKind::Write).is_some());
        assert!(pins.try_pin(0, u64::MAX, PinKind::Exclusive).is_none());
        assert!(pins.try_pin(199, 300, PinKind::Read).is_none());
        pins.unpin(w);
        assert_eq!(pins.len(), 1);
    }

    #[test]
    fn nested_reads_leave_no_steps_behind() {
        let mut pins = Pins::default();
        let ids: Vec<PinId> = (1..=5)
            .map(|n| pins.try_pin(4096, 4096 + n * 100, PinKind::Read).unwrap())
            .collect();
        assert!(pins.try_pin(4096 + 499, 5000, PinKind::Write).is_none());
        let write = pins.try_pin(4096 + 500, 5000, PinKind::Write).unwrap();
        pins.unpin(write);
        for id in ids {
            pins.unpin(id);
        }
        assert!(pins.reads.is_empty(), "{:?}", pins.reads);
        assert!(pins.try_pin(0, u64::MAX, PinKind::Exclusive).is_some());
    }

    quickcheck! {
        /// A pin is granted exactly when no live incompatible pin overlaps it.
        fn grants_match_a_brute_force_model(ops: Vec<(u8, u8, u8, bool)>) -> bool {
            let mut pins = Pins::default();
            let mut live: Vec<(PinId, u64, u64, PinKind)> = Vec::new();
            for (a, b, kind, remove) in ops {
                if remove && !live.is_empty() {
                    let (id, ..) = live.remove(usize::from(a) % live.len());
                    pins.unpin(id);
                    continue;
                }
                let (start, end) = (u64::from(a.min(b)), u64::from(a.max(b)));
                let kind = match kind % 3 {
                    0 => PinKind::Read,
                    1 => PinKind::Write,
                    _ => PinKind::Exclusive,
                };
                let clash = live.iter().any(|&(_, s, e, k)| {
                    let overlap = (start..end).any(|x| (s..e).contains(&x));
                    overlap && !(k == kind && kind != PinKind::Exclusive)
                });
                match pins.try_pin(start, end, kind) {
                    Some(id) if !clash => live.push((id, start, end, kind)),
                    None if clash => {}
                    _ => return false,
                }
                if pins.len() != live.len() {
                    return false;
                }
            }
            // Every read unpinned: no step is left.
            for (id, ..) in live {
                pins.unpin(id);
            }
            pins.reads.is_empty() && pins.len() == 0
        }
    }
}
