//! The one replay of the metadata log, shared by `open` and `check`.
//!
//! [`scan_log`] checks the header, applies the checkpoint and every delta that
//! continues it, and stops at the first record that does not: the [`LogEnd`] says where
//! and why. It then looks at everything after that point for valid records
//! ([`After`]): a crash can only tear the last record, so a valid record after the end
//! means the log was damaged, not torn. Judging what all this means is `diagnosis`'s
//! job; this module only reports.

use std::path::Path;

use crate::Result;
use crate::error::{CorruptSnafu, ForeignFileSnafu, MetaTooLargeSnafu, UnsupportedVersionSnafu};
use crate::format::Crcs;
use crate::format::{
    self, BadHeader, DatabaseId, FIRST_RECORD, InlineWrite, MAX_META_LEN, RECORD_ALIGN, Record,
    RecordKind, RegionEntry, VERSION,
};
use crate::log_read::{self, CHUNK, Read, RecordEnd, Source};
use crate::sums;

/// No region has this number (in [`Replayed`]'s index).
const NONE: u32 = u32::MAX;

/// A region as the replayed log describes it: its newest entry, whose `crcs` are the
/// checksums of all its chunks (`sums_from` is 0), and whose `origin` is the offset of
/// the record that wrote it (errors name it).
#[derive(Debug, Clone)]
pub(crate) struct Placed {
    pub entry: RegionEntry,
}

impl Placed {
    /// The checksums of the region's chunks (validation checks their count).
    pub fn sums(&self) -> &Crcs {
        &self.entry.crcs
    }

    /// The offset of the record that wrote the entry.
    pub fn origin(&self) -> u64 {
        self.entry.origin
    }
}

/// `entry`, read from the record at `origin`, as the replay keeps it: its checksums
/// are `crcs`, all of the region's.
fn placed(mut entry: RegionEntry, origin: u64, crcs: Crcs) -> RegionEntry {
    entry.crcs = crcs;
    entry.sums_from = 0;
    entry.origin = origin;
    entry
}

/// The regions a prefix of the log describes.
///
/// Entries are kept densely and found through an index by number, which is at most
/// [`MAX_REGION_NUMBER`](format::MAX_REGION_NUMBER) long: crafted numbers cannot make
/// it probe, and every number is checked against that bound before it is used.
#[derive(Debug, Default)]
pub(crate) struct Replayed {
    /// As [`Placed`] keeps them (all checksums, and the record's offset).
    entries: Vec<RegionEntry>,
    /// By region number: the entry's position in `entries`, or [`NONE`].
    index: Vec<u32>,
    /// The lowest number never used.
    pub next_number: u64,
    /// The newest applied commit's generation.
    pub generation: u64,
    /// The newest applied commit whose data the data file was synced for.
    pub synced_generation: u64,
    /// The bytes commits after that one carried inline, in order: what the data file
    /// may have lost in a crash, and opening redoes.
    pub redo: Vec<InlineWrite>,
}

impl Replayed {
    /// The state a checkpoint describes; a number listed twice is an error.
    fn from_checkpoint(record: Record, origin: u64) -> std::result::Result<Self, String> {
        let mut state = Replayed {
            entries: Vec::new(),
            index: vec![NONE; record.next_number as usize],
            next_number: record.next_number,
            generation: record.generation,
            synced_generation: record.generation,
            redo: Vec::new(),
        };
        if let Err((number, _)) = state.adopt(record.upserts, origin) {
            return Err(format!(
                "region number {number} appears twice in the checkpoint"
            ));
        }
        Ok(state)
    }

