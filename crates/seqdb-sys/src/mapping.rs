//! Read-only shared mappings of the data file, reserved larger than the file.

use std::fs::File;
use std::io;

use memmap2::{MmapOptions, MmapRaw};

/// Smallest reservation: one page.
const MIN_RESERVATION: u64 = 4096;

/// Default reservation: the address space reserved up front, so that most
/// files never need a second mapping.
pub(crate) const DEFAULT_MIN_MAP_LEN: u64 = if cfg!(target_pointer_width = "64") {
    1 << 30
} else {
    1 << 26
};

/// Maps `file` read-only and shared over at least `needed` bytes: the next
/// power of two at or above `max(needed, min_len)`, or, when so much address
/// space is not available, `needed` rounded up to a page.
///
/// Mapping past the end of the file is allowed; touching those pages would
/// raise `SIGBUS`, so callers only ever read below the file's length. Pages
/// past the end become readable as the file grows, because the mapping
/// shows the file's page cache, which `pwrite` also fills.
pub(crate) fn map(file: &File, needed: u64, min_len: u64) -> io::Result<MmapRaw> {
    let floor = needed.max(MIN_RESERVATION);
    let reserve = floor
        .max(min_len)
        .checked_next_power_of_two()
        .unwrap_or(floor);
    match map_exactly(file, reserve) {
        Ok(map) => Ok(map),
        Err(_) if reserve > floor => map_exactly(file, floor.next_multiple_of(MIN_RESERVATION)),
        Err(error) => Err(error),
    }
}

fn map_exactly(file: &File, len: u64) -> io::Result<MmapRaw> {
    let len = usize::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
    MmapOptions::new().len(len).map_raw_read_only(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_are_powers_of_two_above_the_floor() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("f");
        std::fs::write(&path, b"").expect("create");
        let file = File::open(&path).expect("open");
        assert_eq!(map(&file, 0, 0).expect("map").len(), 4096);
        assert_eq!(map(&file, 5000, 4096).expect("map").len(), 8192);
        assert_eq!(map(&file, 10, 100_000).expect("map").len(), 131_072);
        assert_eq!(map(&file, 1 << 20, 1 << 20).expect("map").len(), 1 << 20);
    }
}
