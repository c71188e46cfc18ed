//! A small commit costs one device sync: its record carries the bytes it wrote, and an
//! open writes them again where the data file lost them. These tests count the syncs a
//! flush makes (through the sync observer) and take the data file's pages away after a
//! commit, as a power cut can when only the log was synced.

mod support;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use seqdb::{Database, Error, OpenOptions, SyncEvent, SyncKind, SyncObserver};

/// The syncs a handle made, by file name and kind.
#[derive(Clone, Default)]
struct Syncs(Arc<Mutex<Vec<(String, SyncKind)>>>);

impl Syncs {
    fn observer(&self) -> SyncObserver {
        let syncs = self.0.clone();
        Arc::new(move |event: SyncEvent<'_>| {
            let name = event
                .path
                .file_name()
                .map_or(String::new(), |n| n.to_string_lossy().into_owned());
            syncs.lock().unwrap().push((name, event.kind));
        })
    }

    fn take(&self) -> Vec<(String, SyncKind)> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

fn open(path: &Path) -> (Database, Syncs) {
    let syncs = Syncs::default();
    let db = OpenOptions::new()
        .sync_observer(syncs.observer())
        .open(path)
        .unwrap();
    (db, syncs)
}

fn meta_sync() -> (String, SyncKind) {
    ("meta".to_owned(), SyncKind::Data)
}

#[test]
fn a_small_flush_syncs_only_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let (db, syncs) = open(dir.path());
    db.create_region_if_needed("ticks").unwrap();
    db.write_all_to_region("ticks".into(), b"first").unwrap();
    db.flush().unwrap();
    syncs.take();
    // Enough flushes to use up the zeros laid down ahead of the log more than once.
    for i in 0..100u64 {
        db.write_all_to_region("ticks".into(), &i.to_le_bytes())
            .unwrap();
        db.flush().unwrap();
        assert_eq!(syncs.take(), [meta_sync()], "flush {i}");
    }
    // Nothing changed: nothing synced.
    db.flush().unwrap();
    assert_eq!(syncs.take(), []);
    // Closing makes the data file hold what the records carried.
    db.close().unwrap();
    assert_eq!(syncs.take(), [("data".to_owned(), SyncKind::Data)]);
}

#[test]
fn a_small_flush_among_many_regions_syncs_only_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let (db, syncs) = open(dir.path());
    for i in 0..10_000u64 {
        let name = format!("r{i}");
        db.create_region_if_needed(&name).unwrap();
        db.write_all_to_region(name.as_str().into(), &i.to_le_bytes())
            .unwrap();
    }
    db.flush().unwrap();
    syncs.take();
    for round in 0..5u64 {
        db.write_all_to_region("r1234".into(), &round.to_le_bytes())
            .unwrap();
        db.flush().unwrap();
        assert_eq!(syncs.take(), [meta_sync()], "round {round}");
    }
}

#[test]
fn a_large_flush_syncs_the_data_then_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let (db, syncs) = open(dir.path());
    db.create_region_if_needed("bulk").unwrap();
    db.write_all_to_region("bulk".into(), b"x").unwrap();
    db.flush().unwrap();
    syncs.take();
    db.write_all_to_region("bulk".into(), &vec![7u8; 4 << 20])
        .unwrap();
    db.flush().unwrap();
    assert_eq!(
        syncs.take(),
        [("data".to_owned(), SyncKind::Data), meta_sync()]
    );
}

/// The offset in the data file of `region`'s byte `at`.
fn file_offset(db: &Database, region: &str, at: u64) -> u64 {
    db.get_region(region.into()).unwrap().start() + at
}

fn overwrite(path: &PathBuf, at: u64, bytes: &[u8]) {
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, bytes, at).unwrap();
}

/// The files as they are now, in a directory of their own: what a crash of the process
/// leaves (the handle, still open, is never closed).
fn crashed(dir: &Path) -> tempfile::TempDir {
    let image = tempfile::tempdir().unwrap();
    support::copy_dir(dir, image.path());
    image
}

