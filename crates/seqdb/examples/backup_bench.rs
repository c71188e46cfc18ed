//! What a backup costs: its speed against `cp --sparse=always`, what an incremental one
//! copies, and how long appends stall while a backup runs.
//!
//! ```text
//! backup_bench make SRC MIB       a database of MIB mebibytes of live data in 64 regions,
//!                                 with holes (removed regions, punched)
//! backup_bench backup SRC DEST    one backup of SRC (opened read-only) into DEST
//! backup_bench stall SRC DEST     appends of 4 KiB to 64 regions from one thread at about
//!                                 100 MB/s, without and then during full backups into
//!                                 DEST (and plain flushes, in between): the append
//!                                 calls' 99th and 99.9th percentiles, the longest, and
//!                                 how many took over 10 ms (with BACKUP_BENCH_DETAIL
//!                                 set, when each of those began)
//! backup_bench incremental SRC DEST
//!                                 change 1% of SRC, back up into DEST, print the bytes
//!                                 copied
//! ```
//!
//! The speed comparison runs both commands in turn with `farm-bench` (docs/BENCHMARKS.md).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use seqdb::{Database, Result};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    match arg(0) {
        "make" => make(Path::new(arg(1)), arg(2).parse().unwrap_or(1024)),
        "backup" => {
            let stats = Database::open_read_only(Path::new(arg(1)))?.backup(Path::new(arg(2)))?;
            println!(
                "copied {} bytes of {} in {:.3} s",
                stats.bytes_copied,
                stats.live_bytes,
                stats.duration.as_secs_f64()
            );
            Ok(())
        }
        "stall" => stall(Path::new(arg(1)), Path::new(arg(2))),
        "incremental" => incremental(Path::new(arg(1)), Path::new(arg(2))),
        _ => {
            eprintln!("usage: backup_bench make|backup|stall|incremental ...");
            std::process::exit(2);
        }
    }
}

/// Bytes that do not compress or repeat: a file system cannot shortcut them.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

fn make(src: &Path, mib: u64) -> Result<()> {
    let database = Database::open(src)?;
    let live = mib << 20;
    // 64 regions that stay, of sizes from 1/128 to 3/128 of the total, and as many that
    // are removed afterwards, so that the file has holes.
    let block = noise(1 << 20, 1);
    for i in 0..128u64 {
        let (number, _) = database.create_region_if_needed(&format!("r{i}"))?;
        let len = live / 64 * (1 + i % 3) / 2;
        let mut written = 0;
        while written < len {
            let n = (len - written).min(block.len() as u64) as usize;
            // Each region's bytes differ from the others'.
            let mut bytes = block[..n].to_vec();
            bytes[..8].copy_from_slice(&(i * 1_000_003 + written).to_le_bytes());
            database.write_all_to_region(number.into(), &bytes)?;
            written += n as u64;
        }
    }
    database.flush()?;
    for i in (1..128u64).step_by(2) {
        database.remove_region(format!("r{i}").as_str().into())?;
    }
    database.flush_then_punch()?;
    let stats = database.stats()?;
    println!(
        "{} regions, {} live bytes, file {} bytes",
        database.regions().len(),
        stats.live_bytes,
        database.file_len()?
    );
    Ok(())
}

fn incremental(src: &Path, dest: &Path) -> Result<()> {
    let database = Database::open(src)?;
    let first = database.backup(dest)?;
    // Appends of 1% of the live bytes, spread over eight regions.
    let regions = database.regions();
    let each = (first.live_bytes / 100 / 8) as usize;
    for (k, region) in regions.iter().take(8).enumerate() {
        database.write_all_to_region(region.number().into(), &noise(each, 77 + k as u64))?;
    }
    let stats = database.backup(dest)?;
    println!(
        "after {} bytes appended: copied {} bytes ({:.2}% of {}), compared {} bytes, {:.3} s",
        8 * each,
        stats.bytes_copied,
        100.0 * stats.bytes_copied as f64 / stats.live_bytes as f64,
        stats.live_bytes,
        stats.bytes_compared,
        stats.duration.as_secs_f64()
    );
    Ok(())
}

/// An append call that took long: when it began, and how long it took.
type Slow = (Instant, Duration);

/// What one thread's appends took.
struct Appends {
    /// Every call's duration, sorted.
    took: Vec<Duration>,
    /// Every call longer than 0.5 ms: when it began and how long it took.
    slow: Vec<Slow>,
}

impl Appends {
    fn longest(&self) -> Duration {
        self.took.last().copied().unwrap_or_default()
    }

    /// The call at quantile `q` (0 to 1).
    fn quantile(&self, q: f64) -> Duration {
        if self.took.is_empty() {
            return Duration::ZERO;
        }
        self.took[((self.took.len() - 1) as f64 * q) as usize]
    }

