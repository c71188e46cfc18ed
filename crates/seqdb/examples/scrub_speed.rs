//! How fast the data scrub reads from the page cache: a database of 1 GiB (or the MiB
//! count given as the first argument) in 16 regions, closed, then `seqdb::check_data`
//! five times; prints the bytes checked per second of each run and the median.
//!
//! `cargo run --release -p seqdb --example scrub_speed [MIB]`

use std::time::Instant;

fn main() -> seqdb::Result<()> {
    let mib: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1024);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let database = seqdb::Database::open(dir.path())?;
    let chunk: Vec<u8> = (0..1 << 20).map(|i| (i * 31 % 251) as u8).collect();
    for i in 0..mib {
        let name = format!("r{}", i % 16);
        database.create_region_if_needed(&name)?;
        database.write_all_to_region(name.as_str().into(), &chunk)?;
    }
    database.close()?;
    let mut rates = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let report = seqdb::check_data(dir.path(), |_, _| {})?;
        let seconds = start.elapsed().as_secs_f64();
        assert!(report.is_healthy() && report.data_checked, "{report}");
        let rate = report.live_bytes as f64 / seconds / 1e9;
        println!(
            "scrubbed {} bytes in {seconds:.3} s: {rate:.2} GB/s",
            report.live_bytes
        );
        rates.push(rate);
    }
    rates.sort_by(f64::total_cmp);
    println!("median {:.2} GB/s", rates[rates.len() / 2]);
    Ok(())
}
