//! A new snapshot has the kernel map the bytes written since the last one into the page
//! tables, so that the first reads after writing take no page fault; bytes that were in
//! the file when it was opened are left to the reads.
#![cfg(target_os = "linux")]

use seqdb::{Database, Identifier};

const MIB: usize = 1 << 20;
const PAGE: usize = 4096;

/// This thread's minor page faults so far (`/proc/thread-self/stat`, field 10).
fn minor_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("stat");
    // The command name, in parentheses, may hold spaces: count the fields after it.
    let after = &stat[stat.rfind(')').expect("command name") + 2..];
    after
        .split(' ')
        .nth(7)
        .and_then(|field| field.parse().ok())
        .expect("minflt")
}

/// Reads one byte of every page of the region through a new reader; returns their sum and
/// the page faults the reads took (the reader is made before counting).
fn touch_every_page(db: &Database, number: usize) -> (u64, u64) {
    let reader = db
        .create_region_reader(Identifier::from(number))
        .expect("reader");
    let bytes = reader.read_all();
    let before = minor_faults();
    // From the last page down, so that no fault's neighbours cover the pages ahead.
    let sum = (0..bytes.len() / PAGE)
        .rev()
        .map(|page| u64::from(bytes[page * PAGE]))
        .sum();
    (sum, minor_faults() - before)
}

/// `len` bytes in which the first byte of page `p` is `p % 251`.
fn pages(len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i / PAGE) % 251) as u8).collect()
}

fn expected_sum(len: usize) -> u64 {
    (0..len / PAGE).map(|page| (page % 251) as u64).sum()
}

#[test]
fn the_first_reads_after_writing_take_no_page_fault() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = Database::open(dir.path()).expect("open");
    let (number, _) = db.create_region_if_needed("r").expect("create");
    let data = pages(8 * MIB);
    for chunk in data.chunks(MIB) {
        db.write_all_to_region(Identifier::from(number), chunk)
            .expect("append");
    }
    db.flush().expect("flush");
    assert_eq!(
        touch_every_page(&db, number),
        (expected_sum(8 * MIB), 0),
        "the first reads after writing faulted"
    );

    // Appends after the first snapshot: the next one maps what they added.
    let more = pages(4 * MIB);
    db.write_all_to_region(Identifier::from(number), &more)
        .expect("append");
    let (sum, faults) = touch_every_page(&db, number);
    assert_eq!(sum, expected_sum(8 * MIB) + expected_sum(4 * MIB));
    assert_eq!(faults, 0, "the reads of the appended bytes faulted");
}

#[test]
fn bytes_in_the_file_at_open_are_left_to_the_reads() {
    let dir = tempfile::tempdir().expect("temp dir");
    let number = {
        let db = Database::open(dir.path()).expect("open");
        let (number, _) = db.create_region_if_needed("r").expect("create");
        db.write_all_to_region(Identifier::from(number), &pages(4 * MIB))
            .expect("append");
        db.flush().expect("flush");
        number
    };
    let db = Database::open(dir.path()).expect("reopen");
    let (sum, faults) = touch_every_page(&db, number);
    assert_eq!(sum, expected_sum(4 * MIB));
    assert!(faults > 0, "a reader of what was opened prefaulted it");
}
