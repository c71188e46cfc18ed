//! What readers cost, and what a write inside a live reader's view costs.
//!
//! 1. Making and dropping a reader of an unchanged region, with one 8-byte read each
//!    (W4's "a reader per read", on its own for profiling), by number and by name.
//! 2. An 8-byte overwrite at offset 0 of regions of several sizes, without a reader and
//!    while a reader of the region lives: the region is then copied first
//!    (copy-on-write), which is what an overwrite costs instead of waiting for the reader.
//! 3. A truncation to half, likewise.
//!
//! `cargo run --release -p seqdb --example reader_cost [-- READS]`

use std::time::Instant;

use seqdb::{Database, Identifier, Result};

fn main() -> Result<()> {
    let reads: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5_000_000);
    let dir = tempfile::tempdir().map_err(|source| seqdb::Error::Directory {
        path: std::env::temp_dir(),
        source,
    })?;
    let database = Database::open(dir.path())?;
    reader_per_read(&database, reads)?;
    for size in [64 << 10, 1 << 20, 16 << 20, 64 << 20] {
        write_inside_a_view(&database, size)?;
    }
    Ok(())
}

/// 80 MB of little-endian `u64`s, then `reads` readers, one 8-byte read each.
fn reader_per_read(database: &Database, reads: u64) -> Result<()> {
    let values = 10_000_000u64;
    let (number, _) = database.create_region_if_needed("values")?;
    let chunk: Vec<u8> = (0..8192u64).flat_map(|v| v.to_le_bytes()).collect();
    for _ in 0..values / 8192 {
        database.write_all_to_region(number.into(), &chunk)?;
    }
    database.flush()?;
    let mut state = 0x5eed_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % (values / 8192 * 8192)
    };
    for (what, by_name) in [("by number", false), ("by name", true)] {
        let count = if by_name { reads / 10 } else { reads };
        let start = Instant::now();
        let mut sum = 0u64;
        for _ in 0..count {
            let id = if by_name {
                Identifier::from("values")
            } else {
                Identifier::from(number)
            };
            let reader = database.create_region_reader(id)?;
            let bytes = reader.read(next() * 8, 8);
            sum = sum.wrapping_add(u64::from_le_bytes(bytes.try_into().unwrap_or_default()));
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "a reader per 8-byte read, {what}: {:.1} M/s ({:.0} ns each; checksum {})",
            count as f64 / secs / 1e6,
            secs / count as f64 * 1e9,
            sum % 1000
        );
    }
    Ok(())
}

/// Median time of `f` over a few runs, in milliseconds.
fn median_ms(mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    let mut samples = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        f()?;
        samples.push(start.elapsed().as_secs_f64() * 1e3);
    }
    samples.sort_by(f64::total_cmp);
    Ok(samples[samples.len() / 2])
}

/// An overwrite and a truncation of a region of `size` bytes, with and without a reader.
fn write_inside_a_view(database: &Database, size: usize) -> Result<()> {
    let name = format!("cow-{size}");
    let (number, _) = database.create_region_if_needed(&name)?;
    let id = || Identifier::from(number);
    database.write_all_to_region(id(), &vec![1u8; size])?;
    database.flush()?;
    let plain = median_ms(|| database.write_all_to_region_at(id(), b"abcdefgh", 0))?;
    let copied = median_ms(|| {
        let reader = database.create_region_reader(id())?;
        database.write_all_to_region_at(id(), b"abcdefgh", 0)?;
        drop(reader);
        Ok(())
    })?;
    let half = size as u64 / 2;
    let truncate = |keep_reader: bool| -> Result<f64> {
        let mut samples = Vec::new();
        for _ in 0..5 {
            database.truncate_region(id(), 0)?;
            database.write_all_to_region(id(), &vec![2u8; size])?;
            let reader = keep_reader
                .then(|| database.create_region_reader(id()))
                .transpose()?;
            let start = Instant::now();
            database.truncate_region(id(), half)?;
            samples.push(start.elapsed().as_secs_f64() * 1e3);
            drop(reader);
        }
        samples.sort_by(f64::total_cmp);
        Ok(samples[samples.len() / 2])
    };
    let cut = truncate(false)?;
    let cut_copied = truncate(true)?;
    database.flush_then_punch()?;
    println!(
        "{:>6} KiB region: overwrite 8 B {plain:.3} ms, with a live reader {copied:.3} ms; \
         truncate to half {cut:.3} ms, with a live reader {cut_copied:.3} ms",
        size >> 10
    );
    Ok(())
}
