//! Races around the buffers regions lend to appending threads: readers alive while a
//! thread goes on appending, removal while a thread appends by number, and buffers a
//! thread leaves behind.

mod support;

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use seqdb::{Database, Identifier};
use support::{run, this_thread_id};

fn append_counters(db: &Database, number: usize, from: u64, to: u64) {
    for i in from..to {
        db.write_all_to_region(number.into(), &i.to_le_bytes())
            .unwrap();
    }
}

/// A thread that appends `count` counters to `number` each time it is told to, and
/// reports after each batch. It keeps its lent buffer between batches.
fn spawn_writer(
    db: &Database,
    number: usize,
) -> (
    mpsc::Sender<u64>,
    mpsc::Receiver<()>,
    thread::JoinHandle<()>,
) {
    let (go, wait) = mpsc::channel::<u64>();
    let (done, finished) = mpsc::channel::<()>();
    let db = db.clone();
    let handle = thread::spawn(move || {
        let mut next = 0;
        while let Ok(count) = wait.recv() {
            append_counters(&db, number, next, next + count);
            next += count;
            let _ = done.send(());
        }
    });
    (go, finished, handle)
}

/// A region "log" and a writer thread that the region has lent a buffer (after 40
/// appends in a row), with the writer's channels.
fn lent_writer(
    db: &Database,
) -> (
    usize,
    mpsc::Sender<u64>,
    mpsc::Receiver<()>,
    thread::JoinHandle<()>,
) {
    let (number, _) = db.create_region_if_needed("log").unwrap();
    let (go, finished, writer) = spawn_writer(db, number);
    go.send(40).unwrap();
    finished.recv().unwrap();
    (number, go, finished, writer)
}

/// A thread holding a reader of a region flushes while another thread's lent buffer holds
/// bytes for that region: the flush collects them under the shared lock and returns (it
/// cannot wait for the write lock, which the caller's own reader keeps).
#[test]
fn flush_by_a_thread_holding_a_reader_returns() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let (number, go, _finished, _writer) = lent_writer(&db);
    let (result_tx, result_rx) = mpsc::channel();
    {
        let db = db.clone();
        thread::spawn(move || {
            let reader = db.create_region_reader(number.into()).unwrap();
            assert_eq!(reader.len(), 320);
            // Another thread appends while this reader lives (it would wait for the
            // reader without a lent buffer; it does not wait now).
            go.send(1).unwrap();
            thread::sleep(Duration::from_millis(200));
            let flushed = db.flush();
            let _ = result_tx.send(flushed.is_ok());
            drop(reader);
        });
    }
    let outcome = result_rx.recv_timeout(Duration::from_secs(5));
    assert!(
        outcome.is_ok(),
        "flush by the thread that holds a reader did not return within 5 s (it spins forever)"
    );
}

/// Two readers of one region on one thread while another thread's lent buffer holds
/// bytes: the second reader is made (and collects them) without the write lock.
#[test]
fn a_second_reader_on_the_same_thread_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let (number, go, _finished, _writer) = lent_writer(&db);
    let (result_tx, result_rx) = mpsc::channel();
    {
        let db = db.clone();
        thread::spawn(move || {
            let first = db.create_region_reader(number.into()).unwrap();
            go.send(1).unwrap();
            thread::sleep(Duration::from_millis(200));
            let second = db.create_region_reader(number.into()).map(|r| r.len());
            let _ = result_tx.send(second.is_ok());
            drop(first);
        });
    }
    assert!(
        result_rx.recv_timeout(Duration::from_secs(5)).is_ok(),
        "a second reader of the region on the same thread never came back"
    );
}

/// A flush on one thread while a reader of the region lives on another: the flush does
/// not wait for the reader to be dropped.
#[test]
fn a_flush_does_not_wait_for_a_reader_on_another_thread() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let (number, go, finished, _writer) = lent_writer(&db);
    let reader = db.create_region_reader(number.into()).unwrap();
    go.send(1).unwrap();
    finished.recv().unwrap(); // the append returned while the reader lives
    let flusher = {
        let db = db.clone();
        thread::spawn(move || {
            let start = Instant::now();
            db.flush().unwrap();
            start.elapsed()
        })
    };
    thread::sleep(Duration::from_secs(2));
    drop(reader);
    let took = flusher.join().unwrap();
    assert!(
        took < Duration::from_secs(1),
        "flush took {took:?}: it waited for a reader on another thread"
    );
}

