#!/usr/bin/env python3
"""Write the seed inputs of the fuzz targets into fuzz/corpus/<target>/ from the
repository's own fixtures (and a sample of tcpdump's test captures,
tests/corpus/tcpdump/). Run from anywhere; it only adds files (named by their SHA-1, as libFuzzer
names them), so the inputs the fuzzers found and that were merged in stay.

  parse     every frame of pcap-fixtures/*/capture.pcap(ng), and Ethernet frames of a
            sample of tests/corpus/tcpdump/
  pcap      the fixture captures, and small pcap/pcapng files of the tcpdump sample
  config    configs/*.toml, pcap-fixtures/*/config.toml, tests/fixtures/state-v1/export.toml
  api       tests/fixtures/api-bodies.txt, 8 requests per input (the `=>` lines dropped)
  pipeline  its input is the choices of a decoder (a policy, then frames): 24 pseudo-random
            inputs of 256 to 4096 bytes (fixed seed) so that runs start with many ports,
            rules and frames; the fuzzer's merged corpus is kept beside them
"""
import hashlib
import pathlib
import random
import struct
import sys

FUZZ = pathlib.Path(__file__).resolve().parent
ROOT = FUZZ.parent
SHARED = ROOT / "tests" / "corpus" / "tcpdump"
# Budgets: the committed corpus stays small.
MAX_FRAME = 1600
MAX_TCPDUMP_FRAMES = 400
MAX_TCPDUMP_FILE = 3000
MAX_TCPDUMP_FILES = 40


# Requests on the objects of the api target's seed store (`{name}` is replaced by the id).
API_EXTRA = [
    "GET /\nGET /v2.0\nGET /v2.0/extensions\nGET /v2.0/networks\nGET /v2.0/networks/{spare}\n",
    "GET /v2.0/security-groups?name=web&fields=id\nGET /v2.0/security-groups/{web}\n"
    "PUT /v2.0/security-groups/{web} {\"security_group\": {\"name\": \"www\", \"stateful\": false}}\n"
    "DELETE /v2.0/security-groups/{nostate}\n",
    "GET /v2.0/security-group-rules?direction=ingress\nGET /v2.0/security-group-rules/{rule0}\n"
    "DELETE /v2.0/security-group-rules/{rule1}\nPUT /v2.0/security-group-rules/{rule0} {}\n"
    "POST /v2.0/security-group-rules {\"security_group_rule\": {\"security_group_id\": \"{nostate}\", "
    "\"direction\": \"egress\", \"remote_group_id\": \"{web}\"}}\n",
    "GET /v2.0/ports?network_id={net1}\nGET /v2.0/ports/{vm-a}\n"
    "PUT /v2.0/ports/{vm-b} {\"port\": {\"security_groups\": [\"{web}\", \"{nostate}\"]}}\n"
    "PUT /v2.0/ports/{vm-a} {\"port\": {\"port_security_enabled\": false, \"security_groups\": []}}\n"
    "DELETE /v2.0/ports/{vm-b}\n",
    "POST /v2.0/ports {\"port\": {\"name\": \"vm-c\", \"network_id\": \"{net1}\", "
    "\"fixed_ips\": [{\"ip_address\": \"10.0.0.12\"}], \"allowed_address_pairs\": "
    "[{\"ip_address\": \"10.0.0.0/28\"}]}}\nGET /v2.0/ports\n",
    "GET /v2.0/address-groups/{office}\n"
    "PUT /v2.0/address-groups/{office}/add_addresses {\"addresses\": [\"203.0.113.0/24\"]}\n"
    "PUT /v2.0/address-groups/{office}/remove_addresses {\"addresses\": [\"198.51.100.0/24\"]}\n"
    "DELETE /v2.0/address-groups/{office}\n",
    "GET /v2.0/log/loggable-resources\nGET /v2.0/log/logs\nGET /v2.0/log/logs/{weblog}\n"
    "PUT /v2.0/log/logs/{weblog} {\"log\": {\"enabled\": false}}\n"
    "POST /v2.0/log/logs {\"log\": {\"name\": \"l2\", \"resource_type\": \"security_group\", "
    "\"event\": \"ALL\", \"target_id\": \"{vm-a}\"}}\nDELETE /v2.0/log/logs/{weblog}\n",
]


def put(target, data):
    d = FUZZ / "corpus" / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


