use super::*;
use crate::{Extent, GrowPlan, GrowthPolicy, LayoutError};

#[test]
fn growth_within_the_reservation_is_in_place() {
    let mut layout = layout_with(&[1, 2]);
    assert_eq!(layout.grow(1, 100), Ok(GrowPlan::InPlace));
    assert_eq!(layout.grow(1, pages(1)), Ok(GrowPlan::InPlace));
    assert_eq!(layout.grow(1, 10), Ok(GrowPlan::InPlace));
    assert_eq!(layout.get(1), Some(at(0, pages(1), 10)));
    assert_eq!(
        layout.grow(7, 1),
        Err(LayoutError::UnknownRegion { key: 7 })
    );
}

#[test]
fn last_region_appends_at_end_geometrically() {
    let mut layout = layout_with(&[1, 2]);
    assert_eq!(
        layout.grow(2, pages(1) + 1),
        Ok(GrowPlan::AppendAtEnd { reserved: pages(2) })
    );
    assert_eq!(
        layout.grow(2, pages(3)),
        Ok(GrowPlan::AppendAtEnd { reserved: pages(4) })
    );
    assert_eq!(
        layout.grow(2, pages(20)),
        Ok(GrowPlan::AppendAtEnd {
            reserved: pages(20)
        })
    );
    assert_eq!(layout.file_end(), pages(21));
    layout.validate().expect("valid");
}

#[test]
fn region_before_pending_space_is_not_last() {
    let mut layout = layout_with(&[1, 2]);
    layout.remove(2).expect("remove");
    let plan = layout.grow(1, pages(1) + 1).expect("grow");
    assert_eq!(
        plan,
        GrowPlan::Move {
            from: Extent::new(0, pages(1)),
            to: Extent::new(pages(2), pages(2))
        }
    );
    layout.validate().expect("valid");
}

#[test]
fn extends_into_the_following_hole() {
    let mut layout = layout_with(&[1, 2, 3, 4, 5]);
    layout.remove(2).expect("remove");
    layout.remove(3).expect("remove");
    commit(&mut layout);
    assert_eq!(
        layout.grow(1, pages(1) + 1),
        Ok(GrowPlan::ExtendIntoHole { reserved: pages(2) })
    );
    assert_eq!(
        layout.holes().collect::<Vec<_>>(),
        vec![Extent::new(pages(2), pages(1))]
    );
    // The hole is smaller than doubling wants but large enough for the length.
    assert_eq!(
        layout.grow(1, pages(3)),
        Ok(GrowPlan::ExtendIntoHole { reserved: pages(3) })
    );
    assert_eq!(layout.holes().count(), 0);
    layout.validate().expect("valid");
}

#[test]
fn moves_to_best_fit_hole_then_to_the_end() {
    let mut layout = Layout::with_policy(GrowthPolicy::Exact);
    for (key, size) in [(1, 1), (2, 3), (3, 1), (4, 2), (5, 1), (6, 1)] {
        layout.insert(key, pages(size)).expect("insert");
    }
    layout.remove(2).expect("remove");
    layout.remove(4).expect("remove");
    commit(&mut layout);
    // Holes: [1,4) three pages and [5,7) two pages.
    assert_eq!(
        layout.grow(6, pages(1) + 1),
        Ok(GrowPlan::AppendAtEnd { reserved: pages(2) })
    );
    assert_eq!(
        layout.grow(5, pages(2)),
        Ok(GrowPlan::Move {
            from: Extent::new(pages(7), pages(1)),
            to: Extent::new(pages(5), pages(2))
        })
    );
    assert_eq!(
        layout.grow(1, pages(5)),
        Ok(GrowPlan::Move {
            from: Extent::new(0, pages(1)),
            to: Extent::new(pages(10), pages(5))
        })
    );
    assert_eq!(layout.get(1), Some(at(pages(10), pages(5), pages(5))));
    assert_eq!(layout.file_end(), pages(15));
    layout.validate().expect("valid");
}

#[test]
fn growth_past_the_address_space_is_an_error() {
    let mut layout = layout_with(&[1, 2]);
    assert!(matches!(
        layout.grow(1, u64::MAX),
        Err(LayoutError::Overflow { key: 1, .. })
    ));
    assert!(matches!(
        layout.grow(2, u64::MAX - pages(1)),
        Err(LayoutError::Overflow { key: 2, .. })
    ));
    assert_eq!(layout.get(1), Some(at(0, pages(1), 0)));
    layout.validate().expect("valid");
}
