//! What an append that moves its region costs: the region's bytes are copied to a new
//! place in the data file while the appending thread waits.
//!
//! For each size, two regions are filled in turn in 1 MiB appends, so that each one's
//! reservation ends where the other's begins; then one more append to the first makes it
//! move. The time of that append is printed (the median of `ROUNDS` databases), and the
//! rate at which it copied.
//!
//! `cargo run --release -p seqdb --example move_cost [-- MIB...]` (default: 4, 16, 64).

use std::time::{Duration, Instant};

use seqdb::{Database, Result};

const ROUNDS: usize = 5;

fn main() -> Result<()> {
    let mut sizes: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    if sizes.is_empty() {
        sizes = vec![4, 16, 64];
    }
    let block = vec![0x5au8; 1 << 20];
    for mib in sizes {
        let mut times = Vec::new();
        let mut moved_bytes = 0;
        for _ in 0..ROUNDS {
            let dir = tempfile::tempdir().map_err(|source| seqdb::Error::Directory {
                path: std::env::temp_dir(),
                source,
            })?;
            let database = Database::open(dir.path())?;
            let (a, _) = database.create_region_if_needed("a")?;
            let (b, _) = database.create_region_if_needed("b")?;
            for _ in 0..mib {
                database.write_all_to_region(a.into(), &block)?;
                database.write_all_to_region(b.into(), &block)?;
            }
            // Fill `a` up to its reservation, so that the next append must grow it.
            let region = database.regions().into_iter().find(|r| r.number() == a);
            let region = region.expect("region a");
            let room = (region.reserved() - region.len()) as usize;
            let filler = vec![0x33u8; room];
            database.write_all_to_region(a.into(), &filler)?;
            let start_before = region.start();
            let started = Instant::now();
            database.write_all_to_region(a.into(), &block)?;
            let took = started.elapsed();
            let after = database.regions().into_iter().find(|r| r.number() == a);
            let after = after.expect("region a");
            if after.start() != start_before {
                times.push(took);
                moved_bytes = after.len() - block.len() as u64;
            }
        }
        times.sort();
        match times.get(times.len() / 2) {
            Some(median) => println!(
                "{mib:>5} MiB per region: the append that moved {} bytes took {:.2} ms \
                 (median of {}), {:.2} GB/s",
                moved_bytes,
                ms(*median),
                times.len(),
                moved_bytes as f64 / median.as_secs_f64() / 1e9
            ),
            None => println!("{mib:>5} MiB per region: the region never moved"),
        }
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
