#![no_main]
//! `overlay`: `overlay::decap` on any bytes (Geneve and VXLAN, both views' checks
//! included) never panics and returns an inner range inside the frame that is at least
//! an Ethernet header; `flow_entropy` takes any bytes; and the same bytes encapsulated
//! by a template decapsulate back to themselves when they fit the path.

use libfuzzer_sys::fuzz_target;
use sgswitch::overlay::{decap, flow_entropy, Endpoints, Template};
use sgswitch::wire::{Encap, Mac};

fuzz_target!(|data: &[u8]| {
    for encap in [Encap::Geneve, Encap::Vxlan] {
        if let Ok(d) = decap(data, encap, encap.udp_port()) {
            assert!(d.inner.start <= d.inner.end && d.inner.end <= data.len());
            assert!(d.inner.len() >= 14);
        }
        let _ = flow_entropy(data);
        let ep = Endpoints {
            src_mac: Mac([2, 0, 0, 0, 0, 1]),
            dst_mac: Mac([2, 0, 0, 0, 0, 2]),
            src_ip: "10.9.0.1".parse().unwrap(),
            dst_ip: "10.9.0.2".parse().unwrap(),
            encap,
            dst_port: encap.udp_port(),
            vni: 77,
        };
        let t = Template::new(&ep, 1500).unwrap();
        let mut out = [0u8; 1600];
        if let Ok(n) = t.encap_into(&mut out, data) {
            match decap(&out[..n], encap, encap.udp_port()) {
                Ok(d) => {
                    assert_eq!(&out[d.inner.clone()], data);
                    assert_eq!(d.vni, 77);
                }
                // Too short to be a frame: refused on the way back.
                Err(_) => assert!(data.len() < 14),
            }
        }
    }
});
