//! A flush racing structural changes on other threads commits a state that existed at one
//! instant: names unique, every region at one point of its history.
//!
//! The sync observer copies the metadata file and the data file at every commit point
//! (the metadata sync that ends a flush), while the flushing thread still holds the
//! commit lock: each copy is exactly what a power cut right after that flush returned
//! would leave. Every copy must open and show the flushing thread's region with exactly
//! the bytes it had appended before that flush.

mod support;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use seqdb::{Database, Identifier, OpenOptions, SyncEvent, SyncKind};

/// Flushes made by the appending thread in each test, times `SEQDB_STRESS_SCALE`.
const FLUSHES: usize = 1500;

/// A directory on a memory file system when there is one, so that syncs cost little and
/// the threads race often.
fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::tempdir_in(shm)
    {
        return dir;
    }
    tempfile::tempdir().unwrap()
}

/// The files of the database at each commit point.
type Copies = Arc<Mutex<Vec<(Vec<u8>, Vec<u8>)>>>;

fn open_copying(dir: &Path) -> (Database, Copies) {
    let copies: Copies = Arc::default();
    let sink = copies.clone();
    let root = dir.to_owned();
    let observer = Arc::new(move |event: SyncEvent<'_>| {
        let commit_point = match event.kind {
            SyncKind::Data | SyncKind::All => event.path.ends_with("meta"),
            // The rename of a checkpoint over the log, made durable.
            SyncKind::Directory => event.path == root,
        };
        // Before the database's files exist (while it is created) there is nothing to copy.
        if commit_point
            && let (Ok(data), Ok(meta)) = (
                std::fs::read(root.join("data")),
                std::fs::read(root.join("meta")),
            )
        {
            sink.lock().unwrap().push((data, meta));
        }
    });
    let db = OpenOptions::new()
        .sync_observer(observer)
        .open(dir)
        .unwrap();
    (db, copies)
}

/// Lets the racing thread make a few changes per flush, so that the files stay small
/// (space freed by a removal is reused only after the next commit).
struct Pace {
    flushes: Arc<AtomicUsize>,
    seen: usize,
    rounds: usize,
    per_flush: usize,
}

impl Pace {
    /// Wait until another round may start; false once the flushes are over.
    fn next(&mut self) -> bool {
        loop {
            let flushes = self.flushes.load(Ordering::Relaxed);
            if flushes == usize::MAX {
                return false;
            }
            if flushes != self.seen {
                self.seen = flushes;
                self.rounds = 0;
            }
            if self.rounds < self.per_flush {
                self.rounds += 1;
                return true;
            }
            thread::yield_now();
        }
    }
}

/// Append one byte to region `a` and flush, `FLUSHES` times, while `other` runs on
/// another thread until the appends are done; then check every commit's copy.
fn race(db_dir: &Path, per_flush: usize, other: impl FnOnce(Database, Pace) + Send + 'static) {
    let (db, copies) = open_copying(db_dir);
    let (a, _) = db.create_region_if_needed("a").unwrap();
    db.create_region_if_needed("b").unwrap();
    db.flush().unwrap();
    copies.lock().unwrap().clear();
    let flushed = Arc::new(AtomicUsize::new(0));
    let racer = {
        let db = db.clone();
        let pace = Pace {
            flushes: flushed.clone(),
            seen: 0,
            rounds: 0,
            per_flush,
        };
        thread::spawn(move || other(db, pace))
    };
    let count = FLUSHES * support::scale() as usize;
    let mut flushes = Vec::with_capacity(count);
    for i in 0..count {
        db.write_all_to_region(a.into(), &[i as u8]).unwrap();
        let before = copies.lock().unwrap().len();
        db.flush().unwrap();
        // The last copy made by this flush is its commit point.
        let after = copies.lock().unwrap().len();
        assert!(after > before, "flush {i} made no commit");
        flushes.push((i + 1, after - 1));
        flushed.store(i + 1, Ordering::Relaxed);
    }
    flushed.store(usize::MAX, Ordering::Relaxed);
    racer.join().unwrap();
    drop(db);

    let copies = copies.lock().unwrap();
    let check = tempfile::tempdir().unwrap();
    let mut renamed = 0;
    for (appended, copy) in flushes {
        let (data, meta) = &copies[copy];
        let dir = check.path().join(appended.to_string());
        support::write_files(&dir, &[("data", data), ("meta", meta)]);
        let db = Database::open_read_only(&dir)
            .unwrap_or_else(|e| panic!("the commit after append {appended} does not open: {e}"));
        let regions = db.regions();
        let mine = regions
            .iter()
            .find(|r| r.number() == a)
            .unwrap_or_else(|| panic!("commit after append {appended}: region {a} is gone"));
        renamed += usize::from(mine.name() != "a");
        let bytes = db.create_region_reader(Identifier::Number(a)).unwrap();
        let want: Vec<u8> = (0..appended).map(|i| i as u8).collect();
        assert_eq!(
            bytes.read_all(),
            want.as_slice(),
            "commit after append {appended}: region {a} does not hold every byte appended"
        );
    }
    println!("{count} commits checked; the appended region was renamed in {renamed}");
}

