//! Rebuilding a layout from stored, untrusted placements, and listing what is
//! wrong with them.
//!
//! One pass examines the placements ([`examine`]): [`Layout::from_placements`]
//! stops at the first violation, [`placement_violations`] lists all of them,
//! so a rebuild and an offline check can never disagree.

use std::ops::ControlFlow;

use crate::error::LayoutError;
use crate::extent::tight_reserved;
use crate::{Extent, Layout, Placement, RegionKey, is_page_aligned};

impl Layout {
    /// Rebuilds a layout from placements read back from metadata, for a data
    /// file of `file_len` bytes.
    ///
    /// Every violation is an error, never a panic: a start or reservation
    /// that is not page-aligned, an empty reservation, a length beyond the
    /// reservation, a reservation that overflows or ends past `file_len`, a
    /// key given twice, and two regions that overlap (the error names both).
    /// Gaps between regions become free holes; the layout ends at the end of
    /// its last region (space after it is not part of the layout). Nothing is
    /// pending. When there are several violations, the first one found is
    /// returned; [`placement_violations`] lists them all.
    pub fn from_placements(
        placements: impl IntoIterator<Item = (RegionKey, Placement)>,
        file_len: u64,
    ) -> Result<Self, LayoutError> {
        Self::from_placements_above(0, placements, file_len)
    }

    /// Like [`from_placements`](Self::from_placements) for a layout whose
    /// first `base` bytes belong to the caller (a file header, say): a region
    /// starting below `base` is a violation ([`LayoutError::BelowBase`]), and
    /// the rebuilt layout never hands that space out (see
    /// [`with_base`](Self::with_base)).
    pub fn from_placements_above(
        base: u64,
        placements: impl IntoIterator<Item = (RegionKey, Placement)>,
        file_len: u64,
    ) -> Result<Self, LayoutError> {
        let mut first = None;
        let examined = examine(base, placements, file_len, |violation| {
            first = Some(violation);
            ControlFlow::Break(())
        });
        if let Some(violation) = first {
            return Err(violation);
        }
        Ok(build(base, examined))
    }
}

/// Every violation in `placements`, for a data file of `file_len` bytes
/// whose first `base` bytes belong to the caller: the same rules as
/// [`Layout::from_placements_above`], which fails with the first of them.
///
/// Placement rules come first (in input order), then keys given twice, then
/// overlaps in the order of their starts; each overlapping region is named
/// with the region reaching furthest before it. Costs `O(n log n)`.
///
/// ```
/// use seqdb_layout::{LayoutError, PAGE_SIZE, Placement, placement_violations};
///
/// let at = |start, reserved, len| Placement { start, reserved, len };
/// let violations = placement_violations(
///     PAGE_SIZE,
///     [(1, at(0, PAGE_SIZE, 0)), (2, at(PAGE_SIZE, 2 * PAGE_SIZE, 1)), (3, at(2 * PAGE_SIZE, PAGE_SIZE, 1))],
///     u64::MAX,
/// );
/// assert_eq!(violations.len(), 2);
/// assert!(matches!(violations[0], LayoutError::BelowBase { key: 1, .. }));
/// assert!(matches!(violations[1], LayoutError::Overlap { first: 2, second: 3, .. }));
/// ```
pub fn placement_violations(
    base: u64,
    placements: impl IntoIterator<Item = (RegionKey, Placement)>,
    file_len: u64,
) -> Vec<LayoutError> {
    let mut violations = Vec::new();
    examine(base, placements, file_len, |violation| {
        violations.push(violation);
        ControlFlow::Continue(())
    });
    violations
}

/// The placements sorted by key and by start, as [`examine`] leaves them.
struct Examined {
    by_key: Vec<(RegionKey, Placement)>,
    /// The sound placements ordered by start (then key); `None` when that is the
    /// order of `by_key` (every placement sound, starts increasing with keys: a
    /// layout that never moved a region), which is then not copied.
    by_start: Option<Vec<(RegionKey, Placement)>>,
}

impl Examined {
    /// The sound placements ordered by start (then key).
    fn by_start(&self) -> &[(RegionKey, Placement)] {
        self.by_start.as_deref().unwrap_or(&self.by_key)
    }
}

