//! Full disk: on a small tmpfs, the engine runs out of space while appending, creating
//! regions, flushing and compacting. Every time, the process must survive (no `SIGBUS`),
//! the error must say the disk is full (`Error::is_no_space`) and name a file of the
//! database, the open handle must still read, and the database must reopen holding the
//! last successful flush (or the flush that failed, if its commit record made it).
//!
//! Mounting needs root on Linux; elsewhere each test prints `skipped: <reason>`.
//!
//! To make a flush or a compaction meet a full disk at different points, the file system
//! is first filled with a filler file, which is then shortened to leave a chosen slack:
//! none, a page, and sizes around what the operation needs (measured by a dry run).

mod support;

use std::fs::File;
use std::io::{ErrorKind, Write};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use seqdb::{Database, Error, Identifier};
use seqdb_sys::test_support::TmpfsMount;
use support::{Rng, State};

const MOUNT_SIZE: u64 = 8 << 20;

/// The tests of this file run one at a time. Mounting and unmounting spawn processes,
/// and a process forked while another thread holds a database's files keeps them open
/// (and the lock held, and deleted files allocated) until it execs; a test reopening its
/// database at that moment would see `AlreadyOpen`, or a full disk that should have
/// been freed.
static SERIAL: Mutex<()> = Mutex::new(());

/// The serialising guard and a fresh tmpfs, or `None` (after printing why) when no
/// tmpfs can be mounted here.
fn mount() -> Option<(MutexGuard<'static, ()>, TmpfsMount)> {
    let guard = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    match TmpfsMount::new(MOUNT_SIZE) {
        Ok(mount) => Some((guard, mount)),
        Err(reason) => {
            println!("skipped: {reason}");
            None
        }
    }
}

/// Fill the file system with `path`; returns the file's length.
fn fill(path: &Path) -> u64 {
    let mut file = File::create(path).unwrap();
    let chunk = vec![0xA5u8; 64 << 10];
    let mut total = 0u64;
    loop {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(n) => total += n as u64,
            Err(e) if e.kind() == ErrorKind::StorageFull => break,
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
    total
}

/// Give `slack` bytes back by shortening the filler.
fn leave_slack(filler: &Path, filled: u64, slack: u64) {
    File::options()
        .write(true)
        .open(filler)
        .unwrap()
        .set_len(filled.saturating_sub(slack))
        .unwrap();
}

/// Errors whose message names a file that does not exist, noted by [`assert_no_space`]
/// and reported at the end of each test (so that every scenario still runs).
static MISNAMED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// The error must be a full disk and name a file under `root`; the file it names must
/// be one that exists (a message naming a file that is not there misleads the reader).
fn assert_no_space(error: &Error, root: &Path, during: &str) {
    assert!(
        error.is_no_space(),
        "{during}: expected a full-disk error, got: {error}"
    );
    let message = error.to_string();
    assert!(
        message.contains(&*root.to_string_lossy()),
        "{during}: the error does not name the database's file: {message}"
    );
    if let Error::Sys { source } = error
        && !source.path().exists()
    {
        MISNAMED.lock().unwrap().push(format!(
            "{during}: the error names a file that does not exist: {message}"
        ));
    }
}

/// Fail if any error of this test named a file that does not exist.
fn assert_paths_named_exist() {
    let misnamed = std::mem::take(&mut *MISNAMED.lock().unwrap());
    assert!(
        misnamed.is_empty(),
        "{} errors named a missing file:\n{}",
        misnamed.len(),
        misnamed.join("\n")
    );
}

/// A later error on a handle that already met a full disk: a full disk again, or the
/// handle refusing changes after a move, a metadata write or a sync failed (its cause:
/// the full disk).
fn assert_full_or_poisoned(error: &Error, root: &Path, during: &str) {
    match error {
        Error::Poisoned { source, .. } => assert!(
            source.is_no_space() && error.is_no_space(),
            "{during}: poisoned by something else than a full disk: {error}"
        ),
        _ => assert_no_space(error, root, during),
    }
}

/// Reading through the open handle must still work (or fail cleanly) after the error.
fn read_after_error(db: &Database) {
    for region in db.regions() {
        if let Ok(reader) = db.create_region_reader(Identifier::Number(region.number())) {
            let bytes = reader.read_all();
            assert_eq!(bytes.len() as u64, region.len());
            // Touch every page: a page that cannot be read would raise SIGBUS here.
            let sum: u64 = bytes.iter().step_by(4096).map(|&b| u64::from(b)).sum();
            std::hint::black_box(sum);
        }
    }
}

/// Reopen after a full disk: first as it is (an error there must be a full disk too),
/// then after deleting `filler`. The state must be `committed` or `in_flight`. Then the
/// database must take new writes.
fn reopen_and_check(
    dir: &Path,
    root: &Path,
    filler: &Path,
    committed: &State,
    in_flight: Option<&State>,
    scenario: &str,
) -> &'static str {
    match Database::open(dir) {
        Ok(db) => drop(db),
        Err(e) => assert_no_space(&e, root, &format!("{scenario}: reopen on a full disk")),
    }
    if filler.exists() {
        std::fs::remove_file(filler).unwrap();
    }
    let db = Database::open(dir)
        .unwrap_or_else(|e| panic!("{scenario}: reopen after freeing space failed: {e}"));
    let got = support::read_state(&db).unwrap();
    let which = if support::diff_states(&got, committed).is_none() {
        "last flush"
    } else if in_flight.is_some_and(|s| support::diff_states(&got, s).is_none()) {
        "failed flush"
    } else {
        panic!(
            "{scenario}: after reopening, the database is neither the last flush ({}) nor \
             the failed one",
            support::diff_states(&got, committed).unwrap()
        );
    };
    // Usable again: write, flush, reopen.
    let mut want = got;
    db.create_region_if_needed("after-full").unwrap();
    db.write_all_to_region("after-full".into(), b"room again")
        .unwrap();
    want.entry("after-full".to_owned())
        .or_default()
        .extend_from_slice(b"room again");
    db.flush().unwrap();
    drop(db);
    let db = Database::open(dir).unwrap();
    let got = support::read_state(&db).unwrap();
    if let Some(diff) = support::diff_states(&got, &want) {
        panic!("{scenario}: writes after recovery were lost: {diff}");
    }
    which
}

