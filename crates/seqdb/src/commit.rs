//! `flush`: the commit protocol ("A flush" in `docs/ARCHITECTURE.md` is its one
//! description; keep the two in step).
//!
//! The record a flush writes is the state at one instant: the moment it holds the table
//! lock and the shared lock of every region the record covers. Getting there never
//! blocks on a region while holding the table lock, and never needs a region's write
//! lock, so neither readers nor writers of other regions can hold it up for long.

use std::collections::BTreeMap;
use std::mem;

use parking_lot::RawRwLock;
use parking_lot::lock_api::ArcRwLockReadGuard;
use snafu::ResultExt;

use seqdb_layout::CommitTicket;

use crate::database::{Commit, Inner, Slot, Table};
use crate::error::SysSnafu;
use crate::format::{Crcs, InlineWrite, Record, RecordKind, RegionEntry};
use crate::meta_log::next_generation;
use crate::region::{Changes, RegionState};
use crate::sums::RegionSums;

/// A commit whose changes wrote at most this many bytes carries them in its record and
/// syncs only the log.
const INLINE_LIMIT: u64 = 256 * 1024;
/// Bytes carried inline since the data file was last synced stay below this: what an
/// open after a crash redoes.
const REDO_LIMIT: u64 = 4 << 20;
/// A commit that must hash at least this many bytes hashes them on another thread
/// while the data file syncs.
const HASH_ASIDE: u64 = 4 << 20;

/// Where the bytes a commit must carry for a region start: the first byte that changed,
/// or the first byte when the region moved (its bytes were copied to a new place).
fn inline_from(entry: &RegionEntry, changes: &Changes) -> u64 {
    if changes.moved {
        0
    } else {
        changes.from.min(entry.len)
    }
}
use crate::{Database, Identifier, Result};

impl Database {
    /// Make the current state durable: after `Ok`, every region's length, placement, name
    /// and bytes survive a process crash or power cut (see the crate documentation for the
    /// exact contract). Costs what changed since the last flush.
    ///
    /// The commit is a state the database was in at one instant, whatever other threads
    /// do meanwhile: names unique, and every region's name, placement and length (and so
    /// its appended bytes) at one point of its history. An append through a buffer the
    /// region lent to its thread counts from when it is collected, which a flush does at
    /// that instant. Bytes *overwritten* inside a region's length while the flush runs
    /// may reach the disk with it, page by page, as the durability contract allows.
    pub fn flush(&self) -> Result<()> {
        self.inner.flush()
    }

    /// Flush, and let go of this handle. Dropping the last handle of a read-write
    /// database flushes too, but can only ignore an error; `close` reports it.
    ///
    /// ```
    /// # fn main() -> seqdb::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let database = seqdb::Database::open(dir.path())?;
    /// database.create_region_if_needed("log")?;
    /// database.write_all_to_region("log".into(), b"kept")?;
    /// database.close()?;
    /// let database = seqdb::Database::open(dir.path())?;
    /// assert_eq!(database.create_region_reader("log".into())?.read_all(), b"kept");
    /// # Ok(()) }
    /// ```
    ///
    /// Other clones of the handle keep the database open, and the last of them to go
    /// flushes again.
    pub fn close(self) -> Result<()> {
        self.inner.flush_with(true)
    }
}

impl Drop for Inner {
    /// The last handle is gone: keep what was written, as `BufWriter` does. A failure
    /// cannot be reported from here (see [`Database::close`]); the database then holds its
    /// last successful flush, as after a crash.
    fn drop(&mut self) {
        let _ = self.flush_with(true);
        // A published snapshot holds a view, and a view holds the data file open and
        // locked: let them go with the handle, even where a thread still remembers a
        // region it appended to (its entry keeps the region's state).
        for slot in self.table.get_mut().made_slots() {
            slot.write().withdraw_snapshot();
        }
    }
}

/// A region held under its shared lock until the capture's instant.
type Held = (Slot, ArcRwLockReadGuard<RawRwLock, RegionState>);

