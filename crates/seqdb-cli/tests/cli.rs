//! The `seqdb` binary, driven as a user would on databases made here.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};

use seqdb::Database;
use serde_json::Value;

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

/// Run and expect success; returns standard output parsed as JSON.
fn ok_json(args: &[&str]) -> Value {
    let out = ok(args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("seqdb {args:?}: not JSON ({e}): {out}"))
}

/// A JSON value that must be an unsigned integer.
fn number(value: &Value) -> u64 {
    value
        .as_u64()
        .unwrap_or_else(|| panic!("not an unsigned integer: {value}"))
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
/// The metadata file without the zeros laid down ahead of its log.
fn log_of(meta: &Path) -> Vec<u8> {
    let mut bytes = fs::read(meta).unwrap();
    while bytes.len() > 4096 && bytes[bytes.len() - 4096..].iter().all(|&b| b == 0) {
        bytes.truncate(bytes.len() - 4096);
    }
    bytes
}

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

    let items = ok_json(&["ls", arg(dir.path()), "--json"]);
    let items = items.as_array().expect("an array");
    assert_eq!(items.len(), names.len());
    for (item, region) in items.iter().zip(&regions) {
        let fields = item.as_object().expect("an object per region");
        assert_eq!(fields.len(), 5, "{item}");
        assert_eq!(item["name"], region.name());
        assert_eq!(number(&item["number"]), region.number() as u64);
        assert_eq!(number(&item["len"]), region.len());
        assert_eq!(number(&item["reserved"]), region.reserved());
        assert_eq!(number(&item["start"]), region.start());
    }
    let names_back: Vec<&str> = items.iter().filter_map(|i| i["name"].as_str()).collect();
    assert_eq!(names_back, names);
    assert_eq!(number(&items[3]["len"]), 3000);

    // The sort order applies to the JSON too.
    let by_name = ok_json(&["ls", arg(dir.path()), "--json", "--sort", "name"]);
    let sorted: Vec<&str> = by_name
        .as_array()
        .expect("an array")
        .iter()
        .filter_map(|i| i["name"].as_str())
        .collect();
    let mut expected = names.to_vec();
    expected.sort_unstable();
    assert_eq!(sorted, expected);

    let empty = tempfile::tempdir().unwrap();
    drop(Database::open(empty.path()).unwrap());
    assert_eq!(
        ok_json(&["ls", arg(empty.path()), "--json"]),
        Value::Array(Vec::new())
    );
}

#[test]
fn info_json_matches_the_library_stats() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let stats = {
        let database = sample(dir.path());
        database.stats().unwrap()
    };
    let db = arg(dir.path());
    let info = ok_json(&["info", db, "--json"]);
    assert_eq!(info["database"], db);
    assert_eq!(
        number(&info["format_version"]),
        u64::from(seqdb::FORMAT_VERSION)
    );
    assert_eq!(number(&info["generation"]), stats.generation);
    assert_eq!(stats.generation, 2, "two flushes");
    assert_eq!(number(&info["file_len"]), stats.file_len);
    assert_eq!(number(&info["live_bytes"]), 50_012);
    assert_eq!(number(&info["reserved_bytes"]), stats.reserved_bytes);
    assert_eq!(number(&info["pending_bytes"]), stats.pending_bytes);
    assert_eq!(number(&info["regions"]), 2);
    assert_eq!(number(&info["holes"]), stats.holes);
    assert!(stats.holes >= 1, "removing a region leaves a hole");
    assert_eq!(number(&info["hole_bytes"]), stats.hole_bytes);
    // The command's own handle has no readers, so it keeps no retired space.
    assert_eq!(number(&info["retired_bytes"]), 0);
    let allocated = &info["allocated"];
    assert_eq!(
        number(&allocated["total"]),
        number(&allocated["data"]) + number(&allocated["meta"])
    );
    assert_eq!(number(&allocated["total"]), stats.allocated_bytes);
    let amplification = info["space_amplification"].as_f64().expect("a number");
    assert!((amplification - stats.space_amplification()).abs() < 1e-9);
}

