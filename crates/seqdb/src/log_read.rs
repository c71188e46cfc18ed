//! Reading metadata records from a file in bounded pieces.
//!
//! A record's body is streamed through a buffer of [`BODY_PIECE`] bytes while its
//! checksum is computed and its fields are parsed, so neither a huge file nor a head
//! claiming a huge body makes the reader allocate more than the bytes really there
//! (and never more than one record's worth). [`read_record`] says exactly why there is
//! no record at an offset: the replay decides from that whether the log ends in a torn
//! write or in damage.

use std::fmt;

use snafu::ResultExt;

use seqdb_sys::LockedFile;

use crate::error::SysSnafu;
use crate::format::{
    self, BodyBytes, DatabaseId, HeadRead, MAX_BODY_LEN, RECORD_HEAD_LEN, Record, round_to_record,
};
use crate::{Error, Result};

/// The largest piece of a file read at once when searching it.
pub(crate) const CHUNK: usize = 1 << 20;

/// Bytes that can be read at any offset: the metadata file, or bytes in memory (tests).
pub(crate) trait Source {
    /// Length in bytes.
    fn len(&self) -> u64;
    /// Fill `buf` from `offset`; the range lies within [`len`](Self::len).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<()>;
}

/// A locked file and the length it had when reading began.
pub(crate) struct FileSource<'a> {
    pub file: &'a LockedFile,
    pub len: u64,
}

impl Source for FileSource<'_> {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        self.file.read_exact_at(buf, offset).context(SysSnafu)
    }
}

impl Source for [u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        let start = offset as usize;
        buf.copy_from_slice(&self[start..start + buf.len()]);
        Ok(())
    }
}

/// What [`read_record`] found at an offset.
#[derive(Debug)]
pub(crate) enum Read {
    /// A complete record with a matching checksum, and the bytes it occupies (with
    /// its padding).
    Record(Record, u64),
    /// No record: why.
    End(RecordEnd),
}

/// Why there is no valid record at an offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RecordEnd {
    /// The file ends exactly there.
    EndOfFile,
    /// The file ends before the record does.
    Cut {
        /// Bytes the record needs from its offset.
        needed: u64,
        /// Bytes the file holds from there.
        available: u64,
    },
    /// Zeros where a record head should be.
    Zeros,
    /// Something else than a record head.
    NoMagic,
    /// The head claims a longer body than any record this build writes.
    TooLong {
        /// The body length claimed.
        claimed: u64,
    },
    /// The checksum does not match the bytes.
    Checksum {
        /// The checksum in the head.
        stored: u32,
        /// The checksum of the bytes.
        computed: u32,
    },
    /// The checksum matches, but the body is not a record this build writes.
    Malformed(String),
    /// A valid record that does not continue the log: another kind than expected.
    Kind {
        /// The kind found.
        found: format::RecordKind,
    },
    /// A valid delta whose generation does not follow the previous record's.
    Generation {
        /// The generation found.
        found: u64,
        /// The generation the log needed next.
        expected: u64,
    },
    /// A valid record that the replay was asked to stop before (a rollback).
    Beyond {
        /// The newest generation the replay was asked to keep.
        kept: u64,
    },
}

impl RecordEnd {
    /// Whether the record's checksum matched: a torn write cannot leave such a record,
    /// so at the end of the log it is damage, not a crash.
    pub fn is_checksummed(&self) -> bool {
        matches!(
            self,
            RecordEnd::Malformed(_)
                | RecordEnd::Kind { .. }
                | RecordEnd::Generation { .. }
                | RecordEnd::Beyond { .. }
        )
    }
}

impl fmt::Display for RecordEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordEnd::EndOfFile => write!(f, "the file ends"),
            RecordEnd::Cut { needed, available } => write!(
                f,
                "the record needs {needed} bytes but the file holds only {available} from there"
            ),
            RecordEnd::Zeros => write!(f, "zeros where a record should start"),
            RecordEnd::NoMagic => write!(f, "no record magic"),
            RecordEnd::TooLong { claimed } => write!(
                f,
                "the head claims a body of {claimed} bytes, more than any record holds \
                 ({MAX_BODY_LEN})"
            ),
            RecordEnd::Checksum { stored, computed } => write!(
                f,
                "checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
            ),
            RecordEnd::Malformed(reason) => {
                write!(f, "the checksum matches but the body is invalid: {reason}")
            }
            RecordEnd::Kind { found } => write!(f, "a {found} record where a delta was expected"),
            RecordEnd::Generation { found, expected } => {
                write!(f, "generation {found} where {expected} was expected")
            }
            RecordEnd::Beyond { kept } => {
                write!(f, "a commit newer than generation {kept}, which is kept")
            }
        }
    }
}

