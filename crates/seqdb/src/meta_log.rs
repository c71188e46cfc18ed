//! The metadata file as an append-only log of commits with periodic checkpoints.
//!
//! A flush appends one delta record (the regions it changed) at the next page boundary and
//! syncs it; a torn append can only damage that newest record, which then fails its
//! checksum and is ignored. When the deltas outgrow the last checkpoint, the whole state is
//! written to a fresh file that atomically replaces the old one. Reading the log back is
//! `replay`'s job.

use std::path::{Path, PathBuf};

use snafu::ResultExt;

use seqdb_sys::{FileOptions, Hooks, Lock, LockedFile};

use crate::Result;
use crate::error::{CorruptSnafu, RecordTooLargeSnafu, SysSnafu};
use crate::format::{
    self, DatabaseId, FIRST_RECORD, LOG_ROOM, MAX_BODY_LEN, MAX_GENERATION, Record, RecordKind,
};

/// Name of the metadata file inside the database directory.
pub(crate) const META_FILE: &str = "meta";
/// Name of the file a checkpoint is written to before it replaces the metadata file.
pub(crate) const META_TMP_FILE: &str = "meta.tmp";
/// Deltas may grow to this many bytes before a checkpoint is considered (unless
/// `OpenOptions::checkpoint_after` says otherwise).
pub(crate) const MIN_LOG_BEFORE_CHECKPOINT: u64 = 1 << 20;

/// The writable metadata log.
pub(crate) struct MetaLog {
    dir: PathBuf,
    file: LockedFile,
    id: DatabaseId,
    /// Where the next record goes.
    end: u64,
    /// The file's length: zeros from `end` to here are room for the next records.
    room_end: u64,
    /// Bytes of delta records since the last checkpoint.
    since_checkpoint: u64,
    /// Size of the last checkpoint record.
    checkpoint_len: u64,
    /// Deltas may grow to this many bytes before a checkpoint is considered.
    min_log: u64,
    hooks: Hooks,
    /// For a log this handle opened rather than created: where its last record starts,
    /// until [`confirm`](Self::confirm) has made what the open read durable.
    unconfirmed: Option<u64>,
}

pub(crate) fn file_options(write: bool, create: bool, hooks: &Hooks) -> FileOptions {
    FileOptions {
        lock: Lock::Unlocked,
        write,
        create,
        truncate: create,
        hooks: hooks.clone(),
    }
}

impl MetaLog {
    /// Write a new metadata file of database `id` holding `checkpoint` and make it the
    /// database's metadata.
    pub fn create(
        dir: &Path,
        id: DatabaseId,
        checkpoint: &Record,
        min_log: u64,
        hooks: Hooks,
    ) -> Result<Self> {
        let (file, len) = write_checkpoint_file(dir, &id, checkpoint, &hooks)?.context(SysSnafu)?;
        let room_end = file.len().context(SysSnafu)?;
        Ok(MetaLog {
            dir: dir.to_owned(),
            file,
            id,
            end: FIRST_RECORD + len,
            room_end,
            since_checkpoint: 0,
            checkpoint_len: len,
            min_log,
            hooks,
            unconfirmed: None,
        })
    }

    /// Continue the log in `file`, whose valid records end at `end`. When `zeros_after`,
    /// the log ends in the zeros laid down for the next records, which are kept;
    /// otherwise anything after `end` is a torn record and is cut off first, durably
    /// (appending after a cut that may not be durable could leave old bytes behind the
    /// new records, so a failure here fails the open). `last_record` is where the last
    /// record of the log starts. What the open read is made durable by
    /// [`confirm`](Self::confirm), before the first commit.
    #[allow(clippy::too_many_arguments)]
    pub fn resume(
        dir: &Path,
        file: LockedFile,
        id: DatabaseId,
        last_record: u64,
        end: u64,
        checkpoint_len: u64,
        zeros_after: bool,
        min_log: u64,
        hooks: Hooks,
    ) -> Result<Self> {
        let mut room_end = file.len().context(SysSnafu)?;
        if room_end > end && !zeros_after {
            file.set_len(end).context(SysSnafu)?;
            file.sync_data().context(SysSnafu)?;
            room_end = end;
        }
        Ok(MetaLog {
            dir: dir.to_owned(),
            file,
            id,
            end,
            room_end,
            since_checkpoint: end - FIRST_RECORD - checkpoint_len,
            checkpoint_len,
            min_log,
            hooks,
            unconfirmed: Some(last_record),
        })
    }

    /// Make durable what the open read, before this handle first acts durably on it (its
    /// first commit, before it stamps the data file's header; its first hole punch; or
    /// compaction's shrink of the data file: see `Inner::confirm_log`). A previous
    /// handle may have failed to sync the log's last delta, and the kernel may then have
    /// kept its pages in memory, marked clean, without them ever reaching the device; or
    /// it may have failed to sync the directory after renaming a checkpoint into place.
    /// So the directory is synced, and the last delta is written again in place (dirtying
    /// its pages again) and synced. (A checkpoint is synced before it is renamed.) Costs
    /// nothing after the first call, and nothing for a handle that only reads.
    pub fn confirm(&mut self) -> Result<()> {
        let Some(last_record) = self.unconfirmed else {
            return Ok(());
        };
        seqdb_sys::sync_dir(&self.dir, &self.hooks).context(SysSnafu)?;
        if last_record > FIRST_RECORD {
            // The record's padding may be cut short: only what the file holds.
            let held = self.end.min(self.file.len().context(SysSnafu)?);
            let mut bytes = vec![0; (held - last_record) as usize];
            self.file
                .read_exact_at(&mut bytes, last_record)
                .context(SysSnafu)?;
            self.file
                .write_all_at(&bytes, last_record)
                .context(SysSnafu)?;
            self.file.sync_data().context(SysSnafu)?;
        }
        self.unconfirmed = None;
        Ok(())
    }

