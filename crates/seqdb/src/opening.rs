//! Opening a database's files: creating a new database, or reading the newest commit
//! and refusing damage (or, when asked, recovering past it).
//!
//! Every crash image of a new database opens: its data file's header is written first
//! (the first commit's data sync makes it durable), then the metadata file is installed
//! by a rename. A directory whose data file holds nothing but a fresh header, or
//! nothing at all, and no metadata file is a creation cut short and is created again; so
//! is one whose metadata holds only the empty first checkpoint next to a data file whose
//! header was never written.

use std::collections::hash_map::RandomState;
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::io::ErrorKind;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use snafu::ResultExt;

use seqdb_sys::LockedFile;

use crate::beside_writer;
use crate::data_header::{self, BadDataHeader, DATA_HEADER_LEN, DataHeader};
use crate::database::DATA_FILE;
use crate::diagnosis::{self, Finding, Repair, Validated};
use crate::error::{
    CorruptSnafu, ForeignFileSnafu, MissingMetadataSnafu, SysSnafu, UnsupportedVersionSnafu,
};
use crate::format::{DatabaseId, MAX_RECORD_SPAN, Record, RecordKind, VERSION};
use crate::log_read::{FileSource, RecordEnd};
use crate::meta_log::{self, META_FILE, META_TMP_FILE, MetaLog};
use crate::recovery::RecoveryReport;
use crate::redo;
use crate::replay::{self, LogScan, Placed};
use crate::{Error, OpenOptions, Result};

/// Everything `open` learns from the files.
pub(crate) struct Opened {
    /// The log to append to (read-write handles).
    pub log: Option<MetaLog>,
    /// The regions, ordered by number.
    pub entries: Vec<Placed>,
    /// Their names and allocator.
    pub validated: Validated,
    pub next_number: u64,
    pub generation: u64,
    pub file_id: DatabaseId,
    /// What recovery did, when the open recovered past damage.
    pub recovery: Option<RecoveryReport>,
    /// Bytes the commits since the data file was last synced carried inline.
    pub unsynced: u64,
    /// The data file header's slot the next commits stamp.
    pub stamp_slot: usize,
}

/// Read the metadata log and the data file's header, or start a new database.
/// `data` is the locked data file, `data_len` bytes long. `beside_writer`: a read-only
/// open while a read-write handle has the database (`beside_writer.rs`).
pub(crate) fn open_files(
    dir: &Path,
    data: &LockedFile,
    data_len: u64,
    options: &OpenOptions,
    beside_writer: bool,
) -> Result<Opened> {
    let read_only = options.read_only;
    let meta_path = dir.join(META_FILE);
    if !read_only {
        match fs::remove_file(dir.join(META_TMP_FILE)) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(source) => {
                return Err(Error::Directory {
                    path: dir.to_owned(),
                    source,
                });
            }
        }
    }
    if !meta_path.exists() {
        return create(dir, data, data_len, options);
    }
    let file = LockedFile::open(
        &meta_path,
        &meta_log::file_options(!read_only, false, &options.hooks),
    )
    .context(SysSnafu)?;
    let source = FileSource {
        file: &file,
        len: file.len().context(SysSnafu)?,
    };
    let mut scan = replay::scan_log(&meta_path, &source, None)?;
    let mut header = data_header(dir, data, data_len, &scan)?;
    let data_len = if beside_writer {
        // The writer may have grown the file for the commits just read.
        beside_writer::settle(&mut scan, &mut header);
        data.len().context(SysSnafu)?
    } else {
        data_len
    };
    let judgement = diagnosis::judge(&scan, &header);
    let recovery = match judgement.damage.first() {
        None => None,
        Some(first) if !options.recover => return Err(corrupt(dir, first)),
        Some(_) => {
            let (rescan, report) = recover(dir, &source, scan, &header, &judgement.damage)?;
            scan = rescan;
            Some(report)
        }
    };
    let LogScan {
        id,
        mut state,
        checkpoint_len,
        last_record,
        end,
        after,
        ..
    } = scan;
    // Only zeros after the log: the room laid down for the next records, kept. Anything
    // else after it (a torn record, or records a recovery drops) is cut off.
    let zeros_after =
        end.reason == RecordEnd::Zeros && after.records.is_empty() && after.unexamined.is_none();
    let (generation, next_number) = (state.generation, state.next_number);
    let unsynced = state.redo.iter().map(|w| w.bytes.len() as u64).sum();
    let stamp_slot = header.next_slot(state.synced_generation);
    let redo_writes = std::mem::take(&mut state.redo);
    let entries = state.into_sorted();
    let redo = redo::clip(&entries, &redo_writes);
    let coverage = redo::Coverage::new(data_len, &redo);
    let validated =
        diagnosis::validate(&entries, next_number, &coverage).map_err(|violations| {
            let first = &violations[0];
            let more = match violations.len() {
                1 => String::new(),
                n => format!(" (and {} more problems; `seqdb check` lists them)", n - 1),
            };
            Error::Corrupt {
                path: meta_path.clone(),
                offset: first.offset,
                reason: format!("{}{more}", first.reason),
            }
        })?;
    // Beside a live writer the bytes are there: the writer wrote them before their
    // records, and may have overwritten them since, as the contract allows.
    if !beside_writer {
        redo::settle(&dir.join(DATA_FILE), data, data_len, &redo, read_only)?;
    }
    let mut log = None;
    if !read_only {
        if header.blank {
            data.write_all_at(&data_header::encode_page(&id, 0), 0)
                .context(SysSnafu)?;
        }
        if let Some(report) = &recovery
            && report.restamped_from.is_some()
        {
            restamp(data, &id, generation)?;
        }
        log = Some(MetaLog::resume(
            dir,
            file,
            id,
            last_record,
            end.offset,
            checkpoint_len,
            zeros_after,
            min_log(options),
            options.hooks.clone(),
        )?);
    }
    Ok(Opened {
        log,
        entries,
        validated,
        next_number,
        generation,
        file_id: id,
        recovery: recovery.map(|report| RecoveryReport {
            applied: !read_only,
            ..report
        }),
        unsynced,
        stamp_slot,
    })
}

