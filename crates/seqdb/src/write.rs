//! Appends, overwrites and truncation.
//!
//! A small append is copied into the region's in-memory tail: no system call. The tail is
//! written to the data file with one `pwrite` when it passes [`TAIL_LIMIT`], when all
//! tails together pass [`BUFFER_BUDGET`], when a reader or a flush needs the bytes in the
//! file, or before any write that is not an append. Large appends go straight to the file.

use snafu::ResultExt;

use seqdb_layout::GrowPlan;

use crate::database::Inner;
use crate::error::{
    LayoutSnafu, OffsetPastEndSnafu, SysSnafu, TooLargeSnafu, TruncatePastEndSnafu,
};
use crate::region::RegionState;
use crate::{Database, Identifier, Result};

/// A region's tail is written out once it holds this many bytes.
pub(crate) const TAIL_LIMIT: usize = 64 * 1024;
/// A reservation grows by at least this much before its new space is preallocated.
const PREALLOCATE_MIN: u64 = 256 * 1024;
/// Appends at least this large skip the tail and go straight to the file.
const DIRECT_WRITE: usize = 16 * 1024;
/// All tails together are kept under this many bytes.
const BUFFER_BUDGET: u64 = 64 << 20;

impl Database {
    /// Append `data` to the end of a region.
    ///
    /// ```
    /// # fn main() -> seqdb::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let database = seqdb::Database::open(dir.path())?;
    /// let (number, _) = database.create_region_if_needed("log")?;
    /// database.write_all_to_region(number.into(), b"hello")?;
    /// assert_eq!(database.create_region_reader(number.into())?.read_all(), b"hello");
    /// # Ok(()) }
    /// ```
    pub fn write_all_to_region(&self, id: Identifier, data: &[u8]) -> Result<()> {
        self.inner.append(&id, data)
    }

    /// Write `data` at offset `at` of a region, overwriting what is there and extending
    /// the region when the write goes past its end. `at` may not exceed the length.
    pub fn write_all_to_region_at(&self, id: Identifier, data: &[u8], at: u64) -> Result<()> {
        self.inner.write_at(&id, data, at, false)
    }

    /// Write `data` at offset `at` of a region, after which the region ends where the
    /// written bytes end (it may shrink). `at` may not exceed the length.
    pub fn truncate_write_all_to_region(&self, id: Identifier, at: u64, data: &[u8]) -> Result<()> {
        self.inner.write_at(&id, data, at, true)
    }

    /// Shorten a region to `len` bytes. Fails with [`Error::TruncatePastEnd`] when `len`
    /// is larger than the region. The space stays reserved for the region.
    ///
    /// When a live [`Reader`](crate::Reader) shows bytes past `len`, the region's first
    /// `len` bytes are copied to a new place first, and the reader keeps the old ones.
    ///
    /// [`Error::TruncatePastEnd`]: crate::Error::TruncatePastEnd
    pub fn truncate_region(&self, id: Identifier, len: u64) -> Result<()> {
        self.inner.check_writable()?;
        let slot = self.inner.slot(&id)?;
        let mut region = slot.write();
        if region.is_removed() {
            return self.inner.unknown(&id);
        }
        self.inner.collect(&mut region)?;
        snafu::ensure!(
            len <= region.len(),
            TruncatePastEndSnafu {
                region: region.name().to_owned(),
                requested: len,
                len: region.len(),
            }
        );
        if len == region.len() {
            return Ok(());
        }
        if region.writable_from(len) {
            // `collect` folded what shared holders collected: the tail ends the region.
            region.truncate(len, &self.inner.buffered);
        } else {
            self.inner.copy_on_write(&mut region, len)?;
        }
        self.inner.note_dirty(&region);
        Ok(())
    }
}

