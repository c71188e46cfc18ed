//! Power-loss simulation with threads.
//!
//! Two to four threads (by seed) share one database while a sync observer captures its
//! files at every sync barrier, as in `crash_sim.rs`; crash images are built the same way
//! (`support::images`): the state at barrier `k` plus subsets of the pages written before
//! barrier `k + 1`. (A capture holds what the files held at the barrier, writes of other
//! threads not yet synced included: every image is a state a crash could leave, though
//! not every such state is tried.)
//!
//! The threads:
//! - *appender* (thread 0): appends one byte by number to region `A` and flushes, in a
//!   loop. In blocks it first appends 1 to 12 KiB to each of six regions of its own, whose
//!   tails the flush then writes between its looks at `A` and at `A`'s partner (the
//!   set-up numbers the partner lowest and `A` highest, the other way round for one seed
//!   in four); in the other blocks it appends to `A` alone, so that `A` lends it a buffer. Sometimes a large append to `A` (it grows and
//!   moves), an overwrite or a truncation of `A`, or a step of the mixed workload below.
//! - *swapper* (thread 1): swaps the names of `A` and its partner through a temporary
//!   name (the partner to `swap-tmp`, `A` to the partner's name, the partner to `A`'s old
//!   name); in the other variant (odd seeds), when the partner is named `B`, sometimes
//!   removes it and creates a new `B` instead. Most swaps start on a cue: right before
//!   a flush the appender waits (1 ms at most) until the swapper waits for it, bumps a
//!   counter, and waits (50 µs at most) until the swapper has seen it; the swapper then
//!   pauses for a random while (mostly up to 12 µs, what a flush takes to reach the sync
//!   of its data) and swaps. The other swaps come at any moment, with yields between the
//!   renames. Sometimes it appends to the partner or takes a mixed step.
//! - *mixed* (threads 2 and 3, when there are): on regions of their own (names `t<i>-<j>`),
//!   creations, renames, removals (by name and by number), `retain_regions`, appends by
//!   name and by number (1 B to 48 KiB, so regions grow and move; runs of 16 to 24
//!   appends by number, so a region lends the thread a buffer), `write_all_to_region_at`,
//!   `truncate_write_all_to_region`, `truncate_region`, `flush`, `flush_then_punch` and
//!   `compact` (`Error::Busy` is tolerated; any other error of these calls is a failure,
//!   reported at the end). They yield at random points, sleep now and then, and hold
//!   back during two in three of the appender's cued flushes.
//!
//! A race between a flush and renames is a matter of microseconds, and two threads can
//! only race on two cores: the appender and the swapper are pinned to CPUs of their own
//! (with `taskset`, where permitted; the summary says whether), and the appender goes on
//! until 400 of its flushes saw two name changes of the swapper or more (or six times
//! as many rounds, or 3 s), so a machine busy with other work takes longer rather than
//! trying less. The database lives on `/dev/shm` when there is one (thousands of
//! barriers).
//!
//! Every call to the engine takes a stamp from one `SeqCst` clock before it (`inv`) and
//! after it returns (`resp`). Each region is a logical object with two histories: its
//! *structure* (creation, renames, removal) and its *content* (appends, overwrites,
//! truncations). One thread makes all the changes of each history (the swapper makes the
//! structure of `A` and of its partner, the appender the content of `A`, every other region
//! has one thread for both), so each history is a sequence; bytes are random, so the
//! content identifies how many of its operations a recovered region reflects. Region
//! numbers map recovered regions to logical ones (a number is reused only after its
//! region was removed, which the structure history says).
//!
//! Checks for every image:
//! 1. It opens read-write. (The engine refuses a state with two regions of one name,
//!    `Corrupt ... two regions are named`; such an image is reported as such, with the
//!    record that did it, the call that wrote it and the renames around it.)
//! 2. The recovered generation (`Stats::generation`) is at least that of every flush that
//!    returned `Ok` before barrier `k`, and at most the newest record in the metadata file
//!    at barrier `k + 1` (its record heads, not their checksums).
//! 3. The recovered state is a state that existed at one instant `T` during the call that
//!    wrote the recovered generation: the observer runs on the syncing thread, so a new
//!    record seen at a sync of the metadata is the commit of that thread's `flush`,
//!    `flush_then_punch` or `compact`. For every history the operations reflected form a
//!    prefix `p`, and `T` must lie after the `inv` of operation `p` and before the `resp` of
//!    operation `p + 1`; one `T` must satisfy every history at once and lie inside the
//!    call. This is exact across threads and regions for every kind of operation, with
//!    these relaxations:
//!    - bytes inside the recovered length may read as any byte that a later operation of
//!      the same region, begun before barrier `k + 1`, wrote at that offset (overwrites
//!      inside a committed length may read old or new, the documented contract), so such
//!      an operation may count as reflected or not;
//!    - a region that is absent says nothing about its content history;
//!    - `compact` commits several times, and each of its commits may be at any instant
//!      of the whole call.
//! 4. A quarter of the images are opened read-only first and must pass the same checks.
//!
//! After the threads end, the live database must equal the histories applied in full (a
//! check of the model itself).
//!
//! Counts: each seed runs one workload and checks up to 5,000 images in at most 3 s, one
//! image per barrier first; three seeds (3000 to 3002: two, three and four threads);
//! `SEQDB_STRESS_SCALE=<n>` runs `n` times as many seeds; `SEQDB_SEED=<seed>` runs one.
//! The choices of each thread follow the seed, the interleaving does not, so a seed
//! reproduces a race with some probability, not always. A failure prints its seed,
//! barrier, image and check, the operations around it, and keeps the image directory (the
//! first six of a seed). The summary of a seed also counts, from the captured metadata
//! read with the codec of `docs/FORMAT.md`, the commits whose state names two regions
//! alike.

mod support;

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use seqdb::{Database, Identifier, OpenOptions, SyncEvent, SyncObserver};
use support::images::{Capture, ImageDir, Interval, PAGE, Recorder, Subset, whole};
use support::{Budget, Opened, Rng};

/// The clock every operation takes its stamps from.
static CLOCK: AtomicU64 = AtomicU64::new(1);

fn stamp() -> u64 {
    CLOCK.fetch_add(1, Ordering::SeqCst)
}

thread_local! {
    /// The committing call this thread is in, for the sync observer.
    static CURRENT: Cell<Option<OpRef>> = const { Cell::new(None) };
}

/// The names the swapper gives `A` and its partner.
const SWAP_A: &str = "A";
const SWAP_B: &str = "B";
const SWAP_TMP: &str = "swap-tmp";
/// Names per thread for its own regions (at most four live at once).
const OWN_NAMES: usize = 8;
const MAX_OWN: usize = 4;
/// Content states are kept every this many operations (the others are replayed).
const SNAPSHOT_EVERY: usize = 32;

/// A logical region: the thread that created it and a count.
type Lid = u64;
/// The creator part of the regions the set-up creates.
const SETUP: u64 = 0xFFFF;

fn lid_label(lid: Lid) -> String {
    match lid >> 32 {
        SETUP => format!("setup#{}", lid & 0xFFFF_FFFF),
        t => format!("t{t}#{}", lid & 0xFFFF_FFFF),
    }
}

/// One operation of a thread's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OpRef {
    thread: usize,
    index: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Open,
    Create,
    Rename,
    Remove,
    Retain,
    AppendByName,
    AppendByNumber,
    WriteAt,
    TruncateWrite,
    Truncate,
    Flush,
    FlushThenPunch,
    Compact,
    CompactBusy,
    /// A committing call that failed otherwise (a failure of the test).
    CommitFailed,
}

impl Kind {
    fn commits(self) -> bool {
        matches!(
            self,
            Kind::Open
                | Kind::Flush
                | Kind::FlushThenPunch
                | Kind::Compact
                | Kind::CompactBusy
                | Kind::CommitFailed
        )
    }

    /// Whether the call returned `Ok` (then a flush's state is durable when it returns).
    fn succeeded(self) -> bool {
        !matches!(self, Kind::CompactBusy | Kind::CommitFailed)
    }
}

/// What an operation did to one logical region.
#[derive(Debug, Clone)]
enum Effect {
    Create { name: String, number: usize },
    Rename(String),
    Remove,
    Append(Arc<[u8]>),
    WriteAt { at: usize, data: Arc<[u8]> },
    Truncate(usize),
    TruncateWrite { at: usize, data: Arc<[u8]> },
}

impl Effect {
    fn is_structure(&self) -> bool {
        matches!(
            self,
            Effect::Create { .. } | Effect::Rename(_) | Effect::Remove
        )
    }

