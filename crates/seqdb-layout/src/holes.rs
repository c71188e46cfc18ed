//! Free holes, indexed by start and by size.

use std::collections::{BTreeMap, BTreeSet};

use crate::Extent;

/// Coalescing is the caller's duty; this type only keeps the two indexes in
/// step and answers best-fit queries in `O(log n)`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Holes {
    by_start: BTreeMap<u64, u64>,
    by_len: BTreeSet<(u64, u64)>,
    bytes: u64,
}

impl Holes {
    pub(crate) fn len(&self) -> usize {
        self.by_start.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_start.is_empty()
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = Extent> + '_ {
        self.by_start
            .iter()
            .map(|(&start, &len)| Extent::new(start, len))
    }

    /// Sizes index in (len, start) order; for consistency checks.
    pub(crate) fn iter_by_len(&self) -> impl Iterator<Item = Extent> + '_ {
        self.by_len
            .iter()
            .map(|&(len, start)| Extent::new(start, len))
    }

    pub(crate) fn insert(&mut self, hole: Extent) {
        debug_assert!(hole.len > 0);
        self.by_start.insert(hole.start, hole.len);
        self.by_len.insert((hole.len, hole.start));
        self.bytes += hole.len;
    }

    /// Removes the hole starting exactly at `start`, returning its length.
    pub(crate) fn remove(&mut self, start: u64) -> Option<u64> {
        let len = self.by_start.remove(&start)?;
        self.by_len.remove(&(len, start));
        self.bytes -= len;
        Some(len)
    }

    /// Length of the hole starting exactly at `start`.
    pub(crate) fn starting_at(&self, start: u64) -> Option<u64> {
        self.by_start.get(&start).copied()
    }

    /// The hole ending exactly at `end`.
    pub(crate) fn ending_at(&self, end: u64) -> Option<Extent> {
        let (&start, &len) = self.by_start.range(..end).next_back()?;
        (start + len == end).then_some(Extent::new(start, len))
    }

    /// The hole containing all of `extent`, if one does.
    pub(crate) fn containing(&self, extent: Extent) -> Option<Extent> {
        let (&start, &len) = self.by_start.range(..=extent.start).next_back()?;
        let hole = Extent::new(start, len);
        hole.contains(&extent).then_some(hole)
    }

    /// The smallest hole of at least `len` bytes, lowest start among equals.
    pub(crate) fn best_fit(&self, len: u64) -> Option<Extent> {
        self.by_len
            .range((len, 0)..)
            .next()
            .map(|&(len, start)| Extent::new(start, len))
    }

    /// Takes `extent` out of the hole `hole` that contains it, leaving the
    /// parts before and after as holes.
    pub(crate) fn carve(&mut self, hole: Extent, extent: Extent) {
        debug_assert!(hole.contains(&extent));
        self.remove(hole.start);
        if extent.start > hole.start {
            self.insert(Extent::new(hole.start, extent.start - hole.start));
        }
        if hole.end() > extent.end() {
            self.insert(Extent::new(extent.end(), hole.end() - extent.end()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holes(list: &[(u64, u64)]) -> Holes {
        let mut holes = Holes::default();
        for &(start, len) in list {
            holes.insert(Extent::new(start, len));
        }
        holes
    }

    #[test]
    fn best_fit_picks_smallest_then_lowest() {
        let holes = holes(&[(0, 30), (100, 10), (200, 20), (300, 10)]);
        assert_eq!(holes.best_fit(5), Some(Extent::new(100, 10)));
        assert_eq!(holes.best_fit(10), Some(Extent::new(100, 10)));
        assert_eq!(holes.best_fit(11), Some(Extent::new(200, 20)));
        assert_eq!(holes.best_fit(30), Some(Extent::new(0, 30)));
        assert_eq!(holes.best_fit(31), None);
    }

    #[test]
    fn carve_keeps_both_sides() {
        let mut holes = holes(&[(100, 50)]);
        holes.carve(Extent::new(100, 50), Extent::new(110, 20));
        assert_eq!(
            holes.iter().collect::<Vec<_>>(),
            vec![Extent::new(100, 10), Extent::new(130, 20)]
        );
        assert_eq!(holes.bytes(), 30);
        assert_eq!(holes.ending_at(110), Some(Extent::new(100, 10)));
        assert_eq!(
            holes.containing(Extent::new(135, 15)),
            Some(Extent::new(130, 20))
        );
        assert_eq!(holes.containing(Extent::new(105, 10)), None);
    }
}
