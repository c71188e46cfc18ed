//! One test per way a damaged or crafted file used to be opened silently, crash the
//! process or take quadratic time. They use only what every build offers (opening,
//! flushing, `check`), and damage files without knowing their layout beyond what every
//! format version shares, so the same tests run against the build before the fixes and
//! fail there.
//!
//! Crafted records are framed for the build's format version: the record body is the
//! same in versions 1 and 2, only the length in the record head went from 4 to 8 bytes.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use seqdb::{Database, Error};

const PAGE: usize = 4096;

/// A database of eight regions, each created and filled by its own flush, so that its
/// log holds a checkpoint and at least eight deltas.
fn eight_regions(dir: &Path) {
    let db = Database::open(dir).unwrap();
    for i in 0..8u8 {
        let name = format!("region-{i}");
        db.create_region_if_needed(&name).unwrap();
        db.write_all_to_region(name.as_str().into(), &vec![i; 5000 + usize::from(i)])
            .unwrap();
        db.flush().unwrap();
    }
}

/// Open read-only on another thread, giving up after `limit` (a hang is an error too).
fn open_within(dir: &Path, limit: Duration) -> Result<Result<usize, String>, String> {
    let dir = dir.to_owned();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let outcome = Database::open_read_only(&dir)
            .map(|db| db.regions().len())
            .map_err(|e| e.to_string());
        let _ = tx.send(outcome);
    });
    rx.recv_timeout(limit)
        .map_err(|_| format!("open did not return within {limit:?}"))
}

/// The offsets of the records in a metadata file, found by their magic on page
/// boundaries (every format version starts records so).
fn record_offsets(meta: &[u8]) -> Vec<usize> {
    (PAGE..meta.len())
        .step_by(PAGE)
        .filter(|&at| meta[at..].starts_with(b"SQDR"))
        .collect()
}

/// A record around `body`, framed for this build's format version.
fn frame(body: &[u8]) -> Vec<u8> {
    let len: Vec<u8> = if seqdb::FORMAT_VERSION == 1 {
        (body.len() as u32).to_le_bytes().to_vec()
    } else {
        (body.len() as u64).to_le_bytes().to_vec()
    };
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&len);
    hasher.update(body);
    let mut out = b"SQDR".to_vec();
    out.extend_from_slice(&len);
    out.extend_from_slice(&hasher.finalize().to_le_bytes());
    out.extend_from_slice(body);
    out.resize(out.len().div_ceil(PAGE) * PAGE, 0);
    out
}

/// A checkpoint body: generation, kind 1, number bound, no removals, the entries
/// (number, start, reserved, len, name).
fn checkpoint_body(
    generation: u64,
    next_number: u64,
    entries: &[(u64, u64, u64, u64, &[u8])],
) -> Vec<u8> {
    let mut body = generation.to_le_bytes().to_vec();
    body.push(1);
    body.extend_from_slice(&next_number.to_le_bytes());
    body.extend_from_slice(&0u32.to_le_bytes());
    body.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for (number, start, reserved, len, name) in entries {
        for value in [number, start, reserved, len] {
            body.extend_from_slice(&value.to_le_bytes());
        }
        body.extend_from_slice(&(name.len() as u16).to_le_bytes());
        body.extend_from_slice(name);
    }
    body
}

/// Replace the log of the database in `dir` by one crafted checkpoint, keeping the
/// metadata file's header page.
fn craft_log(dir: &Path, body: &[u8]) {
    let meta = dir.join("meta");
    let mut bytes = std::fs::read(&meta).unwrap();
    bytes.truncate(PAGE);
    bytes.extend(frame(body));
    std::fs::write(&meta, bytes).unwrap();
}

#[test]
fn a_huge_sparse_metadata_file_is_an_error_not_an_abort() {
    let dir = tempfile::tempdir().unwrap();
    eight_regions(dir.path());
    std::fs::File::options()
        .write(true)
        .open(dir.path().join("meta"))
        .unwrap()
        .set_len(2 << 40)
        .unwrap();
    let start = Instant::now();
    let opened = open_within(dir.path(), Duration::from_secs(30)).unwrap();
    let message = opened.expect_err("a 2 TiB metadata file is no log this build wrote");
    assert!(message.contains("meta"), "{message}");
    let report = seqdb::check(dir.path()).unwrap();
    assert!(!report.is_healthy(), "{report}");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn a_metadata_file_cut_short_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    eight_regions(dir.path());
    let meta = std::fs::read(dir.path().join("meta")).unwrap();
    let records = record_offsets(&meta);
    assert!(records.len() >= 9, "{records:?}");
    // Half the log: most commits gone, which no crash does.
    let end = support::log_end(&dir.path().join("meta")) as usize;
    std::fs::write(dir.path().join("meta"), &meta[..end / 2]).unwrap();
    let error = Database::open_read_only(dir.path()).unwrap_err();
    assert!(matches!(error, Error::Corrupt { .. }), "{error}");
    // At every record boundary but the last one's: more than a torn record is gone.
    for &cut in &records[1..records.len() - 1] {
        std::fs::write(dir.path().join("meta"), &meta[..cut]).unwrap();
        let opened = Database::open_read_only(dir.path());
        assert!(
            matches!(opened, Err(Error::Corrupt { offset, .. }) if offset == cut as u64),
            "cut at {cut}: {:?}",
            opened.map(|db| db.regions().len())
        );
    }
    // The last record torn: what a crash leaves, so the previous commit opens.
    let last = *records.last().unwrap();
    std::fs::write(dir.path().join("meta"), &meta[..last + 30]).unwrap();
    let db = Database::open_read_only(dir.path()).unwrap();
    assert_eq!(db.regions().len(), 7);
}

