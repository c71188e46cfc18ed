//! Writers on their own regions and readers on others, all at once; contents exact at
//! the end.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use seqdb::Database;

fn chunk(writer: usize, i: usize) -> Vec<u8> {
    let len = 1 + (i * 31 + writer * 7) % 700;
    (0..len).map(|k| (k + i + writer) as u8).collect()
}

#[test]
fn four_writers_and_two_readers() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    // Regions the readers read: fixed content.
    let mut fixed = Vec::new();
    for r in 0..2 {
        let (id, _) = db.create_region_if_needed(&format!("fixed{r}")).unwrap();
        let data: Vec<u8> = (0..50_000).map(|k| (k * (r + 3)) as u8).collect();
        db.write_all_to_region(id.into(), &data).unwrap();
        fixed.push((id, data));
    }
    let fixed = Arc::new(fixed);
    let stop = Arc::new(AtomicBool::new(false));
    const APPENDS: usize = 3000;

    let writers: Vec<_> = (0..4)
        .map(|w| {
            let db = db.clone();
            thread::spawn(move || {
                let (id, _) = db.create_region_if_needed(&format!("w{w}")).unwrap();
                for i in 0..APPENDS {
                    db.write_all_to_region(id.into(), &chunk(w, i)).unwrap();
                    if i % 500 == 0 {
                        db.flush().unwrap();
                    }
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..2)
        .map(|r| {
            let db = db.clone();
            let fixed = Arc::clone(&fixed);
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let mut reads = 0u64;
                while !stop.load(Ordering::Relaxed) || reads < 100 {
                    let (id, data) = &fixed[r];
                    let reader = db.create_region_reader((*id).into()).unwrap();
                    assert_eq!(reader.read_all(), data.as_slice());
                    assert_eq!(reader.read(100, 4), &data[100..104]);
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() >= 100);
    }
    let check = |db: &Database| {
        for w in 0..4 {
            let want: Vec<u8> = (0..APPENDS).flat_map(|i| chunk(w, i)).collect();
            let reader = db.create_region_reader(format!("w{w}").into()).unwrap();
            assert_eq!(reader.read_all(), want.as_slice(), "writer {w}");
        }
        for (id, data) in fixed.iter() {
            assert_eq!(
                db.create_region_reader((*id).into()).unwrap().read_all(),
                data.as_slice()
            );
        }
    };
    check(&db);
    db.flush().unwrap();
    drop(db);
    check(&Database::open(dir.path()).unwrap());
}

#[test]
fn readers_of_one_region_do_not_block_each_other_or_other_writers() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let (a, _) = db.create_region_if_needed("a").unwrap();
    let (b, _) = db.create_region_if_needed("b").unwrap();
    db.write_all_to_region(a.into(), b"stable").unwrap();
    let first = db.create_region_reader(a.into()).unwrap();
    // A second reader of the same region on another thread, and a writer of another
    // region that grows and moves, all while `first` is alive.
    thread::scope(|s| {
        s.spawn(|| {
            let second = db.create_region_reader(a.into()).unwrap();
            assert_eq!(second.read_all(), b"stable");
        });
        s.spawn(|| {
            for _ in 0..100 {
                db.write_all_to_region(b.into(), &[9u8; 10_000]).unwrap();
            }
            db.create_region_if_needed("c").unwrap();
            db.flush().unwrap();
        });
    });
    assert_eq!(first.read_all(), b"stable");
    drop(first);
    assert_eq!(db.get_region(b.into()).unwrap().len(), 1_000_000);
}

#[test]
fn compaction_never_waits_for_readers() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let (r0, _) = db.create_region_if_needed("r0").unwrap();
    let (r1, _) = db.create_region_if_needed("r1").unwrap();
    db.write_all_to_region(r0.into(), b"zero").unwrap();
    db.write_all_to_region(r1.into(), b"one").unwrap();
    db.flush().unwrap();
    // This thread holds a reader of r1 while another compacts; then this thread reads
    // r0 and appends to it. Compaction must neither hold r0 while waiting for r1 nor
    // hang: it finishes once the reader is gone.
    let reader = db.create_region_reader(r1.into()).unwrap();
    thread::scope(|s| {
        let compacting = s.spawn(|| db.compact());
        thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(
            db.create_region_reader(r0.into()).unwrap().read_all(),
            b"zero"
        );
        db.write_all_to_region(r0.into(), b"!").unwrap();
        drop(reader);
        compacting.join().unwrap().unwrap();
    });
    // The calling thread may hold a reader while it compacts: readers hold no lock, and
    // the reader keeps its bytes.
    let reader = db.create_region_reader(r1.into()).unwrap();
    db.compact().unwrap();
    assert_eq!(reader.read_all(), b"one");
    drop(reader);
    db.compact().unwrap();
    assert_eq!(
        db.create_region_reader(r0.into()).unwrap().read_all(),
        b"zero!"
    );
    assert_eq!(
        db.create_region_reader(r1.into()).unwrap().read_all(),
        b"one"
    );
}
