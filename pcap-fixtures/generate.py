#!/usr/bin/python3
"""Generate every sgswitch pcap fixture, deterministically.

Run with the system python (scapy comes from the `python3-scapy` Debian package):

    /usr/bin/python3 pcap-fixtures/generate.py          # (re)write every fixture
    /usr/bin/python3 pcap-fixtures/generate.py --check  # regenerate into a temp dir and
                                                        # compare byte for byte (CI)

Fixtures are never edited by hand. Each fixture is declared below as data: its config,
its ports and, for every frame, the frame itself *and the verdict the replay must print
for it* (see /work/pipeline-spec.md). The verdicts were derived by reasoning about the
spec and security-groups.md, not by running sgswitch.

Everything is deterministic: fixed timestamps (the first frame of every capture is at
1700000000.000000 s; later frames every 0.25 s unless a fixture says otherwise), fixed
addresses, fixed sequence numbers and ids, no randomness. The pcap / pcapng files are
written by this script itself (not by scapy's writers) so their bytes do not depend on
the scapy version; scapy only builds the frames.
"""

import json
import logging
import os
import shutil
import struct
import sys
import tempfile

logging.getLogger("scapy").setLevel(logging.ERROR)

from scapy.layers.l2 import Ether, ARP  # noqa: E402
from scapy.layers.inet import IP, TCP, UDP, ICMP  # noqa: E402
from scapy.layers.inet6 import (  # noqa: E402
    IPv6,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    RouterAlert,
    ICMPv6EchoRequest,
    ICMPv6EchoReply,
    ICMPv6ND_NS,
    ICMPv6ND_NA,
    ICMPv6ND_RS,
    ICMPv6ND_RA,
    ICMPv6NDOptSrcLLAddr,
    ICMPv6NDOptDstLLAddr,
    ICMPv6NDOptPrefixInfo,
    ICMPv6MLQuery,
    ICMPv6MLReport,
    ICMPv6MLReport2,
    ICMPv6MLDMultAddrRec,
    ICMPv6DestUnreach,
)
from scapy.layers.dhcp import BOOTP, DHCP  # noqa: E402
from scapy.layers.dhcp6 import DHCP6_Solicit, DHCP6_Reply  # noqa: E402
from scapy.layers.sctp import SCTP, SCTPChunkInit  # noqa: E402
from scapy.packet import Raw  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
T0_US = 1_700_000_000_000_000  # timestamp of every capture's first frame, microseconds
STEP_US = 250_000  # default spacing between frames
BCAST = "ff:ff:ff:ff:ff:ff"


# --------------------------------------------------------------------------------------
# Ports and config
# --------------------------------------------------------------------------------------


def mac_of(n):
    return "fa:16:3e:00:00:%02x" % n


def eui64_lla(mac):
    b = [int(x, 16) for x in mac.split(":")]
    b[0] ^= 0x02
    words = [(b[0] << 8) | b[1], (b[2] << 8) | 0xFF, 0xFE00 | b[3], (b[4] << 8) | b[5]]
    return "fe80::" + ":".join("%x" % w for w in words)


def mcast_mac6(ip6):
    """33:33 + low 32 bits of an IPv6 multicast address."""
    from ipaddress import IPv6Address

    low = IPv6Address(ip6).packed[12:]
    return "33:33:" + ":".join("%02x" % x for x in low)


def mcast_mac4(ip4):
    from ipaddress import IPv4Address

    p = IPv4Address(ip4).packed
    return "01:00:5e:%02x:%02x:%02x" % (p[1] & 0x7F, p[2], p[3])


class Port:
    """A switch port of a fixture. `n` picks the default MAC (fa:16:3e:00:00:n) and
    addresses (10.0.0.n, fd00:1::n in hex) unless given."""

    def __init__(
        self,
        name,
        n,
        network="net1",
        groups="default",
        psec=True,
        aap=(),
        ip4=None,
        ip6=None,
        mac=None,
        no_ips=False,
    ):
        self.name = name
        self.network = network
        self.mac = mac or mac_of(n)
        self.ip4 = ip4 if ip4 is not None else ("10.0.0.%d" % n)
        self.ip6 = ip6 if ip6 is not None else ("fd00:1::%x" % n)
        self.lla = eui64_lla(self.mac)
        if not psec and groups == "default":
            groups = []  # Neutron: no groups on a port without port security
        self.groups = groups  # "default" = key omitted; else a list
        self.psec = psec
        self.aap = list(aap)  # [(ip_address, mac or None)]
        self.no_ips = no_ips

    def toml(self):
        out = ["[[ports]]", 'name = "%s"' % self.name]
        if self.network != "default":
            out.append('network = "%s"' % self.network)
        out.append('mac = "%s"' % self.mac)
        ips = [] if self.no_ips else [x for x in (self.ip4, self.ip6) if x]
        out.append("fixed_ips = [%s]" % ", ".join('"%s"' % x for x in ips))
        if self.groups != "default":
            out.append("security_groups = [%s]" % ", ".join('"%s"' % g for g in self.groups))
        if not self.psec:
            out.append("port_security = false")
        if self.aap:
            items = []
            for ip, mac in self.aap:
                if mac:
                    items.append('{ ip_address = "%s", mac_address = "%s" }' % (ip, mac))
                else:
                    items.append('{ ip_address = "%s" }' % ip)
            out.append("allowed_address_pairs = [%s]" % ", ".join(items))
        return "\n".join(out) + "\n"


def config_text(header, groups_toml, ports, extra=""):
    parts = ["# " + line if line else "#" for line in header.strip().splitlines()]
    parts = ["# Generated by pcap-fixtures/generate.py -- do not edit.", *parts, ""]
    if groups_toml.strip():
        parts.append(groups_toml.strip() + "\n")
    for p in ports:
        parts.append(p.toml())
    if extra.strip():
        parts.append(extra.strip() + "\n")
    return "\n".join(parts)


# --------------------------------------------------------------------------------------
# Frame builders
# --------------------------------------------------------------------------------------


def e(src, dst_mac, smac=None, etype=None):
    kw = {"src": smac or src.mac, "dst": dst_mac}
    if etype is not None:
        kw["type"] = etype
    return Ether(**kw)


def v4(src, dst, l4, sip=None, dip=None, smac=None, dmac=None, **ipkw):
    """Ether/IPv4 frame from port `src` to port `dst` (or explicit addresses)."""
    return e(src, dmac or dst.mac, smac) / IP(src=sip or src.ip4, dst=dip or dst.ip4, **ipkw) / l4


def v6(src, dst, l4, sip=None, dip=None, smac=None, dmac=None, **ipkw):
    ipkw.setdefault("hlim", 64)
    return e(src, dmac or dst.mac, smac) / IPv6(src=sip or src.ip6, dst=dip or dst.ip6, **ipkw) / l4


def tcp(sport, dport, flags, seq=1000, ack=0, data=b""):
    t = TCP(sport=sport, dport=dport, flags=flags, seq=seq, ack=ack, window=64240)
    return t / Raw(data) if data else t


def udp(sport, dport, data=b"x" * 8):
    return UDP(sport=sport, dport=dport) / Raw(data)


def echo4(ident, seq=1, code=0, typ=8):
    return ICMP(type=typ, code=code, id=ident, seq=seq) / Raw(b"ping-data")


def icmp_ts(ident, code=0):
    # Timestamp request; the timestamps are pinned (scapy defaults them to the clock).
    return ICMP(type=13, code=code, id=ident, seq=1, ts_ori=0, ts_rx=0, ts_tx=0)


def raw_l4(header, data=b"payload!"):
    return Raw(header + data)


def dccp(sport, dport):
    # Generic DCCP header with extended sequence numbers (X=1), type Request (0).
    # Data offset 5 words = 20 bytes incl. 4-byte service code. Checksum left 0.
    hdr = struct.pack("!HHBBH", sport, dport, 5, 0, 0)
    hdr += bytes([(0 << 1) | 1, 0]) + b"\x00\x00\x00\x01" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x2a"
    # (type/X byte, reserved, 48-bit seq split 2+4 bytes ... padded to 20 bytes)
    return Raw(hdr[:20])


def udplite(sport, dport, data=b"udplite!"):
    # UDP-Lite: coverage 8 (header only); checksum left 0 (not validated by the switch).
    return Raw(struct.pack("!HHHH", sport, dport, 8, 0) + data)


class Conn:
    """A TCP conversation client->server that keeps sequence numbers consistent."""

    def __init__(self, cli, srv, cport, sport, v6only=False, cip=None, sip=None, cmac=None, smac=None):
        self.cli, self.srv, self.cport, self.sport = cli, srv, cport, sport
        self.v6 = v6only
        self.cip, self.sip = cip, sip
        self.cmac, self.smac = cmac, smac
        self.cseq, self.sseq = 1000, 5000

    def _seg(self, frm_cli, flags, data):
        if frm_cli:
            seq, ack = self.cseq, self.sseq
        else:
            seq, ack = self.sseq, self.cseq
        seg = tcp(
            self.cport if frm_cli else self.sport,
            self.sport if frm_cli else self.cport,
            flags,
            seq=seq,
            ack=ack if "A" in flags else 0,
            data=data,
        )
        adv = len(data) + (1 if ("S" in flags or "F" in flags) else 0)
        if frm_cli:
            self.cseq += adv
        else:
            self.sseq += adv
        build = v6 if self.v6 else v4
        if frm_cli:
            return build(self.cli, self.srv, seg, sip=self.cip, dip=self.sip, smac=self.cmac, dmac=self.smac)
        return build(self.srv, self.cli, seg, sip=self.sip, dip=self.cip, smac=self.smac, dmac=self.cmac)

    def c(self, flags, data=b""):
        return self._seg(True, flags, data)

    def s(self, flags, data=b""):
        return self._seg(False, flags, data)


def frag4(src, dst, l4pkt, ident, chunk, order=None, sip=None, dip=None, dmac=None):
    """Fragment an IPv4 datagram (payload `l4pkt`, e.g. UDP()/Raw()). Returns the list of
    fragment frames in offset order (callers reorder). `chunk` is a multiple of 8."""
    whole = IP(src=sip or src.ip4, dst=dip or dst.ip4, id=ident) / l4pkt
    whole = IP(bytes(whole))  # computes checksums / lengths
    proto = whole.proto
    payload = bytes(whole.payload)
    frags = []
    off = 0
    while off < len(payload):
        part = payload[off : off + chunk]
        more = off + chunk < len(payload)
        ip = IP(src=whole.src, dst=whole.dst, id=ident, proto=proto, flags="MF" if more else 0, frag=off // 8)
        frags.append(e(src, dmac or dst.mac) / ip / Raw(part))
        off += chunk
    return frags


def frag6(src, dst, l4pkt, ident, chunk, sip=None, dip=None, dmac=None):
    whole = IPv6(src=sip or src.ip6, dst=dip or dst.ip6, hlim=64) / l4pkt
    whole = IPv6(bytes(whole))
    nh = whole.nh
    payload = bytes(whole.payload)
    frags = []
    off = 0
    while off < len(payload):
        part = payload[off : off + chunk]
        more = off + chunk < len(payload)
        ip = IPv6(src=whole.src, dst=whole.dst, hlim=64) / IPv6ExtHdrFragment(
            nh=nh, offset=off // 8, m=1 if more else 0, id=ident
        )
        frags.append(e(src, dmac or dst.mac) / ip / Raw(part))
        off += chunk
    return frags


# --------------------------------------------------------------------------------------
# Fixture container
# --------------------------------------------------------------------------------------


class Fixture:
    def __init__(self, name, title, covers, ports, groups_toml="", extra_toml="", classic_in_port=None,
                 vnet=False):
        self.name = name
        # pcapng interfaces of link type 147 (LINKTYPE_VNET_HDR in sgswitch): each frame
        # behind a 10-byte little-endian virtio-net header (`frame(..., vnet=...)`).
        self.vnet = vnet
        self.title = title
        self.covers = covers
        self.ports = ports
        self.port_names = [p.name for p in ports]
        self.by_name = {p.name: p for p in ports}
        self.groups_toml = groups_toml
        self.extra_toml = extra_toml
        self.classic_in_port = classic_in_port  # write capture.pcap with --in-port
        self.frames = []  # (ts_us, in_port, bytes, expected dict)
        self.applies = []  # (seconds string, filename, text)
        self.next_us = T0_US
        self.notes = []

    # -- config files
    def config(self):
        return config_text(self.title, self.groups_toml, self.ports, self.extra_toml)

    def apply(self, seconds, filename, groups_toml=None, ports=None, extra_toml=None, note=""):
        """From `seconds` after the first frame on, the config is replaced by this one.
        The next frame is placed exactly at that instant (the boundary frame: the change
        applies before it)."""
        at_us = T0_US + int(round(seconds * 1_000_000))
        assert self.frames and self.frames[-1][0] < at_us, "apply-at must be after the previous frame"
        text = config_text(
            "%s -- config applied at %s s (%s)" % (self.title, seconds, note or filename),
            self.groups_toml if groups_toml is None else groups_toml,
            self.ports if ports is None else ports,
            self.extra_toml if extra_toml is None else extra_toml,
        )
        self.applies.append(("%g" % seconds, filename, text))
        self.next_us = at_us

    # -- frames
    def at(self, seconds):
        """Place the next frame at `seconds` after the first frame."""
        us = T0_US + int(round(seconds * 1_000_000))
        assert not self.frames or us >= self.frames[-1][0]
        self.next_us = us

    def frame(self, in_port, pkt, ok=(), drop=None, raw=None, vnet=None):
        """Add one frame arriving on `in_port` with its expected verdict: `ok` = ports it
        is delivered to, `drop` = {port: reason}. `vnet`: the virtio-net header bytes put
        before it in a `vnet` fixture (default: all zero)."""
        data = raw if raw is not None else bytes(pkt)
        hdr = b""
        if self.vnet:
            hdr = vnet if vnet is not None else bytes(10)
        else:
            assert vnet is None, "a virtio-net header in a fixture without them"
        drop = dict(drop or {})
        ok = list(ok)
        assert not (set(ok) & set(drop)), "port both delivered and dropped"
        if in_port in drop:
            assert not ok and len(drop) == 1, "a drop at the ingress port is the only outcome"
        order = {n: i for i, n in enumerate(self.port_names)}
        for p in list(ok) + list(drop):
            assert p in order or p == in_port, "%s: unknown port %s" % (self.name, p)
        key = lambda n: order.get(n, len(order))  # noqa: E731
        exp = {
            "frame": len(self.frames) + 1,
            "in_port": in_port,
            "delivered": sorted(ok, key=key),
            "dropped": [{"port": p, "reason": drop[p]} for p in sorted(drop, key=key)],
        }
        for d in exp["dropped"]:
            assert d["reason"] in REASONS, d["reason"]
        self._check_l2(in_port, data, ok, drop)
        self.frames.append((self.next_us, in_port, hdr + data, exp))
        self.next_us += STEP_US
        return exp["frame"]

    def _check_l2(self, in_port, data, ok, drop):
        """Guard against slips in the hand-written verdicts: unless the frame is dropped at
        its ingress port, the ports named in the verdict must be exactly the L2
        destinations (pipeline step 4: known MAC -> that port, else every other port of
        the network), tracking MACs learned from port_security=false ports."""
        if not hasattr(self, "learned"):
            self.learned = {}
        src = self.by_name.get(in_port)
        if src is None or len(data) < 14:
            return
        dst_mac = ":".join("%02x" % x for x in data[0:6])
        src_mac = ":".join("%02x" % x for x in data[6:12])
        if src.psec and drop.get(in_port) != "malformed":
            allowed = src_mac == src.mac or any(m == src_mac for _, m in src.aap)
            assert allowed == (drop.get(in_port) != "spoofed-mac"), "%s frame %d: source MAC check" % (
                self.name, len(self.frames) + 1)
        if in_port in drop:
            return
        net = src.network
        if not src.psec:
            self.learned[(net, src_mac)] = in_port
        owner = None
        for p in self.ports:
            if p.network == net and (p.mac == dst_mac or any(m == dst_mac for _, m in p.aap)):
                owner = p.name
        owner = owner or self.learned.get((net, dst_mac))
        if owner is not None and not (data[0] & 1):
            want = {owner}
        else:
            want = {p.name for p in self.ports if p.network == net and p.name != in_port}
        got = set(ok) | set(drop)
        assert got == want, "%s frame %d: verdict names %s, L2 destinations are %s" % (
            self.name, len(self.frames) + 1, sorted(got), sorted(want))
        for p in drop:
            if drop[p] == "dst-mac-mismatch":
                q = self.by_name[p]
                assert q.psec and q.mac != dst_mac and not (data[0] & 1)

    def note(self, text):
        self.notes.append(text)

    # -- output
    def args(self):
        out = []
        if self.classic_in_port:
            out.append("--in-port %s" % self.classic_in_port)
        for secs, fname, _ in self.applies:
            out.append("--apply-at %s=%s" % (secs, fname))
        return out

    def write(self, root):
        d = os.path.join(root, self.name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "config.toml"), "w") as f:
            f.write(self.config())
        for _, fname, text in self.applies:
            with open(os.path.join(d, fname), "w") as f:
                f.write(text)
        with open(os.path.join(d, "args"), "w") as f:
            f.write("# Extra arguments for `sgswitch replay` (generated; one or more per line).\n")
            for line in self.args():
                f.write(line + "\n")
        if self.classic_in_port:
            assert all(fr[1] == self.classic_in_port for fr in self.frames)
            with open(os.path.join(d, "capture.pcap"), "wb") as f:
                f.write(pcap_bytes(self.frames))
        else:
            with open(os.path.join(d, "capture.pcapng"), "wb") as f:
                linktype = 147 if self.vnet else 1
                f.write(pcapng_bytes(self.frames, self.interface_order(), linktype))
        with open(os.path.join(d, "expected.jsonl"), "w") as f:
            for fr in self.frames:
                f.write(json.dumps(fr[3], separators=(",", ":")) + "\n")

    def interface_order(self):
        seen = {fr[1] for fr in self.frames}
        names = [n for n in self.port_names if n in seen]
        names += sorted(seen - set(names))  # ports not in the config (unknown-port)
        return names


