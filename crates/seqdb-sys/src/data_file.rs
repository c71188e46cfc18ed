//! [`DataFile`]: the locked data file, its mapping and its pin table.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use memmap2::MmapRaw;
use parking_lot::Mutex;

use crate::error::{Error, Result, io_error, range_end};
use crate::file::LockedFile;
use crate::mapping::{self, DEFAULT_MIN_MAP_LEN};
use crate::options::Lock;
use crate::pins::{PinId, PinKind, Pins};
use crate::platform::PunchOutcome;
use crate::view::View;

/// The data file: a [`LockedFile`], a read-only shared mapping that never has
/// to be torn down while views are alive, and a table of pinned ranges that
/// makes the safe API sound.
///
/// Reads are zero-copy [`View`]s into the mapping; every modification goes
/// through the file descriptor (`pwrite`, `ftruncate`, `fallocate`), whose
/// effects the shared mapping shows at once because both use the same page
/// cache (Linux, macOS, FreeBSD). A modification that would change bytes a
/// live view is reading is refused with [`Error::RangeBusy`], and a view of a
/// range being modified is refused the same way, so no `&[u8]` handed out by
/// this type ever observes a change. See the crate documentation for the full
/// argument.
///
/// `DataFile` is `Send + Sync`; all methods take `&self`. Views own a share of
/// it: the file, its lock and the pin table live until the last view is gone.
pub struct DataFile {
    shared: Arc<Shared>,
}

/// What a data file shares with its views.
pub(crate) struct Shared {
    file: LockedFile,
    state: Mutex<State>,
    /// Serialises the creation of larger mappings.
    grow: Mutex<()>,
    min_map_len: u64,
}

/// What the pin table mutex guards.
struct State {
    /// The length views are bounded by. Never more than the file's length
    /// on disk as far as this process's modifications go.
    len: u64,
    /// The newest mapping; always at least `len` bytes long. Older mappings
    /// live on in the views that hold them.
    map: Arc<MmapRaw>,
    pins: Pins,
}

impl DataFile {
    /// Takes ownership of `file` and maps it.
    ///
    /// From now on the file's contents and length change only through this
    /// `DataFile`: the modifying methods of [`DataFile::file`] return
    /// [`Error::Managed`].
    ///
    /// The file must hold a lock, shared or exclusive: views into the mapping
    /// are sound only while no other handle that honours the lock can write
    /// or truncate the file (see the crate documentation).
    ///
    /// # Errors
    ///
    /// [`Error::Unlocked`], naming the path, if `file` was opened with
    /// [`Lock::Unlocked`]; [`Error::Io`] if the length cannot be read or the
    /// mapping cannot be made.
    pub fn new(file: LockedFile) -> Result<Self> {
        Self::with_min_map_len(file, DEFAULT_MIN_MAP_LEN)
    }

