//! Zero-copy reads of one region: snapshots.

use std::marker::PhantomData;
use std::sync::Arc;

use snafu::ResultExt;

use crate::database::Inner;
use crate::error::{ReadOutOfRangeSnafu, SysSnafu};
use crate::region::RegionState;
use crate::snapshot::{self, Holder, Snapshot};
use crate::{Database, Identifier, Region, Result};

/// A zero-copy snapshot of one region's bytes, straight from the memory map.
///
/// A reader shows exactly the bytes and the length its region had when the reader was
/// made, for as long as it lives, whatever happens to the region meanwhile; it holds no
/// lock, so nobody waits for it:
///
/// * appends to the region (growth and moves included) proceed, and the reader does not
///   see them;
/// * an overwrite or truncation that would change bytes the reader shows moves the
///   region first (copy-on-write): the region continues elsewhere and the reader keeps the
///   old bytes. That costs a copy of the bytes the region keeps (measured: 0.3 ms for
///   1 MiB, 42 ms for 64 MiB), where waiting for the reader would cost as long as the
///   reader lives and deadlock a thread that holds one. Writes past every reader's
///   length, and all writes once no reader is left, happen in place;
/// * removal, renaming and compaction proceed too; the reader keeps the bytes, and
///   [`region`](Self::region) the metadata, it was made with.
///
/// A thread may write to a region while it holds a reader of it. Space a region moved
/// away from is reused or given back to the file system only after the last reader
/// viewing it is dropped, at the next flush or hole punch after that; until then it
/// counts in [`Stats::retired_bytes`](crate::Stats::retired_bytes). So a reader kept for
/// a long time keeps that space, not memory.
///
/// Making a reader of a region that has not changed since the last reader of it was made
/// shares that reader's snapshot: on the thread that made it, an `Arc` clone and no lock.
/// After a change the first reader takes a new snapshot: it waits for a writer of that
/// region that holds its lock, writes bytes still in memory to the file, pins the range
/// in the mapping, and on Linux has the kernel map the bytes written since the last
/// snapshot into the page tables (64 KiB or more of them; about 0.3 ms for 24 MB), so that
/// the first reads of them take no page fault. `Reader` is `Send` and `Sync`.
///
/// The slices a reader returns point into a memory map of the data file. Nothing this
/// crate does changes them while the reader lives; a process or handle outside it that
/// writes or truncates the data file would (a truncation makes reading them raise
/// `SIGBUS`). See [Safety of the memory map](crate#safety-of-the-memory-map).
pub struct Reader<'a> {
    snapshot: Arc<Snapshot>,
    _database: PhantomData<&'a Database>,
}

impl Database {
    /// A reader of a region's current bytes: a snapshot that keeps them as they are now
    /// (see [`Reader`]).
    #[inline]
    pub fn create_region_reader(&self, id: Identifier) -> Result<Reader<'_>> {
        let snapshot = match id {
            Identifier::Number(number) => match snapshot::remembered(self.inner.id, number) {
                Some(snapshot) => snapshot,
                None => self.inner.new_snapshot(&id)?,
            },
            Identifier::Name(_) => self.inner.new_snapshot(&id)?,
        };
        Ok(Reader {
            snapshot,
            _database: PhantomData,
        })
    }
}

impl Inner {
    /// The region's current snapshot, taken now if it has none. Remembered by this thread
    /// when the region is named by number.
    #[inline(never)]
    fn new_snapshot(&self, id: &Identifier) -> Result<Arc<Snapshot>> {
        let slot = self.slot(id)?;
        // Only the shared lock: writers of the region wait for this (not for the reader),
        // and this waits for a writer that holds the region. Recursively, as a flush takes
        // it, so that a thread already holding it (a hook called by a flush) never queues
        // behind a waiting writer.
        let region = slot.read_recursive();
        if region.is_removed() {
            return self.unknown(id);
        }
        let (snapshot, prefault) = self.share(&region)?;
        drop(region);
        if let Some(from) = prefault {
            // Outside the region's lock: a writer of the region need not wait for it.
            snapshot.prefault(from);
        }
        if let Identifier::Number(number) = *id
            && snapshot.is_current()
        {
            snapshot::remember(self.id, number, &snapshot);
        }
        Ok(snapshot)
    }

