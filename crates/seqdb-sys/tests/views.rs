//! Views: zero-copy, pinned, valid across growth and new mappings.

use std::path::Path;

use quickcheck::{Arbitrary, Gen, QuickCheck};
use seqdb_sys::{DataFile, Error, FileOptions, LockedFile, View};

fn data_file(dir: &Path, min_map_len: u64) -> DataFile {
    let file = LockedFile::open(&dir.join("data"), &FileOptions::read_write()).expect("open");
    DataFile::with_min_map_len(file, min_map_len).expect("data file")
}

fn is_busy<T: std::fmt::Debug>(result: seqdb_sys::Result<T>) -> bool {
    matches!(result, Err(Error::RangeBusy { .. }))
}

#[test]
fn types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<DataFile>();
    check::<View>();
    check::<LockedFile>();
}

#[test]
fn a_view_keeps_the_file_open_and_locked_after_its_data_file_is_dropped() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = data_file(dir.path(), 4096);
    data.write_all_at(b"kept", 0).expect("write");
    let view = data.view(0, 4).expect("view");
    drop(data);
    assert_eq!(&*view, b"kept");
    let path = dir.path().join("data");
    assert!(matches!(
        LockedFile::open(&path, &FileOptions::read_write()),
        Err(Error::Locked { .. })
    ));
    drop(view);
    LockedFile::open(&path, &FileOptions::read_write()).expect("unlocked once the view is gone");
}

#[test]
fn views_stay_valid_while_the_file_outgrows_its_mapping() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = data_file(dir.path(), 4096);
    data.write_all_at(&[1; 3000], 0).expect("write");
    let first_mapping = data.mapping_len();
    let early = data.view(0, 3000).expect("view");

    // Grow far past the first reservation, in steps, keeping a view per step.
    let mut views = vec![early];
    for step in 1..=6u8 {
        let start = data.len();
        let chunk = vec![step + 1; 5000 * usize::from(step)];
        data.write_all_at(&chunk, start).expect("append");
        views.push(data.view(start, chunk.len() as u64).expect("view"));
    }
    assert!(data.mapping_len() > first_mapping, "a new mapping was made");
    assert!(data.mapping_len() >= data.len());
    for (index, view) in views.iter().enumerate() {
        let byte = index as u8 + 1;
        assert!(view.iter().all(|&b| b == byte), "view {index} changed");
    }
    drop(views);
    let all = data.view(0, data.len()).expect("whole file");
    assert_eq!(all.len() as u64, data.len());
    assert_eq!(all[..3000], [1; 3000]);
}

#[test]
fn modifications_over_a_pinned_range_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = data_file(dir.path(), 4096);
    data.write_all_at(&[7; 10_000], 0).expect("write");
    let view = data.view(1000, 1000).expect("view");
    let second = data.view(1500, 10).expect("views share bytes");

    assert!(is_busy(data.write_all_at(b"x", 1999)));
    assert!(is_busy(data.write_all_at(&[0; 5000], 0)));
    assert!(is_busy(data.punch_hole(0, 1001)));
    assert!(is_busy(data.set_len(1500)));
    assert!(is_busy(data.copy_within(5000, 500, 600)));
    assert_eq!(data.len(), 10_000);
    assert!(view.iter().all(|&b| b == 7));

    data.write_all_at(b"y", 999).expect("just before");
    data.write_all_at(b"y", 2000).expect("just after");
    data.copy_within(0, 5000, 1000)
        .expect("copy out of a pinned range");
    data.set_len(2000).expect("shrink down to the view's end");
    drop(view);
    assert!(
        is_busy(data.write_all_at(b"z", 1505)),
        "second view remains"
    );
    drop(second);
    data.write_all_at(b"z", 1505).expect("free");
    data.set_len(0).expect("shrink to nothing");
    assert_eq!(data.pinned_ranges(), 0);
}

