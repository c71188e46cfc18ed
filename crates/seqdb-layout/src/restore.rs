//! Rebuilding a layout from stored, untrusted placements.

use snafu::{OptionExt, ensure};

use crate::error::{
    DuplicateRegionSnafu, EmptyReservationSnafu, LayoutError, LenExceedsReservedSnafu,
    MisalignedReservedSnafu, MisalignedStartSnafu, OverflowSnafu, OverlapSnafu, PastFileEndSnafu,
};
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
    /// pending.
    pub fn from_placements(
        placements: impl IntoIterator<Item = (RegionKey, Placement)>,
        file_len: u64,
    ) -> Result<Self, LayoutError> {
        let mut by_key: Vec<(RegionKey, Placement)> = placements.into_iter().collect();
        for &(key, placement) in &by_key {
            check_placement(key, placement, file_len)?;
        }
        by_key.sort_unstable_by_key(|&(key, _)| key);
        if let Some(pair) = by_key.windows(2).find(|pair| pair[0].0 == pair[1].0) {
            return DuplicateRegionSnafu { key: pair[0].0 }.fail();
        }
        let mut ordered: Vec<(u64, RegionKey, Placement)> = by_key
            .iter()
            .map(|&(key, placement)| (placement.start, key, placement))
            .collect();
        ordered.sort_unstable_by_key(|&(start, key, _)| (start, key));

        let mut layout = Layout::new();
        let mut previous: Option<(RegionKey, u64)> = None;
        for &(start, key, placement) in &ordered {
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
            layout.live_bytes += placement.len;
            layout.reserved_bytes += placement.reserved;
            layout.tight_bytes += tight_reserved(placement.len);
            previous = Some((key, placement.start + placement.reserved));
        }
        // Both inputs are sorted, so the maps are built in bulk rather than key by key.
        layout.by_start = ordered
            .iter()
            .map(|&(start, key, _)| (start, key))
            .collect();
        layout.regions = by_key.into_iter().collect();
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
