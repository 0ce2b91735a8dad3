#!/usr/bin/env bash
# benches/overlay-e2e.sh — SKETCH (not run for figures yet): instance-to-instance
# throughput across two overlay hosts vs within one host, and vs two Linux bridges joined
# by kernel vxlan devices with the same nftables policy (issue #19's benchmark).
#
# Method (to be run by the lead on a quiet machine; no figure here is a measurement)
# ------
#   netns IA ──veth── [host A: sgswitch run] ══ ul (veth underlay) ══ [host B: sgswitch run] ──veth── netns IB
#
#   * Topology exactly as tests/overlay_netns.rs (each host a namespace, `afpacket`
#     ports, instance MTU 1450, checksum offload off in the instances).
#   * cross-host: iperf3 -c IB from IA (TCP Gb/s, 10 s, 1 stream) and trafgen 64-byte UDP
#     from IA (pps delivered, counted at IB's eth0 rx_packets with an nftables drop at
#     ingress as in benches/e2e.sh).
#   * same-host: both instances behind host A (no encapsulation): the same two figures.
#   * kernel: two namespaces each with a Linux bridge, a vxlan device (VNI 1001, dstport
#     4789) and the instance veth, with br_netfilter + the same stateful nftables rules
#     as benches/e2e.sh's bridge+nft system.
#   * Report per system: pps (64 B) and TCP Gb/s, and the switch process's CPU per frame
#     (cross-host minus same-host = the encapsulation's share of the cost); the load
#     average beside every figure.
#
# Usage: sudo benches/overlay-e2e.sh [--secs N] [--encap geneve|vxlan]
set -euo pipefail

SECS=10
ENCAP=geneve
while [ $# -gt 0 ]; do
    case "$1" in
        --secs) SECS=$2; shift 2 ;;
        --encap) ENCAP=$2; shift 2 ;;
        *) echo "usage: $0 [--secs N] [--encap geneve|vxlan]" >&2; exit 2 ;;
    esac
done

BIN=${SGSWITCH:-target/release/sgswitch}
TAG=ovb$$
NS=(${TAG}-ha ${TAG}-hb ${TAG}-ia ${TAG}-ib)
DIR=$(mktemp -d)
PIDS=()

cleanup() {
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    for n in "${NS[@]}"; do ip netns del "$n" 2>/dev/null || true; done
    rm -rf "$DIR"
}
trap cleanup EXIT

for n in "${NS[@]}"; do ip netns add "$n"; ip -n "$n" link set lo up; done
ip -n "${NS[0]}" link add ul type veth peer name ul netns "${NS[1]}"
ip -n "${NS[0]}" addr add 10.9.0.1/24 dev ul; ip -n "${NS[0]}" link set ul up
ip -n "${NS[1]}" addr add 10.9.0.2/24 dev ul; ip -n "${NS[1]}" link set ul up
i=0
for pair in "0 2 fa:16:3e:00:00:0a 10.0.0.10" "1 3 fa:16:3e:00:00:0b 10.0.0.11"; do
    set -- $pair
    h=${NS[$1]}; inst=${NS[$2]}
    ip -n "$h" link add p0 type veth peer name eth0 netns "$inst"
    ip -n "$h" link set p0 up
    ip -n "$inst" link set eth0 address "$3" mtu 1450 up
    ip -n "$inst" addr add "$4/24" dev eth0
    ip netns exec "$inst" ethtool -K eth0 tx off >/dev/null
    i=$((i + 1))
done

config() { # me
    cat <<EOF
[overlay]
host = "$1"
underlay = { type = "afpacket", ifname = "ul" }
[[hosts]]
name = "a"
vtep = "10.9.0.1"
[[hosts]]
name = "b"
vtep = "10.9.0.2"
[[networks]]
name = "net1"
vni = 1001
encap = "$ENCAP"
[[security_groups]]
name = "inst"
rules = [ { direction = "egress", ethertype = "IPv4" }, { direction = "ingress", ethertype = "IPv4" } ]
[[ports]]
name = "i0"
network = "net1"
mac = "fa:16:3e:00:00:0a"
fixed_ips = ["10.0.0.10"]
security_groups = ["inst"]
host = "a"
$([ "$1" = a ] && echo 'backend = { type = "afpacket", ifname = "p0" }')
[[ports]]
name = "i1"
network = "net1"
mac = "fa:16:3e:00:00:0b"
fixed_ips = ["10.0.0.11"]
security_groups = ["inst"]
host = "b"
$([ "$1" = b ] && echo 'backend = { type = "afpacket", ifname = "p0" }')
EOF
}

for h in a b; do
    config $h > "$DIR/$h.toml"
    n=${NS[0]}; [ $h = b ] && n=${NS[1]}
    ip netns exec "$n" "$BIN" run --config "$DIR/$h.toml" --no-api 2> "$DIR/$h.log" &
    PIDS+=($!)
done
sleep 2
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
ip netns exec "${NS[2]}" ping -c 3 -W 3 10.0.0.11 >/dev/null && echo "cross-host ping: ok"
ip netns exec "${NS[3]}" iperf3 -s -D -1 >/dev/null
sleep 0.5
echo "cross-host TCP ($ENCAP):"
ip netns exec "${NS[2]}" iperf3 -c 10.0.0.11 -t "$SECS" | tail -4
# TODO: same-host and kernel vxlan+bridge+nftables systems, trafgen pps, CPU per frame.
