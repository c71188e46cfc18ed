//! The one error type of the crate; every variant names what it concerns.
//!
//! The failures of the platform layer and of the allocator reach callers as
//! [`IoError`] and [`LayoutError`]: types of this crate, so that what the crates
//! beneath report can change without changing this crate's API.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use snafu::Snafu;

/// The result of every fallible seqdb operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong, with the path, region and offset involved.
#[derive(Debug, Snafu)]
#[snafu(visibility(pub(crate)))]
#[non_exhaustive]
pub enum Error {
    /// A system call on one of the database's files failed (the message names the file,
    /// the operation and the offset; a full disk shows up here).
    #[snafu(display("{source}"))]
    Sys {
        /// What the platform layer reported: the file, the operation, the offset and
        /// the operating system's error.
        #[snafu(source(from(seqdb_sys::Error, IoError::new)))]
        source: IoError,
    },

    /// Another process or another handle in this process has the database open.
    #[snafu(display("database {} is already open by another process or handle", path.display()))]
    AlreadyOpen {
        /// The database directory.
        path: PathBuf,
    },

    /// The database directory could not be created or inspected.
    #[snafu(display("cannot create or read database directory {}: {source}", path.display()))]
    Directory {
        /// The database directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// The database path exists but is not a directory.
    #[snafu(display("{} is not a directory, so it cannot hold a database", path.display()))]
    NotADirectory {
        /// The path given to `open`.
        path: PathBuf,
    },

    /// The metadata or data file is not a seqdb file of that kind.
    #[snafu(display("{} is not a seqdb {kind} file", path.display()))]
    ForeignFile {
        /// The file.
        path: PathBuf,
        /// Which of the database's files it should be: `"metadata"` or `"data"`.
        kind: &'static str,
    },

    /// The metadata or data file was written by a format version this build does not
    /// read. The message says how to carry the data over.
    #[snafu(display(
        "{} has format version {found}; this build reads version {supported}. {}",
        path.display(),
        crate::error::carry_over(*found, *supported)
    ))]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version found in the file.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },

    /// The metadata file is longer than any log this build writes, so it is not one.
    #[snafu(display(
        "{} is corrupt at offset {max}: it is {len} bytes long, longer than any metadata \
         log this build writes ({max} bytes)",
        path.display()
    ))]
    MetaTooLarge {
        /// The metadata file.
        path: PathBuf,
        /// Its length.
        len: u64,
        /// The longest log this build writes.
        max: u64,
    },

    /// A commit record would be longer than any reader takes back, so it is not written.
    #[snafu(display(
        "a commit record of {body_len} bytes for {} is longer than the {max} bytes a \
         record may hold",
        path.display()
    ))]
    RecordTooLarge {
        /// The metadata file.
        path: PathBuf,
        /// The record body's length.
        body_len: u64,
        /// The longest body a record may have.
        max: u64,
    },

    /// The metadata holds no valid commit, or contradicts itself or the data file.
    #[snafu(display("{} is corrupt at offset {offset}: {reason}", path.display()))]
    Corrupt {
        /// The file found corrupt.
        path: PathBuf,
        /// Where in that file the problem was found.
        offset: u64,
        /// What is wrong.
        reason: String,
    },

    /// Opened read-only, the data file does not hold bytes that the last commits carried
    /// in the metadata log: the database was not closed cleanly, and the system lost
    /// writes that had not reached the device, or bytes were overwritten in place after
    /// the last flush. A read-write open writes the committed bytes again.
    #[snafu(display(
        "{}: bytes of the last commits are missing at offset {offset} (the database was not \
         closed cleanly); open it read-write once to restore them",
        path.display()
    ))]
    NeedsRecovery {
        /// The data file.
        path: PathBuf,
        /// The first byte found missing.
        offset: u64,
    },

    /// The data file exists but its metadata is missing, so its regions cannot be known.
    #[snafu(display(
        "{} holds data but its metadata file {} is missing",
        data.display(),
        meta.display()
    ))]
    MissingMetadata {
        /// The data file.
        data: PathBuf,
        /// The metadata file that should exist.
        meta: PathBuf,
    },

    /// The directory holds a backup that was cut short (a crash or a kill during
    /// [`Database::backup`](crate::Database::backup)): its files may mix two backups, so it
    /// is not opened. Running the backup into it again completes it.
    #[snafu(display(
        "{} holds a backup that did not complete; run the backup into it again, or delete it",
        path.display()
    ))]
    IncompleteBackup {
        /// The backup's directory.
        path: PathBuf,
    },

    /// A backup was asked to write into a directory that holds another database, or a
    /// backup of another one (their ids differ).
    #[snafu(display(
        "{} holds {what} of database {found}, not of database {expected}: \
         back up into a new directory",
        path.display()
    ))]
    NotABackupOf {
        /// The backup's directory.
        path: PathBuf,
        /// What the directory holds ("a backup", "an incomplete backup", "files").
        what: &'static str,
        /// The id of the database the directory belongs to, in hexadecimal.
        found: String,
        /// The id of the database being backed up, in hexadecimal.
        expected: String,
    },

    /// No region has this name or number.
    #[snafu(display("no region {region} in {}", path.display()))]
    UnknownRegion {
        /// The database directory.
        path: PathBuf,
        /// The name or number asked for.
        region: String,
    },

    /// A region with this name already exists.
    #[snafu(display("a region named {name:?} already exists in {}", path.display()))]
    RegionExists {
        /// The database directory.
        path: PathBuf,
        /// The name in use.
        name: String,
    },

    /// The name cannot be stored (longer than 1,024 bytes).
    #[snafu(display(
        "region name of {len} bytes is longer than the {} bytes allowed",
        crate::format::MAX_NAME_LEN
    ))]
    NameTooLong {
        /// The name's length in bytes.
        len: usize,
    },

    /// An offset lies past the end of a region.
    #[snafu(display("offset {offset} is past the end of region {region} (length {len})"))]
    OffsetPastEnd {
        /// The region's name.
        region: String,
        /// The offset asked for.
        offset: u64,
        /// The region's length.
        len: u64,
    },

    /// A truncation asked for a length larger than the region's.
    #[snafu(display("cannot truncate region {region} to {requested} bytes: it holds only {len}"))]
    TruncatePastEnd {
        /// The region's name.
        region: String,
        /// The length asked for.
        requested: u64,
        /// The region's length.
        len: u64,
    },

    /// A read asked for bytes past the end of a region.
    #[snafu(display(
        "bytes {offset}..{end} are out of range for region {region} (length {len})",
        end = offset.saturating_add(*requested)
    ))]
    ReadOutOfRange {
        /// The region's name.
        region: String,
        /// The first byte asked for.
        offset: u64,
        /// How many bytes were asked for.
        requested: u64,
        /// The region's length.
        len: u64,
    },

    /// A region would grow past what a file can address.
    #[snafu(display("region {region} cannot grow to {requested} bytes"))]
    TooLarge {
        /// The region's name.
        region: String,
        /// The length it would have had.
        requested: u64,
    },

    /// Compaction needs every region to itself at once, and a region stayed in use (a
    /// writer held it; readers never do) for as long as it waited.
    #[snafu(display(
        "region {region} of {} stayed in use; compaction needs every region at once",
        path.display()
    ))]
    Busy {
        /// The database directory.
        path: PathBuf,
        /// The region that stayed in use.
        region: String,
    },

    /// The database holds as many regions as it can number.
    #[snafu(display("{} already holds {limit} regions, the most it can number", path.display()))]
    TooManyRegions {
        /// The database directory.
        path: PathBuf,
        /// The number of regions a database can hold.
        limit: u64,
    },

    /// Every slot of the readers file is taken by a live read-only handle.
    #[snafu(display(
        "database {} already has {limit} read-only handles open, the most its readers file \
         holds",
        path.display()
    ))]
    TooManyReaders {
        /// The database directory.
        path: PathBuf,
        /// The number of read-only handles that can be open at once.
        limit: u64,
    },

    /// The database was opened read-only.
    #[snafu(display("database {} is open read-only", path.display()))]
    ReadOnly {
        /// The database directory.
        path: PathBuf,
    },

    /// An earlier failure left the database's files in a state this handle cannot know,
    /// so it refuses every change (writes, flushes, punching, compaction, truncation,
    /// creating, removing and renaming regions, sizing the file) until the database is
    /// reopened; reading still works. Opening it again recovers the last commit the files
    /// hold: the last successful flush, or the failed one if its record reached the file.
    ///
    /// What poisons a handle: a failed sync of the data file, a failed write or sync of
    /// the metadata, a failed checkpoint rename or directory sync (a kernel may drop the
    /// pages it could not write and report a later sync as successful, so a failed sync
    /// cannot be retried), a failed move of region bytes (the layout in memory no longer
    /// matches the file), and a failed shrink or sync at the end of compaction. A failed
    /// write of appended or overwritten bytes does not (a full disk, say): the bytes not
    /// written stay in memory, or the call reports them unwritten, and the next flush
    /// writes what it holds. The first failure is this error's source, so
    /// [`Error::is_no_space`] tells a handle poisoned by a full disk.
    #[snafu(display(
        "database {} refuses changes until it is reopened, after {source}",
        path.display()
    ))]
    Poisoned {
        /// The database directory.
        path: PathBuf,
        /// The first failure, naming the file and the operation.
        source: IoError,
    },

    /// The allocator rejected an operation or the stored layout is invalid.
    #[snafu(display("invalid layout in {}: {source}", path.display()))]
    Layout {
        /// The database directory.
        path: PathBuf,
        /// What the allocator reported.
        #[snafu(source(from(seqdb_layout::LayoutError, LayoutError::new)))]
        source: LayoutError,
    },
}

