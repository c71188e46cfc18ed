//! The free region numbers below the highest one used: a two-level bitmap.
//!
//! Numbers are below 2^24, so the bitmap takes at most 2 MiB and its summary (one bit
//! per word) 32 KiB; building it from the region table is one pass over the numbers,
//! and the lowest free number is read from the first summary word with a bit set, which
//! is remembered (taking its last number scans forward to the next one). A metadata file that claims 2^24 numbers with a handful of regions costs
//! milliseconds, not the seconds a tree of sixteen million free numbers would.

/// Free numbers, lowest first.
#[derive(Debug, Default)]
pub(crate) struct FreeNumbers {
    /// Bit `n % 64` of word `n / 64` is set when `n` is free.
    words: Vec<u64>,
    /// Bit `w % 64` of word `w / 64` is set when `words[w]` is not zero.
    summary: Vec<u64>,
    /// The first summary word with a bit set (`summary.len()` when none is).
    lowest: usize,
    count: usize,
}

impl FreeNumbers {
    /// The numbers for which `free` says so.
    pub fn from_numbers(free: impl IntoIterator<Item = usize>) -> Self {
        let mut numbers = FreeNumbers::default();
        for number in free {
            numbers.insert(number);
        }
        numbers
    }

    /// How many numbers are free.
    pub fn len(&self) -> usize {
        self.count
    }

    /// The lowest free number.
    pub fn first(&self) -> Option<usize> {
        let summary = *self.summary.get(self.lowest)?;
        let word = self.lowest * 64 + summary.trailing_zeros() as usize;
        Some(word * 64 + self.words[word].trailing_zeros() as usize)
    }

    /// Mark `number` free; false when it was already.
    pub fn insert(&mut self, number: usize) -> bool {
        let word = number / 64;
        if self.words.len() <= word {
            self.words.resize(word + 1, 0);
            self.summary.resize(word / 64 + 1, 0);
        }
        let bit = 1u64 << (number % 64);
        if self.words[word] & bit != 0 {
            return false;
        }
        self.words[word] |= bit;
        self.summary[word / 64] |= 1 << (word % 64);
        if self.summary.get(self.lowest) == Some(&0) || word / 64 < self.lowest {
            self.lowest = word / 64;
        }
        self.count += 1;
        true
    }

    /// Mark `number` used; false when it was not free.
    pub fn remove(&mut self, number: usize) -> bool {
        let word = number / 64;
        let bit = 1u64 << (number % 64);
        match self.words.get_mut(word) {
            Some(bits) if *bits & bit != 0 => {
                *bits &= !bit;
                if *bits == 0 {
                    self.summary[word / 64] &= !(1 << (word % 64));
                    while self.summary.get(self.lowest) == Some(&0) {
                        self.lowest += 1;
                    }
                }
                self.count -= 1;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::QuickCheck;
    use std::collections::BTreeSet;

    #[test]
    fn behaves_as_an_ordered_set() {
        fn prop(start: Vec<u16>, ops: Vec<(bool, u16)>) -> bool {
            let mut model: BTreeSet<usize> = start.iter().map(|&n| usize::from(n)).collect();
            let mut free = FreeNumbers::from_numbers(start.iter().map(|&n| usize::from(n)));
            for (insert, n) in ops {
                let n = usize::from(n);
                let same = if insert {
                    free.insert(n) == model.insert(n)
                } else {
                    free.remove(n) == model.remove(&n)
                };
                if !same || free.len() != model.len() || free.first() != model.first().copied() {
                    return false;
                }
            }
            true
        }
        QuickCheck::new()
            .tests(500)
            .quickcheck(prop as fn(Vec<u16>, Vec<(bool, u16)>) -> bool);
    }

    #[test]
    fn sixteen_million_numbers_are_cheap() {
        let start = std::time::Instant::now();
        let free = &mut FreeNumbers::from_numbers(1..(1 << 24) - 1);
        assert_eq!(free.len(), (1 << 24) - 2);
        assert_eq!(free.first(), Some(1));
        assert!(free.remove(1));
        assert_eq!(free.first(), Some(2));
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
    }
}
