//! What the database's files take on disk, asked of the file system directly.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::failure::{Context, Failure};

/// Bytes the file system has allocated for the database's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allocated {
    /// The data file.
    pub data: u64,
    /// The metadata file.
    pub meta: u64,
}

impl Allocated {
    /// Both files together.
    pub fn total(self) -> u64 {
        self.data + self.meta
    }
}

/// Allocated bytes (`st_blocks` × 512) of the `data` and `meta` files in `db`; a missing
/// file takes no space.
pub fn allocated(db: &Path) -> Result<Allocated, Failure> {
    let of = |name: &str| -> Result<u64, Failure> {
        let path = db.join(name);
        match std::fs::metadata(&path) {
            Ok(meta) => Ok(meta.blocks().saturating_mul(512)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(e).context(|| format!("cannot inspect {}", path.display())),
        }
    };
    Ok(Allocated {
        data: of("data")?,
        meta: of("meta")?,
    })
}

/// `count` followed by `noun`, in the plural unless `count` is 1.
pub fn plural(count: u64, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}
