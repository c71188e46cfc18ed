//! Power-loss simulation.
//!
//! A workload (appends, overwrites, truncations, creations, removals, renames, growth
//! that moves regions, compaction, hole punching, reopens, and readers held across all of
//! these, each checked after every commit to still show the bytes it was taken with)
//! runs with a sync observer that
//! captures the database's files (`data`, `meta`, `meta.tmp`, with their inode numbers) at
//! every sync barrier. Between two captures, any subset of the pages that differ may have
//! reached the disk, so a crash image is the state at barrier `k` plus a subset of the
//! pages written before barrier `k + 1`: none, all, each alone, all but one, random
//! subsets, and metadata pages torn after a prefix. A file whose inode changed (the
//! checkpoint's rename of `meta.tmp` over `meta`) is either the old file or the new one,
//! never a mix; a file length is the old or the new one.
//!
//! Every image is written to a fresh directory and opened. The open must succeed (before
//! the first commit an error is tolerated), and the recovered generation must be the last
//! commit whose flush returned before barrier `k`, or one in flight then whose record
//! happens to be complete. The regions must equal the workload's model at that
//! generation: names, numbers, lengths and bytes. Bytes inside a committed length that
//! were rewritten after that commit may read as any version the workload wrote there
//! since, page by page (the documented contract). Some images are also opened read-only
//! first, and some are written to and flushed after recovery, then reopened.
//!
//! Counts: `SEQDB_STRESS_SCALE=<n>` runs `n` workload seeds per test, each with the full
//! image budget; `SEQDB_SEED=<seed>` replays one seed. A failure prints its seed, barrier
//! and image, and keeps the image directory.

mod support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use seqdb::{Database, Identifier, OpenOptions, SyncEvent, SyncObserver};
use support::held::HeldReaders;
use support::images::{Capture, Interval, PAGE, Recorder, Subset};
use support::{Budget, Opened, Rng};

/// A durable commit as the workload saw it.
struct Commit {
    /// Region name to (number, bytes).
    state: BTreeMap<String, (usize, Arc<Vec<u8>>)>,
    /// Barriers completed when the flush that made it started.
    started: usize,
    /// Barriers completed when that flush returned.
    durable: usize,
    /// Versions of committed bytes rewritten after this commit, by region number: each
    /// is as long as the committed region, and holds, at every byte, the last value the
    /// workload may have written there.
    rewrites: HashMap<usize, Vec<Arc<Vec<u8>>>>,
}

/// Shape of a workload.
struct Config {
    names: Vec<String>,
    /// Commits to make before stopping.
    commits: usize,
    /// Percent of steps that flush.
    flush_percent: u64,
    /// Bytes of live data above which the workload shrinks instead of growing.
    max_live: usize,
    /// Deltas the metadata log holds before it is rewritten (the engine's default if
    /// `None`).
    checkpoint_after: Option<u64>,
}

struct Workload {
    rng: Rng,
    dir: PathBuf,
    config: Config,
    recorder: Arc<Mutex<Recorder>>,
    observer: SyncObserver,
    db: Option<Database>,
    /// Readers taken during the workload and held across its commits.
    readers: Option<HeldReaders>,
    model: BTreeMap<String, Arc<Vec<u8>>>,
    numbers: BTreeMap<String, usize>,
    commits: BTreeMap<u64, Commit>,
    last_gen: u64,
    /// Per region number, the bytes the file may hold inside the last committed length.
    shadow: HashMap<usize, Vec<u8>>,
    /// Numbers of committed regions removed since the last commit: a new region may
    /// reuse such a number, and its writes do not touch the committed region's bytes.
    removed: HashSet<usize>,
    steps: usize,
    /// Regions seen to move while growing.
    moves: usize,
    compactions: usize,
    /// Readers taken to be held, and commits made while at least one was held.
    readers_held: usize,
    commits_under_readers: usize,
    /// What each step did, with the barrier count before it, to explain failures.
    trace: Vec<(usize, String)>,
}