    /// Take `upserts`, the entries of the record at `origin`, as the whole state, which
    /// has none: their vector is kept, not copied (an open of many regions would
    /// otherwise fill as many fresh pages again). Their checksums must start at chunk 0.
    /// Fails with a number listed twice, and gives the entries back, leaving the state
    /// empty.
    fn adopt(
        &mut self,
        mut upserts: Vec<RegionEntry>,
        origin: u64,
    ) -> std::result::Result<(), (u64, Vec<RegionEntry>)> {
        debug_assert!(self.entries.is_empty());
        for (at, entry) in upserts.iter_mut().enumerate() {
            debug_assert_eq!(entry.sums_from, 0);
            let slot = &mut self.index[entry.number as usize];
            if *slot != NONE {
                let twice = entry.number;
                for entry in &upserts[..at] {
                    self.index[entry.number as usize] = NONE;
                }
                return Err((twice, upserts));
            }
            *slot = at as u32;
            entry.sums_from = 0;
            entry.origin = origin;
        }
        self.entries = upserts;
        Ok(())
    }

    /// Whether a delta's checksums continue the state it applies to: an entry whose
    /// checksums start past chunk 0 must be of a region that exists, is not removed by
    /// the delta, and has at least that many chunks. Checked before anything is applied,
    /// so a refused record leaves the state as it was.
    fn check_sums(&self, record: &Record) -> std::result::Result<(), String> {
        let mut removed: Option<Vec<u64>> = None;
        for entry in record.upserts.iter().filter(|e| e.sums_from > 0) {
            let number = entry.number;
            let removed = removed.get_or_insert_with(|| {
                let mut numbers = record.removed.clone();
                numbers.sort_unstable();
                numbers
            });
            let had = match self.index.get(number as usize) {
                Some(&at) if at != NONE && removed.binary_search(&number).is_err() => {
                    self.entries[at as usize].crcs.len() as u64
                }
                _ => 0,
            };
            if entry.sums_from > had {
                return Err(format!(
                    "region {number}'s checksums continue from chunk {}, but it had {had}",
                    entry.sums_from
                ));
            }
        }
        Ok(())
    }

    /// Apply a delta: remove its numbers, then insert or replace its entries, then
    /// update checksums. The decoder has checked every number against the record's
    /// bound; a record whose checksum updates do not fit the state is refused.
    fn apply(&mut self, record: Record, origin: u64) -> std::result::Result<(), String> {
        self.check_sums(&record)?;
        let bound = record.next_number as usize;
        if self.index.len() < bound {
            self.index.resize(bound, NONE);
        }
        let Record {
            removed,
            upserts,
            next_number,
            generation,
            data_synced,
            inline,
            ..
        } = record;
        self.next_number = next_number;
        self.generation = generation;
        if data_synced {
            self.synced_generation = generation;
            self.redo.clear();
        } else {
            self.redo.extend(inline);
        }
        // A delta to a state without regions (the first after an empty checkpoint, say)
        // whose entries are all new: they become the state as they are. (Its checksums
        // start at chunk 0: `check_sums` refused any that continue none.)
        let upserts = if self.entries.is_empty() && removed.is_empty() {
            match self.adopt(upserts, origin) {
                Ok(()) => return Ok(()),
                // Listed twice: applied one by one below, the later entry winning.
                Err((_, upserts)) => upserts,
            }
        } else {
            upserts
        };
        // At most this many entries are new: grow once rather than by doubling.
        self.entries.reserve(upserts.len());
        for number in removed {
            let at = std::mem::replace(&mut self.index[number as usize], NONE);
            if at == NONE {
                continue;
            }
            self.entries.swap_remove(at as usize);
            if let Some(moved) = self.entries.get(at as usize) {
                self.index[moved.number as usize] = at;
            }
        }
        for mut entry in upserts {
            let number = entry.number as usize;
            let new = std::mem::take(&mut entry.crcs);
            match self.index[number] {
                NONE => {
                    self.index[number] = self.entries.len() as u32;
                    self.entries.push(placed(entry, origin, new));
                }
                at => {
                    let kept = &mut self.entries[at as usize];
                    let mut sums = std::mem::take(&mut kept.crcs);
                    // Checked above, but for a number listed twice in the delta: its
                    // checksums are then left empty, which validation refuses.
                    if !sums::apply(&mut sums, entry.sums_from, &new) {
                        sums.clear();
                    }
                    *kept = placed(entry, origin, sums);
                }
            }
        }
        Ok(())
    }