    /// Like [`DataFile::new`], reserving at least `min_map_len` bytes of
    /// address space per mapping instead of the default 1 GiB. Small values
    /// force new mappings as the file grows, which tests use.
    #[doc(hidden)]
    pub fn with_min_map_len(mut file: LockedFile, min_map_len: u64) -> Result<Self> {
        if file.lock() == Lock::Unlocked {
            return Err(Error::Unlocked {
                path: file.path().to_path_buf(),
            });
        }
        file.set_managed();
        let len = file.len()?;
        let map = mapping::map(file.as_file(), len, min_map_len)
            .map_err(|e| io_error(file.path(), "mmap", 0, e))?;
        Ok(DataFile {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    len,
                    map: Arc::new(map),
                    pins: Pins::default(),
                }),
                grow: Mutex::new(()),
                min_map_len,
                file,
            }),
        })
    }

    /// The underlying file, for reading, syncing and metadata. Its modifying
    /// methods return [`Error::Managed`]: use this type's methods instead.
    pub fn file(&self) -> &LockedFile {
        &self.shared.file
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        self.shared.file.path()
    }

    /// Length as tracked by this handle (writes past the end, `set_len` and
    /// `allocate` update it). Views are bounded by it.
    pub fn len(&self) -> u64 {
        self.shared.state.lock().len
    }

    /// Whether [`len`](Self::len) is zero.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of live pins: views plus modifications in flight.
    pub fn pinned_ranges(&self) -> usize {
        self.shared.state.lock().pins.len()
    }

    /// Length of the newest mapping (address space reserved, not memory used).
    #[doc(hidden)]
    pub fn mapping_len(&self) -> u64 {
        self.shared.state.lock().map.len() as u64
    }

    /// A zero-copy view of `[offset, offset + len)`.
    ///
    /// While the view lives the range is pinned: any
    /// [`write_all_at`](Self::write_all_at), [`copy_within`](Self::copy_within)
    /// destination, [`punch_hole`](Self::punch_hole) or
    /// [`set_len`](Self::set_len) that would change those bytes returns
    /// [`Error::RangeBusy`] instead. Several views may pin the same bytes. A
    /// zero-length view is fine, even on an empty file. Making a view costs a
    /// mutex, a step-map update and two `Arc` clones. The view owns a share of
    /// this data file (see [`View`]), so it may outlive the `DataFile` value.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfBounds`] past [`len`](Self::len); [`Error::RangeBusy`]
    /// if a modification of an overlapping range is in flight.
    pub fn view(&self, offset: u64, len: u64) -> Result<View> {
        let end = range_end(self.path(), offset, len)?;
        let mut state = self.shared.state.lock();
        if end > state.len {
            return Err(Error::OutOfBounds {
                path: self.path().to_path_buf(),
                offset,
                len,
                file_len: state.len,
            });
        }
        let pin = state
            .pins
            .try_pin(offset, end, PinKind::Read)
            .ok_or_else(|| self.busy(offset, end))?;
        let map = Arc::clone(&state.map);
        drop(state);
        // `end <= state.len <= map.len()`, a `usize`: both casts are lossless.
        Ok(View::new(
            Arc::clone(&self.shared),
            map,
            offset as usize,
            len as usize,
            pin,
        ))
    }

    /// Writes all of `data` at `offset` with `pwrite`, extending the file
    /// (and [`len`](Self::len)) when writing past the end. Gaps left before
    /// `offset` read as zeros.
    ///
    /// While the write is in flight its range is pinned, so a concurrent
    /// [`view`](Self::view) of an overlapping range gets
    /// [`Error::RangeBusy`]; the pin table's mutex is not held across the
    /// system call.
    ///
    /// # Errors
    ///
    /// [`Error::RangeBusy`] if a live view overlaps the range; [`Error::Io`]
    /// from `pwrite` (on a full disk, [`Error::is_no_space`] is true; the
    /// process never receives `SIGBUS`, because nothing is written through
    /// the mapping).
    pub fn write_all_at(&self, data: &[u8], offset: u64) -> Result<()> {
        let end = range_end(self.path(), offset, data.len() as u64)?;
        if data.is_empty() {
            return Ok(());
        }
        self.ensure_mapped(end)?;
        let pin = self.pin(offset, end, PinKind::Write)?;
        let result = self.shared.file.write_all_at_unchecked(data, offset);
        self.finish(pin, result.is_ok().then_some(end));
        result
    }

    /// Copies `len` bytes from `from` to `to` within the file, in the kernel
    /// where it can (`copy_file_range`, as [`LockedFile::copy_from`]: no page
    /// fault per source page, as writing the mapped bytes back takes, and shared
    /// blocks on file systems that can), with positional reads and writes
    /// otherwise.
    /// The source stays pinned by a view meanwhile. The destination may reach
    /// past the end (the file grows).
    ///
    /// # Errors
    ///
    /// [`Error::OutOfBounds`] if the source is not inside [`len`](Self::len);
    /// [`Error::OverlappingCopy`] if the ranges overlap; [`Error::RangeBusy`]
    /// if a view pins the destination or a write is in flight over the
    /// source; [`Error::Io`] from the copy.
    pub fn copy_within(&self, from: u64, to: u64, len: u64) -> Result<()> {
        let from_end = range_end(self.path(), from, len)?;
        let to_end = range_end(self.path(), to, len)?;
        if len > 0 && from < to_end && to < from_end {
            return Err(Error::OverlappingCopy {
                path: self.path().to_path_buf(),
                from,
                to,
                len,
            });
        }
        let source = self.view(from, len)?;
        if len == 0 {
            return Ok(());
        }
        self.ensure_mapped(to_end)?;
        let pin = self.pin(to, to_end, PinKind::Write)?;
        let file = &self.shared.file;
        let result = file.copy_from_unchecked(file, from, to, len);
        self.finish(pin, result.is_ok().then_some(to_end));
        drop(source);
        result
    }

    /// Grows (with zeros) or shrinks the file to `len` bytes.
    ///
    /// # Errors
    ///
    /// [`Error::RangeBusy`] if a live view reaches past `len` or a
    /// modification past `min(len, self.len())` is in flight.
    pub fn set_len(&self, len: u64) -> Result<()> {
        self.ensure_mapped(len)?;
        let start = len.min(self.len());
        let pin = self.pin(start, u64::MAX, PinKind::Exclusive)?;
        let result = self.shared.file.set_len_unchecked(len);
        let mut state = self.shared.state.lock();
        state.pins.unpin(pin);
        if result.is_ok() {
            state.len = len;
        }
        result
    }

    /// Gives the storage of `[offset, offset + len)` back to the file system
    /// (see [`LockedFile::punch_hole`]); the range reads as zeros afterwards
    /// and the length does not change.
    ///
    /// # Errors
    ///
    /// [`Error::RangeBusy`] if a live view overlaps the range.
    pub fn punch_hole(&self, offset: u64, len: u64) -> Result<PunchOutcome> {
        let end = offset.saturating_add(len);
        let pin = self.pin(offset, end, PinKind::Write)?;
        let result = self.shared.file.punch_hole_unchecked(offset, len);
        self.finish(pin, None);
        result
    }

    /// Reserves storage for `[offset, offset + len)` and extends the file to
    /// `offset + len` if it is shorter (see [`LockedFile::allocate`]). Never
    /// changes bytes views can see.
    ///
    /// # Errors
    ///
    /// [`Error::RangeBusy`] if the file must grow while another change of
    /// its end is in flight; [`Error::Io`] (for example out of space).
    pub fn allocate(&self, offset: u64, len: u64) -> Result<()> {
        let end = range_end(self.path(), offset, len)?;
        if len == 0 {
            return Ok(());
        }
        self.ensure_mapped(end)?;
        let current = self.len();
        if end <= current {
            return self.shared.file.allocate_unchecked(offset, len);
        }
        // The file grows: nothing else may move its end meanwhile.
        let pin = self.pin(current, u64::MAX, PinKind::Exclusive)?;
        let result = self.shared.file.allocate_unchecked(offset, len);
        self.finish(pin, result.is_ok().then_some(end));
        result
    }

    /// Allocates storage for `[offset, offset + len)` ahead of writing it, without
    /// changing the file's length, where the platform can (Linux `fallocate` with
    /// `KEEP_SIZE`); returns whether it did. Writing into allocated blocks is cheaper
    /// than having the file system allocate them page by page; nothing is ever written
    /// here, so where preallocation is not offered this does nothing.
    ///
    /// # Errors
    ///
    /// [`Error::RangeBusy`] if a live view or a write overlaps the range;
    /// [`Error::Io`] (for example out of space).
    pub fn preallocate(&self, offset: u64, len: u64) -> Result<bool> {
        let end = range_end(self.path(), offset, len)?;
        let pin = self.pin(offset, end, PinKind::Write)?;
        let result = self.shared.file.preallocate_unchecked(offset, len);
        self.finish(pin, None);
        result
    }

    /// Makes the file's data durable (see [`LockedFile::sync_data`]).
    pub fn sync_data(&self) -> Result<()> {
        self.shared.file.sync_data()
    }

    /// Makes the file's data and metadata durable (see
    /// [`LockedFile::sync_all`]).
    pub fn sync_all(&self) -> Result<()> {
        self.shared.file.sync_all()
    }

    /// Bytes of storage the file occupies (see
    /// [`LockedFile::allocated_bytes`]).
    pub fn allocated_bytes(&self) -> Result<u64> {
        self.shared.file.allocated_bytes()
    }

    fn busy(&self, start: u64, end: u64) -> Error {
        Error::RangeBusy {
            path: self.path().to_path_buf(),
            offset: start,
            len: end - start,
        }
    }

    /// Pins `[start, end)` for a modification.
    fn pin(&self, start: u64, end: u64, kind: PinKind) -> Result<PinId> {
        self.shared
            .state
            .lock()
            .pins
            .try_pin(start, end, kind)
            .ok_or_else(|| self.busy(start, end))
    }

    /// Ends a modification: unpins it and, in the same critical section,
    /// raises the tracked length to `grown_to`, so that no length change can
    /// slip in between.
    fn finish(&self, pin: PinId, grown_to: Option<u64>) {
        let mut state = self.shared.state.lock();
        state.pins.unpin(pin);
        if let Some(end) = grown_to {
            state.len = state.len.max(end);
        }
    }

    /// Makes sure the newest mapping covers `[0, end)`, mapping a larger
    /// range if needed. Older mappings stay alive as long as views use them.
    fn ensure_mapped(&self, end: u64) -> Result<()> {
        if self.mapping_len() >= end {
            return Ok(());
        }
        let _growing = self.shared.grow.lock();
        if self.mapping_len() >= end {
            return Ok(());
        }
        let map = mapping::map(self.shared.file.as_file(), end, self.shared.min_map_len)
            .map_err(|e| io_error(self.path(), "mmap", end, e))?;
        let mut state = self.shared.state.lock();
        if map.len() > state.map.len() {
            state.map = Arc::new(map);
        }
        Ok(())
    }
}

impl Shared {
    /// The file's path.
    pub(crate) fn path(&self) -> &Path {
        self.file.path()
    }

    /// Removes a view's pin.
    pub(crate) fn unpin(&self, pin: PinId) {
        self.state.lock().pins.unpin(pin);
    }
}

impl fmt::Debug for DataFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.state.lock();
        f.debug_struct("DataFile")
            .field("path", &self.shared.file.path())
            .field("len", &state.len)
            .field("mapping_len", &state.map.len())
            .field("pins", &state.pins.len())
            .finish()
    }
}
