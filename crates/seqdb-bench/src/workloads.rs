//! The workloads W1–W7, generic over the engine, each run on a fresh database.

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use crate::disk::allocated_bytes;
use crate::engine::{Engine, Outcome, Source};
use crate::metrics::{Metric, Metrics};
use crate::random::Rng;
use crate::smaps;

/// Bytes in a mebibyte.
const MIB: usize = 1 << 20;

/// The workloads, by the name used on the command line.
pub const WORKLOADS: [&str; 7] = ["w1", "w2", "w3", "w4", "w5", "w6", "w7"];

/// Scales a count of the full-size benchmark, keeping at least `min`.
fn scaled(count: f64, scale: f64, min: u64) -> u64 {
    ((count * scale).round() as u64).max(min)
}

/// Runs one workload on engine `E` in the empty directory `dir`.
pub fn run<E: Engine>(workload: &str, scale: f64, dir: &Path) -> Outcome<Metrics> {
    match workload {
        "w1" => repeated(3, dir, |dir| w1::<E>(scale, dir)),
        "w2" => repeated(3, dir, |dir| w2::<E>(scale, dir)),
        "w3" => w3::<E>(scale, dir),
        "w4" => w4::<E>(scale, dir),
        "w5" => w5::<E>(scale, dir),
        "w6" => w6::<E>(scale, dir),
        "w7" => w7::<E>(dir),
        other => Err(format!("unknown workload {other}")),
    }
}

/// Runs a workload `rounds` times, each on a fresh database that is deleted afterwards,
/// and keeps the median of every measurement (so one disturbed round does not decide).
fn repeated(
    rounds: usize,
    dir: &Path,
    mut workload: impl FnMut(&Path) -> Outcome<Metrics>,
) -> Outcome<Metrics> {
    let mut runs = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let dir = dir.join(format!("round-{round}"));
        runs.push(workload(&dir)?);
        std::fs::remove_dir_all(&dir).map_err(|e| format!("remove {}: {e}", dir.display()))?;
    }
    Ok(Metrics::median_of(&runs))
}

/// Appends the little-endian numbers `0..count` to one region, 8 bytes per call.
struct Counter {
    region: usize,
    next: u64,
    count: u64,
    bytes: [u8; 8],
}

impl Source for Counter {
    fn next_append(&mut self) -> Option<(usize, &[u8])> {
        if self.next == self.count {
            return None;
        }
        self.bytes = self.next.to_le_bytes();
        self.next += 1;
        Some((self.region, &self.bytes))
    }
}

/// Appends one buffer again and again: `rounds` times over `regions`, `per_region`
/// consecutive appends each time. The first 8 bytes carry the append's number.
struct Stamped<'a> {
    regions: &'a [usize],
    per_region: u64,
    total: u64,
    next: u64,
    buffer: Vec<u8>,
}

impl<'a> Stamped<'a> {
    fn new(regions: &'a [usize], per_region: u64, rounds: u64, size: usize) -> Self {
        Stamped {
            regions,
            per_region,
            total: rounds * per_region * regions.len() as u64,
            next: 0,
            buffer: vec![0x5a; size.max(8)],
        }
    }

    fn bytes(&self) -> u64 {
        self.total * self.buffer.len() as u64
    }
}

impl Source for Stamped<'_> {
    fn next_append(&mut self) -> Option<(usize, &[u8])> {
        if self.next == self.total {
            return None;
        }
        let in_round = self.next % (self.per_region * self.regions.len() as u64);
        let region = self.regions[(in_round / self.per_region) as usize];
        self.buffer[..8].copy_from_slice(&self.next.to_le_bytes());
        self.next += 1;
        Some((region, &self.buffer))
    }
}

/// Appends the little-endian numbers `0..count` to one region in chunks of `chunk` numbers.
struct Sequence {
    region: usize,
    next: u64,
    count: u64,
    chunk: u64,
    buffer: Vec<u8>,
}

