//! A region's place in the table: its state and lock, made when the region is first
//! looked up.
//!
//! Opening a database reads every region's placement and name, but a process rarely
//! touches every region of a large database before it closes it (a tool that lists one
//! region, a reader of a few). A place keeps what open found, in the table's own vector,
//! and makes the region's state (one allocation, with its lock) the first time anything
//! asks for the region: an open allocates nothing per region. The state made then is
//! the one open would have made, because nothing changes a region without its state:
//! writing, moving, renaming or removing a region all go through its lock, so a region
//! whose state was never made is exactly as open found it.

use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;

use crate::database::Slot;
use crate::name::Name;
use crate::region::{Region, RegionState};

/// One region of the table.
pub(crate) struct Place {
    /// The region's state and lock, once made.
    made: OnceLock<Slot>,
    /// The region as open found it, what its state is made from (a region created in
    /// memory has its state from the start, and nothing here).
    found: Found,
}

/// A region as open found it.
#[derive(Default)]
struct Found {
    name: Name,
    start: u64,
    reserved: u64,
    len: u64,
}

impl Found {
    /// The state of region `number` as open found it.
    fn state(&self, number: usize) -> RegionState {
        let name = self.name.clone();
        RegionState::opened(name, number, self.start, self.reserved, self.len)
    }

    /// The metadata of region `number` as open found it.
    fn region(&self, number: usize) -> Region {
        let name = self.name.to_string();
        Region::new(name, number, self.start, self.len, self.reserved)
    }
}

impl Place {
    /// A region whose state exists already (one just created).
    pub fn made(slot: Slot) -> Self {
        Place {
            made: OnceLock::from(slot),
            found: Found::default(),
        }
    }

    /// A region open found: `len` bytes at `start`, in a reservation of `reserved`.
    pub fn found(name: Name, start: u64, reserved: u64, len: u64) -> Self {
        Place {
            made: OnceLock::new(),
            found: Found {
                name,
                start,
                reserved,
                len,
            },
        }
    }

    /// The region's state and lock, made now if nothing asked for them before; `number`
    /// is the place's number in the table.
    pub fn slot(&self, number: usize) -> &Slot {
        self.made
            .get_or_init(|| Arc::new(RwLock::new(self.found.state(number))))
    }

    /// The region's state and lock, if they were made: a region whose state was never
    /// made has no tail, no lent buffer, no readers and no published snapshot.
    pub fn made_slot(&self) -> Option<&Slot> {
        self.made.get()
    }

    /// The metadata of a region whose state was never made (as open found it); `None`
    /// once it is made, when its state tells it. `number` is the place's number.
    pub fn untouched_region(&self, number: usize) -> Option<Region> {
        match self.made.get() {
            Some(_) => None,
            None => Some(self.found.region(number)),
        }
    }

    /// The length and reservation of a region whose state was never made (as open found
    /// them); `None` once it is made, when its state tells them.
    pub fn untouched(&self) -> Option<(u64, u64)> {
        match self.made.get() {
            Some(_) => None,
            None => Some((self.found.len, self.found.reserved)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_found_region_is_made_once_as_open_found_it() {
        let place = Place::found(Name::from("r000007"), 8192, 4096, 100);
        assert!(place.made_slot().is_none());
        assert_eq!(place.untouched(), Some((100, 4096)));
        let listed = place.untouched_region(7).unwrap();
        assert_eq!(
            (
                listed.name(),
                listed.number(),
                listed.start(),
                listed.len(),
                listed.reserved()
            ),
            ("r000007", 7, 8192, 100, 4096)
        );
        let first = place.slot(7).clone();
        assert!(Arc::ptr_eq(&first, place.slot(7)), "made once");
        assert!(Arc::ptr_eq(&first, place.made_slot().unwrap()));
        assert_eq!(place.untouched(), None);
        assert_eq!(place.untouched_region(7), None);
        let region = first.read();
        assert_eq!(region.snapshot(), listed, "listed as its state says");
        assert_eq!(region.name(), "r000007");
        assert_eq!(region.number(), 7);
        assert_eq!(
            (region.start(), region.reserved(), region.len()),
            (8192, 4096, 100)
        );
    }

    #[test]
    fn threads_asking_at_once_get_one_state() {
        let place = Place::found(Name::from("shared"), 4096, 4096, 10);
        let slots: Vec<Slot> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| place.slot(3).clone()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(slots.iter().all(|s| Arc::ptr_eq(s, &slots[0])));
    }
}
