use super::*;
use crate::Extent;

#[test]
fn only_captured_extents_are_freed() {
    let mut layout = layout_with(&[1, 2, 3, 4]);
    layout.remove(1).expect("remove");
    let ticket = layout.begin_commit();
    layout.remove(3).expect("remove");
    layout.finish_commit(ticket);
    assert_eq!(
        layout.holes().collect::<Vec<_>>(),
        vec![Extent::new(0, pages(1))]
    );
    assert_eq!(
        layout.pending().collect::<Vec<_>>(),
        vec![Extent::new(pages(2), pages(1))]
    );
    commit(&mut layout);
    assert_eq!(layout.pending().count(), 0);
    assert_eq!(layout.stats().free_bytes, pages(2));
    layout.validate().expect("valid");
}

#[test]
fn a_dropped_ticket_frees_nothing_and_the_next_captures_its_extents() {
    let mut layout = layout_with(&[1, 2, 3]);
    layout.remove(1).expect("remove");
    drop(layout.begin_commit());
    assert_eq!(layout.pending().count(), 1);
    layout.remove(2).expect("remove");
    let ticket = layout.begin_commit();
    layout.finish_commit(ticket);
    assert_eq!(
        layout.holes().collect::<Vec<_>>(),
        vec![Extent::new(0, pages(2))]
    );
    layout.validate().expect("valid");
}

#[test]
fn a_stale_ticket_frees_nothing_new() {
    let mut layout = layout_with(&[1, 2, 3, 4]);
    layout.remove(1).expect("remove");
    let stale = layout.begin_commit();
    let fresh = layout.begin_commit();
    layout.finish_commit(fresh);
    layout.remove(2).expect("remove");
    layout.finish_commit(stale);
    assert_eq!(
        layout.pending().collect::<Vec<_>>(),
        vec![Extent::new(pages(1), pages(1))]
    );
    layout.validate().expect("valid");
}

#[test]
fn freed_space_at_the_end_shrinks_the_file() {
    let mut layout = layout_with(&[1, 2, 3, 4]);
    layout.remove(2).expect("remove");
    commit(&mut layout);
    layout.remove(4).expect("remove");
    layout.remove(3).expect("remove");
    assert_eq!(layout.file_end(), pages(4));
    commit(&mut layout);
    assert_eq!(layout.file_end(), pages(1));
    assert_eq!(layout.holes().count(), 0);
    layout.validate().expect("valid");
}

#[test]
fn punchable_lists_holes_and_unused_tails_but_not_pending() {
    let mut layout = layout_with(&[1, 2, 3]);
    layout.grow(3, pages(3)).expect("grow");
    layout.set_len(3, 10).expect("set_len");
    layout.remove(1).expect("remove");
    assert_eq!(
        layout.punchable().collect::<Vec<_>>(),
        vec![
            crate::Punchable::Tail {
                region: 2,
                extent: Extent::new(pages(1), pages(1))
            },
            crate::Punchable::Tail {
                region: 3,
                extent: Extent::new(pages(3), pages(2))
            }
        ]
    );
    layout.remove(2).expect("remove");
    commit(&mut layout);
    let punchable: Vec<_> = layout.punchable().map(|p| p.extent()).collect();
    assert_eq!(
        punchable,
        vec![Extent::new(0, pages(2)), Extent::new(pages(3), pages(2))]
    );
}
