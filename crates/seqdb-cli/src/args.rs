//! The command line, as clap parses it.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Inspect, check, map and maintain seqdb databases.
///
/// DB is a database directory. REGION is a region's name, or `#N` for the region
/// numbered N. Read-only commands (info, ls, cat, check, map) share the database with
/// other readers but fail while a writer has it open; put, compact and punch need it to
/// themselves. Every command that prints a report takes `--json` to print it as one
/// JSON value instead; errors stay one line of text on standard error.
#[derive(Debug, Parser)]
#[command(name = "seqdb", version, about, long_about)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the format version, space usage and last commit of a database.
    Info {
        /// The database directory.
        db: PathBuf,
        /// Print a JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List the regions: name, number, length, reservation and start offset.
    Ls {
        /// The database directory.
        db: PathBuf,
        /// Order of the lines (by default, by region number).
        #[arg(long, value_enum)]
        sort: Option<SortKey>,
        /// Print a JSON array of objects instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Write a region's bytes to standard output.
    Cat {
        /// The database directory.
        db: PathBuf,
        /// The region: a name, or `#N` for a number.
        region: String,
        /// First byte to write.
        #[arg(long, default_value_t = 0)]
        offset: u64,
        /// Number of bytes to write (by default, up to the end of the region).
        #[arg(long)]
        len: Option<u64>,
    },
    /// Append standard input to a region (creating the database and region if
    /// needed), then flush.
    Put {
        /// The database directory.
        db: PathBuf,
        /// The region: a name, or `#N` for an existing region's number.
        region: String,
        /// Write at this offset instead of appending, overwriting what is there and
        /// extending the region past its end if needed (at most the region's length).
        #[arg(long)]
        at: Option<u64>,
        /// Print what was written as a JSON object instead of a sentence.
        #[arg(long)]
        json: bool,
    },
    /// Validate the metadata log, its checksums, the data file's header and the region
    /// layout. Exits with 1 and one line per problem, naming the file and offset, when
    /// the database is damaged.
    Check {
        /// The database directory.
        db: PathBuf,
        /// Also read every region's bytes back and compare them with the checksums of
        /// their 64 KiB chunks (the data scrub); each damaged range is a problem that
        /// names the region and the bytes.
        #[arg(long)]
        data: bool,
        /// Recover past the damage found: keep the newest commit that is still whole,
        /// cutting the metadata log where it breaks, and say what was cut. Exits with 0
        /// when the database is healthy afterwards.
        #[arg(long)]
        repair: bool,
        /// Print a JSON object (counts, problems, warnings, and with `--repair` what
        /// was done and the check after it) instead of text; the exit status is the
        /// same.
        #[arg(long)]
        json: bool,
    },
    /// Move regions together, trim reservations, shrink the file and give free space
    /// back to the file system.
    Compact {
        /// The database directory.
        db: PathBuf,
        /// Print the space before and after as a JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Give space that no region uses back to the file system (hole punching).
    Punch {
        /// The database directory.
        db: PathBuf,
        /// Print the space before and after as a JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Draw the data file as an SVG picture (`--svg`), or list its stretches as JSON
    /// (`--json`): each region's bytes, its unused reservation, and the holes.
    Map {
        /// The database directory.
        db: PathBuf,
        /// Where to write the SVG file.
        #[arg(long, value_name = "OUT.svg", required_unless_present = "json")]
        svg: Option<PathBuf>,
        /// Print the totals and every stretch of the file, in file order, as a JSON
        /// object.
        #[arg(long)]
        json: bool,
    },
}

/// Orders for `ls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SortKey {
    /// By name, in byte order.
    Name,
    /// By length, largest first.
    Size,
    /// By start offset in the data file.
    Start,
}
