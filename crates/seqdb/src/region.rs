//! A region's metadata as callers see it, and its live state inside the database.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::{Mutex, MutexGuard};
use seqdb_sys::{Consumer, ExtentHold};

use crate::format::RegionEntry;
use crate::name::Name;
use crate::snapshot::{Prefaulted, Published};
use crate::tail::{Budget, Tail};

/// A snapshot of one region's metadata.
///
/// `start` and `reserved` are multiples of [`PAGE_SIZE`](crate::PAGE_SIZE) and
/// `len <= reserved`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    name: String,
    number: usize,
    start: u64,
    len: u64,
    reserved: u64,
}

impl Region {
    /// The metadata of region `number`: `len` bytes at `start`, in a reservation of
    /// `reserved`.
    pub(crate) fn new(name: String, number: usize, start: u64, len: u64, reserved: u64) -> Self {
        Region {
            name,
            number,
            start,
            len,
            reserved,
        }
    }

    /// The region's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The region's number, stable across reopen.
    pub fn number(&self) -> usize {
        self.number
    }
    /// Offset of the region's first byte in the data file (page-aligned).
    pub fn start(&self) -> u64 {
        self.start
    }
    /// Number of bytes in the region.
    pub fn len(&self) -> u64 {
        self.len
    }
    /// Whether the region holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Bytes of the data file set aside for the region (page-aligned, at least `len`).
    pub fn reserved(&self) -> u64 {
        self.reserved
    }
}

/// The live state of a region, behind its own lock.
///
/// The region's bytes, in order: `[0, written)` in the data file; then the in-memory
/// [`Tail`] of small appends (a prefix of which may also be in the file); then `collected`
/// bytes taken from a lent buffer by a holder of the shared lock, which are in the file.
/// A thread appending to the region over and over may be lent a buffer of its own (see
/// `fast_append`): its bytes follow all of these until they are collected.
///
/// What only a region in use needs (the tail, the collected count, the lent buffer, the
/// extent's holders and the published snapshot) is kept apart, in a [`Live`] part
/// allocated the first time the region is appended to, written, moved or read, so that a
/// region just opened takes only its placement, lengths, flags and name.
///
/// Invariants, checked after every change in debug builds ([`check`](Self::check)):
///
/// * `len = written + tail.len() + collected`;
/// * `collected > 0` only while the whole tail is in the file too (a shared holder writes
///   the tail out before collecting past it), so bytes never follow a tail that is only
///   in memory; the next holder of the write lock folds both into `written`;
/// * `start` and `reserved` are page-aligned and `len <= reserved`; between operations
///   also `len + headroom <= reserved`, where the headroom is all that a lent buffer
///   holds or may still take (an append that would break it grows the region first);
/// * `collected` and the tail's synced prefix grow only under the shared lock with the
///   lent-buffer mutex held (the methods that do it take its guard), and everything else
///   changes only under the write lock (`&mut self`);
/// * while the region has no live part it is as the open (or its creation) left it: its
///   length is `written`, it has not moved, and it has no tail, collected bytes, lent
///   buffer or snapshot. Every method that changes its length or place makes the live
///   part first; a holder of the shared lock may make it too (a reader, to publish a
///   snapshot), which changes nothing else;
/// * readers' snapshots: every method that changes the region's bytes, length, name or
///   place first stops its published snapshot from being shared (a reader made after the
///   change takes a new one). Bytes below the published `frozen` length are in some
///   reader's view while the extent has holders; `frozen <= len`, so appends and the
///   tail's writes never land in a view. Writing below it takes
///   [`writable_from`](Self::writable_from) first.
#[derive(Debug)]
pub(crate) struct RegionState {
    name: Name,
    /// Below [`MAX_REGION_NUMBER`](crate::database::MAX_REGION_NUMBER), so it fits.
    number: u32,
    start: u64,
    reserved: u64,
    written: u64,
    /// Set when the region is removed; stale handles then see an unknown region.
    removed: bool,
    /// Whether the region is in the list of regions changed since the last commit.
    dirty: AtomicBool,
    /// The length the last durable commit recorded (bytes up to it must not be punched).
    committed_len: AtomicU64,
    /// The lowest offset whose bytes changed since the last commit captured the region:
    /// its length then, lowered by every overwrite and truncation since.
    changed_from: AtomicU64,
    /// Whether the region moved to another extent since the last commit captured it.
    moved: AtomicBool,
    /// What a region in use needs; none until then.
    live: OnceLock<Box<Live>>,
}

