use super::*;
use crate::{Extent, LayoutError};

#[test]
fn inserts_append_at_the_end_with_at_least_a_page() {
    let mut layout = Layout::new();
    assert_eq!(layout.insert(1, 0), Ok(at(0, pages(1), 0)));
    assert_eq!(layout.insert(2, 1), Ok(at(pages(1), pages(1), 0)));
    assert_eq!(
        layout.insert(3, pages(2) + 1),
        Ok(at(pages(2), pages(3), 0))
    );
    assert_eq!(layout.file_end(), pages(5));
    assert_eq!(
        layout.insert(2, 0),
        Err(LayoutError::DuplicateRegion { key: 2 })
    );
    layout.validate().expect("valid");
}

#[test]
fn insert_takes_the_best_fitting_hole() {
    let mut layout = Layout::new();
    layout.insert(1, pages(3)).expect("insert");
    layout.insert(2, 0).expect("insert");
    layout.insert(3, pages(2)).expect("insert");
    layout.insert(4, 0).expect("insert");
    layout.remove(1).expect("remove");
    layout.remove(3).expect("remove");
    // Pending space is not reused before its commit.
    assert_eq!(layout.insert(5, pages(2)).map(|p| p.start), Ok(pages(7)));
    commit(&mut layout);
    assert_eq!(
        layout.holes().collect::<Vec<_>>(),
        vec![Extent::new(0, pages(3)), Extent::new(pages(4), pages(2))]
    );
    assert_eq!(layout.insert(6, pages(2)).map(|p| p.start), Ok(pages(4)));
    assert_eq!(layout.insert(7, pages(1)).map(|p| p.start), Ok(0));
    assert_eq!(
        layout.holes().collect::<Vec<_>>(),
        vec![Extent::new(pages(1), pages(2))]
    );
    layout.validate().expect("valid");
}

#[test]
fn impossible_sizes_are_errors() {
    let mut layout = layout_with(&[1]);
    assert!(matches!(
        layout.insert(2, u64::MAX),
        Err(LayoutError::Overflow { key: 2, .. })
    ));
    assert!(matches!(
        layout.insert(2, u64::MAX - pages(1)),
        Err(LayoutError::Overflow { key: 2, .. })
    ));
    assert!(!layout.contains(2));
    layout.validate().expect("valid");
}

#[test]
fn set_len_and_remove_check_their_arguments() {
    let mut layout = layout_with(&[1]);
    assert_eq!(layout.set_len(1, pages(1)), Ok(()));
    assert_eq!(
        layout.set_len(1, pages(1) + 1),
        Err(LayoutError::LenExceedsReserved {
            key: 1,
            len: pages(1) + 1,
            reserved: pages(1)
        })
    );
    assert_eq!(
        layout.set_len(9, 0),
        Err(LayoutError::UnknownRegion { key: 9 })
    );
    assert_eq!(layout.remove(9), Err(LayoutError::UnknownRegion { key: 9 }));
    assert_eq!(layout.remove(1), Ok(at(0, pages(1), pages(1))));
    assert_eq!(
        layout.pending().collect::<Vec<_>>(),
        vec![Extent::new(0, pages(1))]
    );
    assert_eq!(layout.file_end(), pages(1));
    commit(&mut layout);
    assert_eq!(layout.file_end(), 0);
    assert_eq!(layout.stats(), crate::LayoutStats::default());
    layout.validate().expect("valid");
}