REASONS = set(
    """malformed spoofed-mac spoofed-ip arp-denied dhcp-server router-advertisement
    ethertype-denied egress-denied ingress-denied invalid-state connection-cut
    conntrack-full dst-mac-mismatch fragment-denied fragment-overflow fragment-overlap
    fragment-duplicate fragment-tiny unknown-port no-destination hairpin bad-offload""".split()
)


# --------------------------------------------------------------------------------------
# pcap / pcapng writers (little endian, linktype Ethernet). Classic pcap: microsecond
# timestamps. pcapng: nanosecond timestamps with if_tsresol = 9 on every interface, so
# readers that honour if_tsresol and readers that assume nanoseconds (the pcap-file 2.0
# crate ignores if_tsresol) read the same times.
# --------------------------------------------------------------------------------------


def pcap_bytes(frames):
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for ts, _, data, _ in frames:
        out.append(struct.pack("<IIII", ts // 1_000_000, ts % 1_000_000, len(data), len(data)))
        out.append(data)
    return b"".join(out)


def _pad4(b):
    return b + b"\x00" * ((4 - len(b) % 4) % 4)


def _block(btype, body):
    total = 12 + len(body)
    return struct.pack("<II", btype, total) + body + struct.pack("<I", total)


def pcapng_bytes(frames, ifnames, linktype=1):
    out = [_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))]
    idx = {}
    for i, name in enumerate(ifnames):
        nb = name.encode()
        opts = struct.pack("<HH", 2, len(nb)) + _pad4(nb)  # if_name
        opts += struct.pack("<HH", 9, 1) + _pad4(b"\x09")  # if_tsresol: 10^-9 s
        opts += struct.pack("<HH", 0, 0)  # opt_endofopt
        out.append(_block(0x00000001, struct.pack("<HHI", linktype, 0, 0) + opts))
        idx[name] = i
    for ts_us, port, data, _ in frames:
        ts = ts_us * 1000  # nanoseconds, see if_tsresol above
        body = struct.pack("<IIIII", idx[port], ts >> 32, ts & 0xFFFFFFFF, len(data), len(data))
        out.append(_block(0x00000006, body + _pad4(data)))
    return b"".join(out)


# --------------------------------------------------------------------------------------
# Shared group snippets
# --------------------------------------------------------------------------------------

OPEN = """
[[security_groups]]
name = "open"
rules = [ { direction = "egress", ethertype = "IPv4" },
          { direction = "egress", ethertype = "IPv6" },
          { direction = "ingress", ethertype = "IPv4" },
          { direction = "ingress", ethertype = "IPv6" } ]
"""

CLIENT = """
[[security_groups]]
name = "client"          # no `rules` key: the two allow-all egress rules only
"""

FRAG_GROUPS = """
[[security_groups]]
name = "udp-out"
rules = [ { direction = "egress", protocol = "udp" },
          { direction = "egress", ethertype = "IPv6", protocol = "udp" } ]

[[security_groups]]
name = "udp-in"
rules = [ { direction = "ingress", protocol = "udp", port_range_min = 5000, port_range_max = 5000 },
          { direction = "ingress", ethertype = "IPv6", protocol = "udp", port_range_min = 5000, port_range_max = 5000 } ]
"""

FIXTURES = []


def fixture(fn):
    FIXTURES.append(fn)
    return fn


# ======================================================================================
# The fixtures. Each function returns a Fixture; each frame carries its expected verdict
# and a comment saying why.
# ======================================================================================


@fixture
def defaults():
    a = Port("vm-a", 10)
    b = Port("vm-b", 20)
    c = Port("vm-c", 30, groups=["other"])
    up = Port("uplink", 1, psec=False, ip4="10.0.0.1", ip6="fd00:1::1")
    fx = Fixture(
        "defaults",
        "Implicit default group: intra-group allowed, outside denied, egress any.",
        "Default security group (not declared: 4 template rules), a group declared without "
        "`rules` (2 egress rules), ports with `security_groups` omitted.",
        [a, b, c, up],
        groups_toml=CLIENT.replace("client", "other"),
    )
    # vm-a and vm-b are in `default`; its ingress rules admit sources in `default`.
    ab = Conn(a, b, 40000, 22)
    fx.frame("vm-a", ab.c("S"), ok=["vm-b"])  # egress any; ingress from remote_group default
    fx.frame("vm-b", ab.s("SA"), ok=["vm-a"])  # reply, tracked in both zones
    fx.frame("vm-a", ab.c("A"), ok=["vm-b"])
    # vm-c (group `other`) is not a member of `default`.
    fx.frame("vm-c", Conn(c, a, 40001, 22).c("S"), drop={"vm-a": "ingress-denied"})
    # vm-a -> vm-c: vm-c's group has no ingress rule.
    fx.frame("vm-a", Conn(a, c, 40002, 22).c("S"), drop={"vm-c": "ingress-denied"})
    # IPv6 intra-group: the IPv6 ingress template rule with remote_group default.
    fx.frame("vm-a", v6(a, b, udp(40003, 5000)), ok=["vm-b"])
    # IPv4 rule never matches IPv6 and vice versa: vm-c over IPv6 is also outside.
    fx.frame("vm-c", v6(c, b, udp(40004, 5000)), drop={"vm-b": "ingress-denied"})
    # Egress any, to the outside via the uplink (psec=false: delivered unchecked).
    out = Conn(a, up, 40005, 443, sip=None, cip=None)
    out.sip = "203.0.113.5"
    fx.frame("vm-a", out.c("S"), ok=["uplink"])
    # Unsolicited connection from outside: not a member of default.
    fx.frame("uplink", v4(up, a, tcp(50000, 22, "S"), sip="203.0.113.5"), drop={"vm-a": "ingress-denied"})
    # The reply to vm-a's own connection is tracked.
    fx.frame("uplink", out.s("SA"), ok=["vm-a"])
    fx.frame("vm-a", out.c("A"), ok=["uplink"])
    # ICMP: any protocol within the group, none from outside it.
    fx.frame("vm-b", v4(b, a, echo4(7)), ok=["vm-a"])
    fx.frame("vm-a", v4(a, b, echo4(7, typ=0)), ok=["vm-b"])  # the echo reply
    fx.frame("vm-c", v4(c, a, echo4(8)), drop={"vm-a": "ingress-denied"})
    # vm-c's own egress is allowed (egress template) even to the outside.
    fx.frame("vm-c", v4(c, up, udp(40006, 53), dip="198.51.100.53"), ok=["uplink"])
    return fx


@fixture
def port_ranges():
    a = Port("vm-a", 10, groups=["client"])
    b = Port("vm-b", 20, groups=["ranges"])
    c = Port("vm-c", 30, groups=["narrow"])
    groups = (
        CLIENT
        + """
[[security_groups]]
name = "ranges"
rules = [ { direction = "ingress", protocol = "tcp", port_range_min = 80, port_range_max = 80 },
          { direction = "ingress", protocol = "tcp", port_range_min = 1000, port_range_max = 2000 },
          { direction = "ingress", protocol = "tcp", port_range_min = 443, port_range_max = 443, remote_ip_prefix = "10.0.0.0/24" },
          { direction = "ingress", protocol = "udp", port_range_min = 1, port_range_max = 65535 },
          { direction = "ingress", protocol = "sctp", port_range_min = 3868, port_range_max = 3868 },
          { direction = "ingress", protocol = "dccp", port_range_min = 5004, port_range_max = 5004 },
          { direction = "ingress", protocol = "udplite", port_range_min = 6000, port_range_max = 6001 } ]

[[security_groups]]
name = "narrow"
rules = [ { direction = "egress", protocol = "tcp", port_range_min = 443, port_range_max = 443 } ]
"""
    )
    fx = Fixture(
        "port-ranges",
        "Port ranges: single port, ranges, 1..65535, tcp/udp/sctp/dccp/udplite, egress ranges.",
        "Port range boundaries (79/80/81, 999/1000/2000/2001), 1..65535 = all ports, ranges "
        "match the destination port only, sctp/dccp/udplite ranges honoured, egress ranges.",
        [a, b, c],
        groups_toml=groups,
    )
    for i, (dport, ok) in enumerate([(79, False), (80, True), (81, False), (999, False), (1000, True), (2000, True), (2001, False)]):
        p = v4(a, b, tcp(41000 + i, dport, "S"))
        if ok:
            fx.frame("vm-a", p, ok=["vm-b"])
        else:
            fx.frame("vm-a", p, drop={"vm-b": "ingress-denied"})
    # Ranges match the destination port: source port 80 to 8080 is not allowed.
    fx.frame("vm-a", v4(a, b, tcp(80, 8080, "S")), drop={"vm-b": "ingress-denied"})
    # 1..65535 means every port (boundaries 1 and 65535).
    fx.frame("vm-a", v4(a, b, udp(41010, 1)), ok=["vm-b"])
    fx.frame("vm-a", v4(a, b, udp(41011, 65535)), ok=["vm-b"])
    # SCTP honours the range.
    fx.frame("vm-a", v4(a, b, SCTP(sport=41012, dport=3868, tag=0) / SCTPChunkInit(init_tag=1)), ok=["vm-b"])
    fx.frame("vm-a", v4(a, b, SCTP(sport=41013, dport=3869, tag=0) / SCTPChunkInit(init_tag=1)), drop={"vm-b": "ingress-denied"})
    # DCCP (33) and UDP-Lite (136): ranges honoured (our decision; OVS-fw ignores them).
    fx.frame("vm-a", v4(a, b, dccp(41014, 5004), proto=33), ok=["vm-b"])
    fx.frame("vm-a", v4(a, b, dccp(41015, 5005), proto=33), drop={"vm-b": "ingress-denied"})
    fx.frame("vm-a", v4(a, b, udplite(41016, 6001), proto=136), ok=["vm-b"])
    fx.frame("vm-a", v4(a, b, udplite(41017, 6002), proto=136), drop={"vm-b": "ingress-denied"})
    # Egress range on vm-c (tcp 443 only) and vm-b's prefix-limited 443 rule.
    fx.frame("vm-c", v4(c, b, tcp(41018, 443, "S")), ok=["vm-b"])
    fx.frame("vm-c", v4(c, b, tcp(41019, 444, "S")), drop={"vm-c": "egress-denied"})
    fx.frame("vm-c", v4(c, b, udp(41020, 443)), drop={"vm-c": "egress-denied"})  # wrong protocol
    fx.frame("vm-c", v4(c, b, tcp(41021, 442, "S")), drop={"vm-c": "egress-denied"})
    return fx


@fixture
def protocols():
    a = Port("vm-a", 10, groups=["client"])
    b = Port("vm-b", 20, groups=["protos"])
    c = Port("vm-c", 30, groups=["client"])
    groups = (
        CLIENT
        + """
[[security_groups]]
name = "protos"
rules = [ { direction = "ingress", protocol = 132 },
          { direction = "ingress", protocol = "udp", port_range_min = 53, port_range_max = 53 },
          { direction = "ingress", protocol = "any", remote_ip_prefix = "10.0.0.30/32" },
          { direction = "ingress", protocol = "esp" },
          { direction = "ingress", ethertype = "IPv6", protocol = "0" } ]
"""
    )
    fx = Fixture(
        "protocols",
        "Protocol matching by number, by name, `any` and 0 (= any).",
        "Protocol by number (132 = sctp), by name (udp, esp), `any` (GRE 47, TCP, ICMP from one "
        "source), `0` = any (IPv6), non-matching protocols denied, replies of `other` protocols.",
        [a, b, c],
        groups_toml=groups,
    )
    fx.frame("vm-a", v4(a, b, SCTP(sport=42000, dport=9, tag=0) / SCTPChunkInit(init_tag=1)), ok=["vm-b"])
    fx.frame("vm-a", v4(a, b, raw_l4(b"\x00\x00\x08\x00"), proto=47), drop={"vm-b": "ingress-denied"})  # GRE
    fx.frame("vm-c", v4(c, b, raw_l4(b"\x00\x00\x08\x00"), proto=47), ok=["vm-b"])  # GRE via `any` from vm-c
    fx.frame("vm-c", v4(c, b, tcp(42001, 12345, "S")), ok=["vm-b"])
    fx.frame("vm-c", v4(c, b, echo4(1)), ok=["vm-b"])
    fx.frame("vm-a", v4(a, b, udp(42002, 53)), ok=["vm-b"])
    fx.frame("vm-a", v4(a, b, udp(42003, 54)), drop={"vm-b": "ingress-denied"})
    fx.frame("vm-a", v4(a, b, tcp(42004, 53, "S")), drop={"vm-b": "ingress-denied"})  # udp rule only
    fx.frame("vm-a", v4(a, b, raw_l4(b"\x00\x00\x10\x01\x00\x00\x00\x01"), proto=50), ok=["vm-b"])  # ESP by name
    fx.frame("vm-a", v4(a, b, raw_l4(b"\x3b\x04\x00\x00\x00\x00\x10\x01\x00\x00\x00\x01"), proto=51), drop={"vm-b": "ingress-denied"})  # AH
    fx.frame("vm-a", v4(a, b, raw_l4(b"\x00" * 8), proto=253), drop={"vm-b": "ingress-denied"})
    # IPv6 protocol "0" = any IPv6 protocol.
    fx.frame("vm-a", v6(a, b, raw_l4(b"\x00\x00\x86\xdd"), nh=47), ok=["vm-b"])
    fx.frame("vm-a", v6(a, b, udp(42005, 54)), ok=["vm-b"])
    fx.frame("vm-a", v6(a, b, SCTP(sport=42006, dport=9, tag=0) / SCTPChunkInit(init_tag=1)), ok=["vm-b"])
    # GRE reply from vm-b (which has no egress rule) to vm-c: tracked, passes both zones.
    fx.frame("vm-b", v4(b, c, raw_l4(b"\x00\x00\x08\x00"), proto=47), ok=["vm-c"])
    # New GRE from vm-b to vm-a: vm-b has no egress rule.
    fx.frame("vm-b", v4(b, a, raw_l4(b"\x00\x00\x08\x00"), proto=47), drop={"vm-b": "egress-denied"})
    return fx


