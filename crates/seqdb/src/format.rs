//! The metadata file's byte format: header, commit records, and the bounds every value
//! in them must respect.
//!
//! Everything here is pure: bytes in, values out. A record body is parsed from any
//! [`BodyBytes`], so the same parser reads a record held in memory and one streamed
//! from a file in bounded pieces (`log_read`). `docs/FORMAT.md` describes the same
//! layout for people; the tests below pin it.

use std::fmt;

use crate::PAGE_SIZE;
use crate::name::Name;

/// The format version this build writes and accepts.
pub(crate) const VERSION: u32 = 3;
/// First eight bytes of every metadata file.
pub(crate) const META_MAGIC: [u8; 8] = *b"SEQDBMET";
/// Size of the metadata file's header in bytes; records start at the next page.
pub(crate) const META_HEADER_LEN: usize = 40;
/// Every record starts on a page boundary, so a torn write never touches an older record.
pub(crate) const RECORD_ALIGN: u64 = PAGE_SIZE;
/// Where the first record (the checkpoint) starts.
pub(crate) const FIRST_RECORD: u64 = RECORD_ALIGN;
/// Marks the start of a record.
pub(crate) const RECORD_MAGIC: [u8; 4] = *b"SQDR";
/// Bytes before a record's body: magic, body length (`u64`), checksum.
pub(crate) const RECORD_HEAD_LEN: usize = 16;
/// Longest region name in bytes.
pub(crate) const MAX_NAME_LEN: usize = 1024;
/// Region numbers stay below this bound (a larger one in a file is corruption): it caps
/// what a damaged or crafted metadata file can make `open` allocate.
pub(crate) const MAX_REGION_NUMBER: u64 = 1 << 24;
/// The largest generation a record may carry: far beyond any real database's count of
/// commits, and far enough below `u64::MAX` that the next one never wraps.
pub(crate) const MAX_GENERATION: u64 = (1 << 63) - 1;
/// Body bytes besides its lists: generation, kind, number bound, the counts of removed
/// numbers and of entries, flags, the count of inline writes.
const BODY_FIXED_LEN: u64 = 8 + 1 + 8 + 4 + 4 + 1 + 4;
/// Region bytes are checksummed in chunks of this many bytes (the last one of a region
/// may be shorter): one CRC-32 per chunk, so checksums take 1/16384 of the data.
pub(crate) const SUM_CHUNK: u64 = 64 * 1024;
/// The data file is never longer than this (2^48 bytes, 256 TiB): it bounds the chunk
/// checksums a record may carry.
pub(crate) const MAX_DATA_LEN: u64 = 1 << 48;
/// The most chunk checksums a record may carry: every chunk of the largest data file.
const MAX_CHUNKS: u64 = MAX_DATA_LEN / SUM_CHUNK;
/// The most region bytes one record carries inline (see [`InlineWrite`]).
pub(crate) const MAX_INLINE_BYTES: u64 = 1 << 20;
/// Bytes of an inline write besides its bytes: offset and length.
const INLINE_FIXED_LEN: u64 = 8 + 4;
/// Flag bit: every byte the data file must hold for this commit was synced before the
/// record was written, so nothing before it needs to be redone.
const FLAG_DATA_SYNCED: u8 = 1;
/// Bytes of a region entry besides its name and its checksums: number, start, reserved,
/// length, name length, and the first chunk whose checksum follows.
const ENTRY_FIXED_LEN: u64 = 8 + 8 + 8 + 8 + 2 + 8;
/// The longest body this build writes: every region removed and every region written
/// with the longest name.
pub(crate) const MAX_BODY_LEN: u64 = BODY_FIXED_LEN
    + MAX_REGION_NUMBER * 8
    + MAX_REGION_NUMBER * (ENTRY_FIXED_LEN + MAX_NAME_LEN as u64)
    + MAX_CHUNKS * 4
    + MAX_REGION_NUMBER * INLINE_FIXED_LEN
    + MAX_INLINE_BYTES;
/// The most bytes one record occupies, padding included.
pub(crate) const MAX_RECORD_SPAN: u64 =
    (RECORD_HEAD_LEN as u64 + MAX_BODY_LEN).div_ceil(RECORD_ALIGN) * RECORD_ALIGN;
/// The log is written into zeros laid down ahead of it in steps of this many bytes, so
/// that a commit's sync rarely has to change the file's length.
pub(crate) const LOG_ROOM: u64 = 128 * 1024;
/// The longest metadata file this build writes: the header page, a checkpoint, deltas
/// up to twice a checkpoint (the log is then rewritten), one more delta, and the zeros
/// laid down ahead of the log.
pub(crate) const MAX_META_LEN: u64 = FIRST_RECORD + 4 * MAX_RECORD_SPAN + LOG_ROOM;

