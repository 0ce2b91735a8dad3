//! Segmentation checked segment by segment: lengths, ids, sequence numbers, flags, both
//! checksums, and the byte stream put back together.

use super::*;

const MAC: [u8; 12] = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];

/// A superframe: Ethernet (optionally VLAN-tagged), IPv4 or IPv6, TCP (flags `flags`) or
/// UDP, `payload` bytes of a counting pattern; the metadata the kernel would give it.
fn superframe(v6: bool, tcp: bool, vlan: bool, payload: usize, flags: u8) -> (Vec<u8>, Offload) {
    let mut f = MAC.to_vec();
    if vlan {
        f.extend_from_slice(&[0x81, 0x00, 0x00, 0x05]);
    }
    let l3 = f.len() + 2;
    let l4len = if tcp { 32 } else { 8 };
    let proto = if tcp { 6 } else { 17 };
    if v6 {
        f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
        f.extend_from_slice(&((l4len + payload) as u16).to_be_bytes());
        f.extend_from_slice(&[proto, 64]);
        f.extend_from_slice(&[0xfd; 16]);
        f.extend_from_slice(&[0xfe; 16]);
    } else {
        f.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
        f.extend_from_slice(&((20 + l4len + payload) as u16).to_be_bytes());
        f.extend_from_slice(&[
            0x12, 0x34, 0x40, 0, 64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ]);
    }
    let l4 = f.len();
    f.extend_from_slice(&[0x30, 0x39, 0x00, 0x50]);
    if tcp {
        f.extend_from_slice(&0xffff_fff0u32.to_be_bytes()); // wraps inside the superframe
        f.extend_from_slice(&[0, 0, 0, 1, 0x80, flags, 0xff, 0xff, 0xab, 0xcd, 0, 0]);
        f.extend_from_slice(&[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]); // NOP NOP timestamps
    } else {
        f.extend_from_slice(&((8 + payload) as u16).to_be_bytes());
        f.extend_from_slice(&[0xab, 0xcd]);
    }
    f.extend((0..payload).map(|i| (i % 251) as u8));
    let off = Offload {
        flags: F_NEEDS_CSUM,
        gso_type: match (tcp, v6) {
            (true, false) => GSO_TCPV4,
            (true, true) => GSO_TCPV6,
            _ => GSO_UDP_L4,
        },
        hdr_len: (l4 + l4len) as u16,
        gso_size: 1448,
        csum_start: l4 as u16,
        csum_offset: if tcp { 16 } else { 6 },
    };
    let _ = l3;
    (f, off)
}

/// Sum of the pseudo-header and the L4 part: 0xffff when the checksum is right.
fn l4_verifies(seg: &[u8], l3: usize, l4: usize, v6: bool, proto: u8) -> bool {
    let mut p = Vec::new();
    if v6 {
        p.extend_from_slice(&seg[l3 + 8..l3 + 40]);
    } else {
        p.extend_from_slice(&seg[l3 + 12..l3 + 20]);
    }
    p.extend_from_slice(&[0, proto]);
    p.extend_from_slice(&((seg.len() - l4) as u16).to_be_bytes());
    p.extend_from_slice(&seg[l4..]);
    ones_complement_sum(&p) == 0xffff
}

fn segments(f: &[u8], off: &Offload) -> (Resolved, Vec<Vec<u8>>) {
    let mut scratch = vec![0u8; 65_536];
    let mut out = Vec::new();
    let r = resolve(f, off, &mut scratch, |s| out.push(s.to_vec()));
    (r, out)
}

