//! Model-based randomized test: the same random operations applied to a database and to
//! a `HashMap<String, Vec<u8>>`, compared after every step, with flushes, reopens and
//! drops without a flush (which keep everything: the last handle flushes) in between.
//! Readers are taken and held across steps; each must keep showing the bytes the model
//! had when it was taken, whatever the steps do to its region.
//!
//! A failure names its seed and step. Replay one seed with
//! `SEQDB_SEED=<seed> cargo test -p seqdb --test model -- --nocapture`; run more with
//! `SEQDB_MODEL_SEEDS=<count>` and `SEQDB_MODEL_STEPS=<steps>`.

mod support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use seqdb::{Database, Identifier};
use support::held::HeldReaders;

const NAMES: [&str; 8] = ["a", "b", "c", "d", "e", "f", "g", "h"];

/// splitmix64: small, deterministic, good enough to drive a test.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
    fn name(&mut self) -> &'static str {
        NAMES[self.below(NAMES.len() as u64) as usize]
    }
    fn bytes(&mut self) -> Vec<u8> {
        let len = match self.below(10) {
            0 => 0,
            1 => 20_000 + self.below(70_000),
            _ => self.below(3000),
        };
        let seed = self.next() as u8;
        (0..len).map(|i| seed.wrapping_add(i as u8)).collect()
    }
}

struct Run {
    seed: u64,
    step: usize,
    db: Option<Database>,
    /// Readers held across steps, with the bytes they showed when taken.
    readers: Option<HeldReaders>,
    model: HashMap<String, Vec<u8>>,
    /// The model as of the last successful flush.
    committed: HashMap<String, Vec<u8>>,
    /// Whether bytes inside committed lengths were rewritten since that flush; a crash
    /// may then show old or new bytes there, which this model does not track.
    rewrote_committed: bool,
}

impl Run {
    fn db(&self) -> &Database {
        self.db.as_ref().expect("open database")
    }

    fn fail(&self, op: &str, what: impl std::fmt::Display) -> ! {
        panic!(
            "model mismatch: seed {} step {} after {op}: {what}\nreplay with SEQDB_SEED={}",
            self.seed, self.step, self.seed
        )
    }

    fn check(&self, op: &str) {
        if let Err(e) = self.readers.as_ref().map_or(Ok(0), HeldReaders::check) {
            self.fail(op, e);
        }
        let db = self.db();
        let names: HashSet<String> = db.regions().iter().map(|r| r.name().to_owned()).collect();
        let expected: HashSet<String> = self.model.keys().cloned().collect();
        if names != expected {
            self.fail(op, format!("regions {names:?}, expected {expected:?}"));
        }
        for (name, want) in &self.model {
            // The length counts bytes not yet collected from a lent buffer, and never
            // exceeds the reservation.
            let region = db
                .get_region(Identifier::from(name))
                .unwrap_or_else(|e| self.fail(op, e));
            if region.len() != want.len() as u64 || region.len() > region.reserved() {
                self.fail(op, format!("{region:?}, expected length {}", want.len()));
            }
            let reader = db
                .create_region_reader(Identifier::from(name))
                .unwrap_or_else(|e| self.fail(op, e));
            if reader.read_all() != want.as_slice() {
                self.fail(
                    op,
                    format!(
                        "region {name:?} has {} bytes, expected {}",
                        reader.len(),
                        want.len()
                    ),
                );
            }
        }
    }

    fn reopen(&mut self, path: &Path) {
        // Readers borrow a handle: they go first, or the database stays open.
        self.release_readers();
        drop(self.db.take());
        let db = Database::open(path).unwrap_or_else(|e| self.fail("reopen", e));
        self.readers = Some(HeldReaders::new(db.clone()));
        self.db = Some(db);
    }

    fn release_readers(&mut self) {
        if let Some(readers) = self.readers.take()
            && let Err(e) = readers.stop()
        {
            self.fail("dropping readers", e);
        }
    }

