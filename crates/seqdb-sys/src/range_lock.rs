//! A small shared file whose byte ranges are locked by open file description.
//!
//! Linux's open-file-description locks (`F_OFD_SETLK`) belong to the open file, not to
//! the process: two opens in one process conflict like two processes do, closing one
//! open releases only its own locks, and the kernel releases every lock of a process
//! that dies. That is what makes them fit for a table of live users: a lock is held
//! exactly as long as its holder lives.
//!
//! Other systems have no such locks here; [`RANGE_LOCKS`] is false there and
//! [`SharedFile::open`] fails with `Unsupported`.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Result, io_error};

/// Whether this platform has open-file-description range locks, and so
/// [`SharedFile`].
pub const RANGE_LOCKS: bool = cfg!(any(target_os = "linux", target_os = "android"));

/// A file opened for reading and writing, whose byte ranges this open may lock.
#[derive(Debug)]
pub struct SharedFile {
    file: File,
    path: PathBuf,
}

/// What [`SharedFile::try_lock`] takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeLock {
    /// Others may hold a shared lock on the range too, nobody an exclusive one.
    Shared,
    /// Nobody else may hold any lock on the range.
    Exclusive,
}

impl SharedFile {
    /// Open (creating it when `create`) the file at `path` for reading and writing.
    /// Fails with `Unsupported` where [`RANGE_LOCKS`] is false.
    pub fn open(path: &Path, create: bool) -> Result<Self> {
        if !RANGE_LOCKS {
            return Err(io_error(
                path,
                "open",
                0,
                io::Error::from(io::ErrorKind::Unsupported),
            ));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .mode(0o644)
            .open(path)
            .map_err(|e| io_error(path, "open", 0, e))?;
        Ok(SharedFile {
            file,
            path: path.to_owned(),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Read into `buf` from `offset`; bytes past the end of the file read as zeros.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        let mut done = 0;
        while done < buf.len() {
            let at = offset + done as u64;
            match self.file.read_at(&mut buf[done..], at) {
                Ok(0) => {
                    buf[done..].fill(0);
                    return Ok(());
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_error(&self.path, "read", at, e)),
            }
        }
        Ok(())
    }

    /// Write all of `data` at `offset`.
    pub fn write_all_at(&self, data: &[u8], offset: u64) -> Result<()> {
        self.file
            .write_all_at(data, offset)
            .map_err(|e| io_error(&self.path, "write", offset, e))
    }

    /// Lock `len` bytes at `offset` for this open, without waiting. `Ok(false)` when
    /// another open (in this process or another) holds a conflicting lock.
    pub fn try_lock(&self, offset: u64, len: u64, kind: RangeLock) -> Result<bool> {
        let lock_type = match kind {
            RangeLock::Shared => LockType::Read,
            RangeLock::Exclusive => LockType::Write,
        };
        match platform::set_lock(&self.file, offset, len, lock_type) {
            Ok(()) => Ok(true),
            Err(e) if is_conflict(&e) => Ok(false),
            Err(e) => Err(io_error(&self.path, "lock", offset, e)),
        }
    }

    /// Release this open's lock on `len` bytes at `offset` (closing the file releases
    /// every lock of this open too).
    pub fn unlock(&self, offset: u64, len: u64) -> Result<()> {
        platform::set_lock(&self.file, offset, len, LockType::Unlock)
            .map_err(|e| io_error(&self.path, "unlock", offset, e))
    }

    /// Whether another open holds any lock overlapping `len` bytes at `offset`.
    pub fn locked_by_another(&self, offset: u64, len: u64) -> Result<bool> {
        platform::get_lock(&self.file, offset, len)
            .map_err(|e| io_error(&self.path, "test lock", offset, e))
    }
}

fn is_conflict(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::PermissionDenied
    ) || error.raw_os_error() == Some(rustix::io::Errno::AGAIN.raw_os_error())
        || error.raw_os_error() == Some(rustix::io::Errno::ACCESS.raw_os_error())
}

#[derive(Debug, Clone, Copy)]
enum LockType {
    Read,
    Write,
    Unlock,
}

#[cfg(any(target_os = "linux", target_os = "android"))]
mod platform {
    use std::fs::File;
    use std::io;
    use std::os::fd::AsRawFd;

    use super::LockType;

    fn request(offset: u64, len: u64, lock_type: LockType) -> io::Result<libc::flock> {
        let too_far = || io::Error::from(io::ErrorKind::InvalidInput);
        // SAFETY: `flock` is a plain C struct of integers, for which all zeros is a valid
        // value; OFD locks require `l_pid` to be zero.
        let mut lock: libc::flock = unsafe { std::mem::zeroed() };
        lock.l_type = match lock_type {
            LockType::Read => libc::F_RDLCK,
            LockType::Write => libc::F_WRLCK,
            LockType::Unlock => libc::F_UNLCK,
        } as _;
        lock.l_whence = libc::SEEK_SET as _;
        lock.l_start = offset.try_into().map_err(|_| too_far())?;
        lock.l_len = len.try_into().map_err(|_| too_far())?;
        Ok(lock)
    }

    pub(super) fn set_lock(
        file: &File,
        offset: u64,
        len: u64,
        lock_type: LockType,
    ) -> io::Result<()> {
        let lock = request(offset, len, lock_type)?;
        loop {
            // SAFETY: the descriptor is open for the call (borrowed from `file`), and
            // `lock` is a valid `flock` that the call only reads.
            let result = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &lock) };
            if result == 0 {
                return Ok(());
            }
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::Interrupted {
                return Err(error);
            }
        }
    }

