//! An offline consistency check of a database's files.
//!
//! [`check`] reads the files the way `open` does — the same replay of the metadata log,
//! the same judgement of how it ends against the data file's header, the same
//! validation of the regions — and reports every finding in words instead of stopping
//! at the first, without changing a byte. It never panics on damaged input: every
//! finding becomes a line of the report.

use std::fmt;
use std::fs;
use std::path::Path;

use seqdb_sys::{FileOptions, Lock, LockedFile};

use crate::beside_writer;
use crate::database::DATA_FILE;
use crate::diagnosis::{self, Finding};
use crate::error::NotADirectorySnafu;
use crate::log_read::FileSource;
use crate::meta_log::{META_FILE, META_TMP_FILE};
use crate::readers_file;
use crate::redo::{self, Coverage};
use crate::replay::{self, LogScan};
use crate::scrub::{self, DamagedRange};
use crate::{Database, Error, Result, data_header, opening};

/// What [`check`] found in a database.
///
/// `problems` are damage: the database does not hold what its commits say, `open`
/// refuses it, or commits were lost. `warnings` are harmless leftovers of a crash (a torn
/// record at the end of the log, a commit that reached the data file but not the log, a
/// half-written checkpoint file) that the next read-write open cleans up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckReport {
    /// One sentence per problem, naming the file, offset and region involved.
    pub problems: Vec<String>,
    /// One sentence per harmless finding.
    pub warnings: Vec<String>,
    /// Number of valid commit records in the metadata log that `open` would apply.
    pub records: u64,
    /// Generation of the newest commit `open` would recover.
    pub generation: u64,
    /// Number of regions in the recovered state.
    pub regions: u64,
    /// Sum of the recovered regions' lengths.
    pub live_bytes: u64,
    /// Length of the data file (0 when it is missing).
    pub data_len: u64,
    /// Length of the metadata file (0 when it is missing).
    pub meta_len: u64,
    /// Whether the regions' bytes were read back and compared with their checksums
    /// ([`check_data`]).
    pub data_checked: bool,
    /// The ranges of regions whose bytes do not match their checksums (each is also a
    /// problem).
    pub damaged: Vec<DamagedRange>,
}

impl CheckReport {
    /// Whether no problem was found (warnings allowed).
    pub fn is_healthy(&self) -> bool {
        self.problems.is_empty()
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for problem in &self.problems {
            writeln!(f, "problem: {problem}")?;
        }
        for warning in &self.warnings {
            writeln!(f, "warning: {warning}")?;
        }
        write!(
            f,
            "{}, generation {}, {}, {} live bytes: ",
            plural(self.records, "record"),
            self.generation,
            plural(self.regions, "region"),
            self.live_bytes
        )?;
        match self.problems.len() {
            0 => write!(f, "healthy"),
            1 => write!(f, "1 problem"),
            n => write!(f, "{n} problems"),
        }
    }
}

