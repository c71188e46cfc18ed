//! An embedded store of many named, growable byte regions in one file.
//!
//! A database is a directory holding a data file (the regions' bytes) and a metadata
//! file (where each region lives). Regions are appended to at memory speed, read
//! zero-copy through a memory map, made durable with one [`Database::flush`], and the
//! space they no longer use is given back to the file system by hole punching.
//!
//! ```
//! use std::path::Path;
//! use seqdb::{Database, PAGE_SIZE, Result};
//!
//! fn main() -> Result<()> {
//! #   let _ = std::fs::remove_dir_all("my_db");
//!     let database = Database::open(Path::new("my_db"))?;
//!     let (region_id, _) = database.create_region_if_needed("my_region")?;
//!     database.write_all_to_region(region_id.into(), b"Hello, world!")?;
//!     database.write_all_to_region_at(region_id.into(), b"Hi", 0)?;
//!     let reader = database.create_region_reader(region_id.into())?;
//!     let data = reader.read_all();            // b"Hillo, world!"
//! #   assert_eq!(data, b"Hillo, world!");
//!     drop(reader);
//!     database.truncate_region(region_id.into(), 5)?;   // now b"Hillo"
//!     database.flush_then_punch()?;
//! #   assert_eq!(database.create_region_reader(region_id.into())?.read_all(), b"Hillo");
//! #   assert_eq!(PAGE_SIZE, 4096);
//! #   drop(database);
//! #   std::fs::remove_dir_all("my_db").unwrap();
//!     Ok(())
//! }
//! ```
//!
//! # Durability
//!
//! After [`Database::flush`] returns `Ok`, the state at that moment survives a process
//! crash, a kernel crash or a power cut: [`Database::open`] then returns, for every
//! region, the length, placement, name and bytes of the last successful flush. Appends
//! made after it are not visible. Bytes written *inside* a region's committed length
//! after the flush (by [`Database::write_all_to_region_at`], or by appending after a
//! [`Database::truncate_region`]) may read back old or new, page by page. The commit is
//! a checksummed metadata record; a small commit carries the bytes it wrote in it and
//! costs one device sync (an open writes them again where a power cut took them from
//! the data file), a larger one syncs the data file first. See `docs/FORMAT.md`, and
//! [`check_data`] for the scrub of every region's bytes against their chunk checksums.
//! A flush racing other threads records the state at one instant (names unique, every
//! region's name, placement and length at one point of its history; bytes overwritten
//! in place while it runs may reach the disk with it, page by page).
//!
//! Dropping the last handle of a read-write database flushes, as a `BufWriter` does,
//! ignoring an error; [`Database::close`] flushes and reports it. A process kill or a
//! power cut returns the database to its last successful flush.
//!
//! # Errors, not crashes
//!
//! A full disk, a damaged or foreign metadata file, a second opener, or bad arguments
//! give an [`Error`] naming the path, region and offset involved. A failed system call
//! is an [`Error::Sys`] whose [`IoError`] tells the file, the operation, the offset and
//! the [`std::io::ErrorKind`]; [`Error::is_no_space`] tells a full disk. Nothing is ever
//! written through the memory map, so a full disk cannot raise `SIGBUS`.
//!
//! Opening damaged files ends one of two ways. When they look exactly as a crash leaves
//! them (the last commit record torn, or not written yet), `open` returns the newest
//! commit a crash could have left. Any other damage (a metadata log cut short or broken
//! before valid records, a zeroed, random or foreign data file, crafted values beyond
//! the format's bounds) is refused with [`Error::Corrupt`] or another error naming the
//! file and the offset; [`OpenOptions::recover`] gets past it explicitly, and
//! [`check`] lists every finding.
//!
//! A failed sync is final for the handle: after a flush's data sync, metadata write or
//! sync, checkpoint rename or directory sync fails, the flush returns that error and the
//! handle refuses every later change with [`Error::Poisoned`] (a kernel may drop the
//! pages it could not write and report the next sync as successful, so retrying would
//! commit bytes that never reached the device). Reopening the database recovers the last
//! commit its files hold. A failed write of region bytes is not final: the next flush
//! writes them again. [`OpenOptions::fault_injector`] makes such failures happen on
//! demand, for tests.
//!
//! # Safety of the memory map
//!
//! Reads are zero-copy: a [`Reader`] hands out `&[u8]` slices that point straight into
//! a read-only, shared memory map of the data file. This crate keeps those slices sound
//! against everything it does itself: no write, truncation, hole punch or compaction
//! touches bytes a live reader holds (a write that would moves the region first, and the
//! space it left is reused only after its last reader is gone), and nothing is ever
//! written through the map.
//!
//! What it cannot control is another writer of the file. While a database is open, every
//! handle of this crate holds advisory locks: on Linux, the read-write handle an
//! open-file-description lock on a byte of the `readers` file (see [Reader
//! processes](#reader-processes)) and a shared `flock` on the data file; elsewhere an
//! exclusive `flock` on the data file, and read-only handles a shared one. Every handle
//! of this crate honours them, so a second writer gets [`Error::AlreadyOpen`]. But the
//! locks are only advisory. **Another process, or another handle in this one (a `std::fs::File`, a
//! shell's `>`, an editor, a sync tool), that writes or truncates the data file while
//! the database is open** changes bytes under a `&[u8]` that Rust assumes cannot
//! change, and a truncation makes reading a slice of the removed range raise `SIGBUS`,
//! which kills the process. So:
//!
//! - change a database's files (`data`, `meta`) only through this crate, and do not
//!   replace, truncate or restore them while any handle has the database open;
//! - back a database up with [`Database::backup`], which copies the last commit while
//!   writers go on; copy its files by other means only while no read-write handle has
//!   it open (holding a read-only handle keeps writers out meanwhile);
//! - do not open a database on a file system that another machine can change under
//!   this one (a network file system shared with a writer elsewhere).
//!
//! # Concurrency
//!
//! [`Database`] is `Clone + Send + Sync`. Writers to different regions proceed in
//! parallel; creating, growing past the reservation, removing and compacting take a
//! short exclusive lock on the region table. A [`Reader`] is a snapshot: it shows the
//! bytes and length its region had when it was made, holds no lock, and nothing waits for
//! it. Appends to its region proceed (growth and moves included); an overwrite or a
//! truncation inside the bytes it shows first copies the region elsewhere; removal,
//! renaming and compaction proceed too. A thread may write to a region while it holds a
//! reader of it. A reader made after a change, on any thread, shows the change.
//!
//! Space a region left while readers still view it is *retired*, and reused or punched
//! only after the last of those readers is dropped (at the next flush or punch):
//! [`Stats::retired_bytes`] counts it. Making a reader of a region that has not changed
//! since the last reader of it costs an `Arc` clone and no lock.
//!
//! # Reader processes
//!
//! On Linux, [`Database::open_read_only`] succeeds while another process, or another
//! handle in this one, has the database open read-write. The read-only handle sees the
//! writer's last commit whole (every region at that one generation: the metadata log is
//! read up to its last complete record, and a record the writer is still appending is
//! simply not committed yet), and keeps seeing that commit for as long as it lives: its
//! readers' bytes stay right while the writer appends, removes, compacts and punches.
//! **To see newer commits, open a new read-only handle**; opening costs reading the log
//! (a checkpoint and the deltas since, at most a few times the checkpoint). There is no
//! refresh of a handle in place: a handle is one generation, and the [`Reader`]s made
//! from it are snapshots of that generation.
//!
//! Each read-only handle takes a slot in the `readers` file of the database directory
//! (256 slots), locked for as long as the handle lives and naming the generation it
//! views. The writer keeps the space each commit frees (it is neither reused nor punched)
//! until no live slot names an older generation; it reads the table only when space is
//! waiting, after a commit and before a punch. The kernel drops the lock of a process
//! that dies, so a killed reader stops counting at once, and the space it held comes back
//! at the writer's next flush that frees space or its next punch. A reader that stays
//! alive holds its space as long as it lives: [`Database::reader_table`] (and `seqdb
//! info`) lists the reader processes with their generations and the bytes the writer
//! keeps for them.
//!
//! Bytes the writer changes *inside* a region's committed length are the exception: an
//! overwrite, and a truncation (with the appends over the cut-off bytes, or the punch
//! that gives them back, after the next flush) are visible to reader processes as they
//! happen, page by page, as the durability contract already allows for a crash; only
//! the copy-on-write of the writer's own [`Reader`]s hides them. Appends, growth, moves,
//! removal, compaction and punching of space a region left never change what a reader
//! process sees.
//!
//! Locks: one read-write handle at a time, in any process (a second gets
//! [`Error::AlreadyOpen`], from this process too); read-only handles of this process
//! and of others coexist with it and with each other, each with a slot of its own. A
//! read-only handle needs write access to the `readers` file (the first open creates
//! it). Elsewhere than Linux the platform lacks the locks this needs, and read-only
//! handles and the writer exclude each other as before: [`Error::AlreadyOpen`].
//!
//! # Cost model
//!
//! A small append is a copy into an in-memory tail plus bookkeeping, written to the
//! file in batches; a large append is one `pwrite`. A thread that keeps appending to one
//! region by number is lent a buffer by it, and its appends then take no lock at all.
//! A flush costs the regions changed since the last one (plus a look at each region
//! with a lent buffer, at most one per appending thread), and open costs the number of
//! regions.
#![forbid(unsafe_code)]

