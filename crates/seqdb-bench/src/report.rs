//! The results of a run: the markdown table and the checks of seqdb's targets.

use std::collections::HashMap;
use std::fmt::Write;

use crate::metrics::{Metric, Metrics};

/// What one cell of the table holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// A measurement.
    Value(f64),
    /// The engine has no such operation.
    NotApplicable,
    /// The engine (or its child process) failed; the reason.
    Failed(String),
}

/// The rows of the engine table: metric key, workload description, unit.
pub const ROWS: [(&str, &str, &str); 20] = [
    ("w1_mops", "W1 8-byte appends, one region", "Mops/s"),
    ("w2_gbps", "W2 1 MiB appends", "GB/s"),
    ("w2_flush_s", "W2 durable flush of 1 GiB", "s"),
    ("w3_mbps", "W3 1 KiB appends, 10,000 regions", "MB/s"),
    ("w3_amp_flush", "W3 allocated / logical after flush", "x"),
    (
        "w3_amp_punch",
        "W3 allocated / logical after flush_then_punch",
        "x",
    ),
    (
        "w4_first",
        "W4 first pass after writing 24 MB, one reader",
        "Mops/s",
    ),
    (
        "w4_small_one",
        "W4 24 MB written in 1 MiB appends, one reader, later passes",
        "Mops/s",
    ),
    (
        "w4_small_pmd",
        "W4 24 MB: mapped bytes behind 2 MiB entries (informational)",
        "%",
    ),
    ("w4_one", "W4 random 8-byte reads, one reader", "Mops/s"),
    (
        "w4_per_read",
        "W4 random 8-byte reads, a reader per read",
        "Mops/s",
    ),
    ("w4_two", "W4 random 8-byte reads, 2 threads", "Mops/s"),
    (
        "w4_pmd",
        "W4 after 24 + 80 MB: mapped bytes behind 2 MiB entries (informational)",
        "%",
    ),
    ("w5_ms", "W5 open, 10,000 regions", "ms"),
    (
        "w6_before_mb",
        "W6 allocated before removing 50 of 100",
        "MB",
    ),
    (
        "w6_after_mb",
        "W6 allocated after remove + flush_then_punch",
        "MB",
    ),
    (
        "w7_one_ms",
        "W7 flush after an 8-byte append, 1 region",
        "ms",
    ),
    (
        "w7_many_ms",
        "W7 flush after an 8-byte append, 10,000 regions",
        "ms",
    ),
    (
        "w7_fdatasync_ms",
        "W7 reference: 4 KiB write + fdatasync, same moments",
        "ms",
    ),
    (
        "w7_syncs",
        "W7 device syncs per flush (median; engines that report them)",
        "syncs",
    ),
];

/// The rows of the physical limits table.
pub const LIMIT_ROWS: [(&str, &str, &str); 3] = [
    ("memcpy_gbps", "memory copy bandwidth", "GB/s"),
    (
        "write_gbps",
        "buffered sequential write (1 MiB writes, no sync)",
        "GB/s",
    ),
    ("fdatasync_ms", "one 4 KiB write + fdatasync (median)", "ms"),
];

/// Every cell of a run, by engine and metric key.
#[derive(Default)]
pub struct Results {
    cells: HashMap<(String, String), Cell>,
}

impl Results {
    /// Records the measurements of one child.
    pub fn record(&mut self, engine: &str, metrics: &Metrics) {
        for (key, metric) in metrics.entries() {
            let cell = match metric {
                Metric::Value(v) => Cell::Value(*v),
                Metric::NotApplicable => Cell::NotApplicable,
            };
            self.cells.insert((engine.to_owned(), key.clone()), cell);
        }
    }

    /// Records a failure for every metric a workload would have produced.
    pub fn record_failure(&mut self, engine: &str, keys: &[&str], reason: &str) {
        for key in keys {
            self.cells.insert(
                (engine.to_owned(), (*key).to_owned()),
                Cell::Failed(reason.to_owned()),
            );
        }
    }

    /// The cell of an engine and metric, if the run produced one.
    pub fn cell(&self, engine: &str, key: &str) -> Option<&Cell> {
        self.cells.get(&(engine.to_owned(), key.to_owned()))
    }

    /// The measured value of an engine and metric, if there is one.
    pub fn value(&self, engine: &str, key: &str) -> Option<f64> {
        match self.cell(engine, key) {
            Some(Cell::Value(v)) => Some(*v),
            _ => None,
        }
    }
}

/// The metric keys a workload produces.
pub fn keys_of(workload: &str) -> Vec<&'static str> {
    if workload == "limits" {
        return LIMIT_ROWS.iter().map(|(key, _, _)| *key).collect();
    }
    ROWS.iter()
        .map(|(key, _, _)| *key)
        .filter(|key| key.starts_with(workload) && key.as_bytes().get(2) == Some(&b'_'))
        .collect()
}