fn plural(count: u64, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

/// Check the database in directory `path` without modifying it.
///
/// Reads the metadata log in bounded pieces and replays it as `open` does: the header,
/// every record's checksum, kind and generation sequence, and what follows the last
/// valid record (a torn tail is a warning; valid records after a break are a problem).
/// Compares the log's newest commit with the one the data file's header records (a log
/// more than one commit behind was cut short), checks that the data file belongs to the
/// database, and validates the recovered regions: numbers, unique names, page-aligned
/// non-overlapping reservations after the data file's header, lengths within
/// reservations and within the data file. Every finding names its file and offset.
/// Finally it opens the database read-only to confirm that `open` agrees.
///
/// The check holds a shared lock on the data file while it runs, like a read-only open.
/// Beside a read-write handle (where the platform has range locks; `docs/FORMAT.md`,
/// "The readers file") it checks the writer's last complete commit, reading the log's
/// tail as a read-only open does then, and says so in a warning; elsewhere it fails with
/// [`Error::AlreadyOpen`] while a read-write handle has the database.
/// Other errors mean the files could not be read at all; everything found *in* them is
/// reported in the [`CheckReport`].
///
/// ```
/// # fn main() -> seqdb::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// let database = seqdb::Database::open(dir.path())?;
/// let (log, _) = database.create_region_if_needed("log")?;
/// database.write_all_to_region(log.into(), b"entry")?;
/// database.flush()?;
/// drop(database);
///
/// let report = seqdb::check(dir.path())?;
/// assert!(report.is_healthy(), "{report}");
/// assert_eq!(report.regions, 1);
/// # Ok(()) }
/// ```
pub fn check(path: &Path) -> Result<CheckReport> {
    check_files(path, None)
}

/// [`check`], and then the data scrub: every region's bytes are read back from the data
/// file and compared with the checksums of its 64 KiB chunks that its commits recorded.
/// Each damaged range is listed in [`CheckReport::damaged`], naming the region and the
/// bytes, and counts as a problem. `progress(done, total)` is told the bytes read so far.
///
/// A scrub after a crash also names bytes that were overwritten in place (inside a
/// region's committed length) after the last flush and reached the disk: they are not
/// the bytes that commit recorded.
///
/// ```
/// # fn main() -> seqdb::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// let database = seqdb::Database::open(dir.path())?;
/// database.create_region_if_needed("log")?;
/// database.write_all_to_region("log".into(), &[7; 100_000])?;
/// database.close()?;
///
/// let report = seqdb::check_data(dir.path(), |_done, _total| {})?;
/// assert!(report.is_healthy() && report.data_checked, "{report}");
/// # Ok(()) }
/// ```
pub fn check_data(path: &Path, mut progress: impl FnMut(u64, u64)) -> Result<CheckReport> {
    check_files(path, Some(&mut progress))
}

fn check_files(path: &Path, scrub: Option<&mut dyn FnMut(u64, u64)>) -> Result<CheckReport> {
    match fs::metadata(path) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return NotADirectorySnafu { path }.fail(),
        Err(source) => {
            return Err(Error::Directory {
                path: path.to_owned(),
                source,
            });
        }
    }
    let mut report = CheckReport::default();
    let data_path = path.join(DATA_FILE);
    let meta_path = path.join(META_FILE);
    if let Err(incomplete) = crate::backup::refuse_incomplete(path) {
        report.problems.push(incomplete.to_string());
    }

    // The shared lock keeps writers out for the duration of the check.
    let data = match LockedFile::open(&data_path, &FileOptions::read_only()) {
        Ok(file) => Some(file),
        Err(seqdb_sys::Error::Locked { .. }) => {
            return Err(Error::AlreadyOpen {
                path: path.to_owned(),
            });
        }
        Err(_) if !data_path.exists() => {
            report
                .problems
                .push(format!("the data file {} is missing", data_path.display()));
            None
        }
        Err(source) => return Err(Error::sys(source)),
    };
    if let Some(file) = &data {
        report.data_len = file.len().map_err(Error::sys)?;
    }

    if path.join(META_TMP_FILE).exists() {
        report.warnings.push(format!(
            "{} is left over from an interrupted checkpoint; the next read-write open deletes it",
            path.join(META_TMP_FILE).display()
        ));
    }

    let meta = match LockedFile::open(&meta_path, &unlocked()) {
        Ok(file) => file,
        Err(_) if !meta_path.exists() => {
            missing_metadata(path, data.as_ref(), &mut report)?;
            return Ok(report);
        }
        Err(source) => return Err(Error::sys(source)),
    };
    report.meta_len = meta.len().map_err(Error::sys)?;
    let source = FileSource {
        file: &meta,
        len: report.meta_len,
    };
    let beside_writer = readers_file::writer_present_in(path)?;
    let mut scan = match replay::scan_log(&meta_path, &source, None) {
        Ok(scan) => scan,
        Err(error @ Error::Sys { .. }) => return Err(error),
        Err(error) => {
            report.problems.push(error.to_string());
            return Ok(report);
        }
    };
    report.records = scan.records;
    report.generation = scan.state.generation;
    if let Some(file) = &data {
        judge(path, file, &mut scan, beside_writer, &mut report)?;
    }

    let next_number = scan.state.next_number;
    let mut state = scan.state;
    let redo_writes = std::mem::take(&mut state.redo);
    let entries = state.into_sorted();
    report.regions = entries.len() as u64;
    report.live_bytes = entries
        .iter()
        .fold(0u64, |sum, placed| sum.saturating_add(placed.entry.len));
    let pieces = redo::clip(&entries, &redo_writes);
    // Beside a live writer those bytes are there (written before their records), and
    // the writer may have overwritten them since.
    if !beside_writer
        && let Some(file) = &data
        && let Some(offset) = redo::missing(file, report.data_len, &pieces)?
    {
        report.problems.push(format!(
            "{DATA_FILE} offset {offset}: bytes that the last commits carried in the \
             metadata log are not in the data file (the database was not closed cleanly); \
             a read-write open writes them again"
        ));
    }
    if let Err(violations) = diagnosis::validate(
        &entries,
        next_number,
        &Coverage::new(report.data_len, &pieces),
    ) {
        report.problems.extend(
            violations
                .iter()
                .map(|v| format!("{META_FILE} offset {}: {}", v.offset, v.reason)),
        );
    }

    if let (Some(progress), Some(file)) = (scrub, &data)
        && report.problems.is_empty()
    {
        report.damaged = scrub::scrub(file, report.data_len, &entries, progress)?;
        report.data_checked = true;
        report.problems.extend(report.damaged.iter().map(|d| {
            format!(
                "region {:?} (number {}): bytes {}..{} (data offset {}) do not match their \
                 checksums",
                d.region,
                d.number,
                d.offset,
                d.offset + d.len,
                d.file_offset
            )
        }));
    }
    if report.problems.is_empty() && data.is_some() {
        // A last word from `open` itself, so the check never calls healthy what open refuses.
        if let Err(e) = Database::open_read_only(path) {
            report.problems.push(format!("a read-only open fails: {e}"));
        }
    }
    Ok(report)
}

