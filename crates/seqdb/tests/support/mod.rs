//! Helpers shared by the reliability suites: a deterministic PRNG, run budgets that
//! grow with `SEQDB_STRESS_SCALE`, reading a database into a model, guarded opens, and a
//! small codec of the metadata format written from `docs/FORMAT.md`.
//!
//! Each test file uses a different subset of these helpers.
#![allow(dead_code)]

pub mod held;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::time::{Duration, Instant};

use seqdb::{Database, Identifier, OpenOptions};

/// Every region's bytes by name: what a database holds, as a test expects it.
pub type State = BTreeMap<String, Vec<u8>>;

/// splitmix64: small, fast and deterministic; a seed names a whole run.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `1 / n`.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    /// `len` pseudo-random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next().to_le_bytes());
        }
        out.truncate(len);
        out
    }

    /// Pick one element.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// Deterministic content: byte `j` of the `len` bytes labelled `label`.
pub fn pattern(label: u64, len: usize) -> Vec<u8> {
    Rng(label.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0x5EED).bytes(len)
}

/// The multiplier from `SEQDB_STRESS_SCALE` (1 when unset).
pub fn scale() -> u64 {
    std::env::var("SEQDB_STRESS_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&s| s > 0)
        .unwrap_or(1)
}

/// The seed from `SEQDB_SEED`, or `default`.
pub fn seed_or(default: u64) -> u64 {
    std::env::var("SEQDB_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// A loop bound: at most `max` iterations and at most `limit` of wall time, both
/// multiplied by [`scale`]. Whichever is reached first stops the loop.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub max: u64,
    pub start: Instant,
    pub limit: Duration,
}

impl Budget {
    pub fn new(max: u64, seconds: u64) -> Self {
        let scale = scale();
        Budget {
            max: max.saturating_mul(scale),
            start: Instant::now(),
            limit: Duration::from_secs(seconds.saturating_mul(scale)),
        }
    }

    /// Whether another iteration fits after `done` of them.
    pub fn allows(&self, done: u64) -> bool {
        done < self.max && self.start.elapsed() < self.limit
    }

    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
}

/// Read every region of `db`.
pub fn read_state(db: &Database) -> Result<State, String> {
    let mut state = State::new();
    for region in db.regions() {
        let reader = db
            .create_region_reader(Identifier::Number(region.number()))
            .map_err(|e| format!("reader of {:?}: {e}", region.name()))?;
        let bytes = reader.read_all().to_vec();
        if bytes.len() as u64 != region.len() {
            return Err(format!(
                "region {:?} reads {} bytes but its length is {}",
                region.name(),
                bytes.len(),
                region.len()
            ));
        }
        if state.insert(region.name().to_owned(), bytes).is_some() {
            return Err(format!("two regions named {:?}", region.name()));
        }
    }
    Ok(state)
}

/// A human description of how `got` differs from `want`, or `None` when equal.
pub fn diff_states(got: &State, want: &State) -> Option<String> {
    let mut out = String::new();
    for name in want.keys().filter(|n| !got.contains_key(*n)) {
        let _ = write!(out, "missing region {}; ", short(name));
    }
    for name in got.keys().filter(|n| !want.contains_key(*n)) {
        let _ = write!(out, "unexpected region {}; ", short(name));
    }
    for (name, want_bytes) in want {
        let Some(got_bytes) = got.get(name) else {
            continue;
        };
        if got_bytes.len() != want_bytes.len() {
            let _ = write!(
                out,
                "region {} has {} bytes, expected {}; ",
                short(name),
                got_bytes.len(),
                want_bytes.len()
            );
        } else if let Some(at) = got_bytes.iter().zip(want_bytes).position(|(a, b)| a != b) {
            let _ = write!(out, "region {} differs from byte {at}; ", short(name));
        }
    }
    (!out.is_empty()).then_some(out)
}

/// A name cut short for messages (some tests use names of many kilobytes).
pub fn short(name: &str) -> String {
    if name.len() <= 40 {
        format!("{name:?}")
    } else {
        let cut = (0..=40)
            .rev()
            .find(|&i| name.is_char_boundary(i))
            .unwrap_or(0);
        format!("{:?}...({} bytes)", &name[..cut], name.len())
    }
}

/// What a guarded open produced.
pub enum Opened {
    Ok(Database),
    Err(seqdb::Error),
    Panicked(String),
}

/// Open `path` (read-write or read-only), turning a panic into [`Opened::Panicked`].
pub fn open_guarded(path: &Path, read_only: bool) -> Opened {
    let result = catch_unwind(AssertUnwindSafe(|| {
        OpenOptions::new().read_only(read_only).open(path)
    }));
    match result {
        Ok(Ok(db)) => Opened::Ok(db),
        Ok(Err(e)) => Opened::Err(e),
        Err(payload) => Opened::Panicked(panic_message(payload.as_ref())),
    }
}

/// Run `f`, turning a panic into `Err(message)`.
pub fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| panic_message(p.as_ref()))
}

pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

/// Replace the contents of directory `dir` by `files` (name, bytes).
pub fn write_files(dir: &Path, files: &[(&str, &[u8])]) {
    if dir.exists() {
        std::fs::remove_dir_all(dir).unwrap();
    }
    std::fs::create_dir_all(dir).unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

/// Copy every regular file of `from` into a fresh directory `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    if to.exists() {
        std::fs::remove_dir_all(to).unwrap();
    }
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// The metadata format of `docs/FORMAT.md`, re-implemented from the document alone so
/// that tests can write records the engine never would, and check the document.
pub mod format {
    pub const PAGE: usize = 4096;
    pub const HEADER_LEN: usize = 24;
    pub const RECORD_HEAD: usize = 12;
    pub const KIND_CHECKPOINT: u8 = 1;
    pub const KIND_DELTA: u8 = 2;

    /// A region entry as stored; the name is raw bytes so tests can store invalid UTF-8.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Entry {
        pub number: u64,
        pub start: u64,
        pub reserved: u64,
        pub len: u64,
        pub name: Vec<u8>,
    }

    /// A record body.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Record {
        pub generation: u64,
        pub kind: u8,
        pub next_number: u64,
        pub removed: Vec<u64>,
        pub entries: Vec<Entry>,
    }

    pub fn crc(bytes: &[u8]) -> u32 {
        crc32fast::hash(bytes)
    }

    /// Header with the given version and flags, and a correct checksum.
    pub fn header(version: u32, flags: u32) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN);
        out.extend_from_slice(b"SEQDBMET");
        out.extend_from_slice(&version.to_le_bytes());
        out.extend_from_slice(&(HEADER_LEN as u32).to_le_bytes());
        out.extend_from_slice(&flags.to_le_bytes());
        let sum = crc(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    pub fn body(record: &Record) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&record.generation.to_le_bytes());
        out.push(record.kind);
        out.extend_from_slice(&record.next_number.to_le_bytes());
        out.extend_from_slice(&(record.removed.len() as u32).to_le_bytes());
        for n in &record.removed {
            out.extend_from_slice(&n.to_le_bytes());
        }
        out.extend_from_slice(&(record.entries.len() as u32).to_le_bytes());
        for e in &record.entries {
            out.extend_from_slice(&e.number.to_le_bytes());
            out.extend_from_slice(&e.start.to_le_bytes());
            out.extend_from_slice(&e.reserved.to_le_bytes());
            out.extend_from_slice(&e.len.to_le_bytes());
            out.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
            out.extend_from_slice(&e.name);
        }
        out
    }

    /// A record around an arbitrary body (its checksum correct), padded to whole pages.
    pub fn frame(body: &[u8]) -> Vec<u8> {
        let len = (body.len() as u32).to_le_bytes();
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&len);
        hasher.update(body);
        let mut out = Vec::new();
        out.extend_from_slice(b"SQDR");
        out.extend_from_slice(&len);
        out.extend_from_slice(&hasher.finalize().to_le_bytes());
        out.extend_from_slice(body);
        out.resize(out.len().div_ceil(PAGE) * PAGE, 0);
        out
    }

    pub fn record(record: &Record) -> Vec<u8> {
        frame(&body(record))
    }

    /// A whole metadata file: header page, then the records in order.
    pub fn file(records: &[Vec<u8>]) -> Vec<u8> {
        let mut out = header(1, 0);
        out.resize(PAGE, 0);
        for r in records {
            out.extend_from_slice(r);
        }
        out
    }

    /// Where a record sits in a metadata file.
    #[derive(Debug, Clone)]
    pub struct Located {
        pub offset: usize,
        /// Bytes of head and body (the padding after them is not checked).
        pub used: usize,
        /// Head, body and padding.
        pub span: usize,
        pub record: Record,
    }

    /// Decode the records of a metadata file, following the reading rules of the document:
    /// the log ends at the first record that is incomplete, fails its checksum, or does not
    /// continue the generations. `None` when the header is invalid.
    pub fn decode(file: &[u8]) -> Option<Vec<Located>> {
        if file.len() < HEADER_LEN || &file[..8] != b"SEQDBMET" {
            return None;
        }
        if crc(&file[..20]) != u32::from_le_bytes(file[20..24].try_into().unwrap())
            || file[8..12] != 1u32.to_le_bytes()
            || file[12..16] != 24u32.to_le_bytes()
            || file[16..20] != [0; 4]
        {
            return None;
        }
        let mut out: Vec<Located> = Vec::new();
        let mut at = PAGE;
        while let Some(located) = decode_at(file, at) {
            let expected_kind = if out.is_empty() {
                KIND_CHECKPOINT
            } else {
                KIND_DELTA
            };
            if located.record.kind != expected_kind {
                break;
            }
            if let Some(prev) = out.last()
                && located.record.generation != prev.record.generation + 1
            {
                break;
            }
            at += located.span;
            out.push(located);
        }
        Some(out)
    }

    fn decode_at(file: &[u8], at: usize) -> Option<Located> {
        let head = file.get(at..at + RECORD_HEAD)?;
        if &head[..4] != b"SQDR" {
            return None;
        }
        let body_len = u32::from_le_bytes(head[4..8].try_into().unwrap()) as usize;
        let body = file.get(at + RECORD_HEAD..at + RECORD_HEAD + body_len)?;
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&head[4..8]);
        hasher.update(body);
        if hasher.finalize() != u32::from_le_bytes(head[8..12].try_into().unwrap()) {
            return None;
        }
        let record = parse(body)?;
        let used = RECORD_HEAD + body_len;
        Some(Located {
            offset: at,
            used,
            span: used.div_ceil(PAGE) * PAGE,
            record,
        })
    }

    fn parse(body: &[u8]) -> Option<Record> {
        let mut at = 0usize;
        let mut take = |n: usize| -> Option<&[u8]> {
            let s = body.get(at..at.checked_add(n)?)?;
            at += n;
            Some(s)
        };
        let u64_of = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap());
        let generation = u64_of(take(8)?);
        let kind = take(1)?[0];
        if kind != KIND_CHECKPOINT && kind != KIND_DELTA {
            return None;
        }
        let next_number = u64_of(take(8)?);
        let removed_count = u32::from_le_bytes(take(4)?.try_into().unwrap());
        let mut removed = Vec::new();
        for _ in 0..removed_count {
            removed.push(u64_of(take(8)?));
        }
        let entry_count = u32::from_le_bytes(take(4)?.try_into().unwrap());
        let mut entries = Vec::new();
        for _ in 0..entry_count {
            let number = u64_of(take(8)?);
            let start = u64_of(take(8)?);
            let reserved = u64_of(take(8)?);
            let len = u64_of(take(8)?);
            let name_len = u16::from_le_bytes(take(2)?.try_into().unwrap()) as usize;
            let name = take(name_len)?.to_vec();
            std::str::from_utf8(&name).ok()?;
            entries.push(Entry {
                number,
                start,
                reserved,
                len,
                name,
            });
        }
        if at != body.len() {
            return None;
        }
        Some(Record {
            generation,
            kind,
            next_number,
            removed,
            entries,
        })
    }

    /// The regions (number to entry) after applying `records` in order.
    pub fn replay(records: &[Located]) -> std::collections::BTreeMap<u64, Entry> {
        let mut regions = std::collections::BTreeMap::new();
        for r in records {
            for n in &r.record.removed {
                regions.remove(n);
            }
            for e in &r.record.entries {
                regions.insert(e.number, e.clone());
            }
        }
        regions
    }
}
