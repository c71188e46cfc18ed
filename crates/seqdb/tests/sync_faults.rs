//! Failing syncs: a fault injector (`OpenOptions::fault_injector`) makes one operation
//! that decides durability fail with `EIO`: the data file's sync, a metadata write, the
//! metadata sync, a checkpoint's write, sync, rename or directory sync. As on Linux, the
//! failure is reported once and later syncs succeed, although the kernel may have
//! dropped the pages it could not write.
//!
//! Each test checks that the failing call returns the error; that the handle is then
//! poisoned, every later change (write, flush, punch, compaction, truncation, creation,
//! removal, renaming, sizing) failing with `Error::Poisoned` naming the first failure;
//! that reopening recovers a consistent commit (the failed flush's state when its record
//! reached the file, the previous commit otherwise); and that nothing a successful flush
//! acknowledged is lost. Further tests: bytes a failed sync lost are never committed, a
//! flush queued behind the failing one is refused, punching after a failed flush cannot
//! zero bytes of the commit a reopen recovers, compaction's final shrink and sync, the
//! torn-tail cut of an open, failures that stay recoverable (a data write), and the
//! directory syncs that make a new database durable.

mod support;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use seqdb::{
    Database, Error, FaultInjector, FaultOp, Identifier, OpenOptions, SyncKind, SyncObserver,
};
use support::{State, diff_states, pattern, read_state};

const EIO: i32 = 5;
const ENOSPC: i32 = 28;

/// One fault: the `skip + 1`-th operation `op` on `path` after arming fails with `code`,
/// once; everything else runs.
struct Fault {
    path: PathBuf,
    op: FaultOp,
    code: i32,
    armed: AtomicBool,
    skip: AtomicU64,
    fired: AtomicU64,
}

impl Fault {
    fn new(path: PathBuf, op: FaultOp, code: i32) -> Arc<Self> {
        Arc::new(Fault {
            path,
            op,
            code,
            armed: AtomicBool::new(false),
            skip: AtomicU64::new(0),
            fired: AtomicU64::new(0),
        })
    }

    fn injector(self: &Arc<Self>) -> FaultInjector {
        let fault = Arc::clone(self);
        Arc::new(move |point| {
            if point.op != fault.op
                || point.path != fault.path
                || !fault.armed.load(Ordering::SeqCst)
            {
                return Ok(());
            }
            if fault.skip.load(Ordering::SeqCst) > 0 {
                fault.skip.fetch_sub(1, Ordering::SeqCst);
                return Ok(());
            }
            fault.armed.store(false, Ordering::SeqCst);
            fault.fired.fetch_add(1, Ordering::SeqCst);
            Err(io::Error::from_raw_os_error(fault.code))
        })
    }

    /// Let `skip` matching operations run, then fail the next one.
    fn arm(&self, skip: u64) {
        self.skip.store(skip, Ordering::SeqCst);
        self.armed.store(true, Ordering::SeqCst);
    }

    fn fired(&self) -> u64 {
        self.fired.load(Ordering::SeqCst)
    }
}

/// A database with one fault and a model of what it holds and of what the last
/// successful flush made durable.
struct Run {
    dir: tempfile::TempDir,
    db: Option<Database>,
    fault: Arc<Fault>,
    names: Vec<String>,
    /// Every region's bytes now.
    model: State,
    /// Every region's bytes at the last successful flush, and its generation.
    acked: State,
    acked_generation: u64,
    round: u64,
    flushes: u64,
}

/// Lengths appended in turn: a tail that stays in memory, one written at flush, a write
/// straight to the file, and one that makes regions move.
const LENGTHS: [usize; 4] = [100, 5000, 20_000, 70_000];

impl Run {
    /// Regions with short names, or (`long`) six with names of about a kilobyte and a
    /// small rewrite threshold, which make the metadata log outgrow its checkpoint every
    /// few flushes.
    fn new(long: bool, file: &str, op: FaultOp, code: i32) -> Run {
        let dir = tempfile::tempdir().unwrap();
        let target = if file.is_empty() {
            dir.path().to_path_buf()
        } else {
            dir.path().join(file)
        };
        let fault = Fault::new(target, op, code);
        let mut options = OpenOptions::new().fault_injector(fault.injector());
        if long {
            options = options.checkpoint_after(16 << 10);
        }
        let db = options.open(dir.path()).unwrap();
        let names: Vec<String> = if long {
            (0..6)
                .map(|i| format!("{i}-{}", "n".repeat(900 + i * 20)))
                .collect()
        } else {
            ["alpha", "beta", "gamma"].map(String::from).to_vec()
        };
        let mut run = Run {
            dir,
            db: Some(db),
            fault,
            names,
            model: State::new(),
            acked: State::new(),
            acked_generation: 0,
            round: 0,
            flushes: 0,
        };
        for name in run.names.clone() {
            run.db().create_region_if_needed(&name).unwrap();
            run.model.insert(name, Vec::new());
        }
        for _ in 0..2 {
            run.write_round();
            run.flush().unwrap();
        }
        run
    }

