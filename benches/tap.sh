#!/usr/bin/env bash
# benches/tap.sh — instances on tap ports: sgswitch against Open vSwitch and the kernel (#16).
#
# Method
# ------
# Two instances, each a network namespace with one netdev standing for a VM's virtio-net
# (offloads on: `ethtool -K IF tx on sg on tso on gso on gro on`, whatever the device
# accepts; the effective settings are printed in the report):
#
#     netns A (client)            netns SW (the switch under test)           netns B (server)
#     tTAGa ══════ [ sgswitch | ovs-vswitchd | bridge + br_netfilter + nft ] ══════ tTAGb
#
#   * sgswitch-tap: `sgswitch run` in SW creates two tap ports (`vnet_hdr = true`) and moves
#     their netdevs into A and B (`netns = ...`): the switch holds the tap fds, the
#     instance's kernel sends and receives on the netdev, as with a VM.
#   * sgswitch-mq (with --queues N, N >= 2): the same with multiqueue taps (`queues = N`)
#     and N workers, one queue of each tap per worker (#16); the switch's process may run
#     on --switch-cpu and --inst-cpu (workers pinned in that order, then round robin):
#     on a 2-core machine its second worker shares the instances' core.
#   * ovs-tap: Open vSwitch (Debian's), ovsdb-server + ovs-vswitchd started here with
#     their own dirs, datapath_type=netdev (userspace), two `type=tap` ports created by
#     ovs-vswitchd in SW and moved into A and B; OpenFlow rules shaped like Neutron's OVS
#     firewall driver (every IP packet through conntrack in the network's zone, est/rel
#     accepted, invalid dropped, new connections committed only where the groups allow).
#     OVS's other settings are its defaults (no `userspace-tso-enable`).
#   * bridge-nft: the kernel, as Neutron's linuxbridge + iptables drivers run it: the
#     instances' netdevs are veths whose peers are ports of a Linux bridge in SW, with
#     br_netfilter and an `inet` nftables table with `ct state` rules (bridge-family
#     conntrack is not in this kernel). There is no process: the bridge, conntrack and
#     nftables run in the senders' and receivers' kernel contexts (softirq).
# The same stateful policy everywhere: A's port has one group (egress anything, no
# ingress), B's port one group (ingress TCP 5201, 11111, 7000 and UDP 5201 from anywhere,
# egress anything); both ports have port security (MAC + IP anti-spoofing). Before
# measuring, a ping must cross and a TCP SYN to a port no group opens (5999) must be
# dropped, not refused (a system that does not enforce the policy is reported as failed).
#
# Pinning: the instances' programs (clients, servers, the generator) run on core
# --inst-cpu (default 0); the switch's process on --switch-cpu (default 1): sgswitch with
# `--workers 1 --cores N` and its default idle back-off (`--busy-poll` with
# SGSWITCH_BUSY_POLL=1), ovs-vswitchd under taskset (tap ports are polled by its main
# thread, not by a PMD). The kernel's share (tap/veth transmit, the bridge, softirq,
# kthreads) runs wherever the kernel puts it; it is counted by the CPU measure below.
#
# Per round and system (the topology is rebuilt for every system, so conntrack starts
# empty), --seconds S each:
#   tcp1, tcp4  TCP throughput A -> B, 1 and 4 streams: iperf3 -J, receiver's bytes.
#   udp64       64-byte UDP frames (60 + FCS) A -> B:5201, one flow, as fast as trafgen
#               (netsniff-ng, sendto mode, one worker on --inst-cpu) sends: offered = A's
#               tx_packets + tx_dropped, delivered = B's rx_packets (B drops them at its
#               netdev ingress hook with nftables, so B's stack costs nothing).
#   rr          request/response latency of 64-byte TCP messages: `sockperf pp --tcp -m 64`
#               against `sockperf sr --tcp` in B; p50 and p99 in µs.
#               The switch process's syscalls per delivered packet over the same window:
#               `perf stat -e raw_syscalls:sys_enter -p PID` (when perf is installed).
#   cps         TCP connections per second: a Python client (this file's CPS_PY, one
#               connection at a time: connect, send 1 byte, read to EOF, close) against a
#               Python server in B (accept, read 1 byte, close: the server holds TIME_WAIT).
# CPU: busy time of every core from /proc/stat (user, nice, system, irq, softirq, steal)
# over each test, and the switch's process alone (sum of its threads' schedstat run time).
# The all-core figure includes the instances' own work (the same on every system), the
# kernel's threads and softirq of every system, and whatever else runs on the machine:
# meaningful only on a quiet machine (the report carries the load average). Shown as
# CPU s per Gb (tcp1, tcp4), per Mpkt delivered (udp64), per 1,000 connections (cps).
# Rounds are interleaved (round 1 of every system, then round 2, ...); the tables show
# medians. Nothing here asserts a timing: the numbers are a report.
#
# The script installs nothing; it checks its tools and names the Debian packages. It
# removes everything it created (processes, namespaces, links, the OVS bridge and its
# daemons, nft tables, temp dir) on exit, on errors and on Ctrl-C.
#
# Usage: sudo benches/tap.sh [--quick] [--rounds N] [--seconds S] [--systems LIST]
#            [--sgswitch PATH] [--inst-cpu N] [--switch-cpu N] [--out FILE | --no-write]
#            [--keep-logs] [--queues N]
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
readonly SCRIPT_DIR REPO_ROOT
readonly COMMAND_LINE="benches/tap.sh${*:+ $*}"

# ---------------------------------------------------------------------------------------
# Settings

ROUNDS=3
MEASURE_S=5
INST_CPU=0
SWITCH_CPU=1
ALL_SYSTEMS="sgswitch-tap,sgswitch-mq,ovs-tap,bridge-nft"
QUEUES=1
ALL_TESTS="tcp1,tcp4,udp64,rr,cps"
SYSTEMS="sgswitch-tap,ovs-tap,bridge-nft"
SGSWITCH_BIN=""
OUT_FILE="$REPO_ROOT/benches/tap-results.md"
WRITE_RESULTS=1
QUICK=0
KEEP_LOGS=0

