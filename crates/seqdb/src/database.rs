//! The database handle: opening, the region table, and the operations on names.
//!
//! Locking rules (they are what keeps the handle free of deadlocks):
//! 1. The table lock is never held while blocking on a region lock; under the table lock
//!    only `try_` region locks are taken.
//! 2. An operation that needs both takes the region lock first, then the table lock.
//! 3. Nothing waits for a region's write lock while holding the commit lock, nor while
//!    making a reader: those take it with `try_` and look again.
//! 4. Compaction takes every region's write lock with `try_`, or none.
//! 5. The commit lock is taken before any region or table lock.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::{Mutex, RwLock};
use snafu::ResultExt;

use seqdb_layout::{Layout, Placement};
use seqdb_sys::{DataFile, FileOptions, Hooks, Lock, LockedFile};

use crate::error::{
    CorruptSnafu, DirectorySnafu, LayoutSnafu, MissingMetadataSnafu, NameTooLongSnafu,
    NotADirectorySnafu, ReadOnlySnafu, RegionExistsSnafu, SysSnafu, TooManyRegionsSnafu,
    UnknownRegionSnafu,
};
use crate::format::{self, MAX_NAME_LEN, Record, RecordKind};
use crate::meta_log::{META_FILE, META_TMP_FILE, MetaLog, Recovered};
use crate::region::RegionState;
use crate::retired::Retired;
use crate::tail::Budget;
use crate::{Error, Identifier, OpenOptions, Region, Result};

/// Source of [`Inner::id`].
static NEXT_DATABASE_ID: AtomicU64 = AtomicU64::new(1);

/// Region numbers stay below this bound (a larger one in a file is corruption): it caps
/// what a damaged or crafted metadata file can make `open` allocate.
pub(crate) const MAX_REGION_NUMBER: u64 = 1 << 24;

/// Name of the data file inside the database directory.
pub(crate) const DATA_FILE: &str = "data";

pub(crate) type Slot = Arc<RwLock<RegionState>>;

/// A database: one directory holding many named, growable byte regions.
///
/// Cheap to clone (clones share one open database), `Send` and `Sync`. See the crate
/// documentation for an overview and the durability contract.
#[derive(Clone)]
pub struct Database {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub path: PathBuf,
    pub read_only: bool,
    pub data: DataFile,
    pub table: RwLock<Table>,
    pub commit: Mutex<Commit>,
    /// Numbers of regions changed since the last commit's snapshot.
    pub dirty: Mutex<Vec<usize>>,
    /// Numbers of regions that lent a buffer to an appending thread: every flush looks
    /// at them, since those appends mark nothing dirty.
    pub lent: Mutex<Vec<usize>>,
    /// Bytes held in regions' in-memory tails, counted in whole pages.
    pub buffered: Budget,
    /// The first failure after which the files' state is unknown (see `Error::Poisoned`).
    pub poisoned: OnceLock<seqdb_sys::Error>,
    /// Unique among the databases this process opened (appends cache regions by it).
    pub id: u64,
}

/// Which regions exist, by number and by name, and where they live.
pub(crate) struct Table {
    /// Regions by number; `None` where a number is free.
    pub slots: Vec<Option<Slot>>,
    /// Free numbers below `slots.len()`; the lowest is given to the next new region.
    pub free: BTreeSet<usize>,
    pub by_name: HashMap<String, usize>,
    pub layout: Layout,
    /// Regions removed since the last commit's snapshot.
    pub removed: Vec<u64>,
    /// Extents regions left while readers still view them.
    pub retired: Vec<Retired>,
}

/// The metadata log and the generation of the newest durable commit.
pub(crate) struct Commit {
    pub log: Option<MetaLog>,
    pub generation: u64,
}

impl Table {
    pub fn slot(&self, id: &Identifier) -> Option<&Slot> {
        match id {
            Identifier::Name(name) => self.slots.get(*self.by_name.get(name)?)?.as_ref(),
            Identifier::Number(n) => self.slots.get(*n)?.as_ref(),
        }
    }

