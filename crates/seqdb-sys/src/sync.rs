//! Sync barriers: the kinds, the observer hook, and directory syncs.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use crate::error::{Result, io_error};
use crate::hooks::{FaultOp, Hooks};
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

/// Syncs a directory, making the creation and renaming of files in it durable,
/// then tells the observer ([`SyncKind::Directory`]). The fault injector is
/// asked first ([`FaultOp::SyncDirectory`]).
pub fn sync_dir(dir: &Path, hooks: &Hooks) -> Result<()> {
    let op = FaultOp::SyncDirectory;
    let handle = File::open(dir).map_err(|e| io_error(dir, "open directory", 0, e))?;
    hooks
        .check(dir, op, 0)
        .and_then(|()| platform::sync_dir(&handle))
        .map_err(|e| io_error(dir, op.name(), 0, e))?;
    hooks.notify(dir, SyncKind::Directory);
    Ok(())
}

/// Renames `from` to `to` (replacing `to` atomically if it exists), then syncs
/// the directory holding `to` so that the rename survives a power cut. The
/// fault injector is asked before the rename ([`FaultOp::Rename`], naming
/// `from`) and before the directory sync.
pub fn rename_durably(from: &Path, to: &Path, hooks: &Hooks) -> Result<()> {
    let op = FaultOp::Rename;
    hooks
        .check(from, op, 0)
        .and_then(|()| std::fs::rename(from, to))
        .map_err(|e| io_error(from, op.name(), 0, e))?;
    let parent = match to.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    sync_dir(parent, hooks)
}
