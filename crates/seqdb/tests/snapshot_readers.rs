//! Readers are snapshots: they show the bytes and length they were made with, hold no
//! lock, and the space they view is reused only after they are gone.
//!
//! `SEQDB_STRESS_SCALE=<n>` (any `n` above 1) makes the writer of the first test append
//! 1 GiB instead of 256 MiB.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use seqdb::{Database, Identifier, Reader};
use support::Rng;

const MIB: usize = 1 << 20;

/// The bytes of words `first..first + count`: word `i` holds `i` plus `salt`, little-endian.
fn words(first: u64, count: usize, salt: u64) -> Vec<u8> {
    (first..first + count as u64)
        .flat_map(|i| i.wrapping_add(salt).to_le_bytes())
        .collect()
}

/// Whether `bytes`, starting at byte `offset` of a region of `words(0, .., salt)`, hold
/// exactly those words; the offset of the first wrong word otherwise.
fn check_words(bytes: &[u8], offset: usize, salt: u64) -> Result<(), usize> {
    debug_assert!(offset.is_multiple_of(8) && bytes.len().is_multiple_of(8));
    for (i, word) in bytes.chunks_exact(8).enumerate() {
        let index = (offset / 8 + i) as u64;
        if u64::from_le_bytes(word.try_into().unwrap()) != index.wrapping_add(salt) {
            return Err(offset + i * 8);
        }
    }
    Ok(())
}

/// Check a window of `len` bytes from `at` (cut at the end) of a reader of word data.
fn check_window(reader: &Reader<'_>, at: u64, len: u64, salt: u64) {
    let at = at.min(reader.len()) / 8 * 8;
    let bytes = reader.read(at, len / 8 * 8);
    if let Err(bad) = check_words(bytes, at as usize, salt) {
        panic!(
            "a reader of {} bytes shows a wrong word at {bad}",
            reader.len()
        );
    }
}

/// The whole of a reader of word data.
fn check_all(reader: &Reader<'_>, salt: u64) {
    check_window(reader, 0, reader.len(), salt);
}