    pub(super) fn get_lock(file: &File, offset: u64, len: u64) -> io::Result<bool> {
        let mut lock = request(offset, len, LockType::Write)?;
        loop {
            // SAFETY: the descriptor is open for the call, and `lock` is a valid, writable
            // `flock` that the call fills in with the first conflicting lock, if any.
            let result = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_GETLK, &mut lock) };
            if result == 0 {
                return Ok(i32::from(lock.l_type) != libc::F_UNLCK);
            }
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::Interrupted {
                return Err(error);
            }
        }
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod platform {
    use std::fs::File;
    use std::io;

    use super::LockType;

    pub(super) fn set_lock(_: &File, _: u64, _: u64, _: LockType) -> io::Result<()> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }

    pub(super) fn get_lock(_: &File, _: u64, _: u64) -> io::Result<bool> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
}

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
mod tests {
    use super::*;

    #[test]
    fn two_opens_in_one_process_conflict_and_closing_releases() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared");
        let a = SharedFile::open(&path, true).unwrap();
        let b = SharedFile::open(&path, false).unwrap();
        assert!(a.try_lock(0, 1, RangeLock::Exclusive).unwrap());
        assert!(!b.try_lock(0, 1, RangeLock::Exclusive).unwrap());
        assert!(!b.try_lock(0, 1, RangeLock::Shared).unwrap());
        assert!(b.locked_by_another(0, 1).unwrap());
        assert!(
            !a.locked_by_another(0, 1).unwrap(),
            "its own lock does not conflict"
        );
        // Other bytes are free.
        assert!(b.try_lock(1, 1, RangeLock::Exclusive).unwrap());
        drop(a);
        assert!(!b.locked_by_another(0, 1).unwrap());
        assert!(b.try_lock(0, 1, RangeLock::Shared).unwrap());
        b.unlock(0, 2).unwrap();
        let c = SharedFile::open(&path, false).unwrap();
        assert!(c.try_lock(0, 2, RangeLock::Exclusive).unwrap());
    }

    #[test]
    fn reads_past_the_end_are_zeros() {
        let dir = tempfile::tempdir().unwrap();
        let file = SharedFile::open(&dir.path().join("shared"), true).unwrap();
        file.write_all_at(b"abc", 0).unwrap();
        let mut buf = [9u8; 6];
        file.read_at(&mut buf, 1).unwrap();
        assert_eq!(&buf, b"bc\0\0\0\0");
    }
}
