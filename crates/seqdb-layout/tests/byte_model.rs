//! Executes the allocator's plans on a simulated file and checks that every
//! region's bytes survive growth, removal, commits and compaction, that no
//! write ever lands on bytes the last durable commit references, and that a
//! held extent (one a reader still views) keeps its bytes until unheld.

mod common;

use std::collections::BTreeMap;

use common::{Op, tight};
use quickcheck::{Gen, QuickCheck};
use seqdb_layout::{Extent, GrowPlan, Layout, Move, PAGE_SIZE, Placement, Punchable, RegionKey};

/// Byte written into free holes after each commit, standing for whatever
/// another writer might put there.
const SCRIBBLE: u8 = 0xEE;

#[derive(Default)]
struct Simulation {
    layout: Layout,
    file: Vec<u8>,
    contents: BTreeMap<RegionKey, Vec<u8>>,
    /// Placements as of the last durable commit.
    committed: BTreeMap<RegionKey, Placement>,
    counter: u8,
    /// Held extents, with the bytes they held when the hold began.
    readers: Vec<(Extent, Vec<u8>)>,
}

impl Simulation {
    /// Asserts that writing `range` for `writer` spares every byte range the
    /// last durable commit references, except the writer's own in-place
    /// reservation.
    fn check_write(&self, writer: RegionKey, range: Extent) {
        for (&key, placement) in &self.committed {
            let current = self.layout.get(key);
            let own_in_place = key == writer && current.map(|p| p.start) == Some(placement.start);
            assert!(
                own_in_place || !placement.extent().overlaps(&range),
                "write {range:?} of region {writer} hits committed region {key} at {placement:?}"
            );
        }
    }

    fn ensure_file(&mut self) {
        let end = usize::try_from(self.layout.file_end()).expect("small file");
        if self.file.len() < end {
            self.file.resize(end, 0);
        }
    }

    fn bytes_of(&self, extent: Extent) -> Vec<u8> {
        self.file[extent.start as usize..extent.end() as usize].to_vec()
    }

    fn hold(&mut self, index: usize) {
        let held: Vec<Extent> = self.layout.held().collect();
        let candidates: Vec<Extent> = self
            .layout
            .pending()
            .filter(|extent| !held.contains(extent))
            .collect();
        if candidates.is_empty() {
            return;
        }
        let extent = candidates[index % candidates.len()];
        self.layout
            .hold(extent)
            .expect("a pending extent can be held");
        assert!(self.layout.hold(extent).is_err(), "held twice");
        let bytes = self.bytes_of(extent);
        self.readers.push((extent, bytes));
    }

    fn unhold(&mut self, index: usize) {
        if self.readers.is_empty() {
            return;
        }
        let (extent, bytes) = self.readers.remove(index % self.readers.len());
        assert!(
            self.bytes_of(extent) == bytes,
            "held extent {extent:?} changed"
        );
        self.layout.unhold(extent).expect("held");
        assert!(self.layout.unhold(extent).is_err(), "unheld twice");
    }

    fn reallocate(&mut self, key: RegionKey, percent: u64) {
        let Some(old) = self.layout.get(key) else {
            return;
        };
        let len = old.len * percent / 100;
        let (from, to) = self
            .layout
            .reallocate(key, len, old.reserved)
            .expect("reallocate");
        self.ensure_file();
        assert_eq!(from, old.extent());
        assert!(to.len >= old.reserved && !to.overlaps(&from));
        self.copy(key, from.start, to.start, len);
        self.contents
            .get_mut(&key)
            .expect("exists")
            .truncate(len as usize);
    }

    fn write(&mut self, key: RegionKey, offset: u64, bytes: &[u8]) {
        let start = usize::try_from(offset).expect("small file");
        self.check_write(key, Extent::new(offset, bytes.len() as u64));
        self.file[start..start + bytes.len()].copy_from_slice(bytes);
    }

    fn copy(&mut self, key: RegionKey, from: u64, to: u64, len: u64) {
        self.check_write(key, Extent::new(to, len));
        let (from, to, len) = (from as usize, to as usize, len as usize);
        self.file.copy_within(from..from + len, to);
    }