@fixture
def icmp():
    a = Port("vm-a", 10, groups=["client"])
    b = Port("vm-b", 20, groups=["icmp-b"])
    c = Port("vm-c", 30, groups=["icmp-c"])
    groups = (
        CLIENT
        + """
[[security_groups]]
name = "icmp-b"
rules = [ { direction = "ingress", protocol = "icmp", port_range_min = 8 },
          { direction = "ingress", protocol = "icmp", port_range_min = 13, port_range_max = 0 },
          { direction = "ingress", ethertype = "IPv6", protocol = "icmp", port_range_min = 128, port_range_max = 0 } ]

[[security_groups]]
name = "icmp-c"
rules = [ { direction = "ingress", protocol = "icmp" } ]
"""
    )
    fx = Fixture(
        "icmp",
        "ICMP type/code matching, v4 vs v6 separation, echo state.",
        "ICMP rule with type only (any code), type+code (exact), all ICMP, IPv6 `icmp` = "
        "ipv6-icmp, an IPv4 icmp rule never matching ICMPv6, echo replies tracked by id, "
        "unsolicited echo replies invalid.",
        [a, b, c],
        groups_toml=groups,
    )
    fx.frame("vm-a", v4(a, b, echo4(1)), ok=["vm-b"])
    fx.frame("vm-b", v4(b, a, echo4(1, typ=0)), ok=["vm-a"])  # reply by conntrack
    fx.frame("vm-a", v4(a, b, echo4(2, code=5)), ok=["vm-b"])  # type-only rule: any code
    fx.frame("vm-a", v4(a, b, icmp_ts(3)), ok=["vm-b"])
    fx.frame("vm-a", v4(a, b, icmp_ts(4, code=1)), drop={"vm-b": "ingress-denied"})
    fx.frame("vm-a", v4(a, b, ICMP(type=17, code=0, id=5, seq=1, addr_mask="0.0.0.0")), drop={"vm-b": "ingress-denied"})
    fx.frame("vm-a", v6(a, b, ICMPv6EchoRequest(id=6, seq=1, data=b"ping6")), ok=["vm-b"])
    fx.frame("vm-a", v6(a, b, ICMPv6EchoRequest(code=1, id=7, seq=1, data=b"ping6")), drop={"vm-b": "ingress-denied"})
    fx.frame("vm-b", v6(b, a, ICMPv6EchoReply(id=6, seq=1, data=b"ping6")), ok=["vm-a"])
    fx.frame("vm-a", v4(a, c, echo4(8)), ok=["vm-c"])
    fx.frame("vm-a", v4(a, c, icmp_ts(9)), ok=["vm-c"])
    fx.frame("vm-a", v6(a, c, ICMPv6EchoRequest(id=10, seq=1)), drop={"vm-c": "ingress-denied"})  # v4 rule only
    fx.frame("vm-a", v4(a, b, echo4(99, typ=0)), drop={"vm-a": "invalid-state"})  # unsolicited echo reply
    fx.frame("vm-b", v6(b, a, ICMPv6EchoReply(id=55, seq=1)), drop={"vm-b": "invalid-state"})
    fx.frame("vm-b", v4(b, a, echo4(11)), drop={"vm-b": "egress-denied"})  # icmp-b has no egress rule
    return fx


@fixture
def ipv6_control():
    a = Port("vm-a", 10, groups=[])
    b = Port("vm-b", 20, groups=[])
    r = Port("router", 1, psec=False)
    fx = Fixture(
        "ipv6-control",
        "IPv6 control traffic: ND, RS, MLD always allowed; RA from an instance dropped; DAD.",
        "Ports with security_groups = [] still send/receive NS, NA (own target only), RS, "
        "MLD query/reports (with hop-by-hop router alert); RA from an instance is dropped; "
        "RA from a router delivered; DAD NS and MLD reports from `::`; other traffic from "
        "`::` spoofed; ICMPv6 echo needs a rule.",
        [a, b, r],
    )
    sn_b = "ff02::1:ff00:14"
    fx.frame(
        "vm-a",
        v6(a, None, ICMPv6ND_NS(tgt=b.ip6) / ICMPv6NDOptSrcLLAddr(lladdr=a.mac), dip=sn_b, dmac=mcast_mac6(sn_b), hlim=255),
        ok=["vm-b", "router"],
    )
    fx.frame("vm-b", v6(b, a, ICMPv6ND_NA(tgt=b.ip6, R=0, S=1, O=1) / ICMPv6NDOptDstLLAddr(lladdr=b.mac), hlim=255), ok=["vm-a"])
    fx.frame("vm-a", v6(a, b, ICMPv6ND_NA(tgt="fd00:1::99", R=0, S=1, O=1) / ICMPv6NDOptDstLLAddr(lladdr=a.mac), hlim=255), drop={"vm-a": "spoofed-ip"})
    fx.frame("vm-a", v6(a, b, ICMPv6ND_NA(tgt=a.lla, R=0, S=1, O=1) / ICMPv6NDOptDstLLAddr(lladdr=a.mac), sip=a.lla, dip=b.lla, hlim=255), ok=["vm-b"])
    fx.frame("vm-a", v6(a, None, ICMPv6ND_RS() / ICMPv6NDOptSrcLLAddr(lladdr=a.mac), sip=a.lla, dip="ff02::2", dmac=mcast_mac6("ff02::2"), hlim=255), ok=["vm-b", "router"])
    ra = ICMPv6ND_RA(routerlifetime=1800) / ICMPv6NDOptSrcLLAddr(lladdr=a.mac) / ICMPv6NDOptPrefixInfo(prefix="fd00:1::", prefixlen=64)
    fx.frame("vm-a", v6(a, None, ra, sip=a.lla, dip="ff02::1", dmac=mcast_mac6("ff02::1"), hlim=255), drop={"vm-a": "router-advertisement"})
    ra = ICMPv6ND_RA(routerlifetime=1800) / ICMPv6NDOptSrcLLAddr(lladdr=r.mac) / ICMPv6NDOptPrefixInfo(prefix="fd00:1::", prefixlen=64)
    fx.frame("router", v6(r, None, ra, sip=r.lla, dip="ff02::1", dmac=mcast_mac6("ff02::1"), hlim=255), ok=["vm-a", "vm-b"])
    sn_a = "ff02::1:ff00:a"
    fx.frame("vm-a", v6(a, None, ICMPv6ND_NS(tgt=a.ip6), sip="::", dip=sn_a, dmac=mcast_mac6(sn_a), hlim=255), ok=["vm-b", "router"])  # DAD
    mld2 = IPv6ExtHdrHopByHop(options=[RouterAlert()]) / ICMPv6MLReport2(records=[ICMPv6MLDMultAddrRec(rtype=4, dst=sn_a)])
    fx.frame("vm-a", v6(a, None, mld2, sip="::", dip="ff02::16", dmac=mcast_mac6("ff02::16"), hlim=1), ok=["vm-b", "router"])
    mld2 = IPv6ExtHdrHopByHop(options=[RouterAlert()]) / ICMPv6MLReport2(records=[ICMPv6MLDMultAddrRec(rtype=4, dst=sn_a)])
    fx.frame("vm-a", v6(a, None, mld2, sip=a.lla, dip="ff02::16", dmac=mcast_mac6("ff02::16"), hlim=1), ok=["vm-b", "router"])
    mld1 = IPv6ExtHdrHopByHop(options=[RouterAlert()]) / ICMPv6MLReport(mladdr="ff02::1:ff00:a")
    fx.frame("vm-a", v6(a, None, mld1, sip=a.lla, dip="ff02::1:ff00:a", dmac=mcast_mac6("ff02::1:ff00:a"), hlim=1), ok=["vm-b", "router"])
    mlq = IPv6ExtHdrHopByHop(options=[RouterAlert()]) / ICMPv6MLQuery(mrd=10000, mladdr="::")
    fx.frame("vm-a", v6(a, None, mlq, sip=a.lla, dip="ff02::1", dmac=mcast_mac6("ff02::1"), hlim=1), ok=["vm-b", "router"])
    # From `::` only DAD NS and MLD reports to ff02::/16 are allowed.
    fx.frame("vm-a", v6(a, None, ICMPv6EchoRequest(id=1), sip="::", dip="ff02::1", dmac=mcast_mac6("ff02::1")), drop={"vm-a": "spoofed-ip"})
    fx.frame("vm-a", v6(a, b, ICMPv6ND_NS(tgt=b.ip6), sip="::", hlim=255), drop={"vm-a": "spoofed-ip"})  # NS from :: to a unicast dst
    # Echo needs a rule: groups = [] on both ends.
    fx.frame("vm-a", v6(a, b, ICMPv6EchoRequest(id=2)), drop={"vm-a": "egress-denied"})
    fx.frame("router", v6(r, a, ICMPv6EchoRequest(id=3)), drop={"vm-a": "ingress-denied"})
    return fx


@fixture
def remote_cidr():
    a = Port("vm-a", 10, groups=["a-egress"])
    b = Port("vm-b", 20, groups=["cidr"])
    c = Port("vm-c", 30, groups=["client"])
    up = Port("uplink", 1, psec=False)
    groups = (
        CLIENT
        + """
[[security_groups]]
name = "a-egress"
rules = [ { direction = "egress", remote_ip_prefix = "10.0.0.0/24" },
          { direction = "egress", protocol = "tcp", remote_ip_prefix = "203.0.113.0/24" },
          { direction = "egress", ethertype = "IPv6" } ]

[[security_groups]]
name = "cidr"
rules = [ { direction = "ingress", protocol = "tcp", port_range_min = 22, port_range_max = 22, remote_ip_prefix = "10.0.0.0/28" },
          { direction = "ingress", protocol = "udp", remote_ip_prefix = "10.0.0.7/24" },
          { direction = "ingress", ethertype = "IPv6", protocol = "tcp", port_range_min = 22, port_range_max = 22, remote_ip_prefix = "fd00:1::/64" } ]
"""
    )
    fx = Fixture(
        "remote-cidr",
        "remote_ip_prefix: source for ingress, destination for egress; host bits ignored.",
        "remote_ip_prefix on ingress (source) and egress (destination), /28 boundary, a "
        "prefix written with host bits (10.0.0.7/24 = 10.0.0.0/24), IPv6 prefixes, an IPv4 "
        "rule never matching IPv6.",
        [a, b, c, up],
        groups_toml=groups,
    )
    fx.frame("vm-a", v4(a, b, tcp(43000, 22, "S")), ok=["vm-b"])  # 10.0.0.10 in /28
    fx.frame("vm-c", v4(c, b, tcp(43001, 22, "S")), drop={"vm-b": "ingress-denied"})  # .30 outside /28
    fx.frame("uplink", v4(up, b, tcp(43002, 22, "S"), sip="10.0.0.15"), ok=["vm-b"])  # last address of /28
    fx.frame("uplink", v4(up, b, tcp(43003, 22, "S"), sip="10.0.0.16"), drop={"vm-b": "ingress-denied"})
    fx.frame("vm-c", v4(c, b, udp(43004, 5000)), ok=["vm-b"])  # 10.0.0.7/24 normalised
    fx.frame("uplink", v4(up, b, udp(43005, 5000), sip="198.51.100.9"), drop={"vm-b": "ingress-denied"})
    fx.frame("vm-a", v6(a, b, tcp(43006, 22, "S")), ok=["vm-b"])
    fx.frame("uplink", v6(up, b, tcp(43007, 22, "S"), sip="2001:db8::9"), drop={"vm-b": "ingress-denied"})
    fx.frame("vm-a", v6(a, b, udp(43008, 5000)), drop={"vm-b": "ingress-denied"})  # v4 udp rule only
    # Egress: destination prefix.
    fx.frame("vm-a", v4(a, up, tcp(43009, 443, "S"), dip="203.0.113.5"), ok=["uplink"])
    fx.frame("vm-a", v4(a, up, udp(43010, 443), dip="203.0.113.5"), drop={"vm-a": "egress-denied"})  # tcp only
    fx.frame("vm-a", v4(a, up, tcp(43011, 443, "S"), dip="198.51.100.5"), drop={"vm-a": "egress-denied"})
    fx.frame("vm-a", v4(a, c, udp(43012, 9000)), drop={"vm-c": "ingress-denied"})  # egress ok (10/24); vm-c has no ingress
    return fx


@fixture
def remote_groups():
    a = Port("vm-a", 10, groups=["web"])
    b = Port("vm-b", 20, groups=["client"], aap=[("10.0.0.200/32", None)])
    c = Port("vm-c", 30, groups=["other"])
    up = Port("uplink", 1, psec=False)
    d = Port("vm-d", 40, network="net2", groups=["client"], ip4="10.1.0.40", ip6="fd00:2::28")
    groups = """
[[security_groups]]
name = "web"
rules = [ { direction = "ingress", protocol = "tcp", port_range_min = 22, port_range_max = 22, remote_group = "client" },
          { direction = "ingress", ethertype = "IPv6", protocol = "tcp", port_range_min = 22, port_range_max = 22, remote_group = "client" },
          { direction = "egress", ethertype = "IPv4" },
          { direction = "egress", ethertype = "IPv6" } ]

[[security_groups]]
name = "client"

[[security_groups]]
name = "other"
"""
    fx = Fixture(
        "remote-groups",
        "remote_group membership (fixed IPs, AAP IPs, other networks) and a live change.",
        "remote_group matches the IPs (fixed and allowed-address-pair, per ethertype) of every "
        "port in the group, including ports of other networks; at 2.0 s (--apply-at) vm-b "
        "leaves `client` and vm-c joins: vm-b's established connection is cut in both "
        "directions, vm-c may now connect, a connection from a remaining member continues.",
        [a, b, c, up, d],
        groups_toml=groups,
    )
    ab = Conn(b, a, 44000, 22)
    fx.frame("vm-b", ab.c("S"), ok=["vm-a"])
    fx.frame("vm-a", ab.s("SA"), ok=["vm-b"])
    fx.frame("vm-b", ab.c("A"), ok=["vm-a"])
    fx.frame("vm-c", v4(c, a, tcp(44001, 22, "S")), drop={"vm-a": "ingress-denied"})
    fx.frame("vm-b", v4(b, a, tcp(44002, 22, "S"), sip="10.0.0.200"), ok=["vm-a"])  # AAP IP is a member
    ua = Conn(up, a, 44003, 22, cip="10.1.0.40")  # vm-d's IP (net2) is a member: pure IP match
    fx.frame("uplink", ua.c("S"), ok=["vm-a"])
    fx.frame("vm-b", v6(b, a, tcp(44004, 22, "S")), ok=["vm-a"])  # IPv6 member via the IPv6 rule
    fx.frame("vm-b", v4(b, a, tcp(44005, 23, "S")), drop={"vm-a": "ingress-denied"})
    b2 = Port("vm-b", 20, groups=["other"], aap=[("10.0.0.200/32", None)])
    c2 = Port("vm-c", 30, groups=["client"])
    fx.apply(2.0, "apply-1.toml", ports=[a, b2, c2, up, d], note="vm-b leaves client, vm-c joins")
    # First packet of the vm-b connection after the change, original direction: vm-b's zone
    # re-judges its egress (still allowed by `other`), vm-a's zone re-judges its ingress:
    # 10.0.0.20 no longer in `client` -> cut.
    fx.frame("vm-b", ab.c("PA", b"hello"), drop={"vm-a": "connection-cut"})
    # Reply direction is cut too (vm-a's egress would allow it as a new flow).
    fx.frame("vm-a", ab.s("PA", b"world"), drop={"vm-a": "connection-cut"})
    fx.frame("vm-c", v4(c, a, tcp(44006, 22, "S")), ok=["vm-a"])  # vm-c now a member
    fx.frame("vm-b", v4(b, a, tcp(44007, 22, "S")), drop={"vm-a": "ingress-denied"})
    # The connection from 10.1.0.40 (vm-d still in client) is re-judged and continues.
    fx.frame("vm-a", ua.s("SA"), ok=["uplink"])
    fx.frame("uplink", ua.c("A"), ok=["vm-a"])
    return fx


