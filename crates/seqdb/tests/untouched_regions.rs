//! Regions not looked up since open (a region's state is made on its first lookup):
//! maintenance, statistics, listings and closing treat them as the regions they are,
//! alone and while other threads look them up, write, remove, rename and create regions.

use seqdb::Database;

/// A region's reservation beyond its length that an earlier handle left allocated (here
/// a truncation it never punched) is given back by the next handle's punch, even when
/// nothing looked the region up.
#[test]
fn punching_reaches_regions_never_looked_up() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let (n, _) = db.create_region_if_needed("big").unwrap();
    db.write_all_to_region(n.into(), &vec![7u8; 4 << 20])
        .unwrap();
    db.flush().unwrap();
    db.truncate_region(n.into(), 4096).unwrap();
    db.close().unwrap();

    // Same handle history, but the region is looked up before punching: the baseline.
    let copy = tempfile::tempdir().unwrap();
    for file in std::fs::read_dir(dir.path()).unwrap() {
        let file = file.unwrap();
        std::fs::copy(file.path(), copy.path().join(file.file_name())).unwrap();
    }

    let db = Database::open(dir.path()).unwrap();
    let before = db.stats().unwrap().allocated_bytes;
    let given = db.punch_holes().unwrap();
    let after = db.stats().unwrap().allocated_bytes;

    let looked_up = Database::open(copy.path()).unwrap();
    looked_up.get_region(n.into()).unwrap();
    let looked_up_before = looked_up.stats().unwrap().allocated_bytes;
    let looked_up_given = looked_up.punch_holes().unwrap();
    if looked_up_given == 0 {
        eprintln!("note: this file system did not give space back on punch");
        return;
    }
    assert!(
        looked_up_given >= 3 << 20,
        "{looked_up_given} of {looked_up_before}"
    );
    assert!(
        given >= 3 << 20,
        "a region never looked up kept its reservation's tail: {given} given back, \
         {before} -> {after} allocated (looked up: {looked_up_given})"
    );
    assert_eq!(db.get_region(n.into()).unwrap().len(), 4096);
}

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use seqdb::{Error, Identifier};
use support::{Rng, State, diff_states, read_state};

/// Byte `i` of a region whose first 8 bytes hold `seed`: every region's bytes follow
/// from its first eight, so any thread can check any region it reads.
fn byte(seed: u64, i: u64) -> u8 {
    (seed
        .wrapping_mul(0x9E37_79B9)
        .wrapping_add(i.wrapping_mul(31))
        % 251) as u8
}

fn bytes(seed: u64, from: u64, to: u64) -> Vec<u8> {
    if from == 0 {
        let mut out = seed.to_le_bytes()[..to.min(8) as usize].to_vec();
        out.extend((8..to.max(8)).map(|i| byte(seed, i)));
        out
    } else {
        assert!(from >= 8);
        (from..to).map(|i| byte(seed, i)).collect()
    }
}

/// Whether `got` is a region's bytes as this file writes them: empty (just created), or
/// a seed and the bytes that follow from it.
fn well_formed(got: &[u8]) -> Result<(), String> {
    if got.is_empty() {
        return Ok(());
    }
    if got.len() < 8 {
        return Err(format!("{} bytes, shorter than a seed", got.len()));
    }
    let seed = u64::from_le_bytes(got[..8].try_into().unwrap());
    match (8..got.len()).find(|&i| got[i] != byte(seed, i as u64)) {
        None => Ok(()),
        Some(i) => Err(format!(
            "byte {i} of {} is {} where seed {seed:#x} has {}",
            got.len(),
            got[i],
            byte(seed, i as u64)
        )),
    }
}

/// The bytes of the region `id`, checked through a reader; `None` when there is none.
fn read_checked(db: &Database, id: Identifier) -> Option<Vec<u8>> {
    let reader = match db.create_region_reader(id.clone()) {
        Ok(reader) => reader,
        Err(Error::UnknownRegion { .. }) => return None,
        Err(e) => panic!("reader of {id}: {e}"),
    };
    let got = reader.read_all().to_vec();
    if let Err(e) = well_formed(&got) {
        panic!("reader of {id} ({:?}): {e}", reader.region().name());
    }
    assert_eq!(got.len() as u64, reader.len());
    Some(got)
}