    /// Take a reader to hold, or drop one.
    fn reader_step(&mut self, rng: &mut Rng, name: &str) -> String {
        let readers = self.readers.as_ref().expect("holding thread");
        if rng.below(3) == 0 {
            if let Err(e) = readers.drop_one(rng.next()) {
                self.fail("drop reader", e);
            }
            return "drop a held reader".to_owned();
        }
        let Some(want) = self.model.get(name) else {
            return format!("no reader: {name} is missing");
        };
        let id = match self.db().get_region(name.into()) {
            Ok(region) if rng.below(2) == 0 => Identifier::from(region.number()),
            _ => Identifier::from(name),
        };
        if let Err(e) = readers.take(id, Arc::new(want.clone())) {
            self.fail("take reader", e);
        }
        format!("hold a reader of {name}")
    }

    fn step(&mut self, rng: &mut Rng, path: &Path) -> String {
        let name = rng.name();
        let len = self.model.get(name).map(|v| v.len() as u64);
        if rng.below(8) == 0 {
            return self.reader_step(rng, name);
        }
        match rng.below(100) {
            0..=9 => {
                self.db().create_region_if_needed(name).unwrap();
                self.model.entry(name.to_owned()).or_default();
                format!("create {name}")
            }
            10..=14 => {
                // A run of small appends by number, long enough for the region to lend
                // this thread a buffer: those appends take no lock.
                let Some(number) = self.db().get_region(name.into()).ok().map(|r| r.number())
                else {
                    return format!("no burst: {name} is missing");
                };
                let count = 1 + rng.below(60) as usize;
                for _ in 0..count {
                    let piece: Vec<u8> = (0..rng.below(40)).map(|_| rng.next() as u8).collect();
                    if let Err(e) = self.db().write_all_to_region(number.into(), &piece) {
                        self.fail("burst", format!("{name}: {e}"));
                    }
                    self.model.get_mut(name).unwrap().extend(&piece);
                }
                format!("{count} small appends to {name}")
            }
            15..=44 => {
                let data = rng.bytes();
                // Half the appends go by number, as performance-minded callers do.
                let id = match self.db().get_region(name.into()) {
                    Ok(region) if rng.below(2) == 0 => Identifier::from(region.number()),
                    _ => Identifier::from(name),
                };
                let result = self.db().write_all_to_region(id, &data);
                match (len, result) {
                    (Some(_), Ok(())) => self.model.get_mut(name).unwrap().extend(&data),
                    (None, Err(_)) => {}
                    (_, r) => self.fail("append", format!("{name}: {r:?}")),
                }
                format!("append {} to {name}", data.len())
            }
            45..=54 => {
                let data = rng.bytes();
                let at = rng.below(len.unwrap_or(0) + 2);
                let result = self.db().write_all_to_region_at(name.into(), &data, at);
                match (len, result) {
                    (Some(l), Ok(())) if at <= l => {
                        let v = self.model.get_mut(name).unwrap();
                        let end = at as usize + data.len();
                        if end > v.len() {
                            v.resize(end, 0);
                        }
                        v[at as usize..end].copy_from_slice(&data);
                        self.rewrote_committed = true;
                    }
                    (Some(l), Err(_)) if at > l => {}
                    (None, Err(_)) => {}
                    (_, r) => self.fail("write_at", format!("{name}@{at}: {r:?}")),
                }
                format!("write {} at {at} of {name}", data.len())
            }
            55..=59 => {
                let data = rng.bytes();
                let at = rng.below(len.unwrap_or(0) + 2);
                let result = self
                    .db()
                    .truncate_write_all_to_region(name.into(), at, &data);
                match (len, result) {
                    (Some(l), Ok(())) if at <= l => {
                        let v = self.model.get_mut(name).unwrap();
                        v.truncate(at as usize);
                        v.extend(&data);
                        self.rewrote_committed = true;
                    }
                    (Some(l), Err(_)) if at > l => {}
                    (None, Err(_)) => {}
                    (_, r) => self.fail("truncate_write", format!("{name}@{at}: {r:?}")),
                }
                format!("truncate-write {} at {at} of {name}", data.len())
            }
            60..=66 => {
                let to = rng.below(len.unwrap_or(0) + 2);
                let result = self.db().truncate_region(name.into(), to);
                match (len, result) {
                    (Some(l), Ok(())) if to <= l => {
                        self.model.get_mut(name).unwrap().truncate(to as usize);
                        self.rewrote_committed = true;
                    }
                    (Some(l), Err(_)) if to > l => {}
                    (None, Err(_)) => {}
                    (_, r) => self.fail("truncate", format!("{name} to {to}: {r:?}")),
                }
                format!("truncate {name} to {to}")
            }
            67..=72 => {
                let removed = self.db().remove_region(name.into()).unwrap();
                if removed.is_some() != self.model.remove(name).is_some() {
                    self.fail("remove", name);
                }
                format!("remove {name}")
            }
            73..=76 => {
                let to = rng.name();
                let result = self.db().rename_region(name.into(), to);
                let ok = match (&len, self.model.contains_key(to)) {
                    (Some(_), _) if name == to => true,
                    (Some(_), false) => {
                        let v = self.model.remove(name).unwrap();
                        self.model.insert(to.to_owned(), v);
                        true
                    }
                    _ => false,
                };
                if ok != result.is_ok() {
                    self.fail("rename", format!("{name} -> {to}: {result:?}"));
                }
                format!("rename {name} to {to}")
            }
            77..=84 => {
                self.db().flush().unwrap();
                self.committed = self.model.clone();
                self.rewrote_committed = false;
                "flush".to_owned()
            }
            85..=89 => {
                self.db().flush().unwrap();
                self.committed = self.model.clone();
                self.rewrote_committed = false;
                self.reopen(path);
                "flush and reopen".to_owned()
            }
            90..=93 => {
                // Dropping the last handle flushes: nothing written is lost.
                self.reopen(path);
                self.committed = self.model.clone();
                self.rewrote_committed = false;
                "drop without flush, reopen".to_owned()
            }
            94..=96 => {
                self.db().compact().unwrap();
                self.committed = self.model.clone();
                self.rewrote_committed = false;
                "compact".to_owned()
            }
            _ => {
                self.db().flush_then_punch().unwrap();
                self.committed = self.model.clone();
                self.rewrote_committed = false;
                "flush_then_punch".to_owned()
            }
        }
    }
}