    /// Whether the deltas have grown enough that the next commit should be a checkpoint.
    pub fn wants_checkpoint(&self) -> bool {
        self.since_checkpoint > self.min_log.max(2 * self.checkpoint_len)
    }

    /// Append a delta record and make it durable: one sync. The record goes into the
    /// zeros laid down ahead of the log; when they run out, more are written after the
    /// record, so that most syncs do not change the file's length. After an error the
    /// record may or may not be in the file and durable: the caller must not use the log
    /// again.
    pub fn append(&mut self, record: &Record) -> Result<()> {
        debug_assert_eq!(record.kind, RecordKind::Delta);
        let bytes = encode(self.file.path(), &self.id, record)?;
        let len = bytes.len() as u64;
        if self.end + len > self.room_end {
            self.room_end = write_with_room(&self.file, bytes, self.end).context(SysSnafu)?;
        } else {
            self.file.write_all_at(&bytes, self.end).context(SysSnafu)?;
        }
        self.file.sync_data().context(SysSnafu)?;
        self.end += len;
        self.since_checkpoint += len;
        Ok(())
    }

    /// Replace the log by one checkpoint record, atomically and durably. After an error
    /// either log may be in force (the rename may have happened): the caller must not use
    /// this one again.
    ///
    /// A checkpoint only keeps the log short: when the disk has no room for the new file,
    /// the commit is appended as the delta `instead` (the old log untouched).
    pub fn checkpoint(&mut self, record: &Record, instead: impl FnOnce() -> Record) -> Result<()> {
        debug_assert_eq!(record.kind, RecordKind::Checkpoint);
        let Ok((file, len)) = write_checkpoint_file(&self.dir, &self.id, record, &self.hooks)?
        else {
            let _ = std::fs::remove_file(self.dir.join(META_TMP_FILE));
            return self.append(&instead());
        };
        self.file = file;
        self.end = FIRST_RECORD + len;
        self.room_end = self.file.len().context(SysSnafu)?;
        self.since_checkpoint = 0;
        self.checkpoint_len = len;
        Ok(())
    }

    /// Bytes the file system has allocated for the log.
    pub fn allocated_bytes(&self) -> Result<u64> {
        self.file.allocated_bytes().context(SysSnafu)
    }
}

/// The generation of the commit after `generation`. Never wraps: the replay refuses
/// generations past [`MAX_GENERATION`], and a database that reached it cannot commit.
pub(crate) fn next_generation(dir: &Path, generation: u64) -> Result<u64> {
    match generation.checked_add(1) {
        Some(next) if next <= MAX_GENERATION => Ok(next),
        _ => CorruptSnafu {
            path: dir.join(META_FILE),
            offset: 0u64,
            reason: format!("generation {generation} is the last this build can write"),
        }
        .fail(),
    }
}

/// Write `bytes` at `offset` followed by [`LOG_ROOM`] zeros, the room for the records
/// that follow; returns where the file now ends. The room is only an optimisation: on
/// a full disk the bytes are written without it.
fn write_with_room(
    file: &LockedFile,
    mut bytes: Vec<u8>,
    offset: u64,
) -> std::result::Result<u64, seqdb_sys::Error> {
    let len = bytes.len();
    bytes.resize(len + LOG_ROOM as usize, 0);
    match file.write_all_at(&bytes, offset) {
        Ok(()) => Ok(offset + bytes.len() as u64),
        Err(e) if e.is_no_space() => {
            file.write_all_at(&bytes[..len], offset)?;
            file.len()
        }
        Err(e) => Err(e),
    }
}

/// A record's bytes, or an error when no reader could take it back.
fn encode(path: &Path, id: &DatabaseId, record: &Record) -> Result<Vec<u8>> {
    format::encode_record(id, record).map_err(|too_large| {
        RecordTooLargeSnafu {
            path,
            body_len: too_large.body_len,
            max: MAX_BODY_LEN,
        }
        .build()
    })
}

/// Write header and checkpoint to the temporary file, sync it, and rename it over the
/// metadata file; returns the open file and the checkpoint record's size, or (inner
/// error) the full disk's error when there was no room for the temporary file: the
/// metadata file is then as it was.
fn write_checkpoint_file(
    dir: &Path,
    id: &DatabaseId,
    record: &Record,
    hooks: &Hooks,
) -> Result<std::result::Result<(LockedFile, u64), seqdb_sys::Error>> {
    let tmp = dir.join(META_TMP_FILE);
    let meta = dir.join(META_FILE);
    let encoded = encode(&meta, id, record)?;
    let file = LockedFile::open(&tmp, &file_options(true, true, hooks)).context(SysSnafu)?;
    let mut bytes = vec![0u8; FIRST_RECORD as usize];
    bytes[..format::META_HEADER_LEN].copy_from_slice(&format::encode_meta_header(id));
    let len = encoded.len() as u64;
    bytes.extend_from_slice(&encoded);
    match write_with_room(&file, bytes, 0) {
        Ok(_) => {}
        Err(e) if e.is_no_space() => return Ok(Err(e)),
        Err(e) => return Err(e).context(SysSnafu),
    }
    file.sync_all().context(SysSnafu)?;
    seqdb_sys::rename_durably(&tmp, &meta, hooks).context(SysSnafu)?;
    drop(file);
    // Reopen under the final name, so errors and sync events name the file that exists.
    let file = LockedFile::open(&meta, &file_options(true, false, hooks)).context(SysSnafu)?;
    Ok(Ok((file, len)))
}
