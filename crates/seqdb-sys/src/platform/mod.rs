//! Per-OS system calls, selected at compile time.
//!
//! Every module offers the same functions on a `&File`:
//! `sync_data`, `sync_all`, `sync_dir`, `write_back` (Linux only; a no-op elsewhere),
//! `allocate` (extends the file to at
//! least `offset + len`, never shrinks it) and `punch_hole` (never changes the
//! length; the caller clamps the range to the file and skips empty ranges).
//! Errors are returned as [`std::io::Error`]; [`LockedFile`](crate::LockedFile)
//! adds the path, the operation and the offset.

pub(crate) mod zeros;

#[cfg(any(target_os = "linux", target_os = "android"))]
mod linux;
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) use linux::{allocate, preallocate, punch_hole, sync_all, sync_data, sync_dir};

#[cfg(any(target_os = "macos", target_os = "ios"))]
mod macos;
#[cfg(any(target_os = "macos", target_os = "ios"))]
pub(crate) use macos::{allocate, preallocate, punch_hole, sync_all, sync_data, sync_dir};

#[cfg(target_os = "freebsd")]
mod freebsd;
#[cfg(target_os = "freebsd")]
pub(crate) use freebsd::{allocate, preallocate, punch_hole, sync_all, sync_data, sync_dir};

// The portable module is also compiled for tests everywhere, so that its
// zero-filling paths are exercised on the machines that run the tests.
#[cfg(any(
    test,
    not(any(
        target_os = "linux",
        target_os = "android",
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd"
    ))
))]
pub(crate) mod fallback;
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd"
)))]
pub(crate) use fallback::{allocate, preallocate, punch_hole, sync_all, sync_data, sync_dir};

#[cfg(target_os = "linux")]
pub(crate) use linux::write_back;

/// Where the system has no `sync_file_range`: nothing (the final sync writes every
/// page).
#[cfg(not(target_os = "linux"))]
pub(crate) fn write_back(
    _file: &std::fs::File,
    _offset: u64,
    _len: u64,
    _wait: bool,
) -> std::io::Result<()> {
    Ok(())
}

/// What [`LockedFile::punch_hole`](crate::LockedFile::punch_hole) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PunchOutcome {
    /// Space was given back to the file system.
    Punched,
    /// The platform or file system cannot punch holes: the range was
    /// overwritten with zeros instead.
    ZeroFilled,
}
