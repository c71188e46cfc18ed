//! [`LockedFile`]: an open file holding an advisory lock for its whole life.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock, fstat, ftruncate};
use rustix::io::Errno;

use crate::error::{Error, Result, io_error, range_end};
use crate::hooks::{FaultOp, Hooks};
use crate::options::{FileOptions, Lock};
use crate::platform::{self, PunchOutcome};
use crate::sync::SyncKind;

/// An open file holding an advisory lock (`flock`, non-blocking) for its whole
/// life.
///
/// A second opener, whether another handle in this process or another
/// process, gets [`Error::Locked`] naming the path at once, never a hang.
/// [`Lock::Shared`] suits read-only opens: several shared holders may coexist,
/// and shared and exclusive holders conflict. [`Lock::Unlocked`] takes no lock
/// (for reading a file beside its holder); such a handle cannot become a
/// [`DataFile`](crate::DataFile).
/// The lock is released when the handle (and any mapping made from it) is
/// dropped.
///
/// All reads and writes are positional (`pread`/`pwrite`); the handle has no
/// cursor, so it can be shared between threads.
pub struct LockedFile {
    file: File,
    path: PathBuf,
    lock: Lock,
    hooks: Hooks,
    /// Set when a [`DataFile`](crate::DataFile) owns this file: modifications
    /// must then go through the `DataFile`, which checks them against views.
    managed: bool,
}

