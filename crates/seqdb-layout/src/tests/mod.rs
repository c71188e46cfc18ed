//! Unit tests of the layout, one file per kind of decision.

mod base;
mod commit;
mod compaction;
mod grow;
mod hold;
mod insert;
mod restore;

use crate::{Layout, PAGE_SIZE, Placement};

/// `n` pages in bytes.
const fn pages(n: u64) -> u64 {
    n * PAGE_SIZE
}

/// Inserts one-page regions with the given keys, in order.
fn layout_with(keys: &[u64]) -> Layout {
    let mut layout = Layout::new();
    for &key in keys {
        layout.insert(key, 0).expect("fresh key");
    }
    layout
}

/// Commits everything pending.
fn commit(layout: &mut Layout) {
    let ticket = layout.begin_commit();
    layout.finish_commit(ticket);
}

/// A placement.
const fn at(start: u64, reserved: u64, len: u64) -> Placement {
    Placement {
        start,
        reserved,
        len,
    }
}
