//! Crash images from sync barriers, shared by the power-loss simulations.
//!
//! A [`Recorder`] captures a database directory (`data`, `meta`, `meta.tmp`, with their
//! inode numbers) page by page at every sync barrier. An [`Interval`] is what changed
//! between two captures; a [`Subset`] picks which of those pages reached the disk before
//! a power cut, and [`Interval::image`] builds the files such a crash leaves: the state at
//! the first barrier plus the chosen pages, each file at its old or new length, and a file
//! whose inode changed (a rename over it) either the old file or the new one, never a mix.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;

use super::Rng;

/// Pages of a capture.
pub const PAGE: usize = 4096;
/// The files a database directory may hold.
pub const FILES: [&str; 3] = ["data", "meta", "meta.tmp"];

pub type Page = Arc<Vec<u8>>;

/// One file as a capture saw it: its inode and its pages (the last one may be short).
#[derive(Clone)]
pub struct FileImage {
    pub ino: u64,
    pub len: usize,
    pub pages: Vec<Page>,
}

/// The database directory at one sync barrier.
pub struct Capture {
    pub what: String,
    pub files: BTreeMap<&'static str, FileImage>,
}

/// Captures a database directory at every sync barrier (call [`Recorder::capture`]
/// from a sync observer).
pub struct Recorder {
    pub dir: PathBuf,
    pub captures: Vec<Capture>,
}

impl Recorder {
    /// A recorder of directory `dir`, with no capture yet.
    pub fn new(dir: PathBuf) -> Self {
        Recorder {
            dir,
            captures: Vec::new(),
        }
    }

    /// Capture the directory as it is now; `what` says which barrier this is.
    pub fn capture(&mut self, what: String) {
        let mut files = BTreeMap::new();
        for name in FILES {
            let path = self.dir.join(name);
            let bytes = match std::fs::read(&path) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => panic!("capture of {}: {e}", path.display()),
            };
            let ino = std::fs::metadata(&path).unwrap().ino();
            let previous = self.captures.iter().rev().find_map(|c| {
                c.files
                    .values()
                    .find(|f| f.ino == ino)
                    .map(|f| f.pages.clone())
            });
            let pages = bytes
                .chunks(PAGE)
                .enumerate()
                .map(
                    |(i, chunk)| match previous.as_ref().and_then(|p| p.get(i)) {
                        Some(old) if old.as_slice() == chunk => old.clone(),
                        _ => Arc::new(chunk.to_vec()),
                    },
                )
                .collect();
            files.insert(
                name,
                FileImage {
                    ino,
                    len: bytes.len(),
                    pages,
                },
            );
        }
        self.captures.push(Capture { what, files });
    }
}

/// Which pages of an interval reach the disk.
#[derive(Debug, Clone)]
pub enum Subset {
    None,
    All,
    /// Bit `i` selects changed page `i` (intervals with few changed pages).
    Mask(u64),
    Only(usize),
    AllBut(usize),
    Random(u64),
    /// Changed page `page` (a metadata page) is torn after `cut` bytes; the others are
    /// chosen at random.
    Torn {
        page: usize,
        cut: usize,
        seed: u64,
    },
}

/// How one file may change between two captures.
pub struct FileChange<'a> {
    pub name: &'static str,
    /// The file before, as it is (absent when `None`).
    pub old: Option<&'a FileImage>,
    /// The file after; `None` when it was deleted.
    pub new: Option<&'a FileImage>,
    /// What the new file's pages are applied to: the old file when its identity stays,
    /// the same inode under another name, or nothing.
    pub base: Option<&'a FileImage>,
    /// Whether the name now denotes another file (or appeared, or vanished).
    pub identity_changes: bool,
}

/// One changed page: the file (index into the changes) and the page index.
#[derive(Debug, Clone, Copy)]
pub struct Changed {
    pub file: usize,
    pub page: usize,
}

pub struct Interval<'a> {
    pub k: usize,
    pub files: Vec<FileChange<'a>>,
    pub changed: Vec<Changed>,
}

