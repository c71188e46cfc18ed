//! Giving space back: hole punching, compaction, and file sizing.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLockWriteGuard;

use snafu::ResultExt;

use seqdb_layout::{Extent, PAGE_SIZE};

use crate::database::Slot;
use crate::error::{BusySnafu, LayoutSnafu, SysSnafu};
use crate::place::Place;
use crate::region::RegionState;
use crate::{Database, Result};

impl Database {
    /// Give the space that no committed or current region uses back to the file system:
    /// free holes and each region's reservation beyond its length. Returns the number of
    /// bytes the data file's allocation shrank by.
    ///
    /// Only space the last flush no longer references is punched, so this never damages
    /// what a crash would recover, nor space a live [`Reader`](crate::Reader) views:
    /// space a region left is punched once its last reader is gone. Regions busy with a
    /// writer at that moment are skipped.
    pub fn punch_holes(&self) -> Result<u64> {
        let inner = &self.inner;
        let mut commit = inner.commit.lock();
        // Under the commit lock: after a flush failed, the commit lengths in memory may
        // be older than a record that reached the disk, so punching could zero its bytes.
        inner.check_writable()?;
        // The holes may be space that only the log's last delta freed: it must be durable
        // before they are punched.
        inner.confirm_log(&mut commit)?;
        let before = inner.data.allocated_bytes().context(SysSnafu)?;
        // Extents whose last reader went since the last flush are free space now, and so
        // is the space commits kept for reader processes that moved on or are gone.
        let oldest = inner.oldest_reader();
        let mut table = inner.table.write();
        inner.release_kept(&mut table, oldest);
        inner.reclaim(&mut table);
        drop(table);
        let table = inner.table.read();
        for hole in table.layout.holes() {
            inner
                .data
                .punch_hole(hole.start, hole.len)
                .context(SysSnafu)?;
        }
        for (number, place) in table.slots.iter().enumerate() {
            let Some(place) = place else { continue };
            // A region not looked up since open may still have space allocated past its
            // length: a truncation or a growth's preallocation an earlier handle never
            // punched, appends a crash cut off. Its state is made to punch it under its
            // lock like any other region's: a first lookup could otherwise make it and
            // write there while this punches from what open found.
            let slot = match place.untouched() {
                Some((len, reserved)) if round_up(len) >= reserved => continue,
                _ => place.slot(number),
            };
            // Under the table lock only `try_` region locks (see the locking rules).
            let Some(region) = slot.try_read_recursive() else {
                continue;
            };
            // Held while punching: a lent buffer collected under a shared lock meanwhile
            // would write right where this punches. Readers' snapshots of the region's
            // extent end at its length or before (`RegionState`'s `frozen`). A region with
            // no live part has no lent buffer, and gets none under the shared lock.
            let _lent = region.lock_lent();
            let keep = round_up(region.len().max(region.committed_len()));
            if keep < region.reserved() {
                inner
                    .data
                    .punch_hole(region.start() + keep, region.reserved() - keep)
                    .context(SysSnafu)?;
            }
        }
        drop(table);
        let after = inner.data.allocated_bytes().context(SysSnafu)?;
        Ok(before.saturating_sub(after))
    }

    /// [`flush`](Self::flush), then [`punch_holes`](Self::punch_holes).
    pub fn flush_then_punch(&self) -> Result<()> {
        self.flush()?;
        self.punch_holes()?;
        Ok(())
    }

    /// Defragment: move regions down until no hole is left, trim every reservation to its
    /// region's length, commit, and shrink the data file to the live extent.
    ///
    /// Moves are made in rounds, each committed before the next, so a crash at any point
    /// recovers the last commit intact. Waits (a few seconds at most, then
    /// [`Error::Busy`](crate::Error::Busy)) until no writer holds a region; readers do not
    /// hold it up. A region that live readers view moves like any other, and they keep
    /// its old bytes: that extent is retired until the last of them is dropped, and the
    /// regions after it cannot move down past it, nor the file shrink below it, before
    /// that. Compacting again after the readers are gone finishes the job.
    pub fn compact(&self) -> Result<()> {
        self.inner.check_writable()?;
        self.flush()?;
        // From a committed state the allocator needs two rounds; writers in between may
        // add some. The bound only guards against a layout bug.
        let mut rounds_left = 2 * self.inner.table.read().count() + 8;
        let mut idle_rounds = 0;
        loop {
            let changed = self.compaction_round()?;
            self.flush()?;
            // Give the vacated space back at once, so compacting a nearly full disk needs
            // room for one round's moves, not for all of them.
            self.punch_holes()?;
            rounds_left -= 1;
            idle_rounds = if changed == 0 { idle_rounds + 1 } else { 0 };
            let compact = self.inner.table.read().layout.is_compact();
            // A round may wait for space that the commit after it frees; a second round
            // that moves nothing waits for space that readers still view.
            let stuck = idle_rounds >= 2;
            if compact || stuck || (changed == 0 && rounds_left < 4) || rounds_left == 0 {
                break;
            }
        }
        // Under the commit lock, which hole punching holds too: a punch of a hole past the
        // new end would otherwise overlap the truncation.
        let mut commit = self.inner.commit.lock();
        let table = self.inner.table.read();
        let end = table.layout.file_end();
        if self.inner.data.len() != end {
            self.inner.check_writable()?;
            // The end may be where only the log's last delta put it.
            self.inner.confirm_log(&mut commit)?;
            // A failed shrink or sync leaves the file's length on disk unknown.
            let data = &self.inner.data;
            self.inner.final_on_error(
                data.set_len(end)
                    .and_then(|()| data.sync_data())
                    .context(SysSnafu),
            )?;
        }
        Ok(())
    }

