//! The fault injector is asked before every write, length change, sync and rename, with
//! the right path, operation and offset; an error it returns fails the operation (named
//! like a real failure) without running it, and the observer hears nothing of it.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use seqdb_sys::{
    DataFile, FaultInjector, FaultOp, FileOptions, Hooks, LockedFile, SyncKind, SyncObserver,
    rename_durably, sync_dir,
};

const EIO: i32 = 5;

type Seen = Arc<Mutex<Vec<(PathBuf, FaultOp, u64)>>>;

/// Hooks whose injector records every point and fails those `fail` picks with EIO, and
/// whose observer records every completed barrier.
fn hooks(fail: impl Fn(&Path, FaultOp) -> bool + Send + Sync + 'static) -> (Hooks, Seen, Seen) {
    let asked: Seen = Arc::default();
    let synced: Seen = Arc::default();
    let sink = Arc::clone(&asked);
    let faults: FaultInjector = Arc::new(move |point| {
        sink.lock()
            .unwrap()
            .push((point.path.to_path_buf(), point.op, point.offset));
        if fail(point.path, point.op) {
            Err(io::Error::from_raw_os_error(EIO))
        } else {
            Ok(())
        }
    });
    let sink = Arc::clone(&synced);
    let observer: SyncObserver = Arc::new(move |event| {
        let op = match event.kind {
            SyncKind::Data => FaultOp::SyncData,
            SyncKind::All => FaultOp::SyncAll,
            SyncKind::Directory => FaultOp::SyncDirectory,
        };
        sink.lock().unwrap().push((event.path.to_path_buf(), op, 0));
    });
    let hooks = Hooks {
        observer: Some(observer),
        faults: Some(faults),
    };
    (hooks, asked, synced)
}

fn open(path: &Path, hooks: &Hooks) -> LockedFile {
    let options = FileOptions {
        hooks: hooks.clone(),
        ..FileOptions::read_write()
    };
    LockedFile::open(path, &options).expect("open")
}

fn assert_eio(error: &seqdb_sys::Error, path: &Path, op: &str) {
    assert_eq!(error.path(), path, "{error}");
    assert_eq!(
        error.io_error().and_then(io::Error::raw_os_error),
        Some(EIO),
        "{error}"
    );
    let text = error.to_string();
    assert!(
        text.starts_with(&format!("{op} {}", path.display())),
        "{text}"
    );
}

#[test]
fn every_point_is_asked_with_path_operation_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let (hooks, asked, synced) = hooks(|_, _| false);
    let path = dir.path().join("data");
    let file = open(&path, &hooks);
    file.write_all_at(b"abc", 4096).unwrap();
    file.set_len(8192).unwrap();
    file.sync_data().unwrap();
    file.sync_all().unwrap();
    let data = DataFile::new(file).unwrap();
    data.write_all_at(b"x", 10).unwrap();
    data.sync_data().unwrap();
    drop(data);
    sync_dir(dir.path(), &hooks).unwrap();
    let from = dir.path().join("meta.tmp");
    let to = dir.path().join("meta");
    std::fs::write(&from, b"meta").unwrap();
    rename_durably(&from, &to, &hooks).unwrap();

    let root = dir.path().to_path_buf();
    assert_eq!(
        *asked.lock().unwrap(),
        vec![
            (path.clone(), FaultOp::Write, 4096),
            (path.clone(), FaultOp::SetLen, 8192),
            (path.clone(), FaultOp::SyncData, 0),
            (path.clone(), FaultOp::SyncAll, 0),
            (path.clone(), FaultOp::Write, 10),
            (path.clone(), FaultOp::SyncData, 0),
            (root.clone(), FaultOp::SyncDirectory, 0),
            (from, FaultOp::Rename, 0),
            (root.clone(), FaultOp::SyncDirectory, 0),
        ]
    );
    assert_eq!(synced.lock().unwrap().len(), 5);
}

