use super::*;
use crate::{Extent, LayoutError};

#[test]
fn gaps_become_holes() {
    let layout = Layout::from_placements(
        [
            (7, at(pages(2), pages(1), 3)),
            (3, at(pages(5), pages(2), pages(2))),
        ],
        pages(10),
    )
    .expect("valid placements");
    assert_eq!(
        layout.holes().collect::<Vec<_>>(),
        vec![Extent::new(0, pages(2)), Extent::new(pages(3), pages(2))]
    );
    assert_eq!(layout.file_end(), pages(7));
    assert_eq!(layout.stats().live_bytes, pages(2) + 3);
    layout.validate().expect("valid");
}

#[test]
fn every_corruption_is_named() {
    let check = |placements: Vec<(u64, crate::Placement)>, file_len| {
        Layout::from_placements(placements, file_len).expect_err("must be rejected")
    };
    assert_eq!(
        check(vec![(1, at(1, pages(1), 0))], pages(4)),
        LayoutError::MisalignedStart { key: 1, start: 1 }
    );
    assert_eq!(
        check(vec![(1, at(0, 100, 0))], pages(4)),
        LayoutError::MisalignedReserved {
            key: 1,
            reserved: 100
        }
    );
    assert_eq!(
        check(vec![(1, at(0, 0, 0))], pages(4)),
        LayoutError::EmptyReservation { key: 1, start: 0 }
    );
    assert_eq!(
        check(vec![(1, at(0, pages(1), pages(1) + 1))], pages(4)),
        LayoutError::LenExceedsReserved {
            key: 1,
            len: pages(1) + 1,
            reserved: pages(1)
        }
    );
    assert_eq!(
        check(vec![(1, at(pages(3), pages(2), 0))], pages(4)),
        LayoutError::PastFileEnd {
            key: 1,
            end: pages(5),
            file_len: pages(4)
        }
    );
    let top = u64::MAX - (PAGE_SIZE - 1);
    assert_eq!(
        check(vec![(1, at(top, pages(1), 0))], u64::MAX),
        LayoutError::Overflow {
            key: 1,
            start: top,
            size: pages(1)
        }
    );
    assert_eq!(
        check(
            vec![(1, at(0, pages(1), 0)), (1, at(pages(1), pages(1), 0))],
            pages(4)
        ),
        LayoutError::DuplicateRegion { key: 1 }
    );
    assert_eq!(
        check(
            vec![(1, at(0, pages(2), 0)), (2, at(pages(1), pages(1), 0))],
            pages(4)
        ),
        LayoutError::Overlap {
            first: 1,
            second: 2,
            first_end: pages(2),
            second_start: pages(1)
        }
    );
}
