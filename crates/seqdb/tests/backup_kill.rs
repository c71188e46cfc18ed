//! Backups under real process kills: a child process changes a database version by
//! version, with a thread appending to a log region all along, and after each version
//! backs the database up (incrementally) into one directory; the parent kills it with
//! `SIGKILL` at random moments.
//!
//! After each kill the backup directory must be either a complete backup or refused:
//! while the marker of a backup under way is there, `open` fails with
//! `Error::IncompleteBackup` and `check` reports it; otherwise it opens, `check` finds
//! nothing, it holds a version at least as new as the last backup the child reported,
//! every region equals the model of that version, and the log region is a whole prefix
//! of the log. The next child resumes from the database's last commit and completes the
//! backup. Counts: 30 kills (times `SEQDB_STRESS_SCALE`), at most 20 s (times the scale);
//! `SEQDB_SEED` picks the kill timings.

mod support;

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use seqdb::{Database, Error, INCOMPLETE_MARKER};
use support::{Budget, Rng, State};

const CHILD_ENV: &str = "SEQDB_BACKUP_KILL_DIR";
const CHILD_TEST: &str = "child_backing_up";
const SLOTS: u64 = 5;
const VERSION: &str = "version";
const LOG: &str = "log";
const RECORD: usize = 512;

/// The name slot `slot` has at version `v`: renamed every 7 versions.
fn slot_name(slot: u64, v: u64) -> String {
    format!("s{slot}.{}", (v + slot) / 7)
}

/// The changes of version `v`, applied to a model or to the database.
fn apply_version(v: u64, state: &mut State, mut op: impl FnMut(Op<'_>)) {
    for slot in 0..SLOTS {
        let (old, new) = (slot_name(slot, v - 1), slot_name(slot, v));
        if old != new
            && let Some(bytes) = state.remove(&old)
        {
            state.insert(new.clone(), bytes);
            op(Op::Rename(&old, &new));
        }
    }
    let slot = v % SLOTS;
    let name = slot_name(slot, v);
    if v.is_multiple_of(11) {
        if state.remove(&name).is_some() {
            op(Op::Remove(&name));
        }
        return;
    }
    let bytes = support::pattern(v, 1000 + (v * 7919 % 60_000) as usize);
    let region = state.entry(name.clone()).or_default();
    if v.is_multiple_of(3) && region.len() > 10_000 {
        // An overwrite inside the region.
        let patch = &bytes[..bytes.len().min(5000)];
        let at = (v * 104_729) as usize % (region.len() - patch.len());
        region[at..at + patch.len()].copy_from_slice(patch);
        op(Op::Overwrite(&name, at as u64, patch));
    } else {
        region.extend_from_slice(&bytes);
        op(Op::Append(&name, &bytes));
    }
}

enum Op<'a> {
    Rename(&'a str, &'a str),
    Remove(&'a str),
    Overwrite(&'a str, u64, &'a [u8]),
    Append(&'a str, &'a [u8]),
}

fn model(v: u64) -> State {
    let mut state = State::new();
    for version in 1..=v {
        apply_version(version, &mut state, |_| {});
    }
    state
}

fn log_record(i: u64) -> Vec<u8> {
    let mut out = support::pattern(i ^ 0xABCD, RECORD);
    out[..8].copy_from_slice(&i.to_le_bytes());
    out
}

/// The last version `db` holds: the last of the numbers appended to its version region
/// (appended, not overwritten in place: an overwrite after the last commit may reach the
/// file before a kill, an append after it is never seen).
fn last_version(db: &Database) -> u64 {
    db.create_region_reader(VERSION.into()).ok().map_or(0, |r| {
        let bytes = r.read_all();
        u64::from_le_bytes(bytes[bytes.len() - 8..].try_into().unwrap())
    })
}

/// An overwrite of the version a killed child was making may have reached the file
/// before the kill, inside the committed length (the contract lets such bytes read old or
/// new): put the committed version `state` back before going on or backing up.
fn put_back_committed(db: &Database, state: &State) {
    for (name, bytes) in state {
        if db
            .create_region_reader(name.as_str().into())
            .unwrap()
            .read_all()
            != &bytes[..]
        {
            db.write_all_to_region_at(name.as_str().into(), bytes, 0)
                .unwrap();
        }
    }
}

/// Runs only as the child (when the parent sets the variable); otherwise passes at once.
#[test]
fn child_backing_up() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (src, dest) = (Path::new(&dir).join("src"), Path::new(&dir).join("dest"));
    let db = Database::open(&src).unwrap();
    let start = last_version(&db);
    let mut state = model(start);
    put_back_committed(&db, &state);
    let (log, _) = db.create_region_if_needed(LOG).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let logger = {
        let (db, stop) = (db.clone(), stop.clone());
        let mut next = db.get_region(log.into()).unwrap().len() / RECORD as u64;
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..20 {
                    db.write_all_to_region(log.into(), &log_record(next))
                        .unwrap();
                    next += 1;
                }
                thread::sleep(Duration::from_micros(200));
            }
        })
    };
    let began = Instant::now();
    // Bounded in case the parent is gone: it normally kills this process much sooner.
    for v in start + 1..start + 10_000 {
        apply_version(v, &mut state, |op| match op {
            Op::Rename(from, to) => db.rename_region(from.into(), to).unwrap(),
            Op::Remove(name) => {
                db.remove_region(name.into()).unwrap();
            }
            Op::Overwrite(name, at, bytes) => {
                db.write_all_to_region_at(name.into(), bytes, at).unwrap()
            }
            Op::Append(name, bytes) => {
                let (n, _) = db.create_region_if_needed(name).unwrap();
                db.write_all_to_region(n.into(), bytes).unwrap();
            }
        });
        let (n, _) = db.create_region_if_needed(VERSION).unwrap();
        db.write_all_to_region(n.into(), &v.to_le_bytes()).unwrap();
        // The backup commits the version (and whatever the log holds by then).
        db.backup(&dest).unwrap();
        println!("backed up {v}");
        if began.elapsed() > Duration::from_secs(60) {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    logger.join().unwrap();
}

fn spawn(dir: &Path) -> (Child, mpsc::Receiver<u64>, thread::JoinHandle<()>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(v) = line.strip_prefix("backed up ") {
                let _ = tx.send(v.trim().parse().unwrap());
            }
        }
    });
    (child, rx, reader)
}