@fixture
def address_groups():
    a = Port("vm-a", 10, groups=["srv"])
    b = Port("vm-b", 20, groups=["srv"])
    c = Port("vm-c", 30, groups=["client"])
    up = Port("uplink", 1, psec=False)
    groups = (
        CLIENT
        + """
[[security_groups]]
name = "srv"
rules = [ { direction = "ingress", protocol = "tcp", port_range_min = 443, port_range_max = 443, remote_address_group = "office" },
          { direction = "ingress", ethertype = "IPv6", protocol = "tcp", port_range_min = 443, port_range_max = 443, remote_address_group = "office" },
          { direction = "ingress", protocol = "tcp", port_range_min = 8443, port_range_max = 8443, remote_address_group = "partners" },
          { direction = "ingress", protocol = "tcp", port_range_min = 443, port_range_max = 443, remote_group = "srv" },
          { direction = "egress", ethertype = "IPv4" } ]

[[address_groups]]
name = "office"
addresses = ["198.51.100.0/24", "2001:db8:10::/48"]

[[address_groups]]
name = "partners"
addresses = ["203.0.113.64/26"]
"""
    )
    fx = Fixture(
        "address-groups",
        "remote_address_group: CIDR lists per ethertype, unioned with a remote group.",
        "Rules with `remote_address_group` (v4 and v6 CIDRs of one group, boundaries of a "
        "/26), unioned with a remote_group rule on the same port.",
        [a, b, c, up],
        groups_toml=groups,
    )
    fx.frame("uplink", v4(up, a, tcp(45000, 443, "S"), sip="198.51.100.7"), ok=["vm-a"])
    fx.frame("uplink", v4(up, a, tcp(45001, 443, "S"), sip="198.51.101.7"), drop={"vm-a": "ingress-denied"})
    fx.frame("uplink", v6(up, a, tcp(45002, 443, "S"), sip="2001:db8:10::5"), ok=["vm-a"])
    fx.frame("uplink", v6(up, a, tcp(45003, 443, "S"), sip="2001:db8:11::5"), drop={"vm-a": "ingress-denied"})
    fx.frame("uplink", v4(up, a, tcp(45004, 8443, "S"), sip="203.0.113.64"), ok=["vm-a"])
    fx.frame("uplink", v4(up, a, tcp(45005, 8443, "S"), sip="203.0.113.127"), ok=["vm-a"])
    fx.frame("uplink", v4(up, a, tcp(45006, 8443, "S"), sip="203.0.113.128"), drop={"vm-a": "ingress-denied"})
    fx.frame("uplink", v4(up, a, tcp(45007, 8443, "S"), sip="203.0.113.63"), drop={"vm-a": "ingress-denied"})
    fx.frame("uplink", v4(up, a, tcp(45008, 443, "S"), sip="203.0.113.70"), drop={"vm-a": "ingress-denied"})  # partners: 8443 only
    fx.frame("uplink", v4(up, a, tcp(45009, 8443, "S"), sip="198.51.100.7"), drop={"vm-a": "ingress-denied"})  # office: 443 only
    fx.frame("vm-b", v4(b, a, tcp(45010, 443, "S")), ok=["vm-a"])  # remote_group srv
    fx.frame("vm-c", v4(c, a, tcp(45011, 443, "S")), drop={"vm-a": "ingress-denied"})
    return fx


@fixture
def multiple_groups():
    a = Port("vm-a", 10, groups=["client"])
    b = Port("vm-b", 20, groups=["ssh", "web"])
    c = Port("vm-c", 30, groups=["web"])
    up = Port("uplink", 1, psec=False)
    groups = (
        CLIENT
        + """
[[security_groups]]
name = "ssh"
rules = [ { direction = "ingress", protocol = "tcp", port_range_min = 22, port_range_max = 22 },
          { direction = "ingress", protocol = "tcp", port_range_min = 1000, port_range_max = 2000, remote_ip_prefix = "10.0.0.0/24" },
          { direction = "egress", protocol = "udp", port_range_min = 53, port_range_max = 53 } ]

[[security_groups]]
name = "web"
rules = [ { direction = "ingress", protocol = "tcp", port_range_min = 80, port_range_max = 80 },
          { direction = "ingress", protocol = "tcp", port_range_min = 443, port_range_max = 443 },
          { direction = "ingress", protocol = "tcp", port_range_min = 1500, port_range_max = 1600 },
          { direction = "egress", protocol = "tcp", port_range_min = 443, port_range_max = 443 } ]
"""
    )
    fx = Fixture(
        "multiple-groups",
        "Several groups on one port: the union of their rules.",
        "A port in two groups gets the union (ingress and egress), overlapping rules from "
        "both groups, a port in only one of them.",
        [a, b, c, up],
        groups_toml=groups,
    )
    for i, (dport, ok) in enumerate([(22, True), (80, True), (443, True), (25, False)]):
        p = v4(a, b, tcp(46000 + i, dport, "S"))
        fx.frame("vm-a", p, **({"ok": ["vm-b"]} if ok else {"drop": {"vm-b": "ingress-denied"}}))
    fx.frame("vm-a", v4(a, b, tcp(46010, 1700, "S")), ok=["vm-b"])  # ssh 1000-2000 from 10/24
    fx.frame("uplink", v4(up, b, tcp(46011, 1700, "S"), sip="198.51.100.1"), drop={"vm-b": "ingress-denied"})
    fx.frame("uplink", v4(up, b, tcp(46012, 1550, "S"), sip="198.51.100.1"), ok=["vm-b"])  # web 1500-1600 from any
    fx.frame("uplink", v4(up, b, tcp(46013, 1601, "S"), sip="198.51.100.1"), drop={"vm-b": "ingress-denied"})
    fx.frame("vm-a", v4(a, c, tcp(46014, 22, "S")), drop={"vm-c": "ingress-denied"})
    fx.frame("vm-a", v4(a, c, tcp(46015, 80, "S")), ok=["vm-c"])
    fx.frame("vm-b", v4(b, up, udp(46016, 53), dip="198.51.100.53"), ok=["uplink"])
    fx.frame("vm-b", v4(b, up, tcp(46017, 443, "S"), dip="198.51.100.80"), ok=["uplink"])
    fx.frame("vm-b", v4(b, up, udp(46018, 123), dip="198.51.100.53"), drop={"vm-b": "egress-denied"})
    fx.frame("vm-c", v4(c, up, udp(46019, 53), dip="198.51.100.53"), drop={"vm-c": "egress-denied"})  # ssh's egress not on vm-c
    return fx


@fixture
def stateful_replies():
    a = Port("vm-a", 10, groups=["client"])
    b = Port("vm-b", 20, groups=["server"])
    up = Port("uplink", 1, psec=False)
    groups = (
        CLIENT
        + """
[[security_groups]]
name = "server"
rules = [ { direction = "ingress", protocol = "tcp", port_range_min = 80, port_range_max = 80 },
          { direction = "ingress", protocol = "udp", port_range_min = 53, port_range_max = 53 },
          { direction = "ingress", ethertype = "IPv6", protocol = "udp", port_range_min = 53, port_range_max = 53 },
          { direction = "ingress", protocol = "icmp", port_range_min = 8 } ]
"""
    )
    fx = Fixture(
        "stateful-replies",
        "Stateful replies: TCP handshake/data/FIN, UDP reply, ICMP echo reply, related ICMP errors.",
        "A server group with ingress rules only: replies pass by connection tracking; UDP "
        "replies must match the tracked tuple; ICMP echo replies by id; ICMP/ICMPv6 errors "
        "quoting a tracked connection are related (no rule), errors quoting nothing are invalid.",
        [a, b, up],
        groups_toml=groups,
    )
    t = Conn(a, b, 47000, 80)
    fx.frame("vm-a", t.c("S"), ok=["vm-b"])
    fx.frame("vm-b", t.s("SA"), ok=["vm-a"])
    fx.frame("vm-a", t.c("A"), ok=["vm-b"])
    fx.frame("vm-a", t.c("PA", b"GET / HTTP/1.0\r\n\r\n"), ok=["vm-b"])
    fx.frame("vm-b", t.s("PA", b"HTTP/1.0 200 OK\r\n\r\n"), ok=["vm-a"])
    fx.frame("vm-a", t.c("FA"), ok=["vm-b"])
    fx.frame("vm-b", t.s("FA"), ok=["vm-a"])
    fx.frame("vm-a", t.c("A"), ok=["vm-b"])
    fx.frame("vm-a", v4(a, b, udp(47001, 53, b"query")), ok=["vm-b"])
    fx.frame("vm-b", v4(b, a, udp(53, 47001, b"answer")), ok=["vm-a"])
    fx.frame("vm-b", v4(b, a, udp(53, 47002, b"answer")), drop={"vm-b": "egress-denied"})  # not the tracked tuple
    fx.frame("vm-a", v4(a, b, echo4(7)), ok=["vm-b"])
    fx.frame("vm-b", v4(b, a, echo4(7, typ=0)), ok=["vm-a"])
    fx.frame("vm-b", v4(b, a, echo4(8, typ=0)), drop={"vm-b": "invalid-state"})
    # Related ICMP: vm-b answers a UDP datagram with port unreachable quoting it.
    q = IP(src=a.ip4, dst=b.ip4, ttl=64) / udp(47003, 53, b"query2")
    fx.frame("vm-a", e(a, b.mac) / q, ok=["vm-b"])
    fx.frame("vm-b", v4(b, a, ICMP(type=3, code=3) / Raw(bytes(q))), ok=["vm-a"])
    # An error quoting a flow nobody sent: invalid at the sender.
    q2 = IP(src=a.ip4, dst=b.ip4, ttl=64) / udp(47999, 53, b"never")
    fx.frame("vm-b", v4(b, a, ICMP(type=3, code=3) / Raw(bytes(q2))), drop={"vm-b": "invalid-state"})
    # ICMPv6 related.
    q6 = IPv6(src=a.ip6, dst=b.ip6, hlim=64) / udp(47004, 53, b"query6")
    fx.frame("vm-a", e(a, b.mac) / q6, ok=["vm-b"])
    fx.frame("vm-b", v6(b, a, ICMPv6DestUnreach(code=4) / Raw(bytes(q6))), ok=["vm-a"])
    # Related error from the outside (router on the path): time exceeded for vm-a's probe.
    probe = IP(src=a.ip4, dst="203.0.113.9", ttl=1) / udp(47005, 33434, b"probe")
    fx.frame("vm-a", e(a, up.mac) / probe, ok=["uplink"])
    fx.frame("uplink", v4(up, a, ICMP(type=11, code=0) / Raw(bytes(probe)), sip="192.0.2.1"), ok=["vm-a"])
    probe2 = IP(src=a.ip4, dst="203.0.113.9", ttl=1) / udp(47006, 33434, b"probe")
    fx.frame("uplink", v4(up, a, ICMP(type=11, code=0) / Raw(bytes(probe2)), sip="192.0.2.1"), drop={"vm-a": "invalid-state"})
    # vm-b has no egress rule: a new connection from it is denied.
    fx.frame("vm-b", v4(b, a, tcp(47007, 80, "S")), drop={"vm-b": "egress-denied"})
    # UDP reply from the outside to vm-a's egress flow, then an unrelated datagram.
    fx.frame("vm-a", v4(a, up, udp(47008, 53, b"q"), dip="198.51.100.53"), ok=["uplink"])
    fx.frame("uplink", v4(up, a, udp(53, 47008, b"a"), sip="198.51.100.53"), ok=["vm-a"])
    fx.frame("uplink", v4(up, a, udp(53, 47008, b"a"), sip="198.51.100.54"), drop={"vm-a": "ingress-denied"})
    return fx


@fixture
def connection_cut():
    a = Port("vm-a", 10, groups=["client"])
    b = Port("vm-b", 20, groups=["server"])
    c = Port("vm-c", 30, groups=["server"])
    server_full = """
[[security_groups]]
name = "server"
rules = [ { direction = "ingress", protocol = "tcp", port_range_min = 80, port_range_max = 80 },
          { direction = "ingress", protocol = "udp", port_range_min = 53, port_range_max = 53 } ]
"""
    server_cut = """
[[security_groups]]
name = "server"
rules = [ { direction = "ingress", protocol = "udp", port_range_min = 53, port_range_max = 53 } ]
"""
    fx = Fixture(
        "connection-cut",
        "Rule deletion and group removal cut established connections; re-adding resumes them.",
        "At 2.0 s (apply-1) the tcp/80 rule is deleted and vm-c loses its group: established "
        "TCP connections are cut in both directions (the reply direction first), a bare ACK "
        "does not re-open a cut connection, an unaffected UDP flow continues. At 5.0 s "
        "(apply-2) the rule and group are back: the same connections resume.",
        [a, b, c],
        groups_toml=CLIENT + server_full,
    )
    t = Conn(a, b, 48000, 80)
    fx.frame("vm-a", t.c("S"), ok=["vm-b"])
    fx.frame("vm-b", t.s("SA"), ok=["vm-a"])
    fx.frame("vm-a", t.c("A"), ok=["vm-b"])
    fx.frame("vm-a", t.c("PA", b"req1"), ok=["vm-b"])
    fx.frame("vm-b", t.s("PA", b"resp1"), ok=["vm-a"])
    fx.frame("vm-a", v4(a, b, udp(48001, 53, b"q")), ok=["vm-b"])
    u = Conn(a, c, 48002, 80)
    fx.frame("vm-a", u.c("S"), ok=["vm-c"])
    fx.frame("vm-c", u.s("SA"), ok=["vm-a"])
    c_nogroup = Port("vm-c", 30, groups=["client"])
    fx.apply(2.0, "apply-1.toml", groups_toml=CLIENT + server_cut, ports=[a, b, c_nogroup], note="tcp/80 rule deleted, vm-c moved to client")
    # Reply direction first: vm-b's zone re-judges the original ingress packet -> cut.
    fx.frame("vm-b", t.s("PA", b"resp2"), drop={"vm-b": "connection-cut"})
    # Original direction: vm-a's egress re-judge passes; vm-b's entry is cut.
    fx.frame("vm-a", t.c("A"), drop={"vm-b": "connection-cut"})
    fx.frame("vm-a", v4(a, b, udp(48001, 53, b"q")), ok=["vm-b"])  # udp/53 rule kept
    fx.frame("vm-b", v4(b, a, udp(53, 48001, b"r")), ok=["vm-a"])
    fx.frame("vm-a", v4(a, b, tcp(48003, 80, "S")), drop={"vm-b": "ingress-denied"})  # new connection
    fx.frame("vm-a", v4(a, b, tcp(48004, 80, "A", seq=7000, ack=9000)), drop={"vm-b": "ingress-denied"})  # pickup needs a rule
    fx.frame("vm-a", t.c("A"), drop={"vm-b": "connection-cut"})  # a bare ACK does not re-open it
    fx.frame("vm-a", u.c("A"), drop={"vm-c": "connection-cut"})  # group removed from vm-c
    fx.frame("vm-c", u.s("PA", b"x"), drop={"vm-c": "connection-cut"})
    fx.apply(5.0, "apply-2.toml", groups_toml=CLIENT + server_full, ports=[a, b, c], note="rule and group restored")
    fx.frame("vm-a", t.c("PA", b"req2"), ok=["vm-b"])  # re-judged, allowed again: resumes
    fx.frame("vm-b", t.s("PA", b"resp3"), ok=["vm-a"])
    fx.frame("vm-c", u.s("PA", b"y"), ok=["vm-a"])  # reply direction re-judged first, allowed
    fx.frame("vm-a", u.c("A"), ok=["vm-c"])
    return fx


