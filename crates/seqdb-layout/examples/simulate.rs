//! Replays a synthetic workload against the allocator and reports space
//! amplification and data movement.
//!
//! ```text
//! cargo run --release -p seqdb-layout --example simulate -- \
//!     --workload churn [--ops N] [--regions N] [--seed S] [--policy NAME] [--commit-every N]
//! ```
//!
//! Workloads:
//! - `append-round-robin`: every region grows in turn by a few hundred bytes;
//! - `churn`: regions picked at random are created, appended to, truncated
//!   and removed;
//! - `mixed`: a few huge regions take large appends among many small ones.
//!
//! Policies: `exact`, `double`, `double-cap-<N>m`, `double-cap-<N>g`,
//! `grow-<P>`, `tiered-<N>g-<P>` (see `GrowthPolicy::from_name`); the
//! default, `tiered-1g-50`, is the layout's default.
//!
//! A commit (`begin_commit` + `finish_commit`) runs every `--commit-every`
//! operations, as a database flushing periodically would. After the last
//! operation the layout is compacted round by round.

use std::process::ExitCode;
use std::time::Instant;

use seqdb_layout::{GrowPlan, GrowthPolicy, Layout, LayoutError, RegionKey};

/// splitmix64: small, fast and deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, n)` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }

    /// True with probability `percent`%.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Workload {
    AppendRoundRobin,
    Churn,
    Mixed,
}

impl Workload {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "append-round-robin" => Some(Workload::AppendRoundRobin),
            "churn" => Some(Workload::Churn),
            "mixed" => Some(Workload::Mixed),
            _ => None,
        }
    }

    fn default_regions(self) -> u64 {
        match self {
            Workload::Churn => 100_000,
            Workload::AppendRoundRobin | Workload::Mixed => 10_000,
        }
    }
}

struct Options {
    workload: Workload,
    workload_name: String,
    ops: u64,
    regions: u64,
    seed: u64,
    policy: GrowthPolicy,
    policy_name: String,
    commit_every: u64,
    checkpoints: u64,
}

const USAGE: &str = "usage: simulate --workload append-round-robin|churn|mixed \
[--ops N] [--regions N] [--seed S] [--policy NAME] [--commit-every N] [--checkpoints N]";

fn parse_args() -> Result<Options, String> {
    let mut workload = None;
    let mut ops = 1_000_000;
    let mut regions = None;
    let mut seed = 1;
    let mut policy = (GrowthPolicy::default(), String::from("tiered-1g-50"));
    let mut commit_every = 1000;
    let mut checkpoints = 10;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let number = || {
            value
                .replace('_', "")
                .parse::<u64>()
                .map_err(|_| format!("{flag}: not a number: {value}"))
        };
        match flag.as_str() {
            "--workload" => {
                let parsed = Workload::parse(&value)
                    .ok_or_else(|| format!("unknown workload {value}\n{USAGE}"))?;
                workload = Some((parsed, value));
            }
            "--ops" => ops = number()?,
            "--regions" => regions = Some(number()?.max(1)),
            "--seed" => seed = number()?,
            "--policy" => {
                let parsed = GrowthPolicy::from_name(&value)
                    .ok_or_else(|| format!("unknown policy {value}"))?;
                policy = (parsed, value);
            }
            "--commit-every" => commit_every = number()?.max(1),
            "--checkpoints" => checkpoints = number()?.max(1),
            _ => return Err(format!("unknown argument {flag}\n{USAGE}")),
        }
    }
    let (workload, workload_name) = workload.ok_or_else(|| USAGE.to_string())?;
    Ok(Options {
        workload,
        workload_name,
        ops,
        regions: regions.unwrap_or(workload.default_regions()),
        seed,
        policy: policy.0,
        policy_name: policy.1,
        commit_every,
        checkpoints,
    })
}

/// Counts of what the caller had to do.
#[derive(Default)]
struct Counters {
    moves: u64,
    bytes_moved: u64,
    in_place: u64,
    into_hole: u64,
    at_end: u64,
}

struct Simulation {
    layout: Layout,
    rng: Rng,
    counters: Counters,
}

impl Simulation {
    fn append(&mut self, key: RegionKey, bytes: u64) -> Result<(), LayoutError> {
        let Some(placement) = self.layout.get(key) else {
            self.layout.insert(key, 0)?;
            return self.append(key, bytes);
        };
        match self.layout.grow(key, placement.len + bytes)? {
            GrowPlan::InPlace => self.counters.in_place += 1,
            GrowPlan::ExtendIntoHole { .. } => self.counters.into_hole += 1,
            GrowPlan::AppendAtEnd { .. } => self.counters.at_end += 1,
            GrowPlan::Move { .. } => {
                self.counters.moves += 1;
                self.counters.bytes_moved += placement.len;
            }
        }
        Ok(())
    }

