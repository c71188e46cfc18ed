//! Commands that give space back: `compact` and `punch`.

use std::path::Path;
use std::process::ExitCode;

use seqdb::Database;
use serde::Serialize;

use crate::failure::Failure;
use crate::output::{print, print_json};
use crate::progress::Progress;
use crate::{disk, human, open};

/// The two numbers a user watches: how long the file is and what it takes on disk.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Space {
    /// Length of the data file.
    pub file_len: u64,
    /// Bytes the file system has allocated for the data and metadata files.
    pub allocated_bytes: u64,
}

/// What `compact --json` and `punch --json` print.
#[derive(Debug, Serialize)]
pub struct SpaceChange {
    /// The database directory, as given.
    pub database: String,
    /// The space before the command.
    pub before: Space,
    /// The space after it.
    pub after: Space,
}

fn space(database: &Database) -> Result<Space, Failure> {
    Ok(Space {
        file_len: database.file_len()?,
        allocated_bytes: disk::allocated(database.path())?.total(),
    })
}

fn report(db: &Path, before: Space, after: Space, as_json: bool) -> Result<ExitCode, Failure> {
    if as_json {
        return print_json(&SpaceChange {
            database: db.display().to_string(),
            before,
            after,
        });
    }
    let line = |label: &str, space: Space| {
        format!(
            "{label:<8}file length {}, allocated on disk {}\n",
            human::bytes_exact(space.file_len),
            human::bytes_exact(space.allocated_bytes)
        )
    };
    let mut out = line("before", before) + &line("after", after);
    let change = |from: u64, to: u64| {
        if to <= from {
            format!("{} less", human::bytes(from - to))
        } else {
            format!("{} more", human::bytes(to - from))
        }
    };
    out.push_str(&format!(
        "{:<8}file length {}, allocated {}\n",
        "change",
        change(before.file_len, after.file_len),
        change(before.allocated_bytes, after.allocated_bytes)
    ));
    print(&out)
}

/// `seqdb compact DB [--json]`.
pub fn compact(db: &Path, as_json: bool) -> Result<ExitCode, Failure> {
    let database = open::read_write(db, false)?;
    let before = space(&database)?;
    let mut progress = Progress::new(2);
    progress.step("moving regions together and committing", || {
        database.compact()
    })?;
    progress.step("giving free space back to the file system", || {
        database.punch_holes()
    })?;
    let after = space(&database)?;
    drop(progress);
    report(db, before, after, as_json)
}

/// `seqdb punch DB [--json]`.
pub fn punch(db: &Path, as_json: bool) -> Result<ExitCode, Failure> {
    let database = open::read_write(db, false)?;
    let before = space(&database)?;
    let mut progress = Progress::new(1);
    progress.step("punching holes where no region lives", || {
        database.punch_holes()
    })?;
    let after = space(&database)?;
    drop(progress);
    report(db, before, after, as_json)
}