@fixture
def invalid_tcp():
    a = Port("vm-a", 10, groups=["client"])
    b = Port("vm-b", 20, groups=["srv"])
    up = Port("uplink", 1, psec=False)
    groups = (
        CLIENT
        + """
[[security_groups]]
name = "srv"
rules = [ { direction = "ingress", protocol = "tcp", port_range_min = 80, port_range_max = 80 },
          { direction = "egress", ethertype = "IPv4" } ]
"""
    )
    fx = Fixture(
        "invalid-tcp",
        "TCP state validity: unsolicited SYN/ACK, FIN, RST, flagless invalid; bare ACK pickup.",
        "With no tracked connection: SYN/ACK, FIN, FIN/ACK, RST, no flags -> invalid-state "
        "at the sender's egress and at the receiver's ingress (even to an allowed port); "
        "a bare ACK (also PSH/ACK) is picked up when a rule allows it, ingress-denied otherwise; "
        "RST inside a tracked connection is valid.",
        [a, b, up],
        groups_toml=groups,
    )
    for i, fl in enumerate(["SA", "F", "R", "", "FA"]):
        fx.frame("vm-a", v4(a, b, tcp(49000 + i, 80, fl, seq=100, ack=200 if "A" in fl else 0)), drop={"vm-a": "invalid-state"})
    pick = Conn(a, b, 49010, 80)
    fx.frame("vm-a", pick.c("A"), ok=["vm-b"])  # loose pickup in both zones
    fx.frame("vm-b", pick.s("A"), ok=["vm-a"])
    fx.frame("vm-a", v4(a, b, tcp(49011, 80, "PA", seq=300, ack=400, data=b"mid-stream")), ok=["vm-b"])
    fx.frame("vm-a", v4(a, b, tcp(49012, 81, "A", seq=300, ack=400)), drop={"vm-b": "ingress-denied"})
    fx.frame("uplink", v4(up, b, tcp(49013, 80, "SA", seq=100, ack=200)), drop={"vm-b": "invalid-state"})
    fx.frame("uplink", v4(up, b, tcp(49014, 80, "R", seq=100)), drop={"vm-b": "invalid-state"})
    fx.frame("uplink", v4(up, b, tcp(49015, 80, "F", seq=100)), drop={"vm-b": "invalid-state"})
    fx.frame("uplink", v4(up, b, tcp(49016, 81, "", seq=100)), drop={"vm-b": "invalid-state"})  # invalid before rules
    fx.frame("uplink", v4(up, b, tcp(49017, 80, "A", seq=100, ack=200)), ok=["vm-b"])
    fx.frame("uplink", v4(up, b, tcp(49018, 80, "S", seq=100)), ok=["vm-b"])
    fx.frame("uplink", v4(up, b, tcp(49019, 81, "S", seq=100)), drop={"vm-b": "ingress-denied"})
    fx.frame("vm-a", pick.c("R"), ok=["vm-b"])  # RST within the picked-up connection
    # vm-b (egress any) to the uplink: SYN/ACK it never saw a SYN for is invalid at vm-b.
    fx.frame("vm-b", v4(b, up, tcp(80, 49020, "SA", seq=100, ack=200)), drop={"vm-b": "invalid-state"})
    return fx


@fixture
def anti_spoofing():
    aap_mac = "fa:16:3e:8c:84:13"
    a = Port("vm-a", 10, groups=["open"], aap=[("10.0.0.100/32", aap_mac), ("10.0.0.128/28", None)])
    b = Port("vm-b", 20, groups=["open"])
    fx = Fixture(
        "anti-spoofing",
        "Anti-spoofing: (MAC, IP) pairs, allowed address pairs, EUI-64 link-local.",
        "Source MAC must be the port or an AAP MAC; (MAC, IP) must be a fixed IP with the port "
        "MAC, an AAP IP/CIDR with its MAC (port MAC when the pair has none), or the EUI-64 "
        "link-local of the sending MAC; frames to an AAP MAC are delivered.",
        [a, b],
        groups_toml=OPEN,
    )
    fx.frame("vm-a", v4(a, b, udp(50000, 7)), ok=["vm-b"])
    fx.frame("vm-a", v4(a, b, udp(50001, 7), smac="02:00:00:00:00:66"), drop={"vm-a": "spoofed-mac"})
    fx.frame("vm-a", v4(a, b, udp(50002, 7), sip="10.0.0.11"), drop={"vm-a": "spoofed-ip"})
    fx.frame("vm-a", v4(a, b, udp(50003, 7), smac=aap_mac, sip="10.0.0.100"), ok=["vm-b"])
    fx.frame("vm-a", v4(a, b, udp(50004, 7), smac=aap_mac), drop={"vm-a": "spoofed-ip"})  # AAP MAC + fixed IP
    fx.frame("vm-a", v4(a, b, udp(50005, 7), sip="10.0.0.100"), drop={"vm-a": "spoofed-ip"})  # port MAC + AAP IP of another MAC
    fx.frame("vm-a", v4(a, b, udp(50006, 7), sip="10.0.0.128"), ok=["vm-b"])  # AAP /28 with port MAC
    fx.frame("vm-a", v4(a, b, udp(50007, 7), sip="10.0.0.143"), ok=["vm-b"])
    fx.frame("vm-a", v4(a, b, udp(50008, 7), sip="10.0.0.144"), drop={"vm-a": "spoofed-ip"})
    fx.frame("vm-a", v4(a, b, udp(50009, 7), smac=aap_mac, sip="10.0.0.130"), drop={"vm-a": "spoofed-ip"})  # /28 belongs to port MAC
    fx.frame("vm-a", v6(a, b, udp(50010, 7)), ok=["vm-b"])
    fx.frame("vm-a", v6(a, b, udp(50011, 7), sip="fd00:1::b"), drop={"vm-a": "spoofed-ip"})
    fx.frame("vm-a", v6(a, b, udp(50012, 7), sip=a.lla, dip=b.lla), ok=["vm-b"])  # EUI-64 of port MAC
    aap_lla = eui64_lla(aap_mac)
    fx.frame("vm-a", v6(a, b, udp(50013, 7), smac=aap_mac, sip=aap_lla, dip=b.lla), ok=["vm-b"])  # EUI-64 of AAP MAC
    fx.frame("vm-a", v6(a, b, udp(50014, 7), sip=aap_lla, dip=b.lla), drop={"vm-a": "spoofed-ip"})  # AAP LLA with port MAC
    fx.frame("vm-a", v6(a, b, udp(50015, 7), sip="fe80::1", dip=b.lla), drop={"vm-a": "spoofed-ip"})
    fx.frame("vm-a", v6(a, b, udp(50016, 7), smac="02:00:00:00:00:66"), drop={"vm-a": "spoofed-mac"})
    # Unicast to the AAP MAC / IP is delivered to vm-a.
    fx.frame("vm-b", v4(b, a, udp(50017, 7), dip="10.0.0.100", dmac=aap_mac), ok=["vm-a"])
    # vm-b sending with vm-a's MAC.
    fx.frame("vm-b", v4(b, a, udp(50018, 7), smac=a.mac, sip=b.ip4), drop={"vm-b": "spoofed-mac"})
    return fx


@fixture
def arp():
    aap_mac = "fa:16:3e:8c:84:13"
    a = Port("vm-a", 10, groups=["open"], aap=[("10.0.0.100/32", aap_mac)])
    b = Port("vm-b", 20, groups=[])
    c = Port("vm-c", 30, groups=["open"])
    up = Port("uplink", 1, psec=False)
    fx = Fixture(
        "arp",
        "ARP: requests/replies allowed, spoofed sender denied, ingress ARP always delivered.",
        "ARP from allowed (MAC, spa) pairs is flooded / delivered to ports even without groups; "
        "wrong spa, sha != eth src, unknown op -> arp-denied; wrong eth src -> spoofed-mac; "
        "gratuitous ARP; AAP pairs; RARP from an allowed MAC; any ARP from a port without "
        "port security.",
        [a, b, c, up],
        groups_toml=OPEN,
    )
    zero = "00:00:00:00:00:00"

    def arpf(src, op, hwsrc, psrc, pdst, dmac=BCAST, smac=None, hwdst=zero, etype=None):
        return e(src, dmac, smac or hwsrc, etype) / ARP(op=op, hwsrc=hwsrc, psrc=psrc, hwdst=hwdst, pdst=pdst)

    fx.frame("vm-a", arpf(a, 1, a.mac, a.ip4, b.ip4), ok=["vm-b", "vm-c", "uplink"])
    fx.frame("vm-b", arpf(b, 2, b.mac, b.ip4, a.ip4, dmac=a.mac, hwdst=a.mac), ok=["vm-a"])
    fx.frame("vm-a", arpf(a, 1, a.mac, "10.0.0.99", b.ip4), drop={"vm-a": "arp-denied"})
    fx.frame("vm-a", arpf(a, 1, "02:00:00:00:00:66", a.ip4, b.ip4), drop={"vm-a": "spoofed-mac"})
    fx.frame("vm-a", arpf(a, 1, "02:00:00:00:00:66", a.ip4, b.ip4, smac=a.mac), drop={"vm-a": "arp-denied"})  # sha != eth src
    fx.frame("vm-a", arpf(a, 1, a.mac, a.ip4, a.ip4), ok=["vm-b", "vm-c", "uplink"])  # gratuitous
    fx.frame("vm-a", arpf(a, 3, a.mac, a.ip4, b.ip4), drop={"vm-a": "arp-denied"})  # op 3 in an ARP frame
    fx.frame("vm-a", arpf(a, 2, aap_mac, "10.0.0.100", b.ip4, dmac=b.mac, hwdst=b.mac), ok=["vm-b"])  # AAP pair
    fx.frame("vm-a", arpf(a, 1, a.mac, "10.0.0.100", b.ip4), drop={"vm-a": "arp-denied"})  # AAP IP, wrong MAC
    fx.frame("vm-a", arpf(a, 1, aap_mac, a.ip4, b.ip4), drop={"vm-a": "arp-denied"})  # fixed IP from the AAP MAC: (MAC, IP) pairs, as Neutron's OVS driver
    fx.frame("uplink", arpf(up, 1, "02:00:00:00:01:01", "192.0.2.77", b.ip4, smac="02:00:00:00:01:01"), ok=["vm-a", "vm-b", "vm-c"])
    fx.frame("uplink", arpf(up, 2, up.mac, "10.0.0.99", b.ip4, dmac=b.mac, hwdst=b.mac), ok=["vm-b"])
    # Unicast ARP to a MAC that is nobody's: flooded; port-security ports drop it.
    fx.frame("vm-a", arpf(a, 1, a.mac, a.ip4, "10.0.0.77", dmac="fa:16:3e:00:00:77"), ok=["uplink"], drop={"vm-b": "dst-mac-mismatch", "vm-c": "dst-mac-mismatch"})
    fx.frame("vm-a", arpf(a, 3, a.mac, a.ip4, a.ip4, etype=0x8035, hwdst=a.mac), ok=["vm-b", "vm-c", "uplink"])  # RARP
    fx.frame("vm-a", arpf(a, 3, a.mac, a.ip4, a.ip4, etype=0x8035, hwdst=a.mac, smac="02:00:00:00:00:66"), drop={"vm-a": "spoofed-mac"})
    return fx


@fixture
def dhcp():
    a = Port("vm-a", 10, groups=[])
    b = Port("vm-b", 20, groups=["nothing"])
    srv = Port("dhcp", 2, psec=False)
    groups = """
[[security_groups]]
name = "nothing"
rules = []
"""
    fx = Fixture(
        "dhcp",
        "DHCP: client traffic always allowed, server traffic from instances dropped, replies delivered.",
        "DHCPv4 discover from 0.0.0.0 and request from the fixed IP, DHCPv6 solicit, always "
        "allowed (ports without rules); DHCP server traffic from an instance -> dhcp-server; "
        "offers/replies from a port_security=false DHCP port delivered without rules; other "
        "traffic from 0.0.0.0 is spoofed; DHCP client requests are not always-allowed at ingress.",
        [a, b, srv],
        groups_toml=groups,
    )

    def bootp(mac, op=1):
        return BOOTP(op=op, xid=0x11223344, chaddr=bytes(int(x, 16) for x in mac.split(":")) + b"\x00" * 10)

    disc = bootp(a.mac) / DHCP(options=[("message-type", "discover"), "end"])
    fx.frame("vm-a", v4(a, None, UDP(sport=68, dport=67) / disc, sip="0.0.0.0", dip="255.255.255.255", dmac=BCAST), ok=["dhcp"], drop={"vm-b": "ingress-denied"})
    offer = bootp(a.mac, op=2) / DHCP(options=[("message-type", "offer"), ("server_id", srv.ip4), "end"])
    fx.frame("dhcp", v4(srv, a, UDP(sport=67, dport=68) / offer), ok=["vm-a"])
    fx.frame("dhcp", v4(srv, None, UDP(sport=67, dport=68) / offer, dip="255.255.255.255", dmac=BCAST), ok=["vm-a", "vm-b"])
    req = bootp(a.mac) / DHCP(options=[("message-type", "request"), ("requested_addr", a.ip4), "end"])
    fx.frame("vm-a", v4(a, srv, UDP(sport=68, dport=67) / req), ok=["dhcp"])
    fx.frame("vm-a", v4(a, None, UDP(sport=67, dport=68) / offer, dip="255.255.255.255", dmac=BCAST), drop={"vm-a": "dhcp-server"})
    fx.frame("vm-a", v4(a, b, UDP(sport=67, dport=68) / offer), drop={"vm-a": "dhcp-server"})
    fx.frame("vm-a", v4(a, None, UDP(sport=68, dport=67) / disc, sip="0.0.0.0", dip="255.255.255.255", dmac=BCAST, smac="02:00:00:00:00:66"), drop={"vm-a": "spoofed-mac"})
    fx.frame("vm-a", v4(a, None, udp(68, 68), sip="0.0.0.0", dip="255.255.255.255", dmac=BCAST), drop={"vm-a": "spoofed-ip"})
    fx.frame("vm-a", v4(a, None, udp(40000, 53), sip="0.0.0.0", dip="255.255.255.255", dmac=BCAST), drop={"vm-a": "spoofed-ip"})
    fx.frame("vm-a", v4(a, srv, udp(40001, 53)), drop={"vm-a": "egress-denied"})  # no groups: only the always-allowed
    sol = UDP(sport=546, dport=547) / DHCP6_Solicit(trid=0x123456)
    fx.frame("vm-a", v6(a, None, sol, sip=a.lla, dip="ff02::1:2", dmac=mcast_mac6("ff02::1:2")), ok=["dhcp"], drop={"vm-b": "ingress-denied"})
    rep = UDP(sport=547, dport=546) / DHCP6_Reply(trid=0x123456)
    fx.frame("vm-a", v6(a, b, rep, sip=a.lla, dip=b.lla), drop={"vm-a": "dhcp-server"})
    fx.frame("dhcp", v6(srv, a, rep, sip=srv.lla, dip=a.lla), ok=["vm-a"])
    fx.frame("vm-b", v4(b, None, UDP(sport=68, dport=67) / bootp(b.mac) / DHCP(options=[("message-type", "discover"), "end"]), sip="0.0.0.0", dip="255.255.255.255", dmac=BCAST), ok=["dhcp"], drop={"vm-a": "ingress-denied"})
    return fx