#[test]
fn check_json_reports_counts_problems_and_warnings() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    drop(sample(dir.path()));
    let db = arg(dir.path());
    let report = ok_json(&["check", db, "--json"]);
    assert_eq!(report["database"], db);
    assert_eq!(report["healthy"], true);
    assert_eq!(number(&report["records"]), 3);
    assert_eq!(number(&report["generation"]), 2);
    assert_eq!(number(&report["regions"]), 2);
    assert_eq!(number(&report["live_bytes"]), 50_012);
    assert_eq!(
        number(&report["data_len"]),
        fs::metadata(dir.path().join("data")).unwrap().len()
    );
    assert_eq!(
        number(&report["meta_len"]),
        fs::metadata(dir.path().join("meta")).unwrap().len()
    );
    assert_eq!(report["problems"], Value::Array(Vec::new()));
    assert_eq!(report["warnings"], Value::Array(Vec::new()));

    // A torn record at the end of the log: healthy, with a warning.
    let meta = dir.path().join("meta");
    let clean = log_of(&meta);
    let mut torn = clean.clone();
    torn.extend_from_slice(b"SQDR\x40\0\0\0torn");
    fs::write(&meta, &torn).unwrap();
    let report = ok_json(&["check", db, "--json"]);
    assert_eq!(report["healthy"], true);
    let warnings = report["warnings"].as_array().expect("an array");
    assert_eq!(warnings.len(), 1, "{report}");
    assert!(
        warnings[0]
            .as_str()
            .is_some_and(|w| w.contains("torn write")),
        "{report}"
    );

    // Damage inside a record that later ones depend on: a problem, and exit status 1
    // with the JSON still on standard output.
    let mut damaged = clean;
    damaged[2 * 4096 + 20] ^= 0xff;
    fs::write(&meta, &damaged).unwrap();
    let out = run(&["check", db, "--json"], b"");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON on standard output");
    assert_eq!(report["healthy"], false);
    let problems = report["problems"].as_array().expect("an array");
    // The break, with the valid record after it; and the commits the log lacks.
    assert_eq!(problems.len(), 2, "{report}");
    let problem = problems[0].as_str().expect("a sentence");
    assert!(problem.contains("meta offset 8192"), "{problem}");
    assert!(problem.contains("checksum mismatch"), "{problem}");
    let problem = problems[1].as_str().expect("a sentence");
    assert!(problem.contains("commit(s) are missing"), "{problem}");
}

#[test]
fn map_json_lists_every_stretch_of_the_file() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (regions, stats) = {
        let database = sample(dir.path());
        (database.regions(), database.stats().unwrap())
    };
    let db = arg(dir.path());
    let map = ok_json(&["map", db, "--json"]);
    assert_eq!(map["database"], db);
    assert_eq!(map["svg"], Value::Null);
    assert_eq!(number(&map["regions"]), 2);
    assert_eq!(number(&map["file_len"]), stats.file_len);
    assert_eq!(number(&map["live_bytes"]), 50_012);
    assert_eq!(number(&map["generation"]), stats.generation);
    assert_eq!(number(&map["holes"]), 1, "{map}");

    // Stretches in file order, without gaps, covering the file.
    let segments = map["segments"].as_array().expect("an array");
    let mut at = 0;
    let mut hole_bytes = 0;
    for segment in segments {
        let (start, end) = (number(&segment["start"]), number(&segment["end"]));
        assert_eq!(start, at, "{map}");
        assert!(end > start, "{segment}");
        at = end;
        match segment["kind"].as_str() {
            Some("header") => {
                assert_eq!((start, end), (0, seqdb::DATA_HEADER_LEN), "{segment}");
                assert_eq!(segment["region"], Value::Null);
            }
            Some("hole") => {
                assert_eq!(segment["region"], Value::Null);
                hole_bytes += end - start;
            }
            Some("used" | "reserved") => {
                let name = segment["region"]["name"].as_str().expect("a region name");
                let region = regions.iter().find(|r| r.name() == name).expect("a region");
                assert_eq!(number(&segment["region"]["number"]), region.number() as u64);
                if segment["kind"] == "used" {
                    assert_eq!(
                        (start, end),
                        (region.start(), region.start() + region.len())
                    );
                }
            }
            other => panic!("unknown kind {other:?}"),
        }
    }
    assert!(at >= stats.file_len);
    assert_eq!(number(&map["hole_bytes"]), hole_bytes);
    // The removed region's 200,000 bytes lay between the other two: that is the hole.
    assert!(hole_bytes >= 200_000, "{map}");
    let used: Vec<&str> = segments
        .iter()
        .filter(|s| s["kind"] == "used")
        .filter_map(|s| s["region"]["name"].as_str())
        .collect();
    assert_eq!(used, ["prices", "notes"]);

    // With --svg too, the picture is written and named.
    let svg_path = dir.path().join("map.svg");
    let map = ok_json(&["map", db, "--svg", arg(&svg_path), "--json"]);
    assert_eq!(map["svg"], arg(&svg_path));
    assert!(fs::read_to_string(&svg_path).unwrap().starts_with("<svg"));

    // Neither --svg nor --json is a usage error.
    let stderr = fails(&["map", db], 2);
    assert!(stderr.contains("--svg"), "{stderr}");
}

