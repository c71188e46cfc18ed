//! Regions just opened (whose in-use state is made on first use, by a writer or by a
//! reader) behave as regions created in this process: readers keep their bytes, writers
//! and flushes see every byte, names at the inline boundary read back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use seqdb::{Database, Identifier};

/// Names around the longest kept inline (22 bytes), some with multi-byte characters.
fn names() -> Vec<String> {
    vec![
        "n".repeat(21),
        "n".repeat(22),
        "n".repeat(23),
        "é".repeat(11),
        format!("a{}", "é".repeat(11)),
        format!("{}a", "é".repeat(10)),
        "€".repeat(7),
        format!("a{}", "€".repeat(7)),
        "😀".repeat(6),
    ]
}

/// The byte at offset `i` of region `r` as appended.
fn byte(r: usize, i: u64) -> u8 {
    (i.wrapping_mul(31).wrapping_add(r as u64 * 7) % 251) as u8
}

fn content(r: usize, from: u64, len: u64) -> Vec<u8> {
    (from..from + len).map(|i| byte(r, i)).collect()
}

const INITIAL: u64 = 100_000;

fn prepare(dir: &std::path::Path) -> Vec<usize> {
    let db = Database::open(dir).unwrap();
    let mut numbers = Vec::new();
    for (r, name) in names().iter().enumerate() {
        let (number, _) = db.create_region_if_needed(name).unwrap();
        db.write_all_to_region(number.into(), &content(r, 0, INITIAL))
            .unwrap();
        numbers.push(number);
    }
    db.close().unwrap();
    numbers
}

#[test]
fn a_reader_of_an_opened_region_keeps_its_bytes_through_every_change() {
    let dir = tempfile::tempdir().unwrap();
    let numbers = prepare(dir.path());
    let db = Database::open(dir.path()).unwrap();
    for (r, name) in names().iter().enumerate() {
        let n = numbers[r];
        assert_eq!(db.get_region(name.as_str().into()).unwrap().number(), n);
        // The reader makes the region's live part.
        let reader = db.create_region_reader(n.into()).unwrap();
        let seen = reader.read_all().to_vec();
        assert_eq!(seen, content(r, 0, INITIAL), "{name}");
        match r % 3 {
            0 => db.write_all_to_region_at(n.into(), b"XYZ", 5).unwrap(),
            1 => db.truncate_region(n.into(), 10).unwrap(),
            _ => db.truncate_write_all_to_region(n.into(), 7, b"Q").unwrap(),
        }
        db.write_all_to_region(n.into(), b"tail").unwrap();
        assert_eq!(
            reader.read_all(),
            seen.as_slice(),
            "{name}: the reader's bytes changed"
        );
        db.flush().unwrap();
        db.compact().unwrap();
        assert_eq!(
            reader.read_all(),
            seen.as_slice(),
            "{name}: the reader's bytes changed"
        );
    }
    drop(db);
    let db = Database::open(dir.path()).unwrap();
    for (r, name) in names().iter().enumerate() {
        let region = db.get_region(name.as_str().into()).unwrap();
        assert_eq!(region.name(), name.as_str());
        let bytes = db
            .create_region_reader(region.number().into())
            .unwrap()
            .read_all()
            .to_vec();
        let mut expected = content(r, 0, INITIAL);
        match r % 3 {
            0 => expected[5..8].copy_from_slice(b"XYZ"),
            1 => expected.truncate(10),
            _ => {
                expected.truncate(7);
                expected.push(b'Q');
            }
        }
        expected.extend_from_slice(b"tail");
        assert_eq!(bytes, expected, "{name}");
    }
}

