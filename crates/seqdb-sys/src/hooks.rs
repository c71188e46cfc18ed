//! Test hooks around the operations that decide durability: a fault injector
//! consulted before each of them, and the sync observer told after each barrier.

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

use crate::sync::{SyncEvent, SyncKind, SyncObserver};

/// An operation the [`FaultInjector`] is asked about before it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FaultOp {
    /// A positional write (`pwrite`) to a file, of the data file or the metadata.
    Write,
    /// Setting a file's length (`ftruncate`).
    SetLen,
    /// A data sync of a file (`fdatasync`; `F_FULLFSYNC` on Apple systems).
    SyncData,
    /// A full sync of a file (`fsync`; `F_FULLFSYNC` on Apple systems).
    SyncAll,
    /// A sync of a directory, which makes files created or renamed in it durable.
    SyncDirectory,
    /// A rename (of [`rename_durably`](crate::rename_durably)), before its
    /// directory is synced.
    Rename,
}

impl FaultOp {
    /// The name errors use for the operation, for example `"fdatasync"`.
    pub fn name(self) -> &'static str {
        match self {
            FaultOp::Write => "write",
            FaultOp::SetLen => "ftruncate",
            FaultOp::SyncData => "fdatasync",
            FaultOp::SyncAll => "fsync",
            FaultOp::SyncDirectory => "fsync directory",
            FaultOp::Rename => "rename",
        }
    }
}

impl fmt::Display for FaultOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where an operation is about to run, as told to a [`FaultInjector`].
#[derive(Debug, Clone, Copy)]
pub struct FaultPoint<'a> {
    /// The file or directory the operation works on (for a rename, the source).
    pub path: &'a Path,
    /// The operation.
    pub op: FaultOp,
    /// The file offset it works at (a write's offset, a new length; 0 otherwise).
    pub offset: u64,
}

/// Asked before every [`FaultOp`]: `Ok(())` lets the operation run, `Err(e)`
/// makes it fail with `e` without running it (the caller sees the same error,
/// naming the path and operation, as a real failure would give). Tests use it to make, say, the third data sync of a
/// file fail with `EIO`; when `None` it costs one branch.
///
/// ```
/// use std::io;
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use seqdb_sys::{FaultInjector, FaultOp};
///
/// // The third data sync of a file named `data` fails with EIO; nothing else does.
/// let seen = AtomicU64::new(0);
/// let injector: FaultInjector = Arc::new(move |point| {
///     let data = point.path.file_name().is_some_and(|name| name == "data");
///     if data && point.op == FaultOp::SyncData && seen.fetch_add(1, Ordering::Relaxed) == 2 {
///         return Err(io::Error::from_raw_os_error(5)); // EIO
///     }
///     Ok(())
/// });
/// # let _ = injector;
/// ```
pub type FaultInjector = Arc<dyn Fn(FaultPoint<'_>) -> io::Result<()> + Send + Sync>;

/// The test hooks of a file or a directory operation: a [`SyncObserver`]
/// told after every successful barrier and a [`FaultInjector`] asked before
/// every [`FaultOp`]. The default has neither, and then each hook costs one
/// branch.
#[derive(Clone, Default)]
pub struct Hooks {
    /// Told after every successful sync barrier.
    pub observer: Option<SyncObserver>,
    /// Asked before every write, length change, sync and rename.
    pub faults: Option<FaultInjector>,
}

impl Hooks {
    /// Hooks with only an observer.
    pub fn observed(observer: SyncObserver) -> Self {
        Hooks {
            observer: Some(observer),
            faults: None,
        }
    }

    /// Asks the injector, if any, whether `op` on `path` may run.
    #[inline]
    pub(crate) fn check(&self, path: &Path, op: FaultOp, offset: u64) -> io::Result<()> {
        match &self.faults {
            None => Ok(()),
            Some(faults) => faults(FaultPoint { path, op, offset }),
        }
    }

    /// Tells the observer, if any, that a barrier of `kind` completed on `path`.
    #[inline]
    pub(crate) fn notify(&self, path: &Path, kind: SyncKind) {
        if let Some(observer) = &self.observer {
            observer(SyncEvent { path, kind });
        }
    }
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks")
            .field("observer", &self.observer.as_ref().map(|_| "Fn(SyncEvent)"))
            .field(
                "faults",
                &self.faults.as_ref().map(|_| "Fn(FaultPoint) -> io::Result"),
            )
            .finish()
    }
}