    fn db(&self) -> &Database {
        self.db.as_ref().expect("open")
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Append to every region.
    fn write_round(&mut self) {
        self.round += 1;
        for (i, name) in self.names.clone().iter().enumerate() {
            let len = LENGTHS[(self.round as usize + i) % LENGTHS.len()];
            let bytes = pattern(self.round * 100 + i as u64, len);
            self.db()
                .write_all_to_region(Identifier::from(name.as_str()), &bytes)
                .unwrap();
            self.model.get_mut(name).unwrap().extend_from_slice(&bytes);
        }
    }

    /// Flush; on success the model is what a crash must keep.
    fn flush(&mut self) -> seqdb::Result<()> {
        self.db().flush()?;
        self.flushes += 1;
        self.acked = self.model.clone();
        self.acked_generation = self.db().stats().unwrap().generation;
        Ok(())
    }

    /// Write and flush until a flush fails (the fault must fire within `max` flushes);
    /// returns its error.
    fn flush_until_failure(&mut self, max: u32) -> Error {
        for _ in 0..max {
            self.write_round();
            if let Err(e) = self.flush() {
                assert_eq!(
                    self.fault.fired(),
                    1,
                    "the failing flush met the fault: {e}"
                );
                return e;
            }
        }
        panic!("no flush failed in {max} attempts");
    }

    /// Close the handle and open the database again without faults; returns its state
    /// and generation.
    fn reopen(&mut self) -> (State, u64) {
        drop(self.db.take());
        let db = Database::open(self.path()).unwrap();
        let state = read_state(&db).unwrap();
        let generation = db.stats().unwrap().generation;
        self.db = Some(db);
        (state, generation)
    }

    /// After recovery the database takes a write and a flush that survive a reopen.
    fn check_writable_after_recovery(&mut self, mut state: State) {
        let name = self.names[0].clone();
        self.db()
            .write_all_to_region(Identifier::from(name.as_str()), b"after recovery")
            .unwrap();
        self.db().flush().unwrap();
        state
            .get_mut(&name)
            .unwrap()
            .extend_from_slice(b"after recovery");
        let (again, _) = self.reopen();
        assert_same(
            &again,
            &state,
            "after a write and flush on the recovered database",
        );
    }
}

fn assert_same(got: &State, want: &State, during: &str) {
    if let Some(diff) = diff_states(got, want) {
        panic!("{during}: {diff}");
    }
}

/// The error must be the injected one, naming the file (or directory) and the operation.
fn assert_injected(error: &Error, fault: &Fault) {
    let text = error.to_string();
    let Error::Sys { source } = error else {
        panic!("expected the I/O error itself, got: {text}");
    };
    assert_eq!(source.raw_os_error(), Some(fault.code), "{text}");
    assert_eq!(source.path(), fault.path, "{text}");
    assert_eq!(source.operation(), Some(fault.op.name()), "{text}");
    assert!(text.contains(fault.op.name()), "{text}");
}

/// Every change must now fail with `Error::Poisoned` naming `first` (the message of the
/// first failure); reading still works. Returns how many operations were refused.
fn assert_poisoned(db: &Database, first: &str, model: &State) -> usize {
    let name = model.keys().next().expect("a region").clone();
    let id = || Identifier::from(name.as_str());
    let results: Vec<(&str, seqdb::Result<()>)> = vec![
        ("flush", db.flush()),
        ("append", db.write_all_to_region(id(), b"more")),
        (
            "append 20 KB",
            db.write_all_to_region(id(), &vec![7; 20_000]),
        ),
        ("overwrite", db.write_all_to_region_at(id(), b"x", 0)),
        (
            "truncating write",
            db.truncate_write_all_to_region(id(), 0, b"y"),
        ),
        ("truncate", db.truncate_region(id(), 0)),
        ("punch", db.punch_holes().map(drop)),
        ("flush and punch", db.flush_then_punch()),
        ("compact", db.compact()),
        ("create", db.create_region_if_needed("new region").map(drop)),
        ("remove", db.remove_region(id()).map(drop)),
        ("rename", db.rename_region(id(), "renamed")),
        ("set_min_len", db.set_min_len(1 << 30)),
        ("flush again", db.flush()),
    ];
    for (what, result) in &results {
        match result {
            Err(error @ Error::Poisoned { .. }) => {
                let text = error.to_string();
                assert!(
                    text.contains(first),
                    "{what}: the refusal does not name the first failure ({first}): {text}"
                );
                assert!(
                    std::error::Error::source(error).is_some(),
                    "{what}: the first failure is reachable as the source"
                );
            }
            Err(other) => panic!("{what} after a failed sync: expected Poisoned, got: {other}"),
            Ok(()) => panic!("{what} after a failed sync succeeded; it must be refused"),
        }
    }
    assert_same(
        &read_state(db).unwrap(),
        model,
        "reading through the poisoned handle",
    );
    results.len()
}

/// Which commit the files hold after the failing flush.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recovers {
    /// The commit before the failing flush: its record never reached the file.
    Previous,
    /// The failing flush's own: its record reached the file before the failure.
    Failed,
}

