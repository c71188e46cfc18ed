//! Linux: `fdatasync`, `fallocate` (mode 0 and `PUNCH_HOLE | KEEP_SIZE`).

use std::fs::File;
use std::io;

use rustix::fs::{FallocateFlags, fallocate, fdatasync, fsync};
use rustix::io::Errno;

use super::PunchOutcome;
use super::zeros::{extend_with_zeros, write_zeros};

/// Whether `fallocate` failed because the file system lacks the mode.
fn unsupported(errno: Errno) -> bool {
    errno == Errno::OPNOTSUPP || errno == Errno::NOSYS
}

/// `fdatasync`.
pub(crate) fn sync_data(file: &File) -> io::Result<()> {
    Ok(fdatasync(file)?)
}

/// `sync_file_range` over `len` bytes at `offset`: starts writing the range's dirty
/// pages to the device and, with `wait`, also waits for pages already being written
/// before and for all of them after. Makes nothing durable (no metadata, no flush of
/// the device's cache): that is `sync_data`'s part.
#[cfg(target_os = "linux")]
pub(crate) fn write_back(file: &File, offset: u64, len: u64, wait: bool) -> io::Result<()> {
    use std::os::fd::AsRawFd;

    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        // Past any file this system can hold: nothing to write.
        return Ok(());
    };
    let flags = if wait {
        libc::SYNC_FILE_RANGE_WAIT_BEFORE
            | libc::SYNC_FILE_RANGE_WRITE
            | libc::SYNC_FILE_RANGE_WAIT_AFTER
    } else {
        libc::SYNC_FILE_RANGE_WRITE
    };
    // SAFETY: `file` is borrowed for the whole call, so its descriptor stays open and
    // names this file; the call takes plain integers and touches no memory of ours.
    let rc = unsafe { libc::sync_file_range(file.as_raw_fd(), offset, len, flags) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `fsync`.
pub(crate) fn sync_all(file: &File) -> io::Result<()> {
    Ok(fsync(file)?)
}

/// `fsync` on a directory handle.
pub(crate) fn sync_dir(dir: &File) -> io::Result<()> {
    Ok(fsync(dir)?)
}

/// `fallocate` mode 0: allocates the blocks of the range and extends the file
/// if the range ends past it. Where the file system has no `fallocate`, zeros
/// are written past the current end instead (holes inside stay holes).
pub(crate) fn allocate(file: &File, offset: u64, len: u64) -> io::Result<()> {
    match fallocate(file, FallocateFlags::empty(), offset, len) {
        Ok(()) => Ok(()),
        Err(errno) if unsupported(errno) => extend_with_zeros(file, offset, len),
        Err(errno) => Err(errno.into()),
    }
}

/// `fallocate(KEEP_SIZE)`: allocates the blocks of the range without changing the
/// file's length. Returns `false`, having done nothing, where the file system has no
/// `fallocate`.
pub(crate) fn preallocate(file: &File, offset: u64, len: u64) -> io::Result<bool> {
    match fallocate(file, FallocateFlags::KEEP_SIZE, offset, len) {
        Ok(()) => Ok(true),
        Err(errno) if unsupported(errno) => Ok(false),
        Err(errno) => Err(errno.into()),
    }
}

/// `fallocate(PUNCH_HOLE | KEEP_SIZE)`; zero-fills where the file system
/// cannot punch.
pub(crate) fn punch_hole(file: &File, offset: u64, len: u64) -> io::Result<PunchOutcome> {
    let mode = FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE;
    match fallocate(file, mode, offset, len) {
        Ok(()) => Ok(PunchOutcome::Punched),
        Err(errno) if unsupported(errno) => {
            write_zeros(file, offset, len)?;
            Ok(PunchOutcome::ZeroFilled)
        }
        Err(errno) => Err(errno.into()),
    }
}
