//! This workspace's `seqdb`.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use seqdb::{Database, Identifier, OpenOptions, SyncEvent};

use crate::engine::{Engine, Outcome, Source, decode_u64, failed};

/// seqdb with regions addressed by number, as a performance-minded user would.
pub struct Ours {
    db: Database,
    /// Device syncs so far, counted by the sync observer.
    syncs: Arc<AtomicU64>,
}

impl Engine for Ours {
    fn open(dir: &Path) -> Outcome<Self> {
        let syncs = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&syncs);
        let db = OpenOptions::new()
            .sync_observer(Arc::new(move |_: SyncEvent<'_>| {
                counter.fetch_add(1, Ordering::Relaxed);
            }))
            .open(dir)
            .map_err(failed("open"))?;
        Ok(Ours { db, syncs })
    }

    fn syncs(&self) -> Option<u64> {
        Some(self.syncs.load(Ordering::Relaxed))
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
            .map_err(failed("remove region"))?
            .ok_or_else(|| format!("region {region} was not there to remove"))?;
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
        let bytes = regions.iter().map(|region| region.len()).sum();
        Ok((regions.len() as u64, bytes))
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
