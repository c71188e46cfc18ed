//! One adapter per benchmarked engine.

mod chunks;
pub mod files;
pub mod lmdb;
pub mod original;
pub mod ours;
pub mod rawdb;
pub mod redb;
