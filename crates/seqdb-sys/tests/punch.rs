//! Hole punching and allocation on the file system of the temp dir.

use std::path::Path;

use seqdb_sys::{DataFile, Error, FileOptions, LockedFile, PunchOutcome};

const MIB: u64 = 1 << 20;

fn open(path: &Path) -> LockedFile {
    LockedFile::open(path, &FileOptions::read_write()).expect("open")
}

#[test]
fn punching_gives_space_back_and_reads_zeros() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = DataFile::new(open(&dir.path().join("data"))).expect("data file");
    let pattern: Vec<u8> = (0..4 * MIB).map(|i| (i % 251) as u8 + 1).collect();
    data.write_all_at(&pattern, 0).expect("write");
    data.sync_data().expect("sync");
    let before = data.allocated_bytes().expect("allocated");

    // Unaligned on purpose: the partial blocks at both ends must read as zeros
    // too, and the bytes around the range must stay.
    let (start, len) = (MIB + 123, 2 * MIB);
    let outcome = data.punch_hole(start, len).expect("punch");
    data.sync_data().expect("sync");
    let after = data.allocated_bytes().expect("allocated");
    match outcome {
        PunchOutcome::Punched => assert!(
            after + MIB <= before,
            "allocated {before} -> {after} bytes after punching {len}"
        ),
        PunchOutcome::ZeroFilled => println!("file system zero-fills: {after} bytes allocated"),
    }
    assert_eq!(data.len(), 4 * MIB, "length unchanged");

    let mut expected = pattern.clone();
    expected[start as usize..(start + len) as usize].fill(0);
    let mut read = vec![0xAA; (4 * MIB) as usize];
    data.file().read_exact_at(&mut read, 0).expect("read");
    assert!(read == expected, "pread sees the hole");
    let view = data.view(0, 4 * MIB).expect("view");
    assert!(view.bytes() == &expected[..], "the mapping sees the hole");
}

#[test]
fn punch_is_clamped_to_the_file_and_never_changes_its_length() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = open(&dir.path().join("f"));
    file.write_all_at(&[5; 10_000], 0).expect("write");
    file.punch_hole(8_000, 1 << 40).expect("punch past the end");
    assert_eq!(file.len().expect("len"), 10_000);
    file.punch_hole(50_000, 10).expect("entirely past the end");
    file.punch_hole(0, 0).expect("empty");
    let bytes = file.read_to_vec().expect("read");
    assert_eq!(bytes.len(), 10_000);
    assert!(bytes[..8_000].iter().all(|&b| b == 5));
    assert!(bytes[8_000..].iter().all(|&b| b == 0));
}

#[test]
fn punch_over_a_view_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = DataFile::new(open(&dir.path().join("data"))).expect("data file");
    data.write_all_at(&[9; 8192], 0).expect("write");
    let view = data.view(4000, 100).expect("view");
    let error = data.punch_hole(0, 4096).expect_err("pinned");
    assert!(
        matches!(
            error,
            Error::RangeBusy {
                offset: 0,
                len: 4096,
                ..
            }
        ),
        "{error}"
    );
    assert!(view.iter().all(|&b| b == 9));
    data.punch_hole(4100, 4092).expect("beside the view");
    drop(view);
    data.punch_hole(0, 4100).expect("after the view is gone");
    assert!(data.view(0, 8192).expect("view").iter().all(|&b| b == 0));
}

#[test]
fn allocate_reserves_blocks_extends_and_never_shrinks() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = DataFile::new(open(&dir.path().join("data"))).expect("data file");
    data.write_all_at(b"keep me", 0).expect("write");
    data.allocate(0, 4 * MIB).expect("allocate");
    assert_eq!(data.len(), 4 * MIB, "tracked length follows");
    assert_eq!(data.file().len().expect("len"), 4 * MIB);
    assert!(data.allocated_bytes().expect("allocated") >= 4 * MIB);
    data.allocate(MIB, 10).expect("inside: no change");
    assert_eq!(data.file().len().expect("len"), 4 * MIB, "never shrinks");
    let view = data.view(0, 4 * MIB).expect("view");
    assert_eq!(&view[..7], b"keep me");
    assert!(view[7..].iter().all(|&b| b == 0));
    assert!(matches!(
        data.allocate(u64::MAX, 2),
        Err(Error::RangeOverflow { .. })
    ));
}
