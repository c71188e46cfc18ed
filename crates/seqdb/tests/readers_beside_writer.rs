//! Read-only handles in other processes beside a live writer.
//!
//! `readers_see_committed_prefixes_through_sigkills`: a writer process appends records to
//! the region `log`, replaces the region `churn`, and now and then compacts or punches,
//! flushing after every round and printing `flushed <len>`. Four reader processes open
//! the database read-only over and over (a new handle sees the newest commit), and check
//! every state they see: `log` must parse as whole records whose bytes are the
//! deterministic stream, never shorter than what an earlier handle saw, and `churn` must be
//! one whole version; they hold each handle a little while, then check the same bytes
//! again, so a writer that reused space a reader views is caught. The parent SIGKILLs
//! readers and the writer at random and starts them again; at the end the database opens
//! and holds every flushed byte. Runs 3 s (times `SEQDB_STRESS_SCALE`; `cargo xtask
//! stress` runs it longer); `SEQDB_SEED` picks the kill timings.
//!
//! `an_old_generation_keeps_its_bytes_until_its_reader_is_gone`: a reader process holds a
//! region the writer then removes, replaces and compacts over; its bytes stay right, the
//! space is kept (and reported), and comes back once the reader is killed.
#![cfg(any(target_os = "linux", target_os = "android"))]

mod support;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use seqdb::{Database, Identifier};
use support::{Budget, Rng};

const WRITER_ENV: &str = "SEQDB_BESIDE_WRITER_DIR";
const READER_ENV: &str = "SEQDB_BESIDE_READER_DIR";
const HOLDER_ENV: &str = "SEQDB_BESIDE_HOLDER_DIR";
const LOG: &str = "log";
const CHURN: &str = "churn";
const READERS: usize = 4;

