//! Hostile files: damaged, truncated, random and crafted metadata and data files, and
//! directories that are not what they should be. Every open must return `Err` or the
//! newest commit still valid (never panic, abort or hang); where the format document
//! (`docs/FORMAT.md`) says exactly what must happen, the test holds the engine to it.
//!
//! A base database is built with several commits; the test keeps the model of every
//! generation. Its metadata file is decoded by a codec written from the format document
//! alone (`support::format`), which says, for each damaged file, which generation a
//! correct reader recovers; the codec also writes crafted records whose checksum
//! matches but whose content is hostile. Each case runs on its own thread so that a hang
//! is reported instead of blocking the suite (a case that has not returned after a
//! minute fails the test); panics are caught and counted.
//!
//! Counts grow with `SEQDB_STRESS_SCALE` (random and quickcheck cases).

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::Duration;

use quickcheck::{QuickCheck, TestResult};
use seqdb::{Database, Error, Identifier, OpenOptions};
use support::format::{self, Entry, Located, Record};
use support::{Rng, State};

/// The base database: its files, its generations, and the records of its log.
struct Base {
    data: Vec<u8>,
    meta: Vec<u8>,
    /// Region bytes by name, for every generation.
    models: BTreeMap<u64, State>,
    records: Vec<Located>,
}

fn base() -> &'static Base {
    static BASE: OnceLock<Base> = OnceLock::new();
    BASE.get_or_init(build_base)
}

fn build_base() -> Base {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let db = Database::open(&path).unwrap();
    let mut models = BTreeMap::new();
    let mut model = State::new();
    let mut rng = Rng(99);
    let mut append = |db: &Database, model: &mut State, name: &str, len: usize| {
        db.create_region_if_needed(name).unwrap();
        let bytes = rng.bytes(len);
        db.write_all_to_region(name.into(), &bytes).unwrap();
        model.entry(name.to_owned()).or_default().extend(bytes);
    };
    let commit = |db: &Database, model: &State, models: &mut BTreeMap<u64, State>| {
        db.flush().unwrap();
        let generation = db.stats().unwrap().generation;
        models.insert(generation, model.clone());
    };
    commit(&db, &model, &mut models);
    append(&db, &mut model, "a", 5000);
    append(&db, &mut model, "b", 20_000);
    append(&db, &mut model, "c", 100);
    commit(&db, &model, &mut models);
    append(&db, &mut model, "a", 3000);
    append(&db, &mut model, "b", 40_000);
    db.rename_region("c".into(), "c2").unwrap();
    let c = model.remove("c").unwrap();
    model.insert("c2".to_owned(), c);
    commit(&db, &model, &mut models);
    append(&db, &mut model, "d", 8000);
    db.remove_region("b".into()).unwrap();
    model.remove("b");
    commit(&db, &model, &mut models);
    db.truncate_region("a".into(), 1000).unwrap();
    model.get_mut("a").unwrap().truncate(1000);
    append(&db, &mut model, "c2", 500);
    commit(&db, &model, &mut models);
    let long = "e".repeat(1000);
    append(&db, &mut model, "a", 2000);
    append(&db, &mut model, &long, 6000);
    append(&db, &mut model, "d", 30_000);
    commit(&db, &model, &mut models);
    // Compaction commits (one or more generations) and shrinks the data file, so the
    // generations before it no longer fit: rolling back to them must be refused.
    let before = db.stats().unwrap().generation;
    db.compact().unwrap();
    for g in before + 1..=db.stats().unwrap().generation {
        models.insert(g, model.clone());
    }
    append(&db, &mut model, &long, 100);
    append(&db, &mut model, "f", 3000);
    commit(&db, &model, &mut models);
    db.flush_then_punch().unwrap();
    append(&db, &mut model, "a", 700);
    db.rename_region("c2".into(), "c3").unwrap();
    let c = model.remove("c2").unwrap();
    model.insert("c3".to_owned(), c);
    commit(&db, &model, &mut models);
    drop(db);
    let data = std::fs::read(path.join("data")).unwrap();
    let meta = std::fs::read(path.join("meta")).unwrap();
    let records = format::decode(&meta).expect("the base metadata header decodes");
    check_document(&records, &models, &data);
    Base {
        data,
        meta,
        models,
        records,
    }
}

/// The format document describes the engine's files: every generation decodes, in
/// order, a checkpoint first, and the replayed entries place each region's bytes.
fn check_document(records: &[Located], models: &BTreeMap<u64, State>, data: &[u8]) {
    assert_eq!(records[0].record.kind, format::KIND_CHECKPOINT);
    let newest = records.last().unwrap().record.generation;
    assert_eq!(newest, *models.keys().last().unwrap(), "newest generation");
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.offset % format::PAGE, 0, "records start on pages");
        if i > 0 {
            assert_eq!(r.record.kind, format::KIND_DELTA);
            assert_eq!(r.record.generation, records[i - 1].record.generation + 1);
        }
    }
    let regions = format::replay(records);
    let model = &models[&newest];
    assert_eq!(
        regions.len(),
        model.len(),
        "regions of the newest generation"
    );
    for entry in regions.values() {
        let name = String::from_utf8(entry.name.clone()).unwrap();
        let want = &model[&name];
        assert_eq!(entry.len, want.len() as u64, "length of {name:?}");
        assert_eq!(entry.start % 4096, 0);
        assert!(entry.reserved >= entry.len && entry.reserved % 4096 == 0);
        let at = entry.start as usize;
        assert_eq!(
            &data[at..at + want.len()],
            want.as_slice(),
            "bytes of {name:?}"
        );
    }
}