    /// The region's published snapshot if it is current, else a new one, published for
    /// the next readers, with the offset from which the caller should prefault its bytes
    /// (see [`Prefaulted`](crate::snapshot::Prefaulted)). Needs the region's shared lock.
    pub(crate) fn share(&self, region: &RegionState) -> Result<(Arc<Snapshot>, Option<usize>)> {
        if let Some(snapshot) = region.published().lock().snapshot.as_ref()
            && snapshot.is_current()
        {
            return Ok((Arc::clone(snapshot), None));
        }
        // Bytes still in memory go to the file, so the map shows the whole region.
        self.settle_shared(region)?;
        // A region that lends a buffer changes without a lock: its snapshot is never
        // current. Only the write lock lends one, so this holds while the shared lock does.
        let lending = region.is_lending();
        let mut published = region.published().lock();
        if let Some(snapshot) = published.snapshot.as_ref()
            && snapshot.is_current()
        {
            // Another reader published one meanwhile.
            return Ok((Arc::clone(snapshot), None));
        }
        // `len` is read once: a lent buffer collected by another holder of the shared lock
        // meanwhile lands beyond it.
        let len = region.len();
        let (view, holder) = if len == 0 {
            // An empty region may lie past the end of the file; its view is empty anyway.
            (self.data.view(0, 0).context(SysSnafu)?, None)
        } else {
            let view = self.data.view(region.start(), len).context(SysSnafu)?;
            // The current extent is retired only under the write lock: this never fails.
            let holder = Holder::new(region.hold());
            debug_assert!(holder.is_some(), "the current extent is retired");
            (view, holder)
        };
        published.frozen = published.frozen.max(len);
        // Planned under the mutex, so that one snapshot prefaults each new byte once.
        let prefault = published.prefaulted.plan(&view, region.start());
        let snapshot = Arc::new(Snapshot::new(
            view,
            holder,
            region.snapshot_with_len(len),
            !lending,
        ));
        // The snapshot this replaces goes on with its readers, if any, but is shared no
        // more: only the published snapshot may be current, as only it is marked when
        // the region changes.
        published.publish(Arc::clone(&snapshot));
        Ok((snapshot, prefault))
    }
}

impl<'a> Reader<'a> {
    /// Up to `len` bytes from `offset`, cut short at the end of the region (empty when
    /// `offset` is past it). Never panics; see [`try_read`](Self::try_read) for an error
    /// instead.
    #[inline]
    pub fn read(&self, offset: u64, len: u64) -> &[u8] {
        let bytes = self.snapshot.bytes();
        let total = bytes.len() as u64;
        // `offset <= end <= total`, which is a `usize`: the casts are lossless.
        if let Some(end) = offset.checked_add(len)
            && end <= total
        {
            return bytes.get(offset as usize..end as usize).unwrap_or_default();
        }
        &bytes[offset.min(total) as usize..]
    }

    /// Exactly `len` bytes from `offset`, or [`Error::ReadOutOfRange`](crate::Error::ReadOutOfRange).
    #[inline]
    pub fn try_read(&self, offset: u64, len: u64) -> Result<&[u8]> {
        let available = self.len();
        snafu::ensure!(
            offset.checked_add(len).is_some_and(|end| end <= available),
            ReadOutOfRangeSnafu {
                region: self.snapshot.region().name().to_owned(),
                offset,
                requested: len,
                len: available,
            }
        );
        Ok(self.read(offset, len))
    }

    /// All of the region's bytes.
    #[inline]
    pub fn read_all(&self) -> &[u8] {
        self.snapshot.bytes()
    }

    /// The region's length in bytes.
    #[inline]
    pub fn len(&self) -> u64 {
        self.snapshot.bytes().len() as u64
    }

    /// Whether the region is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.snapshot.bytes().is_empty()
    }

    /// The region's metadata when the reader was made.
    pub fn region(&self) -> Region {
        self.snapshot.region().clone()
    }
}

impl std::fmt::Debug for Reader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("region", &self.snapshot.region().name())
            .field("len", &self.len())
            .finish()
    }
}
