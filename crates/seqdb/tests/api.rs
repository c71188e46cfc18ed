//! Every operation of the public API, each checked again after a reopen.

use std::collections::HashSet;
use std::path::Path;

use seqdb::{Database, Error, Identifier, PAGE_SIZE};

fn open(dir: &Path) -> Database {
    Database::open(dir).expect("open")
}

fn bytes(db: &Database, id: impl Into<Identifier>) -> Vec<u8> {
    db.create_region_reader(id.into())
        .expect("reader")
        .read_all()
        .to_vec()
}

/// Flush, drop, reopen.
fn reopen(db: Database) -> Database {
    db.flush().expect("flush");
    let path = db.path().to_owned();
    drop(db);
    open(&path)
}

#[test]
fn create_is_idempotent_and_numbers_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let (a, region) = db.create_region_if_needed("a").unwrap();
    let (b, _) = db.create_region_if_needed("b").unwrap();
    assert_ne!(a, b);
    assert_eq!(region.name(), "a");
    assert_eq!(region.len(), 0);
    assert_eq!(region.start() % PAGE_SIZE, 0);
    assert!(region.reserved() >= PAGE_SIZE);
    assert_eq!(db.create_region_if_needed("a").unwrap().0, a);
    let db = reopen(db);
    assert_eq!(db.create_region_if_needed("a").unwrap().0, a);
    assert_eq!(db.get_region(b.into()).unwrap().name(), "b");
    let names: Vec<_> = db.regions().iter().map(|r| r.name().to_owned()).collect();
    assert_eq!(names, ["a", "b"]);
}

#[test]
fn append_overwrite_truncate_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let (id, _) = db.create_region_if_needed("r").unwrap();
    db.write_all_to_region(id.into(), b"Hello, world!").unwrap();
    db.write_all_to_region_at(id.into(), b"Hi", 0).unwrap();
    assert_eq!(bytes(&db, id), b"Hillo, world!");
    db.write_all_to_region_at(id.into(), b"!!!", 12).unwrap();
    assert_eq!(bytes(&db, id), b"Hillo, world!!!");
    let db = reopen(db);
    assert_eq!(bytes(&db, id), b"Hillo, world!!!");
    db.truncate_region(id.into(), 5).unwrap();
    assert_eq!(bytes(&db, id), b"Hillo");
    let db = reopen(db);
    assert_eq!(bytes(&db, id), b"Hillo");
    db.truncate_write_all_to_region(id.into(), 1, b"ey")
        .unwrap();
    assert_eq!(bytes(&db, "r"), b"Hey");
    let db = reopen(db);
    assert_eq!(bytes(&db, "r"), b"Hey");
}

#[test]
fn growth_moves_regions_and_keeps_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let mut expected: Vec<Vec<u8>> = vec![Vec::new(); 5];
    for round in 0..200u32 {
        for (i, want) in expected.iter_mut().enumerate() {
            let chunk: Vec<u8> = (0..(round as usize * 37 % 3000))
                .map(|k| (k as u32 + round + i as u32) as u8)
                .collect();
            let (id, _) = db.create_region_if_needed(&format!("r{i}")).unwrap();
            db.write_all_to_region(id.into(), &chunk).unwrap();
            want.extend_from_slice(&chunk);
        }
    }
    for (i, want) in expected.iter().enumerate() {
        assert_eq!(&bytes(&db, format!("r{i}")), want);
    }
    let db = reopen(db);
    for (i, want) in expected.iter().enumerate() {
        assert_eq!(&bytes(&db, format!("r{i}")), want);
    }
}

#[test]
fn large_appends_and_many_small_ones() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let (id, _) = db.create_region_if_needed("big").unwrap();
    let mut want = Vec::new();
    for i in 0..100_000u64 {
        db.write_all_to_region(id.into(), &i.to_le_bytes()).unwrap();
        want.extend_from_slice(&i.to_le_bytes());
    }
    let big = vec![7u8; 3 << 20];
    db.write_all_to_region(id.into(), &big).unwrap();
    want.extend_from_slice(&big);
    assert_eq!(bytes(&db, id), want);
    let db = reopen(db);
    assert_eq!(bytes(&db, id), want);
}

