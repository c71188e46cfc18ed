//! What reader processes cost the writer's flush: two databases side by side, one alone
//! and one with four reader processes that open it read-only over and over (a new handle
//! sees the newest commit), read, and hold each handle a few milliseconds. Flushes take
//! turns between the two, so a busy disk slows both alike.
//!
//! Two kinds of flush: after an 8-byte append (nothing freed: the writer does not look
//! at the readers file), and after replacing an 8 KiB region (space freed: the writer
//! reads the readers file and keeps the space while a reader may view it).
//!
//! ```sh
//! cargo run --release -p seqdb --example flush_beside_readers [-- ROUNDS]
//! ```
//!
//! `SEQDB_READER_HOLD_MS` sets how long a reader holds each handle before it opens the
//! next (3 ms by default: about a thousand opens a second from four readers).
//! `SEQDB_READERS_ELSEWHERE=1` attaches the readers to a third database instead: the
//! same load on the machine, and no reader for either measured writer.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use seqdb::Database;

const READERS: usize = 4;

fn main() -> seqdb::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("reader") {
        reader(Path::new(&args[2]));
        return Ok(());
    }
    let rounds: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(300);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let alone = prepare(&dir.path().join("alone"))?;
    let beside_path = dir.path().join("beside");
    let beside = prepare(&beside_path)?;
    // The control: the same readers, attached to a third database, load the machine
    // alike but the writers of the two measured ones see none.
    let control = std::env::var_os("SEQDB_READERS_ELSEWHERE").is_some();
    let elsewhere = dir.path().join("elsewhere");
    let _elsewhere = prepare(&elsewhere)?;
    let attach_to = if control { &elsewhere } else { &beside_path };
    let mut children: Vec<Child> = (0..READERS)
        .map(|_| {
            Command::new(std::env::current_exe().expect("this program"))
                .arg("reader")
                .arg(attach_to)
                .stdout(Stdio::null())
                .spawn()
                .expect("a reader process")
        })
        .collect();
    // Let the readers attach.
    thread::sleep(Duration::from_millis(500));
    let attached = beside.reader_table()?.readers.len();

    let mut samples = [[Vec::new(), Vec::new()], [Vec::new(), Vec::new()]];
    for round in 0..rounds {
        for (which, db) in [&alone, &beside].into_iter().enumerate() {
            db.write_all_to_region("log".into(), &(round as u64).to_le_bytes())?;
            let start = Instant::now();
            db.flush()?;
            samples[which][0].push(start.elapsed());

            db.remove_region("churn".into())?;
            db.create_region_if_needed("churn")?;
            db.write_all_to_region("churn".into(), &[round as u8; 8192])?;
            let start = Instant::now();
            db.flush()?;
            samples[which][1].push(start.elapsed());
        }
    }
    let kept = beside.reader_table()?.kept;
    for child in &mut children {
        let _ = child.kill();
        let _ = child.wait();
    }

    println!(
        "{rounds} rounds, {attached} reader processes attached to the second database \
         (it kept {} bytes for them at the end)",
        kept.bytes
    );
    println!(
        "flush after            alone (median / p90)     4 readers (median / p90)   ratio of medians"
    );
    for (kind, label) in ["an 8-byte append", "replacing 8 KiB"].iter().enumerate() {
        let (a, b) = (
            summary(&mut samples[0][kind]),
            summary(&mut samples[1][kind]),
        );
        println!(
            "{label:<22} {:>8.3} / {:>6.3} ms        {:>8.3} / {:>6.3} ms        {:.2}",
            a.0,
            a.1,
            b.0,
            b.1,
            b.0 / a.0
        );
    }
    Ok(())
}

fn prepare(path: &Path) -> seqdb::Result<Database> {
    let db = Database::open(path)?;
    db.create_region_if_needed("log")?;
    db.create_region_if_needed("churn")?;
    db.write_all_to_region("churn".into(), &[0; 8192])?;
    db.flush()?;
    Ok(db)
}

/// Median and 90th percentile, in milliseconds.
fn summary(samples: &mut [Duration]) -> (f64, f64) {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e3;
    (at(0.5), at(0.9))
}

/// Open, read, hold a moment, let go; again, for at most ten minutes.
fn reader(path: &Path) {
    let began = Instant::now();
    while began.elapsed() < Duration::from_secs(600) {
        let Ok(db) = Database::open_read_only(path) else {
            thread::sleep(Duration::from_millis(10));
            continue;
        };
        if let Ok(log) = db.create_region_reader("log".into()) {
            std::hint::black_box(log.read_all().last());
        }
        thread::sleep(Duration::from_millis(hold_ms()));
    }
}

/// How long a reader holds each handle: `SEQDB_READER_HOLD_MS`, 3 ms by default.
fn hold_ms() -> u64 {
    std::env::var("SEQDB_READER_HOLD_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}
