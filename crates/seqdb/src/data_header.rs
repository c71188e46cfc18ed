//! The data file's header: which database the file belongs to, and the newest commit
//! whose data reached it.
//!
//! The first page of the data file holds two copies of a small checksummed *slot*
//! (offsets 0 and 512, in different disk sectors): the magic, the format version, the
//! database's id (the metadata header carries the same id), and a generation. Regions
//! never start in that page. Commit *g* writes its generation into slot `g % 2` before
//! the data file is synced, so once a commit's record is in the metadata log the data
//! file's header names that commit or a newer one; a torn write of one slot leaves the
//! other, one commit older. A metadata log that ends more than one commit before the
//! newest slot lost commits, which a crash cannot do: `open` refuses it.

use snafu::ResultExt;

use seqdb_sys::LockedFile;

use crate::database::Inner;
use crate::error::SysSnafu;
use crate::format::{self, BadHeader, DatabaseId, MAX_GENERATION, VERSION};
use crate::{PAGE_SIZE, Result};

/// First eight bytes of each slot.
pub(crate) const DATA_MAGIC: [u8; 8] = *b"SEQDBDAT";
/// Bytes the header keeps at the start of the data file; regions start after them.
pub(crate) const DATA_HEADER_LEN: u64 = PAGE_SIZE;
/// Length of one slot.
pub(crate) const SLOT_LEN: usize = 48;
/// Where the two slots are; each may grow up to the next one in later versions.
pub(crate) const SLOT_OFFSETS: [u64; 2] = [0, SLOT_ROOM as u64];
/// Bytes set aside for each slot.
const SLOT_ROOM: usize = 512;

/// A slot of database `id` recording commit `generation`.
pub(crate) fn encode_slot(id: &DatabaseId, generation: u64) -> [u8; SLOT_LEN] {
    let mut out = [0u8; SLOT_LEN];
    out[..8].copy_from_slice(&DATA_MAGIC);
    out[8..12].copy_from_slice(&VERSION.to_le_bytes());
    out[12..16].copy_from_slice(&(SLOT_LEN as u32).to_le_bytes());
    out[16..32].copy_from_slice(id);
    out[32..40].copy_from_slice(&generation.to_le_bytes());
    // bytes 40..44 are flags, zero in version 2
    let crc = crc32fast::hash(&out[..44]);
    out[44..48].copy_from_slice(&crc.to_le_bytes());
    out
}

/// The whole header page of a new data file: both slots at `generation`.
pub(crate) fn encode_page(id: &DatabaseId, generation: u64) -> Vec<u8> {
    let mut page = vec![0u8; DATA_HEADER_LEN as usize];
    for offset in SLOT_OFFSETS {
        let at = offset as usize;
        page[at..at + SLOT_LEN].copy_from_slice(&encode_slot(id, generation));
    }
    page
}

/// What one slot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Valid {
        id: DatabaseId,
        generation: u64,
    },
    /// All zeros (or past the end of the file).
    Blank,
    /// No magic: not a seqdb data file.
    Foreign,
    /// Intact, but of another format version.
    Version(u32),
    /// The magic, but a checksum or a field that does not hold.
    Damaged,
}

fn decode_slot(bytes: &[u8]) -> Slot {
    if bytes.iter().all(|&b| b == 0) {
        return Slot::Blank;
    }
    match format::intact_header(bytes, &DATA_MAGIC, 16, SLOT_ROOM) {
        Ok(()) => {}
        Err(BadHeader::Foreign) => return Slot::Foreign,
        Err(BadHeader::Version(found)) => return Slot::Version(found),
        Err(BadHeader::Damaged(_)) => return Slot::Damaged,
    }
    let generation = format::u64_at(bytes, 32);
    if format::u32_at(bytes, 12) as usize != SLOT_LEN
        || format::u32_at(bytes, 40) != 0
        || generation > MAX_GENERATION
    {
        return Slot::Damaged;
    }
    let mut id = DatabaseId::default();
    id.copy_from_slice(&bytes[16..32]);
    Slot::Valid { id, generation }
}

/// A data file header that can be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DataHeader {
    pub id: DatabaseId,
    /// The newest generation a valid slot records.
    pub generation: u64,
    /// The offset of a slot that is not valid, when one is not (a torn write).
    pub damaged_slot: Option<u64>,
    /// The header was never written (a creation cut short; see `opening::data_header`).
    pub blank: bool,
    /// The generation each slot records, when it is valid.
    pub slots: [Option<u64>; 2],
}

impl DataHeader {
    /// The header of a data file whose header was never written.
    pub fn blank(id: DatabaseId) -> Self {
        DataHeader {
            id,
            generation: 0,
            damaged_slot: None,
            blank: true,
            slots: [None; 2],
        }
    }

    /// The offset of the slot that records `generation` (the first slot when none does).
    pub fn offset_of(&self, generation: u64) -> u64 {
        let at = self.slots.iter().position(|g| *g == Some(generation));
        SLOT_OFFSETS[at.unwrap_or(0)]
    }

    /// The slot the next commits stamp: not the one holding the newest commit the data
    /// file was synced for (`synced`), which must stay whole until the next data sync.
    pub fn next_slot(&self, synced: u64) -> usize {
        let holding = (0..2)
            .filter(|&i| self.slots[i].is_some_and(|g| g <= synced))
            .max_by_key(|&i| self.slots[i]);
        match holding {
            Some(i) => 1 - i,
            None => 1,
        }
    }
}

/// Why a data file header cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadDataHeader {
    /// Neither slot holds anything: the page is zeros (or the file is shorter).
    Blank,
    /// No slot has the magic: not a seqdb data file.
    Foreign,
    /// An intact slot of another format version.
    Version(u32),
    /// The slots are damaged or contradict each other.
    Damaged(&'static str),
}

