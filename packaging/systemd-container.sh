#!/usr/bin/env bash
# Boot systemd as PID 1 in new PID, mount and cgroup namespaces on this machine's own
# file system, to prove the sgswitch unit where the machine's PID 1 is not systemd (CI,
# containers). Used by packaging/test-deb.sh.
#
#   packaging/systemd-container.sh start DIR   # boots; prints the PID of its systemd
#   packaging/systemd-container.sh run DIR CMD...  # CMD inside (systemctl, journalctl)
#   packaging/systemd-container.sh stop DIR    # powers it off, waits, removes DIR
#
# Inside: a private /run (so the host's tools never see a /run/systemd/system; the
# network namespaces of /run/netns that exist at boot are bound into it), the
# host's /etc/systemd/system hidden (no enabled host service starts), and the sysinit
# units masked that would change the shared kernel (sysctl, modules, udev, binfmt) or
# the host's files (tmpfiles, random seed, utmp). Only the unit under test and what its
# default dependencies pull in run.
set -euo pipefail
cmd=${1:?start|run|stop}; dir=${2:?state directory}; shift 2

masked=(systemd-sysctl.service systemd-modules-load.service systemd-udevd.service
  systemd-udev-trigger.service systemd-udevd-control.socket systemd-udevd-kernel.socket
  systemd-binfmt.service proc-sys-fs-binfmt_misc.automount systemd-random-seed.service
  systemd-tmpfiles-setup.service systemd-tmpfiles-setup-dev.service
  systemd-update-utmp.service systemd-firstboot.service systemd-machine-id-commit.service
  systemd-sysusers.service systemd-repart.service systemd-journal-flush.service
  systemd-pcrphase.service systemd-pcrphase-sysinit.service kmod-static-nodes.service
  dev-hugepages.mount dev-mqueue.mount sys-kernel-config.mount sys-kernel-debug.mount
  sys-kernel-tracing.mount sys-fs-fuse-connections.mount systemd-remount-fs.service
  systemd-journald-audit.socket dbus.socket dbus.service getty.target console-getty.service
  systemd-logind.service systemd-timesyncd.service)

pid1() { cat "$dir/pid1"; }

case "$cmd" in
start)
  mkdir -p "$dir"
  # The cgroups systemd makes (init.scope, system.slice) are the host's too: listed before,
  # removed at stop.
  find /sys/fs/cgroup -mindepth 1 -maxdepth 4 -type d 2>/dev/null | sort >"$dir/cgroups.before"
  # The boot script runs as PID 1 of the new namespaces, then becomes systemd.
  cat >"$dir/boot.sh" <<BOOT
set -e
# The host's named network namespaces (those that exist now) stay visible in /run/netns.
mkdir -p "$dir/netns"
[ -d /run/netns ] && mount --rbind /run/netns "$dir/netns"
mount -t tmpfs -o mode=755 tmpfs /run
mkdir -p /run/netns
mount --rbind "$dir/netns" /run/netns
mount -t tmpfs -o mode=755 tmpfs /etc/systemd/system
for u in ${masked[*]}; do ln -s /dev/null /etc/systemd/system/\$u; done
cat >/etc/systemd/system/sgswitch-test.target <<T
[Unit]
Description=sgswitch unit test boot
Requires=basic.target
After=basic.target
AllowIsolate=yes
T
exec env container=sgswitch-test /lib/systemd/systemd --system --unit=sgswitch-test.target \
  --log-target=console --show-status=no
BOOT
  setsid unshare --pid --fork --mount --mount-proc --cgroup --propagation private \
    bash "$dir/boot.sh" </dev/null >"$dir/console.log" 2>&1 &
  echo $! >"$dir/unshare.pid"
  # The namespace's PID 1 is unshare's child.
  for _ in $(seq 100); do
    child=$(pgrep -P "$(cat "$dir/unshare.pid")" || true)
    if [ -n "$child" ] && [ "$(cat /proc/"$child"/comm 2>/dev/null)" = systemd ]; then
      echo "$child" >"$dir/pid1"; break
    fi
    sleep 0.1
  done
  [ -s "$dir/pid1" ] || { echo "systemd did not start:" >&2; cat "$dir/console.log" >&2; exit 1; }
  # Wait for the boot to settle (the manager answers, the test target is reached).
  for _ in $(seq 300); do
    state=$("$0" run "$dir" systemctl is-system-running 2>/dev/null || true)
    case "$state" in running|degraded) break ;; esac
    sleep 0.1
  done
  echo "systemd $(pid1) is $state" >&2
  pid1
  ;;
run)
  exec nsenter -t "$(pid1)" -m -p -C -- "$@"
  ;;
stop)
  if [ -s "$dir/pid1" ] && kill -0 "$(pid1)" 2>/dev/null; then
    # SIGRTMIN+4 is systemd's poweroff; in a container it then exits.
    kill -s RTMIN+4 "$(pid1)" || true
    for _ in $(seq 150); do kill -0 "$(pid1)" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$(pid1)" 2>/dev/null && kill -KILL "$(pid1)"
  fi
  if [ -s "$dir/unshare.pid" ]; then
    while kill -0 "$(cat "$dir/unshare.pid")" 2>/dev/null; do sleep 0.1; done
  fi
  if [ -f "$dir/cgroups.before" ]; then
    find /sys/fs/cgroup -mindepth 1 -maxdepth 4 -type d 2>/dev/null | sort |
      comm -13 "$dir/cgroups.before" - | sort -r | xargs -r -d '\n' rmdir 2>/dev/null || true
  fi
  rm -rf "$dir"
  ;;
*) echo "usage: $0 start|run|stop DIR [CMD...]" >&2; exit 2 ;;
esac
