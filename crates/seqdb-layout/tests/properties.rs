//! Invariants of the allocator over random operation sequences, checked
//! against a model that tracks pending space on its own.

mod common;

use std::collections::BTreeMap;

use common::{Op, brute_force_best_fit, compact_fully, snapshot, tight};
use quickcheck::{QuickCheck, TestResult};
use seqdb_layout::{
    CommitTicket, Extent, GrowPlan, GrowthPolicy, Layout, LayoutError, PAGE_SIZE, Placement,
    RegionKey, placement_violations, round_up_to_page,
};

/// The layout under test plus the model's own record of pending space.
#[derive(Default)]
struct Model {
    layout: Layout,
    /// Extents freed so far and not yet freed by a finished ticket, with the
    /// order in which they were freed and whether they are held.
    pending: Vec<(u64, Extent, bool)>,
    /// Held extents whose commit finished: free once unheld.
    committed_held: Vec<Extent>,
    freed: u64,
    /// Outstanding tickets with the number of frees they captured.
    tickets: Vec<(CommitTicket, u64)>,
}

impl Model {
    fn free(&mut self, extent: Extent) {
        self.pending.push((self.freed, extent, false));
        self.freed += 1;
    }

    /// Every extent that is not free space yet.
    fn not_free(&self) -> Vec<Extent> {
        let mut extents: Vec<Extent> = self.pending.iter().map(|&(_, e, _)| e).collect();
        extents.extend(self.committed_held.iter().copied());
        extents.sort_unstable();
        extents
    }

    /// The held extents.
    fn held(&self) -> Vec<Extent> {
        let mut extents: Vec<Extent> = self
            .pending
            .iter()
            .filter(|&&(_, _, held)| held)
            .map(|&(_, e, _)| e)
            .collect();
        extents.extend(self.committed_held.iter().copied());
        extents.sort_unstable();
        extents
    }

    /// Asserts that newly handed out space is neither pending nor held.
    fn assert_not_pending(&self, taken: Extent, what: &str) {
        for pending in self.not_free() {
            assert!(
                !pending.overlaps(&taken),
                "{what}: {taken:?} overlaps pending {pending:?}"
            );
        }
    }

    fn hold(&mut self, index: usize) {
        let candidates: Vec<usize> = (0..self.pending.len())
            .filter(|&i| !self.pending[i].2)
            .collect();
        let Some(&i) = candidates.get(index % candidates.len().max(1)) else {
            assert!(self.layout.hold(Extent::new(0, PAGE_SIZE)).is_err());
            return;
        };
        let extent = self.pending[i].1;
        assert_eq!(self.layout.hold(extent), Ok(()));
        assert!(self.layout.hold(extent).is_err(), "held twice");
        self.pending[i].2 = true;
    }

    fn unhold(&mut self, index: usize) {
        let held = self.held();
        let Some(&extent) = held.get(index % held.len().max(1)) else {
            return;
        };
        let committed = self.committed_held.contains(&extent);
        assert_eq!(self.layout.unhold(extent), Ok(committed));
        assert!(self.layout.unhold(extent).is_err(), "unheld twice");
        if committed {
            self.committed_held.retain(|&e| e != extent);
        } else {
            for entry in &mut self.pending {
                if entry.1 == extent {
                    entry.2 = false;
                }
            }
        }
    }

    fn reallocate(&mut self, key: RegionKey, percent: u64, holes: &[Extent], file_end: u64) {
        let Some(old) = self.layout.get(key) else {
            assert_eq!(
                self.layout.reallocate(key, 0, 0),
                Err(LayoutError::UnknownRegion { key })
            );
            return;
        };
        let len = old.len * percent / 100;
        let moved = self
            .layout
            .reallocate(key, len, old.reserved)
            .expect("move");
        let start = brute_force_best_fit(holes, old.reserved).map_or(file_end, |hole| hole.start);
        let to = Extent::new(start, old.reserved);
        assert_eq!(moved, (old.extent(), to));
        assert_eq!(
            self.layout.get(key),
            Some(Placement {
                start,
                reserved: old.reserved,
                len
            })
        );
        self.assert_not_pending(to, "reallocate");
        self.free(old.extent());
    }

