//! An offline consistency check of a database's files.
//!
//! [`check`] reads the metadata log record by record and the data file's length, and
//! reports everything that is wrong or suspicious in words, without changing a byte. It
//! never panics on damaged input: every finding becomes a line of the report.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs;
use std::path::Path;

use seqdb_sys::{FileOptions, Lock, LockedFile};

use crate::database::DATA_FILE;
use crate::error::NotADirectorySnafu;
use crate::format::{
    self, Decoded, HEADER_LEN, Malformed, RECORD_ALIGN, RECORD_HEAD_LEN, RECORD_MAGIC, Record,
    RecordKind, RegionEntry,
};
use crate::meta_log::{META_FILE, META_TMP_FILE};
use crate::{Database, Error, PAGE_SIZE, Result};

/// What [`check`] found in a database.
///
/// `problems` are damage: the database does not hold what its commits say, or `open`
/// would refuse it or silently lose commits. `warnings` are harmless leftovers of a crash
/// (a torn record at the end of the log, a half-written checkpoint file) that the next
/// read-write open cleans up.
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
/// Validates the metadata header, every record's checksum, kind and generation sequence,
/// what follows the last valid record (a torn tail is a warning; valid records that `open`
/// would skip are a problem), and the recovered state: region numbers, unique names,
/// page-aligned non-overlapping reservations, lengths within reservations and within the
/// data file. Finally it opens the database read-only to confirm that `open` agrees.
///
/// The check holds a shared lock on the data file while it runs, like a read-only open,
/// so it fails with [`Error::AlreadyOpen`] while a read-write handle has the database.
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
            if data.is_some() && report.data_len == 0 {
                report.warnings.push(format!(
                    "the metadata file {} is missing; the data file is empty, so this is an \
                     empty database whose metadata the next read-write open writes",
                    meta_path.display()
                ));
            } else {
                report.problems.push(format!(
                    "the metadata file {} is missing, so the regions in the data file cannot \
                     be found",
                    meta_path.display()
                ));
            }
            return Ok(report);
        }
        Err(source) => return Err(Error::sys(source)),
    };
    let bytes = meta.read_to_vec().map_err(Error::sys)?;
    report.meta_len = bytes.len() as u64;

    let Some(state) = check_log(&bytes, &mut report) else {
        return Ok(report);
    };
    check_state(&state, data.is_some(), &mut report);

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

/// The state a log replays to.
struct State {
    regions: HashMap<u64, RegionEntry>,
    next_number: u64,
}

/// Check the header and every record; returns the recovered state when there is one.
fn check_log(bytes: &[u8], report: &mut CheckReport) -> Option<State> {
    match format::decode_header(bytes) {
        Ok(()) => {}
        Err(Malformed::Foreign) => {
            report.problems.push(format!(
                "meta offset 0: the file does not start with the seqdb magic {:?}",
                String::from_utf8_lossy(&format::MAGIC)
            ));
            return None;
        }
        Err(Malformed::Version(found)) => {
            report.problems.push(format!(
                "meta offset 0: format version {found}, but this build reads version {}",
                format::VERSION
            ));
            return None;
        }
        Err(Malformed::BadHeader) => {
            let reason = if bytes.len() < HEADER_LEN {
                format!("the header is cut short at {} bytes", bytes.len())
            } else {
                "the header is damaged (checksum mismatch or unknown field values)".to_owned()
            };
            report.problems.push(format!("meta offset 0: {reason}"));
            return None;
        }
    }
    if let Some(gap) = bytes.get(HEADER_LEN..RECORD_ALIGN as usize)
        && gap.iter().any(|&b| b != 0)
    {
        report.warnings.push(format!(
            "meta offsets {HEADER_LEN}..{RECORD_ALIGN}: padding after the header is not zero"
        ));
    }

    let first_at = RECORD_ALIGN as usize;
    let first = match inspect(bytes, first_at) {
        Ok((record, len)) => (record, len),
        Err(reason) => {
            report.problems.push(format!(
                "meta offset {first_at}: no valid checkpoint record ({reason}), so no commit \
                 can be recovered"
            ));
            return None;
        }
    };
    let (checkpoint, len) = first;
    if checkpoint.kind != RecordKind::Checkpoint {
        report.problems.push(format!(
            "meta offset {first_at}: the log starts with a delta record instead of a checkpoint"
        ));
        return None;
    }
    if !checkpoint.removed.is_empty() {
        report.problems.push(format!(
            "meta offset {first_at}: the checkpoint lists {} removed regions; a checkpoint \
             lists none",
            checkpoint.removed.len()
        ));
    }
    let mut state = State {
        regions: HashMap::with_capacity(checkpoint.upserts.len()),
        next_number: checkpoint.next_number,
    };
    for entry in checkpoint.upserts {
        let number = entry.number;
        if state.regions.insert(number, entry).is_some() {
            report.problems.push(format!(
                "meta offset {first_at}: region number {number} appears twice in the checkpoint"
            ));
        }
    }
    report.records = 1;
    report.generation = checkpoint.generation;

    let mut at = first_at + len;
    let break_reason = loop {
        if at >= bytes.len() {
            break None;
        }
        match inspect(bytes, at) {
            Ok((record, _)) if record.kind != RecordKind::Delta => {
                break Some("a checkpoint record where a delta was expected".to_owned());
            }
            Ok((record, _)) if Some(record.generation) != report.generation.checked_add(1) => {
                break Some(format!(
                    "generation {} where {} was expected",
                    record.generation,
                    report.generation.wrapping_add(1)
                ));
            }
            Ok((record, record_len)) => {
                apply_delta(&mut state, record, report);
                report.records += 1;
                at += record_len;
            }
            Err(reason) => break Some(reason),
        }
    };
    if let Some(reason) = break_reason {
        check_after_log(bytes, at, &reason, report);
    }
    Some(state)
}