impl Source for Sequence {
    fn next_append(&mut self) -> Option<(usize, &[u8])> {
        if self.next == self.count {
            return None;
        }
        let end = (self.next + self.chunk).min(self.count);
        self.buffer.clear();
        for value in self.next..end {
            self.buffer.extend_from_slice(&value.to_le_bytes());
        }
        self.next = end;
        Some((self.region, &self.buffer))
    }
}

fn seconds(start: Instant) -> f64 {
    start.elapsed().as_secs_f64().max(1e-9)
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn expect_len<E: Engine>(engine: &E, region: usize, expected: u64) -> Outcome<()> {
    let len = engine.region_len(region)?;
    if len == expected {
        Ok(())
    } else {
        Err(format!(
            "region holds {len} bytes, {expected} were appended"
        ))
    }
}

/// W1: 10,000,000 appends of 8 bytes to one region, one call each.
fn w1<E: Engine>(scale: f64, dir: &Path) -> Outcome<Metrics> {
    let count = scaled(10_000_000.0, scale, 1);
    let mut engine = E::open(dir)?;
    let region = engine.create_region("w1")?;
    engine.flush()?;
    let mut source = Counter {
        region,
        next: 0,
        count,
        bytes: [0; 8],
    };
    let start = Instant::now();
    engine.append_all(&mut source)?;
    let secs = seconds(start);
    engine.flush()?;
    expect_len(&engine, region, count * 8)?;
    let mut metrics = Metrics::default();
    metrics.push("w1_mops", Metric::Value(count as f64 / secs / 1e6));
    Ok(metrics)
}

/// W2: 1 GiB appended in 1 MiB chunks, then one durable flush.
fn w2<E: Engine>(scale: f64, dir: &Path) -> Outcome<Metrics> {
    let chunks = scaled(1024.0, scale, 1);
    let mut engine = E::open(dir)?;
    let region = engine.create_region("w2")?;
    engine.flush()?;
    let regions = [region];
    let mut source = Stamped::new(&regions, chunks, 1, MIB);
    let bytes = source.bytes();
    let start = Instant::now();
    engine.append_all(&mut source)?;
    let append_secs = seconds(start);
    let start = Instant::now();
    engine.flush()?;
    let flush_secs = seconds(start);
    expect_len(&engine, region, bytes)?;
    let mut metrics = Metrics::default();
    metrics.push("w2_gbps", Metric::Value(bytes as f64 / append_secs / 1e9));
    metrics.push("w2_flush_s", Metric::Value(flush_secs));
    Ok(metrics)
}

/// W3: 10,000 regions, 100 rounds of one 1 KiB append to each; space amplification.
fn w3<E: Engine>(scale: f64, dir: &Path) -> Outcome<Metrics> {
    let count = scaled(10_000.0, scale, 1);
    let mut engine = E::open(dir)?;
    let mut regions = Vec::with_capacity(count as usize);
    for i in 0..count {
        regions.push(engine.create_region(&format!("r{i:06}"))?);
    }
    engine.flush()?;
    let mut source = Stamped::new(&regions, 1, 100, 1024);
    let logical = source.bytes();
    let start = Instant::now();
    engine.append_all(&mut source)?;
    let secs = seconds(start);
    engine.flush()?;
    let after_flush = allocated_bytes(dir)? as f64 / logical as f64;
    let after_punch = if engine.flush_then_punch()? {
        Metric::Value(allocated_bytes(dir)? as f64 / logical as f64)
    } else {
        Metric::NotApplicable
    };
    let (found, bytes) = engine.totals()?;
    if found != count || bytes != logical {
        return Err(format!(
            "after W3 the engine lists {found} regions of {bytes} bytes, expected {count} of {logical}"
        ));
    }
    let mut metrics = Metrics::default();
    metrics.push("w3_mbps", Metric::Value(logical as f64 / secs / 1e6));
    metrics.push("w3_amp_flush", Metric::Value(after_flush));
    metrics.push("w3_amp_punch", after_punch);
    Ok(metrics)
}

/// Runs `pass` up to five times (fewer when it is slow) and returns the median seconds.
fn timed_passes(mut pass: impl FnMut() -> Outcome<()>) -> Outcome<f64> {
    let budget = Instant::now();
    let mut samples = Vec::new();
    while samples.len() < 5 && (samples.is_empty() || budget.elapsed() < Duration::from_secs(3)) {
        let start = Instant::now();
        pass()?;
        samples.push(seconds(start));
    }
    Ok(median(samples))
}

/// W4: a 24 MB region read first (see [`w4_small`]), then an 80 MB region, 1,000,000
/// random 8-byte reads: one reader, a reader per read, and one reader on each of 2
/// threads sharing the reads. The 80 MB region's size is not scaled, so it never fits in
/// the CPU's caches; the number of reads is. After each region's passes, the share of
/// the engine's mapped bytes the kernel maps with 2 MiB entries (informational).
fn w4<E: Engine>(scale: f64, dir: &Path) -> Outcome<Metrics> {
    let values = 10_000_000;
    let reads = scaled(1_000_000.0, scale, 2);
    let mut engine = E::open(dir)?;
    let small = w4_small(&mut engine, reads)?;
    let small_pmd = pmd_metric(dir);
    let region = engine.create_region("w4")?;
    let mut source = Sequence {
        region,
        next: 0,
        count: values,
        chunk: 8192,
        buffer: Vec::with_capacity(8192 * 8),
    };
    engine.append_all(&mut source)?;
    engine.flush()?;
    expect_len(&engine, region, values * 8)?;

    let mut rng = Rng::new(0x5eed_5eed);
    let indexes: Vec<u64> = (0..reads).map(|_| rng.below(values)).collect();
    let expected = indexes.iter().fold(0u64, |sum, &i| sum.wrapping_add(i));
    let check = |sum: u64| -> Outcome<()> {
        if sum == expected {
            Ok(())
        } else {
            Err(format!("reads summed to {sum}, expected {expected}"))
        }
    };
    let engine = &engine;

    let per_read = timed_passes(|| check(engine.read_sum(region, &indexes, true)?))?;
    let (left, right) = indexes.split_at(indexes.len() / 2);
    let one_pass = || check(engine.read_sum(region, &indexes, false)?);
    let two_pass = || {
        let sums = thread::scope(|scope| {
            let a = scope.spawn(|| engine.read_sum(region, left, false));
            let b = scope.spawn(|| engine.read_sum(region, right, false));
            let a = a.join().map_err(|_| "a reader thread panicked".to_owned());
            let b = b.join().map_err(|_| "a reader thread panicked".to_owned());
            (a, b)
        });
        let a = sums.0??;
        let b = sums.1??;
        check(a.wrapping_add(b))
    };
    // One reader and two threads take turns, so both see the same machine: on a shared
    // machine the second core is not always free, and their ratio is the point.
    let mut one_samples = Vec::new();
    let mut two_samples = Vec::new();
    let budget = Instant::now();
    while one_samples.len() < 7
        && (one_samples.is_empty() || budget.elapsed() < Duration::from_secs(5))
    {
        let start = Instant::now();
        one_pass()?;
        one_samples.push(seconds(start));
        let start = Instant::now();
        two_pass()?;
        two_samples.push(seconds(start));
    }
    let (one, two) = (median(one_samples), median(two_samples));

    let mops = |secs: f64| Metric::Value(reads as f64 / secs / 1e6);
    let mut metrics = Metrics::default();
    metrics.push("w4_first", mops(small.first));
    metrics.push("w4_small_one", mops(small.later));
    metrics.push("w4_small_pmd", small_pmd);
    metrics.push("w4_one", mops(one));
    metrics.push("w4_per_read", mops(per_read));
    metrics.push("w4_two", mops(two));
    metrics.push("w4_pmd", pmd_metric(dir));
    Ok(metrics)
}

/// The percent of the resident bytes of the engine's file mappings under `dir` that the
/// kernel maps with 2 MiB entries; not applicable to an engine that maps no file, or
/// where `/proc/self/smaps` does not exist.
fn pmd_metric(dir: &Path) -> Metric {
    match smaps::mapped_under(dir).and_then(|mapped| mapped.pmd_percent()) {
        Some(percent) => Metric::Value(percent),
        None => Metric::NotApplicable,
    }
}

/// The seconds of W4's passes over its 24 MB region.
struct SmallPasses {
    /// The first pass, right after writing.
    first: f64,
    /// The median of the later passes.
    later: f64,
}

/// W4's 24 MB region: 3,000,000 `u64`, each equal to its index, appended in 1 MiB chunks
/// and flushed, then `reads` random 8-byte reads through one reader, the same offsets in
/// every pass. The first pass is timed on its own: the first reads after the writes, so
/// what the first touch of each page costs counts. Up to 7 more passes (fewer when they
/// are slow) give the rate once every page has been touched, where what is left is the
/// cost of the reads themselves, TLB misses included.
fn w4_small<E: Engine>(engine: &mut E, reads: u64) -> Outcome<SmallPasses> {
    let values = 3_000_000;
    let region = engine.create_region("w4-first")?;
    let mut source = Sequence {
        region,
        next: 0,
        count: values,
        chunk: 1 << 17,
        buffer: Vec::with_capacity(1 << 20),
    };
    engine.append_all(&mut source)?;
    engine.flush()?;
    expect_len(engine, region, values * 8)?;
    let mut rng = Rng::new(0xf1e5_7ead);
    let indexes: Vec<u64> = (0..reads).map(|_| rng.below(values)).collect();
    let expected = indexes.iter().fold(0u64, |sum, &i| sum.wrapping_add(i));
    let pass = || -> Outcome<f64> {
        let start = Instant::now();
        let sum = engine.read_sum(region, &indexes, false)?;
        let secs = seconds(start);
        if sum != expected {
            return Err(format!("24 MB pass summed to {sum}, expected {expected}"));
        }
        Ok(secs)
    };
    let first = pass()?;
    let mut later = Vec::new();
    let budget = Instant::now();
    while later.len() < 7 && (later.is_empty() || budget.elapsed() < Duration::from_secs(3)) {
        later.push(pass()?);
    }
    Ok(SmallPasses {
        first,
        later: median(later),
    })
}

/// W5: opening a database of 10,000 regions of 100 bytes, median of 5 opens.
fn w5<E: Engine>(scale: f64, dir: &Path) -> Outcome<Metrics> {
    let count = scaled(10_000.0, scale, 1);
    {
        let mut engine = E::open(dir)?;
        let mut regions = Vec::with_capacity(count as usize);
        for i in 0..count {
            regions.push(engine.create_region(&format!("r{i:06}"))?);
        }
        let mut source = Stamped::new(&regions, 1, 1, 100);
        engine.append_all(&mut source)?;
        engine.flush()?;
    }
    let mut samples = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let engine = E::open(dir)?;
        samples.push(seconds(start));
        let (found, bytes) = engine.totals()?;
        if found != count || bytes != count * 100 {
            return Err(format!(
                "reopened database lists {found} regions of {bytes} bytes, expected {count} of {}",
                count * 100
            ));
        }
    }
    let mut metrics = Metrics::default();
    metrics.push("w5_ms", Metric::Value(median(samples) * 1e3));
    Ok(metrics)
}

