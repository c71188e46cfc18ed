use super::*;
use crate::{Extent, LayoutError, placement_violations};

#[test]
fn regions_are_placed_and_packed_above_the_base() {
    let mut layout = Layout::with_base(pages(1));
    assert_eq!((layout.base(), layout.file_end()), (pages(1), pages(1)));
    let a = layout.insert(1, 0).expect("fresh");
    let b = layout.insert(2, 0).expect("fresh");
    assert_eq!((a.start, b.start), (pages(1), pages(2)));
    layout.remove(1).expect("exists");
    commit(&mut layout);
    assert_eq!(
        layout.holes().collect::<Vec<_>>(),
        vec![Extent::new(pages(1), pages(1))]
    );
    layout.validate().expect("valid");
    while !layout.compaction_step().is_empty() {
        commit(&mut layout);
    }
    assert!(layout.is_compact());
    assert_eq!(layout.get(2).map(|p| p.start), Some(pages(1)));
    assert_eq!(layout.file_end(), pages(2));
    layout.remove(2).expect("exists");
    commit(&mut layout);
    assert_eq!(layout.file_end(), pages(1), "never below the base");
    layout.validate().expect("valid");
}

#[test]
fn a_base_is_rounded_up_to_a_page() {
    assert_eq!(Layout::with_base(1).base(), pages(1));
    assert_eq!(Layout::with_base(0).file_end(), 0);
}

#[test]
fn restoring_above_a_base_keeps_the_header_free() {
    let layout =
        Layout::from_placements_above(pages(1), [(4, at(pages(3), pages(1), 1))], u64::MAX)
            .expect("valid");
    assert_eq!(
        layout.holes().collect::<Vec<_>>(),
        vec![Extent::new(pages(1), pages(2))]
    );
    layout.validate().expect("valid");
    assert_eq!(
        Layout::from_placements_above(pages(1), [(4, at(0, pages(1), 1))], u64::MAX)
            .expect_err("inside the header"),
        LayoutError::BelowBase {
            key: 4,
            start: 0,
            base: pages(1)
        }
    );
    let empty = Layout::from_placements_above(pages(1), [], u64::MAX).expect("valid");
    assert_eq!(empty.file_end(), pages(1));
    empty.validate().expect("valid");
}

#[test]
fn every_violation_is_listed() {
    let violations = placement_violations(
        pages(1),
        vec![
            (1, at(0, pages(1), 0)),
            (2, at(pages(1) + 1, 100, pages(1))),
            (3, at(pages(2), pages(2), 0)),
            (4, at(pages(3), pages(1), 0)),
            (5, at(pages(3), pages(1), 0)),
            (3, at(pages(8), pages(1), 0)),
            (6, at(pages(9), pages(4), 0)),
        ],
        pages(12),
    );
    assert_eq!(
        violations,
        vec![
            LayoutError::BelowBase {
                key: 1,
                start: 0,
                base: pages(1)
            },
            LayoutError::MisalignedStart {
                key: 2,
                start: pages(1) + 1
            },
            LayoutError::MisalignedReserved {
                key: 2,
                reserved: 100
            },
            LayoutError::LenExceedsReserved {
                key: 2,
                len: pages(1),
                reserved: 100
            },
            LayoutError::PastFileEnd {
                key: 6,
                end: pages(13),
                file_len: pages(12)
            },
            LayoutError::DuplicateRegion { key: 3 },
            LayoutError::Overlap {
                first: 3,
                second: 4,
                first_end: pages(4),
                second_start: pages(3)
            },
            LayoutError::Overlap {
                first: 3,
                second: 5,
                first_end: pages(4),
                second_start: pages(3)
            },
        ]
    );
    // The rebuild fails with the first of them.
    assert!(matches!(
        Layout::from_placements_above(pages(1), [(1, at(0, pages(1), 0))], pages(4)),
        Err(LayoutError::BelowBase { .. })
    ));
}