fn apply_delta(state: &mut State, record: Record, report: &mut CheckReport) {
    for number in &record.removed {
        state.regions.remove(number);
    }
    for entry in record.upserts {
        state.regions.insert(entry.number, entry);
    }
    state.next_number = record.next_number;
    report.generation = record.generation;
}

/// The log ends at `at` for `reason`: a torn tail, unless valid records follow.
fn check_after_log(bytes: &[u8], at: usize, reason: &str, report: &mut CheckReport) {
    let align = RECORD_ALIGN as usize;
    let skipped: Vec<(usize, u64)> = (at..bytes.len())
        .step_by(align)
        .filter_map(|offset| {
            inspect(bytes, offset)
                .ok()
                .map(|(r, _)| (offset, r.generation))
        })
        .collect();
    if skipped.is_empty() {
        report.warnings.push(format!(
            "meta offset {at}: {} bytes after the last valid record are not a valid record \
             ({reason}); this is a torn write from a crash, and the next read-write open \
             discards it",
            bytes.len() - at
        ));
        return;
    }
    let listed: Vec<String> = skipped
        .iter()
        .take(8)
        .map(|(offset, generation)| format!("offset {offset} generation {generation}"))
        .collect();
    let more = skipped.len().saturating_sub(listed.len());
    report.problems.push(format!(
        "meta offset {at}: the log breaks ({reason}), but {} valid record(s) follow ({}{}); \
         open stops at the break and ignores them, so the commits they hold are lost",
        skipped.len(),
        listed.join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    ));
}

/// Decode the record at `at`, or say why there is none.
fn inspect(bytes: &[u8], at: usize) -> std::result::Result<(Record, usize), String> {
    let rest = bytes.get(at..).unwrap_or_default();
    if rest.len() < RECORD_HEAD_LEN {
        return Err(format!(
            "{} bytes, fewer than a record head's {RECORD_HEAD_LEN}",
            rest.len()
        ));
    }
    if le_u32(rest, 0) != RECORD_MAGIC {
        let page = &rest[..rest.len().min(RECORD_ALIGN as usize)];
        return Err(if page.iter().all(|&b| b == 0) {
            "zeros where a record should start".to_owned()
        } else {
            "no record magic".to_owned()
        });
    }
    let body_len = le_u32(rest, 4) as usize;
    let Some(body) = rest.get(RECORD_HEAD_LEN..RECORD_HEAD_LEN.saturating_add(body_len)) else {
        return Err(format!(
            "the record claims {body_len} body bytes but only {} follow",
            rest.len() - RECORD_HEAD_LEN
        ));
    };
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&rest[4..8]);
    hasher.update(body);
    let computed = hasher.finalize();
    let stored = le_u32(rest, 8);
    if computed != stored {
        return Err(format!(
            "checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
        ));
    }
    match format::decode_record(rest) {
        Decoded::Record(record, len) => Ok((record, len)),
        Decoded::End => Err("the checksum matches but the body does not parse".to_owned()),
    }
}

