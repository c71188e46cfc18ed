//! Drawing a data file as SVG: pure, from a list of segments to a string.

use std::fmt::Write;

/// What occupies a stretch of the data file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Bytes of a region.
    Used,
    /// Space reserved for a region beyond its length.
    Reserved,
    /// Space no region uses.
    Hole,
    /// The data file's header.
    Header,
}

/// A stretch `[start, end)` of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    /// What it holds.
    pub kind: Kind,
    /// Index of the region it belongs to in [`Picture::regions`] (none for holes).
    pub region: Option<usize>,
}

/// Everything the picture shows.
#[derive(Debug, Clone)]
pub struct Picture {
    /// The heading.
    pub title: String,
    /// Length of the data file.
    pub file_len: u64,
    /// The segments in file order, covering `[0, end of the last one)` without gaps.
    pub segments: Vec<Segment>,
    /// A label per region (name, number, sizes), shown when hovering and inside wide
    /// regions.
    pub regions: Vec<RegionLabel>,
    /// Lines of totals under the legend.
    pub totals: Vec<String>,
}

/// How a region is labelled.
#[derive(Debug, Clone)]
pub struct RegionLabel {
    /// Short text drawn inside the region when it is wide enough.
    pub name: String,
    /// Longer text shown on hover.
    pub detail: String,
}

/// Width of the drawing area for the file, in pixels.
const WIDTH: f64 = 1000.0;
/// Left margin, where row offsets are written.
const LEFT: f64 = 96.0;
const RIGHT: f64 = 24.0;
const ROW_HEIGHT: f64 = 24.0;
const ROW_GAP: f64 = 8.0;
const TOP: f64 = 70.0;
/// A file up to this size is drawn on one row at its own scale.
const ONE_ROW: u64 = 4 << 20;
/// Larger files wrap into at most about this many rows.
const MAX_ROWS: u64 = 48;

/// Used and reserved shades per region, cycling along the file so neighbours differ.
const PALETTE: [(&str, &str); 6] = [
    ("#2b6cb0", "#b3cdee"),
    ("#2c8c7f", "#ace0d7"),
    ("#6b46c1", "#d2c3f2"),
    ("#3f8f3f", "#bde2b8"),
    ("#44549b", "#bcc4ea"),
    ("#8a6d1f", "#e8dcae"),
];
const HOLE: &str = "#e8743b";
const HEADER: &str = "#8c8c8c";

/// Bytes shown per row.
pub fn row_bytes(extent: u64) -> u64 {
    let page = seqdb::PAGE_SIZE;
    if extent <= ONE_ROW {
        return extent.div_ceil(page).max(1) * page;
    }
    extent.div_ceil(MAX_ROWS).next_power_of_two().max(ONE_ROW)
}

/// Text escaped for XML character data and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 does not allow at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// One rectangle of one row, before it is written.
struct Rect {
    x0: f64,
    x1: f64,
    kind: Kind,
    fill: &'static str,
    region: Option<usize>,
    /// How many segments were merged into it (those under a pixel wide).
    merged: usize,
}

fn color(kind: Kind, slot: usize) -> &'static str {
    let (used, reserved) = PALETTE[slot % PALETTE.len()];
    match kind {
        Kind::Used => used,
        Kind::Reserved => reserved,
        Kind::Hole => HOLE,
        Kind::Header => HEADER,
    }
}