    fn describe(&self) -> String {
        match self {
            Effect::Create { name, number } => format!("create {name:?} -> #{number}"),
            Effect::Rename(to) => format!("rename to {to:?}"),
            Effect::Remove => "remove".to_owned(),
            Effect::Append(data) => format!("append {} B", data.len()),
            Effect::WriteAt { at, data } => format!("write {} B at {at}", data.len()),
            Effect::Truncate(len) => format!("truncate to {len}"),
            Effect::TruncateWrite { at, data } => {
                format!("truncate-write {} B at {at}", data.len())
            }
        }
    }
}

#[derive(Debug, Clone)]
struct Op {
    inv: u64,
    resp: u64,
    kind: Kind,
    target: Option<(Lid, Effect)>,
}

/// What the observer learnt at one barrier.
#[derive(Debug, Clone, Copy)]
struct CaptureInfo {
    /// Stamps taken right after the barrier and after the capture.
    start: u64,
    end: u64,
    /// The newest record in the captured metadata file.
    generation: Option<u64>,
    /// The committing call of the thread that synced.
    by: Option<OpRef>,
}

struct Observed {
    recorder: Recorder,
    info: Vec<CaptureInfo>,
    /// Generation to the call that made it durable.
    producers: BTreeMap<u64, OpRef>,
    attributed: Option<u64>,
}

impl Observed {
    fn observe(&mut self, what: String, meta_event: bool) {
        let start = stamp();
        self.recorder.capture(what);
        let generation = meta_generation(self.recorder.captures.last().unwrap());
        let by = CURRENT.get();
        // Only the committing thread syncs the metadata, and it does so right after
        // writing a record: attribute the new generations to its call.
        if meta_event && let Some(g) = generation {
            let from = self.attributed.map_or(0, |a| a + 1);
            for h in from..=g {
                let by = by.unwrap_or_else(|| panic!("generation {h} synced outside a commit"));
                self.producers.insert(h, by);
            }
            self.attributed = Some(g.max(self.attributed.unwrap_or(0)));
        }
        let end = stamp();
        self.info.push(CaptureInfo {
            start,
            end,
            generation,
            by,
        });
    }
}

/// The generation of the newest record of the captured metadata file, following the
/// record heads (no checksums: this bounds what an image may recover).
fn meta_generation(capture: &Capture) -> Option<u64> {
    let bytes = whole(capture.files.get("meta")?);
    let mut at = PAGE;
    let mut last: Option<u64> = None;
    let head_len = support::format::RECORD_HEAD;
    while let Some(head) = bytes.get(at..at + head_len) {
        if &head[..4] != b"SQDR" {
            break;
        }
        let Ok(n) = usize::try_from(u64::from_le_bytes(head[4..12].try_into().unwrap())) else {
            break;
        };
        let Some(body) = at
            .checked_add(head_len + n)
            .and_then(|end| bytes.get(at + head_len..end))
        else {
            break;
        };
        if body.len() < 9 {
            break;
        }
        let g = u64::from_le_bytes(body[..8].try_into().unwrap());
        if last.is_some_and(|prev| g != prev + 1) {
            break;
        }
        last = Some(g);
        at += (head_len + n).div_ceil(PAGE) * PAGE;
    }
    last
}

/// Who may change a region a thread holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The thread's own: every operation, by name or number.
    Plain,
    /// `A` at the appender: content only, by number (the swapper renames it).
    ContentOnly,
    /// The partner of `A` at the swapper: content, renames by the swapper's pattern.
    Partner,
}

#[derive(Debug, Clone)]
struct Own {
    lid: Lid,
    name: String,
    number: usize,
    bytes: Vec<u8>,
    role: Role,
}

/// Counters of one workload.
#[derive(Debug, Default, Clone)]
struct Counts {
    ops: BTreeMap<Kind, u64>,
    /// Flushes of the appender that the swapper saw coming.
    cues: u64,
    /// Flushes of the appender during which the swapper changed names twice or more.
    met: u64,
    swaps: u64,
    recreates: u64,
    moves: u64,
}

struct Worker {
    /// Index of its log; the set-up comes after the threads.
    thread: usize,
    setup: bool,
    rng: Rng,
    db: Database,
    log: Vec<Op>,
    own: Vec<Own>,
    next_lid: u64,
    universe: Arc<HashSet<String>>,
    max_live: usize,
    counts: Counts,
    signal: Arc<Signal>,
    seed: u64,
    /// Committing calls that failed.
    errors: Vec<String>,
}

/// How the swapper starts swaps as the appender flushes, so that renames meet flushes.
#[derive(Default)]
struct Signal {
    /// The appender's flushes, counted right before each.
    flushes: AtomicU64,
    /// The swapper waits for the next flush.
    ready: AtomicBool,
    /// The mixed threads hold back: the cores are the appender's and the swapper's.
    quiet: AtomicBool,
    /// The swapper's renames, removals and creations, counted as each returns.
    changes: AtomicU64,
}