#[test]
fn remove_retain_and_rename() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    for name in ["a", "b", "c", "d"] {
        let (id, _) = db.create_region_if_needed(name).unwrap();
        db.write_all_to_region(id.into(), name.as_bytes()).unwrap();
    }
    let removed = db.remove_region("a".into()).unwrap().unwrap();
    assert_eq!(removed.name(), "a");
    assert!(db.remove_region("a".into()).unwrap().is_none());
    db.retain_regions(HashSet::from(["b".to_owned(), "c".to_owned()]))
        .unwrap();
    db.rename_region("b".into(), "bee").unwrap();
    assert!(matches!(
        db.rename_region("bee".into(), "c"),
        Err(Error::RegionExists { .. })
    ));
    let db = reopen(db);
    let names: Vec<_> = db.regions().iter().map(|r| r.name().to_owned()).collect();
    assert_eq!(names, ["bee", "c"]);
    assert_eq!(bytes(&db, "bee"), b"b");
    assert_eq!(bytes(&db, "c"), b"c");
    assert!(matches!(
        db.get_region("a".into()),
        Err(Error::UnknownRegion { .. })
    ));
    // The lowest free number is given to the next new region.
    let (new, _) = db.create_region_if_needed("a").unwrap();
    assert_eq!(new, 0);
    let (next, _) = db.create_region_if_needed("z").unwrap();
    assert_eq!(next, 3);
    let db = reopen(db);
    assert_eq!(db.get_region(0usize.into()).unwrap().name(), "a");
    assert_eq!(db.get_region(3usize.into()).unwrap().name(), "z");
}

#[test]
fn bad_arguments_are_errors_naming_the_region() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let (id, _) = db.create_region_if_needed("r").unwrap();
    db.write_all_to_region(id.into(), b"abc").unwrap();
    let err = db.write_all_to_region_at(id.into(), b"x", 4).unwrap_err();
    assert!(
        matches!(
            err,
            Error::OffsetPastEnd {
                offset: 4,
                len: 3,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("\"r\"") || err.to_string().contains('r'));
    let err = db.truncate_region(id.into(), 9).unwrap_err();
    assert!(
        matches!(
            err,
            Error::TruncatePastEnd {
                requested: 9,
                len: 3,
                ..
            }
        ),
        "{err}"
    );
    let err = db.write_all_to_region("nope".into(), b"x").unwrap_err();
    assert!(matches!(err, Error::UnknownRegion { .. }));
    assert!(err.to_string().contains("nope"), "{err}");
    assert!(matches!(
        db.write_all_to_region(99usize.into(), b"x"),
        Err(Error::UnknownRegion { .. })
    ));
    let reader = db.create_region_reader(id.into()).unwrap();
    assert_eq!(reader.read(1, 100), b"bc");
    assert_eq!(reader.read(10, 1), b"");
    assert_eq!(reader.read(u64::MAX, u64::MAX), b"");
    assert!(matches!(
        reader.try_read(2, 2),
        Err(Error::ReadOutOfRange { .. })
    ));
    assert_eq!(reader.try_read(0, 3).unwrap(), b"abc");
    drop(reader);
    let long = "x".repeat(70_000);
    assert!(matches!(
        db.create_region_if_needed(&long),
        Err(Error::NameTooLong { .. })
    ));
}

#[test]
fn second_open_is_refused_until_the_first_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let err = Database::open(dir.path()).unwrap_err();
    assert!(matches!(err, Error::AlreadyOpen { .. }), "{err}");
    assert!(err.to_string().contains("already open"));
    // Read-only handles open beside the writer (where the platform has range locks),
    // and do not count as a second writer.
    if cfg!(target_os = "linux") {
        let reader = Database::open_read_only(dir.path()).unwrap();
        assert!(matches!(
            Database::open(dir.path()),
            Err(Error::AlreadyOpen { .. })
        ));
        drop(reader);
    }
    drop(db);
    open(dir.path());
}

