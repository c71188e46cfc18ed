//! seqdb's benchmark: seqdb side by side with the engines a user would pick instead, and
//! with the machine's physical limits, in one run.
//!
//! `seqdb-bench [--scale X] [--engines a,b] [--workloads w1,w2] [--timeout SECONDS]` runs
//! every workload on every engine, each in its own child process (this binary again, with
//! `--engine NAME --workload W --scale X`), and prints a markdown table and the PASS/FAIL
//! lines of seqdb's targets. A child that crashes or hangs becomes a failed cell.

#![forbid(unsafe_code)]

mod disk;
mod engine;
mod engines;
mod limits;
mod machine;
mod metrics;
mod random;
mod report;
mod smaps;
mod workloads;

use std::collections::HashMap;
use std::env;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use engine::{Engine, Outcome};
use metrics::{FAILED_PREFIX, Metrics, RESULT_PREFIX};
use report::Results;

/// The engines, by command-line name and column title.
const ENGINES: [(&str, &str); 6] = [
    ("seqdb", "seqdb"),
    ("original", "seqdb 0.2.17"),
    ("rawdb", "rawdb 0.13.0"),
    ("files", "plain files"),
    ("lmdb", "LMDB"),
    ("redb", "redb"),
];

/// How many times each engine runs `workload`, the engines taking turns, each cell the
/// median of its rounds. W4's 2-thread rate depends on how much of the second core the
/// machine's other work leaves, which changes within seconds: in turns, every engine meets
/// the same moments, and one engine's bad moment is one round out of three.
fn rounds(workload: &str) -> usize {
    if workload == "w4" { 3 } else { 1 }
}

/// What the command line asked for.
struct Options {
    scale: f64,
    engines: Vec<String>,
    workloads: Vec<String>,
    timeout: Option<Duration>,
    child: Option<(String, String)>,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        scale: 1.0,
        engines: ENGINES.iter().map(|(name, _)| (*name).to_owned()).collect(),
        workloads: workloads::WORKLOADS
            .iter()
            .map(|w| (*w).to_owned())
            .collect(),
        timeout: None,
        child: None,
    };
    let mut engine = None;
    let mut workload = None;
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        let list = |v: String| v.split(',').map(str::to_owned).collect::<Vec<_>>();
        match flag.as_str() {
            "--scale" => {
                let v = value()?;
                options.scale = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s > 0.0)
                    .ok_or_else(|| format!("--scale needs a positive number, not {v}"))?;
            }
            "--engines" => options.engines = list(value()?),
            "--workloads" => options.workloads = list(value()?),
            "--timeout" => {
                let v = value()?;
                let secs: u64 = v
                    .parse()
                    .map_err(|_| format!("--timeout needs whole seconds, not {v}"))?;
                options.timeout = Some(Duration::from_secs(secs));
            }
            "--engine" => engine = Some(value()?),
            "--workload" => workload = Some(value()?),
            // cargo's `--` separator may be passed through by wrappers.
            "--" => {}
            other => return Err(format!("unknown argument {other}")),
        }
    }
    for name in &options.engines {
        if !ENGINES.iter().any(|(known, _)| known == name) {
            return Err(format!("unknown engine {name}"));
        }
    }
    for name in &options.workloads {
        if !workloads::WORKLOADS.contains(&name.as_str()) {
            return Err(format!("unknown workload {name}"));
        }
    }
    match (engine, workload) {
        (Some(engine), Some(workload)) => options.child = Some((engine, workload)),
        (None, None) => {}
        _ => return Err("--engine and --workload go together".to_owned()),
    }
    Ok(options)
}

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let options = match parse(&args) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("seqdb-bench: {message}");
            eprintln!(
                "usage: seqdb-bench [--scale X] [--engines a,b] [--workloads w1,w2] [--timeout SECONDS]"
            );
            return ExitCode::from(2);
        }
    };
    match &options.child {
        Some((engine, workload)) => child(engine, workload, options.scale),
        None => parent(&options),
    }
}

