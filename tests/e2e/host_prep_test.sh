#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# deploy/rondo-host-prep and the dataplane's offload check, in a namespace of its own:
#   - a veth keeps its default offloads: the dataplane on it warns at start, naming the
#     offloads and the ethtool command; host prep lists the change (exit 1), --apply makes
#     it (exit 0), a second check finds nothing to change, the dataplane no longer warns
#   - --queues on a two-queue veth: changed with `ethtool -L rx N tx N`
#   - the interface carrying the default route: --apply refuses and changes nothing
#   - hugepages: a count above the current one is listed, applied, then restored
#   - a PCI address with no device, and bad arguments: refused with one line (binding a
#     NIC to vfio-pci cannot be tried here: this machine has no NIC for it)
set -uo pipefail

build=${RONDO_BUILD:?RONDO_BUILD must point at the build directory}
src=${RONDO_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
[ "$(id -u)" -eq 0 ] || { echo "host_prep_test: needs root (namespaces, ethtool); skipped"; exit 77; }

prep=$src/deploy/rondo-host-prep
ns=rd-hp$$
tmp=$(mktemp -d /tmp/rondo-hp.XXXXXX)
prefix=rondo-hp-$$
nr=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
hugepages_before=$(cat "$nr")
dp_pid=""
cleanup() {
	[ -n "$dp_pid" ] && kill -9 "$dp_pid" 2>/dev/null
	# Any dataplane of ours still running (dataplane_warns runs in $(...): its dp_pid is not ours).
	pkill -9 -f -- "--file-prefix $prefix-" 2>/dev/null
	ip netns del "$ns" 2>/dev/null
	echo "$hugepages_before" >"$nr"
	rm -rf -- "$tmp" "/var/run/dpdk/$prefix-1" "/var/run/dpdk/$prefix-2"
	rm -f -- /dev/hugepages/"$prefix"-[12]map_* 2>/dev/null
}
trap cleanup EXIT

passed=0 failed=0
pass() { echo "PASS $*"; passed=$((passed + 1)); }
fail() { echo "FAIL $*"; failed=$((failed + 1)); }
# expect NAME WANT_RC WANT_TEXT COMMAND...
expect() {
	local name=$1 want_rc=$2 want_text=$3 out rc
	shift 3
	out=$("$@" 2>&1)
	rc=$?
	if [ "$rc" -eq "$want_rc" ] && grep -qF -- "$want_text" <<<"$out"; then
		pass "$name (exit $rc): $(grep -F -- "$want_text" <<<"$out" | head -1)"
	else
		fail "$name: exit $rc (want $want_rc), output lacks '$want_text':"
		sed 's/^/    /' <<<"$out" | tail -n 12
	fi
}
in_ns() { ip netns exec "$ns" "$@"; }
offloads_on() { in_ns ethtool -k "$1" | grep -cE '^(rx-checksumming|tx-checksumming|tcp-segmentation-offload|generic-segmentation-offload|generic-receive-offload): on'; }

# The dataplane on hp1 until it says "ready"; prints whether it warned about offloads.
dataplane_warns() {
	local log=$tmp/dp-$1.log
	# ip netns exec, not in_ns: a function run with & is a subshell, and $! would be the
	# subshell's pid, whose kill leaves the dataplane running.
	ip netns exec "$ns" "$build/dataplane/rondo-dataplane" -l 0,1 --no-huge -m 512 --no-pci --file-prefix "$prefix-$1" \
		--vdev=net_af_packet0,iface=hp1 --log-level='*:notice' -- --ctl-socket "$tmp/dp.sock" \
		--state-dir "$tmp/state" --idle-sleep-us 200 >"$log" 2>&1 &
	dp_pid=$!
	for _ in $(seq 150); do
		grep -q "ready" "$log" && break
		kill -0 "$dp_pid" 2>/dev/null || break
		sleep 0.1
	done
	kill "$dp_pid" 2>/dev/null
	wait "$dp_pid" 2>/dev/null
	dp_pid=""
	grep -q "ready" "$log" || { echo "no-ready"; sed 's/^/    /' "$log" | tail -5 >&2; return; }
	if grep -q "offloads on" "$log"; then grep -o "offloads on: [^.]*" "$log" | head -1; else echo "no-warning"; fi
}

ip netns add "$ns"
in_ns ip link set lo up
in_ns ip link add hp0 numrxqueues 2 numtxqueues 2 type veth peer name hp1 numrxqueues 2 numtxqueues 2
in_ns ip addr add 10.99.0.1/24 dev hp0
in_ns ip link set hp0 up
in_ns ip link set hp1 up
in_ns ethtool -L hp1 rx 1 tx 1 >/dev/null  # room for 2 queues, 1 in use

# 1. Offloads: the dataplane warns; host prep lists, applies, then finds nothing.
before=$(offloads_on hp1)
warned=$(dataplane_warns 1)
if [ "$before" -gt 0 ] && [[ "$warned" == "offloads on: "* ]]; then
	pass "dataplane on a veth with default offloads warns: $warned"
else
	fail "dataplane on a veth with $before offloads on did not warn: $warned"
fi
expect "check lists the offload change" 1 "change  hp1: offloads on" in_ns "$prep" --iface hp1
[ "$(offloads_on hp1)" -eq "$before" ] && pass "a check changes nothing ($before offloads still on)" || fail "a check changed the offloads"
expect "--apply turns them off" 0 "applied hp1: offloads on" in_ns "$prep" --iface hp1 --apply
expect "a second check finds nothing to change" 0 "ok      hp1: offloads off" in_ns "$prep" --iface hp1
[ "$(offloads_on hp1)" -eq 0 ] && pass "ethtool -k hp1: all off" || fail "ethtool -k hp1: $(offloads_on hp1) still on"
warned=$(dataplane_warns 2)
[ "$warned" = no-warning ] && pass "the dataplane no longer warns" || fail "the dataplane still says: $warned"

# 2. Queues.
expect "--queues 2 on a 1-queue veth is listed" 1 "change  hp1: 1 queue(s), want 2: ethtool -L hp1 rx 2 tx 2" in_ns "$prep" --iface hp1 --queues 2
expect "--queues 2 applied" 0 "applied hp1: 1 queue(s), want 2" in_ns "$prep" --iface hp1 --queues 2 --apply
expect "--queues 2 then holds" 0 "ok      hp1: 2 queue(s) (want 2)" in_ns "$prep" --iface hp1 --queues 2

# 3. The default route's interface: refused, unchanged.
in_ns ethtool -K hp0 tx on >/dev/null 2>&1
in_ns ip route add default via 10.99.0.2 dev hp0
on_hp0=$(offloads_on hp0)
expect "--apply on the default route's interface is refused" 1 "refuse  hp0 carries the default route" in_ns "$prep" --iface hp0 --apply
[ "$(offloads_on hp0)" -eq "$on_hp0" ] && pass "hp0 unchanged ($on_hp0 offloads on)" || fail "hp0 was changed"

# 4. Hugepages: listed, applied, restored by cleanup.
want=$((hugepages_before + 2))
expect "more hugepages are listed" 1 "change  hugepages: $hugepages_before x 2 MiB reserved, want $want: echo $want > $nr" "$prep" --hugepages "$want"
if mountpoint -q /dev/hugepages; then
	expect "more hugepages applied" 0 "applied hugepages" "$prep" --hugepages "$want" --apply
	[ "$(cat "$nr")" -ge "$want" ] && pass "nr_hugepages is $(cat "$nr")" || fail "nr_hugepages is $(cat "$nr"), want $want"
else
	# Applying would mount hugetlfs on the host too: only the count is applied here.
	echo "$want" >"$nr"
	expect "hugepages check with the count reached" 1 "ok      hugepages: $want x 2 MiB reserved" "$prep" --hugepages "$want"
fi

# 5. Refusals and usage errors.
expect "a PCI address with no device" 1 "refuse  0000:ff:1f.7: no PCI device at that address" "$prep" --pci 0000:ff:1f.7
expect "a malformed PCI address" 2 "is not a PCI address" "$prep" --pci 3b:00.0
expect "nothing to check" 2 "nothing to check" "$prep"
expect "--queues without --iface" 2 "--queues goes with --iface" "$prep" --queues 2
expect "an unknown argument" 2 "unknown argument '--bind'" "$prep" --bind
expect "no such interface" 1 "refuse  nosuch0: no such interface" "$prep" --iface nosuch0

echo "host_prep_test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
