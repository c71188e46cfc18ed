//! Zero-copy reads of one region.

use parking_lot::RawRwLock;
use parking_lot::lock_api::ArcRwLockReadGuard;
use snafu::ResultExt;

use seqdb_sys::View;

use crate::error::{ReadOutOfRangeSnafu, SysSnafu};
use crate::region::RegionState;
use crate::{Database, Identifier, Region, Result};

/// A zero-copy view of one region's bytes, straight from the memory map.
///
/// While a reader lives, its region cannot change, move or be removed: writers of that
/// region wait until it is dropped (writers of other regions do not). A thread that the
/// region lent an append buffer goes on appending into it until it is full; the reader
/// shows the bytes as they were when it was made. Do not write to a region from the
/// thread that holds a reader of it.
pub struct Reader<'a> {
    // Declared first so it is dropped first: the bytes are unpinned before the region
    // lock is released.
    view: View,
    _database: std::marker::PhantomData<&'a Database>,
    region: ArcRwLockReadGuard<RawRwLock, RegionState>,
}

impl Database {
    /// A reader of a region's current bytes.
    pub fn create_region_reader(&self, id: Identifier) -> Result<Reader<'_>> {
        let inner = &self.inner;
        let slot = inner.slot(&id)?;
        let region = slot.read_arc_recursive();
        if region.is_removed() {
            return inner.unknown(&id);
        }
        // Bytes still in memory go to the file, so the map shows the whole region. Only
        // the shared lock is needed: this thread may hold readers of other regions, and
        // waiting here for a writer that waits for one of those would never end.
        inner.settle_shared(&region)?;
        // An empty region may lie past the end of the file; its view is empty anyway.
        // `len` is read once: a lent buffer collected by another reader meanwhile lands
        // beyond it.
        let len = region.len();
        let start = if len == 0 { 0 } else { region.start() };
        let view = inner.data.view(start, len).context(SysSnafu)?;
        Ok(Reader {
            view,
            _database: std::marker::PhantomData,
            region,
        })
    }
}

impl<'a> Reader<'a> {
    /// Up to `len` bytes from `offset`, cut short at the end of the region (empty when
    /// `offset` is past it). Never panics; see [`try_read`](Self::try_read) for an error
    /// instead.
    #[inline]
    pub fn read(&self, offset: u64, len: u64) -> &[u8] {
        let bytes = self.view.bytes();
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
                region: self.region.name().to_owned(),
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
        &self.view
    }

    /// The region's length in bytes.
    #[inline]
    pub fn len(&self) -> u64 {
        self.view.len() as u64
    }

    /// Whether the region is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.view.is_empty()
    }

    /// The region's metadata.
    pub fn region(&self) -> Region {
        self.region.snapshot_with_len(self.len())
    }
}

impl std::fmt::Debug for Reader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("region", &self.region.name())
            .field("len", &self.view.len())
            .finish()
    }
}
