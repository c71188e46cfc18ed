//! Smoke tests of the whole API surface.

use std::path::Path;

use seqdb_sys::{DataFile, Error, FileOptions, LockedFile};

fn open(path: &Path) -> LockedFile {
    LockedFile::open(path, &FileOptions::read_write()).expect("open")
}

#[test]
fn write_view_and_grow() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = DataFile::new(open(&dir.path().join("data"))).expect("data file");
    assert_eq!(data.len(), 0);
    assert!(data.view(0, 0).expect("empty view").is_empty());
    data.write_all_at(b"hello", 0).expect("write");
    assert_eq!(data.len(), 5);
    let view = data.view(1, 3).expect("view");
    assert_eq!(&*view, b"ell");
    assert!(matches!(
        data.write_all_at(b"X", 2),
        Err(Error::RangeBusy { .. })
    ));
    data.write_all_at(b"!", 5).expect("append beside the view");
    assert!(matches!(data.view(0, 7), Err(Error::OutOfBounds { .. })));
    drop(view);
    data.write_all_at(b"J", 0).expect("write after drop");
    assert_eq!(&*data.view(0, 6).expect("view"), b"Jello!");
    assert_eq!(data.file().read_to_vec().expect("read"), b"Jello!");
    assert!(matches!(
        data.file().write_all_at(b"x", 0),
        Err(Error::Managed { .. })
    ));
}
