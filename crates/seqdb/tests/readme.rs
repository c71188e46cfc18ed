//! The API tour in README.md: it runs here, and the README shows exactly this code.

// README tour start
use std::io::{BufRead, Write};
use std::path::Path;

use seqdb::{Database, RegionCursor, RegionWriter};

fn tour(path: &Path) -> seqdb::Result<()> {
    let database = Database::open(path)?; // creates the directory if needed

    // Regions are named, growable byte sequences; the number is a cheap handle.
    let (prices, _) = database.create_region_if_needed("prices")?;
    database.write_all_to_region(prices.into(), &[1, 2, 3, 4])?; // append
    database.write_all_to_region_at(prices.into(), &[9], 0)?; // overwrite
    database.truncate_region(prices.into(), 3)?;

    // Zero-copy reads: the slice points into the memory map.
    let reader = database.create_region_reader(prices.into())?;
    assert_eq!(reader.read_all(), &[9, 2, 3]);
    drop(reader); // a snapshot: it keeps these bytes, and no writer waits for it

    // std::io adapters: buffered appends, and Read + BufRead + Seek.
    let (log, _) = database.create_region_if_needed("log")?;
    let mut writer = RegionWriter::new(&database, log.into())?;
    writeln!(writer, "started").expect("append to the log");
    writeln!(writer, "ready").expect("append to the log");
    writer.finish()?;
    let lines: Vec<String> = RegionCursor::new(&database, "log".into())?
        .lines()
        .collect::<Result<_, _>>()
        .expect("read the log");
    assert_eq!(lines, ["started", "ready"]);

    database.rename_region("log".into(), "journal")?;
    database.remove_region("prices".into())?;

    // Durable from here on; then give the freed space back to the file system.
    database.flush_then_punch()?;
    let stats = database.stats()?;
    println!("{} regions, {} live bytes", stats.regions, stats.live_bytes);
    drop(database);

    // Offline: validate every checksum and the layout.
    assert!(seqdb::check(path)?.is_healthy());
    Ok(())
}
// README tour end

#[test]
fn the_tour_runs() {
    let dir = tempfile::tempdir().unwrap();
    tour(&dir.path().join("tour_db")).unwrap();
    let database = Database::open_read_only(&dir.path().join("tour_db")).unwrap();
    let names: Vec<String> = database
        .regions()
        .iter()
        .map(|r| r.name().to_owned())
        .collect();
    assert_eq!(names, ["journal"]);
}

/// The lines between `start` and `end` markers, trimmed of trailing space.
fn between<'a>(text: &'a str, start: &str, end: &str) -> Vec<&'a str> {
    text.lines()
        .skip_while(|line| !line.contains(start))
        .skip(1)
        .take_while(|line| !line.contains(end))
        .map(str::trim_end)
        .collect()
}

#[test]
fn the_readme_shows_this_tour() {
    let readme = include_str!("../../../README.md");
    let source = include_str!("readme.rs");
    let shown: Vec<&str> = readme
        .lines()
        .skip_while(|line| !line.contains("<!-- tour -->"))
        .skip_while(|line| !line.starts_with("```rust"))
        .skip(1)
        .take_while(|line| !line.starts_with("```"))
        .map(str::trim_end)
        .collect();
    let tested = between(source, "// README tour start", "// README tour end");
    assert!(!tested.is_empty());
    assert_eq!(
        shown, tested,
        "README.md's tour differs from tests/readme.rs"
    );
}