/// The `Region` a reader reports has the length of the bytes it shows.
#[test]
fn a_reader_reports_its_own_length() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let (number, go, finished, _writer) = lent_writer(&db);
    let reader = db.create_region_reader(number.into()).unwrap();
    go.send(1).unwrap();
    finished.recv().unwrap();
    assert_eq!(reader.region().len(), reader.len());
}

/// A thread pinned to CPU 0 at normal priority that removes region 0 each time it is
/// told to and says when it is done. `None` (with the reason printed) where pinning is
/// not permitted.
fn spawn_remover(
    db: &Database,
) -> Option<(mpsc::Sender<()>, mpsc::Receiver<()>, thread::JoinHandle<()>)> {
    let (remove_tx, remove_rx) = mpsc::channel::<()>();
    let (removed_tx, removed_rx) = mpsc::channel::<()>();
    let (pinned_tx, pinned_rx) = mpsc::channel::<bool>();
    let db = db.clone();
    let remover = thread::spawn(move || {
        let ok = run("taskset", &["-p", "-c", "0", &this_thread_id()]);
        pinned_tx.send(ok).unwrap();
        while remove_rx.recv().is_ok() {
            db.remove_region(Identifier::Number(0)).unwrap();
            removed_tx.send(()).unwrap();
        }
    });
    if !pinned_rx.recv().unwrap() {
        eprintln!("skipped: taskset failed");
        return None;
    }
    Some((remove_tx, removed_rx, remover))
}

/// Pin the calling thread to CPU 0 with a real-time priority, so that it preempts the
/// remover as soon as it wakes. False (with the reason printed) where not permitted.
fn pin_to_cpu_0_at_real_time_priority() -> bool {
    let me = this_thread_id();
    let ok = run("taskset", &["-p", "-c", "0", &me]) && run("chrt", &["-f", "-p", "10", &me]);
    if !ok {
        eprintln!("skipped: cannot pin or raise the priority");
    }
    ok
}

/// `remove_region` must end the lent buffer before the number becomes free: otherwise a
/// thread whose producer is for that number could see the region gone, create a new
/// region (which gets the same number), append to it by number into the old, dying
/// buffer, and have `Ok` for a byte that is lost.
///
/// To hit such a window, the appending thread runs at a real-time priority on the same
/// CPU as the remover, and wakes from short sleeps while the remover is mid-removal
/// (the remover is then preempted at once).
#[test]
fn an_append_to_a_new_region_is_not_lost_while_the_old_one_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let Some((remove_tx, removed_rx, remover)) = spawn_remover(&db) else {
        return;
    };
    let db2 = db.clone();
    let appender = thread::spawn(move || -> Option<String> {
        let db = db2;
        if !pin_to_cpu_0_at_real_time_priority() {
            return None;
        }
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut rand = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut to_the_old_number_after_removal = 0;
        for i in 0..20_000u64 {
            let (n, _) = db.create_region_if_needed(&format!("old{i}")).unwrap();
            assert_eq!(n, 0);
            append_counters(&db, 0, 0, 24); // lent a buffer
            remove_tx.send(()).unwrap();
            // Wake up somewhere inside the removal.
            let mut gone = false;
            for _ in 0..50 {
                thread::sleep(Duration::from_nanos(rand() % 8_000));
                if db.get_region(Identifier::Number(0)).is_err() {
                    gone = true;
                    break;
                }
            }
            if gone {
                // The region is gone: an append to its number must fail...
                if db.write_all_to_region(0.into(), b"orphan!!").is_ok() {
                    to_the_old_number_after_removal += 1;
                }
                // ... and an append to a new region with that number must land in it.
                let (n, _) = db.create_region_if_needed("new").unwrap();
                let appended = db.write_all_to_region(n.into(), b"appended");
                removed_rx.recv().unwrap();
                let len = db.get_region(Identifier::Number(n)).unwrap().len();
                if appended.is_ok() && len == 0 {
                    let contents = db
                        .create_region_reader(Identifier::Number(n))
                        .unwrap()
                        .read_all()
                        .to_vec();
                    return Some(format!(
                        "iteration {i}: an append to the new region {n} returned Ok but the \
                         region holds {contents:?} (appends to the removed region's number \
                         that returned Ok: {to_the_old_number_after_removal})"
                    ));
                }
                db.remove_region(Identifier::Number(n)).unwrap();
            } else {
                removed_rx.recv().unwrap();
            }
        }
        if to_the_old_number_after_removal > 0 {
            return Some(format!(
                "{to_the_old_number_after_removal} appends to a region already seen removed returned Ok"
            ));
        }
        None
    });
    let outcome = appender.join().unwrap();
    drop(remover);
    assert!(outcome.is_none(), "{}", outcome.unwrap());
}

