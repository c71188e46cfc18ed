//! Appends made while a thread ends, from the destructor of another thread-local, after
//! the database's own per-thread state is gone.
//!
//! Thread-local destructors run in an unspecified order, and a thread-local that is
//! already destroyed cannot be used: the append must take a path that needs none, never
//! panic (a panic in a destructor aborts the process). The scenario runs in a child
//! process (this test binary run again with `--exact child_appends_at_thread_exit`), so
//! that an abort fails the test instead of ending the test run.

use std::cell::RefCell;
use std::path::Path;
use std::process::Command;

use seqdb::{Database, Identifier};

const CHILD_ENV: &str = "SEQDB_THREAD_EXIT_DIR";
const CHILD_TEST: &str = "child_appends_at_thread_exit";
const APPENDS: usize = 40;

/// Appends to a region by number when dropped, as a writer flushing its buffer would.
struct AppendOnDrop {
    db: Database,
    number: usize,
}

impl Drop for AppendOnDrop {
    fn drop(&mut self) {
        for i in 0..APPENDS {
            self.db
                .write_all_to_region(Identifier::Number(self.number), &[i as u8])
                .unwrap();
        }
    }
}

thread_local! {
    static AT_EXIT: RefCell<Option<AppendOnDrop>> = const { RefCell::new(None) };
}

/// Runs only as the child; otherwise passes at once.
#[test]
fn child_appends_at_thread_exit() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let db = Database::open(Path::new(&dir)).unwrap();
    let (number, _) = db.create_region_if_needed("exit").unwrap();
    let thread_db = db.clone();
    std::thread::spawn(move || {
        // This thread-local is set up first, so it is destroyed after the ones the
        // appends below set up (destructors run in reverse order of registration here).
        AT_EXIT.with_borrow_mut(|slot| {
            *slot = Some(AppendOnDrop {
                db: thread_db.clone(),
                number,
            })
        });
        // Enough appends by number for the region to lend this thread a buffer.
        for i in 0..APPENDS {
            thread_db
                .write_all_to_region(Identifier::Number(number), &[i as u8])
                .unwrap();
        }
    })
    .join()
    .unwrap();
    db.flush().unwrap();
}

#[test]
fn appends_from_a_thread_local_destructor_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "the child failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let db = Database::open(dir.path()).unwrap();
    let want: Vec<u8> = (0..2 * APPENDS).map(|i| (i % APPENDS) as u8).collect();
    assert_eq!(
        db.create_region_reader("exit".into()).unwrap().read_all(),
        want.as_slice()
    );
}
