//! Copying a byte range from one file into another: `copy_file_range` where the system
//! has it (the kernel copies without a trip through user memory, keeps holes it finds in
//! the source and may share blocks on file systems that can), positional reads and
//! writes elsewhere or when the kernel refuses the pair of files.

use std::io;

use crate::error::{Result, io_error, range_end};
use crate::file::LockedFile;
use crate::hooks::FaultOp;

/// Bytes one read-and-write round of the portable path moves.
const BUFFER: usize = 1 << 20;

impl LockedFile {
    /// Copies `len` bytes at `from` in `source` to `to` in this file, extending it if
    /// needed. The fault injector is asked first, as for a write ([`FaultOp::Write`]).
    ///
    /// # Errors
    ///
    /// [`Error::Managed`](crate::Error::Managed) if this file belongs to a
    /// [`DataFile`](crate::DataFile); [`Error::Io`](crate::Error::Io) naming the
    /// source when it ends before the range does, and this file for a failed write (a
    /// full disk among them).
    pub fn copy_from(&self, source: &LockedFile, from: u64, to: u64, len: u64) -> Result<()> {
        self.check_unmanaged("copy", to)?;
        self.copy_from_unchecked(source, from, to, len)
    }

    /// [`copy_from`](Self::copy_from) without the check that the file is not a data
    /// file's: for [`DataFile::copy_within`](crate::DataFile::copy_within), which pins
    /// both ranges first. `source` may be this file, with ranges that do not overlap.
    pub(crate) fn copy_from_unchecked(
        &self,
        source: &LockedFile,
        from: u64,
        to: u64,
        len: u64,
    ) -> Result<()> {
        range_end(source.path(), from, len)?;
        range_end(self.path(), to, len)?;
        self.hooks()
            .check(self.path(), FaultOp::Write, to)
            .map_err(|e| io_error(self.path(), FaultOp::Write.name(), to, e))?;
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let done = copy_in_kernel(source, from, self, to, len)?;
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        let done = 0;
        if done < len {
            copy_through_memory(source, from + done, self, to + done, len - done)?;
        }
        Ok(())
    }
}

/// `copy_file_range` until the range is copied or the kernel declines the pair of files
/// (different file systems on older kernels, file systems without support); returns how
/// many bytes it copied.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn copy_in_kernel(
    source: &LockedFile,
    from: u64,
    target: &LockedFile,
    to: u64,
    len: u64,
) -> Result<u64> {
    use rustix::io::Errno;

    let mut done = 0;
    while done < len {
        let mut off_in = from + done;
        let mut off_out = to + done;
        let chunk = usize::try_from(len - done)
            .unwrap_or(usize::MAX)
            .min(1 << 30);
        match rustix::fs::copy_file_range(
            source.as_file(),
            Some(&mut off_in),
            target.as_file(),
            Some(&mut off_out),
            chunk,
        ) {
            Ok(0) => {
                return Err(io_error(
                    source.path(),
                    "copy_file_range",
                    from + done,
                    io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the file ends before the requested range",
                    ),
                ));
            }
            Ok(n) => done += n as u64,
            Err(Errno::INTR) => {}
            Err(Errno::XDEV | Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP | Errno::PERM)
                if done == 0 =>
            {
                return Ok(0);
            }
            Err(errno) => {
                return Err(io_error(
                    target.path(),
                    "copy_file_range",
                    to + done,
                    errno.into(),
                ));
            }
        }
    }
    Ok(done)
}

fn copy_through_memory(
    source: &LockedFile,
    from: u64,
    target: &LockedFile,
    to: u64,
    len: u64,
) -> Result<()> {
    let mut buffer = vec![0u8; BUFFER.min(usize::try_from(len).unwrap_or(BUFFER))];
    let mut done = 0;
    while done < len {
        let n = buffer
            .len()
            .min(usize::try_from(len - done).unwrap_or(usize::MAX));
        source.read_exact_at(&mut buffer[..n], from + done)?;
        target.write_all_at_unchecked(&buffer[..n], to + done)?;
        done += n as u64;
    }
    Ok(())
}