@fixture
def stateless():
    a = Port("vm-a", 10, groups=["client"])
    b = Port("vm-b", 20, groups=["sl"])
    up = Port("uplink", 1, psec=False)
    groups = (
        CLIENT
        + """
[[security_groups]]
name = "sl"
stateful = false
rules = [ { direction = "ingress", protocol = "tcp", port_range_min = 80, port_range_max = 80 },
          { direction = "ingress", protocol = "udp", port_range_min = 53, port_range_max = 53 },
          { direction = "egress", protocol = "tcp", remote_ip_prefix = "10.0.0.0/24" } ]
"""
    )
    fx = Fixture(
        "stateless",
        "Stateless groups: every packet checked against its direction's rules, any TCP flags.",
        "A stateless group: replies need an explicit egress rule (tcp has one, udp has none); "
        "unsolicited SYN/ACK, FIN, RST, flagless segments to an allowed port are delivered; "
        "the stateful peer still tracks its side.",
        [a, b, up],
        groups_toml=groups,
    )
    t = Conn(a, b, 51000, 80)
    fx.frame("vm-a", t.c("S"), ok=["vm-b"])
    fx.frame("vm-b", t.s("SA"), ok=["vm-a"])  # egress tcp rule; vm-a tracks the reply
    fx.frame("vm-a", t.c("A"), ok=["vm-b"])
    fx.frame("uplink", v4(up, b, tcp(51001, 80, "F", seq=10)), ok=["vm-b"])
    fx.frame("uplink", v4(up, b, tcp(51002, 80, "SA", seq=10, ack=20)), ok=["vm-b"])
    fx.frame("uplink", v4(up, b, tcp(51003, 80, "", seq=10)), ok=["vm-b"])
    fx.frame("uplink", v4(up, b, tcp(51004, 80, "R", seq=10)), ok=["vm-b"])
    fx.frame("uplink", v4(up, b, tcp(51005, 81, "R", seq=10)), drop={"vm-b": "ingress-denied"})
    fx.frame("vm-b", v4(b, up, tcp(80, 51006, "SA", seq=10, ack=20)), ok=["uplink"])  # no invalid state
    fx.frame("vm-a", v4(a, b, udp(51007, 53)), ok=["vm-b"])
    fx.frame("vm-b", v4(b, a, udp(53, 51007)), drop={"vm-b": "egress-denied"})  # no egress udp rule
    fx.frame("vm-b", v4(b, a, tcp(51008, 22, "S")), drop={"vm-a": "ingress-denied"})  # vm-a: no ingress rule
    fx.frame("vm-b", v4(b, up, tcp(51009, 80, "S"), dip="198.51.100.1"), drop={"vm-b": "egress-denied"})  # outside 10/24
    fx.frame("uplink", v4(up, b, echo4(1)), drop={"vm-b": "ingress-denied"})
    return fx


@fixture
def broadcast_multicast():
    a = Port("vm-a", 10, groups=["open"])
    b = Port("vm-b", 20, groups=["mdns"])
    c = Port("vm-c", 30, groups=["web"])
    d = Port("vm-d", 40, network="net2", groups=["open"], ip4="10.1.0.40", ip6="fd00:2::28")
    e2 = Port("vm-e", 50, network="net2", groups=["mdns"], ip4="10.1.0.50", ip6="fd00:2::32")
    groups = (
        OPEN
        + """
[[security_groups]]
name = "mdns"
rules = [ { direction = "ingress", protocol = "udp", port_range_min = 5353, port_range_max = 5353 },
          { direction = "ingress", ethertype = "IPv6", protocol = "udp", port_range_min = 5353, port_range_max = 5353 },
          { direction = "egress", ethertype = "IPv4" },
          { direction = "egress", ethertype = "IPv6" } ]

[[security_groups]]
name = "web"
rules = [ { direction = "ingress", protocol = "tcp", port_range_min = 80, port_range_max = 80 },
          { direction = "egress", protocol = "tcp" } ]
"""
    )
    fx = Fixture(
        "broadcast-multicast",
        "Broadcast and multicast: flooded in the network, each receiver's ingress rules apply.",
        "IPv4 broadcast (subnet and limited), IPv4 and IPv6 multicast are flooded to the other "
        "ports of the sender's network only; each receiving port applies its own ingress "
        "rules; the sender's egress rules and anti-spoofing apply first.",
        [a, b, c, d, e2],
        groups_toml=groups,
    )
    fx.frame("vm-a", v4(a, None, udp(5353, 5353), dip="10.0.0.255", dmac=BCAST), ok=["vm-b"], drop={"vm-c": "ingress-denied"})
    fx.frame("vm-a", v4(a, None, udp(5353, 5353), dip="224.0.0.251", dmac=mcast_mac4("224.0.0.251")), ok=["vm-b"], drop={"vm-c": "ingress-denied"})
    fx.frame("vm-a", v6(a, None, udp(5353, 5353), dip="ff02::fb", dmac=mcast_mac6("ff02::fb")), ok=["vm-b"], drop={"vm-c": "ingress-denied"})
    fx.frame("vm-a", v4(a, None, udp(52000, 9999), dip="255.255.255.255", dmac=BCAST), drop={"vm-b": "ingress-denied", "vm-c": "ingress-denied"})
    fx.frame("vm-a", v4(a, None, udp(52001, 7000), dip="239.1.1.1", dmac=mcast_mac4("239.1.1.1")), drop={"vm-b": "ingress-denied", "vm-c": "ingress-denied"})
    fx.frame("vm-c", v4(c, None, udp(5353, 5353), dip="10.0.0.255", dmac=BCAST), drop={"vm-c": "egress-denied"})
    fx.frame("vm-b", v4(b, None, udp(5353, 5353), dip="224.0.0.251", dmac=mcast_mac4("224.0.0.251")), ok=["vm-a"], drop={"vm-c": "ingress-denied"})
    fx.frame("vm-d", v4(d, None, udp(5353, 5353), dip="10.1.0.255", dmac=BCAST), ok=["vm-e"])
    fx.frame("vm-d", v4(d, None, udp(52002, 9999), dip="255.255.255.255", dmac=BCAST), drop={"vm-e": "ingress-denied"})
    fx.frame("vm-a", v4(a, None, udp(5353, 5353), sip="10.0.0.99", dip="10.0.0.255", dmac=BCAST), drop={"vm-a": "spoofed-ip"})
    fx.frame("vm-a", v4(a, None, tcp(52003, 80, "S"), dip="10.0.0.255", dmac=BCAST), ok=["vm-c"], drop={"vm-b": "ingress-denied"})
    return fx


@fixture
def network_isolation():
    a = Port("vm-a", 10, groups=["open"])
    b = Port("vm-b", 20, groups=["open"])
    up = Port("uplink1", 1, psec=False)
    # net2 reuses vm-a's IP and vm-b's MAC: networks are separate L2 domains.
    c = Port("vm-c", 30, network="net2", groups=["open"], ip4="10.0.0.10", ip6="fd00:1::a")
    d = Port("vm-d", 40, network="net2", groups=["open"], mac=mac_of(20), ip4="10.0.0.20", ip6="fd00:1::14")
    e5 = Port("vm-e", 50, network="net3", groups=["open"])
    fx = Fixture(
        "network-isolation",
        "Networks are isolated L2 domains; unknown unicast flooding; L2 learning; hairpin.",
        "Unicast by MAC within a network (the same MAC in another network is separate), "
        "unknown unicast flooded (port-security ports drop it dst-mac-mismatch, a "
        "port_security=false port receives it), MACs learned from a port without port "
        "security, hairpin, no-destination, a frame from an unknown interface.",
        [a, b, up, c, d, e5],
        groups_toml=OPEN,
    )
    fx.frame("vm-a", v4(a, b, udp(53000, 7)), ok=["vm-b"])
    fx.frame("vm-c", v4(c, d, udp(53001, 7)), ok=["vm-d"])  # same MAC as vm-b, other network
    fx.frame("vm-a", v4(a, None, udp(53002, 7), dip="10.0.0.99", dmac="fa:16:3e:00:00:99"), ok=["uplink1"], drop={"vm-b": "dst-mac-mismatch"})
    fx.frame("vm-c", v4(c, None, udp(53003, 7), dip="10.0.0.99", dmac="fa:16:3e:00:00:99"), drop={"vm-d": "dst-mac-mismatch"})
    fx.frame("vm-a", v4(a, c, udp(53004, 7), dip="10.0.0.30"), ok=["uplink1"], drop={"vm-b": "dst-mac-mismatch"})  # vm-c's MAC is unknown in net1
    fx.frame("vm-a", v4(a, None, udp(53005, 7), dip="198.51.100.1", dmac="02:00:00:00:01:01"), ok=["uplink1"], drop={"vm-b": "dst-mac-mismatch"})
    fx.frame("uplink1", v4(up, a, udp(7, 53005), sip="198.51.100.1", smac="02:00:00:00:01:01"), ok=["vm-a"])  # learns 02:..:01:01 on uplink1
    fx.frame("vm-a", v4(a, None, udp(53005, 7), dip="198.51.100.1", dmac="02:00:00:00:01:01"), ok=["uplink1"])  # now known: no flood
    fx.frame("vm-c", v4(c, None, udp(53006, 7), dip="198.51.100.1", dmac="02:00:00:00:01:01"), drop={"vm-d": "dst-mac-mismatch"})  # not learned in net2
    fx.frame("vm-c", v4(c, None, udp(53007, 7), dip="10.0.0.255", dmac=BCAST), ok=["vm-d"])
    fx.frame("vm-a", v4(a, a, udp(53008, 7), dip="10.0.0.10"), drop={"vm-a": "hairpin"})
    fx.frame("vm-e", v4(e5, None, udp(53009, 7), dip="10.0.0.255", dmac=BCAST), drop={"vm-e": "no-destination"})
    fx.frame("vm-e", v4(e5, a, udp(53010, 7)), drop={"vm-e": "no-destination"})  # vm-a's MAC is in net1
    return fx


@fixture
def non_ip():
    a = Port("vm-a", 10, groups=["open"])
    b = Port("vm-b", 20, groups=[])
    up = Port("uplink", 1, psec=False)
    fx = Fixture(
        "non-ip",
        "Non-IP ethertypes: dropped unless listed in permitted_ethertypes.",
        "LLDP (0x88cc) and IPX (0x8137) from an instance -> ethertype-denied; 0x88b5 listed in "
        "[switch] permitted_ethertypes passes (flooded / unicast); spoofed MAC still checked; "
        "non-IP frames are not subject to ingress rules (a port without groups receives them).",
        [a, b, up],
        groups_toml=OPEN,
        extra_toml='[switch]\npermitted_ethertypes = ["0x88b5"]\n',
    )
    lldp = bytes.fromhex("0207046c0000000001040703fa163e00000a0602007800000000")
    fx.frame("vm-a", e(a, "01:80:c2:00:00:0e", etype=0x88CC) / Raw(lldp), drop={"vm-a": "ethertype-denied"})
    fx.frame("vm-a", e(a, BCAST, etype=0x8137) / Raw(b"\xff\xff" + b"\x00" * 44), drop={"vm-a": "ethertype-denied"})
    fx.frame("vm-a", e(a, BCAST, etype=0x88B5) / Raw(b"local-experimental" + b"\x00" * 28), ok=["vm-b", "uplink"])
    fx.frame("vm-a", e(a, b.mac, etype=0x88B5) / Raw(b"local-experimental" + b"\x00" * 28), ok=["vm-b"])
    fx.frame("vm-a", e(a, BCAST, smac="02:00:00:00:00:66", etype=0x88B5) / Raw(b"\x00" * 46), drop={"vm-a": "spoofed-mac"})
    fx.frame("vm-a", e(a, "fa:16:3e:00:00:77", etype=0x88B5) / Raw(b"\x00" * 46), ok=["uplink"], drop={"vm-b": "dst-mac-mismatch"})
    fx.frame("uplink", e(up, "01:80:c2:00:00:0e", etype=0x88CC) / Raw(lldp), ok=["vm-a", "vm-b"])  # no egress checks on uplink
    fx.frame("vm-b", e(b, "01:80:c2:00:00:0e", etype=0x88CC) / Raw(lldp), drop={"vm-b": "ethertype-denied"})
    return fx


@fixture
def fragments():
    a = Port("vm-a", 10, groups=["udp-out"])
    b = Port("vm-b", 20, groups=["udp-in"])
    fx = Fixture(
        "fragments",
        "IPv4/IPv6 fragments: in order, out of order (held), denied, expired, overflow, orphan.",
        "Later fragments share the first fragment's verdict (delivered, ingress-denied or "
        "egress-denied alike); later fragments arriving first are held and released with the "
        "first fragment's verdict; a held fragment expires after [conntrack] fragment = 5 s "
        "(fragment-denied); a fragment whose first fragment never comes is reported at the "
        "end of the replay as fragment-denied.",
        [a, b],
        groups_toml=FRAG_GROUPS,
        extra_toml="[conntrack]\nfragment = 5\n",
    )
    data = bytes(range(64)) * 2  # 128 bytes of UDP payload -> 136 bytes L4
    ok_b = {"ok": ["vm-b"]}
    den_b = {"drop": {"vm-b": "ingress-denied"}}
    den_a = {"drop": {"vm-a": "egress-denied"}}

    def add(frs, order, verdict):
        for i in order:
            fx.frame("vm-a", frs[i], **verdict)

    # D1: v4 allowed, in order (3 fragments).
    add(frag4(a, b, UDP(sport=54000, dport=5000) / Raw(data), 101, 64), [0, 1, 2], ok_b)
    # D2: v4 allowed, out of order: 2nd and 3rd first (held), then the first.
    add(frag4(a, b, UDP(sport=54001, dport=5000) / Raw(data), 102, 64), [1, 2, 0], ok_b)
    # D3: v4 denied at vm-b, in order.
    add(frag4(a, b, UDP(sport=54002, dport=6000) / Raw(data), 103, 64), [0, 1, 2], den_b)
    # D4: v4 denied, last fragment first.
    add(frag4(a, b, UDP(sport=54003, dport=6000) / Raw(data), 104, 64), [2, 0, 1], den_b)
    # D5: egress-denied at vm-a (TCP), later fragment first.
    add(frag4(a, b, TCP(sport=54004, dport=5000, flags="S", seq=1, window=1024) / Raw(data), 105, 64), [1, 0, 2], den_a)
    # D6: v6 allowed, in order.
    add(frag6(a, b, UDP(sport=54005, dport=5000) / Raw(data), 0x10006, 64), [0, 1, 2], ok_b)
    # D7: v6 allowed, out of order.
    add(frag6(a, b, UDP(sport=54006, dport=5000) / Raw(data), 0x10007, 64), [2, 1, 0], ok_b)
    # D8: v6 denied, out of order.
    add(frag6(a, b, UDP(sport=54007, dport=6000) / Raw(data), 0x10008, 64), [1, 0, 2], den_b)
    # D9: expiry. A later fragment at t=10 s waits; the first fragment comes at t=20 s,
    # after the 5 s fragment timeout: the held one is fragment-denied, the first fragment
    # and the last fragment (after it) are judged normally (delivered).
    d9 = frag4(a, b, UDP(sport=54008, dport=5000) / Raw(data), 109, 64)
    fx.at(10.0)
    fx.frame("vm-a", d9[1], drop={"vm-a": "fragment-denied"})
    fx.at(20.0)
    fx.frame("vm-a", d9[0], ok=["vm-b"])
    fx.frame("vm-a", d9[2], ok=["vm-b"])
    # D14: orphan v6 fragment at the end: its first fragment never comes.
    orphan = frag6(a, b, UDP(sport=54020, dport=5000) / Raw(data), 0x10014, 64)
    fx.frame("vm-a", orphan[1], drop={"vm-a": "fragment-denied"})
    return fx