/// The shared scenario: set up, arm the fault, flush until it fires, then check the
/// error, the poisoned handle and the recovery.
fn fails_and_poisons(
    what: &str,
    long: bool,
    file: &str,
    op: FaultOp,
    skip: u64,
    recovers: Recovers,
) {
    let mut run = Run::new(long, file, op, EIO);
    let before = run.flushes;
    run.fault.arm(skip);
    let error = run.flush_until_failure(40);
    assert_injected(&error, &run.fault);
    let failed_state = run.model.clone();
    let first = error.to_string();
    let refused = assert_poisoned(run.db(), &first, &run.model);

    let (state, generation) = run.reopen();
    let (want, want_generation) = match recovers {
        Recovers::Previous => (&run.acked, run.acked_generation),
        Recovers::Failed => (&failed_state, run.acked_generation + 1),
    };
    assert_eq!(
        generation, want_generation,
        "{what}: recovered generation (last acknowledged: {})",
        run.acked_generation
    );
    assert_same(&state, want, &format!("{what}: reopened"));
    run.check_writable_after_recovery(state);
    println!(
        "{what}: flush {} failed ({first}); {refused} later operations refused; reopened \
         at generation {generation} ({recovers:?}), nothing acknowledged lost",
        run.flushes - before + 1
    );
}

#[test]
fn data_sync_failure_is_final() {
    // The third data sync after arming: two flushes succeed, the third fails.
    fails_and_poisons(
        "data sync",
        false,
        "data",
        FaultOp::SyncData,
        2,
        Recovers::Previous,
    );
}

#[test]
fn metadata_write_failure_is_final() {
    fails_and_poisons(
        "metadata write",
        false,
        "meta",
        FaultOp::Write,
        1,
        Recovers::Previous,
    );
}

#[test]
fn metadata_sync_failure_is_final() {
    // The record was written before its sync failed: the file holds it.
    fails_and_poisons(
        "metadata sync",
        false,
        "meta",
        FaultOp::SyncData,
        1,
        Recovers::Failed,
    );
}

#[test]
fn checkpoint_write_failure_is_final() {
    fails_and_poisons(
        "checkpoint write",
        true,
        "meta.tmp",
        FaultOp::Write,
        0,
        Recovers::Previous,
    );
}

#[test]
fn checkpoint_sync_failure_is_final() {
    fails_and_poisons(
        "checkpoint sync",
        true,
        "meta.tmp",
        FaultOp::SyncAll,
        0,
        Recovers::Previous,
    );
}

#[test]
fn checkpoint_rename_failure_is_final() {
    fails_and_poisons(
        "checkpoint rename",
        true,
        "meta.tmp",
        FaultOp::Rename,
        0,
        Recovers::Previous,
    );
}

#[test]
fn checkpoint_directory_sync_failure_is_final() {
    // The rename went through before the directory sync failed: the new log is in force.
    fails_and_poisons(
        "checkpoint directory sync",
        true,
        "",
        FaultOp::SyncDirectory,
        0,
        Recovers::Failed,
    );
}

