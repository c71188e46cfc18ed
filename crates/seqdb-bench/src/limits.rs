//! The machine's physical limits, measured in the same run as the engines.

use std::fs::{File, OpenOptions};
use std::hint::black_box;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Instant;

use crate::engine::{Outcome, failed};
use crate::metrics::{Metric, Metrics};

/// Bytes in a mebibyte.
const MIB: usize = 1 << 20;

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// Measures memory-copy bandwidth, buffered sequential write bandwidth and the latency of
/// one 4 KiB write followed by `fdatasync`, in the directory `dir`.
pub fn run(scale: f64, dir: &Path) -> Outcome<Metrics> {
    let mut metrics = Metrics::default();

    // Memory copy: 256 MiB between two buffers already faulted in, median of 5.
    let source = vec![0xa5u8; 256 * MIB];
    let mut target = vec![0u8; 256 * MIB];
    let mut samples = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        target.copy_from_slice(black_box(&source));
        black_box(&mut target);
        samples.push(start.elapsed().as_secs_f64());
    }
    drop(target);
    let copy = (256 * MIB) as f64 / median(samples) / 1e9;
    metrics.push("memcpy_gbps", Metric::Value(copy));

    // Buffered sequential write: 1 GiB (scaled) in 1 MiB writes, no sync, median of 3.
    let chunks = ((1024.0 * scale).round() as usize).max(1);
    let path = dir.join("sequential");
    let chunk = &source[..MIB];
    let mut samples = Vec::new();
    for _ in 0..3 {
        let mut file = File::create(&path).map_err(failed("create"))?;
        let start = Instant::now();
        for _ in 0..chunks {
            file.write_all(chunk).map_err(failed("write"))?;
        }
        samples.push(start.elapsed().as_secs_f64());
        drop(file);
        std::fs::remove_file(&path).map_err(failed("remove"))?;
    }
    let bandwidth = (chunks * MIB) as f64 / median(samples) / 1e9;
    metrics.push("write_gbps", Metric::Value(bandwidth));

    // One 4 KiB overwrite + fdatasync, median of 51.
    let path = dir.join("sync");
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(failed("create"))?;
    let page = &source[..4096];
    file.write_all_at(page, 0).map_err(failed("write"))?;
    file.sync_all().map_err(failed("sync_all"))?;
    let mut samples = Vec::new();
    for _ in 0..51 {
        let start = Instant::now();
        file.write_all_at(page, 0).map_err(failed("write"))?;
        file.sync_data().map_err(failed("sync_data"))?;
        samples.push(start.elapsed().as_secs_f64());
    }
    metrics.push("fdatasync_ms", Metric::Value(median(samples) * 1e3));
    Ok(metrics)
}