#[test]
fn read_only_handles_read_and_refuse_changes() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let (id, _) = db.create_region_if_needed("r").unwrap();
    db.write_all_to_region(id.into(), b"data").unwrap();
    db.flush().unwrap();
    drop(db);
    let a = Database::open_read_only(dir.path()).unwrap();
    let b = Database::open_read_only(dir.path()).unwrap();
    assert_eq!(bytes(&a, "r"), b"data");
    assert_eq!(bytes(&b, id), b"data");
    assert!(matches!(
        a.write_all_to_region(id.into(), b"x"),
        Err(Error::ReadOnly { .. })
    ));
    assert!(matches!(
        a.create_region_if_needed("new"),
        Err(Error::ReadOnly { .. })
    ));
    // A writer opens beside them (where the platform has range locks); they keep the
    // commit they opened at.
    if cfg!(target_os = "linux") {
        let writer = Database::open(dir.path()).unwrap();
        writer.write_all_to_region(id.into(), b" more").unwrap();
        writer.flush().unwrap();
        assert_eq!(bytes(&a, "r"), b"data");
        assert!(matches!(
            Database::open(dir.path()),
            Err(Error::AlreadyOpen { .. })
        ));
    }
}

#[test]
fn a_path_that_is_a_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain");
    std::fs::write(&file, b"not a database").unwrap();
    let err = Database::open(&file).unwrap_err();
    assert!(matches!(err, Error::NotADirectory { .. }), "{err}");
    assert!(err.to_string().contains("plain"));
}

#[test]
fn foreign_and_future_metadata_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    let meta = dir.path().join("meta");
    let original = std::fs::read(&meta).unwrap();
    std::fs::write(&meta, b"SQLite format 3\0 and more bytes here").unwrap();
    assert!(matches!(
        Database::open(dir.path()),
        Err(Error::ForeignFile { .. })
    ));
    let mut newer = original.clone();
    newer[8] = 9; // version; the header's checksum (at 36) covers bytes 0..36
    let crc = crc32(&newer[..36]);
    newer[36..40].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&meta, &newer).unwrap();
    assert!(matches!(
        Database::open(dir.path()),
        Err(Error::UnsupportedVersion { found: 9, .. })
    ));
    std::fs::write(&meta, &original).unwrap();
    open(dir.path());
}

fn crc32(bytes: &[u8]) -> u32 {
    // Bitwise CRC-32 (IEEE), the checksum the header uses.
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn dropping_the_last_handle_keeps_what_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let (id, _) = db.create_region_if_needed("r").unwrap();
    db.write_all_to_region(id.into(), b"kept").unwrap();
    db.flush().unwrap();
    db.write_all_to_region(id.into(), b" too").unwrap();
    db.create_region_if_needed("also kept").unwrap();
    let clone = db.clone();
    drop(db);
    // A clone still holds the database open: nothing is closed yet.
    assert!(matches!(
        Database::open(dir.path()),
        Err(seqdb::Error::AlreadyOpen { .. })
    ));
    clone.write_all_to_region(id.into(), b"!").unwrap();
    drop(clone);
    let db = open(dir.path());
    assert_eq!(bytes(&db, "r"), b"kept too!");
    assert_eq!(db.regions().len(), 2);
}

#[test]
fn close_flushes_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let (id, _) = db.create_region_if_needed("r").unwrap();
    db.write_all_to_region(id.into(), b"closed").unwrap();
    db.close().unwrap();
    let db = open(dir.path());
    assert_eq!(bytes(&db, "r"), b"closed");
    drop(db);
    // A read-only handle has nothing to flush, and closing it writes nothing.
    let before = std::fs::read(dir.path().join("meta")).unwrap();
    Database::open_read_only(dir.path())
        .unwrap()
        .close()
        .unwrap();
    assert_eq!(std::fs::read(dir.path().join("meta")).unwrap(), before);
}