impl LockedFile {
    /// Opens `path` as `options` say and takes the requested lock.
    ///
    /// # Errors
    ///
    /// [`Error::Locked`] if a conflicting lock is held; [`Error::Io`] if the
    /// file cannot be opened (missing without `create`, a directory, no
    /// permission, `create` or `truncate` without `write`).
    pub fn open(path: &Path, options: &FileOptions) -> Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(options.write)
            .create(options.create)
            .open(path)
            .map_err(|e| io_error(path, "open", 0, e))?;
        let operation = match options.lock {
            Lock::Exclusive => Some(FlockOperation::NonBlockingLockExclusive),
            Lock::Shared => Some(FlockOperation::NonBlockingLockShared),
            Lock::Unlocked => None,
        };
        if let Some(operation) = operation {
            flock(&file, operation).map_err(|errno| {
                if errno == Errno::WOULDBLOCK {
                    Error::Locked {
                        path: path.to_path_buf(),
                    }
                } else {
                    io_error(path, "flock", 0, errno.into())
                }
            })?;
        }
        if options.truncate {
            if !options.write {
                return Err(io_error(
                    path,
                    "truncate",
                    0,
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "truncation needs a file opened for writing",
                    ),
                ));
            }
            ftruncate(&file, 0).map_err(|e| io_error(path, "ftruncate", 0, e.into()))?;
        }
        Ok(LockedFile {
            file,
            path: path.to_path_buf(),
            lock: options.lock,
            hooks: options.hooks.clone(),
            managed: false,
        })
    }

    /// The path the file was opened with.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The lock this handle holds.
    pub fn lock(&self) -> Lock {
        self.lock
    }

    /// The file's current length on disk (`fstat`).
    pub fn len(&self) -> Result<u64> {
        let stat = fstat(&self.file).map_err(|e| io_error(&self.path, "fstat", 0, e.into()))?;
        Ok(u64::try_from(stat.st_size).unwrap_or(0))
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Bytes of storage the file occupies (`st_blocks * 512`, from `fstat`):
    /// lower than the length when the file has holes.
    pub fn allocated_bytes(&self) -> Result<u64> {
        let stat = fstat(&self.file).map_err(|e| io_error(&self.path, "fstat", 0, e.into()))?;
        Ok(u64::try_from(stat.st_blocks)
            .unwrap_or(0)
            .saturating_mul(512))
    }

    /// Sets the file's length: shrinking drops bytes, growing adds zeros
    /// (a hole).
    ///
    /// # Errors
    ///
    /// [`Error::Managed`] if the file belongs to a [`DataFile`](crate::DataFile)
    /// (use [`DataFile::set_len`](crate::DataFile::set_len)).
    pub fn set_len(&self, len: u64) -> Result<()> {
        self.check_unmanaged("ftruncate", len)?;
        self.set_len_unchecked(len)
    }

    /// Reads exactly `buf.len()` bytes at `offset`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] with kind `UnexpectedEof` if the file ends first.
    pub fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        range_end(&self.path, offset, buf.len() as u64)?;
        let mut done = 0;
        while done < buf.len() {
            let at = offset + done as u64;
            match self.file.read_at(&mut buf[done..], at) {
                Ok(0) => {
                    return Err(io_error(
                        &self.path,
                        "read",
                        at,
                        io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the file ends before the requested range",
                        ),
                    ));
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_error(&self.path, "read", at, e)),
            }
        }
        Ok(())
    }

    /// Reads the whole file, as long as [`len`](Self::len) says it is.
    pub fn read_to_vec(&self) -> Result<Vec<u8>> {
        let len = self.len()?;
        let size = usize::try_from(len).map_err(|_| Error::RangeOverflow {
            path: self.path.clone(),
            offset: 0,
            len,
        })?;
        let mut bytes = vec![0; size];
        self.read_exact_at(&mut bytes, 0)?;
        Ok(bytes)
    }

    /// Writes all of `data` at `offset` (a `pwrite` loop), extending the file
    /// if needed. A full disk is an [`Error::Io`] for which
    /// [`Error::is_no_space`] is true, never a signal.
    ///
    /// # Errors
    ///
    /// [`Error::Managed`] if the file belongs to a [`DataFile`](crate::DataFile)
    /// (use [`DataFile::write_all_at`](crate::DataFile::write_all_at)).
    pub fn write_all_at(&self, data: &[u8], offset: u64) -> Result<()> {
        self.check_unmanaged("write", offset)?;
        self.write_all_at_unchecked(data, offset)
    }

    /// Makes the file's data durable (`fdatasync`; `F_FULLFSYNC` on Apple
    /// systems), then tells the observer ([`SyncKind::Data`]). The fault
    /// injector is asked first ([`FaultOp::SyncData`]).
    ///
    /// A failure is final: the kernel may have dropped the pages it could not
    /// write and marked them clean, so a later sync can succeed although the
    /// bytes never reached the device.
    pub fn sync_data(&self) -> Result<()> {
        let op = FaultOp::SyncData;
        self.hooks
            .check(&self.path, op, 0)
            .and_then(|()| platform::sync_data(&self.file))
            .map_err(|e| io_error(&self.path, op.name(), 0, e))?;
        self.hooks.notify(&self.path, SyncKind::Data);
        Ok(())
    }

    /// Starts writing the dirty pages of `len` bytes at `offset` to the device, without
    /// waiting (`sync_file_range` on Linux; nothing elsewhere). Makes nothing durable:
    /// a long copy calls it behind itself so that the device writes while the copy goes
    /// on, and its final [`sync_data`](Self::sync_data) finds little left to do.
    pub fn start_write_back(&self, offset: u64, len: u64) -> Result<()> {
        platform::write_back(&self.file, offset, len, false)
            .map_err(|e| io_error(&self.path, "sync_file_range", offset, e))
    }

    /// Waits until the dirty pages of `len` bytes at `offset` are written to the device,
    /// writing those not under way yet (`sync_file_range` on Linux; nothing elsewhere).
    /// Bounds the dirty pages a long copy leaves behind it; makes nothing durable. The
    /// fault injector is asked first ([`FaultOp::SyncData`]). A failure is final, as
    /// for [`sync_data`](Self::sync_data): the pages it could not write may be dropped,
    /// and a later sync may not report it again.
    pub fn wait_write_back(&self, offset: u64, len: u64) -> Result<()> {
        self.hooks
            .check(&self.path, FaultOp::SyncData, offset)
            .and_then(|()| platform::write_back(&self.file, offset, len, true))
            .map_err(|e| io_error(&self.path, "sync_file_range", offset, e))
    }

    /// Makes the file's data and metadata durable (`fsync`; `F_FULLFSYNC` on
    /// Apple systems), then tells the observer ([`SyncKind::All`]). The fault
    /// injector is asked first ([`FaultOp::SyncAll`]). A failure is final, as
    /// for [`sync_data`](Self::sync_data).
    pub fn sync_all(&self) -> Result<()> {
        let op = FaultOp::SyncAll;
        self.hooks
            .check(&self.path, op, 0)
            .and_then(|()| platform::sync_all(&self.file))
            .map_err(|e| io_error(&self.path, op.name(), 0, e))?;
        self.hooks.notify(&self.path, SyncKind::All);
        Ok(())
    }

    /// Reserves storage for `[offset, offset + len)` so that later writes
    /// there do not fail for lack of space, and extends the file to
    /// `offset + len` if it is shorter. Never shrinks the file and never
    /// changes bytes already in it.
    ///
    /// Linux: `fallocate` mode 0 (writing zeros past the end where the file
    /// system has no `fallocate`). macOS: `F_PREALLOCATE` past the end, then
    /// `ftruncate` (holes inside the file stay holes). FreeBSD:
    /// `posix_fallocate` (zeros past the end on ZFS). Elsewhere: zeros past
    /// the end.
    ///
    /// # Errors
    ///
    /// [`Error::Managed`] if the file belongs to a [`DataFile`](crate::DataFile)
    /// (use [`DataFile::allocate`](crate::DataFile::allocate)).
    pub fn allocate(&self, offset: u64, len: u64) -> Result<()> {
        self.check_unmanaged("fallocate", offset)?;
        self.allocate_unchecked(offset, len)
    }

    /// Gives the storage of `[offset, offset + len)` back to the file system;
    /// the range reads as zeros afterwards. The range is clamped to the file's
    /// length and the length never changes. An empty (clamped) range does
    /// nothing and reports [`PunchOutcome::Punched`].
    ///
    /// Linux: `fallocate(PUNCH_HOLE | KEEP_SIZE)`. macOS: `F_PUNCHHOLE` on the
    /// whole blocks of the range, zeros on the partial blocks at its ends.
    /// FreeBSD: `fspacectl(SPACECTL_DEALLOC)`. Where the platform or file
    /// system cannot punch, the range is overwritten with zeros and the result
    /// is [`PunchOutcome::ZeroFilled`].
    ///
    /// # Errors
    ///
    /// [`Error::Managed`] if the file belongs to a [`DataFile`](crate::DataFile)
    /// (use [`DataFile::punch_hole`](crate::DataFile::punch_hole)).
    pub fn punch_hole(&self, offset: u64, len: u64) -> Result<PunchOutcome> {
        self.check_unmanaged("punch hole", offset)?;
        self.punch_hole_unchecked(offset, len)
    }

    /// The underlying file, for mapping it.
    pub(crate) fn as_file(&self) -> &File {
        &self.file
    }

    /// Marks the file as owned by a `DataFile`.
    pub(crate) fn set_managed(&mut self) {
        self.managed = true;
    }

    /// The hooks asked around this file's writes and syncs.
    pub(crate) fn hooks(&self) -> &Hooks {
        &self.hooks
    }

    pub(crate) fn check_unmanaged(&self, op: &'static str, offset: u64) -> Result<()> {
        if self.managed {
            return Err(Error::Managed {
                path: self.path.clone(),
                op,
                offset,
            });
        }
        Ok(())
    }

    pub(crate) fn set_len_unchecked(&self, len: u64) -> Result<()> {
        let op = FaultOp::SetLen;
        self.hooks
            .check(&self.path, op, len)
            .and_then(|()| Ok(ftruncate(&self.file, len)?))
            .map_err(|e| io_error(&self.path, op.name(), len, e))
    }

    pub(crate) fn write_all_at_unchecked(&self, data: &[u8], offset: u64) -> Result<()> {
        range_end(&self.path, offset, data.len() as u64)?;
        self.hooks
            .check(&self.path, FaultOp::Write, offset)
            .map_err(|e| io_error(&self.path, FaultOp::Write.name(), offset, e))?;
        let mut done = 0;
        while done < data.len() {
            let at = offset + done as u64;
            match self.file.write_at(&data[done..], at) {
                Ok(0) => {
                    return Err(io_error(
                        &self.path,
                        "write",
                        at,
                        io::Error::from(io::ErrorKind::WriteZero),
                    ));
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_error(&self.path, "write", at, e)),
            }
        }
        Ok(())
    }

    pub(crate) fn allocate_unchecked(&self, offset: u64, len: u64) -> Result<()> {
        range_end(&self.path, offset, len)?;
        if len == 0 {
            return Ok(());
        }
        platform::allocate(&self.file, offset, len)
            .map_err(|e| io_error(&self.path, "fallocate", offset, e))
    }

    pub(crate) fn preallocate_unchecked(&self, offset: u64, len: u64) -> Result<bool> {
        range_end(&self.path, offset, len)?;
        if len == 0 {
            return Ok(true);
        }
        platform::preallocate(&self.file, offset, len)
            .map_err(|e| io_error(&self.path, "fallocate", offset, e))
    }

    pub(crate) fn punch_hole_unchecked(&self, offset: u64, len: u64) -> Result<PunchOutcome> {
        let end = offset.saturating_add(len).min(self.len()?);
        if offset >= end {
            return Ok(PunchOutcome::Punched);
        }
        platform::punch_hole(&self.file, offset, end - offset)
            .map_err(|e| io_error(&self.path, "punch hole", offset, e))
    }
}

impl fmt::Debug for LockedFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockedFile")
            .field("path", &self.path)
            .field("lock", &self.lock)
            .field("hooks", &self.hooks)
            .field("managed", &self.managed)
            .finish()
    }
}