/// What an open of a damaged database may return.
#[derive(Debug, Clone)]
struct Expect {
    /// Generations an `Ok` may recover (empty: only `Err` is correct).
    generations: Vec<u64>,
    /// Whether `Err` is acceptable.
    err: bool,
    /// Whether the region bytes may differ from the model (damaged data file): they are
    /// then compared with the data file itself.
    data_damaged: bool,
    /// The regions an `Ok` must hold, when they are not the base's model of the
    /// recovered generation (a crafted state).
    state: Option<State>,
}

impl Expect {
    fn generation(g: u64) -> Self {
        Expect {
            generations: vec![g],
            err: false,
            data_damaged: false,
            state: None,
        }
    }
    fn err() -> Self {
        Expect {
            generations: Vec::new(),
            err: true,
            data_damaged: false,
            state: None,
        }
    }
    fn err_or(g: u64) -> Self {
        Expect {
            generations: vec![g],
            err: true,
            data_damaged: false,
            state: None,
        }
    }
    /// What a reader following the document recovers from `meta` next to the base's
    /// data file: the newest valid record, or an error when there is none or when its
    /// regions do not fit in the data file.
    fn from_meta(meta: &[u8]) -> Self {
        Self::from_meta_and_data(meta, base().data.len() as u64)
    }

    fn from_meta_and_data(meta: &[u8], data_len: u64) -> Self {
        match format::decode(meta) {
            Some(records) if !records.is_empty() => {
                let fits = format::replay(&records).values().all(|e| {
                    e.start
                        .checked_add(e.len)
                        .is_some_and(|end| end <= data_len)
                });
                if fits {
                    Expect::generation(records.last().unwrap().record.generation)
                } else {
                    Expect::err()
                }
            }
            _ => Expect::err(),
        }
    }
}

/// How the cases went, by kind.
#[derive(Default)]
struct Tally {
    /// Damaged databases tried.
    cases: u64,
    /// Opens (read-only and read-write) that succeeded.
    opened: u64,
    /// Opens refused with an error.
    refused: u64,
}

static TALLY: Mutex<BTreeMap<&'static str, Tally>> = Mutex::new(BTreeMap::new());
static SCRATCH: AtomicU64 = AtomicU64::new(0);

/// Count one open of a damaged database.
fn record(kind: &'static str, ok: bool) {
    let mut tally = TALLY.lock().unwrap();
    let t = tally.entry(kind).or_default();
    if ok {
        t.opened += 1;
    } else {
        t.refused += 1;
    }
}

/// Count one damaged database.
fn count_case(kind: &'static str) {
    TALLY.lock().unwrap().entry(kind).or_default().cases += 1;
}

fn print_tally(kinds: &[&str]) {
    let tally = TALLY.lock().unwrap();
    let mut total = 0;
    for kind in kinds {
        if let Some(t) = tally.get(kind) {
            println!(
                "{kind}: {} cases, {} opens succeeded, {} refused with an error",
                t.cases, t.opened, t.refused
            );
            total += t.cases;
        }
    }
    println!("hostile files tried: {total}");
}

/// A fresh directory for one case, removed when dropped.
struct CaseDir {
    _root: tempfile::TempDir,
    db: PathBuf,
}

fn case_dir() -> CaseDir {
    let root = tempfile::tempdir().unwrap();
    let db = root
        .path()
        .join(format!("db{}", SCRATCH.fetch_add(1, Ordering::Relaxed)));
    std::fs::create_dir(&db).unwrap();
    CaseDir { _root: root, db }
}

/// Run `f` on its own thread; a panic or a hang is an `Err` describing it.
fn contained<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(value) => {
            handle.join().unwrap();
            Ok(value)
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => match handle.join() {
            Err(payload) => Err(format!("panicked: {}", support::panic_message(&*payload))),
            Ok(()) => Err("ended without an answer".to_owned()),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => Err("did not return within a minute".to_owned()),
    }
}