#[test]
fn punching_gives_space_back_and_keeps_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let chunk = vec![1u8; 1 << 20];
    for i in 0..8 {
        let (id, _) = db.create_region_if_needed(&format!("r{i}")).unwrap();
        db.write_all_to_region(id.into(), &chunk).unwrap();
    }
    db.flush().unwrap();
    let before = db.stats().unwrap();
    for i in 0..4 {
        db.remove_region(format!("r{i}").into()).unwrap();
    }
    db.flush_then_punch().unwrap();
    let after = db.stats().unwrap();
    assert_eq!(after.live_bytes, 4 << 20);
    if after.allocated_bytes >= before.allocated_bytes {
        eprintln!("note: this file system did not give space back on punch");
    } else {
        assert!(after.allocated_bytes < before.allocated_bytes);
    }
    let db = reopen(db);
    for i in 4..8 {
        assert_eq!(bytes(&db, format!("r{i}")), chunk);
    }
}

#[test]
fn compact_then_reopen_keeps_every_region_and_shrinks_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let mut want = Vec::new();
    for i in 0..30u32 {
        let (id, _) = db.create_region_if_needed(&format!("r{i}")).unwrap();
        let data: Vec<u8> = (0..(i * 997 % 20_000)).map(|k| (k ^ i) as u8).collect();
        db.write_all_to_region(id.into(), &data).unwrap();
        want.push((format!("r{i}"), data));
    }
    for i in (0..30).step_by(3) {
        db.remove_region(format!("r{i}").into()).unwrap();
    }
    want.retain(|(name, _)| name.trim_start_matches('r').parse::<u32>().unwrap() % 3 != 0);
    db.compact().unwrap();
    let stats = db.stats().unwrap();
    assert_eq!(stats.holes, 0);
    // The data file's header page, then the regions packed.
    let expected_len: u64 = PAGE_SIZE
        + want
            .iter()
            .map(|(_, d)| (d.len() as u64).div_ceil(PAGE_SIZE).max(1) * PAGE_SIZE)
            .sum::<u64>();
    assert_eq!(db.file_len().unwrap(), expected_len);
    let db = reopen(db);
    assert_eq!(db.file_len().unwrap(), expected_len);
    for (name, data) in &want {
        assert_eq!(&bytes(&db, name.as_str()), data, "{name}");
    }
}

#[test]
fn stats_describe_the_layout() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let (id, _) = db.create_region_if_needed("r").unwrap();
    db.write_all_to_region(id.into(), &[5u8; 10_000]).unwrap();
    db.flush().unwrap();
    let stats = db.stats().unwrap();
    assert_eq!(stats.regions, 1);
    assert_eq!(stats.live_bytes, 10_000);
    assert!(stats.reserved_bytes >= 10_000);
    assert!(stats.generation >= 1);
    assert!(stats.file_len >= 10_000);
    assert!(stats.space_amplification() >= 1.0);
}

#[test]
fn a_flush_writes_metadata_for_what_changed_only() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    for i in 0..20_000usize {
        let (id, _) = db.create_region_if_needed(&format!("r{i}")).unwrap();
        db.write_all_to_region(id.into(), &i.to_le_bytes()).unwrap();
    }
    db.flush().unwrap();
    let meta = dir.path().join("meta");
    // Where the log ends: after its last page that is not zeros (zeros are laid down
    // ahead of it).
    let log_end = || {
        let bytes = std::fs::read(&meta).unwrap();
        let mut pages = bytes.chunks(PAGE_SIZE as usize);
        let used = pages
            .rposition(|page| page.iter().any(|&b| b != 0))
            .unwrap()
            + 1;
        used as u64 * PAGE_SIZE
    };
    let before = log_end();
    assert!(before > 20_000 * 30, "all regions were committed");
    db.write_all_to_region(12_345usize.into(), b"one more")
        .unwrap();
    db.flush().unwrap();
    let after = log_end();
    assert_eq!(after - before, PAGE_SIZE, "one record of one page");
    let db = reopen(db);
    assert_eq!(&bytes(&db, 12_345usize)[8..], b"one more");
}

