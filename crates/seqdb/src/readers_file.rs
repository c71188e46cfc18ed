//! The `readers` file: the table of read-only handles, shared by every process that
//! opens the database, and the lock that makes one read-write handle the only one.
//!
//! Its layout is in `docs/FORMAT.md` ("The readers file"). Each read-only handle claims a
//! slot by locking the slot's first byte (an open-file-description lock,
//! `seqdb_sys::SharedFile`) and writes there its process id and the generation it views.
//! A slot is *live* exactly while its lock is held: the kernel releases the lock when
//! the handle closes the file or its process dies, so a killed reader's slot stops
//! counting by itself, and its bytes are only overwritten by the next claim (or cleared
//! by the writer).
//!
//! The writer reads the table only after a commit that leaves space waiting, and before
//! punching: it keeps the space each commit freed until no live slot names an older
//! generation (`reader_release.rs`).
//!
//! Ordering. A reader writes its slot (generation 0 first: "keep everything") before it
//! reads the log; the writer makes a commit durable before it reads the table. Each side
//! writes, then reads what the other wrote, through `pwrite`/`pread` on the same files;
//! the kernel's page-cache writes end in fully ordered atomic operations (the page is
//! marked dirty), and the writer syncs between its write and its read. So either the
//! writer sees the slot and keeps the space, or the reader's read of the log sees the
//! commit that freed it, and its state no longer references that space.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use snafu::ResultExt;

use seqdb_sys::{RangeLock, SharedFile};

use crate::error::{CorruptSnafu, SysSnafu, TooManyReadersSnafu};
use crate::format::{u32_at, u64_at};
use crate::{Error, Result};

/// Name of the readers file inside the database directory.
pub(crate) const READERS_FILE: &str = "readers";

const MAGIC: &[u8; 8] = b"SEQDBRDR";
const VERSION: u32 = 1;
/// Bytes before the first slot.
const HEADER_LEN: u64 = 64;
/// Slots in the table: read-only handles open at once, across all processes.
pub(crate) const SLOTS: usize = 256;
const SLOT_LEN: u64 = 32;
/// The byte a read-write handle locks (inside the header, which no slot lock reaches).
const WRITER_BYTE: u64 = 0;
/// The byte a read-write handle locks once its open is done (the bytes that records
/// carried written again into the data file): only then do read-only opens trust the
/// data file as the writer leaves it.
const READY_BYTE: u64 = 1;
/// Where the writer reports the space it keeps for readers.
const REPORT_AT: u64 = 24;

/// One live read-only handle, as its slot says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReaderProcess {
    /// The process that holds the handle.
    pub pid: u32,
    /// The generation (commit) the handle views; 0 while it is still opening.
    pub generation: u64,
}

/// What the read-write handle last wrote about the space it keeps for readers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeptForReaders {
    /// The writer's process id (0 when no writer has reported).
    pub writer_pid: u32,
    /// Bytes freed by commits that a live reader may still view: not reused, not punched.
    pub bytes: u64,
    /// The oldest generation a live reader viewed when the writer last looked.
    pub oldest_generation: u64,
}

/// The live readers of a database and the space kept for them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReaderTable {
    /// Every live read-only handle but the one asking, in slot order.
    pub readers: Vec<ReaderProcess>,
    /// The writer's last report.
    pub kept: KeptForReaders,
}

/// A handle's place in the readers file.
#[derive(Debug)]
pub(crate) enum Attachment {
    /// The read-write handle: it holds the writer's lock, and reads the table.
    Writer(ReadersFile),
    /// A read-only handle: its slot.
    Reader(ReaderSlot),
}

impl Attachment {
    /// The readers file, as this handle opened it.
    pub(crate) fn file(&self) -> &ReadersFile {
        match self {
            Attachment::Writer(file) => file,
            Attachment::Reader(slot) => &slot.file,
        }
    }
}