/// How to carry a database of format `found` over to this build's `supported` one.
pub(crate) fn carry_over(found: u32, supported: u32) -> &'static str {
    if found < supported {
        "Formats are not upgraded in place: read every region with the seqdb build that \
         wrote the database (for example its `seqdb ls` and `seqdb cat`) and write them \
         into a new database with this build (`seqdb put`)."
    } else {
        "It was written by a newer seqdb build: open it with that build, or copy its \
         regions into a database this build made."
    }
}

impl Error {
    /// Whether the error comes from a full disk (or an exhausted quota), including a
    /// handle that refuses changes since a full disk made a flush fail.
    pub fn is_no_space(&self) -> bool {
        match self {
            Error::Sys { source } | Error::Poisoned { source, .. } => source.is_no_space(),
            _ => false,
        }
    }
}

impl Error {
    /// The error for a failure of the platform layer.
    pub(crate) fn sys(source: seqdb_sys::Error) -> Self {
        Error::Sys {
            source: IoError::new(source),
        }
    }
}

/// A failed or refused operation on one of the database's files: the data file, the
/// metadata file or the database directory.
///
/// It names the file ([`path`](Self::path)), the operation
/// ([`operation`](Self::operation)) and the offset ([`offset`](Self::offset)), and says
/// what kind of failure it was ([`kind`](Self::kind), [`raw_os_error`](Self::raw_os_error),
/// [`is_no_space`](Self::is_no_space)). Its [`source`](std::error::Error::source) is the
/// operating system's [`io::Error`] when there is one. Its fields are private, so more
/// can be told about a failure later without a breaking change.
#[derive(Clone)]
pub struct IoError {
    inner: seqdb_sys::Error,
}

