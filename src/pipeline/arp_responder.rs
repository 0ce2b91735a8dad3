//! The ARP responder for remote ports (#19; Neutron l2population's `arp_responder = True`).
//!
//! # What it does
//! An instance asks for the MAC of an IPv4 address of a port on another host. Without a
//! responder the request is flooded to every host of the network (head-end replication)
//! and the remote instance answers through the tunnel. With one, as Neutron's Open vSwitch
//! agent does in its `ARP_RESPONDER` table of `br-tun`, this host knows the answer from
//! the model (the remote port's MAC and fixed IPs came through the store) and answers
//! itself: a generated ARP reply goes back out of the ingress port only, and the request is
//! not sent to the tunnels. The local ports of the network still get the broadcast request
//! (in Neutron `br-int` floods it to them before `br-tun` answers): only the copies to
//! tunnel ports are replaced by the reply.
//!
//! # The table ([`ArpTable`], part of the compiled [`Dataplane`])
//! Per network, IPv4 address → (MAC, port) of the **remote** ports whose host has a tunnel
//! port on that network (a host with a VTEP). What goes in follows Neutron's l2population
//! (`_get_port_fdb_entries`: one `PortInfo(mac_address, ip_address)` per fixed IP):
//! - the port's **fixed IPv4 addresses** with the port's MAC;
//! - **not** its allowed-address-pair addresses (l2population never publishes them: an
//!   address pair is a VIP that moves between ports, VRRP style; a request for one is
//!   flooded to the hosts, and whichever instance holds it now answers);
//! - **not** IPv6 (the OVS agent installs responder entries for IPv4 only): neighbour
//!   solicitations keep being flooded to the tunnels;
//! - not a port of a host without a tunnel (an unknown host, or one whose lease is gone):
//!   its frames cannot go anywhere, and a reply would promise that they can;
//! - an address two ports of the network claim (two remote ports, or a remote port and a
//!   fixed IP of a local port) is left out: the request is flooded as before.
//!
//! # Which requests are answered ([`ArpTable::answer`])
//! An Ethernet/IPv4 ARP request (op 1) without a VLAN tag, from a local port (not a tunnel
//! port: the sending host answers its own instances), whose sender hardware address is the
//! frame's source MAC, that is not a gratuitous announcement (sender address = target
//! address), sent to the broadcast MAC or to the MAC the table gives for the target, for
//! an address in the table of the sender's network. It is answered only after the
//! sender's port security (`arp-denied` / `spoofed-mac` drop it as before) and egress
//! (ARP is never judged by security groups). Neutron matches broadcast requests only
//! (`eth_dst=ff:ff:ff:ff:ff:ff`, no `arp_op` match: a REVISIT in `br_tun.py`); this
//! responder also answers a unicast request to the remote MAC (the kernel's reachability
//! probe of a cached entry): the same answer, without a round trip through the tunnel;
//! and it never answers an ARP reply or a RARP frame.
//!
//! # The reply
//! Ethernet: destination = the requester's MAC, source = the remote port's MAC, ethertype
//! ARP; ARP reply (op 2): sender = the remote port's MAC and address, target = the
//! requester's hardware and protocol address (also for an RFC 5227 probe from 0.0.0.0,
//! as the remote kernel would answer); padded to the 60-byte Ethernet minimum. The
//! pipeline does not build it: the [`Verdict`] carries an [`ArpReply`] (four addresses,
//! `Copy`) and whoever transmits writes it into its own scratch with
//! [`ArpReply::write`] (the live worker into a stack buffer, replay into its output
//! capture). Nothing is allocated per frame. Counted per port as
//! [`PortCounters::arp_replies`] (and as a frame transmitted to the requester).
//!
//! Owns: the responder's table and its compile step, the decision whether a request is
//! answered, the reply's bytes. May not touch: port security, L2 forwarding and ingress
//! (`security`, `judge`: `judge` calls [`ArpTable::answer`] after egress and drops the
//! tunnel ports from the frame's destinations when it answers), ports or any backend.
//! Uses `policy` (the model), `flow`'s [`PacketMeta`] and `wire`'s [`Mac`] and ARP
//! constants.

use super::*;
use crate::wire::arp::{HTYPE_ETHERNET, OP_REPLY, OP_REQUEST};

/// Length of a generated reply: 14 (Ethernet) + 28 (ARP), padded to the Ethernet minimum.
pub const ARP_REPLY_LEN: usize = 60;

/// One answerable address: the remote port that has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    mac: Mac,
    /// Dataplane index of the remote port.
    port: u16,
}

/// Per network, the IPv4 addresses of remote ports the responder answers for (see the
/// module doc for what goes in). Immutable, part of a [`Dataplane`].
#[derive(Clone, Debug, Default)]
pub struct ArpTable {
    /// (network index, IPv4 address) → entry; `None`: claimed twice, not answered.
    entries: HashMap<(u16, [u8; 4]), Option<Entry>>,
}

/// A reply the responder decided on, carried in the [`Verdict`]: enough to write the
/// frame ([`ArpReply::write`]) where it is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArpReply {
    /// The remote port's MAC and address (the answer).
    pub mac: Mac,
    pub ip: [u8; 4],
    /// The requester's hardware and protocol address (the reply's target).
    pub to_mac: Mac,
    pub to_ip: [u8; 4],
    /// Dataplane index of the remote port that has the address.
    pub port: u16,
}

