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