impl Inner {
    pub fn append(&self, id: &Identifier, data: &[u8]) -> Result<()> {
        self.check_writable()?;
        if let Identifier::Number(number) = *id
            && data.len() < DIRECT_WRITE
            && let Some(done) = self.append_recent(number, data)
        {
            return done;
        }
        let slot = {
            let table = self.table.read();
            let Some(slot) = table.slot(id) else {
                return self.unknown(id);
            };
            if let Identifier::Number(number) = *id {
                self.remember(number, slot, false);
            }
            // Common case: a small append to a free region with room. Only `try_write` is
            // allowed under the table lock, and the append itself never blocks. A region
            // with a lent buffer goes the long way, which collects it first.
            if data.len() < DIRECT_WRITE
                && let Some(mut region) = slot.try_write()
                && !region.is_removed()
                && region.lent_mut().is_none()
            {
                if region.push_tail_quickly(data, &self.buffered, TAIL_LIMIT) {
                    self.note_dirty(&region);
                    return Ok(());
                }
                if region.fits(data.len()) {
                    return self.append_in_place(&mut region, data);
                }
            }
            slot.clone()
        };
        if let Identifier::Number(number) = *id {
            self.remember(number, &slot, true);
        }
        let mut region = slot.write();
        if region.is_removed() {
            return self.unknown(id);
        }
        self.collect(&mut region)?;
        let new_len = self.end_after(&region, region.len(), data.len())?;
        self.reserve(&mut region, new_len)?;
        self.append_in_place(&mut region, data)
    }

    pub fn write_at(&self, id: &Identifier, data: &[u8], at: u64, truncate: bool) -> Result<()> {
        self.check_writable()?;
        let slot = self.slot(id)?;
        let mut region = slot.write();
        if region.is_removed() {
            return self.unknown(id);
        }
        self.collect(&mut region)?;
        snafu::ensure!(
            at <= region.len(),
            OffsetPastEndSnafu {
                region: region.name().to_owned(),
                offset: at,
                len: region.len(),
            }
        );
        let end = self.end_after(&region, at, data.len())?;
        if at == region.len() {
            self.reserve(&mut region, end)?;
            return self.append_in_place(&mut region, data);
        }
        let new_len = if truncate { end } else { end.max(region.len()) };
        self.reserve(&mut region, new_len)?;
        if !region.writable_from(at) {
            // A reader shows bytes from `at` on: write a copy of the region instead, with
            // the bytes that the write keeps.
            let keep = if truncate { at } else { region.len() };
            self.copy_on_write(&mut region, keep)?;
        }
        self.drain(&mut region)?;
        // Before the write: a commit's instant after it must count the bytes changed.
        region.overwrote(at);
        self.note_dirty(&region);
        self.data
            .write_all_at(data, region.start() + at)
            .context(SysSnafu)?;
        if new_len != region.len() {
            // The tail was written out above, so the whole region is in the file.
            region.set_written_len(new_len);
        }
        Ok(())
    }

    /// Move the region to a new extent holding its first `keep` bytes, so that its bytes
    /// can change without touching what readers' snapshots view: the old extent is
    /// retired with them. The region keeps its reservation and becomes `keep` bytes long.
    pub(crate) fn copy_on_write(&self, region: &mut RegionState, keep: u64) -> Result<()> {
        debug_assert!(keep <= region.len());
        // Every byte in the file (past every snapshot's bytes): the copy reads them there.
        self.drain(region)?;
        let mut table = self.table.write();
        let number = region.number() as u64;
        let len = keep.saturating_add(region.headroom());
        let (from, to) = table
            .layout
            .reallocate(number, len, region.reserved())
            .context(LayoutSnafu { path: &self.path })?;
        if keep > 0
            && let Err(e) = self.data.copy_within(from.start, to.start, keep)
        {
            self.poison(&e);
            return Err(e).context(SysSnafu);
        }
        let hold = region.moved(to.start, to.len);
        // Bytes from `keep` on are the caller's to write again: their checksums change.
        region.overwrote(keep);
        region.set_written_len(keep);
        // Before the table lock is released, as for a growth's move.
        self.note_dirty(region);
        self.retire(&mut table, from, hold)
    }

