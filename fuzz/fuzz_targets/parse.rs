#![no_main]
//! `parse`: `flow::extract_into` and `flow::summary` on any bytes. No panic, and the
//! in-place parser agrees with the by-value one (`extract`) on every input. Also the same
//! bytes as a tap with `vnet_hdr` reads them (a virtio-net header, then the frame):
//! `port::gso::check` and `resolve` never panic, and what `check` accepts `resolve` handles.

use libfuzzer_sys::fuzz_target;
use sgswitch::flow::{self, PacketMeta};
use sgswitch::port::gso::{self, Offload, VNET_HDR_LEN};

fuzz_target!(|data: &[u8]| {
    // Scratch that held a previous frame: `extract_into` must overwrite all of it.
    let mut m = PacketMeta {
        vlan_count: 2,
        has_nd_target: true,
        ..Default::default()
    };
    let into = flow::extract_into(data, &mut m);
    let by_value = flow::extract(data);
    match (&into, &by_value) {
        (Ok(()), Ok(v)) => assert_eq!(&m, v, "extract_into and extract differ"),
        (Err(a), Err(b)) => assert_eq!(a, b, "extract_into and extract fail differently"),
        _ => panic!("extract_into {into:?} but extract {by_value:?}"),
    }
    let s = flow::summary(data);
    assert!(!s.is_empty(), "empty summary");
    if let Some((h, frame)) = data.split_first_chunk::<VNET_HDR_LEN>() {
        let off = Offload::from_vnet(h);
        let ok = gso::check(&off, frame).is_ok();
        let mut scratch = [0u8; 65_536];
        let r = gso::resolve(frame, &off, &mut scratch, |_| {});
        assert!(
            !ok || !matches!(r, gso::Resolved::Refused(_)),
            "{off:?}: {r:?}"
        );
    }
});