/// The bytes a failed data sync covered may never reach the device; a later sync still
/// succeeds. The test zeroes them in the file, as a device that never got them would
/// leave them: no commit may then claim them.
#[test]
fn bytes_lost_by_a_failed_data_sync_are_never_committed() {
    let mut run = Run::new(false, "data", FaultOp::SyncData, EIO);
    let name = run.names[0].clone();
    let id = || Identifier::from(name.as_str());
    // More than a commit carries in its record: the data file is synced for it.
    let lost = pattern(77, 400_000);
    let region = run.db().get_region(id()).unwrap();
    run.db().write_all_to_region(id(), &lost).unwrap();
    run.model.get_mut(&name).unwrap().extend_from_slice(&lost);
    run.fault.arm(0);
    let error = run.flush().unwrap_err();
    assert_injected(&error, &run.fault);

    // The device lost them; the page cache says nothing (the pages are clean).
    let at = run.db().get_region(id()).unwrap().start() + region.len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(run.path().join("data"))
        .unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, &vec![0; lost.len()], at).unwrap();
    drop(file);

    let retried = run.flush();
    let (state, generation) = run.reopen();
    assert_same(
        &state,
        &run.acked,
        &format!(
            "reopened at generation {generation} after a retried flush that returned {:?}",
            retried.as_ref().map_err(ToString::to_string)
        ),
    );
    assert!(
        matches!(retried, Err(Error::Poisoned { .. })),
        "a flush after a failed data sync must be refused, got {retried:?}"
    );
    println!("lost bytes: the retried flush was refused, reopened at generation {generation}");
}

/// A flush that passed its checks before another flush's sync failed, and waited for
/// the commit lock meanwhile, must not commit once it gets the lock.
#[test]
fn a_flush_waiting_behind_the_failing_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data_path = dir.path().join("data");
    let armed = Arc::new(AtomicBool::new(false));
    let (entered_tx, entered_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = Mutex::new(release_rx);
    let entered_tx = Mutex::new(entered_tx);
    let flag = Arc::clone(&armed);
    let injector: FaultInjector = Arc::new(move |point| {
        if point.path == data_path
            && point.op == FaultOp::SyncData
            && flag.swap(false, Ordering::SeqCst)
        {
            entered_tx.lock().unwrap().send(()).unwrap();
            release_rx.lock().unwrap().recv().unwrap();
            return Err(io::Error::from_raw_os_error(EIO));
        }
        Ok(())
    });
    let db = OpenOptions::new()
        .fault_injector(injector)
        .open(dir.path())
        .unwrap();
    db.create_region_if_needed("a").unwrap();
    db.write_all_to_region("a".into(), b"committed").unwrap();
    db.flush().unwrap();
    // More than a commit carries in its record: the data file is synced for it.
    db.write_all_to_region("a".into(), &[b'x'; 400_000])
        .unwrap();
    armed.store(true, Ordering::SeqCst);

    let first = thread::spawn({
        let db = db.clone();
        move || db.flush()
    });
    entered_rx.recv().unwrap();
    let second = thread::spawn({
        let db = db.clone();
        move || {
            db.write_all_to_region("a".into(), b" more").unwrap();
            db.flush()
        }
    });
    // Give the second flush time to pass its checks and wait for the commit lock.
    thread::sleep(Duration::from_millis(200));
    release_tx.send(()).unwrap();
    let first = first.join().unwrap();
    let second = second.join().unwrap();
    assert!(
        matches!(first, Err(Error::Sys { .. })),
        "the failing flush returns its error: {first:?}"
    );
    assert!(
        matches!(second, Err(Error::Poisoned { .. })),
        "the flush queued behind it must be refused, got {second:?}"
    );
    drop(db);
    let db = Database::open(dir.path()).unwrap();
    let reader = db.create_region_reader("a".into()).unwrap();
    assert_eq!(reader.read_all(), b"committed");
    println!("queued flush: refused after the first one's data sync failed");
}

/// A flush whose record reached the file but whose sync failed: the region's committed
/// length in memory is the older one, so truncating and punching would zero bytes the
/// commit on disk references. The poisoned handle refuses both; a reopen reads them.
fn punch_after_durable_record(what: &str, long: bool, file: &str, op: FaultOp) {
    let mut run = Run::new(long, file, op, EIO);
    run.fault.arm(0);
    let error = run.flush_until_failure(40);
    assert_injected(&error, &run.fault);
    let failed_state = run.model.clone();
    let mut refused = Vec::new();
    for name in run.names.clone() {
        refused.push(run.db().truncate_region(Identifier::from(name.as_str()), 0));
    }
    refused.push(run.db().punch_holes().map(drop));
    let (state, generation) = run.reopen();
    assert_eq!(
        generation,
        run.acked_generation + 1,
        "{what}: the record is durable"
    );
    assert_same(
        &state,
        &failed_state,
        &format!("{what}: after truncating and punching, reopened"),
    );
    for result in &refused {
        assert!(
            matches!(result, Err(Error::Poisoned { .. })),
            "{what}: truncation and punching must be refused, got {result:?}"
        );
    }
    run.check_writable_after_recovery(state);
    println!(
        "{what}: {} truncations and a punch refused; reopened at generation {generation} \
         with every byte",
        refused.len() - 1
    );
}

