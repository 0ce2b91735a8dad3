#!/usr/bin/env bash
# benches/e2e.sh — end-to-end benchmark: sgswitch against what users would pick instead.
#
# Method
# ------
# Topology, rebuilt from scratch for every measurement (so every system starts with an
# empty connection-tracking table and nothing is left from the previous one):
#
#     netns GEN               netns SW (the switch under test)                 netns SINK
#     gen0 ──veth── sgTAG ══ [ sgswitch | ovs-vswitchd | bridge+nft ] ══ ssTAG ──veth── sink0
#
#   * GEN runs trafgen (netsniff-ng) sending 64-byte frames (60 bytes + FCS) of UDP to
#     the sink's address and port, as fast as it can. trafgen pins its single worker to
#     CPU 0 itself. It runs in sendto() mode (`-t 0`): its faster TX_RING mode aborts
#     ("Flushing TX_RING failed: Resource temporarily unavailable") as soon as frames
#     are consumed on another core, because the socket's send buffer fills up.
#   * The switch runs in SW pinned to another core (--switch-cpu, default 1): sgswitch
#     with `--cores`, ovs-vswitchd with taskset + pmd-cpu-mask.
#   * The kernel's receive work on the switch's veths (the veth NAPI poll: XDP and the
#     copy into the AF_XDP UMEM, or the whole bridge + br_netfilter + conntrack +
#     nftables path) runs in threaded NAPI kernel threads (`/sys/class/net/IF/threaded`;
#     GRO on, and TSO off on gen0, so that veth hands frames to NAPI) whose run time is
#     measured exactly and charged to the system. They are pinned to the generator's
#     core by default (--napi-cpu): that is where a veth or tap does this work without
#     threaded NAPI (in the sender's context, as a VM's vhost or vCPU thread pays for
#     its tap), and it leaves the switch core to the switch process alone. With
#     `--napi-cpu 1` every system does all of its work on the switch core instead (then
#     a busy-polling switch competes with the NAPI thread that feeds it).
#   * NAPI moderation (napi_defer_hard_irqs + gro_flush_timeout on the switch's two
#     veths, see src/port/napi.rs): by default each system runs with its own defaults
#     (sgswitch sets 100 µs itself, `[switch] napi_defer_us`; OVS and the bridge leave
#     the kernel's, none); `--napi-defer N` gives every system the same N µs (the
#     script writes sysfs for OVS and the bridge), `--napi-defer 0` none to any. The
#     settings are read back before measuring.
#   * SINK drops every frame at the netdev ingress hook (nftables) so that the sink's
#     own stack costs nothing and sends nothing back; delivered frames are counted by
#     the rx_packets counter of sink0.
#
# The same security-group policy on every system: the generator's port has no port
# security (router-like, any source address); the sink's port is in one stateful group:
# ingress UDP to port 5001 from anywhere, egress everything. Systems (--systems):
#   * sgswitch-afxdp, sgswitch-afxdp-backoff, sgswitch-afpacket: a generated config
#     (afxdp ports in native mode, or afpacket ports), `sgswitch run --config FILE
#     --workers 1 --cores N`, ready when `sgswitch: ready` appears on stderr; busy
#     polling (`--busy-poll`, like OVS's PMD threads) except in the -backoff row, which
#     keeps the default idle back-off. Skipped with a clear reason while the binary
#     has no `run` command.
#   * ovs-afxdp, Open vSwitch (Debian's): ovsdb-server + ovs-vswitchd started here with their own
#     db/run/log dirs in a temp dir, datapath_type=netdev, type=afxdp ports, OpenFlow
#     rules shaped like Neutron's OVS firewall driver (benches/e2e/ovs-flows.txt).
#   * bridge-nft, Linux bridge + br_netfilter + an `inet` nftables table with ct state rules
#     (benches/e2e/bridge.nft).
#
# Flow mixes: `1flow` (one 5-tuple), `10kflows` (10,000 source ports round robin),
# `newflow` (random source address in 10.11.0.0/16 and random source port: every packet
# is a new connection, with 4e9 possible tuples).
#
# Per measurement: build the topology, start the system, probe that frames of an
# allowed flow cross it and that frames to a closed port (5002) do not (a system that
# does not enforce the policy is reported as failed, not measured), measure the idle
# CPU for 1 s, start trafgen, wait the warm-up, then over --seconds:
#   offered   = (tx_packets + tx_dropped) of gen0       (what the generator pushed)
#   delivered = rx_packets of sink0
#   CPU       = run time of every thread of the switch process plus the NAPI threads
#               of the switch's two veths (sum_exec_runtime from
#               /proc/PID/task/TID/schedstat: the quantity /proc/PID/stat's
#               utime+stime approximate in ticks, exact here). The bridge has no
#               process: its CPU is its NAPI threads.
#   CPU s / Mpkt = CPU seconds / delivered millions of packets, shown as
#               total (process + NAPI threads).
# Rounds are interleaved (round 1 of every system, then round 2, ...) so slow drifts of
# the machine's load hit every system alike; the table shows medians over the rounds.
# Nothing here asserts a timing: the numbers are a report, not a test.
#
# The script installs nothing; it checks its tools and names the Debian packages to
# install. It sends traffic only between the namespaces it creates and removes
# everything it created (processes, namespaces, veths, bridges, XDP programs, nft tables,
# temp dir) on exit, on errors and on Ctrl-C.
#
# Usage: sudo benches/e2e.sh [--quick] [--rounds N] [--seconds S] [--warmup S]
#            [--systems LIST] [--mixes LIST] [--sgswitch PATH] [--switch-cpu N]
#            [--napi-cpu N] [--napi-defer US] [--out FILE | --no-write] [--keep-logs]
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
readonly SCRIPT_DIR REPO_ROOT
readonly COMMAND_LINE="benches/e2e.sh${*:+ $*}"

# ---------------------------------------------------------------------------------------
# Settings