    /// Whether this is the state of a new database: generation 0, no region, no number
    /// ever used.
    pub fn is_new(&self) -> bool {
        self.generation == 0 && self.entries.is_empty() && self.next_number == 0
    }

    /// The entries ordered by number.
    pub fn into_sorted(mut self) -> Vec<Placed> {
        // Mostly in order already (a checkpoint lists regions by number), which the
        // sort notices.
        self.entries.sort_unstable_by_key(|entry| entry.number);
        // `Placed` wraps the entry alone: the vector is reused, not copied.
        self.entries
            .into_iter()
            .map(|entry| Placed { entry })
            .collect()
    }
}

/// Where the replay stopped, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogEnd {
    /// Offset of the first byte not part of the replayed log (a page boundary).
    pub offset: u64,
    /// Why no further record was applied.
    pub reason: RecordEnd,
}

/// A valid record found after the end of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Found {
    pub offset: u64,
    pub generation: u64,
    pub kind: RecordKind,
}

/// What lies after the end of the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct After {
    /// Valid records, in file order.
    pub records: Vec<Found>,
    /// Where the search stopped having spent its budget (a crafted file full of
    /// record heads), if it did: nothing after that offset was examined.
    pub unexamined: Option<u64>,
}

/// The log as read: its header's database id, the replayed state, and how it ends.
#[derive(Debug)]
pub(crate) struct LogScan {
    pub id: DatabaseId,
    pub state: Replayed,
    /// Records applied (the checkpoint and the deltas).
    pub records: u64,
    /// Bytes of the checkpoint record, padding included.
    pub checkpoint_len: u64,
    /// Where the last record applied starts (the checkpoint's offset when there is no
    /// delta after it).
    pub last_record: u64,
    pub end: LogEnd,
    pub after: After,
    /// Length of the metadata file.
    pub file_len: u64,
}

/// Read and replay the metadata log of `source` (the file at `path`).
///
/// With `keep_up_to`, the replay stops before the first delta newer than that
/// generation (a rollback; the records left out are then listed in [`After`]).
/// Errors are what leaves no state at all: an I/O failure, a file longer than any log
/// this build writes, a foreign, damaged or other-version header, or no valid
/// checkpoint.
pub(crate) fn scan_log<S: Source + ?Sized>(
    path: &Path,
    source: &S,
    keep_up_to: Option<u64>,
) -> Result<LogScan> {
    let file_len = source.len();
    snafu::ensure!(
        file_len <= MAX_META_LEN,
        MetaTooLargeSnafu {
            path,
            len: file_len,
            max: MAX_META_LEN,
        }
    );
    let mut header = vec![0u8; file_len.min(FIRST_RECORD) as usize];
    source.read_at(&mut header, 0)?;
    let id = match format::decode_meta_header(&header) {
        Ok(id) => id,
        Err(BadHeader::Foreign) => {
            return ForeignFileSnafu {
                path,
                kind: "metadata",
            }
            .fail();
        }
        Err(BadHeader::Version(found)) => {
            return UnsupportedVersionSnafu {
                path,
                found,
                supported: VERSION,
            }
            .fail();
        }
        Err(BadHeader::Damaged(reason)) => {
            return CorruptSnafu {
                path,
                offset: 0u64,
                reason: format!("the header is damaged: {reason}"),
            }
            .fail();
        }
    };
    let no_checkpoint = |reason: String| {
        CorruptSnafu {
            path,
            offset: FIRST_RECORD,
            reason,
        }
        .fail()
    };
    let (first, checkpoint_len) = match log_read::read_record(source, FIRST_RECORD, &id)? {
        Read::Record(record, span) => (record, span),
        Read::End(end) => {
            return no_checkpoint(format!(
                "no valid checkpoint record ({end}), so no commit can be recovered"
            ));
        }
    };
    if first.kind != RecordKind::Checkpoint {
        return no_checkpoint("the log starts with a delta record instead of a checkpoint".into());
    }
    let mut state = match Replayed::from_checkpoint(first, FIRST_RECORD) {
        Ok(state) => state,
        Err(reason) => return no_checkpoint(reason),
    };
    let mut records = 1;
    let mut last_record = FIRST_RECORD;
    let mut offset = FIRST_RECORD + checkpoint_len;
    let reason = loop {
        let (record, span) = match log_read::read_record(source, offset, &id)? {
            Read::Record(record, span) => (record, span),
            Read::End(end) => break end,
        };
        let expected = state.generation + 1;
        if record.kind != RecordKind::Delta {
            break RecordEnd::Kind { found: record.kind };
        }
        if record.generation != expected {
            break RecordEnd::Generation {
                found: record.generation,
                expected,
            };
        }
        if let Some(kept) = keep_up_to
            && record.generation > kept
        {
            break RecordEnd::Beyond { kept };
        }
        if let Err(reason) = state.apply(record, offset) {
            // Nothing of the record is kept: the state is the previous record's.
            break RecordEnd::Malformed(reason);
        }
        records += 1;
        last_record = offset;
        offset += span;
    };
    let after = if reason == RecordEnd::EndOfFile {
        After::default()
    } else {
        search_after(source, offset, reason.is_checksummed(), &id)?
    };
    Ok(LogScan {
        id,
        state,
        records,
        checkpoint_len,
        last_record,
        end: LogEnd { offset, reason },
        after,
        file_len,
    })
}