/// Wait until `done` or `limit` passed: spinning for the first `spin` (the thread keeps
/// its core), then yielding it between looks (the other thread may need it, on a machine
/// busy with other work).
fn wait_until(limit: Duration, spin: Duration, done: impl Fn() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if done() {
            return true;
        }
        let waited = start.elapsed();
        if waited > limit {
            return false;
        }
        if waited > spin {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
}

impl Worker {
    fn new(
        thread: usize,
        seed: u64,
        db: Database,
        universe: Arc<HashSet<String>>,
        signal: Arc<Signal>,
    ) -> Self {
        Worker {
            thread,
            setup: false,
            rng: Rng(seed ^ (thread as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            db,
            log: Vec::new(),
            own: Vec::new(),
            next_lid: 0,
            universe,
            max_live: 96 << 10,
            counts: Counts::default(),
            signal,
            seed,
            errors: Vec::new(),
        }
    }

    fn new_lid(&mut self) -> Lid {
        let creator = if self.setup {
            SETUP
        } else {
            self.thread as u64
        };
        let lid = (creator << 32) | self.next_lid;
        self.next_lid += 1;
        lid
    }

    fn maybe_yield(&mut self) {
        if self.rng.one_in(4) {
            std::thread::yield_now();
        }
    }

    /// Call the engine between two stamps and log the operation (it must succeed).
    fn apply<T>(
        &mut self,
        kind: Kind,
        target: Option<(Lid, Effect)>,
        f: impl FnOnce(&Database) -> seqdb::Result<T>,
    ) -> T {
        let inv = stamp();
        let result = f(&self.db);
        let resp = stamp();
        let value = result.unwrap_or_else(|e| {
            panic!(
                "thread {}: {kind:?} {} failed: {e}",
                self.thread,
                target
                    .as_ref()
                    .map(|(l, e)| format!("{} {}", lid_label(*l), e.describe()))
                    .unwrap_or_default()
            )
        });
        *self.counts.ops.entry(kind).or_default() += 1;
        self.log.push(Op {
            inv,
            resp,
            kind,
            target,
        });
        value
    }

    /// A committing call, known to the observer while it runs.
    fn commit(&mut self, kind: Kind) {
        CURRENT.set(Some(OpRef {
            thread: self.thread,
            index: self.log.len(),
        }));
        let inv = stamp();
        let result = match kind {
            Kind::Flush => self.db.flush(),
            Kind::FlushThenPunch => self.db.flush_then_punch(),
            Kind::Compact => self.db.compact(),
            _ => unreachable!(),
        };
        let resp = stamp();
        CURRENT.set(None);
        let kind = match result {
            Ok(()) => kind,
            Err(seqdb::Error::Busy { .. }) if kind == Kind::Compact => Kind::CompactBusy,
            Err(e) => {
                // What it committed before it failed is checked like any commit; the
                // test goes on, and fails at the end.
                let message = format!(
                    "seed {}: thread {} {kind:?} (stamps {inv}..{resp}) failed: {e}",
                    self.seed, self.thread
                );
                eprintln!("FAILED ({}): {message}", Failure::CommitFailed.label());
                self.errors.push(message);
                Kind::CommitFailed
            }
        };
        *self.counts.ops.entry(kind).or_default() += 1;
        self.log.push(Op {
            inv,
            resp,
            kind,
            target: None,
        });
    }

    fn id(&mut self, i: usize) -> Identifier {
        let own = &self.own[i];
        if own.role == Role::ContentOnly || self.rng.one_in(2) {
            Identifier::Number(own.number)
        } else {
            Identifier::from(own.name.as_str())
        }
    }

    fn plain(&self) -> Vec<usize> {
        (0..self.own.len())
            .filter(|&i| self.own[i].role == Role::Plain)
            .collect()
    }

    fn live(&self) -> usize {
        self.own
            .iter()
            .filter(|o| o.role == Role::Plain)
            .map(|o| o.bytes.len())
            .sum()
    }

    fn free_names(&self) -> Vec<String> {
        (0..OWN_NAMES)
            .map(|j| format!("t{}-{j}", self.thread))
            .filter(|n| !self.own.iter().any(|o| &o.name == n))
            .collect()
    }

    /// Create a region named `name` (the caller knows it is free) and hold it.
    fn create(&mut self, name: String, role: Role) -> usize {
        let lid = self.new_lid();
        let (number, region) =
            self.apply(Kind::Create, None, |db| db.create_region_if_needed(&name));
        assert!(
            region.is_empty(),
            "thread {}: {name:?} existed",
            self.thread
        );
        self.log.last_mut().unwrap().target = Some((
            lid,
            Effect::Create {
                name: name.clone(),
                number,
            },
        ));
        self.own.push(Own {
            lid,
            name,
            number,
            bytes: Vec::new(),
            role,
        });
        self.own.len() - 1
    }

    fn rename(&mut self, i: usize, to: &str) {
        let id = self.id(i);
        let lid = self.own[i].lid;
        self.apply(
            Kind::Rename,
            Some((lid, Effect::Rename(to.to_owned()))),
            |db| db.rename_region(id, to),
        );
        self.own[i].name = to.to_owned();
    }

    fn remove(&mut self, i: usize) {
        let id = self.id(i);
        let own = self.own.remove(i);
        let removed = self.apply(Kind::Remove, Some((own.lid, Effect::Remove)), |db| {
            db.remove_region(id)
        });
        assert_eq!(removed.map(|r| r.number()), Some(own.number), "remove");
    }

    /// `retain_regions` with every name any thread may use but one: removes that region.
    fn retain_without(&mut self, i: usize) {
        let own = self.own.remove(i);
        let mut keep = (*self.universe).clone();
        keep.remove(&own.name);
        self.apply(Kind::Retain, Some((own.lid, Effect::Remove)), |db| {
            db.retain_regions(keep)
        });
    }

    fn append(&mut self, i: usize, len: usize, by_number: bool) {
        let data: Arc<[u8]> = self.rng.bytes(len).into();
        let (id, kind) = if by_number || self.own[i].role == Role::ContentOnly {
            (Identifier::Number(self.own[i].number), Kind::AppendByNumber)
        } else {
            (
                Identifier::from(self.own[i].name.as_str()),
                Kind::AppendByName,
            )
        };
        let lid = self.own[i].lid;
        let sample = len >= 16 << 10;
        let before = sample.then(|| self.start_of(i));
        self.apply(kind, Some((lid, Effect::Append(data.clone()))), |db| {
            db.write_all_to_region(id, &data)
        });
        if let Some(before) = before {
            self.counts.moves += u64::from(before != self.start_of(i));
        }
        self.own[i].bytes.extend_from_slice(&data);
    }

    fn start_of(&self, i: usize) -> u64 {
        self.db
            .get_region(Identifier::Number(self.own[i].number))
            .unwrap()
            .start()
    }

    fn write_at(&mut self, i: usize) {
        let cur = self.own[i].bytes.len();
        let at = self.rng.below(cur as u64 + 1) as usize;
        let len = self.rng.range(1, 3000) as usize;
        let data: Arc<[u8]> = self.rng.bytes(len).into();
        let id = self.id(i);
        let lid = self.own[i].lid;
        let effect = Effect::WriteAt {
            at,
            data: data.clone(),
        };
        self.apply(Kind::WriteAt, Some((lid, effect)), |db| {
            db.write_all_to_region_at(id, &data, at as u64)
        });
        let v = &mut self.own[i].bytes;
        if at + len > v.len() {
            v.resize(at + len, 0);
        }
        v[at..at + len].copy_from_slice(&data);
    }

    fn truncate_write(&mut self, i: usize) {
        let cur = self.own[i].bytes.len();
        let at = self.rng.below(cur as u64 + 1) as usize;
        let len = self.rng.below(2000) as usize;
        let data: Arc<[u8]> = self.rng.bytes(len).into();
        let id = self.id(i);
        let lid = self.own[i].lid;
        let effect = Effect::TruncateWrite {
            at,
            data: data.clone(),
        };
        self.apply(Kind::TruncateWrite, Some((lid, effect)), |db| {
            db.truncate_write_all_to_region(id, at as u64, &data)
        });
        let v = &mut self.own[i].bytes;
        v.truncate(at);
        v.extend_from_slice(&data);
    }

    fn truncate(&mut self, i: usize, to: usize) {
        let id = self.id(i);
        let lid = self.own[i].lid;
        self.apply(Kind::Truncate, Some((lid, Effect::Truncate(to))), |db| {
            db.truncate_region(id, to as u64)
        });
        self.own[i].bytes.truncate(to);
    }

    fn append_len(&mut self, grow: bool) -> usize {
        match self.rng.below(20) {
            _ if !grow => self.rng.range(1, 64) as usize,
            0 => self.rng.range(16 << 10, 48 << 10) as usize,
            1..=4 => self.rng.range(400, 6000) as usize,
            _ => self.rng.range(1, 400) as usize,
        }
    }

    /// One step of the mixed workload on this thread's regions (content steps also on
    /// the regions it shares).
    fn mixed_step(&mut self) {
        self.maybe_yield();
        let plain = self.plain();
        let grow = self.live() < self.max_live;
        if plain.is_empty() || (plain.len() < MAX_OWN && self.rng.one_in(12)) {
            let free = self.free_names();
            let name = self.rng.pick(&free).clone();
            self.create(name, Role::Plain);
            return;
        }
        let any = self.rng.below(self.own.len() as u64) as usize;
        let p = *self.rng.pick(&plain);
        match self.rng.below(100) {
            0..=4 => {
                let free = self.free_names();
                let to = self.rng.pick(&free).clone();
                self.rename(p, &to);
            }
            5..=8 => self.remove(p),
            9..=10 => self.retain_without(p),
            11..=45 => {
                let len = self.append_len(grow);
                let by_number = self.rng.one_in(2);
                self.append(any, len, by_number);
            }
            46..=55 => {
                // A run of appends by number: the region lends this thread a buffer.
                let times = self.rng.range(16, 24);
                for _ in 0..times {
                    let len = self.rng.range(1, 200) as usize;
                    self.append(any, len, true);
                }
            }
            56..=63 => self.write_at(any),
            64..=67 => self.truncate_write(p),
            68..=75 => {
                let cur = self.own[p].bytes.len() as u64;
                let to = if grow {
                    self.rng.below(cur + 1)
                } else {
                    self.rng.below(cur / 4 + 1)
                };
                self.truncate(p, to as usize);
            }
            76..=82 => self.commit(Kind::Flush),
            83..=84 => self.commit(Kind::FlushThenPunch),
            85..=97 => self.append(any, 1, true),
            _ => {
                if self.rng.one_in(3) {
                    self.commit(Kind::Compact);
                } else {
                    self.commit(Kind::Flush);
                }
            }
        }
        if !grow && self.rng.one_in(2) {
            // Shrink: cut the largest own region.
            if let Some(&big) = self
                .plain()
                .iter()
                .max_by_key(|&&i| self.own[i].bytes.len())
            {
                let to = self.own[big].bytes.len() / 4;
                self.truncate(big, to);
            }
        }
    }

    /// The appender: one byte to `A` and a flush, in a loop, until `met` of these
    /// flushes saw two changes of the swapper or more while they ran (a machine busy with
    /// other work takes longer), six times as many rounds, or the deadline.
    fn run_appender(&mut self, met: u64, deadline: Instant) {
        let mut wide = false;
        let mut block = 0;
        for _ in 0..6 * met {
            if self.counts.met >= met || Instant::now() > deadline {
                break;
            }
            // Removals shift the regions this thread holds: find `A` again.
            let a = self
                .own
                .iter()
                .position(|o| o.role == Role::ContentOnly)
                .unwrap();
            if block == 0 {
                wide = self.rng.one_in(2);
                block = self.rng.range(16, 48);
            }
            block -= 1;
            let roll = self.rng.below(100);
            if roll < 85 {
                if wide {
                    // Tails in regions of its own first, which the flush writes between
                    // its looks at `A` and at its partner.
                    for i in self.plain() {
                        if self.own[i].bytes.len() > 96 << 10 {
                            self.truncate(i, 1024);
                        } else {
                            let len = self.rng.range(1024, 12 << 10) as usize;
                            self.append(i, len, true);
                        }
                    }
                }
                self.append(a, 1, true);
                self.maybe_yield();
                let kind = if self.rng.one_in(10) {
                    Kind::FlushThenPunch
                } else {
                    Kind::Flush
                };
                // Give the swapper its cue if it waits for one (or is about to), and let
                // it see the cue before the flush starts. Two times in three the mixed
                // threads hold back meanwhile.
                let quiet = !self.rng.one_in(3);
                self.signal.quiet.store(quiet, Ordering::Release);
                let ready = wait_until(Duration::from_millis(1), Duration::from_micros(20), || {
                    self.signal.ready.load(Ordering::Acquire)
                });
                self.signal.flushes.fetch_add(1, Ordering::Release);
                if ready
                    && wait_until(Duration::from_micros(50), Duration::from_micros(20), || {
                        !self.signal.ready.load(Ordering::Acquire)
                    })
                {
                    self.counts.cues += 1;
                }
                let before = self.signal.changes.load(Ordering::Acquire);
                self.commit(kind);
                self.signal.quiet.store(false, Ordering::Release);
                if self.signal.changes.load(Ordering::Acquire) >= before + 2 {
                    self.counts.met += 1;
                }
            } else if roll < 89 {
                if self.own[a].bytes.len() < 256 << 10 {
                    let len = self.rng.range(2 << 10, 40 << 10) as usize;
                    self.append(a, len, true);
                } else {
                    let to = self.own[a].bytes.len() / 4;
                    self.truncate(a, to);
                }
            } else if roll < 91 {
                self.write_at(a);
            } else {
                self.mixed_step();
            }
        }
    }

    /// The swapper: swaps `A` and its partner through a temporary name, or removes and
    /// creates the partner `B` again, until the appender is done.
    fn run_swapper(&mut self, a_lid: Lid, a_number: usize, stop: &AtomicBool, recreate: u64) {
        let mut a_name = SWAP_A.to_owned();
        let mut steps = 0u64;
        while !stop.load(Ordering::Relaxed) && steps < 200_000 {
            steps += 1;
            let partner = self
                .own
                .iter()
                .position(|o| o.role == Role::Partner)
                .unwrap();
            let roll = self.rng.below(100);
            if roll < 88 {
                // Most swaps start as the appender flushes, after a random pause; the
                // others at any moment, with yields between their renames.
                let chase = self.rng.below(100) < 90;
                if chase {
                    self.wait_for_flush();
                }
                if self.own[partner].name == SWAP_B && self.rng.below(100) < recreate {
                    let id = self.id(partner);
                    let old = self.own.remove(partner);
                    self.apply(Kind::Remove, Some((old.lid, Effect::Remove)), |db| {
                        db.remove_region(id)
                    });
                    self.signal.changes.fetch_add(1, Ordering::Release);
                    self.maybe_yield();
                    let i = self.create(SWAP_B.to_owned(), Role::Partner);
                    self.signal.changes.fetch_add(1, Ordering::Release);
                    if self.rng.one_in(2) {
                        let len = self.rng.range(1, 3000) as usize;
                        self.append(i, len, true);
                    }
                    self.counts.recreates += 1;
                    continue;
                }
                let partner_name = self.own[partner].name.clone();
                self.rename(partner, SWAP_TMP);
                self.signal.changes.fetch_add(1, Ordering::Release);
                if !chase {
                    self.maybe_yield();
                }
                let id = if self.rng.one_in(2) {
                    Identifier::Number(a_number)
                } else {
                    Identifier::from(a_name.as_str())
                };
                self.apply(
                    Kind::Rename,
                    Some((a_lid, Effect::Rename(partner_name.clone()))),
                    |db| db.rename_region(id, &partner_name),
                );
                self.signal.changes.fetch_add(1, Ordering::Release);
                let old_a = std::mem::replace(&mut a_name, partner_name);
                if !chase {
                    self.maybe_yield();
                }
                self.rename(partner, &old_a);
                self.signal.changes.fetch_add(1, Ordering::Release);
                self.counts.swaps += 1;
                if self.rng.one_in(4) {
                    std::thread::yield_now();
                }
            } else if roll < 93 {
                let len = self.rng.range(1, 2000) as usize;
                self.append(partner, len, true);
            } else {
                self.mixed_step();
            }
        }
    }

    /// Wait (5 ms at most) until the appender is about to flush again, then pause for a
    /// random while: mostly up to 12 µs (about what a flush takes from its call to the
    /// sync of the data file), sometimes up to 1 ms.
    fn wait_for_flush(&mut self) {
        let seen = self.signal.flushes.load(Ordering::Acquire);
        self.signal.ready.store(true, Ordering::Release);
        wait_until(Duration::from_millis(5), Duration::from_micros(20), || {
            self.signal.flushes.load(Ordering::Acquire) != seen
        });
        self.signal.ready.store(false, Ordering::Release);
        let pause = match self.rng.below(10) {
            0 => return,
            1 => {
                let scale = self.rng.below(14);
                Duration::from_nanos(self.rng.below(64 << scale))
            }
            _ => Duration::from_nanos(self.rng.below(12_000)),
        };
        wait_until(pause, Duration::MAX, || false);
    }

    /// A mixed thread, until the appender is done. It sleeps now and then, and while the
    /// appender asks for quiet.
    fn run_mixed(&mut self, stop: &AtomicBool) {
        let mut steps = 0u64;
        while !stop.load(Ordering::Relaxed) && steps < 200_000 {
            steps += 1;
            self.mixed_step();
            // Leave the cores to the appender and the swapper now and then (there may
            // be twice as many threads as cores).
            // (Rarely and long: every wake-up may take a core from the race.)
            if self.rng.one_in(4) {
                std::thread::sleep(Duration::from_micros(self.rng.range(200, 1000)));
            }
            let start = Instant::now();
            while self.signal.quiet.load(Ordering::Acquire)
                && start.elapsed() < Duration::from_millis(20)
            {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

/// The history of one logical region.
struct Object {
    lid: Lid,
    number: usize,
    /// Name after each structure operation (`None` after the removal).
    structure: Vec<(u64, u64, Option<String>)>,
    content: Vec<ContentOp>,
    /// The stamps of both histories.
    structure_stamps: Vec<(u64, u64)>,
    content_stamps: Vec<(u64, u64)>,
    /// The content after `i * SNAPSHOT_EVERY` operations, computed when first needed.
    snapshots: Vec<Arc<Vec<u8>>>,
}

struct ContentOp {
    inv: u64,
    resp: u64,
    effect: Effect,
    /// Where the operation wrote, and the length after it.
    at: usize,
    len_after: usize,
}

fn apply_content(bytes: &mut Vec<u8>, op: &ContentOp) {
    match &op.effect {
        Effect::Append(data) => bytes.extend_from_slice(data),
        Effect::WriteAt { at, data } => {
            if at + data.len() > bytes.len() {
                bytes.resize(at + data.len(), 0);
            }
            bytes[*at..at + data.len()].copy_from_slice(data);
        }
        Effect::Truncate(len) => bytes.truncate(*len),
        Effect::TruncateWrite { at, data } => {
            bytes.truncate(*at);
            bytes.extend_from_slice(data);
        }
        _ => unreachable!(),
    }
}

fn written(op: &ContentOp) -> Option<&[u8]> {
    match &op.effect {
        Effect::Append(data)
        | Effect::WriteAt { data, .. }
        | Effect::TruncateWrite { data, .. } => Some(data),
        _ => None,
    }
}

impl Object {
    /// Whether the region may exist at some instant of `w` (created before its end, not
    /// removed before its start).
    fn lives_in(&self, w: Window) -> bool {
        let born = self.structure[0].0;
        let gone = match self.structure.last() {
            Some((_, resp, None)) => *resp,
            _ => u64::MAX,
        };
        born < w.hi && gone > w.lo
    }

    fn state(&mut self, p: usize) -> Vec<u8> {
        let chunk = p / SNAPSHOT_EVERY;
        while self.snapshots.len() <= chunk {
            let i = self.snapshots.len();
            let mut s = match i {
                0 => Vec::new(),
                _ => self.snapshots[i - 1].as_ref().clone(),
            };
            if i > 0 {
                for op in &self.content[(i - 1) * SNAPSHOT_EVERY..i * SNAPSHOT_EVERY] {
                    apply_content(&mut s, op);
                }
            }
            self.snapshots.push(Arc::new(s));
        }
        let mut s = self.snapshots[chunk].as_ref().clone();
        for op in &self.content[chunk * SNAPSHOT_EVERY..p] {
            apply_content(&mut s, op);
        }
        s
    }
}

/// The prefixes `p` of a history whose instants `(inv of op p, resp of op p + 1)` meet
/// the window, with those instants.
fn prefixes(ops: &[(u64, u64)], w: Window) -> impl Iterator<Item = (usize, u64, u64)> + '_ {
    let first = ops.partition_point(|o| o.1 <= w.lo);
    let last = ops.partition_point(|o| o.0 < w.hi);
    (first..=last).map(move |p| {
        let after = if p == 0 { 0 } else { ops[p - 1].0 };
        let before = if p == ops.len() { u64::MAX } else { ops[p].1 };
        (p, after, before)
    })
}

/// The call that wrote a generation: `T` lies strictly between these stamps.
#[derive(Debug, Clone, Copy)]
struct Window {
    lo: u64,
    hi: u64,
}

/// A set of instants inside a window: bit `i` is the gap between stamps `lo + i` and
/// `lo + i + 1`.
#[derive(Clone, PartialEq, Eq)]
struct Instants {
    lo: u64,
    len: usize,
    words: Vec<u64>,
}

impl Instants {
    fn empty(w: Window) -> Self {
        let len = (w.hi - w.lo) as usize;
        Instants {
            lo: w.lo,
            len,
            words: vec![0; len.div_ceil(64)],
        }
    }

    fn full(w: Window) -> Self {
        let mut s = Self::empty(w);
        s.add(0, u64::MAX);
        s
    }

    /// Add the instants strictly between stamps `after` and `before`.
    fn add(&mut self, after: u64, before: u64) {
        let from = after.max(self.lo) - self.lo;
        let to = before
            .min(self.lo + self.len as u64)
            .saturating_sub(self.lo);
        for i in from..to.max(from) {
            self.words[(i / 64) as usize] |= 1 << (i % 64);
        }
    }

    fn and(&mut self, other: &Instants) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a &= b;
        }
    }

    fn or(&mut self, other: &Instants) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a |= b;
        }
    }

    fn is_empty(&self) -> bool {
        self.words.iter().all(|w| *w == 0)
    }

    fn is_full(&self) -> bool {
        *self
            == Self::full(Window {
                lo: self.lo,
                hi: self.lo + self.len as u64,
            })
    }

    fn contains(&self, i: usize) -> bool {
        self.words[i / 64] & (1 << (i % 64)) != 0
    }

    /// The instants as stamp intervals, e.g. `(10, 14) (20, 21)`.
    fn describe(&self) -> String {
        let mut out = String::new();
        let mut i = 0;
        while i < self.len {
            if !self.contains(i) {
                i += 1;
                continue;
            }
            let from = i;
            while i < self.len && self.contains(i) {
                i += 1;
            }
            let _ = write!(out, "({}, {}) ", self.lo + from as u64, self.lo + i as u64);
        }
        if out.is_empty() {
            "none".to_owned()
        } else {
            out.trim_end().to_owned()
        }
    }
}

/// What kind of check an image failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Failure {
    CommitFailed,
    DuplicateNames,
    OpenFailed,
    Generation,
    NotOneInstant,
}

impl Failure {
    fn label(self) -> &'static str {
        match self {
            Failure::CommitFailed => "a flush, flush_then_punch or compact returned an error",
            Failure::DuplicateNames => "two regions of one name (the open refuses the image)",
            Failure::OpenFailed => "the open failed",
            Failure::Generation => "recovered generation out of range",
            Failure::NotOneInstant => "the recovered state existed at no instant of its flush",
        }
    }
}

