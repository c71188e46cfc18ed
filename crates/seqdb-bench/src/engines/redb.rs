//! redb. Appends commit with `Durability::None`; a flush is an empty commit with
//! `Durability::Immediate`, which makes every earlier commit durable. Giving space back
//! is `Database::compact`.

use std::fs;
use std::path::Path;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use super::chunks::{ChunkIndex, slice8};
use crate::engine::{Engine, Outcome, Source, decode_u64, failed};

/// Every chunk of every region, keyed by (region, chunk number).
const CHUNKS: TableDefinition<'_, (u32, u64), &[u8]> = TableDefinition::new("chunks");

/// redb with one table of chunks.
pub struct Redb {
    db: Database,
    chunks: ChunkIndex,
}

impl Redb {
    fn commit_batch(
        &self,
        body: impl FnOnce(&mut redb::Table<'_, (u32, u64), &[u8]>) -> Outcome<()>,
    ) -> Outcome<()> {
        let mut txn = self.db.begin_write().map_err(failed("begin write"))?;
        txn.set_durability(Durability::None)
            .map_err(failed("set durability"))?;
        {
            let mut table = txn.open_table(CHUNKS).map_err(failed("open table"))?;
            body(&mut table)?;
        }
        txn.commit().map_err(failed("commit"))
    }
}

impl Engine for Redb {
    fn open(dir: &Path) -> Outcome<Self> {
        fs::create_dir_all(dir).map_err(failed("create directory"))?;
        let db = Database::create(dir.join("redb")).map_err(failed("open"))?;
        let redb = Redb {
            db,
            chunks: ChunkIndex::default(),
        };
        // The table exists from the start, so readers never meet a missing table.
        redb.commit_batch(|_| Ok(()))?;
        Ok(redb)
    }

    fn create_region(&mut self, _name: &str) -> Outcome<usize> {
        Ok(self.chunks.create())
    }

    fn append_all<S: Source>(&mut self, source: &mut S) -> Outcome<()> {
        let chunks = &mut self.chunks;
        let mut txn = self.db.begin_write().map_err(failed("begin write"))?;
        txn.set_durability(Durability::None)
            .map_err(failed("set durability"))?;
        {
            let mut table = txn.open_table(CHUNKS).map_err(failed("open table"))?;
            while let Some((region, data)) = source.next_append() {
                let chunk = chunks.push(region, data.len())?;
                table
                    .insert((region as u32, chunk), data)
                    .map_err(failed("insert"))?;
            }
        }
        txn.commit().map_err(failed("commit"))
    }

    fn flush(&mut self) -> Outcome<()> {
        let txn = self.db.begin_write().map_err(failed("begin write"))?;
        txn.commit().map_err(failed("commit"))
    }

    fn flush_then_punch(&mut self) -> Outcome<bool> {
        self.flush()?;
        while self.db.compact().map_err(failed("compact"))? {}
        Ok(true)
    }

    fn remove_region(&mut self, region: usize) -> Outcome<()> {
        let count = self.chunks.remove(region)?;
        self.commit_batch(|table| {
            for chunk in 0..count {
                table
                    .remove((region as u32, chunk))
                    .map_err(failed("remove"))?;
            }
            Ok(())
        })
    }

    fn region_len(&self, region: usize) -> Outcome<u64> {
        self.chunks.len(region)
    }

    fn totals(&self) -> Outcome<(u64, u64)> {
        let txn = self.db.begin_read().map_err(failed("begin read"))?;
        let table = txn.open_table(CHUNKS).map_err(failed("open table"))?;
        let mut count = 0;
        let mut bytes = 0;
        let mut last = None;
        for item in table.iter().map_err(failed("iterate"))? {
            let (key, value) = item.map_err(failed("iterate"))?;
            let region = key.value().0;
            if Some(region) != last {
                count += 1;
                last = Some(region);
            }
            bytes += value.value().len() as u64;
        }
        Ok((count, bytes))
    }

    fn read_sum(&self, region: usize, indexes: &[u64], reader_per_read: bool) -> Outcome<u64> {
        let mut sum = 0u64;
        let mut read =
            |table: &redb::ReadOnlyTable<(u32, u64), &[u8]>, index: u64| -> Outcome<()> {
                let (chunk, inner) = self.chunks.locate(region, index * 8)?;
                let value = table
                    .get((region as u32, chunk))
                    .map_err(failed("get"))?
                    .ok_or_else(|| format!("chunk {chunk} of region {region} is missing"))?;
                sum = sum.wrapping_add(decode_u64(slice8(value.value(), inner)?)?);
                Ok(())
            };
        let open = || -> Outcome<redb::ReadOnlyTable<(u32, u64), &[u8]>> {
            let txn = self.db.begin_read().map_err(failed("begin read"))?;
            txn.open_table(CHUNKS).map_err(failed("open table"))
        };
        if reader_per_read {
            for &index in indexes {
                read(&open()?, index)?;
            }
        } else {
            let table = open()?;
            for &index in indexes {
                read(&table, index)?;
            }
        }
        Ok(sum)
    }
}