fn read_all(db: &Database, region: &str) -> Vec<u8> {
    db.create_region_reader(region.into())
        .unwrap()
        .read_all()
        .to_vec()
}

/// The commit's record reached the device but the data file's pages did not (or were
/// torn): the read-write open writes them again from the record, and until then a
/// read-only open and the check refuse to serve the file.
#[test]
fn bytes_lost_from_the_data_file_are_redone_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    db.create_region_if_needed("a").unwrap();
    db.write_all_to_region("a".into(), &[1u8; 10_000]).unwrap();
    db.flush().unwrap();
    db.write_all_to_region("a".into(), &[2u8; 3000]).unwrap();
    db.write_all_to_region_at("a".into(), &[3u8; 100], 50)
        .unwrap();
    db.flush().unwrap();
    let mut want = vec![1u8; 10_000];
    want[50..150].fill(3);
    want.extend([2u8; 3000]);
    let (from, to) = (file_offset(&db, "a", 50), file_offset(&db, "a", 13_000));
    let image = crashed(dir.path());
    drop(db);
    let dir = image;
    let data = dir.path().join("data");
    // The power cut takes the pages the last commit wrote.
    overwrite(&data, from, &vec![0u8; (to - from) as usize]);
    let refused = Database::open_read_only(dir.path()).unwrap_err();
    assert!(
        matches!(refused, Error::NeedsRecovery { offset, .. } if offset == from),
        "{refused}"
    );
    let report = seqdb::check(dir.path()).unwrap();
    assert!(!report.is_healthy(), "{report}");
    assert!(
        report.problems[0].contains(&format!("data offset {from}")),
        "{report}"
    );
    let db = Database::open(dir.path()).unwrap();
    assert_eq!(read_all(&db, "a"), want);
    drop(db);
    assert!(seqdb::check(dir.path()).unwrap().is_healthy());
    let db = Database::open_read_only(dir.path()).unwrap();
    assert_eq!(read_all(&db, "a"), want);
}

/// The data file lost its length too (a region grew at its end, and the length change
/// never reached the device): the open writes the bytes past the end again.
#[test]
fn a_data_file_cut_short_after_small_commits_is_redone() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    db.create_region_if_needed("a").unwrap();
    db.write_all_to_region("a".into(), b"start").unwrap();
    db.flush().unwrap();
    let synced_len = std::fs::metadata(dir.path().join("data")).unwrap().len();
    let mut want = b"start".to_vec();
    for i in 0..50u64 {
        let bytes = vec![i as u8; 1000];
        db.write_all_to_region("a".into(), &bytes).unwrap();
        want.extend(bytes);
        db.flush().unwrap();
    }
    let end = file_offset(&db, "a", want.len() as u64);
    let image = crashed(dir.path());
    drop(db);
    let dir = image;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.path().join("data"))
        .unwrap();
    file.set_len(synced_len.min(end - 20_000)).unwrap();
    drop(file);
    assert!(matches!(
        Database::open_read_only(dir.path()),
        Err(Error::NeedsRecovery { .. })
    ));
    let db = Database::open(dir.path()).unwrap();
    assert_eq!(read_all(&db, "a"), want);
}

/// Bytes a commit carried for space that no region holds any longer are not written
/// again: a hole punched there stays a hole.
#[test]
fn redoing_never_writes_where_no_region_is() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    db.create_region_if_needed("keep").unwrap();
    db.write_all_to_region("keep".into(), b"k").unwrap();
    db.create_region_if_needed("gone").unwrap();
    db.write_all_to_region("gone".into(), b"g").unwrap();
    db.flush().unwrap();
    db.write_all_to_region("gone".into(), &[9u8; 50_000])
        .unwrap();
    db.flush().unwrap();
    let gone = file_offset(&db, "gone", 0);
    db.remove_region("gone".into()).unwrap();
    db.flush().unwrap();
    let image = crashed(dir.path());
    drop(db);
    let dir = image;
    overwrite(&dir.path().join("data"), gone, &[0u8; 50_000]);
    let db = Database::open(dir.path()).unwrap();
    assert_eq!(read_all(&db, "keep"), b"k");
    drop(db);
    let data = std::fs::read(dir.path().join("data")).unwrap();
    assert!(
        data[gone as usize..gone as usize + 50_000]
            .iter()
            .all(|&b| b == 0),
        "a removed region's bytes were written again"
    );
}

