//! Helpers shared by the reliability suites: a deterministic PRNG, run budgets that
//! grow with `SEQDB_STRESS_SCALE`, reading a database into a model, guarded opens, and a
//! small codec of the metadata format written from `docs/FORMAT.md`; crash images taken at
//! sync barriers are in [`images`].
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

pub mod images;

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

/// The seeds to run: `per_run` of them times `SEQDB_STRESS_SCALE`, or just `SEQDB_SEED`.
pub fn seeds(base: u64, per_run: u64) -> Vec<u64> {
    match std::env::var("SEQDB_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        Some(seed) => vec![seed],
        None => (0..per_run * scale()).map(|i| base + i).collect(),
    }
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
/// Files that a handle opened by [`open_guarded`] wrote into.
pub static WRITTEN_BY_OPEN: std::sync::Mutex<std::collections::BTreeSet<std::path::PathBuf>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

pub fn open_guarded(path: &Path, read_only: bool) -> Opened {
    let noting: seqdb::FaultInjector = std::sync::Arc::new(|point: seqdb::FaultPoint<'_>| {
        if point.op == seqdb::FaultOp::Write {
            WRITTEN_BY_OPEN
                .lock()
                .unwrap()
                .insert(point.path.to_owned());
        }
        Ok(())
    });
    let result = catch_unwind(AssertUnwindSafe(|| {
        OpenOptions::new()
            .read_only(read_only)
            .fault_injector(noting)
            .open(path)
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

/// The calling thread's id (its name under `/proc`), for `taskset` and `chrt`.
pub fn this_thread_id() -> String {
    let link = std::fs::read_link("/proc/thread-self").unwrap();
    link.file_name().unwrap().to_string_lossy().into_owned()
}

/// Run `program`; whether it ran and succeeded.
pub fn run(program: &str, args: &[&str]) -> bool {
    std::process::Command::new(program)
        .args(args)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// The CPUs this process may run on (`Cpus_allowed_list` of `/proc/self/status`; empty
/// where there is no such file).
pub fn allowed_cpus() -> Vec<usize> {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return Vec::new();
    };
    let Some(list) = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
    else {
        return Vec::new();
    };
    let mut cpus = Vec::new();
    for part in list.trim().split(',').filter(|p| !p.is_empty()) {
        let (from, to) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(from), Ok(to)) = (from.parse::<usize>(), to.parse::<usize>()) {
            cpus.extend(from..=to);
        }
    }
    cpus
}

/// Pin the calling thread to `cpu` (with `taskset`); false where that is not possible.
pub fn pin_to_cpu(cpu: usize) -> bool {
    run(
        "taskset",
        &["-p", "-c", &cpu.to_string(), &this_thread_id()],
    )
}

/// Replace the contents of directory `dir` by `files` (name, bytes).
/// Where the metadata log at `meta` ends: after its last page that is not zeros (the
/// log is written into zeros laid down ahead of it).
pub fn log_end(meta: &Path) -> u64 {
    let bytes = std::fs::read(meta).unwrap();
    let used = bytes
        .chunks(4096)
        .rposition(|page| page.iter().any(|&b| b != 0))
        .map_or(0, |last| last + 1);
    used as u64 * 4096
}

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

/// The file formats of `docs/FORMAT.md`, re-implemented from the document alone so
/// that tests can write records the engine never would, check the document, and say
/// what a reader following it must do with any pair of files.
pub mod format {
    pub const PAGE: usize = 4096;
    pub const VERSION: u32 = 3;
    pub const HEADER_LEN: usize = 40;
    pub const RECORD_HEAD: usize = 16;
    pub const KIND_CHECKPOINT: u8 = 1;
    pub const KIND_DELTA: u8 = 2;
    pub const MAX_NAME: usize = 1024;
    pub const MAX_NUMBER: u64 = 1 << 24;
    pub const MAX_GENERATION: u64 = (1 << 63) - 1;
    pub const CHUNK: u64 = 64 * 1024;
    pub const MAX_DATA: u64 = 1 << 48;
    pub const MAX_INLINE: u64 = 1 << 20;
    pub const MAX_BODY: u64 = 30
        + MAX_NUMBER * 8
        + MAX_NUMBER * (42 + MAX_NAME as u64)
        + MAX_DATA / CHUNK * 4
        + MAX_NUMBER * 12
        + MAX_INLINE;
    pub const MAX_META: u64 = PAGE as u64
        + 4 * (RECORD_HEAD as u64 + MAX_BODY).div_ceil(PAGE as u64) * PAGE as u64
        + 128 * 1024;
    pub const SLOTS: [usize; 2] = [0, 512];
    pub const SLOT_LEN: usize = 48;

    /// A region entry as stored; the name is raw bytes so tests can store invalid UTF-8.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Entry {
        pub number: u64,
        pub start: u64,
        pub reserved: u64,
        pub len: u64,
        pub name: Vec<u8>,
        /// The first chunk whose checksum the entry carries.
        pub sums_from: u64,
        pub crcs: Vec<u32>,
    }

    impl Entry {
        /// An entry carrying all of its chunk checksums, each zero.
        pub fn new(number: u64, start: u64, reserved: u64, len: u64, name: &[u8]) -> Self {
            Entry {
                number,
                start,
                reserved,
                len,
                name: name.to_vec(),
                sums_from: 0,
                crcs: vec![0; len.div_ceil(CHUNK) as usize],
            }
        }
    }

    /// A record body.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Record {
        pub generation: u64,
        pub kind: u8,
        pub next_number: u64,
        pub removed: Vec<u64>,
        pub entries: Vec<Entry>,
        /// Bit 0: the data file was synced for this commit.
        pub flags: u8,
        /// Bytes carried inline: data file offset and bytes.
        pub inline: Vec<(u64, Vec<u8>)>,
    }

    impl Record {
        /// A record whose data was synced, carrying nothing inline.
        pub fn new(
            generation: u64,
            kind: u8,
            next_number: u64,
            removed: Vec<u64>,
            entries: Vec<Entry>,
        ) -> Self {
            Record {
                generation,
                kind,
                next_number,
                removed,
                entries,
                flags: 1,
                inline: Vec::new(),
            }
        }
    }

    pub fn crc(bytes: &[u8]) -> u32 {
        crc32fast::hash(bytes)
    }

    fn u32_at(bytes: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
    }

    fn u64_at(bytes: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
    }

    /// Metadata header with the given version, flags and database id, and a correct
    /// checksum.
    pub fn header(version: u32, flags: u32, id: &[u8; 16]) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN);
        out.extend_from_slice(b"SEQDBMET");
        out.extend_from_slice(&version.to_le_bytes());
        out.extend_from_slice(&(HEADER_LEN as u32).to_le_bytes());
        out.extend_from_slice(&flags.to_le_bytes());
        out.extend_from_slice(id);
        let sum = crc(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    /// The database id in a metadata header (no checks).
    pub fn meta_id(meta: &[u8]) -> [u8; 16] {
        meta[20..36].try_into().unwrap()
    }

    /// One slot of the data file's header.
    pub fn slot(id: &[u8; 16], generation: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(SLOT_LEN);
        out.extend_from_slice(b"SEQDBDAT");
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(SLOT_LEN as u32).to_le_bytes());
        out.extend_from_slice(id);
        out.extend_from_slice(&generation.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        let sum = crc(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    /// `data` with both slots saying `generation`.
    pub fn restamped(data: &[u8], id: &[u8; 16], generation: u64) -> Vec<u8> {
        let mut data = data.to_vec();
        if data.len() < PAGE {
            data.resize(PAGE, 0);
        }
        for at in SLOTS {
            data[at..at + SLOT_LEN].copy_from_slice(&slot(id, generation));
        }
        data
    }

    /// `data` with the slot of `generation` (slot `generation % 2`) saying it.
    pub fn stamped(data: &[u8], id: &[u8; 16], generation: u64) -> Vec<u8> {
        let mut data = data.to_vec();
        let at = SLOTS[(generation % 2) as usize];
        data[at..at + SLOT_LEN].copy_from_slice(&slot(id, generation));
        data
    }

    /// What the data file's header says: its id and newest generation, or `None`
    /// when neither slot is valid (or the slots name different databases).
    pub fn data_header(data: &[u8]) -> Option<([u8; 16], u64)> {
        let mut best: Option<([u8; 16], u64)> = None;
        for at in SLOTS {
            let Some(s) = data.get(at..at + SLOT_LEN) else {
                continue;
            };
            if &s[..8] == b"SEQDBDAT" && u32_at(s, 8) != VERSION && crc(&s[..44]) == u32_at(s, 44) {
                // An intact slot of another version: the file is not for this reader.
                return None;
            }
            if &s[..8] != b"SEQDBDAT"
                || u32_at(s, 8) != VERSION
                || u32_at(s, 12) != SLOT_LEN as u32
                || u32_at(s, 40) != 0
                || crc(&s[..44]) != u32_at(s, 44)
                || u64_at(s, 32) > MAX_GENERATION
            {
                continue;
            }
            let id: [u8; 16] = s[16..32].try_into().unwrap();
            let generation = u64_at(s, 32);
            best = match best {
                None => Some((id, generation)),
                Some((other, _)) if other != id => return None,
                Some((_, g)) => Some((id, g.max(generation))),
            };
        }
        best
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
            out.extend_from_slice(&e.sums_from.to_le_bytes());
            for c in &e.crcs {
                out.extend_from_slice(&c.to_le_bytes());
            }
        }
        out.push(record.flags);
        out.extend_from_slice(&(record.inline.len() as u32).to_le_bytes());
        for (offset, bytes) in &record.inline {
            out.extend_from_slice(&offset.to_le_bytes());
            out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            out.extend_from_slice(bytes);
        }
        out
    }

    /// A record of database `id` around an arbitrary body (its checksum, over the id,
    /// the length and the body, correct), padded to whole pages.
    pub fn frame(id: &[u8; 16], body: &[u8]) -> Vec<u8> {
        let len = (body.len() as u64).to_le_bytes();
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(id);
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

    pub fn record(id: &[u8; 16], record: &Record) -> Vec<u8> {
        frame(id, &body(record))
    }

    /// A whole metadata file of database `id`: header page, then the records in order.
    pub fn file(id: &[u8; 16], records: &[Vec<u8>]) -> Vec<u8> {
        let mut out = header(VERSION, 0, id);
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

    /// What is at a record's offset, as the document's reading rules classify it.
    #[derive(Debug, Clone)]
    pub enum At {
        /// A complete record with a matching checksum and a body within the bounds.
        Valid(Located),
        /// A complete record with a matching checksum whose body breaks a rule.
        Invalid,
        /// Anything else: the end of the file, or a torn record.
        Torn,
    }

    /// How a metadata file's log ends.
    #[derive(Debug, Clone)]
    pub struct Log {
        /// The records of the log, checkpoint first.
        pub records: Vec<Located>,
        /// Offset just after the last record of the log.
        pub end: usize,
        /// Whether the log ends in a valid record that does not continue it, or one
        /// whose checksum matches but whose body breaks a rule.
        pub ends_in_damage: bool,
        /// Offsets of valid records after the end.
        pub after: Vec<usize>,
    }

    /// Read the log of a metadata file, following the reading rules of the document.
    /// `None` when the header is not a version 2 header, the file is longer than any log,
    /// or there is no valid checkpoint.
    pub fn read_log(file: &[u8]) -> Option<Log> {
        if file.len() < HEADER_LEN
            || &file[..8] != b"SEQDBMET"
            || crc(&file[..36]) != u32_at(file, 36)
            || u32_at(file, 8) != VERSION
            || u32_at(file, 12) != HEADER_LEN as u32
            || u32_at(file, 16) != 0
            || file.len() as u64 > MAX_META
        {
            return None;
        }
        let At::Valid(first) = decode_at(file, PAGE) else {
            return None;
        };
        if first.record.kind != KIND_CHECKPOINT || !distinct(&first.record) {
            return None;
        }
        let mut at = PAGE + first.span;
        let mut chunks = std::collections::BTreeMap::new();
        continues(&first.record, &mut chunks);
        let mut records = vec![first];
        let ends_in_damage = loop {
            match decode_at(file, at) {
                At::Valid(next) => {
                    let previous = records.last().unwrap().record.generation;
                    if next.record.kind != KIND_DELTA
                        || next.record.generation != previous + 1
                        || !continues(&next.record, &mut chunks)
                    {
                        break true;
                    }
                    at += next.span;
                    records.push(next);
                }
                At::Invalid => break true,
                At::Torn => break false,
            }
        };
        // Valid records after the end with a newer generation than the log's: a copy of
        // an older record inside a torn one's bytes is no evidence of lost commits.
        let newest = records.last().unwrap().record.generation;
        let after = (at + PAGE..file.len())
            .step_by(PAGE)
            .filter(|&o| matches!(decode_at(file, o), At::Valid(r) if r.record.generation > newest))
            .collect();
        Some(Log {
            records,
            end: at,
            ends_in_damage,
            after,
        })
    }

    /// Decode the records of a metadata file's log (see [`read_log`]).
    pub fn decode(file: &[u8]) -> Option<Vec<Located>> {
        read_log(file).map(|log| log.records)
    }

    /// Whether a checkpoint lists each number once.
    fn distinct(record: &Record) -> bool {
        let mut numbers: Vec<u64> = record.entries.iter().map(|e| e.number).collect();
        numbers.sort_unstable();
        numbers.windows(2).all(|w| w[0] != w[1])
    }

    pub fn decode_at(file: &[u8], at: usize) -> At {
        let Some(head) = file.get(at..at + RECORD_HEAD) else {
            return At::Torn;
        };
        if &head[..4] != b"SQDR" {
            return At::Torn;
        }
        let body_len = u64_at(head, 4);
        if body_len > MAX_BODY {
            return At::Torn;
        }
        let Some(body) = file.get(at + RECORD_HEAD..at + RECORD_HEAD + body_len as usize) else {
            return At::Torn;
        };
        let mut hasher = crc32fast::Hasher::new();
        // The file's own database id, from its header.
        hasher.update(file.get(20..36).unwrap_or_default());
        hasher.update(&head[4..12]);
        hasher.update(body);
        if hasher.finalize() != u32_at(head, 12) {
            return At::Torn;
        }
        let Some(record) = parse(body) else {
            return At::Invalid;
        };
        let used = RECORD_HEAD + body_len as usize;
        At::Valid(Located {
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
        let generation = u64_at(take(8)?, 0);
        let kind = take(1)?[0];
        let next_number = u64_at(take(8)?, 0);
        if generation > MAX_GENERATION
            || (kind != KIND_CHECKPOINT && kind != KIND_DELTA)
            || next_number > MAX_NUMBER
        {
            return None;
        }
        let removed_count = u64::from(u32_at(take(4)?, 0));
        if removed_count > MAX_NUMBER || (kind == KIND_CHECKPOINT && removed_count > 0) {
            return None;
        }
        let mut removed = Vec::new();
        for _ in 0..removed_count {
            let n = u64_at(take(8)?, 0);
            if n >= next_number {
                return None;
            }
            removed.push(n);
        }
        let entry_count = u64::from(u32_at(take(4)?, 0));
        if entry_count > MAX_NUMBER {
            return None;
        }
        let mut entries = Vec::new();
        for _ in 0..entry_count {
            let number = u64_at(take(8)?, 0);
            let start = u64_at(take(8)?, 0);
            let reserved = u64_at(take(8)?, 0);
            let len = u64_at(take(8)?, 0);
            let name_len = u16::from_le_bytes(take(2)?.try_into().unwrap()) as usize;
            if number >= next_number || name_len > MAX_NAME {
                return None;
            }
            let name = take(name_len)?.to_vec();
            std::str::from_utf8(&name).ok()?;
            if len > MAX_DATA {
                return None;
            }
            let sums_from = u64_at(take(8)?, 0);
            let chunks = len.div_ceil(CHUNK);
            if sums_from > chunks || (kind == KIND_CHECKPOINT && sums_from != 0) {
                return None;
            }
            let mut crcs = Vec::new();
            for _ in sums_from..chunks {
                crcs.push(u32_at(take(4)?, 0));
            }
            entries.push(Entry {
                number,
                start,
                reserved,
                len,
                name,
                sums_from,
                crcs,
            });
        }
        let flags = take(1)?[0];
        if flags & !1 != 0 {
            return None;
        }
        let inline_count = u64::from(u32_at(take(4)?, 0));
        if inline_count > MAX_NUMBER {
            return None;
        }
        let mut inline = Vec::new();
        let mut total = 0u64;
        for _ in 0..inline_count {
            let offset = u64_at(take(8)?, 0);
            let len = u64::from(u32_at(take(4)?, 0));
            total += len;
            if offset < PAGE as u64 || offset + len > MAX_DATA || total > MAX_INLINE {
                return None;
            }
            inline.push((offset, take(len as usize)?.to_vec()));
        }
        if kind == KIND_CHECKPOINT && (flags != 1 || !inline.is_empty()) {
            return None;
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
            flags,
            inline,
        })
    }

    /// Whether a delta's checksums continue the regions it applies to (`chunks`: each
    /// region's checksum count before it), and the counts after it.
    fn continues(record: &Record, chunks: &mut std::collections::BTreeMap<u64, u64>) -> bool {
        let before = chunks.clone();
        for n in &record.removed {
            chunks.remove(n);
        }
        for e in &record.entries {
            let had = if record.removed.contains(&e.number) {
                0
            } else {
                before.get(&e.number).copied().unwrap_or(0)
            };
            if e.sums_from > had {
                *chunks = before;
                return false;
            }
            chunks.insert(e.number, e.len.div_ceil(CHUNK));
        }
        true
    }

    /// The regions (number to entry) after applying `records` in order.
    pub fn replay(records: &[Located]) -> std::collections::BTreeMap<u64, Entry> {
        let mut regions = std::collections::BTreeMap::new();
        for r in records {
            for n in &r.record.removed {
                regions.remove(n);
            }
            for e in &r.record.entries {
                let mut e = e.clone();
                if let Some(old) = regions.get(&e.number) {
                    let old: &Entry = old;
                    let mut crcs = old.crcs[..(e.sums_from as usize).min(old.crcs.len())].to_vec();
                    crcs.extend_from_slice(&e.crcs);
                    e.crcs = crcs;
                }
                e.sums_from = 0;
                regions.insert(e.number, e);
            }
        }
        regions
    }

    /// The bytes carried inline since the last record whose data was synced, in order:
    /// what a reader redoes.
    pub fn redo(records: &[Located]) -> Vec<(u64, Vec<u8>)> {
        let synced = records
            .iter()
            .rposition(|r| r.record.flags & 1 != 0)
            .unwrap_or(0);
        records[synced + 1..]
            .iter()
            .flat_map(|r| r.record.inline.iter().cloned())
            .collect()
    }

    /// Whether the regions of `records` are a state a reader accepts next to a data file
    /// of `data_len` bytes: numbers below the bound, names unique, reservations
    /// page-aligned, non-empty, holding their lengths, after the header page and not
    /// overlapping, and every region's bytes inside the data file.
    pub fn valid_state(records: &[Located], data_len: u64) -> bool {
        let regions = replay(records);
        // Bytes past the data file's end that the redo writes (clipped to live regions).
        let redone: Vec<(u64, u64)> = redo(records)
            .iter()
            .flat_map(|(offset, bytes)| {
                let end = offset + bytes.len() as u64;
                regions.values().filter_map(move |e| {
                    let (s, t) = (
                        (*offset).max(e.start),
                        end.min(e.start.saturating_add(e.len)),
                    );
                    (s < t).then_some((s, t))
                })
            })
            .collect();
        let holds = |start: u64, end: u64| {
            let mut at = start.max(data_len);
            while at < end {
                match redone
                    .iter()
                    .filter(|&&(s, t)| s <= at && at < t)
                    .map(|&(_, t)| t)
                    .max()
                {
                    Some(t) => at = t,
                    None => return false,
                }
            }
            true
        };
        let next_number = records.last().map_or(0, |r| r.record.next_number);
        let mut names = std::collections::BTreeSet::new();
        let mut extents = Vec::new();
        for e in regions.values() {
            let page = PAGE as u64;
            let fits = e
                .start
                .checked_add(e.len)
                .is_some_and(|end| holds(e.start, end));
            let Some(end) = e.start.checked_add(e.reserved) else {
                return false;
            };
            if e.number >= next_number
                || e.crcs.len() as u64 != e.len.div_ceil(CHUNK)
                || !names.insert(e.name.clone())
                || e.start % page != 0
                || e.reserved % page != 0
                || e.reserved == 0
                || e.len > e.reserved
                || e.start < page
                || (e.len > 0 && !fits)
            {
                return false;
            }
            extents.push((e.start, end));
        }
        extents.sort_unstable();
        extents.windows(2).all(|w| w[0].1 <= w[1].0)
    }

    /// What a reader following the document does with these files: the generation it
    /// recovers, or `None` when it must refuse them.
    pub fn verdict(meta: &[u8], data: &[u8]) -> Option<u64> {
        let log = read_log(meta)?;
        let (id, stamp) = data_header(data)?;
        if id != meta_id(meta) || log.ends_in_damage || !log.after.is_empty() {
            return None;
        }
        let newest = log.records.last().unwrap().record.generation;
        let synced = log
            .records
            .iter()
            .rev()
            .find(|r| r.record.flags & 1 != 0)
            .map_or(0, |r| r.record.generation);
        if stamp > newest + 1 || stamp < synced {
            return None;
        }
        valid_state(&log.records, data.len() as u64).then_some(newest)
    }
}
