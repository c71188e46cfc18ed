//! The `std::io` adapters: RegionWriter and RegionCursor.

use std::io::{self, BufRead, Read, Seek, SeekFrom, Write};

use seqdb::{Database, Error, RegionCursor, RegionWriter};

/// A deterministic pseudo-random byte stream of a given length (xorshift64*).
struct Noise {
    state: u64,
    left: u64,
}

impl Noise {
    fn new(seed: u64, len: u64) -> Self {
        Noise {
            state: seed | 1,
            left: len,
        }
    }

    fn next_word(&mut self) -> [u8; 8] {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes()
    }
}

impl Read for Noise {
    /// Fills whole 8-byte words (odd sizes only at the very end), so the stream does not
    /// depend on how the caller sizes its buffers.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = (buf.len() as u64).min(self.left) as usize;
        let n = if want >= 8 { want / 8 * 8 } else { want };
        for chunk in buf[..n].chunks_mut(8) {
            let word = self.next_word();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Compares everything written to it with a second copy of the same stream.
struct Verifier {
    expected: Noise,
    pending: Vec<u8>,
    checked: u64,
}

impl Write for Verifier {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while !rest.is_empty() {
            if self.pending.is_empty() {
                self.pending.resize(1 << 16, 0);
                let n = self.expected.read(&mut self.pending)?;
                self.pending.truncate(n);
                if n == 0 {
                    panic!("{} bytes more than expected", rest.len());
                }
            }
            let n = rest.len().min(self.pending.len());
            assert!(
                rest[..n] == self.pending[..n],
                "bytes differ within the {n} bytes after offset {}",
                self.checked
            );
            self.pending.drain(..n);
            rest = &rest[n..];
            self.checked += n as u64;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

const STREAM_LEN: u64 = 100 << 20;
const SEED: u64 = 0x5EED_0F5E_ED5E_ED00;

fn verify(database: &Database, name: &str) {
    let mut cursor = RegionCursor::new(database, name.into()).unwrap();
    assert_eq!(cursor.len(), STREAM_LEN);
    let mut verifier = Verifier {
        expected: Noise::new(SEED, STREAM_LEN),
        pending: Vec::new(),
        checked: 0,
    };
    let copied = io::copy(&mut cursor, &mut verifier).unwrap();
    assert_eq!(copied, STREAM_LEN);
    assert_eq!(verifier.checked, STREAM_LEN);
    assert!(verifier.expected.left == 0 && verifier.pending.is_empty());
    assert_eq!(cursor.position(), STREAM_LEN);
}

#[test]
fn a_100_mib_stream_copies_in_and_out_unchanged_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let database = Database::open(dir.path()).unwrap();
    database.create_region_if_needed("stream").unwrap();
    let mut writer = RegionWriter::new(&database, "stream".into()).unwrap();
    let copied = io::copy(&mut Noise::new(SEED, STREAM_LEN), &mut writer).unwrap();
    assert_eq!(copied, STREAM_LEN);
    writer.finish().unwrap();
    verify(&database, "stream");

    database.flush().unwrap();
    drop(database);
    let database = Database::open_read_only(dir.path()).unwrap();
    verify(&database, "stream");
}

#[test]
fn small_writes_reach_the_region_on_flush_finish_and_drop() {
    let dir = tempfile::tempdir().unwrap();
    let database = Database::open(dir.path()).unwrap();
    let (number, _) = database.create_region_if_needed("log").unwrap();
    let len = || database.get_region(number.into()).unwrap().len();

    let mut writer = RegionWriter::new(&database, number.into()).unwrap();
    writer.write_all(b"one ").unwrap();
    assert_eq!((writer.buffered(), len()), (4, 0));
    writer.flush().unwrap();
    assert_eq!((writer.buffered(), len()), (0, 4));
    writer.write_all(b"two ").unwrap();
    writer.finish().unwrap();
    assert_eq!(len(), 8);

    {
        let mut writer = RegionWriter::new(&database, "log".into()).unwrap();
        write!(writer, "three").unwrap();
        assert_eq!(len(), 8);
    }
    let reader = database.create_region_reader(number.into()).unwrap();
    assert_eq!(reader.read_all(), b"one two three");
}

#[test]
fn a_full_buffer_is_written_out_and_large_writes_go_straight_through() {
    let dir = tempfile::tempdir().unwrap();
    let database = Database::open(dir.path()).unwrap();
    let (number, _) = database.create_region_if_needed("r").unwrap();
    let mut writer = RegionWriter::with_capacity(&database, number.into(), 10).unwrap();
    writer.write_all(b"12345678").unwrap();
    assert_eq!(writer.buffered(), 8);
    writer.write_all(b"abc").unwrap(); // does not fit: the 8 bytes go first
    assert_eq!(writer.buffered(), 3);
    assert_eq!(database.get_region(number.into()).unwrap().len(), 8);
    writer.write_all(&[b'x'; 32]).unwrap(); // the 3 bytes, then 32 direct
    assert_eq!(writer.buffered(), 0);
    writer.finish().unwrap();
    let reader = database.create_region_reader(number.into()).unwrap();
    let mut expected = b"12345678abc".to_vec();
    expected.extend([b'x'; 32]);
    assert_eq!(reader.read_all(), expected);
}

#[test]
fn finish_reports_what_drop_cannot() {
    let dir = tempfile::tempdir().unwrap();
    let database = Database::open(dir.path()).unwrap();
    database.create_region_if_needed("gone").unwrap();
    let mut writer = RegionWriter::new(&database, "gone".into()).unwrap();
    writer.write_all(b"lost").unwrap();
    database.remove_region("gone".into()).unwrap();
    assert!(matches!(writer.finish(), Err(Error::UnknownRegion { .. })));

    database.create_region_if_needed("also gone").unwrap();
    let mut writer = RegionWriter::new(&database, "also gone".into()).unwrap();
    writer.write_all(b"lost").unwrap();
    database.remove_region("also gone".into()).unwrap();
    let error = writer.flush().unwrap_err();
    let source = error.get_ref().and_then(|e| e.downcast_ref::<Error>());
    assert!(
        matches!(source, Some(Error::UnknownRegion { .. })),
        "{error:?}"
    );
    drop(writer); // ignores the same error, without panicking

    assert!(matches!(
        RegionWriter::new(&database, "never".into()),
        Err(Error::UnknownRegion { .. })
    ));
}

#[test]
fn a_writer_on_a_read_only_database_fails_with_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let database = Database::open(dir.path()).unwrap();
    database.create_region_if_needed("r").unwrap();
    database.flush().unwrap();
    drop(database);
    let database = Database::open_read_only(dir.path()).unwrap();
    let mut writer = RegionWriter::new(&database, "r".into()).unwrap();
    writer.write_all(b"no").unwrap();
    assert!(matches!(writer.finish(), Err(Error::ReadOnly { .. })));
}

#[test]
fn a_renamed_region_keeps_its_writer() {
    let dir = tempfile::tempdir().unwrap();
    let database = Database::open(dir.path()).unwrap();
    database.create_region_if_needed("before").unwrap();
    let mut writer = RegionWriter::new(&database, "before".into()).unwrap();
    writer.write_all(b"kept").unwrap();
    database.rename_region("before".into(), "after").unwrap();
    writer.finish().unwrap();
    let reader = database.create_region_reader("after".into()).unwrap();
    assert_eq!(reader.read_all(), b"kept");
}

fn digits(database: &Database) -> RegionCursor<'_> {
    let (number, _) = database.create_region_if_needed("digits").unwrap();
    if database.get_region(number.into()).unwrap().is_empty() {
        database
            .write_all_to_region(number.into(), b"0123456789")
            .unwrap();
    }
    RegionCursor::new(database, number.into()).unwrap()
}

fn read_n(cursor: &mut RegionCursor<'_>, n: usize) -> Vec<u8> {
    let mut out = vec![0; n];
    let got = cursor.read(&mut out).unwrap();
    out.truncate(got);
    out
}

#[test]
fn seek_from_start_end_and_current() {
    let dir = tempfile::tempdir().unwrap();
    let database = Database::open(dir.path()).unwrap();
    let mut cursor = digits(&database);

    assert_eq!(cursor.seek(SeekFrom::Start(3)).unwrap(), 3);
    assert_eq!(read_n(&mut cursor, 2), b"34");
    assert_eq!(cursor.stream_position().unwrap(), 5);

    assert_eq!(cursor.seek(SeekFrom::Current(-4)).unwrap(), 1);
    assert_eq!(read_n(&mut cursor, 3), b"123");
    assert_eq!(cursor.seek(SeekFrom::Current(2)).unwrap(), 6);
    assert_eq!(read_n(&mut cursor, 1), b"6");

    assert_eq!(cursor.seek(SeekFrom::End(-3)).unwrap(), 7);
    assert_eq!(read_n(&mut cursor, 100), b"789");
    assert_eq!(read_n(&mut cursor, 100), b"");

    assert_eq!(cursor.seek(SeekFrom::End(5)).unwrap(), 15);
    assert_eq!(read_n(&mut cursor, 4), b"");
    assert!(cursor.fill_buf().unwrap().is_empty());

    cursor.rewind().unwrap();
    let mut all = Vec::new();
    cursor.read_to_end(&mut all).unwrap();
    assert_eq!(all, b"0123456789");
}

#[test]
fn seeking_before_the_start_is_an_error_and_keeps_the_position() {
    let dir = tempfile::tempdir().unwrap();
    let database = Database::open(dir.path()).unwrap();
    let mut cursor = digits(&database);
    cursor.seek(SeekFrom::Start(4)).unwrap();
    for bad in [
        SeekFrom::Current(-5),
        SeekFrom::End(-11),
        SeekFrom::Current(i64::MIN),
    ] {
        let error = cursor.seek(bad).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
    }
    cursor.seek(SeekFrom::Start(u64::MAX)).unwrap();
    let error = cursor.seek(SeekFrom::Current(1)).unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    assert_eq!(cursor.position(), u64::MAX);
    assert_eq!(read_n(&mut cursor, 1), b"");
}

#[test]
fn read_line_walks_text_lines() {
    let dir = tempfile::tempdir().unwrap();
    let database = Database::open(dir.path()).unwrap();
    let (number, _) = database.create_region_if_needed("text").unwrap();
    database
        .write_all_to_region(
            number.into(),
            "first line\nsecond, naïve\n\nlast without newline".as_bytes(),
        )
        .unwrap();
    let mut cursor = RegionCursor::new(&database, number.into()).unwrap();
    let mut line = String::new();
    let mut lines = Vec::new();
    loop {
        line.clear();
        if cursor.read_line(&mut line).unwrap() == 0 {
            break;
        }
        lines.push(line.clone());
    }
    assert_eq!(
        lines,
        [
            "first line\n",
            "second, naïve\n",
            "\n",
            "last without newline"
        ]
    );
    assert_eq!(cursor.position(), cursor.len());
}

#[test]
fn fill_buf_is_the_rest_of_the_region_without_a_copy() {
    let dir = tempfile::tempdir().unwrap();
    let database = Database::open(dir.path()).unwrap();
    let mut cursor = digits(&database);
    cursor.consume(6);
    let rest = cursor.fill_buf().unwrap();
    assert_eq!(rest, b"6789");
    let rest = rest.as_ptr();
    let mapped = cursor.reader().read_all();
    assert_eq!(rest, mapped[6..].as_ptr());
}

#[test]
fn a_cursor_sees_the_region_as_it_was_when_made() {
    let dir = tempfile::tempdir().unwrap();
    let database = Database::open(dir.path()).unwrap();
    let cursor = digits(&database);
    let other = database.clone();
    let writer = std::thread::spawn(move || {
        // Waits for the cursor to be dropped.
        other.write_all_to_region("digits".into(), b"!").unwrap();
    });
    let mut text = String::new();
    let mut cursor = cursor;
    cursor.read_to_string(&mut text).unwrap();
    assert_eq!(text, "0123456789");
    drop(cursor);
    writer.join().unwrap();
    let reader = database.create_region_reader("digits".into()).unwrap();
    assert_eq!(reader.read_all(), b"0123456789!");
}
