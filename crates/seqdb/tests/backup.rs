//! `Database::backup`: full and incremental round trips (regions created, renamed,
//! removed, grown and overwritten between backups), consistency with writers going on,
//! the bound on what an incremental backup copies, and refusals (another database's
//! backup, a backup cut short). Backups killed in the middle are in `backup_kill.rs`.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use seqdb::{BACKUP_CHUNK, Database, Error, INCOMPLETE_MARKER, Identifier};
use support::{Rng, State, diff_states, read_state};

/// Open the backup at `dest`, check it (its regions' bytes against their checksums
/// too), and return what it holds.
fn backup_state(dest: &Path) -> State {
    let report = seqdb::check_data(dest, |_, _| {}).unwrap();
    assert!(report.is_healthy() && report.data_checked, "{report}");
    let backup = Database::open_read_only(dest).unwrap();
    read_state(&backup).unwrap()
}

fn assert_same(got: &State, want: &State) {
    if let Some(diff) = diff_states(got, want) {
        panic!("the backup differs: {diff}");
    }
}

#[test]
fn a_full_backup_holds_every_region_and_the_generation() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dest) = (dir.path().join("src"), dir.path().join("dest"));
    let db = Database::open(&src).unwrap();
    let mut rng = Rng(1);
    for i in 0..20 {
        let (n, _) = db.create_region_if_needed(&format!("r{i}")).unwrap();
        let len = rng.below(300_000) as usize;
        db.write_all_to_region(n.into(), &rng.bytes(len)).unwrap();
    }
    db.create_region_if_needed("empty").unwrap();
    db.remove_region("r3".into()).unwrap();
    // Not flushed yet: the backup commits first.
    let stats = db.backup(&dest).unwrap();
    let want = read_state(&db).unwrap();
    assert_same(&backup_state(&dest), &want);
    assert_eq!(stats.previous_generation, None);
    assert_eq!(stats.regions, want.len() as u64);
    let live: u64 = want.values().map(|v| v.len() as u64).sum();
    assert_eq!(stats.live_bytes, live);
    assert_eq!(stats.bytes_copied, live);
    assert_eq!(stats.bytes_compared, 0);
    assert_eq!(seqdb::check(&dest).unwrap().generation, stats.generation);
    db.close().unwrap();
    assert_eq!(seqdb::check(&src).unwrap().generation, stats.generation);
    // Sparse: the file stores the header and the regions' bytes (each from a page
    // boundary), not the room they have to grow (a few blocks of slack for the file
    // system's own extent blocks, which it counts too).
    let pages: u64 = want.values().map(|v| (v.len() as u64).div_ceil(4096)).sum();
    let allocated =
        std::os::unix::fs::MetadataExt::blocks(&std::fs::metadata(dest.join("data")).unwrap())
            * 512;
    assert!(
        allocated <= 4096 * (1 + pages + 4),
        "{allocated} bytes allocated, {pages} pages"
    );
}

#[test]
fn a_read_only_handle_backs_up_the_commit_it_opened() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dest) = (dir.path().join("src"), dir.path().join("dest"));
    let db = Database::open(&src).unwrap();
    db.create_region_if_needed("a").unwrap();
    db.write_all_to_region("a".into(), b"committed").unwrap();
    db.close().unwrap();
    let db = Database::open_read_only(&src).unwrap();
    let stats = db.backup(&dest).unwrap();
    assert_same(&backup_state(&dest), &read_state(&db).unwrap());
    assert_eq!(stats.generation, seqdb::check(&dest).unwrap().generation);
}

