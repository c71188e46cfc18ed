//! Region numbers by name: a hash index built in one cache-friendly sweep.
//!
//! A general hash map built by inserting a million names writes its buckets in random
//! order; once the table outgrows the processor's caches every insert misses, and open
//! time grows faster than the number of regions. This index keeps the names densely
//! (copied in number order) and a compact open-addressing table of 8-byte slots: a tag
//! from the name's hash and the name's position. [`NameIndex::build`] hashes the names
//! in order, sorts the tags with a radix sort, and fills the table from front to back:
//! every pass reads and writes memory in order.
//!
//! The hash is the standard library's keyed SipHash (a random key per index), so names
//! chosen to collide cannot be crafted; probing is linear, deletion shifts entries back.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

/// A slot: the high 32 bits of the name's hash, and where the name is in `entries` (or
/// [`EMPTY`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    tag: u32,
    at: u32,
}

const EMPTY: Slot = Slot {
    tag: 0,
    at: u32::MAX,
};

/// The smallest table.
const MIN_SLOTS: usize = 16;

/// Region numbers by name.
#[derive(Debug)]
pub(crate) struct NameIndex {
    hasher: RandomState,
    slots: Vec<Slot>,
    /// `32 - log2(slots.len())`: a tag's home is its top bits.
    shift: u32,
    /// Every name and its region's number.
    entries: Vec<(Box<str>, u32)>,
}

impl Default for NameIndex {
    fn default() -> Self {
        Self::with_slots(MIN_SLOTS)
    }
}

impl NameIndex {
    fn with_slots(slots: usize) -> Self {
        let slots = slots.next_power_of_two().max(MIN_SLOTS);
        NameIndex {
            hasher: RandomState::new(),
            slots: vec![EMPTY; slots],
            shift: 32 - slots.trailing_zeros(),
            entries: Vec::new(),
        }
    }

    /// Index `regions` (number and name). Returns the index and every name given more
    /// than once, as (number, number that had it first); the later number is left out.
    pub fn build<'a>(
        regions: impl ExactSizeIterator<Item = (u64, &'a str)> + Clone,
    ) -> (Self, Vec<(u64, u64)>) {
        let mut index = Self::with_slots(2 * regions.len());
        let mut tagged: Vec<Slot> = regions
            .clone()
            .enumerate()
            .map(|(at, (_, name))| Slot {
                tag: index.tag(name),
                at: at as u32,
            })
            .collect();
        radix_sort_by_tag(&mut tagged);
        // Equal names have equal tags, so they sit side by side now; a run of equal
        // tags (almost always a single name) is sorted by name to find them.
        let given: Vec<(u64, &str)> = regions.collect();
        let mut duplicate = vec![false; given.len()];
        let mut duplicates = Vec::new();
        for run in tagged
            .chunk_by(|a, b| a.tag == b.tag)
            .filter(|run| run.len() > 1)
        {
            let mut named: Vec<(&str, usize)> = run
                .iter()
                .map(|slot| (given[slot.at as usize].1, slot.at as usize))
                .collect();
            named.sort_unstable();
            for same in named.chunk_by(|a, b| a.0 == b.0) {
                // The first in the order given keeps the name.
                let keep = same[0].1;
                for &(_, drop) in &same[1..] {
                    duplicate[drop] = true;
                    duplicates.push((given[drop].0, given[keep].0));
                }
            }
        }
        // Positions in `entries` of the names kept, in the order given.
        let mut position = vec![u32::MAX; given.len()];
        index.entries.reserve(given.len() - duplicates.len());
        for (i, &(number, name)) in given.iter().enumerate() {
            if !duplicate[i] {
                position[i] = index.entries.len() as u32;
                index.entries.push((name.into(), number as u32));
            }
        }
        for slot in tagged {
            let at = position[slot.at as usize];
            if at != u32::MAX {
                index.place(Slot { tag: slot.tag, at });
            }
        }
        (index, duplicates)
    }

    /// The number of the region named `name`.
    pub fn get(&self, name: &str) -> Option<usize> {
        let at = self.find(name, self.tag(name))?;
        Some(self.entries[self.slots[at].at as usize].1 as usize)
    }

