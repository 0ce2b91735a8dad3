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