/// Runs one workload on one engine and prints its result line.
fn child(engine: &str, workload: &str, scale: f64) -> ExitCode {
    match run_child(engine, workload, scale) {
        Ok(metrics) => {
            println!("{}", metrics.to_line());
            ExitCode::SUCCESS
        }
        Err(reason) => {
            println!("{FAILED_PREFIX} {}", reason.replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

fn run_child(engine: &str, workload: &str, scale: f64) -> Outcome<Metrics> {
    let temp = tempfile::Builder::new()
        .prefix("seqdb-bench-")
        .tempdir()
        .map_err(|e| format!("temporary directory: {e}"))?;
    let dir = temp.path().join("db");
    let metrics = if engine == "limits" {
        limits::run(scale, temp.path())
    } else {
        run_engine(engine, workload, scale, &dir)
    };
    temp.close()
        .map_err(|e| format!("removing the temporary directory: {e}"))?;
    metrics
}

fn run_engine(engine: &str, workload: &str, scale: f64, dir: &Path) -> Outcome<Metrics> {
    fn go<E: Engine>(workload: &str, scale: f64, dir: &Path) -> Outcome<Metrics> {
        workloads::run::<E>(workload, scale, dir)
    }
    match engine {
        "seqdb" => go::<engines::ours::Ours>(workload, scale, dir),
        "original" => go::<engines::original::Original>(workload, scale, dir),
        "rawdb" => go::<engines::rawdb::RawDb>(workload, scale, dir),
        "files" => go::<engines::files::Files>(workload, scale, dir),
        "lmdb" => go::<engines::lmdb::Lmdb>(workload, scale, dir),
        "redb" => go::<engines::redb::Redb>(workload, scale, dir),
        other => Err(format!("unknown engine {other}")),
    }
}

/// Runs every child, then prints the machine, the tables and the checks.
fn parent(options: &Options) -> ExitCode {
    let exe = match env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("seqdb-bench: cannot find its own executable: {e}");
            return ExitCode::FAILURE;
        }
    };
    let timeout = options
        .timeout
        .unwrap_or_else(|| Duration::from_secs_f64(120.0 + 600.0 * options.scale));
    let machine = machine::Machine::probe(&env::temp_dir());
    let mut results = Results::default();

    let mut jobs = vec![("limits".to_owned(), "limits".to_owned())];
    for workload in &options.workloads {
        for _ in 0..rounds(workload) {
            for engine in &options.engines {
                jobs.push((engine.clone(), workload.clone()));
            }
        }
    }
    // Each engine's rounds of a workload, in order; a failed round decides the cell.
    let mut runs: HashMap<(String, String), Outcome<Vec<Metrics>>> = HashMap::new();
    let started = Instant::now();
    for (engine, workload) in &jobs {
        // Every child starts without dirty pages of the one before, which would otherwise
        // throttle its writes.
        if let Err(e) = sync_temp_file_system() {
            eprintln!("seqdb-bench: sync before {engine} {workload} failed: {e}");
        }
        let start = Instant::now();
        let outcome = spawn_child(&exe, engine, workload, options.scale, timeout);
        eprintln!(
            "{workload:>6} {engine:<9} {:>7.1}s  {}",
            start.elapsed().as_secs_f64(),
            match &outcome {
                Ok(metrics) => metrics.to_line(),
                Err(reason) => format!("FAILED: {reason}"),
            }
        );
        let entry = runs
            .entry((engine.clone(), workload.clone()))
            .or_insert_with(|| Ok(Vec::new()));
        match (entry, outcome) {
            (Ok(rounds), Ok(metrics)) => rounds.push(metrics),
            (entry @ Ok(_), Err(reason)) => *entry = Err(reason),
            (Err(_), _) => {}
        }
    }
    for ((engine, workload), outcome) in &runs {
        match outcome {
            Ok(rounds) => results.record(engine, &Metrics::median_of(rounds)),
            Err(reason) => results.record_failure(engine, &report::keys_of(workload), reason),
        }
    }

    let columns: Vec<(&str, &str)> = ENGINES
        .iter()
        .copied()
        .filter(|(name, _)| options.engines.iter().any(|e| e == name))
        .collect();
    println!("# seqdb benchmark\n");
    println!(
        "Machine: {} CPUs ({}), {} memory, Linux {}, temporary directory on {}; run {}.",
        machine.cpus,
        machine.cpu_model,
        machine.memory,
        machine.kernel,
        machine.temp_fs,
        machine.date
    );
    println!(
        "Scale {} ({} s in all). Command: cargo xtask bench --scale {}\n",
        options.scale,
        started.elapsed().as_secs(),
        options.scale
    );
    println!("{}", report::table(&results, &columns));
    println!("{}", report::limits_table(&results));
    if options.engines.iter().any(|e| e == "seqdb") {
        println!("Targets:\n");
        println!("```");
        for line in report::checks(&results) {
            println!("{line}");
        }
        println!("```");
    }
    ExitCode::SUCCESS
}

/// Writes back every dirty page of the file system that holds the temporary directory.
fn sync_temp_file_system() -> std::io::Result<()> {
    let dir = std::fs::File::open(env::temp_dir())?;
    rustix::fs::syncfs(&dir)?;
    Ok(())
}

/// Runs one child and reads its result line; a crash, a hang or a failure is an `Err`.
fn spawn_child(
    exe: &Path,
    engine: &str,
    workload: &str,
    scale: f64,
    timeout: Duration,
) -> Outcome<Metrics> {
    let mut child = Command::new(exe)
        .args(["--engine", engine, "--workload", workload])
        .args(["--scale", &scale.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start a child: {e}"))?;
    let stdout = drain(&mut child, true);
    let stderr = drain(&mut child, false);
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break Err(format!("timed out after {} s", timeout.as_secs()));
            }
            Ok(None) => thread::sleep(Duration::from_millis(20)),
            Err(e) => break Err(format!("waiting for the child: {e}")),
        }
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    let status = status?;
    for line in stdout.lines().rev() {
        if line.starts_with(RESULT_PREFIX) {
            return Metrics::from_line(line);
        }
        if let Some(reason) = line.strip_prefix(FAILED_PREFIX) {
            return Err(reason.trim().to_owned());
        }
    }
    let last = stderr
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty() && !line.starts_with("note:"))
        .unwrap_or("no output");
    Err(format!("crashed ({status}): {}", last.trim()))
}

/// Reads the child's stdout (or stderr) to the end on a thread of its own.
fn drain(child: &mut Child, stdout: bool) -> thread::JoinHandle<String> {
    let mut pipe: Option<Box<dyn Read + Send>> = if stdout {
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>)
    } else {
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>)
    };
    thread::spawn(move || {
        let mut text = String::new();
        if let Some(pipe) = pipe.as_mut() {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        text
    })
}
