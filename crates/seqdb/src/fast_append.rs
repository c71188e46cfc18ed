//! Appends by a thread that keeps appending to the same region.
//!
//! Each thread remembers the region it appended to last, so a run of appends skips the
//! region table. After [`PROMOTE_AFTER`] appends in a row the thread is lent a buffer of
//! its own ([`seqdb_sys::handoff`]): from then on a small append is a copy into that
//! buffer and one release store, with no lock taken and no locked instruction.
//!
//! The region keeps the buffer's other half. Whoever next needs the region's bytes (a
//! flush, a reader, another writer, or this thread once its buffer is full) first collects
//! what the buffer holds, so the bytes keep their order: into the tail under the region's
//! write lock ([`Inner::collect`]), or, for a flush or a new reader, straight to the file
//! under the shared lock ([`Inner::settle_shared`]), so that neither waits for readers.
//! The reservation always has room for everything the buffer could hold, so a region's
//! length never exceeds its reservation, even counting bytes not collected yet.
//!
//! The region gives a lent buffer up only when the region is removed, or once the
//! producer is gone (its thread appended elsewhere or ended) and every byte is collected:
//! taking it from a live producer could lose an append that is under way.

use std::cell::RefCell;
use std::sync::Arc;

use snafu::ResultExt;

use seqdb_sys::{Producer, handoff};

use crate::Result;
use crate::database::{Inner, Slot};
use crate::error::SysSnafu;
use crate::region::{LentGuard, RegionState};
use crate::write::TAIL_LIMIT;

/// Size of a buffer lent to an appending thread.
const LENT_CAPACITY: usize = 64 * 1024;
/// Appends in a row to one region after which its thread is lent a buffer.
const PROMOTE_AFTER: u32 = 16;

thread_local! {
    static RECENT: RefCell<Option<Recent>> = const { RefCell::new(None) };
}

/// Run `f` on this thread's entry. `None` once the thread is ending and its entry is
/// gone (an append from another thread-local's destructor), or while it is in use
/// further up the stack: the caller then takes the long way, which needs no entry.
#[inline]
fn with_recent<T>(f: impl FnOnce(&mut Option<Recent>) -> T) -> Option<T> {
    RECENT
        .try_with(|cell| cell.try_borrow_mut().ok().map(|mut recent| f(&mut recent)))
        .ok()
        .flatten()
}

/// The region a thread appended to last, by number.
struct Recent {
    database: u64,
    number: usize,
    slot: Slot,
    /// Appends in a row through this entry while no buffer was lent.
    streak: u32,
    producer: Option<Producer>,
}

impl Inner {
    /// An append to the region this thread appended to last. `None` when it is not that
    /// region, or the region is busy or has to grow: the caller takes the long way.
    #[inline]
    pub(crate) fn append_recent(&self, number: usize, data: &[u8]) -> Option<Result<()>> {
        // The common case returns a bool: a small value keeps the hot path in registers.
        let pushed = with_recent(|recent| match recent {
            Some(r) if r.database == self.id && r.number == number => {
                r.producer.as_mut().is_some_and(|p| p.push(data))
            }
            _ => false,
        })
        .unwrap_or(false);
        if pushed {
            return Some(Ok(()));
        }
        self.append_recent_locked(number, data)
    }

    /// Remember `slot` as the region this thread appends to, unless it already is. With
    /// `evict` false (the caller holds the table lock) an entry with a lent buffer is
    /// kept; otherwise it is replaced and its buffer given back.
    pub(crate) fn remember(&self, number: usize, slot: &Slot, evict: bool) {
        let evicted = with_recent(|recent| {
            if let Some(r) = recent.as_ref() {
                let known =
                    r.database == self.id && r.number == number && Arc::ptr_eq(&r.slot, slot);
                if known || (!evict && r.producer.is_some()) {
                    return None;
                }
            }
            recent.replace(Recent {
                database: self.id,
                number,
                slot: slot.clone(),
                streak: 0,
                producer: None,
            })
        })
        .flatten();
        if let Some(old) = evicted {
            self.give_back(old);
        }
    }

    /// The thread moved on from `recent`'s region: end its producer and, if the region
    /// is free, collect the buffer so the region gives it up now rather than at the next
    /// flush. Holds no lock on entry.
    fn give_back(&self, recent: Recent) {
        let Recent {
            database,
            slot,
            producer,
            ..
        } = recent;
        // A buffer another database lent: ending the producer is enough, that database's
        // next flush or reader collects it (its list still names the region).
        if producer.is_none() || database != self.id {
            return;
        }
        drop(producer);
        if let Some(mut region) = slot.try_write()
            && !region.is_removed()
        {
            // An error stays with the bytes: the next flush or reader collects them.
            let _ = self.collect(&mut region);
        }
    }

    /// The append when the lent buffer (if any) refused it: under the region's lock.
    #[inline(never)]
    fn append_recent_locked(&self, number: usize, data: &[u8]) -> Option<Result<()>> {
        with_recent(|recent| {
            let recent = recent
                .as_mut()
                .filter(|r| r.database == self.id && r.number == number)?;
            self.append_with(recent, data)
        })
        .flatten()
    }