#[test]
fn incremental_backups_follow_creations_renames_removals_and_changes() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dest) = (dir.path().join("src"), dir.path().join("dest"));
    let db = Database::open(&src).unwrap();
    let mut rng = Rng(7);
    let mut last_generation = None;
    for round in 0..12u64 {
        // Change the database at random: create, append, overwrite, truncate, rename,
        // remove.
        for _ in 0..10 {
            let names: Vec<String> = db.regions().iter().map(|r| r.name().to_owned()).collect();
            match rng.below(7) {
                0 | 1 if !names.is_empty() => {
                    let name = rng.pick(&names).clone();
                    let len = rng.below(200_000) as usize;
                    db.write_all_to_region(name.as_str().into(), &rng.bytes(len))
                        .unwrap();
                }
                2 if !names.is_empty() => {
                    let name = rng.pick(&names).clone();
                    let region = db.get_region(name.as_str().into()).unwrap();
                    if !region.is_empty() {
                        let at = rng.below(region.len());
                        let len = rng.below(region.len() - at).min(10_000) as usize;
                        db.write_all_to_region_at(name.as_str().into(), &rng.bytes(len), at)
                            .unwrap();
                    }
                }
                3 if !names.is_empty() => {
                    let name = rng.pick(&names).clone();
                    let region = db.get_region(name.as_str().into()).unwrap();
                    let len = rng.below(region.len() + 1);
                    db.truncate_region(name.as_str().into(), len).unwrap();
                }
                4 if !names.is_empty() => {
                    let name = rng.pick(&names).clone();
                    let _ = db.rename_region(name.as_str().into(), &format!("n{}", rng.next()));
                }
                5 if names.len() > 3 => {
                    let name = rng.pick(&names).clone();
                    db.remove_region(name.as_str().into()).unwrap();
                }
                _ => {
                    let (n, _) = db
                        .create_region_if_needed(&format!("c{}", rng.next()))
                        .unwrap();
                    let len = rng.below(100_000) as usize;
                    db.write_all_to_region(n.into(), &rng.bytes(len)).unwrap();
                }
            }
        }
        if round % 3 == 1 {
            db.compact().unwrap();
        }
        let stats = db.backup(&dest).unwrap();
        assert_eq!(stats.previous_generation, last_generation, "round {round}");
        last_generation = Some(stats.generation);
        assert_same(&backup_state(&dest), &read_state(&db).unwrap());
    }
}

#[test]
fn an_incremental_backup_copies_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dest) = (dir.path().join("src"), dir.path().join("dest"));
    let db = Database::open(&src).unwrap();
    let mut rng = Rng(3);
    let regions = 64;
    for i in 0..regions {
        let (n, _) = db.create_region_if_needed(&format!("r{i}")).unwrap();
        db.write_all_to_region(n.into(), &rng.bytes(512 << 10))
            .unwrap();
    }
    let full = db.backup(&dest).unwrap();
    let live = full.live_bytes;
    assert_eq!(full.bytes_copied, live);

    // Nothing changed: nothing is copied, and a rename copies nothing either.
    db.rename_region("r5".into(), "renamed").unwrap();
    let same = db.backup(&dest).unwrap();
    assert_eq!(same.bytes_copied, 0);
    assert_eq!(same.bytes_compared, live);

    // 1% of the data changes: appends to a few regions, and overwrites of others.
    let mut changed = 0u64;
    for i in 0..4 {
        let bytes = rng.bytes((live / 100 / 8) as usize);
        changed += bytes.len() as u64;
        db.write_all_to_region(Identifier::Name(format!("r{i}")), &bytes)
            .unwrap();
    }
    for i in 10..12 {
        let bytes = rng.bytes((live / 100 / 4) as usize);
        changed += bytes.len() as u64;
        db.write_all_to_region_at(Identifier::Name(format!("r{i}")), &bytes, 100_000)
            .unwrap();
    }
    assert!(changed <= live / 100);
    let incremental = db.backup(&dest).unwrap();
    assert_same(&backup_state(&dest), &read_state(&db).unwrap());
    assert!(
        incremental.bytes_copied <= 2 * incremental.live_bytes / 100,
        "copied {} of {} bytes after {changed} changed",
        incremental.bytes_copied,
        incremental.live_bytes
    );
    // Chunk granularity: each changed range costs at most a chunk more on each side.
    assert!(incremental.bytes_copied <= changed + 2 * 6 * BACKUP_CHUNK);
}

#[test]
fn a_backup_of_another_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, dest) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("dest"),
    );
    let first = Database::open(&a).unwrap();
    first.create_region_if_needed("x").unwrap();
    first.backup(&dest).unwrap();
    let other = Database::open(&b).unwrap();
    other.create_region_if_needed("y").unwrap();
    let error = other.backup(&dest).unwrap_err();
    assert!(matches!(error, Error::NotABackupOf { .. }), "{error}");
    assert!(error.to_string().contains("not of database"), "{error}");
    // Nor into another database itself, nor into the database's own directory.
    let error = other.backup(&a).unwrap_err();
    assert!(
        matches!(
            error,
            Error::NotABackupOf { .. } | Error::AlreadyOpen { .. }
        ),
        "{error}"
    );
    let error = other.backup(&b).unwrap_err();
    assert!(matches!(error, Error::AlreadyOpen { .. }), "{error}");
    // The backup is untouched.
    assert_eq!(backup_state(&dest).keys().collect::<Vec<_>>(), ["x"]);
}