/// Open the database in `dir` read-only and read-write, and hold each outcome to
/// `expect`. After a read-write open that succeeds, write, flush and reopen. Returns a
/// description of what is wrong, if anything.
fn try_case(kind: &'static str, dir: &Path, expect: &Expect) -> Result<String, String> {
    let mut summary = String::new();
    for read_only in [true, false] {
        let path = dir.to_owned();
        let outcome = contained(
            move || -> Result<Option<(u64, Vec<Observed>, String)>, String> {
                let db = match OpenOptions::new().read_only(read_only).open(&path) {
                    Ok(db) => db,
                    Err(e) => return Err(e.to_string()),
                };
                let observed = observe(&db)?;
                let generation = db.stats().map_err(|e| e.to_string())?.generation;
                let used = if read_only {
                    String::new()
                } else {
                    use_after_open(db, &path)?
                };
                Ok(Some((generation, observed, used)))
            },
        );
        let how = if read_only { "read-only open" } else { "open" };
        let outcome = outcome.map_err(|e| format!("{how} {e}"))?;
        match outcome {
            Err(message) if message.starts_with("after open:") => {
                return Err(format!("{how}: {message}"));
            }
            Err(message) => {
                record(kind, false);
                if !expect.err {
                    return Err(format!(
                        "{how} failed ({message}); expected generation {:?}",
                        expect.generations
                    ));
                }
                summary = format!("refused: {message}");
            }
            Ok(None) => unreachable!(),
            Ok(Some((generation, observed, used))) => {
                record(kind, true);
                summary = format!("opened generation {generation}{used}");
                if !expect.generations.contains(&generation) {
                    return Err(format!(
                        "{how} recovered generation {generation}; expected {}{:?}",
                        if expect.err { "an error or " } else { "" },
                        expect.generations
                    ));
                }
                compare(generation, &observed, dir, expect).map_err(|e| format!("{how}: {e}"))?;
            }
        }
    }
    Ok(summary)
}

/// One region as an open database shows it.
struct Observed {
    name: String,
    number: usize,
    start: u64,
    len: u64,
    bytes: Vec<u8>,
}

fn observe(db: &Database) -> Result<Vec<Observed>, String> {
    let mut out = Vec::new();
    for region in db.regions() {
        let reader = db
            .create_region_reader(Identifier::Number(region.number()))
            .map_err(|e| format!("after open: reader of {}: {e}", region.name()))?;
        out.push(Observed {
            name: region.name().to_owned(),
            number: region.number(),
            start: region.start(),
            len: region.len(),
            bytes: reader.read_all().to_vec(),
        });
    }
    Ok(out)
}

/// A database that opened must also take writes: create, append, flush, reopen. Errors
/// are acceptable (the damage may be in the way), panics are not; a flush that succeeds
/// must be visible after reopening.
fn use_after_open(db: Database, path: &Path) -> Result<String, String> {
    let before = db.stats().map_err(|e| e.to_string())?.generation;
    let written = db
        .create_region_if_needed("hostile-after")
        .and_then(|_| db.write_all_to_region("hostile-after".into(), b"still usable"))
        .and_then(|()| db.flush());
    drop(db);
    if let Err(e) = written {
        return Ok(format!(", then a write was refused: {e}"));
    }
    let db = Database::open(path)
        .map_err(|e| format!("after open: reopen after a successful flush failed: {e}"))?;
    let generation = db.stats().map_err(|e| e.to_string())?.generation;
    let reader = db
        .create_region_reader("hostile-after".into())
        .map_err(|e| format!("after open: the flushed region is gone: {e}"))?;
    if reader.read_all() != b"still usable" || generation != before + 1 {
        return Err(format!(
            "after open: the flush after recovery was not kept (generation {generation}, \
             expected {})",
            before + 1
        ));
    }
    Ok(", then took a write and a flush".to_owned())
}

/// Compare what an open returned with the model of `generation`.
fn compare(
    generation: u64,
    observed: &[Observed],
    dir: &Path,
    expect: &Expect,
) -> Result<(), String> {
    let base = base();
    let model = match &expect.state {
        Some(state) => state,
        None => &base.models[&generation],
    };
    let regions: Vec<&Observed> = observed
        .iter()
        .filter(|o| o.name != "hostile-after")
        .collect();
    if regions.len() != model.len() {
        let names: Vec<_> = regions.iter().map(|o| support::short(&o.name)).collect();
        return Err(format!(
            "generation {generation} shows regions {names:?}, expected {}",
            model.len()
        ));
    }
    let data = std::fs::File::open(dir.join("data")).map_err(|e| e.to_string())?;
    for o in regions {
        let Some(want) = model.get(&o.name) else {
            return Err(format!("unexpected region {}", support::short(&o.name)));
        };
        if o.len != want.len() as u64 || o.bytes.len() != want.len() {
            return Err(format!(
                "region {} has {} bytes, expected {}",
                support::short(&o.name),
                o.len,
                want.len()
            ));
        }
        let intact = if expect.state.is_some() {
            want.len()
        } else if expect.data_damaged {
            0
        } else {
            intact_prefix(generation, o.number as u64, o.start, want.len() as u64)
        };
        if o.bytes[..intact] != want[..intact] {
            return Err(format!(
                "region {}: bytes differ from generation {generation}",
                support::short(&o.name)
            ));
        }
        // Whatever else, the bytes are the data file's at the region's place.
        let mut on_disk = vec![0u8; o.bytes.len()];
        let read = std::os::unix::fs::FileExt::read_exact_at(&data, &mut on_disk, o.start);
        if read.is_err() || on_disk != o.bytes {
            return Err(format!(
                "region {} does not read the data file's bytes",
                support::short(&o.name)
            ));
        }
    }
    Ok(())
}

