//! `std::io` adapters: a buffered [`Write`] that appends to a region, and a
//! [`Read`] + [`BufRead`] + [`Seek`] cursor over a region's bytes.
//!
//! They let a region take part in anything written against the standard traits:
//! `std::io::copy`, compressors, parsers, line readers.

use std::io::{self, BufRead, Read, Seek, SeekFrom, Write};

use crate::{Database, Error, Identifier, Reader, Result};

/// Turn a database error into an I/O error, keeping it as the source; a full disk
/// becomes [`io::ErrorKind::StorageFull`].
fn to_io(error: Error) -> io::Error {
    let kind = if error.is_no_space() {
        io::ErrorKind::StorageFull
    } else {
        io::ErrorKind::Other
    };
    io::Error::new(kind, error)
}

/// Appends to a region through [`std::io::Write`], gathering small writes in a buffer.
///
/// Bytes reach the region (and become visible to readers) when the buffer fills, on
/// [`Write::flush`], on [`finish`](Self::finish), and on drop. None of these makes them
/// durable: that is [`Database::flush`]'s job, as for any other write. Drop cannot report
/// an error and ignores it; call [`finish`](Self::finish) to learn whether the last bytes
/// made it into the region.
///
/// The writer names its region by number, so renaming the region does not disturb it.
/// Removing the region makes its later writes fail with [`Error::UnknownRegion`] until a
/// new region takes the freed number, after which they would go to that region: finish
/// a writer before removing its region.
///
/// ```
/// use std::io::Write;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// let database = seqdb::Database::open(dir.path())?;
/// let (log, _) = database.create_region_if_needed("log")?;
/// let mut writer = seqdb::RegionWriter::new(&database, log.into())?;
/// writeln!(writer, "started")?;
/// writeln!(writer, "ready")?;
/// writer.finish()?;
/// database.flush()?;
/// assert_eq!(database.create_region_reader(log.into())?.read_all(), b"started\nready\n");
/// # Ok(()) }
/// ```
pub struct RegionWriter {
    database: Database,
    number: usize,
    buffer: Vec<u8>,
    capacity: usize,
}

impl RegionWriter {
    /// The buffer size [`new`](Self::new) uses.
    pub const DEFAULT_CAPACITY: usize = 64 * 1024;

    /// A writer appending to region `id` with a buffer of
    /// [`DEFAULT_CAPACITY`](Self::DEFAULT_CAPACITY) bytes. Fails with
    /// [`Error::UnknownRegion`] when there is no such region.
    pub fn new(database: &Database, id: Identifier) -> Result<Self> {
        Self::with_capacity(database, id, Self::DEFAULT_CAPACITY)
    }

    /// A writer whose buffer holds up to `capacity` bytes; writes at least that large go
    /// straight to the region. A capacity of 0 turns buffering off.
    pub fn with_capacity(database: &Database, id: Identifier, capacity: usize) -> Result<Self> {
        let number = database.get_region(id)?.number();
        Ok(RegionWriter {
            database: database.clone(),
            number,
            buffer: Vec::with_capacity(capacity),
            capacity,
        })
    }

    /// The number of the region written to.
    pub fn region_number(&self) -> usize {
        self.number
    }

    /// Bytes written to the writer but not yet to the region.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// Append the buffered bytes to the region and return the first error met. The
    /// buffer is dropped either way.
    pub fn finish(mut self) -> Result<()> {
        let result = self.write_buffer();
        self.buffer.clear();
        result
    }

    /// Move the buffer into the region; on error the buffer is kept.
    fn write_buffer(&mut self) -> Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        self.database
            .write_all_to_region(Identifier::Number(self.number), &self.buffer)?;
        self.buffer.clear();
        Ok(())
    }
}

impl Write for RegionWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        if self.buffer.len() + data.len() > self.capacity {
            self.write_buffer().map_err(to_io)?;
        }
        if data.len() >= self.capacity {
            self.database
                .write_all_to_region(Identifier::Number(self.number), data)
                .map_err(to_io)?;
        } else {
            self.buffer.extend_from_slice(data);
        }
        Ok(data.len())
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.write(data).map(drop)
    }

    /// Append the buffered bytes to the region (this does not make them durable).
    fn flush(&mut self) -> io::Result<()> {
        self.write_buffer().map_err(to_io)
    }
}