/// The part of a region's state that only a region in use needs (see [`RegionState`]).
#[derive(Debug)]
pub(crate) struct Live {
    tail: Tail,
    /// Bytes in the file after the tail, collected under a shared lock.
    collected: AtomicU64,
    /// The receiving end of a buffer lent to one appending thread. Its mutex also keeps
    /// `collected` and the tail's synced prefix from changing while held.
    lent: Mutex<Option<Consumer>>,
    /// The holders (readers' snapshots) of the region's current extent; made by the
    /// first reader of the extent.
    hold: OnceLock<Arc<ExtentHold>>,
    /// The snapshot new readers share while the region does not change.
    published: Mutex<Published>,
}

impl Live {
    /// The live part of a region whose first `opened` bytes were in the file when it was
    /// opened, and which has not moved since.
    fn new(opened: u64) -> Box<Self> {
        Box::new(Live {
            tail: Tail::default(),
            collected: AtomicU64::new(0),
            lent: Mutex::new(None),
            hold: OnceLock::new(),
            published: Mutex::new(Published {
                prefaulted: Prefaulted::opened(opened),
                ..Published::default()
            }),
        })
    }
}

/// The tail of a region that has no live part.
static NO_TAIL: Tail = Tail::new();

/// What changed in a region's bytes and place between two commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Changes {
    /// Bytes before this offset are as the previous commit recorded them.
    pub from: u64,
    /// The region moved: its bytes are at a new place in the data file.
    pub moved: bool,
}

/// Proof that the caller holds a region's lent-buffer mutex.
pub(crate) type LentGuard<'a> = MutexGuard<'a, Option<Consumer>>;

impl RegionState {
    /// A new, empty region; `number` is below
    /// [`MAX_REGION_NUMBER`](crate::database::MAX_REGION_NUMBER).
    pub fn new(name: String, number: usize, start: u64, reserved: u64) -> Self {
        debug_assert!((number as u64) < crate::database::MAX_REGION_NUMBER);
        let region = RegionState {
            name: Name::from(name),
            number: number as u32,
            start,
            reserved,
            written: 0,
            removed: false,
            dirty: AtomicBool::new(false),
            committed_len: AtomicU64::new(0),
            changed_from: AtomicU64::new(0),
            moved: AtomicBool::new(false),
            live: OnceLock::new(),
        };
        region.check();
        region
    }

    /// The region open found: `len` bytes at `start` in a reservation of `reserved`
    /// (`place.rs` makes it when the region is first looked up). Not checked here: the
    /// placement comes from a file, and opening validates every placement and refuses the
    /// file when one is wrong (and every number, which is below
    /// [`MAX_REGION_NUMBER`](crate::database::MAX_REGION_NUMBER)).
    pub fn opened(name: Name, number: usize, start: u64, reserved: u64, len: u64) -> Self {
        debug_assert!((number as u64) < crate::database::MAX_REGION_NUMBER);
        RegionState {
            name,
            number: number as u32,
            start,
            reserved,
            written: len,
            removed: false,
            dirty: AtomicBool::new(false),
            committed_len: AtomicU64::new(len),
            changed_from: AtomicU64::new(len),
            moved: AtomicBool::new(false),
            live: OnceLock::new(),
        }
    }

