//! The kernel's IPv6 neighbour table of one netdev, read through rtnetlink (one
//! `RTM_GETNEIGH` dump), for the underlay's resolver ([`super::underlay`]): the next-hop
//! MAC of an IPv6 VTEP. IPv4 VTEPs are read from `/proc/net/arp`; IPv6 has no such file.
//!
//! Hand-written rather than a netlink crate (`netlink-packet-route` and its siblings): one
//! request of 28 bytes and the parse of two attributes (`NDA_DST`, `NDA_LLADDR`) of each
//! answer, on the resolver thread once a second, never the packet path; the crates add
//! several thousand lines of message types to the build for this.
//!
//! Owns: the netlink socket of one dump (opened and closed per call) and the parse of its
//! answer ([`parse_dump`], total over any bytes: a short or absurd message ends the parse,
//! it never panics). May not touch: the neighbour table itself (it only reads), the
//! underlay's state (the caller merges what it returns).

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::wire::Mac;

const RTM_NEWNEIGH: u16 = 28;
const RTM_GETNEIGH: u16 = 30;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const NDA_DST: u16 = 1;
const NDA_LLADDR: u16 = 2;
/// `NUD_VALID`: PERMANENT | NOARP | REACHABLE | PROBE | STALE | DELAY.
const NUD_VALID: u16 = 0x80 | 0x40 | 0x02 | 0x10 | 0x04 | 0x08;
/// `struct nlmsghdr` and `struct ndmsg`.
const NLMSG_HDR: usize = 16;
const NDMSG: usize = 12;

/// The valid IPv6 neighbour entries of interface `ifindex` (address → MAC).
pub fn ipv6_neighbours(ifindex: u32) -> io::Result<HashMap<IpAddr, Mac>> {
    // SAFETY: plain socket(2); the descriptor is owned at once.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let req = request(ifindex);
    // SAFETY: `req` is a valid buffer of its length; the kernel is the peer (no address).
    let n = unsafe { libc::send(fd.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut out = HashMap::new();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        // SAFETY: `buf` is writable for its length.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        match parse_dump(&buf[..n as usize], ifindex, &mut out) {
            Dump::More => {}
            Dump::Done => return Ok(out),
            Dump::Error(errno) => return Err(io::Error::from_raw_os_error(errno)),
        }
    }
}

