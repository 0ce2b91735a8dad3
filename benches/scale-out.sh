#!/usr/bin/env bash
# benches/scale-out.sh — issue #18's scale-out benchmarks with `sgswitch sim-hosts` on a
# private etcd.
#
# What it does
# ------------
# Starts its own etcd (Debian's etcd-server) on two free 127.0.0.1 ports with a temporary
# data directory (stopped by its PID and removed on exit, also on Ctrl-C), then runs
# `sgswitch sim-hosts --store etcd://127.0.0.1:PORT` for the four scenarios of the issue,
# smaller N first:
#   propagation    a rule change in a group every host uses: put -> last host applied
#                  (targets: p99 < 20 ms at N=10, < 40 ms at N=100, < 100 ms at N=1,000)
#   remote-group   a 10,000-member remote group referenced by 100 of 1,000 hosts: a join
#                  reaches those 100 (same targets), 0 events at the other 900
#   churn          100 port creates+deletes a second for 60 s at N=1,000: p99 < 250 ms,
#                  no growing lag (first half vs second half), memory per simulated host
#   cold-start     1,000 simulated hosts all applied in < 10 s
# and, with no store, member-join-compile (the compile time of a 1k / 10k-rule host
# model before and after a remote-group member joins).
#
# Every run prints the store (etcd version), cores, N; the report is written to
# benches/scale-out-results.md (or --out FILE) with the commands, the machine's load
# average before each run, and the outputs.
#
# Usage
#   benches/scale-out.sh [--quick] [--max-hosts N] [--min-hosts N] [--churn-seconds S]
#                        [--only SCENARIO] [--out FILE]
#     --quick          N in {10, 100} only, short churn (10 s): proves the script works
#     --max-hosts N    the largest N (default 1000)
#     --min-hosts N    the smallest N (default 10): `--min-hosts 1000` runs N=1,000 only
#     --churn-seconds  churn duration (default 60)
#     --only SCENARIO  one scenario: propagation, remote-group, churn, cold-start or
#                      member-join-compile (default: all)
#   SGSWITCH=path/to/sgswitch (default: target/release/sgswitch, built if missing)
#
# Measure on a quiet machine: the simulated hosts, etcd and the compiler share the cores.
set -euo pipefail

cd "$(dirname "$0")/.."
QUICK=0
MAX_HOSTS=1000
MIN_HOSTS=10
ONLY=
CHURN_SECONDS=60
OUT=benches/scale-out-results.md
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --max-hosts) MAX_HOSTS=$2; shift ;;
        --min-hosts) MIN_HOSTS=$2; shift ;;
        --only) ONLY=$2; shift ;;
        --churn-seconds) CHURN_SECONDS=$2; shift ;;
        --out) OUT=$2; shift ;;
        *) echo "usage: $0 [--quick] [--max-hosts N] [--min-hosts N] [--churn-seconds S] [--only SCENARIO] [--out FILE]" >&2; exit 2 ;;
    esac
    shift
done
if [ "$QUICK" = 1 ]; then
    MAX_HOSTS=100
    CHURN_SECONDS=10
fi

SGSWITCH=${SGSWITCH:-target/release/sgswitch}
if [ ! -x "$SGSWITCH" ]; then
    cargo build --release --locked
fi
ETCD=${ETCD:-$(command -v etcd || true)}
if [ -z "$ETCD" ]; then
    echo "scale-out: etcd not found (apt-get install etcd-server)" >&2
    exit 1
fi
# The open files a thousand clients need.
ulimit -n 65536 2>/dev/null || true

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

