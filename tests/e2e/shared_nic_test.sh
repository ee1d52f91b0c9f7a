#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# rondo shares an interface with the host kernel (net_af_xdp + bpf/rondo_xdp.bpf.o):
# traffic for the VIP reaches rondo, traffic for the host's own address (here an HTTP
# server standing in for SSH or BGP, and the ARP for it) still reaches the kernel, on the
# same veth.
#
#   rd-xdpN-cl: eth0 198.51.100.2 (client) and .3 (a backend, HTTP :3000)
#       |  veth
#   rd-xdpN-lb: dp0 198.51.100.254 (the host; HTTP :2222), rondo on dp0 through AF_XDP
set -uo pipefail

build=${RONDO_BUILD:?RONDO_BUILD must point at the build directory}
[ "$(id -u)" -eq 0 ] || { echo "shared_nic_test: needs root; skipped"; exit 77; }
[ -f "$build/bpf/rondo_xdp.bpf.o" ] || { echo "shared_nic_test: no XDP object (clang missing?); skipped"; exit 77; }

tag=xdp$$
cl=rd-$tag-cl
lb=rd-$tag-lb
prefix=rondo-$tag
tmp=$(mktemp -d /tmp/rondo-xdp.XXXXXX)
pids=()

cleanup() {
	local pid
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
	ip netns pids "$cl" 2>/dev/null | xargs -r kill -9 2>/dev/null
	ip netns pids "$lb" 2>/dev/null | xargs -r kill -9 2>/dev/null
	ip netns del "$cl" 2>/dev/null
	ip netns del "$lb" 2>/dev/null
	rm -rf -- "$tmp" "/var/run/dpdk/$prefix"
	rm -f -- /dev/hugepages/"$prefix"map_* 2>/dev/null
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*"
	for f in "$tmp"/*.log; do
		[ -s "$f" ] && { echo "--- $(basename "$f")"; tail -n 20 "$f"; }
	done
	exit 1
}

# wait_for SECONDS WHAT COMMAND...
wait_for() {
	local deadline=$((SECONDS + $1)) what=$2
	shift 2
	until "$@" >/dev/null 2>&1; do
		((SECONDS < deadline)) || fail "timed out waiting for $what"
		sleep 0.2
	done
}

ip netns add "$cl" && ip netns add "$lb" || fail "cannot create namespaces"
ip link add dp0 netns "$lb" type veth peer name eth0 netns "$cl" || fail "cannot create the veth"
for spec in "$lb dp0" "$cl eth0"; do
	set -- $spec
	ip -n "$1" link set lo up
	ip -n "$1" link set "$2" up
	# Kernel TCP over veth leaves checksums to offload: the AF_XDP side needs them done.
	ip netns exec "$1" ethtool -K "$2" tx off rx off tso off gso off gro off >/dev/null 2>&1
done
ip -n "$cl" addr add 198.51.100.2/24 dev eth0
ip -n "$cl" addr add 198.51.100.3/24 dev eth0
ip -n "$cl" route add 203.0.113.0/24 dev eth0
ip -n "$lb" addr add 198.51.100.254/24 dev dp0

ip netns exec "$cl" python3 -m http.server 3000 --bind 198.51.100.3 --directory "$tmp" >"$tmp/backend.log" 2>&1 &
pids+=($!)
echo "kernel here" >"$tmp/host.txt"
ip netns exec "$lb" python3 -m http.server 2222 --bind 198.51.100.254 --directory "$tmp" >"$tmp/host.log" 2>&1 &
pids+=($!)
echo "rondo here" >"$tmp/index.html"

LIBXDP_SKIP_DISPATCHER=1 ip netns exec "$lb" "$build/dataplane/rondo-dataplane" \
	-l 0,1 --no-huge -m 512 --no-pci --file-prefix "$prefix" --log-level='*:notice' \
	--vdev="net_af_xdp0,iface=dp0,start_queue=0,queue_count=1,xdp_prog=$build/bpf/rondo_xdp.bpf.o" \
	-- --ctl-socket "$tmp/dp.sock" --state-dir "$tmp/state" --idle-sleep-us 50 >"$tmp/dataplane.log" 2>&1 &
dp=$!
pids+=("$dp")
wait_for 30 "the dataplane to be ready" grep -q ready "$tmp/dataplane.log"
grep -q "XDP program shares the interface" "$tmp/dataplane.log" || fail "the dataplane did not find rondo_addrs"

cat >"$tmp/rondo.yaml" <<YAML
local_ips: [198.51.100.100]
vips:
  - name: web
    address: 203.0.113.10
    port: 80
    backends:
      - {address: 198.51.100.3, port: 3000}
YAML
"$build/controlplane/rondo-controlplane" --config "$tmp/rondo.yaml" --dataplane-socket "$tmp/dp.sock" \
	--state-file "$tmp/state.json" --api-socket "$tmp/api.sock" --metrics-listen none \
	>"$tmp/controlplane.log" 2>&1 &
pids+=($!)

# The host answers on its own address through the kernel while rondo runs on the link.
wait_for 20 "the host's HTTP server through the kernel" \
	ip netns exec "$cl" curl -s -f -m 1 http://198.51.100.254:2222/host.txt
echo "PASS host traffic reaches the kernel: $(ip netns exec "$cl" curl -s -m 2 http://198.51.100.254:2222/host.txt)"

# The VIP is served by rondo (ARP answered by rondo through AF_XDP, full-NAT to the backend).
wait_for 20 "the VIP through rondo" ip netns exec "$cl" curl -s -f -m 1 http://203.0.113.10/
ok=0
for i in $(seq 20); do
	[ "$(ip netns exec "$cl" curl -s -f -m 2 http://203.0.113.10/)" = "rondo here" ] && ok=$((ok + 1))
done
[ "$ok" -eq 20 ] || fail "only $ok/20 requests through the VIP"
echo "PASS 20/20 requests through the VIP (rondo, AF_XDP)"
conns=$("$build/controlplane/rondo-dpstat" --dataplane-socket "$tmp/dp.sock" --json |
	python3 -c 'import json,sys; print(sum(b["connections"] for b in json.load(sys.stdin)["backends"]))')
[ "$conns" -ge 20 ] || fail "rondo counted $conns connections, want >= 20"
echo "PASS rondo counted $conns connections"
# Kernel traffic still flows after rondo took its share.
ip netns exec "$cl" curl -s -f -m 2 http://198.51.100.254:2222/host.txt >/dev/null || fail "host traffic after the VIP traffic"
echo "PASS host traffic still reaches the kernel"
echo "shared nic: 4 passed, 0 failed"