readonly A_MAC=02:7a:70:00:00:0a
readonly B_MAC=02:7a:70:00:00:0b
readonly A_IP=10.27.0.10
readonly B_IP=10.27.0.11
readonly IPERF_PORT=5201 SOCKPERF_PORT=11111 CPS_PORT=7000 CLOSED_PORT=5999
readonly ZONE=1

usage() {
    sed -n '/^# Usage:/,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
    cat <<EOF

  --quick           1 round of 2 s per test
  --rounds N        interleaved rounds (default $ROUNDS); medians are reported
  --seconds S       seconds per test (default $MEASURE_S)
  --systems LIST    comma-separated subset of: $ALL_SYSTEMS
  --sgswitch PATH   sgswitch binary (default: target/release/sgswitch, then \$PATH)
  --inst-cpu N      core of the instances' programs (default $INST_CPU)
  --switch-cpu N    core of the switch process (default $SWITCH_CPU)
  --out FILE        results file (default benches/tap-results.md)
  --no-write        print the report only
  --keep-logs       keep the temp dir (logs, configs, iperf3 JSON)
  --queues N        also measure sgswitch-mq: taps with N queues, N workers (N >= 2;
                    adds sgswitch-mq after sgswitch-tap unless --systems names it)
EOF
}

log() { printf '[tap] %s\n' "$*" >&2; }
die() {
    printf 'tap.sh: %s\n' "$*" >&2
    exit 1
}

