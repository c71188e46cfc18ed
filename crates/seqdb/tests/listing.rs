//! Region numbers as an open finds them (every pattern of free numbers), and listings
//! (`regions()`, `stats()`, `retain_regions`) taken while other threads look regions up,
//! remove them, give their numbers to new regions and rename them.

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use seqdb::{Database, Error, Identifier};
use support::pattern;

fn name_of(n: usize) -> String {
    format!("n{n}")
}

fn len_of(n: usize) -> usize {
    1 + n % 37
}

/// Check a handle against the regions `kept` (by number) out of `created`: the listing,
/// the statistics, lookups by number and by name, each region's bytes; with nothing
/// looked up before the listing and the statistics.
fn check_reopened(db: &Database, created: usize, kept: &[usize], case: &str) {
    let listed: Vec<(usize, String, u64)> = db
        .regions()
        .iter()
        .map(|r| (r.number(), r.name().to_owned(), r.len()))
        .collect();
    let want: Vec<(usize, String, u64)> = kept
        .iter()
        .map(|&n| (n, name_of(n), len_of(n) as u64))
        .collect();
    assert_eq!(listed, want, "{case}: listing");
    let stats = db.stats().unwrap();
    assert_eq!(stats.regions as usize, kept.len(), "{case}: {stats:?}");
    let live: u64 = want.iter().map(|w| w.2).sum();
    assert_eq!(stats.live_bytes, live, "{case}: {stats:?}");
    for n in 0..created + 3 {
        let by_number = db.get_region(Identifier::Number(n));
        let by_name = db.get_region(Identifier::from(name_of(n).as_str()));
        if kept.contains(&n) {
            let region = by_number.unwrap();
            assert_eq!(
                (region.name(), region.len()),
                (name_of(n).as_str(), len_of(n) as u64),
                "{case}: region {n}"
            );
            assert_eq!(
                by_name.unwrap().number(),
                n,
                "{case}: {} by name",
                name_of(n)
            );
            let reader = db.create_region_reader(Identifier::Number(n)).unwrap();
            assert_eq!(
                reader.read_all(),
                pattern(n as u64, len_of(n)).as_slice(),
                "{case}: bytes of {n}"
            );
        } else {
            assert!(
                matches!(by_number, Err(Error::UnknownRegion { .. }))
                    && matches!(by_name, Err(Error::UnknownRegion { .. })),
                "{case}: region {n} is there: {by_number:?} {by_name:?}"
            );
        }
    }
    // Listed and looked up: the same again.
    let again: Vec<usize> = db.regions().iter().map(|r| r.number()).collect();
    assert_eq!(again, kept, "{case}: listing after lookups");
}

/// Every pattern of free numbers an open can find (none; at the start; between; at the
/// end; one region left; none left; the number bound far past the last region; an empty
/// database): each region reopens at its number, with its name and bytes, in the
/// listing, the statistics and lookups; every other number is unknown, and new regions
/// take the free numbers lowest first, then the numbers past the last.
#[test]
fn every_pattern_of_free_numbers_reopens_at_its_numbers() {
    let cases: Vec<(&str, usize, Vec<usize>)> = vec![
        ("empty database", 0, vec![]),
        ("no gap", 10, (0..10).collect()),
        ("one region, no gap", 1, vec![0]),
        ("gap at the start", 10, (3..10).collect()),
        ("gap of one at the start", 10, (1..10).collect()),
        ("gaps between", 12, vec![0, 1, 2, 4, 8, 9, 11]),
        ("gap at the end", 10, (0..7).collect()),
        ("gaps everywhere", 20, vec![2, 3, 7, 11, 12, 13, 17]),
        ("only one region, in the middle", 10, vec![5]),
        ("only the last region", 10, vec![9]),
        ("only the first region", 10, vec![0]),
        ("no region left", 10, vec![]),
        ("bound far past the last region", 3000, vec![0, 1, 4]),
        ("one region far past the others", 3000, vec![1, 2999]),
    ];
    for (case, created, kept) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        {
            let db = Database::open(&path).unwrap();
            for n in 0..created {
                let (number, _) = db.create_region_if_needed(&name_of(n)).unwrap();
                assert_eq!(number, n);
                db.write_all_to_region(number.into(), &pattern(n as u64, len_of(n)))
                    .unwrap();
            }
            db.flush().unwrap();
            for n in (0..created).filter(|n| !kept.contains(n)) {
                db.remove_region(Identifier::Number(n)).unwrap().unwrap();
            }
            db.close().unwrap();
        }
        // From the log as written, then from a checkpoint (a compaction rewrites it).
        for round in 0..2 {
            let db = Database::open(&path).unwrap();
            check_reopened(&db, created, &kept, &format!("{case}, round {round}"));
            db.compact().unwrap();
            db.flush().unwrap();
            db.close().unwrap();
        }
        // New regions take the numbers not kept, lowest first, and reopen there.
        let db = Database::open(&path).unwrap();
        let free: Vec<usize> = (0..created + 2)
            .filter(|n| !kept.contains(n))
            .take(6)
            .collect();
        for &want in &free {
            let (number, _) = db.create_region_if_needed(&name_of(want)).unwrap();
            assert_eq!(number, want, "{case}: a new region's number");
            db.write_all_to_region(number.into(), &pattern(want as u64, len_of(want)))
                .unwrap();
        }
        db.close().unwrap();
        let mut all = kept.clone();
        all.extend(&free);
        all.sort_unstable();
        let created = created.max(all.last().map_or(0, |l| l + 1));
        let db = Database::open(&path).unwrap();
        check_reopened(&db, created, &all, &format!("{case}, with new regions"));
    }
}

