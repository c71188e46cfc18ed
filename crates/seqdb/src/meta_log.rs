//! The metadata file as an append-only log of commits with periodic checkpoints.
//!
//! A flush appends one delta record (the regions it changed) at the next page boundary and
//! syncs it; a torn append can only damage that newest record, which then fails its
//! checksum and is ignored. When the deltas outgrow the last checkpoint, the whole state is
//! written to a fresh file that atomically replaces the old one.

use std::path::{Path, PathBuf};

use snafu::ResultExt;

use seqdb_sys::{FileOptions, Hooks, Lock, LockedFile};

use crate::Result;
use crate::error::{CorruptSnafu, ForeignFileSnafu, SysSnafu, UnsupportedVersionSnafu};
use crate::format::{
    self, Decoded, Malformed, RECORD_ALIGN, Record, RecordKind, RegionEntry, VERSION,
};
use crate::number_map::NumberMap;

/// Name of the metadata file inside the database directory.
pub(crate) const META_FILE: &str = "meta";
/// Name of the file a checkpoint is written to before it replaces the metadata file.
pub(crate) const META_TMP_FILE: &str = "meta.tmp";
/// Deltas may grow to this many bytes before a checkpoint is considered.
const MIN_LOG_BEFORE_CHECKPOINT: u64 = 1 << 20;

/// The state the newest valid commit describes.
#[derive(Debug, Default)]
pub(crate) struct Recovered {
    /// Regions by number.
    pub regions: NumberMap<RegionEntry>,
    /// The lowest number never used.
    pub next_number: u64,
    /// The newest valid commit's generation.
    pub generation: u64,
}

/// The writable metadata log.
pub(crate) struct MetaLog {
    dir: PathBuf,
    file: LockedFile,
    /// Where the next record goes.
    end: u64,
    /// Bytes of delta records since the last checkpoint.
    since_checkpoint: u64,
    /// Size of the last checkpoint record.
    checkpoint_len: u64,
    hooks: Hooks,
}

fn first_record_offset() -> u64 {
    RECORD_ALIGN
}

fn file_options(write: bool, create: bool, hooks: &Hooks) -> FileOptions {
    FileOptions {
        lock: Lock::Unlocked,
        write,
        create,
        truncate: create,
        hooks: hooks.clone(),
    }
}

impl MetaLog {
    /// Write a new metadata file holding `checkpoint` and make it the database's metadata.
    pub fn create(dir: &Path, checkpoint: &Record, hooks: Hooks) -> Result<Self> {
        let (file, len) = write_checkpoint_file(dir, checkpoint, &hooks)?;
        Ok(MetaLog {
            dir: dir.to_owned(),
            file,
            end: first_record_offset() + len,
            since_checkpoint: 0,
            checkpoint_len: len,
            hooks,
        })
    }

    /// Read the metadata file and recover the newest valid commit. With `writable`, also
    /// cut off a torn tail and return the log for further appends.
    pub fn open(dir: &Path, writable: bool, hooks: Hooks) -> Result<(Option<Self>, Recovered)> {
        let path = dir.join(META_FILE);
        let file =
            LockedFile::open(&path, &file_options(writable, false, &hooks)).context(SysSnafu)?;
        let bytes = file.read_to_vec().context(SysSnafu)?;
        let scan = scan(&path, &bytes)?;
        if !writable {
            return Ok((None, scan.state));
        }
        if (bytes.len() as u64) > scan.valid_end {
            // Appending after a cut that may not be durable could leave old bytes behind the
            // new records: a failure here fails the open, and no handle exists to retry it.
            file.set_len(scan.valid_end).context(SysSnafu)?;
            file.sync_data().context(SysSnafu)?;
        }
        let log = MetaLog {
            dir: dir.to_owned(),
            file,
            end: scan.valid_end,
            since_checkpoint: scan.valid_end - first_record_offset() - scan.checkpoint_len,
            checkpoint_len: scan.checkpoint_len,
            hooks,
        };
        Ok((Some(log), scan.state))
    }

    /// Whether the deltas have grown enough that the next commit should be a checkpoint.
    pub fn wants_checkpoint(&self) -> bool {
        self.since_checkpoint > MIN_LOG_BEFORE_CHECKPOINT.max(2 * self.checkpoint_len)
    }

    /// Append a delta record and make it durable. After an error the record may or may not
    /// be in the file and durable: the caller must not use the log again.
    pub fn append(&mut self, record: &Record) -> Result<()> {
        debug_assert_eq!(record.kind, RecordKind::Delta);
        let bytes = format::encode_record(record);
        self.file.write_all_at(&bytes, self.end).context(SysSnafu)?;
        self.file.sync_data().context(SysSnafu)?;
        self.end += bytes.len() as u64;
        self.since_checkpoint += bytes.len() as u64;
        Ok(())
    }