#[test]
fn tcp_segments_verify_and_rebuild_the_stream() {
    for (v6, vlan) in [(false, false), (true, false), (false, true), (true, true)] {
        let payload = 60_000;
        let (f, off) = superframe(v6, true, vlan, payload, 0x19); // FIN PSH ACK
        assert_eq!(check(&off, &f), Ok(()));
        let (r, segs) = segments(&f, &off);
        let n = payload.div_ceil(1448);
        assert_eq!(r, Resolved::Segmented(n), "v6 {v6} vlan {vlan}");
        assert_eq!(segs.len(), n);
        let l3 = if vlan { 18 } else { 14 };
        let l4 = l3 + if v6 { 40 } else { 20 };
        let mut stream = Vec::new();
        for (k, s) in segs.iter().enumerate() {
            let ip_len = s.len() - l3;
            if v6 {
                assert_eq!(
                    u16::from_be_bytes([s[l3 + 4], s[l3 + 5]]) as usize,
                    ip_len - 40
                );
            } else {
                assert_eq!(u16::from_be_bytes([s[l3 + 2], s[l3 + 3]]) as usize, ip_len);
                assert_eq!(
                    u16::from_be_bytes([s[l3 + 4], s[l3 + 5]]),
                    0x1234 + k as u16
                );
                assert_eq!(ones_complement_sum(&s[l3..l4]), 0xffff, "IPv4 header sum");
            }
            assert!(l4_verifies(s, l3, l4, v6, 6), "segment {k} TCP checksum");
            let seq = u32::from_be_bytes([s[l4 + 4], s[l4 + 5], s[l4 + 6], s[l4 + 7]]);
            assert_eq!(seq, 0xffff_fff0u32.wrapping_add((k * 1448) as u32));
            let flags = s[l4 + 13];
            let last = k + 1 == n;
            assert_eq!(flags & 0x09 != 0, last, "FIN/PSH only on the last");
            assert_eq!(flags & 0x10, 0x10, "ACK on every segment");
            stream.extend_from_slice(&s[l4 + 32..]);
            assert!(s.len() <= l4 + 32 + 1448);
        }
        assert_eq!(stream, f[l4 + 32..], "the byte stream is intact");
    }
}

#[test]
fn cwr_only_on_the_first_segment() {
    let (f, off) = superframe(false, true, false, 3000, 0x90); // CWR ACK
    let (_, segs) = segments(&f, &off);
    let flags: Vec<u8> = segs.iter().map(|s| s[34 + 13]).collect();
    assert_eq!(flags, vec![0x90, 0x10, 0x10]);
}

#[test]
fn udp_l4_segments_are_datagrams() {
    for v6 in [false, true] {
        let (f, off) = superframe(v6, false, false, 4000, 0);
        let (r, segs) = segments(&f, &off);
        assert_eq!(r, Resolved::Segmented(3));
        let l4 = if v6 { 54 } else { 34 };
        let mut stream = Vec::new();
        for s in &segs {
            assert_eq!(
                u16::from_be_bytes([s[l4 + 4], s[l4 + 5]]) as usize,
                s.len() - l4
            );
            assert!(l4_verifies(s, 14, l4, v6, 17));
            stream.extend_from_slice(&s[l4 + 8..]);
        }
        assert_eq!(stream, f[l4 + 8..]);
    }
}

#[test]
fn a_superframe_of_one_segment_and_a_partial_checksum() {
    let (f, off) = superframe(false, true, false, 100, 0x18);
    let (r, segs) = segments(&f, &off);
    assert_eq!(r, Resolved::Segmented(1));
    assert!(l4_verifies(&segs[0], 14, 34, false, 6));
    // A partial checksum without GSO: the seed is the pseudo-header sum.
    let (mut f, mut off) = superframe(false, false, false, 100, 0);
    off.gso_type = GSO_NONE;
    let mut seed = Vec::new();
    seed.extend_from_slice(&f[26..34]);
    seed.extend_from_slice(&[0, 17, 0, 108]);
    f[40..42].copy_from_slice(&ones_complement_sum(&seed).to_be_bytes());
    let (r, out) = segments(&f, &off);
    assert_eq!(r, Resolved::Checksummed);
    assert!(l4_verifies(&out[0], 14, 34, false, 17));
    let (r, out) = segments(&f, &Offload::NONE);
    assert_eq!((r, out[0].as_slice()), (Resolved::AsIs, f.as_slice()));
}

