//! The one error type of the crate; every variant names what it concerns.

use std::path::PathBuf;

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
        /// What the platform layer reported.
        source: seqdb_sys::Error,
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

    /// The metadata file is not a seqdb metadata file.
    #[snafu(display("{} is not a seqdb metadata file", path.display()))]
    ForeignFile {
        /// The metadata file.
        path: PathBuf,
    },

    /// The metadata file was written by a format version this build does not read.
    #[snafu(display(
        "{} has format version {found}; this build reads version {supported}",
        path.display()
    ))]
    UnsupportedVersion {
        /// The metadata file.
        path: PathBuf,
        /// The version found in the file.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
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

    /// The name cannot be stored (longer than 65,535 bytes).
    #[snafu(display("region name of {len} bytes is longer than the 65535 bytes allowed"))]
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
        source: seqdb_sys::Error,
    },

    /// The allocator rejected an operation or the stored layout is invalid.
    #[snafu(display("invalid layout in {}: {source}", path.display()))]
    Layout {
        /// The database directory.
        path: PathBuf,
        /// What the allocator reported.
        source: seqdb_layout::LayoutError,
    },
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

impl From<seqdb_sys::Error> for Error {
    fn from(source: seqdb_sys::Error) -> Self {
        Error::Sys { source }
    }
}
