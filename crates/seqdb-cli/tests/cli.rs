//! The `seqdb` binary, driven as a user would on databases made here.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};

use seqdb::Database;

/// Tests here run one at a time. A database's lock belongs to its open file description,
/// and a child process spawned by one test holds a copy of every descriptor the test
/// process has open until it executes the new program: a database another test has just
/// closed can then still look locked to the next `seqdb` it starts.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Run `seqdb ARGS` with `stdin` as standard input.
fn run(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_seqdb"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the seqdb binary starts");
    let mut input = child.stdin.take().expect("stdin is piped");
    input.write_all(stdin).expect("stdin accepts the input");
    drop(input);
    child.wait_with_output().expect("seqdb finishes")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Run and expect success; returns standard output as text.
fn ok(args: &[&str]) -> String {
    let out = run(args, b"");
    assert!(
        out.status.success(),
        "seqdb {args:?} failed: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Run and expect failure with status `code`; returns standard error as text.
fn fails(args: &[&str], code: i32) -> String {
    let out = run(args, b"");
    assert_eq!(
        out.status.code(),
        Some(code),
        "seqdb {args:?}: stdout {} stderr {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stderr)
}

fn arg(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

/// Pseudo-random bytes (xorshift), covering every byte value.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}

/// A database with three regions, one of them removed after a flush (leaving a hole).
fn sample(dir: &Path) -> Database {
    let database = Database::open(dir).unwrap();
    for (name, len) in [("prices", 50_000usize), ("gone", 200_000), ("notes", 12)] {
        let (number, _) = database.create_region_if_needed(name).unwrap();
        database
            .write_all_to_region(number.into(), &noise(len, len as u64))
            .unwrap();
    }
    database.flush().unwrap();
    database.remove_region("gone".into()).unwrap();
    database.flush().unwrap();
    database
}

#[test]
fn usage_errors_exit_with_2() {
    let _serial = serial();
    let stderr = fails(&[], 2);
    assert!(stderr.contains("Usage"), "{stderr}");
    fails(&["frobnicate"], 2);
    fails(&["ls", "db", "--sort", "colour"], 2);
    fails(&["cat", "db"], 2);
    assert!(ok(&["--help"]).contains("compact"));
}

#[test]
fn info_shows_version_space_and_generation() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let stats = {
        let database = sample(dir.path());
        database.stats().unwrap()
    };
    let out = ok(&["info", arg(dir.path())]);
    let field = |key: &str| -> String {
        out.lines()
            .find_map(|line| line.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in {out}"))
            .trim()
            .to_owned()
    };
    assert_eq!(
        field("format"),
        format!("version {}", seqdb::FORMAT_VERSION)
    );
    assert_eq!(field("regions"), "2");
    assert!(field("generation").starts_with(&stats.generation.to_string()));
    assert!(field("file length").contains(&format!("({} bytes)", stats.file_len)));
    assert!(field("live").contains("50012 bytes"), "{out}");
    assert!(field("holes").starts_with(&format!("{} holding", stats.holes)));
    assert!(
        stats.holes >= 1,
        "removing a region leaves a hole: {stats:?}"
    );
    assert!(field("allocated").contains("on disk"));
    assert!(field("retired").starts_with("0 B ("), "{out}");
    assert!(field("amplification").starts_with(&format!("{:.2}", stats.space_amplification())));
}

#[test]
fn ls_lists_and_sorts_regions() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let database = Database::open(dir.path()).unwrap();
    for (name, len) in [("b", 10usize), ("c", 30_000), ("a", 200)] {
        let (number, _) = database.create_region_if_needed(name).unwrap();
        database
            .write_all_to_region(number.into(), &vec![1; len])
            .unwrap();
    }
    database.flush().unwrap();
    let regions = database.regions();
    drop(database);

    let names = |args: &[&str]| -> Vec<String> {
        ok(args)
            .lines()
            .skip(1)
            .map(|line| line.split_whitespace().next().unwrap().to_owned())
            .collect()
    };
    let db = arg(dir.path());
    assert_eq!(names(&["ls", db]), ["b", "c", "a"]);
    assert_eq!(names(&["ls", db, "--sort", "name"]), ["a", "b", "c"]);
    assert_eq!(names(&["ls", db, "--sort", "size"]), ["c", "a", "b"]);
    let mut by_start = regions.clone();
    by_start.sort_by_key(|r| r.start());
    let expected: Vec<&str> = by_start.iter().map(|r| r.name()).collect();
    assert_eq!(names(&["ls", db, "--sort", "start"]), expected);

    let out = ok(&["ls", db]);
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "NUMBER", "LENGTH", "RESERVED", "START"]);
    let row: Vec<&str> = out.lines().nth(2).unwrap().split_whitespace().collect();
    let c = &regions[1];
    assert_eq!(
        row,
        [
            "c".to_owned(),
            c.number().to_string(),
            "30000".to_owned(),
            c.reserved().to_string(),
            c.start().to_string()
        ]
    );
}

#[test]
fn ls_json_parses_back_with_awkward_names() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let names = [
        "plain",
        "with \"quotes\" and \\backslash\\",
        "line\nbreak\ttab\u{1}bell",
        "naïve € 漢字",
        "",
    ];
    let database = Database::open(dir.path()).unwrap();
    for (i, name) in names.iter().enumerate() {
        let (number, _) = database.create_region_if_needed(name).unwrap();
        database
            .write_all_to_region(number.into(), &vec![0; i * 1000])
            .unwrap();
    }
    database.flush().unwrap();
    let regions = database.regions();
    drop(database);

    let out = ok(&["ls", arg(dir.path()), "--json"]);
    let Json::Array(items) = parse_json(&out) else {
        panic!("not an array: {out}");
    };
    assert_eq!(items.len(), names.len());
    for (item, region) in items.iter().zip(&regions) {
        let Json::Object(fields) = item else {
            panic!("not an object: {item:?}");
        };
        assert_eq!(fields["name"], Json::String(region.name().to_owned()));
        assert_eq!(fields["number"], Json::Number(region.number() as u64));
        assert_eq!(fields["len"], Json::Number(region.len()));
        assert_eq!(fields["reserved"], Json::Number(region.reserved()));
        assert_eq!(fields["start"], Json::Number(region.start()));
    }

    let empty = tempfile::tempdir().unwrap();
    drop(Database::open(empty.path()).unwrap());
    assert_eq!(
        parse_json(&ok(&["ls", arg(empty.path()), "--json"])),
        Json::Array(Vec::new())
    );
}

