#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# The network-namespace topology of the demo and the e2e tests.
#
#   topo.sh up TAG [--v6] [--router | --vlan OBJ]
#                      build it (a leftover with the same TAG is removed first;
#                      a failure part-way removes what was built); --v6: dual stack
#                      on the client and the backends (below); --router: the client
#                      behind a router hop (below); --vlan: the client on a VLAN of
#                      its own (below)
#   topo.sh down TAG   remove everything with that TAG; idempotent, also after a
#                      half-built "up"
#
#   rd-TAG-cl (client)             rd-TAG-lb (the load balancer host)           rd-TAG-be (backends)
#   eth0 198.51.100.2/24 ── clp ─┐                                        ┌─ bep ── eth0 198.51.100.3/24
#   203.0.113.0/24 dev eth0      ├── br0 198.51.100.1/24 ── dp0p ── dp0   │         :3000-3003 tcp
#                                └────────────────────────────────────────┘         :4000-4003 udp
#
# dp0 is the dataplane's port (DPDK net_af_packet); it has no address and no IPv6,
# so the lb namespace's kernel never answers or sends on it: rondo answers ARP for
# the VIP 203.0.113.10 and the local (full-NAT source) IP 198.51.100.100 itself.
# The client reaches the VIP "on-link": it ARPs for 203.0.113.10 and rondo replies.
# br0's address stands for the LB host's own kernel address (health checks,
# management); rondo never uses it.
#
# --v6 adds IPv6 to the client and backend namespaces and to br0 (2001:db8:100::1/64, the LB
# host's address for health checks; dp0 stays without it):
#   client eth0 2001:db8:100::2/64, route 2001:db8::/64 dev eth0 (the v6 VIP 2001:db8::10 is
#   on-link: the client's neighbour solicitation for it reaches rondo, which answers);
#   backends eth0 2001:db8:100::3/64; rondo's local ip6 2001:db8:100::100 is on-link for
#   them, as is the client (the same /64: they reach each other over the bridge, without
#   rondo). Addresses are "nodad" and DAD is off (usable at once, no DAD probes on the
#   wire); no router advertisements are accepted and no solicitations sent. br0 gets
#   mcast_snooping 0: rondo sends no MLD reports, and a snooping bridge that has seen
#   the kernels' reports may stop flooding solicited-node groups to dp0p. Without --v6
#   every namespace has IPv6 off and br0 is as it always was.
#
# --router moves the client behind a router, rd-TAG-rt, for path MTU discovery through a
# hop rondo does not own (tests/e2e/pmtu_test.py):
#
#   rd-TAG-cl (client)          rd-TAG-rt (router)                        rd-TAG-lb
#   eth0 198.18.0.2/24 ──── eth1 198.18.0.1/24   eth0 198.51.100.4/24 ── rtp ── br0
#
# The client's eth0 is 198.18.0.2/24 (2001:db8:300::2/64 with --v6), default route via
# the router's eth1 198.18.0.1 (2001:db8:300::1); the router forwards both families, its
# eth0 198.51.100.4/24 (2001:db8:100::4/64) is a port of br0 and the VIP prefixes are
# on-link there (it ARPs and solicits the VIPs, rondo answers). Every link is 1500, but
# the router's routes to the client's subnet carry mtu 1400 (IPv4) and 1280 (IPv6): a
# narrower hop past the router, as a tunnel would be. The client's own link is 1500, so it
# advertises an MSS of 1460 (1440); the backends' full-size segments reach the router,
# which answers the VIP with ICMP fragmentation-needed 1400 / packet-too-big 1280.
# rondo needs routes to 198.18.0.0/24 and 2001:db8:300::/64 via 198.51.100.4 and
# 2001:db8:100::4 (its config's routes:). Without --router the client is on br0 as drawn
# above and there is no rd-TAG-rt.
#
# --vlan OBJ puts the client on a VLAN and a subnet of its own, as a router port facing
# clients would be: OBJ is tests/e2e/vlan_tag.bpf.c built for a VID (build/tests/e2e/
# vlan_tag_<VID>.bpf.o), attached with clsact to the client's eth0 (egress tags every frame
# with the VID, ingress drops every frame not tagged with it and untags the rest: the kernel
# here has no 8021q module). The client's eth0 becomes 192.0.2.2/24 (no 198.51.100.2) and,
# with --v6, 2001:db8:200::2/64 (no 2001:db8:100::2); the VIP prefixes stay on-link. br0 does
# no VLAN filtering: tagged frames cross it like any other, the backends' and the lb host's
# kernels drop them (no VLAN device there), the client drops everything untagged. So rondo
# must answer the client tagged, on the VLAN, from 192.0.2.1/24 or 2001:db8:200::1/64 (its
# addresses there), and whatever reaches the backends went out untagged. dp0p gets txvlan
# off: it writes the tag into the bytes, so a reader of dp0 that sees only bytes (AF_XDP)
# sees it too (net_af_packet gets it either way, from PACKET_AUXDATA).
#
# Nothing is created in the caller's namespace: every link lives in one of the
# namespaces, so deleting them removes all of it.
#
# Offloads are off on every veth end: kernel TCP over veth otherwise leaves partial
# checksums (CHECKSUM_PARTIAL) and GSO super-frames, which an af_packet reader sees
# unfinished.
set -euo pipefail

