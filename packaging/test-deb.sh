#!/usr/bin/env bash
# The Debian package, end to end on this machine (root; CI runs it in its own step of
# .ci/run, on a disposable machine): build it, install it, use it, start it as a systemd
# service, remove and purge it, and check that purge leaves nothing.
#
#   packaging/test-deb.sh [sgswitch_*.deb]     (default: build with packaging/build-deb.sh)
#
# 1. dpkg -i; `sgswitch check` on the installed /etc/sgswitch/sgswitch.toml; `man -w`
#    finds sgswitch(8) and sgswitch-run(8); the completions are where bash-completion,
#    zsh and fish look (and bash-completion loads ours, when installed);
# 2. the unit, for real: systemd booted as PID 1 in namespaces
#    (packaging/systemd-container.sh), `systemctl start sgswitch` reaches READY (the
#    ready line is its STATUS), the API answers with the token in /run/sgswitch, a config
#    with two AF_XDP ports and a tap port is applied with `systemctl reload` and a ping
#    passes through the switch, after a `kill -9` systemd restarts it with its state
#    (the ports) and token and the ping passes again, with the netns.conf drop-in a tap
#    moved into a namespace works too, `systemctl stop` stops it cleanly;
# 3. dpkg -r keeps the conffiles, dpkg --purge removes them, the state and every file
#    the package brought: the files named *sgswitch* before and after are the same.
set -euo pipefail
cd "$(dirname "$0")/.."
here=$PWD
tag="sgdeb$$"
work=$(mktemp -d "/tmp/$tag.XXXXXX")
sd="$work/systemd"
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "--- $*"; }
# shellcheck source=packaging/lib-netns.sh
. packaging/lib-netns.sh

if dpkg-query -W -f='${Status}' sgswitch 2>/dev/null | grep -q installed; then
  fail "a sgswitch package is installed already: this test would remove it"
fi
for t in dpkg-deb man ip ethtool ping unshare nsenter /lib/systemd/systemd; do
  command -v "$t" >/dev/null || [ -x "$t" ] || fail "missing $t (apt-get install man-db iproute2 ethtool iputils-ping util-linux systemd)"
done

deb=${1:-}
if [ -z "$deb" ]; then
  step "build: packaging/build-deb.sh"
  packaging/build-deb.sh >"$work/build.log" 2>&1 || { tail -30 "$work/build.log"; fail "build-deb.sh"; }
  deb=$(tail -1 "$work/build.log")
fi
[ -f "$deb" ] || fail "no package $deb"
deb=$(readlink -f "$deb")

# Everything named *sgswitch* outside this checkout, the temporary and the kernel's
# trees and /run (other switches' tokens; the service's /run/sgswitch is systemd's and
# goes with it) and man-db's cache of formatted pages (/var/cache/man/cat8: `man` and
# `systemd-analyze verify`, which runs man for Documentation=, fill it; no package purges
# it, man-db's daily mandb drops stale pages; this test removes its own at the end):
# before, and after the purge.
files_named() {
  find / -xdev \( -path /proc -o -path /sys -o -path /tmp -o -path /var/tmp -o -path /run -o -path /var/cache/man -o -path /work \
    -o -path "$here" -o -path /root -o -path /home \) -prune -o -name '*sgswitch*' -print |
    sort
}
files_named >"$work/before"

installed=0
cleanup() {
  set +e
  "$here/packaging/systemd-container.sh" stop "$sd" >/dev/null 2>&1
  pair_down "$tag"
  ip netns del "${tag}c" 2>/dev/null
  [ $installed = 1 ] && dpkg --purge sgswitch >/dev/null 2>&1
  rm -f /var/cache/man/cat8/sgswitch*.8.gz
  rm -rf "$work"
}
trap cleanup EXIT

step "dpkg -i $(basename "$deb")"
installed=1
dpkg -i "$deb" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -i"; }
dpkg -L sgswitch | sort >"$work/package-files"

step "sgswitch check --config /etc/sgswitch/sgswitch.toml"
/usr/bin/sgswitch check --config /etc/sgswitch/sgswitch.toml >/dev/null
[ "$(dpkg-query -W -f='${Conffiles}' sgswitch | grep -c /etc/)" = 2 ] || fail "conffiles"