/// How many leading bytes of region `number` (as of `generation`, at `start` with
/// `len` bytes) no later commit of the base can have overwritten.
fn intact_prefix(generation: u64, number: u64, start: u64, len: u64) -> usize {
    let mut intact = len;
    for r in &base().records {
        if r.record.generation <= generation {
            continue;
        }
        for e in &r.record.entries {
            let overlaps = e.start < start + len && start < e.start + e.reserved.max(e.len);
            if !overlaps {
                continue;
            }
            if e.number == number && e.start == start {
                intact = intact.min(e.len);
            } else {
                return 0;
            }
        }
    }
    intact as usize
}

/// Write `data` and `meta` (either may be absent) into a fresh directory and try it.
fn case(
    kind: &'static str,
    label: &str,
    data: Option<&[u8]>,
    meta: Option<&[u8]>,
    expect: Expect,
    failures: &mut Vec<String>,
) {
    count_case(kind);
    let dir = case_dir();
    if let Some(data) = data {
        std::fs::write(dir.db.join("data"), data).unwrap();
    }
    if let Some(meta) = meta {
        std::fs::write(dir.db.join("meta"), meta).unwrap();
    }
    match try_case(kind, &dir.db, &expect) {
        Ok(summary) if kind.starts_with("crafted") => println!("{kind} / {label}: {summary}"),
        Ok(_) => {}
        Err(why) => {
            let message = format!("{kind} / {label}: {why}");
            eprintln!("FAILED: {message}");
            failures.push(message);
        }
    }
}

