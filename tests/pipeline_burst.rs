//! `Pipeline::process_burst` (phased, prefetching) must decide exactly what
//! `Pipeline::process` decides frame by frame. Oracle: every fixture capture, replayed
//! both ways, in bursts of consecutive frames from one port.

use std::path::Path;

use sgswitch::pipeline::{Dataplane, Disposition, IdMap, Pipeline, PipelineConfig, Verdict};
use sgswitch::port::pcap::CaptureReader;

fn frames_of(path: &Path) -> Vec<(String, u64, Vec<u8>)> {
    let mut r = CaptureReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut out = Vec::new();
    let mut buf = Vec::new();
    while let Some(f) = r.next_frame(&mut buf).unwrap() {
        let name = r.interfaces()[f.interface]
            .name
            .clone()
            .unwrap_or_else(|| "vm-a".to_string());
        out.push((name, f.ts_ns, buf.clone()));
    }
    out
}

#[test]
fn burst_processing_matches_frame_by_frame() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("pcap-fixtures");
    let mut checked = 0;
    for entry in std::fs::read_dir(&root).unwrap() {
        let dir = entry.unwrap().path();
        let cap = ["capture.pcapng", "capture.pcap"]
            .iter()
            .map(|c| dir.join(c))
            .find(|p| p.exists());
        let (Some(cap), true) = (cap, dir.join("config.toml").exists()) else {
            continue;
        };
        let cfg = sgswitch::control::config::load_file(&dir.join("config.toml")).unwrap();
        let mut zones = IdMap::default();
        let dp = Dataplane::compile(&cfg.model, 1, &mut zones);
        let pcfg = PipelineConfig::from_model(&cfg.model);
        let frames = frames_of(&cap);
        for burst_len in [1usize, 3, 32, 64] {
            let mut seq = Pipeline::new(&pcfg);
            let mut bur = Pipeline::new(&pcfg);
            let mut i = 0;
            while i < frames.len() {
                // A burst: up to burst_len consecutive frames of one port and timestamp range.
                let port = &frames[i].0;
                let mut j = i;
                while j < frames.len() && j - i < burst_len && &frames[j].0 == port {
                    j += 1;
                }
                let now = frames[j - 1].1;
                let Some(idx) = dp.port_index(port) else {
                    i = j;
                    continue;
                };
                let slices: Vec<&[u8]> = frames[i..j].iter().map(|f| f.2.as_slice()).collect();
                let mut outs = vec![Verdict::default(); slices.len()];
                let mut disp = vec![Disposition::Decided; slices.len()];
                bur.process_burst(&dp, idx, &slices, now, &mut outs, &mut disp);
                for (k, f) in slices.iter().enumerate() {
                    let mut v = Verdict::default();
                    let d = seq.process(&dp, idx, f, now, 0, &mut v);
                    assert_eq!(
                        d,
                        disp[k],
                        "{}: frame {} disposition",
                        dir.display(),
                        i + k + 1
                    );
                    if d == Disposition::Decided {
                        assert_eq!(
                            v,
                            outs[k],
                            "{}: frame {} (burst {burst_len})",
                            dir.display(),
                            i + k + 1
                        );
                    }
                }
                i = j;
            }
            assert_eq!(
                seq.counters(),
                bur.counters(),
                "{}: counters",
                dir.display()
            );
        }
        checked += 1;
    }
    assert!(checked >= 20, "fixtures checked: {checked}");
}

/// `Pipeline::set_new_flow_budget` (what a worker sets for a full burst, #14 floods):
/// in a burst mixing a flood's SYNs with segments of established connections, only the
/// budget's number of new connections is admitted (the rest dropped as
/// `new-flow-overload` at the sender, with no entry committed), every established segment
/// is delivered, a SYN retried on its half-open entry spends the budget too, and without a
/// budget everything is admitted again.
#[test]
fn new_flow_budget_sheds_new_connections_only() {
    use sgswitch::bench::frames::{ipv4_frame, pad, tcp, V4};
    use sgswitch::bench::workload::{
        open_tcp_flows, web_pair, CLIENT_IP, CLIENT_MAC, SERVER_IP, SERVER_MAC,
    };
    use sgswitch::flow::DropReason;

    let (dp, pcfg) = web_pair();
    let mut p = Pipeline::new(&pcfg);
    let client = dp.port_index("client").unwrap();
    let server = dp.port_index("server").unwrap();
    let established = open_tcp_flows(&dp, &mut p, 4);
    let syn = |sport: u16| {
        pad(ipv4_frame(
            SERVER_MAC,
            CLIENT_MAC,
            V4::new(CLIENT_IP, SERVER_IP, 6),
            &tcp(sport, 80, 0x02, 1, 0, &[]),
        ))
    };
    // 12 SYNs of new connections, an established segment after every third.
    let mut burst = Vec::new();
    let mut is_new = Vec::new();
    for i in 0..12u16 {
        burst.push(syn(30_000 + i));
        is_new.push(true);
        if i % 3 == 2 {
            burst.push(established[(i / 3) as usize].clone());
            is_new.push(false);
        }
    }
    let run = |p: &mut Pipeline, budget: Option<u32>, frames: &[Vec<u8>]| {
        let slices: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
        let mut outs = vec![Verdict::default(); slices.len()];
        let mut disp = vec![Disposition::Decided; slices.len()];
        p.set_new_flow_budget(budget);
        p.process_burst(&dp, client, &slices, 10, &mut outs, &mut disp);
        p.set_new_flow_budget(None);
        assert!(disp.iter().all(|d| *d == Disposition::Decided));
        outs
    };
    let before = p.conntrack().len();
    let outs = run(&mut p, Some(5), &burst);
    let mut admitted = 0;
    for (k, v) in outs.iter().enumerate() {
        if !is_new[k] {
            assert_eq!(v.delivered, vec![server], "established frame {k}: {v:?}");
        } else if v.delivered == vec![server] {
            admitted += 1;
        } else {
            assert!(v.delivered.is_empty(), "frame {k}: {v:?}");
            assert_eq!(
                v.dropped,
                vec![(client, DropReason::NewFlowOverload)],
                "{k}"
            );
        }
    }
    assert_eq!(admitted, 5, "the budget's number of new connections");
    // Each admitted connection has an entry in the client's and the server's zone.
    assert_eq!(
        p.conntrack().len(),
        before + 2 * 5,
        "no entry for a shed SYN"
    );
    // The first five SYNs went through; the shed ones pass once the burst is not full.
    let firsts: Vec<usize> = (0..burst.len()).filter(|&k| is_new[k]).collect();
    assert!(firsts[..5].iter().all(|&k| !outs[k].delivered.is_empty()));
    // A SYN retried on its (half-open) entry starts a connection too: shed without budget.
    let retry = [syn(30_000), established[0].clone()];
    let outs = run(&mut p, Some(0), &retry);
    assert_eq!(outs[0].dropped, vec![(client, DropReason::NewFlowOverload)]);
    assert_eq!(
        outs[1].delivered,
        vec![server],
        "established: {:?}",
        outs[1]
    );
    let outs = run(&mut p, None, &burst);
    assert!(outs.iter().all(|v| v.delivered == vec![server]), "{outs:?}");
}
