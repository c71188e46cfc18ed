//! Space statistics, computed in-process (no external program).

use std::path::Path;

use snafu::ResultExt;

use seqdb_sys::{FileOptions, Lock, LockedFile};

use crate::error::SysSnafu;
use crate::meta_log::META_FILE;
use crate::{Database, Result};

/// How the database uses its files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Length of the data file.
    pub file_len: u64,
    /// Bytes the file system has allocated for the data and metadata files.
    pub allocated_bytes: u64,
    /// Sum of the regions' lengths.
    pub live_bytes: u64,
    /// Sum of the regions' reservations.
    pub reserved_bytes: u64,
    /// Number of regions.
    pub regions: u64,
    /// Number of free holes in the layout.
    pub holes: u64,
    /// Bytes in free holes.
    pub hole_bytes: u64,
    /// Bytes freed since the last flush, reusable after the next one.
    pub pending_bytes: u64,
    /// Bytes of the data file that regions moved away from (or removed regions left)
    /// while live [`Reader`](crate::Reader)s still view them: reused or punched only after
    /// the last of those readers is dropped, at the next flush or hole punch. A value that
    /// stays high points at a reader kept alive for long.
    pub retired_bytes: u64,
    /// Generation of the newest durable commit.
    pub generation: u64,
}

impl Stats {
    /// File length divided by live bytes (1.0 for an empty database).
    pub fn space_amplification(&self) -> f64 {
        if self.live_bytes == 0 {
            1.0
        } else {
            self.file_len as f64 / self.live_bytes as f64
        }
    }
}

impl Database {
    /// Current space statistics.
    pub fn stats(&self) -> Result<Stats> {
        let inner = &self.inner;
        let generation = inner.commit.lock().generation;
        let meta_allocated = match inner.commit.lock().log.as_ref() {
            Some(log) => log.allocated_bytes()?,
            None => meta_allocated_bytes(&inner.path)?,
        };
        // Regions not looked up since open are counted as open found them, without
        // making their state (`place.rs`); the others under their locks, after the
        // table's is released.
        let (layout, regions, untouched, slots) = {
            let table = inner.table.read();
            let mut untouched = (0, 0);
            let mut slots = Vec::new();
            for place in table.slots.iter().flatten() {
                match place.untouched() {
                    Some((len, reserved)) => {
                        untouched.0 += len;
                        untouched.1 += reserved;
                    }
                    None => slots.extend(place.made_slot().cloned()),
                }
            }
            (table.layout.stats(), table.count(), untouched, slots)
        };
        let mut stats = Stats {
            file_len: inner.data.len(),
            allocated_bytes: inner.data.allocated_bytes().context(SysSnafu)? + meta_allocated,
            regions: regions as u64,
            live_bytes: untouched.0,
            reserved_bytes: untouched.1,
            holes: layout.holes,
            hole_bytes: layout.free_bytes,
            pending_bytes: layout.pending_bytes,
            retired_bytes: layout.held_bytes,
            generation,
        };
        for slot in &slots {
            let region = slot.read_recursive();
            stats.live_bytes += region.visible_len();
            stats.reserved_bytes += region.reserved();
        }
        Ok(stats)
    }
}

/// Allocated bytes of the metadata file, for handles that do not hold it open
/// (read-only ones); zero when there is none.
fn meta_allocated_bytes(dir: &Path) -> Result<u64> {
    let path = dir.join(META_FILE);
    if !path.exists() {
        return Ok(0);
    }
    let options = FileOptions {
        lock: Lock::Unlocked,
        ..FileOptions::default()
    };
    let file = LockedFile::open(&path, &options).context(SysSnafu)?;
    file.allocated_bytes().context(SysSnafu)
}