    /// Lock every region, plan one round of moves, execute it. Returns how many regions
    /// moved or changed their reservation.
    fn compaction_round(&self) -> Result<usize> {
        let inner = &self.inner;
        let slots = inner.table.read().live_slots();
        let mut guards = lock_all(&inner.path, &slots)?;
        for region in guards.iter_mut() {
            inner.settle(region)?;
        }
        let mut table = inner.table.write();
        let unchanged = table.count() == slots.len()
            && slots.iter().all(|(n, s)| {
                table.slots[*n]
                    .as_ref()
                    .and_then(Place::made_slot)
                    .is_some_and(|t| Arc::ptr_eq(s, t))
            });
        if !unchanged {
            // Regions were created or removed meanwhile: plan again with all of them locked.
            drop(table);
            drop(guards);
            return Ok(1);
        }
        for region in guards.iter_mut() {
            // The layout keeps room for a lent buffer too; only `written` bytes are copied.
            table
                .layout
                .set_len(region.number() as u64, region.len() + region.headroom())
                .context(LayoutSnafu { path: &inner.path })?;
        }
        let moves = table.layout.compaction_step();
        for mv in &moves {
            // `guards` is ordered by number, like `slots`.
            let written = guards
                .binary_search_by_key(&(mv.region as usize), |region| region.number())
                .map_or(0, |i| guards[i].written());
            let len = mv.len.min(written);
            if len == 0 {
                continue;
            }
            if let Err(e) = inner.data.copy_within(mv.from, mv.to, len) {
                inner.poison(&e);
                return Err(e).context(SysSnafu);
            }
        }
        let mut changed = 0;
        for region in guards.iter_mut() {
            let Some(placement) = table.layout.get(region.number() as u64) else {
                continue;
            };
            if placement.start != region.start() {
                // Settled above, so the whole region is `written` and was copied. Readers
                // keep the old extent, which is retired with them.
                let left = Extent::new(region.start(), region.reserved());
                let hold = region.moved(placement.start, placement.reserved);
                inner.retire(&mut table, left, hold)?;
            } else if placement.reserved != region.reserved() {
                // Trimmed to its length where it is: past every reader's bytes.
                region.grown(placement.reserved);
            } else {
                continue;
            }
            changed += 1;
            inner.note_dirty(region);
        }
        Ok(changed.max(moves.len()))
    }

    /// Make the data file at least `len` bytes long (sparse; nothing is allocated).
    pub fn set_min_len(&self, len: u64) -> Result<()> {
        self.inner.check_writable()?;
        let len = round_up(len);
        if self.inner.data.len() < len {
            self.inner.data.set_len(len).context(SysSnafu)?;
        }
        Ok(())
    }

    /// Length of the data file in bytes.
    pub fn file_len(&self) -> Result<u64> {
        Ok(self.inner.data.len())
    }
}

/// Every region's write lock. A region that is busy (a writer holds it) makes it let go
/// of all of them and try again a little later, so that compaction never holds some
/// locks while waiting for another. Gives up with [`Error::Busy`](crate::Error::Busy)
/// after a few seconds.
fn lock_all<'a>(
    path: &Path,
    slots: &'a [(usize, Slot)],
) -> Result<Vec<RwLockWriteGuard<'a, RegionState>>> {
    let deadline = Instant::now() + LOCK_ALL_PATIENCE;
    let mut pause = Duration::from_micros(50);
    loop {
        let mut guards = Vec::with_capacity(slots.len());
        let mut busy = None;
        for (_, slot) in slots {
            match slot.try_write() {
                Some(guard) => guards.push(guard),
                None => {
                    busy = Some(slot);
                    break;
                }
            }
        }
        let Some(slot) = busy else {
            return Ok(guards);
        };
        drop(guards);
        if Instant::now() >= deadline {
            let region = slot.read_recursive().name().to_owned();
            return BusySnafu { path, region }.fail();
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// How long compaction waits for every region to be free at once.
const LOCK_ALL_PATIENCE: Duration = Duration::from_secs(5);

fn round_up(n: u64) -> u64 {
    n.div_ceil(PAGE_SIZE).saturating_mul(PAGE_SIZE)
}