#[test]
fn appends_by_number_follow_removal_reuse_and_stay_in_their_database() {
    let (dir1, dir2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (db1, db2) = (open(dir1.path()), open(dir2.path()));
    assert_eq!(db1.create_region_if_needed("a").unwrap().0, 0);
    assert_eq!(db2.create_region_if_needed("a").unwrap().0, 0);
    for _ in 0..3 {
        db1.write_all_to_region(0usize.into(), b"1").unwrap();
        db2.write_all_to_region(0usize.into(), b"2").unwrap();
    }
    assert_eq!(bytes(&db1, "a"), b"111");
    assert_eq!(bytes(&db2, "a"), b"222");
    db1.remove_region(0usize.into()).unwrap();
    assert!(matches!(
        db1.write_all_to_region(0usize.into(), b"x"),
        Err(Error::UnknownRegion { .. })
    ));
    assert_eq!(db1.create_region_if_needed("b").unwrap().0, 0);
    db1.write_all_to_region(0usize.into(), b"x").unwrap();
    assert_eq!(bytes(&db1, "b"), b"x");
    let db1 = reopen(db1);
    db1.write_all_to_region(0usize.into(), b"y").unwrap();
    assert_eq!(bytes(&db1, "b"), b"xy");
    assert_eq!(bytes(&db2, "a"), b"222");
}

/// A failed system call reaches the caller as `Error::Sys` with this crate's `IoError`:
/// the file, the operation, the offset, the kind and the operating system's code, with
/// that `io::Error` as its source; a full disk is `is_no_space` at both levels.
#[test]
fn a_failed_system_call_is_an_io_error_naming_file_operation_and_kind() {
    fn bounds<T: std::error::Error + Clone + Send + Sync + 'static>() {}
    bounds::<seqdb::IoError>();
    bounds::<seqdb::LayoutError>();

    const NO_SPACE: i32 = 28; // ENOSPC
    let dir = tempfile::tempdir().unwrap();
    let injector: seqdb::FaultInjector = std::sync::Arc::new(|point| {
        if point.op == seqdb::FaultOp::SyncData && point.path.ends_with("data") {
            return Err(std::io::Error::from_raw_os_error(NO_SPACE));
        }
        Ok(())
    });
    let db = seqdb::OpenOptions::new()
        .fault_injector(injector)
        .open(dir.path())
        .unwrap();
    let (number, _) = db.create_region_if_needed("a").unwrap();
    db.write_all_to_region(number.into(), b"bytes").unwrap();
    let error = db.flush().expect_err("the data sync fails");
    assert!(error.is_no_space(), "{error}");
    let Error::Sys { source } = &error else {
        panic!("expected Error::Sys, got {error:?}");
    };
    assert_eq!(source.path(), dir.path().join("data"));
    assert_eq!(source.operation(), Some("fdatasync"));
    assert_eq!(source.offset(), Some(0));
    assert_eq!(source.kind(), std::io::ErrorKind::StorageFull);
    assert_eq!(source.raw_os_error(), Some(NO_SPACE));
    assert!(source.is_no_space());
    let os = std::error::Error::source(source).expect("the OS error is the source");
    assert_eq!(
        os.downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::raw_os_error),
        Some(NO_SPACE)
    );

    // The handle refuses changes now, naming the same failure.
    let refused = db.write_all_to_region(number.into(), b"more").unwrap_err();
    let Error::Poisoned { source: first, .. } = &refused else {
        panic!("expected Error::Poisoned, got {refused:?}");
    };
    assert_eq!(first.to_string(), source.to_string());
    assert!(refused.is_no_space());
}