/// W6: 100 regions of 4 MiB, remove 50, flush then punch: allocated bytes before and after.
fn w6<E: Engine>(scale: f64, dir: &Path) -> Outcome<Metrics> {
    let count = scaled(100.0, scale, 2);
    let mut engine = E::open(dir)?;
    let mut regions = Vec::with_capacity(count as usize);
    for i in 0..count {
        regions.push(engine.create_region(&format!("r{i:06}"))?);
    }
    let mut source = Stamped::new(&regions, 4, 1, MIB);
    engine.append_all(&mut source)?;
    engine.flush()?;
    let before = allocated_bytes(dir)?;
    for &region in regions.iter().step_by(2) {
        engine.remove_region(region)?;
    }
    engine.flush_then_punch()?;
    let after = allocated_bytes(dir)?;
    let mut metrics = Metrics::default();
    metrics.push("w6_before_mb", Metric::Value(before as f64 / 1e6));
    metrics.push("w6_after_mb", Metric::Value(after as f64 / 1e6));
    Ok(metrics)
}

/// A database of `count` regions holding 8 bytes each, flushed.
struct FlushTarget<E> {
    engine: E,
    regions: Vec<usize>,
    samples: Vec<f64>,
    /// Device syncs of each timed flush, when the engine can tell.
    syncs: Vec<u64>,
}

