#!/usr/bin/env bash
# benches/api_under_traffic.sh — rule changes per second through the management API while
# traffic flows through the switch.
#
# Method: `sgswitch demo --keep` builds four instances in network namespaces (tap ports)
# with the switch and its API on 127.0.0.1:9696. A flood ping runs web-1 -> web-2 (allowed
# by the default group) for the whole measurement; meanwhile one client creates N rules
# in the `web` group through POST /v2.0/security-group-rules, each call returning only when
# the switch runs the new policy. Reported: rule creations per second, and the ping's
# packet counts (traffic kept flowing). Cleans up with `sgswitch demo --clean`.
# Run as root: benches/api_under_traffic.sh [N] (default 200).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-200}
bin=${SGSWITCH:-target/release/sgswitch}
[ -x "$bin" ] || cargo build --release
cleanup() { "$bin" demo --clean >/dev/null 2>&1 || true; }
trap cleanup EXIT INT TERM
"$bin" demo --keep > /tmp/sgs-api-traffic-demo.log 2>&1
ip netns exec sgs-demo-web1 ping -f -w $((N / 20 + 10)) 10.0.0.12 > /tmp/sgs-api-traffic-ping.log 2>&1 &
ping_pid=$!
sleep 1
python3 - "$N" <<'PY'
import json, sys, time, urllib.request
n = int(sys.argv[1])
base = "http://127.0.0.1:9696/v2.0"
groups = json.load(urllib.request.urlopen(base + "/security-groups?name=web"))["security_groups"]
gid = groups[0]["id"]
t0 = time.monotonic()
for i in range(n):
    body = json.dumps({"security_group_rule": {"security_group_id": gid, "direction": "ingress",
        "protocol": "tcp", "port_range_min": 20000 + i, "port_range_max": 20000 + i}}).encode()
    req = urllib.request.Request(base + "/security-group-rules", data=body,
                                 headers={"Content-Type": "application/json"}, method="POST")
    assert urllib.request.urlopen(req).status == 201
dt = time.monotonic() - t0
print(f"{n} rule creations in {dt:.2f} s: {n / dt:.0f} per second, while traffic flows")
PY
kill -INT "$ping_pid" 2>/dev/null || true
wait "$ping_pid" 2>/dev/null || true
grep -E "packets transmitted" /tmp/sgs-api-traffic-ping.log || true
