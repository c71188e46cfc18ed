//! Rebuilding a layout from stored, untrusted placements.

use std::collections::BTreeMap;

use snafu::{OptionExt, ensure};

use crate::error::{
    DuplicateRegionSnafu, EmptyReservationSnafu, LayoutError, LenExceedsReservedSnafu,
    MisalignedReservedSnafu, MisalignedStartSnafu, OverflowSnafu, OverlapSnafu, PastFileEndSnafu,
};
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
    /// pending.
    pub fn from_placements(
        placements: impl IntoIterator<Item = (RegionKey, Placement)>,
        file_len: u64,
    ) -> Result<Self, LayoutError> {
        let mut regions = BTreeMap::new();
        for (key, placement) in placements {
            check_placement(key, placement, file_len)?;
            ensure!(
                regions.insert(key, placement).is_none(),
                DuplicateRegionSnafu { key }
            );
        }

        let mut ordered: Vec<(u64, RegionKey)> = regions
            .iter()
            .map(|(&key, placement)| (placement.start, key))
            .collect();
        ordered.sort_unstable();

        let mut layout = Layout::new();
        let mut previous: Option<(RegionKey, u64)> = None;
        for (start, key) in ordered {
            let cursor = previous.map_or(0, |(_, end)| end);
            if let Some((first, first_end)) = previous {
                ensure!(
                    start >= first_end,
                    OverlapSnafu {
                        first,
                        second: key,
                        first_end,
                        second_start: start,
                    }
                );
            }
            if start > cursor {
                layout.holes.insert(Extent::new(cursor, start - cursor));
            }
            let placement = regions[&key];
            let end = placement.start + placement.reserved;
            layout.put(key, placement);
            previous = Some((key, end));
        }
        layout.file_end = previous.map_or(0, |(_, end)| end);
        Ok(layout)
    }
}

/// The checks that concern one placement alone.
fn check_placement(key: RegionKey, placement: Placement, file_len: u64) -> Result<(), LayoutError> {
    let Placement {
        start,
        reserved,
        len,
    } = placement;
    ensure!(is_page_aligned(start), MisalignedStartSnafu { key, start });
    ensure!(
        is_page_aligned(reserved),
        MisalignedReservedSnafu { key, reserved }
    );
    ensure!(reserved > 0, EmptyReservationSnafu { key, start });
    ensure!(
        len <= reserved,
        LenExceedsReservedSnafu { key, len, reserved }
    );
    let end = start.checked_add(reserved).context(OverflowSnafu {
        key,
        start,
        size: reserved,
    })?;
    ensure!(end <= file_len, PastFileEndSnafu { key, end, file_len });
    Ok(())
}