/// A region as an image recovered it.
struct Recovered {
    number: usize,
    name: String,
    bytes: Vec<u8>,
}

/// Checks the crash images of one finished workload.
struct Checker<'a> {
    seed: u64,
    logs: &'a [Vec<Op>],
    captures: &'a [Capture],
    info: &'a [CaptureInfo],
    producers: &'a BTreeMap<u64, OpRef>,
    objects: Vec<Object>,
    by_number: BTreeMap<usize, Vec<usize>>,
    /// Per barrier, the newest generation of a commit that had returned `Ok` before it.
    lows: Vec<Option<u64>>,
    image: ImageDir,
    checked: u64,
    read_only: u64,
    recovered: BTreeMap<&'static str, u64>,
    failures: BTreeMap<Failure, Vec<String>>,
    kept: usize,
}

impl<'a> Checker<'a> {
    fn new(
        seed: u64,
        logs: &'a [Vec<Op>],
        captures: &'a [Capture],
        info: &'a [CaptureInfo],
        producers: &'a BTreeMap<u64, OpRef>,
        scratch: PathBuf,
    ) -> Self {
        // The histories, each in the order of its stamps (one thread makes each, so
        // they do not overlap).
        let mut all: Vec<&Op> = logs.iter().flatten().collect();
        all.sort_by_key(|op| op.inv);
        let mut objects: Vec<Object> = Vec::new();
        let mut index: HashMap<Lid, usize> = HashMap::new();
        for op in all {
            let Some((lid, effect)) = &op.target else {
                continue;
            };
            let i = *index.entry(*lid).or_insert_with(|| {
                let Effect::Create { number, .. } = effect else {
                    panic!("{} changed before its creation", lid_label(*lid));
                };
                objects.push(Object {
                    lid: *lid,
                    number: *number,
                    structure: Vec::new(),
                    content: Vec::new(),
                    structure_stamps: Vec::new(),
                    content_stamps: Vec::new(),
                    snapshots: Vec::new(),
                });
                objects.len() - 1
            });
            let object = &mut objects[i];
            if effect.is_structure() {
                if let Some(prev) = object.structure.last() {
                    assert!(prev.1 < op.inv, "{}: structure overlaps", lid_label(*lid));
                }
                let name = match effect {
                    Effect::Create { name, .. } | Effect::Rename(name) => Some(name.clone()),
                    _ => None,
                };
                object.structure.push((op.inv, op.resp, name));
                object.structure_stamps.push((op.inv, op.resp));
            } else {
                let len_before = object.content.last().map_or(0, |c| c.len_after);
                if let Some(prev) = object.content.last() {
                    assert!(prev.resp < op.inv, "{}: content overlaps", lid_label(*lid));
                }
                let (at, len_after) = match effect {
                    Effect::Append(data) => (len_before, len_before + data.len()),
                    Effect::WriteAt { at, data } => (*at, len_before.max(at + data.len())),
                    Effect::Truncate(len) => (0, *len),
                    Effect::TruncateWrite { at, data } => (*at, at + data.len()),
                    _ => unreachable!(),
                };
                object.content_stamps.push((op.inv, op.resp));
                object.content.push(ContentOp {
                    inv: op.inv,
                    resp: op.resp,
                    effect: effect.clone(),
                    at,
                    len_after,
                });
            }
        }
        let mut by_number: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (i, o) in objects.iter().enumerate() {
            by_number.entry(o.number).or_default().push(i);
        }
        // What each committing call left durable: the newest generation its thread saw
        // in the metadata file at its own barriers.
        let mut made: HashMap<(usize, usize), u64> = HashMap::new();
        for c in info {
            if let (Some(by), Some(g)) = (c.by, c.generation) {
                let e = made.entry((by.thread, by.index)).or_insert(g);
                *e = (*e).max(g);
            }
        }
        let mut returned: Vec<(u64, u64)> = made
            .iter()
            .filter(|((t, i), _)| logs[*t][*i].kind.succeeded())
            .map(|((t, i), g)| (logs[*t][*i].resp, *g))
            .collect();
        returned.sort_unstable();
        let lows = info
            .iter()
            .map(|c| {
                returned
                    .iter()
                    .take_while(|(resp, _)| *resp < c.start)
                    .map(|(_, g)| *g)
                    .max()
            })
            .collect();
        Checker {
            seed,
            logs,
            captures,
            info,
            producers,
            objects,
            by_number,
            lows,
            image: ImageDir::new(scratch.join("image")),
            checked: 0,
            read_only: 0,
            recovered: BTreeMap::new(),
            failures: BTreeMap::new(),
            kept: 0,
        }
    }