/// Append (and create regions) until the engine reports a full disk.
fn appends_until_full(root: &Path, seed: u64, name_len: usize, create_every: u64) -> String {
    let dir = root.join(format!("db-{seed}"));
    let filler = root.join("reserve");
    // Space to give back after the disk fills, so the database can be reopened and used.
    std::fs::write(&filler, vec![1u8; 512 << 10])
        .unwrap_or_else(|e| panic!("writing {}: {e}", filler.display()));
    let db = Database::open(&dir).unwrap();
    let mut rng = Rng(seed);
    let mut model = State::new();
    let mut committed = State::new();
    let mut names: Vec<String> = Vec::new();
    let mut ops = 0u64;
    let mut flushes = 0u64;
    let (error, failed_op) = loop {
        ops += 1;
        if names.is_empty() || ops.is_multiple_of(create_every) {
            let name = format!("{:0>width$}", names.len(), width = name_len);
            match db.create_region_if_needed(&name) {
                Ok(_) => {
                    model.insert(name.clone(), Vec::new());
                    names.push(name);
                }
                Err(e) => break (e, "create"),
            }
        }
        if ops.is_multiple_of(10) {
            match db.flush() {
                Ok(()) => {
                    committed = model.clone();
                    flushes += 1;
                }
                Err(e) => break (e, "flush"),
            }
            continue;
        }
        let name = rng.pick(&names).clone();
        let len = match rng.below(10) {
            0 => rng.range(16 << 10, 100 << 10),
            _ => rng.range(1, 4000),
        } as usize;
        let data = rng.bytes(len);
        match db.write_all_to_region(name.as_str().into(), &data) {
            Ok(()) => model.get_mut(&name).unwrap().extend_from_slice(&data),
            Err(e) => break (e, "append"),
        }
    };
    let scenario = format!("appends until full (seed {seed}, names of {name_len} bytes)");
    assert_no_space(&error, root, &format!("{scenario}: {failed_op}"));
    let mut in_flight = (failed_op == "flush").then(|| model.clone());
    read_after_error(&db);
    // One more flush on the full disk: it fails cleanly, or commits what is there.
    match db.flush() {
        Ok(()) => committed = model.clone(),
        Err(e) => {
            assert_full_or_poisoned(&e, root, &format!("{scenario}: flush after the error"));
            in_flight = Some(model.clone());
        }
    }
    read_after_error(&db);
    drop(db);
    let which = reopen_and_check(
        &dir,
        root,
        &filler,
        &committed,
        in_flight.as_ref(),
        &scenario,
    );
    std::fs::remove_dir_all(&dir).unwrap();
    let live: usize = committed.values().map(Vec::len).sum();
    format!(
        "{scenario}: {failed_op} failed after {ops} operations and {flushes} flushes \
         ({live} bytes flushed); recovered the {which}"
    )
}