#[test]
fn a_backup_cut_short_is_refused_until_a_backup_completes_it() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dest) = (dir.path().join("src"), dir.path().join("dest"));
    let db = Database::open(&src).unwrap();
    db.create_region_if_needed("x").unwrap();
    db.write_all_to_region("x".into(), &[7; 100_000]).unwrap();
    db.backup(&dest).unwrap();
    // What a backup leaves when it is killed after marking the directory: its bytes may
    // be half written.
    std::fs::write(dest.join(INCOMPLETE_MARKER), b"seqdb backup in progress").unwrap();
    let error = Database::open(&dest).unwrap_err();
    assert!(matches!(error, Error::IncompleteBackup { .. }), "{error}");
    let error = Database::open_read_only(&dest).unwrap_err();
    assert!(matches!(error, Error::IncompleteBackup { .. }), "{error}");
    let report = seqdb::check(&dest).unwrap();
    assert!(!report.is_healthy());
    assert!(report.problems[0].contains("did not complete"), "{report}");
    // A marker this build cannot read names no database: refused as another's.
    assert!(matches!(
        db.backup(&dest).unwrap_err(),
        Error::NotABackupOf { .. }
    ));
    // A marker naming this database (as a backup writes it): the next backup completes
    // the directory, whatever its bytes were left as.
    let meta = std::fs::read(dest.join("meta")).unwrap();
    let id: String = meta[20..36].iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(
        dest.join(INCOMPLETE_MARKER),
        format!("seqdb backup in progress of database {id}\n"),
    )
    .unwrap();
    let mut data = std::fs::read(dest.join("data")).unwrap();
    data[4096..4096 + 5000].fill(0xff);
    std::fs::write(dest.join("data"), &data).unwrap();
    db.write_all_to_region("x".into(), b"more").unwrap();
    let stats = db.backup(&dest).unwrap();
    // Not counted as incremental: what the directory held was not a complete backup.
    assert_eq!(stats.previous_generation, None);
    assert_same(&backup_state(&dest), &read_state(&db).unwrap());
    assert!(!dest.join(INCOMPLETE_MARKER).exists());
}

#[test]
fn a_backup_holds_one_instant_while_writers_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dest) = (dir.path().join("src"), dir.path().join("dest"));
    let db = Database::open(&src).unwrap();
    let (a, _) = db.create_region_if_needed("a").unwrap();
    let (b, _) = db.create_region_if_needed("b").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    // Each record goes to `a`, then to `b`: at any instant `b` holds the records of `a`
    // or one fewer. A second writer overwrites and truncates a third region.
    let writer = {
        let (db, stop) = (db.clone(), stop.clone());
        thread::spawn(move || {
            // Bounded, so that the rounds copy a few megabytes each.
            for i in 0..30_000u64 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let record = record(i);
                db.write_all_to_region(a.into(), &record).unwrap();
                db.write_all_to_region(b.into(), &record).unwrap();
                if i % 64 == 0 {
                    thread::yield_now();
                }
            }
        })
    };
    let churn = {
        let (db, stop) = (db.clone(), stop.clone());
        thread::spawn(move || {
            let (c, _) = db.create_region_if_needed("c").unwrap();
            let mut rng = Rng(5);
            for _ in 0..20_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                thread::yield_now();
                let fill = rng.below(256) as u8;
                db.truncate_region(c.into(), 0).unwrap();
                db.write_all_to_region(c.into(), &vec![fill; 70_000])
                    .unwrap();
            }
        })
    };
    for round in 0..8 {
        let stats = db.backup(&dest).unwrap();
        let state = backup_state(&dest);
        let (a, b) = (&state["a"], &state["b"]);
        let records = |bytes: &[u8]| bytes.len() / RECORD;
        assert!(
            a.len() % RECORD == 0 && b.len() % RECORD == 0,
            "round {round}"
        );
        assert!(
            records(a) == records(b) || records(a) == records(b) + 1,
            "round {round}: {} and {} records",
            records(a),
            records(b)
        );
        for (i, record_bytes) in a.chunks(RECORD).enumerate() {
            assert_eq!(record_bytes, record(i as u64), "round {round} record {i}");
        }
        assert_eq!(b[..], a[..b.len()]);
        if let Some(c) = state.get("c") {
            assert!(c.len() % 70_000 == 0 && c.len() <= 70_000, "{}", c.len());
            assert!(
                c.iter().all(|&x| x == c[0]),
                "round {round}: c mixes two writes"
            );
        }
        assert!(stats.generation > 0);
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    churn.join().unwrap();
}