/// The error `open` gives for a damage.
fn corrupt(dir: &Path, finding: &Finding) -> Error {
    Error::Corrupt {
        path: dir.join(finding.file),
        offset: finding.offset,
        reason: format!(
            "{}; `OpenOptions::recover` (or `seqdb check --repair`) keeps the newest whole \
             commit",
            finding.reason
        ),
    }
}

/// Decode the data file's header; it must belong to the database `id`.
///
/// A header never written (the first page zeros, or the file shorter) next to a log that
/// holds nothing but the empty checkpoint of generation 0 is a creation cut short: the
/// header is written without a sync, and the first commit's data sync makes it durable.
/// It is then reported with `blank` set; any other missing header is damage.
pub(crate) fn data_header(
    dir: &Path,
    data: &LockedFile,
    data_len: u64,
    scan: &LogScan,
) -> Result<DataHeader> {
    let path = dir.join(DATA_FILE);
    let id = &scan.id;
    let page = data_header::read_page(data, data_len)?;
    let header = match data_header::decode_page(&page) {
        Ok(header) => header,
        // A header torn while a new database was created (it is written without a sync)
        // is the creation cut short too: nothing was ever committed.
        Err(BadDataHeader::Blank | BadDataHeader::Damaged(_))
            if scan.state.is_new() && data_len <= DATA_HEADER_LEN =>
        {
            return Ok(DataHeader::blank(*id));
        }
        Err(BadDataHeader::Blank) if scan.state.is_new() => {
            return Ok(DataHeader::blank(*id));
        }
        Err(BadDataHeader::Blank) => {
            return CorruptSnafu {
                path,
                offset: 0u64,
                reason: format!(
                    "the data file has no header (its first {} bytes are zeros or missing): it \
                     was zeroed, cut short or replaced",
                    DATA_HEADER_LEN.min(data_len.max(1))
                ),
            }
            .fail();
        }
        Err(BadDataHeader::Foreign) => return ForeignFileSnafu { path, kind: "data" }.fail(),
        Err(BadDataHeader::Version(found)) => {
            return UnsupportedVersionSnafu {
                path,
                found,
                supported: VERSION,
            }
            .fail();
        }
        Err(BadDataHeader::Damaged(reason)) => {
            return CorruptSnafu {
                path,
                offset: 0u64,
                reason: format!("the data file's header is damaged: {reason}"),
            }
            .fail();
        }
    };
    if header.id != *id {
        return CorruptSnafu {
            path,
            offset: 16u64,
            reason: format!(
                "the data file belongs to another database (id {}), not to the one its \
                 metadata describes (id {})",
                hex(&header.id),
                hex(id)
            ),
        }
        .fail();
    }
    Ok(header)
}