impl Drop for RegionWriter {
    fn drop(&mut self) {
        // Errors cannot be reported from drop; `finish` is the way to see them.
        let _ = self.write_buffer();
    }
}

impl std::fmt::Debug for RegionWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegionWriter")
            .field("region", &self.number)
            .field("buffered", &self.buffer.len())
            .field("capacity", &self.capacity)
            .finish()
    }
}

/// Reads a region through [`Read`], [`BufRead`] and [`Seek`], zero-copy where the trait
/// allows it: [`BufRead::fill_buf`] hands out the rest of the region straight from the
/// memory map.
///
/// The cursor holds a [`Reader`], so it sees the region as it was when the cursor was
/// made, whatever is written to the region meanwhile; nobody waits for it, and the
/// thread that holds it may write to the region too.
///
/// Seeking past the end is allowed; reads there return no bytes.
///
/// ```
/// use std::io::{BufRead, Seek, SeekFrom};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// let database = seqdb::Database::open(dir.path())?;
/// let (notes, _) = database.create_region_if_needed("notes")?;
/// database.write_all_to_region(notes.into(), b"one\ntwo\nthree\n")?;
///
/// let mut cursor = seqdb::RegionCursor::new(&database, notes.into())?;
/// cursor.seek(SeekFrom::Start(4))?;
/// let lines: Vec<String> = cursor.lines().collect::<Result<_, _>>()?;
/// assert_eq!(lines, ["two", "three"]);
/// # Ok(()) }
/// ```
pub struct RegionCursor<'a> {
    reader: Reader<'a>,
    position: u64,
}

impl<'a> RegionCursor<'a> {
    /// A cursor at the start of region `id`.
    pub fn new(database: &'a Database, id: Identifier) -> Result<Self> {
        Ok(Self::from(database.create_region_reader(id)?))
    }

    /// The offset the next read starts at.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The region's length in bytes.
    pub fn len(&self) -> u64 {
        self.reader.len()
    }

    /// Whether the region is empty.
    pub fn is_empty(&self) -> bool {
        self.reader.is_empty()
    }

    /// The reader underneath, for zero-copy access to any part of the region.
    pub fn reader(&self) -> &Reader<'a> {
        &self.reader
    }

    /// Give the reader back, releasing nothing.
    pub fn into_reader(self) -> Reader<'a> {
        self.reader
    }
}

impl<'a> From<Reader<'a>> for RegionCursor<'a> {
    /// A cursor at the start of the reader's region.
    fn from(reader: Reader<'a>) -> Self {
        RegionCursor {
            reader,
            position: 0,
        }
    }
}

impl Read for RegionCursor<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let bytes = self.reader.read(self.position, buf.len() as u64);
        buf[..bytes.len()].copy_from_slice(bytes);
        self.position += bytes.len() as u64;
        Ok(bytes.len())
    }
}

impl BufRead for RegionCursor<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        Ok(self.reader.read(self.position, u64::MAX))
    }

    fn consume(&mut self, amount: usize) {
        self.position = self.position.saturating_add(amount as u64);
    }
}

impl Seek for RegionCursor<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(offset) => Some(offset),
            SeekFrom::End(delta) => self.len().checked_add_signed(delta),
            SeekFrom::Current(delta) => self.position.checked_add_signed(delta),
        };
        let Some(target) = target else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "cannot seek to {to:?} from offset {} in a region of {} bytes: the \
                     position would be negative or overflow",
                    self.position,
                    self.len()
                ),
            ));
        };
        self.position = target;
        Ok(target)
    }

    fn stream_position(&mut self) -> io::Result<u64> {
        Ok(self.position)
    }
}

impl std::fmt::Debug for RegionCursor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegionCursor")
            .field("region", &self.reader.region().name())
            .field("position", &self.position)
            .field("len", &self.len())
            .finish()
    }
}