/// A number with about three significant digits.
pub fn format_value(value: f64) -> String {
    if value == 0.0 || !value.is_finite() {
        return format!("{value}");
    }
    let digits = (2 - value.abs().log10().floor() as i32).clamp(0, 6) as usize;
    format!("{value:.digits$}")
}

fn format_cell(cell: Option<&Cell>) -> String {
    match cell {
        Some(Cell::Value(v)) => format_value(*v),
        Some(Cell::NotApplicable) => "n/a".to_owned(),
        Some(Cell::Failed(reason)) => {
            let mut reason: String = reason.replace('|', "/").replace('\n', " ");
            if reason.chars().count() > 60 {
                reason = reason.chars().take(57).collect::<String>() + "...";
            }
            format!("FAILED: {reason}")
        }
        None => "-".to_owned(),
    }
}

/// The markdown table: one row per metric, one column per engine.
pub fn table(results: &Results, engines: &[(&str, &str)]) -> String {
    let mut out = String::new();
    let _ = write!(out, "| workload | unit |");
    for (_, title) in engines {
        let _ = write!(out, " {title} |");
    }
    let _ = write!(out, "\n|---|---|");
    for _ in engines {
        let _ = write!(out, "---:|");
    }
    out.push('\n');
    for (key, label, unit) in ROWS {
        if engines
            .iter()
            .all(|(engine, _)| results.cell(engine, key).is_none())
        {
            continue;
        }
        let _ = write!(out, "| {label} | {unit} |");
        for (engine, _) in engines {
            let _ = write!(out, " {} |", format_cell(results.cell(engine, key)));
        }
        out.push('\n');
    }
    out
}

/// The markdown table of the physical limits.
pub fn limits_table(results: &Results) -> String {
    let mut out = String::from("| physical limit | unit | measured |\n|---|---|---:|\n");
    for (key, label, unit) in LIMIT_ROWS {
        let _ = writeln!(
            out,
            "| {label} | {unit} | {} |",
            format_cell(results.cell("limits", key))
        );
    }
    out
}

/// Which way a target points.
#[derive(Clone, Copy)]
enum Relation {
    AtLeast,
    AtMost,
}

/// One target: `lhs` must be at least (or at most) `factor` times `rhs`.
struct Check<'a> {
    name: &'a str,
    lhs: (&'a str, Option<f64>),
    relation: Relation,
    factor: f64,
    rhs: (&'a str, Option<f64>),
}

impl Check<'_> {
    fn line(&self) -> String {
        let (sign, word) = match self.relation {
            Relation::AtLeast => (">=", "at least"),
            Relation::AtMost => ("<=", "at most"),
        };
        let (lhs_name, lhs) = self.lhs;
        let (rhs_name, rhs) = self.rhs;
        let (Some(lhs), Some(rhs)) = (lhs, rhs) else {
            let missing = if lhs.is_none() { lhs_name } else { rhs_name };
            return format!("FAIL {}: no measurement of {missing}", self.name);
        };
        let ratio = lhs / rhs;
        let pass = match self.relation {
            Relation::AtLeast => ratio >= self.factor,
            Relation::AtMost => ratio <= self.factor,
        };
        format!(
            "{} {}: {lhs_name} {} vs {rhs_name} {} = {}x (needs {sign} {}x, {word})",
            if pass { "PASS" } else { "FAIL" },
            self.name,
            format_value(lhs),
            format_value(rhs),
            format_value(ratio),
            self.factor,
        )
    }
}

