//! `seqdb map`: where every region, reservation and hole lies in the data file.

use std::path::Path;
use std::process::ExitCode;

use seqdb::Region;

use crate::failure::{Context, Failure};
use crate::svg::{Kind, Picture, RegionLabel, Segment};
use crate::{disk, human, open};

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

/// `seqdb map DB --svg OUT`.
pub fn map(db: &Path, out: &Path) -> Result<ExitCode, Failure> {
    let database = open::read_only(db)?;
    let stats = database.stats()?;
    let allocated = disk::allocated(db)?.total();
    let regions = database.regions();
    let segments = segments(&regions, stats.file_len);
    let (holes, hole_bytes) = segments
        .iter()
        .filter(|s| s.kind == Kind::Hole)
        .fold((0u64, 0u64), |(n, bytes), s| {
            (n + 1, bytes + (s.end - s.start))
        });
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
    let picture = Picture {
        title: format!("seqdb data file of {}", db.display()),
        file_len: stats.file_len,
        segments,
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
    };
    let svg = crate::svg::render(&picture);
    std::fs::write(out, svg).context(|| format!("cannot write {}", out.display()))?;
    crate::inspect::print(&format!(
        "wrote {}: {}, {} holding {}, file length {}\n",
        out.display(),
        disk::plural(regions.len() as u64, "region"),
        disk::plural(holes, "hole"),
        human::bytes(hole_bytes),
        human::bytes(stats.file_len)
    ))
}
