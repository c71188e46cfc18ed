use super::*;
use crate::{Extent, Move};

/// Runs compaction rounds with a commit after each, returning the rounds.
fn compact(layout: &mut Layout) -> Vec<Vec<Move>> {
    commit(layout);
    let mut rounds = Vec::new();
    loop {
        let moves = layout.compaction_step();
        layout.validate().expect("valid after a round");
        if moves.is_empty() {
            return rounds;
        }
        rounds.push(moves);
        commit(layout);
        assert!(rounds.len() < 10, "compaction does not converge");
    }
}

#[test]
fn a_compact_layout_needs_no_moves() {
    let mut layout = layout_with(&[1, 2, 3]);
    assert!(layout.is_compact());
    assert!(layout.compaction_step().is_empty());
}

#[test]
fn regions_slide_into_free_targets() {
    let mut layout = layout_with(&[1, 2, 3, 4, 5]);
    layout.remove(1).expect("remove");
    layout.remove(2).expect("remove");
    layout.set_len(4, 7).expect("set_len");
    let rounds = compact(&mut layout);
    // Region 5's target is region 4's old extent, pending until the round
    // is committed: region 5 waits past the end of the file.
    assert_eq!(
        rounds,
        vec![
            vec![
                Move {
                    region: 3,
                    from: pages(2),
                    to: 0,
                    len: 0
                },
                Move {
                    region: 4,
                    from: pages(3),
                    to: pages(1),
                    len: 7
                },
                Move {
                    region: 5,
                    from: pages(4),
                    to: pages(5),
                    len: 0
                },
            ],
            vec![Move {
                region: 5,
                from: pages(5),
                to: pages(2),
                len: 0
            }],
        ]
    );
    assert!(layout.is_compact());
    assert_eq!(layout.file_end(), pages(3));
}

#[test]
fn a_region_overlapping_its_target_goes_past_the_end_first() {
    let mut layout = Layout::new();
    layout.insert(1, 0).expect("insert");
    layout.insert(2, pages(3)).expect("insert");
    layout.set_len(2, pages(3)).expect("set_len");
    layout.remove(1).expect("remove");
    let rounds = compact(&mut layout);
    assert_eq!(
        rounds,
        vec![
            vec![Move {
                region: 2,
                from: pages(1),
                to: pages(4),
                len: pages(3)
            }],
            vec![Move {
                region: 2,
                from: pages(4),
                to: 0,
                len: pages(3)
            }],
        ]
    );
    assert_eq!(layout.get(2), Some(at(0, pages(3), pages(3))));
    assert_eq!(layout.file_end(), pages(3));
    assert!(layout.is_compact());
}

#[test]
fn oversized_reservations_shrink_in_place() {
    let mut layout = Layout::new();
    layout.insert(1, pages(4)).expect("insert");
    layout.insert(2, 0).expect("insert");
    layout.set_len(1, 5).expect("set_len");
    let rounds = compact(&mut layout);
    assert_eq!(
        rounds[0][0],
        Move {
            region: 1,
            from: 0,
            to: 0,
            len: 0
        }
    );
    assert_eq!(layout.get(1), Some(at(0, pages(1), 5)));
    assert_eq!(layout.get(2), Some(at(pages(1), pages(1), 0)));
    assert!(layout.is_compact());
}

#[test]
fn relative_order_survives_parking() {
    let mut layout = Layout::new();
    layout.insert(1, 0).expect("insert");
    layout.insert(2, pages(2)).expect("insert");
    layout.insert(3, 0).expect("insert");
    layout.insert(4, pages(2)).expect("insert");
    layout.set_len(2, pages(2)).expect("set_len");
    layout.set_len(4, pages(2)).expect("set_len");
    layout.remove(1).expect("remove");
    compact(&mut layout);
    let order: Vec<_> = layout.regions().map(|(key, p)| (key, p.start)).collect();
    assert_eq!(order, vec![(2, 0), (3, pages(2)), (4, pages(3))]);
    assert!(layout.is_compact());
}

#[test]
fn space_freed_before_the_round_is_waited_for() {
    let mut layout = layout_with(&[1, 2, 3]);
    layout.remove(1).expect("remove");
    // Not committed: region 2's target is pending, so it waits; region 3's
    // target is region 2's extent, so it goes past the end.
    let moves = layout.compaction_step();
    assert_eq!(
        moves,
        vec![Move {
            region: 3,
            from: pages(2),
            to: pages(3),
            len: 0
        }]
    );
    let pending: Vec<Extent> = layout.pending().collect();
    assert_eq!(
        pending,
        vec![Extent::new(0, pages(1)), Extent::new(pages(2), pages(1))]
    );
    // Without a commit, nothing more can happen.
    assert!(layout.compaction_step().is_empty());
    assert!(!layout.is_compact());
    compact(&mut layout);
    let order: Vec<_> = layout.regions().map(|(key, p)| (key, p.start)).collect();
    assert_eq!(order, vec![(2, 0), (3, pages(1))]);
}

#[test]
fn regions_moved_back_by_growth_do_not_deadlock() {
    // Two parked regions that growth moved below each other's targets.
    let mut layout = Layout::new();
    layout.insert(1, 0).expect("insert");
    layout.insert(2, pages(3)).expect("insert");
    layout.insert(3, pages(3)).expect("insert");
    layout.set_len(2, pages(3)).expect("set_len");
    layout.set_len(3, pages(3)).expect("set_len");
    layout.remove(1).expect("remove");
    commit(&mut layout);
    layout.compaction_step();
    layout.grow(2, pages(3) + 1).expect("grow");
    layout.grow(3, pages(3) + 1).expect("grow");
    let rounds = compact(&mut layout);
    assert!(rounds.len() <= 2);
    assert!(layout.is_compact());
}
