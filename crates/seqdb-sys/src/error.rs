//! The crate's error type: every variant names the file and the range involved.

use std::io;
use std::path::{Path, PathBuf};

use snafu::Snafu;

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, with the path and byte range it concerns.
#[derive(Debug, Snafu)]
#[snafu(visibility(pub(crate)))]
#[non_exhaustive]
pub enum Error {
    /// A system call failed.
    #[snafu(display("{op} {} at offset {offset}: {source}", path.display()))]
    Io {
        /// The file or directory the call was made on.
        path: PathBuf,
        /// The operation, for example `"write"` or `"fdatasync"`.
        op: &'static str,
        /// The file offset the operation was working at (0 when it has none).
        offset: u64,
        /// The error the operating system reported.
        source: io::Error,
    },

    /// Another handle (in this process or another one) holds a conflicting lock.
    #[snafu(display("{} is already open by another process or handle", path.display()))]
    Locked {
        /// The locked file.
        path: PathBuf,
    },

    /// A write, copy, truncation or punch overlaps bytes a live [`View`](crate::View)
    /// is reading, or a view overlaps a modification in flight.
    #[snafu(display(
        "{}: bytes {offset}..{} are in use by a live view or a write in flight",
        path.display(),
        offset.saturating_add(*len)
    ))]
    RangeBusy {
        /// The data file.
        path: PathBuf,
        /// Start of the refused range.
        offset: u64,
        /// Length of the refused range (`u64::MAX - offset` for a truncation).
        len: u64,
    },

    /// A view or copy reaches past the end of the file.
    #[snafu(display(
        "{}: range at offset {offset} of {len} bytes is past the end of the file ({file_len} bytes)",
        path.display()
    ))]
    OutOfBounds {
        /// The data file.
        path: PathBuf,
        /// Start of the requested range.
        offset: u64,
        /// Length of the requested range.
        len: u64,
        /// Length of the file when the request was made.
        file_len: u64,
    },

    /// `offset + len` does not fit in a file offset.
    #[snafu(display(
        "{}: range at offset {offset} of {len} bytes overflows the largest file offset",
        path.display()
    ))]
    RangeOverflow {
        /// The file.
        path: PathBuf,
        /// Start of the requested range.
        offset: u64,
        /// Length of the requested range.
        len: u64,
    },

    /// The source and destination of a copy overlap.
    #[snafu(display(
        "{}: copy of {len} bytes from offset {from} to offset {to} overlaps itself",
        path.display()
    ))]
    OverlappingCopy {
        /// The data file.
        path: PathBuf,
        /// Source offset.
        from: u64,
        /// Destination offset.
        to: u64,
        /// Number of bytes.
        len: u64,
    },

    /// A modification was attempted through [`DataFile::file`](crate::DataFile::file),
    /// which would bypass the pins that keep views sound.
    #[snafu(display(
        "{op} {} at offset {offset}: the file belongs to a DataFile; modify it through the DataFile",
        path.display()
    ))]
    Managed {
        /// The data file.
        path: PathBuf,
        /// The refused operation.
        op: &'static str,
        /// Offset of the refused operation.
        offset: u64,
    },

    /// A [`DataFile`](crate::DataFile) was given a file opened with
    /// [`Lock::Unlocked`](crate::Lock::Unlocked). Views into the mapping are sound only
    /// while no other handle can write or truncate the file, which the lock (shared or
    /// exclusive) is there to ensure.
    #[snafu(display(
        "{}: a data file must be opened with a lock (shared or exclusive); without one, \
         another handle could change or truncate the mapped bytes under a view",
        path.display()
    ))]
    Unlocked {
        /// The file opened without a lock.
        path: PathBuf,
    },
}

impl Error {
    /// Whether the file system ran out of space or quota (`ENOSPC` or `EDQUOT`).
    pub fn is_no_space(&self) -> bool {
        match self {
            Error::Io { source, .. } => is_no_space_io(source),
            _ => false,
        }
    }

