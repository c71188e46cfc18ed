//! The allocator: where every region lives, what is free and what is pending.

use std::collections::BTreeMap;

use snafu::{OptionExt, ensure};

use crate::error::{
    DuplicateRegionSnafu, LayoutError, LenExceedsReservedSnafu, NotPendingSnafu, OverflowSnafu,
    UnknownRegionSnafu,
};
use crate::extent::tight_reserved;
use crate::holes::Holes;
use crate::pending::{CommitTicket, Pending};
use crate::{
    Extent, GrowPlan, GrowthPolicy, LayoutStats, PAGE_SIZE, Placement, Punchable, RegionKey,
    round_up_to_page,
};

/// Where every region of a data file lives, which space is free and which
/// freed space still waits for a durable commit or for its readers.
///
/// Live reservations, free holes and pending extents (held ones included)
/// tile `[base(), file_end())` exactly; holes are coalesced and never touch
/// the end of the file. The first `base()` bytes (none unless the layout was
/// made with [`with_base`](Self::with_base)) belong to the caller: no region
/// is ever placed there.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    pub(crate) regions: BTreeMap<RegionKey, Placement>,
    pub(crate) by_start: BTreeMap<u64, RegionKey>,
    pub(crate) holes: Holes,
    pub(crate) pending: Pending,
    pub(crate) file_end: u64,
    pub(crate) live_bytes: u64,
    pub(crate) reserved_bytes: u64,
    /// Sum of `tight_reserved(len)` over all regions.
    pub(crate) tight_bytes: u64,
    /// Regions the last compaction round left away from their target (moved
    /// past the end of the file, or waiting for a commit), with that target:
    /// it keeps their place in the region order, as every other region
    /// then sat at its own target.
    pub(crate) parked: BTreeMap<RegionKey, u64>,
    pub(crate) policy: GrowthPolicy,
    /// Where the space the layout manages begins.
    pub(crate) base: u64,
}

impl Layout {
    /// An empty layout with the default [`GrowthPolicy`].
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty layout of a file whose first `base` bytes belong to the caller
    /// (a header, say): regions are placed at `base` or after it, and
    /// compaction packs them from there. `base` is rounded up to a whole page.
    pub fn with_base(base: u64) -> Self {
        let base = round_up_to_page(base).unwrap_or(u64::MAX - (PAGE_SIZE - 1));
        Self {
            base,
            file_end: base,
            ..Self::default()
        }
    }

    /// Where the space the layout manages begins: 0 unless the layout was
    /// made by [`with_base`](Self::with_base) or
    /// [`from_placements_above`](Self::from_placements_above).
    pub fn base(&self) -> u64 {
        self.base
    }

    /// An empty layout that grows regions by `policy`.
    pub fn with_policy(policy: GrowthPolicy) -> Self {
        Self {
            policy,
            ..Self::default()
        }
    }

    /// The policy used by [`grow`](Self::grow).
    pub fn growth_policy(&self) -> GrowthPolicy {
        self.policy
    }

    /// Changes the policy used by later calls to [`grow`](Self::grow).
    pub fn set_growth_policy(&mut self, policy: GrowthPolicy) {
        self.policy = policy;
    }

    /// Adds a region with length 0 and at least
    /// `max(round_up(min_reserved), PAGE_SIZE)` reserved bytes, placed in the
    /// smallest free hole that fits (lowest start among equals), else at the
    /// end of the file.
    ///
    /// Fails if the key exists or the reservation cannot be addressed.
    pub fn insert(&mut self, key: RegionKey, min_reserved: u64) -> Result<Placement, LayoutError> {
        ensure!(
            !self.regions.contains_key(&key),
            DuplicateRegionSnafu { key }
        );
        let reserved = round_up_to_page(min_reserved)
            .context(OverflowSnafu {
                key,
                start: 0u64,
                size: min_reserved,
            })?
            .max(PAGE_SIZE);
        let start = self.allocate(key, reserved)?;
        let placement = Placement {
            start,
            reserved,
            len: 0,
        };
        self.put(key, placement);
        Ok(placement)
    }