const RECORD: usize = 1000;

fn record(i: u64) -> Vec<u8> {
    let mut out = support::pattern(i, RECORD);
    out[..8].copy_from_slice(&i.to_le_bytes());
    out
}

/// A read-only handle backs up the commit it opened while the writer (another handle,
/// as another process would be) goes on appending, flushing, removing and compacting:
/// the backup equals what the read-only handle reads, and the writer never waits.
#[test]
fn a_read_only_handle_beside_a_writer_backs_up_the_commit_it_opened() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dest) = (dir.path().join("src"), dir.path().join("dest"));
    let db = Database::open(&src).unwrap();
    for name in ["a", "b", "c"] {
        db.create_region_if_needed(name).unwrap();
        db.write_all_to_region(name.into(), &record(0)).unwrap();
    }
    db.flush().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, stop) = (db.clone(), stop.clone());
        thread::spawn(move || {
            let mut rng = Rng(11);
            let mut i = 1u64;
            while !stop.load(Ordering::Relaxed) {
                let name = ["a", "b", "c"][rng.below(3) as usize];
                db.write_all_to_region(name.into(), &record(i)).unwrap();
                if i.is_multiple_of(50) {
                    db.flush().unwrap();
                }
                if i.is_multiple_of(400) {
                    // A region removed and made again, its space given back, and the
                    // file compacted: all space a reader of an older commit may view.
                    db.remove_region("tmp".into()).ok();
                    db.create_region_if_needed("tmp").unwrap();
                    db.write_all_to_region("tmp".into(), &vec![i as u8; 50_000])
                        .unwrap();
                    db.flush_then_punch().unwrap();
                    db.compact().unwrap();
                }
                i += 1;
            }
            i
        })
    };
    let mut generations = Vec::new();
    for round in 0..6 {
        thread::sleep(std::time::Duration::from_millis(30));
        let reader = Database::open_read_only(&src).unwrap();
        let want = read_state(&reader).unwrap();
        let stats = reader.backup(&dest).unwrap();
        let got = backup_state(&dest);
        assert_same(&got, &want);
        assert_records(&got, round);
        assert_eq!(
            stats.generation,
            seqdb::check(&dest).unwrap().generation,
            "round {round}"
        );
        // The reader's view stays what it opened after the copy too.
        assert!(diff_states(&read_state(&reader).unwrap(), &want).is_none());
        generations.push(stats.generation);
    }
    stop.store(true, Ordering::Relaxed);
    let appended = writer.join().unwrap();
    assert!(appended > 400, "the writer went on: {appended} appends");
    assert!(
        generations.windows(2).any(|w| w[0] < w[1]),
        "the backups saw the writer's commits: {generations:?}"
    );
}

/// Each of `a`, `b` and `c` holds whole records, the first one 0 and then rising numbers,
/// and `tmp` (when there) one fill: what the writer above wrote, never bytes of another
/// region or of a later change.
fn assert_records(state: &State, round: usize) {
    for name in ["a", "b", "c"] {
        let bytes = &state[name];
        assert!(bytes.len().is_multiple_of(RECORD), "round {round}: {name}");
        let mut last = None;
        for chunk in bytes.chunks(RECORD) {
            let i = u64::from_le_bytes(chunk[..8].try_into().unwrap());
            assert_eq!(chunk, record(i), "round {round}: {name} record {i}");
            assert!(last.is_none_or(|last| last < i), "round {round}: {name}");
            assert!(last.is_some() || i == 0, "round {round}: {name}");
            last = Some(i);
        }
    }
    if let Some(tmp) = state.get("tmp") {
        assert!(
            tmp.len() == 50_000 && tmp.iter().all(|&x| x == tmp[0]),
            "round {round}"
        );
    }
}