usage() {
	echo "usage: $0 up TAG [--v6] [--router | --vlan OBJ] | down TAG   (TAG: 1-12 of [a-z0-9])" >&2
	exit 2
}

[ $# -ge 2 ] || usage
cmd=$1
tag=$2
shift 2
v6=false
router=false
vlan_obj=
while [ $# -gt 0 ]; do
	[ "$cmd" = up ] || usage
	case $1 in
	--v6) v6=true ;;
	--router) router=true ;;
	--vlan)
		[ $# -ge 2 ] || usage
		vlan_obj=$2
		shift
		;;
	*) usage ;;
	esac
	shift
done
[[ $tag =~ ^[a-z0-9]{1,12}$ ]] || usage
if $router && [ -n "$vlan_obj" ]; then usage; fi
if [ -n "$vlan_obj" ] && [ ! -f "$vlan_obj" ]; then
	echo "topo.sh: --vlan $vlan_obj: no such file" >&2
	exit 2
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "topo.sh: must run as root" >&2
	exit 1
fi

ns_lb=rd-$tag-lb
ns_cl=rd-$tag-cl
ns_be=rd-$tag-be
ns_rt=rd-$tag-rt

ns_exists() {
	ip netns list | awk '{print $1}' | grep -qxF -- "$1"
}

# netns_add NS: a namespace with loopback up and IPv6 off (nothing here speaks it,
# and router solicitations/MLD would only show up as drops in rondo's counters).
netns_add() {
	local ns=$1
	ip netns add "$ns"
	ip -n "$ns" link set lo up
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
}

# v6_on NS: IPv6 on in NS for what is created after (the "default" settings) and for lo,
# a host that takes no router advertisements, sends no solicitations and does no DAD.
v6_on() {
	local ns=$1 conf
	for conf in all default; do
		ip netns exec "$ns" sysctl -qw \
			"net.ipv6.conf.$conf.accept_ra=0" \
			"net.ipv6.conf.$conf.router_solicitations=0" \
			"net.ipv6.conf.$conf.accept_dad=0" \
			"net.ipv6.conf.$conf.disable_ipv6=0"
	done
}

offloads_off() {
	local ns=$1 ifname=$2
	ip netns exec "$ns" ethtool -K "$ifname" tx off rx off tso off gso off gro off >/dev/null
}

# host_add NS ADDR/LEN PEER [ADDR6/LEN]: a host namespace whose eth0 is cabled to br0 in
# the lb namespace through PEER; with ADDR6, IPv6 on and that address on eth0 too.
host_add() {
	local ns=$1 addr=$2 peer=$3 addr6=${4:-}
	netns_add "$ns"
	# Before eth0 exists: a new interface takes the namespace's "default" settings.
	[ -z "$addr6" ] || v6_on "$ns"
	ip -n "$ns_lb" link add name "$peer" type veth peer name eth0 netns "$ns"
	offloads_off "$ns_lb" "$peer"
	offloads_off "$ns" eth0
	ip -n "$ns_lb" link set "$peer" master br0 up
	ip -n "$ns" addr add "$addr" dev eth0
	[ -z "$addr6" ] || ip -n "$ns" addr add "$addr6" dev eth0 nodad
	ip -n "$ns" link set eth0 up
}

# client_vlan_add: the client of --vlan, on its own subnet, every frame tagged by $vlan_obj.
client_vlan_add() {
	local cl6=()
	! $v6 || cl6=(2001:db8:200::2/64)
	host_add "$ns_cl" 192.0.2.2/24 clp "${cl6[@]}"
	ip netns exec "$ns_lb" ethtool -K dp0p txvlan off >/dev/null
	tc -n "$ns_cl" qdisc add dev eth0 clsact
	tc -n "$ns_cl" filter add dev eth0 egress bpf direct-action obj "$vlan_obj" sec tc/egress
	tc -n "$ns_cl" filter add dev eth0 ingress bpf direct-action obj "$vlan_obj" sec tc/ingress
}