fn run_seed(seed: u64, steps: usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(seed);
    let mut run = Run {
        seed,
        step: 0,
        db: Some(Database::open(dir.path()).unwrap()),
        readers: None,
        model: HashMap::new(),
        committed: HashMap::new(),
        rewrote_committed: false,
    };
    run.readers = Some(HeldReaders::new(run.db().clone()));
    for step in 0..steps {
        run.step = step;
        let op = run.step(&mut rng, dir.path());
        run.check(&op);
    }
    // Once no reader is left, a flush and a punch reclaim every extent they kept.
    run.release_readers();
    run.db().flush_then_punch().unwrap();
    let retired = run.db().stats().unwrap().retired_bytes;
    if retired != 0 {
        run.fail(
            "the last reader was dropped",
            format!("{retired} bytes retired"),
        );
    }
    // Finally: flush, reopen, compare once more.
    run.db().flush().unwrap();
    run.reopen(dir.path());
    run.check("final reopen");
    run.release_readers();
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn database_matches_a_hash_map_model() {
    if let Ok(seed) = std::env::var("SEQDB_SEED") {
        let seed = seed.parse().expect("SEQDB_SEED is a number");
        run_seed(seed, env("SEQDB_MODEL_STEPS", 400) as usize);
        return;
    }
    let seeds = env("SEQDB_MODEL_SEEDS", 24);
    let steps = env("SEQDB_MODEL_STEPS", 300) as usize;
    let mut checked = BTreeMap::new();
    for seed in 0..seeds {
        run_seed(seed, steps);
        checked.insert(seed, steps);
    }
    println!(
        "model test: {} seeds x {steps} steps, all equal",
        checked.len()
    );
}
