//! Redoing what commits carried inline: the bytes a commit wrote into the data file
//! without syncing it, which its record carries so that one sync (the log's) makes the
//! commit durable. Opening writes them again, in order, where regions of the opened
//! state still hold them; a read-only open cannot write, so it checks that the data file
//! holds them already.

use std::collections::BTreeMap;
use std::path::Path;

use snafu::ResultExt;

use seqdb_sys::LockedFile;

use crate::error::{NeedsRecoverySnafu, SysSnafu};
use crate::format::InlineWrite;
use crate::replay::Placed;
use crate::Result;

/// A piece of an inline write that lands in a region of the opened state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Piece<'a> {
    pub offset: u64,
    pub bytes: &'a [u8],
}

impl Piece<'_> {
    /// The data file offset after the piece.
    pub fn end(&self) -> u64 {
        self.offset + self.bytes.len() as u64
    }
}

/// The parts of `writes` (in order) that land in the bytes of a region of `entries`.
/// Parts elsewhere concern space no region uses now (freed, or past a truncation):
/// writing them again would only fill holes that were given back.
pub(crate) fn clip<'a>(entries: &[Placed], writes: &'a [InlineWrite]) -> Vec<Piece<'a>> {
    if writes.is_empty() {
        return Vec::new();
    }
    let mut live: Vec<(u64, u64)> = entries
        .iter()
        .filter(|p| p.entry.len > 0)
        .map(|p| (p.entry.start, p.entry.start.saturating_add(p.entry.len)))
        .collect();
    live.sort_unstable();
    let mut pieces = Vec::new();
    for write in writes {
        let (start, end) = (write.offset, write.offset + write.bytes.len() as u64);
        let first = live.partition_point(|&(_, live_end)| live_end <= start);
        for &(live_start, live_end) in live[first..].iter().take_while(|(s, _)| *s < end) {
            let (from, to) = (start.max(live_start), end.min(live_end));
            if from < to {
                pieces.push(Piece {
                    offset: from,
                    bytes: &write.bytes[(from - start) as usize..(to - start) as usize],
                });
            }
        }
    }
    pieces
}

/// Write the pieces again, in order, and sync the data file.
pub(crate) fn apply(data: &LockedFile, pieces: &[Piece<'_>]) -> Result<()> {
    if pieces.is_empty() {
        return Ok(());
    }
    for piece in pieces {
        data.write_all_at(piece.bytes, piece.offset)
            .context(SysSnafu)?;
    }
    data.sync_data().context(SysSnafu)
}

/// Check that the data file (`data_len` bytes long) holds what the pieces would leave in
/// it: the last piece to write each byte is what must be there.
pub(crate) fn verify(
    path: &Path,
    data: &LockedFile,
    data_len: u64,
    pieces: &[Piece<'_>],
) -> Result<()> {
    let mut buf = Vec::new();
    // Disjoint ranges already checked (written by a later piece), by start.
    let mut checked: BTreeMap<u64, u64> = BTreeMap::new();
    for piece in pieces.iter().rev() {
        for (s, e) in uncovered(&mut checked, piece.offset, piece.end()) {
            let missing = || NeedsRecoverySnafu { path, offset: s }.fail();
            if e > data_len {
                return missing();
            }
            buf.resize((e - s) as usize, 0);
            data.read_exact_at(&mut buf, s).context(SysSnafu)?;
            let expected = &piece.bytes[(s - piece.offset) as usize..(e - piece.offset) as usize];
            if buf != expected {
                return missing();
            }
        }
    }
    Ok(())
}

/// The parts of `[start, end)` not in `covered` (disjoint ranges by start), which then
/// covers all of `[start, end)` too, merged into one range.
fn uncovered(covered: &mut BTreeMap<u64, u64>, start: u64, end: u64) -> Vec<(u64, u64)> {
    let mut gaps = Vec::new();
    let (mut merged_start, mut merged_end) = (start, end);
    let mut at = start;
    // A range starting before `start` may reach into it.
    let before = covered
        .range(..start)
        .next_back()
        .map(|(&s, &e)| (s, e))
        .filter(|&(_, e)| e >= start);
    let overlapping: Vec<(u64, u64)> = before
        .into_iter()
        .chain(covered.range(start..=end).map(|(&s, &e)| (s, e)))
        .collect();
    for (s, e) in overlapping {
        covered.remove(&s);
        if s > at {
            gaps.push((at, s.min(end)));
        }
        at = at.max(e);
        merged_start = merged_start.min(s);
        merged_end = merged_end.max(e);
    }
    if at < end {
        gaps.push((at, end));
    }
    covered.insert(merged_start, merged_end);
    gaps.retain(|(s, e)| s < e);
    gaps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uncovered_parts_are_what_no_later_write_covers() {
        let mut covered = BTreeMap::new();
        assert_eq!(uncovered(&mut covered, 10, 20), [(10, 20)]);
        assert_eq!(uncovered(&mut covered, 30, 40), [(30, 40)]);
        assert_eq!(uncovered(&mut covered, 5, 45), [(5, 10), (20, 30), (40, 45)]);
        assert_eq!(uncovered(&mut covered, 12, 44), []);
        assert_eq!(covered.into_iter().collect::<Vec<_>>(), [(5, 45)]);
        let mut covered = BTreeMap::new();
        uncovered(&mut covered, 10, 20);
        assert_eq!(uncovered(&mut covered, 15, 25), [(20, 25)]);
        assert_eq!(uncovered(&mut covered, 0, 10), [(0, 10)]);
    }

    #[test]
    fn clipping_keeps_only_bytes_of_live_regions() {
        use crate::format::RegionEntry;
        let placed = |start: u64, len: u64| Placed {
            entry: RegionEntry {
                number: start,
                start,
                reserved: 8192,
                len,
                name: format!("r{start}"),
                sums_from: 0,
                crcs: crate::sums::zeros(len),
            },
            origin: 0,
            sums: crate::sums::zeros(len),
        };
        let entries = [placed(4096, 100), placed(16384, 8192)];
        let writes = [
            InlineWrite {
                offset: 4096 + 50,
                bytes: vec![1; 100],
            },
            InlineWrite {
                offset: 8192,
                bytes: vec![2; 10],
            },
            InlineWrite {
                offset: 16384 - 10,
                bytes: vec![3; 20],
            },
        ];
        let pieces = clip(&entries, &writes);
        let spans: Vec<(u64, usize)> = pieces.iter().map(|p| (p.offset, p.bytes.len())).collect();
        assert_eq!(spans, [(4146, 50), (16384, 10)]);
    }
}
