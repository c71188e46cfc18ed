//! What readers share: an immutable snapshot of one region, the region's current one
//! published for the next readers, and each thread's memory of the snapshots it used.
//!
//! A [`Snapshot`] is a pinned view of a region's bytes at one moment, with the region's
//! metadata then. It never changes. Readers hold it by `Arc`; the region keeps the newest
//! one in its [`Published`] cell, marked *current* until the region changes. A reader of
//! a region that has not changed since is then one `Arc` clone: no lock, no pin, no
//! system call. Each thread also remembers, by region number, a weak reference to the
//! snapshots it read last, so that such a reader does not even look the region up: it
//! upgrades the weak reference and checks the mark.
//!
//! Whoever changes a region's bytes or length clears the mark under the region's write
//! lock before letting it go (`RegionState` does it in every method that makes such a
//! change), so a reader made after the change never takes the old snapshot. A region
//! that lends an append buffer never has a current snapshot: the buffer's appends take no
//! lock and mark nothing.
//!
//! Each snapshot of `n > 0` bytes is one *holder* of the extent it views
//! ([`ExtentHold`]), released after its view, so that an extent the region moves away from
//! is reused only once no snapshot views it (`docs/ARCHITECTURE.md`, "Readers").

use std::cell::RefCell;
use std::sync::{Arc, Weak};

use seqdb_sys::{CurrentMark, ExtentHold, View};

use crate::Region;

/// A region's bytes and metadata at one moment, viewed in the memory map.
pub(crate) struct Snapshot {
    view: View,
    /// Declared after `view`, so dropped after it: the extent's hold is released only
    /// once the view no longer pins the bytes.
    _holder: Option<Holder>,
    region: Region,
    /// Whether the region is unchanged since: new readers may share this snapshot.
    current: CurrentMark,
}

impl Snapshot {
    /// A snapshot of the bytes `view` shows, holding their extent through `holder`
    /// (none for an empty view).
    pub fn new(view: View, holder: Option<Holder>, region: Region, current: bool) -> Self {
        Snapshot {
            view,
            _holder: holder,
            region,
            current: CurrentMark::new(current),
        }
    }

    /// The bytes.
    #[inline]
    pub fn bytes(&self) -> &[u8] {
        self.view.bytes()
    }

    /// Has the kernel map the bytes from `from` on into the page tables now
    /// ([`View::prefault`]).
    pub fn prefault(&self, from: usize) {
        self.view.prefault(from);
    }

    /// The region's metadata when the snapshot was taken (its length is the snapshot's).
    pub fn region(&self) -> &Region {
        &self.region
    }

    /// Whether the region has not changed since: a new reader may share this snapshot.
    #[inline]
    pub fn is_current(&self) -> bool {
        // A reader that happens after a change sees the mark cleared.
        self.current.is_current()
    }

    /// The region changed (or is about to, under its write lock): new readers must take a
    /// new snapshot.
    #[inline]
    pub fn invalidate(&self) {
        self.current.clear();
    }
}

/// One holder of an extent, released when dropped.
pub(crate) struct Holder(Arc<ExtentHold>);

impl Holder {
    /// A new holder of `hold`'s extent; `None` once the extent is retired (the caller
    /// holds the region's lock and asks for its current extent, which is never retired).
    pub fn new(hold: &Arc<ExtentHold>) -> Option<Self> {
        hold.acquire().then(|| Holder(Arc::clone(hold)))
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        self.0.release();
    }
}

/// The snapshot a region publishes for new readers, under a mutex of its own that a
/// holder of the region's shared lock takes to publish one; the holder of the write lock
/// reaches it without locking.
#[derive(Default)]
pub(crate) struct Published {
    /// The newest snapshot of the region's current extent, current or not.
    pub snapshot: Option<Arc<Snapshot>>,
    /// The largest length of a snapshot taken of the current extent since it last had no
    /// holder: bytes below it may be in a reader's view, and are written in place only
    /// once the extent has no holder.
    pub frozen: u64,
    /// How much of the current extent is in this process's page tables already.
    pub prefaulted: Prefaulted,
}