#[test]
fn compact_punch_and_put_report_as_json() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    drop(sample(dir.path()));
    let db = arg(dir.path());

    let punched = ok_json(&["punch", db, "--json"]);
    assert_eq!(punched["database"], db);
    assert_eq!(
        number(&punched["before"]["file_len"]),
        number(&punched["after"]["file_len"])
    );
    assert!(
        number(&punched["after"]["allocated_bytes"])
            <= number(&punched["before"]["allocated_bytes"])
    );

    let compacted = ok_json(&["compact", db, "--json"]);
    let file_after = number(&compacted["after"]["file_len"]);
    assert!(
        file_after < number(&compacted["before"]["file_len"]),
        "{compacted}"
    );
    let stats = Database::open_read_only(dir.path())
        .unwrap()
        .stats()
        .unwrap();
    assert_eq!(stats.file_len, file_after);
    assert_eq!(stats.holes, 0);
    // Moving regions writes them anew, so after a punch the allocation may grow a little.
    assert!(
        number(&compacted["after"]["allocated_bytes"]) > 0,
        "{compacted}"
    );

    let out = run(&["put", db, "notes", "--json"], b"more");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let put: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(put["database"], db);
    assert_eq!(put["region"], "notes");
    assert_eq!(number(&put["offset"]), 12);
    assert_eq!(number(&put["written"]), 4);
    assert_eq!(number(&put["len"]), 16);
    let notes = number(&put["number"]);
    let out = run(
        &["put", db, &format!("#{notes}"), "--at", "0", "--json"],
        b"NO",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let put: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(number(&put["number"]), notes);
    assert_eq!(put["region"], "notes");
    assert_eq!((number(&put["offset"]), number(&put["len"])), (0, 16));
    let database = Database::open_read_only(dir.path()).unwrap();
    let reader = database.create_region_reader("notes".into()).unwrap();
    assert_eq!(&reader.read_all()[..2], b"NO");
    assert_eq!(&reader.read_all()[12..], b"more");
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
    let mut bytes = log_of(&meta);
    let clean = bytes.clone();
    bytes.extend_from_slice(b"SQDR\x40\0\0\0torn");
    fs::write(&meta, &bytes).unwrap();
    let out = ok(&["check", db]);
    assert!(
        out.contains("warning:") && out.contains("torn write"),
        "{out}"
    );

    // Damage inside the first delta, with a valid record after it: a crash cannot do
    // that, so check names the offset, and open refuses what check calls damage.
    let mut bytes = clean;
    bytes[2 * 4096 + 20] ^= 0xff;
    fs::write(&meta, &bytes).unwrap();
    let out = run(&["check", db], b"");
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("problem: meta offset 8192"), "{stdout}");
    assert!(stdout.contains("checksum mismatch"), "{stdout}");
    assert!(stdout.contains("1 valid record(s) follow"), "{stdout}");
    assert!(stdout.contains("2 commit(s) are missing"), "{stdout}");
    assert!(stdout.trim_end().ends_with("2 problems"), "{stdout}");
    let stderr = fails(&["ls", db], 1);
    assert!(stderr.contains("is corrupt at offset 8192"), "{stderr}");
}

#[test]
fn check_data_names_the_region_whose_bytes_were_damaged() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let database = sample(dir.path());
    let prices = database.get_region("prices".into()).unwrap();
    database.close().unwrap();
    let db = arg(dir.path());
    let report = ok_json(&["check", db, "--data", "--json"]);
    assert_eq!(report["healthy"], true, "{report}");
    assert_eq!(report["data_checked"], true, "{report}");
    assert_eq!(report["damaged"], serde_json::json!([]), "{report}");
    // Without --data the bytes are not read.
    assert_eq!(ok_json(&["check", db, "--json"])["data_checked"], false);

    // One byte flipped inside "prices", in its first 64 KiB chunk.
    let data = dir.path().join("data");
    let mut bytes = fs::read(&data).unwrap();
    bytes[(prices.start() + 1234) as usize] ^= 0x01;
    fs::write(&data, &bytes).unwrap();
    // The metadata says nothing about the bytes: the plain check still passes.
    ok(&["check", db]);
    let out = run(&["check", db, "--data"], b"");
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("region \"prices\"") && stdout.contains("bytes 0..50000"),
        "{stdout}"
    );
    let out = run(&["check", db, "--data", "--json"], b"");
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["damaged"][0]["region"], "prices", "{report}");
    assert_eq!(report["damaged"][0]["offset"], 0, "{report}");
    assert_eq!(report["damaged"][0]["len"], 50_000, "{report}");
    assert_eq!(report["damaged"].as_array().unwrap().len(), 1, "{report}");
}