/// A database of `kept` regions named `k0`, `k1`, ... (numbers 0 to `kept - 1`), each a
/// few bytes long, and closed: the next open has looked none of them up.
fn prepare_kept(dir: &std::path::Path, kept: usize) {
    let db = Database::open(dir).unwrap();
    for n in 0..kept {
        let (number, _) = db.create_region_if_needed(&format!("k{n}")).unwrap();
        assert_eq!(number, n);
        db.write_all_to_region(number.into(), &pattern(n as u64, len_of(n)))
            .unwrap();
    }
    db.close().unwrap();
}

/// `retain_regions` removes only regions whose name is not kept, also when the number
/// of a region it listed goes to a region created meanwhile under a kept name: a thread
/// makes `drop` (the only free number, past every kept region), removes it and creates
/// `keep` in its number, while another keeps calling `retain_regions` with every name
/// but `drop`. `keep` is never removed by anyone but its creator.
#[test]
fn retain_regions_never_removes_a_kept_region_created_in_a_listed_number() {
    const KEPT: usize = 20_000;
    let dir = tempfile::tempdir().unwrap();
    prepare_kept(dir.path(), KEPT);
    for round in 0..3 {
        let db = Database::open(dir.path()).unwrap();
        let mut names: HashSet<String> = (0..KEPT).map(|n| format!("k{n}")).collect();
        names.insert("keep".to_owned());
        let (stop, calls) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
        );
        let retainer = spawn_retainer(&db, names, &stop, &calls);
        let mut rng = support::Rng(round);
        let deadline = Instant::now() + Duration::from_millis(700);
        let mut cycles = 0u64;
        let mut lost = None;
        while Instant::now() < deadline && lost.is_none() {
            let (dropped, _) = db.create_region_if_needed("drop").unwrap();
            assert_eq!(dropped, KEPT, "round {round}: the only free number");
            // Some listing sees `drop`; then it goes, at some point of the retainer's
            // work (which may remove `drop` first: it is not kept).
            wait_a_little(&mut rng);
            db.remove_region("drop".into()).unwrap();
            let (number, _) = db.create_region_if_needed("keep").unwrap();
            assert_eq!(number, KEPT, "round {round}");
            // Every listing that saw `drop` is done with.
            wait_for_calls(&calls, 2, deadline);
            if db.remove_region("keep".into()).unwrap().is_none() {
                lost = Some(cycles);
            }
            cycles += 1;
        }
        stop.store(true, Ordering::Relaxed);
        retainer.join().unwrap();
        let calls = calls.load(Ordering::Relaxed);
        if let Some(at) = lost {
            panic!(
                "round {round}: retain_regions removed `keep` (a kept name, created in the \
                 number of the `drop` it listed) after {at} cycles and {calls} calls"
            );
        }
        assert_eq!(db.regions().len(), KEPT, "round {round}");
        db.close().unwrap();
    }
}

