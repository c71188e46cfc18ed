//! What the files of a database say about its health: one judgement that `open` acts
//! on and `check` reports, so the two never disagree.
//!
//! [`judge`] compares how the metadata log ends with the newest commit the data file's
//! header records. A crash can only tear the last record, and can leave the log at most
//! one commit behind the data file; anything else is damage, with the file, the offset
//! and the way `OpenOptions::recover` would get past it. [`validate`] checks the
//! replayed regions against each other and the data file, listing every violation.

use std::fmt::Write as _;

use seqdb_layout::{Layout, LayoutError, Placement, placement_violations};

use crate::data_header::{DATA_HEADER_LEN, DataHeader};
use crate::database::DATA_FILE;
use crate::log_read::RecordEnd;
use crate::meta_log::META_FILE;
use crate::name_index::NameIndex;
use crate::redo::Coverage;
use crate::replay::{LogScan, Placed};

/// One thing found wrong (or worth a word) in a database's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finding {
    /// The file's name in the database directory.
    pub file: &'static str,
    /// Where in that file.
    pub offset: u64,
    /// What is wrong, in a sentence.
    pub reason: String,
    /// How recovery gets past it (damage only).
    pub repair: Repair,
}

/// How `OpenOptions::recover` gets past a damage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Repair {
    /// Nothing to repair (a warning).
    None,
    /// Keep the log up to its end, dropping what follows.
    CutLog,
    /// Keep the log as it is and record its newest commit in the data file's header.
    Restamp,
    /// Keep the log only up to this generation, the data file's newest commit.
    RollBack { to: u64 },
}

/// The findings about the log and the data file's header.
#[derive(Debug, Default)]
pub(crate) struct Judgement {
    /// Damage: `open` refuses the database unless asked to recover.
    pub damage: Vec<Finding>,
    /// Harmless leftovers of a crash, which a read-write open cleans up.
    pub warnings: Vec<Finding>,
}

fn finding(file: &'static str, offset: u64, reason: String, repair: Repair) -> Finding {
    Finding {
        file,
        offset,
        reason,
        repair,
    }
}

