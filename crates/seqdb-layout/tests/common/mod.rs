//! Random operation sequences shared by the property tests.

#![allow(dead_code)]

use quickcheck::{Arbitrary, Gen};
use seqdb_layout::{Extent, Layout, PAGE_SIZE, Placement, RegionKey};

/// Number of distinct region keys the operations use, so that keys repeat.
pub const KEYS: u8 = 24;

/// One operation against a layout.
#[derive(Debug, Clone)]
pub enum Op {
    /// Insert a region reserving at least `min_reserved` bytes.
    Insert { key: RegionKey, min_reserved: u64 },
    /// Grow (or shrink) a region to `len` bytes.
    Grow { key: RegionKey, len: u64 },
    /// Set the length to `percent` percent of the reservation.
    SetLen { key: RegionKey, percent: u64 },
    /// Remove a region.
    Remove { key: RegionKey },
    /// Issue a commit ticket.
    BeginCommit,
    /// Finish the `index`-th outstanding ticket (modulo their number).
    FinishCommit { index: usize },
    /// Drop the `index`-th outstanding ticket, as after a failed flush.
    DropTicket { index: usize },
    /// Run one compaction round.
    Compact,
    /// Hold the `index`-th pending extent that is not held (modulo their number), as a
    /// database does for an extent its readers still view.
    Hold { index: usize },
    /// End the `index`-th hold (modulo their number).
    Unhold { index: usize },
    /// Move a region elsewhere, keeping `percent` percent of its length, as a database
    /// does to write a region whose bytes a reader views (copy-on-write).
    Reallocate { key: RegionKey, percent: u64 },
}

fn size(g: &mut Gen) -> u64 {
    let pages = u64::from(u8::arbitrary(g) % 12);
    let bytes = u64::from(u16::arbitrary(g)) % PAGE_SIZE;
    match u8::arbitrary(g) % 4 {
        0 => bytes,
        1 => pages * PAGE_SIZE,
        _ => pages * PAGE_SIZE + bytes,
    }
}

impl Arbitrary for Op {
    fn arbitrary(g: &mut Gen) -> Self {
        let key = RegionKey::from(u8::arbitrary(g) % KEYS);
        let index = usize::from(u8::arbitrary(g));
        match u8::arbitrary(g) % 24 {
            0..=3 => Op::Insert {
                key,
                min_reserved: size(g),
            },
            4..=9 => Op::Grow { key, len: size(g) },
            10 => Op::SetLen {
                key,
                percent: u64::from(u8::arbitrary(g) % 101),
            },
            11..=12 => Op::Remove { key },
            13..=14 => Op::BeginCommit,
            15..=16 => Op::FinishCommit { index },
            17 => Op::DropTicket { index },
            18..=19 => Op::Compact,
            20..=21 => Op::Hold { index },
            22 => Op::Unhold { index },
            _ => Op::Reallocate {
                key,
                percent: u64::from(u8::arbitrary(g) % 101),
            },
        }
    }
}

/// Finds the hole a best-fit allocator must pick for `len` bytes, by
/// scanning every hole: the smallest adequate one, lowest start among equals.
pub fn brute_force_best_fit(holes: &[Extent], len: u64) -> Option<Extent> {
    holes
        .iter()
        .filter(|hole| hole.len >= len)
        .min_by_key(|hole| (hole.len, hole.start))
        .copied()
}

/// All placements of a layout, by key.
pub fn snapshot(layout: &Layout) -> std::collections::BTreeMap<RegionKey, Placement> {
    layout.regions().collect()
}

/// `max(round_up(len), PAGE_SIZE)`.
pub fn tight(len: u64) -> u64 {
    len.div_ceil(PAGE_SIZE).max(1) * PAGE_SIZE
}

/// Runs compaction rounds, committing after each, until a round is empty;
/// calls `on_round` with each round's moves and the placements before it.
pub fn compact_fully(
    layout: &mut Layout,
    mut on_round: impl FnMut(
        &Layout,
        &[seqdb_layout::Move],
        &std::collections::BTreeMap<RegionKey, Placement>,
    ),
) -> usize {
    let ticket = layout.begin_commit();
    layout.finish_commit(ticket);
    let mut rounds = 0;
    loop {
        let before = snapshot(layout);
        let moves = layout.compaction_step();
        if moves.is_empty() {
            return rounds;
        }
        rounds += 1;
        on_round(layout, &moves, &before);
        let ticket = layout.begin_commit();
        layout.finish_commit(ticket);
        assert!(
            rounds <= 8,
            "compaction did not converge after {rounds} rounds"
        );
    }
}