    fn append(&mut self, key: RegionKey, count: u64) {
        let Some(old) = self.layout.get(key) else {
            return;
        };
        let new_len = old.len + count;
        let plan = self.layout.grow(key, new_len).expect("grow");
        self.ensure_file();
        if let GrowPlan::Move { from, to } = plan {
            assert_eq!(from, old.extent());
            self.copy(key, from.start, to.start, old.len);
        }
        self.counter = self.counter.wrapping_add(1);
        let fill = self.counter;
        let bytes: Vec<u8> = (0..count).map(|i| fill.wrapping_add(i as u8)).collect();
        let start = self.layout.get(key).expect("exists").start;
        self.write(key, start + old.len, &bytes);
        self.contents
            .get_mut(&key)
            .expect("exists")
            .extend_from_slice(&bytes);
    }

    fn flush(&mut self, succeeds: bool) {
        let ticket = self.layout.begin_commit();
        if !succeeds {
            return;
        }
        self.committed = self.layout.regions().collect();
        self.layout.finish_commit(ticket);
        // Free space may be reused by anyone; punched tails read as zeros.
        let punchable: Vec<Punchable> = self.layout.punchable().collect();
        for punch in punchable {
            let extent = punch.extent();
            let byte = match punch {
                Punchable::Hole(_) => SCRIBBLE,
                Punchable::Tail { .. } => 0,
            };
            let (start, end) = (extent.start as usize, extent.end() as usize);
            self.file[start..end].fill(byte);
        }
        self.file.truncate(self.layout.file_end() as usize);
    }

    fn execute(&mut self, moves: &[Move]) {
        self.ensure_file();
        for step in moves {
            if step.from != step.to {
                self.copy(step.region, step.from, step.to, step.len);
            }
        }
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Insert { key, min_reserved } => {
                if self.layout.insert(key, min_reserved).is_ok() {
                    self.contents.insert(key, Vec::new());
                    self.ensure_file();
                }
            }
            Op::Grow { key, len } => self.append(key, len % (3 * PAGE_SIZE)),
            Op::SetLen { key, percent } => {
                if let Some(placement) = self.layout.get(key) {
                    let len = placement.len * percent / 100;
                    self.layout.set_len(key, len).expect("truncate");
                    self.contents
                        .get_mut(&key)
                        .expect("exists")
                        .truncate(len as usize);
                }
            }
            Op::Remove { key } => {
                if self.layout.remove(key).is_ok() {
                    self.contents.remove(&key);
                }
            }
            Op::BeginCommit | Op::FinishCommit { .. } => self.flush(true),
            Op::DropTicket { .. } => self.flush(false),
            Op::Compact => {
                let moves = self.layout.compaction_step();
                self.execute(&moves);
            }
            Op::Hold { index } => self.hold(index),
            Op::Unhold { index } => self.unhold(index),
            Op::Reallocate { key, percent } => self.reallocate(key, percent),
        }
    }

    fn check_bytes(&self) {
        for (key, placement) in self.layout.regions() {
            let start = placement.start as usize;
            let stored = &self.file[start..start + placement.len as usize];
            assert!(
                stored == self.contents[&key].as_slice(),
                "bytes of region {key} differ"
            );
        }
        for (extent, bytes) in &self.readers {
            assert!(
                &self.bytes_of(*extent) == bytes,
                "held extent {extent:?} changed"
            );
        }
    }
}

fn property(ops: Vec<Op>) -> bool {
    let mut simulation = Simulation::default();
    for op in &ops {
        simulation.apply(op);
        simulation.layout.validate().expect("valid");
        simulation.check_bytes();
    }
    simulation.flush(true);
    // Compaction packs everything only once no extent is held.
    while !simulation.readers.is_empty() {
        simulation.unhold(0);
    }
    simulation.flush(true);
    let mut rounds = 0;
    loop {
        let moves = simulation.layout.compaction_step();
        if moves.is_empty() {
            break;
        }
        rounds += 1;
        // Earlier rounds interrupted by other operations can leave regions
        // waiting past the end of the file; they still converge quickly.
        assert!(rounds <= 8, "compaction does not converge");
        simulation.execute(&moves);
        simulation.check_bytes();
        simulation.flush(true);
        simulation.check_bytes();
    }
    let layout = &simulation.layout;
    assert!(layout.is_compact());
    assert_eq!(layout.holes().count(), 0);
    assert_eq!(layout.pending().count(), 0);
    let tight_total: u64 = layout.regions().map(|(_, p)| tight(p.len)).sum();
    assert_eq!(layout.file_end(), tight_total);
    assert_eq!(layout.regions().count(), simulation.contents.len());
    simulation.check_bytes();
    true
}

#[test]
fn bytes_survive_growth_commits_and_compaction() {
    QuickCheck::new()
        .rng(Gen::new(150))
        .tests(300)
        .quickcheck(property as fn(Vec<Op>) -> bool);
}
