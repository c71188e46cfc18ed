//! The region allocator of seqdb: pure, deterministic bookkeeping of where
//! every region of a data file lives.
//!
//! A [`Layout`] tracks each region's [`Placement`] (a page-aligned
//! reservation holding `len` bytes of data), the free holes between regions
//! and the *pending* extents: space freed since the last durable commit,
//! which must not be reused until a commit that no longer references it is
//! durable. A pending extent may also be *held* ([`Layout::hold`]): a
//! database holds an extent its region left while readers still view the old
//! bytes, and it becomes free only once its commit is durable and the hold
//! ends ([`Layout::unhold`]). The allocator never touches a file; it answers with plans
//! ([`GrowPlan`], [`Move`], [`Punchable`]) that the caller executes.
//!
//! ```
//! use seqdb_layout::{GrowPlan, Layout, PAGE_SIZE};
//!
//! let mut layout = Layout::new();
//! let a = layout.insert(1, 0)?;
//! let b = layout.insert(2, 0)?;
//! assert_eq!((a.start, b.start), (0, PAGE_SIZE));
//!
//! // Region 1 is boxed in by region 2: growing it moves it to the end.
//! let plan = layout.grow(1, 2 * PAGE_SIZE)?;
//! let GrowPlan::Move { from, to } = plan else { panic!("expected a move") };
//! assert_eq!((from.start, to.start), (0, 2 * PAGE_SIZE));
//! // The caller copies the bytes, then commits; only then is the old
//! // extent free again.
//! assert_eq!(layout.pending().count(), 1);
//! let ticket = layout.begin_commit();
//! // ... write and sync the metadata that places region 1 at `to` ...
//! layout.finish_commit(ticket);
//! assert_eq!(layout.holes().next().map(|hole| hole.start), Some(0));
//!
//! // Compaction packs the regions again, one committed round at a time.
//! loop {
//!     let moves = layout.compaction_step();
//!     if moves.is_empty() {
//!         break;
//!     }
//!     // ... copy each move's bytes ...
//!     let ticket = layout.begin_commit();
//!     layout.finish_commit(ticket);
//! }
//! assert!(layout.is_compact());
//! assert_eq!(layout.file_end(), 3 * PAGE_SIZE);
//! layout.validate()?;
//! # Ok::<(), seqdb_layout::LayoutError>(())
//! ```
#![forbid(unsafe_code)]

mod compaction;
mod error;
mod extent;
mod holes;
mod layout;
mod pending;
mod plan;
mod policy;
mod restore;
mod stats;
#[cfg(test)]
mod tests;
mod validate;

pub use error::LayoutError;
pub use extent::{Extent, Placement, is_page_aligned, round_up_to_page};
pub use layout::Layout;
pub use pending::CommitTicket;
pub use plan::{GrowPlan, Move, Punchable};
pub use policy::GrowthPolicy;
pub use restore::placement_violations;
pub use stats::LayoutStats;

/// Size of a page: the unit of every start and reservation.
pub const PAGE_SIZE: u64 = 4096;

/// The caller's number for a region.
pub type RegionKey = u64;