impl ArpReply {
    /// Write the reply frame into `buf` (at least [`ARP_REPLY_LEN`] bytes; `None` if
    /// shorter) and return its length.
    pub fn write(&self, buf: &mut [u8]) -> Option<usize> {
        let f = buf.get_mut(..ARP_REPLY_LEN)?;
        f.fill(0);
        f[0..6].copy_from_slice(&self.to_mac.0);
        f[6..12].copy_from_slice(&self.mac.0);
        f[12..14].copy_from_slice(&flow::ethertype::ARP.to_be_bytes());
        let a = &mut f[14..42];
        a[0..2].copy_from_slice(&HTYPE_ETHERNET.to_be_bytes());
        a[2..4].copy_from_slice(&flow::ethertype::IPV4.to_be_bytes());
        a[4] = 6;
        a[5] = 4;
        a[6..8].copy_from_slice(&OP_REPLY.to_be_bytes());
        a[8..14].copy_from_slice(&self.mac.0);
        a[14..18].copy_from_slice(&self.ip);
        a[18..24].copy_from_slice(&self.to_mac.0);
        a[24..28].copy_from_slice(&self.to_ip);
        Some(ARP_REPLY_LEN)
    }

    /// The reply as a new frame (tests, replay's outputs; not the switching path).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0; ARP_REPLY_LEN];
        self.write(&mut v);
        v
    }
}

impl ArpTable {
    /// The table of a compiled port table: `ports` are the dataplane's entries (the
    /// model's ports at their model index), `tunnel_of(i)` the port index remote port
    /// `i`'s MACs lead to (itself when its host has no tunnel port), `model` the model
    /// the ports were compiled from.
    pub(super) fn compile(
        model: &Model,
        ports: &[PortEntry],
        tunnel_of: impl Fn(usize) -> u16,
    ) -> ArpTable {
        let mut entries: HashMap<(u16, [u8; 4]), Option<Entry>> = HashMap::new();
        // Remote ports with a tunnel: their fixed IPv4 addresses (l2population's entries).
        for (i, (p, m)) in ports.iter().zip(&model.ports).enumerate() {
            if !p.remote || tunnel_of(i) as usize == i {
                continue;
            }
            for ip in &m.fixed_ips {
                let IpAddr::V4(v4) = ip else { continue };
                let e = Entry {
                    mac: p.mac,
                    port: i as u16,
                };
                entries
                    .entry((p.network, v4.octets()))
                    .and_modify(|old| {
                        if *old != Some(e) {
                            *old = None;
                        }
                    })
                    .or_insert(Some(e));
            }
        }
        // An address a local port has too is ambiguous: not answered.
        for (p, m) in ports.iter().zip(&model.ports).filter(|(p, _)| !p.remote) {
            for ip in &m.fixed_ips {
                if let IpAddr::V4(v4) = ip {
                    if let Some(e) = entries.get_mut(&(p.network, v4.octets())) {
                        *e = None;
                    }
                }
            }
        }
        ArpTable { entries }
    }

    /// No address to answer for (no overlay, or no remote port with a tunnel).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Addresses answered for (ambiguous ones left out).
    pub fn len(&self) -> usize {
        self.entries.values().filter(|e| e.is_some()).count()
    }

    /// The (MAC, remote port index) answered for `ip` in network `network`.
    pub fn lookup(&self, network: u16, ip: [u8; 4]) -> Option<(Mac, u16)> {
        let e = (*self.entries.get(&(network, ip))?)?;
        Some((e.mac, e.port))
    }

    /// The reply to frame `m` from port `p`, if the responder answers it (see the module
    /// doc). Call after port security and egress passed.
    #[inline]
    pub(super) fn answer(&self, p: &PortEntry, m: &PacketMeta) -> Option<ArpReply> {
        if self.entries.is_empty() || m.l3 != L3Kind::Arp {
            return None;
        }
        self.answer_arp(p, m)
    }

    #[cold]
    #[inline(never)]
    fn answer_arp(&self, p: &PortEntry, m: &PacketMeta) -> Option<ArpReply> {
        let a = &m.arp;
        if m.ethertype != flow::ethertype::ARP
            || a.op != OP_REQUEST
            || m.vlan_count != 0
            || p.tunnel.is_some()
            || p.remote
            || a.sha != m.eth_src
            || a.spa == a.tpa
        {
            return None;
        }
        let (mac, port) = self.lookup(p.network, a.tpa)?;
        if !(m.eth_dst == Mac([0xff; 6]) || m.eth_dst == mac) {
            return None;
        }
        Some(ArpReply {
            mac,
            ip: a.tpa,
            to_mac: a.sha,
            to_ip: a.spa,
            port,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_bytes_parse_back() {
        let r = ArpReply {
            mac: Mac([0xfa, 0x16, 0x3e, 0, 0, 2]),
            ip: [10, 0, 0, 2],
            to_mac: Mac([0xfa, 0x16, 0x3e, 0, 0, 1]),
            to_ip: [10, 0, 0, 1],
            port: 1,
        };
        let f = r.to_vec();
        assert_eq!(f.len(), ARP_REPLY_LEN);
        let m = flow::extract(&f).expect("the reply parses");
        assert_eq!(m.l3, L3Kind::Arp);
        assert_eq!((m.eth_dst, m.eth_src), (r.to_mac, r.mac));
        assert_eq!(m.arp.op, OP_REPLY);
        assert_eq!((m.arp.sha, m.arp.spa), (r.mac, r.ip));
        assert_eq!((m.arp.tha, m.arp.tpa), (r.to_mac, r.to_ip));
        assert!(f[42..].iter().all(|b| *b == 0), "zero padding");
        assert_eq!(r.write(&mut [0u8; 59]), None, "too short a buffer");
    }
}
