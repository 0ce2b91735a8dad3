#!/usr/bin/env bash
# benches/overlay-e2e.sh — issue #19's benchmark: instance-to-instance throughput across
# two overlay hosts against the same two instances on one host, and against two Linux
# bridges joined by kernel vxlan devices with the same stateful nftables policy; side by
# side in one run, reported as ratios.
#
#   same-host:     iA ──veth── [hA: sgswitch] ──veth── iB
#   geneve|vxlan:  iA ──veth── [hA: sgswitch] ══ ul ══ [hB: sgswitch] ──veth── iB
#   kernel-vxlan:  iA ──veth── [hA: br0 + vxlan0 + nft] ══ ul ══ [hB: br0 + vxlan0 + nft] ──veth── iB
#
# Every host is a network namespace; the underlay `ul` is a veth between hA and hB
# (10.9.0.1, 10.9.0.2, MTU 1500), the instances' MTU is 1450 (the inner MTU of Geneve
# and VXLAN over IPv4), checksum offload is off in the instances (the switch forwards
# frames untouched; the kernel systems get the same frames). The policy is the same
# everywhere: each instance sends anything (new connections) and takes new TCP 5201
# (iperf3), new UDP 9 and ICMP; established and related traffic passes, invalid is
# dropped (sgswitch: the security group `inst`; kernel: an `inet` nftables table per host
# through br_netfilter, as Neutron's iptables driver does).
#
# Per system and round:
#   * TCP: `iperf3 -c iB -t SECS` from iA, one stream, sender Gb/s;
#   * 64-byte UDP pps: trafgen in iA (one worker, pinned to CPU 0) sends 60-byte frames
#     (64 with the FCS) to iB:9 as fast as it can for SECS; delivered = iB's eth0
#     rx_packets (iB drops them at its netdev ingress hook), offered = iA's eth0
#     tx_packets;
#   * CPU during the pps run: the sgswitch processes' (utime + stime) and the whole
#     machine's busy time minus trafgen's own, each per million delivered packets.
# The encapsulation's share of the cost = 1 − same-host CPU per Mpkt / cross-host CPU per
# Mpkt (both sgswitch). Rounds interleave the systems (same-host, geneve, vxlan,
# kernel-vxlan, then again), and the medians are printed with the ratios.
#
# Timing is noisy on a shared 2-core machine: run it with nothing else running; the load
# average is printed beside the results. Two sgswitch hosts and trafgen share 2 cores in
# the cross-host rows (a real deployment has a machine per host): the figures are what
# this machine does, not a per-host capacity.
#
# Usage: sudo benches/overlay-e2e.sh [--secs N] [--rounds R] [--systems a,b,...]
# Needs: iperf3, trafgen (netsniff-ng), nft, ethtool, a built target/release/sgswitch.
set -euo pipefail

SECS=5
ROUNDS=2
SYSTEMS="same-host,geneve,vxlan,kernel-vxlan"
while [ $# -gt 0 ]; do
    case "$1" in
    --secs) SECS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --systems) SYSTEMS=$2; shift 2 ;;
    -h | --help) sed -n '2,38p' "$0"; exit 0 ;;
    *) echo "usage: $0 [--secs N] [--rounds R] [--systems same-host,geneve,vxlan,kernel-vxlan]" >&2; exit 2 ;;
    esac
done
((EUID == 0)) || { echo "$0: run as root (network namespaces)" >&2; exit 2; }
for t in iperf3 trafgen nft ethtool ip python3; do
    command -v "$t" >/dev/null || { echo "$0: $t is missing" >&2; exit 2; }
done

BIN=${SGSWITCH:-$(cd "$(dirname "$0")/.." && pwd)/target/release/sgswitch}
[ -x "$BIN" ] || { echo "$0: no $BIN (cargo build --release)" >&2; exit 2; }
TAG=ovb$$
HA=$TAG-ha HB=$TAG-hb IA=$TAG-ia IB=$TAG-ib
DIR=$(mktemp -d)
SW_PIDS=()
MAC_A=fa:16:3e:00:00:0a MAC_B=fa:16:3e:00:00:0b
IP_A=10.0.0.10 IP_B=10.0.0.11