/// Judge a replayed log against the data file's header.
pub(crate) fn judge(scan: &LogScan, header: &DataHeader) -> Judgement {
    let mut judgement = Judgement::default();
    let end = &scan.end;
    let log_generation = scan.state.generation;
    let stamp = header.generation;
    // The newest commit the data file was synced for: its stamp is durable, and only
    // the other slot is written until the next data sync.
    let synced = scan.state.synced_generation;
    let damage = &mut judgement.damage;
    if end.reason.is_checksummed() && !matches!(end.reason, RecordEnd::Beyond { .. }) {
        damage.push(finding(
            META_FILE,
            end.offset,
            format!(
                "the log ends in a record whose checksum matches ({}); a crash cannot \
                 leave such a record, so the file is damaged",
                end.reason
            ),
            Repair::CutLog,
        ));
    }
    let following: Vec<String> = scan
        .after
        .records
        .iter()
        // Only commits newer than the log's newest are evidence of lost commits: bytes a
        // torn record carried for a region may hold a copy of an older record.
        .filter(|found| found.offset > end.offset && found.generation > log_generation)
        .map(|found| {
            format!(
                "offset {} generation {} ({})",
                found.offset, found.generation, found.kind
            )
        })
        .collect();
    if !following.is_empty() && !matches!(end.reason, RecordEnd::Beyond { .. }) {
        let mut listed = following
            .iter()
            .take(8)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if following.len() > 8 {
            let _ = write!(listed, " and {} more", following.len() - 8);
        }
        damage.push(finding(
            META_FILE,
            end.offset,
            format!(
                "the log breaks here ({}) but {} valid record(s) follow ({listed}); a crash \
                 only tears the last record, so the commits after the break were lost to \
                 damage",
                end.reason,
                following.len()
            ),
            Repair::CutLog,
        ));
    }
    if let Some(offset) = scan.after.unexamined {
        damage.push(finding(
            META_FILE,
            offset,
            "the bytes after the end of the log hold more record heads than could be \
             examined; a crash leaves at most one torn record"
                .to_owned(),
            Repair::CutLog,
        ));
    }
    if stamp > log_generation.saturating_add(1) {
        damage.push(finding(
            META_FILE,
            end.offset,
            format!(
                "the log ends at generation {log_generation}, but the data file's header \
                 records commit {stamp}: {} commit(s) are missing, more than the one a \
                 crash can lose, so the metadata file was cut short or damaged",
                stamp - log_generation
            ),
            Repair::Restamp,
        ));
    } else if stamp < synced {
        match header.damaged_slot {
            Some(slot) => damage.push(finding(
                DATA_FILE,
                slot,
                format!(
                    "the data file's header slot at offset {slot} is damaged, and the other \
                     records commit {stamp}, older than commit {synced}, which the log says \
                     the data file was synced for"
                ),
                Repair::Restamp,
            )),
            None => damage.push(finding(
                DATA_FILE,
                header.offset_of(stamp),
                format!(
                    "the data file's header records commit {stamp}, but the metadata log \
                     says it was synced for commit {synced}: the data file is older than its \
                     metadata"
                ),
                Repair::RollBack { to: stamp },
            )),
        }
    }
    if !judgement.damage.is_empty() {
        return judgement;
    }
    let warnings = &mut judgement.warnings;
    // Zeros are where the next record goes (the log is written into zeros laid down
    // ahead of it).
    if !matches!(end.reason, RecordEnd::EndOfFile | RecordEnd::Zeros) {
        warnings.push(finding(
            META_FILE,
            end.offset,
            format!(
                "{} bytes after the last valid record are not a valid record ({}); this is \
                 a torn write from a crash, and the next read-write open discards it",
                scan.file_len.saturating_sub(end.offset),
                end.reason
            ),
            Repair::None,
        ));
    }
    if let Some(slot) = header.damaged_slot {
        warnings.push(finding(
            DATA_FILE,
            slot,
            "one of the data file's two header slots is damaged (a torn write); the next \
             commits rewrite it"
                .to_owned(),
            Repair::None,
        ));
    }
    if stamp == log_generation + 1 {
        warnings.push(finding(
            DATA_FILE,
            header.offset_of(stamp),
            format!(
                "commit {stamp} reached the data file but not the metadata log (a crash or a \
                 failed flush between the two); the database holds commit {log_generation}"
            ),
            Repair::None,
        ));
    }
    judgement
}

/// A replayed state that breaks a rule, and the offset of the record responsible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Violation {
    /// Offset in the metadata file of the record that wrote the region concerned.
    pub offset: u64,
    /// What is wrong.
    pub reason: String,
}

/// A state that passed [`validate`]: its names and its rebuilt allocator.
#[derive(Debug)]
pub(crate) struct Validated {
    pub by_name: NameIndex,
    pub layout: Layout,
}