    /// Makes room for `new_len` bytes and sets the region's length to it.
    ///
    /// In order of preference: the length fits the reservation
    /// ([`GrowPlan::InPlace`], also used for shrinking); the region ends the
    /// file ([`GrowPlan::AppendAtEnd`]); the free hole right after it is
    /// large enough ([`GrowPlan::ExtendIntoHole`]); else the region moves to
    /// the best-fitting free hole or to the end of the file
    /// ([`GrowPlan::Move`], its old extent becomes pending). A growing region
    /// reserves what the [`GrowthPolicy`] says. The decision is applied to
    /// the layout before it is returned.
    pub fn grow(&mut self, key: RegionKey, new_len: u64) -> Result<GrowPlan, LayoutError> {
        let old = self.get(key).context(UnknownRegionSnafu { key })?;
        if new_len <= old.reserved {
            self.put(
                key,
                Placement {
                    len: new_len,
                    ..old
                },
            );
            return Ok(GrowPlan::InPlace);
        }
        let needed = round_up_to_page(new_len).context(OverflowSnafu {
            key,
            start: old.start,
            size: new_len,
        })?;
        let wanted = self.policy.next_reserved(old.reserved, needed);
        let end = old.start + old.reserved;

        if end == self.file_end {
            let reserved = if old.start.checked_add(wanted).is_some() {
                wanted
            } else {
                needed
            };
            let new_end = old.start.checked_add(reserved).context(OverflowSnafu {
                key,
                start: old.start,
                size: reserved,
            })?;
            self.file_end = new_end;
            self.put(
                key,
                Placement {
                    start: old.start,
                    reserved,
                    len: new_len,
                },
            );
            return Ok(GrowPlan::AppendAtEnd { reserved });
        }

        if let Some(hole_len) = self.holes.starting_at(end) {
            let available = old.reserved + hole_len;
            if available >= needed {
                let reserved = wanted.min(available);
                let taken = reserved - old.reserved;
                self.holes.remove(end);
                if hole_len > taken {
                    self.holes
                        .insert(Extent::new(end + taken, hole_len - taken));
                }
                self.put(
                    key,
                    Placement {
                        start: old.start,
                        reserved,
                        len: new_len,
                    },
                );
                return Ok(GrowPlan::ExtendIntoHole { reserved });
            }
        }

        let (start, reserved) = match self.allocate(key, wanted) {
            Ok(start) => (start, wanted),
            Err(_) => (self.allocate(key, needed)?, needed),
        };
        self.pending.push(old.extent());
        self.put(
            key,
            Placement {
                start,
                reserved,
                len: new_len,
            },
        );
        Ok(GrowPlan::Move {
            from: old.extent(),
            to: Extent::new(start, reserved),
        })
    }

    /// Moves the region to a new reservation of `reserved` bytes (rounded up
    /// to a page, and at least `len`) with length `len`, wherever a growth
    /// would move it: the best-fitting free hole, else the end of the file.
    /// Its old extent becomes pending. Returns the old extent and the new
    /// one; the caller copies the first `len` bytes. A database does this to
    /// write a region whose current bytes a reader still views
    /// (copy-on-write).
    pub fn reallocate(
        &mut self,
        key: RegionKey,
        len: u64,
        reserved: u64,
    ) -> Result<(Extent, Extent), LayoutError> {
        let old = self.get(key).context(UnknownRegionSnafu { key })?;
        let reserved = round_up_to_page(reserved.max(len))
            .context(OverflowSnafu {
                key,
                start: old.start,
                size: reserved.max(len),
            })?
            .max(PAGE_SIZE);
        let start = self.allocate(key, reserved)?;
        self.pending.push(old.extent());
        self.put(
            key,
            Placement {
                start,
                reserved,
                len,
            },
        );
        Ok((old.extent(), Extent::new(start, reserved)))
    }

    /// Sets the region's length without changing its reservation (truncate,
    /// or extend within the reservation).
    pub fn set_len(&mut self, key: RegionKey, len: u64) -> Result<(), LayoutError> {
        let old = self.get(key).context(UnknownRegionSnafu { key })?;
        ensure!(
            len <= old.reserved,
            LenExceedsReservedSnafu {
                key,
                len,
                reserved: old.reserved
            }
        );
        self.put(key, Placement { len, ..old });
        Ok(())
    }