#[test]
fn punch_after_a_durable_record_whose_sync_failed_is_refused() {
    punch_after_durable_record("metadata sync", false, "meta", FaultOp::SyncData);
}

#[test]
fn punch_after_a_durable_checkpoint_whose_directory_sync_failed_is_refused() {
    punch_after_durable_record(
        "checkpoint directory sync",
        true,
        "",
        FaultOp::SyncDirectory,
    );
}

/// Regions, half of them removed and their space punched, so that compaction ends by
/// shrinking the data file.
fn compactable(run: &mut Run) {
    for i in 0..8 {
        let name = format!("c{i}");
        run.db().create_region_if_needed(&name).unwrap();
        let bytes = pattern(500 + i, 30_000);
        run.db()
            .write_all_to_region(Identifier::from(name.as_str()), &bytes)
            .unwrap();
        run.model.insert(name, bytes);
    }
    run.flush().unwrap();
    for i in (0..8).step_by(2) {
        let name = format!("c{i}");
        run.db()
            .remove_region(Identifier::from(name.as_str()))
            .unwrap();
        run.model.remove(&name);
    }
    run.db().flush_then_punch().unwrap();
    run.flush().unwrap();
}

#[test]
fn compaction_final_truncation_failure_is_final() {
    let mut run = Run::new(false, "data", FaultOp::SetLen, EIO);
    compactable(&mut run);
    let len = run.db().file_len().unwrap();
    run.fault.arm(0);
    let error = run.db().compact().unwrap_err();
    assert_eq!(run.fault.fired(), 1, "compaction shrank the file");
    assert_injected(&error, &run.fault);
    let refused = assert_poisoned(run.db(), &error.to_string(), &run.model);
    let (state, _) = run.reopen();
    assert_same(&state, &run.model, "reopened after compaction");
    run.check_writable_after_recovery(state);
    println!("compaction shrink ({len} bytes before): {refused} later operations refused");
}

#[test]
fn compaction_final_sync_failure_is_final() {
    // The first data sync after compaction's shrink of the data file fails.
    let mut run = Run::new(false, "unused", FaultOp::Write, EIO);
    drop(run.db.take());
    let data_path = run.path().join("data");
    let shrunk = Arc::new(AtomicBool::new(false));
    let armed = Arc::new(AtomicBool::new(false));
    let (shrunk2, armed2) = (Arc::clone(&shrunk), Arc::clone(&armed));
    let injector: FaultInjector = Arc::new(move |point| {
        if point.path != data_path || !armed2.load(Ordering::SeqCst) {
            return Ok(());
        }
        match point.op {
            FaultOp::SetLen => shrunk2.store(true, Ordering::SeqCst),
            FaultOp::SyncData if shrunk2.load(Ordering::SeqCst) => {
                armed2.store(false, Ordering::SeqCst);
                return Err(io::Error::from_raw_os_error(EIO));
            }
            _ => {}
        }
        Ok(())
    });
    let db = OpenOptions::new()
        .fault_injector(injector)
        .open(run.path())
        .unwrap();
    run.db = Some(db);
    compactable(&mut run);
    armed.store(true, Ordering::SeqCst);
    let error = run.db().compact().unwrap_err();
    assert!(shrunk.load(Ordering::SeqCst), "compaction shrank the file");
    let text = error.to_string();
    assert!(
        text.contains("fdatasync") && text.contains("data"),
        "{text}"
    );
    let refused = assert_poisoned(run.db(), &text, &run.model);
    let (state, _) = run.reopen();
    assert_same(&state, &run.model, "reopened after compaction");
    println!("compaction's final sync: {refused} later operations refused");
}

/// A data write that fails (here: the disk is full) changes nothing durable: the flush
/// fails, the handle stays usable, and the next flush commits everything.
#[test]
fn a_failed_data_write_is_not_final() {
    let mut run = Run::new(false, "data", FaultOp::Write, ENOSPC);
    run.write_round();
    run.fault.arm(0);
    let error = run.flush().unwrap_err();
    assert!(error.is_no_space(), "{error}");
    assert_injected(&error, &run.fault);
    run.write_round();
    run.flush()
        .expect("a flush after a failed data write succeeds");
    let (state, generation) = run.reopen();
    assert_same(&state, &run.acked, "reopened");
    assert_eq!(generation, run.acked_generation);
    println!("data write: ENOSPC, the next flush committed generation {generation}");
}