    fn step(&mut self, options: &Options, op: u64) -> Result<(), LayoutError> {
        match options.workload {
            Workload::AppendRoundRobin => {
                let key = op % options.regions;
                let bytes = 1 + self.rng.below(512);
                self.append(key, bytes)
            }
            Workload::Churn => {
                let key = self.rng.below(options.regions);
                let Some(placement) = self.layout.get(key) else {
                    self.layout.insert(key, 0)?;
                    return Ok(());
                };
                match self.rng.below(100) {
                    0..=84 => {
                        let bytes = 1 + self.rng.below(8192);
                        self.append(key, bytes)
                    }
                    85..=89 => {
                        let len = self.rng.below(placement.len + 1);
                        self.layout.set_len(key, len)
                    }
                    _ => self.layout.remove(key).map(|_| ()),
                }
            }
            Workload::Mixed => {
                let huge = (options.regions / 1000).max(4);
                if self.rng.chance(10) {
                    let key = self.rng.below(huge);
                    let bytes = 64 * 1024 + self.rng.below(1 << 20);
                    self.append(key, bytes)
                } else {
                    let key = huge + self.rng.below(options.regions.saturating_sub(huge).max(1));
                    let bytes = 1 + self.rng.below(1024);
                    self.append(key, bytes)
                }
            }
        }
    }

    fn commit(&mut self) {
        let ticket = self.layout.begin_commit();
        self.layout.finish_commit(ticket);
    }

    fn report(&self, ops: u64, started: Instant) {
        let stats = self.layout.stats();
        println!(
            "{:>11} {:>8} {:>10} {:>10} {:>6.2} {:>8} {:>9} {:>10} {:>7.2}",
            ops,
            stats.regions,
            mib(stats.live_bytes),
            mib(stats.file_end),
            stats.space_amplification(),
            stats.holes,
            self.counters.moves,
            mib(self.counters.bytes_moved),
            started.elapsed().as_secs_f64(),
        );
    }

    /// Compacts round by round, committing after each; returns (rounds,
    /// moves, bytes copied).
    fn compact(&mut self) -> (u64, u64, u64) {
        self.commit();
        let (mut rounds, mut moves, mut bytes) = (0, 0, 0);
        loop {
            let round = self.layout.compaction_step();
            if round.is_empty() {
                return (rounds, moves, bytes);
            }
            rounds += 1;
            moves += round.iter().filter(|step| step.from != step.to).count() as u64;
            bytes += round.iter().map(|step| step.len).sum::<u64>();
            self.commit();
        }
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1}M", bytes as f64 / (1024.0 * 1024.0))
}

fn run(options: &Options) -> Result<(), LayoutError> {
    println!(
        "workload {} ops {} regions {} seed {} policy {} commit every {}",
        options.workload_name,
        options.ops,
        options.regions,
        options.seed,
        options.policy_name,
        options.commit_every
    );
    println!(
        "{:>11} {:>8} {:>10} {:>10} {:>6} {:>8} {:>9} {:>10} {:>7}",
        "ops", "regions", "live", "file", "amp", "holes", "moves", "moved", "secs"
    );
    let mut simulation = Simulation {
        layout: Layout::with_policy(options.policy),
        rng: Rng(options.seed),
        counters: Counters::default(),
    };
    let started = Instant::now();
    let every = (options.ops / options.checkpoints).max(1);
    for op in 1..=options.ops {
        simulation.step(options, op - 1)?;
        if op % options.commit_every == 0 {
            simulation.commit();
        }
        if op % every == 0 || op == options.ops {
            simulation.report(op, started);
        }
    }
    simulation.commit();
    let counters = &simulation.counters;
    println!(
        "growth: {} in place, {} into a hole, {} at the end, {} moves",
        counters.in_place, counters.into_hole, counters.at_end, counters.moves
    );
    let compacting = Instant::now();
    let (rounds, moves, bytes) = simulation.compact();
    let stats = simulation.layout.stats();
    println!(
        "compaction: {rounds} rounds, {moves} moves, {} copied, file {} (amp {:.2}) in {:.2}s",
        mib(bytes),
        mib(stats.file_end),
        stats.space_amplification(),
        compacting.elapsed().as_secs_f64()
    );
    simulation.layout.validate()
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("simulation failed: {error}");
            ExitCode::FAILURE
        }
    }
}