    fn op(&self, r: OpRef) -> &Op {
        &self.logs[r.thread][r.index]
    }

    fn check(&mut self, interval: &Interval<'_>, subset: &Subset, serial: u64) {
        let k = interval.k;
        self.image.write(interval.image(subset));
        let dir = self.image.dir.clone();
        let result = self.verify(&dir, k, serial);
        self.checked += 1;
        let Err((failure, why)) = result else {
            return;
        };
        let shown = self.shows(failure);
        let mut why = why;
        let mut keep = String::new();
        if shown {
            let files = interval.image(subset);
            if failure == Failure::DuplicateNames {
                why.push_str(&self.explain_duplicate(&files));
            }
            if self.kept < 6 {
                self.kept += 1;
                let dir = std::env::temp_dir().join(format!(
                    "seqdb-crash-threads-seed{}-barrier{k}-{}",
                    self.seed, self.kept
                ));
                let refs: Vec<(&str, &[u8])> =
                    files.iter().map(|(n, b)| (*n, b.as_slice())).collect();
                support::write_files(&dir, &refs);
                keep = format!(" [image kept in {}]", dir.display());
            }
        }
        let message = format!(
            "seed {} barrier {k} ({} -> {}) image {subset:?}: {why}{keep}",
            self.seed,
            self.captures[k].what,
            self.captures[k + 1].what,
        );
        self.failures
            .entry(failure)
            .or_default()
            .push(message.clone());
        if shown {
            eprintln!("FAILED ({}): {message}", failure.label());
        }
    }