/// Several readers live while a writer appends to their region in large pieces, through
/// growth and moves (and now and then an overwrite inside the readers' views, which moves
/// it too), with flushes and hole punching in between. Each reader keeps its length and
/// bytes; each new reader shows every byte appended before it.
#[test]
fn readers_keep_their_snapshots_while_a_writer_appends_a_gibibyte() {
    let total = if support::scale() > 1 {
        1024 * MIB
    } else {
        256 * MIB
    };
    let chunk = 4 * MIB;
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let (a, _) = db.create_region_if_needed("a").unwrap();
    // A neighbour that grows too, so that `a` cannot always grow where it is.
    let (b, _) = db.create_region_if_needed("b").unwrap();
    let appended = AtomicU64::new(0);
    let done = AtomicBool::new(false);
    let moves = AtomicU64::new(0);
    let most_retired = AtomicU64::new(0);
    let rounds = thread::scope(|scope| {
        scope.spawn(|| {
            let mut start = db.get_region(a.into()).unwrap().start();
            let mut next = 0u64;
            while (next as usize) * 8 < total {
                let data = words(next, chunk / 8, 0);
                db.write_all_to_region(a.into(), &data).unwrap();
                next += (chunk / 8) as u64;
                appended.store(next * 8, Ordering::Release);
                let now = db.get_region(a.into()).unwrap().start();
                if now != start {
                    moves.fetch_add(1, Ordering::Relaxed);
                    start = now;
                    // `b` outgrows its reservation and moves past `a`: `a` no longer
                    // ends the file, so its next growth moves it again.
                    let room = db.get_region(b.into()).unwrap();
                    let over = (room.reserved() - room.len() + 1) as usize;
                    db.write_all_to_region(b.into(), &vec![7; over]).unwrap();
                }
                let chunks = next / (chunk / 8) as u64;
                if (chunks + 1).is_power_of_two() {
                    // Rewrite a word with its own value: a reader's snapshot views it, so
                    // the region is copied elsewhere first.
                    let word = chunks * 8;
                    db.write_all_to_region_at(a.into(), &words(word, 1, 0), word * 8)
                        .unwrap();
                }
                match chunks % 8 {
                    3 => db.flush().unwrap(),
                    7 => db.flush_then_punch().unwrap(),
                    _ => {}
                }
                let retired = db.stats().unwrap().retired_bytes;
                most_retired.fetch_max(retired, Ordering::Relaxed);
            }
            done.store(true, Ordering::Release);
        });
        let readers: Vec<_> = (0..3u64)
            .map(|seed| {
                let (db, appended, done) = (&db, &appended, &done);
                scope.spawn(move || {
                    let mut rng = Rng(seed);
                    // Readers held for a while, each with its length when made.
                    let mut held: Vec<(Reader<'_>, u64)> = Vec::new();
                    let mut rounds = 0u64;
                    loop {
                        let finished = done.load(Ordering::Acquire);
                        let before = appended.load(Ordering::Acquire);
                        let reader = db.create_region_reader(a.into()).unwrap();
                        let len = reader.len();
                        assert!(len >= before, "a reader misses appends: {len} < {before}");
                        assert!(len.is_multiple_of(chunk as u64), "a torn append: {len}");
                        check_window(&reader, len.saturating_sub(64 << 10), 64 << 10, 0);
                        check_window(&reader, rng.below(len + 1), 64 << 10, 0);
                        for (old, old_len) in &held {
                            assert_eq!(old.len(), *old_len, "a held reader changed length");
                            check_window(old, rng.below(old_len + 1), 16 << 10, 0);
                            check_window(old, old_len.saturating_sub(4096), 4096, 0);
                        }
                        if held.len() < 2 || rounds.is_multiple_of(6) {
                            if held.len() == 2 {
                                // Every byte of the oldest, then let it go.
                                let (oldest, _) = held.remove(0);
                                check_all(&oldest, 0);
                            }
                            held.push((reader, len));
                        }
                        rounds += 1;
                        if finished {
                            break;
                        }
                        thread::sleep(Duration::from_millis(rng.below(5)));
                    }
                    for (reader, len) in &held {
                        assert_eq!(reader.len(), *len);
                        check_all(reader, 0);
                    }
                    rounds
                })
            })
            .collect();
        readers
            .into_iter()
            .map(|reader| reader.join().unwrap())
            .collect::<Vec<u64>>()
    });
    let region = db.get_region(a.into()).unwrap();
    assert_eq!(region.len(), total as u64);
    let moves = moves.load(Ordering::Relaxed);
    assert!(moves >= 6, "the region moved {moves} times");
    assert!(
        most_retired.load(Ordering::Relaxed) > 0,
        "no extent was ever kept for a reader"
    );
    check_all(&db.create_region_reader(a.into()).unwrap(), 0);
    // Every reader is gone: the next flush reclaims what they kept.
    db.flush_then_punch().unwrap();
    let stats = db.stats().unwrap();
    assert_eq!(stats.retired_bytes, 0);
    println!(
        "{} MiB appended, {moves} moves, at most {} MiB retired at once; readers made \
         per thread: {rounds:?}",
        total / MIB,
        most_retired.load(Ordering::Relaxed) / MIB as u64
    );
}

/// A region of `len` bytes of words with `salt`.
fn filled(db: &Database, name: &str, len: usize, salt: u64) -> usize {
    let (number, _) = db.create_region_if_needed(name).unwrap();
    db.write_all_to_region(number.into(), &words(0, len / 8, salt))
        .unwrap();
    number
}

/// Readers held across `compact()` and `flush_then_punch()` keep their bytes; the space
/// their regions moved away from is retired meanwhile and reclaimed (punched, and the
/// file shrunk by the next compaction) once they are dropped.
#[test]
fn readers_held_across_compaction_and_punching() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let numbers: Vec<usize> = (0..4u64)
        .map(|i| filled(&db, &format!("r{i}"), 2 * MIB, i))
        .collect();
    db.remove_region(numbers[1].into()).unwrap();
    db.flush_then_punch().unwrap();
    let readers: Vec<(Reader<'_>, u64)> = [0, 2, 3]
        .iter()
        .map(|&i| {
            (
                db.create_region_reader(numbers[i].into()).unwrap(),
                i as u64,
            )
        })
        .collect();
    let starts: Vec<u64> = [2, 3]
        .iter()
        .map(|&i| db.get_region(numbers[i].into()).unwrap().start())
        .collect();

    db.compact().unwrap();
    for (reader, salt) in &readers {
        check_all(reader, *salt);
    }
    let moved: Vec<u64> = [2, 3]
        .iter()
        .map(|&i| db.get_region(numbers[i].into()).unwrap().start())
        .collect();
    assert_ne!(moved, starts, "compaction moved regions with readers");
    let stats = db.stats().unwrap();
    assert!(
        stats.retired_bytes >= 2 * MIB as u64,
        "the extents left for the readers count: {stats:?}"
    );

    db.flush_then_punch().unwrap();
    for (reader, salt) in &readers {
        check_all(reader, *salt);
    }
    let kept = db.stats().unwrap();
    assert_eq!(kept.retired_bytes, stats.retired_bytes, "still viewed");

    drop(readers);
    assert_eq!(
        db.stats().unwrap().retired_bytes,
        kept.retired_bytes,
        "reclaimed by the next flush or punch, not by the drop"
    );
    db.punch_holes().unwrap();
    let punched = db.stats().unwrap();
    assert_eq!(punched.retired_bytes, 0);
    assert!(
        punched.allocated_bytes + (2 * MIB as u64) <= kept.allocated_bytes,
        "the space is given back: {} then {}",
        kept.allocated_bytes,
        punched.allocated_bytes
    );
    db.compact().unwrap();
    let compacted = db.stats().unwrap();
    // The regions, packed after the data file's header.
    assert_eq!(
        compacted.file_len,
        seqdb::DATA_HEADER_LEN + 3 * 2 * MIB as u64,
        "{compacted:?}"
    );
    for &i in &[0, 2, 3] {
        check_all(
            &db.create_region_reader(numbers[i].into()).unwrap(),
            i as u64,
        );
    }
}

/// A thread may write to a region while it holds a reader of it: small appends (the
/// region lends the thread a buffer), large ones that move it, an overwrite and a
/// truncation inside the reader's view, a flush and a compaction. Nothing waits for the
/// reader, and it keeps its bytes.
#[test]
fn a_thread_writes_to_a_region_while_holding_its_reader() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let number = filled(&db, "a", 64 << 10, 0);
    filled(&db, "neighbour", 4096, 9);
    let (finished, outcome) = mpsc::channel();
    // Not a scoped thread: if it deadlocked, the test must still fail rather than wait.
    let writer = {
        let db = db.clone();
        thread::spawn(move || {
            let reader = db.create_region_reader(number.into()).unwrap();
            let start = db.get_region(number.into()).unwrap().start();
            for i in 0..2000u64 {
                db.write_all_to_region(number.into(), &i.to_le_bytes())
                    .unwrap();
            }
            for _ in 0..4 {
                db.write_all_to_region(number.into(), &vec![1; 2 * MIB])
                    .unwrap();
            }
            let moved = db.get_region(number.into()).unwrap().start() != start;
            db.write_all_to_region_at(number.into(), b"over", 8)
                .unwrap();
            db.truncate_region(number.into(), 1000).unwrap();
            db.flush().unwrap();
            db.compact().unwrap();
            assert_eq!(reader.len(), 64 << 10);
            check_all(&reader, 0);
            let now = db.create_region_reader(number.into()).unwrap();
            assert_eq!(now.len(), 1000);
            assert_eq!(&now.read_all()[8..12], b"over");
            check_window(&now, 16, 984, 0);
            finished.send(moved).unwrap();
        })
    };
    let moved = outcome
        .recv_timeout(Duration::from_secs(60))
        .expect("the writer holding a reader finished (no deadlock)");
    assert!(moved, "the appends moved the region");
    writer.join().unwrap();
}