    /// Removes a region; its reservation becomes pending. Returns its last
    /// placement.
    pub fn remove(&mut self, key: RegionKey) -> Result<Placement, LayoutError> {
        let placement = self.take(key).context(UnknownRegionSnafu { key })?;
        self.parked.remove(&key);
        self.pending.push(placement.extent());
        Ok(placement)
    }

    /// The placement of a region.
    pub fn get(&self, key: RegionKey) -> Option<Placement> {
        self.regions.get(&key).copied()
    }

    /// Whether a region has this key.
    pub fn contains(&self, key: RegionKey) -> bool {
        self.regions.contains_key(&key)
    }

    /// Number of regions.
    pub fn len(&self) -> usize {
        self.regions.len()
    }

    /// Whether the layout holds no region.
    pub fn is_empty(&self) -> bool {
        self.regions.is_empty()
    }

    /// Regions ordered by start.
    pub fn regions(&self) -> impl Iterator<Item = (RegionKey, Placement)> + '_ {
        self.by_start
            .values()
            .filter_map(|&key| Some((key, self.get(key)?)))
    }

    /// Free holes ordered by start.
    pub fn holes(&self) -> impl Iterator<Item = Extent> + '_ {
        self.holes.iter()
    }

    /// Pending extents ordered by start: freed, but not reusable until a
    /// commit that no longer references them is durable, or, for held ones,
    /// until they are no longer held either.
    pub fn pending(&self) -> impl Iterator<Item = Extent> + '_ {
        self.pending.iter()
    }

    /// Held extents ordered by start (see [`hold`](Self::hold)).
    pub fn held(&self) -> impl Iterator<Item = Extent> + '_ {
        self.pending.iter_held()
    }

    /// Keeps a pending extent from becoming free, even after its commit, until
    /// [`unhold`](Self::unhold): a database holds an extent that a region
    /// moved away from (or that a removed region left) while readers still
    /// view its bytes. `extent` must be exactly an extent that a move, a
    /// removal or a compaction made pending, not held yet.
    pub fn hold(&mut self, extent: Extent) -> Result<(), LayoutError> {
        ensure!(
            self.pending.hold(extent),
            NotPendingSnafu {
                start: extent.start,
                len: extent.len,
                expected: "pending",
            }
        );
        Ok(())
    }

    /// Ends the hold of `extent`: free space now if its commit is durable
    /// already, otherwise once it is. Returns whether it became free now.
    pub fn unhold(&mut self, extent: Extent) -> Result<bool, LayoutError> {
        match self.pending.unhold(extent) {
            Ok(Some(extent)) => {
                self.release(extent);
                Ok(true)
            }
            Ok(None) => Ok(false),
            Err(()) => NotPendingSnafu {
                start: extent.start,
                len: extent.len,
                expected: "held",
            }
            .fail(),
        }
    }

    /// End of the last live or pending extent: the file extent the layout
    /// uses.
    pub fn file_end(&self) -> u64 {
        self.file_end
    }

    /// Totals of the layout, in constant time.
    pub fn stats(&self) -> LayoutStats {
        LayoutStats {
            regions: self.regions.len() as u64,
            live_bytes: self.live_bytes,
            reserved_bytes: self.reserved_bytes,
            free_bytes: self.holes.bytes(),
            holes: self.holes.len() as u64,
            pending_bytes: self.pending.bytes(),
            held_bytes: self.pending.held_bytes(),
            file_end: self.file_end,
        }
    }

    /// Makes all space that is not a region's pending, as if regions had just left it:
    /// every free hole, and the space from the end of the layout up to `file_len`
    /// rounded up to a page (the end then moves there). None of it is handed out again
    /// before a [`begin_commit`](Self::begin_commit) taken after this call is finished.
    /// For a caller that restored a layout from a newer state than others still view.
    /// Returns the bytes made pending.
    pub fn pend_free_space(&mut self, file_len: u64) -> u64 {
        let holes: Vec<Extent> = self.holes.iter().collect();
        let mut bytes = 0;
        for hole in holes {
            self.holes.remove(hole.start);
            self.pending.push(hole);
            bytes += hole.len;
        }
        let end = round_up_to_page(file_len).unwrap_or(self.file_end);
        if end > self.file_end {
            self.pending
                .push(Extent::new(self.file_end, end - self.file_end));
            bytes += end - self.file_end;
            self.file_end = end;
        }
        bytes
    }

    /// Captures every pending extent freed so far. The caller then writes and
    /// makes durable a commit that no longer references them, and hands the
    /// ticket to [`finish_commit`](Self::finish_commit).
    pub fn begin_commit(&mut self) -> CommitTicket {
        self.pending.ticket()
    }

    /// The commit of `ticket` is durable: the pending extents it captured
    /// become free, coalesced with neighbouring holes (space at the end of
    /// the file is dropped), except held ones, which become free when
    /// [unheld](Self::unhold). Extents freed after the ticket was issued stay
    /// pending. A ticket dropped instead of finished frees nothing; the next
    /// ticket captures its extents too. Costs what the ticket frees.
    pub fn finish_commit(&mut self, ticket: CommitTicket) {
        while let Some(extent) = self.pending.pop_captured(&ticket) {
            self.release(extent);
        }
    }

    /// Space the caller may give back to the file system after a commit:
    /// every free hole, then each region's unused reservation beyond its
    /// length rounded up to a page. Never pending space.
    pub fn punchable(&self) -> impl Iterator<Item = Punchable> + '_ {
        let tails = self.regions().filter_map(|(region, placement)| {
            let used = round_up_to_page(placement.len)?;
            (placement.reserved > used).then_some(Punchable::Tail {
                region,
                extent: Extent::new(placement.start + used, placement.reserved - used),
            })
        });
        self.holes.iter().map(Punchable::Hole).chain(tails)
    }

    /// Finds `reserved` bytes for `key`: the best-fitting hole, else the end
    /// of the file. The space is taken out of the free space.
    pub(crate) fn allocate(&mut self, key: RegionKey, reserved: u64) -> Result<u64, LayoutError> {
        if let Some(hole) = self.holes.best_fit(reserved) {
            self.holes.carve(hole, Extent::new(hole.start, reserved));
            return Ok(hole.start);
        }
        let start = self.file_end;
        self.file_end = start.checked_add(reserved).context(OverflowSnafu {
            key,
            start,
            size: reserved,
        })?;
        Ok(start)
    }

    /// Makes `extent` free space: merges it with the holes around it, or
    /// drops it if it reaches the end of the file.
    pub(crate) fn release(&mut self, extent: Extent) {
        let mut start = extent.start;
        let mut end = extent.end();
        if let Some(before) = self.holes.ending_at(start) {
            self.holes.remove(before.start);
            start = before.start;
        }
        if let Some(after) = self.holes.starting_at(end) {
            self.holes.remove(end);
            end += after;
        }
        if end == self.file_end {
            self.file_end = start;
        } else {
            self.holes.insert(Extent::new(start, end - start));
        }
    }

    /// Sets the placement of `key`, keeping the indexes and totals in step.
    pub(crate) fn put(&mut self, key: RegionKey, placement: Placement) {
        let old = self.regions.insert(key, placement);
        if let Some(old) = old {
            self.live_bytes -= old.len;
            self.reserved_bytes -= old.reserved;
            self.tight_bytes -= tight_reserved(old.len);
        }
        if old.map(|old| old.start) != Some(placement.start) {
            if let Some(old) = old {
                self.by_start.remove(&old.start);
            }
            self.by_start.insert(placement.start, key);
        }
        self.live_bytes += placement.len;
        self.reserved_bytes += placement.reserved;
        self.tight_bytes += tight_reserved(placement.len);
    }

    /// Removes `key` from the indexes and totals, returning its placement.
    pub(crate) fn take(&mut self, key: RegionKey) -> Option<Placement> {
        let old = self.regions.remove(&key)?;
        self.by_start.remove(&old.start);
        self.live_bytes -= old.len;
        self.reserved_bytes -= old.reserved;
        self.tight_bytes -= tight_reserved(old.len);
        Some(old)
    }
}