#[test]
fn out_of_bounds_and_zero_length_views() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = data_file(dir.path(), 4096);
    assert!(
        data.view(0, 0)
            .expect("empty view of an empty file")
            .is_empty()
    );
    assert!(matches!(
        data.view(0, 1),
        Err(Error::OutOfBounds { file_len: 0, .. })
    ));
    data.write_all_at(b"abc", 0).expect("write");
    assert!(data.view(3, 0).expect("empty view at the end").is_empty());
    assert!(matches!(data.view(4, 0), Err(Error::OutOfBounds { .. })));
    assert!(matches!(data.view(2, 2), Err(Error::OutOfBounds { .. })));
    assert!(matches!(
        data.view(u64::MAX, 2),
        Err(Error::RangeOverflow { .. })
    ));
    let empty = data.view(1, 0).expect("empty view");
    data.write_all_at(b"XYZ", 0)
        .expect("an empty view pins nothing");
    drop(empty);
    assert_eq!(&*data.view(0, 3).expect("view"), b"XYZ");
}

#[test]
fn copy_within_copies_bytes_and_checks_its_ranges() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = data_file(dir.path(), 4096);
    let len = (9 << 20) + 17; // several calls of the portable path, not page-aligned
    let bytes: Vec<u8> = (0..len).map(|i| (i % 241) as u8).collect();
    data.write_all_at(&bytes, 0).expect("write");
    data.copy_within(0, len as u64 + 100, len as u64)
        .expect("copy past the end");
    assert_eq!(data.len(), 2 * len as u64 + 100);
    let copy = data.view(len as u64 + 100, len as u64).expect("view");
    assert!(copy.bytes() == &bytes[..]);
    drop(copy);
    assert!(matches!(
        data.copy_within(0, 10, 100),
        Err(Error::OverlappingCopy { .. })
    ));
    assert!(matches!(
        data.copy_within(data.len() - 5, 0, 10),
        Err(Error::OutOfBounds { .. })
    ));
    data.copy_within(5, 5, 0).expect("empty copy");
}

#[test]
fn views_from_many_threads_while_appending() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = data_file(dir.path(), 4096);
    data.write_all_at(&[42; 4096], 0).expect("write");
    std::thread::scope(|scope| {
        for _ in 0..3 {
            scope.spawn(|| {
                for _ in 0..200 {
                    let view = data.view(0, 4096).expect("view");
                    assert!(view.iter().all(|&b| b == 42));
                }
            });
        }
        scope.spawn(|| {
            for round in 0..200u64 {
                let at = 4096 + round * 1000;
                data.write_all_at(&[round as u8; 1000], at).expect("append");
            }
        });
    });
    assert_eq!(data.len(), 4096 + 200 * 1000);
    assert_eq!(data.pinned_ranges(), 0);
}

/// One step of the model-based test.
#[derive(Debug, Clone)]
enum Op {
    Write { offset: u64, data: Vec<u8> },
    View { offset: u64, len: u64 },
    Drop { index: usize },
    Punch { offset: u64, len: u64 },
    SetLen { len: u64 },
    Copy { from: u64, to: u64, len: u64 },
}

/// Offsets and lengths small enough to collide often, large enough to cross
/// the 4 KiB mapping reservation several times.
fn small(g: &mut Gen, max: u64) -> u64 {
    u64::arbitrary(g) % max
}

impl Arbitrary for Op {
    fn arbitrary(g: &mut Gen) -> Op {
        match u8::arbitrary(g) % 10 {
            0..=2 => {
                let len = small(g, 3000) as usize;
                let fill = u8::arbitrary(g);
                Op::Write {
                    offset: small(g, 20_000),
                    data: (0..len).map(|i| fill.wrapping_add(i as u8)).collect(),
                }
            }
            3..=4 => Op::View {
                offset: small(g, 20_000),
                len: small(g, 4000),
            },
            5..=6 => Op::Drop {
                index: usize::arbitrary(g),
            },
            7 => Op::Punch {
                offset: small(g, 20_000),
                len: small(g, 6000),
            },
            8 => Op::SetLen {
                len: small(g, 24_000),
            },
            _ => Op::Copy {
                from: small(g, 20_000),
                to: small(g, 20_000),
                len: small(g, 3000),
            },
        }
    }
}