/// Byte `offset` of the log's payload stream.
fn log_byte(offset: u64) -> u8 {
    (offset.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8
}

/// The record appended at `offset`: a 4-byte length, then that many stream bytes.
fn log_record(offset: u64, len: u32) -> Vec<u8> {
    let mut out = len.to_le_bytes().to_vec();
    out.extend((0..u64::from(len)).map(|j| log_byte(offset + 4 + j)));
    out
}

/// Check that `bytes` are whole records of the stream; returns how many.
fn check_log(bytes: &[u8]) -> Result<u64, String> {
    let mut at = 0usize;
    let mut records = 0;
    while at < bytes.len() {
        let head = bytes
            .get(at..at + 4)
            .ok_or_else(|| format!("a record head is cut at {at} of {}", bytes.len()))?;
        let len = u32::from_le_bytes(head.try_into().unwrap()) as usize;
        if len == 0 || len > 100_000 {
            return Err(format!("record at {at} claims {len} bytes"));
        }
        let body = bytes
            .get(at + 4..at + 4 + len)
            .ok_or_else(|| format!("record at {at} of {len} bytes is cut at {}", bytes.len()))?;
        if let Some(j) = (0..len).find(|&j| body[j] != log_byte((at + 4 + j) as u64)) {
            return Err(format!("byte {} differs from the stream", at + 4 + j));
        }
        at += 4 + len;
        records += 1;
    }
    Ok(records)
}

/// Version `k` of the region `churn`.
fn churn(k: u64) -> Vec<u8> {
    let mut out = k.to_le_bytes().to_vec();
    let len = 1 + (k.wrapping_mul(977) % 120_000) as usize;
    out.extend(support::pattern(k, len));
    out
}

fn check_churn(bytes: &[u8]) -> Result<(), String> {
    let Some(k) = bytes.get(..8) else {
        return Err(format!("churn holds {} bytes", bytes.len()));
    };
    let k = u64::from_le_bytes(k.try_into().unwrap());
    if bytes != churn(k) {
        return Err(format!("churn is not version {k} ({} bytes)", bytes.len()));
    }
    Ok(())
}

fn region_bytes(db: &Database, name: &str) -> Option<Vec<u8>> {
    let reader = db.create_region_reader(Identifier::from(name)).ok()?;
    Some(reader.read_all().to_vec())
}

#[test]
fn child_writer() {
    let Ok(dir) = std::env::var(WRITER_ENV) else {
        return;
    };
    let db = Database::open(Path::new(&dir)).unwrap();
    let (log, _) = db.create_region_if_needed(LOG).unwrap();
    let mut rng = Rng(std::process::id().into());
    let began = Instant::now();
    // Bounded in case the parent is gone: it normally kills this process much sooner.
    while began.elapsed() < Duration::from_secs(120) {
        let offset = db.get_region(log.into()).unwrap().len();
        let len = if rng.one_in(8) {
            rng.range(20_000, 90_000)
        } else {
            rng.range(1, 3000)
        };
        db.write_all_to_region(log.into(), &log_record(offset, len as u32))
            .unwrap();
        if rng.one_in(3) {
            let _ = db.remove_region(CHURN.into()).unwrap();
            let (number, _) = db.create_region_if_needed(CHURN).unwrap();
            db.write_all_to_region(number.into(), &churn(rng.below(1 << 40)))
                .unwrap();
        }
        db.flush().unwrap();
        println!("flushed {}", db.get_region(log.into()).unwrap().len());
        if rng.one_in(10) {
            db.compact().unwrap();
        } else if rng.one_in(5) {
            db.punch_holes().unwrap();
        }
    }
}

#[test]
fn child_reader() {
    let Ok(dir) = std::env::var(READER_ENV) else {
        return;
    };
    let mut rng = Rng(u64::from(std::process::id()) << 8);
    let began = Instant::now();
    let mut seen = 0u64;
    while began.elapsed() < Duration::from_secs(120) {
        let db = Database::open_read_only(Path::new(&dir))
            .unwrap_or_else(|e| panic!("read-only open beside the writer: {e}"));
        let log = db.create_region_reader(LOG.into()).unwrap();
        let bytes = log.read_all();
        check_log(bytes).unwrap_or_else(|e| panic!("log of {} bytes: {e}", bytes.len()));
        let len = bytes.len() as u64;
        assert!(
            len >= seen,
            "a newer handle saw {len} bytes of the log, an older {seen}"
        );
        seen = len;
        let churned = region_bytes(&db, CHURN);
        if let Some(churned) = &churned {
            check_churn(churned).unwrap();
        }
        let churn_reader = db.create_region_reader(CHURN.into()).ok();
        // Hold the handle while the writer goes on; its bytes must not change.
        thread::sleep(Duration::from_millis(rng.below(40)));
        check_log(bytes).unwrap_or_else(|e| panic!("held log of {} bytes: {e}", bytes.len()));
        if let Some(reader) = &churn_reader {
            check_churn(reader.read_all()).unwrap_or_else(|e| panic!("held churn: {e}"));
        }
        drop(churn_reader);
        drop(log);
        println!("seen {len}");
    }
}

struct Spawned {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

fn spawn(test: &str, env: &str, dir: &Path) -> Spawned {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(env, dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // The harness starts the line `test NAME ... ` before the test prints.
            let line = match line.rsplit_once(" ... ") {
                Some((_, rest)) => rest.to_owned(),
                None => line,
            };
            let _ = tx.send(line);
        }
    });
    let stderr = Arc::new(Mutex::new(String::new()));
    let mut err = child.stderr.take().unwrap();
    let sink = stderr.clone();
    thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut text);
        sink.lock().unwrap().push_str(&text);
    });
    Spawned {
        child,
        lines,
        stderr,
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Spawned {
    /// Kill the child and wait for it; panics if it had failed on its own first.
    fn kill(&mut self, what: &str) {
        let _ = self.child.kill();
        let status = self.child.wait().unwrap();
        if status.signal() != Some(9) && !status.success() {
            thread::sleep(Duration::from_millis(100));
            panic!("{what} failed ({status}):\n{}", self.stderr.lock().unwrap());
        }
    }

    /// The flushed lengths the writer reported so far; the largest.
    fn last_flushed(&self, at_least: u64) -> u64 {
        self.lines
            .try_iter()
            .filter_map(|l| l.strip_prefix("flushed ")?.parse().ok())
            .fold(at_least, u64::max)
    }
}

#[test]
fn readers_see_committed_prefixes_through_sigkills() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    {
        let db = Database::open(path).unwrap();
        db.create_region_if_needed(LOG).unwrap();
        db.close().unwrap();
    }
    let mut rng = Rng(support::seed_or(0x5eed_0001));
    let budget = Budget::new(u64::MAX, 3);
    let mut writer = spawn("child_writer", WRITER_ENV, path);
    let mut readers: Vec<Spawned> = (0..READERS)
        .map(|_| spawn("child_reader", READER_ENV, path))
        .collect();
    let mut flushed = 0;
    let (mut writer_kills, mut reader_kills) = (0, 0);
    while budget.allows(0) {
        thread::sleep(Duration::from_millis(rng.range(20, 250)));
        flushed = writer.last_flushed(flushed);
        if rng.one_in(4) {
            writer.kill("the writer");
            flushed = writer.last_flushed(flushed);
            writer_kills += 1;
            writer = spawn("child_writer", WRITER_ENV, path);
        } else {
            let which = rng.below(READERS as u64) as usize;
            let fresh = spawn("child_reader", READER_ENV, path);
            std::mem::replace(&mut readers[which], fresh).kill("a reader");
            reader_kills += 1;
        }
    }
    for mut reader in readers {
        reader.kill("a reader");
    }
    writer.kill("the writer");
    flushed = writer.last_flushed(flushed);
    let db = Database::open(path).unwrap();
    let log = region_bytes(&db, LOG).unwrap();
    check_log(&log).unwrap();
    assert!(
        log.len() as u64 >= flushed,
        "the log holds {} bytes, but the writer had flushed {flushed}",
        log.len()
    );
    if let Some(churned) = region_bytes(&db, CHURN) {
        check_churn(&churned).unwrap();
    }
    drop(db);
    assert!(seqdb::check(path).unwrap().is_healthy());
    assert!(flushed > 0, "the writer never flushed");
    eprintln!(
        "{} bytes flushed, {writer_kills} writer kills, {reader_kills} reader kills",
        flushed
    );
}