    /// The invariants of the type's documentation (debug builds only).
    #[inline]
    fn check(&self) {
        #[cfg(debug_assertions)]
        {
            let tail = self.tail();
            let collected = self.collected();
            debug_assert!(
                collected == 0 || tail.synced() == tail.len(),
                "region {}: bytes collected after a tail that is not in the file",
                self.number
            );
            debug_assert!(tail.synced() <= tail.len());
            debug_assert!(
                self.start.is_multiple_of(crate::PAGE_SIZE)
                    && self.reserved.is_multiple_of(crate::PAGE_SIZE),
                "region {}: unaligned placement {}+{}",
                self.number,
                self.start,
                self.reserved
            );
            debug_assert!(
                self.len() <= self.reserved,
                "region {}: length {} exceeds the reservation {}",
                self.number,
                self.len(),
                self.reserved
            );
            let frozen = self
                .live
                .get()
                .and_then(|live| live.published.try_lock().map(|published| published.frozen));
            debug_assert!(
                frozen.is_none_or(|frozen| frozen <= self.len()),
                "region {}: a reader views {frozen:?} bytes of {}",
                self.number,
                self.len()
            );
        }
    }

    /// The live part, made now if the region has none, for holders of the shared lock.
    /// A new one changes nothing: the region has no tail, lent buffer or snapshot yet.
    fn live_shared(&self) -> &Live {
        // Without a live part nothing changes `written` under the shared lock, and it is
        // the length the region was opened (or created) with.
        self.live.get_or_init(|| Live::new(self.written))
    }