impl Workload {
    fn new(seed: u64, dir: PathBuf, config: Config) -> Self {
        let recorder = Arc::new(Mutex::new(Recorder::new(dir.clone())));
        recorder.lock().unwrap().capture("before open".to_owned());
        let observed = recorder.clone();
        let observer: SyncObserver = Arc::new(move |event: SyncEvent<'_>| {
            let what = format!("{:?} {}", event.kind, event.path.display());
            observed.lock().unwrap().capture(what);
        });
        let mut workload = Workload {
            rng: Rng(seed),
            dir,
            config,
            recorder,
            observer,
            db: None,
            readers: None,
            model: BTreeMap::new(),
            numbers: BTreeMap::new(),
            commits: BTreeMap::new(),
            last_gen: 0,
            shadow: HashMap::new(),
            removed: HashSet::new(),
            steps: 0,
            moves: 0,
            compactions: 0,
            readers_held: 0,
            commits_under_readers: 0,
            trace: Vec::new(),
        };
        workload.open();
        let gen0 = Commit {
            state: BTreeMap::new(),
            started: 0,
            durable: workload.barriers(),
            rewrites: HashMap::new(),
        };
        workload.commits.insert(0, gen0);
        workload
    }

    fn barriers(&self) -> usize {
        self.recorder.lock().unwrap().captures.len() - 1
    }

    fn open(&mut self) {
        let mut options = OpenOptions::new().sync_observer(self.observer.clone());
        if let Some(bytes) = self.config.checkpoint_after {
            options = options.checkpoint_after(bytes);
        }
        let db = options.open(&self.dir).unwrap();
        assert_eq!(db.stats().unwrap().generation, self.last_gen, "reopen");
        self.readers = Some(HeldReaders::new(db.clone()));
        self.db = Some(db);
    }

    fn readers(&self) -> &HeldReaders {
        self.readers.as_ref().unwrap()
    }

    /// Drop every held reader (each checked first) and the holding thread's handle.
    fn release_readers(&mut self) {
        if let Some(readers) = self.readers.take() {
            readers.stop().unwrap();
        }
    }

    fn db(&self) -> &Database {
        self.db.as_ref().unwrap()
    }

    fn live(&self) -> usize {
        self.model.values().map(|v| v.len()).sum()
    }

    fn existing(&mut self) -> Option<String> {
        if self.model.is_empty() {
            return None;
        }
        let i = self.rng.below(self.model.len() as u64) as usize;
        self.model.keys().nth(i).cloned()
    }

    /// Record that bytes `[from, to)` of region `name` may have been written to the file.
    fn touch(&mut self, name: &str, from: usize, to: usize) {
        let number = self.numbers[name];
        if self.removed.contains(&number) {
            return;
        }
        let commit = self.commits.get_mut(&self.last_gen).unwrap();
        let Some((committed_number, committed)) = commit.state.values().find(|(n, _)| *n == number)
        else {
            return;
        };
        debug_assert_eq!(*committed_number, number);
        let end = to.min(committed.len());
        if from >= end {
            return;
        }
        let current = &self.model[name];
        let shadow = self
            .shadow
            .entry(number)
            .or_insert_with(|| committed.as_ref().clone());
        if shadow[from..end] == current[from..end] {
            return;
        }
        shadow[from..end].copy_from_slice(&current[from..end]);
        commit
            .rewrites
            .entry(number)
            .or_default()
            .push(Arc::new(shadow.clone()));
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        self.rng.bytes(len)
    }

    fn note(&mut self, what: String) {
        let barrier = self.barriers();
        self.trace.push((barrier, what));
    }

    fn step(&mut self) {
        self.steps += 1;
        let roll = self.rng.below(100);
        let grow = self.live() < self.config.max_live;
        let flush_at = 100 - self.config.flush_percent;
        if roll >= flush_at {
            self.flush_step();
            return;
        }
        match roll {
            0..=7 => {
                let name = self.rng.pick(&self.config.names).clone();
                let (number, region) = self.db().create_region_if_needed(&name).unwrap();
                match self.numbers.get(&name) {
                    Some(&n) => assert_eq!(n, number, "create of existing {name}"),
                    None => {
                        assert!(region.is_empty());
                        self.numbers.insert(name.clone(), number);
                        self.model.insert(name.clone(), Arc::new(Vec::new()));
                    }
                }
                self.note(format!(
                    "create {} -> number {number}",
                    support::short(&name)
                ));
            }
            8..=48 => {
                let Some(name) = self.existing() else { return };
                let len = match self.rng.below(20) {
                    _ if !grow => self.rng.range(1, 64) as usize,
                    0 => self.rng.range(16 << 10, 48 << 10) as usize,
                    1..=4 => self.rng.range(400, 6000) as usize,
                    _ => self.rng.range(1, 400) as usize,
                };
                let number = self.numbers[&name];
                // Sometimes a run of appends by number, long enough for the region to
                // lend this thread a buffer.
                let (times, id) = match self.rng.below(4) {
                    0 => (24, Identifier::from(number)),
                    1 => (1, Identifier::from(number)),
                    _ => (1, Identifier::from(name.as_str())),
                };
                let before = self.db().get_region(name.as_str().into()).unwrap().start();
                for _ in 0..times {
                    let data = self.bytes(len);
                    self.db().write_all_to_region(id.clone(), &data).unwrap();
                    let v = Arc::make_mut(self.model.get_mut(&name).unwrap());
                    let from = v.len();
                    v.extend_from_slice(&data);
                    self.touch(&name, from, from + len);
                }
                let after = self.db().get_region(name.as_str().into()).unwrap().start();
                self.moves += usize::from(before != after);
                self.note(format!(
                    "append {len} x{times} to {number} (start {before} -> {after})"
                ));
            }
            49..=55 => {
                let Some(name) = self.existing() else { return };
                let cur = self.model[&name].len();
                let at = self.rng.below(cur as u64 + 1) as usize;
                let len = self.rng.range(1, 3000) as usize;
                let data = self.bytes(len);
                self.db()
                    .write_all_to_region_at(name.as_str().into(), &data, at as u64)
                    .unwrap();
                let v = Arc::make_mut(self.model.get_mut(&name).unwrap());
                if at + len > v.len() {
                    v.resize(at + len, 0);
                }
                v[at..at + len].copy_from_slice(&data);
                self.touch(&name, at, at + len);
                let number = self.numbers[&name];
                self.note(format!("write {len} at {at} of {number} (len {cur})"));
            }
            56..=58 => {
                let Some(name) = self.existing() else { return };
                let cur = self.model[&name].len();
                let at = self.rng.below(cur as u64 + 1) as usize;
                let len = self.rng.below(2000) as usize;
                let data = self.bytes(len);
                self.db()
                    .truncate_write_all_to_region(name.as_str().into(), at as u64, &data)
                    .unwrap();
                let v = Arc::make_mut(self.model.get_mut(&name).unwrap());
                v.truncate(at);
                v.extend_from_slice(&data);
                self.touch(&name, at, at + len);
                let number = self.numbers[&name];
                self.note(format!(
                    "truncate-write {len} at {at} of {number} (len {cur})"
                ));
            }
            59..=64 => {
                let Some(name) = self.existing() else { return };
                let cur = self.model[&name].len() as u64;
                let to = if grow {
                    self.rng.below(cur + 1)
                } else {
                    self.rng.below(cur / 4 + 1)
                };
                self.db().truncate_region(name.as_str().into(), to).unwrap();
                Arc::make_mut(self.model.get_mut(&name).unwrap()).truncate(to as usize);
                let number = self.numbers[&name];
                self.note(format!("truncate {number} from {cur} to {to}"));
            }
            65..=68 => {
                let Some(name) = self.existing() else { return };
                let removed = self.db().remove_region(name.as_str().into()).unwrap();
                assert_eq!(
                    removed.map(|r| r.number()),
                    self.numbers.get(&name).copied()
                );
                self.model.remove(&name);
                let number = self.numbers.remove(&name);
                self.removed.extend(number);
                self.note(format!("remove {number:?}"));
            }
            69..=72 => {
                let Some(name) = self.existing() else { return };
                let to = self.rng.pick(&self.config.names).clone();
                let result = self.db().rename_region(name.as_str().into(), &to);
                if to == name {
                    result.unwrap();
                } else if self.model.contains_key(&to) {
                    assert!(
                        matches!(result, Err(seqdb::Error::RegionExists { .. })),
                        "rename onto an existing name: {result:?}"
                    );
                } else {
                    result.unwrap();
                    let v = self.model.remove(&name).unwrap();
                    self.model.insert(to.clone(), v);
                    let n = self.numbers.remove(&name).unwrap();
                    self.numbers.insert(to, n);
                    self.note(format!("rename {n}"));
                }
            }
            73 => {
                let Some(drop) = self.existing() else { return };
                let keep = self.model.keys().filter(|n| **n != drop).cloned().collect();
                self.db().retain_regions(keep).unwrap();
                self.model.remove(&drop);
                let number = self.numbers.remove(&drop);
                self.removed.extend(number);
                self.note(format!("retain all but {number:?}"));
            }
            74..=75 => {
                let punched = self.db().punch_holes().unwrap();
                self.note(format!("punch holes ({punched} bytes)"));
            }
            76..=77 => {
                // Dropping the last handle flushes: a commit like any other.
                self.flush_step_by(true);
                self.check_live("reopen");
            }
            _ => {
                let Some(name) = self.existing() else { return };
                match self.rng.below(3) {
                    // A reader kept across the next steps and commits.
                    0 => {
                        let number = self.numbers[&name];
                        self.readers()
                            .take(Identifier::Number(number), self.model[&name].clone())
                            .unwrap();
                        let held = self.readers().check().unwrap();
                        self.readers_held += 1;
                        self.note(format!("hold a reader of {number} ({held} held)"));
                    }
                    1 => {
                        let pick = self.rng.next();
                        self.readers().drop_one(pick).unwrap();
                        self.note("drop a held reader".to_owned());
                    }
                    _ => {
                        let reader = self
                            .db()
                            .create_region_reader(name.as_str().into())
                            .unwrap();
                        assert!(
                            reader.read_all() == self.model[&name].as_slice(),
                            "read {name}"
                        );
                    }
                }
            }
        }
    }

    fn flush_step(&mut self) {
        self.flush_step_by(false);
    }

    /// A commit: by `flush`, `flush_then_punch` or `compact`, or with `by_drop` by
    /// dropping the handle and opening the database again.
    fn flush_step_by(&mut self, by_drop: bool) {
        let started = self.barriers();
        let what = match self.rng.below(20) {
            _ if by_drop => {
                // Readers borrow the handle: they go before it.
                self.release_readers();
                drop(self.db.take());
                let db = OpenOptions::new()
                    .sync_observer(self.observer.clone())
                    .open(&self.dir)
                    .unwrap();
                self.readers = Some(HeldReaders::new(db.clone()));
                self.db = Some(db);
                "drop and reopen"
            }
            0 => {
                self.compactions += 1;
                self.db().compact().unwrap();
                "compact"
            }
            1..=3 => {
                self.db().flush_then_punch().unwrap();
                "flush_then_punch"
            }
            _ => {
                self.db().flush().unwrap();
                "flush"
            }
        };
        let generation = self.db().stats().unwrap().generation;
        let layout: Vec<String> = self
            .db()
            .regions()
            .iter()
            .map(|r| format!("{}@{}+{}/{}", r.number(), r.start(), r.len(), r.reserved()))
            .collect();
        self.trace.push((
            started,
            format!(
                "{what} -> generation {generation} (barriers {started}..={}) layout {}",
                self.barriers(),
                layout.join(" ")
            ),
        ));
        assert!(generation >= self.last_gen);
        if generation > self.last_gen {
            let state: BTreeMap<_, _> = self
                .model
                .iter()
                .map(|(name, bytes)| (name.clone(), (self.numbers[name], bytes.clone())))
                .collect();
            for g in self.last_gen + 1..=generation {
                let commit = Commit {
                    state: state.clone(),
                    started,
                    durable: self.barriers(),
                    rewrites: HashMap::new(),
                };
                self.commits.insert(g, commit);
            }
            self.last_gen = generation;
            self.shadow.clear();
            self.removed.clear();
        }
        self.check_live("flush");
        // Held readers still show what they were taken with.
        if self.readers().check().unwrap() > 0 {
            self.commits_under_readers += 1;
        }
    }

    fn check_live(&self, after: &str) {
        let got = support::read_state(self.db()).unwrap();
        let want: support::State = self
            .model
            .iter()
            .map(|(n, b)| (n.clone(), b.as_ref().clone()))
            .collect();
        if let Some(diff) = support::diff_states(&got, &want) {
            panic!("live database differs from the model after {after}: {diff}");
        }
    }

    fn run(&mut self) {
        while self.commits.len() < self.config.commits && self.steps < 100 * self.config.commits {
            self.step();
        }
        // Once the readers are gone, the last commit reclaims every extent they kept.
        self.release_readers();
        self.readers = Some(HeldReaders::new(self.db().clone()));
        self.flush_step();
        let retired = self.db().stats().unwrap().retired_bytes;
        assert_eq!(retired, 0, "extents kept after every reader was dropped");
        self.release_readers();
        drop(self.db.take());
    }
}

