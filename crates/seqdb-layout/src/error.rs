//! Everything that can go wrong when asking the allocator for something or
//! when rebuilding it from metadata.

use snafu::Snafu;

use crate::RegionKey;

/// An error of the region allocator.
#[derive(Debug, Clone, PartialEq, Eq, Snafu)]
#[snafu(visibility(pub(crate)))]
#[non_exhaustive]
pub enum LayoutError {
    /// No region has this key.
    #[snafu(display("region {key} does not exist"))]
    UnknownRegion {
        /// The key asked for.
        key: RegionKey,
    },

    /// A region with this key exists already.
    #[snafu(display("region {key} exists already"))]
    DuplicateRegion {
        /// The key given twice.
        key: RegionKey,
    },

    /// A length larger than the region's reservation.
    #[snafu(display("region {key}: length {len} exceeds its reservation of {reserved} bytes"))]
    LenExceedsReserved {
        /// The region.
        key: RegionKey,
        /// The length asked for.
        len: u64,
        /// The region's reservation.
        reserved: u64,
    },

    /// A region start that is not a multiple of the page size.
    #[snafu(display("region {key}: start {start} is not page-aligned"))]
    MisalignedStart {
        /// The region.
        key: RegionKey,
        /// Its start.
        start: u64,
    },

    /// A reservation that is not a multiple of the page size.
    #[snafu(display("region {key}: reservation {reserved} is not page-aligned"))]
    MisalignedReserved {
        /// The region.
        key: RegionKey,
        /// Its reservation.
        reserved: u64,
    },

    /// A region without any reserved space.
    #[snafu(display("region {key}: reservation at {start} is empty"))]
    EmptyReservation {
        /// The region.
        key: RegionKey,
        /// Its start.
        start: u64,
    },

    /// Two regions claim the same bytes.
    #[snafu(display(
        "regions {first} and {second} overlap: {first} ends at {first_end}, {second} starts at {second_start}"
    ))]
    Overlap {
        /// The region starting first.
        first: RegionKey,
        /// The region starting second.
        second: RegionKey,
        /// End of the first region's reservation.
        first_end: u64,
        /// Start of the second region's reservation.
        second_start: u64,
    },

    /// A region starting in the space at the start of the file that the
    /// layout's owner keeps for itself (a header).
    #[snafu(display(
        "region {key}: starts at {start}, inside the first {base} bytes kept for the file's header"
    ))]
    BelowBase {
        /// The region.
        key: RegionKey,
        /// Its start.
        start: u64,
        /// Where the space for regions begins.
        base: u64,
    },

    /// A region reaching past the end of the file.
    #[snafu(display("region {key}: reservation ends at {end}, past the file end {file_len}"))]
    PastFileEnd {
        /// The region.
        key: RegionKey,
        /// End of its reservation.
        end: u64,
        /// Length of the file.
        file_len: u64,
    },

    /// A start plus a size that does not fit in a `u64`.
    #[snafu(display("region {key}: {size} bytes from offset {start} overflow the address space"))]
    Overflow {
        /// The region.
        key: RegionKey,
        /// Offset the size is added to.
        start: u64,
        /// The size.
        size: u64,
    },

    /// An extent to hold (or stop holding) is not one the layout freed and
    /// holds (or does not hold) for it.
    #[snafu(display("extent {start}+{len} is not a {expected} extent"))]
    NotPending {
        /// The extent's start.
        start: u64,
        /// The extent's length.
        len: u64,
        /// What it should have been: `"pending"` or `"held"`.
        expected: &'static str,
    },

    /// The layout's bookkeeping contradicts itself (found by `validate`).
    #[snafu(display("layout inconsistent at offset {offset}: {problem}"))]
    Inconsistent {
        /// File offset where the contradiction was found.
        offset: u64,
        /// What is wrong there.
        problem: &'static str,
    },

    /// A maintained total differs from the sum it stands for (found by
    /// `validate`).
    #[snafu(display("layout total {total} is {recorded}, but the extents sum to {actual}"))]
    TotalMismatch {
        /// Which total.
        total: &'static str,
        /// The value kept by the layout.
        recorded: u64,
        /// The value recomputed from the extents.
        actual: u64,
    },
}

impl LayoutError {
    /// The region the error concerns (for an overlap, the one starting first), if it
    /// concerns one.
    pub fn key(&self) -> Option<RegionKey> {
        match self {
            LayoutError::UnknownRegion { key }
            | LayoutError::DuplicateRegion { key }
            | LayoutError::LenExceedsReserved { key, .. }
            | LayoutError::MisalignedStart { key, .. }
            | LayoutError::MisalignedReserved { key, .. }
            | LayoutError::EmptyReservation { key, .. }
            | LayoutError::BelowBase { key, .. }
            | LayoutError::PastFileEnd { key, .. }
            | LayoutError::Overflow { key, .. } => Some(*key),
            LayoutError::Overlap { first, .. } => Some(*first),
            LayoutError::Inconsistent { .. }
            | LayoutError::TotalMismatch { .. }
            | LayoutError::NotPending { .. } => None,
        }
    }

    /// The file offset where the problem lies, if it has one: a misaligned, empty,
    /// overflowing or header-overlapping reservation's start, where an overlapping region starts, where a
    /// reservation past the file's end ends, or where the bookkeeping contradicts itself.
    pub fn offset(&self) -> Option<u64> {
        match self {
            LayoutError::MisalignedStart { start, .. }
            | LayoutError::EmptyReservation { start, .. }
            | LayoutError::BelowBase { start, .. }
            | LayoutError::Overflow { start, .. } => Some(*start),
            LayoutError::Overlap { second_start, .. } => Some(*second_start),
            LayoutError::PastFileEnd { end, .. } => Some(*end),
            LayoutError::Inconsistent { offset, .. } => Some(*offset),
            LayoutError::NotPending { start, .. } => Some(*start),
            LayoutError::UnknownRegion { .. }
            | LayoutError::DuplicateRegion { .. }
            | LayoutError::LenExceedsReserved { .. }
            | LayoutError::MisalignedReserved { .. }
            | LayoutError::TotalMismatch { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_and_offset_name_what_the_error_concerns() {
        let overlap = LayoutError::Overlap {
            first: 3,
            second: 4,
            first_end: 8192,
            second_start: 4096,
        };
        assert_eq!((overlap.key(), overlap.offset()), (Some(3), Some(4096)));
        let unknown = LayoutError::UnknownRegion { key: 7 };
        assert_eq!((unknown.key(), unknown.offset()), (Some(7), None));
        let inconsistent = LayoutError::Inconsistent {
            offset: 12,
            problem: "x",
        };
        assert_eq!(
            (inconsistent.key(), inconsistent.offset()),
            (None, Some(12))
        );
    }
}