#[test]
fn check_repair_cuts_a_broken_log_and_says_what_it_cut() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    drop(sample(dir.path()));
    let db = arg(dir.path());
    let out = ok(&["check", db, "--repair"]);
    assert!(out.contains("repair: nothing to repair"), "{out}");

    // The first delta damaged: the commits from there on are gone for good; repair
    // keeps the checkpoint before them and reports the valid commit it drops.
    let meta = dir.path().join("meta");
    let mut bytes = fs::read(&meta).unwrap();
    let len = bytes.len();
    bytes[2 * 4096 + 20] ^= 0xff;
    fs::write(&meta, &bytes).unwrap();
    let out = ok(&["check", db, "--repair"]);
    assert!(out.contains("problem: meta offset 8192"), "{out}");
    assert!(out.contains("repair: damage:"), "{out}");
    assert!(
        out.contains(&format!(
            "cut the metadata log at offset 8192, dropping {} bytes and 1 valid commit(s): \
             generation 2",
            len - 8192
        )),
        "{out}"
    );
    assert!(
        out.contains("rewrote the data file's header from commit 2 to commit 0"),
        "{out}"
    );
    assert!(out.contains("recovered generation 0"), "{out}");
    assert!(out.trim_end().ends_with("healthy"), "{out}");
    assert_eq!(fs::metadata(&meta).unwrap().len(), 8192);
    let out = ok(&["check", db]);
    assert!(out.trim_end().ends_with("healthy"), "{out}");
    ok(&["ls", db]);
}

#[test]
fn check_repair_json_says_what_was_found_done_and_left() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    drop(sample(dir.path()));
    let db = arg(dir.path());
    let nothing = ok_json(&["check", db, "--repair", "--json"]);
    assert_eq!(nothing["repaired"], false, "{nothing}");
    assert_eq!(nothing["after"], Value::Null, "{nothing}");
    assert_eq!(nothing["before"]["healthy"], true, "{nothing}");

    let meta = dir.path().join("meta");
    let mut bytes = fs::read(&meta).unwrap();
    bytes[2 * 4096 + 20] ^= 0xff;
    fs::write(&meta, &bytes).unwrap();
    let repaired = ok_json(&["check", db, "--repair", "--json"]);
    assert_eq!(repaired["before"]["healthy"], false, "{repaired}");
    assert_eq!(repaired["repaired"], true, "{repaired}");
    let recovery = &repaired["recovery"];
    assert_eq!(number(&recovery["cut_at"]), 8192, "{repaired}");
    assert_eq!(number(&recovery["generation"]), 0, "{repaired}");
    assert_eq!(number(&recovery["restamped_from"]), 2, "{repaired}");
    let dropped = recovery["dropped"].as_array().expect("an array");
    assert_eq!(dropped.len(), 1, "{repaired}");
    assert_eq!(number(&dropped[0]["generation"]), 2, "{repaired}");
    assert_eq!(repaired["after"]["healthy"], true, "{repaired}");
}