/// Opening a database whose log ends in a torn record cuts it and syncs the cut; if
/// either fails the open fails (there is no handle to poison), and a later open
/// recovers the same commit.
#[test]
fn open_fails_when_cutting_a_torn_tail_fails() {
    let mut run = Run::new(false, "meta", FaultOp::Write, EIO);
    drop(run.db.take());
    let meta = run.path().join("meta");
    let valid = support::log_end(&meta);
    let mut torn = std::fs::read(&meta).unwrap();
    torn.truncate(valid as usize);
    torn.extend_from_slice(b"SQDR\x00\x10\x00\x00garbage of a record that never completed");
    std::fs::write(&meta, &torn).unwrap();
    for op in [FaultOp::SetLen, FaultOp::SyncData] {
        let fault = Fault::new(meta.clone(), op, EIO);
        fault.arm(0);
        let error = OpenOptions::new()
            .fault_injector(fault.injector())
            .open(run.path())
            .unwrap_err();
        assert_eq!(fault.fired(), 1, "{op}: the open cut the torn tail");
        assert_injected(&error, &fault);
    }
    let (state, generation) = run.reopen();
    assert_same(&state, &run.acked, "reopened");
    assert_eq!(generation, run.acked_generation);
    assert_eq!(support::log_end(&meta), valid, "the tail is cut");
    run.check_writable_after_recovery(state);
    println!("torn tail: the open failed when cutting or syncing failed, then recovered");
}

type Events = Arc<Mutex<Vec<PathBuf>>>;

/// An observer that records every directory sync.
fn directory_syncs() -> (Events, SyncObserver) {
    let events: Events = Arc::default();
    let sink = Arc::clone(&events);
    let observer: SyncObserver = Arc::new(move |event| {
        if event.kind == SyncKind::Directory {
            sink.lock().unwrap().push(event.path.to_path_buf());
        }
    });
    (events, observer)
}

#[test]
fn creating_a_nested_database_syncs_every_new_directory() {
    let root = tempfile::tempdir().unwrap();
    let (events, observer) = directory_syncs();
    let path = root.path().join("a").join("b").join("db");
    let db = OpenOptions::new()
        .sync_observer(observer)
        .open(&path)
        .unwrap();
    drop(db);
    let seen = events.lock().unwrap().clone();
    let a = root.path().join("a");
    let b = a.join("b");
    let position = |dir: &Path| seen.iter().position(|p| p == dir);
    for dir in [root.path(), &a, &b, &path] {
        assert!(
            position(dir).is_some(),
            "{} was not synced; directory syncs: {seen:?}",
            dir.display()
        );
    }
    // Each new entry is synced after it was made, top-down, and the database directory
    // after its files.
    assert!(position(root.path()) < position(&a) && position(&a) < position(&b));
    assert!(position(&b) < seen.iter().rposition(|p| p == &path));
    println!("nested creation: {} directory syncs", seen.len());
}

#[test]
fn opening_into_an_existing_empty_directory_syncs_it_and_its_parent() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("left-behind");
    // As an earlier open that crashed before syncing anything would leave it.
    std::fs::create_dir(&path).unwrap();
    let (events, observer) = directory_syncs();
    let db = OpenOptions::new()
        .sync_observer(observer)
        .open(&path)
        .unwrap();
    drop(db);
    let seen = events.lock().unwrap().clone();
    assert!(seen.iter().any(|p| p == &path), "directory syncs: {seen:?}");
    assert!(
        seen.iter().any(|p| p == root.path()),
        "the directory's own entry (in its parent) must be synced too: {seen:?}"
    );

    // Reopening an existing database creates nothing and syncs no directory.
    let (events, observer) = directory_syncs();
    drop(
        OpenOptions::new()
            .sync_observer(observer)
            .open(&path)
            .unwrap(),
    );
    assert_eq!(*events.lock().unwrap(), Vec::<PathBuf>::new());
    println!("existing empty directory: {} directory syncs", seen.len());
}

/// What a reopen did to the files, in order: writes (path, offset), and syncs that
/// completed (path, kind).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Write(PathBuf, u64),
    Synced(PathBuf, SyncKind),
}

