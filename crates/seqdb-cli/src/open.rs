//! Opening a database for a command, with errors that say what to do.

use std::path::Path;

use seqdb::{Database, OpenOptions};

use crate::failure::Failure;

/// Fail unless `db` looks like a database directory.
fn ensure_database(db: &Path) -> Result<(), Failure> {
    let problem = if !db.exists() {
        "the directory does not exist"
    } else if !db.is_dir() {
        "it is not a directory"
    } else if !db.join("data").is_file() {
        "it has no `data` file"
    } else {
        return Ok(());
    };
    Err(Failure::new(format!(
        "no database at {}: {problem} (a database is a directory holding `data` and `meta` \
         files)",
        db.display()
    )))
}

/// The failure for an error of `open`, pointing damaged databases to `seqdb check`.
fn opening(db: &Path, error: seqdb::Error) -> Failure {
    let damaged = matches!(
        error,
        seqdb::Error::Corrupt { .. }
            | seqdb::Error::ForeignFile { .. }
            | seqdb::Error::MissingMetadata { .. }
    );
    let failure = Failure::from(error);
    if damaged {
        Failure::new(format!(
            "{failure}; `seqdb check {}` lists every problem",
            db.display()
        ))
    } else {
        failure
    }
}

/// Open `db` for reading, sharing it with other readers.
pub fn read_only(db: &Path) -> Result<Database, Failure> {
    ensure_database(db)?;
    Database::open_read_only(db).map_err(|error| match error {
        seqdb::Error::AlreadyOpen { .. } => Failure::new(format!(
            "database {} is open for writing by another process or handle; on this system \
             readers may share a database with each other but not with a writer, so close \
             the writer and try again",
            db.display()
        )),
        error => opening(db, error),
    })
}

/// Open `db` for reading and writing, alone. With `create`, a missing database is
/// created; without it, `db` must already be a database.
pub fn read_write(db: &Path, create: bool) -> Result<Database, Failure> {
    if !create {
        ensure_database(db)?;
    }
    Database::open(db).map_err(|error| match error {
        seqdb::Error::AlreadyOpen { .. } => Failure::new(format!(
            "database {} is already open by another process or handle; this command needs \
             it to itself, so close the other handle and try again",
            db.display()
        )),
        error => opening(db, error),
    })
}

/// Open `db` for reading and writing, alone, recovering past damage.
pub fn recovering(db: &Path) -> Result<Database, Failure> {
    ensure_database(db)?;
    OpenOptions::new()
        .recover(true)
        .open(db)
        .map_err(|error| match error {
            seqdb::Error::AlreadyOpen { .. } => Failure::new(format!(
                "database {} is already open by another process or handle; repairing needs \
                 it to itself, so close the other handle and try again",
                db.display()
            )),
            error => Failure::new(format!("repair failed: {}", crate::failure::chain(&error))),
        })
}
