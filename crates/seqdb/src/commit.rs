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
use crate::format::{Record, RecordKind, RegionEntry};
use crate::meta_log::next_generation;
use crate::region::RegionState;
use crate::{Database, Result};

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
        self.inner.flush()
    }
}

impl Drop for Inner {
    /// The last handle is gone: keep what was written, as `BufWriter` does. A failure
    /// cannot be reported from here (see [`Database::close`]); the database then holds its
    /// last successful flush, as after a crash.
    fn drop(&mut self) {
        let _ = self.flush();
        // A published snapshot holds a view, and a view holds the data file open and
        // locked: let them go with the handle, even where a thread still remembers a
        // region it appended to (its entry keeps the region's state).
        for slot in self.table.get_mut().slots.iter().flatten() {
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
    /// The regions the record lists, with their entries, ordered by number.
    recorded: Vec<(Slot, RegionEntry)>,
    removed: Vec<u64>,
    ticket: CommitTicket,
    next_number: u64,
    /// Whether anything changed since the last commit (a checkpoint records every
    /// region, changed or not, and is not written when nothing changed).
    changed: bool,
}

impl Inner {
    pub fn flush(&self) -> Result<()> {
        if self.read_only {
            return Ok(());
        }
        self.commit_observed(None).map(|_| ())
    }

    /// Commit as `flush` does; when `observer` is given, hold every region (not only the
    /// changed ones) and tell it of each at the instant. Returns the generation of the
    /// state committed (the previous one when nothing changed). Read-write handles only.
    pub(crate) fn commit_observed(&self, mut observer: Option<Observer<'_>>) -> Result<u64> {
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
        match self.make_durable(&mut commit, &snapshot, checkpoint) {
            Ok(()) => {
                self.after_commit(&snapshot.recorded);
                let mut table = self.table.write();
                table.layout.finish_commit(snapshot.ticket);
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

    /// Sync the data, then write the record: the commit point. A failure of either is
    /// final for the handle (`Inner::final_on_error`, and "A flush" in
    /// `docs/ARCHITECTURE.md`).
    fn make_durable(
        &self,
        commit: &mut Commit,
        snapshot: &Snapshot,
        checkpoint: bool,
    ) -> Result<()> {
        let generation = if snapshot.changed {
            let generation = next_generation(&self.path, commit.generation)?;
            self.confirm_log(commit)?;
            // Before the sync: the data file then names this commit before the log can
            // hold it (see `data_header`).
            self.stamp_commit(generation)?;
            Some(generation)
        } else {
            None
        };
        self.final_on_error(self.data.sync_data().context(SysSnafu))?;
        let Some(generation) = generation else {
            return Ok(());
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
            upserts: snapshot.recorded.iter().map(|(_, e)| e.clone()).collect(),
        };
        if let Some(log) = commit.log.as_mut() {
            self.final_on_error(if checkpoint {
                log.checkpoint(&record)
            } else {
                log.append(&record)
            })?;
        }
        commit.generation = generation;
        Ok(())
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
            .filter_map(|n| Some((n, table.slots.get(n)?.clone()?)))
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
        let mut changed = !table.removed.is_empty();
        for (slot, region) in held.into_values() {
            // The lent buffer's mutex orders this against a collection by a new reader:
            // the flag and the length are read together, so collected bytes are either
            // in this entry or the region is marked dirty again after it.
            let lent = region.lent().lock();
            let dirty = region.take_dirty();
            changed |= dirty;
            let entry = (dirty || checkpoint || observer.is_some()).then(|| region.entry());
            drop(lent);
            if let Some(entry) = entry {
                if let Some(observer) = observer.as_mut() {
                    observer(&region, &entry);
                }
                if dirty || checkpoint {
                    recorded.push((slot.clone(), entry));
                }
            }
        }
        Snapshot {
            recorded,
            removed: mem::take(&mut table.removed),
            ticket: table.layout.begin_commit(),
            next_number: table.slots.len() as u64,
            changed,
        }
    }

    fn after_commit(&self, recorded: &[(Slot, RegionEntry)]) {
        for (slot, entry) in recorded {
            slot.read_recursive().set_committed_len(entry.len);
        }
    }

    /// Put back what a failed flush took, so the next flush commits it.
    fn restore(&self, snapshot: Snapshot) {
        let mut numbers = Vec::with_capacity(snapshot.recorded.len());
        for (slot, _) in &snapshot.recorded {
            let region = slot.read_recursive();
            if !region.is_removed() {
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
