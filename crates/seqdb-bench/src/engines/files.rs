//! One plain file per region: appends through `write_all`, reads with `read_exact_at`,
//! durability with `sync_data` on every file written since the last flush (and the
//! directory when files were created or removed).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::engine::{Engine, Outcome, Source, decode_u64, failed};

/// One region: its file, its length and whether it was written since the last flush.
struct RegionFile {
    file: File,
    len: u64,
    dirty: bool,
}

/// A directory of files, one per region, named after the region.
pub struct Files {
    dir: PathBuf,
    regions: Vec<Option<RegionFile>>,
    names: Vec<String>,
    directory_dirty: bool,
}

impl Files {
    fn region(&self, region: usize) -> Outcome<&RegionFile> {
        self.regions
            .get(region)
            .and_then(Option::as_ref)
            .ok_or_else(|| format!("unknown region {region}"))
    }
}

fn open_region_file(path: &Path, create: bool) -> Outcome<File> {
    OpenOptions::new()
        .read(true)
        .append(true)
        .create_new(create)
        .open(path)
        .map_err(|e| format!("open {}: {e}", path.display()))
}

impl Engine for Files {
    fn open(dir: &Path) -> Outcome<Self> {
        fs::create_dir_all(dir).map_err(failed("create directory"))?;
        let mut names = Vec::new();
        for entry in fs::read_dir(dir).map_err(failed("list directory"))? {
            let entry = entry.map_err(failed("list directory"))?;
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        names.sort_unstable();
        let mut regions = Vec::with_capacity(names.len());
        for name in &names {
            let file = open_region_file(&dir.join(name), false)?;
            let len = file.metadata().map_err(failed("stat"))?.len();
            regions.push(Some(RegionFile {
                file,
                len,
                dirty: false,
            }));
        }
        Ok(Files {
            dir: dir.to_owned(),
            regions,
            names,
            directory_dirty: false,
        })
    }

    fn create_region(&mut self, name: &str) -> Outcome<usize> {
        let file = open_region_file(&self.dir.join(name), true)?;
        self.regions.push(Some(RegionFile {
            file,
            len: 0,
            dirty: false,
        }));
        self.names.push(name.to_owned());
        self.directory_dirty = true;
        Ok(self.regions.len() - 1)
    }

    fn append_all<S: Source>(&mut self, source: &mut S) -> Outcome<()> {
        while let Some((handle, data)) = source.next_append() {
            let region = self
                .regions
                .get_mut(handle)
                .and_then(Option::as_mut)
                .ok_or_else(|| format!("unknown region {handle}"))?;
            region.file.write_all(data).map_err(failed("append"))?;
            region.len += data.len() as u64;
            region.dirty = true;
        }
        Ok(())
    }

    fn flush(&mut self) -> Outcome<()> {
        for region in self.regions.iter_mut().flatten() {
            if region.dirty {
                region.file.sync_data().map_err(failed("sync_data"))?;
                region.dirty = false;
            }
        }
        if self.directory_dirty {
            File::open(&self.dir)
                .and_then(|dir| dir.sync_all())
                .map_err(failed("sync directory"))?;
            self.directory_dirty = false;
        }
        Ok(())
    }

    fn flush_then_punch(&mut self) -> Outcome<bool> {
        self.flush()?;
        Ok(false)
    }

    fn remove_region(&mut self, region: usize) -> Outcome<()> {
        if self
            .regions
            .get_mut(region)
            .and_then(Option::take)
            .is_none()
        {
            return Err(format!("unknown region {region}"));
        }
        let path = self.dir.join(&self.names[region]);
        fs::remove_file(&path).map_err(|e| format!("remove {}: {e}", path.display()))?;
        self.directory_dirty = true;
        Ok(())
    }

    fn region_len(&self, region: usize) -> Outcome<u64> {
        Ok(self.region(region)?.len)
    }

    fn totals(&self) -> Outcome<(u64, u64)> {
        let mut count = 0;
        let mut bytes = 0;
        for region in self.regions.iter().flatten() {
            count += 1;
            bytes += region.len;
        }
        Ok((count, bytes))
    }

    fn read_sum(&self, region: usize, indexes: &[u64], _reader_per_read: bool) -> Outcome<u64> {
        // A file needs no reader object: both modes are the same `pread` per read.
        let file = &self.region(region)?.file;
        let mut sum = 0u64;
        let mut buffer = [0u8; 8];
        for &index in indexes {
            file.read_exact_at(&mut buffer, index * 8)
                .map_err(failed("read_exact_at"))?;
            sum = sum.wrapping_add(decode_u64(&buffer)?);
        }
        Ok(sum)
    }
}