impl Run {
    /// [`reopen`](Self::reopen), recording what the new handle writes and syncs (read
    /// the record after its first flush).
    fn reopen_recorded(&mut self) -> (u64, Arc<Mutex<Vec<Step>>>) {
        drop(self.db.take());
        let steps: Arc<Mutex<Vec<Step>>> = Arc::default();
        let writes = Arc::clone(&steps);
        let injector: FaultInjector = Arc::new(move |point| {
            if point.op == FaultOp::Write {
                let step = Step::Write(point.path.to_owned(), point.offset);
                writes.lock().unwrap().push(step);
            }
            Ok(())
        });
        let syncs = Arc::clone(&steps);
        let observer: SyncObserver = Arc::new(move |event| {
            let step = Step::Synced(event.path.to_owned(), event.kind);
            syncs.lock().unwrap().push(step);
        });
        let db = OpenOptions::new()
            .fault_injector(injector)
            .sync_observer(observer)
            .open(self.path())
            .unwrap();
        let generation = db.stats().unwrap().generation;
        self.db = Some(db);
        (generation, steps)
    }
}

/// A crash image of `run`'s database: every file as it is now, then `edit` applied to
/// the copy (what a power cut leaves of what the page cache shows but the device does
/// not hold).
fn crash_image(run: &Run, edit: impl FnOnce(&Path)) -> tempfile::TempDir {
    let image = tempfile::tempdir().unwrap();
    support::copy_dir(run.path(), image.path());
    edit(image.path());
    image
}

/// A checkpoint whose directory sync failed: the rename is in the page cache but need
/// not be durable. A reopen reads the new log and a flush appends to it and is
/// acknowledged; a power cut brings back the old `meta` (and leaves the new one as
/// `meta.tmp`) unless something synced the directory since. The reopen must.
#[test]
fn an_acknowledged_flush_after_a_failed_checkpoint_directory_sync_survives_a_power_cut() {
    let mut run = Run::new(true, "", FaultOp::SyncDirectory, EIO);
    run.fault.arm(0);
    let mut old_meta = Vec::new();
    for _ in 0..40 {
        old_meta = std::fs::read(run.path().join("meta")).unwrap();
        run.write_round();
        if run.flush().is_err() {
            break;
        }
    }
    assert_eq!(run.fault.fired(), 1, "a checkpoint's directory sync failed");
    let (reopened_at, steps) = run.reopen_recorded();
    run.write_round();
    run.flush().expect("a flush after the reopen");
    // Whether the new handle made the rename durable before it committed.
    let dir = run.path().to_owned();
    let steps = steps.lock().unwrap().clone();
    let record = steps
        .iter()
        .position(|step| matches!(step, Step::Write(path, _) if path.ends_with("meta")));
    let rename_durable = steps
        .iter()
        .position(|step| *step == Step::Synced(dir.clone(), SyncKind::Directory))
        .is_some_and(|synced| record.is_none_or(|record| synced < record));
    let acked_generation = run.acked_generation;
    let image = crash_image(&run, |dir| {
        if !rename_durable {
            std::fs::rename(dir.join("meta"), dir.join("meta.tmp")).unwrap();
            std::fs::write(dir.join("meta"), &old_meta).unwrap();
        }
    });
    let opened = Database::open(image.path());
    let db = opened.unwrap_or_else(|e| {
        panic!(
            "reopened at {reopened_at}, acknowledged {acked_generation}; the rename made              durable by the reopen: {rename_durable}; open refused: {e}"
        )
    });
    assert_eq!(db.stats().unwrap().generation, acked_generation);
    assert_same(&read_state(&db).unwrap(), &run.acked, "after the power cut");
}