/// A read-only open while a read-write open is still writing again the bytes of the
/// last commits (after a power cut took them) must not serve what the data file holds
/// then: it refuses (or, where readers and a writer exclude each other, is refused).
#[test]
fn a_reader_beside_a_writer_still_redoing_never_serves_lost_bytes() {
    use std::sync::mpsc;
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    db.create_region_if_needed("a").unwrap();
    db.write_all_to_region("a".into(), &[1u8; 5000]).unwrap();
    db.flush().unwrap();
    db.write_all_to_region_at("a".into(), &[2u8; 100], 10)
        .unwrap();
    db.flush().unwrap();
    let at = file_offset(&db, "a", 10);
    let image = crashed(dir.path());
    drop(db);
    overwrite(&image.path().join("data"), at, &[1u8; 100]);
    // The writer's open pauses at its first write into the data file: the redo.
    let (reached_tx, reached_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (reached_tx, go_rx) = (Mutex::new(Some(reached_tx)), Mutex::new(go_rx));
    let injector: seqdb::FaultInjector = Arc::new(move |point: seqdb::FaultPoint<'_>| {
        if point.op == seqdb::FaultOp::Write
            && point.path.ends_with("data")
            && let Some(reached) = reached_tx.lock().unwrap().take()
        {
            let _ = reached.send(());
            let _ = go_rx.lock().unwrap().recv();
        }
        Ok(())
    });
    let path = image.path().to_owned();
    let writer = std::thread::spawn(move || {
        OpenOptions::new()
            .fault_injector(injector)
            .open(&path)
            .map(drop)
    });
    reached_rx.recv().unwrap();
    match Database::open_read_only(image.path()) {
        Ok(reader) => assert_eq!(&read_all(&reader, "a")[10..110], &[2u8; 100]),
        Err(Error::NeedsRecovery { .. } | Error::AlreadyOpen { .. }) => {}
        Err(e) => panic!("{e}"),
    }
    go_tx.send(()).unwrap();
    writer.join().unwrap().unwrap();
    let reader = Database::open_read_only(image.path()).unwrap();
    assert_eq!(&read_all(&reader, "a")[10..110], &[2u8; 100]);
}

/// A crash of the writer's process alone, after it overwrote committed bytes in place
/// without flushing: the data file differs from what the last commit's record carried.
/// A read-only open and the check cannot tell this from bytes a power cut lost, so they
/// refuse until a read-write open has put the committed bytes back.
#[test]
fn a_process_crash_after_an_unflushed_overwrite_needs_a_read_write_open() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    db.create_region_if_needed("a").unwrap();
    db.write_all_to_region("a".into(), &[1u8; 5000]).unwrap();
    db.flush().unwrap();
    db.write_all_to_region_at("a".into(), &[2u8; 100], 10)
        .unwrap();
    db.flush().unwrap();
    db.write_all_to_region_at("a".into(), &[3u8; 100], 10)
        .unwrap();
    let image = crashed(dir.path());
    drop(db);
    assert!(!seqdb::check(image.path()).unwrap().is_healthy());
    assert!(matches!(
        Database::open_read_only(image.path()),
        Err(Error::NeedsRecovery { .. })
    ));
    drop(Database::open(image.path()).unwrap());
    let reader = Database::open_read_only(image.path()).unwrap();
    assert_eq!(&read_all(&reader, "a")[10..110], &[2u8; 100]);
}