    fn apply(&mut self, op: &Op) {
        let holes: Vec<Extent> = self.layout.holes().collect();
        let file_end = self.layout.file_end();
        match *op {
            Op::Insert { key, min_reserved } => {
                let existed = self.layout.contains(key);
                match self.layout.insert(key, min_reserved) {
                    Err(error) => {
                        assert!(existed, "insert failed: {error}");
                        assert_eq!(error, LayoutError::DuplicateRegion { key });
                    }
                    Ok(placement) => {
                        assert!(!existed);
                        let reserved = tight(min_reserved);
                        assert_eq!(placement.reserved, reserved);
                        assert_eq!(placement.len, 0);
                        let expected = brute_force_best_fit(&holes, reserved)
                            .map_or(file_end, |hole| hole.start);
                        assert_eq!(placement.start, expected, "insert is not best fit");
                        self.assert_not_pending(placement.extent(), "insert");
                    }
                }
            }
            Op::Grow { key, len } => self.grow(key, len, &holes, file_end),
            Op::SetLen { key, percent } => match self.layout.get(key) {
                None => assert_eq!(
                    self.layout.set_len(key, 0),
                    Err(LayoutError::UnknownRegion { key })
                ),
                Some(old) => {
                    let len = old.reserved / 100 * percent;
                    assert_eq!(self.layout.set_len(key, len), Ok(()));
                    assert_eq!(self.layout.get(key), Some(Placement { len, ..old }));
                    assert!(self.layout.set_len(key, old.reserved + 1).is_err());
                }
            },
            Op::Remove { key } => match self.layout.get(key) {
                None => assert_eq!(
                    self.layout.remove(key),
                    Err(LayoutError::UnknownRegion { key })
                ),
                Some(old) => {
                    assert_eq!(self.layout.remove(key), Ok(old));
                    assert!(!self.layout.contains(key));
                    self.free(old.extent());
                }
            },
            Op::BeginCommit => {
                let ticket = self.layout.begin_commit();
                self.tickets.push((ticket, self.freed));
            }
            Op::FinishCommit { index } => {
                if !self.tickets.is_empty() {
                    let (ticket, captured) = self.tickets.remove(index % self.tickets.len());
                    self.layout.finish_commit(ticket);
                    for &(order, extent, held) in &self.pending {
                        if order < captured && held {
                            self.committed_held.push(extent);
                        }
                    }
                    self.pending.retain(|&(order, _, _)| order >= captured);
                }
            }
            Op::DropTicket { index } => {
                if !self.tickets.is_empty() {
                    drop(self.tickets.remove(index % self.tickets.len()));
                }
            }
            Op::Compact => self.compact(),
            Op::Hold { index } => self.hold(index),
            Op::Unhold { index } => self.unhold(index),
            Op::Reallocate { key, percent } => self.reallocate(key, percent, &holes, file_end),
        }
    }

    fn grow(&mut self, key: RegionKey, len: u64, holes: &[Extent], file_end: u64) {
        let Some(old) = self.layout.get(key) else {
            assert_eq!(
                self.layout.grow(key, len),
                Err(LayoutError::UnknownRegion { key })
            );
            return;
        };
        let plan = self.layout.grow(key, len).expect("grow");
        let new = self.layout.get(key).expect("region still exists");
        assert_eq!(new.len, len);
        if len <= old.reserved {
            assert_eq!(plan, GrowPlan::InPlace);
            assert_eq!(new, Placement { len, ..old });
            return;
        }
        let needed = round_up_to_page(len).expect("small length");
        let wanted = GrowthPolicy::DEFAULT.next_reserved(old.reserved, needed);
        let hole_after = holes.iter().find(|hole| hole.start == old.end());
        if old.end() == file_end {
            assert_eq!(plan, GrowPlan::AppendAtEnd { reserved: wanted });
        } else if let Some(hole) = hole_after.filter(|hole| old.reserved + hole.len >= needed) {
            let reserved = wanted.min(old.reserved + hole.len);
            assert_eq!(plan, GrowPlan::ExtendIntoHole { reserved });
        } else {
            let start = brute_force_best_fit(holes, wanted).map_or(file_end, |hole| hole.start);
            assert_eq!(
                plan,
                GrowPlan::Move {
                    from: old.extent(),
                    to: Extent::new(start, wanted)
                }
            );
            self.assert_not_pending(new.extent(), "grow move");
            self.free(old.extent());
            return;
        }
        assert_eq!(new.start, old.start);
        self.assert_not_pending(
            Extent::new(old.end(), new.reserved - old.reserved),
            "grow in place",
        );
    }