    /// The live part, made now if the region has none: call before changing the region's
    /// length or place (see the invariants).
    #[inline]
    fn live_mut(&mut self) -> &mut Live {
        if self.live.get().is_none() {
            self.live = OnceLock::from(Live::new(self.written));
        }
        match self.live.get_mut() {
            Some(live) => live,
            // Set just above.
            None => unreachable!("a region's live part was not made"),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn number(&self) -> usize {
        self.number as usize
    }

    pub fn start(&self) -> u64 {
        self.start
    }

    pub fn reserved(&self) -> u64 {
        self.reserved
    }

    /// Bytes known to be in the data file, from the start.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The in-memory tail (an empty one while the region has no live part).
    #[inline]
    pub fn tail(&self) -> &Tail {
        self.live.get().map_or(&NO_TAIL, |live| &live.tail)
    }

    /// Bytes collected after the tail under a shared lock.
    #[inline]
    fn collected(&self) -> u64 {
        self.live
            .get()
            .map_or(0, |live| live.collected.load(Ordering::Acquire))
    }

    pub fn is_removed(&self) -> bool {
        self.removed
    }

    /// The region's length: the bytes in the file and those still in the tail (not
    /// those of a lent buffer not collected yet).
    #[inline]
    pub fn len(&self) -> u64 {
        match self.live.get() {
            None => self.written,
            Some(live) => {
                self.written + live.tail.len() as u64 + live.collected.load(Ordering::Acquire)
            }
        }
    }

    /// Where the tail's first byte goes in the data file.
    pub fn tail_offset(&self) -> u64 {
        self.start + self.written
    }

    /// Where bytes collected from a lent buffer under a shared lock go next.
    pub fn collect_offset(&self) -> u64 {
        self.start + self.len()
    }

    /// The holders of the region's current extent, for holders of the shared lock.
    pub fn hold(&self) -> &Arc<ExtentHold> {
        self.live_shared().hold.get_or_init(Arc::default)
    }

    /// The snapshot for new readers, for holders of the shared lock.
    pub fn published(&self) -> &Mutex<Published> {
        &self.live_shared().published
    }

    /// The region is changing: new readers must take a new snapshot.
    #[inline]
    pub fn invalidate(&mut self) {
        if let Some(live) = self.live.get_mut()
            && let Some(snapshot) = &live.published.get_mut().snapshot
        {
            snapshot.invalidate();
        }
    }

    /// Stop sharing the published snapshot with new readers.
    pub fn withdraw_snapshot(&mut self) {
        if let Some(live) = self.live.get_mut() {
            live.published.get_mut().withdraw();
        }
    }

    /// Whether bytes from offset `at` on may be written in place: no reader's snapshot
    /// views them. First withdraws the published snapshot, so that only readers count.
    /// When this returns false the caller moves the region (copy-on-write).
    pub fn writable_from(&mut self, at: u64) -> bool {
        // Without a live part no reader ever viewed the region's extent.
        let Some(live) = self.live.get_mut() else {
            return true;
        };
        let published = live.published.get_mut();
        published.withdraw();
        if at >= published.frozen {
            return true;
        }
        // Under the write lock no snapshot of this extent can be taken, so the count
        // only falls: zero stays zero.
        if live.hold.get().is_none_or(|hold| hold.holders() == 0) {
            published.frozen = 0;
            return true;
        }
        false
    }

    /// The lent buffer's mutex held, for holders of the shared lock; `None` when the
    /// region has no live part, and so no lent buffer, tail or collected bytes (nor can
    /// it get any while the shared lock is held).
    pub fn lock_lent(&self) -> Option<LentGuard<'_>> {
        self.live.get().map(|live| live.lent.lock())
    }

    /// Whether the region lends a buffer, for holders of the shared lock.
    pub fn is_lending(&self) -> bool {
        self.lock_lent().is_some_and(|lent| lent.is_some())
    }

    /// The lent buffer, for the holder of the write lock.
    #[inline]
    pub fn lent_mut(&mut self) -> Option<&mut Consumer> {
        self.live.get_mut()?.lent.get_mut().as_mut()
    }

    /// Take the lent buffer back, for the holder of the write lock.
    pub fn take_lent(&mut self) -> Option<Consumer> {
        self.live.get_mut()?.lent.get_mut().take()
    }

    /// Lend the region a buffer (its consumer), or put one back, under the write lock.
    pub fn set_lent(&mut self, consumer: Consumer) {
        *self.live_mut().lent.get_mut() = Some(consumer);
    }

    /// Room the reservation keeps beyond the length for a lent buffer: what it holds
    /// and what it may still take.
    #[inline]
    pub fn headroom(&mut self) -> u64 {
        self.lent_mut().map_or(0, |lent| lent.reach() as u64)
    }

    /// Whether `n` more bytes (and the lent buffer's room) fit the reservation.
    #[inline]
    pub fn fits(&mut self, n: usize) -> bool {
        self.len()
            .checked_add(n as u64 + self.headroom())
            .is_some_and(|end| end <= self.reserved)
    }

    /// Shared holders, with the lent mutex: the tail's unsynced bytes are now in the file.
    pub fn tail_synced(&self, _lent: &LentGuard<'_>) {
        // The guard is the live part's: it exists.
        if let Some(live) = self.live.get() {
            live.tail.mark_synced();
        }
    }

    /// Shared holders, with the lent mutex: `n` bytes were written at
    /// [`collect_offset`](Self::collect_offset), after the whole tail.
    pub fn add_collected(&self, _lent: &LentGuard<'_>, n: u64) {
        // The guard is the live part's: it exists.
        if let Some(live) = self.live.get() {
            debug_assert_eq!(live.tail.synced(), live.tail.len());
            let collected = live.collected.load(Ordering::Relaxed);
            live.collected.store(collected + n, Ordering::Release);
        }
    }

    /// Count as `written` what holders of the shared lock put in the file: the whole tail
    /// once it is all there, and what they collected after it. The tail then ends the
    /// region again, ready for appends.
    #[inline]
    pub fn fold(&mut self, budget: &Budget) {
        let Some(live) = self.live.get_mut() else {
            return;
        };
        let collected = std::mem::take(live.collected.get_mut());
        if collected == 0 && !live.tail.is_all_synced() {
            return;
        }
        self.written += live.tail.len() as u64 + collected;
        live.tail.clear(budget);
        self.check();
    }

    /// Append to the tail, which must end the region (call [`fold`](Self::fold) first).
    #[inline]
    pub fn push_tail(&mut self, data: &[u8], budget: &Budget) {
        let live = self.live_mut();
        debug_assert_eq!(*live.collected.get_mut(), 0, "the tail must end the region");
        if let Some(snapshot) = &live.published.get_mut().snapshot {
            snapshot.invalidate();
        }
        live.tail.extend(data, budget);
    }

    /// The commonest append: it fits the reservation and stays within the tail's current
    /// page, so neither the shared budget nor a write-out is involved. False when the
    /// long way must be taken.
    #[inline]
    pub fn push_tail_quickly(&mut self, data: &[u8], budget: &Budget, limit: usize) -> bool {
        let fits = self.fits(data.len());
        let live = self.live_mut();
        let quick = fits
            && *live.collected.get_mut() == 0
            && live.tail.len() + data.len() < limit
            && live.tail.same_page_after(data.len());
        if quick {
            if let Some(snapshot) = &live.published.get_mut().snapshot {
                snapshot.invalidate();
            }
            live.tail.extend(data, budget);
        }
        quick
    }

    /// The tail's unsynced bytes were written at their place: they are all `written` now.
    pub fn tail_written(&mut self, budget: &Budget) {
        if let Some(live) = self.live.get_mut() {
            debug_assert_eq!(*live.collected.get_mut(), 0);
            self.written += live.tail.len() as u64;
            live.tail.clear(budget);
        }
        self.check();
    }

    /// `n` bytes were written at [`tail_offset`](Self::tail_offset), the tail being empty.
    pub fn written_directly(&mut self, n: u64) {
        let live = self.live_mut();
        debug_assert!(live.tail.is_empty() && *live.collected.get_mut() == 0);
        self.invalidate();
        self.written += n;
        self.check();
    }

    /// Bytes from offset `at` on were (or are about to be) written in place.
    pub fn overwrote(&mut self, at: u64) {
        let from = self.changed_from.get_mut();
        *from = (*from).min(at);
    }

    /// After a write at an offset, with every byte in the file: the region is `len` long.
    pub fn set_written_len(&mut self, len: u64) {
        let live = self.live_mut();
        debug_assert!(live.tail.is_empty() && *live.collected.get_mut() == 0);
        self.invalidate();
        self.written = len;
        self.check();
    }

    /// Shorten the region to `len <= len()` (call [`fold`](Self::fold) first, and
    /// [`writable_from`](Self::writable_from)`(len)`, which must have returned true).
    pub fn truncate(&mut self, len: u64, budget: &Budget) {
        debug_assert!(len <= self.len() && self.collected() == 0);
        self.invalidate();
        self.overwrote(len);
        let written = self.written;
        let tail = &mut self.live_mut().tail;
        if len >= written {
            tail.truncate((len - written) as usize, budget);
        } else {
            tail.clear(budget);
            self.written = len;
        }
        self.check();
    }

    /// The reservation grew, or shrank to no less than the length, where it is.
    pub fn grown(&mut self, reserved: u64) {
        self.reserved = reserved;
        // A reader made from now on reports the new reservation.
        self.invalidate();
        self.check();
    }

    /// The region's `written` bytes were copied to a new place. Returns the hold of the
    /// extent it left, for the caller to retire: readers' snapshots may still view it.
    #[must_use = "the old extent must be retired"]
    pub fn moved(&mut self, start: u64, reserved: u64) -> Arc<ExtentHold> {
        let live = self.live_mut();
        debug_assert_eq!(*live.collected.get_mut(), 0);
        let published = live.published.get_mut();
        published.withdraw();
        published.frozen = 0;
        // The new extent was written by this process: its bytes are in the page cache.
        published.prefaulted = Prefaulted::default();
        // What shared holders wrote of the tail stayed at the old place.
        live.tail.unsync();
        let hold = live.hold.take().unwrap_or_default();
        self.start = start;
        self.reserved = reserved;
        *self.moved.get_mut() = true;
        self.check();
        hold
    }

    pub fn rename(&mut self, name: String) {
        self.invalidate();
        self.name = Name::from(name);
    }

    /// The region is gone: its tail with it, and stale handles see an unknown region.
    /// Returns the hold of its extent, for the caller to retire.
    #[must_use = "the extent must be retired"]
    pub fn mark_removed(&mut self, budget: &Budget) -> Arc<ExtentHold> {
        self.removed = true;
        let Some(live) = self.live.get_mut() else {
            return Arc::default();
        };
        live.published.get_mut().withdraw();
        live.tail.clear(budget);
        live.hold.take().unwrap_or_default()
    }

    /// The metadata as callers see it: the length counts bytes still in memory, in the
    /// tail or a lent buffer (the reservation has room for them).
    pub fn snapshot(&self) -> Region {
        self.snapshot_with_len(self.visible_len())
    }

    /// The length as callers see it (see [`snapshot`](Self::snapshot)).
    pub fn visible_len(&self) -> u64 {
        let lent = self.lock_lent();
        let pending = lent
            .as_ref()
            .and_then(|lent| lent.as_ref())
            .map_or(0, |lent| lent.pending().len());
        self.len() + pending as u64
    }

    /// The metadata with a given length (a reader's, say).
    pub fn snapshot_with_len(&self, len: u64) -> Region {
        Region::new(
            self.name.as_str().to_owned(),
            self.number as usize,
            self.start,
            len,
            self.reserved,
        )
    }

    /// The metadata a commit records: only bytes in the data file count. Its checksums
    /// are left as they were (the commit fills in those that changed).
    pub fn entry(&self) -> RegionEntry {
        let len = self.len();
        RegionEntry {
            number: self.number as u64,
            start: self.start,
            reserved: self.reserved,
            len,
            name: self.name.clone(),
            sums_from: crate::sums::chunks(len),
            crcs: Default::default(),
            origin: 0,
        }
    }

    /// Mark the region changed; returns true when the caller must add it to the dirty list.
    #[inline]
    pub fn mark_dirty(&self) -> bool {
        !self.dirty.load(Ordering::Acquire) && !self.dirty.swap(true, Ordering::AcqRel)
    }

    /// Clear the changed flag; true when it was set.
    pub fn take_dirty(&self) -> bool {
        self.dirty.swap(false, Ordering::AcqRel)
    }

    /// Set the changed flag again (a flush that took it failed).
    pub fn set_dirty(&self) {
        self.dirty.store(true, Ordering::Release);
    }

    /// At a commit's instant (under the shared lock): where the region's bytes changed
    /// since the last commit captured it, and whether it moved; both start over.
    pub fn take_changes(&self) -> Changes {
        Changes {
            from: self.changed_from.swap(self.len(), Ordering::AcqRel),
            moved: self.moved.swap(false, Ordering::AcqRel),
        }
    }

    /// Put back what a failed commit took.
    pub fn restore_changes(&self, changes: Changes) {
        self.changed_from.fetch_min(changes.from, Ordering::AcqRel);
        if changes.moved {
            self.moved.store(true, Ordering::Release);
        }
    }

    pub fn committed_len(&self) -> u64 {
        self.committed_len.load(Ordering::Acquire)
    }

    /// A durable commit recorded the region with `len` bytes.
    pub fn set_committed_len(&self, len: u64) {
        self.committed_len.store(len, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What an open keeps per region (besides the `Arc` around it): a name of up to 22
    /// bytes inline, and no live part until the region is used.
    #[test]
    fn a_region_just_opened_is_small() {
        assert_eq!(size_of::<parking_lot::RwLock<RegionState>>(), 96);
        let mut region = RegionState::opened("r000007".into(), 7, 4096, 4096, 100);
        assert!(region.live.get().is_none());
        assert_eq!((region.len(), region.tail().len()), (100, 0));
        assert!(region.writable_from(0) && region.lock_lent().is_none());
        assert!(region.live.get().is_none(), "asking made no live part");
        // A reader makes it, knowing the 100 bytes were in the file at open.
        let _ = region.published();
        assert!(region.live.get().is_some());
        assert_eq!(region.len(), 100);
    }

    #[test]
    fn a_change_of_length_makes_the_live_part_first() {
        let budget = Budget::default();
        let mut region = RegionState::new("r".to_owned(), 0, 4096, 8192);
        region.written_directly(10);
        assert!(region.live.get().is_some());
        region.push_tail(b"abc", &budget);
        assert_eq!(region.len(), 13);
        let mut moved = RegionState::new("m".to_owned(), 1, 4096, 8192);
        let _hold = moved.moved(16384, 8192);
        assert!(moved.live.get().is_some() && moved.start() == 16384);
    }
}