/// Take a handle's place in the readers file of the database in `dir`: the writer's lock
/// (refused with [`Error::AlreadyOpen`] while another read-write handle has it), or a
/// reader's slot. Also says whether a read-write handle has the database open beside a
/// read-only one, whose open must then read the log as a live writer leaves it
/// (`beside_writer.rs`). Nothing where the platform has no range locks: there the
/// data file's `flock` keeps readers and the writer apart.
pub(crate) fn attach(dir: &Path, read_only: bool) -> Result<(Option<Attachment>, bool)> {
    if !seqdb_sys::RANGE_LOCKS {
        return Ok((None, false));
    }
    let file = ReadersFile::open(dir)?;
    if read_only {
        let slot = file.claim(dir)?;
        let beside_writer = slot.file.writer_present()?;
        Ok((Some(Attachment::Reader(slot)), beside_writer))
    } else {
        file.lock_writer(dir)?;
        Ok((Some(Attachment::Writer(file)), false))
    }
}

impl crate::Database {
    /// The read-only handles open on this database (this one excepted), in any process,
    /// with the generation each views, and what the read-write handle last reported of
    /// the space it keeps for them (see "Reader processes" in the crate documentation).
    /// Empty where the platform has no range locks.
    pub fn reader_table(&self) -> Result<ReaderTable> {
        let Some(attachment) = &self.inner.attachment else {
            return Ok(ReaderTable::default());
        };
        let skip = match attachment {
            Attachment::Writer(_) => None,
            Attachment::Reader(slot) => Some(slot.index),
        };
        let file = attachment.file();
        Ok(ReaderTable {
            readers: file.live(skip, false)?,
            kept: file.kept()?,
        })
    }
}

/// Whether a read-write handle has the database in `dir` open (false where the
/// platform has no range locks, or the database has no readers file yet).
pub(crate) fn writer_present_in(dir: &Path) -> Result<bool> {
    if !seqdb_sys::RANGE_LOCKS || !dir.join(READERS_FILE).exists() {
        return Ok(false);
    }
    ReadersFile::open(dir)?.writer_present()
}

/// One open of the readers file.
#[derive(Debug)]
pub(crate) struct ReadersFile {
    file: SharedFile,
}

fn slot_offset(index: usize) -> u64 {
    HEADER_LEN + index as u64 * SLOT_LEN
}

fn header_bytes() -> [u8; 20] {
    let mut out = [0u8; 20];
    out[..8].copy_from_slice(MAGIC);
    out[8..12].copy_from_slice(&VERSION.to_le_bytes());
    out[12..16].copy_from_slice(&(SLOTS as u32).to_le_bytes());
    out[16..20].copy_from_slice(&(SLOT_LEN as u32).to_le_bytes());
    out
}

fn encode_slot(pid: u32, nonce: u64, generation: u64) -> [u8; SLOT_LEN as usize] {
    let mut out = [0u8; SLOT_LEN as usize];
    out[0..4].copy_from_slice(&pid.to_le_bytes());
    out[8..16].copy_from_slice(&nonce.to_le_bytes());
    out[16..24].copy_from_slice(&generation.to_le_bytes());
    let crc = crc32fast::hash(&out[..24]);
    out[24..28].copy_from_slice(&crc.to_le_bytes());
    out
}

/// A slot's process and generation; `None` for an empty slot. A slot being written
/// (its checksum fails) reads as generation 0, which keeps everything: the safe side.
fn decode_slot(bytes: &[u8]) -> Option<ReaderProcess> {
    if bytes.iter().all(|&b| b == 0) {
        return None;
    }
    let whole = crc32fast::hash(&bytes[..24]) == u32_at(bytes, 24);
    Some(ReaderProcess {
        pid: u32_at(bytes, 0),
        generation: if whole { u64_at(bytes, 16) } else { 0 },
    })
}

impl ReadersFile {
    /// Open (creating it if needed) the readers file of the database in `dir`.
    pub(crate) fn open(dir: &Path) -> Result<Self> {
        let path = dir.join(READERS_FILE);
        let file = SharedFile::open(&path, true).context(SysSnafu)?;
        let mut head = [0u8; 20];
        file.read_at(&mut head, 0).context(SysSnafu)?;
        if head.iter().all(|&b| b == 0) {
            // New, or its creator stopped before writing the header: every opener writes
            // the same bytes.
            file.write_all_at(&header_bytes(), 0).context(SysSnafu)?;
        } else if head != header_bytes() {
            return CorruptSnafu {
                path,
                offset: 0u64,
                reason: "the readers file's header is not this build's (magic `SEQDBRDR`, \
                         version 1, 256 slots of 32 bytes); delete the file while no handle \
                         has the database open"
                    .to_owned(),
            }
            .fail();
        }
        Ok(ReadersFile { file })
    }

