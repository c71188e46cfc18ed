//! Advisory locks: conflicts are reported at once, in one process and across
//! processes.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use seqdb_sys::{Error, FileOptions, Lock, LockedFile};

fn options(lock: Lock) -> FileOptions {
    FileOptions {
        lock,
        write: lock == Lock::Exclusive,
        create: lock == Lock::Exclusive,
        ..FileOptions::default()
    }
}

fn assert_locked(result: seqdb_sys::Result<LockedFile>, path: &Path) {
    match result {
        Err(Error::Locked { path: locked }) => assert_eq!(locked, path),
        other => panic!("expected Locked, got {other:?}"),
    }
}

#[test]
fn second_exclusive_handle_is_refused_until_the_first_is_dropped() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("data");
    let first = LockedFile::open(&path, &options(Lock::Exclusive)).expect("first");
    assert_locked(LockedFile::open(&path, &options(Lock::Exclusive)), &path);
    assert_locked(LockedFile::open(&path, &options(Lock::Shared)), &path);
    let error = LockedFile::open(&path, &options(Lock::Exclusive)).expect_err("locked");
    assert_eq!(
        error.to_string(),
        format!(
            "{} is already open by another process or handle",
            path.display()
        )
    );
    LockedFile::open(&path, &options(Lock::Unlocked)).expect("unlocked opens");
    drop(first);
    LockedFile::open(&path, &options(Lock::Exclusive)).expect("free again");
}

#[test]
fn shared_handles_coexist_and_exclude_an_exclusive_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("data");
    drop(LockedFile::open(&path, &options(Lock::Exclusive)).expect("create"));
    let a = LockedFile::open(&path, &options(Lock::Shared)).expect("shared a");
    let b = LockedFile::open(&path, &options(Lock::Shared)).expect("shared b");
    assert_locked(LockedFile::open(&path, &options(Lock::Exclusive)), &path);
    drop(a);
    assert_locked(LockedFile::open(&path, &options(Lock::Exclusive)), &path);
    drop(b);
    LockedFile::open(&path, &options(Lock::Exclusive)).expect("exclusive");
}

#[test]
fn truncating_open_of_a_locked_file_keeps_its_bytes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("data");
    let holder = LockedFile::open(&path, &options(Lock::Exclusive)).expect("holder");
    holder.write_all_at(b"precious", 0).expect("write");
    let truncating = FileOptions {
        truncate: true,
        ..options(Lock::Exclusive)
    };
    assert_locked(LockedFile::open(&path, &truncating), &path);
    assert_eq!(holder.read_to_vec().expect("read"), b"precious");
}

#[test]
fn missing_file_without_create_names_the_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("missing");
    let error = LockedFile::open(&path, &options(Lock::Shared)).expect_err("missing");
    assert!(matches!(error, Error::Io { op: "open", .. }), "{error}");
    assert_eq!(error.path(), path);
}

/// Set in the child process to the path it must lock.
const CHILD_PATH: &str = "SEQDB_SYS_LOCK_CHILD_PATH";
/// The line the child prints once it holds the lock.
const HOLDING: &str = "seqdb-sys-child: holding lock";

/// Not a test of its own: when started by
/// `lock_held_by_another_process_is_refused` with `CHILD_PATH` set, it takes
/// the lock, reports on stdout and holds it until its stdin is closed.
#[test]
fn child_lock_holder() {
    let Some(path) = std::env::var_os(CHILD_PATH) else {
        return;
    };
    let file = LockedFile::open(&PathBuf::from(path), &options(Lock::Exclusive))
        .expect("child takes the lock");
    println!("{HOLDING}");
    std::io::stdout().flush().expect("flush");
    let mut rest = Vec::new();
    std::io::stdin()
        .read_to_end(&mut rest)
        .expect("wait for the parent");
    drop(file);
}

#[test]
fn lock_held_by_another_process_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("data");
    let exe = std::env::current_exe().expect("test binary");
    let mut child = Command::new(exe)
        .args(["--exact", "child_lock_holder", "--nocapture"])
        .env(CHILD_PATH, &path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("child stdout");
    let mut lines = BufReader::new(stdout).lines();
    let held = lines.any(|line| line.is_ok_and(|line| line.trim() == HOLDING));
    assert!(held, "the child never reported holding the lock");

    assert_locked(LockedFile::open(&path, &options(Lock::Exclusive)), &path);
    assert_locked(LockedFile::open(&path, &options(Lock::Shared)), &path);

    drop(child.stdin.take());
    let status = child.wait().expect("child exits");
    assert!(status.success(), "child failed: {status}");
    LockedFile::open(&path, &options(Lock::Exclusive)).expect("free once the child is gone");
}