ROUNDS=3
MEASURE_S=5
WARMUP_S=2
IDLE_S=1
SWITCH_CPU=1
NAPI_CPU="" # default: the generator's core
NAPI_DEFER_US="" # NAPI moderation of the switch's veths: "" = each system's default
GEN_CPU=0 # trafgen -P 1 pins its worker to CPU 0 itself
ALL_SYSTEMS="ovs-afxdp,bridge-nft,sgswitch-afxdp,sgswitch-afxdp-backoff,sgswitch-afpacket"
ALL_MIXES="1flow,10kflows,newflow"
SYSTEMS=$ALL_SYSTEMS
MIXES=$ALL_MIXES
SGSWITCH_BIN=""
OUT_FILE="$REPO_ROOT/benches/e2e-results.md"
WRITE_RESULTS=1
QUICK=0
KEEP_LOGS=0

readonly GEN_MAC=02:e2:e0:00:00:01
readonly SINK_MAC=02:e2:e0:00:00:02
readonly GEN_IP=10.10.0.1
readonly SINK_IP=10.10.0.2
readonly DPORT=5001
readonly ZONE=1
readonly PROBE_SPORT=39999
readonly DENIED_DPORT=5002

usage() {
    sed -n '/^# Usage:/,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
    cat <<EOF

  --quick           1 round of 2 s (warm-up 1 s)
  --rounds N        rounds per system and mix (default $ROUNDS); medians are reported
  --seconds S       measured seconds per round (default $MEASURE_S)
  --warmup S        seconds of traffic before measuring (default $WARMUP_S)
  --systems LIST    comma-separated subset of: $ALL_SYSTEMS
  --mixes LIST      comma-separated subset of: $ALL_MIXES
  --sgswitch PATH   sgswitch binary (default: target/release/sgswitch, then \$PATH)
  --switch-cpu N    core of the switch (default $SWITCH_CPU; the generator uses core $GEN_CPU)
  --napi-cpu N      core of the NAPI threads of the switch's veths (default $GEN_CPU, the
                    generator's; the switch's core puts all of a system's work there)
  --napi-defer US   NAPI moderation of the switch's two veths, the same for every
                    system: napi_defer_hard_irqs=2, gro_flush_timeout=US µs (sgswitch
                    sets it itself through [switch] napi_defer_us; for the others the
                    script writes sysfs); 0 = the kernel's defaults for every system.
                    Without it each system runs with its own defaults (sgswitch's
                    napi_defer_us default, 100 µs; the kernel's for the others)
  --out FILE        results file (default benches/e2e-results.md)
  --no-write        print the table only
  --keep-logs       keep the temp dir (trafgen, sgswitch and OVS logs, generated configs)
EOF
}

log() { printf '[e2e] %s\n' "$*" >&2; }
die() {
    printf 'e2e.sh: %s\n' "$*" >&2
    exit 1
}

parse_args() {
    local explicit_rounds="" explicit_seconds="" explicit_warmup=""
    while (($#)); do
        case $1 in
        --quick) QUICK=1 ;;
        --rounds) explicit_rounds=${2:?--rounds needs a value}; shift ;;
        --seconds) explicit_seconds=${2:?--seconds needs a value}; shift ;;
        --warmup) explicit_warmup=${2:?--warmup needs a value}; shift ;;
        --systems) SYSTEMS=${2:?--systems needs a value}; shift ;;
        --mixes) MIXES=${2:?--mixes needs a value}; shift ;;
        --sgswitch) SGSWITCH_BIN=${2:?--sgswitch needs a path}; shift ;;
        --switch-cpu) SWITCH_CPU=${2:?--switch-cpu needs a value}; shift ;;
        --napi-cpu) NAPI_CPU=${2:?--napi-cpu needs a value}; shift ;;
        --napi-defer) NAPI_DEFER_US=${2:?--napi-defer needs a value}; shift ;;
        --out) OUT_FILE=${2:?--out needs a file}; shift ;;
        --no-write) WRITE_RESULTS=0 ;;
        --keep-logs) KEEP_LOGS=1 ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
        esac
        shift
    done
    if ((QUICK)); then ROUNDS=1 MEASURE_S=2 WARMUP_S=1; fi
    ROUNDS=${explicit_rounds:-$ROUNDS}
    MEASURE_S=${explicit_seconds:-$MEASURE_S}
    WARMUP_S=${explicit_warmup:-$WARMUP_S}
    [[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer"
    [[ $MEASURE_S =~ ^[1-9][0-9]*$ ]] || die "--seconds must be a positive integer"
    [[ $WARMUP_S =~ ^[0-9]+$ ]] || die "--warmup must be an integer"
    [[ $SWITCH_CPU =~ ^[0-9]+$ ]] || die "--switch-cpu must be a core number"
    ((SWITCH_CPU != GEN_CPU)) || die "--switch-cpu must differ from the generator's core ($GEN_CPU)"
    ((SWITCH_CPU < $(nproc))) || die "--switch-cpu $SWITCH_CPU: this machine has $(nproc) cores"
    NAPI_CPU=${NAPI_CPU:-$GEN_CPU}
    if [[ -n $NAPI_DEFER_US ]]; then
        [[ $NAPI_DEFER_US =~ ^[0-9]+$ ]] && ((NAPI_DEFER_US <= 100000)) ||
            die "--napi-defer must be 0..100000 (µs)"
    fi
    if ! [[ $NAPI_CPU =~ ^[0-9]+$ ]] || ((NAPI_CPU >= $(nproc))); then
        die "--napi-cpu: no core $NAPI_CPU"
    fi
    local s m
    for s in ${SYSTEMS//,/ }; do
        [[ ,$ALL_SYSTEMS, == *",$s,"* ]] || die "unknown system '$s' (known: $ALL_SYSTEMS)"
    done
    for m in ${MIXES//,/ }; do
        [[ ,$ALL_MIXES, == *",$m,"* ]] || die "unknown mix '$m' (known: $ALL_MIXES)"
    done
}

# ---------------------------------------------------------------------------------------
# Tools: checked, never installed.

wants() { [[ ,$SYSTEMS, == *",$1"* ]]; } # wants PREFIX: is a system of that family selected

check_tools() {
    local -A pkg_of=(
        [trafgen]=netsniff-ng [ip]=iproute2 [bridge]=iproute2 [ethtool]=ethtool
        [nft]=nftables [taskset]=util-linux [ps]=procps [awk]=mawk
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
    if wants ovs && [[ ! -r /usr/share/openvswitch/vswitch.ovsschema ]]; then
        missing+=(openvswitch-switch)
    fi
    if ((${#missing[@]})); then
        local pkgs
        pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
        die "missing tools; install them with: apt-get install -y $pkgs"
    fi
    ((EUID == 0)) || die "run as root (network namespaces, XDP, nftables)"
}

# sgswitch rows run only when a binary with `sgswitch run` exists; SGSWITCH_SKIP says why not.
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
    elif ! "$SGSWITCH_BIN" run --help 2>/dev/null | grep -q -- '--config'; then
        SGSWITCH_SKIP="sgswitch run not available yet"
    fi
    if wants sgswitch && [[ -n $SGSWITCH_SKIP ]]; then
        log "sgswitch rows skipped: $SGSWITCH_SKIP"
    fi
}

# ---------------------------------------------------------------------------------------
# Cleanup: everything created is recorded here and removed by the EXIT trap.

TAG=$(printf '%04x%04x' $RANDOM $RANDOM)
NS_GEN=e2e-$TAG-gen
NS_SW=e2e-$TAG-sw
NS_SINK=e2e-$TAG-sink
# The switch's veth ends are named after the tag so that their NAPI threads
# ("napi/sgTAG-ID", truncated to 15 characters) are told apart from anyone else's.
SW_GEN=sg$TAG
SW_SINK=ss$TAG
NAPI_PIDS=()
WORK_DIR=""
SWITCH_PID=""   # process of the system under test (sgswitch or ovs-vswitchd), if any
OVSDB_PID=""
TRAFGEN_PID=""  # trafgen's parent process

stop_pid() { # stop_pid PID [SIGNAL]: signal, wait up to 5 s, then SIGKILL
    local pid=$1 sig=${2:-TERM} i
    [[ -n $pid ]] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    kill "-$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

stop_trafgen() {
    [[ -n $TRAFGEN_PID ]] || return 0
    # trafgen's parent does not pass SIGINT on to its worker: signal both, by pid.
    local pids i
    pids=$(ps -o pid= --ppid "$TRAFGEN_PID" 2>/dev/null | tr -d ' ' | tr '\n' ' ' || true)
    # shellcheck disable=SC2086 # a list of pids
    kill -INT $pids "$TRAFGEN_PID" 2>/dev/null || true
    for ((i = 0; i < 30; i++)); do
        # shellcheck disable=SC2086
        kill -0 $pids "$TRAFGEN_PID" 2>/dev/null || break
        sleep 0.1
    done
    # shellcheck disable=SC2086
    kill -KILL $pids "$TRAFGEN_PID" 2>/dev/null || true
    wait "$TRAFGEN_PID" 2>/dev/null || true
    TRAFGEN_PID=""
}

teardown_measurement() {
    stop_trafgen
    stop_pid "$SWITCH_PID" "${SWITCH_STOP_SIGNAL:-TERM}"
    SWITCH_PID=""
    stop_pid "$OVSDB_PID"
    OVSDB_PID=""
    NAPI_PIDS=()
    # Deleting the namespaces removes their veths, the bridge, the nft tables, OVS's
    # internal ports and any XDP program left on a veth.
    local ns
    for ns in "$NS_GEN" "$NS_SW" "$NS_SINK"; do
        if [[ -e /run/netns/$ns ]]; then ip netns del "$ns" 2>/dev/null || true; fi
    done
}

CLEANED=0
cleanup() {
    ((CLEANED)) && return 0
    CLEANED=1
    if [[ -n $PAUSE_PID ]]; then kill "$PAUSE_PID" 2>/dev/null || true; fi
    teardown_measurement
    if [[ -n $WORK_DIR && -d $WORK_DIR ]]; then
        if ((KEEP_LOGS)); then
            # OVS sockets and pid files are dead once the daemons are gone.
            log "logs kept in $WORK_DIR"
        else
            rm -rf "$WORK_DIR"
        fi
    fi
    return 0
}

on_signal() {
    log "interrupted: cleaning up"
    cleanup
    exit 130
}

# ---------------------------------------------------------------------------------------
# Topology

in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

topology_up() {
    local ns
    for ns in "$NS_GEN" "$NS_SW" "$NS_SINK"; do
        ip netns add "$ns"
        # No IPv6: no router solicitations or DAD frames in the counters.
        in_ns "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    done
    ip -n "$NS_SW" link add "$SW_GEN" type veth peer name gen0 netns "$NS_GEN"
    ip -n "$NS_SW" link add "$SW_SINK" type veth peer name sink0 netns "$NS_SINK"

    ip -n "$NS_GEN" link set gen0 address "$GEN_MAC"
    ip -n "$NS_GEN" addr add "$GEN_IP/16" dev gen0
    ip -n "$NS_GEN" link set gen0 up
    # Complete checksums (no partial ones) and no TSO: veth passes frames from a sender
    # with TSO to NAPI only in special cases, and the NAPI thread must see them.
    in_ns "$NS_GEN" ethtool -K gen0 tx off tso off gso off >/dev/null 2>&1 || true

    ip -n "$NS_SINK" link set sink0 address "$SINK_MAC"
    ip -n "$NS_SINK" addr add "$SINK_IP/16" dev sink0
    ip -n "$NS_SINK" link set sink0 up
    in_ns "$NS_SINK" ethtool -K sink0 tx off >/dev/null 2>&1 || true
    # The sink drops everything at ingress: rx_packets has counted the frame already.
    # Frames to the closed port are counted apart (the policy check of probe).
    in_ns "$NS_SINK" nft -f - <<EOF
table netdev e2e_sink {
	counter denied_seen {}
	chain ingress {
		type filter hook ingress device "sink0" priority filter; policy accept;
		udp dport $DENIED_DPORT counter name "denied_seen" drop
		counter drop
	}
}
EOF

    local ifc
    for ifc in "$SW_GEN" "$SW_SINK"; do
        ip -n "$NS_SW" link set "$ifc" up
        # GRO on gives the veth a NAPI context (XDP gives it one too); threaded NAPI runs
        # it in a kernel thread that pin_napi_threads pins and measures.
        in_ns "$NS_SW" ethtool -K "$ifc" gro on >/dev/null 2>&1 || true
        in_ns "$NS_SW" sh -c "echo 1 > /sys/class/net/$ifc/threaded"
    done
    pin_napi_threads
}

# pin_napi_threads: find the NAPI threads of the switch's veths, pin them to
# --napi-cpu and remember them in NAPI_PIDS (run again once a system has
# attached its XDP programs, which may create NAPI contexts).
pin_napi_threads() {
    local f comm pid
    NAPI_PIDS=()
    for f in /proc/[0-9]*/comm; do
        { read -r comm <"$f"; } 2>/dev/null || continue
        case $comm in
        "napi/$SW_GEN"* | "napi/$SW_SINK"*)
            pid=${f#/proc/}
            pid=${pid%/comm}
            taskset -pc "$NAPI_CPU" "$pid" >/dev/null 2>&1 || true
            NAPI_PIDS+=("$pid")
            ;;
        esac
    done
}

# ---------------------------------------------------------------------------------------
# Traffic

# trafgen_conf KIND: print the trafgen packet config of a flow mix (1flow, 10kflows,
# newflow) or of a probe (probe: an allowed flow; denied: the closed port).
trafgen_conf() {
    local mix=$1 src sport dport=$DPORT
    case $mix in
    1flow) src="sa=$GEN_IP" sport="sp=40000" ;;
    10kflows) src="sa=$GEN_IP" sport="sp=dinc(10000, 19999)" ;;
    newflow) src="sa=10.11.0.1, sa[2:2]=drnd()" sport="sp=drnd(1024, 65535)" ;;
    probe) src="sa=$GEN_IP" sport="sp=$PROBE_SPORT" ;;
    denied) src="sa=$GEN_IP" sport="sp=$PROBE_SPORT" dport=$DENIED_DPORT ;;
    esac
    # 14 (Ethernet) + 20 (IPv4) + 8 (UDP) + 18 (payload) = 60 bytes, 64 with the FCS.
    cat <<EOF
{
  eth(da=$SINK_MAC, sa=$GEN_MAC),
  ipv4($src, da=$SINK_IP, ttl=64),
  udp($sport, dp=$dport),
  fill(0x00, 18)
}
EOF
}

# start_trafgen MIX: send as fast as possible until stop_trafgen.
start_trafgen() {
    local conf=$WORK_DIR/trafgen-$1.cfg
    trafgen_conf "$1" >"$conf"
    # `ip netns exec` execs trafgen: $! is trafgen's parent process, which forks one worker.
    ip netns exec "$NS_GEN" trafgen --dev gen0 --conf "$conf" --cpus 1 --gap 0 \
        --notouch-irq --no-sock-mem --no-cpu-stats >>"$WORK_DIR/trafgen.log" 2>&1 &
    TRAFGEN_PID=$!
}

# counter NS IF NAME...: sum of the named statistics of an interface.
counter() {
    local ns=$1 ifc=$2
    shift 2
    local files=()
    local n
    for n in "$@"; do files+=("/sys/class/net/$ifc/statistics/$n"); done
    in_ns "$ns" cat "${files[@]}" | awk '{ s += $1 } END { printf "%.0f\n", s }'
}

denied_seen() {
    in_ns "$NS_SINK" nft list counter netdev e2e_sink denied_seen |
        awk '{ for (i = 1; i < NF; i++) if ($i == "packets") { print $(i + 1); exit } }'
}
offered_count() { counter "$NS_GEN" gen0 tx_packets tx_dropped; }
delivered_count() { counter "$NS_SINK" sink0 rx_packets; }

send_frames() { # send_frames KIND COUNT
    local conf=$WORK_DIR/trafgen-$1.cfg
    trafgen_conf "$1" >"$conf"
    in_ns "$NS_GEN" trafgen --dev gen0 --conf "$conf" --cpus 1 --gap 0 --num "$2" \
        --notouch-irq --no-sock-mem --no-cpu-stats >>"$WORK_DIR/trafgen.log" 2>&1 || true
}

# probe: frames of an allowed flow must reach the sink within 5 s, and frames to a
# port the security group does not open must not (the policy is really enforced).
probe() {
    local before i
    before=$(delivered_count)
    for ((i = 0; i < 10; i++)); do
        send_frames probe 20
        sleep 0.5
        (($(delivered_count) > before)) && break
    done
    if (($(delivered_count) == before)); then
        UP_ERROR="no probe frame reached the sink within 5 s"
        return 1
    fi
    send_frames denied 20
    sleep 0.5
    if (($(denied_seen) != 0)); then
        UP_ERROR="policy not enforced: UDP to the closed port $DENIED_DPORT reached the sink"
        return 1
    fi
}

# ---------------------------------------------------------------------------------------
# CPU accounting

# task_ns PID...: summed run time (ns) of every thread of the given processes.
task_ns() {
    local pid
    for pid in "$@"; do
        cat /proc/"$pid"/task/*/schedstat 2>/dev/null || true
    done | awk '{ s += $1 } END { printf "%.0f\n", s }'
}

# cpu_sample: "PROCESS_NS NAPI_NS" for the system under test.
cpu_sample() {
    local proc=0
    [[ -n $SWITCH_PID ]] && proc=$(task_ns "$SWITCH_PID")
    echo "$proc $(task_ns "${NAPI_PIDS[@]}")"
}

now_ns() { date +%s%N; }

# pause SECONDS: sleep in the background and wait for it, so that a signal runs the
# cleanup trap at once instead of after the sleep.
PAUSE_PID=""
pause() {
    sleep "$1" &
    PAUSE_PID=$!
    wait "$PAUSE_PID" || true
    PAUSE_PID=""
}

# ---------------------------------------------------------------------------------------
# Systems. Each *_up function starts its system on the topology (SWITCH_PID: its
# process, if it has one) and returns non-zero with a reason in UP_ERROR when the system
# cannot run.

UP_ERROR=""

# --- sgswitch (afxdp, afxdp with idle back-off, afpacket) ----------------------------

sgswitch_config() { # sgswitch_config BACKEND: the policy as an sgswitch config file
    local backend=$1 extra=""
    # SGSWITCH_XDP_MODE=generic|native|auto overrides the XDP attach mode of the sgswitch rows.
    [[ $backend == afxdp ]] && extra=", mode = \"${SGSWITCH_XDP_MODE:-native}\""
    cat <<EOF
# Generated by benches/e2e.sh: the benchmark's security-group policy.
[switch]
workers = 1
burst = 32
${NAPI_DEFER_US:+napi_defer_us = $NAPI_DEFER_US}

[[security_groups]]
name = "bench-sink"
rules = [
  { direction = "ingress", ethertype = "IPv4", protocol = "udp", port_range_min = $DPORT, port_range_max = $DPORT, remote_ip_prefix = "0.0.0.0/0" },
  { direction = "egress", ethertype = "IPv4" },
]

# The generator: router-like, no port security, any source address.
[[ports]]
name = "gen"
mac = "$GEN_MAC"
fixed_ips = ["$GEN_IP"]
port_security = false
security_groups = []
backend = { type = "$backend", ifname = "$SW_GEN"$extra }

[[ports]]
name = "sink"
mac = "$SINK_MAC"
fixed_ips = ["$SINK_IP"]
security_groups = ["bench-sink"]
backend = { type = "$backend", ifname = "$SW_SINK"$extra }
EOF
}

sgswitch_up() { # sgswitch_up BACKEND BUSY_POLL(0|1)
    local backend=$1 busy=$2 cfg=$WORK_DIR/sgswitch-$1.toml log=$WORK_DIR/sgswitch.log i extra=()
    if [[ -n $SGSWITCH_SKIP ]]; then
        UP_ERROR=$SGSWITCH_SKIP
        return 1
    fi
    sgswitch_config "$backend" >"$cfg"
    local args=(run --config "$cfg" --workers 1 --cores "$SWITCH_CPU" --log info)
    ((busy)) && args+=(--busy-poll)
    # SGSWITCH_EXTRA_ARGS: more `sgswitch run` options for experiments (e.g. --copy-forward).
    [[ -n ${SGSWITCH_EXTRA_ARGS:-} ]] && read -ra extra <<<"$SGSWITCH_EXTRA_ARGS" && args+=("${extra[@]}")
    : >"$log"
    # `ip netns exec` and taskset exec: $! is sgswitch itself.
    ip netns exec "$NS_SW" taskset -c "$SWITCH_CPU" "$SGSWITCH_BIN" "${args[@]}" 2>"$log" >/dev/null &
    SWITCH_PID=$!
    SWITCH_STOP_SIGNAL=INT
    for ((i = 0; i < 150; i++)); do
        grep -q 'sgswitch: ready' "$log" && break
        if ! kill -0 "$SWITCH_PID" 2>/dev/null; then
            local rc=0
            wait "$SWITCH_PID" || rc=$?
            UP_ERROR="sgswitch exited with status $rc: $(tail -n 3 "$log" | tr '\n' ' ')"
            SWITCH_PID=""
            return 1
        fi
        sleep 0.1
    done
    if ! grep -q 'sgswitch: ready' "$log"; then
        UP_ERROR="no 'sgswitch: ready' within 15 s: $(tail -n 3 "$log" | tr '\n' ' ')"
        return 1
    fi
}

# --- Open vSwitch, userspace datapath, AF_XDP ports ------------------------------------

ovs() { # run an OVS tool against this script's own daemons
    OVS_RUNDIR=$WORK_DIR/ovs OVS_LOGDIR=$WORK_DIR/ovs OVS_DBDIR=$WORK_DIR/ovs \
        OVS_SYSCONFDIR=$WORK_DIR/ovs "$@"
}

ovs_up() {
    local d=$WORK_DIR/ovs db
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
    ovs ovs-vsctl --db="$db" --no-wait set Open_vSwitch . \
        other_config:pmd-cpu-mask="$(printf '0x%x' $((1 << SWITCH_CPU)))"
    if ! ovs in_ns "$NS_SW" taskset -c "$SWITCH_CPU" ovs-vswitchd "$db" \
        --pidfile="$d/ovs-vswitchd.pid" --log-file="$d/ovs-vswitchd.log" \
        --detach --no-chdir -vconsole:off >/dev/null 2>&1; then
        UP_ERROR="ovs-vswitchd did not start (see $d/ovs-vswitchd.log)"
        return 1
    fi
    SWITCH_PID=$(<"$d/ovs-vswitchd.pid")
    SWITCH_STOP_SIGNAL=TERM
    ovs ovs-vsctl --db="$db" --timeout=20 \
        add-br br-e2e -- set bridge br-e2e datapath_type=netdev fail_mode=secure \
        -- add-port br-e2e "$SW_GEN" -- set interface "$SW_GEN" type=afxdp \
        options:xdp-mode=native ofport_request=1 \
        -- add-port br-e2e "$SW_SINK" -- set interface "$SW_SINK" type=afxdp \
        options:xdp-mode=native ofport_request=2
    local ifc err
    for ifc in "$SW_GEN" "$SW_SINK"; do
        err=$(ovs ovs-vsctl --db="$db" get interface "$ifc" error 2>/dev/null || true)
        if [[ -n $err && $err != '[]' ]]; then
            UP_ERROR="ovs: interface $ifc: $err"
            return 1
        fi
    done
    sed -e "s/@GEN_OF@/1/g; s/@SINK_OF@/2/g; s/@SINK_MAC@/$SINK_MAC/g" \
        -e "s/@SINK_IP@/$SINK_IP/g; s/@DPORT@/$DPORT/g; s/@ZONE@/$ZONE/g" \
        "$SCRIPT_DIR/e2e/ovs-flows.txt" >"$d/flows.txt"
    ovs ovs-ofctl del-flows br-e2e
    if ! ovs ovs-ofctl add-flows br-e2e "$d/flows.txt"; then
        UP_ERROR="ovs-ofctl add-flows failed"
        return 1
    fi
}

# --- Linux bridge + br_netfilter + stateful nftables -----------------------------------

bridge_up() {
    ip -n "$NS_SW" link add br-e2e type bridge forward_delay 0 stp_state 0
    ip -n "$NS_SW" link set "$SW_GEN" master br-e2e
    ip -n "$NS_SW" link set "$SW_SINK" master br-e2e
    ip -n "$NS_SW" link set br-e2e up
    bridge -n "$NS_SW" fdb replace "$SINK_MAC" dev "$SW_SINK" master static
    if ! in_ns "$NS_SW" sysctl -qw net.bridge.bridge-nf-call-iptables=1; then
        UP_ERROR="br_netfilter is not available (net.bridge.bridge-nf-call-iptables)"
        return 1
    fi
    sed -e "s/@SINK_IP@/$SINK_IP/g; s/@DPORT@/$DPORT/g; s/@ZONE@/$ZONE/g" \
        "$SCRIPT_DIR/e2e/bridge.nft" >"$WORK_DIR/bridge.nft"
    if ! in_ns "$NS_SW" nft -f "$WORK_DIR/bridge.nft"; then
        UP_ERROR="nft ruleset refused"
        return 1
    fi
}

# save_state FILE: the system's rule counters after a run (kept with --keep-logs), so a
# run can be checked: connections committed, invalid packets dropped.
save_state() {
    {
        echo "# ip -s link (switch namespace)"
        ip -n "$NS_SW" -s link
        case $SYSTEM_KIND in
        ovs)
            echo "# ovs-ofctl dump-flows"
            ovs ovs-ofctl dump-flows br-e2e
            echo "# ovs-appctl dpctl/show -s"
            ovs ovs-appctl -t "$WORK_DIR/ovs/ovs-vswitchd.$SWITCH_PID.ctl" dpctl/show -s
            ;;
        bridge)
            echo "# nft list ruleset"
            in_ns "$NS_SW" nft list ruleset
            ;;
        sgswitch)
            echo "# sgswitch log"
            kill -USR1 "$SWITCH_PID" 2>/dev/null && sleep 0.3
            cat "$WORK_DIR/sgswitch.log"
            ;;
        esac
    } >"$1" 2>&1 || true
}

SYSTEM_KIND=""
system_up() {
    SYSTEM_KIND=${1%%-*}
    [[ $SYSTEM_KIND == bridge ]] || [[ $SYSTEM_KIND == ovs ]] || SYSTEM_KIND=sgswitch
    case $1 in
    ovs-afxdp) ovs_up ;;
    bridge-nft) bridge_up ;;
    sgswitch-afxdp) sgswitch_up afxdp 1 ;;
    sgswitch-afxdp-backoff) sgswitch_up afxdp 0 ;;
    sgswitch-afpacket) sgswitch_up afpacket 1 ;;
    esac
}

# ---------------------------------------------------------------------------------------
# One measurement. RESULT: "offered_kpps delivered_kpps cpu_total cpu_proc cpu_napi idle_pct"
# (CPU in seconds per million delivered packets; idle CPU in % of one core).

RESULT=""
NOTE="" # drops the switch itself reported, by reason (sgswitch only)

# switch_drop_note: sgswitch's drop reasons from the counters it prints when it stops,
# summed over ports, without the closed-port probe's ingress-denied frames.
switch_drop_note() {
    [[ $SYSTEM_KIND == sgswitch && -f $WORK_DIR/sgswitch.log ]] || return 0
    awk '/sgswitch: stopping/ { delete n; seen = 1 }
        { for (i = 1; i <= NF; i++) if ($i ~ /^[a-z][a-z-]*=[0-9]+$/) {
            split($i, kv, "="); n[kv[1]] += kv[2] } }
        END { out = ""
            for (k in n) if (k != "ingress-denied" && n[k] > 0) out = out (out ? ", " : "") k "=" n[k]
            if (out != "") print "sgswitch drops: " out }' "$WORK_DIR/sgswitch.log"
}

# napi_defer_check: sgswitch must have moderated its veths itself (the feature under
# test: --napi-defer N, or its default of 100 µs without the option); for the other
# systems the script does it with --napi-defer N > 0. Settings are checked, not assumed.
napi_defer_check() {
    local ifc want got us=${NAPI_DEFER_US:-}
    if [[ -z $us ]]; then
        [[ $SYSTEM_KIND == sgswitch ]] || return 0
        us=100
    fi
    ((us > 0)) || return 0
    want=$((us * 1000))
    for ifc in "$SW_GEN" "$SW_SINK"; do
        if [[ $SYSTEM_KIND != sgswitch ]]; then
            in_ns "$NS_SW" sh -c "echo $want > /sys/class/net/$ifc/gro_flush_timeout &&
                echo 2 > /sys/class/net/$ifc/napi_defer_hard_irqs"
        fi
        got=$(in_ns "$NS_SW" cat "/sys/class/net/$ifc/napi_defer_hard_irqs" \
            "/sys/class/net/$ifc/gro_flush_timeout" | tr '\n' ' ')
        if [[ $got != "2 $want " ]]; then
            UP_ERROR="NAPI moderation of $ifc is '$got', expected '2 $want '"
            return 1
        fi
    done
}

napi_defer_text() {
    case ${NAPI_DEFER_US:-} in
    "") echo "each system's default (sgswitch: napi_defer_us = 100 µs, set by itself; OVS and the bridge: the kernel's, none)" ;;
    0) echo "none on any system (kernel defaults; sgswitch with napi_defer_us = 0)" ;;
    *) echo "napi_defer_hard_irqs=2, gro_flush_timeout=${NAPI_DEFER_US} µs on every system (\\`--napi-defer $NAPI_DEFER_US\\`)" ;;
    esac
}

measure() { # measure SYSTEM MIX ROUND
    local system=$1 mix=$2 round=$3
    RESULT="" UP_ERROR="" SWITCH_PID="" NOTE=""
    if ! topology_up || ! ip -n "$NS_SW" link show "$SW_GEN" >/dev/null 2>&1 ||
        ! ip -n "$NS_SW" link show "$SW_SINK" >/dev/null 2>&1; then
        UP_ERROR="could not build the veth topology"
        teardown_measurement
        return 1
    fi
    if ! system_up "$system"; then
        teardown_measurement
        return 1
    fi
    pin_napi_threads # attaching XDP may have created NAPI contexts
    if ! napi_defer_check; then
        teardown_measurement
        return 1
    fi
    if ! probe; then
        teardown_measurement
        return 1
    fi

    local p0 n0 p1 n1 t0 t1 idle_pct
    read -r p0 n0 <<<"$(cpu_sample)"
    t0=$(now_ns)
    pause "$IDLE_S"
    read -r p1 n1 <<<"$(cpu_sample)"
    t1=$(now_ns)
    idle_pct=$(awk -v c="$((p1 - p0 + n1 - n0))" -v ns="$((t1 - t0))" \
        'BEGIN { printf "%.0f", 100 * c / ns }')

    start_trafgen "$mix"
    pause "$WARMUP_S"
    local o0 d0 o1 d1
    o0=$(offered_count) d0=$(delivered_count) t0=$(now_ns)
    read -r p0 n0 <<<"$(cpu_sample)"
    pause "$MEASURE_S"
    o1=$(offered_count) d1=$(delivered_count) t1=$(now_ns)
    read -r p1 n1 <<<"$(cpu_sample)"
    [[ -n ${E2E_DEBUG:-} ]] && log "debug: pid=$SWITCH_PID napi=${NAPI_PIDS[*]} p=$p0..$p1 n=$n0..$n1"
    if ! kill -0 "$TRAFGEN_PID" 2>/dev/null; then
        UP_ERROR="trafgen stopped early: $(tail -n 1 "$WORK_DIR/trafgen.log")"
        teardown_measurement
        return 1
    fi
    stop_trafgen
    save_state "$WORK_DIR/state-$system-$mix-r$round.txt"
    teardown_measurement
    NOTE=$(switch_drop_note)

    RESULT=$(awk -v o="$((o1 - o0))" -v d="$((d1 - d0))" -v p="$((p1 - p0))" \
        -v n="$((n1 - n0))" -v ns="$((t1 - t0))" -v idle="$idle_pct" 'BEGIN {
            s = ns / 1e9
            if (d >= 1000) {
                per = 1e9 * d / 1e6 # ns of CPU per (s per Mpkt)
                cpu = sprintf("%.3f %.3f %.3f", (p + n) / per, p / per, n / per)
            } else {
                cpu = "n/a n/a n/a"
            }
            printf "%.1f %.1f %s %s\n", o / s / 1e3, d / s / 1e3, cpu, idle
        }')
}

# ---------------------------------------------------------------------------------------
# Report

RAW="" # TSV: round system mix status offered delivered cpu cpu_proc cpu_napi idle reason

median() { # median of the numbers on stdin ("" when none)
    sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) exit
        if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2
    }'
}

column_median() { # column_median SYSTEM MIX FIELD
    awk -F'\t' -v s="$1" -v m="$2" -v f="$3" \
        '$2 == s && $3 == m && $4 == "ok" && $f != "n/a" { print $f }' "$RAW" | median
}

render_table() {
    local system mix off del cpu proc napi idle reason ratio ovs_del cpu_cell
    echo "| system | mix | offered kpps | delivered kpps | delivered / OVS | CPU s / Mpkt (process + NAPI) | idle CPU % | notes |"
    echo "|---|---|---:|---:|---:|---:|---:|---|"
    for system in ${SYSTEMS//,/ }; do
        for mix in ${MIXES//,/ }; do
            del=$(column_median "$system" "$mix" 6)
            if [[ -z $del ]]; then
                reason=$(awk -F'\t' -v s="$system" -v m="$mix" \
                    '$2 == s && $3 == m && $4 != "ok" { r = $11 } END { print r }' "$RAW")
                echo "| $system | $mix | — | — | — | — | — | ${reason:-no data} |"
                continue
            fi
            off=$(column_median "$system" "$mix" 5)
            cpu=$(column_median "$system" "$mix" 7)
            proc=$(column_median "$system" "$mix" 8)
            napi=$(column_median "$system" "$mix" 9)
            idle=$(column_median "$system" "$mix" 10)
            if [[ -n $cpu ]]; then
                cpu_cell=$(printf '%.2f (%.2f + %.2f)' "$cpu" "$proc" "$napi")
            else
                cpu_cell="n/a"
            fi
            ovs_del=$(column_median ovs-afxdp "$mix" 6)
            if [[ -n $ovs_del ]]; then
                ratio=$(awk -v a="$del" -v b="$ovs_del" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')
            else
                ratio="n/a"
            fi
            reason=$(awk -F'\t' -v s="$system" -v m="$mix" \
                '$2 == s && $3 == m && $4 == "ok" && $11 != "" { r = $11 } END { print r }' "$RAW")
            printf '| %s | %s | %.0f | %.0f | %s | %s | %s | %s |\n' "$system" "$mix" "$off" "$del" \
                "$ratio" "$cpu_cell" "${idle:-n/a}" "$reason"
        done
    done
}

render_raw() {
    echo "| round | system | mix | status | offered kpps | delivered kpps | CPU s / Mpkt | process | NAPI | idle CPU % | notes |"
    echo "|---:|---|---|---|---:|---:|---:|---:|---:|---:|---|"
    awk -F'\t' '{
        printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11
    }' "$RAW"
}

render_report() {
    local date_s=$1 sg_desc
    if [[ -n $SGSWITCH_SKIP ]]; then
        sg_desc="not measured: $SGSWITCH_SKIP"
    else
        local rev
        rev=$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo "?")
        sg_desc="\`${SGSWITCH_BIN#"$REPO_ROOT"/}\` ($("$SGSWITCH_BIN" --version 2>/dev/null | head -n 1), tree at commit $rev)"
    fi
    cat <<EOF
# End-to-end benchmark results

Written by \`benches/e2e.sh\` (method in its header comment).

- Command: \`$COMMAND_LINE\`
- Date: $date_s
- Host: $(uname -sr), $(nproc) cores ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo))
- Rounds: $ROUNDS × ${MEASURE_S} s measured after ${WARMUP_S} s of warm-up; medians below
- Generator: trafgen $(trafgen -v 2>/dev/null | awk 'NR == 1 { print $2 }') on core $GEN_CPU; switch on core $SWITCH_CPU; veth NAPI threads on core $NAPI_CPU; NAPI moderation of the switch's veths: $(napi_defer_text)
- Open vSwitch: $(ovs-vswitchd --version 2>/dev/null | awk 'NR == 1 { print $NF }'), datapath_type=netdev, afxdp ports (xdp-mode=native)
- sgswitch: $sg_desc
- Conntrack limits: OVS userspace default (3,000,000), Linux nf_conntrack_max $(cat /proc/sys/net/netfilter/nf_conntrack_max 2>/dev/null || echo "?") (full: early drop of unreplied entries), sgswitch's default \`[conntrack] capacity\`

$(render_table)

- 64-byte frames (60 + FCS), UDP to one allowed port; mixes: \`1flow\` one 5-tuple,
  \`10kflows\` 10,000 source ports round robin, \`newflow\` a random source address and
  port per packet (every packet a new connection).
- offered: gen0 tx_packets + tx_dropped; delivered: sink0 rx_packets. Each column is
  the median of its own rounds, so the CPU parts need not add up to the total.
- delivered / OVS: delivered kpps over ovs-afxdp's in the same mix.
- CPU s / Mpkt: CPU seconds per million delivered packets: the switch process (all
  threads, on core $SWITCH_CPU) + the threaded-NAPI kernel threads of its two veths (on
  core $NAPI_CPU: XDP and the copy into AF_XDP sockets; for \`bridge-nft\` the whole
  bridge, br_netfilter, conntrack and nftables path). From /proc/PID/task/*/schedstat.$(
        ((NAPI_CPU == GEN_CPU)) && printf '\n  %s\n  %s' \
            "With NAPI on the generator's core, bridge-nft's rate is bounded by that core" \
            "(generator + bridge), like a bridge fed by a tap; its CPU figure is exact.")
- idle CPU %: the same CPU measure over ${IDLE_S} s with the system up and no traffic.
- sgswitch-afxdp and sgswitch-afpacket busy-poll (\`--busy-poll\`, like OVS's PMD
  threads); sgswitch-afxdp-backoff uses the default idle back-off.
- Shared, noisy machine: compare ratios, not absolute values.

## Every round

$(render_raw)
EOF
}

# ---------------------------------------------------------------------------------------

main() {
    parse_args "$@"
    check_tools
    find_sgswitch
    trap cleanup EXIT
    trap on_signal INT TERM
    WORK_DIR=$(mktemp -d /tmp/sgswitch-e2e.XXXXXX)
    RAW=$WORK_DIR/raw.tsv
    : >"$RAW"
    log "rounds=$ROUNDS seconds=$MEASURE_S warmup=$WARMUP_S systems=$SYSTEMS mixes=$MIXES"
    log "namespaces $NS_GEN $NS_SW $NS_SINK, work dir $WORK_DIR"

    local round system mix off del cpu proc napi idle
    for ((round = 1; round <= ROUNDS; round++)); do
        for system in ${SYSTEMS//,/ }; do
            for mix in ${MIXES//,/ }; do
                if [[ $system == sgswitch-* && -n $SGSWITCH_SKIP ]]; then
                    printf '%s\t%s\t%s\tskipped\tn/a\tn/a\tn/a\tn/a\tn/a\tn/a\t%s\n' \
                        "$round" "$system" "$mix" "$SGSWITCH_SKIP" >>"$RAW"
                    continue
                fi
                log "round $round/$ROUNDS: $system, $mix"
                if measure "$system" "$mix" "$round"; then
                    read -r off del cpu proc napi idle <<<"$RESULT"
                    log "  offered $off kpps, delivered $del kpps, CPU $cpu s/Mpkt ($proc + $napi), idle $idle %"
                    [[ -n $NOTE ]] && log "  $NOTE"
                    printf '%s\t%s\t%s\tok\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$system" \
                        "$mix" "$off" "$del" "$cpu" "$proc" "$napi" "$idle" "$NOTE" >>"$RAW"
                else
                    log "  failed: $UP_ERROR"
                    printf '%s\t%s\t%s\tfailed\tn/a\tn/a\tn/a\tn/a\tn/a\tn/a\t%s\n' \
                        "$round" "$system" "$mix" "${UP_ERROR//$'\t'/ }" >>"$RAW"
                fi
            done
        done
    done

    local report
    report=$(render_report "$(date -u '+%Y-%m-%d %H:%M UTC')")
    printf '%s\n' "$report"
    if ((WRITE_RESULTS)); then
        printf '%s\n' "$report" >"$OUT_FILE"
        log "results written to $OUT_FILE"
    fi
}

main "$@"