@fixture
def fragment_overflow():
    a = Port("vm-a", 10, groups=["udp-out"])
    b = Port("vm-b", 20, groups=["udp-in"])
    fx = Fixture(
        "fragment-overflow",
        "Bounded memory for held fragments: max_pending_fragments = 3.",
        "Three later fragments of three datagrams are held (the limit), the fourth is dropped "
        "fragment-overflow at once (the held ones are kept); the first fragments then release "
        "the held ones with their verdict; the overflowed datagram's first fragment, sent after "
        "the others' verdicts expired (fragment = 5 s), is judged normally, and so is a later "
        "datagram. At most 3 datagrams are known at any time, so a table bounded by the same "
        "number of datagrams gives the same verdicts.",
        [a, b],
        groups_toml=FRAG_GROUPS,
        extra_toml="[conntrack]\nfragment = 5\nmax_pending_fragments = 3\n",
    )
    data = bytes(range(64))
    ds = [frag4(a, b, UDP(sport=54010 + i, dport=5000) / Raw(data), 110 + i, 48) for i in range(4)]
    for i in range(3):
        fx.frame("vm-a", ds[i][1], ok=["vm-b"])  # held, released by frames 5-7
    fx.frame("vm-a", ds[3][1], drop={"vm-a": "fragment-overflow"})
    for i in range(3):
        fx.frame("vm-a", ds[i][0], ok=["vm-b"])
    fx.at(8.0)  # datagrams 110-112 (last seen at <= 1.5 s) have expired
    fx.frame("vm-a", ds[3][0], ok=["vm-b"])
    d = frag4(a, b, UDP(sport=54014, dport=5000) / Raw(data), 114, 48)
    fx.frame("vm-a", d[0], ok=["vm-b"])
    fx.frame("vm-a", d[1], ok=["vm-b"])
    return fx


ATTACK_GROUPS = """
[[security_groups]]
name = "out"
rules = [ { direction = "egress" },
          { direction = "egress", ethertype = "IPv6" } ]

[[security_groups]]
name = "in"
rules = [ { direction = "ingress", protocol = "udp", port_range_min = 5000, port_range_max = 5000 },
          { direction = "ingress", ethertype = "IPv6", protocol = "udp", port_range_min = 5000, port_range_max = 5000 },
          { direction = "ingress", protocol = "tcp", port_range_min = 80, port_range_max = 80 },
          { direction = "ingress", ethertype = "IPv6", protocol = "tcp", port_range_min = 80, port_range_max = 80 } ]
"""


