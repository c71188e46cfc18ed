//! `seqdb map`: where every region, reservation and hole lies in the data file.

use std::path::Path;
use std::process::ExitCode;

use seqdb::Region;
use serde::Serialize;

use crate::failure::{Context, Failure};
use crate::output::{print, print_json};
use crate::svg::{Kind, Picture, RegionLabel, Segment};
use crate::{disk, human, open};

/// What `map --json` prints.
#[derive(Debug, Serialize)]
pub struct Map<'a> {
    /// The database directory, as given.
    pub database: String,
    /// The SVG file written, if `--svg` was given.
    pub svg: Option<String>,
    /// Length of the data file.
    pub file_len: u64,
    /// Bytes the file system has allocated for the data and metadata files.
    pub allocated_bytes: u64,
    /// Sum of the regions' lengths.
    pub live_bytes: u64,
    /// Sum of the regions' reservations.
    pub reserved_bytes: u64,
    /// Number of regions.
    pub regions: usize,
    /// Number of holes: stretches no region uses, between regions or up to the end of
    /// the file.
    pub holes: u64,
    /// Bytes in those holes.
    pub hole_bytes: u64,
    /// Generation of the last commit.
    pub generation: u64,
    /// Every stretch of the file and of the reservations, in file order, without gaps.
    pub segments: Vec<SegmentRow<'a>>,
}

/// One stretch `[start, end)` of the data file, as `map --json` prints it.
#[derive(Debug, Serialize)]
pub struct SegmentRow<'a> {
    /// What it holds.
    pub kind: SegmentKind,
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    /// The region it belongs to; `null` for a hole.
    pub region: Option<RegionRef<'a>>,
}

/// What a stretch holds, in JSON: `"header"`, `"used"`, `"reserved"` or `"hole"`.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SegmentKind {
    /// The data file's header.
    Header,
    /// A region's bytes.
    Used,
    /// Space reserved for a region beyond its length.
    Reserved,
    /// Space no region uses.
    Hole,
}

impl From<Kind> for SegmentKind {
    fn from(kind: Kind) -> Self {
        match kind {
            Kind::Used => SegmentKind::Used,
            Kind::Reserved => SegmentKind::Reserved,
            Kind::Hole => SegmentKind::Hole,
            Kind::Header => SegmentKind::Header,
        }
    }
}

/// Which region a stretch belongs to.
#[derive(Debug, Serialize)]
pub struct RegionRef<'a> {
    /// The region's name.
    pub name: &'a str,
    /// The region's number.
    pub number: usize,
}

/// Cut the file `[0, file_len)` and every reservation into segments, in file order:
/// the data file's header, each region's bytes, its unused reservation, and the holes
/// between.
pub fn segments(regions: &[Region], file_len: u64) -> Vec<Segment> {
    let mut order: Vec<usize> = (0..regions.len()).collect();
    order.sort_by_key(|&i| (regions[i].start(), regions[i].number()));
    let mut out = Vec::with_capacity(regions.len() * 3 + 1);
    let mut push = |start: u64, end: u64, kind: Kind, region: Option<usize>| {
        if end > start {
            out.push(Segment {
                start,
                end,
                kind,
                region,
            });
        }
    };
    let mut at = seqdb::DATA_HEADER_LEN.min(file_len);
    push(0, at, Kind::Header, None);
    for i in order {
        let region = &regions[i];
        // A valid layout never overlaps; clip defensively so the picture stays drawable.
        let start = region.start().max(at);
        let reserved_end = region
            .start()
            .saturating_add(region.reserved().max(region.len()));
        let used_end = region.start().saturating_add(region.len()).max(start);
        push(at, start, Kind::Hole, None);
        push(start, used_end, Kind::Used, Some(i));
        push(used_end, reserved_end, Kind::Reserved, Some(i));
        at = at.max(reserved_end);
    }
    push(at, file_len, Kind::Hole, None);
    out
}

/// `seqdb map DB [--svg OUT] [--json]` (at least one of the two).
pub fn map(db: &Path, out: Option<&Path>, as_json: bool) -> Result<ExitCode, Failure> {
    let database = open::read_only(db)?;
    let stats = database.stats()?;
    let allocated = disk::allocated(db)?.total();
    let regions = database.regions();
    drop(database);
    let segments = segments(&regions, stats.file_len);
    let (holes, hole_bytes) = segments
        .iter()
        .filter(|s| s.kind == Kind::Hole)
        .fold((0u64, 0u64), |(n, bytes), s| {
            (n + 1, bytes + (s.end - s.start))
        });
    if let Some(out) = out {
        let picture = picture(
            db, &regions, &segments, &stats, allocated, holes, hole_bytes,
        );
        let svg = crate::svg::render(&picture);
        std::fs::write(out, svg).context(|| format!("cannot write {}", out.display()))?;
    }
    if as_json {
        return print_json(&Map {
            database: db.display().to_string(),
            svg: out.map(|out| out.display().to_string()),
            file_len: stats.file_len,
            allocated_bytes: allocated,
            live_bytes: stats.live_bytes,
            reserved_bytes: stats.reserved_bytes,
            regions: regions.len(),
            holes,
            hole_bytes,
            generation: stats.generation,
            segments: segments
                .iter()
                .map(|segment| SegmentRow {
                    kind: segment.kind.into(),
                    start: segment.start,
                    end: segment.end,
                    region: segment
                        .region
                        .and_then(|i| regions.get(i))
                        .map(|region| RegionRef {
                            name: region.name(),
                            number: region.number(),
                        }),
                })
                .collect(),
        });
    }
    let Some(out) = out else {
        // clap requires --svg unless --json is given.
        return Err(Failure::new("map needs --svg OUT.svg or --json"));
    };
    print(&format!(
        "wrote {}: {}, {} holding {}, file length {}\n",
        out.display(),
        disk::plural(regions.len() as u64, "region"),
        disk::plural(holes, "hole"),
        human::bytes(hole_bytes),
        human::bytes(stats.file_len)
    ))
}

/// The SVG picture's content: the segments, a label per region and the totals.
fn picture(
    db: &Path,
    regions: &[Region],
    segments: &[Segment],
    stats: &seqdb::Stats,
    allocated: u64,
    holes: u64,
    hole_bytes: u64,
) -> Picture {
    let labels = regions
        .iter()
        .map(|r| RegionLabel {
            name: r.name().to_owned(),
            detail: format!(
                "{} (#{}): {} of {} reserved at offset {}",
                r.name(),
                r.number(),
                human::bytes(r.len()),
                human::bytes(r.reserved()),
                r.start()
            ),
        })
        .collect();
    Picture {
        title: format!("seqdb data file of {}", db.display()),
        file_len: stats.file_len,
        segments: segments.to_vec(),
        regions: labels,
        totals: vec![
            format!(
                "file length {} · allocated on disk {} · live {} · reserved {}",
                human::bytes(stats.file_len),
                human::bytes(allocated),
                human::bytes(stats.live_bytes),
                human::bytes(stats.reserved_bytes)
            ),
            format!(
                "{} · {} holding {} · space amplification {:.2} · generation {}",
                disk::plural(stats.regions, "region"),
                disk::plural(holes, "hole"),
                human::bytes(hole_bytes),
                stats.space_amplification(),
                stats.generation
            ),
        ],
    }
}
