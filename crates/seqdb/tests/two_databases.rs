//! A thread's remembered region (and its lent buffer) belongs to one database; moving on
//! to a region of another database must not collect the old buffer through the new one.

use seqdb::{Database, Identifier};

#[test]
fn moving_to_another_database_keeps_both_intact() {
    let dir1 = tempfile::tempdir().unwrap();
    let dir2 = tempfile::tempdir().unwrap();
    let db1 = Database::open(dir1.path()).unwrap();
    let db2 = Database::open(dir2.path()).unwrap();
    let (a, _) = db1.create_region_if_needed("a").unwrap();
    let (b, _) = db2.create_region_if_needed("b").unwrap();
    // db2's region holds 64 KiB of 0xBB, committed (written by name: no per-thread entry).
    db2.write_all_to_region("b".into(), &vec![0xBB; 64 * 1024])
        .unwrap();
    db2.flush().unwrap();

    // This thread appends to db1's region by number until it is lent a buffer, and then
    // puts 30 000 bytes in that buffer.
    let mut want_a = Vec::new();
    for i in 0..316u32 {
        let piece = [(i % 251) as u8; 100];
        db1.write_all_to_region(Identifier::Number(a), &piece)
            .unwrap();
        want_a.extend_from_slice(&piece);
    }
    // Now a large append to db2's region by number: the long way, which evicts the
    // thread's entry for db1.
    db2.write_all_to_region(Identifier::Number(b), &vec![0xCC; 20 * 1024])
        .unwrap();
    let mut want_b = vec![0xBB; 64 * 1024];
    want_b.extend_from_slice(&vec![0xCC; 20 * 1024]);

    let got_b = db2
        .create_region_reader(Identifier::Number(b))
        .unwrap()
        .read_all()
        .to_vec();
    let bad_b = got_b.iter().zip(&want_b).filter(|(g, w)| g != w).count();
    assert_eq!(got_b.len(), want_b.len());
    assert_eq!(bad_b, 0, "db2's region holds bytes appended to db1");
    let reader_a = db1.create_region_reader(Identifier::Number(a)).unwrap();
    assert_eq!(
        reader_a.read_all(),
        want_a.as_slice(),
        "db1's region lost its bytes"
    );
    drop(reader_a);
    db1.flush().unwrap();
    drop(db1);
    let db1 = Database::open(dir1.path()).unwrap();
    assert_eq!(
        db1.create_region_reader(Identifier::Number(a))
            .unwrap()
            .read_all(),
        want_a.as_slice()
    );
}

/// The last handle of one database is dropped while this thread still holds a buffer its
/// region lent; a later database in the same process then loses a lent buffer of its own
/// from its list, and its flush and close skip those appends.
#[test]
fn an_old_databases_buffer_does_not_unlist_a_new_ones() {
    let dir1 = tempfile::tempdir().unwrap();
    let dir2 = tempfile::tempdir().unwrap();
    {
        let db1 = Database::open(dir1.path()).unwrap();
        let (a, _) = db1.create_region_if_needed("a").unwrap();
        for i in 0..40u8 {
            db1.write_all_to_region(Identifier::Number(a), &[i; 10])
                .unwrap();
        }
        // The last handle: dropping it flushes; this thread keeps its lent buffer.
    }
    let db2 = Database::open(dir2.path()).unwrap();
    let (x, _) = db2.create_region_if_needed("x").unwrap();
    let (y, _) = db2.create_region_if_needed("y").unwrap();
    assert_eq!(x, 0, "same number as db1's region");
    let (ready, go) = std::sync::mpsc::channel::<()>();
    let (resume, wait) = std::sync::mpsc::channel::<()>();
    let writer = {
        let db2 = db2.clone();
        std::thread::spawn(move || {
            let mut want = Vec::new();
            // Enough appends by number for x to lend this thread a buffer.
            for i in 0..40u8 {
                db2.write_all_to_region(Identifier::Number(x), &[i; 10])
                    .unwrap();
                want.extend_from_slice(&[i; 10]);
            }
            ready.send(()).unwrap();
            wait.recv().unwrap();
            // Into the lent buffer only.
            for i in 0..100u8 {
                db2.write_all_to_region(Identifier::Number(x), &[i; 7])
                    .unwrap();
                want.extend_from_slice(&[i; 7]);
            }
            want
        })
    };
    go.recv().unwrap();
    db2.flush().unwrap();
    // This thread moves on to db2 (a large append by number takes the long way), which
    // gives back the buffer db1's region lent it.
    db2.write_all_to_region(Identifier::Number(y), &vec![1; 20 * 1024])
        .unwrap();
    resume.send(()).unwrap();
    let want = writer.join().unwrap();
    db2.flush().unwrap();
    db2.close().unwrap();
    let db2 = Database::open(dir2.path()).unwrap();
    let got = db2
        .create_region_reader(Identifier::Number(x))
        .unwrap()
        .read_all()
        .to_vec();
    assert_eq!(
        got.len(),
        want.len(),
        "appends made before a successful flush and close are lost"
    );
    assert_eq!(got, want);
}
