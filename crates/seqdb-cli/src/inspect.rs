//! Commands that look without touching: `info`, `ls` and `check`.

use std::path::Path;
use std::process::ExitCode;

use seqdb::{CheckReport, Region};
use serde::Serialize;

use crate::args::SortKey;
use crate::failure::Failure;
use crate::output::{print, print_json};
use crate::progress::ByteProgress;
use crate::{disk, human, open};

/// What `info --json` prints.
#[derive(Debug, Serialize)]
pub struct Info {
    /// The database directory, as given.
    pub database: String,
    /// The on-disk format version this build reads and writes.
    pub format_version: u32,
    /// Generation of the last commit.
    pub generation: u64,
    /// Length of the data file.
    pub file_len: u64,
    /// Bytes the file system has allocated for the database's files.
    pub allocated: AllocatedBytes,
    /// Sum of the regions' lengths.
    pub live_bytes: u64,
    /// Sum of the regions' reservations.
    pub reserved_bytes: u64,
    /// Bytes freed since the last commit, reusable after the next one.
    pub pending_bytes: u64,
    /// Number of regions.
    pub regions: u64,
    /// Number of free holes between regions.
    pub holes: u64,
    /// Bytes in those holes.
    pub hole_bytes: u64,
    /// Space regions moved away from that this handle keeps because readers of it still
    /// view it (a fresh handle, as the command's, has none: other processes' readers are
    /// not visible).
    pub retired_bytes: u64,
    /// File length divided by live bytes (1 for an empty database).
    pub space_amplification: f64,
    /// Other read-only handles open on the database, in any process.
    pub readers: Vec<ReaderRow>,
    /// What the read-write handle last reported of the space it keeps for them.
    pub kept_for_readers: KeptRow,
}

/// One read-only handle, as `info --json` prints it.
#[derive(Debug, Serialize)]
pub struct ReaderRow {
    /// Its process.
    pub pid: u32,
    /// The generation (commit) it views; 0 while it is opening.
    pub generation: u64,
}

/// The writer's report of the space kept for readers.
#[derive(Debug, Serialize)]
pub struct KeptRow {
    /// The writer's process id (0 when no writer has reported).
    pub writer_pid: u32,
    /// Bytes freed by commits that a live reader may still view.
    pub bytes: u64,
    /// The oldest generation a reader viewed when the writer last looked.
    pub oldest_generation: u64,
}

/// Allocated bytes on disk, per file.
#[derive(Debug, Serialize)]
pub struct AllocatedBytes {
    /// Both files together.
    pub total: u64,
    /// The data file.
    pub data: u64,
    /// The metadata file.
    pub meta: u64,
}

/// One region, as `ls --json` prints it.
#[derive(Debug, Serialize)]
pub struct RegionRow<'a> {
    /// The region's name.
    pub name: &'a str,
    /// The region's number.
    pub number: usize,
    /// Its length in bytes.
    pub len: u64,
    /// Bytes reserved for it in the data file.
    pub reserved: u64,
    /// Offset of its first byte in the data file.
    pub start: u64,
}

impl<'a> From<&'a Region> for RegionRow<'a> {
    fn from(region: &'a Region) -> Self {
        RegionRow {
            name: region.name(),
            number: region.number(),
            len: region.len(),
            reserved: region.reserved(),
            start: region.start(),
        }
    }
}

/// What `check --json` prints.
#[derive(Debug, Serialize)]
pub struct Check<'a> {
    /// The database directory, as given.
    pub database: String,
    /// Whether no problem was found (warnings allowed).
    pub healthy: bool,
    /// Valid commit records in the metadata log that opening would apply.
    pub records: u64,
    /// Generation of the newest commit opening would recover.
    pub generation: u64,
    /// Regions in the recovered state.
    pub regions: u64,
    /// Sum of their lengths.
    pub live_bytes: u64,
    /// Length of the data file (0 when it is missing).
    pub data_len: u64,
    /// Length of the metadata file (0 when it is missing).
    pub meta_len: u64,
    /// One sentence per problem: damage, naming the file, offset and region involved.
    pub problems: &'a [String],
    /// One sentence per harmless leftover of a crash, which the next read-write open
    /// cleans up.
    pub warnings: &'a [String],
    /// Whether every region's bytes were compared with their checksums (`--data`).
    pub data_checked: bool,
    /// The ranges whose bytes do not match their checksums.
    pub damaged: Vec<Damaged>,
}

/// A damaged range of a region, as `check --data --json` prints it.
#[derive(Debug, Serialize)]
pub struct Damaged {
    /// The region's name.
    pub region: String,
    /// The region's number.
    pub number: usize,
    /// The first damaged byte, as an offset in the region.
    pub offset: u64,
    /// How many bytes from `offset` on are damaged (whole 64 KiB chunks).
    pub len: u64,
    /// Where `offset` is in the data file.
    pub file_offset: u64,
}

