//! Commands that give space back: `compact` and `punch`.

use std::path::Path;
use std::process::ExitCode;

use seqdb::Database;

use crate::failure::Failure;
use crate::progress::Progress;
use crate::{disk, human, open};

/// The two numbers a user watches: how long the file is and what it takes on disk.
#[derive(Debug, Clone, Copy)]
struct Space {
    file_len: u64,
    allocated: u64,
}

fn space(database: &Database) -> Result<Space, Failure> {
    Ok(Space {
        file_len: database.file_len()?,
        allocated: disk::allocated(database.path())?.total(),
    })
}

fn report(before: Space, after: Space) {
    let line = |label: &str, space: Space| {
        println!(
            "{label:<8}file length {}, allocated on disk {}",
            human::bytes_exact(space.file_len),
            human::bytes_exact(space.allocated)
        );
    };
    line("before", before);
    line("after", after);
    let change = |from: u64, to: u64| {
        if to <= from {
            format!("{} less", human::bytes(from - to))
        } else {
            format!("{} more", human::bytes(to - from))
        }
    };
    println!(
        "{:<8}file length {}, allocated {}",
        "change",
        change(before.file_len, after.file_len),
        change(before.allocated, after.allocated)
    );
}

/// `seqdb compact DB`.
pub fn compact(db: &Path) -> Result<ExitCode, Failure> {
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
    report(before, after);
    Ok(ExitCode::SUCCESS)
}

/// `seqdb punch DB`.
pub fn punch(db: &Path) -> Result<ExitCode, Failure> {
    let database = open::read_write(db, false)?;
    let before = space(&database)?;
    let mut progress = Progress::new(1);
    progress.step("punching holes where no region lives", || {
        database.punch_holes()
    })?;
    let after = space(&database)?;
    drop(progress);
    report(before, after);
    Ok(ExitCode::SUCCESS)
}
