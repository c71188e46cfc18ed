//! `cargo xtask bench [--scale X] [more flags]`: the side-by-side benchmark.
//!
//! Builds and runs `seqdb-bench` in release mode; every argument after `bench` is passed
//! through to it (see its `--help`-style usage for the flags: `--scale`, `--engines`,
//! `--workloads`, `--timeout`). The report ends with one PASS or FAIL line per performance
//! target of seqdb (`crates/seqdb-bench/src/report.rs`; `docs/BENCHMARKS.md` lists them),
//! among them W4's: one reader, a reader per read, and 2 threads, each against the better
//! of the original and rawdb in the same run (2 threads: at least 0.9 times).

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
