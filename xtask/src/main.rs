//! The project's own checks and chores, run as `cargo xtask <command>`.
//!
//! * `ci`: formatting, lints, tests, the loom models of `seqdb-sys`, docs and
//!   cross-target checks, stopping at the first failure and naming the step that failed.
//! * `bench [--scale X]`: the side-by-side benchmark of seqdb and its peers.
//! * `stress [--scale N] [--seed S]`: the reliability suites (crash images, process
//!   kills, full disk, hostile files) with their counts multiplied by `N`.

mod bench;
mod stress;

use std::env;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

/// Targets whose standard library, when installed, `ci` type-checks the workspace for.
const CROSS_TARGETS: [&str; 3] = [
    "x86_64-apple-darwin",
    "aarch64-apple-darwin",
    "x86_64-unknown-freebsd",
];

/// Crates of the platform-independent core that are checked for the cross targets.
const CROSS_CRATES: [&str; 3] = ["seqdb-layout", "seqdb-sys", "seqdb"];

/// The loom models of `seqdb-sys`, as `--test` targets (its `--lib` holds one more).
const LOOM_TESTS: [&str; 4] = [
    "loom_handoff",
    "loom_store_buffering",
    "loom_retirement",
    "loom_current_mark",
];

/// Preemptions per execution that the loom models explore in `ci`: three find most bugs,
/// and the models then take well under a second (`docs/RELIABILITY.md`).
const LOOM_PREEMPTIONS: &str = "3";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("bench") => bench::bench(&args[1..]),
        Some("stress") => stress::stress(&args[1..]),
        _ => {
            eprintln!("usage: cargo xtask ci | bench [--scale X] | stress [--scale N] [--seed S]");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// One step of a check: a human name and the cargo arguments it runs.
struct Step {
    name: String,
    args: Vec<String>,
    env: Vec<(&'static str, OsString)>,
}

impl Step {
    fn new(name: &str, args: &[&str]) -> Self {
        Step {
            name: name.to_owned(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            env: Vec::new(),
        }
    }

    fn with_env(mut self, key: &'static str, value: impl Into<OsString>) -> Self {
        self.env.push((key, value.into()));
        self
    }

    fn run(&self) -> Result<(), String> {
        println!("==> {}: cargo {}", self.name, self.args.join(" "));
        let status = Command::new(cargo())
            .args(&self.args)
            .envs(self.env.iter().map(|(key, value)| (*key, value)))
            .status()
            .map_err(|e| format!("step `{}` could not start cargo: {e}", self.name))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("step `{}` failed ({status})", self.name))
        }
    }
}

fn cargo() -> String {
    env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

fn ci() -> Result<(), String> {
    let steps = [
        Step::new("format", &["fmt", "--all", "--check"]),
        Step::new(
            "lint",
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
        ),
        Step::new("test", &["test"]),
        loom_step(
            "loom lint",
            &[
                "clippy",
                "-p",
                "seqdb-sys",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
        ),
        loom_step("loom models", &loom_test_args()),
        Step::new("doc", &["doc", "--workspace", "--no-deps"])
            .with_env("RUSTDOCFLAGS", "-D warnings"),
    ];
    for step in &steps {
        step.run()?;
    }
    let installed = installed_targets();
    for target in CROSS_TARGETS {
        if !installed.iter().any(|t| t == target) {
            println!("skipped: {target} not installed");
            continue;
        }
        let mut args = vec!["check", "--target", target];
        for krate in CROSS_CRATES {
            args.extend(["-p", krate]);
        }
        Step::new(&format!("check {target}"), &args).run()?;
    }
    println!("ci: all steps passed");
    Ok(())
}

/// A step on `seqdb-sys` built with `--cfg loom`, which swaps its handoff buffer's atomics
/// for loom's. It builds in a target directory of its own (`loom` under the usual one),
/// so that the changed flags do not make the normal build start over.
fn loom_step(name: &str, args: &[&str]) -> Step {
    let target = env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    Step::new(name, args)
        .with_env("RUSTFLAGS", "--cfg loom")
        .with_env("CARGO_TARGET_DIR", target.join("loom"))
        .with_env("LOOM_MAX_PREEMPTIONS", LOOM_PREEMPTIONS)
}

/// `cargo test` of the loom models, in release mode as loom advises.
fn loom_test_args() -> Vec<&'static str> {
    let mut args = vec!["test", "-p", "seqdb-sys", "--release", "--lib"];
    for test in LOOM_TESTS {
        args.extend(["--test", test]);
    }
    args
}

/// The targets whose standard library rustup reports as installed; none when rustup is absent.
fn installed_targets() -> Vec<String> {
    Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(|l| l.trim().to_owned())
                .collect()
        })
        .unwrap_or_default()
}
