//! `cargo xtask bench [--scale X] [more flags]`: the side-by-side benchmark.
//!
//! Builds and runs `seqdb-bench` in release mode; every argument after `bench` is passed
//! through to it (see its `--help`-style usage for the flags: `--scale`, `--engines`,
//! `--workloads`, `--timeout`).

use std::process::Command;

/// Runs the benchmark with `args` passed through, failing when it does not succeed.
pub fn bench(args: &[String]) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .args(["run", "--release", "-p", "seqdb-bench", "--"])
        .args(args)
        .status()
        .map_err(|e| format!("bench could not start cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("bench failed ({status})"))
    }
}
