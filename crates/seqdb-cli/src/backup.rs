//! `seqdb backup`: an online, incremental copy of a database into a directory.

use std::path::Path;
use std::process::ExitCode;

use serde::Serialize;

use crate::failure::Failure;
use crate::output::{print, print_json};
use crate::progress::ByteProgress;
use crate::{human, open};

/// What `backup --json` prints.
#[derive(Debug, Serialize)]
pub struct BackupReport {
    /// The database directory, as given.
    pub database: String,
    /// The backup's directory, as given.
    pub backup: String,
    /// The generation of the commit the backup holds.
    pub generation: u64,
    /// The generation the backup held before, when it was a complete backup of this
    /// database (`null` for a first backup).
    pub previous_generation: Option<u64>,
    /// Regions in the backup.
    pub regions: u64,
    /// Sum of the regions' lengths.
    pub live_bytes: u64,
    /// Bytes written into the backup.
    pub bytes_copied: u64,
    /// Bytes of the backup read to find what it held already.
    pub bytes_compared: u64,
    /// How long the backup took, in seconds.
    pub seconds: f64,
}

/// `seqdb backup DB DEST [--json]`.
pub fn backup(db: &Path, dest: &Path, as_json: bool) -> Result<ExitCode, Failure> {
    let database = open::read_only(db)?;
    let mut progress = ByteProgress::new("copying");
    let stats =
        database.backup_with_progress(dest, &mut |done, total| progress.update(done, total))?;
    drop(progress);
    let report = BackupReport {
        database: db.display().to_string(),
        backup: dest.display().to_string(),
        generation: stats.generation,
        previous_generation: stats.previous_generation,
        regions: stats.regions,
        live_bytes: stats.live_bytes,
        bytes_copied: stats.bytes_copied,
        bytes_compared: stats.bytes_compared,
        seconds: stats.duration.as_secs_f64(),
    };
    if as_json {
        return print_json(&report);
    }
    let kind = match report.previous_generation {
        Some(previous) => format!("incremental, from generation {previous}"),
        None => "full".to_owned(),
    };
    print(&format!(
        "backed up {} to {}: generation {} ({kind})\n\
         regions {}, live {}\n\
         copied {}, compared {}, in {:.2} s\n",
        report.database,
        report.backup,
        report.generation,
        report.regions,
        human::bytes_exact(report.live_bytes),
        human::bytes_exact(report.bytes_copied),
        human::bytes_exact(report.bytes_compared),
        report.seconds
    ))
}
