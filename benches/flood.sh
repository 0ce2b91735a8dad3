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
# switch's VmRSS before and after and its CPU seconds during the flood, how many of the
# machine's cores were busy during the flood, whether a new connection C -> B works after,
# and the load average (the machine is shared: read the rates beside it).
#
# With --compare, each flood runs once per mode, one after the other, with the same
# settings (MODES, default all of them, in this order):
#   off      sgswitch without the bound on new connections per full burst and without the
#            fair share (SGSWITCH_NEW_FLOW_BUDGET=off SGSWITCH_FAIR_SHARE=off: the switch
#            before #14's fixes);
#   noshare  without the fair share only (SGSWITCH_FAIR_SHARE=off);
#   sw       sgswitch as it ships;
#   napi     as shipped, taps opened with IFF_NAPI and threaded NAPI (SGSWITCH_TAP_NAPI=1:
#            the instances' receiving stacks run in the taps' NAPI threads, not in the
#            worker's writev);
#   strict   as shipped, but a reply whose opener has no credit left is dropped at once
#            (SGSWITCH_FAIR_REPLY_DEBT=0; shipped: a quantum of debt allowed);
#   kernel   the kernel switching instead (`flood_measure_kernel`: the same instances on
#            veth pairs in a Linux bridge, no sgswitch);
# a last line gives the session's share in each mode. On a small machine the generator and
# the instances' kernels take cores from whatever switches, so the kernel's share is the
# bar to read the switch's against. REPEAT=n repeats the whole comparison (the machine is
# shared: rates are noisy; read them beside the load average printed with each).
#
# The budget and the share are `[switch] new_flow_budget` and `fair_share` in a config;
# the SGSWITCH_* variables above override them for measurements only.
#
# FLOOD_INSTANCE_CPUS=1 pins every process of the instances (generator, stream, sink, echo
# server) to CPU 1, as a host gives its instances' vCPUs cores of their own away from a
# polling switch's (worker 0 is pinned to core 0; the kernel mode pins the instances the
# same way, its bridging runs in their contexts).
#
# Usage: sudo benches/flood.sh [--compare] [syn|udp ...]
#        (env: FLOOD_SECS=10 FLOOD_PPS=0 REPEAT=1 MODES="off noshare sw napi strict kernel";
#        FLOOD_WORKERS=1: the switch's workers; FLOOD_INSTANCE_CPUS: see above)
set -euo pipefail
cd "$(dirname "$0")/.."
compare=0
kinds=()
for a in "$@"; do
    case $a in
    --compare) compare=1 ;;
    *) kinds+=("$a") ;;
    esac
done
[ ${#kinds[@]} -gt 0 ] || kinds=(syn udp)
cargo test --release --test flood --no-run 2>&1 | tail -1
run() { # test name, flood kind: the measurement's lines
    FLOOD_KIND=$2 cargo test --release --test flood -- --ignored --exact "$1" \
        --nocapture 2>&1 | sed -n '/^flood /,/load average/p'
}
share() { sed -n 's/.*MB\/s during (\([0-9]*\) %).*/\1/p' <<<"$1"; }
mode() { # mode, kind: the measurement's lines
    case $1 in
    off) SGSWITCH_NEW_FLOW_BUDGET=off SGSWITCH_FAIR_SHARE=off run flood_measure "$2" ;;
    noshare) SGSWITCH_FAIR_SHARE=off run flood_measure "$2" ;;
    sw) run flood_measure "$2" ;;
    napi) SGSWITCH_TAP_NAPI=1 run flood_measure "$2" ;;
    strict) SGSWITCH_FAIR_REPLY_DEBT=0 run flood_measure "$2" ;;
    kernel) run flood_measure_kernel "$2" ;;
    *) echo "unknown mode $1" >&2; exit 2 ;;
    esac
}
for round in $(seq 1 "${REPEAT:-1}"); do
    for kind in "${kinds[@]}"; do
        if [ $compare = 0 ]; then
            run flood_measure "$kind"
            continue
        fi
        summary=""
        for m in ${MODES:-off noshare sw napi strict kernel}; do
            echo "== $kind, round $round: $m"
            out=$(mode "$m" "$kind")
            echo "$out"
            summary+=" $m $(share "$out") %,"
        done
        echo "flood $kind, round $round: session kept:${summary%,}; load average $(cut -d' ' -f1-3 /proc/loadavg)"
    done
done
