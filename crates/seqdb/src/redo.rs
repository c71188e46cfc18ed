//! Redoing what commits carried inline: the bytes a commit wrote into the data file
//! without syncing it, which its record carries so that one sync (the log's) makes the
//! commit durable. Opening writes them again, in order, where regions of the opened
//! state still hold them; a read-only open cannot write, so it checks that the data file
//! holds them already.

use std::collections::BTreeMap;
use std::path::Path;

use snafu::ResultExt;

use seqdb_sys::LockedFile;

use crate::Result;
use crate::error::{NeedsRecoverySnafu, SysSnafu};
use crate::format::InlineWrite;
use crate::replay::Placed;

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

/// Which bytes of the data file a state may rely on: those the file holds, and those
/// beyond its end that the redo writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Coverage {
    data_len: u64,
    /// Disjoint ranges past `data_len` the redo writes, by start.
    beyond: Vec<(u64, u64)>,
}

impl Coverage {
    /// A data file of `data_len` bytes, with nothing to redo.
    pub fn file(data_len: u64) -> Self {
        Coverage {
            data_len,
            beyond: Vec::new(),
        }
    }

    /// A data file of `data_len` bytes, and the pieces that opening writes into it.
    pub fn new(data_len: u64, pieces: &[Piece<'_>]) -> Self {
        let mut ranges: Vec<(u64, u64)> = pieces
            .iter()
            .filter(|p| p.end() > data_len)
            .map(|p| (p.offset.max(data_len), p.end()))
            .collect();
        ranges.sort_unstable();
        let mut beyond: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
        for (start, end) in ranges {
            match beyond.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => beyond.push((start, end)),
            }
        }
        Coverage { data_len, beyond }
    }

    /// The data file's length.
    pub fn data_len(&self) -> u64 {
        self.data_len
    }

    /// Whether every byte of `[start, end)` is in the file or written by the redo.
    pub fn holds(&self, start: u64, end: u64) -> bool {
        if end <= self.data_len {
            return true;
        }
        let from = start.max(self.data_len);
        let at = self.beyond.partition_point(|&(_, e)| e <= from);
        self.beyond
            .get(at)
            .is_some_and(|&(s, e)| s <= from && end <= e)
    }
}

/// Write the pieces again, in order, and sync the data file.
fn apply(data: &LockedFile, pieces: &[Piece<'_>]) -> Result<()> {
    if pieces.is_empty() {
        return Ok(());
    }
    for piece in pieces {
        data.write_all_at(piece.bytes, piece.offset)
            .context(SysSnafu)?;
    }
    data.sync_data().context(SysSnafu)
}

/// Make sure the data file (`data_len` bytes long) holds what the pieces leave in it:
/// check it, and when it does not, write them again (read-write) or refuse the open with
/// [`Error::NeedsRecovery`](crate::Error::NeedsRecovery) (read-only). After a clean close
/// the file holds them already, and nothing is written; after a crash of the process alone
/// it does too, except where bytes were overwritten in place after the last flush (the
/// read-write open then writes the committed bytes back, as the contract allows).
pub(crate) fn settle(
    path: &Path,
    data: &LockedFile,
    data_len: u64,
    pieces: &[Piece<'_>],
    read_only: bool,
) -> Result<()> {
    match missing(data, data_len, pieces)? {
        None => Ok(()),
        Some(offset) if read_only => NeedsRecoverySnafu { path, offset }.fail(),
        Some(_) => apply(data, pieces),
    }
}

/// The first offset where the data file (`data_len` bytes long) does not hold what the
/// pieces leave in it: the last piece to write each byte is what must be there.
pub(crate) fn missing(
    data: &LockedFile,
    data_len: u64,
    pieces: &[Piece<'_>],
) -> Result<Option<u64>> {
    let mut buf = Vec::new();
    // Disjoint ranges already checked (written by a later piece), by start.
    let mut checked: BTreeMap<u64, u64> = BTreeMap::new();
    for piece in pieces.iter().rev() {
        for (s, e) in uncovered(&mut checked, piece.offset, piece.end()) {
            if e > data_len {
                return Ok(Some(s.max(data_len)));
            }
            buf.resize((e - s) as usize, 0);
            data.read_exact_at(&mut buf, s).context(SysSnafu)?;
            let expected = &piece.bytes[(s - piece.offset) as usize..(e - piece.offset) as usize];
            if let Some(at) = buf.iter().zip(expected).position(|(a, b)| a != b) {
                return Ok(Some(s + at as u64));
            }
        }
    }
    Ok(None)
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
        assert_eq!(
            uncovered(&mut covered, 5, 45),
            [(5, 10), (20, 30), (40, 45)]
        );
        assert_eq!(uncovered(&mut covered, 12, 44), []);
        assert_eq!(covered.into_iter().collect::<Vec<_>>(), [(5, 45)]);
        let mut covered = BTreeMap::new();
        uncovered(&mut covered, 10, 20);
        assert_eq!(uncovered(&mut covered, 15, 25), [(20, 25)]);
        assert_eq!(uncovered(&mut covered, 0, 10), [(0, 10)]);
    }

    #[test]
    fn coverage_holds_the_file_and_the_redone_ranges_past_its_end() {
        let piece = |offset: u64, len: usize| Piece {
            offset,
            bytes: &[0u8; 10_000][..len],
        };
        let coverage = Coverage::new(
            5000,
            &[piece(4000, 2000), piece(6000, 100), piece(8000, 50)],
        );
        assert!(coverage.holds(4096, 5000));
        assert!(coverage.holds(4096, 6100));
        assert!(!coverage.holds(4096, 6101));
        assert!(coverage.holds(8000, 8050));
        assert!(!coverage.holds(7000, 8050));
        assert!(Coverage::file(5000).holds(0, 5000));
        assert!(!Coverage::file(5000).holds(0, 5001));
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
                name: format!("r{start}").into(),
                sums_from: 0,
                crcs: crate::sums::zeros(len),
                origin: 0,
            },
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