/// Overwrites and truncations inside a live reader's view leave the reader unchanged:
/// the region is copied first. Writes past every reader's length, and writes once no
/// reader is left, happen in place.
#[test]
fn overwrites_and_truncations_inside_a_view_copy_the_region() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let number = filled(&db, "a", 100 << 10, 0);
    let id = || Identifier::from(number);
    let start = || db.get_region(id()).unwrap().start();
    let first = db.create_region_reader(id()).unwrap();

    let before = start();
    db.write_all_to_region_at(id(), b"XXXXXXXX", 16).unwrap();
    check_all(&first, 0);
    assert_ne!(start(), before, "copied before the write");
    let second = db.create_region_reader(id()).unwrap();
    assert_eq!(&second.read_all()[16..24], b"XXXXXXXX");
    check_window(&second, 24, 100 << 10, 0);

    // Past every reader's bytes: in place.
    db.write_all_to_region(id(), b"tail").unwrap();
    let before = start();
    db.write_all_to_region_at(id(), b"T", (100 << 10) + 1)
        .unwrap();
    assert_eq!(start(), before, "written in place");
    assert_eq!(second.len(), 100 << 10);

    // Truncations below the readers' lengths, and appends after them.
    db.truncate_region(id(), 50 << 10).unwrap();
    let third = db.create_region_reader(id()).unwrap();
    db.write_all_to_region(id(), &[5; 5000]).unwrap();
    db.truncate_write_all_to_region(id(), 1000, b"cut here")
        .unwrap();
    check_all(&first, 0);
    assert_eq!(&second.read_all()[16..24], b"XXXXXXXX");
    assert_eq!(second.len(), 100 << 10);
    assert_eq!(third.len(), 50 << 10);
    check_window(&third, 24, 50 << 10, 0);
    let now = db.create_region_reader(id()).unwrap();
    assert_eq!(now.len(), 1008);
    assert_eq!(&now.read_all()[1000..], b"cut here");
    drop(now);

    let retired = db.stats().unwrap().retired_bytes;
    assert!(retired > 0, "the copies left extents for the readers");
    drop((first, second, third));
    db.flush().unwrap();
    assert_eq!(db.stats().unwrap().retired_bytes, 0);
    // No reader left: in place.
    let before = start();
    db.write_all_to_region_at(id(), b"in place", 0).unwrap();
    db.truncate_region(id(), 8).unwrap();
    assert_eq!(start(), before);
    assert_eq!(
        db.create_region_reader(id()).unwrap().read_all(),
        b"in place"
    );
}

