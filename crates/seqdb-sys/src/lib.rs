//! Platform layer of seqdb: the data file, its lock, its mapping, sync
//! barriers, allocation and hole punching. This is the only crate of the
//! project that talks to the operating system and the only one with `unsafe`
//! code.
//!
//! # Concepts
//!
//! - [`LockedFile`]: an open file holding a non-blocking advisory lock
//!   (`flock`) for its whole life. A second opener gets [`Error::Locked`] at
//!   once. All I/O is positional. [`LockedFile::sync_data`] /
//!   [`LockedFile::sync_all`] are the durability barriers, [`sync_dir`] and
//!   [`rename_durably`] make directory entries durable, and every completed
//!   barrier is told to an optional [`SyncObserver`] (tests use it to capture
//!   file images between barriers).
//! - [`DataFile`]: a `LockedFile` plus a read-only shared mapping and a table
//!   of pinned ranges. Reads are zero-copy [`View`]s; writes are `pwrite`.
//! - [`PunchOutcome`]: hole punching gives space back where the platform can,
//!   and says so; elsewhere the range is overwritten with zeros.
//!
//! Per-OS code lives in one module per system (`linux`, `macos`, `freebsd`,
//! and a portable `fallback` that writes zeros where it cannot punch or
//! preallocate), chosen at compile time.
//!
//! # The mapping
//!
//! The data file is mapped read-only and shared, over a reserved length larger
//! than the file (the next power of two at or above the larger of the file's
//! length and 1 GiB). Mapping past the end of a file is allowed; only touching
//! those pages would fault, so every slice handed out is bounded by the length
//! the `DataFile` tracks. When the file outgrows the reservation a new, larger
//! mapping is made; the old one is not unmapped but kept alive, through an
//! `Arc`, by the views made from it, and goes when the last of them is
//! dropped. Nothing is ever remapped or unmapped under a live view, and growth
//! never waits for readers.
//!
//! Writes go through the file descriptor (`pwrite`). On Linux, macOS and
//! FreeBSD the page cache is unified: a shared mapping shows what `pwrite`
//! wrote as soon as the call returns, so views need no invalidation.
//!
//! # Soundness
//!
//! A [`View`] hands out a `&[u8]` into the mapping. That is sound only if the
//! bytes cannot change and the pages stay mapped and readable while the
//! borrow lives:
//!
//! - *No change through this API.* A view pins its range in the data file's
//!   pin table. Every change the crate can make, a write, the destination of
//!   a copy, a punch, a truncation, first pins its own range and fails with
//!   [`Error::RangeBusy`] if a view's pin overlaps; symmetrically, a view of a
//!   range being changed is refused. Nothing is ever written through a
//!   mapping. Once a [`LockedFile`] belongs to a `DataFile`, its own modifying
//!   methods return [`Error::Managed`], so the pin table cannot be bypassed
//!   through [`DataFile::file`].
//! - *Mapped.* Each view holds an `Arc` of the mapping it points into.
//! - *Readable.* Slices never reach past the tracked length, which is raised
//!   only after the write, extension or allocation that made it true; while
//!   a truncation is in flight no view of the range it removes can be made,
//!   and a truncation below a live view is refused.
//!
//! What an advisory lock cannot prevent is outside this argument: another
//! process that ignores the lock (or a handle opened with
//! [`Lock::Unlocked`]) may write or truncate the file behind our back. A
//! write then shows through existing views, and a truncation makes reading a
//! view of the removed range raise `SIGBUS`. Do not modify a database's
//! files while it is open.
//!
//! The pin table is a vector under a mutex: pinning and unpinning cost time
//! linear in the number of live views and modifications in flight, never in
//! the file's size, and the mutex is never held across a system call.
//!
//! # Full disk
//!
//! Because every byte is written with `pwrite` (or written as zeros by the
//! fallbacks), running out of space is an ordinary [`Error::Io`] for which
//! [`Error::is_no_space`] is true (`ENOSPC` or `EDQUOT`). The process never
//! receives `SIGBUS`, which is what happens when a store through a shared
//! mapping lands on a page the file system cannot allocate. Bytes written
//! before the failure stay readable.
//!
//! # Write paths, measured
//!
//! `examples/write_paths.rs` compares `pwrite` with copies through a writable
//! mapping into preallocated blocks.

#![cfg(unix)]

mod data_file;
mod error;
mod file;
mod mapping;
mod options;
mod pins;
mod platform;
mod sync;
mod view;

#[cfg(feature = "test-support")]
pub mod test_support;

pub use data_file::DataFile;
pub use error::{Error, Result};
pub use file::LockedFile;
pub use options::{FileOptions, Lock};
pub use platform::PunchOutcome;
pub use sync::{SyncEvent, SyncKind, SyncObserver, rename_durably, sync_dir};
pub use view::View;
