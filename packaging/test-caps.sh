#!/usr/bin/env bash
# Which capabilities `sgswitch run` needs: runs the switch on two AF_XDP ports (veth
# pairs to two network namespaces) and on a tap port, with exactly the unit's capability
# set (packaging/sgswitch.service: bounding = ambient = the set, no-new-privs, as a
# non-root-privileged root: setpriv), then with each capability left out, and checks
# that the switch starts and a ping passes through it. Prints one line per set; exits 1
# when the unit's set fails or a capability left out is not missed (then it is not
# needed and the unit should drop it).
#
#   packaging/test-caps.sh [path/to/sgswitch]     (root; iproute2, ping, ethtool)
set -euo pipefail
bin=${1:-target/release/sgswitch}
bin=$(readlink -f "$bin")
caps=(net_admin net_raw bpf ipc_lock)
tag="sgcap$$"
work=$(mktemp -d "/tmp/$tag.XXXXXX")
cleanup() {
  ip netns del "${tag}a" 2>/dev/null || true
  ip netns del "${tag}b" 2>/dev/null || true
  ip link del "${tag}a" 2>/dev/null || true
  ip link del "${tag}b" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
for s in a b; do
  ip netns add "$tag$s"
  ip link add "$tag$s" type veth peer name eth0 netns "$tag$s"
  ip link set "$tag$s" up
  ethtool -K "$tag$s" tx off >/dev/null 2>&1 || true
done
ip -n "${tag}a" link set eth0 address fa:16:3e:00:00:0a
ip -n "${tag}b" link set eth0 address fa:16:3e:00:00:0b
for s in a b; do
  n=$([ $s = a ] && echo 1 || echo 2)
  ip -n "$tag$s" addr add "10.99.0.$n/24" dev eth0
  ip -n "$tag$s" link set eth0 up
  ip netns exec "$tag$s" ethtool -K eth0 tx off >/dev/null 2>&1 || true
done
cat >"$work/sg.toml" <<TOML
[[ports]]
name = "a"
mac = "fa:16:3e:00:00:0a"
fixed_ips = ["10.99.0.1"]
backend = { type = "afxdp", ifname = "${tag}a" }
[[ports]]
name = "b"
mac = "fa:16:3e:00:00:0b"
fixed_ips = ["10.99.0.2"]
backend = { type = "afxdp", ifname = "${tag}b" }
[[ports]]
name = "t"
mac = "fa:16:3e:00:00:0c"
fixed_ips = ["10.99.0.3"]
backend = { type = "tap", ifname = "${tag}t" }
TOML

# try CAPS...: 0 when the switch got ready and a ping a -> b passed.
try() {
  local list="" c
  for c in "$@"; do list+="${list:+,}+$c"; done
  rm -rf "$work/state" "$work/log"
  # The unit's conditions: only these capabilities bounded and ambient, none other,
  # RLIMIT_MEMLOCK as systemd leaves it by default (8 MiB), no new privileges.
  (ulimit -l 8192
   exec setpriv --bounding-set "-all${list:+,$list}" --inh-caps "-all${list:+,$list}" \
     --ambient-caps "-all${list:+,$list}" --no-new-privs \
     "$bin" run --config "$work/sg.toml" --no-api --workers 1 --no-pin \
     --state-dir "$work/state") >"$work/log" 2>&1 &
  local pid=$! ok=1
  for _ in $(seq 50); do
    grep -qs 'ready (' "$work/log" && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.1
  done
  if grep -q 'ready (' "$work/log" &&
     ip netns exec "${tag}a" ping -c 2 -i 0.2 -W 1 10.99.0.2 >/dev/null 2>&1; then
    ok=0
  fi
  kill -INT $pid 2>/dev/null || true
  wait $pid 2>/dev/null || true
  [ $ok = 0 ] || grep -m1 -iE 'error|denied|not permitted' "$work/log" | sed 's/^/    /' || true
  return $ok
}

failed=0
if try "${caps[@]}"; then
  echo "unit set (${caps[*]}): starts, forwards"
else
  echo "unit set (${caps[*]}): FAILS"; failed=1
fi
for drop in "${caps[@]}"; do
  rest=()
  for c in "${caps[@]}"; do [ "$c" = "$drop" ] || rest+=("$c"); done
  if try "${rest[@]}"; then
    echo "without $drop: still works: not needed"; failed=1
  else
    echo "without $drop: fails: needed"
  fi
done
exit $failed
