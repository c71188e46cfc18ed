//! `seqdb`: inspect, check, map and maintain seqdb databases from the command line.
//!
//! Run `seqdb --help` for the commands. Exit status: 0 on success, 1 when a command
//! fails or `check` finds a problem (`check --repair`: a problem left after repairing),
//! 2 for a usage error.

mod args;
mod data;
mod disk;
mod failure;
mod human;
mod inspect;
mod json;
mod maintain;
mod map;
mod open;
mod progress;
mod svg;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Args, Command};

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.command {
        Command::Info { db } => inspect::info(&db),
        Command::Ls { db, sort, json } => inspect::ls(&db, sort, json),
        Command::Cat {
            db,
            region,
            offset,
            len,
        } => data::cat(&db, &region, offset, len),
        Command::Put { db, region, at } => data::put(&db, &region, at),
        Command::Check { db, repair } => inspect::check(&db, repair),
        Command::Compact { db } => maintain::compact(&db),
        Command::Punch { db } => maintain::punch(&db),
        Command::Map { db, svg } => map::map(&db, &svg),
    };
    match result {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("seqdb: {failure}");
            ExitCode::FAILURE
        }
    }
}
