//! A thread that keeps appending to one region by number is lent a buffer and appends
//! without taking a lock. These tests check that such appends are seen by every other
//! operation, in order, on other threads, and made durable by any thread's flush.

use std::sync::mpsc;
use std::thread;

use seqdb::{Database, Error, Identifier};

/// Bytes of the counters `from..to`, 8 bytes each.
fn counters(from: u64, to: u64) -> Vec<u8> {
    (from..to).flat_map(|i| i.to_le_bytes()).collect()
}

fn append_counters(db: &Database, number: usize, from: u64, to: u64) {
    for i in from..to {
        db.write_all_to_region(number.into(), &i.to_le_bytes())
            .unwrap();
    }
}

fn contents(db: &Database, id: impl Into<Identifier>) -> Vec<u8> {
    db.create_region_reader(id.into())
        .unwrap()
        .read_all()
        .to_vec()
}

#[test]
fn appends_on_a_live_thread_are_read_and_flushed_by_another() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let (number, _) = db.create_region_if_needed("log").unwrap();
    let (go, wait) = mpsc::channel::<u64>();
    let (done, finished) = mpsc::channel::<()>();
    let writer = {
        let db = db.clone();
        thread::spawn(move || {
            let mut next = 0;
            while let Ok(count) = wait.recv() {
                append_counters(&db, number, next, next + count);
                next += count;
                done.send(()).unwrap();
            }
        })
    };
    go.send(20_000).unwrap();
    finished.recv().unwrap();
    // The writer is alive and still holds its buffer.
    assert_eq!(db.get_region(number.into()).unwrap().len(), 160_000);
    assert_eq!(contents(&db, number), counters(0, 20_000));
    go.send(10).unwrap();
    finished.recv().unwrap();
    db.flush().unwrap();
    go.send(5).unwrap();
    finished.recv().unwrap();
    // Not flushed: dropping the last handle flushes these five.
    drop(go);
    writer.join().unwrap();
    drop(db);
    let db = Database::open(dir.path()).unwrap();
    assert_eq!(contents(&db, number), counters(0, 20_015));
}

#[test]
fn appends_of_a_thread_that_ended_are_flushed_by_another() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let (number, _) = db.create_region_if_needed("log").unwrap();
    {
        let db = db.clone();
        thread::spawn(move || {
            append_counters(&db, number, 0, 100);
            // From here on the region is clean, and appends to the buffer mark nothing.
            db.flush().unwrap();
            append_counters(&db, number, 100, 1000);
        })
        .join()
        .unwrap();
    }
    assert_eq!(db.get_region(number.into()).unwrap().len(), 8000);
    db.flush().unwrap();
    drop(db);
    let db = Database::open(dir.path()).unwrap();
    assert_eq!(contents(&db, number), counters(0, 1000));
}

#[test]
fn two_writers_taking_turns_keep_the_order_of_their_turns() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let (number, _) = db.create_region_if_needed("shared").unwrap();
    const ROUNDS: u64 = 60;
    const RUN: u64 = 40;
    let (to_a, a_turn) = mpsc::channel::<u64>();
    let (to_b, b_turn) = mpsc::channel::<u64>();
    let spawn = |turns: mpsc::Receiver<u64>, next: mpsc::Sender<u64>| {
        let db = db.clone();
        thread::spawn(move || {
            while let Ok(round) = turns.recv() {
                let from = round * RUN;
                append_counters(&db, number, from, from + RUN);
                if round + 1 == ROUNDS * 2 || next.send(round + 1).is_err() {
                    break;
                }
            }
        })
    };
    let a = spawn(a_turn, to_b.clone());
    let b = spawn(b_turn, to_a.clone());
    to_a.send(0).unwrap();
    drop((to_a, to_b));
    a.join().unwrap();
    b.join().unwrap();
    assert_eq!(contents(&db, number), counters(0, ROUNDS * 2 * RUN));
}

