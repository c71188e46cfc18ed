//! The metadata file's byte format: header, commit records, and their checksums.
//!
//! Everything here is pure: bytes in, values out. `docs/FORMAT.md` describes the same
//! layout for people; the tests below pin it.

use crate::PAGE_SIZE;

/// First eight bytes of every metadata file.
pub(crate) const MAGIC: [u8; 8] = *b"SEQDBMET";
/// The format version this build writes and accepts.
pub(crate) const VERSION: u32 = 1;
/// Size of the file header in bytes; records start at the next page.
pub(crate) const HEADER_LEN: usize = 24;
/// Every record starts on a page boundary, so a torn write never touches an older record.
pub(crate) const RECORD_ALIGN: u64 = PAGE_SIZE;
/// Marks the start of a record ("SQDR" in little-endian byte order).
pub(crate) const RECORD_MAGIC: u32 = u32::from_le_bytes(*b"SQDR");
/// Bytes before a record's body: magic, body length, checksum.
pub(crate) const RECORD_HEAD_LEN: usize = 12;
/// Longest region name in bytes.
pub(crate) const MAX_NAME_LEN: usize = u16::MAX as usize;

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

/// One region as a commit records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RegionEntry {
    pub number: u64,
    pub start: u64,
    pub reserved: u64,
    pub len: u64,
    pub name: String,
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
}

/// Why bytes could not be read as a header or record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Malformed {
    /// The file does not start with the metadata magic.
    Foreign,
    /// The header is damaged (checksum mismatch or too short).
    BadHeader,
    /// The file was written by another format version.
    Version(u32),
}

/// The header of a new metadata file.
pub(crate) fn encode_header() -> [u8; HEADER_LEN] {
    let mut out = [0u8; HEADER_LEN];
    out[..8].copy_from_slice(&MAGIC);
    out[8..12].copy_from_slice(&VERSION.to_le_bytes());
    out[12..16].copy_from_slice(&(HEADER_LEN as u32).to_le_bytes());
    // bytes 16..20 are reserved flags, zero in version 1
    let crc = crc32fast::hash(&out[..20]);
    out[20..24].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Check a metadata file's header.
pub(crate) fn decode_header(bytes: &[u8]) -> Result<(), Malformed> {
    if bytes.len() < MAGIC.len() || bytes[..8] != MAGIC {
        return Err(Malformed::Foreign);
    }
    if bytes.len() < HEADER_LEN {
        return Err(Malformed::BadHeader);
    }
    let crc = u32_at(bytes, 20);
    if crc32fast::hash(&bytes[..20]) != crc {
        return Err(Malformed::BadHeader);
    }
    let version = u32_at(bytes, 8);
    if version != VERSION {
        return Err(Malformed::Version(version));
    }
    if u32_at(bytes, 12) as usize != HEADER_LEN || u32_at(bytes, 16) != 0 {
        return Err(Malformed::BadHeader);
    }
    Ok(())
}

/// Encode a record, padded with zeros to a whole number of pages.
pub(crate) fn encode_record(record: &Record) -> Vec<u8> {
    let names: usize = record.upserts.iter().map(|e| e.name.len()).sum();
    let body_len = 8 + 1 + 8 + 4 + record.removed.len() * 8 + 4 + record.upserts.len() * 34 + names;
    let mut out = Vec::with_capacity(round_to_record(RECORD_HEAD_LEN + body_len));
    out.extend_from_slice(&RECORD_MAGIC.to_le_bytes());
    out.extend_from_slice(&(body_len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]); // checksum, filled below
    out.extend_from_slice(&record.generation.to_le_bytes());
    out.push(record.kind.code());
    out.extend_from_slice(&record.next_number.to_le_bytes());
    out.extend_from_slice(&(record.removed.len() as u32).to_le_bytes());
    for number in &record.removed {
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
    }
    debug_assert_eq!(out.len(), RECORD_HEAD_LEN + body_len);
    let crc = record_crc(&out[4..8], &out[RECORD_HEAD_LEN..]);
    out[8..12].copy_from_slice(&crc.to_le_bytes());
    out.resize(round_to_record(out.len()), 0);
    out
}

fn record_crc(len_bytes: &[u8], body: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(len_bytes);
    hasher.update(body);
    hasher.finalize()
}

/// Round a byte count up to whole record pages.
pub(crate) fn round_to_record(len: usize) -> usize {
    let align = RECORD_ALIGN as usize;
    len.div_ceil(align) * align
}

/// What [`decode_record`] found at an offset.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decoded {
    /// A valid record and the number of bytes it occupies (with padding).
    Record(Record, usize),
    /// No valid record here: the end of the log, a torn write, or damage.
    End,
}

