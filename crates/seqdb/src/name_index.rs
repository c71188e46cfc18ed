//! Region numbers by name: a hash index built in one cache-friendly sweep.
//!
//! A general hash map built by inserting a million names writes its buckets in random
//! order; once the table outgrows the processor's caches every insert misses, and open
//! time grows faster than the number of regions. This index keeps the names densely,
//! one after another in a single buffer (copied in number order, with no allocation
//! per name), and a compact open-addressing table of 8-byte slots: a tag from the
//! name's hash and the name's position. [`NameIndex::build`] hashes the names in order,
//! sorts the tags with a radix sort, and fills the table from front to back: every pass
//! reads and writes memory in order.
//!
//! A removed name's bytes stay in the buffer until they are more than the live names'
//! bytes; the buffer is then rewritten without them, so it never holds more than twice
//! the live names (plus a page).
//!
//! The hash is foldhash, seeded at random per process and per index, so names chosen in
//! a file to collide cannot be crafted without the seed (the names a file holds are
//! fixed before the process that opens it picks its seed); probing is linear, deletion
//! shifts entries back. It hashes a short name several times faster than SipHash, which
//! an open of many regions notices.

use foldhash::fast::RandomState;
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

/// Bytes of removed names kept in the buffer before it may be rewritten.
const MIN_GARBAGE: usize = 4096;

/// A name's place in the names buffer, and its region's number.
#[derive(Debug, Clone, Copy)]
struct Named {
    start: usize,
    len: u32,
    number: u32,
}

