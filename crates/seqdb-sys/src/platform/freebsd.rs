//! FreeBSD: `fdatasync`, `posix_fallocate`, `fspacectl(SPACECTL_DEALLOC)`.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

use rustix::fs::{FallocateFlags, fallocate, fdatasync, fsync};
use rustix::io::Errno;

use super::PunchOutcome;
use super::zeros::{extend_with_zeros, write_zeros};

/// `fdatasync`.
pub(crate) fn sync_data(file: &File) -> io::Result<()> {
    Ok(fdatasync(file)?)
}

/// `fsync`.
pub(crate) fn sync_all(file: &File) -> io::Result<()> {
    Ok(fsync(file)?)
}

/// `fsync` on a directory handle.
pub(crate) fn sync_dir(dir: &File) -> io::Result<()> {
    Ok(fsync(dir)?)
}

/// `posix_fallocate` (extends the file if the range ends past it). ZFS does
/// not support it and answers `EINVAL`; there, zeros are written past the
/// current end instead.
pub(crate) fn allocate(file: &File, offset: u64, len: u64) -> io::Result<()> {
    match fallocate(file, FallocateFlags::empty(), offset, len) {
        Ok(()) => Ok(()),
        Err(errno) if errno == Errno::INVAL || errno == Errno::OPNOTSUPP => {
            extend_with_zeros(file, offset, len)
        }
        Err(errno) => Err(errno.into()),
    }
}

/// `fspacectl(SPACECTL_DEALLOC)`, called until the kernel reports the whole
/// range done (FreeBSD 14 and later). Where the file system cannot
/// deallocate, the rest of the range is zero-filled.
pub(crate) fn punch_hole(file: &File, offset: u64, len: u64) -> io::Result<PunchOutcome> {
    let to_off = |value: u64| {
        libc::off_t::try_from(value).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
    };
    let mut request = libc::spacectl_range {
        r_offset: to_off(offset)?,
        r_len: to_off(len)?,
    };
    while request.r_len > 0 {
        let mut rest = libc::spacectl_range {
            r_offset: 0,
            r_len: 0,
        };
        // SAFETY: `fspacectl` reads one `spacectl_range` through the first
        // pointer and writes one through the second; both point to live,
        // initialised locals for the whole call, and the descriptor is open
        // because `file` is borrowed.
        let rc = unsafe {
            libc::fspacectl(
                file.as_raw_fd(),
                libc::SPACECTL_DEALLOC,
                &request,
                0,
                &mut rest,
            )
        };
        if rc == -1 {
            let error = io::Error::last_os_error();
            match error.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::ENODEV) | Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS) => {
                    let start = u64::try_from(request.r_offset).unwrap_or(offset);
                    let left = u64::try_from(request.r_len).unwrap_or(0);
                    write_zeros(file, start, left)?;
                    return Ok(PunchOutcome::ZeroFilled);
                }
                _ => return Err(error),
            }
        }
        if rest.r_len >= request.r_len {
            return Err(io::Error::other("fspacectl made no progress"));
        }
        request = rest;
    }
    Ok(PunchOutcome::Punched)
}

/// Preallocation that keeps the file's length is not offered here: does nothing and
/// returns `false`.
pub(crate) fn preallocate(_file: &File, _offset: u64, _len: u64) -> io::Result<bool> {
    Ok(false)
}