#[test]
fn put_and_cat_round_trip_binary_data() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("new-db");
    let db = arg(&db);
    let first = noise(300_000, 7);
    let out = run(&["put", db, "blob"], &first);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("wrote 300000 bytes"));
    let second: Vec<u8> = (0..=255u8).collect();
    assert!(run(&["put", db, "blob"], &second).status.success());

    let mut expected = first.clone();
    expected.extend_from_slice(&second);
    let out = run(&["cat", db, "blob"], b"");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(out.stdout, expected);

    let out = run(&["cat", db, "#0", "--offset", "299990", "--len", "20"], b"");
    assert_eq!(out.stdout, expected[299_990..300_010]);
    let out = run(&["cat", db, "blob", "--offset", "300250"], b"");
    assert_eq!(out.stdout, [250, 251, 252, 253, 254, 255]);

    // Overwrite in place, then extend past the end.
    assert!(
        run(&["put", db, "blob", "--at", "10"], b"XYZ")
            .status
            .success()
    );
    let tail_at = (expected.len() - 2).to_string();
    assert!(
        run(&["put", db, "#0", "--at", &tail_at], b"1234")
            .status
            .success()
    );
    expected[10..13].copy_from_slice(b"XYZ");
    expected.truncate(expected.len() - 2);
    expected.extend_from_slice(b"1234");

    // What the command wrote is what the library reads after a reopen.
    let database = Database::open_read_only(Path::new(db)).unwrap();
    let reader = database.create_region_reader("blob".into()).unwrap();
    assert_eq!(reader.read_all(), expected);
}

#[test]
fn cat_and_put_errors_name_the_problem() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    drop(sample(dir.path()));
    let db = arg(dir.path());

    let stderr = fails(&["cat", db, "nope"], 1);
    assert!(stderr.starts_with("seqdb: "), "{stderr}");
    assert!(stderr.contains("no region \"nope\""), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    let stderr = fails(&["cat", db, "#99"], 1);
    assert!(stderr.contains("no region #99"), "{stderr}");

    let stderr = fails(&["cat", db, "notes", "--offset", "13"], 1);
    assert!(
        stderr.contains("offset 13 is past the end of region \"notes\" (length 12)"),
        "{stderr}"
    );
    let stderr = fails(&["cat", db, "notes", "--offset", "10", "--len", "5"], 1);
    assert!(stderr.contains("10..15"), "{stderr}");

    let stderr = fails(&["put", db, "notes", "--at", "13"], 1);
    assert!(stderr.contains("past the end of region"), "{stderr}");
    let stderr = fails(&["put", db, "#99"], 1);
    assert!(stderr.contains("no region #99"), "{stderr}");

    let missing = dir.path().join("missing");
    for command in ["info", "ls", "check", "compact", "punch"] {
        let stderr = fails(&[command, arg(&missing)], 1);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains(&arg(&missing).to_string()),
            "{command}: {stderr}"
        );
    }
    let stderr = fails(&["put", arg(&missing), "#0"], 1);
    assert!(stderr.contains("no database at"), "{stderr}");
    assert!(
        !missing.exists(),
        "only put with a region name creates a database"
    );

    // A damaged database: the error says so and points to check.
    fs::write(dir.path().join("meta"), b"not a seqdb metadata file").unwrap();
    let stderr = fails(&["ls", db], 1);
    assert!(stderr.contains("is not a seqdb metadata file"), "{stderr}");
    assert!(stderr.contains("`seqdb check"), "{stderr}");
}