teardown() {
    local p
    for p in "${SW_PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    for p in "${SW_PIDS[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
    SW_PIDS=()
    local n
    for n in $HA $HB $IA $IB; do
        ip netns pids "$n" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
        ip netns del "$n" 2>/dev/null || true
    done
}
trap 'teardown; rm -rf "$DIR"' EXIT

in_ns() { local n=$1; shift; ip netns exec "$n" "$@"; }

# instance HOSTNS INSTNS DEV MAC IP
instance() {
    ip -n "$1" link add "$3" type veth peer name eth0 netns "$2"
    ip -n "$1" link set "$3" up
    in_ns "$1" ethtool -K "$3" tx off tso off gso off >/dev/null
    ip -n "$2" link set eth0 address "$4" mtu 1450 up
    ip -n "$2" addr add "$5/24" dev eth0
    in_ns "$2" ethtool -K eth0 tx off tso off gso off >/dev/null
    # The instance drops UDP 9 at its netdev ingress: delivered = rx_packets.
    in_ns "$2" nft -f - <<EOF
table netdev sink {
	chain ingress {
		type filter hook ingress device "eth0" priority filter; policy accept;
		udp dport 9 drop
	}
}
EOF
}

# topology SYSTEM: namespaces, underlay, instances (not the switching).
topology() {
    local n
    for n in $HA $HB $IA $IB; do ip netns add "$n"; ip -n "$n" link set lo up; done
    if [ "$1" = same-host ]; then
        instance $HA $IA p0 $MAC_A $IP_A
        instance $HA $IB p1 $MAC_B $IP_B
        return
    fi
    ip -n $HA link add ul type veth peer name ul netns $HB
    ip -n $HA addr add 10.9.0.1/24 dev ul
    ip -n $HB addr add 10.9.0.2/24 dev ul
    for n in $HA $HB; do
        ip -n "$n" link set ul up
        in_ns "$n" ethtool -K ul tx off tso off gso off >/dev/null
    done
    instance $HA $IA p0 $MAC_A $IP_A
    instance $HB $IB p0 $MAC_B $IP_B
}

RULES='rules = [
  { direction = "egress", ethertype = "IPv4" },
  { direction = "ingress", ethertype = "IPv4", protocol = "icmp" },
  { direction = "ingress", ethertype = "IPv4", protocol = "tcp", port_range_min = 5201, port_range_max = 5201 },
  { direction = "ingress", ethertype = "IPv4", protocol = "udp", port_range_min = 9, port_range_max = 9 },
]'

# port NAME MAC IP HOST BACKEND-DEV(or empty)
port() {
    printf '[[ports]]\nname = "%s"\nnetwork = "net1"\nmac = "%s"\nfixed_ips = ["%s"]\nsecurity_groups = ["inst"]\n' "$1" "$2" "$3"
    [ -n "$4" ] && printf 'host = "%s"\n' "$4"
    [ -n "$5" ] && printf 'backend = { type = "afpacket", ifname = "%s" }\n' "$5"
    echo
}

# sgswitch_config ME ENCAP (ME empty: same host, no overlay)
sgswitch_config() {
    printf '[switch]\nworkers = 1\n\n'
    if [ -n "$1" ]; then
        printf '[overlay]\nhost = "%s"\nunderlay = { type = "afpacket", ifname = "ul" }\n\n' "$1"
        printf '[[hosts]]\nname = "a"\nvtep = "10.9.0.1"\n\n[[hosts]]\nname = "b"\nvtep = "10.9.0.2"\n\n'
        printf '[[networks]]\nname = "net1"\nvni = 1001\nencap = "%s"\n\n' "$2"
    else
        printf '[[networks]]\nname = "net1"\n\n'
    fi
    printf '[[security_groups]]\nname = "inst"\n%s\n\n' "$RULES"
    if [ -n "$1" ]; then
        port iA $MAC_A $IP_A a "$([ "$1" = a ] && echo p0)"
        port iB $MAC_B $IP_B b "$([ "$1" = b ] && echo p0)"
    else
        port iA $MAC_A $IP_A "" p0
        port iB $MAC_B $IP_B "" p1
    fi
}

# start_sgswitch HOSTNS CONFIG LOG
start_sgswitch() {
    ip netns exec "$1" "$BIN" run --config "$2" --no-api --no-pin 2>"$3" &
    SW_PIDS+=($!)
    local i
    for ((i = 0; i < 100; i++)); do
        grep -q "sgswitch: ready" "$3" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "$0: sgswitch in $1 not ready:" >&2
    cat "$3" >&2
    return 1
}

# kernel_host NS LOCAL REMOTE: bridge + vxlan + the instance veth + the nftables policy.
kernel_host() {
    ip -n "$1" link add vxlan0 type vxlan id 1001 local "$2" remote "$3" dstport 4789 dev ul
    ip -n "$1" link add br0 type bridge
    ip -n "$1" link set vxlan0 master br0 up
    ip -n "$1" link set p0 master br0
    ip -n "$1" link set br0 up
    in_ns "$1" sysctl -qw net.bridge.bridge-nf-call-iptables=1
    local inst=$4
    in_ns "$1" nft -f - <<EOF
table inet sg {
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
		ct state invalid drop
		ip daddr $inst ip protocol icmp ct state new accept
		ip daddr $inst tcp dport 5201 ct state new accept
		ip daddr $inst udp dport 9 ct state new accept
		ip saddr $inst ct state new accept
	}
}
EOF
}