impl<'a> Check<'a> {
    fn new(db: &Path, report: &'a CheckReport) -> Self {
        Check {
            database: db.display().to_string(),
            healthy: report.is_healthy(),
            records: report.records,
            generation: report.generation,
            regions: report.regions,
            live_bytes: report.live_bytes,
            data_len: report.data_len,
            meta_len: report.meta_len,
            problems: &report.problems,
            warnings: &report.warnings,
            data_checked: report.data_checked,
            damaged: report
                .damaged
                .iter()
                .map(|d| Damaged {
                    region: d.region.clone(),
                    number: d.number,
                    offset: d.offset,
                    len: d.len,
                    file_offset: d.file_offset,
                })
                .collect(),
        }
    }
}

/// `seqdb info DB [--json]`.
pub fn info(db: &Path, as_json: bool) -> Result<ExitCode, Failure> {
    let database = open::read_only(db)?;
    let stats = database.stats()?;
    let allocated = disk::allocated(db)?;
    let table = database.reader_table()?;
    let kept = table.kept;
    if as_json {
        return print_json(&Info {
            database: db.display().to_string(),
            format_version: seqdb::FORMAT_VERSION,
            generation: stats.generation,
            file_len: stats.file_len,
            allocated: AllocatedBytes {
                total: allocated.total(),
                data: allocated.data,
                meta: allocated.meta,
            },
            live_bytes: stats.live_bytes,
            reserved_bytes: stats.reserved_bytes,
            pending_bytes: stats.pending_bytes,
            regions: stats.regions,
            holes: stats.holes,
            hole_bytes: stats.hole_bytes,
            retired_bytes: stats.retired_bytes,
            space_amplification: stats.space_amplification(),
            readers: table
                .readers
                .iter()
                .map(|r| ReaderRow {
                    pid: r.pid,
                    generation: r.generation,
                })
                .collect(),
            kept_for_readers: KeptRow {
                writer_pid: kept.writer_pid,
                bytes: kept.bytes,
                oldest_generation: kept.oldest_generation,
            },
        });
    }
    let rows = [
        ("database", db.display().to_string()),
        ("format", format!("version {}", seqdb::FORMAT_VERSION)),
        ("generation", format!("{} (last commit)", stats.generation)),
        ("file length", human::bytes_exact(stats.file_len)),
        (
            "allocated",
            format!(
                "{} on disk (data file {}, metadata file {})",
                human::bytes_exact(allocated.total()),
                human::bytes(allocated.data),
                human::bytes(allocated.meta)
            ),
        ),
        ("live", human::bytes_exact(stats.live_bytes)),
        ("reserved", human::bytes_exact(stats.reserved_bytes)),
        ("regions", stats.regions.to_string()),
        (
            "holes",
            format!("{} holding {}", stats.holes, human::bytes(stats.hole_bytes)),
        ),
        (
            "retired",
            format!(
                "{} (space regions left, kept while readers of this handle view it)",
                human::bytes_exact(stats.retired_bytes)
            ),
        ),
        ("readers", readers_line(&table.readers)),
        (
            "kept",
            if kept.bytes == 0 {
                "0 B (space the writer keeps for readers of older generations)".to_owned()
            } else {
                format!(
                    "{} (kept by writer pid {} for readers of generation {} and later)",
                    human::bytes_exact(kept.bytes),
                    kept.writer_pid,
                    kept.oldest_generation
                )
            },
        ),
        (
            "amplification",
            format!(
                "{:.2} (file length / live bytes)",
                stats.space_amplification()
            ),
        ),
    ];
    let mut out = String::new();
    for (key, value) in rows {
        out.push_str(&format!("{key:<14}{value}\n"));
    }
    print(&out)
}

/// The other read-only handles, as one line: `none`, or `pid 12 at generation 7, ...`.
fn readers_line(readers: &[seqdb::ReaderProcess]) -> String {
    if readers.is_empty() {
        return "none besides this command".to_owned();
    }
    readers
        .iter()
        .map(|r| format!("pid {} at generation {}", r.pid, r.generation))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `seqdb ls DB [--sort KEY] [--json]`.
pub fn ls(db: &Path, sort: Option<SortKey>, as_json: bool) -> Result<ExitCode, Failure> {
    let database = open::read_only(db)?;
    let mut regions = database.regions();
    match sort {
        None => regions.sort_by_key(Region::number),
        Some(SortKey::Name) => regions.sort_by(|a, b| a.name().cmp(b.name())),
        Some(SortKey::Size) => {
            regions.sort_by(|a, b| b.len().cmp(&a.len()).then(a.number().cmp(&b.number())))
        }
        Some(SortKey::Start) => regions.sort_by_key(Region::start),
    }
    if as_json {
        let rows: Vec<RegionRow<'_>> = regions.iter().map(RegionRow::from).collect();
        return print_json(&rows);
    }
    print(&ls_table(&regions))
}

fn ls_table(regions: &[Region]) -> String {
    let header = ["NAME", "NUMBER", "LENGTH", "RESERVED", "START"].map(str::to_owned);
    let rows: Vec<[String; 5]> = regions
        .iter()
        .map(|r| {
            [
                // Control characters in a name would break the table; show them escaped.
                r.name().escape_debug().to_string(),
                r.number().to_string(),
                r.len().to_string(),
                r.reserved().to_string(),
                r.start().to_string(),
            ]
        })
        .collect();
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let name = &row[0];
        out.push_str(&format!("{name:<w$}", w = widths[0]));
        for (cell, width) in row[1..].iter().zip(&widths[1..]) {
            out.push_str(&format!("  {cell:>width$}"));
        }
        out.push('\n');
    }
    out
}