    /// Whether a region is named `name`.
    pub fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Name region `number` `name`; returns the number already named so instead, if
    /// there is one (nothing is changed then).
    pub fn insert(&mut self, name: String, number: usize) -> Option<usize> {
        let tag = self.tag(&name);
        if let Some(at) = self.find(&name, tag) {
            return Some(self.entries[self.slots[at].at as usize].1 as usize);
        }
        if (self.entries.len() + 1) * 8 > self.slots.len() * 5 {
            self.grow(2 * self.slots.len());
        }
        self.place(Slot {
            tag,
            at: self.entries.len() as u32,
        });
        self.entries.push((name.into_boxed_str(), number as u32));
        None
    }

    /// Forget the name `name`; returns the number it named.
    pub fn remove(&mut self, name: &str) -> Option<usize> {
        let hole = self.find(name, self.tag(name))?;
        let at = self.slots[hole].at as usize;
        self.unplace(hole);
        let (_, number) = self.entries.swap_remove(at);
        if let Some((moved, _)) = self.entries.get(at) {
            // The last entry moved into the removed one's place: point its slot there.
            let old = self.entries.len() as u32;
            let mut probe = self.home(self.tag(moved));
            while self.slots[probe].at != old {
                probe = self.next(probe);
            }
            self.slots[probe].at = at as u32;
        }
        Some(number as usize)
    }

    /// Make room for `additional` more names without growing the table.
    pub fn reserve(&mut self, additional: usize) {
        let wanted = (self.entries.len() + additional) * 8 / 5 + 1;
        if wanted > self.slots.len() {
            self.grow(wanted);
        }
        self.entries.reserve(additional);
    }

    /// The slot of `name` (whose tag is `tag`).
    fn find(&self, name: &str, tag: u32) -> Option<usize> {
        let mut probe = self.home(tag);
        loop {
            let slot = self.slots[probe];
            if slot == EMPTY {
                return None;
            }
            if slot.tag == tag && *self.entries[slot.at as usize].0 == *name {
                return Some(probe);
            }
            probe = self.next(probe);
        }
    }

    /// Put `slot` in the first free slot from its home.
    fn place(&mut self, slot: Slot) {
        let mut probe = self.home(slot.tag);
        while self.slots[probe] != EMPTY {
            probe = self.next(probe);
        }
        self.slots[probe] = slot;
    }

    /// Empty the slot at `hole`, shifting back the slots after it that may not stay
    /// behind it.
    fn unplace(&mut self, mut hole: usize) {
        let mut probe = hole;
        loop {
            probe = self.next(probe);
            let slot = self.slots[probe];
            if slot == EMPTY {
                break;
            }
            let home = self.home(slot.tag);
            let stays = if hole <= probe {
                hole < home && home <= probe
            } else {
                hole < home || home <= probe
            };
            if !stays {
                self.slots[hole] = slot;
                hole = probe;
            }
        }
        self.slots[hole] = EMPTY;
    }

    /// Rebuild the table with at least `slots` slots.
    fn grow(&mut self, slots: usize) {
        let mut tagged: Vec<Slot> = self.slots.iter().copied().filter(|s| *s != EMPTY).collect();
        let bigger = Self::with_slots(slots);
        self.slots = bigger.slots;
        self.shift = bigger.shift;
        radix_sort_by_tag(&mut tagged);
        for slot in tagged {
            self.place(slot);
        }
    }

    fn tag(&self, name: &str) -> u32 {
        (self.hasher.hash_one(name) >> 32) as u32
    }

    fn home(&self, tag: u32) -> usize {
        (tag >> self.shift) as usize
    }

    fn next(&self, probe: usize) -> usize {
        (probe + 1) & (self.slots.len() - 1)
    }
}