#[test]
fn a_damaged_record_before_valid_ones_is_refused_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    eight_regions(dir.path());
    let meta_path = dir.path().join("meta");
    let mut meta = std::fs::read(&meta_path).unwrap();
    let records = record_offsets(&meta);
    let middle = records[records.len() / 2];
    meta[middle + 20] ^= 0x01;
    std::fs::write(&meta_path, &meta).unwrap();
    // Check calls it damage, and open refuses exactly that.
    let report = seqdb::check(dir.path()).unwrap();
    assert!(!report.is_healthy(), "{report}");
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains(&format!("offset {middle}"))),
        "{report}"
    );
    assert!(Database::open_read_only(dir.path()).is_err());
    // A read-write open must not cut the valid records after the damage away.
    assert!(Database::open(dir.path()).is_err());
    assert_eq!(
        std::fs::read(&meta_path).unwrap(),
        meta,
        "the evidence is kept"
    );
}

#[test]
fn zeroed_random_and_foreign_data_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    eight_regions(dir.path());
    let other = tempfile::tempdir().unwrap();
    eight_regions(other.path());
    let data_path = dir.path().join("data");
    let data = std::fs::read(&data_path).unwrap();
    let mut rng = support::Rng(7);
    let replacements = [
        ("zeros", vec![0u8; data.len()]),
        ("random bytes", rng.bytes(data.len())),
        (
            "another database's data file",
            std::fs::read(other.path().join("data")).unwrap(),
        ),
    ];
    for (what, bytes) in replacements {
        std::fs::write(&data_path, &bytes).unwrap();
        let opened = Database::open_read_only(dir.path());
        assert!(
            opened.is_err(),
            "a data file of {what} opened with {} regions",
            opened.map(|db| db.regions().len()).unwrap_or(0)
        );
        let report = seqdb::check(dir.path()).unwrap();
        assert!(!report.is_healthy(), "{what}: {report}");
    }
}

#[test]
fn a_crafted_generation_never_loses_later_flushes() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Database::open(dir.path()).unwrap();
        db.create_region_if_needed("a").unwrap();
        db.write_all_to_region("a".into(), &[9; 10]).unwrap();
        db.flush().unwrap();
    }
    let db = Database::open_read_only(dir.path()).unwrap();
    let region = db.regions().remove(0);
    drop(db);
    let name: &[u8] = b"a";
    craft_log(
        dir.path(),
        &checkpoint_body(
            u64::MAX,
            1,
            &[(0, region.start(), region.reserved(), 10, name)],
        ),
    );
    let Ok(db) = Database::open(dir.path()) else {
        return; // refusing the generation is one of the two right answers
    };
    for round in 0..3u8 {
        db.write_all_to_region("a".into(), &[round]).unwrap();
        if db.flush().is_err() {
            return; // so is refusing to go past it
        }
    }
    drop(db);
    let db = Database::open(dir.path()).unwrap();
    let bytes = db
        .create_region_reader("a".into())
        .unwrap()
        .read_all()
        .to_vec();
    assert_eq!(
        &bytes[10..],
        [0, 1, 2],
        "three flushes returned Ok and were lost"
    );
}

#[test]
fn names_longer_than_the_bound_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    for len in [1025, 4096, 65_535] {
        assert!(
            matches!(
                db.create_region_if_needed(&"n".repeat(len)),
                Err(Error::NameTooLong { .. })
            ),
            "a name of {len} bytes"
        );
    }
}

#[test]
fn crafted_region_numbers_do_not_make_open_quadratic() {
    let dir = tempfile::tempdir().unwrap();
    drop(Database::open(dir.path()).unwrap());
    // Numbers i * m^-1 (mod 2^64) for the multiplier m of a multiply-and-rotate hash all
    // land in one bucket of a table hashed that way.
    let m: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut inverse: u64 = 1;
    for _ in 0..7 {
        inverse = inverse.wrapping_mul(2u64.wrapping_sub(m.wrapping_mul(inverse)));
    }
    let names: Vec<Vec<u8>> = (0..150_000u64)
        .map(|i| format!("r{i}").into_bytes())
        .collect();
    let entries: Vec<(u64, u64, u64, u64, &[u8])> = (0..150_000u64)
        .map(|i| {
            (
                (i + 1).wrapping_mul(inverse),
                4096 * (i + 1),
                4096,
                0,
                names[i as usize].as_slice(),
            )
        })
        .collect();
    craft_log(dir.path(), &checkpoint_body(1, u64::MAX, &entries));
    let start = Instant::now();
    let opened = open_within(dir.path(), Duration::from_secs(20)).unwrap();
    assert!(opened.is_err(), "numbers beyond the bound were accepted");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "open took {:?}",
        start.elapsed()
    );
}