/// Decode the record that starts at the beginning of `bytes`.
///
/// Anything that is not a complete record with a matching checksum is [`Decoded::End`]:
/// a crash can only leave a torn record at the end of the log.
pub(crate) fn decode_record(bytes: &[u8]) -> Decoded {
    if bytes.len() < RECORD_HEAD_LEN || u32_at(bytes, 0) != RECORD_MAGIC {
        return Decoded::End;
    }
    let body_len = u32_at(bytes, 4) as usize;
    let Some(body) = bytes.get(RECORD_HEAD_LEN..RECORD_HEAD_LEN + body_len) else {
        return Decoded::End;
    };
    if record_crc(&bytes[4..8], body) != u32_at(bytes, 8) {
        return Decoded::End;
    }
    match parse_body(body) {
        Some(record) => Decoded::Record(record, round_to_record(RECORD_HEAD_LEN + body_len)),
        None => Decoded::End,
    }
}

fn parse_body(body: &[u8]) -> Option<Record> {
    let mut cur = Cursor { bytes: body, at: 0 };
    let generation = cur.u64()?;
    let kind = RecordKind::from_code(cur.u8()?)?;
    let next_number = cur.u64()?;
    let removed_count = cur.u32()? as usize;
    let mut removed = Vec::with_capacity(removed_count.min(body.len() / 8));
    for _ in 0..removed_count {
        removed.push(cur.u64()?);
    }
    let upsert_count = cur.u32()? as usize;
    let mut upserts = Vec::with_capacity(upsert_count.min(body.len() / 34));
    for _ in 0..upsert_count {
        let number = cur.u64()?;
        let start = cur.u64()?;
        let reserved = cur.u64()?;
        let len = cur.u64()?;
        let name_len = cur.u16()? as usize;
        let name = String::from_utf8(cur.take(name_len)?.to_vec()).ok()?;
        upserts.push(RegionEntry {
            number,
            start,
            reserved,
            len,
            name,
        });
    }
    (cur.at == body.len()).then_some(Record {
        generation,
        kind,
        next_number,
        removed,
        upserts,
    })
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let slice = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(slice)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|b| u32_at(b, 0))
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|b| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
    }
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::{QuickCheck, TestResult};

    fn sample() -> Record {
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
            }],
        }
    }

    #[test]
    fn header_round_trips_and_rejects_others() {
        let header = encode_header();
        assert_eq!(decode_header(&header), Ok(()));
        assert_eq!(
            decode_header(b"SQLite format 3\0xxxxxxxxx"),
            Err(Malformed::Foreign)
        );
        let mut newer = header;
        newer[8] = 2;
        let crc = crc32fast::hash(&newer[..20]);
        newer[20..24].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(decode_header(&newer), Err(Malformed::Version(2)));
        let mut flipped = header;
        flipped[12] ^= 1;
        assert_eq!(decode_header(&flipped), Err(Malformed::BadHeader));
    }

    #[test]
    fn record_round_trips_page_aligned() {
        let bytes = encode_record(&sample());
        assert_eq!(bytes.len() % RECORD_ALIGN as usize, 0);
        assert_eq!(
            decode_record(&bytes),
            Decoded::Record(sample(), bytes.len())
        );
    }

    #[test]
    fn every_prefix_of_a_record_is_the_end() {
        let bytes = encode_record(&sample());
        let used = RECORD_HEAD_LEN + 8 + 1 + 8 + 4 + 8 + 4 + 34 + 6;
        for cut in 0..used {
            assert_eq!(decode_record(&bytes[..cut]), Decoded::End, "prefix {cut}");
        }
    }

    #[test]
    fn any_single_bit_flip_is_detected() {
        fn prop(position: usize, bit: u8) -> TestResult {
            let mut bytes = encode_record(&sample());
            let used = RECORD_HEAD_LEN + 8 + 1 + 8 + 4 + 8 + 4 + 34 + 6;
            bytes[position % used] ^= 1 << (bit % 8);
            TestResult::from_bool(decode_record(&bytes) == Decoded::End)
        }
        QuickCheck::new()
            .tests(2000)
            .quickcheck(prop as fn(usize, u8) -> TestResult);
    }

    #[test]
    fn random_bytes_never_panic() {
        fn prop(bytes: Vec<u8>) -> bool {
            let _ = decode_header(&bytes);
            let _ = decode_record(&bytes);
            true
        }
        QuickCheck::new()
            .tests(2000)
            .quickcheck(prop as fn(Vec<u8>) -> bool);
    }
}
