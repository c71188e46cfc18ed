//! `Layout::pend_free_space`: free space made pending stays out of reach until a commit
//! taken after it is finished.

use seqdb_layout::{Extent, Layout, PAGE_SIZE};

#[test]
fn free_space_and_the_file_tail_wait_for_a_later_commit() {
    let mut layout = Layout::with_base(PAGE_SIZE);
    layout.insert(1, 4 * PAGE_SIZE).unwrap();
    layout.insert(2, 4 * PAGE_SIZE).unwrap();
    layout.insert(3, PAGE_SIZE).unwrap();
    layout.remove(2).unwrap();
    let ticket = layout.begin_commit();
    layout.finish_commit(ticket);
    assert_eq!(layout.holes().count(), 1);
    let end = layout.file_end();

    // The file is longer than the layout: a region past the end that a newer state
    // dropped.
    let pended = layout.pend_free_space(end + 3 * PAGE_SIZE - 100);
    assert_eq!(pended, 4 * PAGE_SIZE + 3 * PAGE_SIZE);
    assert_eq!(layout.holes().count(), 0);
    assert_eq!(layout.file_end(), end + 3 * PAGE_SIZE);
    layout.validate().unwrap();
    // Nothing of it is handed out: a new region goes past it.
    let placed = layout.insert(4, PAGE_SIZE).unwrap();
    assert!(placed.start >= end + 3 * PAGE_SIZE, "{placed:?}");

    let ticket = layout.begin_commit();
    layout.finish_commit(ticket);
    layout.validate().unwrap();
    assert!(
        layout
            .holes()
            .any(|h| h.contains(&Extent::new(5 * PAGE_SIZE, PAGE_SIZE)))
    );
}
