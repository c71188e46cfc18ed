//! Checksums of a region's bytes: one CRC-32 per chunk of [`SUM_CHUNK`] bytes, the last
//! chunk possibly shorter. A commit recomputes only the chunks its changes touched, and
//! continues the checksum of a partial last chunk over bytes appended to it, so a flush
//! still costs what changed.

use crate::format::{Crcs, SUM_CHUNK};

/// The chunk checksums of a region `len` bytes long.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RegionSums {
    len: u64,
    crcs: Crcs,
}

/// How many chunks a region of `len` bytes has.
pub(crate) fn chunks(len: u64) -> u64 {
    len.div_ceil(SUM_CHUNK)
}

/// Checksums of zeros' count for a region of `len` bytes (tests that build records by
/// hand; their values are not checked when opening).
#[cfg(test)]
pub(crate) fn zeros(len: u64) -> Crcs {
    Crcs::from_elem(0, chunks(len) as usize)
}

/// The checksum of `bytes`, continuing `from` (the checksum of the bytes before them).
pub(crate) fn continue_crc(from: u32, bytes: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new_with_initial(from);
    hasher.update(bytes);
    hasher.finalize()
}

impl RegionSums {
    /// Checksums as a record left them; `crcs` must number [`chunks`]`(len)` (the caller
    /// has validated it).
    pub fn new(len: u64, crcs: Crcs) -> Self {
        RegionSums { len, crcs }
    }

    /// The region length the checksums cover.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn crcs(&self) -> &[u32] {
        &self.crcs
    }

    /// Bring the checksums up to date with a region now `len` bytes long whose bytes
    /// changed from offset `from` on (nothing before `from` changed since they were
    /// computed). `read(offset, buf)` fills `buf` with the region's bytes at `offset`.
    /// Returns what a record carries: the first chunk recomputed, and the checksums
    /// from it on.
    pub fn update<E>(
        &mut self,
        from: u64,
        len: u64,
        mut read: impl FnMut(u64, &mut [u8]) -> Result<(), E>,
    ) -> Result<(u64, Crcs), E> {
        let from = from.min(self.len).min(len);
        let first = from / SUM_CHUNK;
        let mut buf = vec![0u8; (len - first * SUM_CHUNK).min(SUM_CHUNK) as usize];
        let mut crcs = Crcs::with_capacity((chunks(len) - first) as usize);
        let mut at = first * SUM_CHUNK;
        // Bytes appended to a partial last chunk continue its checksum.
        let continuing = from == self.len && !from.is_multiple_of(SUM_CHUNK);
        let mut crc = if continuing {
            at = from;
            self.crcs[first as usize]
        } else {
            0
        };
        if continuing && at == len {
            // Nothing new in the partial last chunk.
            crcs.push(crc);
        }
        while at < len {
            let chunk_end = ((at / SUM_CHUNK) + 1) * SUM_CHUNK;
            let n = (chunk_end.min(len) - at) as usize;
            read(at, &mut buf[..n])?;
            crcs.push(continue_crc(crc, &buf[..n]));
            crc = 0;
            at += n as u64;
        }
        self.crcs.truncate(first as usize);
        self.crcs.extend_from_slice(&crcs);
        self.len = len;
        debug_assert_eq!(self.crcs.len() as u64, chunks(len));
        Ok((first, crcs))
    }
}

/// Apply what a record carries (checksums from chunk `first` on) to checksums as the
/// previous record left them; false when `first` is beyond them (the record does not
/// continue these checksums).
pub(crate) fn apply(crcs: &mut Crcs, first: u64, new: &[u32]) -> bool {
    if first > crcs.len() as u64 {
        return false;
    }
    crcs.truncate(first as usize);
    crcs.extend_from_slice(new);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    fn reader(bytes: &[u8]) -> impl FnMut(u64, &mut [u8]) -> Result<(), Infallible> + '_ {
        move |at, buf| {
            buf.copy_from_slice(&bytes[at as usize..at as usize + buf.len()]);
            Ok(())
        }
    }

    fn fresh(bytes: &[u8]) -> Vec<u32> {
        bytes
            .chunks(SUM_CHUNK as usize)
            .map(crc32fast::hash)
            .collect()
    }

    /// Any sequence of appends, overwrites and truncations, each followed by an update,
    /// leaves the checksums a fresh computation gives; and every update applied to the
    /// previous checksums gives the same.
    #[test]
    fn updates_equal_a_fresh_computation() {
        let mut seed = 0x1234_5678_9abc_def0u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut bytes: Vec<u8> = Vec::new();
        let mut sums = RegionSums::default();
        let mut applied = Crcs::new();
        for step in 0..400 {
            let from = match next(4) {
                0 => {
                    let n = [1, 7, 4096, 70_000, 200_000][next(5) as usize];
                    let from = bytes.len() as u64;
                    bytes.extend((0..n).map(|i| (i as u64 * 31 + step) as u8));
                    from
                }
                1 if !bytes.is_empty() => {
                    let at = next(bytes.len() as u64) as usize;
                    bytes[at] ^= 0x5a;
                    at as u64
                }
                2 if !bytes.is_empty() => {
                    let len = next(bytes.len() as u64);
                    bytes.truncate(len as usize);
                    len
                }
                _ => bytes.len() as u64,
            };
            let (first, new) = sums
                .update(from, bytes.len() as u64, reader(&bytes))
                .unwrap();
            assert_eq!(sums.crcs(), fresh(&bytes).as_slice(), "step {step}");
            assert!(apply(&mut applied, first, &new));
            assert_eq!(applied.as_slice(), sums.crcs(), "step {step}");
        }
    }

    #[test]
    fn small_appends_touch_only_the_last_chunk() {
        let mut bytes = vec![7u8; 3 * SUM_CHUNK as usize + 10];
        let mut sums = RegionSums::default();
        sums.update(0, bytes.len() as u64, reader(&bytes)).unwrap();
        let before = bytes.len() as u64;
        bytes.extend_from_slice(b"8 bytes!");
        let mut read = 0;
        let (first, new) = sums
            .update(before, bytes.len() as u64, |at, buf: &mut [u8]| {
                read += buf.len();
                reader(&bytes)(at, buf)
            })
            .unwrap();
        assert_eq!((first, new.len(), read), (3, 1, 8));
        assert_eq!(sums.crcs(), fresh(&bytes).as_slice());
    }

    #[test]
    fn an_update_that_does_not_continue_is_refused() {
        let mut crcs = Crcs::from_slice(&[1, 2]);
        assert!(!apply(&mut crcs, 3, &[4]));
        assert!(apply(&mut crcs, 1, &[4]));
        assert_eq!(crcs.as_slice(), [1, 4]);
    }
}