/// The unique id of a database, in the headers of both of its files.
pub(crate) type DatabaseId = [u8; 16];

/// Whether a record replaces the whole state or changes part of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecordKind {
    /// The complete list of regions.
    Checkpoint,
    /// Regions changed or removed since the previous record.
    Delta,
}

impl RecordKind {
    fn code(self) -> u8 {
        match self {
            RecordKind::Checkpoint => 1,
            RecordKind::Delta => 2,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(RecordKind::Checkpoint),
            2 => Some(RecordKind::Delta),
            _ => None,
        }
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecordKind::Checkpoint => "checkpoint",
            RecordKind::Delta => "delta",
        })
    }
}

/// Chunk checksums, held without a heap allocation for a region of one chunk.
pub(crate) type Crcs = smallvec::SmallVec<[u32; 1]>;

/// One region as a commit records it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RegionEntry {
    pub number: u64,
    pub start: u64,
    pub reserved: u64,
    pub len: u64,
    pub name: Name,
    /// The region's chunk checksums from chunk `sums_from` on are `crcs` (those before
    /// are as the previous record left them); `sums_from` is the chunk count when none
    /// changed, and 0 in a checkpoint.
    pub sums_from: u64,
    pub crcs: Crcs,
    /// Where the entry was read: the offset of the log record that holds it (0 for an
    /// entry made in memory). Not encoded; errors about the entry name it.
    pub origin: u64,
}

/// Bytes a commit wrote into the data file at `offset`, carried in its record so that
/// the data file need not be synced for it: opening redoes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InlineWrite {
    pub offset: u64,
    pub bytes: Vec<u8>,
}

/// One commit: a checkpoint or a delta.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub generation: u64,
    pub kind: RecordKind,
    /// The lowest region number never used so far.
    pub next_number: u64,
    /// Numbers of regions removed (deltas only).
    pub removed: Vec<u64>,
    /// Regions created or changed (all regions, for a checkpoint).
    pub upserts: Vec<RegionEntry>,
    /// Whether the data file was synced for this commit before the record was written
    /// (always, for a checkpoint). When not, `inline` holds every byte the commit wrote.
    pub data_synced: bool,
    /// The bytes this commit wrote, when the data file was not synced for it.
    pub inline: Vec<InlineWrite>,
}

impl Record {
    /// A record with no checksum update and no inline write.
    pub fn new(
        generation: u64,
        kind: RecordKind,
        next_number: u64,
        removed: Vec<u64>,
        upserts: Vec<RegionEntry>,
    ) -> Self {
        Record {
            generation,
            kind,
            next_number,
            removed,
            upserts,
            data_synced: true,
            inline: Vec::new(),
        }
    }
}

/// Why a metadata header cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BadHeader {
    /// The file does not start with the metadata magic.
    Foreign,
    /// The header is intact but written by another format version.
    Version(u32),
    /// The header is damaged; the reason says how.
    Damaged(&'static str),
}

/// The header of a new metadata file of database `id`.
pub(crate) fn encode_meta_header(id: &DatabaseId) -> [u8; META_HEADER_LEN] {
    let mut out = [0u8; META_HEADER_LEN];
    out[..8].copy_from_slice(&META_MAGIC);
    out[8..12].copy_from_slice(&VERSION.to_le_bytes());
    out[12..16].copy_from_slice(&(META_HEADER_LEN as u32).to_le_bytes());
    // bytes 16..20 are flags, zero in version 2
    out[20..36].copy_from_slice(id);
    let crc = crc32fast::hash(&out[..36]);
    out[36..40].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Check a metadata file's header (the start of the file) and return its database id.
///
/// The header's length field says where its checksum is, so an intact header of
/// another version is told apart from a damaged one: the first is
/// [`BadHeader::Version`], the second [`BadHeader::Damaged`].
pub(crate) fn decode_meta_header(bytes: &[u8]) -> Result<DatabaseId, BadHeader> {
    intact_header(bytes, &META_MAGIC, 20, PAGE_SIZE as usize)?;
    if u32_at(bytes, 12) as usize != META_HEADER_LEN {
        return Err(BadHeader::Damaged(
            "the header length does not match its version",
        ));
    }
    if u32_at(bytes, 16) != 0 {
        return Err(BadHeader::Damaged("unknown header flags are set"));
    }
    let mut id = DatabaseId::default();
    id.copy_from_slice(&bytes[20..36]);
    Ok(id)
}

/// Check the framing shared by the headers of both files: `magic`, then a version and
/// the header's length (`u32`s at 8 and 12), and a CRC-32 of everything before it in
/// the header's last four bytes; the version must be [`VERSION`].
pub(crate) fn intact_header(
    bytes: &[u8],
    magic: &[u8; 8],
    min_len: usize,
    max_len: usize,
) -> Result<(), BadHeader> {
    if bytes.len() < magic.len() || bytes[..magic.len()] != magic[..] {
        return Err(BadHeader::Foreign);
    }
    if bytes.len() < 16 {
        return Err(BadHeader::Damaged("the header is cut short"));
    }
    let len = u32_at(bytes, 12) as usize;
    if !(min_len + 4..=max_len).contains(&len) {
        return Err(BadHeader::Damaged("the header length is out of range"));
    }
    if bytes.len() < len {
        return Err(BadHeader::Damaged("the header is cut short"));
    }
    if crc32fast::hash(&bytes[..len - 4]) != u32_at(bytes, len - 4) {
        return Err(BadHeader::Damaged("the header's checksum does not match"));
    }
    match u32_at(bytes, 8) {
        VERSION => Ok(()),
        other => Err(BadHeader::Version(other)),
    }
}

/// A record that cannot be written because no reader could take it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooLarge {
    /// The body length the record would have.
    pub body_len: u64,
}

