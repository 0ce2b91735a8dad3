#!/bin/bash
# A quick look at TSO through tap ports (#16): one iperf3 TCP stream between two
# instances (namespaces) on sgswitch tap ports with vnet_hdr, one worker. Not the benchmark
# (that is benches/tap.sh, against the kernel and Open vSwitch): a before/after check.
#
# usage (root): benches/gso-iperf.sh SGSWITCH_BINARY [SECONDS]
# Prints whether the instance's tap has TSO on, and iperf3's sender/receiver lines.
set -u
BIN=$1; SECS=${2:-5}; T=hg$$
D=$(mktemp -d); cleanup() { kill "${SW:-}" 2>/dev/null; wait 2>/dev/null; ip netns del $T-a 2>/dev/null; ip netns del $T-b 2>/dev/null; rm -rf "$D"; }
trap cleanup EXIT
ip netns add $T-a; ip netns add $T-b
cat > $D/c.toml <<EOT
[switch]
workers = 1
[[security_groups]]
name = "open"
rules = [ { direction = "egress", ethertype = "IPv4" }, { direction = "ingress", ethertype = "IPv4", protocol = "tcp" }, { direction = "ingress", ethertype = "IPv4", protocol = "icmp" } ]
[[ports]]
name = "a"
mac = "fa:16:3e:00:00:0a"
fixed_ips = ["10.9.0.10"]
security_groups = ["open"]
backend = { type = "tap", ifname = "${T}a", netns = "$T-a", vnet_hdr = true }
[[ports]]
name = "b"
mac = "fa:16:3e:00:00:0b"
fixed_ips = ["10.9.0.11"]
security_groups = ["open"]
backend = { type = "tap", ifname = "${T}b", netns = "$T-b", vnet_hdr = true }
EOT
$BIN run --config $D/c.toml --api 127.0.0.1:0 > $D/log 2>&1 &
SW=$!
for i in $(seq 50); do grep -q ready $D/log && break; sleep 0.2; done
for x in a b; do
  ip -n $T-$x link set ${T}$x down
  ip -n $T-$x link set ${T}$x address fa:16:3e:00:00:0$x
  ip -n $T-$x link set ${T}$x up
done
ip -n $T-a addr add 10.9.0.10/24 dev ${T}a; ip -n $T-b addr add 10.9.0.11/24 dev ${T}b
ip netns exec $T-b iperf3 -s -1 -D
sleep 1
ip netns exec $T-a ping -c1 -W2 10.9.0.11 > /dev/null
ip netns exec $T-a ethtool -k ${T}a | grep -E "^tcp-segmentation-offload"
ip netns exec $T-a iperf3 -c 10.9.0.11 -t $SECS -f g | grep -E "sender|receiver"