/// Check the regions of a replayed state (ordered by number) against each other and
/// against a data file of `data_len` bytes: numbers below `next_number`, names unique,
/// every region's bytes inside the data file, and the placements valid for the
/// allocator (aligned, not overlapping, after the data file's header). Lists every
/// violation; with none, returns what `open` builds its table from.
pub(crate) fn validate(
    entries: &[Placed],
    next_number: u64,
    data: &Coverage,
) -> Result<Validated, Vec<Violation>> {
    let data_len = data.data_len();
    let mut violations = Vec::new();
    let (by_name, duplicates) = NameIndex::build(
        entries
            .iter()
            .map(|placed| (placed.entry.number, placed.entry.name.as_bytes())),
    );
    let placed = |number: u64| {
        entries
            .binary_search_by_key(&number, |placed| placed.entry.number)
            .ok()
            .map(|at| &entries[at])
    };
    for (number, first) in duplicates {
        if let Some(Placed { entry }) = placed(number) {
            violations.push(Violation {
                offset: entry.origin,
                reason: format!(
                    "two regions are named {:?} (numbers {first} and {number})",
                    entry.name
                ),
            });
        }
    }
    for Placed { entry } in entries {
        let (origin, sums) = (&entry.origin, &entry.crcs);
        let name = &entry.name;
        if sums.len() as u64 != crate::sums::chunks(entry.len) {
            violations.push(Violation {
                offset: *origin,
                reason: format!(
                    "region {name:?} holds {} bytes, {} chunk(s), but has {} chunk checksums",
                    entry.len,
                    crate::sums::chunks(entry.len),
                    sums.len()
                ),
            });
        }
        if entry.number >= next_number {
            violations.push(Violation {
                offset: *origin,
                reason: format!(
                    "region {name:?} has number {} but numbers end at {next_number}",
                    entry.number
                ),
            });
        }
        let inside = entry
            .start
            .checked_add(entry.len)
            .is_some_and(|end| data.holds(entry.start, end));
        if entry.len > 0 && !inside {
            violations.push(Violation {
                offset: *origin,
                reason: format!(
                    "region {name:?} ends at {} + {} but the data file holds {data_len} bytes",
                    entry.start, entry.len
                ),
            });
        }
    }
    let placements = || {
        entries.iter().map(|placed| {
            let entry = &placed.entry;
            (
                entry.number,
                Placement {
                    start: entry.start,
                    reserved: entry.reserved,
                    len: entry.len,
                },
            )
        })
    };
    if violations.is_empty()
        && let Ok(layout) = Layout::from_placements_above(DATA_HEADER_LEN, placements(), u64::MAX)
    {
        return Ok(Validated { by_name, layout });
    }
    for error in placement_violations(DATA_HEADER_LEN, placements(), u64::MAX) {
        let key = violation_key(&error);
        let (offset, name) = match key.and_then(placed) {
            Some(placed) => (placed.origin(), format!("region {:?}", placed.entry.name)),
            None => (0, "the regions".to_owned()),
        };
        violations.push(Violation {
            offset,
            reason: format!("{name}: {error}"),
        });
    }
    Err(violations)
}

/// The region a placement violation is about (the later one, for an overlap, which the
/// record being replayed placed last).
fn violation_key(error: &LayoutError) -> Option<u64> {
    match *error {
        LayoutError::Overlap { second, .. } => Some(second),
        _ => error.key(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::RegionEntry;

    fn placed(number: u64, name: &str, start: u64, reserved: u64, len: u64) -> Placed {
        Placed {
            entry: RegionEntry {
                number,
                start,
                reserved,
                len,
                name: name.into(),
                sums_from: 0,
                crcs: crate::sums::zeros(len),
                origin: 4096 * (number + 1),
            },
        }
    }

    #[test]
    fn a_sound_state_validates() {
        let entries = [
            placed(0, "a", 4096, 4096, 10),
            placed(2, "b", 3 * 4096, 8192, 5000),
        ];
        let validated = validate(&entries, 3, &Coverage::file(5 * 4096)).unwrap();
        assert_eq!(validated.by_name.get("b"), Some(2));
        assert_eq!(validated.layout.holes().count(), 1);
    }

    #[test]
    fn every_violation_is_listed_with_its_record() {
        let entries = [
            placed(0, "header", 0, 4096, 1),
            placed(1, "a", 4096, 8192, 100),
            placed(2, "b", 8192, 4096, 10),
            placed(3, "c", 16_385, 4096, 0),
            placed(4, "a", 20_480, 4096, 4096),
            placed(11, "f", 40_960, 4096, 1),
        ];
        let violations = validate(&entries, 10, &Coverage::file(22_000)).unwrap_err();
        let text: Vec<String> = violations
            .iter()
            .map(|v| format!("{}: {}", v.offset, v.reason))
            .collect();
        let has = |needle: &str| text.iter().any(|t| t.contains(needle));
        assert!(has("20480: two regions are named \"a\""), "{text:#?}");
        assert!(has("\"a\" ends at 20480 + 4096"), "{text:#?}");
        assert!(has("49152: region \"f\" has number 11"), "{text:#?}");
        assert!(
            has("4096: region \"header\": region 0: starts at 0"),
            "{text:#?}"
        );
        assert!(
            has("16384: region \"c\": region 3: start 16385"),
            "{text:#?}"
        );
        assert!(
            has("12288: region \"b\": regions 1 and 2 overlap"),
            "{text:#?}"
        );
    }
}