/// Encode a record of database `id`, padded with zeros to a whole number of pages.
/// Removed numbers are written once each, in order (removing a number twice is removing
/// it once).
pub(crate) fn encode_record(id: &DatabaseId, record: &Record) -> Result<Vec<u8>, TooLarge> {
    let mut removed = record.removed.clone();
    removed.sort_unstable();
    removed.dedup();
    let names: u64 = record.upserts.iter().map(|e| e.name.len() as u64).sum();
    let crcs: u64 = record.upserts.iter().map(|e| e.crcs.len() as u64).sum();
    let inline: u64 = record.inline.iter().map(|w| w.bytes.len() as u64).sum();
    let body_len = BODY_FIXED_LEN
        + removed.len() as u64 * 8
        + record.upserts.len() as u64 * ENTRY_FIXED_LEN
        + names
        + crcs * 4
        + record.inline.len() as u64 * INLINE_FIXED_LEN
        + inline;
    let fits = body_len <= MAX_BODY_LEN
        && record.upserts.iter().all(|e| e.name.len() <= MAX_NAME_LEN)
        && record.generation <= MAX_GENERATION
        && inline <= MAX_INLINE_BYTES
        && (record.inline.len() as u64) <= MAX_REGION_NUMBER
        && record
            .upserts
            .iter()
            .all(|e| e.sums_from + e.crcs.len() as u64 <= MAX_CHUNKS)
        && record
            .inline
            .iter()
            .all(|w| w.offset + w.bytes.len() as u64 <= MAX_DATA_LEN);
    if !fits {
        return Err(TooLarge { body_len });
    }
    let total = RECORD_HEAD_LEN + body_len as usize;
    let mut out = Vec::with_capacity(round_to_record(total as u64) as usize);
    out.extend_from_slice(&RECORD_MAGIC);
    out.extend_from_slice(&body_len.to_le_bytes());
    out.extend_from_slice(&[0; 4]); // checksum, filled below
    write_body(record, &removed, &mut out);
    debug_assert_eq!(out.len(), total);
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(id);
    hasher.update(&out[4..12]);
    hasher.update(&out[RECORD_HEAD_LEN..]);
    out[12..16].copy_from_slice(&hasher.finalize().to_le_bytes());
    out.resize(round_to_record(total as u64) as usize, 0);
    Ok(out)
}