    /// Become the database's one read-write handle; [`Error::AlreadyOpen`] when another
    /// open (in this process or another) is.
    pub(crate) fn lock_writer(&self, dir: &Path) -> Result<()> {
        match self.file.try_lock(WRITER_BYTE, 1, RangeLock::Exclusive) {
            Ok(true) => Ok(()),
            Ok(false) => Err(Error::AlreadyOpen {
                path: dir.to_owned(),
            }),
            Err(source) => Err(Error::sys(source)),
        }
    }

    /// Say that this read-write handle's open is done: the data file now holds every
    /// byte of the commits it opened.
    pub(crate) fn mark_ready(&self) -> Result<()> {
        match self.file.try_lock(READY_BYTE, 1, RangeLock::Exclusive) {
            Ok(true) => Ok(()),
            // Only another read-write handle could hold it, and the writer lock keeps
            // any other out.
            Ok(false) => Err(Error::AlreadyOpen {
                path: self
                    .file
                    .path()
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_default(),
            }),
            Err(source) => Err(Error::sys(source)),
        }
    }

    /// Whether a read-write handle has the database open now, its open done. (One
    /// still opening may be writing again bytes of its last commits into the data file:
    /// a read-only open must then check the data file as after a crash.)
    pub(crate) fn writer_present(&self) -> Result<bool> {
        self.file.locked_by_another(READY_BYTE, 1).context(SysSnafu)
    }

    /// Claim a free slot for a read-only handle of this process, naming generation 0
    /// until [`ReaderSlot::publish`] names the one it views.
    pub(crate) fn claim(self, dir: &Path) -> Result<ReaderSlot> {
        let pid = std::process::id();
        let nonce = new_nonce();
        for index in 0..SLOTS {
            if self
                .file
                .try_lock(slot_offset(index), 1, RangeLock::Exclusive)
                .context(SysSnafu)?
            {
                let slot = ReaderSlot {
                    file: self,
                    index,
                    pid,
                    nonce,
                };
                slot.publish(0)?;
                return Ok(slot);
            }
        }
        TooManyReadersSnafu {
            path: dir.to_owned(),
            limit: SLOTS as u64,
        }
        .fail()
    }

    /// Every live slot but `skip`. With `clear_dead`, slots whose holder is gone are
    /// zeroed (only the writer does this: it holds no slot lock of its own).
    pub(crate) fn live(&self, skip: Option<usize>, clear_dead: bool) -> Result<Vec<ReaderProcess>> {
        let mut table = vec![0u8; SLOTS * SLOT_LEN as usize];
        self.file
            .read_at(&mut table, HEADER_LEN)
            .context(SysSnafu)?;
        let mut live = Vec::new();
        for (index, bytes) in table.chunks_exact(SLOT_LEN as usize).enumerate() {
            if Some(index) == skip {
                continue;
            }
            let Some(reader) = decode_slot(bytes) else {
                continue;
            };
            let at = slot_offset(index);
            if self.file.locked_by_another(at, 1).context(SysSnafu)? {
                live.push(reader);
            } else if clear_dead
                && self
                    .file
                    .try_lock(at, 1, RangeLock::Exclusive)
                    .context(SysSnafu)?
            {
                // Its holder is gone, and nobody can claim it while this holds the lock.
                let cleared = self.file.write_all_at(&[0; SLOT_LEN as usize], at);
                let unlocked = self.file.unlock(at, 1);
                cleared.and(unlocked).context(SysSnafu)?;
            }
        }
        Ok(live)
    }

    /// The writer's report of the space it keeps for readers.
    pub(crate) fn report(&self, kept: &KeptForReaders) -> Result<()> {
        let mut out = [0u8; 28];
        out[0..4].copy_from_slice(&kept.writer_pid.to_le_bytes());
        out[8..16].copy_from_slice(&kept.bytes.to_le_bytes());
        out[16..24].copy_from_slice(&kept.oldest_generation.to_le_bytes());
        let crc = crc32fast::hash(&out[..24]);
        out[24..28].copy_from_slice(&crc.to_le_bytes());
        self.file.write_all_at(&out, REPORT_AT).context(SysSnafu)
    }