def frames(data):
    """(link type, frame) of a pcap or pcapng file; stops quietly at the first damage."""
    out = []
    if len(data) < 24:
        return out
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = "<" if magic[0] in (0xD4, 0x4D) else ">"
        link = struct.unpack(e + "I", data[20:24])[0] & 0xFFFF
        off = 24
        while off + 16 <= len(data):
            incl = struct.unpack(e + "I", data[off + 8 : off + 12])[0]
            if off + 16 + incl > len(data):
                break
            out.append((link, data[off + 16 : off + 16 + incl]))
            off += 16 + incl
    elif magic == b"\x0a\x0d\x0d\x0a":
        e = "<" if data[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
        links = []
        off = 0
        while off + 12 <= len(data):
            btype, blen = struct.unpack(e + "II", data[off : off + 8])
            if blen < 12 or off + blen > len(data):
                break
            body = data[off + 8 : off + blen - 4]
            if btype == 1 and len(body) >= 2:
                links.append(struct.unpack(e + "H", body[:2])[0])
            elif btype == 6 and len(body) >= 20:
                iface, _, _, cap, _ = struct.unpack(e + "IIIII", body[:20])
                link = links[iface] if iface < len(links) else -1
                out.append((link, body[20 : 20 + cap]))
            off += blen
    return out


def ip_checksum(h):
    s = sum(int.from_bytes(h[i : i + 2], "big") for i in range(0, len(h), 2))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def tunnel(inner, geneve, vni, options=b""):
    """`inner` in outer Ethernet + IPv4 + UDP + Geneve (with `options`) or VXLAN."""
    if geneve:
        hdr = bytes([len(options) // 4, 0]) + (0x6558).to_bytes(2, "big") + (vni << 8).to_bytes(4, "big") + options
        dport = 6081
    else:
        hdr = bytes([0x08, 0, 0, 0]) + (vni << 8).to_bytes(4, "big")
        dport = 4789
    udp = (49152 + vni % 16384).to_bytes(2, "big") + dport.to_bytes(2, "big")
    udp += (8 + len(hdr) + len(inner)).to_bytes(2, "big") + b"\0\0"
    total = 20 + len(udp) + len(hdr) + len(inner)
    ip = bytearray(b"\x45\x00" + total.to_bytes(2, "big") + b"\0\0\x40\x00\x40\x11\0\0")
    ip += bytes([10, 9, 0, 1, 10, 9, 0, 2])
    ip[10:12] = ip_checksum(bytes(ip)).to_bytes(2, "big")
    eth = bytes([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00])
    return eth + bytes(ip) + udp + hdr + inner


def main():
    fixtures = sorted(ROOT.glob("pcap-fixtures/*/capture.pcap*"))
    for f in fixtures:
        data = f.read_bytes()
        put("pcap", data)
        for link, fr in frames(data):
            if link == 1 and len(fr) <= MAX_FRAME:
                put("parse", fr)
    if SHARED.is_dir():
        taken = files = 0
        for f in sorted(SHARED.iterdir()):
            data = f.read_bytes()
            if len(data) <= MAX_TCPDUMP_FILE and files < MAX_TCPDUMP_FILES:
                put("pcap", data)
                files += 1
            for link, fr in frames(data)[:2]:
                if link == 1 and len(fr) <= MAX_FRAME and taken < MAX_TCPDUMP_FRAMES:
                    put("parse", fr)
                    taken += 1
    else:
        print(f"note: {SHARED} is not here; the tcpdump sample is skipped", file=sys.stderr)
    for f in [*sorted(ROOT.glob("configs/*.toml")), *sorted(ROOT.glob("pcap-fixtures/*/config.toml")),
              ROOT / "tests/fixtures/state-v1/export.toml"]:
        put("config", f.read_bytes())
    reqs = [
        line
        for line in (ROOT / "tests/fixtures/api-bodies.txt").read_text().splitlines()
        if line and not line.startswith("=>") and not line.startswith("#")
    ]
    for i in range(0, len(reqs), 8):
        put("api", ("\n".join(reqs[i : i + 8]) + "\n").encode())
    for seed in API_EXTRA:
        put("api", seed.encode())
    # overlay: fixture frames inside Geneve (with and without an option) and VXLAN.
    inner = []
    for f in fixtures[:6]:
        for link, fr in frames(f.read_bytes())[:2]:
            if link == 1 and len(fr) <= 1400:
                inner.append(fr)
    for i, fr in enumerate(inner):
        put("overlay", tunnel(fr, True, 77 + i))
        put("overlay", tunnel(fr, False, 77 + i))
        put("overlay", tunnel(fr, True, 5000 + i, options=bytes([1, 2, 3, 1, 0, 0, 0, 0])))
    rng = random.Random(14)
    for i in range(24):
        put("pipeline", bytes(rng.getrandbits(8) for _ in range(256 << (i % 5))))
    for target in ("parse", "pcap", "config", "api", "pipeline", "overlay"):
        d = FUZZ / "corpus" / target
        d.mkdir(parents=True, exist_ok=True)
        n = sum(1 for _ in d.iterdir())
        size = sum(p.stat().st_size for p in d.iterdir())
        print(f"{target:9} {n:5} inputs {size:8} bytes")


if __name__ == "__main__":
    main()