/// The piece of the file after the log read at once when searching it.
const SEARCH_PIECE: usize = 64 << 10;

/// Look for valid records at the page boundaries after `end` (the end of the log), and
/// at `end` itself when the record there had a valid checksum (it is then listed, if
/// it is a record at all).
///
/// The file is read in pieces; only pages that start with a record magic are decoded,
/// and the bytes spent decoding them are bounded by twice the bytes searched (plus a
/// little), so a file crafted full of record heads costs linear time: past the budget,
/// the search stops and says where.
pub(crate) fn search_after<S: Source + ?Sized>(
    source: &S,
    end: u64,
    include_end: bool,
    id: &DatabaseId,
) -> Result<After> {
    let len = source.len();
    let mut after = After::default();
    let mut budget = 2 * len.saturating_sub(end) + CHUNK as u64;
    let mut page = end + RECORD_ALIGN;
    if include_end && let Read::Record(record, span) = log_read::read_record(source, end, id)? {
        after.records.push(Found {
            offset: end,
            generation: record.generation,
            kind: record.kind,
        });
        page = end + span;
    }
    // After a healthy log what is left is the zeroed room laid down for the next
    // records: the piece is no larger than that, and no larger than the buffer a record
    // body was just read through, whose memory it then takes over (a larger piece would
    // be fresh pages for every open to fault in).
    let mut piece = vec![0u8; (len.saturating_sub(page)).min(SEARCH_PIECE as u64) as usize];
    while page < len {
        let take = (len - page).min(SEARCH_PIECE as u64) as usize;
        source.read_at(&mut piece[..take], page)?;
        let mut next = page + take as u64;
        let mut at = 0usize;
        while at < take {
            let here = page + at as u64;
            if piece[at..take].starts_with(&format::RECORD_MAGIC) {
                // A record claiming more than the file holds is refused unread.
                let claimed = record_span_claimed(&piece[at..take]);
                let cost = if claimed <= len - here { claimed } else { 0 };
                if cost > budget {
                    after.unexamined = Some(here);
                    return Ok(after);
                }
                budget -= cost;
                if let Read::Record(record, span) = log_read::read_record(source, here, id)? {
                    after.records.push(Found {
                        offset: here,
                        generation: record.generation,
                        kind: record.kind,
                    });
                    // Continue after the record: its own pages are not searched.
                    next = here + span;
                    break;
                }
            }
            at += RECORD_ALIGN as usize;
        }
        page = next;
    }
    Ok(after)
}

