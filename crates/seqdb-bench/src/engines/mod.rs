//! One adapter per benchmarked engine.

mod chunks;
pub mod files;
pub mod lmdb;
pub mod original;
#[cfg(feature = "ours")]
pub mod ours;
pub mod rawdb;
pub mod redb;
