//! What every benchmarked engine offers the workloads, in the vocabulary of regions.

use std::fmt::Display;
use std::path::Path;

/// An error of an engine or of the harness, as text for the result table.
pub type Failure = String;

/// The result of a harness or engine step.
pub type Outcome<T> = Result<T, Failure>;

/// Turns any displayable error into a [`Failure`] that names the step that failed.
pub fn failed<E: Display>(step: &'static str) -> impl FnOnce(E) -> Failure {
    move |error| format!("{step}: {error}")
}

/// A stream of appends handed to an engine: each item is one call of the engine's API.
///
/// The returned bytes borrow the source, so a source can reuse one buffer for every item
/// and no allocation or copy happens in the measured loop.
pub trait Source {
    /// The next append: the region handle (as returned by [`Engine::create_region`]) and
    /// the bytes to append, or `None` when the stream is over.
    fn next_append(&mut self) -> Option<(usize, &[u8])>;
}

/// An engine under test: a store of named, growable byte regions.
///
/// Region handles are small numbers chosen by the adapter, returned by
/// [`Engine::create_region`] and valid until the region is removed.
pub trait Engine: Sized + Sync {
    /// Opens (creating when absent) the database that lives in the directory `dir`.
    fn open(dir: &Path) -> Outcome<Self>;

    /// Creates an empty region named `name` and returns its handle.
    fn create_region(&mut self, name: &str) -> Outcome<usize>;

    /// Performs every append of `source`, one engine call each. The bytes need not be
    /// durable when this returns.
    fn append_all<S: Source>(&mut self, source: &mut S) -> Outcome<()>;

    /// Makes everything appended or removed so far durable (as far as the engine can).
    fn flush(&mut self) -> Outcome<()>;

    /// How many device syncs (`fdatasync`, `fsync`, directory syncs) the engine has
    /// made so far, when it can tell.
    fn syncs(&self) -> Option<u64> {
        None
    }

    /// Makes the state durable, then gives unused space back to the file system.
    /// Returns `false` when the engine has no way to give space back (it only flushed).
    fn flush_then_punch(&mut self) -> Outcome<bool>;

    /// Removes a region and its bytes.
    fn remove_region(&mut self, region: usize) -> Outcome<()>;

    /// The number of bytes the region holds.
    fn region_len(&self, region: usize) -> Outcome<u64>;

    /// The number of regions and the total number of bytes they hold.
    fn totals(&self) -> Outcome<(u64, u64)>;

    /// Reads the little-endian `u64` at byte offset `8 * index` for every index and returns
    /// their wrapping sum. With `reader_per_read`, a new reader (or read transaction) is made
    /// for every read; otherwise one reader serves them all.
    fn read_sum(&self, region: usize, indexes: &[u64], reader_per_read: bool) -> Outcome<u64>;
}

/// Decodes the 8 bytes an engine returned for one read.
///
/// The error is made out of line and only returned: a read loop's body then calls nothing
/// on its way back to the next read, so the compiler may keep what a reader holds in
/// registers across the loop, as it does in a loop that unwraps (a call that could return
/// into the loop makes it reload the reader's fields from memory at every read, four
/// instructions of the loop's thirteen).
#[inline]
pub fn decode_u64(bytes: &[u8]) -> Outcome<u64> {
    match <[u8; 8]>::try_from(bytes) {
        Ok(array) => Ok(u64::from_le_bytes(array)),
        Err(_) => Err(wrong_length(bytes.len())),
    }
}

#[cold]
#[inline(never)]
fn wrong_length(len: usize) -> String {
    format!("read returned {len} bytes instead of 8")
}
