//! [`View`]: a pinned, zero-copy window into a [`DataFile`](crate::DataFile).

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use memmap2::MmapRaw;

use crate::data_file::Shared;
use crate::pins::PinId;

/// A pinned, zero-copy view of a range of a [`DataFile`](crate::DataFile), made by
/// [`DataFile::view`](crate::DataFile::view). Dereferences to the bytes.
///
/// While it lives, the `DataFile` refuses every change to its bytes
/// ([`Error::RangeBusy`](crate::Error::RangeBusy)), and the mapping it points
/// into stays mapped even if the file grows and is mapped anew. It owns a share
/// of the data file: the file stays open and locked, and its pin table alive,
/// until the view is dropped, even if the `DataFile` value is dropped first.
/// Dropping it releases the pin.
///
/// A view is not `Clone`: one view is one pin. To share one among many
/// holders, put it in an `Arc`.
pub struct View {
    owner: Arc<Shared>,
    /// Keeps the mapping alive for as long as the view.
    _mapping: Arc<MmapRaw>,
    /// The first viewed byte inside `map` (dangling, never read, for an empty view), kept
    /// so that a read costs one load rather than a walk through the `Arc`.
    first: *const u8,
    offset: usize,
    len: usize,
    pin: PinId,
}

// SAFETY: `first` points into the mapping that `_mapping` keeps alive and is only ever read
// through a shared slice; every other field is `Send + Sync` (the mapping itself is
// `MmapRaw`, which is, and `Shared` holds a file and mutexes). Sharing or sending the view
// shares read-only bytes whose immutability the pin guarantees, as the safety comment of
// `bytes` explains.
unsafe impl Send for View {}
// SAFETY: as for `Send` above: the view gives out only shared, immutable bytes.
unsafe impl Sync for View {}

impl View {
    /// Wraps a range that the caller has bounds-checked and pinned in `owner`'s table.
    pub(crate) fn new(
        owner: Arc<Shared>,
        map: Arc<MmapRaw>,
        offset: usize,
        len: usize,
        pin: PinId,
    ) -> Self {
        let first = if len == 0 {
            std::ptr::NonNull::<u8>::dangling().as_ptr().cast_const()
        } else {
            // SAFETY: the caller checked `offset + len <= map.len()`, so `offset` is in
            // bounds of the mapping and the result stays inside the same allocation.
            unsafe { map.as_ptr().add(offset) }
        };
        View {
            owner,
            _mapping: map,
            first,
            offset,
            len,
            pin,
        }
    }

    /// The viewed bytes.
    #[inline]
    pub fn bytes(&self) -> &[u8] {
        // SAFETY:
        // - An empty view's pointer is dangling but non-null and aligned, which is all an
        //   empty slice needs.
        // - In bounds of the mapping: `DataFile::view` checked
        //   `offset + len <= DataFile::len() <= map.len()` under the pin
        //   table's mutex, so the pointer arithmetic and the slice stay inside
        //   the mapping, which `self._mapping` keeps alive (memmap2 unmaps only
        //   when the last `Arc` is dropped).
        // - Readable: the range lies below the length this process tracks for
        //   the file, which is never more than the file's length on disk
        //   (it is raised only after the write, extension or allocation that
        //   made it true, and while a truncation is in flight no view of the
        //   range it removes can be made), so no page of it lies past the end
        //   of the file.
        // - Not mutated while borrowed: the range is pinned for reading until
        //   `self` is dropped, and every change this crate makes to the file
        //   (`pwrite`, punch, truncation) first pins its own range and fails
        //   with `RangeBusy` if a read pin overlaps; nothing is written
        //   through any mapping. Changes by other processes or other handles
        //   are excluded by the advisory lock, which `self.owner` keeps held
        //   (it owns the locked file), only as far as they cooperate; the
        //   crate documentation states this limit.
        // - The borrow cannot outlive the view, hence neither the pin nor the
        //   `Arc`s.
        unsafe { std::slice::from_raw_parts(self.first, self.len) }
    }
}

impl View {
    /// Has the kernel enter the view's bytes from `from` on into this process's page
    /// tables now, so that the first read of each of their pages takes no page fault.
    ///
    /// Pages written with `pwrite` are in the page cache but in no page table of a
    /// mapping: each first touch through the map faults, and a fault maps at most the
    /// neighbouring pages already cached (fault-around). On Linux this is one
    /// `madvise(MADV_POPULATE_READ)` over the range (since 5.14), which reads pages not in
    /// the cache from the file, so call it for bytes that were written recently. Elsewhere,
    /// or when the kernel refuses, it does nothing: it only saves time, never changes what
    /// a read returns.
    pub fn prefault(&self, from: usize) {
        if from >= self.len {
            return;
        }
        // memmap2 offers the advice on Linux only.
        #[cfg(target_os = "linux")]
        {
            // Best effort: an older kernel answers EINVAL, and a failure only leaves the
            // pages to be faulted in by the reads.
            let _ = self._mapping.advise_range(
                memmap2::Advice::PopulateRead,
                self.offset + from,
                self.len - from,
            );
        }
    }

    /// An identity of the mapping the view points into: views with the same identity share
    /// page tables. (A mapping made after another was dropped may reuse its identity.)
    pub fn mapping_id(&self) -> usize {
        Arc::as_ptr(&self._mapping) as usize
    }
}

impl Deref for View {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        self.bytes()
    }
}

impl AsRef<[u8]> for View {
    #[inline]
    fn as_ref(&self) -> &[u8] {
        self.bytes()
    }
}

impl Drop for View {
    fn drop(&mut self) {
        self.owner.unpin(self.pin);
    }
}

impl fmt::Debug for View {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("View")
            .field("path", &self.owner.path())
            .field("offset", &self.offset)
            .field("len", &self.len)
            .finish()
    }
}