#[test]
fn an_injected_fault_fails_the_operation_without_running_it() {
    let dir = tempfile::tempdir().unwrap();
    let (hooks, _, synced) = hooks(|path, op| {
        path.file_name().is_some_and(|name| name == "victim") || op == FaultOp::Rename
    });
    let victim = dir.path().join("victim");
    let file = open(&victim, &hooks);
    assert_eio(&file.write_all_at(b"abc", 0).unwrap_err(), &victim, "write");
    assert_eq!(std::fs::metadata(&victim).unwrap().len(), 0, "not written");
    assert_eio(&file.set_len(4096).unwrap_err(), &victim, "ftruncate");
    assert_eq!(std::fs::metadata(&victim).unwrap().len(), 0, "not resized");
    assert_eio(&file.sync_data().unwrap_err(), &victim, "fdatasync");
    assert_eio(&file.sync_all().unwrap_err(), &victim, "fsync");
    let data = DataFile::new(file).unwrap();
    assert_eio(&data.write_all_at(b"x", 0).unwrap_err(), &victim, "write");
    assert_eq!(
        data.len(),
        0,
        "a failed write does not grow the tracked length"
    );
    assert_eq!(data.pinned_ranges(), 0);
    assert_eio(&data.sync_data().unwrap_err(), &victim, "fdatasync");

    let victim_dir = dir.path().join("victim");
    drop(data);
    std::fs::remove_file(&victim).unwrap();
    std::fs::create_dir(&victim_dir).unwrap();
    assert_eio(
        &sync_dir(&victim_dir, &hooks).unwrap_err(),
        &victim_dir,
        "fsync directory",
    );

    let from = dir.path().join("meta.tmp");
    let to = dir.path().join("meta");
    std::fs::write(&from, b"meta").unwrap();
    assert_eio(
        &rename_durably(&from, &to, &hooks).unwrap_err(),
        &from,
        "rename",
    );
    assert!(from.exists() && !to.exists(), "not renamed");
    assert!(synced.lock().unwrap().is_empty(), "no barrier completed");
}

#[test]
fn a_failed_directory_sync_after_a_rename_reports_the_rename_done() {
    let dir = tempfile::tempdir().unwrap();
    let (hooks, _, _) = hooks(|_, op| op == FaultOp::SyncDirectory);
    let from = dir.path().join("meta.tmp");
    let to = dir.path().join("meta");
    std::fs::write(&from, b"meta").unwrap();
    let error = rename_durably(&from, &to, &hooks).unwrap_err();
    assert_eio(&error, dir.path(), "fsync directory");
    assert!(
        !from.exists() && to.exists(),
        "the rename itself went through"
    );
}

#[test]
fn default_hooks_let_everything_run() {
    let dir = tempfile::tempdir().unwrap();
    let hooks = Hooks::default();
    let file = open(&dir.path().join("data"), &hooks);
    file.write_all_at(b"abc", 0).unwrap();
    file.sync_data().unwrap();
    sync_dir(dir.path(), &hooks).unwrap();
    assert_eq!(
        format!("{hooks:?}"),
        "Hooks { observer: None, faults: None }"
    );
}

/// Waiting for write-back asks the injector as a data sync does (its failure is as
/// final) and fails without waiting; starting it asks nothing; neither is a barrier the
/// observer hears of.
#[test]
fn write_back_waits_are_asked_like_data_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("victim");
    let (failing, asked, synced) = hooks(|_, op| op == FaultOp::SyncData);
    let file = open(&path, &failing);
    file.start_write_back(0, 4096).unwrap();
    assert_eio(
        &file.wait_write_back(8192, 4096).unwrap_err(),
        &path,
        "sync_file_range",
    );
    assert_eq!(
        *asked.lock().unwrap(),
        vec![(path.clone(), FaultOp::SyncData, 8192)]
    );
    assert!(synced.lock().unwrap().is_empty());

    // Without a fault both succeed, on written and on unwritten ranges alike.
    let (quiet, _, synced) = hooks(|_, _| false);
    let file = open(&dir.path().join("fine"), &quiet);
    file.write_all_at(&[7; 3 * 4096], 0).unwrap();
    file.start_write_back(0, 3 * 4096).unwrap();
    file.wait_write_back(0, 3 * 4096).unwrap();
    file.wait_write_back(1 << 40, 4096).unwrap();
    assert!(synced.lock().unwrap().is_empty());
}
