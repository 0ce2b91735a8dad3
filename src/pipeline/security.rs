//! Port security.
//!
//! Owns: step 2, the checks of the sending port's own traffic (source MAC, ARP and IP
//! anti-spoofing against the port's allowed pairs, the ethertype allow-list, DHCP-server
//! and router-advertisement guards), and which traffic passes without security groups in
//! each direction ([`always_allowed_egress`], [`always_allowed_ingress`]: DHCP and
//! DHCPv6 between client and server, router and neighbour discovery, MLD). May not touch:
//! security-group rules or conntrack (`judge` and the classifier), mutable state (it reads
//! a [`PortEntry`] and the [`PacketMeta`], and answers a [`DropReason`]), or ports. Uses
//! `flow`'s metadata and `wire::icmpv6`'s message numbers.

use super::*;
use crate::wire::icmpv6::{self, msg};

/// Port security of the sending port (step 2). `Ok` = continue.
#[inline]
pub(super) fn port_security(
    dp: &Dataplane,
    p: &PortEntry,
    m: &PacketMeta,
) -> Result<(), DropReason> {
    if !p.owns_mac(&m.eth_src) {
        return Err(DropReason::SpoofedMac);
    }
    match m.l3 {
        L3Kind::Arp => {
            if m.ethertype == flow::ethertype::RARP {
                return Ok(());
            }
            let a = &m.arp;
            if a.sha != m.eth_src || !(a.op == 1 || a.op == 2) {
                return Err(DropReason::ArpDenied);
            }
            if !p.pair_allows(&m.eth_src, FAMILY_V4, &FlowKey::map_v4(a.spa)) {
                return Err(DropReason::ArpDenied);
            }
            Ok(())
        }
        L3Kind::Other => {
            if dp.permitted_ethertypes.contains(&m.ethertype) {
                Ok(())
            } else {
                Err(DropReason::EthertypeDenied)
            }
        }
        L3Kind::Ipv4 | L3Kind::Ipv6 => {
            let k = &m.key;
            let first = !m.frag.is_later_fragment();
            if !p.pair_allows(&m.eth_src, k.family, &k.src) {
                let dhcp_discover = k.family == FAMILY_V4
                    && v4_zero(k)
                    && first
                    && k.proto == proto::UDP
                    && k.sport == 68
                    && k.dport == 67;
                let dad = k.family == FAMILY_V6
                    && k.src == [0u8; 16]
                    && first
                    && k.proto == proto::ICMPV6
                    && matches!(
                        k.icmp_type(),
                        msg::NEIGHBOR_SOLICIT | msg::MLD_REPORT | msg::MLDV2_REPORT
                    )
                    && k.dst[0] == 0xff
                    && k.dst[1] == 0x02;
                if !(dhcp_discover || dad) {
                    return Err(DropReason::SpoofedIp);
                }
            }
            if first
                && k.proto == proto::UDP
                && ((k.family == FAMILY_V4 && k.sport == 67 && k.dport == 68)
                    || (k.family == FAMILY_V6 && k.sport == 547 && k.dport == 546))
            {
                return Err(DropReason::DhcpServer);
            }
            if first && k.family == FAMILY_V6 && k.proto == proto::ICMPV6 {
                match k.icmp_type() {
                    msg::ROUTER_ADVERT => return Err(DropReason::RouterAdvertisement),
                    msg::NEIGHBOR_ADVERT
                        if (!m.has_nd_target || !p.owns_ip(FAMILY_V6, &m.nd_target)) =>
                    {
                        return Err(DropReason::SpoofedIp);
                    }
                    _ => {}
                }
            }
            Ok(())
        }
    }
}

/// Egress traffic that passes without security groups (after anti-spoofing).
#[inline]
pub fn always_allowed_egress(m: &PacketMeta) -> bool {
    let k = &m.key;
    if m.frag.is_later_fragment() {
        return false;
    }
    match (k.family, k.proto) {
        (FAMILY_V4, proto::UDP) => k.sport == 68 && k.dport == 67,
        (FAMILY_V6, proto::UDP) => k.sport == 546 && k.dport == 547,
        (FAMILY_V6, proto::ICMPV6) => {
            let t = k.icmp_type();
            icmpv6::is_mld(t)
                || matches!(
                    t,
                    msg::ROUTER_SOLICIT | msg::NEIGHBOR_SOLICIT | msg::NEIGHBOR_ADVERT
                )
        }
        _ => false,
    }
}

/// Ingress traffic that passes without security groups.
#[inline]
pub fn always_allowed_ingress(m: &PacketMeta) -> bool {
    let k = &m.key;
    if m.frag.is_later_fragment() {
        return false;
    }
    match (k.family, k.proto) {
        (FAMILY_V4, proto::UDP) => k.sport == 67 && k.dport == 68,
        (FAMILY_V6, proto::UDP) => k.sport == 547 && k.dport == 546,
        (FAMILY_V6, proto::ICMPV6) => {
            let t = k.icmp_type();
            icmpv6::is_mld(t)
                || matches!(
                    t,
                    msg::ROUTER_SOLICIT
                        | msg::ROUTER_ADVERT
                        | msg::NEIGHBOR_SOLICIT
                        | msg::NEIGHBOR_ADVERT
                )
        }
        _ => false,
    }
}