/// Checks crash images of one finished workload.
struct Checker<'a> {
    seed: u64,
    commits: &'a BTreeMap<u64, Commit>,
    captures: &'a [Capture],
    trace: &'a [(usize, String)],
    scratch: PathBuf,
    checked: u64,
    follow_ups: u64,
    read_only: u64,
    by_generation: BTreeMap<&'static str, u64>,
    failures: Vec<String>,
}

impl Checker<'_> {
    /// The generations an image between barriers `k` and `k + 1` may recover.
    fn allowed(&self, k: usize) -> Option<(u64, u64)> {
        let low = self
            .commits
            .iter()
            .filter(|(_, c)| c.durable <= k)
            .map(|(g, _)| *g)
            .max()?;
        let high = self
            .commits
            .iter()
            .filter(|(_, c)| c.started <= k)
            .map(|(g, _)| *g)
            .max()
            .unwrap_or(low)
            .max(low);
        Some((low, high))
    }

    fn check(&mut self, interval: &Interval<'_>, subset: &Subset, serial: u64) {
        let k = interval.k;
        let files = interval.image(subset);
        let dir = self.scratch.join("image");
        let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (*n, b.as_slice())).collect();
        support::write_files(&dir, &refs);
        let result = self.verify(&dir, k, serial);
        self.checked += 1;
        if let Err(why) = result {
            let keep = std::env::temp_dir().join(format!(
                "seqdb-crash-seed{}-barrier{}-{}",
                self.seed,
                k,
                self.failures.len()
            ));
            support::write_files(&keep, &refs);
            let message = format!(
                "seed {} barrier {k} ({} -> {}) image {subset:?}: {why} [image kept in {}]",
                self.seed,
                self.captures[k].what,
                self.captures[k + 1].what,
                keep.display()
            );
            eprintln!("FAILED: {message}");
            if self.failures.is_empty() {
                // The steps that led there, from the commit before it.
                let from = self
                    .allowed(k)
                    .map_or(0, |(low, _)| self.commits[&low].started);
                for (barrier, what) in self.trace.iter().filter(|(b, _)| *b >= from && *b <= k + 1)
                {
                    eprintln!("  after barrier {barrier}: {what}");
                }
            }
            self.failures.push(message);
        }
    }

    fn verify(&mut self, dir: &Path, k: usize, serial: u64) -> Result<(), String> {
        let allowed = self.allowed(k);
        if serial.is_multiple_of(4) {
            self.read_only += 1;
            match support::open_guarded(dir, true) {
                Opened::Ok(db) => {
                    self.compare(&db, allowed, k, "read-only open")?;
                }
                Opened::Err(e) if allowed.is_none() => {
                    let _ = e;
                }
                // A commit's bytes carried in its record did not reach the data file,
                // which only a read-write open can write: it must then recover them.
                Opened::Err(seqdb::Error::NeedsRecovery { .. }) => {}
                Opened::Err(e) => return Err(format!("read-only open failed: {e}")),
                Opened::Panicked(p) => return Err(format!("read-only open panicked: {p}")),
            }
        }
        let db = match support::open_guarded(dir, false) {
            Opened::Ok(db) => db,
            Opened::Err(_) if allowed.is_none() => return Ok(()),
            Opened::Err(e) => return Err(format!("open failed: {e}")),
            Opened::Panicked(p) => return Err(format!("open panicked: {p}")),
        };
        let generation = self.compare(&db, allowed, k, "open")?;
        if serial % 8 == 3 {
            self.follow_ups += 1;
            self.follow_up(db, dir, generation)?;
        }
        Ok(())
    }

    /// Check the recovered state; returns its generation.
    fn compare(
        &mut self,
        db: &Database,
        allowed: Option<(u64, u64)>,
        k: usize,
        how: &str,
    ) -> Result<u64, String> {
        let generation = db.stats().map_err(|e| e.to_string())?.generation;
        let Some((low, high)) = allowed else {
            if generation == 0 && db.regions().is_empty() {
                return Ok(0);
            }
            return Err(format!(
                "{how}: before the first commit, recovered generation {generation} with {} regions",
                db.regions().len()
            ));
        };
        if generation < low || generation > high {
            return Err(format!(
                "{how}: recovered generation {generation}, expected {low}..={high} at barrier {k}"
            ));
        }
        *self
            .by_generation
            .entry(if generation == low {
                "last"
            } else {
                "in flight"
            })
            .or_default() += 1;
        let commit = &self.commits[&generation];
        let regions = db.regions();
        if regions.len() != commit.state.len() {
            let names: Vec<_> = regions.iter().map(|r| support::short(r.name())).collect();
            return Err(format!(
                "{how}: generation {generation} has regions {names:?}, expected {} regions",
                commit.state.len()
            ));
        }
        for region in regions {
            let Some((number, want)) = commit.state.get(region.name()) else {
                return Err(format!(
                    "{how}: generation {generation} has unexpected region {}",
                    support::short(region.name())
                ));
            };
            if region.number() != *number || region.len() != want.len() as u64 {
                return Err(format!(
                    "{how}: region {} is number {} with {} bytes, expected number {number} with {}",
                    support::short(region.name()),
                    region.number(),
                    region.len(),
                    want.len()
                ));
            }
            let reader = db
                .create_region_reader(Identifier::Number(*number))
                .map_err(|e| format!("{how}: reader: {e}"))?;
            let got = reader.read_all();
            let versions = commit
                .rewrites
                .get(number)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            for (p, want_page) in want.chunks(PAGE).enumerate() {
                let range = p * PAGE..p * PAGE + want_page.len();
                let got_page = &got[range.clone()];
                if got_page == want_page || versions.iter().any(|v| &v[range.clone()] == got_page) {
                    continue;
                }
                // Not one whole version: bytes of a page are written at different times
                // (an in-memory tail is written later, or cut before it ever is), so check
                // that each byte is the committed one or one the workload wrote there.
                let Some(at) = (0..want_page.len()).find(|&i| {
                    got_page[i] != want_page[i]
                        && versions.iter().all(|v| v[range.start + i] != got_page[i])
                }) else {
                    continue;
                };
                let byte = range.start + at;
                let show = |v: &[u8]| format!("{:02x?}", &v[byte..(byte + 8).min(v.len())]);
                let seen: Vec<String> = versions.iter().map(|v| show(v)).collect();
                return Err(format!(
                    "{how}: generation {generation}, region {} (number {number}): byte {byte} \
                     reads {}, the commit has {}, the {} rewritten versions have {}",
                    support::short(region.name()),
                    show(got),
                    show(want),
                    versions.len(),
                    seen.join(" ")
                ));
            }
        }
        Ok(generation)
    }

    /// Write to the recovered database, flush, reopen, and check the result.
    fn follow_up(&self, db: Database, dir: &Path, generation: u64) -> Result<(), String> {
        let mut want = support::read_state(&db)?;
        let e = |e: seqdb::Error| format!("after recovery: {e}");
        let extra = support::pattern(generation, 5000);
        db.create_region_if_needed("after-crash").map_err(e)?;
        db.write_all_to_region("after-crash".into(), &extra)
            .map_err(e)?;
        want.entry("after-crash".to_owned())
            .or_default()
            .extend_from_slice(&extra);
        if let Some(first) = want.keys().find(|n| *n != "after-crash").cloned() {
            let tail = support::pattern(generation + 1, 300);
            db.write_all_to_region(first.as_str().into(), &tail)
                .map_err(e)?;
            want.get_mut(&first).unwrap().extend_from_slice(&tail);
        }
        db.flush().map_err(e)?;
        let after = db.stats().map_err(e)?.generation;
        if after != generation + 1 {
            return Err(format!(
                "after recovery: flush made generation {after}, expected {}",
                generation + 1
            ));
        }
        drop(db);
        let db = Database::open(dir).map_err(|e| format!("reopen after recovery: {e}"))?;
        let got = support::read_state(&db)?;
        if db.stats().map_err(e)?.generation != generation + 1 {
            return Err("reopen after recovery lost the new commit".to_owned());
        }
        match support::diff_states(&got, &want) {
            None => Ok(()),
            Some(diff) => Err(format!("reopen after recovery: {diff}")),
        }
    }
}