    fn end_after(&self, region: &RegionState, at: u64, n: usize) -> Result<u64> {
        at.checked_add(n as u64)
            .filter(|end| region.start().checked_add(*end).is_some())
            .ok_or_else(|| {
                TooLargeSnafu {
                    region: region.name().to_owned(),
                    requested: u64::MAX,
                }
                .build()
            })
    }

    /// Append to a region whose reservation already has room.
    pub(crate) fn append_in_place(&self, region: &mut RegionState, data: &[u8]) -> Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        // The tail must end the region before it takes more bytes.
        region.fold(&self.buffered);
        if data.len() >= DIRECT_WRITE {
            self.drain(region)?;
            self.data
                .write_all_at(data, region.tail_offset())
                .context(SysSnafu)?;
            region.written_directly(data.len() as u64);
        } else {
            region.push_tail(data, &self.buffered);
            let over = region.tail().len() >= TAIL_LIMIT || self.buffered.bytes() > BUFFER_BUDGET;
            if over && let Err(e) = self.drain(region) {
                // Undo this append so the caller's error means "not appended".
                let len = region.len() - data.len() as u64;
                region.truncate(len, &self.buffered);
                return Err(e);
            }
        }
        self.note_dirty(region);
        Ok(())
    }

    /// Make the region's reservation hold `new_len` bytes, and room for its lent buffer
    /// beyond them, moving it if needed.
    pub fn reserve(&self, region: &mut RegionState, new_len: u64) -> Result<()> {
        // A move copies `written` bytes and then the tail: nothing may follow the tail.
        region.fold(&self.buffered);
        let new_len = new_len.saturating_add(region.headroom());
        if new_len <= region.reserved() {
            return Ok(());
        }
        let mut table = self.table.write();
        let plan = table
            .layout
            .grow(region.number() as u64, new_len)
            .context(LayoutSnafu { path: &self.path })?;
        let old_end = region.start() + region.reserved();
        match plan {
            GrowPlan::InPlace => {}
            GrowPlan::ExtendIntoHole { reserved } | GrowPlan::AppendAtEnd { reserved } => {
                region.grown(reserved);
            }
            GrowPlan::Move { from, to } => {
                let copied = match region.written() {
                    0 => Ok(()),
                    len => self.data.copy_within(from.start, to.start, len),
                };
                if let Err(e) = copied {
                    self.poison(&e);
                    return Err(e).context(SysSnafu);
                }
                let hold = region.moved(to.start, to.len);
                self.retire(&mut table, from, hold)?;
            }
        }
        // Before the table lock is released: a flush that captures the freed extent must
        // also capture this region's new placement.
        self.note_dirty(region);
        drop(table);
        // Space the region has not used yet: let the file system allocate it in one go,
        // which makes writing it much cheaper than block by block. Only an optimisation:
        // where it fails (a full disk, say), the write that needs the space reports it.
        let unused_from = region.tail_offset().max(match plan {
            GrowPlan::Move { .. } => region.start(),
            _ => old_end,
        });
        let end = region.start() + region.reserved();
        if end.saturating_sub(unused_from) >= PREALLOCATE_MIN {
            let _ = self.data.preallocate(unused_from, end - unused_from);
        }
        Ok(())
    }

    /// Write the region's in-memory tail to the data file.
    pub fn drain(&self, region: &mut RegionState) -> Result<()> {
        region.fold(&self.buffered);
        if region.tail().is_empty() {
            return Ok(());
        }
        let (offset, unsynced) = region.tail().unsynced();
        self.data
            .write_all_at(unsynced, region.tail_offset() + offset as u64)
            .context(SysSnafu)?;
        region.tail_written(&self.buffered);
        Ok(())
    }
}