topo_up() {
	local snoop=() cl6=() be6=()
	if $v6; then
		snoop=(mcast_snooping 0)
		cl6=(2001:db8:100::2/64)
		be6=(2001:db8:100::3/64)
	fi
	netns_add "$ns_lb"
	ip -n "$ns_lb" link add name br0 type bridge stp_state 0 forward_delay 0 "${snoop[@]}"
	ip -n "$ns_lb" addr add 198.51.100.1/24 dev br0
	if $v6; then
		# The LB host's own kernel address in v6 too (health checks of v6 backends), on br0
		# only: dp0 keeps IPv6 off.
		ip netns exec "$ns_lb" sysctl -qw net.ipv6.conf.br0.accept_ra=0 \
			net.ipv6.conf.br0.router_solicitations=0 net.ipv6.conf.br0.accept_dad=0 \
			net.ipv6.conf.br0.disable_ipv6=0
		ip -n "$ns_lb" addr add 2001:db8:100::1/64 dev br0 nodad
	fi
	ip -n "$ns_lb" link set br0 up

	ip -n "$ns_lb" link add name dp0 type veth peer name dp0p
	offloads_off "$ns_lb" dp0
	offloads_off "$ns_lb" dp0p
	ip -n "$ns_lb" link set dp0p master br0 up
	ip -n "$ns_lb" link set dp0 up

	if $router; then
		router_add
	else
		if [ -n "$vlan_obj" ]; then
			client_vlan_add
		else
			host_add "$ns_cl" 198.51.100.2/24 clp "${cl6[@]}"
		fi
		# The VIP prefix is on-link for the client: it ARPs for 203.0.113.10 itself.
		ip -n "$ns_cl" route add 203.0.113.0/24 dev eth0
		# And the v6 VIP prefix: it solicits 2001:db8::10 itself.
		! $v6 || ip -n "$ns_cl" -6 route add 2001:db8::/64 dev eth0
	fi

	host_add "$ns_be" 198.51.100.3/24 bep "${be6[@]}"
}

# router_add: --router's router (on br0 through rtp) and the client behind it (above).
router_add() {
	local rt6=() cl6=()
	if $v6; then
		rt6=(2001:db8:100::4/64)
		cl6=(2001:db8:300::2/64)
	fi
	host_add "$ns_rt" 198.51.100.4/24 rtp "${rt6[@]}"
	ip netns exec "$ns_rt" sysctl -qw net.ipv4.ip_forward=1
	! $v6 || ip netns exec "$ns_rt" sysctl -qw net.ipv6.conf.all.forwarding=1
	ip -n "$ns_rt" route add 203.0.113.0/24 dev eth0
	! $v6 || ip -n "$ns_rt" -6 route add 2001:db8::/64 dev eth0

	netns_add "$ns_cl"
	! $v6 || v6_on "$ns_cl"
	ip -n "$ns_rt" link add name eth1 type veth peer name eth0 netns "$ns_cl"
	offloads_off "$ns_rt" eth1
	offloads_off "$ns_cl" eth0
	# The client's subnet without its connected route: the route below carries the MTU
	# of the narrower hop (a forwarded packet is checked against its route's mtu).
	ip -n "$ns_rt" addr add 198.18.0.1/24 dev eth1 noprefixroute
	ip -n "$ns_cl" addr add 198.18.0.2/24 dev eth0
	if $v6; then
		ip -n "$ns_rt" addr add 2001:db8:300::1/64 dev eth1 nodad noprefixroute
		ip -n "$ns_cl" addr add "${cl6[0]}" dev eth0 nodad
	fi
	ip -n "$ns_rt" link set eth1 up
	ip -n "$ns_cl" link set eth0 up
	ip -n "$ns_rt" route add 198.18.0.0/24 dev eth1 src 198.18.0.1 mtu 1400
	ip -n "$ns_cl" route add default via 198.18.0.1
	if $v6; then
		ip -n "$ns_rt" -6 route add 2001:db8:300::/64 dev eth1 mtu 1280
		ip -n "$ns_cl" -6 route add default via 2001:db8:300::1
	fi
}

# kill_ns_pids NS: end what still runs inside one of this tag's namespaces (the
# dataplane, backends, clients the caller started there), by pid.
kill_ns_pids() {
	local ns=$1 pids i
	pids=$(ip netns pids "$ns" 2>/dev/null || true)
	[ -n "$pids" ] || return 0
	# shellcheck disable=SC2086  # a list of pids
	kill -TERM $pids 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		pids=$(ip netns pids "$ns" 2>/dev/null || true)
		[ -n "$pids" ] || return 0
		sleep 0.1
	done
	echo "topo.sh: killing what still runs in $ns: $pids" >&2
	# shellcheck disable=SC2086
	kill -KILL $pids 2>/dev/null || true
}

topo_down() {
	local ns
	for ns in "$ns_cl" "$ns_rt" "$ns_be" "$ns_lb"; do
		ns_exists "$ns" || continue
		kill_ns_pids "$ns"
		# Deleting the namespace destroys its links; a veth pair dies with either end.
		ip netns del "$ns"
	done
	# DPDK's runtime directory and hugepage files for --file-prefix rondo-TAG
	# (none with --no-huge, but a run with hugepages leaves them behind on a crash).
	rm -rf -- "/var/run/dpdk/rondo-$tag"
	rm -f -- /dev/hugepages/"rondo-${tag}"map_* 2>/dev/null || true
}

# EXIT trap of "up": a failure or a signal part-way leaves nothing behind.
undo_failed_up() {
	local rc=$?
	if [ "$rc" -ne 0 ]; then
		echo "topo.sh: up $tag failed, removing it" >&2
		topo_down
	fi
}

case $cmd in
up)
	topo_down
	trap undo_failed_up EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	topo_up
	trap - EXIT INT TERM
	;;
down)
	topo_down
	;;
*)
	usage
	;;
esac