#[test]
fn check_passes_a_healthy_database_and_fails_a_damaged_one() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    drop(sample(dir.path()));
    let db = arg(dir.path());
    let out = ok(&["check", db]);
    assert!(out.trim_end().ends_with("healthy"), "{out}");
    assert!(out.contains("2 regions"), "{out}");

    // A torn record after the last one is what a crash leaves: a warning only.
    let meta = dir.path().join("meta");
    let mut bytes = fs::read(&meta).unwrap();
    let clean = bytes.clone();
    bytes.extend_from_slice(b"SQDR\x40\0\0\0torn");
    fs::write(&meta, &bytes).unwrap();
    let out = ok(&["check", db]);
    assert!(
        out.contains("warning:") && out.contains("torn write"),
        "{out}"
    );

    // Damage inside the first delta, with valid records after it: commits would be lost.
    let mut bytes = clean;
    bytes[2 * 4096 + 20] ^= 0xff;
    fs::write(&meta, &bytes).unwrap();
    let out = run(&["check", db], b"");
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("problem: meta offset 8192"), "{stdout}");
    assert!(stdout.contains("checksum mismatch"), "{stdout}");
    assert!(stdout.contains("commits they hold are lost"), "{stdout}");
    assert!(stdout.trim_end().ends_with("1 problem"), "{stdout}");
}

#[test]
fn check_reports_a_region_past_the_end_of_a_truncated_data_file() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    drop(sample(dir.path()));
    fs::OpenOptions::new()
        .write(true)
        .open(dir.path().join("data"))
        .unwrap()
        .set_len(4096)
        .unwrap();
    let out = run(&["check", arg(dir.path())], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("but the data file holds 4096 bytes"));
}

/// Regions' bytes, by name.
fn contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let database = Database::open_read_only(dir).unwrap();
    database
        .regions()
        .iter()
        .map(|r| {
            let reader = database.create_region_reader(r.name().into()).unwrap();
            (r.name().to_owned(), reader.read_all().to_vec())
        })
        .collect()
}

/// The byte count in a `before`/`after` line: `file length X (N bytes), allocated ... (M bytes)`.
fn space_line(out: &str, label: &str) -> (u64, u64) {
    let line = out
        .lines()
        .find(|line| line.starts_with(label))
        .unwrap_or_else(|| panic!("no {label} line in {out}"));
    let numbers: Vec<u64> = line
        .split('(')
        .skip(1)
        .map(|part| part.split(' ').next().unwrap().parse().unwrap())
        .collect();
    (numbers[0], numbers[1])
}

#[test]
fn compact_shrinks_the_file_and_keeps_every_byte() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    drop(sample(dir.path()));
    let before = contents(dir.path());
    let out = run(&["compact", arg(dir.path())], b"");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let (file_before, _) = space_line(&stdout, "before");
    let (file_after, _) = space_line(&stdout, "after");
    assert!(file_after < file_before, "{stdout}");
    // Not a terminal: plain progress lines on standard error.
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("[1/2]") && stderr.contains("[2/2]"),
        "{stderr}"
    );

    assert_eq!(contents(dir.path()), before);
    let database = Database::open_read_only(dir.path()).unwrap();
    let stats = database.stats().unwrap();
    assert_eq!((stats.holes, stats.file_len), (0, file_after));
}

#[test]
fn punch_gives_space_back_and_keeps_every_byte() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    drop(sample(dir.path()));
    let before = contents(dir.path());
    let out = run(&["punch", arg(dir.path())], b"");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let (file_before, allocated_before) = space_line(&stdout, "before");
    let (file_after, allocated_after) = space_line(&stdout, "after");
    assert_eq!(file_before, file_after);
    // The removed region's 200,000 bytes were written, so punching frees most of them
    // (on file systems that punch; others write zeros and keep the allocation).
    assert!(allocated_after <= allocated_before, "{stdout}");
    assert!(text(&out.stderr).contains("[1/1]"));
    assert_eq!(contents(dir.path()), before);
}

