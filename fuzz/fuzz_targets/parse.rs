#![no_main]
//! `parse`: `flow::extract_into` and `flow::summary` on any bytes. No panic, and the
//! in-place parser agrees with the by-value one (`extract`) on every input.

use libfuzzer_sys::fuzz_target;
use sgswitch::flow::{self, PacketMeta};

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
});