fn le_u32(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    if let Some(slice) = bytes.get(at..at + 4) {
        word.copy_from_slice(slice);
    }
    u32::from_le_bytes(word)
}

/// Check the recovered regions against each other and against the data file.
fn check_state(state: &State, have_data: bool, report: &mut CheckReport) {
    let mut entries: Vec<&RegionEntry> = state.regions.values().collect();
    entries.sort_unstable_by_key(|e| e.number);
    report.regions = entries.len() as u64;
    report.live_bytes = entries
        .iter()
        .fold(0u64, |sum, e| sum.saturating_add(e.len));
    let problems = &mut report.problems;

    let mut names = HashSet::with_capacity(entries.len());
    for entry in &entries {
        let name = &entry.name;
        if !names.insert(name.as_str()) {
            problems.push(format!("two regions are named {name:?}"));
        }
        if entry.number >= state.next_number {
            problems.push(format!(
                "region {name:?} has number {}, but the log says every number is below {}",
                entry.number, state.next_number
            ));
        }
        if entry.start % PAGE_SIZE != 0 {
            problems.push(format!(
                "region {name:?} starts at {}, which is not a multiple of the page size {PAGE_SIZE}",
                entry.start
            ));
        }
        if entry.reserved % PAGE_SIZE != 0 {
            problems.push(format!(
                "region {name:?} reserves {} bytes, which is not a multiple of the page size \
                 {PAGE_SIZE}",
                entry.reserved
            ));
        }
        if entry.len > entry.reserved {
            problems.push(format!(
                "region {name:?} holds {} bytes but reserves only {}",
                entry.len, entry.reserved
            ));
        }
        match entry.start.checked_add(entry.reserved.max(entry.len)) {
            None => problems.push(format!(
                "region {name:?} ends past the largest file offset ({} + {})",
                entry.start, entry.reserved
            )),
            Some(_) if have_data && entry.start + entry.len > report.data_len => {
                problems.push(format!(
                    "region {name:?} ends at {} but the data file holds {} bytes",
                    entry.start + entry.len,
                    report.data_len
                ))
            }
            Some(_) => {}
        }
    }

    let mut extents: Vec<(u64, u64, &str)> = entries
        .iter()
        .filter(|e| e.reserved > 0)
        .filter_map(|e| Some((e.start, e.start.checked_add(e.reserved)?, e.name.as_str())))
        .collect();
    extents.sort_unstable();
    let mut reported = 0;
    // The extent reaching furthest so far: any later start before its end overlaps it.
    let mut furthest: Option<(u64, u64, &str)> = None;
    for &(start, end, name) in &extents {
        if let Some((start_a, end_a, a)) = furthest
            && start < end_a
        {
            reported += 1;
            if reported <= 16 {
                problems.push(format!(
                    "regions {a:?} ({start_a}..{end_a}) and {name:?} ({start}..{end}) overlap"
                ));
            }
        }
        if furthest.is_none_or(|(_, end_a, _)| end > end_a) {
            furthest = Some((start, end, name));
        }
    }
    if reported > 16 {
        problems.push(format!("{} more overlapping pairs", reported - 16));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{encode_header, encode_record};
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

    fn entry(number: u64, name: &str, start: u64, reserved: u64, len: u64) -> RegionEntry {
        RegionEntry {
            number,
            start,
            reserved,
            len,
            name: name.to_owned(),
        }
    }

    /// Write a metadata file holding one checkpoint with `entries` and a data file of
    /// `data_len` zero bytes.
    fn handmade(dir: &Path, entries: Vec<RegionEntry>, data_len: u64) {
        let mut bytes = vec![0u8; RECORD_ALIGN as usize];
        bytes[..HEADER_LEN].copy_from_slice(&encode_header());
        bytes.extend(encode_record(&Record {
            generation: 4,
            kind: RecordKind::Checkpoint,
            next_number: 10,
            removed: Vec::new(),
            upserts: entries,
        }));
        fs::write(meta(dir), bytes).unwrap();
        let data = fs::File::create(dir.join(DATA_FILE)).unwrap();
        data.set_len(data_len).unwrap();
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
        let mut bytes = fs::read(meta(dir.path())).unwrap();
        bytes[13] ^= 0x40;
        fs::write(meta(dir.path()), &bytes).unwrap();
        let report = check(dir.path()).unwrap();
        assert!(mentions(&report, "header is damaged"), "{report}");
    }

    #[test]
    fn a_foreign_file_is_a_problem() {
        let dir = tempfile::tempdir().unwrap();
        build(dir.path());
        fs::write(meta(dir.path()), b"SQLite format 3\0 and more").unwrap();
        let report = check(dir.path()).unwrap();
        assert!(mentions(&report, "magic"), "{report}");
    }

    #[test]
    fn a_damaged_record_before_valid_ones_is_a_problem() {
        let dir = tempfile::tempdir().unwrap();
        build(dir.path());
        let mut bytes = fs::read(meta(dir.path())).unwrap();
        // Second record: the first delta. Later deltas stay valid but unreachable.
        let at = 2 * RECORD_ALIGN as usize + RECORD_HEAD_LEN + 3;
        bytes[at] ^= 1;
        fs::write(meta(dir.path()), &bytes).unwrap();
        let report = check(dir.path()).unwrap();
        assert!(!report.is_healthy());
        assert!(mentions(&report, "checksum mismatch"), "{report}");
        assert!(mentions(&report, "3 valid record(s) follow"), "{report}");
        assert_eq!(report.records, 1);
    }

    #[test]
    fn a_torn_tail_is_only_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        build(dir.path());
        let mut bytes = fs::read(meta(dir.path())).unwrap();
        let len = bytes.len();
        // Half a record: a valid head whose body never made it to disk.
        let mut torn = encode_record(&Record {
            generation: 99,
            kind: RecordKind::Delta,
            next_number: 3,
            removed: vec![0],
            upserts: Vec::new(),
        });
        torn.truncate(20);
        bytes.extend_from_slice(&torn);
        fs::write(meta(dir.path()), &bytes).unwrap();
        let report = check(dir.path()).unwrap();
        assert!(report.is_healthy(), "{report}");
        assert_eq!(report.warnings.len(), 1, "{report}");
        assert!(
            report.warnings[0].contains(&format!("meta offset {len}")),
            "{report}"
        );
        assert!(report.warnings[0].contains("torn write"), "{report}");
    }

    #[test]
    fn a_generation_gap_before_a_valid_record_is_a_problem() {
        let dir = tempfile::tempdir().unwrap();
        build(dir.path());
        let mut bytes = fs::read(meta(dir.path())).unwrap();
        bytes.extend(encode_record(&Record {
            generation: 1000,
            kind: RecordKind::Delta,
            next_number: 3,
            removed: Vec::new(),
            upserts: Vec::new(),
        }));
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
                entry(0, "a", 0, 8192, 100),
                entry(1, "b", 4096, 4096, 10),
                entry(2, "c", 8193, 0, 0),
                entry(3, "d", 16_384, 4096, 5000),
                entry(4, "e", 20_480, 4096, 4096),
                entry(11, "f", 12_288, 4096, 0),
            ],
            22_000,
        );
        let report = check(dir.path()).unwrap();
        assert!(
            mentions(
                &report,
                r#"regions "a" (0..8192) and "b" (4096..8192) overlap"#
            ),
            "{report}"
        );
        assert!(
            mentions(&report, r#"region "c" starts at 8193"#),
            "{report}"
        );
        assert!(
            mentions(
                &report,
                r#"region "d" holds 5000 bytes but reserves only 4096"#
            ),
            "{report}"
        );
        assert!(
            mentions(
                &report,
                r#"region "e" ends at 24576 but the data file holds 22000"#
            ),
            "{report}"
        );
        assert!(mentions(&report, r#"region "f" has number 11"#), "{report}");
        assert_eq!(report.problems.len(), 5, "{report}");
    }

    #[test]
    fn duplicate_names_are_a_problem() {
        let dir = tempfile::tempdir().unwrap();
        handmade(
            dir.path(),
            vec![
                entry(0, "same", 0, 4096, 1),
                entry(1, "same", 4096, 4096, 1),
            ],
            8192,
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
    fn a_writer_holding_the_database_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let database = Database::open(dir.path()).unwrap();
        assert!(matches!(check(dir.path()), Err(Error::AlreadyOpen { .. })));
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
    fn random_damage_never_panics() {
        let dir = tempfile::tempdir().unwrap();
        build(dir.path());
        let original = fs::read(meta(dir.path())).unwrap();
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
            // Whatever check calls healthy, open must accept.
            if report.is_healthy() {
                Database::open_read_only(dir.path()).unwrap();
            }
        }
    }
}