/// One region an owner thread keeps: the name it has now, its seed and its length.
#[derive(Clone, Debug)]
struct Owned {
    name: String,
    seed: u64,
    len: u64,
}

const OWNERS: usize = 3;
const PER_OWNER: usize = 12;

fn base_name(owner: usize, k: usize) -> String {
    format!("o{owner}-{k}")
}

/// Every owner's regions: bytes past 40 KiB cut off, so that each reservation is longer
/// than its region (what a punch gives back).
fn prepare(dir: &std::path::Path) -> Vec<Vec<Owned>> {
    let db = Database::open(dir).unwrap();
    let mut rng = Rng(7);
    let mut owned = Vec::new();
    for owner in 0..OWNERS {
        let mut regions = Vec::new();
        for k in 0..PER_OWNER {
            let name = base_name(owner, k);
            let (n, _) = db.create_region_if_needed(&name).unwrap();
            let seed = rng.next();
            db.write_all_to_region(n.into(), &bytes(seed, 0, 40_000))
                .unwrap();
            let len = rng.range(8, 20_000);
            db.flush().unwrap();
            db.truncate_region(n.into(), len).unwrap();
            regions.push(Owned { name, seed, len });
        }
        owned.push(regions);
    }
    db.close().unwrap();
    owned
}

fn id_of(region: &Owned) -> Identifier {
    Identifier::from(region.name.as_str())
}

/// One owner's step on one of its regions; checks the region through a reader after it.
fn owner_step(db: &Database, rng: &mut Rng, owner: usize, k: usize, region: &mut Owned) {
    match rng.below(10) {
        0..=2 => {
            let add = if rng.one_in(8) {
                rng.range(16_384, 90_000)
            } else {
                rng.range(1, 3000)
            };
            db.write_all_to_region(
                id_of(region),
                &bytes(region.seed, region.len, region.len + add),
            )
            .unwrap();
            region.len += add;
        }
        3 => {
            let len = rng.range(8, region.len);
            db.truncate_region(id_of(region), len).unwrap();
            region.len = len;
        }
        4 => {
            // The same bytes again (in place, or copied when a reader views them).
            let at = rng.range(8, region.len);
            let to = (at + rng.range(0, 5000)).min(region.len);
            db.write_all_to_region_at(id_of(region), &bytes(region.seed, at, to), at)
                .unwrap();
        }
        5 => {
            // Removed and made again: its number goes free, and a new region of any
            // thread may take it.
            let last = db
                .remove_region(id_of(region))
                .unwrap()
                .expect("owned region");
            assert_eq!(last.len(), region.len, "{}", region.name);
            assert!(
                read_checked(db, id_of(region)).is_none(),
                "{} removed",
                region.name
            );
            let (n, _) = db.create_region_if_needed(&region.name).unwrap();
            region.seed = rng.next();
            region.len = rng.range(8, 30_000);
            db.write_all_to_region(n.into(), &bytes(region.seed, 0, region.len))
                .unwrap();
        }
        6 => {
            let base = base_name(owner, k);
            let new = if region.name == base {
                format!("{base}r")
            } else {
                base
            };
            db.rename_region(id_of(region), &new).unwrap();
            assert!(
                read_checked(db, id_of(region)).is_none(),
                "{} renamed",
                region.name
            );
            region.name = new;
        }
        _ => {}
    }
    let got = read_checked(db, id_of(region)).unwrap_or_else(|| panic!("{} is gone", region.name));
    assert_eq!(got.len() as u64, region.len, "{}", region.name);
    assert_eq!(
        got[..8],
        region.seed.to_le_bytes(),
        "{}: another region's bytes",
        region.name
    );
}

fn expected(owned: &[Vec<Owned>]) -> State {
    owned
        .iter()
        .flatten()
        .map(|r| (r.name.clone(), bytes(r.seed, 0, r.len)))
        .collect()
}