impl std::fmt::Debug for Published {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Published")
            .field("len", &self.snapshot.as_ref().map(|s| s.bytes().len()))
            .field("current", &self.snapshot.as_ref().map(|s| s.is_current()))
            .field("frozen", &self.frozen)
            .field("prefaulted", &self.prefaulted)
            .finish()
    }
}

impl Published {
    /// Share `snapshot` with new readers instead of the one published before.
    pub fn publish(&mut self, snapshot: Arc<Snapshot>) {
        if let Some(old) = self.snapshot.replace(snapshot) {
            old.invalidate();
        }
    }

    /// Stop sharing the published snapshot (the region is about to change in a way the
    /// snapshot must not keep its extent for). Its readers keep it.
    pub fn withdraw(&mut self) {
        if let Some(snapshot) = self.snapshot.take() {
            snapshot.invalidate();
        }
    }
}

/// The fewest bytes worth a prefault: below this the first read's fault maps them all
/// anyway (the kernel maps the cached pages around a faulting one, 64 KiB by default).
const PREFAULT_MIN: usize = 64 << 10;

/// How far a region's current extent is in this process's page tables.
///
/// A region's bytes reach the file by `pwrite`, into the page cache but into no page table
/// of the map readers read through, so without this each first read of a page takes a
/// fault. A new snapshot therefore has the kernel map the bytes it shows that no snapshot
/// of the same extent in the same mapping showed before ([`View::prefault`]), once they
/// are at least [`PREFAULT_MIN`]. Bytes that were in the file when it was opened are left
/// to the reads: they may not be in memory, and a reader may read few of them.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Prefaulted {
    /// Bytes of the extent below this were in the file when it was opened.
    opened: u64,
    /// The mapping and extent start of the last prefault, and the length it reached.
    done: Option<(usize, u64, u64)>,
}

impl Prefaulted {
    /// For a region whose first `len` bytes were in the file when it was opened.
    pub fn opened(len: u64) -> Self {
        Prefaulted {
            opened: len,
            done: None,
        }
    }

    /// Where to prefault `view`, a new snapshot's view of the extent that starts at
    /// `start`: from the end of what the snapshots before it showed, when enough is new
    /// (the caller then calls [`Snapshot::prefault`]). Counts it as done.
    pub fn plan(&mut self, view: &View, start: u64) -> Option<usize> {
        let mapping = view.mapping_id();
        let done = match self.done {
            Some((m, s, len)) if m == mapping && s == start => len,
            _ => 0,
        };
        let from = self.opened.max(done);
        let len = view.len() as u64;
        if len.saturating_sub(from) < PREFAULT_MIN as u64 {
            return None;
        }
        self.done = Some((mapping, start, len));
        // `from < len`, a `usize`.
        Some(from as usize)
    }
}

/// How many regions' snapshots a thread remembers (by region number modulo this).
const REMEMBERED: usize = 8;

/// A snapshot this thread used, by database and region number.
struct Remembered {
    database: u64,
    number: usize,
    snapshot: Weak<Snapshot>,
}

thread_local! {
    static REMEMBER: RefCell<[Option<Remembered>; REMEMBERED]> =
        const { RefCell::new([const { None }; REMEMBERED]) };
}

/// The current snapshot of region `number` of database `database`, if this thread used it
/// last and it is still current. Takes no lock: one weak upgrade and one load.
#[inline]
pub(crate) fn remembered(database: u64, number: usize) -> Option<Arc<Snapshot>> {
    REMEMBER
        .try_with(|cell| {
            let slots = cell.try_borrow().ok()?;
            let entry = slots[number % REMEMBERED].as_ref()?;
            if entry.database != database || entry.number != number {
                return None;
            }
            let snapshot = entry.snapshot.upgrade()?;
            snapshot.is_current().then_some(snapshot)
        })
        .ok()
        .flatten()
}

/// Remember `snapshot` as this thread's snapshot of region `number`.
pub(crate) fn remember(database: u64, number: usize, snapshot: &Arc<Snapshot>) {
    let _ = REMEMBER.try_with(|cell| {
        if let Ok(mut slots) = cell.try_borrow_mut() {
            slots[number % REMEMBERED] = Some(Remembered {
                database,
                number,
                snapshot: Arc::downgrade(snapshot),
            });
        }
    });
}