    /// The body of [`append_recent_locked`](Self::append_recent_locked), once the
    /// thread's entry is borrowed.
    fn append_with(&self, recent: &mut Recent, data: &[u8]) -> Option<Result<()>> {
        // Only a `try_`: the long way waits, and knows what to report.
        let mut region = recent.slot.try_write()?;
        if region.is_removed() {
            recent.producer = None;
            return None;
        }
        if let Err(e) = self.collect(&mut region) {
            return Some(Err(e));
        }
        match recent.producer.as_mut() {
            // The buffer was full; everything in it is collected now.
            Some(producer) => {
                if self.refill(&mut region, producer) {
                    if producer.push(data) {
                        return Some(Ok(()));
                    }
                } else {
                    recent.producer = None;
                }
            }
            None if region.lent_mut().is_none() => {
                recent.streak = recent.streak.saturating_add(1);
                if recent.streak >= PROMOTE_AFTER
                    && let Ok(mut producer) = self.lend(&mut region)
                {
                    let pushed = producer.push(data);
                    recent.producer = Some(producer);
                    if pushed {
                        return Some(Ok(()));
                    }
                }
            }
            None => {}
        }
        if region.push_tail_quickly(data, &self.buffered, TAIL_LIMIT) {
            self.note_dirty(&region);
            return Some(Ok(()));
        }
        if region.fits(data.len()) {
            return Some(self.append_in_place(&mut region, data));
        }
        None
    }

    /// Lend a buffer for appends to `region`, which has none. The reservation is grown
    /// first to hold everything the buffer can.
    fn lend(&self, region: &mut RegionState) -> Result<Producer> {
        let (producer, consumer) = handoff(LENT_CAPACITY);
        // Appends through the buffer mark nothing: no snapshot may be shared meanwhile.
        region.invalidate();
        region.set_lent(consumer);
        if let Err(e) = self.reserve(region, region.len()) {
            region.take_lent();
            return Err(e);
        }
        self.lent.lock().push(region.number());
        Ok(producer)
    }

    /// Start a full, fully collected buffer over. False when that is not possible (the
    /// reservation could not grow), after which the region no longer lends it.
    fn refill(&self, region: &mut RegionState, producer: &mut Producer) -> bool {
        let rewound = region.lent_mut().is_some_and(|lent| lent.rewind(producer));
        if rewound && self.reserve(region, region.len()).is_ok() {
            return true;
        }
        // The producer is this thread's and not pushing: nothing can be lost.
        self.unlend(region);
        false
    }

    /// Move the bytes of the region's lent buffer into its tail (or the file), in order.
    /// Call under the region's write lock before anything that reads or changes its
    /// length or bytes.
    pub(crate) fn collect(&self, region: &mut RegionState) -> Result<()> {
        region.fold(&self.buffered);
        let Some(mut lent) = region.take_lent() else {
            return Ok(());
        };
        // Read before the bytes: once the producer is gone, they are all there.
        let finished = lent.is_finished();
        let pending = lent.pending();
        let taken = pending.len();
        let result = if taken == 0 {
            Ok(())
        } else {
            // A no-op: the reservation always has room for the lent buffer's bytes.
            self.reserve(region, region.len() + taken as u64)
                .and_then(|()| self.append_in_place(region, pending))
        };
        if result.is_ok() {
            lent.consume(taken);
        }
        region.set_lent(lent);
        if finished && result.is_ok() {
            self.unlend(region);
        }
        result
    }

    /// Put every byte of the region in the data file while holding only its shared lock,
    /// so that a flush or a new reader never waits for readers: the part of the tail not
    /// in the file yet, then what the lent buffer published, right after it. Neither
    /// changes bytes a reader sees (readers see a prefix of these). Afterwards the
    /// region's length counts every byte the buffer had published.
    pub(crate) fn settle_shared(&self, region: &RegionState) -> Result<()> {
        // Without a live part the region has nothing in memory, nor can it get anything
        // while the shared lock is held.
        let Some(mut lent) = region.lock_lent() else {
            return Ok(());
        };
        self.settle_locked(region, &mut lent)
    }

    /// [`settle_shared`](Self::settle_shared) with the lent-buffer mutex held.
    pub(crate) fn settle_locked(
        &self,
        region: &RegionState,
        lent: &mut LentGuard<'_>,
    ) -> Result<()> {
        let (offset, unsynced) = region.tail().unsynced();
        if !unsynced.is_empty() {
            self.data
                .write_all_at(unsynced, region.tail_offset() + offset as u64)
                .context(SysSnafu)?;
            region.tail_synced(lent);
        }
        let Some(consumer) = lent.as_mut() else {
            return Ok(());
        };
        let finished = consumer.is_finished();
        let pending = consumer.pending();
        let taken = pending.len();
        if taken > 0 {
            // Inside the reservation: it always has room for the lent buffer's bytes.
            self.data
                .write_all_at(pending, region.collect_offset())
                .context(SysSnafu)?;
            consumer.consume(taken);
            region.add_collected(lent, taken as u64);
            self.note_dirty(region);
        }
        if finished {
            **lent = None;
            self.forget_lent(region.number());
        }
        Ok(())
    }

    /// Collect the lent buffer and write the tail out: every byte in the data file.
    pub(crate) fn settle(&self, region: &mut RegionState) -> Result<()> {
        self.collect(region)?;
        self.drain(region)
    }

    /// Stop lending the region a buffer. Only when the region is being removed, or its
    /// producer is gone and the buffer collected, or the producer is the caller's.
    pub(crate) fn unlend(&self, region: &mut RegionState) {
        if region.take_lent().is_some() {
            self.forget_lent(region.number());
        }
    }

    /// Take a region off the list of those with a lent buffer. Only while the region
    /// holds its number, so that the number means that region.
    fn forget_lent(&self, number: usize) {
        self.lent.lock().retain(|&n| n != number);
    }
}