fn finish(failures: Vec<String>, kinds: &[&str]) {
    print_tally(kinds);
    assert!(
        failures.is_empty(),
        "{} hostile cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Offsets worth cutting or damaging the metadata file at: every page boundary, each
/// header byte, and bytes around every record's head and end.
fn interesting_offsets(base: &Base) -> Vec<usize> {
    let len = base.meta.len();
    let mut out: Vec<usize> = (0..=len).step_by(format::PAGE).collect();
    out.extend(0..=format::HEADER_LEN + 1);
    for r in &base.records {
        for d in [0, 1, 3, 4, 7, 8, 11, 12, 13, 20, 21, 29, 30] {
            out.push(r.offset + d);
        }
        for d in [0, 1, 2] {
            out.push(r.offset + r.used - d);
            out.push(r.offset + r.used + d);
        }
        out.push(r.offset + r.span - 1);
    }
    out.retain(|&o| o <= len);
    out.sort_unstable();
    out.dedup();
    out
}

#[test]
fn truncated_metadata_recovers_the_newest_complete_commit() {
    let base = base();
    let mut failures = Vec::new();
    let mut rng = Rng(support::seed_or(5));
    let mut cuts = interesting_offsets(base);
    for _ in 0..20 * support::scale() {
        cuts.push(rng.below(base.meta.len() as u64) as usize);
    }
    for cut in cuts {
        let meta = &base.meta[..cut];
        let expect = Expect::from_meta(meta);
        case(
            "metadata truncated",
            &format!("cut at {cut}"),
            Some(&base.data),
            Some(meta),
            expect,
            &mut failures,
        );
    }
    finish(failures, &["metadata truncated"]);
}

#[test]
fn zeroed_and_random_metadata_recovers_or_refuses() {
    let base = base();
    let mut failures = Vec::new();
    let mut rng = Rng(support::seed_or(6));
    let pages = base.meta.len() / format::PAGE;
    // The whole file zeroed, or random, or random with a valid header.
    let zeros = vec![0u8; base.meta.len()];
    case(
        "metadata zeroed",
        "whole file",
        Some(&base.data),
        Some(&zeros),
        Expect::err(),
        &mut failures,
    );
    for i in 0..10 * support::scale() {
        let mut meta = rng.bytes(base.meta.len());
        let expect = Expect::from_meta(&meta);
        case(
            "metadata random",
            &format!("random file {i}"),
            Some(&base.data),
            Some(&meta),
            expect,
            &mut failures,
        );
        meta[..format::PAGE].copy_from_slice(&base.meta[..format::PAGE]);
        let expect = Expect::from_meta(&meta);
        case(
            "metadata random",
            &format!("header, then random {i}"),
            Some(&base.data),
            Some(&meta),
            expect,
            &mut failures,
        );
        let len = rng.below(3 * format::PAGE as u64) as usize;
        let meta = rng.bytes(len);
        let expect = Expect::from_meta(&meta);
        case(
            "metadata random",
            &format!("{len} random bytes"),
            Some(&base.data),
            Some(&meta),
            expect,
            &mut failures,
        );
    }
    // Each page zeroed, or replaced by random bytes, on its own.
    for page in 0..pages {
        let range = page * format::PAGE..(page + 1) * format::PAGE;
        let mut meta = base.meta.clone();
        meta[range.clone()].fill(0);
        let expect = Expect::from_meta(&meta);
        case(
            "metadata zeroed",
            &format!("page {page}"),
            Some(&base.data),
            Some(&meta),
            expect,
            &mut failures,
        );
        meta[range].copy_from_slice(&rng.bytes(format::PAGE));
        let expect = Expect::from_meta(&meta);
        case(
            "metadata random",
            &format!("page {page}"),
            Some(&base.data),
            Some(&meta),
            expect,
            &mut failures,
        );
    }
    finish(failures, &["metadata zeroed", "metadata random"]);
}

#[test]
fn bit_flips_in_metadata_recover_or_refuse() {
    static FAILURES: Mutex<Vec<String>> = Mutex::new(Vec::new());
    fn flip(position: usize, bit: u8) -> TestResult {
        let base = base();
        let mut meta = base.meta.clone();
        // Mostly inside the header and the records' used bytes, where a flip matters.
        let used: Vec<usize> = (0..format::HEADER_LEN)
            .chain(
                base.records
                    .iter()
                    .flat_map(|r| r.offset..r.offset + r.used),
            )
            .collect();
        let at = if position.is_multiple_of(8) {
            position % meta.len()
        } else {
            used[position % used.len()]
        };
        meta[at] ^= 1 << (bit % 8);
        let expect = Expect::from_meta(&meta);
        let mut failures = Vec::new();
        case(
            "metadata bit flipped",
            &format!("bit {} of byte {at}", bit % 8),
            Some(&base.data),
            Some(&meta),
            expect,
            &mut failures,
        );
        let ok = failures.is_empty();
        FAILURES.lock().unwrap().extend(failures);
        TestResult::from_bool(ok)
    }
    fn set(position: usize, value: u8) -> TestResult {
        let base = base();
        let mut meta = base.meta.clone();
        let at = position % meta.len();
        if meta[at] == value {
            return TestResult::discard();
        }
        meta[at] = value;
        let expect = Expect::from_meta(&meta);
        let mut failures = Vec::new();
        case(
            "metadata byte set",
            &format!("byte {at} set to {value}"),
            Some(&base.data),
            Some(&meta),
            expect,
            &mut failures,
        );
        let ok = failures.is_empty();
        FAILURES.lock().unwrap().extend(failures);
        TestResult::from_bool(ok)
    }
    let tests = 300 * support::scale();
    QuickCheck::new()
        .tests(tests)
        .max_tests(10 * tests)
        .quickcheck(flip as fn(usize, u8) -> TestResult);
    QuickCheck::new()
        .tests(tests)
        .max_tests(10 * tests)
        .quickcheck(set as fn(usize, u8) -> TestResult);
    let failures = std::mem::take(&mut *FAILURES.lock().unwrap());
    finish(failures, &["metadata bit flipped", "metadata byte set"]);
}

#[test]
fn damaged_data_files_are_refused_or_read_as_they_are() {
    let base = base();
    let newest = *base.models.keys().last().unwrap();
    let regions = format::replay(&base.records);
    let needed = regions.values().map(|e| e.start + e.len).max().unwrap_or(0) as usize;
    let mut failures = Vec::new();
    let mut rng = Rng(support::seed_or(8));
    // Shrunk while closed: at every page boundary, and at bytes around the regions' ends.
    let mut cuts: Vec<usize> = (0..=base.data.len()).step_by(format::PAGE).collect();
    for e in regions.values() {
        let end = (e.start + e.len) as usize;
        cuts.extend([end.saturating_sub(1), end, end + 1]);
    }
    for _ in 0..10 * support::scale() {
        cuts.push(rng.below(base.data.len() as u64 + 1) as usize);
    }
    cuts.retain(|&c| c <= base.data.len());
    cuts.sort_unstable();
    cuts.dedup();
    for cut in cuts {
        let expect = if cut >= needed {
            Expect::generation(newest)
        } else {
            Expect::err()
        };
        case(
            "data shrunk",
            &format!("cut at {cut} (regions need {needed})"),
            Some(&base.data[..cut]),
            Some(&base.meta),
            expect,
            &mut failures,
        );
    }
    // Missing altogether: the metadata names regions the data file cannot hold.
    case(
        "data shrunk",
        "data file missing",
        None,
        Some(&base.meta),
        Expect::err(),
        &mut failures,
    );
    // Zeroed, random, or with flipped bits: the data file has no checksums, so the
    // database opens and reads what the file holds.
    let damaged = Expect {
        data_damaged: true,
        ..Expect::generation(newest)
    };
    let zeros = vec![0u8; base.data.len()];
    case(
        "data damaged",
        "zeroed",
        Some(&zeros),
        Some(&base.meta),
        damaged.clone(),
        &mut failures,
    );
    for i in 0..20 * support::scale() {
        let mut data = base.data.clone();
        if i % 4 == 0 {
            data = rng.bytes(data.len());
        } else {
            for _ in 0..=rng.below(20) {
                let at = rng.below(data.len() as u64) as usize;
                data[at] ^= 1 << rng.below(8);
            }
        }
        case(
            "data damaged",
            &format!("random damage {i}"),
            Some(&data),
            Some(&base.meta),
            damaged.clone(),
            &mut failures,
        );
    }
    // Grown while closed (sparse): the regions are all still there.
    let dir = case_dir();
    std::fs::write(dir.db.join("data"), &base.data).unwrap();
    std::fs::write(dir.db.join("meta"), &base.meta).unwrap();
    std::fs::File::options()
        .write(true)
        .open(dir.db.join("data"))
        .unwrap()
        .set_len(64 << 30)
        .unwrap();
    count_case("data grown");
    if let Err(why) = try_case("data grown", &dir.db, &Expect::err_or(newest)) {
        failures.push(format!("data grown to 64 GiB: {why}"));
    }
    finish(failures, &["data shrunk", "data damaged", "data grown"]);
}

/// The records of the base log, re-encoded with the test's codec (checks that the codec
/// and the engine agree byte for byte), plus `extra` appended after them.
fn log_with(extra: &[Vec<u8>]) -> Vec<u8> {
    let base = base();
    let mut records: Vec<Vec<u8>> = base
        .records
        .iter()
        .map(|r| format::record(&r.record))
        .collect();
    records.extend(extra.iter().cloned());
    format::file(&records)
}

/// A checkpoint that replaces the whole log.
fn checkpoint_file(generation: u64, next_number: u64, entries: Vec<Entry>) -> Vec<u8> {
    format::file(&[format::record(&Record {
        generation,
        kind: format::KIND_CHECKPOINT,
        next_number,
        removed: Vec::new(),
        entries,
    })])
}

#[test]
fn crafted_records_with_valid_checksums_are_refused_or_ignored() {
    let base = base();
    let newest = base.records.last().unwrap().record.generation;
    let regions = format::replay(&base.records);
    let next_number = base.records.last().unwrap().record.next_number;
    let first = regions.values().next().unwrap().clone();
    let second = regions.values().nth(1).unwrap().clone();
    let data_len = base.data.len() as u64;
    let mut failures = Vec::new();

    // The codec writes the engine's own log byte for byte.
    assert_eq!(
        log_with(&[]),
        base.meta,
        "re-encoded log equals the engine's"
    );

    let delta = |entries: Vec<Entry>, removed: Vec<u64>| Record {
        generation: newest + 1,
        kind: format::KIND_DELTA,
        next_number,
        removed,
        entries,
    };
    let with = |e: &Entry, f: &dyn Fn(&mut Entry)| {
        let mut e = e.clone();
        f(&mut e);
        e
    };
    let mut crafted: Vec<(&str, Record, Expect)> = vec![
        (
            "region moved onto another region",
            delta(vec![with(&first, &|e| e.start = second.start)], vec![]),
            Expect::err_or(newest),
        ),
        (
            "region past the end of the data file",
            delta(
                vec![with(&first, &|e| {
                    e.start = data_len.div_ceil(4096) * 4096;
                    e.reserved = 4096;
                    e.len = 10;
                })],
                vec![],
            ),
            Expect::err_or(newest),
        ),
        (
            "length beyond the data file",
            delta(
                vec![with(&first, &|e| {
                    e.len = 1 << 40;
                    e.reserved = 1 << 40;
                })],
                vec![],
            ),
            Expect::err_or(newest),
        ),
        (
            "start + length overflows",
            delta(
                vec![with(&first, &|e| {
                    e.start = u64::MAX - 4095;
                    e.len = 8192;
                })],
                vec![],
            ),
            Expect::err_or(newest),
        ),
        (
            "reservation of the whole address space",
            delta(vec![with(&first, &|e| e.reserved = u64::MAX)], vec![]),
            Expect::err_or(newest),
        ),
        (
            "start not page-aligned",
            delta(vec![with(&first, &|e| e.start += 1)], vec![]),
            Expect::err_or(newest),
        ),
        (
            "reservation shorter than the length",
            delta(
                vec![with(&first, &|e| {
                    e.reserved = e.len.saturating_sub(1) / 4096 * 4096
                })],
                vec![],
            ),
            Expect::err_or(newest),
        ),
        (
            "number not below the next number",
            delta(
                vec![with(&first, &|e| {
                    e.number = next_number + 5;
                    e.name = b"fresh".to_vec();
                    e.start = data_len.div_ceil(4096) * 4096 + 4096;
                    e.len = 0;
                    e.reserved = 4096;
                })],
                vec![],
            ),
            Expect::err_or(newest),
        ),
        (
            "two regions with one name",
            delta(
                vec![with(&second, &|e| e.name = first.name.clone())],
                vec![],
            ),
            Expect::err_or(newest),
        ),
        (
            "name that is not UTF-8",
            delta(
                vec![with(&first, &|e| e.name = vec![0xff, 0xfe, b'x'])],
                vec![],
            ),
            Expect::err_or(newest),
        ),
        (
            "generation skipped",
            Record {
                generation: newest + 2,
                ..delta(
                    vec![with(&first, &|e| e.name = b"skipped".to_vec())],
                    vec![],
                )
            },
            Expect::generation(newest),
        ),
        (
            "generation repeated",
            Record {
                generation: newest,
                ..delta(
                    vec![with(&first, &|e| e.name = b"repeated".to_vec())],
                    vec![],
                )
            },
            Expect::generation(newest),
        ),
        (
            "checkpoint in the middle of the log",
            Record {
                kind: format::KIND_CHECKPOINT,
                ..delta(vec![], vec![])
            },
            Expect::generation(newest),
        ),
        (
            "unknown record kind",
            Record {
                kind: 3,
                ..delta(vec![], vec![])
            },
            Expect::generation(newest),
        ),
        (
            "next number at the top of the range",
            Record {
                next_number: u64::MAX,
                ..delta(vec![], vec![])
            },
            Expect {
                state: Some(base.models[&newest].clone()),
                ..Expect::err_or(newest + 1)
            },
        ),
    ];
    // A benign delta (a rename) must be applied: the codec follows the document.
    let mut renamed = base.models[&newest].clone();
    let first_name = String::from_utf8(first.name.clone()).unwrap();
    let bytes = renamed.remove(&first_name).unwrap();
    renamed.insert("renamed by hand".to_owned(), bytes);
    crafted.push((
        "a valid rename",
        delta(
            vec![with(&first, &|e| e.name = b"renamed by hand".to_vec())],
            vec![],
        ),
        Expect {
            state: Some(renamed),
            ..Expect::generation(newest + 1)
        },
    ));
    for (label, record, expect) in crafted {
        let meta = log_with(&[format::record(&record)]);
        let kind = "crafted delta";
        case(
            kind,
            label,
            Some(&base.data),
            Some(&meta),
            expect,
            &mut failures,
        );
    }

    // Bodies the codec would never write, framed with a correct checksum.
    let good_body = format::body(&delta(vec![], vec![]));
    let mut bodies: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut huge_removed = good_body.clone();
    huge_removed[17..21].copy_from_slice(&u32::MAX.to_le_bytes());
    bodies.push(("removed count of 2^32 - 1", huge_removed));
    let mut huge_entries = good_body.clone();
    huge_entries[21..25].copy_from_slice(&u32::MAX.to_le_bytes());
    bodies.push(("entry count of 2^32 - 1", huge_entries));
    let mut trailing = good_body.clone();
    trailing.extend_from_slice(b"trailing");
    bodies.push(("bytes after the last entry", trailing));
    bodies.push(("empty body", Vec::new()));
    bodies.push(("body cut in the generation", good_body[..5].to_vec()));
    let mut long_name = format::body(&delta(vec![first.clone()], vec![]));
    let name_len_at = long_name.len() - first.name.len() - 2;
    long_name[name_len_at..name_len_at + 2].copy_from_slice(&u16::MAX.to_le_bytes());
    bodies.push(("name length past the body", long_name));
    for (label, body) in bodies {
        let meta = log_with(&[format::frame(&body)]);
        case(
            "crafted body",
            label,
            Some(&base.data),
            Some(&meta),
            Expect::generation(newest),
            &mut failures,
        );
    }
    // A head that claims a body of 4 GiB.
    let mut giant = format::record(&delta(vec![], vec![]));
    giant[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    let meta = log_with(&[giant]);
    case(
        "crafted body",
        "body length of 2^32 - 1",
        Some(&base.data),
        Some(&meta),
        Expect::generation(newest),
        &mut failures,
    );

    // Whole checkpoints: invalid ones leave no commit to fall back on.
    let entry = |number: u64, start: u64, len: u64, name: &[u8]| Entry {
        number,
        start,
        reserved: len.div_ceil(4096).max(1) * 4096,
        len,
        name: name.to_vec(),
    };
    let checkpoints: Vec<(&str, Vec<u8>, Expect)> = vec![
        (
            "checkpoint with a name that is not UTF-8",
            checkpoint_file(1, 1, vec![entry(0, 0, 10, &[0xc3, 0x28])]),
            Expect::err(),
        ),
        (
            "checkpoint with a number twice",
            checkpoint_file(1, 2, vec![entry(0, 0, 10, b"a"), entry(0, 8192, 10, b"b")]),
            Expect::err(),
        ),
        (
            "checkpoint with overlapping regions",
            checkpoint_file(
                1,
                2,
                vec![entry(0, 0, 9000, b"a"), entry(1, 4096, 10, b"b")],
            ),
            Expect::err(),
        ),
        (
            "checkpoint with a region past the data file",
            checkpoint_file(1, 1, vec![entry(0, data_len * 2, 10, b"a")]),
            Expect::err(),
        ),
        (
            "checkpoint with a name of 65535 bytes",
            checkpoint_file(1, 1, vec![entry(0, 0, 10, &[b'n'; 65535])]),
            Expect {
                state: Some(State::from([("n".repeat(65535), base.data[..10].to_vec())])),
                ..Expect::err_or(1)
            },
        ),
        ("header only", format::file(&[]), Expect::err()),
        ("empty file", Vec::new(), Expect::err()),
        (
            "foreign file",
            b"SQLite format 3\0".repeat(300),
            Expect::err(),
        ),
    ];
    for (label, meta, expect) in checkpoints {
        case(
            "crafted checkpoint",
            label,
            Some(&base.data),
            Some(&meta),
            expect,
            &mut failures,
        );
    }
    finish(
        failures,
        &["crafted delta", "crafted body", "crafted checkpoint"],
    );
}

#[test]
fn headers_and_directories_give_the_documented_errors() {
    let base = base();
    let mut failures = Vec::new();
    let check = |label: &str, result: Result<Result<Database, Error>, String>, want: &str| {
        count_case("headers and directories");
        record(
            "headers and directories",
            result.as_ref().is_ok_and(Result::is_ok),
        );
        let got = match &result {
            Ok(Ok(_)) => "Ok".to_owned(),
            Ok(Err(e)) => format!("{e:?}"),
            Err(panic) => format!("panic: {panic}"),
        };
        (!got.starts_with(want)).then(|| format!("{label}: expected {want}, got {got}"))
    };
    let open_with = |data: Option<&[u8]>, meta: Option<&[u8]>| {
        let dir = case_dir();
        if let Some(data) = data {
            std::fs::write(dir.db.join("data"), data).unwrap();
        }
        if let Some(meta) = meta {
            std::fs::write(dir.db.join("meta"), meta).unwrap();
        }
        contained(move || {
            let result = Database::open(&dir.db);
            drop(dir);
            result
        })
    };
    let header_with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut meta = base.meta.clone();
        let mut header = format::header(1, 0);
        f(&mut header);
        meta[..format::HEADER_LEN].copy_from_slice(&header[..format::HEADER_LEN]);
        meta
    };
    let newer = header_with(&|h| *h = format::header(2, 0));
    let flagged = header_with(&|h| *h = format::header(1, 1));
    let bad_sum = header_with(&|h| h[20] ^= 0xff);
    let bad_len = header_with(&|h| {
        h[12] = 25;
        let sum = format::crc(&h[..20]);
        h[20..24].copy_from_slice(&sum.to_le_bytes());
    });
    let foreign = header_with(&|h| h[0] = b'X');
    failures.extend(check(
        "format version 2",
        open_with(Some(&base.data), Some(&newer)),
        "UnsupportedVersion",
    ));
    failures.extend(check(
        "header flags set",
        open_with(Some(&base.data), Some(&flagged)),
        "Corrupt",
    ));
    failures.extend(check(
        "header checksum wrong",
        open_with(Some(&base.data), Some(&bad_sum)),
        "Corrupt",
    ));
    failures.extend(check(
        "header length wrong",
        open_with(Some(&base.data), Some(&bad_len)),
        "Corrupt",
    ));
    failures.extend(check(
        "magic wrong",
        open_with(Some(&base.data), Some(&foreign)),
        "ForeignFile",
    ));
    failures.extend(check(
        "metadata missing",
        open_with(Some(&base.data), None),
        "MissingMetadata",
    ));
    // A stale checkpoint file is ignored (and removed by a read-write open).
    {
        let dir = case_dir();
        std::fs::write(dir.db.join("data"), &base.data).unwrap();
        std::fs::write(dir.db.join("meta"), &base.meta).unwrap();
        std::fs::write(dir.db.join("meta.tmp"), b"half a checkpoint").unwrap();
        let newest = *base.models.keys().last().unwrap();
        count_case("headers and directories");
        if let Err(why) = try_case(
            "headers and directories",
            &dir.db,
            &Expect::generation(newest),
        ) {
            failures.push(format!("stale meta.tmp: {why}"));
        }
    }
    // The database path is a regular file.
    {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("not-a-dir");
        std::fs::write(&file, b"hello").unwrap();
        let path = file.clone();
        failures.extend(check(
            "database path is a file",
            contained(move || Database::open(&path)),
            "NotADirectory",
        ));
        let path = file.clone();
        failures.extend(check(
            "database path is a file (read-only)",
            contained(move || Database::open_read_only(&path)),
            "NotADirectory",
        ));
        let path = file.join("below");
        failures.extend(check(
            "database path below a file",
            contained(move || Database::open(&path)),
            "Directory",
        ));
    }
    // The data or metadata file is a directory.
    for (name, other) in [("data", "meta"), ("meta", "data")] {
        let dir = case_dir();
        std::fs::create_dir(dir.db.join(name)).unwrap();
        let bytes = if other == "meta" {
            &base.meta
        } else {
            &base.data
        };
        std::fs::write(dir.db.join(other), bytes).unwrap();
        let path = dir.db.clone();
        let result = contained(move || Database::open(&path));
        count_case("headers and directories");
        record(
            "headers and directories",
            result.as_ref().is_ok_and(Result::is_ok),
        );
        match result {
            Ok(Err(e)) => {
                let message = e.to_string();
                if !message.contains(name) {
                    failures.push(format!(
                        "{name} is a directory: error does not name it: {message}"
                    ));
                }
            }
            Ok(Ok(_)) => failures.push(format!("{name} is a directory: opened")),
            Err(panic) => failures.push(format!("{name} is a directory: {panic}")),
        }
    }
    finish(failures, &["headers and directories"]);
}
