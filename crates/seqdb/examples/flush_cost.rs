//! What one flush costs in a database of many regions: after an 8-byte append to one
//! region of 100,000, the flush writes one metadata page and syncs two files, whatever
//! the number of regions.
//!
//! `cargo run --release -p seqdb --example flush_cost [-- REGIONS]`

use std::time::Instant;

use seqdb::{Database, Result};

fn main() -> Result<()> {
    let regions: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().map_err(|source| seqdb::Error::Directory {
        path: std::env::temp_dir(),
        source,
    })?;
    let database = Database::open(dir.path())?;
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
    let meta_len = || std::fs::metadata(&meta).map(|m| m.len()).unwrap_or(0);
    let mut times = Vec::new();
    let mut grown = Vec::new();
    for round in 0..101u64 {
        let before = meta_len();
        database.write_all_to_region((round as usize % regions).into(), &round.to_le_bytes())?;
        let start = Instant::now();
        database.flush()?;
        times.push(start.elapsed().as_secs_f64());
        grown.push(meta_len().saturating_sub(before));
    }
    times.sort_by(f64::total_cmp);
    grown.sort_unstable();
    println!(
        "flush after one 8-byte append: median {:.3} ms, metadata file grew by a median {} bytes ({} at most)",
        times[times.len() / 2] * 1e3,
        grown[grown.len() / 2],
        grown[grown.len() - 1],
    );
    Ok(())
}