parse_args() {
    local explicit_rounds="" explicit_seconds="" s
    while (($#)); do
        case $1 in
        --quick) QUICK=1 ;;
        --rounds) explicit_rounds=${2:?--rounds needs a value}; shift ;;
        --seconds) explicit_seconds=${2:?--seconds needs a value}; shift ;;
        --systems) SYSTEMS=${2:?--systems needs a value}; shift ;;
        --sgswitch) SGSWITCH_BIN=${2:?--sgswitch needs a path}; shift ;;
        --inst-cpu) INST_CPU=${2:?--inst-cpu needs a value}; shift ;;
        --switch-cpu) SWITCH_CPU=${2:?--switch-cpu needs a value}; shift ;;
        --out) OUT_FILE=${2:?--out needs a file}; shift ;;
        --no-write) WRITE_RESULTS=0 ;;
        --keep-logs) KEEP_LOGS=1 ;;
        --queues) QUEUES=${2:?--queues needs a value}; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
        esac
        shift
    done
    if ((QUICK)); then ROUNDS=1 MEASURE_S=2; fi
    ROUNDS=${explicit_rounds:-$ROUNDS}
    MEASURE_S=${explicit_seconds:-$MEASURE_S}
    [[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer"
    [[ $MEASURE_S =~ ^[1-9][0-9]*$ ]] || die "--seconds must be a positive integer"
    for s in INST_CPU SWITCH_CPU; do
        [[ ${!s} =~ ^[0-9]+$ ]] && ((${!s} < $(nproc))) || die "no core ${!s} (--${s,,})"
    done
    [[ $QUEUES =~ ^[1-9][0-9]*$ ]] || die "--queues must be a positive integer"
    if ((QUEUES > 1)) && [[ ,$SYSTEMS, != *",sgswitch-mq,"* ]]; then
        SYSTEMS=${SYSTEMS/sgswitch-tap/sgswitch-tap,sgswitch-mq}
        [[ ,$SYSTEMS, == *",sgswitch-mq,"* ]] || SYSTEMS="sgswitch-mq,$SYSTEMS"
    fi
    if [[ ,$SYSTEMS, == *",sgswitch-mq,"* ]] && ((QUEUES < 2)); then QUEUES=2; fi
    for s in ${SYSTEMS//,/ }; do
        [[ ,$ALL_SYSTEMS, == *",$s,"* ]] || die "unknown system '$s' (known: $ALL_SYSTEMS)"
    done
}

# ---------------------------------------------------------------------------------------
# Tools: checked, never installed.

wants() { [[ ,$SYSTEMS, == *",$1"* ]]; }

check_tools() {
    local -A pkg_of=(
        [trafgen]=netsniff-ng [ip]=iproute2 [ethtool]=ethtool [nft]=nftables
        [taskset]=util-linux [iperf3]=iperf3 [sockperf]=sockperf [python3]=python3
        [ping]=iputils-ping [timeout]=coreutils [ss]=iproute2
    )
    if wants ovs; then
        pkg_of+=([ovsdb-server]=openvswitch-switch [ovs-vswitchd]=openvswitch-switch
            [ovsdb-tool]=openvswitch-switch [ovs-vsctl]=openvswitch-switch
            [ovs-ofctl]=openvswitch-switch)
    fi
    local tool missing=()
    for tool in "${!pkg_of[@]}"; do
        command -v "$tool" >/dev/null 2>&1 || missing+=("${pkg_of[$tool]}")
    done
    if ((${#missing[@]})); then
        die "missing tools; install them with: apt-get install -y $(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')"
    fi
    ((EUID == 0)) || die "run as root (network namespaces, taps, nftables)"
}

SGSWITCH_SKIP=""
find_sgswitch() {
    if [[ -z $SGSWITCH_BIN ]]; then
        if [[ -x $REPO_ROOT/target/release/sgswitch ]]; then
            SGSWITCH_BIN=$REPO_ROOT/target/release/sgswitch
        else
            SGSWITCH_BIN=$(command -v sgswitch || true)
        fi
    fi
    if [[ -z $SGSWITCH_BIN || ! -x $SGSWITCH_BIN ]]; then
        SGSWITCH_SKIP="sgswitch binary not found (cargo build --release, or --sgswitch PATH)"
        wants sgswitch && log "sgswitch rows skipped: $SGSWITCH_SKIP"
    fi
    return 0
}

# ---------------------------------------------------------------------------------------
# Cleanup: everything created is recorded here and removed by the EXIT trap.

TAG=$(printf '%04x%04x' $RANDOM $RANDOM)
NS_A=tap-$TAG-a
NS_B=tap-$TAG-b
NS_SW=tap-$TAG-sw
IF_A=t${TAG}a # the instances' netdevs (a tap, or a veth for the bridge)
IF_B=t${TAG}b
PORT_A=p${TAG}a # the bridge's veth ends (bridge-nft only)
PORT_B=p${TAG}b
WORK_DIR=""
SWITCH_PID="" # sgswitch or ovs-vswitchd
OVSDB_PID=""
BG_PIDS=() # servers and generators started in the namespaces

stop_pid() { # stop_pid PID [SIGNAL]: signal, wait up to 5 s, then SIGKILL
    local pid=$1 sig=${2:-TERM} i
    [[ -n $pid ]] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    kill "-$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

teardown() {
    local pid ns
    for pid in "${BG_PIDS[@]}"; do stop_pid "$pid" INT; done
    BG_PIDS=()
    # Anything else still running in our namespaces was started by this script (trafgen's
    # worker, a server's child): by pid, namespace by namespace.
    for ns in "$NS_A" "$NS_B" "$NS_SW"; do
        [[ -e /run/netns/$ns ]] || continue
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            [[ $pid == "$SWITCH_PID" || $pid == "$OVSDB_PID" ]] || kill -KILL "$pid" 2>/dev/null || true
        done
    done
    stop_pid "$SWITCH_PID" "${SWITCH_STOP_SIGNAL:-TERM}"
    SWITCH_PID=""
    stop_pid "$OVSDB_PID"
    OVSDB_PID=""
    # Deleting the namespaces removes the veths, the bridge, the nft tables and any tap
    # still there (a tap also goes when the process holding its fd exits).
    for ns in "$NS_A" "$NS_B" "$NS_SW"; do
        if [[ -e /run/netns/$ns ]]; then ip netns del "$ns" 2>/dev/null || true; fi
    done
}

CLEANED=0
cleanup() {
    ((CLEANED)) && return 0
    CLEANED=1
    if [[ -n $PAUSE_PID ]]; then kill "$PAUSE_PID" 2>/dev/null || true; fi
    teardown
    if [[ -n $WORK_DIR && -d $WORK_DIR ]]; then
        if ((KEEP_LOGS)); then log "logs kept in $WORK_DIR"; else rm -rf "$WORK_DIR"; fi
    fi
    return 0
}

on_signal() {
    log "interrupted: cleaning up"
    cleanup
    exit 130
}

PAUSE_PID=""
pause() { # sleep in the background, so that a signal runs the trap at once
    sleep "$1" &
    PAUSE_PID=$!
    wait "$PAUSE_PID" || true
    PAUSE_PID=""
}

in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
on_inst() { local ns=$1; shift; ip netns exec "$ns" taskset -c "$INST_CPU" "$@"; }

# ---------------------------------------------------------------------------------------
# Systems. Each *_up creates IF_A in NS_A and IF_B in NS_B (link up) with the policy in
# force, or returns non-zero with a reason in UP_ERROR.

UP_ERROR=""

sgswitch_up() { # sgswitch_up [QUEUES]: taps with QUEUES queues and as many workers
    local cfg=$WORK_DIR/sgswitch.toml log=$WORK_DIR/sgswitch.log i args
    local q=${1:-1} cores=$SWITCH_CPU cpus=$SWITCH_CPU qkey=""
    [[ -z $SGSWITCH_SKIP ]] || { UP_ERROR=$SGSWITCH_SKIP; return 1; }
    if ((q > 1)); then
        qkey=", queues = $q"
        cores="$SWITCH_CPU,$INST_CPU"
        cpus=$(seq -s, 0 $(($(nproc) - 1)))
    fi
    cat >"$cfg" <<EOF
# Generated by benches/tap.sh: the benchmark's security-group policy.
[switch]
workers = $q
burst = 32

[[security_groups]]
name = "bench-client"
rules = [ { direction = "egress", ethertype = "IPv4" } ]

[[security_groups]]
name = "bench-server"
rules = [
  { direction = "ingress", ethertype = "IPv4", protocol = "tcp", port_range_min = $IPERF_PORT, port_range_max = $IPERF_PORT },
  { direction = "ingress", ethertype = "IPv4", protocol = "tcp", port_range_min = $SOCKPERF_PORT, port_range_max = $SOCKPERF_PORT },
  { direction = "ingress", ethertype = "IPv4", protocol = "tcp", port_range_min = $CPS_PORT, port_range_max = $CPS_PORT },
  { direction = "ingress", ethertype = "IPv4", protocol = "udp", port_range_min = $IPERF_PORT, port_range_max = $IPERF_PORT },
  { direction = "ingress", ethertype = "IPv4", protocol = "icmp" },
  { direction = "egress", ethertype = "IPv4" },
]

[[ports]]
name = "a"
mac = "$A_MAC"
fixed_ips = ["$A_IP"]
security_groups = ["bench-client"]
backend = { type = "tap", ifname = "$IF_A", netns = "$NS_A", vnet_hdr = true$qkey }

[[ports]]
name = "b"
mac = "$B_MAC"
fixed_ips = ["$B_IP"]
security_groups = ["bench-server"]
backend = { type = "tap", ifname = "$IF_B", netns = "$NS_B", vnet_hdr = true$qkey }
EOF
    args=(run --config "$cfg" --workers "$q" --cores "$cores" --log info)
    [[ ${SGSWITCH_BUSY_POLL:-0} == 1 ]] && args+=(--busy-poll)
    : >"$log"
    # `ip netns exec` and taskset exec: $! is sgswitch itself.
    ip netns exec "$NS_SW" taskset -c "$cpus" "$SGSWITCH_BIN" "${args[@]}" 2>"$log" >/dev/null &
    SWITCH_PID=$!
    SWITCH_STOP_SIGNAL=INT
    for ((i = 0; i < 150; i++)); do
        grep -q 'sgswitch: ready' "$log" && return 0
        if ! kill -0 "$SWITCH_PID" 2>/dev/null; then
            UP_ERROR="sgswitch exited: $(tail -n 3 "$log" | tr '\n' ' ')"
            SWITCH_PID=""
            return 1
        fi
        sleep 0.1
    done
    UP_ERROR="no 'sgswitch: ready' within 15 s: $(tail -n 3 "$log" | tr '\n' ' ')"
    return 1
}

ovs() { # run an OVS tool against this script's own daemons
    OVS_RUNDIR=$WORK_DIR/ovs OVS_LOGDIR=$WORK_DIR/ovs OVS_DBDIR=$WORK_DIR/ovs \
        OVS_SYSCONFDIR=$WORK_DIR/ovs "$@"
}

# The Neutron-like OpenFlow rules (see the header): table 0 port security and conntrack,
# table 1 traffic to B (A's egress: all; B's ingress: the group's ports), table 2 traffic
# to A (B's egress: all; A's ingress: nothing new).
ovs_flows() {
    local p
    cat <<EOF
table=0,priority=100,ip,in_port=1,dl_src=$A_MAC,nw_src=$A_IP,dl_dst=$B_MAC,actions=ct(table=1,zone=$ZONE)
table=0,priority=100,ip,in_port=2,dl_src=$B_MAC,nw_src=$B_IP,dl_dst=$A_MAC,actions=ct(table=2,zone=$ZONE)
table=0,priority=90,arp,in_port=1,dl_src=$A_MAC,arp_spa=$A_IP,actions=output:2
table=0,priority=90,arp,in_port=2,dl_src=$B_MAC,arp_spa=$B_IP,actions=output:1
table=0,priority=0,actions=drop
table=1,priority=100,ct_state=+inv+trk,actions=drop
table=1,priority=90,ct_state=+est-rel-inv+trk,actions=output:2
table=1,priority=90,ct_state=+rel-inv+trk,actions=output:2
table=1,priority=80,ct_state=+new-est-inv+trk,udp,nw_dst=$B_IP,tp_dst=$IPERF_PORT,actions=ct(commit,zone=$ZONE),output:2
table=1,priority=80,ct_state=+new-est-inv+trk,icmp,nw_dst=$B_IP,actions=ct(commit,zone=$ZONE),output:2
table=1,priority=0,actions=drop
table=2,priority=100,ct_state=+inv+trk,actions=drop
table=2,priority=90,ct_state=+est-rel-inv+trk,actions=output:1
table=2,priority=90,ct_state=+rel-inv+trk,actions=output:1
table=2,priority=0,actions=drop
EOF
    for p in $IPERF_PORT $SOCKPERF_PORT $CPS_PORT; do
        echo "table=1,priority=80,ct_state=+new-est-inv+trk,tcp,nw_dst=$B_IP,tp_dst=$p,actions=ct(commit,zone=$ZONE),output:2"
    done
}

ovs_up() {
    local d=$WORK_DIR/ovs db i ifc
    rm -rf "$d"
    mkdir -p "$d"
    db=unix:$d/db.sock
    ovs ovsdb-tool create "$d/conf.db" /usr/share/openvswitch/vswitch.ovsschema
    if ! ovs ovsdb-server "$d/conf.db" --remote="punix:$d/db.sock" \
        --pidfile="$d/ovsdb-server.pid" --log-file="$d/ovsdb-server.log" \
        --detach --no-chdir -vconsole:off >/dev/null 2>&1; then
        UP_ERROR="ovsdb-server did not start (see $d/ovsdb-server.log)"
        return 1
    fi
    OVSDB_PID=$(<"$d/ovsdb-server.pid")
    ovs ovs-vsctl --db="$db" --no-wait init
    if ! ovs in_ns "$NS_SW" taskset -c "$SWITCH_CPU" ovs-vswitchd "$db" \
        --pidfile="$d/ovs-vswitchd.pid" --log-file="$d/ovs-vswitchd.log" \
        --detach --no-chdir -vconsole:off >/dev/null 2>&1; then
        UP_ERROR="ovs-vswitchd did not start (see $d/ovs-vswitchd.log)"
        return 1
    fi
    SWITCH_PID=$(<"$d/ovs-vswitchd.pid")
    SWITCH_STOP_SIGNAL=TERM
    ovs ovs-vsctl --db="$db" --timeout=20 \
        add-br br-tap -- set bridge br-tap datapath_type=netdev fail_mode=secure \
        -- add-port br-tap "$IF_A" -- set interface "$IF_A" type=tap ofport_request=1 \
        -- add-port br-tap "$IF_B" -- set interface "$IF_B" type=tap ofport_request=2
    for ifc in "$IF_A" "$IF_B"; do
        for ((i = 0; i < 50; i++)); do
            ip -n "$NS_SW" link show "$ifc" >/dev/null 2>&1 && break
            sleep 0.1
        done
    done
    ovs_flows >"$d/flows.txt"
    if ! ovs ovs-ofctl del-flows br-tap || ! ovs ovs-ofctl add-flows br-tap "$d/flows.txt"; then
        UP_ERROR="ovs-ofctl add-flows failed"
        return 1
    fi
    # Move the taps (ovs-vswitchd keeps their fds) into the instances.
    ip -n "$NS_SW" link set "$IF_A" netns "$NS_A" &&
        ip -n "$NS_SW" link set "$IF_B" netns "$NS_B" || {
        UP_ERROR="could not move OVS's taps into the instances"
        return 1
    }
}

bridge_up() {
    ip -n "$NS_SW" link add br-tap type bridge forward_delay 0 stp_state 0
    ip -n "$NS_SW" link add "$PORT_A" type veth peer name "$IF_A" netns "$NS_A"
    ip -n "$NS_SW" link add "$PORT_B" type veth peer name "$IF_B" netns "$NS_B"
    ip -n "$NS_SW" link set "$PORT_A" master br-tap up
    ip -n "$NS_SW" link set "$PORT_B" master br-tap up
    ip -n "$NS_SW" link set br-tap up
    if ! in_ns "$NS_SW" sysctl -qw net.bridge.bridge-nf-call-iptables=1; then
        UP_ERROR="br_netfilter is not available (net.bridge.bridge-nf-call-iptables)"
        return 1
    fi
    # What Neutron's linuxbridge + iptables drivers do, in nftables: per-port
    # anti-spoofing in the bridge family (ebtables' job there: br_netfilter's inet hooks
    # see the bridge, not the port, as in/out device), then in inet a zone, est/rel
    # accepted, invalid dropped, new connections only where the groups allow.
    if ! in_ns "$NS_SW" nft -f - <<EOF; then
table bridge tap_spoof {
	chain forward {
		type filter hook forward priority filter; policy accept;
		iifname "$PORT_A" ether saddr != $A_MAC counter drop
		iifname "$PORT_A" ether type ip ip saddr != $A_IP counter drop
		iifname "$PORT_A" ether type arp arp saddr ip != $A_IP counter drop
		iifname "$PORT_B" ether saddr != $B_MAC counter drop
		iifname "$PORT_B" ether type ip ip saddr != $B_IP counter drop
		iifname "$PORT_B" ether type arp arp saddr ip != $B_IP counter drop
	}
}
table inet tap_sg {
	chain zone {
		type filter hook prerouting priority raw; policy accept;
		meta nfproto ipv4 ct zone set $ZONE
	}
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state established,related counter accept
		ct state invalid counter drop
		ip daddr $B_IP tcp dport { $IPERF_PORT, $SOCKPERF_PORT, $CPS_PORT } ct state new counter accept
		ip daddr $B_IP udp dport $IPERF_PORT ct state new counter accept
		ip daddr $B_IP meta l4proto icmp ct state new counter accept
		counter drop
	}
}
EOF
        UP_ERROR="nft ruleset refused"
        return 1
    fi
}

# instances_up: addresses, MACs and offloads of the two instances, B's UDP sink.
instances_up() {
    local ns ifc mac ip
    for ns in "$NS_A" "$NS_B"; do
        if [[ $ns == "$NS_A" ]]; then ifc=$IF_A mac=$A_MAC ip=$A_IP; else ifc=$IF_B mac=$B_MAC ip=$B_IP; fi
        ip -n "$ns" link set lo up
        ip -n "$ns" link set "$ifc" down
        ip -n "$ns" link set "$ifc" address "$mac"
        ip -n "$ns" addr add "$ip/24" dev "$ifc"
        ip -n "$ns" link set "$ifc" up
        # Like a VM's virtio-net: offloads on wherever the device takes them.
        in_ns "$ns" ethtool -K "$ifc" tx on sg on tso on gso on gro on >/dev/null 2>&1 || true
        # Many connections (cps): the whole port range, TIME_WAIT reused.
        in_ns "$ns" sysctl -qw net.ipv4.ip_local_port_range="1024 65000" net.ipv4.tcp_tw_reuse=1
    done
    # B drops the UDP flood at its netdev's ingress hook: rx_packets has counted it.
    in_ns "$NS_B" nft -f - <<EOF
table netdev tap_sink {
	chain ingress {
		type filter hook ingress device "$IF_B" priority filter; policy accept;
		udp dport $IPERF_PORT meta l4proto udp counter drop
	}
}
EOF
}

# offloads NS IF: the effective offloads of an instance's netdev, for the report.
offloads() {
    in_ns "$1" ethtool -k "$2" 2>/dev/null | awk -F': ' '
        /^tx-checksumming|^tcp-segmentation-offload|^generic-segmentation-offload/ {
            split($2, v, " "); s = s (s ? ", " : "") $1 " " v[1] }
        END { gsub(/tx-checksumming/, "tx-csum", s); gsub(/tcp-segmentation-offload/, "tso", s)
            gsub(/generic-segmentation-offload/, "gso", s); print s }'
}

# probe: a ping crosses, and a SYN to a port no group opens is dropped (not refused).
probe() {
    local i rc=0
    for ((i = 0; i < 10; i++)); do
        in_ns "$NS_A" ping -c 1 -W 1 "$B_IP" >/dev/null 2>&1 && break
    done
    if ((i == 10)); then
        UP_ERROR="no ping reply from B within 10 s"
        return 1
    fi
    in_ns "$NS_A" timeout 2 bash -c "exec 3<>/dev/tcp/$B_IP/$CLOSED_PORT" 2>/dev/null || rc=$?
    if ((rc != 124)); then
        UP_ERROR="policy not enforced: TCP to the closed port $CLOSED_PORT was not dropped (rc $rc)"
        return 1
    fi
}

SYSTEM_KIND=""
system_up() { # system_up SYSTEM: topology and system; non-zero with UP_ERROR on failure
    local ns
    SYSTEM_KIND=${1%%-*}
    for ns in "$NS_A" "$NS_B" "$NS_SW"; do
        ip netns add "$ns"
        in_ns "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    done
    case $1 in
    sgswitch-tap) sgswitch_up ;;
    sgswitch-mq) sgswitch_up "$QUEUES" ;;
    ovs-tap) ovs_up ;;
    bridge-nft) bridge_up ;;
    esac || return 1
    if ! ip -n "$NS_A" link show "$IF_A" >/dev/null 2>&1 || ! ip -n "$NS_B" link show "$IF_B" >/dev/null 2>&1; then
        UP_ERROR="the instances' netdevs are missing"
        return 1
    fi
    instances_up && probe
}

# ---------------------------------------------------------------------------------------
# Measurements. Each sets RES to "VALUE [VALUE2 ...]" and CPU_ALL / CPU_SW (CPU seconds
# of every core, of the switch process) over the test. Called directly, not in $(...),
# so that the globals survive.

CPU_ALL=0
CPU_SW=0
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
switch_ns() {
    [[ -n $SWITCH_PID ]] || { echo 0; return; }
    cat /proc/"$SWITCH_PID"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f\n", s }'
}
CPU_T0=0 CPU_S0=0
cpu_start() { CPU_T0=$(busy_ticks) CPU_S0=$(switch_ns); }
cpu_stop() {
    local t1 s1 hz
    t1=$(busy_ticks) s1=$(switch_ns) hz=$(getconf CLK_TCK)
    CPU_ALL=$(awk -v a="$CPU_T0" -v b="$t1" -v hz="$hz" 'BEGIN { printf "%.3f", (b - a) / hz }')
    CPU_SW=$(awk -v a="$CPU_S0" -v b="$s1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
    [[ -n $SWITCH_PID ]] || CPU_SW=n/a # the bridge has no process
}

bg_in() { # bg_in NS CMD...: start a server in an instance, remember its pid
    local ns=$1
    shift
    # A simple command, not a function: $! is the server itself (`ip netns exec` and
    # taskset exec), which a signal then reaches.
    ip netns exec "$ns" taskset -c "$INST_CPU" "$@" >>"$WORK_DIR/servers.log" 2>&1 &
    BG_PIDS+=($!)
}

wait_listen() { # wait_listen NS PORT: until a TCP listener is up (up to 5 s)
    local i
    for ((i = 0; i < 50; i++)); do
        in_ns "$1" ss -Hltn "sport = :$2" | grep -q . && return 0
        sleep 0.1
    done
    return 1
}

# cps.py: `server HOST PORT` or `client HOST PORT SECONDS` (prints connections/s).
CPS_PY='
import socket, sys, time
mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
if mode == "server":
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port)); s.listen(1024)
    while True:
        c, _ = s.accept(); c.recv(1); c.close()