/// The same window, for durability: had the old region 0 ended its buffer after the
/// number was free, the appender could be lent a buffer for the new region 0 first, and
/// taking the old region off the list of lending regions (by number) would take the new
/// one off too: its later appends would be in no flush.
#[test]
fn appends_flushed_after_a_number_is_reused_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let Some((remove_tx, removed_rx, remover)) = spawn_remover(&db) else {
        return;
    };
    let db2 = db.clone();
    let appender = thread::spawn(move || -> Option<(u64, usize)> {
        let db = db2;
        if !pin_to_cpu_0_at_real_time_priority() {
            return None;
        }
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rand = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for i in 0..20_000u64 {
            let (n, _) = db.create_region_if_needed(&format!("old{i}")).unwrap();
            assert_eq!(n, 0);
            append_counters(&db, 0, 0, 24);
            remove_tx.send(()).unwrap();
            let mut gone = false;
            for _ in 0..50 {
                thread::sleep(Duration::from_nanos(rand() % 8_000));
                if db.get_region(Identifier::Number(0)).is_err() {
                    gone = true;
                    break;
                }
            }
            if !gone {
                removed_rx.recv().unwrap();
                continue;
            }
            let (n, _) = db.create_region_if_needed("new").unwrap();
            assert_eq!(n, 0);
            db.write_all_to_region(0.into(), b"probe!!!").unwrap();
            if !db.get_region(0.into()).unwrap().is_empty() {
                // Not inside the window this time.
                removed_rx.recv().unwrap();
                db.remove_region(0.into()).unwrap();
                continue;
            }
            // Still inside the window: fill the old buffer until appends reach the new
            // region, then get a buffer lent for the new region.
            let chunk = vec![7u8; 16_000];
            let mut guard = 0;
            while db.get_region(0.into()).unwrap().is_empty() {
                db.write_all_to_region(0.into(), &chunk).unwrap();
                guard += 1;
                assert!(guard < 100);
            }
            append_counters(&db, 0, 0, 40);
            // Let the removal finish (its unlend runs now).
            removed_rx.recv().unwrap();
            db.flush().unwrap();
            append_counters(&db, 0, 40, 1040);
            db.flush().unwrap();
            let len = db.get_region(0.into()).unwrap().len();
            return Some((len, i as usize));
        }
        None
    });
    let outcome = appender.join().unwrap();
    drop(remover);
    let Some((len, iteration)) = outcome else {
        eprintln!("the window was not hit");
        return;
    };
    drop(db);
    thread::sleep(Duration::from_millis(100));
    let db = Database::open(dir.path()).unwrap();
    let after = db.get_region("new".into()).unwrap().len();
    assert_eq!(
        after, len,
        "iteration {iteration}: flushed length {len}, length after reopen {after}"
    );
}

fn vm_data_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmData:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// A region whose appending thread moved on gives its buffer up (at the latest at the
/// next flush): one thread walking over many regions does not leave them all holding
/// 64 KiB buffers.
#[test]
fn buffers_of_regions_a_thread_left_are_given_back() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    const REGIONS: usize = 2000;
    let numbers: Vec<usize> = (0..REGIONS)
        .map(|i| db.create_region_if_needed(&format!("r{i}")).unwrap().0)
        .collect();
    db.flush().unwrap();
    let before = vm_data_kib();
    for &n in &numbers {
        append_counters(&db, n, 0, 40);
        // Collect while the producer is alive; it is then dropped with nothing pending.
        drop(db.create_region_reader(n.into()).unwrap());
    }
    append_counters(&db, numbers[0], 40, 41);
    db.flush().unwrap();
    db.flush().unwrap();
    let grown = vm_data_kib().saturating_sub(before);
    assert!(
        grown < 16 * 1024,
        "{grown} KiB still held after the thread left {REGIONS} regions and two flushes"
    );
}
