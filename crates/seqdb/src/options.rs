//! How to open a database: read-write or read-only, and an optional sync observer.

use std::fmt;
use std::path::Path;

use seqdb_sys::SyncObserver;

use crate::{Database, Result};

/// Options for opening a [`Database`]; [`Database::open`] uses the defaults.
///
/// ```no_run
/// # fn main() -> seqdb::Result<()> {
/// let database = seqdb::OpenOptions::new().read_only(true).open("my_db".as_ref())?;
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
pub struct OpenOptions {
    pub(crate) read_only: bool,
    pub(crate) observer: Option<SyncObserver>,
}

impl OpenOptions {
    /// Read-write, no observer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Open with a shared lock and refuse every change. Several read-only handles may be
    /// open at once; a read-write handle excludes them.
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Call `observer` after every sync barrier (data file, metadata file, directory).
    /// Crash tests use it to capture the files as a power cut at that moment would leave
    /// them.
    pub fn sync_observer(mut self, observer: SyncObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Open (and, read-write, create if needed) the database in directory `path`.
    pub fn open(&self, path: &Path) -> Result<Database> {
        Database::open_with(path, self)
    }
}

impl fmt::Debug for OpenOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenOptions")
            .field("read_only", &self.read_only)
            .field("observer", &self.observer.is_some())
            .finish()
    }
}
