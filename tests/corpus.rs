//! Robustness: replay every capture of tcpdump's test suite (`tests/corpus/tcpdump/`, in the
//! repository with its licence and origin; real and deliberately malformed captures) through
//! the packet path on an uplink port.
//! Nothing may panic or hang; a link type other than Ethernet is refused with a clear
//! message; a truncated or corrupt capture file is a clear error.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use sgswitch::policy::Model;
use sgswitch::runtime::replay::{self, ReplayError, ReplayOptions};

const CONFIG: &str = r#"
[[security_groups]]
name = "web"
rules = [
  { direction = "ingress", protocol = "tcp", port_range_min = 80, port_range_max = 80 },
  { direction = "ingress", ethertype = "IPv6", protocol = "udp" },
  { direction = "ingress", protocol = "icmp", port_range_min = 8 },
]

[[ports]]
name = "uplink"
mac = "02:00:00:00:00:01"
port_security = false

[[ports]]
name = "vm"
mac = "fa:16:3e:00:00:0a"
fixed_ips = ["10.0.0.10", "fd00::a"]
security_groups = ["web", "default"]

[[ports]]
name = "router"
mac = "fa:16:3e:00:00:01"
fixed_ips = ["10.0.0.1"]
port_security = false
"#;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/tcpdump")
}

fn model() -> Model {
    sgswitch::control::config::parse_str(CONFIG, "corpus.toml")
        .expect("corpus config is valid")
        .model
}

#[test]
fn replay_tcpdump_corpus_without_panic_or_hang() {
    let dir = corpus_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("pcap" | "pcapng" | "cap")
            )
        })
        .collect();
    files.sort();
    assert!(
        files.len() > 500,
        "expected the whole corpus, found {}",
        files.len()
    );

    let (mut ok, mut link_refused, mut capture_errors, mut frames) = (0, 0, 0, 0u64);
    for f in &files {
        let (tx, rx) = mpsc::channel();
        let path = f.clone();
        std::thread::spawn(move || {
            let m = model();
            let loader = |_: &Path| -> Result<Model, String> { Err("unused".into()) };
            let opts = ReplayOptions {
                input: path,
                in_port: Some("uplink".into()),
                force_in_port: true,
                apply_at: vec![],
                json: true,
                out_dir: None,
                loader: &loader,
            };
            let mut sink = std::io::sink();
            let r = replay::run(&m, &opts, &mut sink);
            let _ = tx.send(r);
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Ok(s)) => {
                ok += 1;
                frames += s.frames;
            }
            Ok(Err(ReplayError::LinkType { .. })) => link_refused += 1,
            Ok(Err(e @ ReplayError::Capture { .. })) => {
                let msg = e.to_string();
                assert!(
                    msg.contains(&*f.to_string_lossy()),
                    "error names the file: {msg}"
                );
                capture_errors += 1;
            }
            Ok(Err(e)) => panic!("{}: unexpected error: {e}", f.display()),
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("{}: replay hung", f.display()),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                panic!("{}: replay panicked", f.display())
            }
        }
    }
    eprintln!(
        "corpus: {} files, {ok} replayed ({frames} frames), {link_refused} refused (link type), {capture_errors} corrupt",
        files.len()
    );
    assert!(ok >= 400, "most Ethernet captures replay ({ok})");
    assert!(
        frames > 5_000,
        "frames went through the pipeline ({frames})"
    );
    assert!(
        link_refused >= 100,
        "non-Ethernet captures are refused ({link_refused})"
    );
}

#[test]
fn non_ethernet_capture_is_refused_with_a_clear_message() {
    let dir = std::env::temp_dir().join(format!("sgs-corpus-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("raw.pcap");
    // pcap header with link type 101 (raw IP) and one record.
    let mut b = Vec::new();
    b.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
    b.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    b.extend_from_slice(&65535u32.to_le_bytes());
    b.extend_from_slice(&101u32.to_le_bytes());
    b.extend_from_slice(&[0u8; 8]);
    b.extend_from_slice(&4u32.to_le_bytes());
    b.extend_from_slice(&4u32.to_le_bytes());
    b.extend_from_slice(&[0x45, 0, 0, 4]);
    std::fs::write(&f, &b).unwrap();
    let m = model();
    let loader = |_: &Path| -> Result<Model, String> { Err("unused".into()) };
    let opts = ReplayOptions {
        input: f.clone(),
        in_port: Some("uplink".into()),
        force_in_port: true,
        apply_at: vec![],
        json: true,
        out_dir: None,
        loader: &loader,
    };
    let err = replay::run(&m, &opts, &mut std::io::sink()).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, ReplayError::LinkType { link_type: 101, .. }),
        "{msg}"
    );
    assert!(msg.contains("Ethernet"), "{msg}");
    std::fs::remove_dir_all(&dir).ok();
}
