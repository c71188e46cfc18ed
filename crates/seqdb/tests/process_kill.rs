//! Real process crashes: a child process writes and flushes in a loop, the parent kills
//! it with `SIGKILL` at random moments, reopens the database, and checks it.
//!
//! The child is this test binary run again with `--exact child_writer` and the database
//! directory in `SEQDB_KILL_CHILD_DIR`. Round `i` of its schedule appends deterministic
//! bytes to one of seven slots (large appends now and then, so regions move as they
//! grow), and on a fixed schedule removes, renames or halves a region; every third round
//! it appends the round number to the region `progress`, flushes, and prints
//! `flushed <round>`. Now and then it also compacts or punches holes after the flush.
//!
//! After each kill the parent opens the database and reads the last round in `progress`:
//! it must be at least the last round the child reported (a flush may also have completed
//! before its line was read), and every region must equal the schedule replayed up to
//! that round. The next child resumes from there. Counts: 150 kills (times
//! `SEQDB_STRESS_SCALE`), at most 45 s (times the scale); `SEQDB_SEED` picks the kill
//! timings.

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use seqdb::{Database, Identifier};
use support::{Budget, Rng};

const CHILD_ENV: &str = "SEQDB_KILL_CHILD_DIR";
const CHILD_TEST: &str = "child_writer";
const SLOTS: u64 = 7;
const PROGRESS: &str = "progress";

/// What a round is applied to: the real database (in the child) or the model.
trait Target {
    fn len(&mut self, name: &str) -> Option<u64>;
    /// Append, creating the region if needed.
    fn append(&mut self, name: &str, data: &[u8]);
    fn remove(&mut self, name: &str);
    fn rename(&mut self, from: &str, to: &str);
    fn truncate(&mut self, name: &str, len: u64);
    fn flush(&mut self, round: u64);
}

/// The current name of slot `slot` at round `round`: renames happen at rounds that are
/// multiples of 17 (but not of 23), and each gives the slot's region a new name.
fn slot_name(slot: u64, round: u64) -> String {
    let last_rename = (1..=round / 17)
        .rev()
        .map(|m| 17 * m)
        .find(|j| j % 23 != 0 && (j / 17) % SLOTS == slot)
        .unwrap_or(0);
    format!("s{slot}.{last_rename}")
}

fn append_len(round: u64) -> usize {
    if round.is_multiple_of(13) {
        20_000 + (round * 7919 % 30_000) as usize
    } else {
        1 + (round * 7919 % 3000) as usize
    }
}

/// Apply round `round` of the schedule.
fn apply_round(round: u64, target: &mut impl Target) {
    if round.is_multiple_of(23) {
        let name = slot_name((round / 23) % SLOTS, round);
        if target.len(&name).is_some() {
            target.remove(&name);
        }
    } else if round.is_multiple_of(17) {
        let slot = (round / 17) % SLOTS;
        let (from, to) = (slot_name(slot, round - 1), slot_name(slot, round));
        if target.len(&from).is_some() {
            target.rename(&from, &to);
        }
    } else if round.is_multiple_of(29) {
        let name = slot_name(round % SLOTS, round);
        if let Some(len) = target.len(&name) {
            target.truncate(&name, len / 2);
        }
    } else {
        let name = slot_name(round % SLOTS, round);
        target.append(&name, &support::pattern(round, append_len(round)));
    }
    if round.is_multiple_of(3) {
        target.append(PROGRESS, &round.to_le_bytes());
        target.flush(round);
    }
}

impl Target for support::State {
    fn len(&mut self, name: &str) -> Option<u64> {
        self.get(name).map(|v| v.len() as u64)
    }
    fn append(&mut self, name: &str, data: &[u8]) {
        self.entry(name.to_owned())
            .or_default()
            .extend_from_slice(data);
    }
    fn remove(&mut self, name: &str) {
        BTreeMap::remove(self, name);
    }
    fn rename(&mut self, from: &str, to: &str) {
        let v = BTreeMap::remove(self, from).unwrap();
        self.insert(to.to_owned(), v);
    }
    fn truncate(&mut self, name: &str, len: u64) {
        self.get_mut(name).unwrap().truncate(len as usize);
    }
    fn flush(&mut self, _round: u64) {}
}

/// The child's side: the database, with maintenance after some flushes.
struct Writer {
    db: Database,
    /// Print `flushed <round>` after each flush (the child does; the parent does not).
    announce: bool,
}

