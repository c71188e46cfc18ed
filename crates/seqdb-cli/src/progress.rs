//! Progress through the steps of a long command: a bar on a terminal, plain lines
//! otherwise (both on standard error, so standard output stays the command's result).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// Reports which of a known number of steps is running.
pub struct Progress {
    bar: Option<ProgressBar>,
    steps: u64,
    done: u64,
}

impl Progress {
    /// Progress over `steps` steps; a bar when standard error is a terminal.
    pub fn new(steps: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(steps);
            let style =
                ProgressStyle::with_template("{spinner} [{bar:20}] {pos}/{len} {msg} ({elapsed})")
                    .map(|style| style.progress_chars("=> "))
                    .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        Progress {
            bar,
            steps,
            done: 0,
        }
    }

    /// Run `work` as the next step, described by `what`.
    pub fn step<T>(&mut self, what: &str, work: impl FnOnce() -> T) -> T {
        match &self.bar {
            Some(bar) => bar.set_message(what.to_owned()),
            None => eprintln!("[{}/{}] {what}", self.done + 1, self.steps),
        }
        let result = work();
        self.done += 1;
        if let Some(bar) = &self.bar {
            bar.set_position(self.done);
        }
        result
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Reports how many of a known number of bytes were worked through: a bar on a
/// terminal, otherwise a line at every tenth.
pub struct ByteProgress {
    what: &'static str,
    bar: Option<ProgressBar>,
    tenths_told: u64,
}

impl ByteProgress {
    /// Progress through bytes, described by `what`.
    pub fn new(what: &'static str) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(0);
            let style = ProgressStyle::with_template(
                "{spinner} [{bar:20}] {bytes}/{total_bytes} {msg} ({bytes_per_sec}, {elapsed})",
            )
            .map(|style| style.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_message(what);
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        ByteProgress {
            what,
            bar,
            tenths_told: 0,
        }
    }

    /// `done` of `total` bytes are through.
    pub fn update(&mut self, done: u64, total: u64) {
        match &self.bar {
            Some(bar) => {
                bar.set_length(total);
                bar.set_position(done);
            }
            None => {
                let tenths = (done * 10).checked_div(total).unwrap_or(10);
                if tenths > self.tenths_told {
                    self.tenths_told = tenths;
                    eprintln!("{}: {done} of {total} bytes", self.what);
                }
            }
        }
    }
}

impl Drop for ByteProgress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