#[test]
fn a_flush_racing_renames_commits_unique_names() {
    let dir = scratch_dir();
    // At most a thousand swaps per flush (a few hundred pass between flushes when both
    // threads run): a flusher kept off the processor must not let the changes waiting for
    // the next commit, and the copies of every commit's files, grow without bound.
    race(dir.path(), 1000, |db, mut pace| {
        let a = db.get_region("a".into()).unwrap().number();
        let b = db.get_region("b".into()).unwrap().number();
        let mut swaps = 0u64;
        while pace.next() {
            let name_a = db
                .get_region(Identifier::Number(a))
                .unwrap()
                .name()
                .to_owned();
            let name_b = db
                .get_region(Identifier::Number(b))
                .unwrap()
                .name()
                .to_owned();
            db.rename_region(Identifier::Number(b), "tmp").unwrap();
            db.rename_region(Identifier::Number(a), &name_b).unwrap();
            db.rename_region(Identifier::Number(b), &name_a).unwrap();
            swaps += 1;
        }
        println!("{swaps} swaps of two names");
    });
}

#[test]
fn a_flush_racing_removals_and_creations_commits_unique_names() {
    let dir = scratch_dir();
    // At most 200 rounds per flush (about as many as pass between flushes when both
    // threads run): each round's new region takes a page that is reused only after the
    // next commit, and every commit's files are copied and kept, so a flusher kept off
    // the processor while the rounds ran on once grew the copies past the machine's
    // memory.
    race(dir.path(), 200, |db, mut pace| {
        let a = db.get_region("a".into()).unwrap().number();
        let mut rounds = 0u64;
        while pace.next() {
            // The region that is not `a` goes; `a` takes its name, and a new region (under
            // the number just freed, or a new one) takes `a`'s old name.
            let mine = db
                .get_region(Identifier::Number(a))
                .unwrap()
                .name()
                .to_owned();
            let other = if mine == "a" { "b" } else { "a" };
            db.remove_region(other.into()).unwrap();
            db.rename_region(Identifier::Number(a), other).unwrap();
            // (Empty regions: a region with bytes takes more space, reused only after the
            // next commit.)
            if rounds.is_multiple_of(2) {
                db.create_region_if_needed("c").unwrap();
                db.rename_region("c".into(), &mine).unwrap();
            } else {
                db.create_region_if_needed(&mine).unwrap();
            }
            let keep = ["a".to_owned(), "b".to_owned()].into_iter().collect();
            db.retain_regions(keep).unwrap();
            rounds += 1;
        }
        println!("{rounds} rounds of removals and creations");
    });
}

/// One thread appends item `i` to region `r` by number (so that `r` lends it a buffer)
/// and then item `i` to region `s` by name: in every state the database was in, `s` holds
/// no more items than `r`. A flusher races it, and every commit point is checked. (A flush
/// collects each lent buffer once more at its instant, after every region is held: a push
/// that came before a change to another held region is then in the record.)
#[test]
fn a_commit_keeps_one_threads_order_across_regions() {
    let dir = scratch_dir();
    let check = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let bad: Arc<Mutex<Vec<String>>> = Arc::default();
    let checked = Arc::new(AtomicU64::new(0));
    let armed = Arc::new(AtomicBool::new(false));
    let observer = {
        let (bad, checked, armed) = (bad.clone(), checked.clone(), armed.clone());
        let copy = check.path().join("commit");
        Arc::new(move |event: SyncEvent<'_>| {
            let commit_point = match event.kind {
                SyncKind::Data | SyncKind::All => event.path.ends_with("meta"),
                SyncKind::Directory => event.path == root,
            };
            if !commit_point || !armed.load(Ordering::Relaxed) {
                return;
            }
            // Only the lengths matter: a sparse data file of the right length will do, with
            // the data file's header (which names the database and its newest commit).
            let (Ok(meta), Ok(data)) = (
                std::fs::read(root.join("meta")),
                std::fs::metadata(root.join("data")),
            ) else {
                return;
            };
            let mut header = vec![0u8; seqdb::DATA_HEADER_LEN as usize];
            std::os::unix::fs::FileExt::read_exact_at(
                &std::fs::File::open(root.join("data")).unwrap(),
                &mut header,
                0,
            )
            .unwrap();
            support::write_files(&copy, &[("meta", &meta), ("data", &header)]);
            std::fs::File::options()
                .write(true)
                .open(copy.join("data"))
                .unwrap()
                .set_len(data.len())
                .unwrap();
            // Read-write: the bytes the commits carried in their records are written
            // into the copy's empty data file.
            let db = Database::open(&copy).unwrap();
            let r = db.get_region("r".into()).unwrap().len() / 8;
            let s = db.get_region("s".into()).unwrap().len() / 8;
            checked.fetch_add(1, Ordering::Relaxed);
            if s > r {
                bad.lock()
                    .unwrap()
                    .push(format!("a commit has {s} items in s but only {r} in r"));
            }
        })
    };
    let db = OpenOptions::new()
        .sync_observer(observer)
        .open(dir.path())
        .unwrap();
    let (r, _) = db.create_region_if_needed("r").unwrap();
    db.create_region_if_needed("s").unwrap();
    db.flush().unwrap();
    armed.store(true, Ordering::Relaxed);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, stop) = (db.clone(), stop.clone());
        thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) && i < 2_000_000 {
                db.write_all_to_region(Identifier::Number(r), &i.to_le_bytes())
                    .unwrap();
                db.write_all_to_region("s".into(), &i.to_le_bytes())
                    .unwrap();
                i += 1;
                if i.is_multiple_of(64) {
                    thread::yield_now();
                }
            }
            i
        })
    };
    let budget = Duration::from_secs(3 * support::scale());
    let start = Instant::now();
    while start.elapsed() < budget && bad.lock().unwrap().is_empty() && !writer.is_finished() {
        db.flush().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let items = writer.join().unwrap();
    armed.store(false, Ordering::Relaxed);
    let bad = bad.lock().unwrap();
    println!(
        "{items} items, {} commits checked, {} out of order",
        checked.load(Ordering::Relaxed),
        bad.len()
    );
    assert!(bad.is_empty(), "{}", bad[0]);
}