    fn compact(&mut self) {
        let before = snapshot(&self.layout);
        let moves = self.layout.compaction_step();
        if moves.is_empty() && self.pending.is_empty() && self.committed_held.is_empty() {
            assert!(self.layout.is_compact(), "empty round on a loose layout");
        }
        let mut destinations: Vec<Extent> = Vec::new();
        for step in &moves {
            let old = before[&step.region];
            let new = self.layout.get(step.region).expect("moved region exists");
            assert_eq!(new.len, old.len);
            assert_eq!(new.reserved, tight(old.len));
            assert_eq!(step.from, old.start);
            assert_eq!(step.to, new.start);
            if step.from == step.to {
                assert_eq!(step.len, 0);
                assert!(old.reserved > new.reserved);
                self.free(Extent::new(new.end(), old.reserved - new.reserved));
                continue;
            }
            assert_eq!(step.len, old.len);
            let destination = new.extent();
            self.assert_not_pending(destination, "compaction move");
            for (&other, placement) in &before {
                assert!(
                    other == step.region && !placement.extent().overlaps(&destination)
                        || other != step.region && !placement.extent().overlaps(&destination),
                    "destination {destination:?} overlaps live region {other}"
                );
            }
            for earlier in &destinations {
                assert!(!earlier.overlaps(&destination), "destinations overlap");
            }
            destinations.push(destination);
            self.free(old.extent());
        }
    }

    fn check(&self) {
        self.layout.validate().expect("invariants hold");
        assert_eq!(self.layout.pending().collect::<Vec<_>>(), self.not_free());
        assert_eq!(self.layout.held().collect::<Vec<_>>(), self.held());
        let stats = self.layout.stats();
        let base = self.layout.base();
        assert_eq!(
            stats.reserved_bytes + stats.free_bytes + stats.pending_bytes + stats.held_bytes,
            stats.file_end - base
        );
        assert!(self.layout.holes().all(|hole| hole.start >= base));
        assert!(self.layout.pending().all(|extent| extent.start >= base));
        assert_eq!(
            stats.held_bytes,
            self.held().iter().map(|e| e.len).sum::<u64>()
        );
        for (_, placement) in self.layout.regions() {
            assert!(placement.start >= base, "region below the base");
            assert_eq!(placement.start % PAGE_SIZE, 0);
            assert_eq!(placement.reserved % PAGE_SIZE, 0);
            assert!(placement.reserved >= PAGE_SIZE && placement.len <= placement.reserved);
        }
    }
}

fn run(ops: &[Op]) -> Model {
    run_above(0, ops)
}

/// Run `ops` on a layout whose first `base` bytes belong to the caller.
fn run_above(base: u64, ops: &[Op]) -> Model {
    let mut model = Model {
        layout: Layout::with_base(base),
        ..Model::default()
    };
    for op in ops {
        model.apply(op);
        model.check();
    }
    model
}

fn quickcheck() -> QuickCheck {
    QuickCheck::new()
        .rng(quickcheck::Gen::new(200))
        .tests(500)
        .max_tests(5000)
}

#[test]
fn random_operations_keep_every_invariant() {
    fn property(ops: Vec<Op>) -> bool {
        run(&ops);
        true
    }
    quickcheck().quickcheck(property as fn(Vec<Op>) -> bool);
}