/// Several rounds, each on a handle just opened (every region never looked up): owners
/// append, truncate, overwrite, remove and make again (taking freed numbers), and rename
/// their regions; lookers look up every number, by `get_region`, readers and
/// `regions()`, checking the bytes they see; a maintainer flushes, punches, compacts and
/// takes statistics. After each round the handle is closed (or dropped) and every region
/// reopens exactly as its owner left it.
#[test]
fn regions_just_opened_under_lookups_removals_renames_and_maintenance() {
    let dir = tempfile::tempdir().unwrap();
    let mut owned = prepare(dir.path());
    for round in 0..4u64 {
        let db = Database::open(dir.path()).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let start = Arc::new(Barrier::new(OWNERS + 3));
        let total = OWNERS * PER_OWNER;
        let mut owners = Vec::new();
        for (owner, regions) in owned.drain(..).enumerate() {
            let (db, stop, start) = (db.clone(), stop.clone(), start.clone());
            owners.push(thread::spawn(move || {
                let mut regions = regions;
                let mut rng = Rng(round * 100 + owner as u64);
                start.wait();
                while !stop.load(Ordering::Relaxed) {
                    let k = rng.below(PER_OWNER as u64) as usize;
                    owner_step(&db, &mut rng, owner, k, &mut regions[k]);
                    // Pauses, in which compaction can lock every region.
                    if rng.one_in(4) {
                        thread::sleep(Duration::from_millis(1));
                    }
                }
                regions
            }));
        }
        let mut others = Vec::new();
        for looker in 0..2u64 {
            let (db, stop, start) = (db.clone(), stop.clone(), start.clone());
            others.push(thread::spawn(move || {
                let mut rng = Rng(round * 100 + 50 + looker);
                start.wait();
                while !stop.load(Ordering::Relaxed) {
                    let n = rng.below(total as u64 + 4) as usize;
                    match rng.below(4) {
                        0 => {
                            if let Ok(region) = db.get_region(n.into()) {
                                assert_eq!(region.number(), n);
                                assert!(region.name().starts_with('o'), "{region:?}");
                            }
                        }
                        1 => {
                            read_checked(&db, n.into());
                        }
                        2 => {
                            let regions = db.regions();
                            assert!(regions.len() <= total, "{} regions", regions.len());
                            assert!(regions.windows(2).all(|w| w[0].number() < w[1].number()));
                        }
                        _ => {
                            let stats = db.stats().unwrap();
                            assert!(stats.regions as usize <= total, "{stats:?}");
                            assert!(stats.live_bytes <= stats.reserved_bytes, "{stats:?}");
                        }
                    }
                }
            }));
        }
        {
            let (db, stop, start) = (db.clone(), stop.clone(), start.clone());
            others.push(thread::spawn(move || {
                start.wait();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    match (i + round) % 5 {
                        0 => db.flush().unwrap(),
                        1 => {
                            db.punch_holes().unwrap();
                        }
                        2 => db.flush_then_punch().unwrap(),
                        3 => match db.compact() {
                            Ok(()) | Err(Error::Busy { .. }) => {}
                            Err(e) => panic!("compact: {e}"),
                        },
                        _ => {
                            db.stats().unwrap();
                        }
                    }
                    i += 1;
                }
            }));
        }
        thread::sleep(Duration::from_millis(600));
        stop.store(true, Ordering::Relaxed);
        owned = owners.into_iter().map(|h| h.join().unwrap()).collect();
        for handle in others {
            handle.join().unwrap();
        }
        let want = expected(&owned);
        let stats = db.stats().unwrap();
        assert_eq!(stats.regions as usize, total, "round {round}");
        let live: usize = want.values().map(Vec::len).sum();
        assert_eq!(stats.live_bytes as usize, live, "round {round}");
        if let Some(diff) = diff_states(&read_state(&db).unwrap(), &want) {
            panic!("round {round}, before closing: {diff}");
        }
        if round % 2 == 0 {
            db.close().unwrap();
        } else {
            drop(db);
        }
        let db = Database::open(dir.path()).unwrap();
        if let Some(diff) = diff_states(&read_state(&db).unwrap(), &want) {
            panic!("round {round}, reopened: {diff}");
        }
    }
}

