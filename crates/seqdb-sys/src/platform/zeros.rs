//! Portable stand-ins built from positional writes of zeros.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Size of the zero buffer written per system call.
const CHUNK: usize = 64 * 1024;

/// A run of zeros, shared by every zero-filling call.
static ZEROS: [u8; CHUNK] = [0; CHUNK];

/// Overwrites `[offset, offset + len)` with zeros (extending the file if the
/// range reaches past its end).
pub(crate) fn write_zeros(file: &File, offset: u64, len: u64) -> io::Result<()> {
    let mut at = offset;
    let end = offset
        .checked_add(len)
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    while at < end {
        let n = usize::try_from(end - at).map_or(CHUNK, |rest| rest.min(CHUNK));
        file.write_all_at(&ZEROS[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

/// Makes the file at least `offset + len` bytes long by writing zeros after
/// its current end, so that the new blocks are allocated. Bytes already in the
/// file are never touched.
pub(crate) fn extend_with_zeros(file: &File, offset: u64, len: u64) -> io::Result<()> {
    let end = offset
        .checked_add(len)
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    let size = file.metadata()?.len();
    if end <= size {
        return Ok(());
    }
    let start = offset.max(size);
    if start > size {
        // Leave the gap before `offset` sparse, as the native calls do.
        rustix::fs::ftruncate(file, start)?;
    }
    write_zeros(file, start, end - start)
}