step "man -w sgswitch / sgswitch-run"
for page in sgswitch sgswitch-run sgswitch-security-group-rule-create; do
  p=$(man -w "$page") || fail "man -w $page"
  [ "$p" = "/usr/share/man/man8/$page.8.gz" ] || fail "man -w $page: $p"
done
# -l: a local file, which man-db does not cache in /var/cache/man.
man -P cat -l "$(man -w sgswitch-run)" 2>/dev/null | grep -q -- '--state-dir' ||
  fail "man sgswitch-run does not render"

step "completions"
for f in /usr/share/bash-completion/completions/sgswitch /usr/share/zsh/vendor-completions/_sgswitch \
         /usr/share/fish/vendor_completions.d/sgswitch.fish; do
  [ -s "$f" ] || fail "no completion file $f"
done
if [ -f /usr/share/bash-completion/bash_completion ]; then
  bash -c '. /usr/share/bash-completion/bash_completion; _completion_loader sgswitch; complete -p sgswitch' |
    grep -q '_sgswitch' || fail "bash-completion does not load sgswitch's"
  echo "    bash-completion loads it"
fi

step "systemd-analyze verify sgswitch.service"
out=$(systemd-analyze verify /usr/lib/systemd/system/sgswitch.service 2>&1) || fail "verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify: $out"

step "systemd as PID 1 in namespaces; systemctl start sgswitch"
# The instances' namespaces first: the booted systemd sees those that exist at its boot.
pair_up "$tag"
ip netns add "${tag}c"
packaging/systemd-container.sh start "$sd" >/dev/null 2>&1
in_sd() { "$here/packaging/systemd-container.sh" run "$sd" "$@"; }
# The API on a free port (the packaged default is 127.0.0.1:9696): a drop-in in the
# booted systemd's own /run.
in_sd mkdir -p /run/systemd/system/sgswitch.service.d
printf '[Service]\nEnvironment=SGSWITCH_OPTS="--api 127.0.0.1:0"\n' |
  in_sd tee /run/systemd/system/sgswitch.service.d/test.conf >/dev/null
in_sd systemctl daemon-reload
in_sd systemctl start sgswitch || { in_sd journalctl -u sgswitch --no-pager | tail -20; fail "start"; }
show() { in_sd systemctl show -P "$1" sgswitch; }
# The unit's journal, whole (a `| grep -q` would end journalctl early: SIGPIPE, pipefail).
journal() { in_sd journalctl -u sgswitch --no-pager -o cat >"$work/journal"; cat "$work/journal"; }
[ "$(show ActiveState)" = active ] || fail "not active: $(show ActiveState)"
status=$(show StatusText)
echo "    STATUS: $status"
case "$status" in "ready ("*"API on http://127.0.0.1:"*) ;; *) fail "no READY status" ;; esac
endpoint="http://${status##*API on http://}"; endpoint=${endpoint%)}
in_sd sgswitch security-group list --endpoint "$endpoint" | grep -q web ||
  fail "the API does not answer with /run/sgswitch/api-token"
in_sd test -f /var/lib/sgswitch/state.json || fail "no state in /var/lib/sgswitch"
caps=$(in_sd grep CapEff "/proc/$(show MainPID)/status" | awk '{print $2}')
[ "$caps" = 0000008000007000 ] || fail "capabilities $caps (expected NET_ADMIN NET_RAW IPC_LOCK BPF)"

step "systemctl reload sgswitch with two AF_XDP ports and a tap port; a ping through"
{ cat /etc/sgswitch/sgswitch.toml; pair_ports "$tag"; } >"$work/sgswitch.toml"
cp "$work/sgswitch.toml" /etc/sgswitch/sgswitch.toml
in_sd systemctl reload sgswitch
for _ in $(seq 50); do
  case "$(show StatusText)" in *"(reloaded)") break ;; esac
  sleep 0.1
done
echo "    STATUS: $(show StatusText)"
journal >/dev/null
grep -q 'port opened port=a' "$work/journal" || fail "reload did not open the ports"
ip link show "${tag}t" >/dev/null 2>&1 || fail "no tap ${tag}t"
pair_ping "$tag" || fail "no ping through the service's switch"
echo "    ping a -> b passes"

