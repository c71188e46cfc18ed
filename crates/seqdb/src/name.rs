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
        // A multi-byte character is never cut: the whole name is kept or none.
        let accented = "é".repeat(INLINE / 2 + 1);
        assert_eq!(Name::from(accented.as_str()).as_str(), accented);
        assert_eq!(size_of::<Name>(), 24);
    }
}
