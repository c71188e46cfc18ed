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
    db.write_all_to_region(n.into(), &vec![7u8; 4 << 20]).unwrap();
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
    assert!(looked_up_given >= 3 << 20, "{looked_up_given} of {looked_up_before}");
    assert!(
        given >= 3 << 20,
        "a region never looked up kept its reservation's tail: {given} given back, \
         {before} -> {after} allocated (looked up: {looked_up_given})"
    );
    assert_eq!(db.get_region(n.into()).unwrap().len(), 4096);
}