mod backup;
mod beside_writer;
mod check;
mod commit;
mod data_header;
mod database;
mod diagnosis;
mod error;
mod fast_append;
mod format;
#[cfg(test)]
mod format_reference;
mod free_numbers;
mod identifier;
mod io;
mod log_read;
mod maintenance;
mod meta_log;
mod name;
mod name_index;
mod opening;
mod options;
mod place;
mod reader;
mod reader_release;
mod readers_file;
mod recovery;
mod redo;
mod region;
mod replay;
mod retired;
mod scrub;
mod snapshot;
mod stats;
mod sums;
mod tail;
mod write;

pub use backup::{BACKUP_CHUNK, BackupStats, INCOMPLETE_MARKER};
pub use check::{CheckReport, check, check_data};
pub use database::Database;
pub use error::{Error, IoError, LayoutError, Result};
pub use identifier::Identifier;
pub use io::{RegionCursor, RegionWriter};
pub use options::OpenOptions;
pub use reader::Reader;
pub use readers_file::{KeptForReaders, ReaderProcess, ReaderTable};
pub use recovery::RecoveryReport;
pub use region::Region;
pub use scrub::DamagedRange;
pub use seqdb_layout::PAGE_SIZE;
pub use seqdb_sys::{FaultInjector, FaultOp, FaultPoint, SyncEvent, SyncKind, SyncObserver};
pub use stats::Stats;

/// The on-disk format version this build reads and writes (see `docs/FORMAT.md`).
pub const FORMAT_VERSION: u32 = format::VERSION;

/// Bytes at the start of the data file that hold its header (which database the file
/// belongs to, and its newest commit); regions start at or after this offset.
pub const DATA_HEADER_LEN: u64 = data_header::DATA_HEADER_LEN;

/// The longest region name, in bytes; longer ones are refused with
/// [`Error::NameTooLong`].
pub const MAX_NAME_LEN: usize = format::MAX_NAME_LEN;
