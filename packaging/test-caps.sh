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
# shellcheck source=packaging/lib-netns.sh
. "$(dirname "$0")/lib-netns.sh"
cleanup() { pair_down "$tag"; rm -rf "$work"; }
trap cleanup EXIT
pair_up "$tag"
pair_ports "$tag" >"$work/sg.toml"

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
  if grep -q 'ready (' "$work/log" && pair_ping "$tag"; then
    ok=0
  fi
  kill -INT $pid 2>/dev/null || true
  wait $pid 2>/dev/null || true
  { grep -m1 -E ': port |ready' "$work/log" || grep -m1 -iE 'error|denied' "$work/log"; } |
    sed 's/^/    /' >"$work/why" || true
  return $ok
}

failed=0
if try "${caps[@]}"; then
  echo "unit set (${caps[*]}): starts, forwards"
else
  echo "unit set (${caps[*]}): FAILS"; cat "$work/why"; failed=1
fi
for drop in "${caps[@]}"; do
  rest=()
  for c in "${caps[@]}"; do [ "$c" = "$drop" ] || rest+=("$c"); done
  if try "${rest[@]}"; then
    echo "without $drop: still works: not needed"; failed=1
  else
    echo "without $drop: fails: needed"; cat "$work/why"
  fi
done
exit $failed