fn overlaps(a: (u64, u64), b: (u64, u64)) -> bool {
    a.0.max(b.0) < a.1.min(b.1)
}

/// Applies `ops` to a data file and to a `Vec<u8>`, checking every outcome
/// and, after every step, every live view against the model.
fn matches_the_model(ops: Vec<Op>) -> bool {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = data_file(dir.path(), 4096);
    let mut model: Vec<u8> = Vec::new();
    // Live views with the bytes they showed when made.
    let mut views: Vec<(View, u64, Vec<u8>)> = Vec::new();
    let pinned = |views: &Vec<(View, u64, Vec<u8>)>, range: (u64, u64)| {
        views
            .iter()
            .any(|(view, at, _)| overlaps((*at, at + view.len() as u64), range))
    };
    for op in ops {
        let len = model.len() as u64;
        let ok = match op {
            Op::Write {
                offset,
                data: bytes,
            } => {
                let range = (offset, offset + bytes.len() as u64);
                let result = data.write_all_at(&bytes, offset);
                if pinned(&views, range) {
                    is_busy(result)
                } else {
                    if !bytes.is_empty() {
                        let end = range.1 as usize;
                        if end > model.len() {
                            model.resize(end, 0);
                        }
                        model[offset as usize..end].copy_from_slice(&bytes);
                    }
                    result.is_ok()
                }
            }
            Op::View { offset, len: n } => match data.view(offset, n) {
                Ok(view) if offset + n <= len => {
                    let expected = model[offset as usize..(offset + n) as usize].to_vec();
                    let same = view.bytes() == &expected[..];
                    views.push((view, offset, expected));
                    same
                }
                Err(Error::OutOfBounds { file_len, .. }) => offset + n > len && file_len == len,
                _ => false,
            },
            Op::Drop { index } => {
                if !views.is_empty() {
                    views.swap_remove(index % views.len());
                }
                true
            }
            Op::Punch { offset, len: n } => {
                let result = data.punch_hole(offset, n);
                if n > 0 && pinned(&views, (offset, offset + n)) {
                    is_busy(result)
                } else {
                    let end = (offset + n).min(len);
                    if offset < end {
                        model[offset as usize..end as usize].fill(0);
                    }
                    result.is_ok()
                }
            }
            Op::SetLen { len: new_len } => {
                let result = data.set_len(new_len);
                if pinned(&views, (new_len, u64::MAX)) {
                    is_busy(result)
                } else {
                    model.resize(new_len as usize, 0);
                    result.is_ok()
                }
            }
            Op::Copy { from, to, len: n } => {
                let result = data.copy_within(from, to, n);
                if n > 0 && overlaps((from, from + n), (to, to + n)) {
                    matches!(result, Err(Error::OverlappingCopy { .. }))
                } else if from + n > len {
                    matches!(result, Err(Error::OutOfBounds { .. }))
                } else if n > 0 && pinned(&views, (to, to + n)) {
                    is_busy(result)
                } else {
                    if n > 0 {
                        let source = model[from as usize..(from + n) as usize].to_vec();
                        let end = (to + n) as usize;
                        if end > model.len() {
                            model.resize(end, 0);
                        }
                        model[to as usize..end].copy_from_slice(&source);
                    }
                    result.is_ok()
                }
            }
        };
        if !ok || data.len() != model.len() as u64 {
            return false;
        }
        for (view, at, shown) in &views {
            // An empty view pins nothing and may outlive a shrink below it.
            let range = *at as usize..*at as usize + view.len();
            let in_model = model.get(range).unwrap_or_default();
            if view.bytes() != &shown[..] || (!view.is_empty() && in_model != &shown[..]) {
                return false;
            }
        }
    }
    drop(views);
    data.pinned_ranges() == 0 && data.file().read_to_vec().is_ok_and(|bytes| bytes == model)
}

#[test]
fn random_operations_match_a_byte_model() {
    QuickCheck::new()
        .tests(150)
        .quickcheck(matches_the_model as fn(Vec<Op>) -> bool);
}