/// The PASS/FAIL lines of seqdb's performance targets.
pub fn checks(results: &Results) -> Vec<String> {
    let ours = |key: &str| results.value("seqdb", key);
    let original = |key: &str| results.value("original", key);
    // The better of the two peers that read through a memory map as seqdb does.
    let best_peer = |key: &str| match (original(key), results.value("rawdb", key)) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    let checks = [
        Check {
            name: "W1 appends >= 5x original",
            lhs: ("seqdb Mops/s", ours("w1_mops")),
            relation: Relation::AtLeast,
            factor: 5.0,
            rhs: ("original", original("w1_mops")),
        },
        Check {
            name: "W2 appends >= plain files",
            lhs: ("seqdb GB/s", ours("w2_gbps")),
            relation: Relation::AtLeast,
            factor: 1.0,
            rhs: ("files", results.value("files", "w2_gbps")),
        },
        Check {
            name: "W2 appends >= 1.5x original",
            lhs: ("seqdb GB/s", ours("w2_gbps")),
            relation: Relation::AtLeast,
            factor: 1.5,
            rhs: ("original", original("w2_gbps")),
        },
        Check {
            name: "W2 flush no slower than original",
            lhs: ("seqdb s", ours("w2_flush_s")),
            relation: Relation::AtMost,
            factor: 1.0,
            rhs: ("original", original("w2_flush_s")),
        },
        Check {
            name: "W3 appends >= 2x original",
            lhs: ("seqdb MB/s", ours("w3_mbps")),
            relation: Relation::AtLeast,
            factor: 2.0,
            rhs: ("original", original("w3_mbps")),
        },
        Check {
            name: "W3 amplification after punching <= 1.05",
            lhs: ("seqdb", ours("w3_amp_punch")),
            relation: Relation::AtMost,
            factor: 1.05,
            rhs: ("logical bytes", Some(1.0)),
        },
        Check {
            name: "W4 first pass after writing >= best of original and rawdb",
            lhs: ("seqdb Mops/s", ours("w4_first")),
            relation: Relation::AtLeast,
            factor: 1.0,
            rhs: ("best peer", best_peer("w4_first")),
        },
        Check {
            name: "W4 24 MB one reader, later passes >= best of original and rawdb",
            lhs: ("seqdb Mops/s", ours("w4_small_one")),
            relation: Relation::AtLeast,
            factor: 1.0,
            rhs: ("best peer", best_peer("w4_small_one")),
        },
        Check {
            name: "W4 one reader >= best of original and rawdb",
            lhs: ("seqdb Mops/s", ours("w4_one")),
            relation: Relation::AtLeast,
            factor: 1.0,
            rhs: ("best peer", best_peer("w4_one")),
        },
        Check {
            name: "W4 a reader per read >= best of original and rawdb",
            lhs: ("seqdb Mops/s", ours("w4_per_read")),
            relation: Relation::AtLeast,
            factor: 1.0,
            rhs: ("best peer", best_peer("w4_per_read")),
        },
        Check {
            name: "W4 2 threads >= 0.9x best peer's 2 threads",
            lhs: ("seqdb Mops/s", ours("w4_two")),
            relation: Relation::AtLeast,
            factor: 0.9,
            rhs: ("best peer", best_peer("w4_two")),
        },
        Check {
            name: "W5 open <= original",
            lhs: ("seqdb ms", ours("w5_ms")),
            relation: Relation::AtMost,
            factor: 1.0,
            rhs: ("original", original("w5_ms")),
        },
        Check {
            name: "W6 allocated after <= 0.55x before",
            lhs: ("seqdb after MB", ours("w6_after_mb")),
            relation: Relation::AtMost,
            factor: 0.55,
            rhs: ("before", ours("w6_before_mb")),
        },
        Check {
            name: "W7 flush with 10,000 regions <= 1.5x with 1",
            lhs: ("seqdb 10,000 regions ms", ours("w7_many_ms")),
            relation: Relation::AtMost,
            factor: 1.5,
            rhs: ("1 region", ours("w7_one_ms")),
        },
        Check {
            name: "W7 flush of 1 region <= 0.7x original",
            lhs: ("seqdb ms", ours("w7_one_ms")),
            relation: Relation::AtMost,
            factor: 0.7,
            rhs: ("original", original("w7_one_ms")),
        },
        Check {
            name: "W7 flush of 1 region <= 1.5x 4 KiB write + fdatasync",
            lhs: ("seqdb ms", ours("w7_one_ms")),
            relation: Relation::AtMost,
            factor: 1.5,
            rhs: ("fdatasync", results.value("seqdb", "w7_fdatasync_ms")),
        },
        Check {
            name: "W7 one device sync per small flush",
            lhs: ("seqdb syncs", ours("w7_syncs")),
            relation: Relation::AtMost,
            factor: 1.0,
            rhs: ("one", Some(1.0)),
        },
    ];
    checks.iter().map(Check::line).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_keep_about_three_digits() {
        assert_eq!(format_value(123.456), "123");
        assert_eq!(format_value(12.345), "12.3");
        assert_eq!(format_value(1.2345), "1.23");
        assert_eq!(format_value(0.012345), "0.0123");
    }

    #[test]
    fn workloads_know_their_keys() {
        assert_eq!(keys_of("w2"), ["w2_gbps", "w2_flush_s"]);
        assert_eq!(
            keys_of("w7"),
            ["w7_one_ms", "w7_many_ms", "w7_fdatasync_ms", "w7_syncs"]
        );
        assert_eq!(keys_of("limits").len(), 3);
        // The informational rows are W4's keys too, so a failed W4 child fills them.
        assert!(keys_of("w4").contains(&"w4_pmd"), "{:?}", keys_of("w4"));
    }

    #[test]
    fn checks_pass_fail_and_report_missing_values() {
        let mut results = Results::default();
        let mut metrics = Metrics::default();
        metrics.push("w1_mops", Metric::Value(60.0));
        results.record("seqdb", &metrics);
        let mut metrics = Metrics::default();
        metrics.push("w1_mops", Metric::Value(10.0));
        results.record("original", &metrics);
        let lines = checks(&results);
        assert!(lines[0].starts_with("PASS W1"), "{}", lines[0]);
        assert!(lines[1].starts_with("FAIL W2"), "{}", lines[1]);
        assert!(lines[1].contains("no measurement"), "{}", lines[1]);
    }

    #[test]
    fn failures_show_in_the_table() {
        let mut results = Results::default();
        results.record_failure("redb", &keys_of("w1"), "crashed | signal 9");
        let table = table(&results, &[("redb", "redb")]);
        assert!(table.contains("FAILED: crashed / signal 9"), "{table}");
    }
}