    /// The file or directory the error concerns.
    pub fn path(&self) -> &Path {
        match self {
            Error::Io { path, .. }
            | Error::Locked { path }
            | Error::RangeBusy { path, .. }
            | Error::OutOfBounds { path, .. }
            | Error::RangeOverflow { path, .. }
            | Error::OverlappingCopy { path, .. }
            | Error::Managed { path, .. }
            | Error::Unlocked { path } => path,
        }
    }

    /// The operation that failed or was refused, as errors name it (for example
    /// `"write"`, `"fdatasync"` or `"mmap"`), for [`Error::Io`] and [`Error::Managed`].
    pub fn operation(&self) -> Option<&'static str> {
        match self {
            Error::Io { op, .. } | Error::Managed { op, .. } => Some(op),
            Error::Locked { .. }
            | Error::RangeBusy { .. }
            | Error::OutOfBounds { .. }
            | Error::RangeOverflow { .. }
            | Error::OverlappingCopy { .. }
            | Error::Unlocked { .. } => None,
        }
    }

    /// The file offset the error concerns: where the operation was working (0 for a
    /// system call that has none), the start of the refused range, or a copy's
    /// destination. `None` when the error concerns the whole file.
    pub fn offset(&self) -> Option<u64> {
        match self {
            Error::Io { offset, .. }
            | Error::RangeBusy { offset, .. }
            | Error::OutOfBounds { offset, .. }
            | Error::RangeOverflow { offset, .. }
            | Error::Managed { offset, .. } => Some(*offset),
            Error::OverlappingCopy { to, .. } => Some(*to),
            Error::Locked { .. } | Error::Unlocked { .. } => None,
        }
    }

    /// The kind of I/O error this is: the operating system's for [`Error::Io`];
    /// [`ResourceBusy`](io::ErrorKind::ResourceBusy) for a lock or range held by
    /// another; [`InvalidInput`](io::ErrorKind::InvalidInput) for a request this
    /// crate refuses (out of bounds, overflowing, overlapping, bypassing a `DataFile`,
    /// mapping an unlocked file).
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            Error::Io { source, .. } => source.kind(),
            Error::Locked { .. } | Error::RangeBusy { .. } => io::ErrorKind::ResourceBusy,
            Error::OutOfBounds { .. }
            | Error::RangeOverflow { .. }
            | Error::OverlappingCopy { .. }
            | Error::Managed { .. }
            | Error::Unlocked { .. } => io::ErrorKind::InvalidInput,
        }
    }

    /// The operating system's error code (`errno`), for an [`Error::Io`] that has one.
    pub fn raw_os_error(&self) -> Option<i32> {
        self.io_error().and_then(io::Error::raw_os_error)
    }

    /// The operating system's error, for [`Error::Io`].
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A copy of the error. `io::Error` is not `Clone`: an operating-system error is
/// copied by its code, any other keeps its kind and message (its inner error,
/// if it had one, becomes that message).
impl Clone for Error {
    fn clone(&self) -> Self {
        match self {
            Error::Io {
                path,
                op,
                offset,
                source,
            } => Error::Io {
                path: path.clone(),
                op,
                offset: *offset,
                source: copy_io_error(source),
            },
            Error::Locked { path } => Error::Locked { path: path.clone() },
            Error::RangeBusy { path, offset, len } => Error::RangeBusy {
                path: path.clone(),
                offset: *offset,
                len: *len,
            },
            Error::OutOfBounds {
                path,
                offset,
                len,
                file_len,
            } => Error::OutOfBounds {
                path: path.clone(),
                offset: *offset,
                len: *len,
                file_len: *file_len,
            },
            Error::RangeOverflow { path, offset, len } => Error::RangeOverflow {
                path: path.clone(),
                offset: *offset,
                len: *len,
            },
            Error::OverlappingCopy {
                path,
                from,
                to,
                len,
            } => Error::OverlappingCopy {
                path: path.clone(),
                from: *from,
                to: *to,
                len: *len,
            },
            Error::Managed { path, op, offset } => Error::Managed {
                path: path.clone(),
                op,
                offset: *offset,
            },
            Error::Unlocked { path } => Error::Unlocked { path: path.clone() },
        }
    }
}