/// Run one workload and check its crash images within the budget; returns the number
/// of images checked.
fn simulate(seed: u64, config: Config, max_images: u64, seconds: u64) -> u64 {
    let scratch = tempfile::tempdir().unwrap();
    let mut workload = Workload::new(seed, scratch.path().join("db"), config);
    workload.run();
    let commits = std::mem::take(&mut workload.commits);
    let captures = std::mem::take(&mut workload.recorder.lock().unwrap().captures);
    let mut meta_inodes: Vec<u64> = captures
        .iter()
        .filter_map(|c| c.files.get("meta").map(|f| f.ino))
        .collect();
    meta_inodes.dedup();
    let checkpoints = meta_inodes.len().saturating_sub(1);
    let budget = Budget {
        max: max_images,
        start: std::time::Instant::now(),
        limit: Duration::from_secs(seconds),
    };
    let intervals: Vec<Interval<'_>> = (0..captures.len() - 1)
        .map(|k| Interval::new(k, &captures[k], &captures[k + 1]))
        .collect();
    let mut rng = Rng(seed ^ 0xC0FFEE);
    let plans: Vec<Vec<Subset>> = intervals.iter().map(|i| i.subsets(&mut rng)).collect();
    let mut checker = Checker {
        seed,
        commits: &commits,
        captures: &captures,
        trace: &workload.trace,
        scratch: scratch.path().to_owned(),
        checked: 0,
        follow_ups: 0,
        read_only: 0,
        by_generation: BTreeMap::new(),
        failures: Vec::new(),
    };
    let rounds = plans.iter().map(Vec::len).max().unwrap_or(0);
    let mut serial = 0u64;
    'outer: for round in 0..rounds {
        for (interval, plan) in intervals.iter().zip(&plans) {
            let Some(subset) = plan.get(round) else {
                continue;
            };
            if !budget.allows(checker.checked) || checker.failures.len() >= 10 {
                break 'outer;
            }
            checker.check(interval, subset, serial);
            serial += 1;
        }
    }
    let planned: usize = plans.iter().map(Vec::len).sum();
    println!(
        "seed {seed}: {} steps, {} commits, {} barriers, {} moves, {} compactions, \
         {checkpoints} checkpoint rewrites, {} readers held ({} commits made under them); \
         {} of {planned} planned crash images checked in {:.1?} ({} also read-only, {} \
         written after recovery; recovered {:?})",
        workload.steps,
        commits.len(),
        captures.len() - 1,
        workload.moves,
        workload.compactions,
        workload.readers_held,
        workload.commits_under_readers,
        checker.checked,
        budget.elapsed(),
        checker.read_only,
        checker.follow_ups,
        checker.by_generation,
    );
    assert!(
        checker.failures.is_empty(),
        "{} crash images failed:\n{}",
        checker.failures.len(),
        checker.failures.join("\n")
    );
    checker.checked
}

