//! The backup's directory: what it holds, and the order in which a backup changes it.
//!
//! A backup changes the directory only between two durable steps: first it writes the
//! marker file [`INCOMPLETE_MARKER`] (naming the database backed up) and syncs the
//! directory; then it writes region bytes, the data file's header and a new metadata
//! file (installed by a durable rename); and only once all of them are synced does it
//! delete the marker and sync the directory again. While the marker exists, `open` and
//! `check` refuse the directory, so a crash in between leaves a backup that is refused,
//! never one that mixes two states silently; a crash before the marker is durable
//! leaves the previous backup untouched.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use snafu::ResultExt;

use seqdb_sys::{FileOptions, Hooks, Lock, LockedFile};

use crate::database::DATA_FILE;
use crate::error::{DirectorySnafu, IncompleteBackupSnafu, NotABackupOfSnafu, SysSnafu};
use crate::format::{DatabaseId, Record, RegionEntry};
use crate::meta_log::{META_FILE, MIN_LOG_BEFORE_CHECKPOINT, MetaLog};
use crate::opening::{self, hex};
use crate::{Error, OpenOptions, Result, data_header};

/// The file whose presence marks a backup under way (or cut short) in its directory.
pub const INCOMPLETE_MARKER: &str = "backup.incomplete";
/// The marker is written here first, then renamed into place.
const MARKER_TMP: &str = "backup.incomplete.tmp";
/// What the marker file says before the id.
const MARKER_PREFIX: &str = "seqdb backup in progress of database ";

/// Refuse a directory that holds a backup cut short.
pub(crate) fn refuse_incomplete(dir: &Path) -> Result<()> {
    snafu::ensure!(
        !dir.join(INCOMPLETE_MARKER).exists(),
        IncompleteBackupSnafu { path: dir }
    );
    Ok(())
}

/// What the directory held before this backup.
enum Previous {
    /// Nothing: a new or empty directory.
    Nothing,
    /// A complete backup of the database, or a copy of it.
    Complete {
        generation: u64,
        entries: Vec<RegionEntry>,
    },
    /// A backup of the database that did not complete; `entries` are what its metadata
    /// says, if anything, and only a hint.
    Incomplete { entries: Vec<RegionEntry> },
}

/// The backup's directory, its data file locked exclusively while the backup runs.
pub(crate) struct Destination {
    dir: PathBuf,
    data: LockedFile,
    /// The data file's length before this backup.
    file_len: u64,
    previous: Previous,
    hooks: Hooks,
}

impl Destination {
    /// Open (or create) `dir` for a backup of database `id`: refuses another database's
    /// files, and a directory another handle has open.
    pub fn open(dir: &Path, id: &DatabaseId) -> Result<Self> {
        let hooks = Hooks::default();
        create_dir(dir, &hooks)?;
        let data_path = dir.join(DATA_FILE);
        let marker = read_marker(dir)?;
        if marker.is_none() && !data_path.exists() {
            // A backup cut short before its data file holds anything is marked too.
            write_marker(dir, id, &hooks)?;
        }
        let options = FileOptions {
            lock: Lock::Exclusive,
            write: true,
            create: true,
            truncate: false,
            hooks: hooks.clone(),
        };
        let data = LockedFile::open(&data_path, &options).map_err(|source| match source {
            seqdb_sys::Error::Locked { .. } => Error::AlreadyOpen {
                path: dir.to_owned(),
            },
            source => Error::sys(source),
        })?;
        let file_len = data.len().context(SysSnafu)?;
        let previous = match read_marker(dir)? {
            Some(found) if found != Some(*id) => {
                return NotABackupOfSnafu {
                    path: dir,
                    what: "an incomplete backup",
                    found: found.map_or_else(|| "(unreadable)".to_owned(), |f| hex(&f)),
                    expected: hex(id),
                }
                .fail();
            }
            Some(_) => Previous::Incomplete {
                entries: read_state(dir, &data, file_len)
                    .map(|(_, _, entries)| entries)
                    .unwrap_or_default(),
            },
            None if file_len == 0 && !dir.join(META_FILE).exists() => Previous::Nothing,
            None => {
                let (found, generation, entries) = read_state(dir, &data, file_len)?;
                snafu::ensure!(
                    found == *id,
                    NotABackupOfSnafu {
                        path: dir,
                        what: "a database or a backup",
                        found: hex(&found),
                        expected: hex(id),
                    }
                );
                Previous::Complete {
                    generation,
                    entries,
                }
            }
        };
        Ok(Destination {
            dir: dir.to_owned(),
            data,
            file_len,
            previous,
            hooks,
        })
    }

    /// The backup's data file.
    pub fn data(&self) -> &LockedFile {
        &self.data
    }

    /// The data file's length before this backup: nothing past it needs keeping.
    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// From where the data file held nothing before this backup.
    pub fn fresh_from(&self) -> u64 {
        match self.previous {
            Previous::Nothing => 0,
            _ => self.file_len,
        }
    }

