//! The pin table: which byte ranges are being read through views and which
//! are being modified, so that the two never meet.
//!
//! The table is a plain vector: pinning and unpinning cost time linear in the
//! number of live pins (live views plus modifications in flight), never in
//! the size of the file.

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

impl PinKind {
    /// Whether overlapping pins of these kinds may coexist. Readers share with
    /// readers; concurrent writers race only with each other, which cannot
    /// make a view observe a change.
    fn compatible(self, other: PinKind) -> bool {
        matches!(
            (self, other),
            (PinKind::Read, PinKind::Read) | (PinKind::Write, PinKind::Write)
        )
    }
}

/// Identifies one pin for [`Pins::unpin`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PinId(u64);

#[derive(Debug)]
struct Pin {
    id: u64,
    start: u64,
    end: u64,
    kind: PinKind,
}

/// A multiset of pinned half-open ranges.
#[derive(Debug, Default)]
pub(crate) struct Pins {
    pins: Vec<Pin>,
    next_id: u64,
}

impl Pins {
    /// Pins `[start, end)` for `kind`, or returns `None` if an incompatible
    /// pin overlaps it. Empty ranges overlap nothing.
    pub(crate) fn try_pin(&mut self, start: u64, end: u64, kind: PinKind) -> Option<PinId> {
        let clash = self
            .pins
            .iter()
            .any(|pin| pin.start.max(start) < pin.end.min(end) && !kind.compatible(pin.kind));
        if clash {
            return None;
        }
        let id = self.next_id;
        self.next_id += 1;
        self.pins.push(Pin {
            id,
            start,
            end,
            kind,
        });
        Some(PinId(id))
    }

    /// Removes one pin.
    pub(crate) fn unpin(&mut self, id: PinId) {
        if let Some(index) = self.pins.iter().position(|pin| pin.id == id.0) {
            self.pins.swap_remove(index);
        }
    }

    /// Number of live pins.
    pub(crate) fn len(&self) -> usize {
        self.pins.len()
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
            true
        }
    }
}