/// A database with some flushed regions and more bytes waiting in memory; returns the
/// state before and after the pending bytes.
fn prepare_pending(db: &Database, seed: u64) -> (State, State) {
    let mut rng = Rng(seed);
    let mut model = State::new();
    for i in 0..6 {
        let name = format!("region-{i}");
        db.create_region_if_needed(&name).unwrap();
        let data = rng.bytes(30_000 + 1000 * i);
        db.write_all_to_region(name.as_str().into(), &data).unwrap();
        model.insert(name, data);
    }
    db.flush().unwrap();
    let committed = model.clone();
    // Small appends stay in memory until the flush writes them.
    for round in 0..40 {
        for i in 0..6 {
            let name = format!("region-{i}");
            let data = rng.bytes(1000 + round);
            db.write_all_to_region(name.as_str().into(), &data).unwrap();
            model.get_mut(&name).unwrap().extend_from_slice(&data);
        }
    }
    for i in 6..9 {
        let name = format!("new-{i}-{}", "n".repeat(1000));
        db.create_region_if_needed(&name).unwrap();
        db.write_all_to_region(name.as_str().into(), &[i as u8; 100])
            .unwrap();
        model.insert(name, vec![i as u8; 100]);
    }
    (committed, model)
}

fn allocated(db: &Database) -> u64 {
    db.stats().unwrap().allocated_bytes
}

/// Slack sizes around `needed`, from none to a little more than enough.
fn slacks(needed: u64) -> Vec<u64> {
    let page = 4096;
    let mut out = vec![
        0,
        page,
        needed / 4,
        needed / 2,
        needed.saturating_sub(2 * page),
        needed.saturating_sub(page),
        needed,
        needed + page,
        needed + 16 * page,
    ];
    out.sort_unstable();
    out.dedup();
    out
}

#[test]
fn appends_and_creates_until_the_disk_is_full() {
    let Some((_serial, mount)) = mount() else {
        return;
    };
    let root = mount.path();
    let mut scenarios = 0;
    for (seed, name_len, create_every) in [(1, 8, 40), (2, 500, 3), (3, 1024, 1)] {
        let report = appends_until_full(root, seed, name_len, create_every);
        println!("{report}");
        scenarios += 1;
    }
    println!("full-disk scenarios run: {scenarios}");
    assert_paths_named_exist();
}