    /// Whether a failure of this kind is printed in full (the first three of a seed).
    fn shows(&self, failure: Failure) -> bool {
        self.failures.get(&failure).map_or(0, Vec::len) < 3
    }

    /// Which record of the image names two regions alike, which call wrote it, and what
    /// happened to those regions then (read with the codec of `docs/FORMAT.md`).
    fn explain_duplicate(&mut self, files: &[(&'static str, Vec<u8>)]) -> String {
        let Some(records) = files
            .iter()
            .find(|(n, _)| *n == "meta")
            .and_then(|(_, meta)| support::format::decode(meta))
        else {
            return String::new();
        };
        let Some(last) = records.last() else {
            return String::new();
        };
        let generation = last.record.generation;
        let mut by_name: BTreeMap<&[u8], Vec<u64>> = BTreeMap::new();
        let regions = support::format::replay(&records);
        for e in regions.values() {
            by_name.entry(&e.name).or_default().push(e.number);
        }
        let mut out = String::new();
        let Some(&producer) = self.producers.get(&generation) else {
            return out;
        };
        let op = self.op(producer).clone();
        let w = Window {
            lo: op.inv,
            hi: op.resp,
        };
        let _ = write!(
            out,
            "\n    the newest record, generation {generation}, was written by thread {} op {} \
             ({:?}, stamps {}..{}); its entries: {}",
            producer.thread,
            producer.index,
            op.kind,
            w.lo,
            w.hi,
            last.record
                .entries
                .iter()
                .map(|e| format!("#{} {:?}", e.number, String::from_utf8_lossy(&e.name)))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let doubled: Vec<u64> = by_name
            .values()
            .filter(|numbers| numbers.len() > 1)
            .flatten()
            .copied()
            .collect();
        for n in doubled {
            let objects = self
                .by_number
                .get(&(n as usize))
                .cloned()
                .unwrap_or_default();
            for o in objects {
                let lived = !self.absent(o, w).is_full();
                if let Some(history) = self.history_near(o, w, None, 0, lived) {
                    let _ = write!(out, "\n      {history}");
                }
            }
        }
        out
    }

    fn verify(&mut self, dir: &Path, k: usize, serial: u64) -> Result<(), (Failure, String)> {
        if serial.is_multiple_of(4) {
            self.read_only += 1;
            self.open_and_compare(dir, k, true)?;
        }
        self.open_and_compare(dir, k, false)
    }

    fn open_and_compare(
        &mut self,
        dir: &Path,
        k: usize,
        read_only: bool,
    ) -> Result<(), (Failure, String)> {
        let how = if read_only { "read-only open" } else { "open" };
        let committed = self.info[k + 1].generation.is_some();
        let db = match support::open_guarded(dir, read_only) {
            Opened::Ok(db) => db,
            Opened::Err(_) if !committed => return Ok(()),
            // Bytes a commit carried in its record are not in the data file: only a
            // read-write open can write them, and the one that follows must.
            Opened::Err(seqdb::Error::NeedsRecovery { .. }) if read_only => return Ok(()),
            Opened::Err(e) => {
                let text = e.to_string();
                let failure = if text.contains("two regions are named") {
                    Failure::DuplicateNames
                } else {
                    Failure::OpenFailed
                };
                return Err((failure, format!("{how} failed: {text}")));
            }
            Opened::Panicked(p) => {
                return Err((Failure::OpenFailed, format!("{how} panicked: {p}")));
            }
        };
        let generation = db
            .stats()
            .map_err(|e| (Failure::OpenFailed, format!("{how}: stats: {e}")))?
            .generation;
        let mut regions = Vec::new();
        for region in db.regions() {
            let reader = db
                .create_region_reader(Identifier::Number(region.number()))
                .map_err(|e| (Failure::OpenFailed, format!("{how}: reader: {e}")))?;
            regions.push(Recovered {
                number: region.number(),
                name: region.name().to_owned(),
                bytes: reader.read_all().to_vec(),
            });
        }
        drop(db);
        if !committed {
            if generation == 0 && regions.is_empty() {
                return Ok(());
            }
            return Err((
                Failure::Generation,
                format!("{how}: before the first commit, generation {generation}"),
            ));
        }
        let low = self.lows[k].unwrap_or(0);
        let high = self.info[k + 1].generation.unwrap();
        if generation < low || generation > high {
            return Err((
                Failure::Generation,
                format!(
                    "{how}: recovered generation {generation}, expected {low}..={high} \
                     (a flush that returned before barrier {k} made {low})"
                ),
            ));
        }
        if !read_only {
            let which = if Some(generation) == self.info[k].generation {
                "durable at the barrier"
            } else {
                "in flight"
            };
            *self.recovered.entry(which).or_default() += 1;
        }
        self.consistent(generation, &regions, k)
            .map_err(|why| (Failure::NotOneInstant, format!("{how}: {why}")))
    }

    /// Instants of the window at which object `o` does not exist.
    fn absent(&self, o: usize, w: Window) -> Instants {
        let object = &self.objects[o];
        if !object.lives_in(w) {
            return Instants::full(w);
        }
        let mut set = Instants::empty(w);
        for (p, after, before) in prefixes(&object.structure_stamps, w) {
            if p == 0 || object.structure[p - 1].2.is_none() {
                set.add(after, before);
            }
        }
        set
    }

    /// Instants of the window at which object `o` is named `name`.
    fn named(&self, o: usize, name: &str, w: Window) -> Instants {
        let object = &self.objects[o];
        let mut set = Instants::empty(w);
        if !object.lives_in(w) {
            return set;
        }
        for (p, after, before) in prefixes(&object.structure_stamps, w) {
            if p > 0 && object.structure[p - 1].2.as_deref() == Some(name) {
                set.add(after, before);
            }
        }
        set
    }

    /// Whether `got` is the content of `o` after `p` operations, bytes rewritten by later
    /// operations (that began before `limit`) allowed.
    fn content_is(&mut self, o: usize, p: usize, got: &[u8], limit: u64) -> bool {
        let object = &self.objects[o];
        let len = if p == 0 {
            0
        } else {
            object.content[p - 1].len_after
        };
        if len != got.len() {
            return false;
        }
        let want = self.objects[o].state(p);
        if want == got {
            return true;
        }
        let later: Vec<&ContentOp> = self.objects[o].content[p..]
            .iter()
            .take_while(|c| c.inv < limit)
            .filter(|c| written(c).is_some_and(|d| !d.is_empty()) && c.at < got.len())
            .collect();
        (0..got.len()).all(|i| {
            got[i] == want[i]
                || later.iter().any(|c| {
                    let data = written(c).unwrap();
                    i >= c.at && i < c.at + data.len() && data[i - c.at] == got[i]
                })
        })
    }

    /// Instants of the window at which object `o` holds `got`.
    fn holds(&mut self, o: usize, got: &[u8], w: Window, limit: u64) -> Instants {
        let mut set = Instants::empty(w);
        let candidates: Vec<_> = prefixes(&self.objects[o].content_stamps, w).collect();
        for (p, after, before) in candidates {
            if self.content_is(o, p, got, limit) {
                set.add(after, before);
            }
        }
        set
    }

    /// The instants of the window consistent with what the image holds under number `n`.
    fn instants_of(
        &mut self,
        n: usize,
        got: Option<&Recovered>,
        w: Window,
        limit: u64,
    ) -> Result<Instants, String> {
        let objects: Vec<usize> = self
            .by_number
            .get(&n)
            .into_iter()
            .flatten()
            .copied()
            .filter(|&o| self.objects[o].lives_in(w))
            .collect();
        let Some(got) = got else {
            let mut set = Instants::full(w);
            for &o in &objects {
                set.and(&self.absent(o, w));
            }
            return Ok(set);
        };
        if !self.by_number.contains_key(&n) {
            return Err(format!(
                "region {:?} has number {n}, which no region of the workload had",
                got.name
            ));
        }
        let mut set = Instants::empty(w);
        for &o in &objects {
            let mut h = self.named(o, &got.name, w);
            if h.is_empty() {
                continue;
            }
            h.and(&self.holds(o, &got.bytes, w, limit));
            for &other in &objects {
                if other != o {
                    h.and(&self.absent(other, w));
                }
            }
            set.or(&h);
        }
        Ok(set)
    }

    fn consistent(
        &mut self,
        generation: u64,
        regions: &[Recovered],
        k: usize,
    ) -> Result<(), String> {
        let producer = *self
            .producers
            .get(&generation)
            .ok_or_else(|| format!("generation {generation} was never synced"))?;
        let op = self.op(producer);
        let w = Window {
            lo: op.inv,
            hi: op.resp,
        };
        let limit = self.info[k + 1].end;
        let got: BTreeMap<usize, &Recovered> = regions.iter().map(|r| (r.number, r)).collect();
        let numbers: BTreeSet<usize> = self.by_number.keys().chain(got.keys()).copied().collect();
        let mut allowed = Instants::full(w);
        let mut notes: Vec<(usize, Instants)> = Vec::new();
        for n in numbers {
            let set = self.instants_of(n, got.get(&n).copied(), w, limit)?;
            allowed.and(&set);
            if !set.is_full() {
                notes.push((n, set));
            }
            if allowed.is_empty() {
                if !self.shows(Failure::NotOneInstant) {
                    return Err(format!("generation {generation}: no instant fits"));
                }
                return Err(self.explain(generation, producer, w, &notes, &got, limit));
            }
        }
        Ok(())
    }

    /// Why no instant fits: the instants each region allows, and what each region holds.
    fn explain(
        &mut self,
        generation: u64,
        producer: OpRef,
        w: Window,
        notes: &[(usize, Instants)],
        got: &BTreeMap<usize, &Recovered>,
        limit: u64,
    ) -> String {
        let op = self.op(producer).clone();
        let mut out = format!(
            "generation {generation} was written by thread {} op {} ({:?}, stamps {}..{}); \
             no instant in it fits every region:",
            producer.thread, producer.index, op.kind, w.lo, w.hi
        );
        for (n, set) in notes {
            let what = match got.get(n) {
                Some(r) => format!("{:?} with {} bytes", r.name, r.bytes.len()),
                None => "absent".to_owned(),
            };
            let _ = write!(out, "\n    #{n} {what}: instants {}", set.describe());
            let objects = self.by_number.get(n).cloned().unwrap_or_default();
            for o in objects {
                // Only the regions of that number that lived or changed near the window.
                let lived = !self.absent(o, w).is_full();
                if let Some(history) = self.history_near(o, w, got.get(n).copied(), limit, lived) {
                    let _ = write!(out, "\n      {history}");
                }
            }
        }
        out
    }

    /// The operations of object `o` near the window (its structure operations, at most
    /// twelve content operations), and which content prefixes match what the image holds;
    /// `None` when nothing happened to it near the window and it did not live then.
    fn history_near(
        &mut self,
        o: usize,
        w: Window,
        got: Option<&Recovered>,
        limit: u64,
        lived: bool,
    ) -> Option<String> {
        const MARGIN: u64 = 40;
        let object = &self.objects[o];
        let near = |inv: u64, resp: u64| resp + MARGIN > w.lo && inv < w.hi + MARGIN;
        let mut out = format!("{} (#{}):", lid_label(object.lid), object.number);
        let mut any = false;
        for (i, (inv, resp, name)) in object.structure.iter().enumerate() {
            let last_before =
                *inv < w.lo && object.structure.get(i + 1).is_none_or(|s| s.0 >= w.lo);
            if near(*inv, *resp) || (lived && last_before) {
                any |= near(*inv, *resp);
                let _ = write!(out, " [s{} {inv}..{resp} name {name:?}]", i + 1);
            }
        }
        let near_content: Vec<usize> = (0..object.content.len())
            .filter(|&i| near(object.content[i].inv, object.content[i].resp))
            .collect();
        if !any && !lived && near_content.is_empty() {
            return None;
        }
        for &i in near_content.iter().take(12) {
            let c = &object.content[i];
            let _ = write!(
                out,
                " [c{} {}..{} {} -> len {}]",
                i + 1,
                c.inv,
                c.resp,
                c.effect.describe(),
                c.len_after
            );
        }
        if let Some(got) = got {
            let n = self.objects[o].content.len();
            let matching: Vec<usize> = (0..=n)
                .filter(|&p| self.content_is(o, p, &got.bytes, limit))
                .take(8)
                .collect();
            let _ = write!(out, " content matches prefixes {matching:?} of {n}");
        }
        Some(out)
    }
}

/// The outcome of one seed.
#[derive(Default)]
struct Outcome {
    checked: u64,
    flushes: u64,
    failures: BTreeMap<Failure, Vec<String>>,
}

fn database_dir() -> tempfile::TempDir {
    // Thousands of barriers: on a RAM file system when there is one (the image capture
    // does not depend on the sync being slow).
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::tempdir_in(shm)
    {
        return dir;
    }
    tempfile::tempdir().unwrap()
}

/// Run one threaded workload and check its crash images within the budget.
fn simulate(seed: u64, met: u64, max_images: u64, seconds: u64) -> Outcome {
    let started = Instant::now();
    let scratch = database_dir();
    let dir = scratch.path().join("db");
    let threads = 2 + (seed % 3) as usize;
    let observed = Arc::new(Mutex::new(Observed {
        recorder: Recorder::new(dir.clone()),
        info: Vec::new(),
        producers: BTreeMap::new(),
        attributed: None,
    }));
    observed
        .lock()
        .unwrap()
        .observe("before open".to_owned(), false);
    let observer: SyncObserver = {
        let observed = observed.clone();
        Arc::new(move |event: SyncEvent<'_>| {
            let what = format!("{:?} {}", event.kind, event.path.display());
            let meta_event = event.path.file_name() != Some(std::ffi::OsStr::new("data"));
            observed.lock().unwrap().observe(what, meta_event);
        })
    };
    let universe: Arc<HashSet<String>> = Arc::new(
        (0..threads)
            .flat_map(|t| (0..OWN_NAMES).map(move |j| format!("t{t}-{j}")))
            .chain([SWAP_A, SWAP_B, SWAP_TMP].map(str::to_owned))
            .collect(),
    );

    // Set-up, as a thread of its own (index `threads`): every thread's first regions,
    // then `A` and its partner (numbered after them), then a flush.
    let mut setup_log = Vec::new();
    CURRENT.set(Some(OpRef {
        thread: threads,
        index: 0,
    }));
    let inv = stamp();
    let db = OpenOptions::new()
        .sync_observer(observer)
        .open(&dir)
        .unwrap();
    let resp = stamp();
    CURRENT.set(None);
    setup_log.push(Op {
        inv,
        resp,
        kind: Kind::Open,
        target: None,
    });
    let signal = Arc::new(Signal::default());
    let mut setup = Worker::new(threads, seed, db.clone(), universe.clone(), signal.clone());
    setup.log = setup_log;
    setup.setup = true;
    let mut workers: Vec<Worker> = (0..threads)
        .map(|t| Worker::new(t, seed, db.clone(), universe.clone(), signal.clone()))
        .collect();
    // `A` and its partner get the highest and the lowest numbers (the other way round for
    // one seed in four), every thread's regions those in between: a flush writes those
    // between its looks at the two, which widens the race with the swapper.
    let pair = if seed.is_multiple_of(4) {
        [(SWAP_A, Role::ContentOnly), (SWAP_B, Role::Partner)]
    } else {
        [(SWAP_B, Role::Partner), (SWAP_A, Role::ContentOnly)]
    };
    let mut shared = Vec::new();
    let (name, role) = pair[0];
    let i = setup.create(name.to_owned(), role);
    setup.append(i, 100, true);
    shared.push(setup.own.pop().unwrap());
    for (t, worker) in workers.iter_mut().enumerate() {
        for j in 0..if t == 0 { 6 } else { 2 } {
            let i = setup.create(format!("t{t}-{j}"), Role::Plain);
            let len = setup.rng.range(100, 3000) as usize;
            setup.append(i, len, true);
            worker.own.push(setup.own.pop().unwrap());
        }
    }
    let (name, role) = pair[1];
    let i = setup.create(name.to_owned(), role);
    setup.append(i, 100, true);
    shared.push(setup.own.pop().unwrap());
    let a_region = shared
        .iter()
        .find(|o| o.role == Role::ContentOnly)
        .unwrap()
        .clone();
    let partner = shared
        .iter()
        .find(|o| o.role == Role::Partner)
        .unwrap()
        .clone();
    let (a_lid, a_number) = (a_region.lid, a_region.number);
    workers[0].own.push(a_region);
    workers[1].own.push(partner);
    setup.commit(Kind::Flush);

    // Half the seeds swap only; the others also remove and create `B` again.
    let recreate = if seed.is_multiple_of(2) { 0 } else { 30 };
    let stop = AtomicBool::new(false);
    let cpus = support::allowed_cpus();
    let pinned = AtomicU64::new(0);
    let deadline = Instant::now() + Duration::from_secs(3 * support::scale());
    let workers: Vec<Worker> = std::thread::scope(|s| {
        let handles: Vec<_> = workers
            .into_iter()
            .map(|mut w| {
                let (stop, cpus, pinned) = (&stop, &cpus, &pinned);
                s.spawn(move || {
                    struct Done<'a>(&'a AtomicBool, bool);
                    impl Drop for Done<'_> {
                        fn drop(&mut self) {
                            if self.1 {
                                self.0.store(true, Ordering::Relaxed);
                            }
                        }
                    }
                    let _done = Done(stop, w.thread == 0);
                    // The appender and the swapper on CPUs of their own, so that the
                    // scheduler never puts them on one (then they could not race).
                    if w.thread < 2
                        && let Some(&cpu) = cpus.get(w.thread)
                        && cpus.len() >= 2
                    {
                        pinned.fetch_add(u64::from(support::pin_to_cpu(cpu)), Ordering::Relaxed);
                    }
                    match w.thread {
                        0 => w.run_appender(met, deadline),
                        1 => w.run_swapper(a_lid, a_number, stop, recreate),
                        _ => w.run_mixed(stop),
                    }
                    w
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut counts = setup.counts.clone();
    for w in &workers {
        for (kind, n) in &w.counts.ops {
            *counts.ops.entry(*kind).or_default() += n;
        }
        counts.swaps += w.counts.swaps;
        counts.cues += w.counts.cues;
        counts.met += w.counts.met;
        counts.recreates += w.counts.recreates;
        counts.moves += w.counts.moves;
    }
    let errors: Vec<String> = workers.iter().flat_map(|w| w.errors.clone()).collect();
    let mut logs: Vec<Vec<Op>> = workers.into_iter().map(|w| w.log).collect();
    logs.push(std::mem::take(&mut setup.log));
    drop(setup);
    // Dropping the last handle flushes. A flush first, as the set-up thread's last
    // operation, makes that commit one the checks know; the drop then has none to make.
    let setup_log = logs.last_mut().unwrap();
    CURRENT.set(Some(OpRef {
        thread: threads,
        index: setup_log.len(),
    }));
    let inv = stamp();
    db.flush().unwrap();
    let resp = stamp();
    CURRENT.set(None);
    setup_log.push(Op {
        inv,
        resp,
        kind: Kind::Flush,
        target: None,
    });
    let live = support::read_state(&db);
    drop(db);
    let workload_time = started.elapsed();

    let mut observed = Arc::try_unwrap(observed)
        .ok()
        .expect("the observer outlives the database")
        .into_inner()
        .unwrap();
    let captures = std::mem::take(&mut observed.recorder.captures);
    let info = std::mem::take(&mut observed.info);
    let producers = std::mem::take(&mut observed.producers);
    let mut checker = Checker::new(
        seed,
        &logs,
        &captures,
        &info,
        &producers,
        scratch.path().to_owned(),
    );

    // The model itself: every history applied in full is what the database held.
    let live = live.expect("reading the live database");
    let mut want = support::State::new();
    for o in 0..checker.objects.len() {
        let object = &checker.objects[o];
        if let Some((_, _, Some(name))) = object.structure.last() {
            let name = name.clone();
            let n = object.content.len();
            let bytes = checker.objects[o].state(n);
            want.insert(name, bytes);
        }
    }
    if let Some(diff) = support::diff_states(&live, &want) {
        panic!("seed {seed}: the live database differs from the histories: {diff}");
    }

    // Two figures of the race, for the summary: how many of the appender's flushes a
    // rename of the swapper fell into, and how many commits name two regions alike (read
    // from the captured metadata files with the codec of `docs/FORMAT.md`).
    let renames: Vec<&Op> = logs[1].iter().filter(|o| o.kind == Kind::Rename).collect();
    let overlapped = logs[0]
        .iter()
        .filter(|f| matches!(f.kind, Kind::Flush | Kind::FlushThenPunch))
        .filter(|f| {
            let i = renames.partition_point(|r| r.inv <= f.inv);
            renames.get(i).is_some_and(|r| r.resp < f.resp)
        })
        .count();
    let mut doubled = 0;
    let mut seen = None;
    for (c, i) in captures.iter().zip(&info) {
        if i.generation == seen {
            continue;
        }
        seen = i.generation;
        let records = c
            .files
            .get("meta")
            .and_then(|meta| support::format::decode(&whole(meta)))
            .unwrap_or_default();
        let regions = support::format::replay(&records);
        let names: HashSet<&[u8]> = regions.values().map(|e| e.name.as_slice()).collect();
        doubled += usize::from(names.len() != regions.len());
    }
    let budget = Budget {
        max: max_images,
        start: Instant::now(),
        limit: Duration::from_secs(seconds),
    };
    let intervals: Vec<Interval<'_>> = (0..captures.len() - 1)
        .map(|k| Interval::new(k, &captures[k], &captures[k + 1]))
        .collect();
    let mut rng = Rng(seed ^ 0xC0FFEE);
    let plans: Vec<Vec<Subset>> = intervals.iter().map(|i| i.subsets(&mut rng)).collect();
    let rounds = plans.iter().map(Vec::len).max().unwrap_or(0);
    let mut serial = 0u64;
    'outer: for round in 0..rounds {
        for (interval, plan) in intervals.iter().zip(&plans) {
            let Some(subset) = plan.get(round) else {
                continue;
            };
            if !budget.allows(checker.checked) {
                break 'outer;
            }
            checker.check(interval, subset, serial);
            serial += 1;
        }
    }
    let planned: usize = plans.iter().map(Vec::len).sum();
    if !errors.is_empty() {
        checker.failures.insert(Failure::CommitFailed, errors);
    }
    let flushes = logs
        .iter()
        .flatten()
        .filter(|op| op.kind.commits() && op.kind != Kind::Open)
        .count() as u64;
    let ops: Vec<String> = counts
        .ops
        .iter()
        .map(|(k, n)| format!("{k:?} {n}"))
        .collect();
    println!(
        "seed {seed}: {threads} threads ({}), {} operations in {:.1?} ({}), {} swaps, {} \
         re-creations of B, {} moves seen; {} of {} flushes of A's appender cued to the \
         swapper, {} of them during two changes of it or more, {overlapped} during a rename; {} generations, {doubled} of them naming two \
         regions alike, {} barriers; {} of {planned} planned crash images checked in {:.1?} \
         ({} also read-only; recovered {:?}); failures {:?}",
        if pinned.load(Ordering::Relaxed) == 2 {
            "the appender and the swapper each pinned to a CPU"
        } else {
            "not pinned"
        },
        logs.iter().map(Vec::len).sum::<usize>(),
        workload_time,
        ops.join(", "),
        counts.swaps,
        counts.recreates,
        counts.moves,
        counts.cues,
        logs[0]
            .iter()
            .filter(|f| matches!(f.kind, Kind::Flush | Kind::FlushThenPunch))
            .count(),
        counts.met,
        producers.len(),
        captures.len() - 1,
        checker.checked,
        budget.elapsed(),
        checker.read_only,
        checker.recovered,
        checker
            .failures
            .iter()
            .map(|(f, v)| (*f, v.len()))
            .collect::<BTreeMap<_, _>>(),
    );
    Outcome {
        checked: checker.checked,
        flushes,
        failures: std::mem::take(&mut checker.failures),
    }
}

/// Threads append, overwrite, rename, swap names, remove and flush at once; every crash
/// image must recover a state that existed at one instant of the flush that wrote it.
#[test]
fn crash_images_of_threads_recover_one_instant() {
    let started = Instant::now();
    let mut images = 0;
    let mut flushes = 0;
    let mut failed: BTreeMap<Failure, (u64, Vec<u64>, String)> = BTreeMap::new();
    for seed in support::seeds(3000, 3) {
        let outcome = simulate(seed, 400, 5000, 3);
        images += outcome.checked;
        flushes += outcome.flushes;
        for (failure, messages) in outcome.failures {
            let entry = failed
                .entry(failure)
                .or_insert_with(|| (0, Vec::new(), messages[0].clone()));
            entry.0 += messages.len() as u64;
            entry.1.push(seed);
        }
    }
    println!(
        "crash images checked: {images}, flushes: {flushes}, in {:.1?}",
        started.elapsed()
    );
    if failed.is_empty() {
        return;
    }
    let mut report = String::new();
    for (failure, (count, seeds, first)) in &failed {
        let _ = write!(
            report,
            "\n{}: {count} images, seeds {seeds:?}\n  first: {first}\n  replay: \
             SEQDB_SEED={} cargo test -p seqdb --test crash_sim_threads -- --nocapture",
            failure.label(),
            seeds[0]
        );
    }
    panic!("crash images failed:{report}");
}
