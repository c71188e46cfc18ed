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
mod maintain;
mod map;
mod open;
mod output;
mod progress;
mod svg;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Args, Command};

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.command {
        Command::Info { db, json } => inspect::info(&db, json),
        Command::Ls { db, sort, json } => inspect::ls(&db, sort, json),
        Command::Cat {
            db,
            region,
            offset,
            len,
        } => data::cat(&db, &region, offset, len),
        Command::Put {
            db,
            region,
            at,
            json,
        } => data::put(&db, &region, at, json),
        Command::Check {
            db,
            data,
            repair,
            json,
        } => inspect::check(&db, data, repair, json),
        Command::Compact { db, json } => maintain::compact(&db, json),
        Command::Punch { db, json } => maintain::punch(&db, json),
        Command::Map { db, svg, json } => map::map(&db, svg.as_deref(), json),
    };
    match result {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("seqdb: {failure}");
            ExitCode::FAILURE
        }
    }
}
