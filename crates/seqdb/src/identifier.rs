//! How a caller names a region: by its name or by its number.

use std::fmt;

/// A region, named by string or by the number [`Database::create_region_if_needed`]
/// returned for it.
///
/// A number stays with its region across reopen. After a region is removed, its number
/// is free and the next new region may get it: do not keep numbers of removed regions.
///
/// ```
/// use seqdb::Identifier;
/// assert_eq!(Identifier::from("prices"), Identifier::Name("prices".to_owned()));
/// assert_eq!(Identifier::from(3usize), Identifier::Number(3));
/// ```
///
/// [`Database::create_region_if_needed`]: crate::Database::create_region_if_needed
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identifier {
    /// The region's name.
    Name(String),
    /// The region's number.
    Number(usize),
}

impl From<&str> for Identifier {
    fn from(name: &str) -> Self {
        Identifier::Name(name.to_owned())
    }
}

impl From<String> for Identifier {
    fn from(name: String) -> Self {
        Identifier::Name(name)
    }
}

impl From<&String> for Identifier {
    fn from(name: &String) -> Self {
        Identifier::Name(name.clone())
    }
}

impl From<usize> for Identifier {
    fn from(number: usize) -> Self {
        Identifier::Number(number)
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identifier::Name(name) => write!(f, "{name:?}"),
            Identifier::Number(number) => write!(f, "#{number}"),
        }
    }
}
