//! Online backups: a copy of the last committed state, taken while writers go on, into a
//! directory that is a database of its own (`Database::backup`).
//!
//! * [`capture`]: the state to copy, at one commit's instant, with a snapshot of every
//!   region so that its bytes stay where they are while the copy runs;
//! * [`destination`]: the backup's directory: what it held, the marker that says a
//!   backup into it is under way, and the files written last;
//! * [`placement`]: where each region goes in the backup's data file;
//! * [`chunks`]: copying a region, chunk by chunk, skipping what the backup holds
//!   already.
//!
//! The protocol and its guarantees are described in `docs/FORMAT.md` ("Backups").

mod capture;
mod chunks;
mod destination;
mod placement;

use std::path::Path;
use std::time::{Duration, Instant};

use crate::format::{Record, RecordKind, RegionEntry};
use crate::{Database, Result};

pub use destination::INCOMPLETE_MARKER;
pub(crate) use destination::refuse_incomplete;

/// Bytes of a chunk: the unit in which an incremental backup compares a region with
/// what the backup holds, and copies it.
pub const BACKUP_CHUNK: u64 = chunks::CHUNK;

/// What one [`Database::backup`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupStats {
    /// The generation of the commit the backup holds.
    pub generation: u64,
    /// The generation the backup held before, when it held a complete backup of this
    /// database (an incremental backup).
    pub previous_generation: Option<u64>,
    /// Regions in the backup.
    pub regions: u64,
    /// Sum of the regions' lengths.
    pub live_bytes: u64,
    /// Bytes written into the backup's data file.
    pub bytes_copied: u64,
    /// Bytes of the backup read to find what it holds already.
    pub bytes_compared: u64,
    /// How long the backup took.
    pub duration: Duration,
}

impl Database {
    /// Write a copy of the last committed state into the directory `dest`, while other
    /// threads go on writing. See [`backup_with_progress`](Self::backup_with_progress).
    pub fn backup(&self, dest: &Path) -> Result<BackupStats> {
        self.backup_with_progress(dest, &mut |_, _| {})
    }

    /// Write a copy of the last committed state into the directory `dest`, calling
    /// `progress(done, total)` with bytes of region data processed as the copy runs.
    ///
    /// A read-write handle commits first (as [`flush`](Self::flush) does) and copies that
    /// commit; a read-only handle copies the commit it opened. The copy is the state at
    /// that one commit: every region's name, length and bytes (bytes overwritten inside a
    /// region's committed length after the commit may read old or new, as after a
    /// crash). Writers are held up only while the commit captures its state; the copy
    /// itself reads from snapshots (as [`Reader`](crate::Reader)s do), so an overwrite
    /// inside a region's copied bytes meanwhile first moves the region.
    ///
    /// `dest` becomes a database of its own, which [`Database::open`], [`check`] and
    /// [`check_data`] accept (it records every region's chunk checksums), holding this database's id and the generation copied. Only the regions'
    /// bytes are written, packed after one another: holes and unused reservations are not
    /// copied. When `dest` already holds a backup of this database, only the chunks of
    /// [`BACKUP_CHUNK`] bytes that differ are written (an incremental backup). A `dest`
    /// that holds another database, or a backup of one, is refused with
    /// [`Error::NotABackupOf`](crate::Error::NotABackupOf).
    ///
    /// A crash or a kill during the backup leaves `dest` holding the previous backup or
    /// marked incomplete, which `open` refuses with
    /// [`Error::IncompleteBackup`](crate::Error::IncompleteBackup) and `check` reports,
    /// until a backup into it completes.
    ///
    /// [`check`]: crate::check
    /// [`check_data`]: crate::check_data
    pub fn backup_with_progress(
        &self,
        dest: &Path,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<BackupStats> {
        let started = Instant::now();
        let inner = &self.inner;
        let mut destination = destination::Destination::open(dest, &inner.file_id)?;
        let captured = capture::capture(inner)?;
        destination.begin(&inner.file_id)?;
        let planned = placement::plan(
            destination.previous_entries(),
            destination.file_len(),
            captured
                .regions
                .iter()
                .map(|r| (r.entry.number, r.entry.len)),
        )
        .map_err(|source| crate::Error::Layout {
            path: dest.to_owned(),
            source: crate::LayoutError::new(source),
        })?;
        let total: u64 = captured.regions.iter().map(|r| r.entry.len).sum();
        let mut copier = chunks::Copier::new(
            inner.data.file(),
            destination.data(),
            destination.fresh_from(),
            total,
            progress,
        );
        let mut entries = Vec::with_capacity(captured.regions.len());
        for (region, target) in captured.regions.iter().zip(&planned.targets) {
            // The snapshot was taken after the entry, under the same lock: it holds at
            // least the entry's bytes.
            let bytes = usize::try_from(region.entry.len)
                .ok()
                .and_then(|len| region.snapshot.bytes().get(..len))
                .ok_or_else(|| crate::Error::Corrupt {
                    path: inner.path.join(crate::database::DATA_FILE),
                    offset: region.entry.start,
                    reason: format!(
                        "region {:?} shows fewer bytes than its commit records",
                        region.entry.name
                    ),
                })?;
            let crcs =
                copier.copy_region(region.entry.number, region.entry.start, bytes, target.start)?;
            entries.push(RegionEntry {
                start: target.start,
                reserved: target.reserved,
                // A checkpoint carries every chunk's checksum.
                sums_from: 0,
                crcs,
                origin: 0,
                ..region.entry.clone()
            });
        }
        let (bytes_copied, bytes_compared) = copier.totals();
        drop(copier);
        // The snapshots are no longer needed: the source may reuse their space.
        let generation = captured.generation;
        let regions = captured.regions.len() as u64;
        drop(captured.regions);
        destination.punch(&planned.punchable)?;
        let next_number = entries.last().map_or(0, |e| e.number + 1);
        let record = Record {
            generation,
            kind: RecordKind::Checkpoint,
            next_number,
            removed: Vec::new(),
            upserts: entries,
            // The data file is synced before the metadata is written.
            data_synced: true,
            inline: Vec::new(),
        };
        let previous_generation = destination.previous_generation();
        destination.finish(&inner.file_id, &record, planned.file_end)?;
        Ok(BackupStats {
            generation,
            previous_generation,
            regions,
            live_bytes: total,
            bytes_copied,
            bytes_compared,
            duration: started.elapsed(),
        })
    }
}
