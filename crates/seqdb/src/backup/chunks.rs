//! Copying regions into a backup's data file, chunk by chunk, writing only the chunks the
//! backup does not hold already.
//!
//! A region is cut into chunks of [`CHUNK`] bytes from its start. Where the backup's
//! data file ended before this backup (the region's new place is past it), nothing is
//! there to keep, and the bytes are copied without looking. Elsewhere a [`Baseline`]
//! says, chunk by chunk, whether the backup holds that chunk of the region already at its
//! new place; runs of chunks it does not hold are copied with one `copy_file_range` each
//! (`LockedFile::copy_from`), straight from the source's data file.
//!
//! Today's baseline reads the backup's bytes back and compares them ([`ReadBack`]). One
//! that compares the source chunk's checksum with a checksum the previous backup stored
//! for the same chunk of the same region fits the same trait: it needs the region's
//! number and the chunk's index, which [`Chunk`] carries, and must fall back to reading
//! when the previous backup did not complete or the region moved.

use std::collections::VecDeque;

use seqdb_sys::LockedFile;
use snafu::ResultExt;

use crate::Result;
use crate::error::SysSnafu;
use crate::format::{Crcs, SUM_CHUNK};

/// Bytes of a chunk: those of the checksums the format keeps per region, so that a
/// region's chunks here are the chunks its checksums cover.
pub(crate) const CHUNK: u64 = SUM_CHUNK;
/// The longest run copied in one call, so that progress is reported, and the device
/// set to write, as the copy goes.
const MAX_RUN: u64 = 16 << 20;
/// Bytes copied whose writing to the device may still be under way: past this, the copy
/// waits for the oldest runs. The device writes while the copy goes on (instead of all
/// at the final sync, or in bursts that stop the copy), and the copy's dirty pages stay
/// bounded: past the kernel's limit every writer of the machine is throttled, the
/// database's appends among them.
const WRITE_BACK_WINDOW: u64 = 64 << 20;

/// One chunk of a region, as a [`Baseline`] is asked about it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Chunk {
    /// The region's number.
    #[allow(dead_code)]
    pub region: u64,
    /// The chunk's index in the region (its offset divided by [`CHUNK`]).
    #[allow(dead_code)]
    pub index: u64,
    /// Where the chunk goes in the backup's data file.
    pub at: u64,
}

/// What the backup's data file holds already.
pub(crate) trait Baseline {
    /// Whether the backup holds `source` (the chunk's bytes in the database) at the
    /// chunk's place already.
    fn holds(&mut self, chunk: Chunk, source: &[u8]) -> Result<bool>;

    /// Bytes of the backup read so far to answer.
    fn bytes_read(&self) -> u64;
}

/// Reads the backup's bytes back and compares them.
pub(crate) struct ReadBack<'a> {
    file: &'a LockedFile,
    buffer: Vec<u8>,
    read: u64,
}

impl<'a> ReadBack<'a> {
    pub fn new(file: &'a LockedFile) -> Self {
        ReadBack {
            file,
            buffer: vec![0; CHUNK as usize],
            read: 0,
        }
    }
}

impl Baseline for ReadBack<'_> {
    fn holds(&mut self, chunk: Chunk, source: &[u8]) -> Result<bool> {
        let buffer = &mut self.buffer[..source.len()];
        self.file
            .read_exact_at(buffer, chunk.at)
            .context(SysSnafu)?;
        self.read += source.len() as u64;
        Ok(buffer == source)
    }

    fn bytes_read(&self) -> u64 {
        self.read
    }
}

/// Copies regions from the database's data file into the backup's.
pub(crate) struct Copier<'a> {
    source: &'a LockedFile,
    target: &'a LockedFile,
    /// The backup's data file held nothing from here on before this backup.
    fresh_from: u64,
    baseline: ReadBack<'a>,
    copied: u64,
    /// Runs copied whose write-back may be under way (place and length in the backup's
    /// file), oldest first, and their total.
    writing: VecDeque<(u64, u64)>,
    writing_bytes: u64,
    done: u64,
    total: u64,
    progress: &'a mut dyn FnMut(u64, u64),
}

impl<'a> Copier<'a> {
    pub fn new(
        source: &'a LockedFile,
        target: &'a LockedFile,
        fresh_from: u64,
        total: u64,
        progress: &'a mut dyn FnMut(u64, u64),
    ) -> Self {
        Copier {
            source,
            target,
            fresh_from,
            baseline: ReadBack::new(target),
            copied: 0,
            writing: VecDeque::new(),
            writing_bytes: 0,
            done: 0,
            total,
            progress,
        }
    }

    /// Copy region `region`, whose bytes `bytes` are at `from` in the database's data
    /// file, to `to` in the backup's. Returns the checksums of its chunks, which the
    /// backup's metadata records.
    pub fn copy_region(&mut self, region: u64, from: u64, bytes: &[u8], to: u64) -> Result<Crcs> {
        let len = bytes.len() as u64;
        let mut crcs = Crcs::with_capacity(len.div_ceil(CHUNK) as usize);
        // A run of chunks to copy: its start and length in the region.
        let mut run: Option<(u64, u64)> = None;
        let mut offset = 0;
        while offset < len {
            let n = CHUNK.min(len - offset);
            let at = to + offset;
            crcs.push(crc32fast::hash(
                &bytes[offset as usize..(offset + n) as usize],
            ));
            let held = at + n <= self.fresh_from && {
                let chunk = Chunk {
                    region,
                    index: offset / CHUNK,
                    at,
                };
                self.baseline
                    .holds(chunk, &bytes[offset as usize..(offset + n) as usize])?
            };
            if held {
                if let Some((start, run_len)) = run.take() {
                    self.copy(from, to, start, run_len)?;
                }
                self.advance(n);
            } else {
                let (start, run_len) = run.get_or_insert((offset, 0));
                *run_len += n;
                if *run_len >= MAX_RUN {
                    let (start, run_len) = (*start, *run_len);
                    run = None;
                    self.copy(from, to, start, run_len)?;
                }
            }
            offset += n;
        }
        if let Some((start, run_len)) = run {
            self.copy(from, to, start, run_len)?;
        }
        Ok(crcs)
    }

    fn copy(&mut self, from: u64, to: u64, start: u64, len: u64) -> Result<()> {
        self.target
            .copy_from(self.source, from + start, to + start, len)
            .context(SysSnafu)?;
        self.copied += len;
        self.target
            .start_write_back(to + start, len)
            .context(SysSnafu)?;
        self.writing.push_back((to + start, len));
        self.writing_bytes += len;
        while self.writing_bytes > WRITE_BACK_WINDOW {
            let Some((at, n)) = self.writing.pop_front() else {
                break;
            };
            self.target.wait_write_back(at, n).context(SysSnafu)?;
            self.writing_bytes -= n;
        }
        self.advance(len);
        Ok(())
    }

    fn advance(&mut self, n: u64) {
        self.done += n;
        (self.progress)(self.done, self.total);
    }

    /// Bytes written into the backup, and bytes of it read to compare.
    pub fn totals(&self) -> (u64, u64) {
        (self.copied, self.baseline.bytes_read())
    }
}
