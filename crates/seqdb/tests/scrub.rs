//! The data scrub (`seqdb::check_data`): a healthy database scrubs clean after every
//! kind of change, and damage to a region's bytes in the data file is named, region and
//! range, whether one byte, a page or the whole region.

mod support;

use std::path::Path;

use seqdb::{DamagedRange, Database};
use support::Rng;

const CHUNK: u64 = 64 * 1024;

fn scrub(path: &Path) -> seqdb::CheckReport {
    let mut last = (0, 0);
    let report = seqdb::check_data(path, |done, total| last = (done, total)).unwrap();
    assert!(report.data_checked, "{report}");
    assert_eq!(last.0, last.1, "progress reaches the total");
    report
}

/// Every kind of change, at random, with flushes, compaction, punching and reopening in
/// between; after each close the scrub finds nothing.
#[test]
fn a_healthy_database_scrubs_clean_after_every_kind_of_write() {
    for seed in support::seeds(7000, 3) {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = Rng(seed);
        let mut db = Database::open(dir.path()).unwrap();
        let names = ["a", "b", "c", "d", "e"];
        for step in 0..400 {
            let name = *rng.pick(&names);
            let len = db.get_region(name.into()).map_or(0, |r| r.len());
            // A reader held across the change makes a write inside its view copy the
            // region first.
            let held = if rng.one_in(3) {
                db.create_region_reader(name.into()).ok()
            } else {
                None
            };
            match rng.below(12) {
                0..=3 => {
                    db.create_region_if_needed(name).unwrap();
                    let n = *rng.pick(&[1usize, 8, 100, 5000, 70_000, 300_000]);
                    db.write_all_to_region(name.into(), &rng.bytes(n)).unwrap();
                }
                4 if len > 0 => {
                    let at = rng.below(len);
                    let n = rng.range(1, 20_000) as usize;
                    db.write_all_to_region_at(name.into(), &rng.bytes(n), at)
                        .unwrap();
                }
                5 if len > 0 => db.truncate_region(name.into(), rng.below(len)).unwrap(),
                6 if len > 0 => {
                    let at = rng.below(len);
                    db.truncate_write_all_to_region(name.into(), at, &rng.bytes(3000))
                        .unwrap();
                }
                7 => {
                    let _ = db.remove_region(name.into());
                }
                8 => db.flush().unwrap(),
                9 => {
                    db.compact().unwrap();
                }
                10 => db.flush_then_punch().unwrap(),
                _ => {
                    drop(held);
                    db.close().unwrap();
                    let report = scrub(dir.path());
                    assert!(report.is_healthy(), "seed {seed} step {step}: {report}");
                    db = Database::open(dir.path()).unwrap();
                }
            }
        }
        db.close().unwrap();
        let report = scrub(dir.path());
        assert!(report.is_healthy(), "seed {seed}: {report}");
    }
}

/// A truncation under a reader copies the region (copy-on-write); what is appended
/// after it replaces bytes the checksums covered, and they must follow.
#[test]
fn a_truncation_under_a_reader_keeps_the_checksums_right() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    db.create_region_if_needed("r").unwrap();
    db.write_all_to_region("r".into(), &vec![b'a'; 100_000])
        .unwrap();
    db.flush().unwrap();
    let reader = db.create_region_reader("r".into()).unwrap();
    db.truncate_region("r".into(), 10).unwrap();
    db.write_all_to_region("r".into(), &vec![b'b'; 99_990])
        .unwrap();
    db.flush().unwrap();
    assert_eq!(reader.read_all()[10], b'a');
    drop(reader);
    db.close().unwrap();
    let report = scrub(dir.path());
    assert!(report.is_healthy(), "{report}");
}

/// A database of three regions, closed; returns each region's start in the data file.
fn three_regions(path: &Path) -> Vec<(String, u64, u64)> {
    let db = Database::open(path).unwrap();
    let mut rng = Rng(42);
    for (name, len) in [
        ("small", 100usize),
        ("big", 5 * CHUNK as usize + 123),
        ("mid", 70_000),
    ] {
        db.create_region_if_needed(name).unwrap();
        db.write_all_to_region(name.into(), &rng.bytes(len))
            .unwrap();
    }
    db.flush().unwrap();
    let regions = db
        .regions()
        .iter()
        .map(|r| (r.name().to_owned(), r.start(), r.len()))
        .collect();
    db.close().unwrap();
    regions
}

fn damage(path: &Path, at: u64, f: &dyn Fn(&mut [u8]), len: u64) {
    let data = path.join("data");
    let mut bytes = std::fs::read(&data).unwrap();
    f(&mut bytes[at as usize..(at + len) as usize]);
    std::fs::write(&data, bytes).unwrap();
}

fn named(report: &seqdb::CheckReport) -> Vec<(String, u64, u64)> {
    report
        .damaged
        .iter()
        .map(|d: &DamagedRange| (d.region.clone(), d.offset, d.len))
        .collect()
}

#[test]
fn one_flipped_byte_is_named_with_its_region_and_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let regions = three_regions(dir.path());
    let (_, start, _) = regions.iter().find(|r| r.0 == "big").unwrap().clone();
    assert!(scrub(dir.path()).is_healthy());
    damage(dir.path(), start + 2 * CHUNK + 777, &|b| b[0] ^= 0x10, 1);
    let report = scrub(dir.path());
    assert!(!report.is_healthy());
    assert_eq!(named(&report), [("big".to_owned(), 2 * CHUNK, CHUNK)]);
    assert!(report.problems[0].contains("\"big\""), "{report}");
    assert_eq!(report.damaged[0].file_offset, start + 2 * CHUNK);
}

#[test]
fn a_zeroed_page_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let regions = three_regions(dir.path());
    let (_, start, _) = regions.iter().find(|r| r.0 == "mid").unwrap().clone();
    // The page that holds the region's last bytes (its second, short chunk).
    damage(dir.path(), start + 16 * 4096, &|b| b.fill(0), 4096);
    let report = scrub(dir.path());
    assert_eq!(named(&report), [("mid".to_owned(), CHUNK, 70_000 - CHUNK)]);
}

#[test]
fn a_whole_damaged_region_is_named_as_one_range() {
    let dir = tempfile::tempdir().unwrap();
    let regions = three_regions(dir.path());
    let (_, start, len) = regions.iter().find(|r| r.0 == "big").unwrap().clone();
    damage(dir.path(), start, &|b| b.fill(0xff), len);
    let report = scrub(dir.path());
    assert_eq!(named(&report), [("big".to_owned(), 0, len)]);
    // The other regions are not named.
    let (_, small, _) = regions.iter().find(|r| r.0 == "small").unwrap().clone();
    damage(dir.path(), small, &|b| b[99] ^= 1, 100);
    let report = scrub(dir.path());
    // Listed by region number.
    assert_eq!(
        named(&report),
        [("small".to_owned(), 0, 100), ("big".to_owned(), 0, len)]
    );
}

#[test]
fn checksums_take_far_less_than_one_percent_of_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    db.create_region_if_needed("bulk").unwrap();
    db.write_all_to_region("bulk".into(), &vec![3u8; 64 << 20])
        .unwrap();
    db.close().unwrap();
    let meta = support::log_end(&dir.path().join("meta"));
    // One 4-byte checksum per 64 KiB: 4 KiB for 64 MiB, in a log of a few pages (the
    // header, the first checkpoint, the commit).
    assert!(meta < (64 << 20) / 100, "metadata of {meta} bytes");
    assert!(meta <= 5 * 4096, "metadata of {meta} bytes");
}
