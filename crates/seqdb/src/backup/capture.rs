//! The state a backup copies: one commit, and a snapshot of every region in it.
//!
//! A read-write handle commits, holding every region at the commit's instant (not only
//! the changed ones, see `Inner::commit_observed`), and takes each region's snapshot
//! there, under the region's shared lock. The snapshot views at least the bytes the
//! commit records, and, as for any reader, keeps them where they are: the extent is not
//! reused while the snapshot lives, and an overwrite inside the viewed bytes moves the
//! region first. So the copy can run without any lock, while writers go on. A read-only
//! handle sees no change at all: its state is the commit it opened.

use std::sync::Arc;

use crate::database::Inner;
use crate::format::RegionEntry;
use crate::snapshot::Snapshot;
use crate::{Error, Result};

/// One region of the captured state.
pub(crate) struct CapturedRegion {
    /// The region as the commit records it.
    pub entry: RegionEntry,
    /// Views at least `entry.len` bytes from `entry.start`.
    pub snapshot: Arc<Snapshot>,
}

/// The state a backup copies.
pub(crate) struct Captured {
    pub generation: u64,
    /// Ordered by number.
    pub regions: Vec<CapturedRegion>,
}

/// Capture the last committed state of `inner` (committing first when it is writable).
pub(crate) fn capture(inner: &Inner) -> Result<Captured> {
    if inner.read_only {
        return capture_read_only(inner);
    }
    // What is in memory goes to the file now, so that the commit below, which holds every
    // region, has little left to write while it holds them.
    inner.flush()?;
    let mut regions = Vec::new();
    let mut failure: Option<Error> = None;
    let generation = inner.commit_observed(
        Some(&mut |region, entry| {
            if failure.is_some() {
                return;
            }
            match inner.share(region) {
                Ok((snapshot, _)) => regions.push(CapturedRegion {
                    entry: entry.clone(),
                    snapshot,
                }),
                Err(error) => failure = Some(error),
            }
        }),
        false,
    )?;
    if let Some(error) = failure {
        return Err(error);
    }
    Ok(Captured {
        generation,
        regions,
    })
}

fn capture_read_only(inner: &Inner) -> Result<Captured> {
    let generation = inner.commit.lock().generation;
    let slots = inner.table.read().live_slots();
    let mut regions = Vec::with_capacity(slots.len());
    for (_, slot) in slots {
        let region = slot.read_recursive();
        if region.is_removed() {
            continue;
        }
        let entry = region.entry();
        let (snapshot, _) = inner.share(&region)?;
        regions.push(CapturedRegion { entry, snapshot });
    }
    Ok(Captured {
        generation,
        regions,
    })
}
