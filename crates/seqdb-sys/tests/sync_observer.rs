//! The sync observer hears every barrier, with the right kind and path.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use seqdb_sys::{
    DataFile, FileOptions, Hooks, LockedFile, SyncKind, SyncObserver, rename_durably, sync_dir,
};

type Events = Arc<Mutex<Vec<(PathBuf, SyncKind)>>>;

fn recorder() -> (Events, SyncObserver) {
    let events: Events = Arc::default();
    let sink = Arc::clone(&events);
    let observer: SyncObserver = Arc::new(move |event| {
        sink.lock()
            .expect("recorder")
            .push((event.path.to_path_buf(), event.kind));
    });
    (events, observer)
}

#[test]
fn observer_sees_data_all_and_directory_barriers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (events, observer) = recorder();
    let path = dir.path().join("data");
    let hooks = Hooks::observed(observer);
    let options = FileOptions {
        hooks: hooks.clone(),
        ..FileOptions::read_write()
    };
    let file = LockedFile::open(&path, &options).expect("open");
    file.write_all_at(b"x", 0).expect("write");
    file.sync_data().expect("sync data");
    file.sync_all().expect("sync all");
    let data = DataFile::new(file).expect("data file");
    data.sync_data().expect("sync through the data file");
    sync_dir(dir.path(), &hooks).expect("sync dir");

    let from = dir.path().join("meta.tmp");
    let to = dir.path().join("meta");
    std::fs::write(&from, b"meta").expect("write temp");
    rename_durably(&from, &to, &hooks).expect("rename");
    assert_eq!(std::fs::read(&to).expect("renamed"), b"meta");
    assert!(!from.exists());

    let seen = events.lock().expect("events").clone();
    let dir = dir.path().to_path_buf();
    assert_eq!(
        seen,
        vec![
            (path.clone(), SyncKind::Data),
            (path.clone(), SyncKind::All),
            (path, SyncKind::Data),
            (dir.clone(), SyncKind::Directory),
            (dir, SyncKind::Directory),
        ]
    );
}

#[test]
fn failed_barriers_are_not_reported() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (events, observer) = recorder();
    let hooks = Hooks::observed(observer);
    let missing = dir.path().join("missing");
    assert!(sync_dir(&missing, &hooks).is_err());
    let error =
        rename_durably(&missing, &dir.path().join("x"), &hooks).expect_err("nothing to rename");
    assert_eq!(error.path(), missing);
    assert!(events.lock().expect("events").is_empty());
    sync_dir(dir.path(), &Hooks::default()).expect("no observer is fine");
}
