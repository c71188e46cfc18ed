//! macOS and iOS: `F_FULLFSYNC`, `F_PREALLOCATE`, `F_PUNCHHOLE`.
//!
//! `fsync` on Apple systems only hands data to the drive, which may keep it
//! in a volatile cache; `F_FULLFSYNC` asks the drive to flush it, which is
//! what durability needs. There is no `fdatasync`.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

use rustix::fs::{fcntl_fullfsync, fstat, fsync, ftruncate};
use rustix::io::Errno;

use super::PunchOutcome;
use super::zeros::{extend_with_zeros, write_zeros};

/// Whether a call failed because the file system does not offer it.
fn unsupported(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(code) if code == libc::ENOTSUP || code == libc::EINVAL || code == libc::ENOSYS
    )
}

/// `F_FULLFSYNC`, or `fsync` on file systems that do not support it.
fn full_sync(file: &File) -> io::Result<()> {
    match fcntl_fullfsync(file) {
        Ok(()) => Ok(()),
        Err(errno) if errno == Errno::NOTSUP || errno == Errno::INVAL => Ok(fsync(file)?),
        Err(errno) => Err(errno.into()),
    }
}

/// `F_FULLFSYNC` (Apple has no `fdatasync`).
pub(crate) fn sync_data(file: &File) -> io::Result<()> {
    full_sync(file)
}

/// `F_FULLFSYNC`.
pub(crate) fn sync_all(file: &File) -> io::Result<()> {
    full_sync(file)
}

/// `F_FULLFSYNC` on a directory handle.
pub(crate) fn sync_dir(dir: &File) -> io::Result<()> {
    full_sync(dir)
}

/// `F_PREALLOCATE` for the part of the range past the current end, then
/// `ftruncate` up to `offset + len`. Apple systems cannot allocate holes
/// inside a file without writing them, so ranges inside the file are left
/// as they are.
pub(crate) fn allocate(file: &File, offset: u64, len: u64) -> io::Result<()> {
    let end = offset
        .checked_add(len)
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    let size = u64::try_from(fstat(file)?.st_size).unwrap_or(0);
    if end <= size {
        return Ok(());
    }
    let extra = libc::off_t::try_from(end - size)
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut store = libc::fstore_t {
        fst_flags: libc::F_ALLOCATECONTIG | libc::F_ALLOCATEALL,
        fst_posmode: libc::F_PEOFPOSMODE,
        fst_offset: 0,
        fst_length: extra,
        fst_bytesalloc: 0,
    };
    let mut result = preallocate(file, &mut store);
    if result.is_err() {
        // Contiguous space may not exist; any space will do.
        store.fst_flags = libc::F_ALLOCATEALL;
        result = preallocate(file, &mut store);
    }
    match result {
        Ok(()) => Ok(ftruncate(file, end)?),
        Err(error) if unsupported(&error) => extend_with_zeros(file, offset, len),
        Err(error) => Err(error),
    }
}

/// One `fcntl(F_PREALLOCATE)` call.
fn preallocate(file: &File, store: &mut libc::fstore_t) -> io::Result<()> {
    // SAFETY: `F_PREALLOCATE` reads and updates one `fstore_t` through the
    // pointer, which points to a live, initialised, exclusively borrowed value
    // for the whole call; the descriptor is open because `file` is borrowed.
    let rc = unsafe {
        libc::fcntl(
            file.as_raw_fd(),
            libc::F_PREALLOCATE,
            store as *mut libc::fstore_t,
        )
    };
    if rc == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `F_PUNCHHOLE` over the blocks wholly inside the range (the call wants
/// block-aligned ranges); the unaligned head and tail are overwritten with
/// zeros. Where the file system cannot punch (HFS+), the whole range is
/// zero-filled.
pub(crate) fn punch_hole(file: &File, offset: u64, len: u64) -> io::Result<PunchOutcome> {
    let end = offset
        .checked_add(len)
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    let block = u64::try_from(fstat(file)?.st_blksize)
        .unwrap_or(4096)
        .max(1);
    let start = offset.div_ceil(block).saturating_mul(block);
    let aligned_end = end / block * block;
    if aligned_end <= start {
        write_zeros(file, offset, len)?;
        return Ok(PunchOutcome::ZeroFilled);
    }
    let to_off = |value: u64| {
        libc::off_t::try_from(value).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
    };
    let args = libc::fpunchhole_t {
        fp_flags: 0,
        reserved: 0,
        fp_offset: to_off(start)?,
        fp_length: to_off(aligned_end - start)?,
    };
    // SAFETY: `F_PUNCHHOLE` reads one `fpunchhole_t` through the pointer,
    // which points to a live, initialised local for the whole call; the
    // descriptor is open because `file` is borrowed.
    let rc = unsafe {
        libc::fcntl(
            file.as_raw_fd(),
            libc::F_PUNCHHOLE,
            &args as *const libc::fpunchhole_t,
        )
    };
    let outcome = if rc == -1 {
        let error = io::Error::last_os_error();
        if !unsupported(&error) {
            return Err(error);
        }
        write_zeros(file, start, aligned_end - start)?;
        PunchOutcome::ZeroFilled
    } else {
        PunchOutcome::Punched
    };
    write_zeros(file, offset, start - offset)?;
    write_zeros(file, aligned_end, end - aligned_end)?;
    Ok(outcome)
}

/// Preallocation that keeps the file's length is not offered here: does nothing and
/// returns `false`.
pub(crate) fn preallocate(_file: &File, _offset: u64, _len: u64) -> io::Result<bool> {
    Ok(false)
}