/// Appending threads (lent buffers), readers, flushes, compaction and hole punching on
/// regions just opened: every reader sees a prefix of what was appended, its bytes never
/// change, and everything acknowledged is there after a reopen.
#[test]
fn opened_regions_under_concurrent_appends_reads_and_maintenance() {
    let dir = tempfile::tempdir().unwrap();
    let numbers = prepare(dir.path());
    let db = Database::open(dir.path()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_secs(4);
    let mut handles = Vec::new();
    let appended: Vec<Arc<std::sync::atomic::AtomicU64>> = numbers
        .iter()
        .map(|_| Arc::new(std::sync::atomic::AtomicU64::new(INITIAL)))
        .collect();
    // Appenders: half of the regions.
    for r in (0..numbers.len()).step_by(2) {
        let (db, stop, done) = (db.clone(), stop.clone(), appended[r].clone());
        let n = numbers[r];
        handles.push(thread::spawn(move || {
            let mut at = INITIAL;
            let mut step = 1u64;
            while !stop.load(Ordering::Relaxed) {
                let len = step % 97 + 1;
                db.write_all_to_region(n.into(), &content(r, at, len))
                    .unwrap();
                at += len;
                done.store(at, Ordering::Release);
                step += 1;
            }
        }));
    }
    // Readers of every region.
    for t in 0..2 {
        let (db, stop, numbers) = (db.clone(), stop.clone(), numbers.clone());
        let appended = appended.clone();
        handles.push(thread::spawn(move || {
            let mut k = t;
            while !stop.load(Ordering::Relaxed) {
                let r = k % numbers.len();
                k += 1;
                let before = appended[r].load(Ordering::Acquire);
                let id: Identifier = if k % 2 == 0 {
                    numbers[r].into()
                } else {
                    names()[r].as_str().into()
                };
                let reader = db.create_region_reader(id).unwrap();
                let bytes = reader.read_all().to_vec();
                assert!(
                    bytes.len() as u64 >= before,
                    "region {r}: acknowledged bytes missing"
                );
                assert!(
                    bytes == content(r, 0, bytes.len() as u64),
                    "region {r}: wrong bytes in a reader of {}",
                    bytes.len()
                );
                thread::yield_now();
                assert_eq!(
                    reader.read_all(),
                    bytes.as_slice(),
                    "region {r}: bytes changed"
                );
            }
        }));
    }
    // Maintenance.
    {
        let (db, stop) = (db.clone(), stop.clone());
        handles.push(thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                match i % 4 {
                    0 | 2 => db.flush().unwrap(),
                    1 => {
                        let _ = db.compact();
                    }
                    _ => {
                        db.flush_then_punch().unwrap();
                    }
                }
                i += 1;
                thread::sleep(Duration::from_millis(2));
            }
        }));
    }
    while Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    for handle in handles {
        handle.join().unwrap();
    }
    let lens: Vec<u64> = appended.iter().map(|a| a.load(Ordering::Acquire)).collect();
    db.close().unwrap();
    let db = Database::open(dir.path()).unwrap();
    for (r, &n) in numbers.iter().enumerate() {
        let bytes = db
            .create_region_reader(n.into())
            .unwrap()
            .read_all()
            .to_vec();
        assert_eq!(bytes.len() as u64, lens[r], "region {r}");
        assert!(
            bytes == content(r, 0, lens[r]),
            "region {r}: wrong bytes after reopen"
        );
    }
}

/// Regions whose numbers have gaps (regions removed, first, last and between) come back
/// at their own numbers, with their names and bytes; the free numbers are given out
/// again lowest first.
#[test]
fn regions_with_free_numbers_between_them_reopen_at_their_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    // Kept regions by number; the pattern leaves gaps of one, of several, at the start
    // and at the end.
    let kept = |n: usize| n != 0 && n % 3 != 1 && !(20..27).contains(&n) && n < 57;
    {
        let db = Database::open(&path).unwrap();
        for n in 0..60 {
            let (number, _) = db.create_region_if_needed(&format!("region {n}")).unwrap();
            assert_eq!(number, n);
            db.write_all_to_region(number.into(), &content(n, 0, 100 + n as u64))
                .unwrap();
        }
        db.flush().unwrap();
        for n in (0..60).filter(|&n| !kept(n)) {
            db.remove_region(Identifier::Number(n)).unwrap().unwrap();
        }
        db.flush().unwrap();
    }
    // Twice: from the log as written, and from a checkpoint of it.
    for round in 0..2 {
        let db = Database::open(&path).unwrap();
        let listed: Vec<usize> = db.regions().iter().map(|r| r.number()).collect();
        assert_eq!(listed, (0..60).filter(|&n| kept(n)).collect::<Vec<_>>());
        for n in 0..60 {
            let by_number = db.get_region(Identifier::Number(n));
            let by_name = db.get_region(Identifier::from(format!("region {n}").as_str()));
            if kept(n) {
                let region = by_number.unwrap();
                assert_eq!(region.name(), format!("region {n}"));
                assert_eq!(by_name.unwrap().number(), n);
                let reader = db.create_region_reader(Identifier::Number(n)).unwrap();
                assert_eq!(reader.read_all(), content(n, 0, 100 + n as u64).as_slice());
            } else {
                assert!(
                    by_number.is_err() && by_name.is_err(),
                    "region {n} came back"
                );
            }
        }
        assert_eq!(db.stats().unwrap().regions as usize, listed.len());
        if round == 0 {
            db.compact().unwrap();
            db.flush().unwrap();
        }
    }
    let db = Database::open(&path).unwrap();
    let (first_free, _) = db.create_region_if_needed("new").unwrap();
    assert_eq!(first_free, 0);
    let (next_free, _) = db.create_region_if_needed("newer").unwrap();
    assert_eq!(next_free, 1);
}
