//! Hostile files: damaged, truncated, random and crafted metadata and data files, and
//! directories that are not what they should be. Every open must return `Err` or the
//! newest commit a crash could have left (never panic, abort, hang or take quadratic
//! time); where the format document (`docs/FORMAT.md`) says exactly what must happen,
//! the test holds the engine to it.
//!
//! A base database is built with several commits; the test keeps the model of every
//! generation. Its files are read by a codec written from the format document alone
//! (`support::format`), which says, for each damaged pair of files, what a correct
//! reader does: the generation it recovers, or a refusal. The codec also writes
//! crafted records whose checksum matches but whose content is hostile. Each case runs
//! on its own thread so that a hang is reported instead of blocking the suite (a case
//! that has not returned after a minute fails the test); panics are caught and counted.
//! Every case is also checked with `seqdb::check`, which must call healthy exactly what
//! opens and name the damage of what does not; a refused database is then recovered
//! with `OpenOptions::recover`, which must leave a database that opens.
//!
//! Counts grow with `SEQDB_STRESS_SCALE` (random and quickcheck cases).

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use quickcheck::{QuickCheck, TestResult};
use seqdb::{Database, Error, Identifier, OpenOptions};
use support::format::{self, Entry, Located, Record};
use support::{Rng, State};

/// The base database: its files, its generations, and the records of its log.
struct Base {
    data: Vec<u8>,
    meta: Vec<u8>,
    /// The database's id, in both files' headers.
    id: [u8; 16],
    /// Region bytes by name, for every generation.
    models: BTreeMap<u64, State>,
    records: Vec<Located>,
}

impl Base {
    fn newest(&self) -> u64 {
        *self.models.keys().last().unwrap()
    }
}

fn base() -> &'static Base {
    static BASE: OnceLock<Base> = OnceLock::new();
    BASE.get_or_init(|| build_base(99))
}

/// Another database made the same way (same regions and bytes): its own id.
fn other_base() -> &'static Base {
    static OTHER: OnceLock<Base> = OnceLock::new();
    OTHER.get_or_init(|| build_base(99))
}

fn build_base(seed: u64) -> Base {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let db = Database::open(&path).unwrap();
    let mut models = BTreeMap::new();
    let mut model = State::new();
    let mut rng = Rng(seed);
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
    let id = format::meta_id(&meta);
    check_document(&records, &models, &data, &id);
    Base {
        data,
        meta,
        id,
        models,
        records,
    }
}

