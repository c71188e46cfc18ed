//! The data scrub: every region's bytes read back from the data file and checked
//! against the chunk checksums its commits recorded.

use seqdb_sys::LockedFile;

use crate::Result;
use crate::error::SysSnafu;
use crate::format::SUM_CHUNK;
use crate::replay::Placed;
use snafu::ResultExt;

/// Bytes read at a time: whole chunks.
const PIECE: u64 = 16 * SUM_CHUNK;

/// A range of a region whose bytes do not match their checksums (or that the data file
/// does not hold), in whole chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DamagedRange {
    /// The region's name.
    pub region: String,
    /// The region's number.
    pub number: usize,
    /// The first damaged byte, as an offset in the region.
    pub offset: u64,
    /// How many bytes from `offset` on are damaged (whole chunks; the region's last
    /// chunk may be shorter).
    pub len: u64,
    /// Where `offset` is in the data file.
    pub file_offset: u64,
}

/// Read every region of `entries` from `data` (`data_len` bytes long) and compare it
/// with its checksums. `progress(done, total)` is told the bytes checked so far.
/// Returns the damaged ranges, adjacent damaged chunks of a region merged.
pub(crate) fn scrub(
    data: &LockedFile,
    data_len: u64,
    entries: &[Placed],
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Vec<DamagedRange>> {
    let total: u64 = entries.iter().map(|p| p.entry.len).sum();
    let mut done = 0u64;
    let mut damaged: Vec<DamagedRange> = Vec::new();
    let mut buf = vec![0u8; PIECE as usize];
    for placed in entries {
        let entry = &placed.entry;
        let mut at = 0u64;
        while at < entry.len {
            let n = (entry.len - at).min(PIECE);
            let file_at = entry.start + at;
            let held = data_len.saturating_sub(file_at).min(n);
            let bytes = &mut buf[..n as usize];
            data.read_exact_at(&mut bytes[..held as usize], file_at)
                .context(SysSnafu)?;
            for (i, chunk) in bytes.chunks(SUM_CHUNK as usize).enumerate() {
                let offset = at + i as u64 * SUM_CHUNK;
                let index = (offset / SUM_CHUNK) as usize;
                let whole = offset + chunk.len() as u64 <= at + held;
                if whole && placed.sums().get(index) == Some(&crc32fast::hash(chunk)) {
                    continue;
                }
                match damaged.last_mut() {
                    Some(last)
                        if last.number as u64 == entry.number
                            && last.offset + last.len == offset =>
                    {
                        last.len += chunk.len() as u64;
                    }
                    _ => damaged.push(DamagedRange {
                        region: entry.name.to_string(),
                        number: entry.number as usize,
                        offset,
                        len: chunk.len() as u64,
                        file_offset: entry.start + offset,
                    }),
                }
            }
            at += n;
            done += n;
            progress(done, total);
        }
    }
    Ok(damaged)
}
