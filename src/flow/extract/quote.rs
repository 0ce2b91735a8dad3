//! The packet quoted in an ICMP or ICMPv6 error (RFC 792, RFC 4443 §2.4): its key as its
//! original sender sent it, for [`PacketMeta::icmp_inner`](crate::flow::PacketMeta).
//!
//! Owns: how much of a quote is trusted (the header, not the total length; the first 8
//! bytes of the L4 header). May not touch: the outer packet's metadata.

use crate::flow::{proto, FlowKey, FAMILY_V4, FAMILY_V6};
use crate::wire::{icmp, icmpv6, ipv4, ipv6, ports};

/// Ports (or ICMP type/code/id) of a quoted packet's L4 header, which only needs its first
/// 8 bytes (RFC 792). `None` when the quote is too short for what the protocol needs.
#[inline]
fn quoted_l4(key: &mut FlowKey, l4: &[u8]) -> Option<()> {
    match key.proto {
        proto::TCP | proto::UDP | proto::UDPLITE | proto::SCTP | proto::DCCP => {
            let p = ports::Packet::new_checked(l4).ok()?;
            key.sport = p.src_port();
            key.dport = p.dst_port();
        }
        proto::ICMP if key.family == FAMILY_V4 => {
            let ic = icmp::Packet::new_checked(l4).ok()?;
            key.dport = (ic.msg_type() as u16) << 8 | ic.msg_code() as u16;
            if icmp::is_query(ic.msg_type()) {
                key.sport = ic.ident();
            }
        }
        proto::ICMPV6 if key.family == FAMILY_V6 => {
            let ic = icmpv6::Packet::new_checked(l4).ok()?;
            key.dport = (ic.msg_type() as u16) << 8 | ic.msg_code() as u16;
            if icmpv6::is_echo(ic.msg_type()) {
                key.sport = ic.ident();
            }
        }
        _ => {}
    }
    Some(())
}

/// The key of an IPv4 packet quoted in an ICMP error, as its sender sent it. The quoted
/// total length describes the original packet, not the quote, so only the header is
/// checked; options are skipped, not validated (the router that quoted them already
/// forwarded the packet). Default (family 0) when unparseable.
#[inline]
pub(super) fn quoted_ipv4(quote: &[u8]) -> FlowKey {
    let ip = ipv4::Packet::new_unchecked(quote);
    if ip.check_header().is_err() {
        return FlowKey::default();
    }
    let mut key = FlowKey {
        src: FlowKey::map_v4(ip.src_addr()),
        dst: FlowKey::map_v4(ip.dst_addr()),
        proto: ip.protocol(),
        family: FAMILY_V4,
        ..FlowKey::default()
    };
    if ip.frag_offset() == 0 && quoted_l4(&mut key, ip.rest()).is_none() {
        return FlowKey::default();
    }
    key
}

/// The key of an IPv6 packet quoted in an ICMPv6 error (see [`quoted_ipv4`]); the
/// extension header chain is walked with the same bounds as for outer packets.
#[inline]
pub(super) fn quoted_ipv6(quote: &[u8]) -> FlowKey {
    let ip = ipv6::Packet::new_unchecked(quote);
    if ip.check_header().is_err() {
        return FlowKey::default();
    }
    let rest = ip.rest();
    let Ok(chain) = ipv6::walk_ext_headers(ip.next_header(), rest) else {
        return FlowKey::default();
    };
    let mut key = FlowKey {
        src: ip.src_addr(),
        dst: ip.dst_addr(),
        proto: chain.upper,
        family: FAMILY_V6,
        ..FlowKey::default()
    };
    if !chain.is_later_fragment()
        && chain.upper != proto::IPV6_NONXT
        && quoted_l4(&mut key, rest.get(chain.offset..).unwrap_or(&[])).is_none()
    {
        return FlowKey::default();
    }
    key
}