impl IoError {
    /// Wraps what the platform layer reported.
    pub(crate) fn new(inner: seqdb_sys::Error) -> Self {
        IoError { inner }
    }

    /// What the platform layer reported, for this crate's own decisions.
    pub(crate) fn sys(&self) -> &seqdb_sys::Error {
        &self.inner
    }

    /// The file or directory the failure concerns.
    pub fn path(&self) -> &Path {
        self.inner.path()
    }

    /// The operation that failed, as the message names it (for example `"write"`,
    /// `"fdatasync"`, `"open"` or `"mmap"`), when the failure was a system call.
    pub fn operation(&self) -> Option<&'static str> {
        self.inner.operation()
    }

    /// The file offset the operation was working at (0 for a system call that has
    /// none), or the start of the byte range it was refused for; `None` when the
    /// failure concerns the whole file (another handle holds its lock, say).
    pub fn offset(&self) -> Option<u64> {
        self.inner.offset()
    }

    /// The kind of failure: the operating system's for a failed system call (for
    /// example [`StorageFull`](io::ErrorKind::StorageFull) or
    /// [`PermissionDenied`](io::ErrorKind::PermissionDenied));
    /// [`ResourceBusy`](io::ErrorKind::ResourceBusy) when another handle holds the
    /// file's lock or a reader holds the bytes; [`InvalidInput`](io::ErrorKind::InvalidInput)
    /// for a request the platform layer refuses.
    pub fn kind(&self) -> io::ErrorKind {
        self.inner.kind()
    }

    /// The operating system's error code (`errno`), when a system call failed.
    pub fn raw_os_error(&self) -> Option<i32> {
        self.inner.raw_os_error()
    }

    /// Whether the file system ran out of space or quota (`ENOSPC` or `EDQUOT`).
    pub fn is_no_space(&self) -> bool {
        self.inner.is_no_space()
    }
}

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