impl<E: Engine> FlushTarget<E> {
    fn new(dir: &Path, count: u64) -> Outcome<Self> {
        let mut engine = E::open(dir)?;
        let mut regions = Vec::with_capacity(count as usize);
        for i in 0..count {
            regions.push(engine.create_region(&format!("r{i:06}"))?);
        }
        let mut source = Stamped::new(&regions, 1, 1, 8);
        engine.append_all(&mut source)?;
        engine.flush()?;
        Ok(FlushTarget {
            engine,
            regions,
            samples: Vec::new(),
            syncs: Vec::new(),
        })
    }

    /// Appends 8 bytes to one region (round `i` picks which), then times the flush.
    fn sample(&mut self, i: u64) -> Outcome<()> {
        let target = [self.regions[(i * 7919 % self.regions.len() as u64) as usize]];
        let mut source = Stamped::new(&target, 1, 1, 8);
        self.engine.append_all(&mut source)?;
        let before = self.engine.syncs();
        let start = Instant::now();
        self.engine.flush()?;
        self.samples.push(seconds(start));
        if let (Some(before), Some(after)) = (before, self.engine.syncs()) {
            self.syncs.push(after - before);
        }
        Ok(())
    }
}

/// W7: the median durable flush after one 8-byte append, with 1 and with 10,000 regions,
/// and as a reference one 4 KiB write + `fdatasync` of a plain file beside them. The
/// three take turns, so a busy disk slows all of them alike. The region count is not
/// scaled: the point is a flush that ignores it.
fn w7<E: Engine>(dir: &Path) -> Outcome<Metrics> {
    let mut one = FlushTarget::<E>::new(&dir.join("regions-1"), 1)?;
    let mut many = FlushTarget::<E>::new(&dir.join("regions-10000"), 10_000)?;
    let probe_path = dir.join("fdatasync-probe");
    let probe = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&probe_path)
        .map_err(|e| format!("create {}: {e}", probe_path.display()))?;
    let page = [0x5au8; 4096];
    let sync_page = || -> Outcome<()> {
        std::os::unix::fs::FileExt::write_all_at(&probe, &page, 0)
            .and_then(|()| probe.sync_data())
            .map_err(|e| format!("fdatasync probe: {e}"))
    };
    sync_page()?;
    probe
        .sync_all()
        .map_err(|e| format!("fdatasync probe: {e}"))?;
    let mut probe_samples = Vec::new();
    for i in 0..51u64 {
        one.sample(i)?;
        many.sample(i)?;
        let start = Instant::now();
        sync_page()?;
        probe_samples.push(seconds(start));
    }
    let mut metrics = Metrics::default();
    metrics.push("w7_one_ms", Metric::Value(median(one.samples) * 1e3));
    metrics.push("w7_many_ms", Metric::Value(median(many.samples) * 1e3));
    if !one.syncs.is_empty() {
        let syncs: Vec<f64> = one
            .syncs
            .iter()
            .chain(&many.syncs)
            .map(|&n| n as f64)
            .collect();
        metrics.push("w7_syncs", Metric::Value(median(syncs)));
    }
    metrics.push(
        "w7_fdatasync_ms",
        Metric::Value(median(probe_samples) * 1e3),
    );
    Ok(metrics)
}