    /// Every region's lock, ordered by number.
    pub fn live_slots(&self) -> Vec<(usize, Slot)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(n, s)| Some((n, s.clone()?)))
            .collect()
    }

    /// Number of regions.
    pub fn count(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// The number the next new region gets.
    fn next_free(&self) -> usize {
        self.free.first().copied().unwrap_or(self.slots.len())
    }
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("path", &self.inner.path)
            .field("read_only", &self.inner.read_only)
            .finish_non_exhaustive()
    }
}

impl Database {
    /// Open the database in directory `path` for reading and writing, creating the
    /// directory and its files if needed. Fails with [`Error::AlreadyOpen`] while another
    /// handle or process has it open.
    ///
    /// The lock is an advisory `flock` on the data file. A child process forked while the
    /// database is open shares it until the child executes a new program (the files are
    /// opened close-on-exec), so right after a drop the database can still look open for
    /// that moment.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, &OpenOptions::new())
    }

    /// Open an existing database for reading only (a shared lock: other read-only handles
    /// may coexist, a read-write handle may not).
    pub fn open_read_only(path: &Path) -> Result<Self> {
        Self::open_with(path, &OpenOptions::new().read_only(true))
    }

    pub(crate) fn open_with(path: &Path, options: &OpenOptions) -> Result<Self> {
        let read_only = options.read_only;
        let hooks = &options.hooks;
        let created = prepare_directory(path, read_only, hooks)?;
        let data_path = path.join(DATA_FILE);
        let data_existed = data_path.exists();
        let file = LockedFile::open(
            &data_path,
            &FileOptions {
                lock: if read_only {
                    Lock::Shared
                } else {
                    Lock::Exclusive
                },
                write: !read_only,
                create: !read_only,
                truncate: false,
                hooks: hooks.clone(),
            },
        )
        .map_err(|source| match source {
            seqdb_sys::Error::Locked { .. } => Error::AlreadyOpen {
                path: path.to_owned(),
            },
            source => Error::Sys { source },
        })?;
        if !data_existed {
            // The new file's entry; and the directory's own, which an earlier open that
            // created the directory and then crashed may never have synced.
            seqdb_sys::sync_dir(path, hooks).context(SysSnafu)?;
            if !created {
                seqdb_sys::sync_dir(parent_of(path), hooks).context(SysSnafu)?;
            }
        }
        let data_len = file.len().context(SysSnafu)?;
        let (log, recovered) = open_metadata(path, &data_path, data_len, read_only, hooks.clone())?;
        let table = build_table(
            path,
            recovered.regions.into_values(),
            recovered.next_number,
            data_len,
        )?;
        let data = DataFile::new(file).context(SysSnafu)?;
        Ok(Database {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                read_only,
                data,
                table: RwLock::new(table),
                commit: Mutex::new(Commit {
                    log,
                    generation: recovered.generation,
                }),
                dirty: Mutex::new(Vec::new()),
                lent: Mutex::new(Vec::new()),
                buffered: Budget::default(),
                poisoned: OnceLock::new(),
                id: NEXT_DATABASE_ID.fetch_add(1, Ordering::Relaxed),
            }),
        })
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Return the region named `name`, creating an empty one if there is none. Returns
    /// the region's number (usable as an [`Identifier`]) and its metadata.
    pub fn create_region_if_needed(&self, name: &str) -> Result<(usize, Region)> {
        if let Ok(region) = self.get_region(Identifier::from(name)) {
            return Ok((region.number(), region));
        }
        self.inner.check_writable()?;
        ensure_name(name)?;
        let inner = &self.inner;
        let mut table = inner.table.write();
        if table.by_name.contains_key(name) {
            // Created by another thread meanwhile.
            drop(table);
            return self.create_region_if_needed(name);
        }
        let number = table.next_free();
        snafu::ensure!(
            (number as u64) < MAX_REGION_NUMBER,
            TooManyRegionsSnafu {
                path: &inner.path,
                limit: MAX_REGION_NUMBER,
            }
        );
        let placement = table
            .layout
            .insert(number as u64, 0)
            .context(LayoutSnafu { path: &inner.path })?;
        let state = RegionState::new(name.to_owned(), number, placement.start, placement.reserved);
        let region = state.snapshot();
        state.mark_dirty();
        let slot = Some(Arc::new(RwLock::new(state)));
        if number == table.slots.len() {
            table.slots.push(slot);
        } else {
            table.free.remove(&number);
            table.slots[number] = slot;
        }
        table.by_name.insert(name.to_owned(), number);
        inner.dirty.lock().push(number);
        Ok((number, region))
    }

    /// The metadata of one region.
    pub fn get_region(&self, id: Identifier) -> Result<Region> {
        let slot = self.inner.slot(&id)?;
        let region = slot.read_recursive();
        if region.is_removed() {
            return self.inner.unknown(&id);
        }
        Ok(region.snapshot())
    }

    /// Every region's metadata, ordered by number.
    pub fn regions(&self) -> Vec<Region> {
        let slots = self.inner.table.read().live_slots();
        slots
            .iter()
            .map(|(_, slot)| slot.read_recursive())
            .filter(|region| !region.is_removed())
            .map(|region| region.snapshot())
            .collect()
    }

    /// Remove a region; returns its last metadata, or `None` when there was no such
    /// region. Its space is reused after the next flush, or once the last reader of the
    /// region is dropped if that comes later: readers keep their snapshots.
    pub fn remove_region(&self, id: Identifier) -> Result<Option<Region>> {
        self.inner.check_writable()?;
        let Ok(slot) = self.inner.slot(&id) else {
            return Ok(None);
        };
        let mut region = slot.write();
        if region.is_removed() {
            return Ok(None);
        }
        let inner = &self.inner;
        let mut table = inner.table.write();
        let placement = table
            .layout
            .remove(region.number() as u64)
            .context(LayoutSnafu { path: &inner.path })?;
        table.by_name.remove(region.name());
        table.slots[region.number()] = None;
        table.free.insert(region.number());
        table.removed.push(region.number() as u64);
        let last = region.snapshot();
        // Before the number is free: appends still arriving in a lent buffer are lost with
        // the region, and none may reach a region that gets its number next; and no
        // thread's remembered snapshot may stand for the region that gets it.
        inner.unlend(&mut region);
        let hold = region.mark_removed(&inner.buffered);
        let retired = inner.retire(&mut table, placement.extent(), hold);
        drop(table);
        retired?;
        Ok(Some(last))
    }

    /// Remove every region whose name is not in `names`.
    pub fn retain_regions(&self, names: HashSet<String>) -> Result<()> {
        for region in self.regions() {
            if !names.contains(region.name()) {
                self.remove_region(Identifier::Number(region.number()))?;
            }
        }
        Ok(())
    }

    /// Give a region a new name; its number and bytes stay. Fails with
    /// [`Error::RegionExists`] when another region has that name.
    pub fn rename_region(&self, id: Identifier, new_name: &str) -> Result<()> {
        self.inner.check_writable()?;
        ensure_name(new_name)?;
        let slot = self.inner.slot(&id)?;
        let mut region = slot.write();
        if region.is_removed() {
            return self.inner.unknown(&id);
        }
        if region.name() == new_name {
            return Ok(());
        }
        let inner = &self.inner;
        let mut table = inner.table.write();
        if table.by_name.contains_key(new_name) {
            return RegionExistsSnafu {
                path: &inner.path,
                name: new_name,
            }
            .fail();
        }
        table.by_name.remove(region.name());
        table.by_name.insert(new_name.to_owned(), region.number());
        region.rename(new_name.to_owned());
        // Before the table lock is released: a flush that sees the new name taken must
        // also see this region under it.
        inner.note_dirty(&region);
        drop(table);
        Ok(())
    }

    /// Make room for at least `regions` regions without reallocating the region table.
    pub fn set_min_regions(&self, regions: usize) -> Result<()> {
        let mut table = self.inner.table.write();
        let missing = regions.saturating_sub(table.count());
        table.slots.reserve(missing);
        table.by_name.reserve(missing);
        Ok(())
    }
}

