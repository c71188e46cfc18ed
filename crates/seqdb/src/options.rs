//! How to open a database: read-write or read-only, recovering past damage or not, and
//! the optional test hooks (a sync observer and a fault injector).

use std::fmt;
use std::path::Path;

use seqdb_sys::{FaultInjector, Hooks, SyncObserver};

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
    pub(crate) recover: bool,
    pub(crate) hooks: Hooks,
    pub(crate) checkpoint_after: Option<u64>,
}

impl OpenOptions {
    /// Read-write, no observer, no fault injector.
    pub fn new() -> Self {
        Self::default()
    }

    /// Open with a shared lock and refuse every change. Several read-only handles may be
    /// open at once; a read-write handle excludes them.
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Recover past damage instead of refusing it.
    ///
    /// Without it, `open` returns the newest commit when the files look exactly as a
    /// crash may leave them (the last record torn, or not written yet), and otherwise
    /// fails with [`Error::Corrupt`](crate::Error::Corrupt) naming the file and offset.
    /// With it, damage to the metadata log is got past by keeping the newest commit
    /// that is still whole: the log is cut where it breaks (valid records after the
    /// break are dropped), a log cut short is kept as it is, and a data file older than
    /// its log rolls the log back to the data file's commit. The data file's header is
    /// then rewritten to that commit. What was found and done is in
    /// [`Database::recovery_report`](crate::Database::recovery_report); a read-only open changes nothing and reports what
    /// it would do.
    ///
    /// A data file that is not this database's (zeroed, random, another database's) and
    /// regions that do not fit their files are refused even so.
    pub fn recover(mut self, recover: bool) -> Self {
        self.recover = recover;
        self
    }

    /// Call `observer` after every sync barrier (data file, metadata file, directory).
    /// Crash tests use it to capture the files as a power cut at that moment would leave
    /// them.
    pub fn sync_observer(mut self, observer: SyncObserver) -> Self {
        self.hooks.observer = Some(observer);
        self
    }

    /// Ask `injector` before every write, length change and sync of the database's files,
    /// before the checkpoint's rename and before every directory sync; an `Err` it returns
    /// makes that operation fail with it, without running it. Tests use it to see how the
    /// database copes with a failing device: for example, the third data sync of the data
    /// file failing with `EIO`. Unset, it costs one branch per operation.
    ///
    /// A failed data sync, metadata write or sync, checkpoint rename or directory sync
    /// during a flush leaves the handle refusing every change with
    /// [`Error::Poisoned`](crate::Error::Poisoned) until the database is reopened.
    ///
    /// ```
    /// use std::io;
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use seqdb::{FaultInjector, FaultOp, OpenOptions};
    ///
    /// # fn main() -> seqdb::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let fail = Arc::new(AtomicBool::new(false));
    /// let armed = Arc::clone(&fail);
    /// let injector: FaultInjector = Arc::new(move |point| {
    ///     let data = point.path.file_name().is_some_and(|name| name == "data");
    ///     if data && point.op == FaultOp::SyncData && armed.swap(false, Ordering::Relaxed) {
    ///         return Err(io::Error::from_raw_os_error(5)); // EIO
    ///     }
    ///     Ok(())
    /// });
    /// let database = OpenOptions::new().fault_injector(injector).open(dir.path())?;
    /// let (number, _) = database.create_region_if_needed("log")?;
    /// database.write_all_to_region(number.into(), b"hello")?;
    /// fail.store(true, Ordering::Relaxed);
    /// assert!(database.flush().is_err());
    /// assert!(matches!(database.flush(), Err(seqdb::Error::Poisoned { .. })));
    /// # Ok(()) }
    /// ```
    pub fn fault_injector(mut self, injector: FaultInjector) -> Self {
        self.hooks.faults = Some(injector);
        self
    }

    /// Rewrite the metadata log as one checkpoint once its deltas pass both `bytes` and
    /// twice the last checkpoint (by default `bytes` is 1 MiB). Tests use small values to
    /// make rewrites frequent; the log's bound does not depend on it.
    #[doc(hidden)]
    pub fn checkpoint_after(mut self, bytes: u64) -> Self {
        self.checkpoint_after = Some(bytes);
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
            .field("recover", &self.recover)
            .field("observer", &self.hooks.observer.is_some())
            .field("fault_injector", &self.hooks.faults.is_some())
            .finish()
    }
}