/// Told, at a commit's instant, of every region and the entry the commit's state holds
/// for it (a backup takes its snapshots there; see `backup::capture`).
pub(crate) type Observer<'a> = &'a mut dyn FnMut(&RegionState, &RegionEntry);

/// What one flush captured at its instant.
struct Snapshot {
    /// The regions the record lists, with their entries and what changed in them,
    /// ordered by number.
    recorded: Vec<(Slot, RegionEntry, Changes)>,
    /// For each recorded region, whether it changed since the last commit (a checkpoint
    /// records the others too).
    changed_regions: Vec<bool>,
    removed: Vec<u64>,
    ticket: CommitTicket,
    next_number: u64,
    /// Whether anything changed since the last commit (a checkpoint records every
    /// region, changed or not, and is not written when nothing changed).
    changed: bool,
}

impl Inner {
    pub fn flush(&self) -> Result<()> {
        self.flush_with(false)
    }

    /// Flush; with `settle`, also sync the data file when commits carried bytes in their
    /// records since it was last synced, so that the next open finds them all there.
    pub fn flush_with(&self, settle: bool) -> Result<()> {
        if self.read_only {
            return Ok(());
        }
        self.commit_observed(None, settle).map(|_| ())
    }

    /// Commit as `flush_with` does; when `observer` is given, hold every region (not only the
    /// changed ones) and tell it of each at the instant. Returns the generation of the
    /// state committed (the previous one when nothing changed). Read-write handles only.
    pub(crate) fn commit_observed(
        &self,
        mut observer: Option<Observer<'_>>,
        settle: bool,
    ) -> Result<u64> {
        let mut commit = self.commit.lock();
        // Under the commit lock: a flush that failed meanwhile may have poisoned the handle.
        self.check_writable()?;
        // A checkpoint holds every region: only worth it when there is a commit to make
        // (a flush with nothing changed, a drop's say, then costs what changed: nothing).
        let checkpoint = commit
            .log
            .as_ref()
            .is_some_and(|log| log.wants_checkpoint())
            && self.may_have_changes();
        let snapshot = self.capture(checkpoint, observer.as_mut())?;
        match self.make_durable(&mut commit, &snapshot, checkpoint, settle) {
            Ok(()) => {
                self.after_commit(&snapshot.recorded);
                let oldest = self.oldest_reader();
                let mut table = self.table.write();
                // Free, unless a reader process may still view it (`reader_release.rs`).
                self.finish_or_keep(&mut table, commit.generation, snapshot.ticket, oldest);
                // Extents whose last reader is gone become free (their commit may be this
                // one or an earlier one).
                self.reclaim(&mut table);
                Ok(commit.generation)
            }
            Err(e) => {
                self.restore(snapshot);
                Err(e)
            }
        }
    }

