//! `cargo xtask stress [--scale N] [--seed S]`: the reliability suites with larger counts.
//!
//! Runs the crash-image simulations (one thread, and threads racing flushes), the SIGKILL
//! tests (of writers and of backups), the full-disk tests, the hostile-file tests, the
//! flush races and the failing-sync tests of `seqdb` in release mode with
//! `SEQDB_STRESS_SCALE=N` (default 20), which multiplies their case counts and time
//! bounds; `--seed S` replays one seed (`SEQDB_SEED`). Each suite prints what it tried.

use std::process::Command;

/// The reliability suites, as `--test` targets of the `seqdb` crate.
const SUITES: [&str; 9] = [
    "crash_sim",
    "crash_sim_threads",
    "process_kill",
    "readers_beside_writer",
    "backup_kill",
    "full_disk",
    "hostile_files",
    "flush_races",
    "sync_faults",
];

/// The scale used when none is given.
const DEFAULT_SCALE: u64 = 20;

/// Runs the reliability suites at the requested scale, failing when any test fails.
pub fn stress(args: &[String]) -> Result<(), String> {
    let mut scale = DEFAULT_SCALE;
    let mut seed = None;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let mut value = |name: &str| {
            rest.next()
                .ok_or_else(|| format!("stress: {name} needs a value"))
        };
        match arg.as_str() {
            "--scale" => {
                let v = value("--scale")?;
                scale = v
                    .parse()
                    .ok()
                    .filter(|&s| s > 0)
                    .ok_or_else(|| format!("stress: --scale {v} is not a positive integer"))?;
            }
            "--seed" => {
                let v = value("--seed")?;
                v.parse::<u64>()
                    .map_err(|_| format!("stress: --seed {v} is not an integer"))?;
                seed = Some(v.clone());
            }
            other => {
                return Err(format!(
                    "stress: unknown argument {other}; usage: cargo xtask stress [--scale N] [--seed S]"
                ));
            }
        }
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(cargo);
    // Every suite runs even when an earlier one fails, so one run reports them all.
    command.args(["test", "--release", "--no-fail-fast", "-p", "seqdb"]);
    for suite in SUITES {
        command.args(["--test", suite]);
    }
    // Ignored tests of these suites are the ones too long for every CI run.
    command
        .args(["--", "--nocapture", "--include-ignored"])
        .env("SEQDB_STRESS_SCALE", scale.to_string());
    if let Some(seed) = &seed {
        command.env("SEQDB_SEED", seed);
    }
    println!(
        "==> stress: SEQDB_STRESS_SCALE={scale}{} cargo test --release --no-fail-fast -p seqdb {} -- --nocapture --include-ignored",
        seed.as_ref()
            .map(|s| format!(" SEQDB_SEED={s}"))
            .unwrap_or_default(),
        SUITES.map(|s| format!("--test {s}")).join(" ")
    );
    let status = command
        .status()
        .map_err(|e| format!("stress could not start cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("stress failed ({status})"))
    }
}