#[test]
fn compaction_packs_any_layout_in_order() {
    fn property(ops: Vec<Op>) -> bool {
        // Held extents stay until unheld: none here, so compaction can finish.
        let ops: Vec<Op> = ops
            .into_iter()
            .filter(|op| !matches!(op, Op::Compact | Op::Hold { .. }))
            .collect();
        let mut model = run(&ops);
        let order: Vec<RegionKey> = model.layout.regions().map(|(key, _)| key).collect();
        let lengths: BTreeMap<RegionKey, u64> = model
            .layout
            .regions()
            .map(|(key, placement)| (key, placement.len))
            .collect();
        drop(std::mem::take(&mut model.tickets));
        let rounds = compact_fully(&mut model.layout, |layout, _, _| {
            layout.validate().expect("valid between rounds");
        });
        assert!(
            rounds <= 2,
            "compaction from a committed state took {rounds} rounds"
        );
        let layout = &model.layout;
        assert!(layout.is_compact());
        assert_eq!(layout.holes().count(), 0);
        assert_eq!(layout.pending().count(), 0);
        assert_eq!(
            layout.file_end(),
            lengths.values().map(|&len| tight(len)).sum::<u64>()
        );
        let after: Vec<RegionKey> = layout.regions().map(|(key, _)| key).collect();
        assert_eq!(after, order, "relative order changed");
        for (key, placement) in layout.regions() {
            assert_eq!(placement.len, lengths[&key]);
        }
        true
    }
    quickcheck().quickcheck(property as fn(Vec<Op>) -> bool);
}

#[test]
fn from_placements_round_trips() {
    fn property(ops: Vec<Op>) -> bool {
        let model = run(&ops);
        let layout = &model.layout;
        let restored = Layout::from_placements(layout.regions(), layout.file_end())
            .expect("a valid layout restores");
        restored.validate().expect("restored layout is valid");
        assert!(restored.regions().eq(layout.regions()));
        assert_eq!(restored.pending().count(), 0);
        let last_end = layout.regions().map(|(_, p)| p.end()).max().unwrap_or(0);
        assert_eq!(restored.file_end(), last_end);
        true
    }
    quickcheck().quickcheck(property as fn(Vec<Op>) -> bool);
}

#[test]
fn a_base_offset_is_kept_free_through_everything() {
    fn property(ops: Vec<Op>, pages: u8) -> bool {
        let base = u64::from(pages % 4 + 1) * PAGE_SIZE;
        let mut model = run_above(base, &ops);
        let layout = &model.layout;
        let restored = Layout::from_placements_above(base, layout.regions(), layout.file_end())
            .expect("a valid layout restores");
        restored.validate().expect("restored layout is valid");
        assert!(restored.regions().eq(layout.regions()));
        assert!(placement_violations(base, layout.regions(), layout.file_end()).is_empty());
        let lengths: u64 = layout.regions().map(|(_, p)| tight(p.len)).sum();
        // Held extents stay until unheld: let them all go, so compaction can finish.
        while !model.held().is_empty() {
            model.unhold(0);
        }
        drop(std::mem::take(&mut model.tickets));
        compact_fully(&mut model.layout, |layout, _, _| {
            layout.validate().expect("valid between rounds");
        });
        assert!(model.layout.is_compact());
        assert_eq!(model.layout.file_end(), base + lengths);
        true
    }
    quickcheck().quickcheck(property as fn(Vec<Op>, u8) -> bool);
}

#[test]
fn the_listed_violations_start_with_the_one_from_placements_reports() {
    fn property(raw: Vec<(u8, u64, u64, u64)>, file_len: u64, base: u8) -> bool {
        let base = u64::from(base % 3) * PAGE_SIZE;
        let placements: Vec<(RegionKey, Placement)> = raw
            .into_iter()
            .map(|(key, start, reserved, len)| {
                (
                    RegionKey::from(key % 16),
                    Placement {
                        start: (start % 64) * PAGE_SIZE + u64::from(start % 97 == 0),
                        reserved: (reserved % 8) * PAGE_SIZE,
                        len: len % (8 * PAGE_SIZE),
                    },
                )
            })
            .collect();
        let file_len = file_len % (80 * PAGE_SIZE);
        let listed = placement_violations(base, placements.iter().copied(), file_len);
        match Layout::from_placements_above(base, placements, file_len) {
            Ok(layout) => listed.is_empty() && layout.validate().is_ok(),
            Err(first) => listed.first() == Some(&first),
        }
    }
    quickcheck().quickcheck(property as fn(Vec<(u8, u64, u64, u64)>, u64, u8) -> bool);
}