/// Mapping a file that holds no lock would let another handle change or truncate the
/// bytes under a view: `DataFile` refuses it, naming the path, and takes locked files.
#[test]
fn a_file_without_a_lock_cannot_become_a_data_file() {
    use seqdb_sys::Lock;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("data");
    let holder = LockedFile::open(&path, &FileOptions::read_write()).expect("create");
    holder.write_all_at(b"bytes", 0).expect("write");
    let unlocked = FileOptions {
        lock: Lock::Unlocked,
        ..FileOptions::read_only()
    };
    for build in [DataFile::new, |file| DataFile::with_min_map_len(file, 4096)] {
        let file = LockedFile::open(&path, &unlocked).expect("an unlocked handle opens");
        let error = build(file).expect_err("an unlocked file is refused");
        assert!(matches!(&error, Error::Unlocked { .. }), "{error:?}");
        assert_eq!(error.path(), path);
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
        let text = error.to_string();
        assert!(text.contains(&*path.to_string_lossy()), "{text}");
        assert!(text.contains("lock"), "{text}");
    }
    drop(holder);
    let shared = LockedFile::open(&path, &FileOptions::read_only()).expect("shared");
    let data = DataFile::new(shared).expect("a shared lock is enough");
    assert_eq!(&*data.view(0, 5).expect("view"), b"bytes");
}

/// This thread's minor page faults so far (Linux: `/proc/thread-self/stat`, field 10).
#[cfg(target_os = "linux")]
fn minor_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("stat");
    // The command name, in parentheses, may hold spaces: count fields after it.
    let after = &stat[stat.rfind(')').expect("command name") + 2..];
    after
        .split(' ')
        .nth(7)
        .and_then(|field| field.parse().ok())
        .expect("minflt")
}

#[test]
#[cfg(target_os = "linux")]
fn a_prefaulted_view_reads_without_page_faults() {
    const PAGES: usize = 256;
    let bytes: Vec<u8> = (0..PAGES * 4096).map(|i| (i / 4096) as u8).collect();
    // One byte of every page, in an order that one fault's neighbours do not cover.
    let touch = |bytes: &[u8]| -> u64 {
        (2..PAGES)
            .step_by(3)
            .rev()
            .chain((0..PAGES).step_by(3))
            .chain((1..PAGES).step_by(3))
            .map(|page| u64::from(bytes[page * 4096 + 17]))
            .sum()
    };
    let expected = touch(&bytes);
    let written = |dir: &Path| {
        let data = data_file(dir, 1 << 20);
        data.write_all_at(&bytes, 0).expect("write");
        data
    };

    // Without a prefault, the first reads after a write through the file fault.
    let dir = tempfile::tempdir().expect("temp dir");
    let cold = written(dir.path());
    let view = cold.view(0, bytes.len() as u64).expect("view");
    let before = minor_faults();
    assert_eq!(touch(&view), expected);
    assert!(minor_faults() > before, "the first reads faulted");

    // After one, they do not, and read the same bytes.
    let dir = tempfile::tempdir().expect("temp dir");
    let warm = written(dir.path());
    let view = warm.view(0, bytes.len() as u64).expect("view");
    view.prefault(0);
    let before = minor_faults();
    assert_eq!(touch(&view), expected);
    assert_eq!(minor_faults(), before, "no read faulted");

    // A prefault from an offset leaves the bytes before it alone, and past the end is
    // nothing.
    view.prefault(bytes.len());
    let dir = tempfile::tempdir().expect("temp dir");
    let half = written(dir.path());
    let view = half.view(0, bytes.len() as u64).expect("view");
    view.prefault(bytes.len() / 2);
    let before = minor_faults();
    let upper: u64 = (PAGES / 2..PAGES)
        .map(|page| u64::from(view[page * 4096]))
        .sum();
    assert_eq!(upper, (PAGES as u64 / 2..PAGES as u64).sum::<u64>());
    assert_eq!(minor_faults(), before, "the prefaulted half did not fault");
    assert_eq!(view[0], 0);
    assert!(minor_faults() > before, "the first half faulted");
}