# up SYSTEM: build and start it; wait until iA reaches iB.
up() {
    topology "$1"
    case $1 in
    same-host)
        sgswitch_config "" >"$DIR/same.toml"
        start_sgswitch $HA "$DIR/same.toml" "$DIR/same.log"
        ;;
    geneve | vxlan)
        sgswitch_config a "$1" >"$DIR/a.toml"
        sgswitch_config b "$1" >"$DIR/b.toml"
        start_sgswitch $HA "$DIR/a.toml" "$DIR/a-$1.log"
        start_sgswitch $HB "$DIR/b.toml" "$DIR/b-$1.log"
        ;;
    kernel-vxlan)
        kernel_host $HA 10.9.0.1 10.9.0.2 $IP_A
        kernel_host $HB 10.9.0.2 10.9.0.1 $IP_B
        ;;
    esac
    local i
    for ((i = 0; i < 20; i++)); do
        in_ns $IA ping -c 1 -W 1 $IP_B >/dev/null 2>&1 && return 0
    done
    echo "$0: $1: iA does not reach iB" >&2
    return 1
}

cpu_ticks() { # total busy jiffies of the machine
    awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat
}
proc_ticks() { # utime + stime of the given pids
    local p t=0
    for p in "$@"; do
        [ -n "$p" ] && [ -r "/proc/$p/stat" ] || continue
        t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat")))
    done
    echo $t
}
ifstat() { in_ns "$1" cat "/sys/class/net/$2/statistics/$3"; }

# tcp: sender Gb/s of one iperf3 stream iA -> iB.
tcp() {
    in_ns $IB iperf3 -s -1 -D >/dev/null 2>&1
    sleep 0.3
    in_ns $IA iperf3 -c $IP_B -t "$SECS" -J 2>/dev/null |
        python3 -c 'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_sent"]["bits_per_second"] / 1e9))'
}

