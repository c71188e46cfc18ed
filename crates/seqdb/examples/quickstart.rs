//! The smallest complete use of seqdb: create a region, write, overwrite, read, truncate,
//! flush. Run with `cargo run -p seqdb --example quickstart`; it leaves a `my_db`
//! directory behind.

use seqdb::{Database, PAGE_SIZE, Result};
use std::path::Path;

fn main() -> Result<()> {
    let database = Database::open(Path::new("my_db"))?;
    let (region_id, _) = database.create_region_if_needed("my_region")?;
    database.write_all_to_region(region_id.into(), b"Hello, world!")?;
    database.write_all_to_region_at(region_id.into(), b"Hi", 0)?;
    let reader = database.create_region_reader(region_id.into())?;
    let data = reader.read_all(); // b"Hillo, world!"
    println!("{}", String::from_utf8_lossy(data));
    drop(reader);
    database.truncate_region(region_id.into(), 5)?; // now b"Hillo"
    database.flush_then_punch()?;
    let region = database.get_region(region_id.into())?;
    println!(
        "region {:?}: {} bytes at offset {}, {} reserved ({} pages)",
        region.name(),
        region.len(),
        region.start(),
        region.reserved(),
        region.reserved() / PAGE_SIZE
    );
    Ok(())
}
