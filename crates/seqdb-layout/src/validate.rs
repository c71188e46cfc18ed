//! The full consistency check of a layout.

use snafu::ensure;

use crate::error::{InconsistentSnafu, LayoutError, TotalMismatchSnafu};
use crate::extent::tight_reserved;
use crate::{Extent, Layout, is_page_aligned};

/// What occupies an extent of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Region,
    Hole,
    Pending,
}

impl Layout {
    /// Checks every invariant: page alignment, `len <= reserved`, live
    /// reservations, holes and pending extents tiling `[base(), file_end())`
    /// exactly, holes coalesced and not touching the end of the file, the
    /// indexes agreeing with each other and the totals agreeing with the
    /// extents. Costs `O(n log n)` in the number of extents.
    pub fn validate(&self) -> Result<(), LayoutError> {
        self.validate_indexes()?;
        let mut extents: Vec<(Extent, Kind)> =
            Vec::with_capacity(self.regions.len() + self.holes.len() + self.pending.len());
        for (&key, placement) in &self.regions {
            ensure!(
                is_page_aligned(placement.start) && is_page_aligned(placement.reserved),
                InconsistentSnafu {
                    offset: placement.start,
                    problem: "region not page-aligned",
                }
            );
            ensure!(
                placement.reserved > 0 && placement.len <= placement.reserved,
                InconsistentSnafu {
                    offset: placement.start,
                    problem: "region length exceeds an empty or short reservation",
                }
            );
            ensure!(
                self.by_start.get(&placement.start) == Some(&key),
                InconsistentSnafu {
                    offset: placement.start,
                    problem: "region missing from the start index",
                }
            );
            extents.push((placement.extent(), Kind::Region));
        }
        extents.extend(self.holes.iter().map(|hole| (hole, Kind::Hole)));
        extents.extend(self.pending.iter().map(|extent| (extent, Kind::Pending)));
        extents.sort_unstable();

        let mut cursor = self.base;
        let mut previous_kind = None;
        for (extent, kind) in extents {
            ensure!(
                is_page_aligned(extent.start) && is_page_aligned(extent.len) && extent.len > 0,
                InconsistentSnafu {
                    offset: extent.start,
                    problem: "extent empty or not page-aligned",
                }
            );
            ensure!(
                extent.start >= cursor,
                InconsistentSnafu {
                    offset: extent.start,
                    problem: "extents overlap",
                }
            );
            ensure!(
                extent.start == cursor,
                InconsistentSnafu {
                    offset: cursor,
                    problem: "space not accounted for",
                }
            );
            ensure!(
                !(kind == Kind::Hole && previous_kind == Some(Kind::Hole)),
                InconsistentSnafu {
                    offset: extent.start,
                    problem: "adjacent holes not coalesced",
                }
            );
            cursor = extent.start.checked_add(extent.len).ok_or_else(|| {
                InconsistentSnafu {
                    offset: extent.start,
                    problem: "extent overflows",
                }
                .build()
            })?;
            previous_kind = Some(kind);
        }
        ensure!(
            cursor == self.file_end,
            InconsistentSnafu {
                offset: cursor,
                problem: "extents do not end at the file end",
            }
        );
        ensure!(
            previous_kind != Some(Kind::Hole),
            InconsistentSnafu {
                offset: cursor,
                problem: "hole at the end of the file",
            }
        );
        self.validate_totals()
    }

    fn validate_indexes(&self) -> Result<(), LayoutError> {
        ensure!(
            self.by_start.len() == self.regions.len(),
            InconsistentSnafu {
                offset: 0u64,
                problem: "start index and region map differ in size",
            }
        );
        let by_len: Vec<Extent> = self.holes.iter_by_len().collect();
        ensure!(
            by_len.len() == self.holes.len()
                && by_len
                    .iter()
                    .all(|hole| self.holes.starting_at(hole.start) == Some(hole.len)),
            InconsistentSnafu {
                offset: 0u64,
                problem: "hole indexes disagree",
            }
        );
        let mut queued: Vec<Extent> = self.pending.iter_queued().collect();
        queued.sort_unstable();
        ensure!(
            queued.iter().copied().eq(self.pending.iter_waiting()),
            InconsistentSnafu {
                offset: 0u64,
                problem: "pending indexes disagree",
            }
        );
        for key in self.parked.keys() {
            ensure!(
                self.regions.contains_key(key),
                InconsistentSnafu {
                    offset: 0u64,
                    problem: "parked region does not exist",
                }
            );
        }
        Ok(())
    }

    /// Run after the tiling check, so the sums cannot overflow.
    fn validate_totals(&self) -> Result<(), LayoutError> {
        let totals = [
            (
                "live bytes",
                self.live_bytes,
                self.regions.values().map(|p| p.len).sum::<u64>(),
            ),
            (
                "reserved bytes",
                self.reserved_bytes,
                self.regions.values().map(|p| p.reserved).sum(),
            ),
            (
                "tight bytes",
                self.tight_bytes,
                self.regions.values().map(|p| tight_reserved(p.len)).sum(),
            ),
            (
                "free bytes",
                self.holes.bytes(),
                self.holes.iter().map(|h| h.len).sum(),
            ),
            (
                "pending bytes",
                self.pending.bytes() + self.pending.held_bytes(),
                self.pending.iter().map(|e| e.len).sum(),
            ),
            (
                "held bytes",
                self.pending.held_bytes(),
                self.pending.iter_held().map(|e| e.len).sum(),
            ),
        ];
        for (total, recorded, actual) in totals {
            ensure!(
                recorded == actual,
                TotalMismatchSnafu {
                    total,
                    recorded,
                    actual
                }
            );
        }
        Ok(())
    }
}
