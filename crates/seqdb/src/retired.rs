//! Extents a region left while readers still view them: retired until the last of those
//! readers is gone, then reclaimed by the next flush or hole punch.
//!
//! A region leaves its extent when it moves (growth, copy-on-write, compaction) or is
//! removed. The allocator makes the extent *pending* (free once a commit that no longer
//! references it is durable); when readers' snapshots still view it, the database also
//! *holds* it in the allocator and lists it here with its [`ExtentHold`]. A flush (after
//! its commit) and a hole punch reclaim every listed extent whose last holder is gone:
//! the allocator then frees it, at once if its commit is done, else at that commit.

use std::sync::Arc;

use snafu::ResultExt;

use seqdb_layout::Extent;
use seqdb_sys::ExtentHold;

use crate::Result;
use crate::database::{Inner, Table};
use crate::error::LayoutSnafu;

/// An extent a region left while snapshots still viewed it.
pub(crate) struct Retired {
    extent: Extent,
    hold: Arc<ExtentHold>,
}

impl Inner {
    /// The region that occupied `extent` (now pending in the layout) left it; `hold` counts
    /// the snapshots that view it. Called under the table lock, in the same critical
    /// section as the move or removal, so that no commit frees the extent first.
    pub(crate) fn retire(
        &self,
        table: &mut Table,
        extent: Extent,
        hold: Arc<ExtentHold>,
    ) -> Result<()> {
        if hold.retire() {
            // No snapshot views it: it is free after its commit, like any pending extent.
            return Ok(());
        }
        table
            .layout
            .hold(extent)
            .context(LayoutSnafu { path: &self.path })?;
        table.retired.push(Retired { extent, hold });
        Ok(())
    }

    /// Give the allocator back every retired extent that no snapshot views any more.
    pub(crate) fn reclaim(&self, table: &mut Table) {
        let mut index = 0;
        while index < table.retired.len() {
            if table.retired[index].hold.try_reclaim() {
                let retired = table.retired.swap_remove(index);
                let unheld = table.layout.unhold(retired.extent);
                debug_assert!(unheld.is_ok(), "{unheld:?}");
            } else {
                index += 1;
            }
        }
    }
}