    /// What the writer last reported (zeros when it never did, or the report is being
    /// rewritten).
    pub(crate) fn kept(&self) -> Result<KeptForReaders> {
        let mut bytes = [0u8; 28];
        self.file.read_at(&mut bytes, REPORT_AT).context(SysSnafu)?;
        if crc32fast::hash(&bytes[..24]) != u32_at(&bytes, 24) {
            return Ok(KeptForReaders::default());
        }
        Ok(KeptForReaders {
            writer_pid: u32_at(&bytes, 0),
            bytes: u64_at(&bytes, 8),
            oldest_generation: u64_at(&bytes, 16),
        })
    }
}

/// A read-only handle's claimed slot; dropping it empties the slot and lets it go.
#[derive(Debug)]
pub(crate) struct ReaderSlot {
    file: ReadersFile,
    index: usize,
    pid: u32,
    nonce: u64,
}

impl ReaderSlot {
    /// Name the generation this handle views.
    pub(crate) fn publish(&self, generation: u64) -> Result<()> {
        self.file
            .file
            .write_all_at(
                &encode_slot(self.pid, self.nonce, generation),
                slot_offset(self.index),
            )
            .context(SysSnafu)
    }

    /// The readers file, as this handle opened it.
    pub(crate) fn file(&self) -> &ReadersFile {
        &self.file
    }

    /// This handle's slot.
    #[cfg(test)]
    pub(crate) fn index(&self) -> usize {
        self.index
    }
}

impl Drop for ReaderSlot {
    fn drop(&mut self) {
        // Best effort: a slot left written but unlocked counts as empty anyway.
        let at = slot_offset(self.index);
        let _ = self.file.file.write_all_at(&[0; SLOT_LEN as usize], at);
        let _ = self.file.file.unlock(at, 1);
    }
}

/// Distinguishes two opens of one process in a slot (for diagnostics).
fn new_nonce() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ COUNTER.fetch_add(1, Ordering::Relaxed).rotate_left(48)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_round_trip_and_torn_ones_keep_everything() {
        let bytes = encode_slot(42, 7, 99);
        assert_eq!(
            decode_slot(&bytes),
            Some(ReaderProcess {
                pid: 42,
                generation: 99
            })
        );
        let mut torn = bytes;
        torn[17] ^= 1;
        assert_eq!(decode_slot(&torn).map(|r| r.generation), Some(0));
        assert_eq!(decode_slot(&[0; 32]), None);
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn a_closed_slot_stops_counting_and_the_writer_clears_it() {
        let dir = tempfile::tempdir().unwrap();
        let writer = ReadersFile::open(dir.path()).unwrap();
        writer.lock_writer(dir.path()).unwrap();
        assert!(matches!(
            ReadersFile::open(dir.path())
                .unwrap()
                .lock_writer(dir.path()),
            Err(Error::AlreadyOpen { .. })
        ));
        let a = ReadersFile::open(dir.path())
            .unwrap()
            .claim(dir.path())
            .unwrap();
        let b = ReadersFile::open(dir.path())
            .unwrap()
            .claim(dir.path())
            .unwrap();
        // A writer still opening does not count as present; once ready it does.
        assert!(!a.file().writer_present().unwrap());
        writer.mark_ready().unwrap();
        assert!(a.file().writer_present().unwrap());
        b.publish(5).unwrap();
        let live = writer.live(None, true).unwrap();
        assert_eq!(
            live.iter().map(|r| r.generation).collect::<Vec<_>>(),
            [0, 5]
        );
        assert_eq!(a.file().live(Some(a.index()), false).unwrap().len(), 1);
        // A slot whose bytes stay but whose lock is gone (a killed process) does not
        // count, and the writer clears it.
        writer
            .file
            .write_all_at(&encode_slot(9, 9, 1), slot_offset(10))
            .unwrap();
        assert_eq!(writer.live(None, true).unwrap().len(), 2);
        let mut cleared = [1u8; SLOT_LEN as usize];
        writer.file.read_at(&mut cleared, slot_offset(10)).unwrap();
        assert_eq!(cleared, [0; SLOT_LEN as usize]);
        drop(a);
        assert_eq!(writer.live(None, true).unwrap().len(), 1);
        writer
            .report(&KeptForReaders {
                writer_pid: 1,
                bytes: 4096,
                oldest_generation: 5,
            })
            .unwrap();
        assert_eq!(b.file().kept().unwrap().bytes, 4096);
    }
}
