//! The database handle: opening, the region table, and the operations on names.
//!
//! The locking rules that keep the handle free of deadlocks are written once, in
//! `docs/ARCHITECTURE.md` ("Locking"); every lock taken here follows them.

use std::collections::HashSet;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::{Mutex, RwLock};
use snafu::ResultExt;

use seqdb_layout::Layout;
use seqdb_sys::{DataFile, FileOptions, Hooks, Lock, LockedFile};

use crate::diagnosis::Validated;
use crate::error::{
    CorruptSnafu, DirectorySnafu, LayoutSnafu, NameTooLongSnafu, NotADirectorySnafu, ReadOnlySnafu,
    RegionExistsSnafu, SysSnafu, TooManyRegionsSnafu, UnknownRegionSnafu,
};
pub(crate) use crate::format::MAX_REGION_NUMBER;
use crate::format::{DatabaseId, MAX_NAME_LEN};
use crate::free_numbers::FreeNumbers;
use crate::meta_log::{META_FILE, MetaLog};
use crate::name_index::NameIndex;
use crate::opening::{self, Opened};
use crate::place::Place;
use crate::reader_release::{self, KeptSpace};
use crate::readers_file::{self, Attachment};
use crate::recovery::RecoveryReport;
use crate::region::RegionState;
use crate::replay::Placed;
use crate::retired::Retired;
use crate::sums::RegionSums;
use crate::tail::Budget;
use crate::{Error, Identifier, OpenOptions, Region, Result};

/// Source of [`Inner::id`].
static NEXT_DATABASE_ID: AtomicU64 = AtomicU64::new(1);

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
    /// The database's id in the headers of its files.
    pub file_id: DatabaseId,
    /// What recovery did, when the open recovered past damage.
    pub recovery: Option<RecoveryReport>,
    /// This handle's place in the readers file (none where the platform has no range
    /// locks).
    pub attachment: Option<Attachment>,
}

/// Which regions exist, by number and by name, and where they live.
pub(crate) struct Table {
    /// Regions by number; `None` where a number is free.
    pub slots: Vec<Option<Place>>,
    /// Free numbers below `slots.len()`; the lowest is given to the next new region.
    pub free: FreeNumbers,
    pub by_name: NameIndex,
    pub layout: Layout,
    /// Regions removed since the last commit's snapshot.
    pub removed: Vec<u64>,
    /// Extents regions left while readers still view them.
    pub retired: Vec<Retired>,
    /// Commits whose freed space reader processes may still view (`reader_release.rs`).
    pub kept: KeptSpace,
}

/// The metadata log and the generation of the newest durable commit.
pub(crate) struct Commit {
    pub log: Option<MetaLog>,
    pub generation: u64,
    /// Each region's chunk checksums as the newest commit recorded them, by number.
    pub sums: Vec<Option<RegionSums>>,
    /// Bytes the commits since the data file was last synced carried inline (what an
    /// open after a crash may have to redo).
    pub unsynced: u64,
    /// The data file header's slot commits stamp until the next data sync (the other
    /// holds the stamp of the last commit the data file was synced for).
    pub stamp_slot: usize,
}

impl Table {
    /// A region's lock (made now if this is the region's first lookup).
    pub fn slot(&self, id: &Identifier) -> Option<&Slot> {
        let number = match id {
            Identifier::Name(name) => self.by_name.get(name)?,
            Identifier::Number(n) => *n,
        };
        Some(self.slots.get(number)?.as_ref()?.slot(number))
    }