/// `seqdb check DB [--repair] [--json]`: exit status 1 when a problem is found (with
/// `--repair`, when one is left after repairing).
pub fn check(db: &Path, data: bool, repair: bool, as_json: bool) -> Result<ExitCode, Failure> {
    let report = checked(db, data)?;
    if !repair {
        if as_json {
            print_json(&Check::new(db, &report))?;
        } else {
            print(&format!("{report}\n"))?;
        }
        return Ok(status(&report));
    }
    if !as_json {
        print(&format!("{report}\n"))?;
    }
    let recovery = if report.is_healthy() && report.warnings.is_empty() {
        None
    } else {
        let database = open::recovering(db)?;
        let recovery = database.recovery_report().cloned();
        drop(database);
        Some(recovery)
    };
    let after = match &recovery {
        None => None,
        Some(_) => Some(checked(db, data)?),
    };
    if as_json {
        print_json(&Repaired {
            before: Check::new(db, &report),
            repaired: recovery.is_some(),
            recovery: recovery
                .as_ref()
                .and_then(|r| r.as_ref().map(Recovery::new)),
            after: after.as_ref().map(|after| Check::new(db, after)),
        })?;
    } else {
        match &recovery {
            None => print("repair: nothing to repair\n")?,
            Some(Some(recovery)) => print(&format!("repair: {recovery}\n"))?,
            Some(None) => print(
                "repair: no damage to recover past; opening for writing cleaned up the \
                 leftovers\n",
            )?,
        };
        if let Some(after) = &after {
            print(&format!("after repair: {after}\n"))?;
        }
    }
    Ok(status(after.as_ref().unwrap_or(&report)))
}

/// What `check --repair --json` prints.
#[derive(Debug, Serialize)]
pub struct Repaired<'a> {
    /// The check before repairing.
    pub before: Check<'a>,
    /// Whether the database was opened to repair it (there was something to repair).
    pub repaired: bool,
    /// What recovering past damage did, when there was damage.
    pub recovery: Option<Recovery>,
    /// The check after repairing, when the database was repaired.
    pub after: Option<Check<'a>>,
}

/// What recovering past damage did (`seqdb::RecoveryReport`).
#[derive(Debug, Serialize)]
pub struct Recovery {
    /// The damage found, one sentence each, naming the file and offset.
    pub damage: Vec<String>,
    /// The generation recovered.
    pub generation: u64,
    /// Where the metadata log was cut, if it was.
    pub cut_at: Option<u64>,
    /// Bytes dropped with the cut.
    pub cut_bytes: u64,
    /// Valid commits dropped with the cut.
    pub dropped: Vec<Dropped>,
    /// The data file header's newest commit before it was rewritten, if it was.
    pub restamped_from: Option<u64>,
}

/// A valid commit record dropped by recovery.
#[derive(Debug, Serialize)]
pub struct Dropped {
    /// Its offset in the metadata file.
    pub offset: u64,
    /// Its generation.
    pub generation: u64,
}

impl Recovery {
    fn new(report: &seqdb::RecoveryReport) -> Self {
        Recovery {
            damage: report.damage.clone(),
            generation: report.generation,
            cut_at: report.cut_at,
            cut_bytes: report.cut_bytes,
            dropped: report
                .dropped
                .iter()
                .map(|&(offset, generation)| Dropped { offset, generation })
                .collect(),
            restamped_from: report.restamped_from,
        }
    }
}

fn checked(db: &Path, data: bool) -> Result<CheckReport, Failure> {
    let report = if data {
        let mut progress = ByteProgress::new("checking the data");
        seqdb::check_data(db, |done, total| progress.update(done, total))
    } else {
        seqdb::check(db)
    };
    report.map_err(|error| match error {
        seqdb::Error::AlreadyOpen { .. } => Failure::new(format!(
            "database {} is open for writing by another process or handle; the check reads \
             the files as a reader and cannot run beside a writer, so close the writer and \
             try again",
            db.display()
        )),
        error => Failure::from(error),
    })
}

fn status(report: &CheckReport) -> ExitCode {
    if report.is_healthy() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