n, t0 = 0, time.monotonic(); end = t0 + float(sys.argv[4])
while time.monotonic() < end:
    c = socket.create_connection((host, port), timeout=2)
    c.sendall(b"x")
    while c.recv(64):
        pass
    c.close(); n += 1
print(n / (time.monotonic() - t0))
'

RES=""
run_tcp() { # run_tcp STREAMS: Gb/s received, Gb received
    local json=$WORK_DIR/iperf-$1.json
    cpu_start
    on_inst "$NS_A" iperf3 -c "$B_IP" -p "$IPERF_PORT" -t "$MEASURE_S" -P "$1" -J >"$json" 2>&1 || true
    cpu_stop
    RES=$(python3 -c 'import json, sys
e = json.load(open(sys.argv[1]))["end"]["sum_received"]
print("%.3f %.3f" % (e["bits_per_second"] / 1e9, e["bytes"] * 8 / 1e9))' "$json" 2>/dev/null || echo n/a n/a)
}

counter() { # counter NS IF NAME...: sum of the named statistics of an interface
    local ns=$1 ifc=$2 n files=()
    shift 2
    for n in "$@"; do files+=("/sys/class/net/$ifc/statistics/$n"); done
    in_ns "$ns" cat "${files[@]}" | awk '{ s += $1 } END { printf "%.0f\n", s }'
}

run_udp() { # offered and delivered kpps, delivered packets
    local conf=$WORK_DIR/trafgen.cfg o0 d0 o1 d1 t0 t1 pid
    # 14 (Ethernet) + 20 (IPv4) + 8 (UDP) + 18 (payload) = 60 bytes, 64 with the FCS.
    cat >"$conf" <<EOF
{ eth(da=$B_MAC, sa=$A_MAC), ipv4(sa=$A_IP, da=$B_IP, ttl=64), udp(sp=40000, dp=$IPERF_PORT), fill(0x00, 18) }
EOF
    ip netns exec "$NS_A" trafgen --dev "$IF_A" --conf "$conf" --cpus 1 --gap 0 \
        --notouch-irq --no-sock-mem --no-cpu-stats >>"$WORK_DIR/trafgen.log" 2>&1 &
    pid=$!
    BG_PIDS+=("$pid")
    pause 1
    o0=$(counter "$NS_A" "$IF_A" tx_packets tx_dropped) d0=$(counter "$NS_B" "$IF_B" rx_packets)
    t0=$(date +%s%N)
    local perf_out=$WORK_DIR/perf-syscalls.txt perf_pid=""
    rm -f "$perf_out"
    if [[ -n $SWITCH_PID ]] && command -v perf >/dev/null 2>&1; then
        perf stat -e raw_syscalls:sys_enter -x, -o "$perf_out" -p "$SWITCH_PID" -- sleep "$MEASURE_S" 2>/dev/null &
        perf_pid=$!
        BG_PIDS+=("$perf_pid")
    fi
    cpu_start
    pause "$MEASURE_S"
    cpu_stop
    [[ -n $perf_pid ]] && { wait "$perf_pid" 2>/dev/null || true; }
    o1=$(counter "$NS_A" "$IF_A" tx_packets tx_dropped) d1=$(counter "$NS_B" "$IF_B" rx_packets)
    t1=$(date +%s%N)
    # trafgen's parent does not pass SIGINT on to its worker: its worker goes by pid too.
    for p in $(ps -o pid= --ppid "$pid" 2>/dev/null); do kill -INT "$p" 2>/dev/null || true; done
    stop_pid "$pid" INT
    local sys=n/a
    [[ -s $perf_out ]] && sys=$(awk -F, -v d="$((d1 - d0))" '/raw_syscalls:sys_enter/ {
        if ($1 ~ /^[0-9]+$/ && d > 0) printf "%.2f", $1 / d; else print "n/a" }' "$perf_out")
    RES=$(awk -v o="$((o1 - o0))" -v d="$((d1 - d0))" -v ns="$((t1 - t0))" -v sys="${sys:-n/a}" \
        'BEGIN { s = ns / 1e9; printf "%.1f %.1f %.0f %s\n", o / s / 1e3, d / s / 1e3, d, sys }')
}

run_rr() { # p50 p99 in µs
    local out=$WORK_DIR/sockperf.txt
    on_inst "$NS_A" sockperf pp --tcp -i "$B_IP" -p "$SOCKPERF_PORT" -t "$MEASURE_S" -m 64 >"$out" 2>&1 || true
    RES=$(awk '/percentile 50.000 =/ { p50 = $NF } /percentile 99.000 =/ { p99 = $NF }
        END { if (p50 == "" || p99 == "") print "n/a n/a"; else print p50, p99 }' "$out")
}

run_cps() { # connections per second
    cpu_start
    RES=$(on_inst "$NS_A" python3 -c "$CPS_PY" client "$B_IP" "$CPS_PORT" "$MEASURE_S" 2>>"$WORK_DIR/cps.log" || echo n/a)
    cpu_stop
}

RAW="" # TSV: round system metric value
record() { printf '%s\t%s\t%s\t%s\n' "$ROUND" "$SYSTEM" "$1" "$2" >>"$RAW"; }
per() { awk -v c="$1" -v u="$2" -v k="${3:-1}" 'BEGIN { if (c != "n/a" && u > 0) printf "%.3f", c / u * k; else print "n/a" }'; }

ROUND=0
SYSTEM=""
measure_system() {
    local v gbps gb off del pk sys p50 p99 p
    bg_in "$NS_B" iperf3 -s -p "$IPERF_PORT" -B "$B_IP"
    bg_in "$NS_B" sockperf sr --tcp -i "$B_IP" -p "$SOCKPERF_PORT"
    bg_in "$NS_B" python3 -c "$CPS_PY" server "$B_IP" "$CPS_PORT"
    for p in $IPERF_PORT $SOCKPERF_PORT $CPS_PORT; do
        wait_listen "$NS_B" "$p" || { UP_ERROR="no server on port $p in B"; return 1; }
    done
    record offloads "$(offloads "$NS_A" "$IF_A")"
    pause "$IDLE_S"
    cpu_start
    pause "$IDLE_S"
    cpu_stop
    record idle_all "$(per "$CPU_ALL" "$IDLE_S" 100)"
    record idle_sw "$(per "$CPU_SW" "$IDLE_S" 100)"
    for v in 1 4; do
        run_tcp "$v"
        read -r gbps gb <<<"$RES"
        record "tcp$v" "$gbps"
        record "tcp${v}_cpu" "$(per "$CPU_ALL" "$gb")"
        record "tcp${v}_cpusw" "$(per "$CPU_SW" "$gb")"
        log "  tcp x$v: $gbps Gb/s, CPU $CPU_ALL s all cores ($CPU_SW s switch)"
    done
    run_udp
    read -r off del pk sys <<<"$RES"
    record udp_off "$off"
    record udp_sys "$sys"
    record udp_del "$del"
    record udp_cpu "$(per "$CPU_ALL" "$pk" 1e6)"
    record udp_cpusw "$(per "$CPU_SW" "$pk" 1e6)"
    log "  udp64: offered $off kpps, delivered $del kpps, CPU $CPU_ALL s ($CPU_SW s switch), switch syscalls / packet $sys"
    run_rr
    read -r p50 p99 <<<"$RES"
    record rr_p50 "$p50"
    record rr_p99 "$p99"
    log "  rr: p50 $p50 µs, p99 $p99 µs"
    run_cps
    v=$RES
    record cps "$v"
    record cps_cpu "$(per "$CPU_ALL" "$(awk -v r="$v" -v s="$MEASURE_S" 'BEGIN { print r * s }')" 1000)"
    log "  cps: $v /s"
}
IDLE_S=1

# ---------------------------------------------------------------------------------------
# Report

median() {
    sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "n/a"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
med() { # med SYSTEM METRIC
    awk -F'\t' -v s="$1" -v m="$2" '$2 == s && $3 == m && $4 != "n/a" && $4 != "" { print $4 }' "$RAW" | median
}
fmt() { [[ $1 == n/a ]] && echo "—" || printf "%.${2:-2}f" "$1"; }
ratio() { # ratio A B (A / B; for "lower is better" metrics the caller swaps)
    awk -v a="$1" -v b="$2" 'BEGIN { if (a == "n/a" || b == "n/a" || b + 0 == 0) print "—"; else printf "%.2fx", a / b }'
}
failure() { awk -F'\t' -v s="$1" '$2 == s && $3 == "failed" { r = $4 } END { print r }' "$RAW"; }

METRICS="tcp1 tcp4 udp_off udp_del rr_p50 rr_p99 cps tcp1_cpu tcp4_cpu udp_cpu cps_cpu"
LOWER_BETTER=" rr_p50 rr_p99 tcp1_cpu tcp4_cpu udp_cpu cps_cpu "
label() {
    case $1 in
    tcp1) echo "TCP 1 stream, Gb/s" ;; tcp4) echo "TCP 4 streams, Gb/s" ;;
    udp_off) echo "UDP 64 B offered, kpps" ;; udp_del) echo "UDP 64 B delivered, kpps" ;;
    rr_p50) echo "TCP 64 B req/resp p50, µs" ;; rr_p99) echo "TCP 64 B req/resp p99, µs" ;;
    cps) echo "TCP connections/s" ;;
    tcp1_cpu) echo "CPU s / Gb, 1 stream (all cores)" ;; tcp4_cpu) echo "CPU s / Gb, 4 streams (all cores)" ;;
    udp_cpu) echo "CPU s / Mpkt delivered (all cores)" ;; cps_cpu) echo "CPU s / 1k connections (all cores)" ;;
    esac
}