impl<'a> Interval<'a> {
    pub fn new(k: usize, before: &'a Capture, after: &'a Capture) -> Self {
        let mut files = Vec::new();
        let mut changed = Vec::new();
        for name in FILES {
            let old = before.files.get(name);
            let new = after.files.get(name);
            if old.is_none() && new.is_none() {
                continue;
            }
            let same = matches!((old, new), (Some(o), Some(n)) if o.ino == n.ino);
            let base = match new {
                Some(n) if !same => before.files.values().find(|f| f.ino == n.ino),
                Some(_) => old,
                None => None,
            };
            let index = files.len();
            if let Some(n) = new {
                let base_pages = base.map_or(0, |b| b.pages.len());
                for page in 0..n.pages.len().max(base_pages) {
                    let a = base.and_then(|b| b.pages.get(page));
                    let b = n.pages.get(page);
                    let differs = match (a, b) {
                        (Some(a), Some(b)) => !Arc::ptr_eq(a, b) && a != b,
                        (None, None) => false,
                        _ => true,
                    };
                    if differs && page < n.pages.len() {
                        changed.push(Changed { file: index, page });
                    }
                }
            }
            files.push(FileChange {
                name,
                old,
                new,
                base,
                identity_changes: !same,
            });
        }
        Interval { k, files, changed }
    }

    /// The images to try for this interval, cheapest and most telling first.
    pub fn subsets(&self, rng: &mut Rng) -> Vec<Subset> {
        let n = self.changed.len();
        let mut out = vec![Subset::None, Subset::All];
        let meta_pages: Vec<usize> = (0..n)
            .filter(|&i| self.files[self.changed[i].file].name != "data")
            .collect();
        for &i in meta_pages.iter().take(3) {
            let cut = rng.range(1, PAGE as u64 - 1) as usize;
            out.push(Subset::Torn {
                page: i,
                cut,
                seed: rng.next(),
            });
            let sector = rng.range(1, 7) as usize * 512;
            out.push(Subset::Torn {
                page: i,
                cut: sector,
                seed: rng.next(),
            });
        }
        if n <= 5 {
            for mask in 1..(1u64 << n).saturating_sub(1) {
                out.push(Subset::Mask(mask));
            }
            let renames = self.files.iter().filter(|f| f.identity_changes).count();
            for _ in 0..renames * 2 {
                out.push(Subset::Random(rng.next()));
            }
        } else {
            for i in 0..n.min(6) {
                let pick = if n <= 6 {
                    i
                } else {
                    rng.below(n as u64) as usize
                };
                out.push(Subset::Only(pick));
                out.push(Subset::AllBut(pick));
            }
            for _ in 0..10 {
                out.push(Subset::Random(rng.next()));
            }
        }
        out
    }

