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
//! a checksummed metadata record written after the data is synced; see `docs/FORMAT.md`.
//! A flush racing other threads records the state at one instant (names unique, every
//! region at one point of its history).
//!
//! Dropping the last handle of a read-write database flushes, as a `BufWriter` does,
//! ignoring an error; [`Database::close`] flushes and reports it. A process kill or a
//! power cut returns the database to its last successful flush.
//!
//! # Errors, not crashes
//!
//! A full disk, a damaged or foreign metadata file, a second opener, or bad arguments
//! give an [`Error`] naming the path, region and offset involved. Nothing is ever
//! written through the memory map, so a full disk cannot raise `SIGBUS`.
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
//! # Cost model
//!
//! A small append is a copy into an in-memory tail plus bookkeeping, written to the
//! file in batches; a large append is one `pwrite`. A thread that keeps appending to one
//! region by number is lent a buffer by it, and its appends then take no lock at all.
//! A flush costs the regions changed since the last one (plus a look at each region
//! with a lent buffer, at most one per appending thread), and open costs the number of
//! regions.
#![forbid(unsafe_code)]

mod check;
mod commit;
mod database;
mod error;
mod fast_append;
mod format;
mod identifier;
mod io;
mod maintenance;
mod meta_log;
mod number_map;
mod options;
mod reader;
mod region;
mod retired;
mod snapshot;
mod stats;
mod tail;
mod write;

pub use check::{CheckReport, check};
pub use database::Database;
pub use error::{Error, Result};
pub use identifier::Identifier;
pub use io::{RegionCursor, RegionWriter};
pub use options::OpenOptions;
pub use reader::Reader;
pub use region::Region;
pub use seqdb_layout::PAGE_SIZE;
pub use seqdb_sys::{FaultInjector, FaultOp, FaultPoint, SyncEvent, SyncKind, SyncObserver};
pub use stats::Stats;

/// The on-disk format version this build reads and writes (see `docs/FORMAT.md`).
pub const FORMAT_VERSION: u32 = format::VERSION;
