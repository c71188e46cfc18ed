//! The original `seqdb` 0.2.17, as published.

use std::path::Path;

use seqdb_orig::{Database, Identifier};

use crate::engine::{Engine, Outcome, Source, decode_u64, failed};

/// The original seqdb: regions addressed by number, as a performance-minded user would.
pub struct Original {
    db: Database,
}

impl Engine for Original {
    fn open(dir: &Path) -> Outcome<Self> {
        let db = Database::open(dir).map_err(failed("open"))?;
        Ok(Original { db })
    }

    fn create_region(&mut self, name: &str) -> Outcome<usize> {
        let (number, _) = self
            .db
            .create_region_if_needed(name)
            .map_err(failed("create region"))?;
        Ok(number)
    }

    fn append_all<S: Source>(&mut self, source: &mut S) -> Outcome<()> {
        while let Some((region, data)) = source.next_append() {
            self.db
                .write_all_to_region(Identifier::from(region), data)
                .map_err(failed("append"))?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Outcome<()> {
        self.db.flush().map_err(failed("flush"))
    }

    fn flush_then_punch(&mut self) -> Outcome<bool> {
        self.db
            .flush_then_punch()
            .map_err(failed("flush_then_punch"))?;
        Ok(true)
    }

    fn remove_region(&mut self, region: usize) -> Outcome<()> {
        self.db
            .remove_region(Identifier::from(region))
            .map_err(failed("remove region"))?;
        Ok(())
    }

    fn region_len(&self, region: usize) -> Outcome<u64> {
        let region = self
            .db
            .get_region(Identifier::from(region))
            .map_err(failed("get region"))?;
        Ok(region.len())
    }

    fn totals(&self) -> Outcome<(u64, u64)> {
        let regions = self.db.regions();
        let mut count = 0;
        let mut bytes = 0;
        for region in regions.index_to_region().iter().flatten() {
            count += 1;
            bytes += region.read().len();
        }
        Ok((count, bytes))
    }

    fn read_sum(&self, region: usize, indexes: &[u64], reader_per_read: bool) -> Outcome<u64> {
        let id = || Identifier::from(region);
        let mut sum = 0u64;
        if reader_per_read {
            for &index in indexes {
                let reader = self
                    .db
                    .create_region_reader(id())
                    .map_err(failed("create reader"))?;
                sum = sum.wrapping_add(decode_u64(reader.read(index * 8, 8))?);
            }
        } else {
            let reader = self
                .db
                .create_region_reader(id())
                .map_err(failed("create reader"))?;
            for &index in indexes {
                sum = sum.wrapping_add(decode_u64(reader.read(index * 8, 8))?);
            }
        }
        Ok(sum)
    }
}