/// Read the record at `offset` (a page boundary).
///
/// The body is read in pieces of at most [`BODY_PIECE`] bytes; only I/O failures are
/// errors, anything wrong with the bytes is a [`RecordEnd`].
pub(crate) fn read_record<S: Source + ?Sized>(
    source: &S,
    offset: u64,
    id: &DatabaseId,
) -> Result<Read> {
    let len = source.len();
    let available = len.saturating_sub(offset);
    if available == 0 {
        return Ok(Read::End(RecordEnd::EndOfFile));
    }
    if available < RECORD_HEAD_LEN as u64 {
        let mut bytes = vec![0u8; available as usize];
        source.read_at(&mut bytes, offset)?;
        let end = if bytes.iter().all(|&b| b == 0) {
            RecordEnd::Zeros
        } else if !format::RECORD_MAGIC.starts_with(&bytes[..bytes.len().min(4)]) {
            RecordEnd::NoMagic
        } else {
            RecordEnd::Cut {
                needed: RECORD_HEAD_LEN as u64,
                available,
            }
        };
        return Ok(Read::End(end));
    }
    let mut head = [0u8; RECORD_HEAD_LEN];
    source.read_at(&mut head, offset)?;
    let head_read = format::decode_head(&head);
    let head_fields = match head_read {
        HeadRead::Head(fields) => fields,
        HeadRead::Zeros => return Ok(Read::End(RecordEnd::Zeros)),
        HeadRead::NoMagic => return Ok(Read::End(RecordEnd::NoMagic)),
    };
    let body_len = head_fields.body_len;
    if body_len > MAX_BODY_LEN {
        return Ok(Read::End(RecordEnd::TooLong { claimed: body_len }));
    }
    let needed = RECORD_HEAD_LEN as u64 + body_len;
    if needed > available {
        return Ok(Read::End(RecordEnd::Cut { needed, available }));
    }
    let body_at = offset + RECORD_HEAD_LEN as u64;
    // A large body is checked before it is parsed: parsing keeps what the body lists
    // (entries, checksums), and a damaged or sparse file could otherwise make the open
    // hold as much memory as the body claims before its checksum says it is garbage.
    if body_len > CHECK_FIRST {
        let body = StreamedBody::new(source, body_at, body_len, format::record_hasher(id, &head));
        let computed = body.finish()?;
        if computed != head_fields.crc {
            return Ok(Read::End(RecordEnd::Checksum {
                stored: head_fields.crc,
                computed,
            }));
        }
    }
    let mut body = StreamedBody::new(source, body_at, body_len, format::record_hasher(id, &head));
    let parsed = format::parse_body(&mut body)?;
    let computed = body.finish()?;
    if computed != head_fields.crc {
        return Ok(Read::End(RecordEnd::Checksum {
            stored: head_fields.crc,
            computed,
        }));
    }
    Ok(match parsed {
        Ok(record) => Read::Record(record, round_to_record(needed)),
        Err(reason) => Read::End(RecordEnd::Malformed(reason)),
    })
}

/// Bodies longer than this are read twice, their checksum checked before they are
/// parsed: a checkpoint of about a million regions, whose second read costs little
/// beside what parsing it does.
const CHECK_FIRST: u64 = 64 << 20;

/// The piece a record body is read in: small enough to stay in the processor's cache
/// and in memory the allocator already has, so a large checkpoint is not first zeroed
/// and faulted in as fresh pages.
const BODY_PIECE: usize = 64 << 10;

/// A record body read from a [`Source`] in pieces, checksummed as it is read.
struct StreamedBody<'a, S: ?Sized> {
    source: &'a S,
    /// Offset of the first byte not read into `buf` yet.
    next: u64,
    /// Body bytes not read into `buf` yet.
    left: u64,
    /// The piece buffer; `buf[at..end]` holds read bytes not handed out yet.
    buf: Vec<u8>,
    at: usize,
    end: usize,
    hasher: crc32fast::Hasher,
}