step "kill -9 the switch: Restart=on-failure brings it back with its state and token"
token=$(in_sd cat /run/sgswitch/api-token)
old=$(show MainPID)
in_sd kill -KILL "$old"
for _ in $(seq 100); do
  new=$(show MainPID)
  [ "$new" != 0 ] && [ "$new" != "$old" ] && [ "$(show ActiveState)" = active ] && break
  sleep 0.1
done
[ "$(show ActiveState)" = active ] && [ "$new" != "$old" ] || fail "not restarted: $(show ActiveState)"
[ "$(show NRestarts)" = 1 ] || fail "NRestarts $(show NRestarts)"
echo "    STATUS: $(show StatusText)"
[ "$(in_sd cat /run/sgswitch/api-token)" = "$token" ] || fail "the token changed across the restart"
pair_ping "$tag" || fail "no ping through the restarted switch"
echo "    restarted (pid $old -> $new), same token, ping a -> b passes"

step "a tap moved into a namespace: needs the netns.conf drop-in (CAP_SYS_ADMIN)"
in_sd cp /usr/share/doc/sgswitch/examples/netns.conf /run/systemd/system/sgswitch.service.d/
in_sd systemctl daemon-reload
in_sd systemctl restart sgswitch
cat >>/etc/sgswitch/sgswitch.toml <<TOML

[[ports]]
name = "c"
mac = "fa:16:3e:00:00:0d"
fixed_ips = ["10.99.0.4"]
backend = { type = "tap", ifname = "${tag}c", netns = "${tag}c" }
TOML
in_sd systemctl reload sgswitch
for _ in $(seq 50); do
  ip -n "${tag}c" link show "${tag}c" >/dev/null 2>&1 && break
  sleep 0.1
done
ip -n "${tag}c" link show "${tag}c" >/dev/null 2>&1 || {
  journal | tail -5; fail "no tap in ${tag}c"; }
# The tap keeps a random MAC in the namespace: the port's MAC is set by hand.
ip -n "${tag}c" link set "${tag}c" address fa:16:3e:00:00:0d
ip -n "${tag}c" addr add 10.99.0.4/24 dev "${tag}c"
ip netns exec "${tag}c" ping -c 2 -i 0.2 -W 1 10.99.0.1 >/dev/null 2>&1 ||
  fail "no ping from the tap in ${tag}c through the switch"
echo "    ping c (tap in a namespace) -> a passes"

# The hardening (capabilities, SystemCallFilter, ProtectSystem) refused nothing.
journal >/dev/null
if grep -iE 'not permitted|permission denied|read-only' "$work/journal"; then
  fail "the unit's sandbox refused the switch something (above)"
fi

step "systemctl stop sgswitch"
in_sd systemctl stop sgswitch
[ "$(show ActiveState)" = inactive ] || fail "not stopped: $(show ActiveState) $(show Result)"
[ "$(show Result)" = success ] || fail "stopped with $(show Result)"
journal >/dev/null
grep -q 'switch stopped' "$work/journal" || fail "no clean stop in the journal"
ip link show "${tag}t" >/dev/null 2>&1 && fail "the tap outlived the service"
packaging/systemd-container.sh stop "$sd" >/dev/null
pair_down "$tag"
ip netns del "${tag}c"

step "dpkg -r (conffiles stay), dpkg --purge (nothing stays)"
dpkg -r sgswitch >/dev/null
[ -f /etc/sgswitch/sgswitch.toml ] || fail "dpkg -r removed the conffile"
[ -e /usr/bin/sgswitch ] && fail "dpkg -r left /usr/bin/sgswitch"
dpkg --purge sgswitch >/dev/null
installed=0
files_named >"$work/after"
if ! diff -u "$work/before" "$work/after"; then fail "purge left files (above)"; fi
while read -r f; do
  [ -d "$f" ] && continue
  [ -e "$f" ] && fail "purge left $f"
done <"$work/package-files"
echo "package test: ok ($(wc -l <"$work/package-files") paths installed and removed)"
