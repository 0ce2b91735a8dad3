# Sourced by packaging/test-caps.sh and packaging/test-deb.sh: two instances in network
# namespaces TAG"a" (10.99.0.1) and TAG"b" (10.99.0.2) behind veth pairs whose host ends
# are TAG"a" and TAG"b" (AF_XDP ports of the switch), and a config with them.

# pair_up TAG: build them (checksum offload off: the switch does not complete partial
# checksums from veths).
pair_up() {
  local tag=$1 s n
  for s in a b; do
    n=$([ $s = a ] && echo 1 || echo 2)
    ip netns add "$tag$s"
    ip link add "$tag$s" type veth peer name eth0 netns "$tag$s"
    ip link set "$tag$s" up
    ethtool -K "$tag$s" tx off >/dev/null 2>&1 || true
    ip -n "$tag$s" link set eth0 address "fa:16:3e:00:00:0$s"
    ip -n "$tag$s" addr add "10.99.0.$n/24" dev eth0
    ip -n "$tag$s" link set eth0 up
    ip netns exec "$tag$s" ethtool -K eth0 tx off >/dev/null 2>&1 || true
  done
}

# pair_down TAG: remove them (also what a failed pair_up left).
pair_down() {
  local tag=$1 s
  for s in a b; do
    ip netns del "$tag$s" 2>/dev/null || true
    ip link del "$tag$s" 2>/dev/null || true
  done
}

# pair_ports TAG: the [[ports]] of a config for them (no security groups: the default
# group lets members talk), plus a tap port TAG"t".
pair_ports() {
  local tag=$1
  cat <<TOML
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
}

# pair_ping TAG: a -> b through the switch.
pair_ping() {
  ip netns exec "${1}a" ping -c 2 -i 0.2 -W 1 10.99.0.2 >/dev/null 2>&1
}