#[test]
fn removing_a_region_stops_the_appends_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let (number, _) = db.create_region_if_needed("old").unwrap();
    append_counters(&db, number, 0, 100);
    db.remove_region(number.into()).unwrap().unwrap();
    let err = db.write_all_to_region(number.into(), b"late").unwrap_err();
    assert!(matches!(err, Error::UnknownRegion { .. }), "{err}");
    // The number is reused by the next region; appends by number now go there.
    let (again, region) = db.create_region_if_needed("new").unwrap();
    assert_eq!((again, region.len()), (number, 0));
    append_counters(&db, number, 500, 600);
    assert_eq!(contents(&db, "new"), counters(500, 600));
    db.flush().unwrap();
    drop(db);
    let db = Database::open(dir.path()).unwrap();
    assert_eq!(contents(&db, "new"), counters(500, 600));
    assert!(db.get_region("old".into()).is_err());
}

#[test]
fn length_stays_within_the_reservation_while_a_thread_appends() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let (number, _) = db.create_region_if_needed("log").unwrap();
    let writer = {
        let db = db.clone();
        thread::spawn(move || append_counters(&db, number, 0, 300_000))
    };
    let mut last = 0;
    let mut looks = 0u64;
    while !writer.is_finished() || looks == 0 {
        let region = db.get_region(number.into()).unwrap();
        assert!(region.len() <= region.reserved(), "{region:?}");
        assert!(
            region.len() >= last,
            "shrank: {} after {last}",
            region.len()
        );
        assert_eq!(region.len() % 8, 0, "an append seen in part");
        last = region.len();
        looks += 1;
    }
    writer.join().unwrap();
    assert_eq!(contents(&db, number), counters(0, 300_000));
}

#[test]
fn truncation_and_overwrites_see_the_lent_bytes_first() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let (number, _) = db.create_region_if_needed("log").unwrap();
    append_counters(&db, number, 0, 100);
    db.truncate_region(number.into(), 80).unwrap();
    append_counters(&db, number, 10, 100);
    assert_eq!(contents(&db, number), counters(0, 100));
    db.write_all_to_region_at(number.into(), &counters(7, 8), 0)
        .unwrap();
    append_counters(&db, number, 100, 120);
    let mut want = counters(0, 120);
    want[..8].copy_from_slice(&counters(7, 8));
    assert_eq!(contents(&db, number), want);
}

#[test]
fn compaction_keeps_the_bytes_of_a_thread_appending_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    for i in 0..20 {
        let (n, _) = db.create_region_if_needed(&format!("filler{i}")).unwrap();
        db.write_all_to_region(n.into(), &vec![i as u8; 50_000])
            .unwrap();
    }
    let (number, _) = db.create_region_if_needed("log").unwrap();
    db.flush().unwrap();
    let writer = {
        let db = db.clone();
        thread::spawn(move || append_counters(&db, number, 0, 400_000))
    };
    for i in (0..20).step_by(2) {
        db.remove_region(format!("filler{i}").as_str().into())
            .unwrap();
        db.compact().unwrap();
    }
    writer.join().unwrap();
    db.flush().unwrap();
    drop(db);
    let db = Database::open(dir.path()).unwrap();
    assert_eq!(contents(&db, number), counters(0, 400_000));
    for i in (1..20).step_by(2) {
        assert_eq!(
            contents(&db, format!("filler{i}").as_str()),
            vec![i as u8; 50_000]
        );
    }
}

#[test]
fn a_flush_with_nothing_new_writes_no_metadata_even_with_a_lent_buffer() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let (number, _) = db.create_region_if_needed("log").unwrap();
    append_counters(&db, number, 0, 100);
    db.flush().unwrap();
    // Where the log ends: after its last page that is not zeros.
    let meta = || {
        let bytes = std::fs::read(dir.path().join("meta")).unwrap();
        let mut pages = bytes.chunks(4096);
        (pages.rposition(|p| p.iter().any(|&b| b != 0)).unwrap() + 1) as u64 * 4096
    };
    let before = meta();
    db.flush().unwrap();
    assert_eq!(meta(), before, "nothing changed");
    append_counters(&db, number, 100, 101);
    db.flush().unwrap();
    assert_eq!(meta(), before + 4096, "one record for the one append");
}