/// Region numbers by name.
#[derive(Debug)]
pub(crate) struct NameIndex {
    hasher: RandomState,
    slots: Vec<Slot>,
    /// `32 - log2(slots.len())`: a tag's home is its top bits.
    shift: u32,
    /// Every name's bytes, one after another (with removed names' bytes, `garbage` of
    /// them, until the buffer is rewritten).
    names: Vec<u8>,
    garbage: usize,
    /// Every name and its region's number.
    entries: Vec<Named>,
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
            hasher: RandomState::default(),
            slots: vec![EMPTY; slots],
            shift: 32 - slots.trailing_zeros(),
            names: Vec::new(),
            garbage: 0,
            entries: Vec::new(),
        }
    }

    /// Index `regions` (number and name). Returns the index and every name given more
    /// than once, as (number, number that had it first); the later number is left out.
    pub fn build<'a, N: AsRef<[u8]> + ?Sized + 'a>(
        regions: impl ExactSizeIterator<Item = (u64, &'a N)> + Clone,
    ) -> (Self, Vec<(u64, u64)>) {
        let count = regions.len();
        let mut index = Self::with_slots(2 * count);
        index
            .names
            .reserve_exact(regions.clone().map(|(_, name)| name.as_ref().len()).sum());
        index.entries.reserve_exact(count);
        let mut tagged = Vec::with_capacity(count);
        for (number, name) in regions {
            let name = name.as_ref();
            tagged.push(Slot {
                tag: index.tag(name),
                at: index.entries.len() as u32,
            });
            index.push(name, number as u32);
        }
        radix_sort_by_tag(&mut tagged);
        // Equal names have equal tags, so they sit side by side now; a run of equal
        // tags (almost always a single name) is sorted by name to find them.
        let mut dropped = Vec::new();
        let mut duplicates = Vec::new();
        for run in tagged
            .chunk_by(|a, b| a.tag == b.tag)
            .filter(|run| run.len() > 1)
        {
            let mut named: Vec<(&[u8], usize)> = run
                .iter()
                .map(|slot| {
                    (
                        index.name(index.entries[slot.at as usize]),
                        slot.at as usize,
                    )
                })
                .collect();
            named.sort_unstable();
            for same in named.chunk_by(|a, b| a.0 == b.0) {
                // The first in the order given keeps the name.
                let keep = same[0].1;
                for &(_, drop) in &same[1..] {
                    dropped.push(drop);
                    duplicates.push((
                        u64::from(index.entries[drop].number),
                        u64::from(index.entries[keep].number),
                    ));
                }
            }
        }
        if dropped.is_empty() {
            for slot in tagged {
                index.place(slot);
            }
        } else {
            let position = index.drop_entries(&dropped);
            for slot in tagged {
                let at = position[slot.at as usize];
                if at != u32::MAX {
                    index.place(Slot { tag: slot.tag, at });
                }
            }
        }
        (index, duplicates)
    }

    /// Remove the entries at the positions `dropped` (not placed in the table yet), and
    /// return every old position's new one (`u32::MAX` for those dropped).
    fn drop_entries(&mut self, dropped: &[usize]) -> Vec<u32> {
        let mut position = vec![0u32; self.entries.len()];
        for &at in dropped {
            position[at] = u32::MAX;
        }
        let old = std::mem::take(&mut self.entries);
        let old_names = std::mem::take(&mut self.names);
        for (at, named) in old.into_iter().enumerate() {
            if position[at] != u32::MAX {
                position[at] = self.entries.len() as u32;
                let start = named.start;
                self.push(&old_names[start..start + named.len as usize], named.number);
            }
        }
        position
    }

    /// Append a name to the buffer and the entries (not to the table).
    fn push(&mut self, name: &[u8], number: u32) {
        self.entries.push(Named {
            start: self.names.len(),
            len: name.len() as u32,
            number,
        });
        self.names.extend_from_slice(name);
    }

    /// The bytes of a name.
    fn name(&self, named: Named) -> &[u8] {
        &self.names[named.start..named.start + named.len as usize]
    }

    /// The number of the region named `name`.
    pub fn get(&self, name: &str) -> Option<usize> {
        let name = name.as_bytes();
        let at = self.find(name, self.tag(name))?;
        Some(self.entries[self.slots[at].at as usize].number as usize)
    }

    /// Whether a region is named `name`.
    pub fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Name region `number` `name`; returns the number already named so instead, if
    /// there is one (nothing is changed then).
    pub fn insert(&mut self, name: &str, number: usize) -> Option<usize> {
        let name = name.as_bytes();
        let tag = self.tag(name);
        if let Some(at) = self.find(name, tag) {
            return Some(self.entries[self.slots[at].at as usize].number as usize);
        }
        if (self.entries.len() + 1) * 8 > self.slots.len() * 5 {
            self.grow(2 * self.slots.len());
        }
        self.place(Slot {
            tag,
            at: self.entries.len() as u32,
        });
        self.push(name, number as u32);
        None
    }

    /// Forget the name `name`; returns the number it named.
    pub fn remove(&mut self, name: &str) -> Option<usize> {
        let name = name.as_bytes();
        let hole = self.find(name, self.tag(name))?;
        let at = self.slots[hole].at as usize;
        self.unplace(hole);
        let removed = self.entries.swap_remove(at);
        self.garbage += removed.len as usize;
        if let Some(&moved) = self.entries.get(at) {
            // The last entry moved into the removed one's place: point its slot there.
            let old = self.entries.len() as u32;
            let mut probe = self.home(self.tag(self.name(moved)));
            while self.slots[probe].at != old {
                probe = self.next(probe);
            }
            self.slots[probe].at = at as u32;
        }
        if self.garbage > MIN_GARBAGE && 2 * self.garbage > self.names.len() {
            self.rewrite_names();
        }
        Some(removed.number as usize)
    }

    /// Rewrite the names buffer without the bytes of removed names.
    fn rewrite_names(&mut self) {
        let mut names = Vec::with_capacity(self.names.len() - self.garbage);
        for named in &mut self.entries {
            let start = named.start;
            named.start = names.len();
            names.extend_from_slice(&self.names[start..start + named.len as usize]);
        }
        self.names = names;
        self.garbage = 0;
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
    fn find(&self, name: &[u8], tag: u32) -> Option<usize> {
        let mut probe = self.home(tag);
        loop {
            let slot = self.slots[probe];
            if slot == EMPTY {
                return None;
            }
            if slot.tag == tag && self.name(self.entries[slot.at as usize]) == name {
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

    fn tag(&self, name: &[u8]) -> u32 {
        (self.hasher.hash_one(name) >> 32) as u32
    }

    fn home(&self, tag: u32) -> usize {
        (tag >> self.shift) as usize
    }

    fn next(&self, probe: usize) -> usize {
        (probe + 1) & (self.slots.len() - 1)
    }
}

/// Sort slots by tag (so by home), keeping the order of equal tags: three passes of 11
/// bits, whose counts (taken in one pass) fit in the processor's first-level cache.
fn radix_sort_by_tag(slots: &mut Vec<Slot>) {
    const BITS: u32 = 11;
    const BUCKETS: usize = 1 << BITS;
    const MASK: u32 = (1 << BITS) - 1;
    if slots.len() < 256 {
        slots.sort_by_key(|slot| slot.tag);
        return;
    }
    let mut counts = [[0u32; BUCKETS]; 3];
    for slot in slots.iter() {
        for (pass, count) in counts.iter_mut().enumerate() {
            count[((slot.tag >> (BITS * pass as u32)) & MASK) as usize] += 1;
        }
    }
    let mut other = vec![EMPTY; slots.len()];
    for (pass, count) in counts.iter_mut().enumerate() {
        let shift = BITS * pass as u32;
        if count.iter().any(|&c| c as usize == slots.len()) {
            // Every tag has the same bits here: the pass would change nothing.
            continue;
        }
        let mut total = 0;
        for bucket in count.iter_mut() {
            let here = *bucket;
            *bucket = total;
            total += here;
        }
        for slot in slots.iter() {
            let bucket = &mut count[((slot.tag >> shift) & MASK) as usize];
            other[*bucket as usize] = *slot;
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

    #[test]
    fn removed_names_do_not_pile_up_in_the_buffer() {
        let (mut index, _) = NameIndex::build(std::iter::empty::<(u64, &str)>());
        let long = |i: usize| format!("{i:0>200}");
        for i in 0..1000 {
            assert_eq!(index.insert(&long(i), i), None);
        }
        for round in 0..20 {
            for i in 0..1000 {
                let number = round * 1000 + i;
                assert_eq!(index.remove(&long(number)), Some(number));
                assert_eq!(index.insert(&long(number + 1000), number + 1000), None);
            }
            let live = 200 * index.entries.len();
            assert!(index.names.len() <= 2 * live + 200 + MIN_GARBAGE);
        }
        for i in 20_000..21_000 {
            assert_eq!(index.get(&long(i)), Some(i));
        }
        assert_eq!(index.get(&long(0)), None);
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
                        if index.insert(&name, number) != expected {
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