/// An `io::Error` with the same code, or else the same kind and message.
fn copy_io_error(error: &io::Error) -> io::Error {
    match error.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(error.kind(), error.to_string()),
    }
}

/// Whether an I/O error means the file system is out of space or quota.
pub(crate) fn is_no_space_io(error: &io::Error) -> bool {
    let code = error.raw_os_error();
    code == Some(rustix::io::Errno::NOSPC.raw_os_error())
        || code == Some(rustix::io::Errno::DQUOT.raw_os_error())
}

/// Builds an [`Error::Io`].
pub(crate) fn io_error(path: &Path, op: &'static str, offset: u64, source: io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        op,
        offset,
        source,
    }
}

/// `offset + len`, or [`Error::RangeOverflow`].
pub(crate) fn range_end(path: &Path, offset: u64, len: u64) -> Result<u64> {
    offset.checked_add(len).ok_or_else(|| Error::RangeOverflow {
        path: path.to_path_buf(),
        offset,
        len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_display_names_op_path_and_offset() {
        let error = io_error(
            Path::new("db/data"),
            "write",
            4096,
            io::Error::from_raw_os_error(rustix::io::Errno::NOSPC.raw_os_error()),
        );
        let text = error.to_string();
        assert!(text.starts_with("write db/data at offset 4096: "), "{text}");
        assert!(error.is_no_space());
        assert_eq!(error.path(), Path::new("db/data"));
        let copy = error.clone();
        assert!(copy.is_no_space());
        assert_eq!(copy.to_string(), text);
        assert_eq!(error.operation(), Some("write"));
        assert_eq!(error.offset(), Some(4096));
        assert_eq!(error.kind(), io::ErrorKind::StorageFull);
        assert_eq!(
            error.raw_os_error(),
            Some(rustix::io::Errno::NOSPC.raw_os_error())
        );
    }

    #[test]
    fn refusals_have_a_kind_and_no_os_code() {
        let busy = Error::RangeBusy {
            path: PathBuf::from("f"),
            offset: 10,
            len: 5,
        };
        assert_eq!(busy.kind(), io::ErrorKind::ResourceBusy);
        assert_eq!(busy.offset(), Some(10));
        assert_eq!(busy.operation(), None);
        assert_eq!(busy.raw_os_error(), None);
        let unlocked = Error::Unlocked {
            path: PathBuf::from("db/data"),
        };
        assert_eq!(unlocked.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(unlocked.offset(), None);
        assert_eq!(unlocked.path(), Path::new("db/data"));
        assert!(unlocked.to_string().starts_with("db/data: "));
        assert_eq!(unlocked.clone().to_string(), unlocked.to_string());
    }

    #[test]
    fn a_copy_keeps_kind_and_message_without_a_code() {
        let error = io_error(
            Path::new("f"),
            "fsync",
            0,
            io::Error::new(io::ErrorKind::TimedOut, "device went away"),
        );
        let copy = error.clone();
        assert_eq!(copy.to_string(), error.to_string());
        assert_eq!(
            copy.io_error().map(io::Error::kind),
            Some(io::ErrorKind::TimedOut)
        );
    }

    #[test]
    fn quota_counts_as_no_space_and_others_do_not() {
        let quota = io_error(
            Path::new("f"),
            "write",
            0,
            io::Error::from_raw_os_error(rustix::io::Errno::DQUOT.raw_os_error()),
        );
        assert!(quota.is_no_space());
        let other = io_error(
            Path::new("f"),
            "write",
            0,
            io::Error::from_raw_os_error(rustix::io::Errno::IO.raw_os_error()),
        );
        assert!(!other.is_no_space());
        let locked = Error::Locked {
            path: PathBuf::from("f"),
        };
        assert!(!locked.is_no_space());
        assert_eq!(
            locked.to_string(),
            "f is already open by another process or handle"
        );
    }
}