    /// Every region's lock, ordered by number (made now for regions not looked up yet).
    pub fn live_slots(&self) -> Vec<(usize, Slot)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(n, place)| Some((n, place.as_ref()?.slot(n).clone())))
            .collect()
    }

    /// The locks made so far: a region not looked up since open has none, and no tail,
    /// lent buffer, reader or published snapshot either.
    pub fn made_slots(&self) -> impl Iterator<Item = &Slot> {
        self.slots.iter().flatten().filter_map(Place::made_slot)
    }

    /// Number of regions.
    pub fn count(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// The number the next new region gets.
    fn next_free(&self) -> usize {
        self.free.first().unwrap_or(self.slots.len())
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
    ///
    /// The data file is mapped into memory, and [`Reader`](crate::Reader)s hand out
    /// slices of that map. The lock keeps other handles of this crate out, but it is
    /// advisory: anything else that writes or truncates the data file while the database
    /// is open changes bytes under those slices, or makes reading them raise `SIGBUS`.
    /// Change a database's files only through this crate; see
    /// [Safety of the memory map](crate#safety-of-the-memory-map).
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, &OpenOptions::new())
    }

    /// Open an existing database for reading only (a shared lock: other read-only handles
    /// may coexist, a read-write handle may not). The data file is mapped as for
    /// [`open`](Self::open), with the same rule: nothing else may write or truncate it
    /// while the handle lives.
    pub fn open_read_only(path: &Path) -> Result<Self> {
        Self::open_with(path, &OpenOptions::new().read_only(true))
    }

    pub(crate) fn open_with(path: &Path, options: &OpenOptions) -> Result<Self> {
        let read_only = options.read_only;
        let hooks = &options.hooks;
        let created = prepare_directory(path, read_only, hooks)?;
        crate::backup::refuse_incomplete(path)?;
        let data_path = path.join(DATA_FILE);
        let data_existed = data_path.exists();
        let file = LockedFile::open(
            &data_path,
            &FileOptions {
                // With range locks, the one-writer rule is the readers file's; the data
                // file's shared lock only keeps out builds that lock it exclusively.
                lock: if read_only || seqdb_sys::RANGE_LOCKS {
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
            source => Error::sys(source),
        })?;
        if !data_existed {
            // The new file's entry; and the directory's own, which an earlier open that
            // created the directory and then crashed may never have synced.
            seqdb_sys::sync_dir(path, hooks).context(SysSnafu)?;
            if !created {
                seqdb_sys::sync_dir(parent_of(path), hooks).context(SysSnafu)?;
            }
        }
        let (attachment, beside_writer) = readers_file::attach(path, read_only)?;
        let data_len = file.len().context(SysSnafu)?;
        let Opened {
            log,
            entries,
            validated,
            next_number,
            generation,
            file_id,
            recovery,
            unsynced,
            stamp_slot,
        } = match opening::open_files(path, &file, data_len, options, beside_writer) {
            // A writer that arrived while the log was read may have left what looked like
            // damage: read it again as a reader beside a writer does.
            Err(Error::Corrupt { .. } | Error::NeedsRecovery { .. })
                if !beside_writer
                    && matches!(&attachment, Some(Attachment::Reader(slot))
                        if slot.file().writer_present().unwrap_or(false)) =>
            {
                opening::open_files(path, &file, file.len().context(SysSnafu)?, options, true)?
            }
            opened => opened?,
        };
        match &attachment {
            Some(Attachment::Reader(slot)) => slot.publish(generation)?,
            Some(Attachment::Writer(file)) => file.mark_ready()?,
            None => {}
        }
        let (mut table, sums) = build_table(path, entries, validated, next_number)?;
        reader_release::keep_free_at_open(attachment.as_ref(), &mut table, generation, data_len)?;
        let data = DataFile::new(file).context(SysSnafu)?;
        Ok(Database {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                read_only,
                data,
                table: RwLock::new(table),
                commit: Mutex::new(Commit {
                    log,
                    generation,
                    sums,
                    unsynced,
                    stamp_slot,
                }),
                dirty: Mutex::new(Vec::new()),
                lent: Mutex::new(Vec::new()),
                buffered: Budget::default(),
                poisoned: OnceLock::new(),
                id: NEXT_DATABASE_ID.fetch_add(1, Ordering::Relaxed),
                file_id,
                recovery,
                attachment,
            }),
        })
    }

    /// What the open that made this handle did to recover past damage, when it was
    /// asked to ([`OpenOptions::recover`]) and found some; `None` otherwise.
    pub fn recovery_report(&self) -> Option<&RecoveryReport> {
        self.inner.recovery.as_ref()
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
        let slot = Some(Place::made(Arc::new(RwLock::new(state))));
        if number == table.slots.len() {
            table.slots.push(slot);
        } else {
            table.free.remove(number);
            table.slots[number] = slot;
        }
        table.by_name.insert(name, number);
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
    ///
    /// The regions are read in number order, each at an instant no earlier than the
    /// one before it: a listing that shows a change shows every change to a region of
    /// a higher number made before it.
    pub fn regions(&self) -> Vec<Region> {
        // Read under the table's lock, in one pass: a region not looked up since open as
        // open found it, without making its state (`place.rs`), the others under their
        // locks, taken with `try_` (rule 1). A region whose lock is held is read after
        // the table's lock is released, and the pass goes on past it under the table's
        // lock taken again, so that no region is read earlier than one below it.
        let mut listed = Vec::new();
        let mut from = 0;
        loop {
            let busy = {
                let table = self.inner.table.read();
                let mut busy = None;
                for (number, place) in table.slots.iter().enumerate().skip(from) {
                    let Some(place) = place else { continue };
                    if let Some(region) = place.untouched_region(number) {
                        listed.push(region);
                        continue;
                    }
                    let Some(slot) = place.made_slot() else {
                        continue;
                    };
                    match slot.try_read_recursive() {
                        Some(region) => {
                            if !region.is_removed() {
                                listed.push(region.snapshot());
                            }
                        }
                        None => {
                            busy = Some((number, slot.clone()));
                            break;
                        }
                    }
                }
                busy
            };
            let Some((number, slot)) = busy else {
                return listed;
            };
            let region = slot.read_recursive();
            if !region.is_removed() {
                listed.push(region.snapshot());
            }
            from = number + 1;
        }
    }

    /// Remove a region; returns its last metadata, or `None` when there was no such
    /// region. Its space is reused after the next flush, or once the last reader of the
    /// region is dropped if that comes later: readers keep their snapshots.
    pub fn remove_region(&self, id: Identifier) -> Result<Option<Region>> {
        self.remove_region_if(id, |_| true)
    }

    /// Remove a region if `remove` says so of it, asked under the region's lock (so
    /// nothing renames, removes or replaces it in between); returns its last metadata,
    /// or `None` when there was no such region or `remove` kept it.
    fn remove_region_if(
        &self,
        id: Identifier,
        remove: impl FnOnce(&RegionState) -> bool,
    ) -> Result<Option<Region>> {
        self.inner.check_writable()?;
        let Ok(slot) = self.inner.slot(&id) else {
            return Ok(None);
        };
        let mut region = slot.write();
        if region.is_removed() || !remove(&region) {
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
    ///
    /// Each region is removed only if its name, when it is removed, is not in `names`:
    /// a region listed under another name and renamed since, or a new region given the
    /// number of one listed and removed since, stays when its name is kept.
    pub fn retain_regions(&self, names: HashSet<String>) -> Result<()> {
        for region in self.regions() {
            if !names.contains(region.name()) {
                self.remove_region_if(Identifier::Number(region.number()), |now| {
                    !names.contains(now.name())
                })?;
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
        table.by_name.insert(new_name, region.number());
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
                source: crate::error::IoError::new(cause.clone()),
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
                Error::Sys { source }
                    if matches!(source.sys(), seqdb_sys::Error::RangeBusy { .. }) => {}
                Error::Sys { source } | Error::Poisoned { source, .. } => self.poison(source.sys()),
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

/// Build the region table from validated entries (ordered by number).
fn build_table(
    path: &Path,
    mut entries: Vec<Placed>,
    validated: Validated,
    next_number: u64,
) -> Result<(Table, Vec<Option<RegionSums>>)> {
    let next = match usize::try_from(next_number) {
        Ok(next) if next_number <= MAX_REGION_NUMBER => next,
        _ => {
            return CorruptSnafu {
                path: path.join(META_FILE),
                offset: 0u64,
                reason: format!("region number bound {next_number} is too large"),
            }
            .fail();
        }
    };
    let mut sums: Vec<Option<RegionSums>> = Vec::with_capacity(next);
    // Read in place rather than moved out one by one: an entry is large.
    for Placed { entry } in entries.iter_mut() {
        // Numbers are ordered and below `next`: the numbers skipped are free.
        let number = entry.number as usize;
        while sums.len() < number {
            sums.push(None);
        }
        sums.push(Some(RegionSums::new(
            entry.len,
            std::mem::take(&mut entry.crcs),
        )));
    }
    sums.resize_with(next, || None);
    // Each entry becomes its region's place in the entries' own memory: the standard
    // library collects a vector mapped to items no larger and no more aligned into the
    // allocation it came from (an optimisation it makes, not a promise; without it the
    // table takes fresh memory, as it did), and a first open pays for every fresh page.
    // Then the places move to their numbers. Each region's state is made when it is
    // first looked up (`place.rs`).
    let numbers: Vec<u32> = match entries.last() {
        Some(last) if last.entry.number as usize + 1 != entries.len() => {
            entries.iter().map(|p| p.entry.number as u32).collect()
        }
        _ => Vec::new(),
    };
    let mut slots: Vec<Option<Place>> = entries
        .into_iter()
        .map(|Placed { entry }| {
            Some(Place::found(
                entry.name,
                entry.start,
                entry.reserved,
                entry.len,
            ))
        })
        .collect();
    slots.resize_with(next, || None);
    // From the last: each place moves up to its number, over places already moved on.
    for (at, &number) in numbers.iter().enumerate().rev() {
        slots.swap(at, number as usize);
    }
    let free = FreeNumbers::from_numbers((0..next).filter(|&n| slots[n].is_none()));
    let Validated { by_name, layout } = validated;
    let table = Table {
        slots,
        free,
        by_name,
        layout,
        removed: Vec::new(),
        retired: Vec::new(),
        kept: KeptSpace::default(),
    };
    Ok((table, sums))
}
