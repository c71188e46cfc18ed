//! A region's name as the database keeps it: short names inline, longer ones in an
//! allocation of their own.
//!
//! Opening a database decodes every region's name and keeps it with the region's state.
//! Most names are short, and an allocation per name was about a seventh of the
//! instructions of an open; a name of up to [`INLINE`] bytes takes none.

use std::fmt;
use std::ops::Deref;

/// The longest name kept inline.
const INLINE: usize = 22;

/// A region's name (UTF-8).
#[derive(Clone)]
pub(crate) enum Name {
    /// The first `len` bytes of `bytes`, which are UTF-8.
    Inline {
        len: u8,
        bytes: [u8; INLINE],
    },
    Heap(Box<str>),
}

impl Name {
    /// The name's bytes (read without checking them again, unlike [`as_str`](Self::as_str)).
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Name::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Name::Heap(name) => name.as_bytes(),
        }
    }

    /// The name's length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// The name as a string slice.
    #[inline]
    pub fn as_str(&self) -> &str {
        match self {
            // Made from a `str` cut at its end: always UTF-8, so never empty by mistake.
            Name::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            Name::Heap(name) => name,
        }
    }
}

impl Name {
    /// Make this the name `bytes` spell; `false` (and the name unchanged) when they are
    /// not UTF-8. Opening a database makes every region's name this way, into an entry
    /// already in its place: a short ASCII name (most names) is checked as ASCII instead
    /// of by the general UTF-8 validation, which costs several times more on names this
    /// short, and is written where it is kept rather than built and then moved (a move
    /// right after a copy of a length known only here stalls the processor).
    pub fn assign_utf8(&mut self, bytes: &[u8]) -> bool {
        if bytes.len() <= INLINE
            && bytes.is_ascii()
            && let Name::Inline { len, bytes: kept } = self
        {
            kept[..bytes.len()].copy_from_slice(bytes);
            kept[bytes.len()..].fill(0);
            *len = bytes.len() as u8;
            return true;
        }
        match std::str::from_utf8(bytes) {
            Ok(name) => {
                *self = Name::from(name);
                true
            }
            Err(_) => false,
        }
    }
}

impl Default for Name {
    /// The empty name.
    fn default() -> Self {
        Name::Inline {
            len: 0,
            bytes: [0; INLINE],
        }
    }
}

impl From<&str> for Name {
    fn from(name: &str) -> Self {
        if name.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..name.len()].copy_from_slice(name.as_bytes());
            Name::Inline {
                len: name.len() as u8,
                bytes,
            }
        } else {
            Name::Heap(name.into())
        }
    }
}

impl From<String> for Name {
    fn from(name: String) -> Self {
        if name.len() <= INLINE {
            Name::from(name.as_str())
        } else {
            Name::Heap(name.into_boxed_str())
        }
    }
}

impl Deref for Name {
    type Target = str;

    #[inline]
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Name {}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_names_read_back() {
        for name in [
            "",
            "r000001",
            "é",
            &"n".repeat(INLINE),
            &"n".repeat(INLINE + 1),
        ] {
            let kept = Name::from(name);
            assert_eq!(kept.as_str(), name);
            assert_eq!(kept.as_bytes(), name.as_bytes());
            assert_eq!(kept.len(), name.len());
            assert_eq!(Name::from(name.to_owned()), kept);
            assert_eq!(format!("{kept:?}"), format!("{name:?}"));
            assert_eq!(
                matches!(kept, Name::Inline { .. }),
                name.len() <= INLINE,
                "{name}"
            );
        }
        assert_eq!(size_of::<Name>(), 24);
    }

    #[test]
    fn names_from_bytes_are_kept_exactly_when_they_are_utf8() {
        let mut cases: Vec<Vec<u8>> = vec![
            Vec::new(),
            b"r000001".to_vec(),
            "é".as_bytes().to_vec(),
            "n".repeat(INLINE).into_bytes(),
            "n".repeat(INLINE + 1).into_bytes(),
            vec![0xff],
            vec![b'a', 0xc3],
            vec![0xc3, 0xa9, 0x80],
            b"\0nul".to_vec(),
        ];
        // The high bit in every position of an inline name, and just past it.
        for at in 0..INLINE + 2 {
            let mut name = vec![b'x'; INLINE + 2];
            name[at] = 0x80;
            cases.push(name[..INLINE.min(at + 1)].to_vec());
            cases.push(name);
        }
        for bytes in cases {
            // Into an empty name, a longer one, and one kept apart.
            for before in [
                Name::default(),
                Name::from("a longer name before it"),
                Name::from("xyzzy"),
            ] {
                let mut made = before.clone();
                let assigned = made.assign_utf8(&bytes);
                match std::str::from_utf8(&bytes) {
                    Ok(name) => {
                        assert!(assigned, "{bytes:?} refused");
                        assert_eq!(made, Name::from(name));
                        assert_eq!(made.as_str(), name);
                        assert_eq!(matches!(made, Name::Inline { .. }), name.len() <= INLINE);
                    }
                    Err(_) => {
                        assert!(!assigned, "{bytes:?} accepted");
                        assert_eq!(made, before);
                    }
                }
            }
        }
    }

    #[test]
    fn any_bytes_assigned_over_any_name_are_kept_exactly_when_they_are_utf8() {
        fn prop(before: String, bytes: Vec<u8>, text: String, ascii: bool) -> bool {
            // Random bytes (mostly not UTF-8), a random string (mostly not ASCII), and
            // a string of ASCII only, over a name inline or not.
            let text = if ascii {
                text.chars().filter(char::is_ascii).collect()
            } else {
                text
            };
            [bytes, text.into_bytes()].into_iter().all(|bytes| {
                let before = Name::from(before.as_str());
                let mut made = before.clone();
                let assigned = made.assign_utf8(&bytes);
                match std::str::from_utf8(&bytes) {
                    Ok(name) => {
                        let inline = match &made {
                            // What follows the name inline is zeros, as `From` leaves it.
                            Name::Inline { len, bytes } => {
                                bytes[usize::from(*len)..].iter().all(|&b| b == 0)
                            }
                            Name::Heap(_) => false,
                        };
                        assigned && made.as_str() == name && inline == (name.len() <= INLINE)
                    }
                    Err(_) => !assigned && made.as_bytes() == before.as_bytes(),
                }
            })
        }
        quickcheck::QuickCheck::new()
            .tests(2000)
            .max_tests(2000)
            .quickcheck(prop as fn(String, Vec<u8>, String, bool) -> bool);
    }

    #[test]
    fn a_multi_byte_character_is_never_cut() {
        // The whole name is kept or none.
        let accented = "é".repeat(INLINE / 2 + 1);
        assert_eq!(Name::from(accented.as_str()).as_str(), accented);
    }
}