impl Inner {
    /// The region's lock, found without holding the table lock afterwards.
    pub fn slot(&self, id: &Identifier) -> Result<Slot> {
        let table = self.table.read();
        match table.slot(id) {
            Some(slot) => Ok(slot.clone()),
            None => self.unknown(id),
        }
    }

    pub fn unknown<T>(&self, id: &Identifier) -> Result<T> {
        UnknownRegionSnafu {
            path: &self.path,
            region: id.to_string(),
        }
        .fail()
    }

    #[inline]
    pub fn check_writable(&self) -> Result<()> {
        if self.read_only {
            return ReadOnlySnafu { path: &self.path }.fail();
        }
        if let Some(cause) = self.poisoned.get() {
            return Err(Error::Poisoned {
                path: self.path.clone(),
                source: cause.clone(),
            });
        }
        Ok(())
    }

    /// Refuse all further changes until the database is reopened: after `error` the
    /// files' state is unknown (bytes half moved, or a sync, metadata write or rename
    /// failed). The first failure is the one reported.
    pub fn poison(&self, error: &seqdb_sys::Error) {
        let _ = self.poisoned.set(error.clone());
    }

    /// The result of a step whose failure leaves the files in an unknown state (a sync,
    /// a metadata write, a rename, a directory sync): an error poisons the handle, unless
    /// it refused the operation before it ran (a range in use by a reader).
    pub fn final_on_error<T>(&self, result: Result<T>) -> Result<T> {
        if let Err(error) = &result {
            match error {
                Error::Sys {
                    source: seqdb_sys::Error::RangeBusy { .. },
                } => {}
                Error::Sys { source } | Error::Poisoned { source, .. } => self.poison(source),
                other => self.poison(&seqdb_sys::Error::Io {
                    path: self.path.clone(),
                    op: "flush",
                    offset: 0,
                    source: std::io::Error::other(other.to_string()),
                }),
            }
        }
        result
    }

