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

/// Reports how many of a known number of bytes are done: a bar on a terminal, otherwise
/// a line at every tenth of the way.
pub struct ByteProgress {
    bar: Option<ProgressBar>,
    what: String,
    /// Tenths reported so far (plain lines only).
    tenths: u64,
}

impl ByteProgress {
    /// Progress of `what` (for example "copying"); a bar when standard error is a
    /// terminal.
    pub fn new(what: &str) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(0);
            let style = ProgressStyle::with_template(
                "{spinner} [{bar:20}] {bytes}/{total_bytes} {msg} ({bytes_per_sec}, {elapsed})",
            )
            .map(|style| style.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_message(what.to_owned());
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        ByteProgress {
            bar,
            what: what.to_owned(),
            tenths: 0,
        }
    }

    /// `done` of `total` bytes are done.
    pub fn set(&mut self, done: u64, total: u64) {
        match &self.bar {
            Some(bar) => {
                bar.set_length(total);
                bar.set_position(done);
            }
            None => {
                let tenths = (done as u128 * 10)
                    .checked_div(total as u128)
                    .map_or(10, |t| t as u64);
                if tenths > self.tenths {
                    self.tenths = tenths;
                    eprintln!(
                        "{} {}% ({} of {})",
                        self.what,
                        tenths * 10,
                        crate::human::bytes(done),
                        crate::human::bytes(total)
                    );
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

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