/// A punch on a handle just opened, whose regions all have space past their length,
/// racing first lookups that write into that space (appends large enough to go straight
/// to the file, and small ones flushed at once): no written byte is punched away.
#[test]
fn a_punch_racing_first_writes_into_reservations_keeps_every_byte() {
    const REGIONS: usize = 300;
    let dir = tempfile::tempdir().unwrap();
    let mut seeds = Vec::new();
    {
        let db = Database::open(dir.path()).unwrap();
        for r in 0..REGIONS {
            let (n, _) = db.create_region_if_needed(&format!("p{r}")).unwrap();
            let seed = r as u64 * 1_000_003;
            db.write_all_to_region(n.into(), &bytes(seed, 0, 120_000))
                .unwrap();
            db.flush().unwrap();
            db.truncate_region(n.into(), 8 + r as u64).unwrap();
            seeds.push((n, seed, 8 + r as u64));
        }
        db.close().unwrap();
    }
    for round in 0..4u64 {
        let db = Database::open(dir.path()).unwrap();
        let start = Arc::new(Barrier::new(3));
        let mut writers = Vec::new();
        for w in 0..2usize {
            let (db, start) = (db.clone(), start.clone());
            let mine: Vec<(usize, u64, u64)> = seeds
                .iter()
                .enumerate()
                .filter(|(r, _)| r % 2 == w)
                .map(|(_, s)| *s)
                .collect();
            writers.push(thread::spawn(move || {
                let mut mine = mine;
                // Half of the handle's regions in order, the other writer's half from the end.
                if (w as u64 + round) % 2 == 1 {
                    mine.reverse();
                }
                start.wait();
                for (n, seed, len) in &mut mine {
                    let add = if (*n as u64 + round).is_multiple_of(3) {
                        20_000
                    } else {
                        3_000
                    };
                    db.write_all_to_region((*n).into(), &bytes(*seed, *len, *len + add))
                        .unwrap();
                    *len += add;
                    if add < 16_384 {
                        // Into the file now, past the length open found.
                        db.create_region_reader((*n).into()).unwrap();
                    }
                }
                mine
            }));
        }
        start.wait();
        db.punch_holes().unwrap();
        db.punch_holes().unwrap();
        let mut lens = std::collections::BTreeMap::new();
        for handle in writers {
            for (n, seed, len) in handle.join().unwrap() {
                lens.insert(n, (seed, len));
            }
        }
        for (n, (seed, len)) in &lens {
            let got = read_checked(&db, (*n).into()).unwrap();
            assert!(
                got == bytes(*seed, 0, *len),
                "round {round}: region {n} lost bytes: {:?}",
                well_formed(&got)
            );
        }
        db.flush_then_punch().unwrap();
        drop(db);
        let db = Database::open(dir.path()).unwrap();
        for (n, (seed, len)) in &lens {
            let got = read_checked(&db, (*n).into()).unwrap();
            assert!(got == bytes(*seed, 0, *len), "round {round}: region {n}");
        }
        seeds = lens.into_iter().map(|(n, (s, l))| (n, s, l)).collect();
        // Truncated again (and closed unpunched): the next round finds room again.
        for (n, _, len) in &mut seeds {
            *len = 8 + (*n as u64 % 100);
            db.truncate_region((*n).into(), *len).unwrap();
        }
        db.close().unwrap();
    }
}

