//! Space a database really occupies on the file system.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::engine::Outcome;

/// The bytes allocated to every file under `path` (`st_blocks * 512`, summed), which
/// counts neither holes nor the logical size of sparse files.
pub fn allocated_bytes(path: &Path) -> Outcome<u64> {
    let metadata =
        fs::symlink_metadata(path).map_err(|e| format!("stat {}: {e}", path.display()))?;
    if !metadata.is_dir() {
        return Ok(metadata.blocks() * 512);
    }
    let mut total = 0;
    let entries = fs::read_dir(path).map_err(|e| format!("list {}: {e}", path.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("list {}: {e}", path.display()))?;
        total += allocated_bytes(&entry.path())?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_written_blocks_but_not_holes() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let full = dir.path().join("full");
        fs::write(&full, vec![1u8; 1 << 20]).expect("write");
        let sparse = fs::File::create(dir.path().join("sparse")).expect("create");
        sparse.set_len(64 << 20).expect("set_len");
        let allocated = allocated_bytes(dir.path()).expect("allocated");
        assert!(allocated >= 1 << 20, "{allocated}");
        assert!(allocated < 8 << 20, "{allocated}");
    }
}
