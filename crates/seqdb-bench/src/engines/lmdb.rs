//! LMDB (through the `lmdb-rkv` binding, whose API is safe to call). Commits run with
//! `NO_SYNC`, and a flush is `mdb_env_sync(force)`, the usual way to group commits.

use std::fs;
use std::path::Path;

use lmdb::{
    Cursor, Database, DatabaseFlags, Environment, EnvironmentFlags, Transaction, WriteFlags,
};

use super::chunks::{ChunkIndex, chunk_key, slice8};
use crate::engine::{Engine, Outcome, Source, decode_u64, failed};

/// How much address space the environment may map (the file grows as needed).
const MAP_SIZE: usize = 64 << 30;

/// LMDB with one unnamed database holding every chunk of every region.
pub struct Lmdb {
    env: Environment,
    db: Database,
    chunks: ChunkIndex,
}

impl Engine for Lmdb {
    fn open(dir: &Path) -> Outcome<Self> {
        fs::create_dir_all(dir).map_err(failed("create directory"))?;
        let env = Environment::new()
            .set_map_size(MAP_SIZE)
            .set_flags(EnvironmentFlags::NO_SYNC)
            .open(dir)
            .map_err(failed("open"))?;
        let db = env
            .create_db(None, DatabaseFlags::empty())
            .map_err(failed("open database"))?;
        Ok(Lmdb {
            env,
            db,
            chunks: ChunkIndex::default(),
        })
    }

    fn create_region(&mut self, _name: &str) -> Outcome<usize> {
        Ok(self.chunks.create())
    }

    fn append_all<S: Source>(&mut self, source: &mut S) -> Outcome<()> {
        let mut txn = self.env.begin_rw_txn().map_err(failed("begin write"))?;
        while let Some((region, data)) = source.next_append() {
            let chunk = self.chunks.push(region, data.len())?;
            txn.put(
                self.db,
                &chunk_key(region, chunk),
                &data,
                WriteFlags::empty(),
            )
            .map_err(failed("put"))?;
        }
        txn.commit().map_err(failed("commit"))
    }

    fn flush(&mut self) -> Outcome<()> {
        self.env.sync(true).map_err(failed("sync"))
    }

    fn flush_then_punch(&mut self) -> Outcome<bool> {
        self.flush()?;
        Ok(false)
    }

    fn remove_region(&mut self, region: usize) -> Outcome<()> {
        let count = self.chunks.remove(region)?;
        let mut txn = self.env.begin_rw_txn().map_err(failed("begin write"))?;
        for chunk in 0..count {
            txn.del(self.db, &chunk_key(region, chunk), None)
                .map_err(failed("delete"))?;
        }
        txn.commit().map_err(failed("commit"))
    }

    fn region_len(&self, region: usize) -> Outcome<u64> {
        self.chunks.len(region)
    }

    fn totals(&self) -> Outcome<(u64, u64)> {
        let txn = self.env.begin_ro_txn().map_err(failed("begin read"))?;
        let mut cursor = txn.open_ro_cursor(self.db).map_err(failed("cursor"))?;
        let mut count = 0;
        let mut bytes = 0;
        let mut last = None;
        for item in cursor.iter_start() {
            let (key, value) = item.map_err(failed("iterate"))?;
            let region = key.get(..4);
            if region != last {
                count += 1;
                last = region;
            }
            bytes += value.len() as u64;
        }
        Ok((count, bytes))
    }

    fn read_sum(&self, region: usize, indexes: &[u64], reader_per_read: bool) -> Outcome<u64> {
        let mut sum = 0u64;
        let mut read = |txn: &lmdb::RoTransaction<'_>, index: u64| -> Outcome<()> {
            let (chunk, inner) = self.chunks.locate(region, index * 8)?;
            let value = txn
                .get(self.db, &chunk_key(region, chunk))
                .map_err(failed("get"))?;
            sum = sum.wrapping_add(decode_u64(slice8(value, inner)?)?);
            Ok(())
        };
        if reader_per_read {
            for &index in indexes {
                let txn = self.env.begin_ro_txn().map_err(failed("begin read"))?;
                read(&txn, index)?;
            }
        } else {
            let txn = self.env.begin_ro_txn().map_err(failed("begin read"))?;
            for &index in indexes {
                read(&txn, index)?;
            }
        }
        Ok(sum)
    }
}