render_table() {
    local s m cells hdr sep sg ovs br mq
    hdr="| metric |" sep="|---|"
    for s in ${SYSTEMS//,/ }; do hdr+=" $s |" sep+="---:|"; done
    wants sgswitch-tap && wants ovs && { hdr+=" sgswitch / OVS |"; sep+="---:|"; }
    wants sgswitch-tap && wants bridge && { hdr+=" sgswitch / bridge |"; sep+="---:|"; }
    wants sgswitch-mq && wants sgswitch-tap && { hdr+=" mq / 1 queue |"; sep+="---:|"; }
    wants sgswitch-mq && wants bridge && { hdr+=" mq / bridge |"; sep+="---:|"; }
    echo "$hdr"
    echo "$sep"
    for m in $METRICS; do
        cells="| $(label "$m") |"
        for s in ${SYSTEMS//,/ }; do cells+=" $(fmt "$(med "$s" "$m")" "$([[ $m == udp_* || $m == cps ]] && echo 0 || echo 2)") |"; done
        sg=$(med sgswitch-tap "$m") ovs=$(med ovs-tap "$m") br=$(med bridge-nft "$m")
        mq=$(med sgswitch-mq "$m")
        if [[ $LOWER_BETTER == *" $m "* ]]; then
            # "lower is better": the ratio is the other's value over sgswitch's (>1: sgswitch better)
            wants sgswitch-tap && wants ovs && cells+=" $(ratio "$ovs" "$sg") |"
            wants sgswitch-tap && wants bridge && cells+=" $(ratio "$br" "$sg") |"
            wants sgswitch-mq && wants sgswitch-tap && cells+=" $(ratio "$sg" "$mq") |"
            wants sgswitch-mq && wants bridge && cells+=" $(ratio "$br" "$mq") |"
        else
            wants sgswitch-tap && wants ovs && cells+=" $(ratio "$sg" "$ovs") |"
            wants sgswitch-tap && wants bridge && cells+=" $(ratio "$sg" "$br") |"
            wants sgswitch-mq && wants sgswitch-tap && cells+=" $(ratio "$mq" "$sg") |"
            wants sgswitch-mq && wants bridge && cells+=" $(ratio "$mq" "$br") |"
        fi
        echo "$cells"
    done
    cells="| switch process CPU s / Gb, 1 stream |"
    for s in ${SYSTEMS//,/ }; do cells+=" $(fmt "$(med "$s" tcp1_cpusw)") |"; done
    echo "$cells"
    cells="| switch process CPU s / Mpkt |"
    for s in ${SYSTEMS//,/ }; do cells+=" $(fmt "$(med "$s" udp_cpusw)") |"; done
    echo "$cells"
    cells="| switch process syscalls / packet, UDP 64 B |"
    for s in ${SYSTEMS//,/ }; do cells+=" $(fmt "$(med "$s" udp_sys)") |"; done
    echo "$cells"
    cells="| idle CPU %, all cores (switch) |"
    for s in ${SYSTEMS//,/ }; do cells+=" $(fmt "$(med "$s" idle_all)" 0) ($(fmt "$(med "$s" idle_sw)" 0)) |"; done
    echo "$cells"
}

render_report() {
    local s sg_desc rev f
    if [[ -n $SGSWITCH_SKIP ]]; then
        sg_desc="not measured: $SGSWITCH_SKIP"
    else
        rev=$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo "?")
        sg_desc="\`${SGSWITCH_BIN#"$REPO_ROOT"/}\` ($("$SGSWITCH_BIN" --version 2>/dev/null | head -n 1), tree at commit $rev)"
    fi
    cat <<EOF
# Tap benchmark results

Written by \`benches/tap.sh\` (method in its header comment).

- Command: \`$COMMAND_LINE\`
- Date: $(date -u '+%Y-%m-%d %H:%M UTC'); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (at the start: $LOAD_START)
- Host: $(uname -sr), $(nproc) cores ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo))
- Rounds: $ROUNDS, interleaved, ${MEASURE_S} s per test; medians below
- Instances' programs on core $INST_CPU, the switch's process on core $SWITCH_CPU
- sgswitch: $sg_desc, tap ports with \`vnet_hdr = true\`, one worker (sgswitch-mq: \`queues = $QUEUES\`, $QUEUES workers on cores $SWITCH_CPU,$INST_CPU), $([[ ${SGSWITCH_BUSY_POLL:-0} == 1 ]] && echo "busy polling" || echo "default idle back-off")
- Open vSwitch: $(ovs-vswitchd --version 2>/dev/null | awk 'NR == 1 { print $NF }'), datapath_type=netdev, type=tap ports, defaults otherwise
- Tools: iperf3 $(iperf3 --version 2>/dev/null | awk 'NR == 1 { print $2 }'), sockperf $(sockperf --version 2>&1 | awk 'NR == 1 { print $NF }'), trafgen $(trafgen -v 2>/dev/null | awk 'NR == 1 { print $2 }'), a Python client/server for connections/s
- Instance offloads (ethtool -k on A's netdev):$(for s in ${SYSTEMS//,/ }; do
        f=$(awk -F'\t' -v s="$s" '$2 == s && $3 == "offloads" { r = $4 } END { print r }' "$RAW")
        printf ' %s: %s;' "$s" "${f:-?}"
    done)

$(render_table)

- Ratios: sgswitch's value over the other's, or for latency and CPU the other's over
  sgswitch's: above 1.00x sgswitch is better.
- CPU "all cores": busy time of every core (/proc/stat) over the test: the instances'
  programs and kernel work, the switch, the kernel's threads and softirq, and anything
  else running on the machine (read it beside the load average). "switch process": the
  sgswitch or ovs-vswitchd threads only (the bridge has none).
$(for s in ${SYSTEMS//,/ }; do f=$(failure "$s"); [[ -n $f ]] && printf -- '- %s failed: %s\n' "$s" "$f"; done)

## Every round

| round | system | metric | value |
|---:|---|---|---|
$(awk -F'\t' '{ printf "| %s | %s | %s | %s |\n", $1, $2, $3, $4 }' "$RAW")
EOF
}

# ---------------------------------------------------------------------------------------

LOAD_START=""
main() {
    parse_args "$@"
    check_tools
    find_sgswitch
    trap cleanup EXIT
    trap on_signal INT TERM
    WORK_DIR=$(mktemp -d /tmp/sgswitch-tap.XXXXXX)
    RAW=$WORK_DIR/raw.tsv
    : >"$RAW"
    LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
    log "rounds=$ROUNDS seconds=$MEASURE_S systems=$SYSTEMS; namespaces tap-$TAG-*, work dir $WORK_DIR"
    for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
        for SYSTEM in ${SYSTEMS//,/ }; do
            log "round $ROUND/$ROUNDS: $SYSTEM"
            UP_ERROR=""
            if ! system_up "$SYSTEM" || ! measure_system; then
                log "  failed: $UP_ERROR"
                record failed "${UP_ERROR//$'\t'/ }"
            fi
            teardown
        done
    done
    local report
    report=$(render_report)
    printf '%s\n' "$report"
    if ((WRITE_RESULTS)); then
        printf '%s\n' "$report" >"$OUT_FILE"
        log "results written to $OUT_FILE"
    fi
}

main "$@"