/// `stats()` counts a region never looked up as open found it, and the same once its
/// state is made: taken while other threads make the states (lookups, readers, listings,
/// a flush) and change nothing, it never moves; and it agrees with `regions()`.
#[test]
fn statistics_stay_put_while_states_are_made() {
    const REGIONS: usize = 2000;
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Database::open(dir.path()).unwrap();
        let mut rng = Rng(3);
        for r in 0..REGIONS {
            let (n, _) = db.create_region_if_needed(&format!("s{r}")).unwrap();
            let len = match r % 4 {
                0 => 0,
                1 => rng.range(8, 100),
                2 => rng.range(8, 9000),
                _ => rng.range(8, 70_000),
            };
            db.write_all_to_region(n.into(), &bytes(r as u64, 0, len))
                .unwrap();
        }
        db.close().unwrap();
    }
    for round in 0..3u64 {
        let db = Database::open(dir.path()).unwrap();
        let want = db.stats().unwrap();
        assert_eq!(want.regions as usize, REGIONS);
        let stop = Arc::new(AtomicBool::new(false));
        let start = Arc::new(Barrier::new(4));
        let mut lookers = Vec::new();
        for t in 0..3u64 {
            let (db, stop, start) = (db.clone(), stop.clone(), start.clone());
            lookers.push(thread::spawn(move || {
                let mut rng = Rng(round * 10 + t);
                start.wait();
                let mut n = rng.below(REGIONS as u64) as usize;
                while !stop.load(Ordering::Relaxed) {
                    match (t + round) % 3 {
                        0 => {
                            db.get_region(n.into()).unwrap();
                        }
                        1 => {
                            read_checked(&db, format!("s{n}").as_str().into()).unwrap();
                        }
                        _ if rng.one_in(200) => {
                            assert_eq!(db.regions().len(), REGIONS);
                            db.flush().unwrap();
                        }
                        _ => {
                            read_checked(&db, n.into()).unwrap();
                        }
                    }
                    n = (n + 1 + rng.below(3) as usize) % REGIONS;
                }
            }));
        }
        start.wait();
        let deadline = std::time::Instant::now() + Duration::from_millis(400);
        let mut taken = 0;
        while std::time::Instant::now() < deadline {
            let got = db.stats().unwrap();
            assert_eq!(
                (got.regions, got.live_bytes, got.reserved_bytes),
                (want.regions, want.live_bytes, want.reserved_bytes),
                "round {round}, after {taken} statistics"
            );
            taken += 1;
        }
        stop.store(true, Ordering::Relaxed);
        for handle in lookers {
            handle.join().unwrap();
        }
        let regions = db.regions();
        let live: u64 = regions.iter().map(|r| r.len()).sum();
        let reserved: u64 = regions.iter().map(|r| r.reserved()).sum();
        let got = db.stats().unwrap();
        assert_eq!(
            (got.regions, got.live_bytes, got.reserved_bytes),
            (regions.len() as u64, live, reserved),
            "round {round}"
        );
        assert_eq!(
            (got.live_bytes, got.reserved_bytes),
            (want.live_bytes, want.reserved_bytes)
        );
        drop(db);
    }
}