/// Check every rule, reporting each violation to `report` until it breaks.
/// Placements that break a rule of their own are left out of the overlap
/// check (their extent may not even be addressable).
fn examine(
    base: u64,
    placements: impl IntoIterator<Item = (RegionKey, Placement)>,
    file_len: u64,
    mut report: impl FnMut(LayoutError) -> ControlFlow<()>,
) -> Examined {
    let mut by_key: Vec<(RegionKey, Placement)> = placements.into_iter().collect();
    let stopped = |by_key| Examined {
        by_key,
        by_start: Some(Vec::new()),
    };
    // Which placements are sound, once one is not (until then, all are).
    let mut sound: Vec<bool> = Vec::new();
    for (at, &(key, placement)) in by_key.iter().enumerate() {
        if follows_rules(base, placement, file_len) {
            continue;
        }
        if sound.is_empty() {
            sound = vec![true; by_key.len()];
        }
        sound[at] = false;
        for violation in placement_rules(base, key, placement, file_len) {
            if report(violation).is_break() {
                return stopped(by_key);
            }
        }
    }
    let some_unsound = (!sound.is_empty()).then(|| {
        by_key
            .iter()
            .zip(&sound)
            .filter(|(_, fine)| **fine)
            .map(|(&placed, _)| placed)
            .collect::<Vec<_>>()
    });
    by_key.sort_unstable_by_key(|&(key, _)| key);
    for pair in by_key.windows(2) {
        if pair[0].0 == pair[1].0
            && report(LayoutError::DuplicateRegion { key: pair[0].0 }).is_break()
        {
            return stopped(by_key);
        }
    }
    let mut by_start = match some_unsound {
        Some(sound) => Some(sound),
        None if by_key.windows(2).all(|w| w[0].1.start < w[1].1.start) => None,
        None => Some(by_key.clone()),
    };
    if let Some(by_start) = &mut by_start {
        by_start.sort_unstable_by_key(|&(key, placement)| (placement.start, key));
    }
    let examined = Examined { by_key, by_start };
    // The extent reaching furthest so far: any later start before its end
    // overlaps it.
    let mut furthest: Option<(RegionKey, u64)> = None;
    for &(key, placement) in examined.by_start() {
        let start = placement.start;
        if let Some((first, first_end)) = furthest
            && start < first_end
            && report(LayoutError::Overlap {
                first,
                second: key,
                first_end,
                second_start: start,
            })
            .is_break()
        {
            break;
        }
        let end = placement.end();
        if furthest.is_none_or(|(_, first_end)| end > first_end) {
            furthest = Some((key, end));
        }
    }
    examined
}

/// Whether a placement breaks none of [`placement_rules`] (checked without building
/// them).
fn follows_rules(base: u64, placement: Placement, file_len: u64) -> bool {
    let Placement {
        start,
        reserved,
        len,
    } = placement;
    is_page_aligned(start)
        && is_page_aligned(reserved)
        && reserved != 0
        && len <= reserved
        && start >= base
        && start
            .checked_add(reserved)
            .is_some_and(|end| end <= file_len)
}

/// The rules that concern one placement alone.
fn placement_rules(
    base: u64,
    key: RegionKey,
    placement: Placement,
    file_len: u64,
) -> impl Iterator<Item = LayoutError> {
    let Placement {
        start,
        reserved,
        len,
    } = placement;
    let end = start.checked_add(reserved);
    [
        (!is_page_aligned(start)).then_some(LayoutError::MisalignedStart { key, start }),
        (!is_page_aligned(reserved)).then_some(LayoutError::MisalignedReserved { key, reserved }),
        (reserved == 0).then_some(LayoutError::EmptyReservation { key, start }),
        (len > reserved).then_some(LayoutError::LenExceedsReserved { key, len, reserved }),
        (start < base).then_some(LayoutError::BelowBase { key, start, base }),
        match end {
            None => Some(LayoutError::Overflow {
                key,
                start,
                size: reserved,
            }),
            Some(end) if end > file_len => Some(LayoutError::PastFileEnd { key, end, file_len }),
            Some(_) => None,
        },
    ]
    .into_iter()
    .flatten()
}

/// The layout of placements that broke no rule.
fn build(base: u64, examined: Examined) -> Layout {
    let mut layout = Layout::with_base(base);
    let mut cursor = layout.base;
    for &(_, placement) in examined.by_start() {
        if placement.start > cursor {
            layout
                .holes
                .insert(Extent::new(cursor, placement.start - cursor));
        }
        layout.live_bytes += placement.len;
        layout.reserved_bytes += placement.reserved;
        layout.tight_bytes += tight_reserved(placement.len);
        cursor = placement.start + placement.reserved;
    }
    // Both orders are sorted, so the maps are built in bulk rather than key by key.
    layout.by_start = examined
        .by_start()
        .iter()
        .map(|&(key, placement)| (placement.start, key))
        .collect();
    layout.regions = examined.by_key.into_iter().collect();
    layout.file_end = cursor;
    layout
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PAGE_SIZE;
    use quickcheck::QuickCheck;

    #[test]
    fn the_quick_check_agrees_with_the_rules() {
        fn prop(base: u8, start: u64, reserved: u64, len: u64, file_len: u64, pick: u8) -> bool {
            // Mostly page multiples near each other, so that both sides of every rule
            // are reached.
            let near = |n: u64| match pick % 3 {
                0 => n,
                1 => (n % 64) * PAGE_SIZE,
                _ => (n % 64) * PAGE_SIZE + n % 2,
            };
            let base = u64::from(base % 4) * PAGE_SIZE;
            let placement = Placement {
                start: near(start),
                reserved: near(reserved),
                len: near(len),
            };
            let file_len = if pick.is_multiple_of(7) {
                u64::MAX
            } else {
                near(file_len)
            };
            follows_rules(base, placement, file_len)
                == placement_rules(base, 1, placement, file_len)
                    .next()
                    .is_none()
        }
        QuickCheck::new()
            .tests(5000)
            .quickcheck(prop as fn(u8, u64, u64, u64, u64, u8) -> bool);
    }
}