fn unlocked() -> FileOptions {
    FileOptions {
        lock: Lock::Unlocked,
        ..FileOptions::read_only()
    }
}

/// Judge the log against the data file's header, as `open` does.
fn judge(
    path: &Path,
    data: &LockedFile,
    scan: &mut LogScan,
    beside_writer: bool,
    report: &mut CheckReport,
) -> Result<()> {
    let mut header = match opening::data_header(path, data, report.data_len, scan) {
        Ok(header) => header,
        Err(error @ Error::Sys { .. }) => return Err(error),
        Err(error) => {
            report.problems.push(error.to_string());
            return Ok(());
        }
    };
    if header.blank {
        report.warnings.push(format!(
            "{DATA_FILE} offset 0: the data file's header was never written (the database's \
             creation was cut short); the next read-write open writes it"
        ));
    }
    if beside_writer {
        beside_writer::settle(scan, &mut header);
        // The writer may have grown the file for the commits just read.
        report.data_len = data.len().map_err(Error::sys)?;
        report.warnings.push(format!(
            "a read-write handle has the database open: checked its last complete commit, \
             generation {}",
            scan.state.generation
        ));
    }
    let judgement = diagnosis::judge(scan, &header);
    report.problems.extend(judgement.damage.iter().map(line));
    report.warnings.extend(judgement.warnings.iter().map(line));
    Ok(())
}

/// A finding as a line of the report.
fn line(finding: &Finding) -> String {
    format!(
        "{} offset {}: {}",
        finding.file, finding.offset, finding.reason
    )
}

