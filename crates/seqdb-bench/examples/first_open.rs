//! The first open of a database in a new process, seqdb against the original: W5's
//! database (10,000 regions of 100 bytes, named `r000000` on) is built once per engine,
//! then each engine's database is opened by a new process in turns (A B A B), and the
//! median and spread of each are printed with the ratio of the medians.
//!
//! `cargo run --release -p seqdb-bench --example first_open [-- ROUNDS [REGIONS]]`
//! (default: 21 rounds of 10,000 regions). W5 times opens in the process that built the
//! database, whose allocator already holds the memory an open takes; here every open
//! starts in a process that holds nothing, as a command-line tool's does.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [mode, engine, dir] = args.as_slice()
        && mode == "--open"
    {
        let (seconds, regions) = open(engine, Path::new(dir));
        println!("{seconds} {regions}");
        return;
    }
    let rounds: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(21);
    let count: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let temp = tempfile::tempdir().expect("a temporary directory");
    for engine in ["seqdb", "original"] {
        build(engine, &temp.path().join(engine), count);
    }
    let me = std::env::current_exe().expect("the path of this program");
    let mut times: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..rounds {
        for (at, engine) in ["seqdb", "original"].into_iter().enumerate() {
            let out = Command::new(&me)
                .arg("--open")
                .arg(engine)
                .arg(temp.path().join(engine))
                .output()
                .expect("an open in a new process");
            let text = String::from_utf8_lossy(&out.stdout);
            let mut words = text.split_whitespace();
            let seconds: f64 = words
                .next()
                .and_then(|w| w.parse().ok())
                .unwrap_or(f64::NAN);
            let regions: usize = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
            assert_eq!(
                regions, count,
                "{engine} reopened {regions} regions: {text}"
            );
            times[at].push(seconds * 1e3);
        }
    }
    let mut medians = [0.0; 2];
    for (at, engine) in ["seqdb", "original"].into_iter().enumerate() {
        let samples = &mut times[at];
        samples.sort_by(f64::total_cmp);
        medians[at] = samples[samples.len() / 2];
        println!(
            "{engine:>8}: first open of {count} regions {:.2} ms median ({:.2}–{:.2}) over {rounds} processes",
            medians[at],
            samples[0],
            samples[samples.len() - 1]
        );
    }
    println!("seqdb / original: {:.2}", medians[0] / medians[1]);
}

/// A database of `count` regions of 100 bytes at `dir`.
fn build(engine: &str, dir: &Path, count: usize) {
    let name = |i: usize| format!("r{i:06}");
    match engine {
        "seqdb" => {
            let db = seqdb::Database::open(dir).expect("seqdb opens");
            for i in 0..count {
                let (number, _) = db.create_region_if_needed(&name(i)).expect("a region");
                db.write_all_to_region(number.into(), &[i as u8; 100])
                    .expect("an append");
            }
            db.flush().expect("a flush");
        }
        _ => {
            let db = seqdb_orig::Database::open(dir).expect("the original opens");
            for i in 0..count {
                let (number, _) = db.create_region_if_needed(&name(i)).expect("a region");
                db.write_all_to_region(seqdb_orig::Identifier::from(number), &[i as u8; 100])
                    .expect("an append");
            }
            db.flush().expect("a flush");
        }
    }
}

/// Open the database at `dir`: the seconds the open took, and the regions it found
/// (counted after the open was timed, only to check it).
fn open(engine: &str, dir: &Path) -> (f64, usize) {
    match engine {
        "seqdb" => {
            let start = Instant::now();
            let db = seqdb::Database::open(dir).expect("seqdb opens");
            let seconds = start.elapsed().as_secs_f64();
            (seconds, db.stats().expect("stats").regions as usize)
        }
        _ => {
            let start = Instant::now();
            let db = seqdb_orig::Database::open(dir).expect("the original opens");
            let seconds = start.elapsed().as_secs_f64();
            let count = db.regions().index_to_region().iter().flatten().count();
            (seconds, count)
        }
    }
}