    /// Put a region in the dirty list unless it is there already.
    #[inline]
    pub fn note_dirty(&self, region: &RegionState) {
        if region.mark_dirty() {
            self.dirty.lock().push(region.number());
        }
    }
}

fn ensure_name(name: &str) -> Result<()> {
    snafu::ensure!(
        name.len() <= MAX_NAME_LEN,
        NameTooLongSnafu { len: name.len() }
    );
    Ok(())
}

/// Make sure `path` is a directory. When writable and missing, create it and every
/// missing directory above it, and sync the parent of each, top-down, so that their
/// entries survive a power cut. Returns whether `path` was created.
fn prepare_directory(path: &Path, read_only: bool, hooks: &Hooks) -> Result<bool> {
    match fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Ok(false),
        Ok(_) => NotADirectorySnafu { path }.fail(),
        Err(e) if e.kind() == ErrorKind::NotFound && !read_only => {
            // The directories `create_dir_all` is about to make, deepest first.
            let missing: Vec<&Path> = path
                .ancestors()
                .filter(|dir| !dir.as_os_str().is_empty())
                .take_while(
                    |dir| matches!(fs::metadata(dir), Err(e) if e.kind() == ErrorKind::NotFound),
                )
                .collect();
            fs::create_dir_all(path).context(DirectorySnafu { path })?;
            // A directory's entry lives in its parent. The database directory itself is
            // synced once its files exist.
            for dir in missing.iter().rev() {
                seqdb_sys::sync_dir(parent_of(dir), hooks).context(SysSnafu)?;
            }
            Ok(true)
        }
        Err(source) => Err(Error::Directory {
            path: path.to_owned(),
            source,
        }),
    }
}

