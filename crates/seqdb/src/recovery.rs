//! What an open with `OpenOptions::recover` found and did to get past damage.

use std::fmt;

/// The report of an open that recovered past damage ([`OpenOptions::recover`]).
///
/// Damage is what a crash cannot produce: a metadata log cut short or damaged before
/// its end, or a data file older than its metadata. Recovery keeps the newest commit
/// that is still whole and says what it gave up.
///
/// [`OpenOptions::recover`]: crate::OpenOptions::recover
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// The damage found, one sentence each, naming the file and the offset.
    pub damage: Vec<String>,
    /// The generation of the commit recovered.
    pub generation: u64,
    /// Offset where the metadata log was cut, when it was (or would be, read-only).
    pub cut_at: Option<u64>,
    /// Bytes of the metadata file after that offset, dropped with the cut.
    pub cut_bytes: u64,
    /// Valid commits after the cut, dropped with it: (offset, generation).
    pub dropped: Vec<(u64, u64)>,
    /// The newest commit the data file's header recorded, when it was rewritten to the
    /// recovered one.
    pub restamped_from: Option<u64>,
    /// Whether the files were changed (a read-only open only says what it would do).
    pub applied: bool,
}

impl fmt::Display for RecoveryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for damage in &self.damage {
            writeln!(f, "damage: {damage}")?;
        }
        let (cut, restamp) = if self.applied {
            ("cut", "rewrote")
        } else {
            ("would cut", "would rewrite")
        };
        if let Some(at) = self.cut_at {
            write!(
                f,
                "{cut} the metadata log at offset {at}, dropping {} bytes",
                self.cut_bytes
            )?;
            match self.dropped.as_slice() {
                [] => writeln!(f)?,
                dropped => {
                    let generations: Vec<String> =
                        dropped.iter().map(|(_, g)| g.to_string()).collect();
                    writeln!(
                        f,
                        " and {} valid commit(s): generation {}",
                        dropped.len(),
                        generations.join(", ")
                    )?;
                }
            }
        }
        if let Some(from) = self.restamped_from {
            writeln!(
                f,
                "{restamp} the data file's header from commit {from} to commit {}",
                self.generation
            )?;
        }
        write!(f, "recovered generation {}", self.generation)
    }
}
