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
//! - [`Hooks`]: that observer, and an optional [`FaultInjector`] asked before
//!   every write, length change, sync and rename ([`FaultOp`]), which can make
//!   the operation fail with an error of the caller's choice (tests use it to
//!   fail, say, the third data sync with `EIO`). Unset, each costs one branch.
//! - [`DataFile`]: a `LockedFile` plus a read-only shared mapping and a table
//!   of pinned ranges. Reads are zero-copy [`View`]s; writes are `pwrite`.
//! - [`ExtentHold`]: the views of one extent and its retirement: an extent a
//!   region moved away from is reused only after its last view is dropped.
//! - [`handoff`](fn@handoff): a byte buffer one thread fills without locked instructions
//!   while others collect what it published.
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
//! - *Locked.* Each view holds a share of its data file (the locked file and
//!   the pin table), so the file stays open, locked and guarded by the pin
//!   table for as long as a view of it lives, even after the `DataFile`
//!   value is dropped.
//! - *Readable.* Slices never reach past the tracked length, which is raised
//!   only after the write, extension or allocation that made it true; while
//!   a truncation is in flight no view of the range it removes can be made,
//!   and a truncation below a live view is refused.
//!
//! - *Locked.* A `DataFile` holds a lock, shared or exclusive, for its whole
//!   life: [`DataFile::new`] refuses a file opened with [`Lock::Unlocked`]
//!   ([`Error::Unlocked`]), so every handle this crate's safe API can make
//!   that writes the file conflicts with it.
//!
//! What an advisory lock cannot prevent is outside this argument: another
//! process that ignores the lock, or a plain [`LockedFile`] opened with
//! [`Lock::Unlocked`], may write or truncate the file behind our back. A
//! write then shows through existing views, and a truncation makes reading a
//! view of the removed range raise `SIGBUS`. Do not modify a database's
//! files while it is open.
//!
//! The pin table sits under a mutex that is never held across a system call.
//! Views are counted per byte in an ordered map of the places where their
//! number changes, so checking a modification against them costs a lookup
//! whatever the number of views; modifications in flight, one per writing
//! thread at most, are a short vector.
//!
//! A view is one pin. A database shares one view among many readers by
//! putting it in an `Arc` (a reader of a region that has not changed costs an
//! `Arc` clone, no pin), and counts the views of each extent with an
//! [`ExtentHold`], which says when an extent its region left may be reused.
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
//! Two ways of writing cannot raise `SIGBUS` on a full disk: `pwrite`, and a
//! copy through a writable mapping into blocks that
//! [`LockedFile::allocate`] has already reserved. `examples/write_paths.rs`
//! measures both, writing 64 MiB sequentially into a fresh file, with a
//! plain `memcpy` into a fresh heap buffer as the baseline (no sync in any
//! case; the mapped case includes its `allocate` and page faults). Two runs
//! on a 2-core virtual machine shared with other work, ext4, release build
//! (`cargo run --release -p seqdb-sys --example write_paths`):
//!
//! | path                            | 8 B writes         | 1 MiB writes        |
//! |---------------------------------|--------------------|---------------------|
//! | `pwrite` through [`DataFile`]   | 14 MB/s, 558–575 ns | 431–455 MB/s, 2.3–2.4 ms |
//! | `pwrite` through [`LockedFile`] | 15 MB/s, 536–537 ns | 426–449 MB/s, 2.3–2.5 ms |
//! | `allocate` + mapped copy        | 871–1347 MB/s, 6–9 ns | 641–1251 MB/s, 0.8–1.6 ms |
//! | `memcpy` to heap (baseline)     | 2000 MB/s, 4 ns    | 2845–3056 MB/s, 0.35 ms |
//!
//! What the numbers show: a small `pwrite` costs a system call, about
//! 550 ns, a hundred times a small copy into a mapping; the pin bookkeeping
//! of [`DataFile`] adds about 20–40 ns to it. For large writes the two paths
//! are within a small factor (the mapped copy was 1.4–2.9 times faster here),
//! and both are well below plain memory bandwidth, because both fill fresh
//! page-cache pages.
//!
//! The crate keeps `pwrite`, through [`DataFile::write_all_at`]:
//!
//! - The database above buffers small appends in memory and writes them in
//!   large batches at `flush()`, so a system call per small append never
//!   happens; only the large-write column matters, where the gap is small.
//! - `pwrite` cannot fault whatever the file system does. A mapped store is
//!   safe only if the blocks are truly reserved: macOS cannot reserve holes
//!   inside a file, ZFS has no `fallocate`, and copy-on-write file systems
//!   may need new blocks even for preallocated ones. With `pwrite` a full
//!   disk is an error naming the file and offset, never a signal.
//! - The mapping stays read-only, so no bug can scribble on the file through
//!   it, and a view never has to be coordinated with a writable mapping.
//!
//! What makes large `pwrite`s fast is having their blocks allocated first:
//! [`DataFile::preallocate`] (Linux `fallocate` with `KEEP_SIZE`, which changes
//! neither the length nor any byte). In the project's benchmark (W2 in
//! `docs/BENCHMARKS.md`: 1 GiB appended in 1 MiB chunks, ext4), the
//! database's appends ran at 6.2–6.3 GB/s, level with plain files, before it
//! preallocated, and at 8.2–9.9 GB/s after, against 5.9–6.3 GB/s for plain
//! files in the same runs, with no slower `fdatasync`. The database
//! preallocates a region's new reservation when it grows by 256 KiB or more.

#![cfg(unix)]

mod data_file;
mod error;
mod file;
mod handoff;
mod hold;
mod hooks;
mod mapping;
mod mark;
mod options;
mod pins;
mod platform;
mod range_lock;
mod sync;
mod sync_shim;
mod view;

#[cfg(feature = "test-support")]
pub mod test_support;

pub use data_file::DataFile;
pub use error::{Error, Result};
pub use file::LockedFile;
pub use handoff::{Consumer, Producer, handoff};
pub use hold::ExtentHold;
pub use hooks::{FaultInjector, FaultOp, FaultPoint, Hooks};
pub use mark::CurrentMark;
pub use options::{FileOptions, Lock};
pub use platform::PunchOutcome;
pub use range_lock::{RANGE_LOCKS, RangeLock, SharedFile};
pub use sync::{SyncEvent, SyncKind, SyncObserver, rename_durably, sync_dir};
pub use view::View;