/// Append the body of `record`, with `removed` as its removed numbers, to `out`, as
/// written: no bound is checked here.
fn write_body(record: &Record, removed: &[u64], out: &mut Vec<u8>) {
    out.extend_from_slice(&record.generation.to_le_bytes());
    out.push(record.kind.code());
    out.extend_from_slice(&record.next_number.to_le_bytes());
    out.extend_from_slice(&(removed.len() as u32).to_le_bytes());
    for number in removed {
        out.extend_from_slice(&number.to_le_bytes());
    }
    out.extend_from_slice(&(record.upserts.len() as u32).to_le_bytes());
    for entry in &record.upserts {
        out.extend_from_slice(&entry.number.to_le_bytes());
        out.extend_from_slice(&entry.start.to_le_bytes());
        out.extend_from_slice(&entry.reserved.to_le_bytes());
        out.extend_from_slice(&entry.len.to_le_bytes());
        out.extend_from_slice(&(entry.name.len() as u16).to_le_bytes());
        out.extend_from_slice(entry.name.as_bytes());
        out.extend_from_slice(&entry.sums_from.to_le_bytes());
        for crc in &entry.crcs {
            out.extend_from_slice(&crc.to_le_bytes());
        }
    }
    out.push(if record.data_synced {
        FLAG_DATA_SYNCED
    } else {
        0
    });
    out.extend_from_slice(&(record.inline.len() as u32).to_le_bytes());
    for write in &record.inline {
        out.extend_from_slice(&write.offset.to_le_bytes());
        out.extend_from_slice(&(write.bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(&write.bytes);
    }
}

/// Round a byte count up to whole record pages.
pub(crate) fn round_to_record(len: u64) -> u64 {
    len.div_ceil(RECORD_ALIGN) * RECORD_ALIGN
}

/// A record's head: where its body ends and what its checksum must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    pub body_len: u64,
    pub crc: u32,
}

/// What the first [`RECORD_HEAD_LEN`] bytes at a record's offset say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeadRead {
    /// A record head (its length not checked yet).
    Head(Head),
    /// Zeros where a record should start.
    Zeros,
    /// Something else than a record.
    NoMagic,
}

/// Read a record head from exactly [`RECORD_HEAD_LEN`] bytes.
pub(crate) fn decode_head(bytes: &[u8; RECORD_HEAD_LEN]) -> HeadRead {
    if bytes[..4] != RECORD_MAGIC {
        return if bytes.iter().all(|&b| b == 0) {
            HeadRead::Zeros
        } else {
            HeadRead::NoMagic
        };
    }
    HeadRead::Head(Head {
        body_len: u64_at(bytes, 4),
        crc: u32_at(bytes, 12),
    })
}

/// A checksum over database `id`, a record's length field and (to be fed) its body, as
/// [`encode_record`] computes it. The id binds a record to its database: a record's
/// bytes found elsewhere (in a region's bytes that a record carries, say) do not pass
/// for one of this log's without it.
pub(crate) fn record_hasher(id: &DatabaseId, head: &[u8; RECORD_HEAD_LEN]) -> crc32fast::Hasher {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(id);
    hasher.update(&head[4..12]);
    hasher
}

/// The bytes of one record body, handed out in order; an I/O failure is `E`.
pub(crate) trait BodyBytes {
    /// The error reading the bytes may give.
    type Error;
    /// The next `n` bytes, or `None` when fewer than `n` are left.
    fn take(&mut self, n: usize) -> Result<Option<&[u8]>, Self::Error>;
    /// How many bytes are left.
    fn remaining(&self) -> u64;
}

/// A body held in memory.
#[cfg(test)]
pub(crate) struct SliceBytes<'a>(pub &'a [u8]);

#[cfg(test)]
impl BodyBytes for SliceBytes<'_> {
    type Error = std::convert::Infallible;

    fn take(&mut self, n: usize) -> Result<Option<&[u8]>, Self::Error> {
        if self.0.len() < n {
            return Ok(None);
        }
        let (taken, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(Some(taken))
    }

    fn remaining(&self) -> u64 {
        self.0.len() as u64
    }
}

/// Parse a record body. The outer error is the byte source's; the inner one says why
/// the body is not a record this build writes (every bound is checked before anything
/// is allocated by it). The caller checks the checksum.
pub(crate) fn parse_body<B: BodyBytes>(bytes: &mut B) -> Result<Result<Record, String>, B::Error> {
    let mut body = Body { bytes };
    body.record()
}

/// Parsing state: field readers that turn a short body into a reason.
struct Body<'b, B> {
    bytes: &'b mut B,
}

/// Inside [`Body`]: a field's bytes, or why there are none.
type Field<T, E> = Result<Result<T, String>, E>;

macro_rules! field {
    ($e:expr) => {
        match $e? {
            Ok(value) => value,
            Err(reason) => return Ok(Err(reason)),
        }
    };
}

macro_rules! ensure_body {
    ($cond:expr, $($reason:tt)+) => {
        if !$cond {
            return Ok(Err(format!($($reason)+)));
        }
    };
}