#[test]
fn from_placements_rejects_corruption() {
    fn property(ops: Vec<Op>, corruption: u8, pick: usize, other: usize) -> TestResult {
        let model = run(&ops);
        let mut placements: Vec<(RegionKey, Placement)> = model.layout.regions().collect();
        if placements.len() < 2 {
            return TestResult::discard();
        }
        let count = placements.len();
        let (i, j) = (pick % count, {
            let j = other % (count - 1);
            if j >= pick % count { j + 1 } else { j }
        });
        let (key, placement) = placements[i];
        let mut file_len = model.layout.file_end();
        let result = |placements: &[(RegionKey, Placement)], file_len| {
            Layout::from_placements(placements.iter().copied(), file_len)
        };
        let error = match corruption % 7 {
            0 => {
                placements[i].1.start += 1 + (pick as u64 % (PAGE_SIZE - 1));
                result(&placements, u64::MAX).expect_err("misaligned start")
            }
            1 => {
                placements[i].1.reserved += 1;
                result(&placements, u64::MAX).expect_err("misaligned reservation")
            }
            2 => {
                placements[i].1.len = placement.reserved + 1;
                result(&placements, file_len).expect_err("length past reservation")
            }
            3 => {
                file_len = placement.end() - 1;
                result(&placements, file_len).expect_err("past the end")
            }
            4 => {
                placements[i].1.start = placements[j].1.start;
                result(&placements, u64::MAX).expect_err("overlap")
            }
            5 => {
                placements.push(placements[j]);
                result(&placements, file_len).expect_err("duplicate")
            }
            _ => {
                placements[i].1.reserved = 0;
                placements[i].1.len = 0;
                result(&placements, file_len).expect_err("empty")
            }
        };
        let other_key = placements[j].0;
        let named = match error {
            LayoutError::MisalignedStart { key: k, .. }
            | LayoutError::MisalignedReserved { key: k, .. }
            | LayoutError::LenExceedsReserved { key: k, .. }
            | LayoutError::EmptyReservation { key: k, .. } => k == key,
            LayoutError::PastFileEnd {
                end, file_len: len, ..
            } => end > len,
            LayoutError::Overlap { first, second, .. } => {
                corruption % 7 != 4
                    || [first, second].contains(&key) && [first, second].contains(&other_key)
            }
            LayoutError::DuplicateRegion { key: k } => k == other_key,
            _ => false,
        };
        TestResult::from_bool(named)
    }
    quickcheck().quickcheck(property as fn(Vec<Op>, u8, usize, usize) -> TestResult);
}

#[test]
fn from_placements_never_panics_on_garbage() {
    fn property(raw: Vec<(u8, u64, u64, u64)>, file_len: u64, scale: bool) -> bool {
        // Half the cases use page multiples so that some inputs are valid.
        let placements = raw.into_iter().map(|(key, start, reserved, len)| {
            let (start, reserved, len) = if scale {
                (
                    (start % 64) * PAGE_SIZE,
                    (reserved % 8) * PAGE_SIZE,
                    len % (8 * PAGE_SIZE),
                )
            } else {
                (start, reserved, len)
            };
            (
                RegionKey::from(key % 16),
                Placement {
                    start,
                    reserved,
                    len,
                },
            )
        });
        let file_len = if scale {
            file_len % (80 * PAGE_SIZE)
        } else {
            file_len
        };
        match Layout::from_placements(placements, file_len) {
            Ok(layout) => layout.validate().is_ok(),
            Err(error) => !error.to_string().is_empty(),
        }
    }
    quickcheck().quickcheck(property as fn(Vec<(u8, u64, u64, u64)>, u64, bool) -> bool);
}
