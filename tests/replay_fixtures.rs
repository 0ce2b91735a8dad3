//! Replays every pcap fixture under `pcap-fixtures/` through the `sgswitch` binary and
//! compares its per-frame verdicts with the fixture's `expected.jsonl`.
//!
//! The fixtures (captures, configs, expected verdicts) are produced by
//! `pcap-fixtures/generate.py`; the expected verdicts are derived from the pipeline
//! contract (`pipeline-spec.md`), never from running sgswitch. See
//! `pcap-fixtures/README.md` for the layout. For each fixture directory this test runs
//!
//! ```text
//! cd pcap-fixtures/<name> && sgswitch replay --config config.toml --json <args> capture.pcap[ng]
//! ```
//!
//! where `<args>` comes from the fixture's `args` file (every non-empty line not starting
//! with `#` is split on whitespace). Output lines are parsed as JSON and compared with the
//! expected objects keyed by `frame` (a held fragment is printed late, so line order is
//! irrelevant). A mismatch names the fixture, the frame, and both objects.
//!
//! Also checked here, without the binary: the fixture index matches the directories;
//! every `expected.jsonl` has exactly one well-formed line per frame of its capture, whose
//! `in_port` is the frame's pcapng interface name; the captures read back through the
//! pcap-file crate with the intended interface names and timestamps (first frame at
//! 1700000000 s, a frame exactly on every `--apply-at` boundary). And, with the binary:
//! `--out-dir DIR` writes `DIR/<port>.pcap` (or `.pcapng`) for every port that received
//! frames and `DIR/dropped.pcapng`, with the expected number of frames.
//!
//! Until `sgswitch replay` exists the two tests that run it fail; the others pass.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// Number of fixtures the generator writes today; the suite fails if fewer are found.
const MIN_FIXTURES: usize = 23;

/// The fixture used for the `--out-dir` check: every frame in it is either delivered to
/// exactly one port or dropped at exactly one port, so the counts are unambiguous.
const OUT_DIR_FIXTURE: &str = "stateful-replies";

fn fixtures_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("pcap-fixtures")
}

/// Fixture names listed in `pcap-fixtures/INDEX`.
fn listed_fixtures() -> Vec<String> {
    let text = fs::read_to_string(fixtures_root().join("INDEX")).expect("pcap-fixtures/INDEX");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// Every directory under `pcap-fixtures/` that has an `expected.jsonl`, sorted by name.
fn fixture_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(fixtures_root())
        .expect("pcap-fixtures/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("expected.jsonl").is_file())
        .collect();
    dirs.sort();
    dirs
}

fn name_of(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Extra replay arguments from the fixture's `args` file.
fn read_args(dir: &Path) -> Vec<String> {
    let Ok(text) = fs::read_to_string(dir.join("args")) else {
        return Vec::new();
    };
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .flat_map(|l| l.split_whitespace().map(str::to_owned))
        .collect()
}

/// The capture file name (relative to the fixture directory).
fn capture_name(dir: &Path) -> Result<&'static str, String> {
    for name in ["capture.pcapng", "capture.pcap"] {
        if dir.join(name).is_file() {
            return Ok(name);
        }
    }
    Err(format!(
        "{}: no capture.pcapng or capture.pcap",
        name_of(dir)
    ))
}

/// Run `sgswitch replay` in the fixture directory; returns stdout.
fn run_replay(dir: &Path, extra: &[String]) -> Result<String, String> {
    let capture = capture_name(dir)?;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sgswitch"));
    cmd.current_dir(dir)
        .arg("replay")
        .arg("--config")
        .arg("config.toml")
        .arg("--json")
        .args(read_args(dir))
        .args(extra)
        .arg(capture);
    let out = cmd
        .output()
        .map_err(|e| format!("{}: cannot run sgswitch: {e}", name_of(dir)))?;
    if !out.status.success() {
        return Err(format!(
            "{}: `sgswitch replay` exited with {}; stderr:\n{}",
            name_of(dir),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end()
        ));
    }
    String::from_utf8(out.stdout).map_err(|_| format!("{}: stdout is not UTF-8", name_of(dir)))
}

/// Parse JSON lines into a map keyed by `frame`. Errors name the source and line.
fn parse_lines(text: &str, what: &str) -> Result<BTreeMap<u64, Value>, Vec<String>> {
    let mut map = BTreeMap::new();
    let mut errors = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                errors.push(format!("{what} line {}: not JSON ({e}): {line}", i + 1));
                continue;
            }
        };
        let Some(frame) = v.get("frame").and_then(Value::as_u64) else {
            errors.push(format!(
                "{what} line {}: no numeric \"frame\": {line}",
                i + 1
            ));
            continue;
        };
        if let Some(prev) = map.insert(frame, v) {
            errors.push(format!(
                "{what}: frame {frame} printed twice (first {prev}, again on line {})",
                i + 1
            ));
        }
    }
    if errors.is_empty() {
        Ok(map)
    } else {
        Err(errors)
    }
}

