//! Commands that look without touching: `info`, `ls` and `check`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use seqdb::Region;

use crate::args::SortKey;
use crate::failure::{Context, Failure};
use crate::{disk, human, json, open};

/// `seqdb info DB`.
pub fn info(db: &Path) -> Result<ExitCode, Failure> {
    let database = open::read_only(db)?;
    let stats = database.stats()?;
    let allocated = disk::allocated(db)?;
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

/// `seqdb ls DB`.
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
    let out = if as_json {
        ls_json(&regions)
    } else {
        ls_table(&regions)
    };
    print(&out)
}

fn ls_json(regions: &[Region]) -> String {
    let objects: Vec<String> = regions
        .iter()
        .map(|region| {
            json::object(&[
                ("name", json::string(region.name())),
                ("number", region.number().to_string()),
                ("len", region.len().to_string()),
                ("reserved", region.reserved().to_string()),
                ("start", region.start().to_string()),
            ])
        })
        .collect();
    if objects.is_empty() {
        "[]\n".to_owned()
    } else {
        format!("[\n  {}\n]\n", objects.join(",\n  "))
    }
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

/// `seqdb check DB`: exit status 1 when a problem is found.
pub fn check(db: &Path) -> Result<ExitCode, Failure> {
    let report = seqdb::check(db).map_err(|error| match error {
        seqdb::Error::AlreadyOpen { .. } => Failure::new(format!(
            "database {} is open for writing by another process or handle; the check reads \
             the files as a reader and cannot run beside a writer, so close the writer and \
             try again",
            db.display()
        )),
        error => Failure::from(error),
    })?;
    print(&format!("{report}\n"))?;
    Ok(if report.is_healthy() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Write `text` to standard output; a closed pipe (`| head`) is not an error.
pub fn print(text: &str) -> Result<ExitCode, Failure> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        result => result
            .map(|()| ExitCode::SUCCESS)
            .context(|| "cannot write to standard output".to_owned()),
    }
}