impl<B: BodyBytes> Body<'_, B> {
    #[inline]
    fn take<const N: usize>(&mut self, what: &str) -> Field<[u8; N], B::Error> {
        Ok(match self.bytes.take(N)? {
            Some(bytes) => {
                let mut out = [0u8; N];
                out.copy_from_slice(bytes);
                Ok(out)
            }
            None => Err(format!("the body ends inside {what}")),
        })
    }

    #[inline]
    fn u64(&mut self, what: &str) -> Field<u64, B::Error> {
        Ok(self.take::<8>(what)?.map(u64::from_le_bytes))
    }

    #[inline]
    fn u32(&mut self, what: &str) -> Field<u32, B::Error> {
        Ok(self.take::<4>(what)?.map(u32::from_le_bytes))
    }

    fn count(&mut self, what: &str) -> Field<u64, B::Error> {
        let count = u64::from(field!(self.u32(what)));
        ensure_body!(
            count <= MAX_REGION_NUMBER,
            "{what} of {count} is more than the {MAX_REGION_NUMBER} regions a database holds"
        );
        Ok(Ok(count))
    }

    fn record(&mut self) -> Field<Record, B::Error> {
        let generation = field!(self.u64("the generation"));
        ensure_body!(
            generation <= MAX_GENERATION,
            "generation {generation} is beyond the largest this build writes ({MAX_GENERATION})"
        );
        let [code] = field!(self.take::<1>("the record kind"));
        let Some(kind) = RecordKind::from_code(code) else {
            return Ok(Err(format!("unknown record kind {code}")));
        };
        let next_number = field!(self.u64("the region number bound"));
        ensure_body!(
            next_number <= MAX_REGION_NUMBER,
            "region number bound {next_number} is above the largest, {MAX_REGION_NUMBER}"
        );
        let removed_count = field!(self.count("a removed count"));
        ensure_body!(
            kind == RecordKind::Delta || removed_count == 0,
            "a checkpoint lists {removed_count} removed regions"
        );
        let room = self.bytes.remaining();
        let mut removed = Vec::with_capacity(removed_count.min(room / 8) as usize);
        for _ in 0..removed_count {
            let number = field!(self.u64("a removed number"));
            ensure_body!(
                number < next_number,
                "removed region number {number} is not below the record's bound {next_number}"
            );
            removed.push(number);
        }
        let upsert_count = field!(self.count("an entry count"));
        let room = self.bytes.remaining();
        let mut upserts = Vec::with_capacity(upsert_count.min(room / ENTRY_FIXED_LEN) as usize);
        for _ in 0..upsert_count {
            field!(self.entry(next_number, kind, &mut upserts));
        }
        let [flags] = field!(self.take::<1>("the flags"));
        ensure_body!(
            flags & !FLAG_DATA_SYNCED == 0,
            "unknown record flags {flags:#x}"
        );
        let data_synced = flags & FLAG_DATA_SYNCED != 0;
        let inline_count = field!(self.count("an inline write count"));
        let room = self.bytes.remaining();
        let mut inline = Vec::with_capacity(inline_count.min(room / INLINE_FIXED_LEN) as usize);
        let mut inline_bytes = 0u64;
        for _ in 0..inline_count {
            let write = field!(self.inline_write());
            inline_bytes += write.bytes.len() as u64;
            ensure_body!(
                inline_bytes <= MAX_INLINE_BYTES,
                "the record carries more than {MAX_INLINE_BYTES} bytes inline"
            );
            inline.push(write);
        }
        ensure_body!(
            kind == RecordKind::Delta || (data_synced && inline.is_empty()),
            "a checkpoint carries bytes to redo"
        );
        let left = self.bytes.remaining();
        ensure_body!(left == 0, "{left} bytes follow the last inline write");
        Ok(Ok(Record {
            generation,
            kind,
            next_number,
            removed,
            upserts,
            data_synced,
            inline,
        }))
    }

    fn inline_write(&mut self) -> Field<InlineWrite, B::Error> {
        let fixed = field!(self.take::<12>("an inline write"));
        let offset = u64_at(&fixed, 0);
        let len = u64::from(u32_at(&fixed, 8));
        ensure_body!(
            len <= MAX_INLINE_BYTES,
            "an inline write of {len} bytes is more than a record carries"
        );
        ensure_body!(
            offset >= PAGE_SIZE && offset.saturating_add(len) <= MAX_DATA_LEN,
            "an inline write at offset {offset} is outside the regions' space"
        );
        let bytes = match self.bytes.take(len as usize)? {
            Some(bytes) => bytes.to_vec(),
            None => return Ok(Err("the body ends inside an inline write".into())),
        };
        Ok(Ok(InlineWrite { offset, bytes }))
    }

    /// Decode a region entry onto `out`. (Pushed here rather than returned: a region's
    /// entry is large, and every region's is decoded at open, so it is not moved
    /// through the results.)
    fn entry(
        &mut self,
        next_number: u64,
        kind: RecordKind,
        out: &mut Vec<RegionEntry>,
    ) -> Field<(), B::Error> {
        let fixed = field!(self.take::<34>("a region entry"));
        let number = u64_at(&fixed, 0);
        ensure_body!(
            number < next_number,
            "region number {number} is not below the record's bound {next_number}"
        );
        let name_len = u16::from_le_bytes([fixed[32], fixed[33]]) as usize;
        ensure_body!(
            name_len <= MAX_NAME_LEN,
            "region {number} has a name of {name_len} bytes; names are at most {MAX_NAME_LEN}"
        );
        // The name and the number of the first changed checksum, read as one piece:
        // every region's entry is decoded at open.
        let len = u64_at(&fixed, 24);
        let remaining = self.bytes.remaining();
        let Some(bytes) = self.bytes.take(name_len + 8)? else {
            return Ok(Err(self.entry_cut_short(number, name_len, len)?));
        };
        let (name, sums_from) = bytes.split_at(name_len);
        let sums_from = u64_at(sums_from, 0);
        // Checked before the entry takes its place; written into it there (below).
        if !name.is_ascii() && std::str::from_utf8(name).is_err() {
            return Ok(Err(format!("region {number}'s name is not UTF-8")));
        }
        if len > MAX_DATA_LEN {
            return Ok(Err(too_long(number, len)));
        }
        let chunks = len.div_ceil(SUM_CHUNK);
        ensure_body!(
            sums_from <= chunks,
            "region {number}'s checksums start at chunk {sums_from}, but it has {chunks}"
        );
        ensure_body!(
            kind == RecordKind::Delta || sums_from == 0,
            "the checkpoint lacks checksums of region {number}"
        );
        let count = chunks - sums_from;
        // What the body holds after the name (`name` still borrows the bytes).
        let left_after_name = remaining - (name_len as u64 + 8);
        ensure_body!(
            count <= left_after_name / 4,
            "the body ends inside region {number}'s checksums"
        );
        // Made in its place and filled there: entries are large, and every region's is
        // decoded at open, so none is built aside and moved.
        out.push(RegionEntry::default());
        let last = out.len() - 1;
        let entry = &mut out[last];
        entry.number = number;
        entry.start = u64_at(&fixed, 8);
        entry.reserved = u64_at(&fixed, 16);
        entry.len = len;
        entry.sums_from = sums_from;
        let utf8 = entry.name.assign_utf8(name);
        debug_assert!(utf8, "checked above");
        entry.crcs.reserve_exact(count as usize);
        let mut left = count as usize;
        while left > 0 {
            // In pieces, so that a large region's checksums are not buffered whole.
            let batch = left.min(CRC_BATCH);
            let Some(bytes) = self.bytes.take(4 * batch)? else {
                return Ok(Err(format!(
                    "the body ends inside region {number}'s checksums"
                )));
            };
            for crc in bytes.chunks_exact(4) {
                entry.crcs.push(u32_at(crc, 0));
            }
            left -= batch;
        }
        Ok(Ok(()))
    }

    /// Why an entry whose name and first changed checksum are not all in the body is
    /// refused: the first of its fields, in the order of the bytes, that is cut or wrong
    /// (a name that is not UTF-8 or a length beyond the bound comes before a cut in the
    /// first changed checksum). Nothing is taken when the name itself is cut.
    #[cold]
    fn entry_cut_short(
        &mut self,
        number: u64,
        name_len: usize,
        len: u64,
    ) -> Result<String, B::Error> {
        Ok(match self.bytes.take(name_len)? {
            None => format!("the body ends inside region {number}'s name"),
            Some(name) if std::str::from_utf8(name).is_err() => {
                format!("region {number}'s name is not UTF-8")
            }
            Some(_) if len > MAX_DATA_LEN => too_long(number, len),
            Some(_) => format!("the body ends inside region {number}'s first changed checksum"),
        })
    }
}

