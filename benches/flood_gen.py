#!/usr/bin/env python3
"""Flood generator for tests/flood.rs and benches/flood.sh (stdlib only, run as root).

    flood_gen.py syn|udp SRC DST DPORT SECONDS [PPS]

Sends TCP SYNs (`syn`) or small UDP datagrams (`udp`) from SRC (the sender's own address:
spoofed sources are dropped by port security) to DST:DPORT through a raw socket, with
source ports 1024..65535 in a random order, for SECONDS, at most PPS packets per second
(0 or absent: as fast as it can). Every packet is built once, before the clock starts.
Prints one line at the end: `sent=N secs=S pps=R cpu=C` (C: the generator's own CPU
seconds, user + system).
"""
import os
import random
import socket
import struct
import sys
import time


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def packets(kind, src, dst, dport):
    ports = list(range(1024, 65536))
    random.shuffle(ports)
    out = []
    if kind == "syn":
        pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, 20)
        for sp in ports:
            seq = random.getrandbits(32)
            # SYN, data offset 5 words, window 64240.
            hdr = struct.pack("!HHIIBBHHH", sp, dport, seq, 0, 5 << 4, 0x02, 64240, 0, 0)
            c = csum(pseudo + hdr)
            out.append(hdr[:16] + struct.pack("!H", c) + hdr[18:])
    else:
        payload = b"flood-flood-flood!"
        for sp in ports:
            # Checksum 0: none (allowed for UDP over IPv4).
            out.append(struct.pack("!HHHH", sp, dport, 8 + len(payload), 0) + payload)
    return out


def main():
    kind, src, dst, dport, secs = sys.argv[1:6]
    pps = int(sys.argv[6]) if len(sys.argv) > 6 else 0
    proto = socket.IPPROTO_TCP if kind == "syn" else socket.IPPROTO_UDP
    pkts = packets(kind, src, dst, int(dport))
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, proto)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)
    addr = (dst, 0)
    send = s.sendto
    n, total, i = len(pkts), 0, 0
    t0 = time.monotonic()
    cpu0 = sum(os.times()[:2])
    end = t0 + float(secs)
    batch = 256
    while True:
        now = time.monotonic()
        if now >= end:
            break
        if pps and total > (now - t0) * pps:
            time.sleep(min(0.002, end - now))
            continue
        for _ in range(batch):
            try:
                send(pkts[i], addr)
            except OSError:
                # ENOBUFS: the device queue is full; count only what went.
                total -= 1
            i += 1
            if i == n:
                i = 0
        total += batch
    secs_taken = time.monotonic() - t0
    cpu = sum(os.times()[:2]) - cpu0
    print("sent=%d secs=%.2f pps=%d cpu=%.2f" % (total, secs_taken, total / secs_taken, cpu), flush=True)


if __name__ == "__main__":
    main()