    /// Write the record: the commit point. A small commit carries the bytes it wrote in
    /// its record, so the log's sync is its only one; a larger one syncs the data file
    /// first. A failure of either sync is final for the handle
    /// (`Inner::final_on_error`, and "A flush" in `docs/ARCHITECTURE.md`).
    fn make_durable(
        &self,
        commit: &mut Commit,
        snapshot: &Snapshot,
        checkpoint: bool,
        settle: bool,
    ) -> Result<()> {
        if !snapshot.changed {
            if settle && commit.unsynced > 0 {
                // The next open then finds every byte the log carried in the data file.
                self.final_on_error(self.data.sync_data().context(SysSnafu))?;
                commit.unsynced = 0;
            }
            return Ok(());
        }
        let generation = next_generation(&self.path, commit.generation)?;
        self.confirm_log(commit)?;
        let inline_len: u64 = snapshot
            .recorded
            .iter()
            .map(|(_, entry, changes)| entry.len - inline_from(entry, changes))
            .sum();
        // The first commit makes the data file's header durable, which only a data sync
        // does; a checkpoint drops the records before it, so what they carried must be
        // in the data file for good.
        let inline = !checkpoint
            && commit.generation > 0
            && inline_len <= INLINE_LIMIT
            && commit.unsynced + inline_len <= REDO_LIMIT;
        // Before the record: the data file then names this commit before the log holds
        // it (see `data_header`).
        self.stamp_commit(commit.stamp_slot, generation)?;
        let (sums, inline_writes) = if inline {
            let sums = self.sum_updates(commit, snapshot, checkpoint)?;
            (sums, self.inline_writes(snapshot)?)
        } else {
            // Hash while the data file syncs, when there is much to hash. The sync stays
            // on the flushing thread (sync observers see the thread that flushed).
            let hashing: u64 = snapshot
                .recorded
                .iter()
                .map(|(_, entry, changes)| entry.len - changes.from.min(entry.len))
                .sum();
            let (synced, sums) = if hashing >= HASH_ASIDE {
                let commit = &*commit;
                std::thread::scope(|scope| {
                    let sums = scope.spawn(|| self.sum_updates(commit, snapshot, checkpoint));
                    let synced = self.data.sync_data();
                    let sums = sums.join().unwrap_or_else(|_| {
                        Err(crate::Error::sys(seqdb_sys::Error::Io {
                            path: self.path.clone(),
                            op: "checksum",
                            offset: 0,
                            source: std::io::Error::other("hashing the data panicked"),
                        }))
                    });
                    (synced, sums)
                })
            } else {
                (
                    self.data.sync_data(),
                    self.sum_updates(commit, snapshot, checkpoint),
                )
            };
            self.final_on_error(synced.context(SysSnafu))?;
            (sums?, Vec::new())
        };
        let record = Record {
            generation,
            kind: if checkpoint {
                RecordKind::Checkpoint
            } else {
                RecordKind::Delta
            },
            next_number: snapshot.next_number,
            removed: if checkpoint {
                Vec::new()
            } else {
                snapshot.removed.clone()
            },
            upserts: snapshot
                .recorded
                .iter()
                .zip(&sums)
                .map(|((_, entry, _), sums)| {
                    let mut entry = entry.clone();
                    if let Some((first, crcs, _)) = sums {
                        entry.sums_from = *first;
                        entry.crcs = crcs.clone();
                    }
                    entry
                })
                .collect(),
            data_synced: !inline,
            inline: inline_writes,
        };
        if let Some(log) = commit.log.as_mut() {
            self.final_on_error(if checkpoint {
                log.checkpoint(&record, || Record {
                    kind: RecordKind::Delta,
                    removed: snapshot.removed.clone(),
                    upserts: record
                        .upserts
                        .iter()
                        .zip(&snapshot.changed_regions)
                        .filter(|(_, changed)| **changed)
                        .map(|(entry, _)| entry.clone())
                        .collect(),
                    ..record.clone()
                })
            } else {
                log.append(&record)
            })?;
        }
        commit.generation = generation;
        for number in &snapshot.removed {
            if let Some(slot) = commit.sums.get_mut(*number as usize) {
                *slot = None;
            }
        }
        for ((_, entry, _), region_sums) in snapshot.recorded.iter().zip(sums) {
            let Some((_, _, region_sums)) = region_sums else {
                continue;
            };
            let number = entry.number as usize;
            if commit.sums.len() <= number {
                commit.sums.resize_with(number + 1, || None);
            }
            commit.sums[number] = Some(region_sums);
        }
        if inline {
            commit.unsynced += inline_len;
        } else {
            commit.unsynced = 0;
            // The slot just synced holds this commit's stamp: the next ones use the other.
            commit.stamp_slot = 1 - commit.stamp_slot;
        }
        Ok(())
    }