/// A read-only handle of this process, opened beside the writer, looks its regions up
/// for the first time (from several threads) only after the writer removed, made again,
/// appended to, compacted and punched them: it shows the bytes of the generation it
/// opened, and its statistics are those it had before any lookup.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[test]
fn a_read_only_handle_makes_states_of_its_generation_beside_a_changing_writer() {
    const REGIONS: usize = 60;
    let dir = tempfile::tempdir().unwrap();
    let writer = Database::open(dir.path()).unwrap();
    let mut want = State::new();
    for r in 0..REGIONS {
        let name = format!("g{r}");
        let (n, _) = writer.create_region_if_needed(&name).unwrap();
        let data = bytes(r as u64 + 1, 0, 500 + r as u64 * 997);
        writer.write_all_to_region(n.into(), &data).unwrap();
        want.insert(name, data);
    }
    writer.flush().unwrap();
    for round in 0..3u64 {
        let reader = Database::open_read_only(dir.path()).unwrap();
        let stats = reader.stats().unwrap();
        // The writer changes every region the reader has not looked up yet.
        for r in 0..REGIONS {
            let name = format!("g{r}");
            match (r as u64 + round) % 3 {
                0 => {
                    writer.remove_region(name.as_str().into()).unwrap();
                    let (n, _) = writer.create_region_if_needed(&name).unwrap();
                    let seed = 1000 * (round + 1) + r as u64;
                    writer
                        .write_all_to_region(n.into(), &bytes(seed, 0, 3000))
                        .unwrap();
                }
                1 => {
                    let len = writer.get_region(name.as_str().into()).unwrap().len();
                    let seed = u64::from_le_bytes(want[&name][..8].try_into().unwrap());
                    writer
                        .write_all_to_region(name.as_str().into(), &bytes(seed, len, len + 70_000))
                        .unwrap();
                }
                _ => {
                    writer.rename_region(name.as_str().into(), "tmp").unwrap();
                    writer.rename_region("tmp".into(), &name).unwrap();
                }
            }
            if r % 20 == 0 {
                writer.flush_then_punch().unwrap();
            }
        }
        writer.flush().unwrap();
        writer.compact().unwrap();
        writer.flush_then_punch().unwrap();
        let seen: Vec<State> = thread::scope(|scope| {
            let handles: Vec<_> = (0..3)
                .map(|t| {
                    let reader = &reader;
                    scope.spawn(move || {
                        let mut seen = State::new();
                        for k in 0..REGIONS {
                            let r = (k * 7 + t * 13) % REGIONS;
                            let id: Identifier = if t == 0 {
                                r.into()
                            } else {
                                format!("g{r}").as_str().into()
                            };
                            let got = read_checked(reader, id).unwrap();
                            seen.insert(format!("g{r}"), got);
                        }
                        seen
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for got in &seen {
            if let Some(diff) = diff_states(got, &want) {
                panic!("round {round}: the read-only handle: {diff}");
            }
        }
        let after = reader.stats().unwrap();
        assert_eq!(
            (after.regions, after.live_bytes, after.reserved_bytes),
            (stats.regions, stats.live_bytes, stats.reserved_bytes),
            "round {round}"
        );
        drop(reader);
        want = read_state(&writer).unwrap();
    }
}

/// A backup taken by a handle just opened, whose regions are looked up for the first time
/// by appending threads while the backup runs, holds each region as a prefix of what was
/// appended, at least as long as what was appended before it began.
#[test]
fn a_backup_of_regions_just_opened_while_they_are_first_appended_to() {
    const REGIONS: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    let (src, dest) = (dir.path().join("src"), dir.path().join("dest"));
    {
        let db = Database::open(&src).unwrap();
        for r in 0..REGIONS {
            let (n, _) = db.create_region_if_needed(&format!("b{r}")).unwrap();
            db.write_all_to_region(n.into(), &bytes(r as u64, 0, 5000))
                .unwrap();
        }
        db.close().unwrap();
    }
    for round in 0..3u64 {
        let db = Database::open(&src).unwrap();
        let start = Arc::new(Barrier::new(3));
        let appenders: Vec<_> = (0..2usize)
            .map(|w| {
                let (db, start) = (db.clone(), start.clone());
                thread::spawn(move || {
                    start.wait();
                    for k in 0..REGIONS {
                        let r = if w == 0 { k } else { REGIONS - 1 - k };
                        if r % 2 != w {
                            continue;
                        }
                        let name = format!("b{r}");
                        for _ in 0..4 {
                            let len = db.get_region(name.as_str().into()).unwrap().len();
                            db.write_all_to_region(
                                name.as_str().into(),
                                &bytes(r as u64, len, len + 1000),
                            )
                            .unwrap();
                        }
                    }
                })
            })
            .collect();
        start.wait();
        db.backup(&dest).unwrap();
        for handle in appenders {
            handle.join().unwrap();
        }
        let report = seqdb::check_data(&dest, |_, _| {}).unwrap();
        assert!(report.is_healthy() && report.data_checked, "{report}");
        let backup = read_state(&Database::open_read_only(&dest).unwrap()).unwrap();
        let now = read_state(&db).unwrap();
        assert_eq!(backup.len(), REGIONS, "round {round}");
        for (name, got) in &backup {
            let full = &now[name];
            assert!(
                got.len() >= 5000 + round as usize * 4000 && full.starts_with(got),
                "round {round}: {name} has {} bytes in the backup, {} now",
                got.len(),
                full.len()
            );
        }
        db.close().unwrap();
    }
}