/// A reader keeps its bytes and metadata through a rename and a removal; a region that
/// then takes the removed one's number is what a new reader by that number shows, on the
/// thread that remembered the old one too.
#[test]
fn readers_outlive_renames_removals_and_reused_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let number = filled(&db, "a", 64 << 10, 3);
    let reader = db.create_region_reader(number.into()).unwrap();
    db.rename_region(number.into(), "b").unwrap();
    assert_eq!(reader.region().name(), "a");
    let renamed = db.create_region_reader(number.into()).unwrap();
    assert_eq!(renamed.region().name(), "b");
    drop(renamed);
    db.remove_region(number.into()).unwrap();
    check_all(&reader, 3);
    assert!(db.stats().unwrap().retired_bytes >= 64 << 10);
    let (again, _) = db.create_region_if_needed("c").unwrap();
    assert_eq!(again, number, "the number is reused");
    assert!(db.create_region_reader(number.into()).unwrap().is_empty());
    db.write_all_to_region(number.into(), b"new").unwrap();
    assert_eq!(
        db.create_region_reader(number.into()).unwrap().read_all(),
        b"new"
    );
    check_all(&reader, 3);
    assert_eq!(reader.region().number(), number);
    drop(reader);
    db.flush().unwrap();
    assert_eq!(db.stats().unwrap().retired_bytes, 0);
}

