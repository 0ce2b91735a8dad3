#!/usr/bin/env bash
# benches/flood.sh — SYN and UDP floods against an allowed port, measured (#14; outside CI).
#
# Runs `flood_measure` of tests/flood.rs (ignored in CI) once per flood kind: three
# instances in network namespaces on tap ports of `sgswitch run` (one worker, the default
# [conntrack] settings: capacity 262,144, per_port_limit 65,536). C streams TCP to B:7000
# (a Python sender and sink); after 6 s A floods B (SYNs to B:7000, or UDP to B:7001 where
# an echo server answers each datagram once) from source ports in a random order
# (benches/flood_gen.py, a raw socket) for FLOOD_SECS seconds at FLOOD_PPS packets per
# second (0: as fast as the generator goes). Reported per flood: the generator's rate and
# CPU seconds, the stream's rate over the 5 s before the flood and from 2 s into it to its
# end, conntrack entries, A's entries, evictions, table-full refusals, drops per port, the
# switch's VmRSS before and after, whether a new connection C -> B works after, and the
# load average (the machine is shared: read the rates beside it).
#
# Usage: sudo benches/flood.sh [syn|udp ...]   (env: FLOOD_SECS=10 FLOOD_PPS=0)
set -euo pipefail
cd "$(dirname "$0")/.."
kinds=("$@")
[ ${#kinds[@]} -gt 0 ] || kinds=(syn udp)
for kind in "${kinds[@]}"; do
    FLOOD_KIND=$kind cargo test --release --test flood -- --ignored --exact flood_measure \
        --nocapture 2>&1 | sed -n '/^flood /,/load average/p'
done