impl Target for Writer {
    fn len(&mut self, name: &str) -> Option<u64> {
        self.db
            .get_region(Identifier::from(name))
            .ok()
            .map(|r| r.len())
    }
    fn append(&mut self, name: &str, data: &[u8]) {
        self.db.create_region_if_needed(name).unwrap();
        self.db.write_all_to_region(name.into(), data).unwrap();
    }
    fn remove(&mut self, name: &str) {
        self.db.remove_region(name.into()).unwrap().unwrap();
    }
    fn rename(&mut self, from: &str, to: &str) {
        self.db.rename_region(from.into(), to).unwrap();
    }
    fn truncate(&mut self, name: &str, len: u64) {
        self.db.truncate_region(name.into(), len).unwrap();
    }
    fn flush(&mut self, round: u64) {
        self.db.flush().unwrap();
        if self.announce {
            println!("flushed {round}");
        }
        if round.is_multiple_of(60) {
            self.db.compact().unwrap();
        } else if round.is_multiple_of(31) {
            self.db.punch_holes().unwrap();
        }
    }
}

/// The last round recorded in `progress` (0 when there is none yet).
fn last_round(db: &Database) -> u64 {
    let Ok(reader) = db.create_region_reader(PROGRESS.into()) else {
        return 0;
    };
    let bytes = reader.read_all();
    assert!(
        bytes.len().is_multiple_of(8),
        "progress has {} bytes",
        bytes.len()
    );
    bytes
        .rchunks(8)
        .next()
        .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap()))
}

/// Runs only as the child (when the parent sets the variable); otherwise passes at once.
#[test]
fn child_writer() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let db = Database::open(Path::new(&dir)).unwrap();
    let start = last_round(&db);
    let mut child = Writer { db, announce: true };
    let began = Instant::now();
    // Bounded in case the parent is gone: it normally kills this process much sooner.
    for round in start + 1..start + 1_000_000 {
        apply_round(round, &mut child);
        if began.elapsed() > Duration::from_secs(120) {
            break;
        }
    }
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
            if let Some(round) = line.strip_prefix("flushed ") {
                let _ = tx.send(round.trim().parse().unwrap());
            }
        }
    });
    (child, rx, reader)
}

/// Check the database against the schedule; returns the recovered round.
fn verify(dir: &Path, model: &mut support::State, at: &mut u64, reported: u64, kill: u64) -> u64 {
    let db = Database::open(dir)
        .unwrap_or_else(|e| panic!("kill {kill}: open after SIGKILL failed: {e}"));
    let round = last_round(&db);
    assert!(
        round >= reported && round.is_multiple_of(3),
        "kill {kill}: recovered round {round}, but the child had reported round {reported} \
         flushed"
    );
    assert!(
        round >= *at,
        "kill {kill}: recovered round {round} is older than the verified round {at}"
    );
    for r in *at + 1..=round {
        apply_round(r, model);
    }
    *at = round;
    let got = support::read_state(&db).unwrap();
    if let Some(diff) = support::diff_states(&got, model) {
        panic!("kill {kill}: database at round {round} differs from the schedule: {diff}");
    }
    round
}

#[test]
fn sigkill_at_random_moments_loses_nothing_flushed() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let seed = support::seed_or(7);
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let budget = Budget::new(150, 45);
    let mut model = support::State::new();
    let mut at = 0;
    let mut kills = 0;
    let mut lost_lines = 0;
    let mut early = 0;
    while budget.allows(kills) {
        let (mut child, rx, reader) = spawn(&path);
        let mut reported = at;
        // Kill during start-up and recovery, right after a reported flush, or a little
        // later in the middle of the next rounds.
        let (wait_lines, extra_micros) = match rng.below(4) {
            0 => (0, rng.below(30_000)),
            1 => (rng.range(1, 4), 0),
            _ => (rng.range(1, 12), rng.below(4000)),
        };
        if wait_lines == 0 {
            early += 1;
        }
        let mut seen = 0;
        while seen < wait_lines {
            match rx.recv_timeout(Duration::from_secs(20)) {
                Ok(round) => {
                    reported = reported.max(round);
                    seen += 1;
                }
                // The child stopped printing (it ended, or is stuck): look at it below.
                Err(_) => break,
            }
        }
        thread::sleep(Duration::from_micros(extra_micros));
        let exited_before = child.try_wait().unwrap();
        child.kill().unwrap();
        let status = child.wait().unwrap();
        reader.join().unwrap();
        // Lines the child wrote before it died were flushed before they were written.
        while let Ok(round) = rx.try_recv() {
            reported = reported.max(round);
            lost_lines += 1;
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
        verify(&path, &mut model, &mut at, reported, kills);
    }
    // The database is still usable after all that: write, flush, reopen, check.
    let db = Database::open(&path).unwrap();
    let mut child = Writer {
        db,
        announce: false,
    };
    apply_round(at + 1, &mut child);
    apply_round(at + 2, &mut child);
    apply_round(at + 3, &mut child);
    drop(child);
    let reported = at + 3;
    verify(&path, &mut model, &mut at, reported, kills + 1);
    println!(
        "kills survived: {kills} ({early} during start-up), last recovered round {at}, \
         {lost_lines} flush lines read after the kill, {:.1?} (seed {seed})",
        budget.elapsed()
    );
}