    /// The regions of the previous backup, as a hint for placing the new one.
    pub fn previous_entries(&self) -> &[RegionEntry] {
        match &self.previous {
            Previous::Nothing => &[],
            Previous::Complete { entries, .. } | Previous::Incomplete { entries } => entries,
        }
    }

    /// The generation of the complete backup the directory held.
    pub fn previous_generation(&self) -> Option<u64> {
        match self.previous {
            Previous::Complete { generation, .. } => Some(generation),
            _ => None,
        }
    }

    /// Mark the backup under way, durably, before anything in the directory changes.
    pub fn begin(&mut self, id: &DatabaseId) -> Result<()> {
        write_marker(&self.dir, id, &self.hooks)
    }

    /// Give back to the file system the ranges `(offset, len)` of the data file that no
    /// region uses any more.
    pub fn punch(&self, ranges: &[(u64, u64)]) -> Result<()> {
        for &(offset, len) in ranges {
            self.data.punch_hole(offset, len).context(SysSnafu)?;
        }
        Ok(())
    }

    /// Write the data file's header and the metadata for `record`, sync them, and clear
    /// the marker: the backup is complete.
    pub fn finish(self, id: &DatabaseId, record: &Record, file_end: u64) -> Result<()> {
        self.data.set_len(file_end).context(SysSnafu)?;
        self.data
            .write_all_at(&data_header::encode_page(id, record.generation), 0)
            .context(SysSnafu)?;
        self.data.sync_all().context(SysSnafu)?;
        // Written to a temporary file, synced, and renamed into place durably.
        let log = MetaLog::create(
            &self.dir,
            *id,
            record,
            MIN_LOG_BEFORE_CHECKPOINT,
            self.hooks.clone(),
        )?;
        drop(log);
        let marker = self.dir.join(INCOMPLETE_MARKER);
        fs::remove_file(&marker).context(DirectorySnafu { path: &marker })?;
        seqdb_sys::sync_dir(&self.dir, &self.hooks).context(SysSnafu)?;
        Ok(())
    }
}

/// Create `dir` if it is missing, and make its entry durable.
fn create_dir(dir: &Path, hooks: &Hooks) -> Result<()> {
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => crate::error::NotADirectorySnafu { path: dir }.fail(),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            fs::create_dir_all(dir).context(DirectorySnafu { path: dir })?;
            let parent = dir
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            seqdb_sys::sync_dir(parent, hooks).context(SysSnafu)
        }
        Err(source) => Err(Error::Directory {
            path: dir.to_owned(),
            source,
        }),
    }
}

/// The marker, if there is one: `Some(None)` when it names no id this build can read.
fn read_marker(dir: &Path) -> Result<Option<Option<DatabaseId>>> {
    let path = dir.join(INCOMPLETE_MARKER);
    match fs::read_to_string(&path) {
        Ok(text) => Ok(Some(parse_marker(&text))),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) if e.kind() == ErrorKind::InvalidData => Ok(Some(None)),
        Err(source) => Err(Error::Directory { path, source }),
    }
}

fn parse_marker(text: &str) -> Option<DatabaseId> {
    let hex = text.strip_prefix(MARKER_PREFIX)?.trim_end();
    if hex.len() != 32 {
        return None;
    }
    let mut id = DatabaseId::default();
    for (i, byte) in id.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(id)
}

/// Write the marker naming database `id`: to a temporary file, synced, then renamed into
/// place and the directory synced.
fn write_marker(dir: &Path, id: &DatabaseId, hooks: &Hooks) -> Result<()> {
    let tmp = dir.join(MARKER_TMP);
    let file = LockedFile::open(
        &tmp,
        &FileOptions {
            lock: Lock::Unlocked,
            write: true,
            create: true,
            truncate: true,
            hooks: hooks.clone(),
        },
    )
    .context(SysSnafu)?;
    file.write_all_at(format!("{MARKER_PREFIX}{}\n", hex(id)).as_bytes(), 0)
        .context(SysSnafu)?;
    file.sync_all().context(SysSnafu)?;
    drop(file);
    seqdb_sys::rename_durably(&tmp, &dir.join(INCOMPLETE_MARKER), hooks).context(SysSnafu)
}

/// The database id, generation and regions the directory's files hold, read as a
/// read-only `open` reads them.
fn read_state(
    dir: &Path,
    data: &LockedFile,
    file_len: u64,
) -> Result<(DatabaseId, u64, Vec<RegionEntry>)> {
    // The backup's own directory, which no writer has open.
    let read_only = OpenOptions::new().read_only(true);
    let opened = opening::open_files(dir, data, file_len, &read_only, false)?;
    Ok((
        opened.file_id,
        opened.generation,
        opened
            .entries
            .into_iter()
            .map(|placed| placed.entry)
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_names_the_database() {
        let id: DatabaseId = *b"0123456789abcdef";
        let text = format!("{MARKER_PREFIX}{}\n", hex(&id));
        assert_eq!(parse_marker(&text), Some(id));
        assert_eq!(parse_marker(&text[..text.len() - 3]), None);
        assert_eq!(parse_marker("anything else"), None);
    }
}