/// The directory holding `path` (`.` for a bare name).
fn parent_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Read the metadata log, or start one for a new database.
fn open_metadata(
    dir: &Path,
    data_path: &Path,
    data_len: u64,
    read_only: bool,
    hooks: Hooks,
) -> Result<(Option<MetaLog>, Recovered)> {
    let meta_path = dir.join(META_FILE);
    if !read_only {
        match fs::remove_file(dir.join(META_TMP_FILE)) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(source) => {
                return Err(Error::Directory {
                    path: dir.to_owned(),
                    source,
                });
            }
        }
    }
    if meta_path.exists() {
        return MetaLog::open(dir, !read_only, hooks);
    }
    if data_len > 0 {
        return MissingMetadataSnafu {
            data: data_path,
            meta: meta_path,
        }
        .fail();
    }
    if read_only {
        return Ok((None, Recovered::default()));
    }
    let empty = Record {
        generation: 0,
        kind: RecordKind::Checkpoint,
        next_number: 0,
        removed: Vec::new(),
        upserts: Vec::new(),
    };
    let log = MetaLog::create(dir, &empty, hooks)?;
    Ok((Some(log), Recovered::default()))
}

/// Rebuild the region table from recovered entries, checking everything a damaged or
/// foreign file could get wrong.
fn build_table(
    path: &Path,
    entries: impl ExactSizeIterator<Item = format::RegionEntry>,
    next_number: u64,
    data_len: u64,
) -> Result<Table> {
    let meta_path = path.join(META_FILE);
    let corrupt = |reason: String| -> Result<Table> {
        CorruptSnafu {
            path: &meta_path,
            offset: 0u64,
            reason,
        }
        .fail()
    };
    let next = match usize::try_from(next_number) {
        Ok(next) if next_number <= MAX_REGION_NUMBER => next,
        _ => return corrupt(format!("region number bound {next_number} is too large")),
    };
    let mut slots: Vec<Option<Slot>> = Vec::new();
    if slots.try_reserve_exact(next).is_err() {
        return corrupt(format!("no memory for {next_number} region numbers"));
    }
    slots.resize_with(next, || None);
    let mut by_name = HashMap::with_capacity(entries.len());
    let mut placements = Vec::with_capacity(entries.len());
    for entry in entries {
        let number = entry.number as usize;
        if entry.number >= next_number {
            return corrupt(format!(
                "region {:?} has number {} but numbers end at {next_number}",
                entry.name, entry.number
            ));
        }
        match entry.start.checked_add(entry.len) {
            Some(_) if entry.len == 0 => {}
            Some(end) if end <= data_len => {}
            _ => {
                return corrupt(format!(
                    "region {:?} ends at {} + {} but the data file holds {data_len} bytes",
                    entry.name, entry.start, entry.len
                ));
            }
        }
        if by_name.insert(entry.name.clone(), number).is_some() {
            return corrupt(format!("two regions are named {:?}", entry.name));
        }
        placements.push((
            entry.number,
            Placement {
                start: entry.start,
                reserved: entry.reserved,
                len: entry.len,
            },
        ));
        slots[number] = Some(Arc::new(RwLock::new(RegionState::from_entry(
            entry, number,
        ))));
    }
    let free = (0..next).filter(|&n| slots[n].is_none()).collect();
    let layout =
        Layout::from_placements(placements, u64::MAX).map_err(|source| Error::Corrupt {
            path: meta_path.clone(),
            offset: 0,
            reason: source.to_string(),
        })?;
    Ok(Table {
        slots,
        free,
        by_name,
        layout,
        removed: Vec::new(),
        retired: Vec::new(),
    })
}