/// What decoding the record whose head starts `bytes` may read at most: its claimed
/// length when the head is whole, else one page.
fn record_span_claimed(bytes: &[u8]) -> u64 {
    match bytes.get(..format::RECORD_HEAD_LEN) {
        Some(head) => format::round_to_record(
            (format::RECORD_HEAD_LEN as u64)
                .saturating_add(format::u64_at(head, 4).min(format::MAX_BODY_LEN)),
        ),
        None => RECORD_ALIGN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{encode_meta_header, encode_record};

    const ID: DatabaseId = *b"replay-test-id..";

    fn entry(number: u64, name: &str) -> RegionEntry {
        RegionEntry {
            number,
            start: 4096 * (number + 1),
            reserved: 4096,
            len: 10,
            name: name.into(),
            sums_from: 0,
            crcs: crate::sums::zeros(10),
            origin: 0,
        }
    }

    fn checkpoint(generation: u64, entries: Vec<RegionEntry>) -> Record {
        Record {
            data_synced: true,
            inline: Vec::new(),
            generation,
            kind: RecordKind::Checkpoint,
            next_number: 8,
            removed: Vec::new(),
            upserts: entries,
        }
    }

    fn delta(generation: u64, removed: Vec<u64>, entries: Vec<RegionEntry>) -> Record {
        Record {
            data_synced: true,
            inline: Vec::new(),
            generation,
            kind: RecordKind::Delta,
            next_number: 8,
            removed,
            upserts: entries,
        }
    }

    fn file(records: &[Record]) -> (Vec<u8>, Vec<u64>) {
        let mut bytes = vec![0u8; FIRST_RECORD as usize];
        bytes[..format::META_HEADER_LEN].copy_from_slice(&encode_meta_header(&ID));
        let mut offsets = Vec::new();
        for record in records {
            offsets.push(bytes.len() as u64);
            bytes.extend(encode_record(&ID, record).unwrap());
        }
        (bytes, offsets)
    }

    fn log() -> (Vec<u8>, Vec<u64>) {
        file(&[
            checkpoint(1, vec![entry(0, "a"), entry(1, "b")]),
            delta(2, vec![0], vec![entry(2, "c")]),
            delta(3, vec![], vec![entry(1, "b2")]),
            delta(4, vec![2], vec![entry(0, "a again")]),
        ])
    }

    fn names(scan: LogScan) -> Vec<String> {
        scan.state
            .into_sorted()
            .into_iter()
            .map(|p| p.entry.name.to_string())
            .collect()
    }

    #[test]
    fn a_whole_log_replays_to_its_newest_commit() {
        let (bytes, offsets) = log();
        let scan = scan_log(Path::new("meta"), bytes.as_slice(), None).unwrap();
        assert_eq!(scan.id, ID);
        assert_eq!((scan.records, scan.state.generation), (4, 4));
        assert_eq!(scan.end.reason, RecordEnd::EndOfFile);
        assert_eq!(scan.after, After::default());
        let sorted = scan.state.into_sorted();
        assert_eq!(sorted[0].origin(), offsets[3]);
        assert_eq!(sorted[1].origin(), offsets[2]);
        let (bytes, _) = log();
        let scan = scan_log(Path::new("meta"), bytes.as_slice(), None).unwrap();
        assert_eq!(names(scan), ["a again", "b2"]);
    }

    #[test]
    fn a_torn_last_record_ends_the_log_with_nothing_after() {
        let (bytes, offsets) = log();
        let cut = &bytes[..offsets[3] as usize + 30];
        let scan = scan_log(Path::new("meta"), cut, None).unwrap();
        assert_eq!(scan.state.generation, 3);
        assert_eq!(scan.end.offset, offsets[3]);
        assert!(matches!(scan.end.reason, RecordEnd::Cut { .. }));
        assert_eq!(scan.after, After::default());
    }

    #[test]
    fn a_damaged_record_before_valid_ones_is_reported_with_them() {
        let (mut bytes, offsets) = log();
        bytes[offsets[1] as usize + 20] ^= 1;
        let scan = scan_log(Path::new("meta"), bytes.as_slice(), None).unwrap();
        assert_eq!(scan.state.generation, 1);
        assert_eq!(scan.end.offset, offsets[1]);
        assert!(matches!(scan.end.reason, RecordEnd::Checksum { .. }));
        let found: Vec<(u64, u64)> = scan
            .after
            .records
            .iter()
            .map(|f| (f.offset, f.generation))
            .collect();
        assert_eq!(found, [(offsets[2], 3), (offsets[3], 4)]);
    }

    #[test]
    fn a_rollback_keeps_the_commits_up_to_a_generation() {
        let (bytes, offsets) = log();
        let scan = scan_log(Path::new("meta"), bytes.as_slice(), Some(2)).unwrap();
        assert_eq!(scan.state.generation, 2);
        assert_eq!(scan.end.reason, RecordEnd::Beyond { kept: 2 });
        assert_eq!(scan.after.records.len(), 2);
        assert_eq!(scan.after.records[0].offset, offsets[2]);
    }

    #[test]
    fn a_checksummed_record_that_does_not_continue_ends_the_log() {
        let (mut bytes, _) = log();
        bytes.extend(encode_record(&ID, &delta(9, vec![], vec![])).unwrap());
        let scan = scan_log(Path::new("meta"), bytes.as_slice(), None).unwrap();
        assert_eq!(
            scan.end.reason,
            RecordEnd::Generation {
                found: 9,
                expected: 5
            }
        );
        assert!(scan.end.reason.is_checksummed());
        assert_eq!(scan.after.records.len(), 1);
    }

    #[test]
    fn a_file_full_of_record_heads_is_searched_in_linear_time() {
        let (mut bytes, _) = log();
        let end = bytes.len();
        // 2,000 pages, each a head claiming a body to the end of the file.
        let pages = 2000;
        bytes.resize(end + pages * RECORD_ALIGN as usize, 0);
        for page in 0..pages {
            let at = end + page * RECORD_ALIGN as usize;
            let claim = (bytes.len() - at - 16) as u64;
            bytes[at..at + 4].copy_from_slice(&format::RECORD_MAGIC);
            bytes[at + 4..at + 12].copy_from_slice(&claim.to_le_bytes());
        }
        let scan = scan_log(Path::new("meta"), bytes.as_slice(), None).unwrap();
        assert_eq!(scan.state.generation, 4);
        assert!(scan.after.records.is_empty());
        assert!(scan.after.unexamined.is_some(), "the budget ran out");
    }

    /// The valid records after `end` as a reader that decodes every page boundary
    /// finds them: at `end` too when `include_end`, each record's own pages skipped.
    fn every_page_searched(bytes: &[u8], end: u64, include_end: bool) -> Vec<(u64, u64)> {
        let mut found = Vec::new();
        let mut page = end + RECORD_ALIGN;
        if include_end
            && let Read::Record(record, span) = log_read::read_record(bytes, end, &ID).unwrap()
        {
            found.push((end, record.generation));
            page = end + span;
        }
        while page < bytes.len() as u64 {
            match log_read::read_record(bytes, page, &ID).unwrap() {
                Read::Record(record, span) => {
                    found.push((page, record.generation));
                    page += span;
                }
                Read::End(_) => page += RECORD_ALIGN,
            }
        }
        found
    }

    #[test]
    fn the_search_after_the_log_finds_what_every_page_holds_whatever_the_tail() {
        // Tails empty, of a page, around a search piece (1 MiB) and two, cut anywhere in
        // a page; records of one page and of several (crossing a piece boundary when
        // they lie across it), at the log's end or after it, and heads claiming more
        // than the file holds.
        fn prop(pages: u16, extra: u16, include_end: bool, placed: Vec<(u16, u8)>) -> bool {
            let piece = (CHUNK as u64 / RECORD_ALIGN) as u16;
            let tails = [
                0,
                1,
                2,
                piece - 1,
                piece,
                piece + 1,
                2 * piece,
                2 * piece + 3,
            ];
            let pages = u64::from(tails[usize::from(pages) % tails.len()]);
            let extra = if pages == 0 {
                0
            } else {
                u64::from(extra) % RECORD_ALIGN
            };
            let (mut bytes, _) = file(&[checkpoint(1, vec![entry(0, "a")])]);
            let end = bytes.len() as u64;
            bytes.resize((end + pages * RECORD_ALIGN + extra) as usize, 0);
            let len = bytes.len() as u64;
            let mut big = entry(1, "big");
            big.len = 5000 * format::SUM_CHUNK;
            big.crcs = (0..5000u32).collect();
            let records = [
                encode_record(&ID, &delta(2, vec![], vec![entry(1, "b")])).unwrap(),
                encode_record(&ID, &delta(3, vec![0], vec![big])).unwrap(),
                encode_record(&ID, &checkpoint(9, vec![])).unwrap(),
            ];
            for (page, which) in placed.into_iter().take(6) {
                let at = end + (u64::from(page) % (pages + 1)) * RECORD_ALIGN;
                if at >= len {
                    continue;
                }
                let at = at as usize;
                match which % 4 {
                    3 => {
                        // A head claiming a body past the end of the file.
                        let room = bytes.len() - at;
                        let head = &mut bytes[at..at + room.min(16)];
                        let magic = head.len().min(4);
                        head[..magic].copy_from_slice(&format::RECORD_MAGIC[..magic]);
                        if head.len() >= 12 {
                            head[4..12].copy_from_slice(&(len - at as u64).to_le_bytes());
                        }
                    }
                    which => {
                        // Cut by the end of the file when it does not fit.
                        let record = &records[usize::from(which)];
                        let fits = record.len().min(bytes.len() - at);
                        bytes[at..at + fits].copy_from_slice(&record[..fits]);
                    }
                }
            }
            let after = search_after(bytes.as_slice(), end, include_end, &ID).unwrap();
            let found: Vec<(u64, u64)> = after
                .records
                .iter()
                .map(|f| (f.offset, f.generation))
                .collect();
            after.unexamined.is_none() && found == every_page_searched(&bytes, end, include_end)
        }
        quickcheck::QuickCheck::new()
            .tests(300)
            .max_tests(300)
            .quickcheck(prop as fn(u16, u16, bool, Vec<(u16, u8)>) -> bool);
    }

    #[test]
    fn the_first_entries_after_an_empty_checkpoint_become_the_state() {
        let scan = |records: &[Record]| {
            let (bytes, offsets) = file(records);
            let scan = scan_log(Path::new("meta"), bytes.as_slice(), None).unwrap();
            assert_eq!(scan.state.generation, records.len() as u64, "all applied");
            (scan, offsets)
        };
        let (first, offsets) = scan(&[
            checkpoint(1, vec![]),
            delta(2, vec![], vec![entry(3, "c"), entry(1, "a")]),
        ]);
        let sorted = first.state.into_sorted();
        assert_eq!(sorted.len(), 2);
        assert!(
            sorted
                .iter()
                .all(|p| p.origin() == offsets[1] && p.entry.sums_from == 0)
        );
        assert_eq!(sorted[0].entry.name.as_str(), "a");
        // A number listed twice in that delta: applied in order, the later entry wins.
        let (twice, _) = scan(&[
            checkpoint(1, vec![]),
            delta(
                2,
                vec![],
                vec![entry(1, "a"), entry(2, "b"), entry(1, "a2")],
            ),
            delta(3, vec![], vec![entry(4, "d")]),
        ]);
        assert_eq!(names(twice), ["a2", "b", "d"]);
    }

    #[test]
    fn entries_taken_as_the_state_after_every_region_was_removed() {
        let (bytes, offsets) = file(&[
            checkpoint(1, vec![entry(0, "a"), entry(1, "b")]),
            delta(2, vec![0, 1], vec![]),
            // The state is empty again: these become it, a number listed twice.
            delta(
                3,
                vec![],
                vec![entry(2, "c"), entry(2, "c2"), entry(0, "a2")],
            ),
            // A continuation of an adopted entry's checksums.
            delta(
                4,
                vec![],
                vec![RegionEntry {
                    sums_from: 1,
                    crcs: Default::default(),
                    ..entry(2, "c3")
                }],
            ),
        ]);
        let scan = scan_log(Path::new("meta"), bytes.as_slice(), None).unwrap();
        assert_eq!(scan.state.generation, 4, "all applied");
        let sorted = scan.state.into_sorted();
        let names: Vec<_> = sorted.iter().map(|p| p.entry.name.to_string()).collect();
        assert_eq!(names, ["a2", "c3"]);
        assert_eq!(sorted[0].origin(), offsets[2]);
        assert_eq!(sorted[1].origin(), offsets[3]);
        assert_eq!(sorted[1].sums().len(), 1);
    }

    #[test]
    fn checksums_of_a_large_region_follow_its_deltas() {
        // A region of more chunks than a decoding batch and than a piece of a body holds,
        // whose deltas change its checksums from the end (none changed), the last chunk,
        // a batch boundary and the start, shrink and grow it; then a delta continuing
        // beyond the chunks it had ends the log, and nothing of it is kept.
        let region = |len_chunks: u64, sums_from: u64, salt: u32| RegionEntry {
            len: len_chunks * format::SUM_CHUNK,
            reserved: 4096 * 400_000,
            sums_from,
            crcs: (sums_from..len_chunks)
                .map(|c| (c as u32).wrapping_mul(0x9e37_79b9) ^ salt)
                .collect(),
            ..entry(1, "large")
        };
        let mut model = Crcs::new();
        let mut records = vec![checkpoint(1, vec![entry(0, "a"), region(20_000, 0, 1)])];
        model.extend(region(20_000, 0, 1).crcs);
        for (generation, (len_chunks, sums_from)) in [
            (20_000, 20_000),
            (20_000, 19_999),
            (20_000, 4096),
            (17_000, 17_000),
            (18_000, 16_385),
            (18_000, 0),
        ]
        .into_iter()
        .enumerate()
        {
            let salt = generation as u32 + 2;
            let changed = region(len_chunks, sums_from, salt);
            model.truncate(sums_from as usize);
            model.extend(changed.crcs.iter().copied());
            records.push(delta(generation as u64 + 2, vec![], vec![changed]));
        }
        let applied = records.len() as u64;
        records.push(delta(applied + 1, vec![], vec![region(18_000, 18_000, 0)]));
        records.push(delta(applied + 2, vec![], vec![region(20_000, 18_001, 0)]));
        let (bytes, offsets) = file(&records);
        let scan = scan_log(Path::new("meta"), bytes.as_slice(), None).unwrap();
        assert_eq!(scan.state.generation, applied + 1);
        assert_eq!(scan.end.offset, offsets[applied as usize + 1]);
        assert_eq!(
            scan.end.reason,
            RecordEnd::Malformed(
                "region 1's checksums continue from chunk 18001, but it had 18000".into()
            )
        );
        let sorted = scan.state.into_sorted();
        assert_eq!(sorted[1].entry.len, 18_000 * format::SUM_CHUNK);
        assert!(
            sorted[1].sums().as_slice() == model.as_slice(),
            "checksums differ"
        );
    }

    #[test]
    fn headers_and_checkpoints_that_leave_no_state_are_errors() {
        let (bytes, offsets) = log();
        let scan = |bytes: &[u8]| scan_log(Path::new("meta"), bytes, None).unwrap_err();
        assert!(matches!(scan(&[]), crate::Error::ForeignFile { .. }));
        assert!(matches!(
            scan(&bytes[..offsets[0] as usize + 10]),
            crate::Error::Corrupt { offset: 4096, .. }
        ));
        let mut twice = file(&[checkpoint(1, vec![entry(0, "a"), entry(0, "b")])]).0;
        assert!(scan(&twice).to_string().contains("appears twice"));
        twice[7] ^= 1;
        assert!(matches!(scan(&twice), crate::Error::ForeignFile { .. }));
        let (deltas, _) = file(&[delta(1, vec![], vec![])]);
        assert!(scan(&deltas).to_string().contains("starts with a delta"));
    }
}
