//! What one flush costs in a database of many regions: after an 8-byte append to one
//! region of 100,000, the flush writes one metadata page and makes one device sync,
//! whatever the number of regions.
//!
//! `cargo run --release -p seqdb --example flush_cost [-- REGIONS]`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use seqdb::{OpenOptions, Result, SyncEvent};

fn main() -> Result<()> {
    let regions: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().map_err(|source| seqdb::Error::Directory {
        path: std::env::temp_dir(),
        source,
    })?;
    let syncs = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&syncs);
    let database = OpenOptions::new()
        .sync_observer(Arc::new(move |_: SyncEvent<'_>| {
            counted.fetch_add(1, Ordering::Relaxed);
        }))
        .open(dir.path())?;
    let start = Instant::now();
    for i in 0..regions {
        let (number, _) = database.create_region_if_needed(&format!("region-{i:06}"))?;
        database.write_all_to_region(number.into(), &(i as u64).to_le_bytes())?;
    }
    database.flush()?;
    println!(
        "{regions} regions created and flushed in {:.2} s",
        start.elapsed().as_secs_f64()
    );
    let meta = dir.path().join("meta");
    // Where the log ends: after its last page that is not zeros (the zeros ahead of it
    // are room for the next records).
    let log_end = || {
        let bytes = std::fs::read(&meta).unwrap_or_default();
        let used = bytes
            .chunks(4096)
            .rposition(|page| page.iter().any(|&b| b != 0))
            .map_or(0, |last| last + 1);
        used as u64 * 4096
    };
    let mut times = Vec::new();
    let mut grown = Vec::new();
    let mut synced = Vec::new();
    for round in 0..101u64 {
        let before = log_end();
        let syncs_before = syncs.load(Ordering::Relaxed);
        database.write_all_to_region((round as usize % regions).into(), &round.to_le_bytes())?;
        let start = Instant::now();
        database.flush()?;
        times.push(start.elapsed().as_secs_f64());
        synced.push(syncs.load(Ordering::Relaxed) - syncs_before);
        grown.push(log_end().saturating_sub(before));
    }
    times.sort_by(f64::total_cmp);
    grown.sort_unstable();
    synced.sort_unstable();
    println!(
        "flush after one 8-byte append: median {:.3} ms, the log grew by a median {} bytes \
         ({} at most), {} device sync(s) per flush ({} at most)",
        times[times.len() / 2] * 1e3,
        grown[grown.len() / 2],
        grown[grown.len() - 1],
        synced[synced.len() / 2],
        synced[synced.len() - 1],
    );
    Ok(())
}