/// A metadata sync that failed: the kernel may have marked the record's pages clean
/// without writing them. A reopen reads the record from the page cache, the next flush
/// appends after it and its sync succeeds; a power cut then leaves zeros where the
/// record was, unless something wrote the record again (dirtying its pages) and synced
/// it since. The reopen must.
#[test]
fn an_acknowledged_flush_after_a_failed_metadata_sync_survives_a_power_cut() {
    let mut run = Run::new(false, "meta", FaultOp::SyncData, EIO);
    run.fault.arm(0);
    let mut record_at = 0;
    for _ in 0..40 {
        record_at = support::log_end(&run.path().join("meta"));
        run.write_round();
        if run.flush().is_err() {
            break;
        }
    }
    assert_eq!(run.fault.fired(), 1, "a metadata sync failed");
    let record_end = support::log_end(&run.path().join("meta"));
    let (reopened_at, steps) = run.reopen_recorded();
    run.write_round();
    run.flush().expect("a flush after the reopen");
    // Whether the new handle wrote the record again and synced it before it committed.
    let meta = run.path().join("meta");
    let steps = steps.lock().unwrap().clone();
    let rewritten = steps
        .iter()
        .position(|step| *step == Step::Write(meta.clone(), record_at));
    let synced_after = rewritten
        .is_some_and(|at| steps[at..].contains(&Step::Synced(meta.clone(), SyncKind::Data)));
    let acked_generation = run.acked_generation;
    let image = crash_image(&run, |dir| {
        if !synced_after {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(dir.join("meta"))
                .unwrap();
            let zeros = vec![0; (record_end - record_at) as usize];
            std::os::unix::fs::FileExt::write_all_at(&file, &zeros, record_at).unwrap();
        }
    });
    let opened = Database::open(image.path());
    let db = opened.unwrap_or_else(|e| {
        panic!(
            "reopened at {reopened_at} (the failed flush's record read from the cache), \
             acknowledged {acked_generation}; record at {record_at}..{record_end} written \
             again and synced by the reopen: {synced_after}; open refused: {e}"
        )
    });
    assert_eq!(db.stats().unwrap().generation, acked_generation);
    assert_same(&read_state(&db).unwrap(), &run.acked, "after the power cut");
}

/// A handle that opened a log whose last delta's sync failed punches holes before it
/// commits anything. The holes may be space only that delta freed (here: a region it
/// removed); if the delta never reached the device, the commit before it still places the
/// region there. So the handle must make the delta durable (write it again and sync it)
/// before it punches; a power cut then recovers the removal. If it did not, the crash
/// image loses the delta, and the region it recovers must still hold its bytes.
#[test]
fn a_punch_by_a_reopened_handle_spares_what_an_unconfirmed_delta_freed() {
    let dir = tempfile::tempdir().unwrap();
    let meta = dir.path().join("meta");
    let fault = Fault::new(meta.clone(), FaultOp::SyncData, EIO);
    let keep = vec![0xAB; 1 << 20];
    let (record_at, record_end);
    {
        let db = OpenOptions::new()
            .fault_injector(fault.injector())
            .open(dir.path())
            .unwrap();
        db.create_region_if_needed("victim").unwrap();
        db.write_all_to_region("victim".into(), &keep).unwrap();
        db.create_region_if_needed("after").unwrap();
        db.write_all_to_region("after".into(), b"x").unwrap();
        db.flush().unwrap();
        record_at = support::log_end(&meta);
        db.remove_region("victim".into()).unwrap();
        fault.arm(0);
        assert!(db.flush().is_err(), "the delta's sync fails");
        record_end = support::log_end(&meta);
    }
    // A new handle reads the removal from the page cache and punches before any commit.
    let steps: Arc<Mutex<Vec<Step>>> = Arc::default();
    let (writes, syncs) = (steps.clone(), steps.clone());
    let injector: FaultInjector = Arc::new(move |point| {
        if point.op == FaultOp::Write {
            let step = Step::Write(point.path.to_owned(), point.offset);
            writes.lock().unwrap().push(step);
        }
        Ok(())
    });
    let observer: SyncObserver = Arc::new(move |event| {
        let step = Step::Synced(event.path.to_owned(), event.kind);
        syncs.lock().unwrap().push(step);
    });
    let db = OpenOptions::new()
        .fault_injector(injector)
        .sync_observer(observer)
        .open(dir.path())
        .unwrap();
    db.punch_holes().unwrap();
    let steps = steps.lock().unwrap().clone();
    drop(db);
    let rewritten = steps
        .iter()
        .position(|step| *step == Step::Write(meta.clone(), record_at));
    let durable = rewritten
        .is_some_and(|at| steps[at..].contains(&Step::Synced(meta.clone(), SyncKind::Data)));
    // The power cut: without the handle's rewrite and sync the delta's pages, marked
    // clean after the failed sync, never reached the device.
    if !durable {
        let file = std::fs::OpenOptions::new().write(true).open(&meta).unwrap();
        let zeros = vec![0; (record_end - record_at) as usize];
        std::os::unix::fs::FileExt::write_all_at(&file, &zeros, record_at).unwrap();
    }
    let db = Database::open(dir.path()).unwrap();
    match db.create_region_reader("victim".into()) {
        Ok(reader) => assert_eq!(
            reader.read_all(),
            &keep[..],
            "bytes of the durable commit were punched"
        ),
        Err(Error::UnknownRegion { .. }) => assert!(durable, "the removal was never durable"),
        Err(e) => panic!("{e}"),
    }
}
