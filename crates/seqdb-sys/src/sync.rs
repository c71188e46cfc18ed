//! Sync barriers: the kinds, the observer hook, and directory syncs.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use crate::error::{Result, io_error};
use crate::platform;

/// Which barrier completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncKind {
    /// The file's data (and the metadata needed to read it back) is durable.
    Data,
    /// The file's data and all of its metadata are durable.
    All,
    /// A directory's entries (created or renamed files) are durable.
    Directory,
}

/// A completed sync barrier, as told to a [`SyncObserver`].
#[derive(Debug, Clone, Copy)]
pub struct SyncEvent<'a> {
    /// The file or directory that was synced.
    pub path: &'a Path,
    /// Which barrier completed.
    pub kind: SyncKind,
}

/// Told after every successful sync barrier (file data sync, full sync,
/// directory sync). Tests use it to capture file images between barriers;
/// when `None` it costs one branch.
pub type SyncObserver = Arc<dyn Fn(SyncEvent<'_>) + Send + Sync>;

/// Tells `observer`, if any, that a barrier of `kind` completed on `path`.
pub(crate) fn notify(observer: Option<&SyncObserver>, path: &Path, kind: SyncKind) {
    if let Some(observer) = observer {
        observer(SyncEvent { path, kind });
    }
}

/// Syncs a directory, making the creation and renaming of files in it durable,
/// then tells `observer` ([`SyncKind::Directory`]).
pub fn sync_dir(dir: &Path, observer: Option<&SyncObserver>) -> Result<()> {
    let handle = File::open(dir).map_err(|e| io_error(dir, "open directory", 0, e))?;
    platform::sync_dir(&handle).map_err(|e| io_error(dir, "fsync directory", 0, e))?;
    notify(observer, dir, SyncKind::Directory);
    Ok(())
}

/// Renames `from` to `to` (replacing `to` atomically if it exists), then syncs
/// the directory holding `to` so that the rename survives a power cut.
pub fn rename_durably(from: &Path, to: &Path, observer: Option<&SyncObserver>) -> Result<()> {
    std::fs::rename(from, to).map_err(|e| io_error(from, "rename", 0, e))?;
    let parent = match to.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    sync_dir(parent, observer)
}