    /// For each recorded region (in order) whose bytes changed, or every one for a
    /// checkpoint: the first chunk whose checksum the record carries, the checksums from
    /// it on, and the region's new checksums, which the commit keeps once durable.
    fn sum_updates(
        &self,
        commit: &Commit,
        snapshot: &Snapshot,
        checkpoint: bool,
    ) -> Result<Vec<Option<(u64, Crcs, RegionSums)>>> {
        let mut updates = Vec::with_capacity(snapshot.recorded.len());
        for (_, entry, changes) in &snapshot.recorded {
            let number = entry.number;
            let mut sums = match commit.sums.get(number as usize) {
                // A number removed and given to a new region starts afresh.
                Some(Some(sums)) if !snapshot.removed.contains(&number) => sums.clone(),
                _ => RegionSums::default(),
            };
            let from = changes.from.min(entry.len);
            if !checkpoint && from >= sums.len() && entry.len == sums.len() {
                updates.push(None);
                continue;
            }
            let (first, crcs) = sums.update(from, entry.len, |at, buf| {
                self.data
                    .file()
                    .read_exact_at(buf, entry.start + at)
                    .context(SysSnafu)
            })?;
            let (first, crcs) = if checkpoint {
                (0, Crcs::from_slice(sums.crcs()))
            } else {
                (first, crcs)
            };
            updates.push(Some((first, crcs, sums)));
        }
        Ok(updates)
    }

    /// The bytes each recorded region's changes wrote, read back from the data file: from
    /// the first byte changed, or all of them when the region moved.
    fn inline_writes(&self, snapshot: &Snapshot) -> Result<Vec<InlineWrite>> {
        let mut writes = Vec::new();
        for (_, entry, changes) in &snapshot.recorded {
            let from = inline_from(entry, changes);
            if from == entry.len {
                continue;
            }
            let mut bytes = vec![0u8; (entry.len - from) as usize];
            self.data
                .file()
                .read_exact_at(&mut bytes, entry.start + from)
                .context(SysSnafu)?;
            writes.push(InlineWrite {
                offset: entry.start + from,
                bytes,
            });
        }
        Ok(writes)
    }

    /// Make durable what this handle's open read (`MetaLog::confirm`) before it first acts
    /// durably on it: a commit, a hole punch, or compaction's shrink of the file. Call
    /// with the commit lock held.
    pub(crate) fn confirm_log(&self, commit: &mut Commit) -> Result<()> {
        match commit.log.as_mut() {
            Some(log) => self.final_on_error(log.confirm()),
            None => Ok(()),
        }
    }

    /// Whether anything may have changed since the last commit: a region marked changed,
    /// a buffer lent (its appends mark nothing), or a region removed.
    fn may_have_changes(&self) -> bool {
        !self.dirty.lock().is_empty()
            || !self.lent.lock().is_empty()
            || !self.table.read().removed.is_empty()
    }

    /// Hold every region the record must cover (those changed since the last commit, those
    /// lending a buffer, or all for a checkpoint) under its shared lock, with all its bytes
    /// in the data file, then take the table lock and capture the state at that instant.
    ///
    /// Regions are first held one by one without the table lock (waiting for a writer of
    /// one is fine then: no writer waits for the commit lock or for a shared lock). Under
    /// the table lock, regions that changed meanwhile are only tried; if one is busy, the
    /// table lock is let go and the loop holds it properly.
    fn capture(&self, checkpoint: bool, observer: Option<&mut Observer<'_>>) -> Result<Snapshot> {
        let all = checkpoint || observer.is_some();
        let mut held: BTreeMap<usize, Held> = BTreeMap::new();
        loop {
            // Bound first: the table lock must be let go before waiting on any region.
            let wanted = self.wanted(&self.table.read(), all, &held);
            for (number, slot) in wanted {
                let region = slot.read_arc_recursive();
                if region.is_removed() {
                    continue;
                }
                self.settle_shared(&region)?;
                held.insert(number, (slot, region));
            }
            let mut table = self.table.write();
            let mut complete = true;
            for (number, slot) in self.wanted(&table, all, &held) {
                // Only `try_` under the table lock; a region in the table is not removed.
                let Some(region) = slot.try_read_recursive_arc() else {
                    complete = false;
                    break;
                };
                self.settle_shared(&region)?;
                held.insert(number, (slot, region));
            }
            if complete {
                // Everything a lent buffer published before the instant: a thread's push
                // that precedes its change to another held region is then in the record.
                for (_, region) in held.values() {
                    self.settle_shared(region)?;
                }
                return Ok(self.snapshot(&mut table, checkpoint, held, observer));
            }
        }
    }