    /// Replace the log by one checkpoint record, atomically and durably. After an error
    /// either log may be in force (the rename may have happened): the caller must not use
    /// this one again.
    pub fn checkpoint(&mut self, record: &Record) -> Result<()> {
        debug_assert_eq!(record.kind, RecordKind::Checkpoint);
        let (file, len) = write_checkpoint_file(&self.dir, record, &self.hooks)?;
        self.file = file;
        self.end = first_record_offset() + len;
        self.since_checkpoint = 0;
        self.checkpoint_len = len;
        Ok(())
    }

    /// Bytes the file system has allocated for the log.
    pub fn allocated_bytes(&self) -> Result<u64> {
        self.file.allocated_bytes().context(SysSnafu)
    }
}

/// Write header and checkpoint to the temporary file, sync it, and rename it over the
/// metadata file; returns the open file and the checkpoint record's size.
fn write_checkpoint_file(dir: &Path, record: &Record, hooks: &Hooks) -> Result<(LockedFile, u64)> {
    let tmp = dir.join(META_TMP_FILE);
    let file = LockedFile::open(&tmp, &file_options(true, true, hooks)).context(SysSnafu)?;
    let mut bytes = vec![0u8; first_record_offset() as usize];
    bytes[..format::HEADER_LEN].copy_from_slice(&format::encode_header());
    let encoded = format::encode_record(record);
    let len = encoded.len() as u64;
    bytes.extend_from_slice(&encoded);
    file.write_all_at(&bytes, 0).context(SysSnafu)?;
    file.sync_all().context(SysSnafu)?;
    let meta = dir.join(META_FILE);
    seqdb_sys::rename_durably(&tmp, &meta, hooks).context(SysSnafu)?;
    drop(file);
    // Reopen under the final name, so errors and sync events name the file that exists.
    let file = LockedFile::open(&meta, &file_options(true, false, hooks)).context(SysSnafu)?;
    Ok((file, len))
}

struct Scan {
    state: Recovered,
    valid_end: u64,
    checkpoint_len: u64,
}

/// Replay the log: the first record must be a checkpoint, each later one a delta whose
/// generation is one more than the previous. The first record that is not valid ends it.
fn scan(path: &Path, bytes: &[u8]) -> Result<Scan> {
    match format::decode_header(bytes) {
        Ok(()) => {}
        Err(Malformed::Foreign) => return ForeignFileSnafu { path }.fail(),
        Err(Malformed::Version(found)) => {
            return UnsupportedVersionSnafu {
                path,
                found,
                supported: VERSION,
            }
            .fail();
        }
        Err(Malformed::BadHeader) => {
            return CorruptSnafu {
                path,
                offset: 0u64,
                reason: "damaged header",
            }
            .fail();
        }
    }
    let mut at = first_record_offset() as usize;
    let Some(Decoded::Record(first, first_len)) = bytes.get(at..).map(format::decode_record) else {
        return CorruptSnafu {
            path,
            offset: at as u64,
            reason: "no valid checkpoint record",
        }
        .fail();
    };
    if first.kind != RecordKind::Checkpoint {
        return CorruptSnafu {
            path,
            offset: at as u64,
            reason: "the log does not start with a checkpoint",
        }
        .fail();
    }
    let mut state = Recovered {
        regions: NumberMap::with_capacity_and_hasher(first.upserts.len(), Default::default()),
        next_number: first.next_number,
        generation: first.generation,
    };
    for entry in first.upserts {
        if state.regions.insert(entry.number, entry).is_some() {
            return CorruptSnafu {
                path,
                offset: at as u64,
                reason: "a region number appears twice in a checkpoint",
            }
            .fail();
        }
    }
    at += first_len;
    while let Decoded::Record(record, len) = format::decode_record(&bytes[at.min(bytes.len())..]) {
        if record.kind != RecordKind::Delta
            || Some(record.generation) != state.generation.checked_add(1)
        {
            break;
        }
        for number in &record.removed {
            state.regions.remove(number);
        }
        for entry in record.upserts {
            state.regions.insert(entry.number, entry);
        }
        state.next_number = record.next_number;
        state.generation = record.generation;
        at += len;
    }
    Ok(Scan {
        state,
        valid_end: at as u64,
        checkpoint_len: first_len as u64,
    })
}