/// A reader made after an append, on whatever thread, shows it: a thread that keeps a
/// snapshot in mind never serves it after the region changed. Appends of every kind
/// (small ones into the tail, a run that the region lends a buffer for, large ones, an
/// overwrite) alternate with readers on another thread.
#[test]
fn a_reader_shows_every_change_made_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let (number, _) = db.create_region_if_needed("a").unwrap();
    let (to_reader, reader_turn) = mpsc::channel::<Vec<u8>>();
    let (to_writer, writer_turn) = mpsc::channel::<()>();
    thread::scope(|scope| {
        scope.spawn(|| {
            for expected in reader_turn {
                // Twice: the second comes from this thread's memory of the snapshot.
                for _ in 0..2 {
                    let reader = db.create_region_reader(number.into()).unwrap();
                    assert!(
                        reader.read_all() == expected.as_slice(),
                        "a reader of {} bytes, {} expected",
                        reader.len(),
                        expected.len()
                    );
                }
                to_writer.send(()).unwrap();
            }
        });
        let mut model = Vec::new();
        let mut rng = Rng(7);
        for round in 0..300u64 {
            match round % 5 {
                0 => {
                    let len = rng.below(100) as usize;
                    let data = rng.bytes(len);
                    db.write_all_to_region(number.into(), &data).unwrap();
                    model.extend_from_slice(&data);
                }
                1 => {
                    for _ in 0..40 {
                        let len = rng.below(16) as usize;
                        let data = rng.bytes(len);
                        db.write_all_to_region(number.into(), &data).unwrap();
                        model.extend_from_slice(&data);
                    }
                }
                2 => {
                    let len = 20_000 + rng.below(20_000) as usize;
                    let data = rng.bytes(len);
                    db.write_all_to_region(number.into(), &data).unwrap();
                    model.extend_from_slice(&data);
                }
                3 if !model.is_empty() => {
                    let at = rng.below(model.len() as u64) as usize;
                    let len = rng.below(64) as usize;
                    let data = rng.bytes(len);
                    db.write_all_to_region_at(number.into(), &data, at as u64)
                        .unwrap();
                    let end = at + data.len();
                    if end > model.len() {
                        model.resize(end, 0);
                    }
                    model[at..end].copy_from_slice(&data);
                }
                _ => {
                    // A reader on this thread too.
                    let reader = db.create_region_reader(number.into()).unwrap();
                    assert!(reader.read_all() == model.as_slice());
                }
            }
            to_reader.send(model.clone()).unwrap();
            writer_turn.recv().unwrap();
        }
        drop(to_reader);
    });
}

/// An extent kept for a reader in the middle of the file stops compaction short of
/// packing the regions behind it: it returns after a round that moves nothing, and a
/// compaction after the reader is gone packs everything.
#[test]
fn compaction_stops_at_a_kept_extent_and_finishes_once_it_is_free() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let numbers: Vec<usize> = (0..4u64)
        .map(|i| filled(&db, &format!("r{i}"), MIB, i))
        .collect();
    db.remove_region(numbers[0].into()).unwrap();
    db.flush().unwrap();
    let reader = db.create_region_reader(numbers[1].into()).unwrap();
    let before = db.stats().unwrap().generation;
    db.compact().unwrap();
    let rounds = db.stats().unwrap().generation - before;
    assert!(
        rounds <= 6,
        "{rounds} commits for a compaction that cannot finish"
    );
    assert!(db.stats().unwrap().retired_bytes >= MIB as u64);
    check_all(&reader, 1);
    drop(reader);
    db.compact().unwrap();
    let stats = db.stats().unwrap();
    assert_eq!(stats.retired_bytes, 0);
    assert_eq!(
        stats.file_len,
        seqdb::DATA_HEADER_LEN + 3 * MIB as u64,
        "{stats:?}"
    );
    for (i, &number) in numbers.iter().enumerate().skip(1) {
        check_all(&db.create_region_reader(number.into()).unwrap(), i as u64);
    }
}