/// Sort slots by tag (so by home), keeping the order of equal tags: two passes of 16
/// bits.
fn radix_sort_by_tag(slots: &mut Vec<Slot>) {
    if slots.len() < 256 {
        slots.sort_by_key(|slot| slot.tag);
        return;
    }
    let mut other = vec![EMPTY; slots.len()];
    for shift in [0u32, 16] {
        let mut counts = vec![0usize; 1 << 16];
        for slot in slots.iter() {
            counts[((slot.tag >> shift) & 0xffff) as usize] += 1;
        }
        let mut total = 0;
        for count in counts.iter_mut() {
            let here = *count;
            *count = total;
            total += here;
        }
        for slot in slots.iter() {
            let bucket = &mut counts[((slot.tag >> shift) & 0xffff) as usize];
            other[*bucket] = *slot;
            *bucket += 1;
        }
        std::mem::swap(slots, &mut other);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::QuickCheck;
    use std::collections::HashMap;

    #[test]
    fn a_built_index_finds_every_name_and_reports_duplicates() {
        let names: Vec<String> = (0..5000).map(|i| format!("r{i:06}")).collect();
        let mut regions: Vec<(u64, &str)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (2 * i as u64, n.as_str()))
            .collect();
        regions.push((20_000, "r000007"));
        regions.push((20_001, "r000007"));
        let (index, duplicates) = NameIndex::build(regions.iter().copied());
        assert_eq!(duplicates, vec![(20_000, 14), (20_001, 14)]);
        for (i, name) in names.iter().enumerate() {
            assert_eq!(index.get(name), Some(2 * i));
        }
        assert_eq!(index.get("missing"), None);
        assert_eq!(index.entries.len(), 5000);
    }

    #[test]
    fn a_region_numbered_near_the_bound_costs_no_more_than_one() {
        let (index, _) = NameIndex::build([(1u64 << 24, "top")].into_iter());
        assert_eq!(index.get("top"), Some(1 << 24));
        assert_eq!(index.entries.len(), 1);
        assert!(index.slots.len() <= MIN_SLOTS);
    }

    #[test]
    fn many_copies_of_one_name_cost_linear_time() {
        let regions: Vec<(u64, &str)> = (0..200_000).map(|n| (n, "same")).collect();
        let start = std::time::Instant::now();
        let (index, duplicates) = NameIndex::build(regions.iter().copied());
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
        assert_eq!(duplicates.len(), 199_999);
        assert!(duplicates.iter().all(|&(_, first)| first == 0));
        assert_eq!(index.get("same"), Some(0));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u8, u16),
        Remove(u8),
        Reserve(u8),
    }

    impl quickcheck::Arbitrary for Op {
        fn arbitrary(g: &mut quickcheck::Gen) -> Self {
            match u8::arbitrary(g) % 5 {
                0 | 1 => Op::Insert(u8::arbitrary(g), u16::arbitrary(g)),
                2 | 3 => Op::Remove(u8::arbitrary(g)),
                _ => Op::Reserve(u8::arbitrary(g)),
            }
        }
    }

    #[test]
    fn behaves_as_a_map() {
        fn prop(start: Vec<u8>, ops: Vec<Op>) -> bool {
            let mut model: HashMap<String, usize> = HashMap::new();
            let names: Vec<String> = start.iter().map(|b| format!("n{b}")).collect();
            let mut regions = Vec::new();
            for (i, name) in names.iter().enumerate() {
                model.entry(name.clone()).or_insert(i);
                regions.push((i as u64, name.as_str()));
            }
            let (mut index, _) = NameIndex::build(regions.iter().copied());
            for op in ops {
                match op {
                    Op::Insert(name, number) => {
                        let name = format!("n{name}");
                        let number = 1000 + usize::from(number);
                        let expected = model.get(&name).copied();
                        if expected.is_none() {
                            model.insert(name.clone(), number);
                        }
                        if index.insert(name, number) != expected {
                            return false;
                        }
                    }
                    Op::Remove(name) => {
                        let name = format!("n{name}");
                        if index.remove(&name) != model.remove(&name) {
                            return false;
                        }
                    }
                    Op::Reserve(n) => index.reserve(usize::from(n) * 10),
                }
                if index.entries.len() != model.len() {
                    return false;
                }
            }
            (0..=255).all(|b| {
                let name = format!("n{b}");
                index.get(&name) == model.get(&name).copied()
            })
        }
        QuickCheck::new()
            .tests(500)
            .quickcheck(prop as fn(Vec<u8>, Vec<Op>) -> bool);
    }
}
