use super::*;
use crate::{Extent, LayoutError};

#[test]
fn a_held_extent_outlives_its_commit_until_unheld() {
    let mut layout = layout_with(&[1, 2, 3]);
    let freed = layout.remove(2).expect("remove").extent();
    layout.hold(freed).expect("pending");
    assert_eq!(layout.stats().held_bytes, pages(1));
    assert_eq!(layout.stats().pending_bytes, 0);
    commit(&mut layout);
    assert_eq!(layout.holes().count(), 0, "held space is not free");
    assert_eq!(layout.held().collect::<Vec<_>>(), vec![freed]);
    let placement = layout.insert(4, 0).expect("insert");
    assert_eq!(placement.start, pages(3), "never placed in held space");
    layout.validate().expect("valid");
    assert_eq!(layout.unhold(freed), Ok(true), "free at once");
    assert_eq!(layout.holes().collect::<Vec<_>>(), vec![freed]);
    assert_eq!(layout.stats().held_bytes, 0);
    layout.validate().expect("valid");
}

#[test]
fn an_extent_unheld_before_its_commit_is_freed_by_it() {
    let mut layout = layout_with(&[1, 2, 3]);
    let freed = layout.remove(2).expect("remove").extent();
    layout.hold(freed).expect("pending");
    assert_eq!(
        layout.unhold(freed),
        Ok(false),
        "still waits for its commit"
    );
    assert_eq!(layout.pending().collect::<Vec<_>>(), vec![freed]);
    commit(&mut layout);
    assert_eq!(layout.holes().collect::<Vec<_>>(), vec![freed]);
    layout.validate().expect("valid");
}

#[test]
fn only_pending_extents_can_be_held_once() {
    let mut layout = layout_with(&[1, 2, 3]);
    let live = layout.get(1).expect("region").extent();
    assert!(matches!(
        layout.hold(live),
        Err(LayoutError::NotPending { .. })
    ));
    let freed = layout.remove(2).expect("remove").extent();
    assert!(
        layout
            .hold(Extent::new(freed.start, 2 * freed.len))
            .is_err()
    );
    assert!(layout.unhold(freed).is_err(), "not held");
    layout.hold(freed).expect("pending");
    assert!(layout.hold(freed).is_err(), "held already");
    layout.unhold(freed).expect("held");
    assert!(layout.unhold(freed).is_err(), "unheld already");
}

#[test]
fn a_reallocated_region_leaves_its_extent_pending() {
    let mut layout = layout_with(&[1, 2]);
    layout.grow(1, 100).expect("grow");
    let moved = layout.reallocate(1, 50, pages(1)).expect("move");
    assert_eq!(
        moved,
        (Extent::new(0, pages(1)), Extent::new(pages(2), pages(1)))
    );
    assert_eq!(layout.get(1), Some(at(pages(2), pages(1), 50)));
    assert_eq!(
        layout.pending().collect::<Vec<_>>(),
        vec![Extent::new(0, pages(1))]
    );
    layout.validate().expect("valid");
}

#[test]
fn compaction_waits_for_held_extents() {
    let mut layout = layout_with(&[1, 2, 3]);
    let freed = layout.remove(1).expect("remove").extent();
    layout.hold(freed).expect("pending");
    commit(&mut layout);
    for _ in 0..3 {
        let moves = layout.compaction_step();
        assert!(
            moves
                .iter()
                .all(|mv| !Extent::new(mv.to, 1).overlaps(&freed)),
            "{moves:?}"
        );
        commit(&mut layout);
    }
    assert!(!layout.is_compact());
    layout.unhold(freed).expect("held");
    commit(&mut layout);
    while !layout.compaction_step().is_empty() {
        commit(&mut layout);
    }
    assert!(layout.is_compact());
    assert_eq!(layout.file_end(), pages(2));
    layout.validate().expect("valid");
}