/// No metadata file: harmless when the data file holds nothing but a fresh header (an
/// interrupted creation), a problem otherwise.
fn missing_metadata(
    path: &Path,
    data: Option<&LockedFile>,
    report: &mut CheckReport,
) -> Result<()> {
    let meta_path = path.join(META_FILE);
    let fresh = match data {
        Some(file) if report.data_len <= data_header::DATA_HEADER_LEN => {
            let page = data_header::read_page(file, report.data_len)?;
            match data_header::decode_page(&page) {
                Ok(header) => header.generation == 0,
                Err(data_header::BadDataHeader::Blank) => true,
                Err(_) => false,
            }
        }
        _ => false,
    };
    if fresh {
        report.warnings.push(format!(
            "the metadata file {} is missing; the data file holds no region, so this is a \
             new database whose metadata the next read-write open writes",
            meta_path.display()
        ));
    } else {
        report.problems.push(format!(
            "the metadata file {} is missing, so the regions in the data file cannot be found",
            meta_path.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data_header::{DATA_HEADER_LEN, encode_page};
    use crate::format::{
        FIRST_RECORD, META_HEADER_LEN, RECORD_ALIGN, Record, RecordKind, RegionEntry,
        encode_meta_header, encode_record,
    };
    use std::path::PathBuf;

    fn build(dir: &Path) {
        let database = Database::open(dir).unwrap();
        for (name, fill) in [("alpha", 1u8), ("beta", 2), ("gamma", 3)] {
            let (number, _) = database.create_region_if_needed(name).unwrap();
            database
                .write_all_to_region(number.into(), &vec![fill; 5000])
                .unwrap();
            database.flush().unwrap();
        }
        database.remove_region("beta".into()).unwrap();
        database.flush().unwrap();
    }

    fn meta(dir: &Path) -> PathBuf {
        dir.join(META_FILE)
    }

    /// The metadata file without the zeros laid down ahead of the log.
    fn read_log(dir: &Path) -> Vec<u8> {
        let mut bytes = fs::read(meta(dir)).unwrap();
        let page = RECORD_ALIGN as usize;
        while bytes.len() > page && bytes[bytes.len() - page..].iter().all(|&b| b == 0) {
            bytes.truncate(bytes.len() - page);
        }
        bytes
    }

    fn entry(number: u64, name: &str, start: u64, reserved: u64, len: u64) -> RegionEntry {
        RegionEntry {
            number,
            start,
            reserved,
            len,
            name: name.into(),
            sums_from: 0,
            crcs: crate::sums::zeros(len),
            origin: 0,
        }
    }

    const ID: [u8; 16] = *b"check-test-id...";

    /// Write a metadata file holding one checkpoint with `entries` and a data file of
    /// `data_len` bytes (a header, then zeros).
    fn handmade(dir: &Path, entries: Vec<RegionEntry>, data_len: u64) {
        let mut bytes = vec![0u8; FIRST_RECORD as usize];
        bytes[..META_HEADER_LEN].copy_from_slice(&encode_meta_header(&ID));
        bytes.extend(
            encode_record(
                &ID,
                &Record {
                    data_synced: true,
                    inline: Vec::new(),
                    generation: 4,
                    kind: RecordKind::Checkpoint,
                    next_number: 10,
                    removed: Vec::new(),
                    upserts: entries,
                },
            )
            .unwrap(),
        );
        fs::write(meta(dir), bytes).unwrap();
        let mut data = encode_page(&ID, 4);
        data.resize(data_len.max(DATA_HEADER_LEN) as usize, 0);
        fs::write(dir.join(DATA_FILE), data).unwrap();
    }

    fn mentions(report: &CheckReport, needle: &str) -> bool {
        report.problems.iter().any(|p| p.contains(needle))
    }

    #[test]
    fn a_healthy_database_passes() {
        let dir = tempfile::tempdir().unwrap();
        build(dir.path());
        let report = check(dir.path()).unwrap();
        assert!(report.is_healthy(), "{report}");
        assert!(report.warnings.is_empty(), "{report}");
        assert_eq!(report.regions, 2);
        assert_eq!(report.live_bytes, 10_000);
        // The initial checkpoint plus one delta per flush.
        assert_eq!(report.records, 5);
        assert_eq!(
            report.generation,
            Database::open_read_only(dir.path())
                .unwrap()
                .stats()
                .unwrap()
                .generation
        );
    }

    #[test]
    fn a_new_empty_database_passes() {
        let dir = tempfile::tempdir().unwrap();
        drop(Database::open(dir.path()).unwrap());
        let report = check(dir.path()).unwrap();
        assert!(report.is_healthy(), "{report}");
        assert_eq!((report.records, report.regions), (1, 0));
    }

    #[test]
    fn a_damaged_header_is_a_problem() {
        let dir = tempfile::tempdir().unwrap();
        build(dir.path());
        let mut bytes = read_log(dir.path());
        bytes[13] ^= 0x40;
        fs::write(meta(dir.path()), &bytes).unwrap();
        let report = check(dir.path()).unwrap();
        assert!(mentions(&report, "header is damaged"), "{report}");
        assert!(mentions(&report, "at offset 0"), "{report}");
    }

    #[test]
    fn a_foreign_file_is_a_problem() {
        let dir = tempfile::tempdir().unwrap();
        build(dir.path());
        fs::write(meta(dir.path()), b"SQLite format 3\0 and more").unwrap();
        let report = check(dir.path()).unwrap();
        assert!(mentions(&report, "not a seqdb metadata file"), "{report}");
    }

    #[test]
    fn a_damaged_record_before_valid_ones_is_a_problem() {
        let dir = tempfile::tempdir().unwrap();
        build(dir.path());
        let mut bytes = read_log(dir.path());
        // Second record: the first delta. Later deltas stay valid but unreachable.
        let at = 2 * RECORD_ALIGN as usize + 16 + 3;
        bytes[at] ^= 1;
        fs::write(meta(dir.path()), &bytes).unwrap();
        let report = check(dir.path()).unwrap();
        assert!(!report.is_healthy());
        assert!(mentions(&report, "meta offset 8192"), "{report}");
        assert!(mentions(&report, "checksum mismatch"), "{report}");
        assert!(mentions(&report, "3 valid record(s) follow"), "{report}");
        assert!(mentions(&report, "commit(s) are missing"), "{report}");
        assert_eq!(report.records, 1);
        // Open refuses exactly this, naming the same offset.
        let error = Database::open_read_only(dir.path()).unwrap_err();
        assert!(
            matches!(error, Error::Corrupt { offset: 8192, .. }),
            "{error}"
        );
    }

    #[test]
    fn a_cut_log_is_a_problem_and_a_torn_tail_only_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        build(dir.path());
        let bytes = read_log(dir.path());
        // Where records start (the regions' bytes, carried in the records, never look
        // like a record's magic).
        let starts: Vec<usize> = (0..bytes.len())
            .step_by(RECORD_ALIGN as usize)
            .filter(|&at| bytes[at..].starts_with(b"SQDR"))
            .collect();
        let (last, before) = (starts[starts.len() - 1], starts[starts.len() - 2]);
        // The last record half written: what a crash leaves.
        fs::write(meta(dir.path()), &bytes[..last + 30]).unwrap();
        let report = check(dir.path()).unwrap();
        assert!(report.is_healthy(), "{report}");
        assert!(
            report.warnings[0].contains(&format!("meta offset {last}")),
            "{report}"
        );
        assert!(report.warnings[0].contains("torn write"), "{report}");
        // Two records gone: a crash cannot do that.
        fs::write(meta(dir.path()), &bytes[..before]).unwrap();
        let report = check(dir.path()).unwrap();
        assert!(mentions(&report, "2 commit(s) are missing"), "{report}");
        assert!(
            mentions(&report, &format!("meta offset {before}")),
            "{report}"
        );
    }

    /// Bytes a torn last record carried for a region may hold a copy of an older record
    /// of the same log, at a page boundary: that is no evidence of lost commits. (A
    /// record of another database never passes its checksum here.)
    #[test]
    fn a_copy_of_an_older_record_inside_a_torn_one_is_not_damage() {
        let dir = tempfile::tempdir().unwrap();
        build(dir.path());
        let mut bytes = read_log(dir.path());
        let starts: Vec<usize> = (0..bytes.len())
            .step_by(RECORD_ALIGN as usize)
            .filter(|&at| bytes[at..].starts_with(b"SQDR"))
            .collect();
        let old = bytes[starts[1]..starts[2]].to_vec();
        // A torn record: its head claims more than follows, then the copy.
        let mut torn = b"SQDR".to_vec();
        torn.extend_from_slice(&(1u64 << 20).to_le_bytes());
        torn.resize(RECORD_ALIGN as usize, 7);
        bytes.extend_from_slice(&torn);
        bytes.extend_from_slice(&old);
        fs::write(meta(dir.path()), &bytes).unwrap();
        let report = check(dir.path()).unwrap();
        assert!(report.is_healthy(), "{report}");
        assert!(mentions_warning(&report, "torn write"), "{report}");
        assert!(Database::open_read_only(dir.path()).is_ok());
    }

    /// A record of another database (here: newer than the log) inside a torn record's
    /// bytes does not pass for one of this log: records are checksummed with their
    /// database's id.
    #[test]
    fn another_databases_record_inside_a_torn_one_is_not_damage() {
        let dir = tempfile::tempdir().unwrap();
        build(dir.path());
        let mut bytes = read_log(dir.path());
        let foreign = encode_record(
            b"another database",
            &Record::new(1000, RecordKind::Delta, 3, Vec::new(), Vec::new()),
        )
        .unwrap();
        let mut torn = b"SQDR".to_vec();
        torn.extend_from_slice(&(1u64 << 20).to_le_bytes());
        torn.resize(RECORD_ALIGN as usize, 7);
        bytes.extend_from_slice(&torn);
        bytes.extend_from_slice(&foreign);
        fs::write(meta(dir.path()), &bytes).unwrap();
        let report = check(dir.path()).unwrap();
        assert!(report.is_healthy(), "{report}");
        // The same record of this database is evidence of lost commits.
        let id: [u8; 16] = bytes[20..36].try_into().unwrap();
        let own = encode_record(
            &id,
            &Record::new(1000, RecordKind::Delta, 3, Vec::new(), Vec::new()),
        )
        .unwrap();
        let at = bytes.len() - foreign.len();
        bytes.truncate(at);
        bytes.extend_from_slice(&own);
        fs::write(meta(dir.path()), &bytes).unwrap();
        assert!(!check(dir.path()).unwrap().is_healthy());
    }

    fn mentions_warning(report: &CheckReport, needle: &str) -> bool {
        report.warnings.iter().any(|w| w.contains(needle))
    }

    #[test]
    fn a_generation_gap_before_a_valid_record_is_a_problem() {
        let dir = tempfile::tempdir().unwrap();
        build(dir.path());
        let mut bytes = read_log(dir.path());
        let id: [u8; 16] = bytes[20..36].try_into().unwrap();
        bytes.extend(
            encode_record(
                &id,
                &Record {
                    data_synced: true,
                    inline: Vec::new(),
                    generation: 1000,
                    kind: RecordKind::Delta,
                    next_number: 3,
                    removed: Vec::new(),
                    upserts: Vec::new(),
                },
            )
            .unwrap(),
        );
        fs::write(meta(dir.path()), &bytes).unwrap();
        let report = check(dir.path()).unwrap();
        assert!(mentions(&report, "generation 1000 where"), "{report}");
    }

    #[test]
    fn overlapping_misaligned_and_past_end_extents_are_problems() {
        let dir = tempfile::tempdir().unwrap();
        handmade(
            dir.path(),
            vec![
                entry(0, "a", 4096, 8192, 100),
                entry(1, "b", 8192, 4096, 10),
                entry(2, "c", 12_289, 4096, 0),
                entry(3, "d", 20_480, 4096, 5000),
                entry(4, "e", 24_576, 4096, 4096),
                entry(5, "h", 0, 4096, 0),
            ],
            26_000,
        );
        let report = check(dir.path()).unwrap();
        let expected = [
            r#"region "b": regions 0 and 1 overlap"#,
            r#"region "c": region 2: start 12289 is not page-aligned"#,
            r#"region "d": region 3: length 5000 exceeds"#,
            r#"region "e" ends at 24576 + 4096 but the data file holds 26000"#,
            r#"region "h": region 5: starts at 0, inside the first 4096 bytes"#,
        ];
        for needle in expected {
            assert!(mentions(&report, needle), "{needle}: {report}");
        }
        assert_eq!(report.problems.len(), expected.len(), "{report}");
        assert!(mentions(&report, "meta offset 4096"), "{report}");
    }

    #[test]
    fn duplicate_names_are_a_problem() {
        let dir = tempfile::tempdir().unwrap();
        handmade(
            dir.path(),
            vec![
                entry(0, "same", 4096, 4096, 1),
                entry(1, "same", 8192, 4096, 1),
            ],
            12_288,
        );
        let report = check(dir.path()).unwrap();
        assert!(
            mentions(&report, r#"two regions are named "same""#),
            "{report}"
        );
    }

    #[test]
    fn a_truncated_data_file_is_a_problem() {
        let dir = tempfile::tempdir().unwrap();
        build(dir.path());
        fs::File::options()
            .write(true)
            .open(dir.path().join(DATA_FILE))
            .unwrap()
            .set_len(4096)
            .unwrap();
        let report = check(dir.path()).unwrap();
        assert!(
            mentions(&report, "but the data file holds 4096 bytes"),
            "{report}"
        );
    }

    #[test]
    fn zeroed_and_foreign_data_files_are_problems() {
        let dir = tempfile::tempdir().unwrap();
        build(dir.path());
        let data = dir.path().join(DATA_FILE);
        let original = fs::read(&data).unwrap();
        fs::write(&data, vec![0u8; original.len()]).unwrap();
        let report = check(dir.path()).unwrap();
        assert!(mentions(&report, "has no header"), "{report}");
        let other = tempfile::tempdir().unwrap();
        build(other.path());
        fs::copy(other.path().join(DATA_FILE), &data).unwrap();
        let report = check(dir.path()).unwrap();
        assert!(mentions(&report, "belongs to another database"), "{report}");
    }

    #[test]
    fn missing_metadata_is_a_problem() {
        let dir = tempfile::tempdir().unwrap();
        build(dir.path());
        fs::remove_file(meta(dir.path())).unwrap();
        let report = check(dir.path()).unwrap();
        assert!(mentions(&report, "metadata file"), "{report}");
    }

    #[test]
    fn a_leftover_checkpoint_file_is_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        build(dir.path());
        fs::write(dir.path().join(META_TMP_FILE), b"half").unwrap();
        let report = check(dir.path()).unwrap();
        assert!(report.is_healthy(), "{report}");
        assert!(
            report.warnings[0].contains("interrupted checkpoint"),
            "{report}"
        );
    }

    #[test]
    fn a_database_with_a_writer_checks_its_last_commit() {
        let dir = tempfile::tempdir().unwrap();
        let database = Database::open(dir.path()).unwrap();
        database.create_region_if_needed("r").unwrap();
        database.write_all_to_region("r".into(), b"abc").unwrap();
        database.flush().unwrap();
        if seqdb_sys::RANGE_LOCKS {
            let report = check(dir.path()).unwrap();
            assert!(report.is_healthy(), "{report}");
            assert_eq!((report.generation, report.live_bytes), (1, 3));
        } else {
            assert!(matches!(check(dir.path()), Err(Error::AlreadyOpen { .. })));
        }
        drop(database);
        assert!(check(dir.path()).unwrap().is_healthy());
    }

    #[test]
    fn paths_that_are_not_databases_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            check(&dir.path().join("missing")),
            Err(Error::Directory { .. })
        ));
        let file = dir.path().join("file");
        fs::write(&file, b"x").unwrap();
        assert!(matches!(check(&file), Err(Error::NotADirectory { .. })));
        let report = check(dir.path()).unwrap();
        assert!(mentions(&report, "data file"), "{report}");
    }

    #[test]
    fn check_and_open_agree_on_random_damage() {
        let dir = tempfile::tempdir().unwrap();
        build(dir.path());
        let original = read_log(dir.path());
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..300 {
            let mut bytes = original.clone();
            for _ in 0..=(next() % 8) {
                let at = (next() % bytes.len() as u64) as usize;
                bytes[at] = next() as u8;
            }
            if round % 3 == 0 {
                bytes.truncate((next() % bytes.len() as u64) as usize);
            }
            fs::write(meta(dir.path()), &bytes).unwrap();
            let report = check(dir.path()).unwrap();
            let opened = Database::open_read_only(dir.path());
            // Whatever check calls healthy, open accepts; whatever it calls damaged,
            // open refuses.
            assert_eq!(
                report.is_healthy(),
                opened.is_ok(),
                "round {round}: {report} / {opened:?}"
            );
        }
    }
}