impl fmt::Debug for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IoError")
            .field("path", &self.path())
            .field("operation", &self.operation())
            .field("offset", &self.offset())
            .field("kind", &self.kind())
            .field("raw_os_error", &self.raw_os_error())
            .field("message", &self.to_string())
            .finish()
    }
}

impl std::error::Error for IoError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .io_error()
            .map(|error| error as &(dyn std::error::Error + 'static))
    }
}

/// The allocator rejected an operation, or the regions stored in the metadata do not
/// form a valid layout (overlapping, misaligned, or reaching past the data file).
///
/// The message says what is wrong; [`region_number`](Self::region_number) and
/// [`offset`](Self::offset) say where. Its fields are private, so more can be told
/// later without a breaking change.
#[derive(Clone, PartialEq, Eq)]
pub struct LayoutError {
    inner: seqdb_layout::LayoutError,
}

impl LayoutError {
    /// Wraps what the allocator reported.
    pub(crate) fn new(inner: seqdb_layout::LayoutError) -> Self {
        LayoutError { inner }
    }

    /// The number of the region the error concerns (for two overlapping regions, the
    /// one starting first), if it concerns one.
    pub fn region_number(&self) -> Option<usize> {
        self.inner.key().and_then(|key| usize::try_from(key).ok())
    }

    /// The offset in the data file where the problem lies, if it has one.
    pub fn offset(&self) -> Option<u64> {
        self.inner.offset()
    }
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

impl fmt::Debug for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LayoutError")
            .field("region_number", &self.region_number())
            .field("offset", &self.offset())
            .field("message", &self.to_string())
            .finish()
    }
}

impl std::error::Error for LayoutError {}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use snafu::ResultExt;

    use super::*;

    /// `ENOSPC`.
    const NO_SPACE: i32 = 28;

    fn failed_write(code: i32) -> seqdb_sys::Error {
        seqdb_sys::Error::Io {
            path: PathBuf::from("db/data"),
            op: "write",
            offset: 8192,
            source: io::Error::from_raw_os_error(code),
        }
    }

    #[test]
    fn an_io_error_tells_path_operation_offset_and_kind() {
        let result: std::result::Result<(), _> = Err(failed_write(NO_SPACE));
        let error = result.context(SysSnafu).unwrap_err();
        assert!(error.is_no_space());
        let Error::Sys { source } = &error else {
            panic!("expected Sys, got {error:?}");
        };
        assert_eq!(source.path(), Path::new("db/data"));
        assert_eq!(source.operation(), Some("write"));
        assert_eq!(source.offset(), Some(8192));
        assert_eq!(source.kind(), io::ErrorKind::StorageFull);
        assert_eq!(source.raw_os_error(), Some(NO_SPACE));
        assert!(source.is_no_space());
        assert_eq!(error.to_string(), source.to_string());
        assert!(
            source
                .to_string()
                .starts_with("write db/data at offset 8192: ")
        );
        let os = source.source().expect("the operating system's error");
        assert!(os.downcast_ref::<io::Error>().is_some());
        let copy = source.clone();
        assert_eq!(copy.to_string(), source.to_string());
        let debug = format!("{source:?}");
        assert!(debug.starts_with("IoError {"), "{debug}");
        assert!(debug.contains("StorageFull"), "{debug}");
    }

    #[test]
    fn poisoned_by_a_full_disk_is_no_space() {
        let poisoned = Error::Poisoned {
            path: PathBuf::from("db"),
            source: IoError::new(failed_write(NO_SPACE)),
        };
        assert!(poisoned.is_no_space());
        let other = Error::sys(failed_write(5));
        assert!(!other.is_no_space());
        assert_eq!(
            other.source().map(ToString::to_string),
            Some(failed_write(5).to_string())
        );
    }

    #[test]
    fn a_layout_error_tells_region_and_offset() {
        let result: std::result::Result<(), _> = Err(seqdb_layout::LayoutError::Overlap {
            first: 2,
            second: 5,
            first_end: 12288,
            second_start: 8192,
        });
        let error = result
            .context(LayoutSnafu {
                path: PathBuf::from("db"),
            })
            .unwrap_err();
        let Error::Layout { source, .. } = &error else {
            panic!("expected Layout, got {error:?}");
        };
        assert_eq!(source.region_number(), Some(2));
        assert_eq!(source.offset(), Some(8192));
        assert!(
            error
                .to_string()
                .starts_with("invalid layout in db: regions 2 and 5")
        );
        assert_eq!(source.clone(), *source);
        assert!(format!("{source:?}").starts_with("LayoutError {"));
    }
}