#[test]
fn flush_meets_a_full_disk() {
    let Some((_serial, mount)) = mount() else {
        return;
    };
    let root = mount.path();
    // Dry run: how much a flush of the pending bytes allocates.
    let needed = {
        let dir = root.join("dry");
        let db = Database::open(&dir).unwrap();
        prepare_pending(&db, 11);
        let before = allocated(&db);
        db.flush().unwrap();
        let after = allocated(&db);
        drop(db);
        std::fs::remove_dir_all(&dir).unwrap();
        after.saturating_sub(before)
    };
    let mut outcomes = Vec::new();
    for slack in slacks(needed) {
        let dir = root.join(format!("db-{slack}"));
        let filler = root.join("filler");
        let db = Database::open(&dir).unwrap();
        let (committed, pending) = prepare_pending(&db, 11);
        let filled = fill(&filler);
        leave_slack(&filler, filled, slack);
        let scenario = format!("flush with {slack} bytes free ({needed} needed)");
        let in_flight = match db.flush() {
            Ok(()) => None,
            Err(e) => {
                assert_no_space(&e, root, &scenario);
                println!("{scenario}: {e}");
                read_after_error(&db);
                Some(pending.clone())
            }
        };
        let flushed = in_flight.is_none();
        drop(db);
        let committed = if flushed { &pending } else { &committed };
        let which = reopen_and_check(
            &dir,
            root,
            &filler,
            committed,
            in_flight.as_ref(),
            &scenario,
        );
        outcomes.push(format!(
            "{slack}: {}",
            if flushed { "flushed" } else { which }
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
    println!(
        "flush on a full disk ({needed} bytes needed), slack -> outcome: {}",
        outcomes.join(", ")
    );
    println!("full-disk scenarios run: {}", outcomes.len());
    assert_paths_named_exist();
}

/// A fragmented database: regions of different sizes, every other one removed, holes
/// punched, so that compaction has to allocate the pages it copies into.
fn prepare_fragmented(db: &Database, seed: u64) -> State {
    let mut rng = Rng(seed);
    let mut model = State::new();
    for i in 0..14 {
        let name = format!("frag-{i}");
        db.create_region_if_needed(&name).unwrap();
        let data = rng.bytes(20_000 + 9_000 * (i % 5));
        db.write_all_to_region(name.as_str().into(), &data).unwrap();
        model.insert(name, data);
    }
    db.flush().unwrap();
    for i in (0..14).step_by(2) {
        let name = format!("frag-{i}");
        db.remove_region(name.as_str().into()).unwrap();
        model.remove(&name);
    }
    db.flush_then_punch().unwrap();
    model
}

#[test]
fn compaction_meets_a_full_disk() {
    let Some((_serial, mount)) = mount() else {
        return;
    };
    let root = mount.path();
    // Dry run: the most a compaction allocates is the bytes it moves.
    let needed = {
        let dir = root.join("dry");
        let db = Database::open(&dir).unwrap();
        prepare_fragmented(&db, 21);
        let before: Vec<u64> = db.regions().iter().map(|r| r.start()).collect();
        db.compact().unwrap();
        let moved: u64 = db
            .regions()
            .iter()
            .zip(&before)
            .filter(|(r, start)| r.start() != **start)
            .map(|(r, _)| r.len().div_ceil(4096) * 4096)
            .sum();
        drop(db);
        std::fs::remove_dir_all(&dir).unwrap();
        moved
    };
    let mut outcomes = Vec::new();
    for slack in slacks(needed).into_iter().chain([2 * needed, 4 * needed]) {
        let dir = root.join(format!("db-{slack}"));
        let filler = root.join("filler");
        let db = Database::open(&dir).unwrap();
        let model = prepare_fragmented(&db, 21);
        let filled = fill(&filler);
        leave_slack(&filler, filled, slack);
        let scenario = format!("compaction with {slack} bytes free ({needed} moved)");
        let outcome = match db.compact() {
            Ok(()) => "compacted",
            Err(e) => {
                assert_no_space(&e, root, &scenario);
                println!("{scenario}: {e}");
                read_after_error(&db);
                // The handle either goes on or refuses changes; it never panics.
                if let Err(e) = db.write_all_to_region("frag-1".into(), b"x") {
                    assert_full_or_poisoned(&e, root, &format!("{scenario}: write after"));
                }
                "failed"
            }
        };
        drop(db);
        // Compaction moves bytes but never changes them: the model holds either way
        // (apart from the one-byte write above, which was never flushed).
        reopen_and_check(&dir, root, &filler, &model, None, &scenario);
        let db = Database::open(&dir).unwrap();
        db.compact().unwrap();
        drop(db);
        std::fs::remove_dir_all(&dir).unwrap();
        outcomes.push(format!("{slack}: {outcome}"));
    }
    println!(
        "compaction on a full disk ({needed} bytes to move), slack -> outcome: {}",
        outcomes.join(", ")
    );
    println!("full-disk scenarios run: {}", outcomes.len());
    assert_paths_named_exist();
}

#[test]
fn creating_a_database_on_a_full_disk() {
    let Some((_serial, mount)) = mount() else {
        return;
    };
    let root = mount.path();
    let filler = root.join("filler");
    let filled = fill(&filler);
    let mut outcomes = Vec::new();
    // No space at all, a page, two pages (less the earlier attempts' leftovers), then enough.
    for (i, slack) in [0u64, 4096, 8192, 65536].into_iter().enumerate() {
        leave_slack(&filler, filled, slack);
        let dir = root.join(format!("new-{i}"));
        let scenario = format!("creating a database with {slack} bytes free");
        match Database::open(&dir) {
            Ok(db) => {
                drop(db);
                outcomes.push(format!("{slack}: created"));
            }
            Err(e) => {
                assert_no_space(&e, root, &scenario);
                outcomes.push(format!("{slack}: {e}"));
            }
        }
    }
    std::fs::remove_file(&filler).unwrap();
    // With space again, each directory opens as an empty database (or the one created).
    for i in 0..4 {
        let dir = root.join(format!("new-{i}"));
        let db = Database::open(&dir)
            .unwrap_or_else(|e| panic!("reopening {} after freeing space: {e}", dir.display()));
        assert!(db.regions().is_empty());
        db.create_region_if_needed("r").unwrap();
        db.write_all_to_region("r".into(), b"ok").unwrap();
        db.flush().unwrap();
        drop(db);
        let db = Database::open(&dir).unwrap();
        assert_eq!(support::read_state(&db).unwrap()["r"], b"ok");
    }
    println!(
        "create on a full disk, slack -> outcome: {}",
        outcomes.join("; ")
    );
    println!("full-disk scenarios run: {}", outcomes.len());
    assert_paths_named_exist();
}