/// Why region `number`'s entry, of `len` bytes, is refused.
fn too_long(number: u64, len: u64) -> String {
    format!("region {number} holds {len} bytes, more than the largest data file")
}

/// How many chunk checksums of a region are decoded from one piece of its entry.
const CRC_BATCH: usize = 4096;

/// The little-endian `u32` at `at` (the caller has checked the length).
pub(crate) fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

/// The little-endian `u64` at `at` (the caller has checked the length).
pub(crate) fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::{QuickCheck, TestResult};

    const TEST_ID: DatabaseId = *b"format-test-id..";

    pub(crate) fn sample() -> Record {
        Record {
            generation: 7,
            kind: RecordKind::Delta,
            next_number: 3,
            removed: vec![1],
            upserts: vec![RegionEntry {
                number: 2,
                start: 4096,
                reserved: 8192,
                len: 5,
                name: "prices".into(),
                sums_from: 0,
                crcs: Crcs::from_elem(0xdead_beef, 1),
                origin: 0,
            }],
            data_synced: false,
            inline: vec![InlineWrite {
                offset: 4096,
                bytes: b"hello".to_vec(),
            }],
        }
    }

    /// Decode a whole record held in memory: its body must be complete and its
    /// checksum must match.
    fn decode(bytes: &[u8]) -> Option<Result<Record, String>> {
        let head: &[u8; RECORD_HEAD_LEN] = bytes.get(..RECORD_HEAD_LEN)?.try_into().ok()?;
        let HeadRead::Head(Head { body_len, crc }) = decode_head(head) else {
            return None;
        };
        let body = bytes.get(RECORD_HEAD_LEN..RECORD_HEAD_LEN + usize::try_from(body_len).ok()?)?;
        let mut hasher = record_hasher(&TEST_ID, head);
        hasher.update(body);
        if hasher.finalize() != crc {
            return None;
        }
        let Ok(parsed) = parse_body(&mut SliceBytes(body));
        Some(parsed)
    }

    const USED: usize = RECORD_HEAD_LEN + 25 + 8 + 34 + 6 + 12 + 1 + 4 + 17;

    #[test]
    fn header_round_trips_and_tells_versions_from_damage() {
        let id = *b"0123456789abcdef";
        let header = encode_meta_header(&id);
        assert_eq!(decode_meta_header(&header), Ok(id));
        assert_eq!(
            decode_meta_header(b"SQLite format 3\0xxxxxxxxx"),
            Err(BadHeader::Foreign)
        );
        let mut newer = header;
        newer[8] = 9;
        let crc = crc32fast::hash(&newer[..36]);
        newer[36..40].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(decode_meta_header(&newer), Err(BadHeader::Version(9)));
        let mut flipped = header;
        flipped[25] ^= 1;
        assert!(matches!(
            decode_meta_header(&flipped),
            Err(BadHeader::Damaged(_))
        ));
        // A version 1 header (24 bytes, checksum at 20) is intact, of version 1.
        let mut old = [0u8; 24];
        old[..8].copy_from_slice(&META_MAGIC);
        old[8..12].copy_from_slice(&1u32.to_le_bytes());
        old[12..16].copy_from_slice(&24u32.to_le_bytes());
        let crc = crc32fast::hash(&old[..20]);
        old[20..24].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(decode_meta_header(&old), Err(BadHeader::Version(1)));
        for cut in 0..META_HEADER_LEN {
            assert!(decode_meta_header(&header[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn record_round_trips_page_aligned() {
        let bytes = encode_record(&TEST_ID, &sample()).unwrap();
        assert_eq!(bytes.len() % RECORD_ALIGN as usize, 0);
        assert_eq!(decode(&bytes), Some(Ok(sample())));
    }

    #[test]
    fn removed_numbers_are_written_once() {
        let mut record = sample();
        record.removed = vec![2, 1, 2, 0, 1];
        record.upserts.clear();
        let bytes = encode_record(&TEST_ID, &record).unwrap();
        let Some(Ok(decoded)) = decode(&bytes) else {
            panic!("decodes")
        };
        assert_eq!(decoded.removed, vec![0, 1, 2]);
    }

    #[test]
    fn records_no_reader_takes_back_are_refused() {
        let mut record = sample();
        record.upserts[0].name = "n".repeat(MAX_NAME_LEN + 1).into();
        assert!(encode_record(&TEST_ID, &record).is_err());
        let mut record = sample();
        record.generation = MAX_GENERATION + 1;
        assert!(encode_record(&TEST_ID, &record).is_err());
    }

    #[test]
    fn every_prefix_of_a_record_is_incomplete() {
        let bytes = encode_record(&TEST_ID, &sample()).unwrap();
        for cut in 0..USED {
            assert_eq!(decode(&bytes[..cut]), None, "prefix {cut}");
        }
    }

    #[test]
    fn any_single_bit_flip_is_detected() {
        fn prop(position: usize, bit: u8) -> TestResult {
            let mut bytes = encode_record(&TEST_ID, &sample()).unwrap();
            bytes[position % USED] ^= 1 << (bit % 8);
            TestResult::from_bool(decode(&bytes).is_none())
        }
        QuickCheck::new()
            .tests(2000)
            .quickcheck(prop as fn(usize, u8) -> TestResult);
    }

    #[test]
    fn hostile_bodies_are_refused_with_a_reason() {
        let reason = |record: Record| {
            let body = &encode_unchecked(&record);
            let Ok(parsed) = parse_body(&mut SliceBytes(body));
            parsed.expect_err("refused")
        };
        let mut r = sample();
        r.generation = u64::MAX;
        assert!(reason(r).contains("generation"));
        let mut r = sample();
        r.next_number = MAX_REGION_NUMBER + 1;
        assert!(reason(r).contains("bound"));
        let mut r = sample();
        r.upserts[0].number = 3;
        assert!(reason(r).contains("region number 3 is not below"));
        let mut r = sample();
        r.removed[0] = 9;
        assert!(reason(r).contains("removed region number 9"));
        let mut r = sample();
        r.kind = RecordKind::Checkpoint;
        assert!(reason(r).contains("checkpoint lists 1 removed"));
        let mut r = sample();
        r.upserts[0].name = "n".repeat(MAX_NAME_LEN + 1).into();
        assert!(reason(r).contains("1025 bytes"));
        let mut body = encode_unchecked(&sample());
        body.push(0);
        let Ok(parsed) = parse_body(&mut SliceBytes(&body));
        assert!(parsed.unwrap_err().contains("1 bytes follow"));
        let mut body = encode_unchecked(&sample());
        body[17..21].copy_from_slice(&u32::MAX.to_le_bytes());
        let Ok(parsed) = parse_body(&mut SliceBytes(&body));
        assert!(parsed.unwrap_err().contains("removed count"));
        let mut body = encode_unchecked(&sample());
        let at = body.windows(6).position(|w| w == b"prices").unwrap();
        body[at] = 0xff;
        let Ok(parsed) = parse_body(&mut SliceBytes(&body));
        assert!(parsed.unwrap_err().contains("not UTF-8"));
    }

    #[test]
    fn hostile_checksums_and_inline_writes_are_refused_with_a_reason() {
        let reason = |record: Record| {
            let body = &encode_unchecked(&record);
            let Ok(parsed) = parse_body(&mut SliceBytes(body));
            parsed.expect_err("refused")
        };
        let mut r = sample();
        r.kind = RecordKind::Checkpoint;
        r.removed.clear();
        assert!(reason(r).contains("redo"));
        let mut r = sample();
        r.upserts[0].sums_from = 2;
        assert!(reason(r).contains("start at chunk 2, but it has 1"));
        let mut r = sample();
        r.upserts[0].len = MAX_DATA_LEN + 1;
        assert!(reason(r).contains("more than the largest data file"));
        let mut r = sample();
        r.inline[0].offset = 100;
        assert!(reason(r).contains("outside the regions' space"));
        let mut r = sample();
        r.inline = vec![
            InlineWrite {
                offset: 4096,
                bytes: vec![1; MAX_INLINE_BYTES as usize / 2 + 1],
            };
            2
        ];
        assert!(reason(r).contains("more than"));
        let mut body = encode_unchecked(&sample());
        let flags = body.len() - (4 + 12 + 5) - 1;
        body[flags] = 0x80;
        let Ok(parsed) = parse_body(&mut SliceBytes(&body));
        assert!(parsed.unwrap_err().contains("unknown record flags"));
        // A length claiming more checksums than the body holds allocates nothing first.
        let mut r = sample();
        r.upserts[0].len = MAX_DATA_LEN;
        assert!(reason(r).contains("ends inside region 2's checksums"));
    }

    /// The body of `record` as written, without any check.
    fn encode_unchecked(record: &Record) -> Vec<u8> {
        let mut out = Vec::new();
        write_body(record, &record.removed, &mut out);
        out
    }

    #[test]
    fn random_bytes_never_panic() {
        fn prop(bytes: Vec<u8>) -> bool {
            let _ = decode_meta_header(&bytes);
            let _ = decode(&bytes);
            let Ok(_) = parse_body(&mut SliceBytes(&bytes));
            true
        }
        QuickCheck::new()
            .tests(2000)
            .quickcheck(prop as fn(Vec<u8>) -> bool);
    }

    // A checkpoint of every region with the longest names fits the body bound, and the
    // longest log is far below 2 TiB.
    const _: () = assert!(MAX_BODY_LEN < 1 << 36);
    const _: () = assert!(MAX_META_LEN < 1 << 38);
    const _: () = assert!(MAX_META_LEN.is_multiple_of(RECORD_ALIGN));
}