    /// The distribution, in milliseconds: 99th and 99.9th percentiles, the longest, and
    /// how many calls took more than 10 ms.
    fn summary(&self) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        format!(
            "{} appends: p99 {:.3} ms, p99.9 {:.3} ms, longest {:.3} ms, {} over 10 ms",
            self.took.len(),
            ms(self.quantile(0.99)),
            ms(self.quantile(0.999)),
            ms(self.longest()),
            self.took
                .iter()
                .filter(|t| **t > Duration::from_millis(10))
                .count()
        )
    }
}

/// Appends of 4 KiB from one thread, in runs of 16 to each of 64 regions in turn, paced
/// to about 100 MB/s, for `duration` or until `stop`.
fn appends(
    database: &Database,
    numbers: &[usize],
    stop: &AtomicBool,
    duration: Duration,
) -> Result<Appends> {
    let record = noise(4096, 9);
    let started = Instant::now();
    let mut took = Vec::new();
    let mut slow = Vec::new();
    while !stop.load(Ordering::Relaxed) && started.elapsed() < duration {
        let count = took.len() as u64;
        let number = numbers[(count / 16) as usize % numbers.len()];
        let before = Instant::now();
        database.write_all_to_region(number.into(), &record)?;
        let call = before.elapsed();
        took.push(call);
        if call > Duration::from_micros(500) {
            slow.push((before, call));
        }
        // 100 MB/s: 16 appends of 4 KiB every 0.65 ms.
        let due = started + Duration::from_micros((count + 1) * 40);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
    }
    took.sort();
    Ok(Appends { took, slow })
}

fn stall(src: &Path, dest: &Path) -> Result<()> {
    let database = Database::open(src)?;
    let numbers = (0..64)
        .map(|i| Ok(database.create_region_if_needed(&format!("appends{i}"))?.0))
        .collect::<Result<Vec<usize>>>()?;
    let quiet = appends(
        &database,
        &numbers,
        &AtomicBool::new(false),
        Duration::from_secs(2),
    )?;
    database.flush()?;
    println!("without a backup, 2 s: {}", quiet.summary());
    for round in 0..6 {
        let _ = std::fs::remove_dir_all(dest);
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (database, stop, numbers) = (database.clone(), stop.clone(), numbers.clone());
            thread::spawn(move || appends(&database, &numbers, &stop, Duration::from_secs(600)))
        };
        thread::sleep(Duration::from_millis(200));
        // Odd rounds: plain flushes every 100 ms for as long, the yardstick for what a
        // commit's sync costs appends whatever else runs.
        let started = Instant::now();
        let mut copying = None;
        let what = if round % 2 == 0 {
            let stats = database.backup_with_progress(dest, &mut |_, _| {
                copying.get_or_insert(Instant::now());
            })?;
            format!(
                "backup {}: {} bytes copied (committed in {:.3} s)",
                round / 2,
                stats.bytes_copied,
                copying.map_or(0.0, |c| (c - started).as_secs_f64())
            )
        } else {
            while started.elapsed() < Duration::from_millis(1200) {
                database.flush()?;
                thread::sleep(Duration::from_millis(100));
            }
            format!("flushes {}", round / 2)
        };
        let took = started.elapsed();
        thread::sleep(Duration::from_millis(200));
        stop.store(true, Ordering::Relaxed);
        let appends = writer.join().expect("the writer thread")?;
        // The longest append that began while the backup committed and took its
        // snapshots (the only time it holds the database's locks), or overlapped it.
        let committing = copying.map_or(Duration::ZERO, |copying| {
            appends
                .slow
                .iter()
                .filter(|(began, took)| *began < copying && *began + *took > started)
                .map(|(_, took)| *took)
                .max()
                .unwrap_or_default()
        });
        println!(
            "{what} in {:.3} s; longest append while committing {:.3} ms; {:.1} s: {}",
            took.as_secs_f64(),
            committing.as_secs_f64() * 1000.0,
            took.as_secs_f64() + 0.4,
            appends.summary()
        );
        if std::env::var_os("BACKUP_BENCH_DETAIL").is_some() {
            for (began, took) in appends
                .slow
                .iter()
                .filter(|(_, t)| *t > Duration::from_millis(10))
            {
                println!(
                    "  at {:+.3} s: {:.3} ms",
                    match began.checked_duration_since(started) {
                        Some(after) => after.as_secs_f64(),
                        None => -started.duration_since(*began).as_secs_f64(),
                    },
                    took.as_secs_f64() * 1000.0
                );
            }
        }
    }
    Ok(())
}