impl<'a, S: Source + ?Sized> StreamedBody<'a, S> {
    fn new(source: &'a S, offset: u64, len: u64, hasher: crc32fast::Hasher) -> Self {
        StreamedBody {
            source,
            next: offset,
            left: len,
            buf: vec![0; len.min(BODY_PIECE as u64) as usize],
            at: 0,
            end: 0,
            hasher,
        }
    }

    /// Read more of the body so that at least `need` bytes are buffered (or all that
    /// is left, if fewer).
    #[cold]
    fn refill(&mut self, need: usize) -> Result<()> {
        self.buf.copy_within(self.at..self.end, 0);
        self.end -= self.at;
        self.at = 0;
        if self.buf.len() < need {
            self.buf.resize(need, 0);
        }
        let read = ((self.buf.len() - self.end) as u64).min(self.left) as usize;
        let fresh = &mut self.buf[self.end..self.end + read];
        self.source.read_at(fresh, self.next)?;
        self.hasher.update(fresh);
        self.end += read;
        self.next += read as u64;
        self.left -= read as u64;
        Ok(())
    }

    /// Read whatever the parser left, and return the checksum of the whole body.
    fn finish(mut self) -> Result<u32> {
        while self.left > 0 {
            self.at = self.end;
            self.refill(0)?;
        }
        Ok(self.hasher.finalize())
    }
}