/// Mixed operations with compaction and punching: on a handful of short-named regions
/// (even seeds) or on many small ones that move often as they grow (odd seeds).
#[test]
fn crash_images_of_mixed_workload_recover_last_commit() {
    let mut total = 0;
    for seed in support::seeds(1000, 4) {
        let config = if seed % 2 == 0 {
            Config {
                names: [
                    "ticks", "prices", "volumes", "index", "log", "blobs", "keys", "x",
                ]
                .map(str::to_owned)
                .to_vec(),
                commits: 150,
                flush_percent: 12,
                max_live: 600 << 10,
                checkpoint_after: None,
            }
        } else {
            Config {
                names: (0..40).map(|i| format!("r{i}")).collect(),
                commits: 120,
                flush_percent: 8,
                max_live: 300 << 10,
                checkpoint_after: None,
            }
        };
        total += simulate(seed, config, 3000, 8);
    }
    println!("crash images checked: {total}");
}

/// Regions with names of about a kilobyte and a small rewrite threshold, so that the
/// metadata log outgrows its checkpoint every few commits and is rewritten through
/// `meta.tmp` and a rename.
#[test]
fn crash_images_across_checkpoint_rewrites_recover_last_commit() {
    let mut total = 0;
    for seed in support::seeds(2000, 3) {
        let names = (0..6)
            .map(|i| format!("{i}-{}", "n".repeat(900 + i * 20)))
            .collect();
        let config = Config {
            names,
            commits: 80,
            flush_percent: 30,
            max_live: 200 << 10,
            checkpoint_after: Some(40 << 10),
        };
        total += simulate(seed, config, 3000, 8);
    }
    println!("crash images checked: {total}");
}

