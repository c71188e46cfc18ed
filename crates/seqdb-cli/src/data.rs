//! Commands that move region bytes: `cat` and `put`.

use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;

use seqdb::Identifier;
use serde::Serialize;

use crate::failure::{Context, Failure};
use crate::open;
use crate::output::{print, print_json};

/// What `put --json` prints.
#[derive(Debug, Serialize)]
pub struct Put {
    /// The database directory, as given.
    pub database: String,
    /// The region's name.
    pub region: String,
    /// The region's number.
    pub number: usize,
    /// Where the bytes went: the region's old length for an append, or `--at`.
    pub offset: u64,
    /// How many bytes were written.
    pub written: u64,
    /// The region's length afterwards.
    pub len: u64,
}

/// A region argument: `#N` names region number N, anything else is a name.
pub fn region_id(text: &str) -> Identifier {
    match text.strip_prefix('#').map(str::parse::<usize>) {
        Some(Ok(number)) => Identifier::Number(number),
        _ => Identifier::Name(text.to_owned()),
    }
}

/// `seqdb cat DB REGION [--offset N] [--len N]`.
pub fn cat(db: &Path, region: &str, offset: u64, len: Option<u64>) -> Result<ExitCode, Failure> {
    let database = open::read_only(db)?;
    let reader = database.create_region_reader(region_id(region))?;
    let name = reader.region().name().to_owned();
    if offset > reader.len() {
        return Err(Failure::new(format!(
            "offset {offset} is past the end of region {name:?} (length {})",
            reader.len()
        )));
    }
    let bytes = match len {
        Some(len) => reader.try_read(offset, len)?,
        None => reader.read(offset, u64::MAX),
    };
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        result => result
            .map(|()| ExitCode::SUCCESS)
            .context(|| format!("cannot write region {name:?} to standard output")),
    }
}

/// `seqdb put DB REGION [--at N] [--json]`: standard input into the region, then a flush.
pub fn put(db: &Path, region: &str, at: Option<u64>, as_json: bool) -> Result<ExitCode, Failure> {
    let id = region_id(region);
    // A number names an existing region, so only a name may create the database.
    let create = matches!(id, Identifier::Name(_));
    let database = open::read_write(db, create)?;
    let number = match id {
        Identifier::Name(name) => database.create_region_if_needed(&name)?.0,
        id => database.get_region(id)?.number(),
    };
    let id = || Identifier::Number(number);
    let start = database.get_region(id())?.len();
    if let Some(at) = at
        && at > start
    {
        return Err(Failure::new(format!(
            "--at {at} is past the end of region {region:?} (length {start}); writes may \
             start at most at the end"
        )));
    }
    let mut position = at;
    let mut written = 0u64;
    let mut buffer = vec![0u8; 1 << 20];
    let mut stdin = std::io::stdin().lock();
    loop {
        let n = match stdin.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(e).context(|| {
                    format!(
                        "cannot read standard input after {written} bytes (nothing was flushed)"
                    )
                });
            }
        };
        let chunk = &buffer[..n];
        match &mut position {
            Some(position) => {
                database.write_all_to_region_at(id(), chunk, *position)?;
                *position += n as u64;
            }
            None => database.write_all_to_region(id(), chunk)?,
        }
        written += n as u64;
    }
    database.flush()?;
    let region = database.get_region(id())?;
    let offset = at.unwrap_or(start);
    if as_json {
        return print_json(&Put {
            database: db.display().to_string(),
            region: region.name().to_owned(),
            number: region.number(),
            offset,
            written,
            len: region.len(),
        });
    }
    print(&format!(
        "wrote {written} bytes to region {:?} at offset {offset}; it now holds {} bytes; \
         flushed\n",
        region.name(),
        region.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_arguments() {
        assert_eq!(region_id("#12"), Identifier::Number(12));
        assert_eq!(region_id("prices"), Identifier::Name("prices".into()));
        assert_eq!(region_id("#x"), Identifier::Name("#x".into()));
        assert_eq!(region_id("#"), Identifier::Name("#".into()));
        assert_eq!(region_id("12"), Identifier::Name("12".into()));
    }
}