/// `got` with only the keys `want` has: the fixtures give each frame's verdict
/// (`frame`, `in_port`, `delivered`, `dropped`); the replay adds its explanation (`summary`,
/// `ct`, `rules`, `why`), which the fixtures do not fix.
fn verdict_keys(got: &Value, want: &Value) -> Value {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => Value::Object(
            g.iter()
                .filter(|(k, _)| w.contains_key(*k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        _ => got.clone(),
    }
}

/// Compare expected and actual verdicts frame by frame.
fn compare(
    fixture: &str,
    expected: &BTreeMap<u64, Value>,
    actual: &BTreeMap<u64, Value>,
) -> Vec<String> {
    let mut diffs = Vec::new();
    for (frame, want) in expected {
        match actual.get(frame).map(|g| verdict_keys(g, want)) {
            None => diffs.push(format!(
                "{fixture} frame {frame}: missing\n  expected: {want}"
            )),
            Some(got) if &got != want => diffs.push(format!(
                "{fixture} frame {frame}: mismatch\n  expected: {want}\n  actual:   {got}"
            )),
            Some(_) => {}
        }
    }
    for (frame, got) in actual {
        if !expected.contains_key(frame) {
            diffs.push(format!(
                "{fixture} frame {frame}: unexpected line\n  actual:   {got}"
            ));
        }
    }
    diffs
}

fn load_expected(dir: &Path) -> Result<BTreeMap<u64, Value>, Vec<String>> {
    let name = name_of(dir);
    let text = fs::read_to_string(dir.join("expected.jsonl"))
        .map_err(|e| vec![format!("{name}: expected.jsonl: {e}")])?;
    parse_lines(&text, &format!("{name}/expected.jsonl"))
}

/// Replay one fixture; the list of problems (empty = pass).
fn check_fixture(dir: &Path) -> Vec<String> {
    let name = name_of(dir);
    let expected = match load_expected(dir) {
        Ok(m) => m,
        Err(e) => return e,
    };
    let stdout = match run_replay(dir, &[]) {
        Ok(s) => s,
        Err(e) => return vec![e],
    };
    let actual = match parse_lines(&stdout, &format!("{name}: replay stdout")) {
        Ok(m) => m,
        Err(e) => return e,
    };
    compare(&name, &expected, &actual)
}

#[test]
fn every_fixture_replays_as_expected() {
    let dirs = fixture_dirs();
    let listed = listed_fixtures();
    assert!(
        dirs.len() >= MIN_FIXTURES && dirs.len() >= listed.len(),
        "found {} fixture directories, expected at least {} (INDEX lists {})",
        dirs.len(),
        MIN_FIXTURES,
        listed.len()
    );
    let mut ran = Vec::new();
    let mut failures: Vec<(String, Vec<String>)> = Vec::new();
    for dir in &dirs {
        let name = name_of(dir);
        let problems = check_fixture(dir);
        ran.push(name.clone());
        if !problems.is_empty() {
            failures.push((name, problems));
        }
    }
    for name in &listed {
        assert!(ran.contains(name), "listed fixture {name} did not run");
    }
    if !failures.is_empty() {
        let mut report = format!(
            "{} of {} fixtures failed: {}\n",
            failures.len(),
            ran.len(),
            failures
                .iter()
                .map(|(n, p)| format!("{n} ({} problems)", p.len()))
                .collect::<Vec<_>>()
                .join(", ")
        );
        for (_, problems) in &failures {
            for p in problems.iter().take(40) {
                report.push_str(p);
                report.push('\n');
            }
            if problems.len() > 40 {
                report.push_str(&format!("  ... {} more\n", problems.len() - 40));
            }
        }
        panic!("{report}");
    }
}

#[test]
fn fixture_index_matches_directories() {
    let listed = listed_fixtures();
    let found: Vec<String> = fixture_dirs().iter().map(|d| name_of(d)).collect();
    assert!(
        listed.len() >= MIN_FIXTURES,
        "INDEX lists {} fixtures",
        listed.len()
    );
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(
        sorted, found,
        "INDEX and fixture directories differ (regenerate?)"
    );
}

// ---------------------------------------------------------------------------------------
// Minimal capture readers (frame counts and interface names), independent of sgswitch.
// ---------------------------------------------------------------------------------------

/// One captured frame: interface name (pcapng) or None (classic pcap).
#[derive(Debug)]
struct CapFrame {
    ifname: Option<String>,
}

fn rd_u16(b: &[u8], off: usize, le: bool) -> Option<u16> {
    let s: [u8; 2] = b.get(off..off + 2)?.try_into().ok()?;
    Some(if le {
        u16::from_le_bytes(s)
    } else {
        u16::from_be_bytes(s)
    })
}

fn rd_u32(b: &[u8], off: usize, le: bool) -> Option<u32> {
    let s: [u8; 4] = b.get(off..off + 4)?.try_into().ok()?;
    Some(if le {
        u32::from_le_bytes(s)
    } else {
        u32::from_be_bytes(s)
    })
}

/// Read a classic pcap or a pcapng file's frames.
fn read_capture(bytes: &[u8]) -> Result<Vec<CapFrame>, String> {
    let magic = rd_u32(bytes, 0, true).ok_or("file too short")?;
    match magic {
        0xA1B2_C3D4 | 0xA1B2_3C4D => read_pcap(bytes, true),
        0xD4C3_B2A1 | 0x4D3C_B2A1 => read_pcap(bytes, false),
        0x0A0D_0D0A => read_pcapng(bytes),
        m => Err(format!("unknown capture magic {m:#010x}")),
    }
}

fn read_pcap(b: &[u8], le: bool) -> Result<Vec<CapFrame>, String> {
    let mut off = 24;
    let mut out = Vec::new();
    while off < b.len() {
        let incl = rd_u32(b, off + 8, le).ok_or("truncated pcap record header")? as usize;
        off += 16;
        if off + incl > b.len() {
            return Err("truncated pcap record".into());
        }
        off += incl;
        out.push(CapFrame { ifname: None });
    }
    Ok(out)
}

fn read_pcapng(b: &[u8]) -> Result<Vec<CapFrame>, String> {
    let mut off = 0;
    let mut le = true;
    let mut ifnames: Vec<Option<String>> = Vec::new();
    let mut out = Vec::new();
    while off < b.len() {
        let btype = rd_u32(b, off, true).ok_or("truncated block")?;
        if btype == 0x0A0D_0D0A {
            le = match rd_u32(b, off + 8, true) {
                Some(0x1A2B_3C4D) => true,
                Some(0x4D3C_2B1A) => false,
                _ => return Err("bad section header byte-order magic".into()),
            };
            ifnames.clear();
        }
        let btype = rd_u32(b, off, le).ok_or("truncated block")?;
        let len = rd_u32(b, off + 4, le).ok_or("truncated block")? as usize;
        if len < 12 || !len.is_multiple_of(4) || off + len > b.len() {
            return Err(format!("bad block length {len} at offset {off}"));
        }
        let body = &b[off + 8..off + len - 4];
        match btype {
            1 => ifnames.push(idb_name(body, le)),
            6 => {
                let id = rd_u32(body, 0, le).ok_or("truncated EPB")? as usize;
                let name = ifnames
                    .get(id)
                    .ok_or_else(|| format!("EPB for undeclared interface {id}"))?;
                out.push(CapFrame {
                    ifname: name.clone(),
                });
            }
            2 | 3 => out.push(CapFrame {
                ifname: ifnames.first().cloned().flatten(),
            }),
            _ => {}
        }
        off += len;
    }
    Ok(out)
}

/// The if_name option (code 2) of an interface description block body.
fn idb_name(body: &[u8], le: bool) -> Option<String> {
    let mut off = 8;
    while off + 4 <= body.len() {
        let code = rd_u16(body, off, le)?;
        let len = rd_u16(body, off + 2, le)? as usize;
        if code == 0 {
            return None;
        }
        let val = body.get(off + 4..off + 4 + len)?;
        if code == 2 {
            return Some(String::from_utf8_lossy(val).into_owned());
        }
        off += 4 + len.div_ceil(4) * 4;
    }
    None
}

#[test]
fn expected_files_cover_every_frame_of_their_capture() {
    let mut problems = Vec::new();
    for dir in fixture_dirs() {
        let name = name_of(&dir);
        let expected = match load_expected(&dir) {
            Ok(m) => m,
            Err(e) => {
                problems.extend(e);
                continue;
            }
        };
        let frames = match capture_name(&dir)
            .and_then(|c| fs::read(dir.join(c)).map_err(|e| format!("{name}: {e}")))
            .and_then(|b| read_capture(&b).map_err(|e| format!("{name}: {e}")))
        {
            Ok(f) => f,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        let keys: Vec<u64> = expected.keys().copied().collect();
        let want: Vec<u64> = (1..=frames.len() as u64).collect();
        if keys != want {
            problems.push(format!(
                "{name}: expected.jsonl has frames {:?}..., capture has {} frames",
                keys.iter().take(5).collect::<Vec<_>>(),
                frames.len()
            ));
            continue;
        }
        let classic = read_args(&dir).iter().any(|a| a == "--in-port");
        for (i, f) in frames.iter().enumerate() {
            let v = &expected[&(i as u64 + 1)];
            let in_port = v.get("in_port").and_then(Value::as_str).unwrap_or("");
            if !classic && f.ifname.as_deref() != Some(in_port) {
                problems.push(format!(
                    "{name} frame {}: interface {:?} but expected in_port {in_port}",
                    i + 1,
                    f.ifname
                ));
            }
            let ok = v.get("delivered").is_some_and(Value::is_array)
                && v.get("dropped").and_then(Value::as_array).is_some_and(|d| {
                    d.iter().all(|x| {
                        x.get("port").is_some_and(Value::is_string)
                            && x.get("reason").is_some_and(Value::is_string)
                    })
                });
            if !ok {
                problems.push(format!(
                    "{name} frame {}: malformed expected object {v}",
                    i + 1
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Frame count of a capture written by `--out-dir`.
fn count_frames(path: &Path) -> Result<usize, String> {
    let bytes = fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    read_capture(&bytes)
        .map(|f| f.len())
        .map_err(|e| format!("{}: {e}", path.display()))
}

#[test]
fn out_dir_writes_per_port_and_dropped_captures() {
    let dir = fixtures_root().join(OUT_DIR_FIXTURE);
    let expected = load_expected(&dir).unwrap_or_else(|e| panic!("{}", e.join("\n")));

    // Expected counts per destination port and of dropped frames.
    let mut per_port: BTreeMap<String, usize> = BTreeMap::new();
    let mut dropped = 0usize;
    for v in expected.values() {
        let delivered = v["delivered"].as_array().expect("delivered");
        let drops = v["dropped"].as_array().expect("dropped");
        assert!(
            delivered.len() + drops.len() == 1,
            "{OUT_DIR_FIXTURE} must have one outcome per frame for this test: {v}"
        );
        for p in delivered {
            *per_port
                .entry(p.as_str().expect("port").to_owned())
                .or_default() += 1;
        }
        dropped += drops.len();
    }
    assert!(dropped > 0 && per_port.len() >= 2);

    let out = std::env::temp_dir().join(format!("sgswitch-replay-outdir-{}", std::process::id()));
    let _ = fs::remove_dir_all(&out);
    fs::create_dir_all(&out).expect("create out dir");
    let result = run_replay(&dir, &["--out-dir".to_owned(), out.display().to_string()]);
    let check = || -> Result<(), String> {
        result.clone()?;
        for (port, want) in &per_port {
            let path = ["pcap", "pcapng"]
                .iter()
                .map(|ext| out.join(format!("{port}.{ext}")))
                .find(|p| p.is_file())
                .ok_or_else(|| format!("no {port}.pcap or {port}.pcapng in --out-dir"))?;
            let got = count_frames(&path)?;
            if got != *want {
                return Err(format!("{}: {got} frames, expected {want}", path.display()));
            }
        }
        let got = count_frames(&out.join("dropped.pcapng"))?;
        if got != dropped {
            return Err(format!("dropped.pcapng: {got} frames, expected {dropped}"));
        }
        Ok(())
    };
    let outcome = check();
    let _ = fs::remove_dir_all(&out);
    if let Err(e) = outcome {
        panic!("--out-dir on fixture {OUT_DIR_FIXTURE}: {e}");
    }
}

#[test]
fn capture_reader_counts_frames() {
    // Guard the hand-written reader used above with a tiny known capture of each kind.
    let mut pcap = Vec::new();
    for v in [
        0xA1B2_C3D4u32.to_le_bytes().as_slice(),
        &2u16.to_le_bytes(),
        &4u16.to_le_bytes(),
    ] {
        pcap.extend_from_slice(v);
    }
    pcap.extend_from_slice(&[0; 8]);
    pcap.extend_from_slice(&65535u32.to_le_bytes());
    pcap.extend_from_slice(&1u32.to_le_bytes());
    for len in [3u32, 5] {
        pcap.extend_from_slice(&[0; 8]);
        pcap.extend_from_slice(&len.to_le_bytes());
        pcap.extend_from_slice(&len.to_le_bytes());
        pcap.extend(std::iter::repeat_n(0xAB, len as usize));
    }
    let frames = read_capture(&pcap).expect("pcap");
    assert_eq!(frames.len(), 2);
    assert!(read_capture(&pcap[..pcap.len() - 1]).is_err());

    // pcapng: SHB, IDB named "p1", one EPB of 3 bytes.
    let block = |t: u32, body: &[u8]| {
        let total = (12 + body.len()) as u32;
        let mut b = t.to_le_bytes().to_vec();
        b.extend_from_slice(&total.to_le_bytes());
        b.extend_from_slice(body);
        b.extend_from_slice(&total.to_le_bytes());
        b
    };
    let mut shb = 0x1A2B_3C4Du32.to_le_bytes().to_vec();
    shb.extend_from_slice(&[1, 0, 0, 0]);
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    let mut idb = vec![1, 0, 0, 0, 0, 0, 0, 0];
    idb.extend_from_slice(&[2, 0, 2, 0, b'p', b'1', 0, 0, 0, 0, 0, 0]);
    let mut epb = vec![0u8; 12];
    epb.extend_from_slice(&3u32.to_le_bytes());
    epb.extend_from_slice(&3u32.to_le_bytes());
    epb.extend_from_slice(&[1, 2, 3, 0]);
    let mut ng = block(0x0A0D_0D0A, &shb);
    ng.extend(block(1, &idb));
    ng.extend(block(6, &epb));
    let frames = read_capture(&ng).expect("pcapng");
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].ifname.as_deref(), Some("p1"));
}

#[test]
fn compare_reports_each_kind_of_difference() {
    let exp = parse_lines(
        "{\"frame\":1,\"in_port\":\"a\",\"delivered\":[\"b\"],\"dropped\":[]}\n\
         {\"frame\":2,\"in_port\":\"a\",\"delivered\":[],\"dropped\":[{\"port\":\"a\",\"reason\":\"malformed\"}]}\n\
         {\"frame\":3,\"in_port\":\"a\",\"delivered\":[\"b\"],\"dropped\":[]}",
        "exp",
    )
    .expect("expected parses");
    // Frame order does not matter; frame 2 differs, 3 is missing, 4 is extra.
    let act = parse_lines(
        "{\"frame\":2,\"in_port\":\"a\",\"delivered\":[],\"dropped\":[{\"port\":\"a\",\"reason\":\"spoofed-ip\"}]}\n\
         {\"frame\":1,\"delivered\":[\"b\"],\"in_port\":\"a\",\"dropped\":[]}\n\
         {\"frame\":4,\"in_port\":\"a\",\"delivered\":[],\"dropped\":[]}",
        "act",
    )
    .expect("actual parses");
    let d = compare("fx", &exp, &act);
    assert_eq!(d.len(), 3, "{d:#?}");
    assert!(d[0].starts_with("fx frame 2: mismatch") && d[0].contains("spoofed-ip"));
    assert!(d[1].starts_with("fx frame 3: missing"));
    assert!(d[2].starts_with("fx frame 4: unexpected"));
    assert!(compare("fx", &exp, &exp).is_empty());
    // Duplicate frames and non-JSON lines are errors.
    assert!(parse_lines("{\"frame\":1}\n{\"frame\":1}", "dup").is_err());
    assert!(parse_lines("sgswitch", "junk").is_err());
}

/// Read a capture with the pcap-file crate: (interface name, timestamp) per frame.
fn read_with_pcap_file(path: &Path) -> Result<Vec<(Option<String>, std::time::Duration)>, String> {
    use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
    use pcap_file::pcapng::{Block, PcapNgReader};

    let file = fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    if path.extension().is_some_and(|e| e == "pcapng") {
        let mut reader = PcapNgReader::new(file).map_err(|e| format!("{e}"))?;
        let mut names: Vec<Option<String>> = Vec::new();
        while let Some(block) = reader.next_block() {
            match block.map_err(|e| format!("{}: {e}", path.display()))? {
                Block::InterfaceDescription(idb) => {
                    names.push(idb.options.iter().find_map(|o| match o {
                        InterfaceDescriptionOption::IfName(n) => Some(n.to_string()),
                        _ => None,
                    }))
                }
                Block::EnhancedPacket(epb) => {
                    let name = names.get(epb.interface_id as usize).cloned().flatten();
                    out.push((name, epb.timestamp));
                }
                _ => {}
            }
        }
    } else {
        let mut reader = pcap_file::pcap::PcapReader::new(file).map_err(|e| format!("{e}"))?;
        while let Some(p) = reader.next_packet() {
            let p = p.map_err(|e| format!("{}: {e}", path.display()))?;
            out.push((None, p.timestamp));
        }
    }
    Ok(out)
}

#[test]
fn captures_read_back_with_pcap_file() {
    // The replay most likely reads captures with pcap-file, which takes pcapng EPB
    // timestamps as nanoseconds whatever if_tsresol says: the generator writes
    // if_tsresol = 9 so both readings agree. Check names, the first timestamp, and that
    // each --apply-at boundary frame sits exactly at first_ts + S.
    let mut problems = Vec::new();
    for dir in fixture_dirs() {
        let name = name_of(&dir);
        let Ok(expected) = load_expected(&dir) else {
            problems.push(format!("{name}: bad expected.jsonl"));
            continue;
        };
        let frames = match capture_name(&dir).and_then(|c| read_with_pcap_file(&dir.join(c))) {
            Ok(f) => f,
            Err(e) => {
                problems.push(format!("{name}: {e}"));
                continue;
            }
        };
        if frames.len() != expected.len() {
            problems.push(format!(
                "{name}: {} frames, {} expected",
                frames.len(),
                expected.len()
            ));
            continue;
        }
        let first = frames[0].1;
        if first != std::time::Duration::from_secs(1_700_000_000) {
            problems.push(format!("{name}: first timestamp {first:?}"));
        }
        for (i, (ifname, ts)) in frames.iter().enumerate() {
            let want = expected[&(i as u64 + 1)]["in_port"].as_str().unwrap_or("");
            if ifname.is_some() && ifname.as_deref() != Some(want) {
                problems.push(format!(
                    "{name} frame {}: if_name {ifname:?} != {want}",
                    i + 1
                ));
            }
            if i > 0 && *ts < frames[i - 1].1 {
                problems.push(format!("{name} frame {}: timestamp goes back", i + 1));
            }
        }
        let args = read_args(&dir);
        for w in args.windows(2).filter(|w| w[0] == "--apply-at") {
            let secs: f64 = w[1]
                .split_once('=')
                .and_then(|(s, _)| s.parse().ok())
                .unwrap_or(f64::NAN);
            let at = first + std::time::Duration::from_secs_f64(secs);
            if !frames.iter().any(|(_, ts)| *ts == at) {
                problems.push(format!("{name}: no frame exactly at the {} boundary", w[1]));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