/// Check the backup; returns whether it was complete.
fn verify(dest: &Path, reported: u64, kill: u64) -> bool {
    if dest.join(INCOMPLETE_MARKER).exists() {
        match Database::open_read_only(dest) {
            Err(Error::IncompleteBackup { .. }) => {}
            other => panic!("kill {kill}: an incomplete backup opened: {other:?}"),
        }
        let report = seqdb::check(dest).unwrap();
        assert!(
            !report.is_healthy(),
            "kill {kill}: check passed an incomplete backup"
        );
        return false;
    }
    if !dest.join("meta").exists() {
        // Killed before the first backup marked anything.
        assert_eq!(
            reported, 0,
            "kill {kill}: the backup of version {reported} is gone"
        );
        return false;
    }
    let report = seqdb::check_data(dest, |_, _| {}).unwrap();
    assert!(
        report.is_healthy() && report.data_checked,
        "kill {kill}: {report}"
    );
    let backup = Database::open_read_only(dest).unwrap();
    let mut state = support::read_state(&backup).unwrap();
    let v = last_version(&backup);
    assert!(
        v >= reported,
        "kill {kill}: backup of version {v}, {reported} was reported"
    );
    let log = state.remove(LOG).unwrap_or_default();
    assert_eq!(log.len() % RECORD, 0, "kill {kill}: a torn log record");
    for (i, record) in log.chunks(RECORD).enumerate() {
        assert_eq!(record, log_record(i as u64), "kill {kill}: log record {i}");
    }
    state.remove(VERSION);
    if let Some(diff) = support::diff_states(&state, &model(v)) {
        panic!("kill {kill}: the backup of version {v} differs: {diff}");
    }
    true
}

#[test]
fn backups_killed_at_random_moments_are_complete_or_refused() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let seed = support::seed_or(11);
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("dest");
    let budget = Budget::new(30, 20);
    let (mut kills, mut reported, mut incomplete) = (0, 0, 0);
    while budget.allows(kills) {
        let (mut child, rx, reader) = spawn(dir.path());
        // Kill during start-up, or after a few backups and a little more.
        let wait_lines = rng.below(8);
        let mut seen = 0;
        while seen < wait_lines {
            match rx.recv_timeout(Duration::from_secs(20)) {
                Ok(v) => {
                    reported = v;
                    seen += 1;
                }
                Err(_) => break,
            }
        }
        thread::sleep(Duration::from_micros(rng.below(30_000)));
        let exited_before = child.try_wait().unwrap();
        child.kill().unwrap();
        let status = child.wait().unwrap();
        reader.join().unwrap();
        while let Ok(v) = rx.try_recv() {
            reported = v;
        }
        if exited_before.is_some() || status.signal() != Some(9) {
            let mut stderr = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            panic!("child ended by itself ({status}) before the kill:\n{stderr}");
        }
        kills += 1;
        if !verify(&dest, reported, kills) {
            incomplete += 1;
        }
    }
    // One more backup completes whatever the last kill left.
    let db = Database::open(&dir.path().join("src")).unwrap();
    let v = last_version(&db);
    put_back_committed(&db, &model(v));
    db.backup(&dest).unwrap();
    drop(db);
    assert!(verify(&dest, v, kills + 1));
    println!(
        "kills: {kills}, {incomplete} left the backup incomplete or absent, last version \
         {reported}, {:.1?} (seed {seed})",
        budget.elapsed()
    );
}