/// Get past the damage `found`: cut the log where it breaks (or where the data file's
/// header says the last whole commit is), and plan to record the recovered commit in
/// the data file's header. Files are changed by the caller, after validation.
fn recover(
    dir: &Path,
    source: &FileSource<'_>,
    scan: LogScan,
    header: &DataHeader,
    found: &[Finding],
) -> Result<(LogScan, RecoveryReport)> {
    let meta_path = dir.join(META_FILE);
    let mut scan = scan;
    if let Some(to) = found.iter().find_map(|f| match f.repair {
        Repair::RollBack { to } => Some(to),
        _ => None,
    }) {
        scan = replay::scan_log(&meta_path, source, Some(to))?;
        if scan.state.generation != to {
            return CorruptSnafu {
                path: dir.join(DATA_FILE),
                offset: header.offset_of(to),
                reason: format!(
                    "the data file's header records commit {to}, older than the metadata \
                     log's checkpoint (generation {}): no commit in the log matches the data \
                     file",
                    scan.state.generation
                ),
            }
            .fail();
        }
    }
    let end = scan.end.offset;
    let restamp = found.iter().any(|f| f.repair == Repair::Restamp)
        && header.generation != scan.state.generation;
    let report = RecoveryReport {
        damage: found
            .iter()
            .map(|f| {
                format!(
                    "{} offset {}: {}",
                    dir.join(f.file).display(),
                    f.offset,
                    f.reason
                )
            })
            .collect(),
        generation: scan.state.generation,
        cut_at: (scan.file_len > end).then_some(end),
        cut_bytes: scan.file_len.saturating_sub(end),
        dropped: scan
            .after
            .records
            .iter()
            .map(|r| (r.offset, r.generation))
            .collect(),
        restamped_from: restamp.then_some(header.generation),
        applied: false,
    };
    Ok((scan, report))
}

/// Record commit `generation` in both slots of the data file's header, durably, one slot
/// at a time: a crash at any moment leaves one slot whole (old or new), so the database
/// can still be opened with `recover` again.
fn restamp(data: &LockedFile, id: &DatabaseId, generation: u64) -> Result<()> {
    let slot = data_header::encode_slot(id, generation);
    for offset in data_header::SLOT_OFFSETS {
        data.write_all_at(&slot, offset).context(SysSnafu)?;
        data.sync_data().context(SysSnafu)?;
    }
    Ok(())
}

/// A directory without a metadata file: a new database, or one whose creation was
/// interrupted (its data file holds no more than a fresh header), is created; any
/// other data file is a database that lost its metadata.
fn create(dir: &Path, data: &LockedFile, data_len: u64, options: &OpenOptions) -> Result<Opened> {
    let page = data_header::read_page(data, data_len)?;
    let fresh_header = match data_header::decode_page(&page) {
        Ok(header) if header.generation == 0 => Some(Some(header.id)),
        // Never written, or torn while it was written (without a sync) by a creation
        // that was cut short.
        Err(BadDataHeader::Blank | BadDataHeader::Damaged(_)) => Some(None),
        _ => None,
    };
    let Some(known_id) = fresh_header.filter(|_| data_len <= DATA_HEADER_LEN) else {
        return MissingMetadataSnafu {
            data: dir.join(DATA_FILE),
            meta: dir.join(META_FILE),
        }
        .fail();
    };
    let id = known_id.unwrap_or_else(|| new_database_id(dir));
    let empty = Opened {
        log: None,
        entries: Vec::new(),
        validated: diagnosis::validate(&[], 0, &redo::Coverage::file(data_len))
            .map_err(|_| unreachable_state(dir))?,
        next_number: 0,
        generation: 0,
        file_id: id,
        recovery: None,
        unsynced: 0,
        stamp_slot: 1,
    };
    if options.read_only {
        return Ok(empty);
    }
    // Not synced: a crash before the first commit's data sync may leave the header
    // unwritten, which `data_header` takes for the creation cut short that it is.
    data.write_all_at(&data_header::encode_page(&id, 0), 0)
        .context(SysSnafu)?;
    let checkpoint = Record::new(0, RecordKind::Checkpoint, 0, Vec::new(), Vec::new());
    let log = MetaLog::create(
        dir,
        id,
        &checkpoint,
        min_log(options),
        options.hooks.clone(),
    )?;
    Ok(Opened {
        log: Some(log),
        ..empty
    })
}

/// The bytes of deltas before a checkpoint is considered; never so many that the log
/// could outgrow the bound readers hold it to.
fn min_log(options: &OpenOptions) -> u64 {
    options
        .checkpoint_after
        .unwrap_or(meta_log::MIN_LOG_BEFORE_CHECKPOINT)
        .min(2 * MAX_RECORD_SPAN)
}

/// An empty state always validates; this is only the error type's way of saying so.
fn unreachable_state(dir: &Path) -> Error {
    Error::Corrupt {
        path: dir.join(META_FILE),
        offset: 0,
        reason: "an empty database failed validation".to_owned(),
    }
}

/// A new database's id: unique with overwhelming probability (random keys of the
/// standard library's hasher, the time, the process, a counter and the path).
fn new_database_id(dir: &Path) -> DatabaseId {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut id = DatabaseId::default();
    for (half, bytes) in id.chunks_mut(8).enumerate() {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u128(nanos);
        hasher.write_u32(std::process::id());
        hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        hasher.write(dir.as_os_str().as_encoded_bytes());
        hasher.write_usize(half);
        bytes.copy_from_slice(&hasher.finish().to_le_bytes());
    }
    id
}

/// An id in hexadecimal, for messages.
pub(crate) fn hex(id: &DatabaseId) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}