/// Draw the picture.
pub fn render(picture: &Picture) -> String {
    let extent = picture
        .segments
        .last()
        .map_or(0, |s| s.end)
        .max(picture.file_len);
    let per_row = row_bytes(extent);
    let rows = extent.div_ceil(per_row).max(1);
    let scale = WIDTH / per_row as f64;

    // Colour slot per region, in order of appearance along the file.
    let mut slots = vec![usize::MAX; picture.regions.len()];
    let mut next_slot = 0;
    for segment in &picture.segments {
        if let Some(r) = segment.region
            && slots.get(r) == Some(&usize::MAX)
        {
            slots[r] = next_slot;
            next_slot += 1;
        }
    }
    let slot_of = |r: Option<usize>| r.and_then(|r| slots.get(r).copied()).unwrap_or(0);

    let mut rows_rects: Vec<Vec<Rect>> = (0..rows).map(|_| Vec::new()).collect();
    for segment in &picture.segments {
        let mut start = segment.start;
        while start < segment.end {
            let row = start / per_row;
            let row_start = row * per_row;
            let end = segment.end.min(row_start + per_row);
            let x0 = LEFT + (start - row_start) as f64 * scale;
            let x1 = LEFT + (end - row_start) as f64 * scale;
            let Some(rects) = rows_rects.get_mut(row as usize) else {
                break;
            };
            let fill = color(segment.kind, slot_of(segment.region));
            match rects.last_mut() {
                // Segments under a pixel join their neighbour of the same kind: the
                // picture looks the same and the file stays small.
                Some(last) if last.kind == segment.kind && x1 - x0 < 1.0 => {
                    last.x1 = x1;
                    last.merged += 1;
                }
                _ => rects.push(Rect {
                    x0,
                    x1,
                    kind: segment.kind,
                    fill,
                    region: segment.region,
                    merged: 1,
                }),
            }
            start = end;
        }
    }

    let legend_y = TOP + rows as f64 * (ROW_HEIGHT + ROW_GAP) + 16.0;
    let totals_y = legend_y + 40.0;
    let height = totals_y + picture.totals.len() as f64 * 18.0 + 12.0;
    let width = LEFT + WIDTH + RIGHT;

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{LEFT}" y="28" font-size="18" font-weight="bold">{}</text>"#,
        escape(&picture.title)
    );
    let _ = writeln!(
        svg,
        r##"<text x="{LEFT}" y="50" fill="#555">{}</text>"##,
        escape(&format!(
            "{} per row, {}; hover over a stretch for details",
            crate::human::bytes(per_row),
            crate::disk::plural(rows, "row")
        ))
    );

    for (row, rects) in rows_rects.iter().enumerate() {
        let y = TOP + row as f64 * (ROW_HEIGHT + ROW_GAP);
        let _ = writeln!(
            svg,
            r##"<text x="{}" y="{}" text-anchor="end" fill="#555">{}</text>"##,
            LEFT - 8.0,
            y + ROW_HEIGHT / 2.0 + 4.0,
            escape(&crate::human::bytes(row as u64 * per_row))
        );
        let row_width = ((extent - row as u64 * per_row).min(per_row)) as f64 * scale;
        let _ = writeln!(
            svg,
            r##"<rect x="{LEFT}" y="{y}" width="{row_width:.2}" height="{ROW_HEIGHT}" fill="none" stroke="#999" stroke-width="0.5"/>"##
        );
        for rect in rects {
            let tooltip = match (rect.merged, rect.region, rect.kind) {
                (1, Some(r), kind) => {
                    let what = if kind == Kind::Used {
                        "bytes"
                    } else {
                        "reserved, unused"
                    };
                    picture
                        .regions
                        .get(r)
                        .map_or_else(String::new, |label| format!("{} — {what}", label.detail))
                }
                (1, None, Kind::Header) => "the data file's header".to_owned(),
                (1, None, _) => format!(
                    "hole: {}",
                    crate::human::bytes(((rect.x1 - rect.x0) / scale) as u64)
                ),
                (n, _, Kind::Hole) => format!("{n} holes, each under a pixel wide"),
                (n, _, _) => format!("{n} pieces of regions, each under a pixel wide"),
            };
            let _ = writeln!(
                svg,
                r#"<rect x="{:.2}" y="{y}" width="{:.2}" height="{ROW_HEIGHT}" fill="{}"><title>{}</title></rect>"#,
                rect.x0,
                (rect.x1 - rect.x0).max(0.0),
                rect.fill,
                escape(&tooltip)
            );
            if rect.kind == Kind::Used
                && rect.merged == 1
                && let Some(label) = rect.region.and_then(|r| picture.regions.get(r))
            {
                let room = rect.x1 - rect.x0;
                if room >= label.name.chars().count() as f64 * 7.0 + 8.0 {
                    let _ = writeln!(
                        svg,
                        r#"<text x="{:.2}" y="{}" fill="white" font-size="11" pointer-events="none">{}</text>"#,
                        rect.x0 + 4.0,
                        y + ROW_HEIGHT / 2.0 + 4.0,
                        escape(&label.name)
                    );
                }
            }
        }
    }

    if extent > picture.file_len {
        // Reservations reach past the end of the file: mark where the file ends.
        let row = picture.file_len / per_row;
        let x = LEFT + (picture.file_len - row * per_row) as f64 * scale;
        let y = TOP + row as f64 * (ROW_HEIGHT + ROW_GAP);
        let _ = writeln!(
            svg,
            r##"<line x1="{x:.2}" y1="{}" x2="{x:.2}" y2="{}" stroke="#222" stroke-width="2"><title>end of the data file ({})</title></line>"##,
            y - 3.0,
            y + ROW_HEIGHT + 3.0,
            escape(&crate::human::bytes(picture.file_len))
        );
    }

    let legend = [
        (PALETTE[0].0, "region bytes (each region its own hue)"),
        (PALETTE[0].1, "reserved, unused (same hue, lighter)"),
        (HOLE, "hole: free space"),
        (HEADER, "the data file's header"),
    ];
    let mut x = LEFT;
    for (fill, text) in legend {
        let _ = writeln!(
            svg,
            r##"<rect x="{x}" y="{}" width="14" height="14" fill="{fill}" stroke="#999" stroke-width="0.5"/><text x="{}" y="{}">{}</text>"##,
            legend_y,
            x + 20.0,
            legend_y + 11.0,
            escape(text)
        );
        x += 20.0 + text.chars().count() as f64 * 6.5 + 24.0;
    }
    if extent > picture.file_len {
        let _ = writeln!(
            svg,
            r##"<line x1="{x}" y1="{}" x2="{x}" y2="{}" stroke="#222" stroke-width="2"/><text x="{}" y="{}">end of the data file</text>"##,
            legend_y - 2.0,
            legend_y + 16.0,
            x + 8.0,
            legend_y + 11.0
        );
    }
    for (i, line) in picture.totals.iter().enumerate() {
        let _ = writeln!(
            svg,
            r#"<text x="{LEFT}" y="{}">{}</text>"#,
            totals_y + i as f64 * 18.0,
            escape(line)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picture(segments: Vec<Segment>, file_len: u64) -> Picture {
        Picture {
            title: "a <test> & \"quotes\"".into(),
            file_len,
            segments,
            regions: vec![RegionLabel {
                name: "prices".into(),
                detail: "prices (#0)".into(),
            }],
            totals: vec!["total 1".into()],
        }
    }

    fn segment(start: u64, end: u64, kind: Kind, region: Option<usize>) -> Segment {
        Segment {
            start,
            end,
            kind,
            region,
        }
    }

    #[test]
    fn rows_wrap_large_files_only() {
        assert_eq!(row_bytes(0), 4096);
        assert_eq!(row_bytes(10_000), 12_288);
        assert_eq!(row_bytes(4 << 20), 4 << 20);
        assert_eq!(row_bytes(100 << 20), 4 << 20);
        assert_eq!(row_bytes(1 << 30), 32 << 20);
        assert!((10u64 << 30).div_ceil(row_bytes(10 << 30)) <= MAX_ROWS);
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape(r#"<a & "b">'"#),
            "&lt;a &amp; &quot;b&quot;&gt;&apos;"
        );
        assert_eq!(escape("bell\u{7}"), "bell\u{fffd}");
        let svg = render(&picture(vec![segment(0, 4096, Kind::Used, Some(0))], 4096));
        assert!(svg.contains("a &lt;test&gt; &amp; &quot;quotes&quot;"));
    }

    #[test]
    fn segments_become_rects_in_proportion() {
        let svg = render(&picture(
            vec![
                segment(0, 2048, Kind::Used, Some(0)),
                segment(2048, 4096, Kind::Reserved, Some(0)),
                segment(4096, 8192, Kind::Hole, None),
            ],
            8192,
        ));
        // One row of 8192 bytes over 1000 px: 250 px, 250 px, 500 px.
        assert!(
            svg.contains(r##"<rect x="96.00" y="70" width="250.00" height="24" fill="#2b6cb0">"##),
            "{svg}"
        );
        assert!(
            svg.contains(r##"<rect x="346.00" y="70" width="250.00" height="24" fill="#b3cdee">"##),
            "{svg}"
        );
        assert!(
            svg.contains(r##"<rect x="596.00" y="70" width="500.00" height="24" fill="#e8743b">"##),
            "{svg}"
        );
        assert!(svg.contains("<title>hole: 4.00 KiB</title>"));
        assert!(svg.trim_end().ends_with("</svg>"));
    }

    #[test]
    fn a_segment_crossing_rows_is_split() {
        let row = 4 << 20;
        assert_eq!(row_bytes(2 * row), row);
        let svg = render(&picture(
            vec![
                segment(0, row + row / 2, Kind::Used, Some(0)),
                segment(row + row / 2, 2 * row, Kind::Hole, None),
            ],
            2 * row,
        ));
        assert_eq!(
            svg.matches(r##"fill="#2b6cb0"><title>"##).count(),
            2,
            "{svg}"
        );
        assert!(svg.contains(r#"y="102" width="500.00""#), "{svg}");
    }

    #[test]
    fn tiny_segments_merge() {
        let segments: Vec<Segment> = (0..10_000u64)
            .map(|i| segment(i * 4096, (i + 1) * 4096, Kind::Used, Some(0)))
            .chain(std::iter::once(segment(
                10_000 * 4096,
                1 << 30,
                Kind::Hole,
                None,
            )))
            .collect();
        let svg = render(&picture(segments, 1 << 30));
        assert!(
            svg.matches("<rect").count() < 200,
            "{}",
            svg.matches("<rect").count()
        );
        assert!(svg.contains("pieces of regions"));
    }
}