/// `retain_regions` removes only regions whose name is not kept, also when a region it
/// listed under a name not kept is renamed to a kept one before it gets to it.
#[test]
fn retain_regions_never_removes_a_region_renamed_to_a_kept_name() {
    const KEPT: usize = 3000;
    let dir = tempfile::tempdir().unwrap();
    prepare_kept(dir.path(), KEPT);
    let db = Database::open(dir.path()).unwrap();
    let (number, _) = db.create_region_if_needed("drop").unwrap();
    db.write_all_to_region(number.into(), b"renamed back and forth")
        .unwrap();
    db.close().unwrap();
    for round in 0..3 {
        let db = Database::open(dir.path()).unwrap();
        let mut names: HashSet<String> = (0..KEPT).map(|n| format!("k{n}")).collect();
        names.insert("keep".to_owned());
        let (stop, calls) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
        );
        let retainer = spawn_retainer(&db, names, &stop, &calls);
        let mut rng = support::Rng(round);
        let deadline = Instant::now() + Duration::from_millis(700);
        let mut lost = None;
        let mut cycles = 0u64;
        while Instant::now() < deadline && lost.is_none() {
            // `drop` may be gone (removed while it had that name): made again.
            let (n, _) = db.create_region_if_needed("drop").unwrap();
            wait_a_little(&mut rng);
            match db.rename_region(n.into(), "keep") {
                Ok(()) => {}
                Err(Error::UnknownRegion { .. }) => continue,
                Err(e) => panic!("{e}"),
            }
            wait_for_calls(&calls, 2, deadline);
            match db.rename_region("keep".into(), "drop") {
                Ok(()) => {}
                Err(Error::UnknownRegion { .. }) => lost = Some(cycles),
                Err(e) => panic!("{e}"),
            }
            cycles += 1;
        }
        stop.store(true, Ordering::Relaxed);
        retainer.join().unwrap();
        assert!(
            lost.is_none(),
            "round {round}: retain_regions removed a region named `keep`, kept, after {} \
             cycles",
            lost.unwrap()
        );
        // `drop` may have been removed as `drop`: made again for the next round.
        db.create_region_if_needed("drop").unwrap();
        db.close().unwrap();
    }
}

/// A thread calling `retain_regions(names)` until `stop`, counting its calls.
fn spawn_retainer(
    db: &Database,
    names: HashSet<String>,
    stop: &Arc<AtomicBool>,
    calls: &Arc<AtomicU64>,
) -> thread::JoinHandle<()> {
    let (db, stop, calls) = (db.clone(), stop.clone(), calls.clone());
    thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            db.retain_regions(names.clone()).unwrap();
            calls.fetch_add(1, Ordering::Release);
        }
    })
}

/// Up to 6 ms, at random (about a call of the retainer).
fn wait_a_little(rng: &mut support::Rng) {
    let until = Instant::now() + Duration::from_micros(rng.below(6000));
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}

/// Until `more` further calls of the retainer are done (or the deadline is past).
fn wait_for_calls(calls: &AtomicU64, more: u64, deadline: Instant) {
    let from = calls.load(Ordering::Acquire);
    while calls.load(Ordering::Acquire) < from + more && Instant::now() < deadline {
        thread::yield_now();
    }
}

/// `regions()` reads the regions in number order, each no earlier than the one before:
/// a listing that shows region `M` renamed to `s{i}` (a rename made after removing the
/// regions `M + 1` to `i`, never looked up before) lists none of those regions. Region
/// `M` and those below it are looked up first (their states made), the others not.
#[test]
fn a_listing_never_shows_a_region_removed_before_a_rename_it_shows() {
    const N: usize = 8000;
    const M: usize = 4000;
    for round in 0..6 {
        let dir = tempfile::tempdir().unwrap();
        prepare_kept(dir.path(), N);
        let db = Database::open(dir.path()).unwrap();
        for m in 0..=M {
            db.get_region(Identifier::Number(m)).unwrap();
        }
        let changer = {
            let db = db.clone();
            thread::spawn(move || {
                for i in M + 1..N {
                    db.remove_region(Identifier::Number(i)).unwrap().unwrap();
                    db.rename_region(Identifier::Number(M), &format!("s{i}"))
                        .unwrap();
                }
            })
        };
        while !changer.is_finished() {
            let listed = db.regions();
            let renamed = &listed[M];
            assert_eq!(renamed.number(), M);
            if let Some(k) = renamed.name().strip_prefix('s') {
                let k: usize = k.parse().unwrap();
                let stale = listed.iter().find(|r| (M + 1..=k).contains(&r.number()));
                assert!(
                    stale.is_none(),
                    "round {round}: region {M} listed as {:?}, made after the removal of \
                     {} to {k}, and {stale:?} listed too",
                    renamed.name(),
                    M + 1
                );
            }
        }
        changer.join().unwrap();
        let listed: Vec<usize> = db.regions().iter().map(|r| r.number()).collect();
        assert_eq!(listed, (0..=M).collect::<Vec<_>>());
    }
}