/// Overwrite `at..at + bytes.len()` of `path`.
fn patch(path: &Path, at: u64, bytes: &[u8]) {
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, bytes, at).unwrap();
}

/// A creation cut short while the data file's header page (written without a sync,
/// both slots at once) was reaching the device: the metadata file was installed
/// durably, and slot A holds its first 40 bytes, slot B nothing (no sector atomicity is
/// assumed). Nothing was ever committed; the open must start the database afresh.
#[test]
fn a_creation_cut_short_inside_the_header_write_opens() {
    let dir = tempfile::tempdir().unwrap();
    Database::open(dir.path()).unwrap().close().unwrap();
    let data = dir.path().join("data");
    let page = std::fs::read(&data).unwrap();
    let mut torn = vec![0u8; 4096];
    torn[..40].copy_from_slice(&page[..40]);
    patch(&data, 0, &torn);
    let read_write = Database::open(dir.path()).map(drop);
    let recovering = OpenOptions::new().recover(true).open(dir.path()).map(drop);
    assert!(
        read_write.is_ok() && recovering.is_ok(),
        "open: {read_write:?}; with recover: {recovering:?}"
    );
}

/// A crash while `OpenOptions::recover` rewrites the header's slots, which it does one
/// at a time, each synced before the next is written: while the first slot is written
/// (torn after its generation, the other slot still old), or while the second is (the
/// first already new). The damage found before is still there, and recovering must
/// still be possible.
#[test]
fn a_crash_inside_the_recovery_restamp_stays_recoverable() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    db.create_region_if_needed("r").unwrap();
    let mut meta_len = Vec::new();
    for round in 0..5u8 {
        db.write_all_to_region("r".into(), &[round; 100]).unwrap();
        db.flush().unwrap();
        meta_len.push(support::log_end(&dir.path().join("meta")));
    }
    drop(db);
    // Damage: the log is cut short after generation 3; the data file says 5.
    let meta = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.path().join("meta"))
        .unwrap();
    meta.set_len(meta_len[2]).unwrap();
    drop(meta);
    assert!(
        Database::open(dir.path()).is_err(),
        "a log cut short is damage"
    );
    // The header page a finished recovery writes: both slots at generation 3. Recovery
    // syncs the data file after each slot's write, so that no crash tears both.
    let done = tempfile::tempdir().unwrap();
    support::copy_dir(dir.path(), done.path());
    let steps: Arc<Mutex<Vec<String>>> = Arc::default();
    let (writes, syncs) = (steps.clone(), steps.clone());
    let data_path = done.path().join("data");
    let data_path2 = data_path.clone();
    let injector: seqdb::FaultInjector = Arc::new(move |point| {
        if point.op == seqdb::FaultOp::Write && point.path == data_path && point.offset < 4096 {
            writes
                .lock()
                .unwrap()
                .push(format!("write {}", point.offset));
        }
        Ok(())
    });
    let observer: SyncObserver = Arc::new(move |event: SyncEvent<'_>| {
        if event.path == data_path2 {
            syncs.lock().unwrap().push("sync".to_owned());
        }
    });
    drop(
        OpenOptions::new()
            .recover(true)
            .fault_injector(injector)
            .sync_observer(observer)
            .open(done.path())
            .unwrap(),
    );
    // (The handle's own flush when it is dropped comes after.)
    assert_eq!(
        steps.lock().unwrap()[..4],
        ["write 0", "sync", "write 512", "sync"],
        "recovery writes one header slot at a time"
    );
    let restamped = std::fs::read(done.path().join("data")).unwrap()[..4096].to_vec();
    let original = std::fs::read(dir.path().join("data")).unwrap()[..4096].to_vec();
    for (first_done, torn) in [(false, 0u64), (true, 512)] {
        let image = tempfile::tempdir().unwrap();
        support::copy_dir(dir.path(), image.path());
        let data = image.path().join("data");
        if first_done {
            patch(&data, 0, &restamped[..512]);
        }
        // The slot being written: its generation is there, its checksum not yet.
        let mut slot = original[torn as usize..torn as usize + 512].to_vec();
        slot[32..40].copy_from_slice(&3u64.to_le_bytes());
        patch(&data, torn, &slot);
        let db = OpenOptions::new()
            .recover(true)
            .open(image.path())
            .unwrap_or_else(|e| {
                panic!("recover after a crash inside recovery (slot at {torn}): {e}")
            });
        assert_eq!(db.stats().unwrap().generation, 3);
    }
}