/// Decode the data file's first page (fewer bytes when the file is shorter).
pub(crate) fn decode_page(page: &[u8]) -> Result<DataHeader, BadDataHeader> {
    let slot_at = |offset: u64| {
        let at = offset as usize;
        let bytes = page.get(at..).unwrap_or_default();
        let mut slot = [0u8; SLOT_ROOM];
        let n = bytes.len().min(SLOT_ROOM);
        slot[..n].copy_from_slice(&bytes[..n]);
        decode_slot(&slot)
    };
    let slots = SLOT_OFFSETS.map(slot_at);
    if let Some(found) = slots.iter().find_map(|slot| match slot {
        Slot::Version(found) => Some(*found),
        _ => None,
    }) {
        return Err(BadDataHeader::Version(found));
    }
    let valid: Vec<(u64, DatabaseId, u64)> = SLOT_OFFSETS
        .iter()
        .zip(&slots)
        .filter_map(|(&offset, slot)| match *slot {
            Slot::Valid { id, generation } => Some((offset, id, generation)),
            _ => None,
        })
        .collect();
    match valid.as_slice() {
        [] if slots.iter().all(|s| *s == Slot::Blank) => Err(BadDataHeader::Blank),
        [] if slots.contains(&Slot::Damaged) => {
            Err(BadDataHeader::Damaged("both header slots are damaged"))
        }
        [] => Err(BadDataHeader::Foreign),
        [(offset, id, generation)] => Ok(DataHeader {
            id: *id,
            generation: *generation,
            damaged_slot: SLOT_OFFSETS.iter().copied().find(|o| o != offset),
            blank: false,
            slots: SLOT_OFFSETS.map(|o| (o == *offset).then_some(*generation)),
        }),
        [(_, a, g), (_, b, h), ..] => {
            if a != b {
                return Err(BadDataHeader::Damaged(
                    "the two header slots name different databases",
                ));
            }
            Ok(DataHeader {
                id: *a,
                generation: (*g).max(*h),
                damaged_slot: None,
                blank: false,
                slots: [Some(*g), Some(*h)],
            })
        }
    }
}

/// Read the header page of the data file `file`, `len` bytes long.
pub(crate) fn read_page(file: &LockedFile, len: u64) -> Result<Vec<u8>> {
    let mut page = vec![0u8; len.min(DATA_HEADER_LEN) as usize];
    file.read_exact_at(&mut page, 0).context(SysSnafu)?;
    Ok(page)
}

impl Inner {
    /// Record in the data file's header that commit `generation` is being made. Called
    /// before the data file is synced for that commit; the sync makes it durable.
    pub fn stamp_commit(&self, slot_index: usize, generation: u64) -> Result<()> {
        let slot = encode_slot(&self.file_id, generation);
        self.data
            .write_all_at(&slot, SLOT_OFFSETS[slot_index])
            .context(SysSnafu)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: DatabaseId = *b"data-header-test";

    #[test]
    fn a_new_page_round_trips() {
        let page = encode_page(&ID, 0);
        assert_eq!(
            decode_page(&page),
            Ok(DataHeader {
                id: ID,
                generation: 0,
                damaged_slot: None,
                blank: false,
                slots: [Some(0), Some(0)],
            })
        );
    }

    #[test]
    fn the_newest_slot_wins_and_a_torn_one_is_named() {
        let mut page = encode_page(&ID, 4);
        let at = SLOT_OFFSETS[1] as usize;
        page[at..at + SLOT_LEN].copy_from_slice(&encode_slot(&ID, 5));
        assert_eq!(decode_page(&page).unwrap().generation, 5);
        page[at + 33] ^= 1;
        assert_eq!(
            decode_page(&page),
            Ok(DataHeader {
                id: ID,
                generation: 4,
                damaged_slot: Some(at as u64),
                blank: false,
                slots: [Some(4), None],
            })
        );
    }

    #[test]
    fn zeros_random_bytes_and_other_versions_are_refused() {
        assert_eq!(decode_page(&[]), Err(BadDataHeader::Blank));
        assert_eq!(decode_page(&[0; 4096]), Err(BadDataHeader::Blank));
        assert_eq!(decode_page(&[0x5a; 4096]), Err(BadDataHeader::Foreign));
        let mut page = encode_page(&ID, 1);
        page[0] ^= 1;
        page[512] ^= 1;
        assert_eq!(decode_page(&page), Err(BadDataHeader::Foreign));
        let mut page = encode_page(&ID, 1);
        page[20] ^= 1;
        page[532] ^= 1;
        assert!(matches!(decode_page(&page), Err(BadDataHeader::Damaged(_))));
        let mut page = encode_page(&ID, 1);
        let mut other = encode_slot(b"another database", 1);
        page[512..512 + SLOT_LEN].copy_from_slice(&other);
        assert!(matches!(decode_page(&page), Err(BadDataHeader::Damaged(_))));
        other = encode_slot(&ID, 1);
        other[8] = 9;
        let crc = crc32fast::hash(&other[..44]);
        other[44..48].copy_from_slice(&crc.to_le_bytes());
        page[512..512 + SLOT_LEN].copy_from_slice(&other);
        assert_eq!(decode_page(&page), Err(BadDataHeader::Version(9)));
    }

    #[test]
    fn a_generation_beyond_the_bound_is_damage() {
        let page = encode_page(&ID, u64::MAX);
        assert!(matches!(decode_page(&page), Err(BadDataHeader::Damaged(_))));
    }
}