#[test]
fn child_holder() {
    let Ok(dir) = std::env::var(HOLDER_ENV) else {
        return;
    };
    let db = Database::open_read_only(Path::new(&dir)).unwrap();
    let reader = db.create_region_reader("old".into()).unwrap();
    assert_eq!(reader.read_all(), support::pattern(1, 1 << 20));
    println!("ready");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    assert_eq!(
        reader.read_all(),
        support::pattern(1, 1 << 20),
        "the bytes of an old generation changed under its reader"
    );
    println!("ok");
    thread::sleep(Duration::from_secs(60));
}

/// Wait for the line `want` (the test harness prints lines of its own too).
fn expect_line(spawned: &Spawned, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match spawned.lines.recv_timeout(left) {
            Ok(line) if line == want => return,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    thread::sleep(Duration::from_millis(100));
    panic!(
        "no line {want:?} from the reader:\n{}",
        spawned.stderr.lock().unwrap()
    );
}

#[test]
fn an_old_generation_keeps_its_bytes_until_its_reader_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    let db = Database::open(path).unwrap();
    db.create_region_if_needed("old").unwrap();
    db.write_all_to_region("old".into(), &support::pattern(1, 1 << 20))
        .unwrap();
    db.create_region_if_needed("small").unwrap();
    db.write_all_to_region("small".into(), b"small").unwrap();
    db.flush().unwrap();
    let generation = 1;

    let mut holder = spawn("child_holder", HOLDER_ENV, path);
    expect_line(&holder, "ready");
    let table = db.reader_table().unwrap();
    assert_eq!(table.readers.len(), 1, "{table:?}");
    assert_eq!(table.readers[0].pid, holder.child.id());
    assert_eq!(table.readers[0].generation, generation);

    // Remove the region it views, write as much elsewhere, compact and punch: the new
    // bytes would land in the old region's space if it were reused.
    db.remove_region("old".into()).unwrap();
    db.create_region_if_needed("new").unwrap();
    db.write_all_to_region("new".into(), &support::pattern(2, 1 << 20))
        .unwrap();
    db.flush().unwrap();
    db.compact().unwrap();
    db.flush_then_punch().unwrap();
    let kept = db.reader_table().unwrap().kept;
    assert!(kept.bytes >= 1 << 20, "{kept:?}");
    assert_eq!(kept.oldest_generation, generation);
    assert!(db.file_len().unwrap() > 2 << 20);

    let stdin: &mut ChildStdin = holder.child.stdin.as_mut().unwrap();
    stdin.write_all(b"check\n").unwrap();
    expect_line(&holder, "ok");
    holder.kill("the reader");

    // Gone: the next punch frees the space, and compaction gives it back.
    db.punch_holes().unwrap();
    let table = db.reader_table().unwrap();
    assert!(table.readers.is_empty(), "{table:?}");
    assert_eq!(table.kept.bytes, 0);
    db.compact().unwrap();
    assert!(db.file_len().unwrap() < (1 << 20) + (64 << 10));
    assert_eq!(
        region_bytes(&db, "new").unwrap(),
        support::pattern(2, 1 << 20)
    );
}

#[test]
fn a_read_only_handle_of_this_process_counts_as_a_reader() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    let db = Database::open(path).unwrap();
    db.create_region_if_needed("old").unwrap();
    db.write_all_to_region("old".into(), &[7; 100_000]).unwrap();
    db.flush().unwrap();
    let reader_db = Database::open_read_only(path).unwrap();
    let reader = reader_db.create_region_reader("old".into()).unwrap();
    // A second writer is still refused, in this process as in any other.
    assert!(matches!(
        Database::open(path),
        Err(seqdb::Error::AlreadyOpen { .. })
    ));
    db.remove_region("old".into()).unwrap();
    db.create_region_if_needed("new").unwrap();
    db.write_all_to_region("new".into(), &[9; 100_000]).unwrap();
    db.flush().unwrap();
    db.compact().unwrap();
    assert!(reader.read_all().iter().all(|&b| b == 7));
    assert!(db.reader_table().unwrap().kept.bytes >= 100_000);
    // A handle opened now sees the newest commit.
    let newer = Database::open_read_only(path).unwrap();
    assert!(newer.get_region("old".into()).is_err());
    assert_eq!(
        newer.create_region_reader("new".into()).unwrap().read_all(),
        &[9; 100_000][..]
    );
    drop(newer);
    drop(reader);
    drop(reader_db);
    db.punch_holes().unwrap();
    assert_eq!(db.reader_table().unwrap().kept.bytes, 0);
}