#[test]
fn map_draws_regions_reservations_and_holes() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    drop(sample(dir.path()));
    let svg_path = dir.path().join("map.svg");
    let out = ok(&["map", arg(dir.path()), "--svg", arg(&svg_path)]);
    assert!(out.contains("2 regions, 1 hole"), "{out}");
    let svg = fs::read_to_string(&svg_path).unwrap();
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
    for needle in [
        "prices (#",
        "notes (#",
        "hole: ",
        "#e8743b",
        "space amplification",
    ] {
        assert!(svg.contains(needle), "{needle} missing from {svg}");
    }

    let stderr = fails(
        &[
            "map",
            arg(dir.path()),
            "--svg",
            arg(&dir.path().join("no/such/dir.svg")),
        ],
        1,
    );
    assert!(stderr.contains("cannot write"), "{stderr}");
}

#[test]
fn a_database_held_by_a_writer_is_refused_with_a_reason() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let writer = sample(dir.path());
    let db = arg(dir.path());
    for command in [
        &["info", db][..],
        &["ls", db],
        &["cat", db, "notes"],
        &["check", db],
    ] {
        let stderr = fails(command, 1);
        assert!(
            stderr.contains("open for writing by another process"),
            "{command:?}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1);
    }
    let stderr = fails(&["map", db, "--svg", arg(&dir.path().join("m.svg"))], 1);
    assert!(stderr.contains("open for writing"), "{stderr}");
    for command in [&["put", db, "notes"][..], &["compact", db], &["punch", db]] {
        let stderr = fails(command, 1);
        assert!(
            stderr.contains("already open by another process"),
            "{command:?}: {stderr}"
        );
    }
    drop(writer);
    ok(&["info", db]);

    // Readers share: a read-only handle here does not stop read-only commands.
    let reader = Database::open_read_only(dir.path()).unwrap();
    ok(&["ls", db]);
    let stderr = fails(&["put", db, "notes"], 1);
    assert!(stderr.contains("already open"), "{stderr}");
    drop(reader);
}

/// Just enough JSON to read `ls --json` back.
#[derive(Debug, Clone, PartialEq)]
enum Json {
    Array(Vec<Json>),
    Object(BTreeMap<String, Json>),
    String(String),
    Number(u64),
}

fn parse_json(text: &str) -> Json {
    let mut chars = text.chars().peekable();
    let value = parse_value(&mut chars);
    assert!(chars.all(char::is_whitespace), "trailing text after JSON");
    value
}

fn parse_value(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Json {
    skip_space(chars);
    match chars.next() {
        Some('[') => {
            let mut items = Vec::new();
            skip_space(chars);
            if chars.peek() == Some(&']') {
                chars.next();
                return Json::Array(items);
            }
            loop {
                items.push(parse_value(chars));
                skip_space(chars);
                match chars.next() {
                    Some(',') => continue,
                    Some(']') => return Json::Array(items),
                    other => panic!("expected , or ] but found {other:?}"),
                }
            }
        }
        Some('{') => {
            let mut fields = BTreeMap::new();
            loop {
                skip_space(chars);
                let Json::String(key) = parse_value(chars) else {
                    panic!("object keys are strings");
                };
                skip_space(chars);
                assert_eq!(chars.next(), Some(':'));
                fields.insert(key, parse_value(chars));
                skip_space(chars);
                match chars.next() {
                    Some(',') => continue,
                    Some('}') => return Json::Object(fields),
                    other => panic!("expected , or }} but found {other:?}"),
                }
            }
        }
        Some('"') => {
            let mut out = String::new();
            loop {
                match chars.next().expect("unterminated string") {
                    '"' => return Json::String(out),
                    '\\' => match chars.next().expect("escape") {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        '"' => out.push('"'),
                        '\\' => out.push('\\'),
                        '/' => out.push('/'),
                        'u' => {
                            let hex: String = chars.by_ref().take(4).collect();
                            let code = u32::from_str_radix(&hex, 16).unwrap();
                            out.push(char::from_u32(code).unwrap());
                        }
                        other => panic!("bad escape \\{other}"),
                    },
                    c => {
                        assert!(c as u32 >= 0x20, "raw control character in a string");
                        out.push(c);
                    }
                }
            }
        }
        Some(c) if c.is_ascii_digit() => {
            let mut digits = c.to_string();
            while let Some(&d) = chars.peek()
                && d.is_ascii_digit()
            {
                digits.push(d);
                chars.next();
            }
            Json::Number(digits.parse().unwrap())
        }
        other => panic!("unexpected {other:?}"),
    }
}

fn skip_space(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while chars.peek().is_some_and(|c| c.is_whitespace()) {
        chars.next();
    }
}

/// `Stats::allocated_bytes` counts the data and metadata files for read-only handles too,
/// which keep no metadata log open.
#[test]
fn read_only_stats_count_the_metadata_file_too() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let writer = sample(dir.path());
    let read_write = writer.stats().unwrap().allocated_bytes;
    drop(writer);
    let reader = Database::open_read_only(dir.path()).unwrap();
    assert_eq!(reader.stats().unwrap().allocated_bytes, read_write);
}
