//! The decisions the allocator hands back to its caller.

use crate::{Extent, RegionKey};

/// What the caller must do after [`Layout::grow`](crate::Layout::grow).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrowPlan {
    /// The new length fits in the reservation; nothing to do.
    InPlace,
    /// The reservation grew into the free hole right after it; no bytes move.
    ExtendIntoHole {
        /// The region's new reservation.
        reserved: u64,
    },
    /// The region was the last extent of the file; the file extent grew.
    AppendAtEnd {
        /// The region's new reservation.
        reserved: u64,
    },
    /// The region moved: the caller copies the region's old `len` bytes (its
    /// length before this call) from `from.start` to `to.start`. `from` is now
    /// pending.
    Move {
        /// The old reservation, now pending.
        from: Extent,
        /// The new reservation.
        to: Extent,
    },
}

/// One copy a compaction round asks for: copy `len` bytes from `from` to `to`.
///
/// A move with `from == to` and `len == 0` copies nothing: it records that the
/// region stayed where it is and its reservation shrank.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Move {
    /// The region that moved.
    pub region: RegionKey,
    /// Old start of the region.
    pub from: u64,
    /// New start of the region.
    pub to: u64,
    /// Number of bytes to copy.
    pub len: u64,
}

/// Space whose blocks the caller may give back to the file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Punchable {
    /// A free hole between regions.
    Hole(Extent),
    /// The unused end of a region's reservation, beyond its length rounded
    /// up to a page.
    Tail {
        /// The region owning the reservation.
        region: RegionKey,
        /// The unused range.
        extent: Extent,
    },
}

impl Punchable {
    /// The byte range to punch.
    pub const fn extent(&self) -> Extent {
        match self {
            Punchable::Hole(extent) | Punchable::Tail { extent, .. } => *extent,
        }
    }
}