impl<S: Source + ?Sized> BodyBytes for StreamedBody<'_, S> {
    type Error = Error;

    #[inline]
    fn take(&mut self, n: usize) -> Result<Option<&[u8]>> {
        if self.end - self.at < n {
            if self.remaining() < n as u64 {
                return Ok(None);
            }
            self.refill(n)?;
        }
        let taken = &self.buf[self.at..self.at + n];
        self.at += n;
        Ok(Some(taken))
    }

    fn remaining(&self) -> u64 {
        (self.end - self.at) as u64 + self.left
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{RecordKind, RegionEntry, encode_record};

    const ID: DatabaseId = *b"log-read-test-id";

    fn record(entries: usize, name_len: usize) -> Record {
        Record {
            data_synced: true,
            inline: Vec::new(),
            generation: 3,
            kind: RecordKind::Checkpoint,
            next_number: entries as u64,
            removed: Vec::new(),
            upserts: (0..entries as u64)
                .map(|number| RegionEntry {
                    number,
                    start: 4096 * (number + 1),
                    reserved: 4096,
                    len: number,
                    name: format!("{number:0>name_len$}").into(),
                    sums_from: 0,
                    crcs: crate::sums::zeros(number),
                    origin: 0,
                })
                .collect(),
        }
    }

    #[test]
    fn a_record_larger_than_a_chunk_is_read_in_pieces() {
        let original = record(40_000, 40);
        let mut bytes = vec![0u8; 4096];
        bytes.extend(encode_record(&ID, &original).unwrap());
        assert!(bytes.len() > 2 * CHUNK);
        match read_record(bytes.as_slice(), 4096, &ID).unwrap() {
            Read::Record(record, span) => {
                assert_eq!(record, original);
                assert_eq!(span, bytes.len() as u64 - 4096);
            }
            Read::End(end) => panic!("{end}"),
        }
    }

    /// A file of `len` bytes: `prefix`, then zeros (as a sparse file's hole reads).
    struct Sparse {
        prefix: Vec<u8>,
        len: u64,
    }

    impl Source for Sparse {
        fn len(&self) -> u64 {
            self.len
        }

        fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
            buf.fill(0);
            if let Some(rest) = self.prefix.get(offset as usize..) {
                let n = rest.len().min(buf.len());
                buf[..n].copy_from_slice(&rest[..n]);
            }
            Ok(())
        }
    }

    /// The process's peak resident set, in bytes.
    #[cfg(target_os = "linux")]
    fn peak_resident() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
        let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kib << 10
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_damaged_body_claiming_a_gigabyte_of_checksums_holds_no_memory_for_them() {
        // One region of one chunk, then its length and the body's made to claim a
        // gigabyte of checksums, which the rest of the file (a hole) reads as zeros; the
        // record's checksum no longer matches.
        let mut small = record(1, 3);
        small.upserts[0].len = crate::format::SUM_CHUNK;
        small.upserts[0].crcs = crate::format::Crcs::from_elem(0, 1);
        let mut prefix = encode_record(&ID, &small).unwrap();
        // Head (16), generation (8), kind (1), bound (8), removed and entry counts (4 + 4),
        // then the entry: number, start, reserved, length.
        let len_at = RECORD_HEAD_LEN + 8 + 1 + 8 + 4 + 4 + 24;
        assert_eq!(
            u64::from_le_bytes(prefix[len_at..len_at + 8].try_into().unwrap()),
            crate::format::SUM_CHUNK
        );
        let claimed: u64 = 1 << 30;
        let chunks = claimed / 4;
        prefix[len_at..len_at + 8]
            .copy_from_slice(&(chunks * crate::format::SUM_CHUNK).to_le_bytes());
        let body_len = claimed + 4096;
        prefix[4..12].copy_from_slice(&body_len.to_le_bytes());
        prefix.truncate(len_at + 8 + 2 + 3 + 8);
        let file = Sparse {
            prefix,
            len: RECORD_HEAD_LEN as u64 + body_len,
        };
        let before = peak_resident();
        match read_record(&file, 0, &ID).unwrap() {
            Read::End(RecordEnd::Checksum { .. }) => {}
            Read::End(end) => panic!("{end}"),
            Read::Record(..) => panic!("a record"),
        }
        let grown = peak_resident().saturating_sub(before);
        assert!(
            grown < claimed / 4,
            "the peak resident set grew by {grown} bytes"
        );
    }

    #[test]
    fn a_valid_body_longer_than_the_bound_for_checking_first_is_read() {
        // Read twice (checked, then parsed): it must come back whole.
        let mut large = record(2, 5);
        let chunks = CHECK_FIRST / 4 + 1_000;
        large.upserts[1].len = chunks * crate::format::SUM_CHUNK;
        large.upserts[1].crcs = (0..chunks as u32).map(|c| c ^ 0x5a5a_5a5a).collect();
        let bytes = encode_record(&ID, &large).unwrap();
        assert!(bytes.len() as u64 > CHECK_FIRST);
        match read_record(bytes.as_slice(), 0, &ID).unwrap() {
            Read::Record(record, _) => assert!(record == large, "the record read back differs"),
            Read::End(end) => panic!("{end}"),
        }
        let mut flipped = bytes;
        let middle = flipped.len() / 2;
        flipped[middle] ^= 1;
        assert!(matches!(
            read_record(flipped.as_slice(), 0, &ID).unwrap(),
            Read::End(RecordEnd::Checksum { .. })
        ));
    }

    #[test]
    fn entries_with_many_checksums_are_read_across_pieces() {
        // Regions whose checksums outnumber a decoding batch and outgrow a piece,
        // between regions of one chunk, so that entries straddle piece boundaries.
        let mut original = record(6, 9);
        for (entry, chunks) in original.upserts.iter_mut().zip([1, 40_000, 0, 9_000, 1, 5]) {
            entry.len = chunks * crate::format::SUM_CHUNK;
            entry.crcs = (0..chunks as u32)
                .map(|c| c.wrapping_mul(0x9e37_79b9))
                .collect();
        }
        let bytes = encode_record(&ID, &original).unwrap();
        assert!(bytes.len() > 2 * BODY_PIECE);
        match read_record(bytes.as_slice(), 0, &ID).unwrap() {
            Read::Record(record, _) => assert_eq!(record, original),
            Read::End(end) => panic!("{end}"),
        }
    }

    #[test]
    fn every_way_of_not_being_a_record_is_named() {
        let good = encode_record(&ID, &record(3, 5)).unwrap();
        let at = |bytes: &[u8]| match read_record(bytes, 0, &ID).unwrap() {
            Read::Record(..) => panic!("a record"),
            Read::End(end) => end,
        };
        assert_eq!(at(&[]), RecordEnd::EndOfFile);
        assert_eq!(at(&[0; 100]), RecordEnd::Zeros);
        assert_eq!(at(&[0; 5]), RecordEnd::Zeros);
        assert_eq!(
            at(b"SQ"),
            RecordEnd::Cut {
                needed: 16,
                available: 2
            }
        );
        assert_eq!(at(&[7; 100]), RecordEnd::NoMagic);
        assert!(matches!(at(&good[..40]), RecordEnd::Cut { .. }));
        let mut flipped = good.clone();
        flipped[30] ^= 1;
        assert!(matches!(at(&flipped), RecordEnd::Checksum { .. }));
        let mut long = good.clone();
        long[4..12].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(at(&long), RecordEnd::TooLong { claimed: u64::MAX });
        assert!(!RecordEnd::Zeros.is_checksummed());
        assert!(RecordEnd::Malformed(String::new()).is_checksummed());
    }
}
