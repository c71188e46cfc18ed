//! Where each region goes in a backup's data file.
//!
//! A first backup places the regions after the header in number order, each reserving
//! its length rounded up to a page plus the room the growth policy gives a growing
//! region (about its length again while small; the room is never written, so it stays a
//! hole in the file). A later backup keeps every region that is still there
//! where it was when it still fits (so its unchanged chunks are found in place), grows
//! it in place or moves it as the database's allocator would (reserving room to grow, so
//! that a region that keeps growing moves rarely), and puts new regions in the holes
//! removed ones left or at the end. The backup's metadata is a fresh checkpoint, so
//! nothing in it remembers why a region sits where it does: the plan only has to be a
//! valid layout.

use std::collections::BTreeSet;

use seqdb_layout::{Layout, LayoutError, PAGE_SIZE, Placement, Punchable, round_up_to_page};

use crate::data_header::DATA_HEADER_LEN;
use crate::format::RegionEntry;

/// Where one region goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Target {
    pub start: u64,
    pub reserved: u64,
}

/// The backup's layout.
#[derive(Debug)]
pub(crate) struct Planned {
    /// One per region, in the order the regions were given.
    pub targets: Vec<Target>,
    /// Where the layout ends: the backup's data file length.
    pub file_end: u64,
    /// Space of the previous backup that no region uses any more (holes and unused
    /// reservation tails), to give back to the file system.
    pub punchable: Vec<(u64, u64)>,
}

/// Plan the places of `regions` (number and length, ordered by number) in a data file
/// that held `previous` (the previous backup's regions, possibly not a valid layout when
/// that backup did not complete: then it is ignored) and is `file_len` bytes long.
pub(crate) fn plan(
    previous: &[RegionEntry],
    file_len: u64,
    regions: impl Iterator<Item = (u64, u64)>,
) -> Result<Planned, LayoutError> {
    let regions: Vec<(u64, u64)> = regions.collect();
    let mut layout = Layout::from_placements_above(
        DATA_HEADER_LEN,
        previous.iter().map(|e| {
            (
                e.number,
                Placement {
                    start: e.start,
                    reserved: e.reserved,
                    len: e.len,
                },
            )
        }),
        u64::MAX,
    )
    .unwrap_or_else(|_| Layout::with_base(DATA_HEADER_LEN));
    let wanted: BTreeSet<u64> = regions.iter().map(|&(number, _)| number).collect();
    let gone: Vec<u64> = layout
        .regions()
        .map(|(number, _)| number)
        .filter(|number| !wanted.contains(number))
        .collect();
    for number in gone {
        layout.remove(number)?;
    }
    // The backup is marked incomplete while it is written: the space of the previous
    // one is free to reuse at once.
    free_pending(&mut layout);
    for &(number, len) in &regions {
        if layout.contains(number) {
            layout.grow(number, len)?;
        }
    }
    free_pending(&mut layout);
    for &(number, len) in &regions {
        if !layout.contains(number) {
            layout.insert(number, with_room(&layout, len))?;
            layout.set_len(number, len)?;
        }
    }
    let targets = regions
        .iter()
        .map(|&(number, _)| {
            let placement = layout
                .get(number)
                .ok_or(LayoutError::UnknownRegion { key: number })?;
            Ok(Target {
                start: placement.start,
                reserved: placement.reserved,
            })
        })
        .collect::<Result<_, LayoutError>>()?;
    let punchable = layout
        .punchable()
        .map(|p| match p {
            Punchable::Hole(extent) | Punchable::Tail { extent, .. } => extent,
        })
        .filter(|extent| extent.start < file_len)
        .map(|extent| (extent.start, extent.len.min(file_len - extent.start)))
        .collect();
    Ok(Planned {
        targets,
        file_end: layout.file_end().max(DATA_HEADER_LEN),
        punchable,
    })
}

/// What a new region reserves: its length and the room the growth policy would give it
/// (about as much again for small regions), so that it can grow by appends in later
/// backups without moving. Unused room is never written: it stays a hole.
fn with_room(layout: &Layout, len: u64) -> u64 {
    match round_up_to_page(len) {
        Some(0) => PAGE_SIZE,
        Some(pages) => layout
            .growth_policy()
            .next_reserved(pages, pages.saturating_add(PAGE_SIZE)),
        None => len,
    }
}

fn free_pending(layout: &mut Layout) {
    let ticket = layout.begin_commit();
    layout.finish_commit(ticket);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(number: u64, start: u64, reserved: u64, len: u64) -> RegionEntry {
        RegionEntry {
            number,
            start,
            reserved,
            len,
            name: format!("r{number}").into(),
            sums_from: 0,
            crcs: Default::default(),
            origin: 0,
        }
    }

    #[test]
    fn a_first_backup_places_regions_in_order_with_room_to_grow() {
        let planned = plan(&[], 0, [(0, 10), (3, 5000), (7, 0)].into_iter()).unwrap();
        let starts: Vec<u64> = planned.targets.iter().map(|t| t.start).collect();
        assert_eq!(starts, [PAGE_SIZE, 3 * PAGE_SIZE, 7 * PAGE_SIZE]);
        let reserved: Vec<u64> = planned.targets.iter().map(|t| t.reserved).collect();
        assert_eq!(reserved, [2 * PAGE_SIZE, 4 * PAGE_SIZE, PAGE_SIZE]);
        assert_eq!(planned.file_end, 8 * PAGE_SIZE);
        assert!(planned.punchable.is_empty());
    }

    #[test]
    fn regions_that_still_fit_stay_and_removed_space_is_reused() {
        let previous = [
            entry(0, PAGE_SIZE, PAGE_SIZE, 100),
            entry(1, 2 * PAGE_SIZE, 2 * PAGE_SIZE, 8000),
            entry(2, 4 * PAGE_SIZE, PAGE_SIZE, 10),
        ];
        let planned = plan(
            &previous,
            5 * PAGE_SIZE,
            [(0, 200), (2, 20), (5, 100)].into_iter(),
        )
        .unwrap();
        assert_eq!(planned.targets[0].start, PAGE_SIZE);
        assert_eq!(planned.targets[1].start, 4 * PAGE_SIZE);
        // The new region takes the removed one's place.
        assert_eq!(planned.targets[2].start, 2 * PAGE_SIZE);
        assert_eq!(planned.file_end, 5 * PAGE_SIZE);
        // The rest of region 1's old place is given back.
        assert_eq!(planned.punchable, [(3 * PAGE_SIZE, PAGE_SIZE)]);
    }

    #[test]
    fn an_invalid_previous_layout_is_ignored() {
        let previous = [
            entry(0, PAGE_SIZE, PAGE_SIZE, 100),
            entry(1, PAGE_SIZE, PAGE_SIZE, 1),
        ];
        let planned = plan(&previous, 2 * PAGE_SIZE, [(1, 10)].into_iter()).unwrap();
        assert_eq!(planned.targets[0].start, PAGE_SIZE);
    }
}
