//! `flush`: the commit protocol.
//!
//! 1. Under the table lock: capture the pending frees (a layout commit ticket), the
//!    removed regions and the dirty list, all at one instant.
//! 2. Snapshot each dirty region under its own lock, writing out its in-memory tail.
//! 3. Sync the data file.
//! 4. Append one metadata record (or write a checkpoint) and sync it: the commit point.
//! 5. Release the captured frees for reuse.
//!
//! The cost is proportional to the regions changed since the last flush. If writing a
//! tail fails (step 2), the regions are marked dirty again and the frees stay pending, so
//! the next flush commits everything. A failure from step 3 on is final for the handle
//! (`Inner::final_on_error`): a failed sync cannot be retried, since the kernel may have
//! dropped the pages it could not write and will report the next sync as successful,
//! and a record may have reached the file although its sync failed. Every later change is
//! refused with `Error::Poisoned`; reopening recovers the last commit the files hold.

use std::mem;
use std::sync::atomic::Ordering;

use parking_lot::RwLockWriteGuard;
use snafu::ResultExt;

use crate::database::{Inner, Slot};
use crate::error::SysSnafu;
use crate::format::{Record, RecordKind, RegionEntry};
use crate::region::RegionState;
use crate::{Database, Result};

impl Database {
    /// Make the current state durable: after `Ok`, every region's length, placement, name
    /// and bytes survive a process crash or power cut (see the crate documentation for the
    /// exact contract). Costs what changed since the last flush.
    pub fn flush(&self) -> Result<()> {
        self.inner.flush()
    }
}

/// What one flush captured, so it can be put back if the flush fails.
struct Captured {
    slots: Vec<Slot>,
    removed: Vec<u64>,
}

impl Inner {
    pub fn flush(&self) -> Result<()> {
        if self.read_only {
            return Ok(());
        }
        let mut commit = self.commit.lock();
        // Under the commit lock: a flush that failed meanwhile may have poisoned the handle.
        self.check_writable()?;
        let checkpoint = commit
            .log
            .as_ref()
            .is_some_and(|log| log.wants_checkpoint());
        let (ticket, captured, next_number) = {
            let mut table = self.table.write();
            let ticket = table.layout.begin_commit();
            let removed = mem::take(&mut table.removed);
            let mut dirty = mem::take(&mut *self.dirty.lock());
            dirty.extend(self.lent.lock().iter().copied());
            dirty.sort_unstable();
            dirty.dedup();
            let slots = if checkpoint {
                table.live_slots().into_iter().map(|(_, s)| s).collect()
            } else {
                dirty
                    .iter()
                    .filter_map(|&n| table.slots.get(n).cloned().flatten())
                    .collect()
            };
            (ticket, Captured { slots, removed }, table.slots.len())
        };
        let result = self
            .snapshot(&captured, checkpoint)
            .and_then(|(upserts, removed_since)| {
                self.final_on_error(self.data.sync_data().context(SysSnafu))?;
                // A captured region removed since the capture: its move may be among the
                // frees this commit releases, so the commit must record its removal too.
                let mut removed = captured.removed.clone();
                removed.extend(removed_since);
                if upserts.is_empty() && removed.is_empty() && !checkpoint {
                    return Ok(upserts);
                }
                let record = Record {
                    generation: commit.generation.wrapping_add(1),
                    kind: if checkpoint {
                        RecordKind::Checkpoint
                    } else {
                        RecordKind::Delta
                    },
                    next_number: next_number as u64,
                    removed: if checkpoint { Vec::new() } else { removed },
                    upserts,
                };
                if let Some(log) = commit.log.as_mut() {
                    self.final_on_error(if checkpoint {
                        log.checkpoint(&record)
                    } else {
                        log.append(&record)
                    })?;
                }
                commit.generation = commit.generation.wrapping_add(1);
                Ok(record.upserts)
            });
        match result {
            Ok(upserts) => {
                self.after_commit(&captured.slots, &upserts);
                self.table.write().layout.finish_commit(ticket);
                Ok(())
            }
            Err(e) => {
                self.restore(captured);
                Err(e)
            }
        }
    }

    /// The entries of the captured regions, with their tails written to the data file,
    /// and the numbers of captured regions found removed.
    /// A region captured only because it lends a buffer has an entry only when the buffer
    /// held bytes (collecting them marks it dirty), or when this is a checkpoint.
    fn snapshot(
        &self,
        captured: &Captured,
        checkpoint: bool,
    ) -> Result<(Vec<RegionEntry>, Vec<u64>)> {
        let mut upserts = Vec::with_capacity(captured.slots.len());
        let mut removed = Vec::new();
        for slot in &captured.slots {
            let region = self.settled(slot)?;
            if region.removed {
                removed.push(region.number as u64);
                continue;
            }
            if region.dirty.swap(false, Ordering::AcqRel) || checkpoint {
                upserts.push(region.entry());
            }
        }
        Ok((upserts, removed))
    }

    /// The region under a shared lock with every byte in the data file. Never blocks on
    /// a region lock while the commit lock is held: a lent buffer is collected under the
    /// shared lock; when the tail must be written and the region is busy, it tries again
    /// (a tail means no reader is alive, and a reader that appears meanwhile writes the
    /// tail out itself).
    fn settled<'a>(&self, slot: &'a Slot) -> Result<parking_lot::RwLockReadGuard<'a, RegionState>> {
        loop {
            let region = slot.read_recursive();
            if region.removed {
                return Ok(region);
            }
            if region.tail.is_empty() {
                self.collect_shared(&region)?;
                return Ok(region);
            }
            drop(region);
            if let Some(mut region) = slot.try_write() {
                if !region.removed {
                    self.settle(&mut region)?;
                }
                return Ok(RwLockWriteGuard::downgrade(region));
            }
            std::thread::yield_now();
        }
    }

    fn after_commit(&self, slots: &[Slot], upserts: &[RegionEntry]) {
        let mut entries = upserts.iter().peekable();
        for slot in slots {
            let region = slot.read_recursive();
            if let Some(entry) = entries.next_if(|e| e.number == region.number as u64) {
                region.committed_len.store(entry.len, Ordering::Release);
            }
        }
    }

    /// Put back what a failed flush took, so the next flush commits it.
    fn restore(&self, captured: Captured) {
        let mut numbers = Vec::with_capacity(captured.slots.len());
        for slot in &captured.slots {
            let region = slot.read_recursive();
            if !region.removed {
                region.dirty.store(true, Ordering::Release);
                numbers.push(region.number);
            }
        }
        // The commit lock is held, so no flush can take the list between these two steps.
        self.dirty.lock().extend(numbers);
        self.table.write().removed.extend(captured.removed);
    }
}