def frag_range(src, dst, l4pkt, ident, lo, hi, v6=False):
    """Bytes [lo, hi) of the datagram carrying `l4pkt` as one fragment (lo a multiple of
    8; M set unless hi reaches the end): overlapping and odd fragments that frag4/frag6
    cannot make."""
    if v6:
        whole = IPv6(bytes(IPv6(src=src.ip6, dst=dst.ip6, hlim=64) / l4pkt))
        nh, payload = whole.nh, bytes(whole.payload)
        ip = IPv6(src=whole.src, dst=whole.dst, hlim=64) / IPv6ExtHdrFragment(
            nh=nh, offset=lo // 8, m=1 if hi < len(payload) else 0, id=ident
        )
    else:
        whole = IP(bytes(IP(src=src.ip4, dst=dst.ip4, id=ident) / l4pkt))
        proto, payload = whole.proto, bytes(whole.payload)
        more = hi < len(payload)
        ip = IP(src=whole.src, dst=whole.dst, id=ident, proto=proto, flags="MF" if more else 0, frag=lo // 8)
    assert lo % 8 == 0 and hi <= len(payload)
    return e(src, dst.mac) / ip / Raw(payload[lo:hi])


@fixture
def fragment_attacks():
    a = Port("vm-a", 10, groups=["out"])
    b = Port("vm-b", 20, groups=["in"])
    fx = Fixture(
        "fragment-attacks",
        "Fragment attacks (#14): overlaps (RFC 1858, RFC 5722), duplicates, tiny first fragments (RFC 7112).",
        "A fragment overlapping bytes already seen is fragment-overlap and so is every later "
        "fragment of its datagram, held ones included, for IPv4 and IPv6; the first fragment "
        "of a denied datagram re-sent with an allowed port is a duplicate (same length) or an "
        "overlap (longer), never delivered; an exact repeat is fragment-duplicate and the "
        "datagram goes on; a TCP fragment at offset 8 (inside the TCP header) is an overlap "
        "before the first fragment comes; a first fragment cut inside its TCP header or its "
        "IPv6 extension header chain is fragment-tiny with every fragment of its datagram; "
        "the same cut unfragmented is malformed; an allowed datagram in reverse order passes.",
        [a, b],
        groups_toml=ATTACK_GROUPS,
    )
    data = bytes(range(64)) * 2
    ok_b = {"ok": ["vm-b"]}
    ovl = {"drop": {"vm-a": "fragment-overlap"}}
    dup = {"drop": {"vm-a": "fragment-duplicate"}}
    tiny = {"drop": {"vm-a": "fragment-tiny"}}

    def send(l4pkt, ident, spans, v6=False):
        for (lo, hi), verdict in spans:
            fx.frame("vm-a", frag_range(a, b, l4pkt, ident, lo, hi, v6), **verdict)

    u5000 = UDP(sport=55000, dport=5000) / Raw(data)  # 136 bytes
    # A1: IPv4, two fragments delivered, then one overlapping the second: it and the last
    # are dropped (the delivered ones cannot be called back).
    send(u5000, 201, [((0, 48), ok_b), ((48, 96), ok_b), ((88, 136), ovl), ((96, 136), ovl)])
    # A2: IPv6 (RFC 5722), a held fragment, then one overlapping it: both dropped, and the
    # first fragment after them.
    send(u5000, 0x20002, [((48, 96), ovl), ((56, 104), ovl), ((0, 48), ovl)], v6=True)
    # A3: a denied datagram (udp/6000), its first fragment re-sent with the allowed port:
    # same length (duplicate), longer (overlap); the rest of the datagram is dropped.
    u6000 = UDP(sport=55003, dport=6000) / Raw(data)
    allowed = UDP(sport=55003, dport=5000) / Raw(data)
    send(u6000, 203, [((0, 48), {"drop": {"vm-b": "ingress-denied"}})])
    send(allowed, 203, [((0, 48), dup), ((0, 56), ovl)])
    send(u6000, 203, [((48, 96), ovl), ((96, 136), ovl)])
    # A4: an exact repeat of a later fragment: dropped alone, the datagram completes.
    send(UDP(sport=55004, dport=5000) / Raw(data), 204, [((0, 48), ok_b), ((48, 96), ok_b), ((48, 96), dup), ((96, 136), ok_b)])
    # A5: RFC 1858 §4: a TCP fragment at offset 8 bytes (rewriting the flags of the SYN)
    # before the first fragment: an overlap at once, then the whole datagram is dropped.
    syn = TCP(sport=55005, dport=80, flags="S", seq=1, window=1024) / Raw(data)  # 148 bytes
    ack = TCP(sport=55005, dport=80, flags="A", seq=1, window=1024) / Raw(data)
    send(ack, 205, [((8, 48), ovl)])
    send(syn, 205, [((0, 48), ovl), ((48, 148), ovl)])
    # A6: a TCP first fragment of 16 bytes (the ports are there, the flags are not): tiny,
    # and every other fragment of it.
    send(syn, 206, [((0, 16), tiny), ((16, 48), tiny), ((48, 148), tiny)])
    # A7: IPv6 first fragment whose chain is cut (RFC 7112): destination options claiming
    # 16 bytes, 8 present; then its second fragment.
    for off, m in [(0, 1), (1, 0)]:
        ip6 = IPv6(src=a.ip6, dst=b.ip6, hlim=64) / IPv6ExtHdrFragment(nh=60, offset=off, m=m, id=0x20007)
        fx.frame("vm-a", e(a, b.mac) / ip6 / Raw(bytes([6, 1, 1, 4, 0, 0, 0, 0])), **tiny)
    # A8: the same 16 TCP bytes unfragmented: malformed.
    fx.frame("vm-a", e(a, b.mac) / IP(src=a.ip4, dst=b.ip4, proto=6) / Raw(bytes(syn)[:16]), drop={"vm-a": "malformed"})
    # A9: an allowed datagram in reverse order passes whole (two held, then the first).
    send(UDP(sport=55009, dport=5000) / Raw(data), 209, [((96, 136), ok_b), ((48, 96), ok_b), ((0, 48), ok_b)])
    return fx


@fixture
def malformed():
    a = Port("vm-a", 10, groups=["open"])
    b = Port("vm-b", 20, groups=["open"])
    fx = Fixture(
        "malformed",
        "Malformed frames are dropped at the ingress port (classic pcap with --in-port).",
        "Classic .pcap input (`--in-port vm-a`). Truncated Ethernet, truncated IPv4 header, "
        "IHL < 5, IHL beyond the data, total length beyond the frame, wrong IP version, "
        "truncated TCP/UDP headers, truncated IPv6 header and payload, truncated ARP -> "
        "malformed; a valid frame with Ethernet padding is not malformed.",
        [a, b],
        groups_toml=OPEN,
        classic_in_port="vm-a",
    )
    good = bytes(v4(a, b, udp(55000, 7, b"hello")))  # 14 + 20 + 8 + 5 bytes
    M = {"drop": {"vm-a": "malformed"}}
    fx.frame("vm-a", None, raw=good, ok=["vm-b"])
    fx.frame("vm-a", None, raw=good[:12], **M)  # shorter than an Ethernet header
    fx.frame("vm-a", None, raw=good[:14 + 12], **M)  # IPv4 header cut at 12 bytes
    bad_ihl = bytearray(good)
    bad_ihl[14] = 0x44  # version 4, IHL 4 (16 bytes) < 5
    fx.frame("vm-a", None, raw=bytes(bad_ihl), **M)
    big_ihl = bytearray(good)
    big_ihl[14] = 0x4F  # IHL 15 = 60 bytes, more than the 33-byte packet
    fx.frame("vm-a", None, raw=bytes(big_ihl), **M)
    long_tl = bytes(v4(a, b, udp(55001, 7, b"hello"), len=200))  # total length 200 > 33 present
    fx.frame("vm-a", None, raw=long_tl, **M)
    ver6 = bytearray(good)
    ver6[14] = 0x65  # version 6 inside an IPv4 ethertype
    fx.frame("vm-a", None, raw=bytes(ver6), **M)
    t = bytes(v4(a, b, tcp(55002, 80, "S")))
    fx.frame("vm-a", None, raw=t[:14 + 20 + 10], **M)  # TCP header cut at 10 bytes (IP len fixed below)
    short_tcp = IP(src=a.ip4, dst=b.ip4, proto=6) / Raw(bytes(tcp(55003, 80, "S"))[:10])
    fx.frame("vm-a", e(a, b.mac) / short_tcp, **M)  # consistent IP length, 10-byte TCP header
    short_udp = IP(src=a.ip4, dst=b.ip4, proto=17) / Raw(b"\xd6\xdb\x00\x07")
    fx.frame("vm-a", e(a, b.mac) / short_udp, **M)  # 4-byte UDP header
    g6 = bytes(v6(a, b, udp(55004, 7, b"hello")))
    fx.frame("vm-a", None, raw=g6[:14 + 30], **M)  # IPv6 header cut at 30 bytes
    fx.frame("vm-a", None, raw=g6[:-3], **M)  # payload length beyond the frame
    arpb = bytes(e(a, BCAST) / ARP(op=1, hwsrc=a.mac, psrc=a.ip4, pdst=b.ip4, hwdst="00:00:00:00:00:00"))
    fx.frame("vm-a", None, raw=arpb[:14 + 20], **M)  # ARP cut at 20 bytes
    fx.frame("vm-a", None, raw=good + b"\x00" * (60 - len(good)), ok=["vm-b"])  # padded to 60: fine
    fx.frame("vm-a", None, raw=g6, ok=["vm-b"])
    return fx


@fixture
def port_security_disabled():
    r = Port("router", 1, psec=False)
    a = Port("vm-a", 10, groups=["web"])
    b = Port("vm-b", 20, psec=False, groups=[])
    groups = """
[[security_groups]]
name = "web"
rules = [ { direction = "ingress", protocol = "tcp", port_range_min = 80, port_range_max = 80 },
          { direction = "egress", ethertype = "IPv4" } ]
"""
    fx = Fixture(
        "port-security-disabled",
        "port_security = false: a router/uplink port and a trusted instance without any checks.",
        "Ports with port_security = false send any source MAC/IP, DHCP server replies, RAs, "
        "invalid TCP, any ethertype, and receive everything; the protected port next to them "
        "still applies its ingress rules and connection tracking; MACs learned from the router "
        "port are unicast, not flooded; a malformed frame is dropped even there.",
        [r, a, b],
        groups_toml=groups,
    )
    fx.frame("router", v4(r, a, tcp(56000, 80, "S"), sip="198.51.100.20"), ok=["vm-a"])
    ext_mac = "02:00:00:00:02:02"
    t = Conn(r, a, 56001, 80, cip="198.51.100.21", cmac=ext_mac)
    fx.frame("router", t.c("S"), ok=["vm-a"])  # arbitrary source MAC; learned on `router`
    fx.frame("vm-a", t.s("SA"), ok=["router"])  # to the learned MAC: no flood to vm-b
    fx.frame("router", t.c("A"), ok=["vm-a"])
    fx.frame("router", v4(r, a, tcp(56002, 22, "S"), sip="198.51.100.20"), drop={"vm-a": "ingress-denied"})
    fx.frame("router", v4(r, a, tcp(56003, 80, "SA", seq=1, ack=1), sip="198.51.100.20"), drop={"vm-a": "invalid-state"})
    fx.frame("router", v4(r, a, UDP(sport=67, dport=68) / Raw(b"\x02" + b"\x00" * 20)), ok=["vm-a"])
    ra = ICMPv6ND_RA(routerlifetime=1800) / ICMPv6NDOptSrcLLAddr(lladdr=r.mac)
    fx.frame("router", v6(r, None, ra, sip=r.lla, dip="ff02::1", dmac=mcast_mac6("ff02::1"), hlim=255), ok=["vm-a", "vm-b"])
    fx.frame("vm-b", v4(b, r, tcp(56004, 443, "SA", seq=1, ack=1), sip="10.9.9.9", smac="02:00:00:00:03:03"), ok=["router"])
    fx.frame("vm-b", v4(b, None, UDP(sport=67, dport=68) / Raw(b"\x02" + b"\x00" * 20), dip="255.255.255.255", dmac=BCAST), ok=["router", "vm-a"])
    fx.frame("vm-b", e(b, "01:80:c2:00:00:0e", etype=0x88CC) / Raw(b"\x00" * 46), ok=["router", "vm-a"])
    fx.frame("vm-b", v4(b, a, tcp(56005, 80, "S"), sip="10.0.0.99"), ok=["vm-a"])
    fx.frame("vm-a", v4(a, None, udp(56006, 53), dip="198.51.100.53", dmac=ext_mac), ok=["router"])
    fx.frame("vm-a", v4(a, None, udp(56007, 53), dip="198.51.100.53", dmac="02:00:00:00:03:03"), ok=["vm-b"])  # learned from vm-b
    fx.frame("router", None, raw=bytes(v4(r, a, udp(56008, 80)))[:14 + 10], drop={"router": "malformed"})
    return fx


# --------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------


README_HEAD = """# pcap fixtures

Generated by `generate.py` -- never edit these files by hand. Regenerate everything with

    /usr/bin/python3 pcap-fixtures/generate.py

(scapy from the Debian package `python3-scapy`; the pyenv python has no scapy), and prove
the committed files are exactly what the script produces with

    /usr/bin/python3 pcap-fixtures/generate.py --check

`tests/replay_fixtures.rs` replays each fixture through `sgswitch replay` and compares the
output with `expected.jsonl`.

## Layout of a fixture directory

- `capture.pcapng` -- one interface per ingress port, the interface's `if_name` is the port
  name; or `capture.pcap` (classic, Ethernet) with `--in-port` in `args`.
- `config.toml` -- the switch config (see the config format in the crate docs).
- `apply-N.toml` -- whole configs swapped in with `--apply-at`.
- `args` -- extra `sgswitch replay` arguments: every line that is not empty and does not
  start with `#` is split on whitespace into arguments (no quoting). Paths are relative to
  the fixture directory (the test runs the replay there).
- `expected.jsonl` -- one JSON object per frame, exactly what
  `sgswitch replay --config config.toml --json <args> <capture>` must print (compared as
  parsed objects keyed by `frame`; line order does not matter).

The replay is run as

    cd pcap-fixtures/<name> && sgswitch replay --config config.toml --json $(grep -v '^#' args) capture.pcap[ng]

Timestamps (pcapng: nanosecond resolution, `if_tsresol` = 9 on every interface, which is
also what the pcap-file crate assumes; classic pcap: microseconds): the first frame of every capture is at 1700000000.000000 s, later frames every
0.25 s unless a fixture places them explicitly (apply-at boundaries and timeouts). The frame
right after an `--apply-at S` boundary is placed exactly at first_ts + S (the new config
applies to it).

Addresses: 10.0.0.0/24, 10.1.0.0/24, fd00:1::/64, fd00:2::/64 for ports, MACs
fa:16:3e:00:00:NN (port n has 10.0.0.n and fd00:1::n in hex), documentation ranges
(192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32) for the outside.

## Readings of the spec these fixtures pin

Where `pipeline-spec.md` leaves room, the expected verdicts take these positions (the
frame that pins each one is named):

1. Fragments: a later fragment copies its first fragment's whole outcome -- the same
   `delivered` list and the same drops with the same reasons (`ingress-denied` at vm-b,
   `egress-denied` at vm-a, ...), not `fragment-denied` (`fragments` 2-15, 17-24).
   `fragment-denied` is only for a held fragment that expires or is still held when the
   replay ends, and names the ingress port (`fragments` 25, 28). `max_pending_fragments =
   N` holds N fragments; the (N+1)th is dropped `fragment-overflow` at the ingress port (the
   newest is dropped, nothing is evicted) (`fragment-overflow` 4). After a held fragment expired,
   the datagram's first fragment is judged like a packet and later fragments after it
   share its verdict (`fragments` 26-27).
   Before that, every fragment is placed in its datagram: one overlapping bytes seen is
   `fragment-overlap` at the ingress port and so is every later fragment of that datagram
   (held ones too, at their own frame); an exact repeat of seen bytes is
   `fragment-duplicate` alone; a first fragment cut inside its L4 header or IPv6 header
   chain is `fragment-tiny` with its whole datagram (`fragment-attacks`).
2. Non-IP frames at a destination port (ARP, RARP, permitted ethertypes, any ethertype
   sent by a port without port security) get no ingress rule or ethertype check, only the
   unicast `dst-mac-mismatch` check; `permitted_ethertypes` is an egress check of port
   security (`non-ip` 3, 7; `arp` 14; `port-security-disabled` 11).
3. ARP sender IP is checked pairwise, as Neutron's OVS driver does (arp_spa per allowed
   (MAC, IP) pair): a fixed IPv4 only from the port MAC, an AAP IP only with that pair's
   MAC (`arp` 9, 10). IP anti-spoofing is pairwise too (`anti-spoofing` 5, 6, 10, 15).
4. TCP validity comes before rule lookup: a flagless segment (or SYN/ACK, FIN, RST) with no
   tracked connection is `invalid-state` even to a port no rule allows (`invalid-tcp` 13).
5. The first packet of a tracked connection after a config change re-judges the
   connection's original direction even when it travels in the reply direction
   (`connection-cut` 9, 20); a connection the new config still allows continues
   (`remote-groups` 13, `connection-cut` 11).
6. MAC learning: source MACs of frames received on port_security=false ports are learned
   per network; a learned MAC is unicast to that port, not flooded (`network-isolation`
   6-9, `port-security-disabled` 3, 14). A MAC configured in another network is unknown
   here; the same MAC may be configured in two networks (`network-isolation` 2, 5).
7. An `--apply-at S` boundary frame at exactly first_ts + S already sees the new config.
8. A pcapng interface whose name is not a configured port is bad input: the replay stops
   with an error naming the interface and exits non-zero (tests/replay_fixtures.rs checks
   it; it is not a fixture frame).
9. Malformed: a non-fragment TCP header shorter than 20 bytes or UDP shorter than 8, an
   IPv4 total length beyond the frame, IHL < 5 or beyond the data, version != 4 under
   ethertype 0x0800, a truncated IPv6 header or payload, a truncated ARP body. Ethernet
   padding after the IP packet is fine (`malformed`).
10. MLD messages carry a hop-by-hop (router alert) header before ICMPv6; the parser walks
    it (`ipv6-control` 9-12). NA with the port's own EUI-64 link-local as target is fine
    (`ipv6-control` 4).
11. DHCP client requests (UDP 68->67, 546->547) are always allowed at the sender only; at
    a receiving port with port security they need an ingress rule (`dhcp` 1, 11, 14).
12. Ports with port_security = false are always written with `security_groups = []`
    (Neutron refuses groups on them), so their IPs are in no remote group.

Config keys the fixtures use beyond the brief's example: `remote_address_group = "name"`;
`protocol` as an integer (`132`) and as a string (`"0"`, names); `[switch]
permitted_ethertypes = ["0x88b5"]`; `[conntrack] fragment = 5, max_pending_fragments = 3`.

## Fixtures

"""


def vnet_hdr(flags=0, gso_type=0, hdr_len=0, gso_size=0, csum_start=0, csum_offset=0):
    """A virtio-net header (little endian, as the tap reads it on x86 and arm64)."""
    return struct.pack("<BBHHHH", flags, gso_type, hdr_len, gso_size, csum_start, csum_offset)


def partial(frame, l3, l4, csum_at):
    """`frame` with its L4 checksum replaced by the pseudo-header seed, as a sender with
    checksum offload leaves it (NEEDS_CSUM)."""
    b = bytearray(frame)
    if b[12:14] == b"\x08\x00":
        addrs, l4len = bytes(b[l3 + 12:l3 + 20]), len(b) - l4
    else:
        addrs, l4len = bytes(b[l3 + 8:l3 + 40]), len(b) - l4
    pseudo = addrs + struct.pack("!HH", b[l3 + 9] if b[12:14] == b"\x08\x00" else b[l3 + 6], l4len)
    acc = sum(struct.unpack("!%dH" % (len(pseudo) // 2), pseudo))
    while acc >> 16:
        acc = (acc & 0xFFFF) + (acc >> 16)
    b[csum_at:csum_at + 2] = struct.pack("!H", acc)
    return bytes(b)


@fixture
def gso():
    a = Port("vm-a", 10, groups=["gso"])
    b = Port("vm-b", 20, groups=["gso"])
    fx = Fixture(
        "gso",
        "GSO superframes and partial checksums from a tap with vnet_hdr (pcapng link type 147).",
        "Each frame behind its virtio-net header: TCPv4, TCPv6 and UDP (USO) superframes of "
        "64 KB and less and a partial checksum are judged once, as one frame (allowed, and a "
        "UDP superframe no rule allows: `ingress-denied` once); malformed headers (gso_size 0, "
        "csum_start or hdr_len past the end, unknown, UFO and ECN GSO types, a type not "
        "matching the frame, a header cut short) are `bad-offload` at the ingress port.",
        [a, b],
        groups_toml="""
[[security_groups]]
name = "gso"
rules = [ { direction = "egress", ethertype = "IPv4" },
          { direction = "egress", ethertype = "IPv6" },
          { direction = "ingress", protocol = "tcp", port_range_min = 80, port_range_max = 80 },
          { direction = "ingress", ethertype = "IPv6", protocol = "tcp", port_range_min = 80, port_range_max = 80 },
          { direction = "ingress", protocol = "udp", port_range_min = 4789, port_range_max = 4789 } ]
""",
        vnet=True,
    )
    pay = bytes(range(256)) * 255  # 65,280 bytes
    # TCPv4: handshake (plain frames), then a 64 KB superframe and a partial checksum.
    fx.frame("vm-a", v4(a, b, tcp(40000, 80, "S", seq=1000)), ok=["vm-b"])
    fx.frame("vm-b", v4(b, a, tcp(80, 40000, "SA", seq=5000, ack=1001)), ok=["vm-a"])
    fx.frame("vm-a", v4(a, b, tcp(40000, 80, "A", seq=1001, ack=5001)), ok=["vm-b"])
    sf = bytes(v4(a, b, tcp(40000, 80, "PA", seq=1001, ack=5001, data=pay[:65_000]), flags="DF"))
    assert len(sf) - 14 == 20 + 20 + 65_000
    h = vnet_hdr(1, 1, 54, 1448, 34, 16)
    fx.frame("vm-a", None, raw=partial(sf, 14, 34, 50), vnet=h, ok=["vm-b"])
    small = bytes(v4(a, b, tcp(40000, 80, "PA", seq=66001, ack=5001, data=b"tail")))
    fx.frame("vm-a", None, raw=partial(small, 14, 34, 50), vnet=vnet_hdr(1, 0, 0, 0, 34, 16), ok=["vm-b"])
    # TCPv6.
    fx.frame("vm-a", v6(a, b, tcp(40001, 80, "S", seq=7000)), ok=["vm-b"])
    fx.frame("vm-b", v6(b, a, tcp(80, 40001, "SA", seq=9000, ack=7001)), ok=["vm-a"])
    sf6 = bytes(v6(a, b, tcp(40001, 80, "A", seq=7001, ack=9001, data=pay[:30_000])))
    fx.frame("vm-a", None, raw=partial(sf6, 14, 54, 70), vnet=vnet_hdr(1, 4, 74, 1428, 54, 16), ok=["vm-b"])
    # UDP segmentation offload (GSO_UDP_L4): allowed, and one no rule allows.
    uf = bytes(v4(a, b, udp(5000, 4789, pay[:20_000])))
    fx.frame("vm-a", None, raw=partial(uf, 14, 34, 40), vnet=vnet_hdr(1, 5, 42, 1400, 34, 6), ok=["vm-b"])
    uf2 = bytes(v4(a, b, udp(5000, 4790, pay[:3000])))
    fx.frame("vm-a", None, raw=partial(uf2, 14, 34, 40), vnet=vnet_hdr(1, 5, 42, 1400, 34, 6),
             drop={"vm-b": "ingress-denied"})
    # Malformed headers: each dropped at the ingress port, whatever the frame would get.
    B = {"drop": {"vm-a": "bad-offload"}}
    sf_small = bytes(v4(a, b, tcp(40000, 80, "PA", seq=1001, ack=5001, data=pay[:3000]), flags="DF"))
    sfp = partial(sf_small, 14, 34, 50)  # 3,000 bytes of payload: the capture stays small
    fx.frame("vm-a", None, raw=sfp, vnet=vnet_hdr(1, 1, 54, 0, 34, 16), **B)  # gso_size 0
    fx.frame("vm-a", None, raw=sfp, vnet=vnet_hdr(1, 1, 54, 1448, 3100, 16), **B)  # csum_start past the end
    fx.frame("vm-a", None, raw=small, vnet=vnet_hdr(1, 0, 0, 0, 60, 16), **B)  # partial checksum past the end
    fx.frame("vm-a", None, raw=sfp, vnet=vnet_hdr(1, 1, 65_535, 1448, 34, 16), **B)  # hdr_len past the end
    fx.frame("vm-a", None, raw=sfp, vnet=vnet_hdr(1, 9, 54, 1448, 34, 16), **B)  # unknown GSO type
    fx.frame("vm-a", None, raw=sfp, vnet=vnet_hdr(1, 3, 54, 1448, 34, 16), **B)  # UFO, never announced
    fx.frame("vm-a", None, raw=sfp, vnet=vnet_hdr(1, 0x81, 54, 1448, 34, 16), **B)  # ECN bit
    fx.frame("vm-a", None, raw=sfp, vnet=vnet_hdr(1, 4, 54, 1448, 34, 16), **B)  # TCPv6 type, IPv4 frame
    fx.frame("vm-a", None, raw=uf2, vnet=vnet_hdr(1, 1, 42, 1400, 34, 16), **B)  # TCPv4 type, UDP frame
    fx.frame("vm-a", None, raw=sfp, vnet=vnet_hdr(0, 1, 54, 1448, 34, 16), **B)  # GSO without NEEDS_CSUM
    fx.frame("vm-a", None, raw=b"", vnet=b"\x01\x01\x00", **B)  # a header cut short
    # A valid header again: the connection goes on.
    fx.frame("vm-a", None, raw=partial(small, 14, 34, 50), vnet=vnet_hdr(1, 0, 0, 0, 34, 16), ok=["vm-b"])
    return fx


def generate(root):
    fixtures = [fn() for fn in FIXTURES]
    names = [f.name for f in fixtures]
    assert len(set(names)) == len(names)
    for f in fixtures:
        f.write(root)
    lines = [README_HEAD]
    lines.append("| fixture | frames | input | covers |\n|---|---|---|---|\n")
    for f in fixtures:
        kind = "pcap (`--in-port %s`)" % f.classic_in_port if f.classic_in_port else "pcapng"
        extra = ""
        if f.applies:
            extra = " Config changes: " + ", ".join("%s s -> `%s`" % (s, n) for s, n, _ in f.applies) + "."
        lines.append("| `%s` | %d | %s | %s%s |\n" % (f.name, len(f.frames), kind, f.covers, extra))
    with open(os.path.join(root, "README.md"), "w") as fh:
        fh.write("".join(lines))
    with open(os.path.join(root, "INDEX"), "w") as fh:
        fh.write("# Fixture directories (generated by generate.py); tests/replay_fixtures.rs checks them all.\n")
        for n in names:
            fh.write(n + "\n")
    return fixtures


def tree_files(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for fn in filenames:
            p = os.path.join(dirpath, fn)
            rel = os.path.relpath(p, root)
            if rel == "generate.py":
                continue
            with open(p, "rb") as fh:
                out[rel] = fh.read()
    return out


def main(argv):
    if len(argv) > 1 and argv[1] == "--check":
        tmp = tempfile.mkdtemp(prefix="sgswitch-fixtures-")
        try:
            generate(tmp)
            want = tree_files(tmp)
            have = tree_files(HERE)
        finally:
            shutil.rmtree(tmp)
        bad = []
        for rel in sorted(set(want) | set(have)):
            if rel not in have:
                bad.append("missing (not committed): " + rel)
            elif rel not in want:
                bad.append("stale (not generated): " + rel)
            elif want[rel] != have[rel]:
                bad.append("differs from the generator's output: " + rel)
        if bad:
            print("pcap fixtures are out of date:\n  " + "\n  ".join(bad))
            return 1
        print("pcap fixtures: %d files match the generator" % len(want))
        return 0
    if len(argv) > 1:
        print("usage: generate.py [--check]", file=sys.stderr)
        return 2
    for d in os.listdir(HERE):  # drop fixtures that no longer exist
        p = os.path.join(HERE, d)
        if os.path.isdir(p) and os.path.exists(os.path.join(p, "expected.jsonl")):
            shutil.rmtree(p)
    fixtures = generate(HERE)
    total = sum(len(f.frames) for f in fixtures)
    print("generated %d fixtures, %d frames" % (len(fixtures), total))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