#[test]
fn check_repair_keeps_a_log_cut_short_and_refuses_a_foreign_data_file() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    drop(sample(dir.path()));
    let db = arg(dir.path());
    let meta = dir.path().join("meta");
    let bytes = fs::read(&meta).unwrap();
    // Two records gone: more than a crash takes.
    fs::write(&meta, &bytes[..8192]).unwrap();
    let out = run(&["check", db], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("2 commit(s) are missing"),
        "{}",
        text(&out.stdout)
    );
    let out = ok(&["check", db, "--repair"]);
    assert!(
        out.contains("rewrote the data file's header from commit 2 to commit 0"),
        "{out}"
    );
    assert!(out.trim_end().ends_with("healthy"), "{out}");

    // A data file of zeros is nobody's: repair refuses it and exits with 1. (Next to a
    // log that holds only the first, empty checkpoint it would be a creation cut short,
    // so this takes a database with commits.)
    let dir = tempfile::tempdir().unwrap();
    drop(sample(dir.path()));
    let db = arg(dir.path());
    let data = dir.path().join("data");
    let len = fs::metadata(&data).unwrap().len();
    fs::write(&data, vec![0u8; len as usize]).unwrap();
    let out = run(&["check", db, "--repair"], b"");
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("problem: ") && stdout.contains("has no header"),
        "{stdout}"
    );
    let stderr = text(&out.stderr);
    assert!(stderr.contains("repair failed"), "{stderr}");
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
        "the data file&apos;s header",
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
fn read_only_commands_run_beside_a_writer_and_show_its_last_commit() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let writer = sample(dir.path());
    let db = arg(dir.path());
    // Written but not flushed: not a commit yet.
    writer
        .write_all_to_region("notes".into(), b"unflushed")
        .unwrap();
    assert_eq!(
        run(&["cat", db, "notes"], b"").stdout,
        noise(12, 12),
        "cat shows the last commit"
    );
    let listed = ok(&["ls", db]);
    assert!(
        listed.contains("prices") && !listed.contains("gone"),
        "{listed}"
    );
    let checked = ok(&["check", db]);
    assert!(checked.contains("healthy"), "{checked}");
    ok(&["map", db, "--svg", arg(&dir.path().join("m.svg"))]);
    // A backup beside the writer holds its last commit.
    let backup_dir = tempfile::tempdir().unwrap();
    let dest = backup_dir.path().join("backup");
    let report = ok_json(&["backup", db, arg(&dest), "--json"]);
    assert_eq!(number(&report["generation"]), 2, "{report}");
    assert_eq!(
        run(&["cat", arg(&dest), "notes"], b"").stdout,
        noise(12, 12)
    );
    let info = ok_json(&["info", db, "--json"]);
    assert_eq!(number(&info["generation"]), 2);
    // A read-only handle held elsewhere is listed with the generation it views.
    let reader = Database::open_read_only(dir.path()).unwrap();
    let info = ok_json(&["info", db, "--json"]);
    assert_eq!(info["readers"].as_array().unwrap().len(), 1, "{info}");
    assert_eq!(number(&info["readers"][0]["generation"]), 2);
    assert!(ok(&["info", db]).contains("at generation 2"));
    // A second writer is refused with a reason.
    for command in [&["put", db, "notes"][..], &["compact", db], &["punch", db]] {
        let stderr = fails(command, 1);
        assert!(
            stderr.contains("already open by another process"),
            "{command:?}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1);
    }
    drop(writer);
    // Readers do not keep a writer out.
    run(&["put", db, "notes"], b"!");
    drop(reader);
    assert_eq!(
        run(&["cat", db, "notes"], b"").stdout.len(),
        12 + "unflushed".len() + 1
    );
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

#[test]
fn backup_copies_then_copies_only_changes_and_refuses_another_database() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (db, dest) = (dir.path().join("db"), dir.path().join("backup"));
    drop(sample(&db));
    let out = ok(&["backup", arg(&db), arg(&dest)]);
    assert!(out.contains("(full)"), "{out}");
    assert!(out.contains("copied 48.84 KiB (50012 bytes)"), "{out}");
    assert_eq!(contents(&dest), contents(&db));
    ok(&["check", "--data", arg(&dest)]);

    // Nothing changed: nothing is copied.
    let report = ok_json(&["backup", arg(&db), arg(&dest), "--json"]);
    assert_eq!(number(&report["bytes_copied"]), 0);
    assert_eq!(number(&report["bytes_compared"]), 50_012);
    assert_eq!(number(&report["live_bytes"]), 50_012);
    assert_eq!(number(&report["regions"]), 2);
    assert_eq!(report["previous_generation"], report["generation"]);
    assert!(report["seconds"].as_f64().is_some());

    // An append: only its chunk is copied.
    run(&["put", arg(&db), "notes"], b" and more");
    let report = ok_json(&["backup", arg(&db), arg(&dest), "--json"]);
    assert_eq!(number(&report["bytes_copied"]), 21);
    assert_eq!(contents(&dest), contents(&db));
    assert!(number(&report["generation"]) > number(&report["previous_generation"]));
    // Without a terminal, progress is plain lines on standard error.
    let out = run(&["backup", arg(&db), arg(&dest)], b"");
    assert!(
        text(&out.stderr).contains("copying: 50021 of 50021 bytes"),
        "{}",
        text(&out.stderr)
    );

    // Another database's backup is refused, and left alone.
    let other = dir.path().join("other");
    drop(sample(&other));
    let error = fails(&["backup", arg(&other), arg(&dest)], 1);
    assert!(error.contains("not of database"), "{error}");
    assert_eq!(contents(&dest), contents(&db));
}
