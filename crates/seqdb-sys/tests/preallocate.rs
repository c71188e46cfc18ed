//! Preallocation reserves blocks without changing the length or any byte.

use seqdb_sys::{DataFile, FileOptions, LockedFile};

#[test]
fn preallocation_keeps_length_and_bytes_and_allocates_where_offered() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file =
        LockedFile::open(&dir.path().join("data"), &FileOptions::read_write()).expect("open");
    let data = DataFile::new(file).expect("data file");
    data.write_all_at(b"head", 0).expect("write");
    let before = data.allocated_bytes().expect("allocated");
    let done = data.preallocate(4096, 4 << 20).expect("preallocate");
    assert_eq!(data.len(), 4, "the length does not change");
    assert_eq!(data.file().len().expect("len"), 4);
    assert_eq!(&*data.view(0, 4).expect("view"), b"head");
    let after = data.allocated_bytes().expect("allocated");
    if done {
        assert!(after >= before + (4 << 20), "{before} -> {after}");
    } else {
        eprintln!("note: this platform or file system offers no preallocation");
        assert_eq!(after, before);
    }
    // Writing into the preallocated range works as anywhere else.
    data.write_all_at(&[7u8; 8192], 4096).expect("write");
    assert_eq!(&*data.view(4096, 8192).expect("view"), &[7u8; 8192][..]);
    // A view pins its bytes against preallocation too.
    let view = data.view(0, 4).expect("view");
    assert!(data.preallocate(0, 4096).is_err());
    drop(view);
}