    /// The files of the crash image for `subset`.
    pub fn image(&self, subset: &Subset) -> Vec<(&'static str, Vec<u8>)> {
        let n = self.changed.len();
        let mut rng = Rng(match subset {
            Subset::Random(seed) | Subset::Torn { seed, .. } => *seed,
            _ => 0,
        });
        let selected: Vec<bool> = (0..n)
            .map(|i| match subset {
                Subset::None => false,
                Subset::All => true,
                Subset::Mask(mask) => mask & (1 << i) != 0,
                Subset::Only(j) => i == *j,
                Subset::AllBut(j) => i != *j,
                Subset::Random(_) => rng.one_in(2),
                Subset::Torn { page, .. } => i == *page || rng.one_in(2),
            })
            .collect();
        let torn = match subset {
            Subset::Torn { page, cut, .. } => Some((*page, *cut)),
            _ => None,
        };
        let mut out = Vec::new();
        for (f, change) in self.files.iter().enumerate() {
            let picked: Vec<(usize, Option<usize>)> = (0..n)
                .filter(|&i| selected[i] && self.changed[i].file == f)
                .map(|i| {
                    let cut = torn.filter(|(p, _)| *p == i).map(|(_, c)| c);
                    (self.changed[i].page, cut)
                })
                .collect();
            let use_new = !change.identity_changes
                || match subset {
                    Subset::None => false,
                    Subset::All => true,
                    _ if !picked.is_empty() => true,
                    Subset::Random(_) => rng.one_in(2),
                    _ => false,
                };
            if !use_new {
                if let Some(old) = change.old {
                    out.push((change.name, whole(old)));
                }
                continue;
            }
            let Some(new) = change.new else {
                // Deleted (or renamed away).
                continue;
            };
            let base_len = change.base.map_or(0, |b| b.len);
            let len = if base_len == new.len {
                new.len
            } else {
                match subset {
                    Subset::None => base_len,
                    Subset::All => new.len,
                    _ if picked.iter().any(|(p, _)| p * PAGE >= base_len) => new.len,
                    _ => {
                        if rng.one_in(2) {
                            new.len
                        } else {
                            base_len
                        }
                    }
                }
            };
            let mut bytes = vec![0u8; len];
            if let Some(base) = change.base {
                let keep = base.len.min(len);
                bytes[..keep].copy_from_slice(&whole(base)[..keep]);
            }
            for (page, cut) in picked {
                let from = page * PAGE;
                if from >= len {
                    continue;
                }
                let src = &new.pages[page];
                let upto = cut.unwrap_or(PAGE).min(src.len()).min(len - from);
                bytes[from..from + upto].copy_from_slice(&src[..upto]);
            }
            out.push((change.name, bytes));
        }
        out
    }
}

/// A captured file's bytes.
pub fn whole(file: &FileImage) -> Vec<u8> {
    let mut out = Vec::with_capacity(file.len);
    for page in &file.pages {
        out.extend_from_slice(page);
    }
    out
}

/// A directory that crash images are written to one after the other. Only the pages
/// that differ from the previous image are rewritten, as long as the file on disk still
/// has the length that image gave it and no open through [`super::open_guarded`] wrote
/// into it (a read-write open may cut a torn metadata tail, delete `meta.tmp`, or write
/// into the data file again the bytes the log carried; such a file is written whole
/// next time).
pub struct ImageDir {
    pub dir: PathBuf,
    written: BTreeMap<&'static str, Vec<u8>>,
}

impl ImageDir {
    pub fn new(dir: PathBuf) -> Self {
        ImageDir {
            dir,
            written: BTreeMap::new(),
        }
    }

    /// Make the directory hold exactly `files`.
    pub fn write(&mut self, files: Vec<(&'static str, Vec<u8>)>) {
        use std::os::unix::fs::FileExt;
        std::fs::create_dir_all(&self.dir).unwrap();
        // What an earlier open left beside the files (the `readers` file) is not part
        // of a crash image.
        for entry in std::fs::read_dir(&self.dir).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name();
            if !FILES.iter().any(|f| name == *f) && entry.file_type().unwrap().is_file() {
                std::fs::remove_file(entry.path()).unwrap();
            }
        }
        let mut files: BTreeMap<&'static str, Vec<u8>> = files.into_iter().collect();
        for name in FILES {
            let path = self.dir.join(name);
            let on_disk = std::fs::metadata(&path).ok().map(|m| m.len() as usize);
            let written_by_open = super::WRITTEN_BY_OPEN.lock().unwrap().remove(&path);
            let previous = self.written.remove(name).filter(|_| !written_by_open);
            let Some(bytes) = files.remove(name) else {
                if on_disk.is_some() {
                    std::fs::remove_file(&path).unwrap();
                }
                continue;
            };
            match previous {
                Some(previous) if on_disk == Some(previous.len()) => {
                    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
                    if bytes.len() != previous.len() {
                        file.set_len(bytes.len() as u64).unwrap();
                    }
                    for (i, page) in bytes.chunks(PAGE).enumerate() {
                        let at = i * PAGE;
                        if previous.get(at..at + page.len()) != Some(page) {
                            file.write_all_at(page, at as u64).unwrap();
                        }
                    }
                }
                _ => std::fs::write(&path, &bytes).unwrap(),
            }
            self.written.insert(name, bytes);
        }
    }
}
