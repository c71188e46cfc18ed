//! How a [`LockedFile`](crate::LockedFile) is opened.

use std::fmt;

use crate::hooks::Hooks;

/// The advisory lock a [`LockedFile`](crate::LockedFile) holds for its whole life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lock {
    /// One holder only: the mode for a writer.
    #[default]
    Exclusive,
    /// Any number of shared holders, none exclusive: the mode for readers.
    Shared,
    /// No lock at all. [`DataFile`](crate::DataFile) refuses such a file:
    /// nothing would keep other handles from changing the bytes it maps.
    Unlocked,
}

/// Options for [`LockedFile::open`](crate::LockedFile::open).
///
/// The file is always opened for reading. `create` and `truncate` need
/// `write`; truncation happens only after the lock is held, so a locked file
/// is never truncated by a second opener.
#[derive(Clone, Default)]
pub struct FileOptions {
    /// The lock to take (non-blocking).
    pub lock: Lock,
    /// Open for writing too.
    pub write: bool,
    /// Create the file if it does not exist.
    pub create: bool,
    /// Truncate the file to zero bytes once the lock is held.
    pub truncate: bool,
    /// The observer told after every successful sync barrier on this file, and
    /// the fault injector asked before every write, length change and sync.
    pub hooks: Hooks,
}

impl FileOptions {
    /// Read and write, creating the file if missing, with an exclusive lock.
    pub fn read_write() -> Self {
        FileOptions {
            lock: Lock::Exclusive,
            write: true,
            create: true,
            truncate: false,
            hooks: Hooks::default(),
        }
    }

    /// Read only, with a shared lock.
    pub fn read_only() -> Self {
        FileOptions {
            lock: Lock::Shared,
            ..FileOptions::default()
        }
    }
}

impl fmt::Debug for FileOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileOptions")
            .field("lock", &self.lock)
            .field("write", &self.write)
            .field("create", &self.create)
            .field("truncate", &self.truncate)
            .field("hooks", &self.hooks)
            .finish()
    }
}