#[test]
fn malformed_metadata_is_refused() {
    let (f, good) = superframe(false, true, false, 3000, 0x10);
    let bad = |m: &dyn Fn(&mut Offload)| {
        let mut o = good;
        m(&mut o);
        check(&o, &f)
    };
    assert_eq!(bad(&|o| o.gso_size = 0), Err(Bad::GsoSize));
    assert_eq!(bad(&|o| o.gso_type = GSO_UDP), Err(Bad::GsoType));
    assert_eq!(bad(&|o| o.gso_type = 9), Err(Bad::GsoType));
    assert_eq!(bad(&|o| o.gso_type |= GSO_ECN), Err(Bad::GsoType));
    assert_eq!(bad(&|o| o.gso_type = GSO_TCPV6), Err(Bad::Mismatch));
    assert_eq!(bad(&|o| o.gso_type = GSO_UDP_L4), Err(Bad::Mismatch));
    assert_eq!(bad(&|o| o.hdr_len = 60_000), Err(Bad::HdrLen));
    assert_eq!(bad(&|o| o.csum_start = 60_000), Err(Bad::Csum));
    assert_eq!(bad(&|o| o.csum_offset = 6), Err(Bad::Csum));
    assert_eq!(bad(&|o| o.flags = 0), Err(Bad::Csum));
    let mut o = good;
    o.gso_type = GSO_NONE;
    o.csum_start = 3060;
    assert_eq!(
        check(&o, &f),
        Err(Bad::Csum),
        "partial checksum past the end"
    );
    // Truncated and BIG TCP (tot_len 0) superframes.
    assert_eq!(check(&good, &f[..40]), Err(Bad::HdrLen));
    let mut big = f.clone();
    big[16..18].fill(0);
    assert_eq!(check(&good, &big), Err(Bad::Mismatch));
    let mut scratch = [0u8; 64];
    assert_eq!(
        resolve(&f, &good, &mut scratch, |_| unreachable!()),
        Resolved::Refused(Bad::GsoSize),
        "a scratch smaller than a segment"
    );
    // Nothing panics on any header for any prefix of the frame.
    for cut in 0..f.len().min(120) {
        for t in [GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4] {
            let mut o = good;
            o.gso_type = t;
            let _ = resolve(&f[..cut], &o, &mut [0u8; 4096], |_| {});
        }
    }
}

#[test]
fn vnet_bytes_round_trip() {
    let (_, off) = superframe(true, true, false, 10, 0);
    assert_eq!(Offload::from_vnet(&off.to_vnet()), off);
    assert!(Offload::from_vnet(&[0; VNET_HDR_LEN]).is_none());
}

/// Random headers on mutated superframes (a fixed xorshift seed, so it is the same every
/// run): never a panic; whatever [`check`] accepts, [`resolve`] handles, each segment at
/// most the headers plus `gso_size`, its IPv4 header checksum right.
#[test]
fn random_headers_and_frames_never_panic() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut scratch = vec![0u8; 65_536];
    let mut accepted = 0;
    for i in 0..4000 {
        let (v6, tcp) = (i % 2 == 0, i % 3 != 0);
        let (mut f, mut off) = superframe(v6, tcp, i % 5 == 0, (rnd() % 9000) as usize, 0x18);
        for _ in 0..(rnd() % 3) {
            let at = (rnd() as usize) % f.len();
            f[at] = rnd() as u8;
        }
        if rnd() % 4 == 0 {
            f.truncate((rnd() as usize) % (f.len() + 1));
        }
        match rnd() % 8 {
            0 => off.gso_type = rnd() as u8,
            1 => off.gso_size = rnd() as u16 % 3000,
            2 => off.csum_start = rnd() as u16 % 200,
            3 => off.csum_offset = rnd() as u16 % 40,
            4 => off.hdr_len = rnd() as u16,
            5 => off.flags = rnd() as u8,
            _ => {}
        }
        let ok = check(&off, &f).is_ok();
        let mut segs = 0;
        let r = resolve(&f, &off, &mut scratch, |s| {
            segs += 1;
            if off.is_gso() {
                assert!(s.len() <= f.len() && s.len() <= usize::from(off.gso_size) + 200);
            }
        });
        if ok {
            accepted += 1;
            assert!(!matches!(r, Resolved::Refused(_)), "{off:?}: {r:?}");
            assert!(segs >= 1);
        }
    }
    assert!(
        accepted > 500,
        "the mutations leave most frames valid: {accepted}"
    );
}
