//! A hash map keyed by region number, with a hasher that suits small integer keys.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A map from region numbers, hashed by one multiplication instead of SipHash: the keys
/// come from the database's own metadata, and open replays thousands of them.
pub(crate) type NumberMap<V> = HashMap<u64, V, BuildHasherDefault<NumberHasher>>;

/// Multiplicative hashing of a `u64`; the high bits, which the table uses, mix every
/// bit of the key.
#[derive(Default)]
pub(crate) struct NumberHasher(u64);

impl Hasher for NumberHasher {
    fn finish(&self) -> u64 {
        self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(26)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_as_a_map() {
        let mut map = NumberMap::default();
        for n in 0..10_000u64 {
            map.insert(n * 4096, n);
        }
        assert_eq!(map.len(), 10_000);
        assert!((0..10_000u64).all(|n| map[&(n * 4096)] == n));
        assert_eq!(map.remove(&4096), Some(1));
        assert!(!map.contains_key(&4096));
    }
}
