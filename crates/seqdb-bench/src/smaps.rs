//! How much of an engine's file mappings the kernel maps with 2 MiB page-table entries.
//!
//! Random reads over tens of megabytes miss the TLB at almost every read, so a mapping
//! whose pages sit behind 2 MiB entries (one TLB entry for 512 pages) reads faster. The
//! kernel can map a file that way only where the page cache holds the bytes in a 2 MiB
//! folio, and `/proc/self/smaps` tells, for every mapping, how many of its resident
//! bytes are mapped so (`FilePmdMapped`) out of all of them (`Rss`).

use std::path::Path;

/// Resident bytes of the mappings of files under `dir`: `(rss, pmd_mapped)`, in KiB.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Mapped {
    /// Resident KiB of those mappings (`Rss`).
    pub rss_kib: u64,
    /// KiB of them mapped by 2 MiB page-table entries (`FilePmdMapped`).
    pub pmd_kib: u64,
}

impl Mapped {
    /// The share of the resident bytes mapped by 2 MiB entries, in percent; `None` when
    /// nothing under the directory is mapped and resident (an engine that reads with
    /// system calls).
    pub fn pmd_percent(&self) -> Option<f64> {
        (self.rss_kib > 0).then(|| self.pmd_kib as f64 * 100.0 / self.rss_kib as f64)
    }
}

/// Sums `Rss` and `FilePmdMapped` over the mappings, listed in `smaps` (the text of a
/// `/proc/PID/smaps`), of files whose path starts with `dir/`.
pub fn parse(smaps: &str, dir: &str) -> Mapped {
    let prefix = format!("{}/", dir.trim_end_matches('/'));
    let mut total = Mapped::default();
    let mut inside = false;
    for line in smaps.lines() {
        let Some(first) = line.split_whitespace().next() else {
            continue;
        };
        if !first.ends_with(':') {
            // A mapping's header: `start-end perms offset dev inode [path]`. Nothing
            // before the path holds a '/'.
            inside = line
                .find('/')
                .is_some_and(|at| line[at..].starts_with(&prefix));
            continue;
        }
        if !inside {
            continue;
        }
        let kib = || {
            line.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        match first {
            "Rss:" => total.rss_kib += kib(),
            "FilePmdMapped:" => total.pmd_kib += kib(),
            _ => {}
        }
    }
    total
}

/// What this process maps of the files under `dir`, or `None` where the kernel has no
/// `/proc/self/smaps` (any system but Linux) or it cannot be read.
pub fn mapped_under(dir: &Path) -> Option<Mapped> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    let dir = dir.canonicalize().ok()?;
    let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
    Some(parse(&smaps, dir.to_str()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
55d0a0000000-55d0a0001000 r--p 00000000 08:01 1234                       /usr/bin/x
Rss:                   4 kB
FilePmdMapped:         0 kB
7f0000000000-7f0008000000 r--s 00000000 08:01 99                         /tmp/a b/db/data
Size:             131072 kB
Rss:               81920 kB
FilePmdMapped:     10240 kB
VmFlags: rd sh mr mw me ms sd
7f0010000000-7f0010001000 rw-s 00000000 08:01 98                         /tmp/a b/db/meta
Rss:                   4 kB
FilePmdMapped:         0 kB
7f0020000000-7f0020200000 rw-p 00000000 00:00 0
Rss:                2048 kB
FilePmdMapped:         0 kB
7f0030000000-7f0030001000 r--s 00000000 08:01 97                         /tmp/a b/dbx/data
Rss:                 100 kB
FilePmdMapped:       100 kB
";

    #[test]
    fn sums_only_the_mappings_of_files_under_the_directory() {
        let mapped = parse(SAMPLE, "/tmp/a b/db");
        assert_eq!(
            mapped,
            Mapped {
                rss_kib: 81924,
                pmd_kib: 10240
            }
        );
        let percent = mapped.pmd_percent().expect("resident");
        assert!((percent - 12.4988).abs() < 1e-3, "{percent}");
        assert_eq!(parse(SAMPLE, "/nowhere").pmd_percent(), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_this_process_own_mappings() {
        let dir = tempfile::tempdir().expect("temporary directory");
        // Nothing under the new directory is mapped.
        let mapped = mapped_under(dir.path()).expect("smaps");
        assert_eq!(mapped, Mapped::default());
    }
}
