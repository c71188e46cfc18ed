//! Compares the two ways of writing that cannot raise `SIGBUS` on a full
//! disk:
//!
//! - `pwrite` through [`DataFile::write_all_at`] (the path the crate keeps);
//! - a copy through a writable shared mapping into blocks that
//!   [`LockedFile::allocate`] reserved beforehand (the range is allocated once
//!   up front, and that time is included).
//!
//! Each case writes `TOTAL` bytes (64 MiB by default; pass a number of MiB to
//! change it) sequentially into a fresh file in the temp dir, for 8-byte and
//! 1 MiB writes, and prints MB/s and ns per write. No sync is included.
//!
//! Run: `cargo run --release -p seqdb-sys --example write_paths [MiB]`

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use memmap2::MmapOptions;
use seqdb_sys::{DataFile, FileOptions, LockedFile, Result};

const MIB: usize = 1 << 20;

fn main() -> Result<()> {
    let total_mib: usize = std::env::args()
        .nth(1)
        .and_then(|arg| arg.parse().ok())
        .unwrap_or(64);
    let total = total_mib * MIB;
    let dir = tempfile::tempdir().map_err(|source| seqdb_sys::Error::Io {
        path: std::env::temp_dir(),
        op: "create temp dir",
        offset: 0,
        source,
    })?;
    let source: Vec<u8> = (0..MIB).map(|i| (i % 251) as u8).collect();

    println!(
        "{:<30} {:>7} {:>9} {:>8} {:>12}",
        "path", "write", "writes", "MB/s", "ns/write"
    );
    for size in [8, MIB] {
        let path = dir.path().join(format!("pwrite-{size}"));
        let elapsed = pwrite_case(&path, &source, size, total)?;
        report("pwrite (DataFile)", size, total, elapsed);
        let path = dir.path().join(format!("raw-{size}"));
        let elapsed = raw_pwrite_case(&path, &source, size, total)?;
        report("pwrite (LockedFile, no pins)", size, total, elapsed);
        let path = dir.path().join(format!("mapped-{size}"));
        let elapsed = mapped_case(&path, &source, size, total)?;
        report("allocate + mapped copy", size, total, elapsed);
        report(
            "memcpy to heap (baseline)",
            size,
            total,
            heap_case(&source, size, total),
        );
    }
    Ok(())
}

fn open(path: &Path) -> Result<LockedFile> {
    LockedFile::open(path, &FileOptions::read_write())
}

/// Sequential `pwrite`s of `size` bytes through a `DataFile`.
fn pwrite_case(path: &Path, source: &[u8], size: usize, total: usize) -> Result<Duration> {
    let data = DataFile::new(open(path)?)?;
    let start = Instant::now();
    let mut at = 0;
    while at < total {
        let chunk = &source[at % MIB..at % MIB + size];
        data.write_all_at(black_box(chunk), at as u64)?;
        at += size;
    }
    let elapsed = start.elapsed();
    check(&data.file().read_to_vec()?, source, total);
    Ok(elapsed)
}

/// Sequential `pwrite`s of `size` bytes straight to the file, without the
/// pin bookkeeping of `DataFile`.
fn raw_pwrite_case(path: &Path, source: &[u8], size: usize, total: usize) -> Result<Duration> {
    let file = open(path)?;
    let start = Instant::now();
    let mut at = 0;
    while at < total {
        let chunk = &source[at % MIB..at % MIB + size];
        file.write_all_at(black_box(chunk), at as u64)?;
        at += size;
    }
    let elapsed = start.elapsed();
    check(&file.read_to_vec()?, source, total);
    Ok(elapsed)
}

/// The same copies into a freshly allocated heap buffer: what memory
/// bandwidth allows on this machine, page faults included.
fn heap_case(source: &[u8], size: usize, total: usize) -> Duration {
    let start = Instant::now();
    let mut buffer = vec![0u8; total];
    let mut at = 0;
    while at < total {
        let chunk = &source[at % MIB..at % MIB + size];
        buffer[at..at + size].copy_from_slice(black_box(chunk));
        at += size;
    }
    black_box(&buffer);
    let elapsed = start.elapsed();
    check(&buffer, source, total);
    elapsed
}

/// `allocate` of the whole range, then copies of `size` bytes through a
/// writable shared mapping.
fn mapped_case(path: &Path, source: &[u8], size: usize, total: usize) -> Result<Duration> {
    let file = open(path)?;
    let start = Instant::now();
    file.allocate(0, total as u64)?;
    let std_file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| io(path, "open", e))?;
    // SAFETY: the file was just created by this process and nothing else
    // touches it while the mapping lives; every byte of the mapped range is
    // allocated (by `allocate` above) and below the file's length, so stores
    // cannot fault for lack of space.
    let mut map = unsafe { MmapOptions::new().len(total).map_mut(&std_file) }
        .map_err(|e| io(path, "mmap", e))?;
    let mut at = 0;
    while at < total {
        let chunk = &source[at % MIB..at % MIB + size];
        map[at..at + size].copy_from_slice(black_box(chunk));
        at += size;
    }
    let elapsed = start.elapsed();
    drop(map);
    check(&file.read_to_vec()?, source, total);
    Ok(elapsed)
}

fn io(path: &Path, op: &'static str, source: std::io::Error) -> seqdb_sys::Error {
    seqdb_sys::Error::Io {
        path: path.to_path_buf(),
        op,
        offset: 0,
        source,
    }
}

/// Makes sure every case really wrote what it claims.
fn check(written: &[u8], source: &[u8], total: usize) {
    assert_eq!(written.len(), total, "file length");
    for (index, block) in written.chunks(MIB).enumerate() {
        assert!(block == &source[..block.len()], "block {index} differs");
    }
}

fn report(name: &str, size: usize, total: usize, elapsed: Duration) {
    let writes = total / size;
    let secs = elapsed.as_secs_f64();
    let label = if size >= MIB {
        format!("{} MiB", size / MIB)
    } else {
        format!("{size} B")
    };
    println!(
        "{:<30} {:>7} {:>9} {:>8.0} {:>12.1}",
        name,
        label,
        writes,
        total as f64 / secs / 1e6,
        secs * 1e9 / writes as f64
    );
}
