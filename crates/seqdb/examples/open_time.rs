//! How long `open` takes as the number of regions grows: for each count, a database of
//! that many regions of 100 bytes (named like the W5 benchmark's) is built once, then
//! opened read-write several times; the median is printed, and the time per region.
//!
//! `cargo run --release -p seqdb --example open_time [-- COUNT...]` (default: 10,000,
//! 100,000, 300,000 and 1,000,000 regions). With `SEQDB_OPEN_TIME_DIR` set, the
//! databases are kept in `<dir>/<count>` and reused by later runs, so a profiler can
//! watch the opens alone; `SEQDB_OPEN_TIME_REPEAT` sets the number of opens (7). On
//! Linux the process's peak resident set so far is printed too: with one count and
//! databases already built, that is what the opens took (each open is checked through
//! `Database::stats`, which lists no names).

use std::path::PathBuf;
use std::time::Instant;

use seqdb::{Database, Result};

fn main() -> Result<()> {
    let mut counts: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    if counts.is_empty() {
        counts = vec![10_000, 100_000, 300_000, 1_000_000];
    }
    let keep = std::env::var_os("SEQDB_OPEN_TIME_DIR").map(PathBuf::from);
    let repeat: usize = std::env::var("SEQDB_OPEN_TIME_REPEAT")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(7);
    for count in counts {
        let temp = tempfile::tempdir().map_err(|source| seqdb::Error::Directory {
            path: std::env::temp_dir(),
            source,
        })?;
        let path = match &keep {
            Some(dir) => dir.join(count.to_string()),
            None => temp.path().to_owned(),
        };
        if !path.join("meta").exists() {
            let database = Database::open(&path)?;
            for i in 0..count {
                let (number, _) = database.create_region_if_needed(&format!("r{i:06}"))?;
                database.write_all_to_region(number.into(), &[i as u8; 100])?;
            }
            database.flush()?;
        }
        let mut times = Vec::new();
        for _ in 0..repeat.max(1) {
            let start = Instant::now();
            let database = Database::open(&path)?;
            times.push(start.elapsed().as_secs_f64());
            assert_eq!(database.stats()?.regions, count as u64);
        }
        times.sort_by(f64::total_cmp);
        let (fastest, median) = (times[0], times[times.len() / 2]);
        println!(
            "{count:>9} regions: open {:>9.2} ms median, {:>9.2} ms fastest of {}; {:.0} ns \
             per region (fastest){}",
            median * 1e3,
            fastest * 1e3,
            times.len(),
            fastest * 1e9 / count as f64,
            peak_resident().map_or(String::new(), |kb| format!(
                "; peak resident {} MB",
                kb / 1000
            ))
        );
    }
    Ok(())
}

/// The process's peak resident set so far, in kB (Linux: `VmHWM`).
fn peak_resident() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