/// The format document describes the engine's files: every generation decodes, in
/// order, a checkpoint first, the replayed entries place each region's bytes, and the
/// data file's header names the database and its newest commit.
fn check_document(records: &[Located], models: &BTreeMap<u64, State>, data: &[u8], id: &[u8; 16]) {
    assert_eq!(records[0].record.kind, format::KIND_CHECKPOINT);
    let newest = records.last().unwrap().record.generation;
    assert_eq!(newest, *models.keys().last().unwrap(), "newest generation");
    assert_eq!(
        format::data_header(data),
        Some((*id, newest)),
        "the data file's header"
    );
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
        assert!(
            entry.start >= 4096,
            "regions start after the data file's header"
        );
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
    /// What a reader following the document does with `meta` next to the base's data
    /// file.
    fn from_meta(meta: &[u8]) -> Self {
        Self::from_files(meta, &base().data)
    }

    /// What a reader following the document does with these files: the generation the
    /// codec recovers, or a refusal.
    fn from_files(meta: &[u8], data: &[u8]) -> Self {
        match format::verdict(meta, data) {
            Some(g) => Expect::generation(g),
            None => Expect::err(),
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
    /// Refused databases that recovery made usable again.
    recovered: u64,
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

fn count_recovered(kind: &'static str) {
    TALLY.lock().unwrap().entry(kind).or_default().recovered += 1;
}

fn print_tally(kinds: &[&str]) {
    let tally = TALLY.lock().unwrap();
    let mut total = 0;
    for kind in kinds {
        if let Some(t) = tally.get(kind) {
            println!(
                "{kind}: {} cases, {} opens succeeded, {} refused with an error, {} \
                 recovered after a refusal",
                t.cases, t.opened, t.refused, t.recovered
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

/// What `seqdb::check` said: healthy, or the problems it names (or the error it gave).
fn checked(dir: &Path) -> Result<Result<(), Vec<String>>, String> {
    let path = dir.to_owned();
    let report = contained(move || seqdb::check(&path)).map_err(|e| format!("check {e}"))?;
    Ok(match report {
        Ok(report) if report.is_healthy() => Ok(()),
        Ok(report) => Err(report.problems),
        Err(e) => Err(vec![format!("check failed: {e}")]),
    })
}

/// Open the database in `dir` read-only and read-write, and hold each outcome to
/// `expect`. The check must agree with the read-only open. After a read-write open
/// that succeeds, write, flush and reopen; after one that is refused, recover. Returns a
/// description of what is wrong, if anything.
fn try_case(kind: &'static str, dir: &Path, expect: &Expect) -> Result<String, String> {
    let mut summary = String::new();
    let check = checked(dir)?;
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
        if read_only {
            agree(&check, &outcome)?;
        }
        // Bytes the last commits carried in the log are missing from the data file: a
        // read-only open cannot write them, a read-write open must.
        if read_only
            && let Err(message) = &outcome
            && message.contains("open it read-write once")
        {
            record(kind, false);
            continue;
        }
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
                if !read_only {
                    summary.push_str(&recover_after_refusal(kind, dir, expect)?);
                }
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

/// The check calls healthy exactly what opens, and names some damage itself (not only
/// that the open fails) when it does not.
fn agree<T>(check: &Result<(), Vec<String>>, open: &Result<T, String>) -> Result<(), String> {
    match (check, open) {
        (Ok(()), Ok(_)) => Ok(()),
        (Ok(()), Err(message)) => Err(format!(
            "check calls the database healthy but a read-only open fails: {message}"
        )),
        (Err(problems), Ok(_)) => Err(format!(
            "check finds problems but a read-only open succeeds: {problems:?}"
        )),
        (Err(problems), Err(_)) => {
            if problems
                .iter()
                .all(|p| p.starts_with("a read-only open fails"))
            {
                Err(format!("check names no damage of its own: {problems:?}"))
            } else {
                Ok(())
            }
        }
    }
}

/// After a refusal: recovery either fails too, or leaves a database that opens without
/// it, at the generation it reported, holding that generation's regions.
fn recover_after_refusal(
    kind: &'static str,
    dir: &Path,
    expect: &Expect,
) -> Result<String, String> {
    let path = dir.to_owned();
    let recovered = contained(move || {
        let db = OpenOptions::new().recover(true).open(&path)?;
        let report = db.recovery_report().cloned();
        drop(db);
        Ok::<_, Error>(report)
    })
    .map_err(|e| format!("recovery {e}"))?;
    let report = match recovered {
        Err(e) => return Ok(format!("; recovery refused too: {e}")),
        Ok(None) => return Err("recovery opened without reporting any damage".to_owned()),
        Ok(Some(report)) => report,
    };
    let path = dir.to_owned();
    let reopened = contained(move || -> Result<(u64, Vec<Observed>), String> {
        let db = Database::open_read_only(&path).map_err(|e| e.to_string())?;
        let generation = db.stats().map_err(|e| e.to_string())?.generation;
        Ok((generation, observe(&db)?))
    })
    .map_err(|e| format!("open after recovery {e}"))?
    .map_err(|e| format!("after recovery ({report}), the database still does not open: {e}"))?;
    let (generation, observed) = reopened;
    if generation != report.generation {
        return Err(format!(
            "recovery reported generation {} but the database opens at {generation}",
            report.generation
        ));
    }
    if let Err(problems) = checked(dir)? {
        return Err(format!("after recovery, check finds {problems:?}"));
    }
    if expect.state.is_none() && base().models.contains_key(&generation) {
        let known = Expect {
            generations: vec![generation],
            ..expect.clone()
        };
        compare(generation, &observed, dir, &known)
            .map_err(|e| format!("after recovery to generation {generation}: {e}"))?;
    }
    count_recovered(kind);
    Ok(format!("; recovered generation {generation}"))
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
        for d in [0, 1, 3, 4, 7, 8, 11, 12, 15, 16, 17, 24, 25, 33, 34] {
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
fn truncated_metadata_opens_only_where_a_crash_could_have_cut_it() {
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
    // What the document says, spelled out: the log may lose its last record (torn, or
    // not written when the crash came after the data sync), never more.
    let newest = base.newest();
    let last = base.records.last().unwrap();
    let before_last = &base.records[base.records.len() - 2];
    for (cut, want) in [
        (last.offset + last.used, Some(newest)),
        (last.offset + last.used - 1, Some(newest - 1)),
        (last.offset + 20, Some(newest - 1)),
        (last.offset, Some(newest - 1)),
        (before_last.offset + 20, None),
        (before_last.offset, None),
        (base.records[1].offset, None),
        (base.meta.len() / 2 / format::PAGE * format::PAGE, None),
    ] {
        let got = format::verdict(&base.meta[..cut], &base.data);
        if got != want {
            failures.push(format!(
                "the codec says {got:?} for a cut at {cut}; the document says {want:?}"
            ));
        }
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
    // A flip in the body of every record: only the last one may pass for torn.
    let base = base();
    let mut failures = Vec::new();
    for (i, r) in base.records.iter().enumerate() {
        let mut meta = base.meta.clone();
        meta[r.offset + format::RECORD_HEAD + 3] ^= 0x10;
        let expect = if i + 1 == base.records.len() {
            Expect::generation(base.newest() - 1)
        } else {
            Expect::err()
        };
        case(
            "metadata bit flipped",
            &format!("record {i} (offset {})", r.offset),
            Some(&base.data),
            Some(&meta),
            expect,
            &mut failures,
        );
    }
    FAILURES.lock().unwrap().extend(failures);
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
    let newest = base.newest();
    let regions = format::replay(&base.records);
    let mut failures = Vec::new();
    let mut rng = Rng(support::seed_or(8));
    // Shrunk while closed: at every page boundary, and at bytes around the regions' ends
    // and the header's slots.
    let mut cuts: Vec<usize> = (0..=base.data.len()).step_by(format::PAGE).collect();
    for e in regions.values() {
        let end = (e.start + e.len) as usize;
        cuts.extend([end.saturating_sub(1), end, end + 1]);
    }
    for slot in format::SLOTS {
        cuts.extend([
            slot + 1,
            slot + format::SLOT_LEN - 1,
            slot + format::SLOT_LEN,
        ]);
    }
    for _ in 0..10 * support::scale() {
        cuts.push(rng.below(base.data.len() as u64 + 1) as usize);
    }
    cuts.retain(|&c| c <= base.data.len());
    cuts.sort_unstable();
    cuts.dedup();
    for cut in cuts {
        let data = &base.data[..cut];
        case(
            "data shrunk",
            &format!("cut at {cut}"),
            Some(data),
            Some(&base.meta),
            Expect::from_files(&base.meta, data),
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
    // Zeroed, random, or another database's: the header tells, and open refuses.
    let zeros = vec![0u8; base.data.len()];
    case(
        "data replaced",
        "zeroed",
        Some(&zeros),
        Some(&base.meta),
        Expect::err(),
        &mut failures,
    );
    for i in 0..5 * support::scale() {
        let data = rng.bytes(base.data.len());
        case(
            "data replaced",
            &format!("random {i}"),
            Some(&data),
            Some(&base.meta),
            Expect::err(),
            &mut failures,
        );
    }
    let other = other_base();
    assert_ne!(other.id, base.id);
    case(
        "data replaced",
        "another database's data file",
        Some(&other.data),
        Some(&base.meta),
        Expect::err(),
        &mut failures,
    );
    case(
        "data replaced",
        "another database's metadata file",
        Some(&base.data),
        Some(&other.meta),
        Expect::err(),
        &mut failures,
    );
    // The data file of an older commit (its header says so): the log is newer. Refused
    // when the log says the data file was synced for a newer commit than that.
    let older = format::restamped(&base.data, &base.id, newest - 2);
    case(
        "data replaced",
        "data file two commits older",
        Some(&older),
        Some(&base.meta),
        Expect::from_files(&base.meta, &older),
        &mut failures,
    );
    // Its first page zeroed, or each header slot damaged alone (a torn slot).
    let mut data = base.data.clone();
    data[..format::PAGE].fill(0);
    case(
        "data replaced",
        "header page zeroed",
        Some(&data),
        Some(&base.meta),
        Expect::err(),
        &mut failures,
    );
    for slot in format::SLOTS {
        for byte in [0, 20, 33, 45] {
            let mut data = base.data.clone();
            data[slot + byte] ^= 0x04;
            case(
                "data header damaged",
                &format!("slot at {slot}, byte {byte}"),
                Some(&data),
                Some(&base.meta),
                Expect::from_files(&base.meta, &data),
                &mut failures,
            );
        }
    }
    // Random bit flips past the header: the data file has no checksums, so the
    // database opens and reads what the file holds.
    let damaged = Expect {
        data_damaged: true,
        ..Expect::generation(newest)
    };
    for i in 0..20 * support::scale() {
        let mut data = base.data.clone();
        for _ in 0..=rng.below(20) {
            let at = format::PAGE + rng.below((data.len() - format::PAGE) as u64) as usize;
            data[at] ^= 1 << rng.below(8);
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
    if let Err(why) = try_case("data grown", &dir.db, &Expect::generation(newest)) {
        failures.push(format!("data grown to 64 GiB: {why}"));
    }
    finish(
        failures,
        &[
            "data shrunk",
            "data replaced",
            "data header damaged",
            "data damaged",
            "data grown",
        ],
    );
}

/// The records of the base log, re-encoded with the test's codec (checks that the codec
/// and the engine agree byte for byte), plus `extra` appended after them.
fn log_with(extra: &[Vec<u8>]) -> Vec<u8> {
    let base = base();
    let mut records: Vec<Vec<u8>> = base
        .records
        .iter()
        .map(|r| format::record(&base.id, &r.record))
        .collect();
    records.extend(extra.iter().cloned());
    format::file(&base.id, &records)
}

/// A checkpoint that replaces the whole log.
fn checkpoint_file(generation: u64, next_number: u64, entries: Vec<Entry>) -> Vec<u8> {
    format::file(
        &base().id,
        &[format::record(
            &base().id,
            &Record::new(
                generation,
                format::KIND_CHECKPOINT,
                next_number,
                Vec::new(),
                entries,
            ),
        )],
    )
}

/// The base's data file with both header slots at `generation`.
fn data_at(generation: u64) -> Vec<u8> {
    format::restamped(&base().data, &base().id, generation)
}

#[test]
fn crafted_records_with_valid_checksums_are_refused_or_applied() {
    let base = base();
    let newest = base.newest();
    let regions = format::replay(&base.records);
    let next_number = base.records.last().unwrap().record.next_number;
    let first = regions.values().next().unwrap().clone();
    let second = regions.values().nth(1).unwrap().clone();
    let data_len = base.data.len() as u64;
    let mut failures = Vec::new();

    // The codec writes the engine's own log byte for byte (the engine's file then has
    // zeros laid down for the next records).
    let mut engine_log = base.meta.clone();
    engine_log.truncate(log_with(&[]).len());
    assert!(base.meta[engine_log.len()..].iter().all(|&b| b == 0));
    assert_eq!(
        log_with(&[]),
        engine_log,
        "re-encoded log equals the engine's"
    );

    let delta = |entries: Vec<Entry>, removed: Vec<u64>| {
        Record::new(
            newest + 1,
            format::KIND_DELTA,
            next_number,
            removed,
            entries,
        )
    };
    let with = |e: &Entry, f: &dyn Fn(&mut Entry)| {
        let mut e = e.clone();
        f(&mut e);
        e
    };
    let crafted: Vec<(&str, Record)> = vec![
        (
            "region moved onto another region",
            delta(vec![with(&first, &|e| e.start = second.start)], vec![]),
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
        ),
        (
            "region inside the data file's header",
            delta(
                vec![with(&first, &|e| {
                    e.start = 0;
                    e.reserved = 4096;
                    e.len = 10;
                })],
                vec![],
            ),
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
        ),
        (
            "reservation of the whole address space",
            delta(vec![with(&first, &|e| e.reserved = u64::MAX)], vec![]),
        ),
        (
            "start not page-aligned",
            delta(vec![with(&first, &|e| e.start += 1)], vec![]),
        ),
        (
            "reservation shorter than the length",
            delta(
                vec![with(&first, &|e| {
                    e.reserved = e.len.saturating_sub(1) / 4096 * 4096
                })],
                vec![],
            ),
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
        ),
        (
            "number of 2^64 - 1",
            delta(vec![with(&first, &|e| e.number = u64::MAX)], vec![]),
        ),
        ("removed number of 2^64 - 1", delta(vec![], vec![u64::MAX])),
        (
            "two regions with one name",
            delta(
                vec![with(&second, &|e| e.name = first.name.clone())],
                vec![],
            ),
        ),
        (
            "name that is not UTF-8",
            delta(
                vec![with(&first, &|e| e.name = vec![0xff, 0xfe, b'x'])],
                vec![],
            ),
        ),
        (
            "name of 1025 bytes",
            delta(vec![with(&first, &|e| e.name = vec![b'n'; 1025])], vec![]),
        ),
        (
            "checksums starting past the region's last chunk",
            delta(
                vec![with(&first, &|e| {
                    e.sums_from = e.len.div_ceil(format::CHUNK) + 1;
                    e.crcs.clear();
                })],
                vec![],
            ),
        ),
        (
            "checksums continuing a region that was removed",
            delta(
                vec![with(&first, &|e| {
                    e.sums_from = 1;
                    e.crcs.truncate(e.crcs.len().saturating_sub(1));
                })],
                vec![first.number],
            ),
        ),
        (
            "bytes to redo over the data file's header",
            Record {
                flags: 0,
                inline: vec![(0, vec![0xee; 100])],
                ..delta(vec![], vec![])
            },
        ),
        (
            "bytes to redo beyond the largest data file",
            Record {
                flags: 0,
                inline: vec![(format::MAX_DATA - 10, vec![0xee; 100])],
                ..delta(vec![], vec![])
            },
        ),
        (
            "more bytes to redo than a record carries",
            Record {
                flags: 0,
                inline: vec![(first.start, vec![0xee; 1 << 19]); 3],
                ..delta(vec![], vec![])
            },
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
        ),
        (
            "generation of 2^64 - 1",
            Record {
                generation: u64::MAX,
                ..delta(vec![], vec![])
            },
        ),
        (
            "checkpoint in the middle of the log",
            Record {
                kind: format::KIND_CHECKPOINT,
                ..delta(vec![], vec![])
            },
        ),
        (
            "unknown record kind",
            Record {
                kind: 3,
                ..delta(vec![], vec![])
            },
        ),
        (
            "next number above 2^24",
            Record {
                next_number: (1 << 24) + 1,
                ..delta(vec![], vec![])
            },
        ),
        (
            "next number of 2^64 - 1",
            Record {
                next_number: u64::MAX,
                ..delta(vec![], vec![])
            },
        ),
    ];
    for (label, record) in crafted {
        let meta = log_with(&[format::record(&base.id, &record)]);
        // Next to the base's data file, whose header names the base's newest commit,
        // any record after it is damage; with a data file that names it, the record is
        // judged on its content.
        for (stamp, data) in [
            (newest, base.data.clone()),
            (newest + 1, data_at(newest + 1)),
        ] {
            let expect = Expect::from_files(&meta, &data);
            if expect.generations.contains(&(newest + 1)) {
                failures.push(format!("the codec accepts the crafted delta {label:?}"));
            }
            case(
                "crafted delta",
                &format!("{label} (data file at {stamp})"),
                Some(&data),
                Some(&meta),
                expect,
                &mut failures,
            );
        }
    }
    // A benign delta (a rename) must be applied: the codec follows the document.
    let mut renamed = base.models[&newest].clone();
    let first_name = String::from_utf8(first.name.clone()).unwrap();
    let bytes = renamed.remove(&first_name).unwrap();
    renamed.insert("renamed by hand".to_owned(), bytes);
    let meta = log_with(&[format::record(
        &base.id,
        &delta(
            vec![with(&first, &|e| e.name = b"renamed by hand".to_vec())],
            vec![],
        ),
    )]);
    case(
        "crafted delta",
        "a valid rename",
        Some(&data_at(newest + 1)),
        Some(&meta),
        Expect {
            state: Some(renamed),
            ..Expect::generation(newest + 1)
        },
        &mut failures,
    );

    // Bodies the codec would never write, framed with a correct checksum: damage.
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
        let meta = log_with(&[format::frame(&base.id, &body)]);
        case(
            "crafted body",
            label,
            Some(&data_at(newest + 1)),
            Some(&meta),
            Expect::err(),
            &mut failures,
        );
    }
    // Heads claiming bodies longer than the file: at the end of the log, a torn record;
    // before valid records, damage.
    for (label, claim) in [
        ("body length of 2^32 - 1", u64::from(u32::MAX)),
        ("body length of 2^32 + 16", (1 << 32) + 16),
        ("body length of 2^64 - 1", u64::MAX),
    ] {
        let mut giant = format::record(&base.id, &delta(vec![], vec![]));
        giant[4..12].copy_from_slice(&claim.to_le_bytes());
        let meta = log_with(&[giant]);
        case(
            "crafted body",
            &format!("{label}, last"),
            Some(&data_at(newest + 1)),
            Some(&meta),
            Expect::generation(newest),
            &mut failures,
        );
        let mut meta = base.meta.clone();
        let middle = &base.records[base.records.len() / 2];
        meta[middle.offset + 4..middle.offset + 12].copy_from_slice(&claim.to_le_bytes());
        case(
            "crafted body",
            &format!("{label}, in the middle"),
            Some(&base.data),
            Some(&meta),
            Expect::err(),
            &mut failures,
        );
    }

    // Whole checkpoints: invalid ones leave no commit to fall back on.
    let entry = |number: u64, start: u64, len: u64, name: &[u8]| {
        Entry::new(number, start, len.div_ceil(4096).max(1) * 4096, len, name)
    };
    let at_one = data_at(1);
    let checkpoints: Vec<(&str, Vec<u8>, Expect)> = vec![
        (
            "checkpoint with a name that is not UTF-8",
            checkpoint_file(1, 1, vec![entry(0, 4096, 10, &[0xc3, 0x28])]),
            Expect::err(),
        ),
        (
            "checkpoint with a number twice",
            checkpoint_file(
                1,
                2,
                vec![entry(0, 4096, 10, b"a"), entry(0, 8192, 10, b"b")],
            ),
            Expect::err(),
        ),
        (
            "checkpoint with overlapping regions",
            checkpoint_file(
                1,
                2,
                vec![entry(0, 4096, 9000, b"a"), entry(1, 8192, 10, b"b")],
            ),
            Expect::err(),
        ),
        (
            "checkpoint with a region past the data file",
            checkpoint_file(1, 1, vec![entry(0, data_len * 2, 10, b"a")]),
            Expect::err(),
        ),
        (
            "checkpoint with a region in the data file's header",
            checkpoint_file(1, 1, vec![entry(0, 0, 10, b"a")]),
            Expect::err(),
        ),
        (
            "checkpoint with a name of 65535 bytes",
            checkpoint_file(1, 1, vec![entry(0, 4096, 10, &[b'n'; 65535])]),
            Expect::err(),
        ),
        (
            "checkpoint with a name of 1024 bytes",
            checkpoint_file(1, 1, vec![entry(0, 4096, 10, &[b'n'; 1024])]),
            Expect {
                state: Some(State::from([(
                    "n".repeat(1024),
                    base.data[4096..4106].to_vec(),
                )])),
                ..Expect::generation(1)
            },
        ),
        ("header only", format::file(&base.id, &[]), Expect::err()),
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
            Some(&at_one),
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

/// Run `f` (opens of a crafted database) and fail unless it returns within `limit`.
fn within<T: Send + 'static>(
    label: &str,
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let start = Instant::now();
    let value = contained(f).map_err(|e| format!("{label}: {e}"))?;
    let took = start.elapsed();
    if took > limit {
        return Err(format!("{label}: took {took:?}, more than {limit:?}"));
    }
    println!("{label}: {took:?}");
    Ok(value)
}

#[test]
fn crafted_generations_never_make_a_flush_vanish() {
    let base = base();
    let mut failures = Vec::new();
    let entry = Entry::new(0, 4096, 4096, 10, b"a");
    // A checkpoint at the top of the range: a flush after it would wrap to 0 and be
    // lost on the next open. It must be refused, or every flush kept.
    for generation in [u64::MAX, 1 << 63, (1 << 63) - 1, (1 << 63) - 2] {
        let meta = checkpoint_file(generation, 1, vec![entry.clone()]);
        let data = format::restamped(&base.data, &base.id, generation);
        let dir = case_dir();
        std::fs::write(dir.db.join("data"), &data).unwrap();
        std::fs::write(dir.db.join("meta"), &meta).unwrap();
        count_case("crafted generation");
        let path = dir.db.clone();
        let outcome = contained(move || -> Result<String, String> {
            let db = match Database::open(&path) {
                Ok(db) => db,
                Err(e) => return Ok(format!("refused: {e}")),
            };
            let mut kept = Vec::new();
            for round in 0..3u8 {
                let written = db
                    .write_all_to_region("a".into(), &[round])
                    .and_then(|()| db.flush());
                match written {
                    Ok(()) => kept.push(round),
                    Err(e) => {
                        drop(db);
                        let reopened = Database::open(&path).map_err(|e| e.to_string())?;
                        let bytes = reopened
                            .create_region_reader("a".into())
                            .map_err(|e| e.to_string())?
                            .read_all()
                            .to_vec();
                        if bytes[10..] != kept[..] {
                            return Err(format!("flushes before the refusal were lost: {bytes:?}"));
                        }
                        return Ok(format!("a flush was refused ({e}); earlier ones kept"));
                    }
                }
            }
            drop(db);
            let reopened = Database::open(&path).map_err(|e| e.to_string())?;
            let bytes = reopened
                .create_region_reader("a".into())
                .map_err(|e| e.to_string())?
                .read_all()
                .to_vec();
            if bytes[10..] != [0, 1, 2] {
                return Err(format!(
                    "three flushes succeeded, but the region reads {bytes:?} after reopening"
                ));
            }
            Ok("three flushes kept".to_owned())
        });
        match outcome {
            Ok(Ok(summary)) => {
                record("crafted generation", !summary.starts_with("refused"));
                println!("crafted generation {generation}: {summary}");
            }
            Ok(Err(why)) | Err(why) => failures.push(format!("generation {generation}: {why}")),
        }
        if generation > (1 << 63) - 1 {
            // Beyond the bound: refused, and check names the record.
            match checked(&dir.db) {
                Ok(Err(problems)) if problems.iter().any(|p| p.contains("generation")) => {}
                other => failures.push(format!(
                    "generation {generation}: check should name the generation: {other:?}"
                )),
            }
        }
    }
    finish(failures, &["crafted generation"]);
}

#[test]
fn crafted_region_numbers_cost_linear_time_at_most() {
    let base = base();
    let mut failures = Vec::new();
    let limit = Duration::from_secs(10);
    // Numbers that all collide in a multiply-and-rotate hash of the number (i times the
    // inverse of the multiplier): inserted before any bound check, they made open
    // quadratic. Every one is beyond 2^24.
    let inverse = {
        // The multiplicative inverse of the golden-ratio multiplier modulo 2^64.
        let m: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut x: u64 = 1;
        for _ in 0..7 {
            x = x.wrapping_mul(2u64.wrapping_sub(m.wrapping_mul(x)));
        }
        assert_eq!(m.wrapping_mul(x), 1);
        x
    };
    let colliding: Vec<Entry> = (1..=150_000u64)
        .map(|i| {
            Entry::new(
                i.wrapping_mul(inverse),
                4096 * i,
                4096,
                0,
                format!("r{i}").as_bytes(),
            )
        })
        .collect();
    let meta = checkpoint_file(1, u64::MAX, colliding);
    let data = data_at(1);
    let dir = case_dir();
    std::fs::write(dir.db.join("data"), &data).unwrap();
    std::fs::write(dir.db.join("meta"), &meta).unwrap();
    count_case("crafted numbers");
    let path = dir.db.clone();
    match within("150,000 colliding numbers", limit, move || {
        Database::open_read_only(&path).map(|_| ())
    }) {
        Ok(Err(_)) => record("crafted numbers", false),
        Ok(Ok(())) => failures.push("colliding numbers beyond 2^24 were accepted".to_owned()),
        Err(why) => failures.push(why),
    }
    // The extremes of the allowed range: a number bound of 2^24 with regions at both
    // ends opens, and quickly.
    let top = (1u64 << 24) - 1;
    let meta = checkpoint_file(
        1,
        1 << 24,
        vec![
            Entry::new(0, 4096, 4096, 10, b"low"),
            Entry::new(top, 8192, 4096, 10, b"high"),
        ],
    );
    let expect = Expect {
        state: Some(State::from([
            ("low".to_owned(), base.data[4096..4106].to_vec()),
            ("high".to_owned(), base.data[8192..8202].to_vec()),
        ])),
        ..Expect::generation(1)
    };
    let dir = case_dir();
    std::fs::write(dir.db.join("data"), &data).unwrap();
    std::fs::write(dir.db.join("meta"), &meta).unwrap();
    count_case("crafted numbers");
    let path = dir.db.clone();
    match within("regions numbered 0 and 2^24 - 1", limit, move || {
        try_case("crafted numbers", &path, &expect)
    }) {
        Ok(Ok(summary)) => println!("crafted numbers / extremes: {summary}"),
        Ok(Err(why)) | Err(why) => failures.push(why),
    }
    finish(failures, &["crafted numbers"]);
}

#[test]
fn huge_sparse_metadata_files_are_refused_or_read_in_bounded_pieces() {
    let base = base();
    let mut failures = Vec::new();
    let sparse = |len: u64| {
        let dir = case_dir();
        std::fs::write(dir.db.join("data"), &base.data).unwrap();
        std::fs::write(dir.db.join("meta"), &base.meta).unwrap();
        std::fs::File::options()
            .write(true)
            .open(dir.db.join("meta"))
            .unwrap()
            .set_len(len)
            .unwrap();
        dir
    };
    // 2 TiB: longer than any log this build writes, so refused before anything is read.
    for len in [2u64 << 40, format::MAX_META + 1] {
        let dir = sparse(len);
        count_case("metadata huge");
        let path = dir.db.clone();
        match within(
            &format!("{len}-byte metadata file"),
            Duration::from_secs(5),
            move || {
                (
                    Database::open_read_only(&path).map(|_| ()),
                    Database::open(&path).map(|_| ()),
                )
            },
        ) {
            Ok((Err(ro), Err(rw))) => {
                record("metadata huge", false);
                for e in [ro, rw] {
                    let message = e.to_string();
                    if !message.contains("longer than any metadata log")
                        || !message.contains("meta")
                    {
                        failures.push(format!(
                            "{len} bytes: the error does not say why: {message}"
                        ));
                    }
                }
            }
            Ok(other) => failures.push(format!("{len} bytes: opened: {other:?}")),
            Err(why) => failures.push(why),
        }
        match checked(&dir.db) {
            Ok(Err(problems)) if problems.iter().any(|p| p.contains("longer than any")) => {}
            other => failures.push(format!("{len} bytes: check says {other:?}")),
        }
    }
    // A log followed by 256 MiB of hole: zeros after the last record, as a torn append
    // leaves them; read in pieces, opened at the newest commit, cut back by a writer.
    let dir = sparse(base.meta.len() as u64 + (256 << 20));
    count_case("metadata huge");
    let path = dir.db.clone();
    let expect = Expect::generation(base.newest());
    match within(
        "log and a 256 MiB hole",
        Duration::from_secs(30),
        move || try_case("metadata huge", &path, &expect),
    ) {
        Ok(Ok(_)) => {
            let len = support::log_end(&dir.db.join("meta"));
            if len > base.meta.len() as u64 + 4096 {
                failures.push(format!("a read-write open left the {len}-byte tail"));
            }
        }
        Ok(Err(why)) | Err(why) => failures.push(why),
    }
    finish(failures, &["metadata huge"]);
}

#[test]
fn long_names_are_refused_before_they_reach_the_log() {
    let dir = case_dir();
    let db = Database::open(&dir.db).unwrap();
    let name = "n".repeat(1024);
    db.create_region_if_needed(&name).unwrap();
    let long = "n".repeat(1025);
    assert!(matches!(
        db.create_region_if_needed(&long),
        Err(Error::NameTooLong { len: 1025 })
    ));
    assert!(matches!(
        db.rename_region(name.as_str().into(), &long),
        Err(Error::NameTooLong { .. })
    ));
    db.flush().unwrap();
    drop(db);
    let db = Database::open(&dir.db).unwrap();
    assert_eq!(db.regions().len(), 1);
    assert_eq!(db.regions()[0].name(), name);
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
        let mut header = format::header(format::VERSION, 0, &base.id);
        f(&mut header);
        meta[..header.len()].copy_from_slice(&header);
        meta
    };
    let newer = header_with(&|h| *h = format::header(4, 0, &base.id));
    let flagged = header_with(&|h| *h = format::header(format::VERSION, 1, &base.id));
    let bad_sum = header_with(&|h| h[36] ^= 0xff);
    let bad_len = header_with(&|h| {
        h[12] = 44;
        let sum = format::crc(&h[..36]);
        h[36..40].copy_from_slice(&sum.to_le_bytes());
    });
    let foreign = header_with(&|h| h[0] = b'X');
    failures.extend(check(
        "format version 4",
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
    // A version 1 database (a 24-byte header, checksum at 20, no data file header):
    // refused with a message that says how to carry the data over.
    let mut v1 = vec![0u8; format::PAGE];
    v1[..8].copy_from_slice(b"SEQDBMET");
    v1[8..12].copy_from_slice(&1u32.to_le_bytes());
    v1[12..16].copy_from_slice(&24u32.to_le_bytes());
    let sum = format::crc(&v1[..20]);
    v1[20..24].copy_from_slice(&sum.to_le_bytes());
    let v1_data = vec![7u8; 3 * format::PAGE];
    let opened = open_with(Some(&v1_data), Some(&v1));
    match &opened {
        Ok(Err(e @ Error::UnsupportedVersion { found: 1, .. })) => {
            let message = e.to_string();
            if !message.contains("seqdb put") || !message.contains("meta") {
                failures.push(format!(
                    "version 1: the message does not say what to do: {message}"
                ));
            }
        }
        other => failures.push(format!(
            "version 1: expected UnsupportedVersion, got {other:?}"
        )),
    }
    failures.extend(check("version 1 database", opened, "UnsupportedVersion"));
    // The data file's header of another version.
    let mut data = base.data.clone();
    for at in format::SLOTS {
        let mut slot = format::slot(&base.id, base.newest());
        slot[8] = 4;
        let sum = format::crc(&slot[..44]);
        slot[44..48].copy_from_slice(&sum.to_le_bytes());
        data[at..at + format::SLOT_LEN].copy_from_slice(&slot);
    }
    failures.extend(check(
        "data file of format version 4",
        open_with(Some(&data), Some(&base.meta)),
        "UnsupportedVersion",
    ));
    // A stale checkpoint file is ignored (and removed by a read-write open).
    {
        let dir = case_dir();
        std::fs::write(dir.db.join("data"), &base.data).unwrap();
        std::fs::write(dir.db.join("meta"), &base.meta).unwrap();
        std::fs::write(dir.db.join("meta.tmp"), b"half a checkpoint").unwrap();
        count_case("headers and directories");
        if let Err(why) = try_case(
            "headers and directories",
            &dir.db,
            &Expect::generation(base.newest()),
        ) {
            failures.push(format!("stale meta.tmp: {why}"));
        }
    }
    // A creation cut short: a data file holding only a fresh header (or nothing, or a
    // zeroed page) and no metadata file opens as a new database.
    // So does one whose metadata holds only the empty first checkpoint next to a data
    // file whose header was never written.
    let first = checkpoint_file(0, 0, Vec::new());
    for (label, data) in [
        ("empty data file", Vec::new()),
        ("zeroed header page", vec![0u8; format::PAGE]),
        ("fresh header", format::restamped(&[], &base.id, 0)),
    ] {
        for (meta, with) in [
            (None, "without metadata"),
            (Some(&first), "with the first checkpoint"),
        ] {
            let opened = open_with(Some(&data), meta.map(Vec::as_slice));
            match opened {
                Ok(Ok(db)) if db.regions().is_empty() => {}
                other => failures.push(format!("{label} {with}: {other:?}")),
            }
        }
    }
    // But a blank header next to any commit is damage.
    let after_first = checkpoint_file(1, 0, Vec::new());
    failures.extend(check(
        "a zeroed header page with a later checkpoint",
        open_with(Some(&vec![0u8; format::PAGE]), Some(&after_first)),
        "Corrupt",
    ));
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