DIR=$(mktemp -d /tmp/sgswitch-scale-out.XXXXXX)
ETCD_PID=
cleanup() {
    if [ -n "$ETCD_PID" ]; then
        kill "$ETCD_PID" 2>/dev/null || true
        wait "$ETCD_PID" 2>/dev/null || true
    fi
    rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

CPORT=$(free_port)
PPORT=$(free_port)
while [ "$PPORT" = "$CPORT" ]; do PPORT=$(free_port); done
"$ETCD" --name scale-out --data-dir "$DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$CPORT" --advertise-client-urls "http://127.0.0.1:$CPORT" \
    --listen-peer-urls "http://127.0.0.1:$PPORT" --initial-advertise-peer-urls "http://127.0.0.1:$PPORT" \
    --initial-cluster "scale-out=http://127.0.0.1:$PPORT" \
    --quota-backend-bytes $((4 * 1024 * 1024 * 1024)) \
    --auto-compaction-mode revision --auto-compaction-retention 100000 \
    >"$DIR/etcd.log" 2>&1 &
ETCD_PID=$!
STORE="etcd://127.0.0.1:$CPORT"
# etcd's own /health endpoint (etcdctl is in Debian's etcd-client, which .ci/run does not
# install: only etcd-server).
healthy() {
    curl -fsS --max-time 1 "http://127.0.0.1:$CPORT/health" 2>/dev/null | grep -q '"health":"true"'
}
for _ in $(seq 100); do
    if healthy; then
        break
    fi
    sleep 0.1
done
healthy || {
    echo "scale-out: etcd did not start:" >&2
    tail -20 "$DIR/etcd.log" >&2
    exit 1
}
ETCD_VERSION=$("$ETCD" --version | head -1)

{
    echo "# Scale-out benchmarks (issue #18)"
    echo
    echo "Written by \`benches/scale-out.sh$([ "$QUICK" = 1 ] && echo " --quick")\` on $(date -u +%Y-%m-%dT%H:%MZ),"
    echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $ETCD_VERSION, $(nproc) cores,"
    echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')."
    echo
} >"$OUT"

# Whether scenario $1 at N=$2 runs (--only, --min-hosts, --max-hosts).
want() {
    [ -z "$ONLY" ] || [ "$ONLY" = "$1" ] || return 1
    [ -z "${2:-}" ] || { [ "$2" -ge "$MIN_HOSTS" ] && [ "$2" -le "$MAX_HOSTS" ]; }
}

run() {
    local title=$1
    shift
    echo "== $title: sgswitch sim-hosts $*" >&2
    {
        echo "## $title"
        echo
        echo "\`sgswitch sim-hosts $*\` (load average before: $(cut -d' ' -f1-3 /proc/loadavg))"
        echo
        echo '```'
    } >>"$OUT"
    if "$SGSWITCH" sim-hosts "$@" >"$DIR/out" 2>&1; then
        cat "$DIR/out" >>"$OUT"
    else
        cat "$DIR/out" >>"$OUT"
        echo "(exit status $?)" >>"$OUT"
    fi
    cat "$DIR/out" >&2
    echo '```' >>"$OUT"
    echo >>"$OUT"
}

for n in 10 100 1000; do
    want propagation "$n" || continue
    run "Propagation, N=$n" --store "$STORE" --hosts "$n" --scenario propagation --changes 100 --duration 60
    # The same without the N status writes each change causes (status/HOST after each
    # apply): how much of the latency is etcd taking those writes on these cores.
    run "Propagation, N=$n, agents not writing status/HOST" \
        --store "$STORE" --hosts "$n" --scenario propagation --changes 100 --duration 60 --no-status
done
for n in 100 1000; do
    want remote-group "$n" || continue
    run "Remote group of 10,000 members, N=$n ($((n / 10)) interested)" \
        --store "$STORE" --hosts "$n" --scenario remote-group --members 10000 --changes 50 --duration 60
done
for n in 100 1000; do
    want churn "$n" || continue
    run "Churn, N=$n, 100/s for ${CHURN_SECONDS} s" \
        --store "$STORE" --hosts "$n" --scenario churn --rate 100 --duration "$CHURN_SECONDS"
done
for n in 100 1000; do
    want cold-start "$n" || continue
    run "Cold start, N=$n" --store "$STORE" --hosts "$n" --scenario cold-start
done
want member-join-compile && run "Member join: compile time (no store)" --store mem --scenario member-join-compile --members 10000 --rules 1000,10000
echo "scale-out: report in $OUT" >&2
