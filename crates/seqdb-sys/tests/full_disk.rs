//! A full file system gives `Err`, never `SIGBUS`, and loses nothing written.

use seqdb_sys::test_support::TmpfsMount;
use seqdb_sys::{DataFile, FileOptions, LockedFile};

#[test]
fn writes_fail_cleanly_when_the_disk_is_full() {
    let mount = match TmpfsMount::new(16 << 20) {
        Ok(mount) => mount,
        Err(reason) => {
            println!("skipped: {reason}");
            return;
        }
    };
    let path = mount.path().join("data");
    let file = LockedFile::open(&path, &FileOptions::read_write()).expect("open");
    let data = DataFile::new(file).expect("data file");

    let chunk: Vec<u8> = (0..(256 << 10)).map(|i: u32| (i % 253) as u8).collect();
    let mut written = 0u64;
    let error = loop {
        match data.write_all_at(&chunk, written) {
            Ok(()) => written += chunk.len() as u64,
            Err(error) => break error,
        }
        assert!(written <= 32 << 20, "a 16 MiB file system never filled up");
    };
    println!("filled after {written} bytes: {error}");
    assert!(error.is_no_space(), "unexpected error: {error}");
    assert_eq!(error.path(), path);
    assert!(written > 0, "nothing fit");
    assert!(data.len() >= written);

    // Everything acknowledged before the failure is intact, read through a
    // view (the mapping) and through pread.
    let view = data.view(0, written).expect("view");
    for (index, block) in view.chunks(chunk.len()).enumerate() {
        assert!(block == &chunk[..], "block {index} changed");
    }
    let mut back = vec![0; chunk.len()];
    data.file()
        .read_exact_at(&mut back, written - chunk.len() as u64)
        .expect("read");
    assert_eq!(back, chunk);
    drop(view);

    // The file stays usable: overwrite in place, shrink, write again.
    data.write_all_at(b"still here", 0)
        .expect("overwrite allocated blocks");
    data.set_len(written / 2).expect("shrink");
    data.write_all_at(&chunk, written / 2)
        .expect("space is back");
    data.sync_data().expect("sync");
    assert_eq!(&data.view(0, 10).expect("view")[..], b"still here");
}
