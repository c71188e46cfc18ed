//! Region numbers by name: a hash index built in one cache-friendly sweep.
//!
//! A general hash map built by inserting a million names writes its buckets in random
//! order; once the table outgrows the processor's caches every insert misses, and open
//! time grows faster than the number of regions. This index keeps names by number (a
//! copy made in number order) and a compact open-addressing table of 8-byte slots
//! (a tag from the name's hash and the number). [`NameIndex::build`] hashes the names in
//! number order, sorts the slots by home position with a radix sort, and fills the
//! table from front to back: every pass reads and writes memory in order.
//!
//! The hash is the standard library's keyed SipHash (a random key per index), so names
//! chosen to collide cannot be crafted; probing is linear, deletion shifts entries back.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

/// A slot: the high 32 bits of the name's hash, and the region number (or [`EMPTY`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    tag: u32,
    number: u32,
}

const EMPTY: Slot = Slot {
    tag: 0,
    number: u32::MAX,
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
    /// Names by region number.
    names: Vec<Option<Box<str>>>,
    len: usize,
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
            names: Vec::new(),
            len: 0,
        }
    }

    /// Index `regions` (number and name, ordered by number). Returns the index and
    /// every name given more than once, as (number, number that had it first); the
    /// later number is left out of the index.
    pub fn build<'a>(
        regions: impl ExactSizeIterator<Item = (u64, &'a str)>,
    ) -> (Self, Vec<(u64, u64)>) {
        let mut index = Self::with_slots(2 * regions.len());
        let mut tagged = Vec::with_capacity(regions.len());
        for (number, name) in regions {
            let number = number as usize;
            if index.names.len() <= number {
                index.names.resize_with(number + 1, || None);
            }
            tagged.push(Slot {
                tag: index.tag(name),
                number: number as u32,
            });
            index.names[number] = Some(name.into());
        }
        radix_sort_by_tag(&mut tagged);
        let mut duplicates = Vec::new();
        for slot in tagged {
            let number = slot.number as usize;
            let Some(name) = index.names[number].take() else {
                continue;
            };
            match index.place(slot, &name) {
                Ok(()) => index.names[number] = Some(name),
                Err(first) => duplicates.push((number as u64, first as u64)),
            }
        }
        (index, duplicates)
    }

    /// The number of the region named `name`.
    pub fn get(&self, name: &str) -> Option<usize> {
        let tag = self.tag(name);
        let mut at = self.home(tag);
        loop {
            let slot = self.slots[at];
            if slot == EMPTY {
                return None;
            }
            if slot.tag == tag && self.name_of(slot) == Some(name) {
                return Some(slot.number as usize);
            }
            at = self.next(at);
        }
    }

    /// Whether a region is named `name`.
    pub fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Name region `number` `name`; returns the number already named so instead, if
    /// there is one (nothing is changed then).
    pub fn insert(&mut self, name: String, number: usize) -> Option<usize> {
        if (self.len + 1) * 8 > self.slots.len() * 5 {
            self.grow(2 * self.slots.len());
        }
        let slot = Slot {
            tag: self.tag(&name),
            number: number as u32,
        };
        if let Err(first) = self.place(slot, &name) {
            return Some(first);
        }
        if self.names.len() <= number {
            self.names.resize_with(number + 1, || None);
        }
        self.names[number] = Some(name.into_boxed_str());
        None
    }

    /// Forget the name `name`; returns the number it named.
    pub fn remove(&mut self, name: &str) -> Option<usize> {
        let tag = self.tag(name);
        let mut hole = self.home(tag);
        loop {
            let slot = self.slots[hole];
            if slot == EMPTY {
                return None;
            }
            if slot.tag == tag && self.name_of(slot) == Some(name) {
                break;
            }
            hole = self.next(hole);
        }
        let number = self.slots[hole].number as usize;
        self.names[number] = None;
        self.len -= 1;
        // Shift back the entries after the hole that may not stay behind it.
        let mut at = hole;
        loop {
            at = self.next(at);
            let slot = self.slots[at];
            if slot == EMPTY {
                break;
            }
            let home = self.home(slot.tag);
            let stays = if hole <= at {
                hole < home && home <= at
            } else {
                hole < home || home <= at
            };
            if !stays {
                self.slots[hole] = slot;
                hole = at;
            }
        }
        self.slots[hole] = EMPTY;
        Some(number)
    }

    /// Make room for `additional` more names without growing the table.
    pub fn reserve(&mut self, additional: usize) {
        let wanted = (self.len + additional) * 8 / 5 + 1;
        if wanted > self.slots.len() {
            self.grow(wanted);
        }
    }

    /// Put `slot` (for `name`) in the first free slot from its home; the number already
    /// named `name` if there is one.
    fn place(&mut self, slot: Slot, name: &str) -> Result<(), usize> {
        let mut at = self.home(slot.tag);
        loop {
            let there = self.slots[at];
            if there == EMPTY {
                self.slots[at] = slot;
                self.len += 1;
                return Ok(());
            }
            if there.tag == slot.tag && self.name_of(there) == Some(name) {
                return Err(there.number as usize);
            }
            at = self.next(at);
        }
    }

    /// Rebuild the table with at least `slots` slots.
    fn grow(&mut self, slots: usize) {
        let mut tagged: Vec<Slot> = self.slots.iter().copied().filter(|s| *s != EMPTY).collect();
        let bigger = Self::with_slots(slots);
        self.slots = bigger.slots;
        self.shift = bigger.shift;
        self.len = 0;
        radix_sort_by_tag(&mut tagged);
        for slot in tagged {
            let mut at = self.home(slot.tag);
            while self.slots[at] != EMPTY {
                at = self.next(at);
            }
            self.slots[at] = slot;
            self.len += 1;
        }
    }

    fn name_of(&self, slot: Slot) -> Option<&str> {
        self.names.get(slot.number as usize)?.as_deref()
    }

    fn tag(&self, name: &str) -> u32 {
        (self.hasher.hash_one(name) >> 32) as u32
    }

    fn home(&self, tag: u32) -> usize {
        // `shift` is 32 for the one-slot table that never exists; tables have 16 or more.
        (tag >> self.shift) as usize
    }

    fn next(&self, at: usize) -> usize {
        (at + 1) & (self.slots.len() - 1)
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
        let (index, duplicates) = NameIndex::build(regions.into_iter());
        assert_eq!(duplicates, vec![(20_000, 14)]);
        for (i, name) in names.iter().enumerate() {
            assert_eq!(index.get(name), Some(2 * i));
        }
        assert_eq!(index.get("missing"), None);
        assert_eq!(index.len, 5000);
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
            let mut by_number: HashMap<usize, String> = HashMap::new();
            let names: Vec<String> = start.iter().map(|b| format!("n{b}")).collect();
            let mut regions = Vec::new();
            for (i, name) in names.iter().enumerate() {
                if !model.contains_key(name) {
                    model.insert(name.clone(), i);
                    by_number.insert(i, name.clone());
                }
                regions.push((i as u64, name.as_str()));
            }
            let (mut index, _) = NameIndex::build(regions.into_iter());
            for op in ops {
                match op {
                    Op::Insert(name, number) => {
                        let name = format!("n{name}");
                        let number = 1000 + usize::from(number);
                        if by_number.contains_key(&number) {
                            continue;
                        }
                        let expected = model.get(&name).copied();
                        if expected.is_none() {
                            model.insert(name.clone(), number);
                            by_number.insert(number, name.clone());
                        }
                        if index.insert(name, number) != expected {
                            return false;
                        }
                    }
                    Op::Remove(name) => {
                        let name = format!("n{name}");
                        let expected = model.remove(&name);
                        if let Some(number) = expected {
                            by_number.remove(&number);
                        }
                        if index.remove(&name) != expected {
                            return false;
                        }
                    }
                    Op::Reserve(n) => index.reserve(usize::from(n) * 10),
                }
                if index.len != model.len() {
                    return false;
                }
            }
            model.iter().all(|(name, &n)| index.get(name) == Some(n))
                && (0..=255).all(|b| {
                    let name = format!("n{b}");
                    index.get(&name) == model.get(&name).copied()
                })
        }
        QuickCheck::new()
            .tests(500)
            .quickcheck(prop as fn(Vec<u8>, Vec<Op>) -> bool);
    }
}
