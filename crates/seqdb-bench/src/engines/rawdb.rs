//! `rawdb` 0.13.0, the original seqdb's successor. Its `flush` never syncs to the device.

use std::path::Path;

use rawdb::{Database, Region};

use crate::engine::{Engine, Outcome, Source, decode_u64, failed};

/// rawdb with region handles kept by the caller and lengths tracked on the caller's side.
pub struct RawDb {
    db: Database,
    regions: Vec<Option<(Region, usize)>>,
}

impl RawDb {
    fn region(&self, region: usize) -> Outcome<&(Region, usize)> {
        self.regions
            .get(region)
            .and_then(Option::as_ref)
            .ok_or_else(|| format!("unknown region {region}"))
    }
}

impl Engine for RawDb {
    fn open(dir: &Path) -> Outcome<Self> {
        let db = Database::open(dir).map_err(failed("open"))?;
        Ok(RawDb {
            db,
            regions: Vec::new(),
        })
    }

    fn create_region(&mut self, name: &str) -> Outcome<usize> {
        let region = self
            .db
            .create_region_if_needed(name)
            .map_err(failed("create region"))?;
        let len = region.meta().byte_len();
        self.regions.push(Some((region, len)));
        Ok(self.regions.len() - 1)
    }

    fn append_all<S: Source>(&mut self, source: &mut S) -> Outcome<()> {
        while let Some((handle, data)) = source.next_append() {
            let (region, len) = self
                .regions
                .get_mut(handle)
                .and_then(Option::as_mut)
                .ok_or_else(|| format!("unknown region {handle}"))?;
            region.write_at(data, *len).map_err(failed("append"))?;
            *len += data.len();
        }
        Ok(())
    }

    fn flush(&mut self) -> Outcome<()> {
        self.db.flush();
        Ok(())
    }

    fn flush_then_punch(&mut self) -> Outcome<bool> {
        self.db.compact().map_err(failed("compact"))?;
        Ok(true)
    }

    fn remove_region(&mut self, region: usize) -> Outcome<()> {
        let (handle, _) = self
            .regions
            .get_mut(region)
            .and_then(Option::take)
            .ok_or_else(|| format!("unknown region {region}"))?;
        handle.remove().map_err(failed("remove region"))
    }

    fn region_len(&self, region: usize) -> Outcome<u64> {
        Ok(self.region(region)?.0.meta().byte_len() as u64)
    }

    fn totals(&self) -> Outcome<(u64, u64)> {
        let mut count = 0;
        let mut bytes = 0;
        for id in self.db.region_ids() {
            let region = self
                .db
                .region(&id)
                .ok_or_else(|| format!("listed region {id} is missing"))?;
            count += 1;
            bytes += region.meta().byte_len() as u64;
        }
        Ok((count, bytes))
    }

    fn read_sum(&self, region: usize, indexes: &[u64], reader_per_read: bool) -> Outcome<u64> {
        let (region, _) = self.region(region)?;
        let mut sum = 0u64;
        if reader_per_read {
            for &index in indexes {
                let reader = region.create_reader();
                sum = sum.wrapping_add(decode_u64(reader.read(index as usize * 8, 8))?);
            }
        } else {
            let reader = region.create_reader();
            for &index in indexes {
                sum = sum.wrapping_add(decode_u64(reader.read(index as usize * 8, 8))?);
            }
        }
        Ok(sum)
    }
}
