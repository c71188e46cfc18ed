//! Named measurements and the one-line form a child process reports them in.

use std::fmt::Write;

/// One measurement, or the statement that it does not apply to an engine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    /// A measured number, in the unit of its row.
    Value(f64),
    /// The engine has no such operation (e.g. no way to give space back).
    NotApplicable,
}

/// The measurements of one workload on one engine, in the order they were taken.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Metrics {
    entries: Vec<(String, Metric)>,
}

/// The prefix of the line a child prints with its measurements.
pub const RESULT_PREFIX: &str = "RESULT";

/// The prefix of the line a child prints when its engine returned an error.
pub const FAILED_PREFIX: &str = "FAILED";

impl Metrics {
    /// Adds a measurement.
    pub fn push(&mut self, key: &str, metric: Metric) {
        self.entries.push((key.to_owned(), metric));
    }

    /// The measurements, in order.
    pub fn entries(&self) -> &[(String, Metric)] {
        &self.entries
    }

    /// The median of each measurement over `runs` of one workload (the first run's
    /// entry where some run lacks a value for it); empty for no run.
    pub fn median_of(runs: &[Metrics]) -> Metrics {
        let mut metrics = Metrics::default();
        let Some(first) = runs.first() else {
            return metrics;
        };
        for (i, (key, metric)) in first.entries().iter().enumerate() {
            let mut values: Vec<f64> = runs
                .iter()
                .filter_map(|run| match run.entries().get(i) {
                    Some((k, Metric::Value(v))) if k == key => Some(*v),
                    _ => None,
                })
                .collect();
            let merged = if values.len() == runs.len() {
                values.sort_by(f64::total_cmp);
                Metric::Value(values[values.len() / 2])
            } else {
                *metric
            };
            metrics.push(key, merged);
        }
        metrics
    }

    /// The line a child prints: `RESULT key=value key=na ...`.
    pub fn to_line(&self) -> String {
        let mut line = RESULT_PREFIX.to_owned();
        for (key, metric) in &self.entries {
            match metric {
                Metric::Value(value) => {
                    let _ = write!(line, " {key}={value:e}");
                }
                Metric::NotApplicable => {
                    let _ = write!(line, " {key}=na");
                }
            }
        }
        line
    }

    /// Parses a line made by [`Metrics::to_line`].
    pub fn from_line(line: &str) -> Result<Metrics, String> {
        let rest = line
            .strip_prefix(RESULT_PREFIX)
            .ok_or_else(|| format!("not a result line: {line}"))?;
        let mut metrics = Metrics::default();
        for field in rest.split_whitespace() {
            let (key, value) = field
                .split_once('=')
                .ok_or_else(|| format!("malformed field {field}"))?;
            let metric = if value == "na" {
                Metric::NotApplicable
            } else {
                Metric::Value(
                    value
                        .parse()
                        .map_err(|_| format!("malformed value in {field}"))?,
                )
            };
            metrics.push(key, metric);
        }
        Ok(metrics)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_line_round_trips() {
        let mut metrics = Metrics::default();
        metrics.push("w1_mops", Metric::Value(12.5));
        metrics.push("w3_amp_punch", Metric::NotApplicable);
        metrics.push("w7_one_ms", Metric::Value(0.000123));
        assert_eq!(Metrics::from_line(&metrics.to_line()), Ok(metrics));
    }

    #[test]
    fn malformed_lines_are_errors() {
        assert!(Metrics::from_line("hello").is_err());
        assert!(Metrics::from_line("RESULT w1").is_err());
        assert!(Metrics::from_line("RESULT w1=fast").is_err());
    }
}
