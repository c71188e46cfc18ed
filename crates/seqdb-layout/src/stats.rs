//! Summary numbers of a layout.

/// Totals describing a [`Layout`](crate::Layout); all byte counts are sums
/// over the corresponding extents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LayoutStats {
    /// Number of regions.
    pub regions: u64,
    /// Sum of region lengths.
    pub live_bytes: u64,
    /// Sum of region reservations.
    pub reserved_bytes: u64,
    /// Bytes in free holes.
    pub free_bytes: u64,
    /// Number of free holes.
    pub holes: u64,
    /// Bytes freed but not reusable until the next commit is durable (held
    /// extents not included).
    pub pending_bytes: u64,
    /// Bytes of held extents: freed, but not reusable while held.
    pub held_bytes: u64,
    /// End of the last live or pending extent.
    pub file_end: u64,
}

impl LayoutStats {
    /// File extent divided by live bytes (1.0 for an empty layout).
    pub fn space_amplification(&self) -> f64 {
        if self.live_bytes == 0 {
            1.0
        } else {
            self.file_end as f64 / self.live_bytes as f64
        }
    }
}