/// The dump request: `nlmsghdr` + `ndmsg` for AF_INET6 (the kernel filters by family; the
/// interface is filtered in [`parse_dump`], which works without strict checking).
fn request(ifindex: u32) -> [u8; NLMSG_HDR + NDMSG] {
    let mut r = [0u8; NLMSG_HDR + NDMSG];
    r[0..4].copy_from_slice(&((NLMSG_HDR + NDMSG) as u32).to_ne_bytes());
    r[4..6].copy_from_slice(&RTM_GETNEIGH.to_ne_bytes());
    r[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    r[8..12].copy_from_slice(&1u32.to_ne_bytes());
    r[NLMSG_HDR] = libc::AF_INET6 as u8;
    r[NLMSG_HDR + 4..NLMSG_HDR + 8].copy_from_slice(&(ifindex as i32).to_ne_bytes());
    r
}

/// What one datagram of the dump said.
#[derive(Debug, PartialEq, Eq)]
pub enum Dump {
    /// Entries (maybe none); more datagrams follow.
    More,
    /// `NLMSG_DONE`: the dump is complete.
    Done,
    /// `NLMSG_ERROR` with this errno.
    Error(i32),
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Parse one datagram of a neighbour dump: the valid IPv6 entries of `ifindex` that carry
/// a 6-byte link-layer address go into `out`. Malformed messages end the datagram.
pub fn parse_dump(mut b: &[u8], ifindex: u32, out: &mut HashMap<IpAddr, Mac>) -> Dump {
    while b.len() >= NLMSG_HDR {
        let (Some(len), Some(ty)) = (u32_at(b, 0), u16_at(b, 4)) else {
            break;
        };
        let len = len as usize;
        if len < NLMSG_HDR || len > b.len() {
            break;
        }
        let msg = &b[..len];
        match ty {
            NLMSG_DONE => return Dump::Done,
            NLMSG_ERROR => {
                let errno = u32_at(msg, NLMSG_HDR).map_or(0, |e| e as i32);
                return Dump::Error(errno.checked_neg().unwrap_or(errno));
            }
            RTM_NEWNEIGH => neighbour(&msg[NLMSG_HDR..], ifindex, out),
            _ => {}
        }
        b = b.get(align4(len)..).unwrap_or(&[]);
    }
    Dump::More
}

/// One `ndmsg` and its attributes.
fn neighbour(m: &[u8], ifindex: u32, out: &mut HashMap<IpAddr, Mac>) {
    if m.len() < NDMSG || m[0] != libc::AF_INET6 as u8 {
        return;
    }
    let (Some(idx), Some(state)) = (u32_at(m, 4), u16_at(m, 8)) else {
        return;
    };
    if idx != ifindex || state & NUD_VALID == 0 {
        return;
    }
    let (mut dst, mut mac) = (None, None);
    let mut a = &m[NDMSG..];
    while a.len() >= 4 {
        let (Some(alen), Some(aty)) = (u16_at(a, 0), u16_at(a, 2)) else {
            break;
        };
        let alen = usize::from(alen);
        if alen < 4 || alen > a.len() {
            break;
        }
        let v = &a[4..alen];
        match aty {
            NDA_DST => {
                dst = <[u8; 16]>::try_from(v).ok().map(Ipv6Addr::from);
            }
            NDA_LLADDR => {
                mac = <[u8; 6]>::try_from(v).ok().map(Mac);
            }
            _ => {}
        }
        a = a.get(align4(alen)..).unwrap_or(&[]);
    }
    if let (Some(d), Some(m)) = (dst, mac) {
        out.insert(IpAddr::V6(d), m);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An `RTM_NEWNEIGH` message as the kernel sends it.
    fn entry(ifindex: u32, state: u16, dst: Ipv6Addr, mac: Option<[u8; 6]>) -> Vec<u8> {
        let mut attrs = Vec::new();
        attrs.extend_from_slice(&20u16.to_ne_bytes());
        attrs.extend_from_slice(&NDA_DST.to_ne_bytes());
        attrs.extend_from_slice(&dst.octets());
        if let Some(m) = mac {
            attrs.extend_from_slice(&10u16.to_ne_bytes());
            attrs.extend_from_slice(&NDA_LLADDR.to_ne_bytes());
            attrs.extend_from_slice(&m);
            attrs.extend_from_slice(&[0, 0]); // padding to 4
        }
        let len = NLMSG_HDR + NDMSG + attrs.len();
        let mut b = Vec::new();
        b.extend_from_slice(&(len as u32).to_ne_bytes());
        b.extend_from_slice(&RTM_NEWNEIGH.to_ne_bytes());
        b.extend_from_slice(&[0; 10]);
        b.push(libc::AF_INET6 as u8);
        b.extend_from_slice(&[0; 3]);
        b.extend_from_slice(&(ifindex as i32).to_ne_bytes());
        b.extend_from_slice(&state.to_ne_bytes());
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(&attrs);
        b
    }

    fn done() -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&20u32.to_ne_bytes());
        b.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
        b.extend_from_slice(&[0; 14]);
        b
    }

    #[test]
    fn keeps_valid_entries_of_the_interface() {
        let a: Ipv6Addr = "fd09::2".parse().unwrap();
        let b: Ipv6Addr = "fd09::3".parse().unwrap();
        let c: Ipv6Addr = "fd09::4".parse().unwrap();
        let d: Ipv6Addr = "fd09::5".parse().unwrap();
        let mut buf = entry(7, 0x02, a, Some([2, 0, 0, 0, 0, 2])); // reachable
        buf.extend(entry(7, 0x04, b, Some([2, 0, 0, 0, 0, 3]))); // stale: still valid
        buf.extend(entry(7, 0x20, c, Some([2, 0, 0, 0, 0, 4]))); // failed
        buf.extend(entry(8, 0x02, d, Some([2, 0, 0, 0, 0, 5]))); // another interface
        buf.extend(entry(7, 0x01, d, None)); // incomplete, no address
        let mut out = HashMap::new();
        assert_eq!(parse_dump(&buf, 7, &mut out), Dump::More);
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(out[&IpAddr::V6(a)], Mac([2, 0, 0, 0, 0, 2]));
        assert_eq!(out[&IpAddr::V6(b)], Mac([2, 0, 0, 0, 0, 3]));
        assert_eq!(parse_dump(&done(), 7, &mut out), Dump::Done);
    }

    #[test]
    fn errors_and_garbage_never_panic() {
        let mut err = done();
        err[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        err[16..20].copy_from_slice(&(-13i32).to_ne_bytes());
        let mut out = HashMap::new();
        assert_eq!(parse_dump(&err, 1, &mut out), Dump::Error(13));
        let good = entry(1, 0x80, "fd09::9".parse().unwrap(), Some([2; 6]));
        for cut in 0..good.len() {
            let _ = parse_dump(&good[..cut], 1, &mut out);
        }
        let mut x: u32 = 0x1234_5678;
        for _ in 0..2000 {
            let bytes: Vec<u8> = (0..(x % 97) as usize)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            let _ = parse_dump(&bytes, 1, &mut out);
        }
    }

    #[test]
    fn dumps_a_real_table() {
        // The round trip to the kernel completes; what loopback holds depends on the
        // machine (NOARP entries of local addresses), but only IPv6 entries come back.
        let out = ipv6_neighbours(1).expect("RTM_GETNEIGH dump");
        assert!(out.keys().all(IpAddr::is_ipv6), "{out:?}");
    }
}
