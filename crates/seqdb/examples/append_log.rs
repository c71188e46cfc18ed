//! An append-only log that survives `kill -9`.
//!
//! The example runs itself twice. A child process appends records to a region as fast as
//! it can and flushes after every batch, telling the parent on standard output each time
//! a flush has returned. After a number of flushes the parent kills the child with
//! `SIGKILL` (no destructor, no last flush), reopens the database, and verifies that:
//!
//! * every record up to the last flush the child reported is there, byte for byte, in
//!   order;
//! * the log ends exactly at a flush boundary: what was appended after the last flush is
//!   not visible, and no half record is;
//! * [`seqdb::check`] finds the files healthy.
//!
//! Run it with `cargo run -p seqdb --example append_log`, optionally followed by
//! `-- DIR` to keep the database in DIR (a database already there is replaced) instead of a temporary directory.

use std::error::Error;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use seqdb::Database;

/// Records per flush.
const BATCH: u64 = 1000;
/// The parent kills the child after this many flushes were reported.
const FLUSHES_BEFORE_KILL: u64 = 25;
/// A bound on the child's work, should the parent never kill it.
const MAX_RECORDS: u64 = 50_000_000;
/// Bytes before a record's payload: payload length (u32) and sequence number (u64).
const HEAD: usize = 12;

type Result<T, E = Box<dyn Error>> = std::result::Result<T, E>;

/// The payload of record `seq`: its length varies, its bytes follow from `seq`.
fn payload(seq: u64) -> Vec<u8> {
    let len = 8 + (seq.wrapping_mul(2_654_435_761) % 120) as usize;
    (0..len)
        .map(|i| (seq as u8).wrapping_mul(31).wrapping_add(i as u8))
        .collect()
}

/// One record as it is stored: length, sequence number, payload.
fn encode(seq: u64) -> Vec<u8> {
    let payload = payload(seq);
    let mut record = Vec::with_capacity(HEAD + payload.len());
    record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    record.extend_from_slice(&seq.to_le_bytes());
    record.extend_from_slice(&payload);
    record
}

/// The child: append forever, flush every batch, report each flush.
fn child(dir: &Path) -> Result<()> {
    let database = Database::open(dir)?;
    let (log, _) = database.create_region_if_needed("log")?;
    let mut stdout = std::io::stdout().lock();
    for seq in 0..MAX_RECORDS {
        database.write_all_to_region(log.into(), &encode(seq))?;
        if (seq + 1) % BATCH == 0 {
            database.flush()?;
            // Only now is the batch durable; say so.
            writeln!(stdout, "flushed {}", seq + 1)?;
            stdout.flush()?;
        }
    }
    Ok(())
}

/// Walk the log and verify every record; returns how many there are.
fn verify(bytes: &[u8]) -> Result<u64> {
    let mut at = 0usize;
    let mut seq = 0u64;
    while at < bytes.len() {
        let head = bytes
            .get(at..at + HEAD)
            .ok_or_else(|| format!("a cut record head at byte {at}"))?;
        let len = u32::from_le_bytes(head[..4].try_into()?) as usize;
        let stored_seq = u64::from_le_bytes(head[4..].try_into()?);
        if stored_seq != seq {
            return Err(format!("record {seq} at byte {at} carries number {stored_seq}").into());
        }
        let body = bytes
            .get(at + HEAD..at + HEAD + len)
            .ok_or_else(|| format!("record {seq} at byte {at} is cut short"))?;
        if body != payload(seq).as_slice() {
            return Err(format!("record {seq} at byte {at} has a damaged payload").into());
        }
        at += HEAD + len;
        seq += 1;
    }
    Ok(seq)
}

fn parent(dir: &Path) -> Result<()> {
    let mut child = Command::new(std::env::current_exe()?)
        .arg("--child")
        .arg(dir)
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or("the child has no standard output")?;
    let mut lines = BufReader::new(stdout).lines();
    let mut acknowledged = 0u64;
    let mut reports = 0u64;
    while reports < FLUSHES_BEFORE_KILL {
        let Some(line) = lines.next() else {
            return Err(format!("the child stopped early: {:?}", child.wait()?).into());
        };
        acknowledged = parse_report(&line?)?;
        reports += 1;
    }
    // SIGKILL on Unix: the child gets no chance to flush or clean up.
    child.kill()?;
    let status = child.wait()?;
    // Flushes that completed between the last report read and the kill.
    for line in lines {
        acknowledged = parse_report(&line?)?;
    }
    println!(
        "child appended {BATCH}-record batches, flushing after each; killed ({status}) after \
         it reported {acknowledged} flushed records"
    );

    let database = Database::open(dir)?;
    let reader = database.create_region_reader("log".into())?;
    let recovered = verify(reader.read_all())?;
    println!(
        "reopened: {recovered} records in {} bytes, every one intact: numbers 0..{} in \
         order, lengths and payloads as written",
        reader.len(),
        recovered.saturating_sub(1)
    );
    if recovered < acknowledged {
        return Err(format!("only {recovered} of {acknowledged} flushed records survived").into());
    }
    if recovered % BATCH != 0 {
        return Err(format!("{recovered} records is not a flush boundary").into());
    }
    println!(
        "the log ends at a flush boundary ({} batches): the appends the child made after its \
         last flush are not visible, and no record is cut",
        recovered / BATCH
    );
    drop(reader);
    drop(database);

    let report = seqdb::check(dir)?;
    if !report.is_healthy() {
        return Err(format!("check found damage:\n{report}").into());
    }
    println!("check: {report}");
    Ok(())
}

/// Remove an earlier run's database at `dir`, refusing to touch anything else.
fn fresh(dir: &Path) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    if !(dir.join("data").is_file() && dir.join("meta").is_file()) {
        return Err(format!("{} exists and is not a seqdb database", dir.display()).into());
    }
    std::fs::remove_dir_all(dir)?;
    Ok(())
}

fn parse_report(line: &str) -> Result<u64> {
    line.strip_prefix("flushed ")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("unexpected line from the child: {line:?}").into())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.as_slice() {
        [flag, dir] if flag == "--child" => child(Path::new(dir)),
        [dir] => fresh(&PathBuf::from(dir)).and_then(|()| parent(Path::new(dir))),
        [] => tempfile::tempdir()
            .map_err(Into::into)
            .and_then(|tmp| parent(&tmp.path().join("log_db"))),
        _ => Err("usage: append_log [DIR]".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("append_log: {e}");
            ExitCode::FAILURE
        }
    }
}
