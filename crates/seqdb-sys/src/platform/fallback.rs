//! Portable fallback for other Unix systems: `fsync` for every barrier,
//! zeros where the platform cannot allocate or punch.

use std::fs::File;
use std::io;

use rustix::fs::fsync;

use super::PunchOutcome;
use super::zeros::{extend_with_zeros, write_zeros};

/// `fsync` (the portable call that makes data durable).
pub(crate) fn sync_data(file: &File) -> io::Result<()> {
    Ok(fsync(file)?)
}

/// `fsync`.
pub(crate) fn sync_all(file: &File) -> io::Result<()> {
    Ok(fsync(file)?)
}

/// `fsync` on a directory handle.
pub(crate) fn sync_dir(dir: &File) -> io::Result<()> {
    Ok(fsync(dir)?)
}

/// Writes zeros past the current end up to `offset + len`.
pub(crate) fn allocate(file: &File, offset: u64, len: u64) -> io::Result<()> {
    extend_with_zeros(file, offset, len)
}

/// Overwrites the range with zeros; no space is given back.
pub(crate) fn punch_hole(file: &File, offset: u64, len: u64) -> io::Result<PunchOutcome> {
    write_zeros(file, offset, len)?;
    Ok(PunchOutcome::ZeroFilled)
}

/// Preallocation that keeps the file's length is not offered here: does nothing and
/// returns `false`.
pub(crate) fn preallocate(_file: &File, _offset: u64, _len: u64) -> io::Result<bool> {
    Ok(false)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::FileExt;

    use super::*;

    fn file_with(bytes: &[u8]) -> (tempfile::TempDir, File) {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("f"))
            .expect("open");
        file.write_all_at(bytes, 0).expect("write");
        (dir, file)
    }

    #[test]
    fn punch_zero_fills_and_keeps_length() {
        let (tmp, file) = file_with(&[7u8; 200_000]);
        assert_eq!(
            punch_hole(&file, 10, 150_000).expect("punch"),
            PunchOutcome::ZeroFilled
        );
        let mut back = vec![0u8; 200_000];
        file.read_exact_at(&mut back, 0).expect("read");
        assert!(back[..10].iter().all(|&b| b == 7));
        assert!(back[10..150_010].iter().all(|&b| b == 0));
        assert!(back[150_010..].iter().all(|&b| b == 7));
        assert_eq!(file.metadata().expect("stat").len(), 200_000);
        sync_data(&file).expect("sync");
        sync_all(&file).expect("sync");
        let dir = File::open(tmp.path()).expect("open dir");
        sync_dir(&dir).expect("sync dir");
    }

    #[test]
    fn allocate_extends_without_touching_existing_bytes() {
        let (_dir, file) = file_with(&[9u8; 1000]);
        allocate(&file, 500, 100).expect("inside");
        assert_eq!(file.metadata().expect("stat").len(), 1000);
        allocate(&file, 800, 70_000).expect("past the end");
        assert_eq!(file.metadata().expect("stat").len(), 70_800);
        let mut back = vec![1u8; 70_800];
        file.read_exact_at(&mut back, 0).expect("read");
        assert!(back[..1000].iter().all(|&b| b == 9));
        assert!(back[1000..].iter().all(|&b| b == 0));
        allocate(&file, 100_000, 10).expect("after a gap");
        assert_eq!(file.metadata().expect("stat").len(), 100_010);
    }

    #[test]
    fn preallocate_does_nothing_and_says_so() {
        let (_dir, file) = file_with(b"abc");
        assert!(!preallocate(&file, 0, 1 << 20).expect("preallocate"));
        assert_eq!(file.metadata().expect("metadata").len(), 3);
    }
}