    /// The regions a commit now would record that `held` does not hold yet.
    fn wanted(
        &self,
        table: &Table,
        checkpoint: bool,
        held: &BTreeMap<usize, Held>,
    ) -> Vec<(usize, Slot)> {
        let numbers: Vec<usize> = if checkpoint {
            (0..table.slots.len()).collect()
        } else {
            let mut numbers = self.dirty.lock().clone();
            numbers.extend(self.lent.lock().iter().copied());
            numbers.sort_unstable();
            numbers.dedup();
            numbers
        };
        numbers
            .into_iter()
            .filter(|n| !held.contains_key(n))
            .filter_map(|n| Some((n, table.slot(&Identifier::Number(n))?.clone())))
            .collect()
    }

    /// The instant: every region the record covers is held, and so is the table lock.
    fn snapshot(
        &self,
        table: &mut Table,
        checkpoint: bool,
        held: BTreeMap<usize, Held>,
        mut observer: Option<&mut Observer<'_>>,
    ) -> Snapshot {
        {
            // Numbers that are not held were made dirty after the instant by writers of
            // other regions: they stay for the next commit. Numbers of regions removed are
            // dropped (the removal itself is in `table.removed`).
            let mut dirty = self.dirty.lock();
            let taken = mem::take(&mut *dirty);
            dirty.extend(taken.into_iter().filter(|n| {
                !held.contains_key(n) && table.slots.get(*n).is_some_and(Option::is_some)
            }));
        }
        let mut recorded = Vec::with_capacity(held.len());
        let mut changed_regions = Vec::with_capacity(held.len());
        let mut changed = !table.removed.is_empty();
        for (slot, region) in held.into_values() {
            // The lent buffer's mutex orders this against a collection by a new reader:
            // the flag and the length are read together, so collected bytes are either
            // in this entry or the region is marked dirty again after it. (A region with
            // no live part has no lent buffer, and gets none under the shared lock.)
            let lent = region.lock_lent();
            let dirty = region.take_dirty();
            changed |= dirty;
            let recorded_entry =
                (dirty || checkpoint).then(|| (region.entry(), region.take_changes()));
            let observed = observer.is_some().then(|| region.entry());
            drop(lent);
            if let (Some(observer), Some(entry)) = (observer.as_mut(), observed) {
                observer(&region, &entry);
            }
            if let Some((entry, changes)) = recorded_entry {
                recorded.push((slot.clone(), entry, changes));
                changed_regions.push(dirty);
            }
        }
        Snapshot {
            recorded,
            changed_regions,
            removed: mem::take(&mut table.removed),
            ticket: table.layout.begin_commit(),
            next_number: table.slots.len() as u64,
            changed,
        }
    }

    fn after_commit(&self, recorded: &[(Slot, RegionEntry, Changes)]) {
        for (slot, entry, _) in recorded {
            slot.read_recursive().set_committed_len(entry.len);
        }
    }

    /// Put back what a failed flush took, so the next flush commits it.
    fn restore(&self, snapshot: Snapshot) {
        let mut numbers = Vec::with_capacity(snapshot.recorded.len());
        for (slot, _, changes) in &snapshot.recorded {
            let region = slot.read_recursive();
            if !region.is_removed() {
                region.restore_changes(*changes);
                region.set_dirty();
                numbers.push(region.number());
            }
        }
        // The commit lock is held, so no flush can take the list between these two steps.
        self.dirty.lock().extend(numbers);
        self.table.write().removed.extend(snapshot.removed);
        drop(snapshot.ticket);
    }
}