# pps: "delivered offered switch-cpu-s machine-cpu-s" for SECS of 64-byte UDP.
pps() {
    cat >"$DIR/trafgen.cfg" <<EOF
{
  eth(da=$MAC_B, sa=$MAC_A),
  ipv4(sa=$IP_A, da=$IP_B, ttl=64),
  udp(sp=40000, dp=9),
  fill(0x00, 18)
}
EOF
    local hz
    hz=$(getconf CLK_TCK)
    local rx0 tx0 sw0 all0
    in_ns $IA trafgen --dev eth0 --conf "$DIR/trafgen.cfg" --cpus 1 --gap 0 \
        --notouch-irq --no-sock-mem --no-cpu-stats >"$DIR/trafgen.log" 2>&1 &
    local tg=$!
    sleep 1
    local tgp
    tgp=$(pgrep -P $tg | tr '\n' ' ')
    local tg0
    tg0=$(proc_ticks $tg $tgp)
    rx0=$(ifstat $IB eth0 rx_packets)
    tx0=$(ifstat $IA eth0 tx_packets)
    sw0=$(proc_ticks "${SW_PIDS[@]:-}")
    all0=$(cpu_ticks)
    sleep "$SECS"
    local rx1 tx1 sw1 all1 tg1
    rx1=$(ifstat $IB eth0 rx_packets)
    tx1=$(ifstat $IA eth0 tx_packets)
    sw1=$(proc_ticks "${SW_PIDS[@]:-}")
    all1=$(cpu_ticks)
    tg1=$(proc_ticks $tg $tgp)
    kill -INT $tg $tgp 2>/dev/null || true
    local i
    for ((i = 0; i < 30; i++)); do
        kill -0 $tg $tgp 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL $tg $tgp 2>/dev/null || true
    wait $tg 2>/dev/null || echo "trafgen: $?" >>"$DIR/trafgen.log"
    python3 - "$SECS" "$hz" $((rx1 - rx0)) $((tx1 - tx0)) $((sw1 - sw0)) $((all1 - all0 - (tg1 - tg0))) <<'EOF'
import sys
secs, hz, rx, tx, sw, allc = (float(x) for x in sys.argv[1:])
print("%.0f %.0f %.3f %.3f" % (rx / secs, tx / secs, sw / hz, allc / hz))
EOF
}

down() { teardown; }

echo "# overlay-e2e: $(date -u +%FT%TZ), $(nproc) cores, $(uname -r), sgswitch $("$BIN" --version | awk '{print $2}'), ${SECS}s x ${ROUNDS} rounds"
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
IFS=, read -r -a SYS <<<"$SYSTEMS"
RES="$DIR/results"
: >"$RES"
for ((r = 1; r <= ROUNDS; r++)); do
    for s in "${SYS[@]}"; do
        up "$s"
        g=$(tcp)
        read -r d o swc allc <<<"$(pps)"
        echo "$s $r $g $d $o $swc $allc" >>"$RES"
        printf '  round %d %-13s TCP %6s Gb/s   64B: %9s pps delivered of %9s offered   cpu: switch %6ss machine %6ss\n' \
            "$r" "$s" "$g" "$d" "$o" "$swc" "$allc"
        down
    done
done
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$RES" "$SECS" <<'EOF'
import sys, statistics as st
rows = {}
for line in open(sys.argv[1]):
    s, r, g, d, o, sw, allc = line.split()
    rows.setdefault(s, []).append((float(g), float(d), float(o), float(sw), float(allc)))
def med(s, i):
    return st.median(x[i] for x in rows[s])
secs = float(sys.argv[2])
print()
print("| system | TCP Gb/s | 64 B pps delivered | of offered | switch CPU s / Mpkt | machine CPU s / Mpkt (without trafgen) |")
print("|---|---:|---:|---:|---:|---:|")
per = {}
for s in rows:
    g, d, o = med(s, 0), med(s, 1), med(s, 2)
    # CPU seconds over the same window as the pps (the rates are per second, the
    # window SECS long: CPU s / (pps * SECS) * 1e6 = CPU s per million delivered).
    swp = st.median(x[3] / (x[1] * secs) * 1e6 if x[1] else 0 for x in rows[s])
    allp = st.median(x[4] / (x[1] * secs) * 1e6 if x[1] else 0 for x in rows[s])
    per[s] = (g, d, swp, allp)
    print(f"| {s} | {g:.2f} | {d:,.0f} | {d / o if o else 0:.2f} | {swp:.3f} | {allp:.3f} |")
print()
def ratio(a, b, i, what):
    if a in per and b in per and per[b][i]:
        print(f"- {what}: {a} / {b} = {per[a][i] / per[b][i]:.2f}x")
for enc in ("geneve", "vxlan"):
    ratio(enc, "same-host", 0, "TCP, across hosts vs one host")
    ratio(enc, "same-host", 1, "64 B pps, across hosts vs one host")
    ratio(enc, "kernel-vxlan", 0, "TCP vs the kernel (bridges + vxlan + nftables)")
    ratio(enc, "kernel-vxlan", 1, "64 B pps vs the kernel")
    if enc in per and "same-host" in per and per[enc][3]:
        share = 1 - per["same-host"][3] / per[enc][3]
        print(f"- encapsulation's share of the machine's CPU per packet ({enc}): {share:.0%}")
EOF
