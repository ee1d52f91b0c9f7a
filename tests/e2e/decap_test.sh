#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# rondo-decap on a DSR backend (bpf/rondo_decap.bpf.c, docs/modes.md "Backend setup"): the
# client sends what rondo would send in its ipip and gue modes, the backend's kernel (no
# ipip or fou module; the VIP on lo) receives the client's own packet and answers the
# client directly from the VIP.
#
#   rdc-N-cl: eth0 192.0.2.1, 2001:db8:dc::1          rdc-N-be: eth0 192.0.2.2, 2001:db8:dc::2
#             (tests/e2e/decap_peer.py send/syn/      ── veth ──   lo 203.0.113.10, 2001:db8:100::10
#              malformed)                                          (decap_peer.py serve: UDP echo and
#                                                                   TCP listener on the VIPs, :7000)
#
#   a. bad arguments: exit 2, one line, nothing changed (no clsact qdisc appears)
#   b. before attach, an IPIP packet gets no answer (this kernel cannot decapsulate it)
#   c. attach, attach again: one filter, a new program
#   d. IPIP (inner IPv4 and IPv6), GUE variant 0 (inner IPv4, with extension words, inner
#      IPv6) and variant 1 (IPv4, IPv6): each echoed by the backend from the VIP; the same
#      under an outer IPv6 header (IPIP 4 and 41 in IPv6, GUE with IPv4 and IPv6 inside)
#   e. ECN (RFC 6040): outer CE marks an ECT inner packet, outer ECT(1) over ECT(0) becomes
#      ECT(1), outer CE over Not-ECT is dropped
#   f. TCP: a SYN inside IPIP gets the backend's SYN-ACK straight from the VIP
#   g. traffic that is not for the decapsulator passes (UDP straight to the VIPs, GUE to
#      another port)
#   h. the counters, exactly; then broken encapsulations, each counted as it should be
#   i. attach --gue-port 7777 replaces the program: GUE to 7777 decapsulated, to 6080 not;
#      a filter at a later priority still gets what rondo-decap passes
#   j. detach removes rondo-decap's filter and not the other; IPIP unanswered again; detach
#      again and stats say so
set -uo pipefail

build=${RONDO_BUILD:?RONDO_BUILD must point at the build directory}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ "$(id -u)" -eq 0 ] || { echo "decap_test: needs root (namespaces, tc); skipped"; exit 77; }
decap=$build/bpf/rondo-decap
[ -x "$decap" ] && [ -f "$build/bpf/rondo_decap.bpf.o" ] ||
	{ echo "decap_test: no rondo-decap or rondo_decap.bpf.o (clang missing?); skipped"; exit 77; }

cl=rdc-$$-cl
be=rdc-$$-be
CLIENT=192.0.2.1 BACKEND=192.0.2.2 VIP=203.0.113.10
CLIENT6=2001:db8:dc::1 BACKEND6=2001:db8:dc::2 VIP6=2001:db8:100::10
PORT=7000
CLIENT_MAC=02:00:00:00:dc:01 BACKEND_MAC=02:00:00:00:dc:02
tmp=$(mktemp -d /tmp/rondo-decap.XXXXXX)
server=

# Everything the test creates lives in the two namespaces: deleting them removes the veth
# pair, the clsact qdisc and any filter left on it, and kills what still runs there.
cleanup() {
	[ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
	local ns
	for ns in "$cl" "$be"; do
		ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
		ip netns del "$ns" 2>/dev/null
	done
	rm -rf -- "$tmp"
}
trap cleanup EXIT

passed=0 failed=0
pass() {
	echo "PASS $*"
	passed=$((passed + 1))
}
failed() {
	echo "FAIL $*"
	failed=$((failed + 1))
}
# Setup that later steps need: stop at the first failure.
must() {
	"$@" >"$tmp/must.log" 2>&1 || { echo "FAIL setup: $*"; cat "$tmp/must.log"; exit 1; }
}

# wait_for SECONDS COMMAND...: until the command succeeds, or the deadline.
wait_for() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		((SECONDS < deadline)) || return 1
		sleep 0.1
	done
}

in_cl() { ip netns exec "$cl" "$@"; }
in_be() { ip netns exec "$be" "$@"; }
peer() {
	in_cl python3 "$here/decap_peer.py" "$@" --vip "$VIP" --vip6 "$VIP6" --port "$PORT" \
		--client "$CLIENT" --client6 "$CLIENT6" --backend "$BACKEND" --backend6 "$BACKEND6"
}

# ---- topology ----
must ip netns add "$cl"
must ip netns add "$be"
must ip -n "$be" link add eth0 address "$BACKEND_MAC" type veth peer name eth0 netns "$cl" address "$CLIENT_MAC"
for ns in "$cl" "$be"; do
	must ip -n "$ns" link set lo up
	must ip -n "$ns" link set eth0 up
done
must ip -n "$cl" addr add "$CLIENT/24" dev eth0
must ip -n "$cl" addr add "$CLIENT6/64" dev eth0 nodad
must ip -n "$be" addr add "$BACKEND/24" dev eth0
must ip -n "$be" addr add "$BACKEND6/64" dev eth0 nodad
# The backend holds the VIPs on lo, as a DSR backend does; the client reaches them through
# the backend (standing in for rondo) and so also accepts the replies from them.
must ip -n "$be" addr add "$VIP/32" dev lo
must ip -n "$be" addr add "$VIP6/128" dev lo
must ip -n "$cl" route add "$VIP/32" via "$BACKEND"
must ip -n "$cl" route add "$VIP6/128" via "$BACKEND6"
# Strict reverse-path filtering on the backend: a packet decapsulated at eth0's ingress
# still arrives on eth0, where the route back to the client is (unlike tunl0, docs/modes.md).
must in_be sysctl -qw net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.eth0.rp_filter=1
# The client's kernel finishes its checksums itself, so the backend's stack verifies the
# inner ones after decapsulation (a NIC would hand over CHECKSUM_NONE or UNNECESSARY, never
# a veth's CHECKSUM_PARTIAL).
must in_cl ethtool -K eth0 tx off

no_clsact() { ! in_be tc qdisc show dev eth0 | grep -q clsact; }
filters() { in_be tc filter show dev eth0 ingress | grep -c 'handle 0xdec'; }

# ---- a. bad arguments ----
# expect_rc NAME WANT_RC WANT_TEXT ARGS...: rondo-decap ARGS in the backend namespace.
expect_rc() {
	local name=$1 want_rc=$2 want_text=$3 out rc
	shift 3
	out=$(in_be "$decap" "$@" 2>&1)
	rc=$?
	if [ "$rc" -eq "$want_rc" ] && [ "$(wc -l <<<"$out")" -eq 1 ] && grep -qF -- "$want_text" <<<"$out"; then
		pass "$name (exit $rc): $out"
	else
		failed "$name: exit $rc (want $want_rc, one line with '$want_text'): $out"
	fi
}
expect_rc "no command" 2 "no command"
expect_rc "unknown command" 2 "unknown command 'frob'" frob eth0
expect_rc "no device" 2 "which device?" attach
expect_rc "no such device" 2 "no such device 'rdcnosuch0'" attach rdcnosuch0
expect_rc "two devices" 2 "one device only" attach eth0 lo
expect_rc "not Ethernet" 2 "'lo' is not an Ethernet device" attach lo
expect_rc "port 0" 2 "--gue-port: '0' is not a port" attach eth0 --gue-port 0
expect_rc "port 70000" 2 "--gue-port: '70000' is not a port" attach eth0 --gue-port 70000
expect_rc "port abc" 2 "--gue-port: 'abc' is not a port" attach eth0 --gue-port abc
expect_rc "port missing" 2 "--gue-port needs a value" attach eth0 --gue-port
expect_rc "option of attach on detach" 2 "detach: unknown option '--gue-port'" detach eth0 --gue-port 6080
expect_rc "missing object" 2 "--object /nonexistent/rondo_decap.bpf.o: No such file" \
	attach eth0 --object /nonexistent/rondo_decap.bpf.o
printf 'not an ELF file\n' >"$tmp/bogus.o"
expect_rc "object that is not BPF" 1 "$tmp/bogus.o" attach eth0 --object "$tmp/bogus.o"
expect_rc "stats before attach" 1 "rondo-decap is not attached" stats eth0
if no_clsact && [ -z "$(in_be tc filter show dev eth0 ingress 2>/dev/null)" ]; then
	pass "nothing changed by the refused commands (no clsact qdisc, no filter)"
else
	failed "a refused command changed eth0: $(in_be tc qdisc show dev eth0)"
fi

# ---- b. the backend's kernel alone ----
ip netns exec "$be" python3 "$here/decap_peer.py" serve --vip "$VIP" --vip6 "$VIP6" --port "$PORT" \
	--ready "$tmp/ready" >"$tmp/server.log" 2>&1 &
server=$!
wait_for 10 test -e "$tmp/ready" || { echo "FAIL setup: the echo server did not start"; cat "$tmp/server.log"; exit 1; }
# The reply path first, without encapsulation: the client reaches the VIPs directly.
for c in plain plain6; do
	out=$(peer send "$c") || { echo "FAIL setup: no echo from the VIP without encapsulation ($c): $out"; exit 1; }
done
if out=$(peer send ipip --no-reply --wait 1); then
	pass "b. without rondo-decap an IPIP packet gets no answer: $out"
else
	failed "b. an IPIP packet was answered before rondo-decap was attached: $out"
fi

# ---- c. attach, and attach again ----
if out=$(in_be "$decap" attach eth0 2>&1) && [ "$(filters)" -eq 1 ]; then
	pass "c. attach: $out"
else
	failed "c. attach: $out; $(in_be tc filter show dev eth0 ingress)"
fi
prog1=$(in_be "$decap" stats eth0 | sed -n '1s/.*program \([0-9]*\).*/\1/p')
in_be "$decap" attach eth0 >/dev/null 2>&1
prog2=$(in_be "$decap" stats eth0 | sed -n '1s/.*program \([0-9]*\).*/\1/p')
if [ "$(filters)" -eq 1 ] && [ -n "$prog2" ] && [ "$prog1" != "$prog2" ]; then
	pass "c. attach again replaces: one filter, program $prog1 -> $prog2"
else
	failed "c. attach again: $(filters) filters, program $prog1 -> $prog2"
fi

# ---- d. every encapsulation ----
for c in ipip ipip6 gue gue-ext gue6 gue-direct gue-direct6 ipip-out6 ipip6-out6 gue-out6 gue6-out6; do
	if out=$(peer send "$c"); then pass "d. $c: $out"; else failed "d. $c: $out"; fi
done

# ---- e. ECN ----
# TOS values: ECN is the low 2 bits, Not-ECT 0, ECT(1) 1, ECT(0) 2, CE 3.
if out=$(peer send ipip --outer-tos 3 --inner-tos 2 --inner-tos-expected 3); then
	pass "e. outer CE over ECT(0): the backend saw CE: $out"
else
	failed "e. outer CE over ECT(0): $out"
fi
if out=$(peer send ipip --outer-tos 1 --inner-tos 2 --inner-tos-expected 1); then
	pass "e. outer ECT(1) over ECT(0): the backend saw ECT(1): $out"
else
	failed "e. outer ECT(1) over ECT(0): $out"
fi
if out=$(peer send ipip --outer-tos 3 --inner-tos 0 --no-reply --wait 1); then
	pass "e. outer CE over Not-ECT: dropped: $out"
else
	failed "e. outer CE over Not-ECT was delivered: $out"
fi

if out=$(peer send ipip-out6 --outer-tos 3 --inner-tos 2 --inner-tos-expected 3); then
	pass "e. outer IPv6 CE over ECT(0): the backend saw CE: $out"
else
	failed "e. outer IPv6 CE over ECT(0): $out"
fi

# ---- f. TCP ----
if out=$(peer syn); then pass "f. SYN in IPIP: SYN-ACK from the VIP: $out"; else failed "f. SYN in IPIP: $out"; fi

# ---- g. what is not for the decapsulator ----
for c in plain plain6; do
	if out=$(peer send "$c"); then pass "g. $c (no encapsulation) passes: $out"; else failed "g. $c: $out"; fi
done
if out=$(peer send gue --gue-port 6081 --no-reply --wait 1); then
	pass "g. GUE to port 6081 is not decapsulated"
else
	failed "g. GUE to port 6081 was answered: $out"
fi

# ---- h. counters ----
declare -A got
read_stats() {
	got=()
	local name value
	while read -r name value; do got[$name]=$value; done < <(in_be "$decap" stats eth0 | tail -n +2)
	[ "${#got[@]}" -gt 0 ]
}
# counters_are NAME=VALUE...: exactly these values, every counter not named 0.
counters_are() {
	read_stats || return 1
	local -A want=()
	local kv
	for kv in "$@"; do want[${kv%=*}]=${kv#*=}; done
	for name in "${!got[@]}"; do
		[ "${got[$name]}" -eq "${want[$name]:-0}" ] || return 1
	done
}
show_counters() { in_be "$decap" stats eth0 | tail -n +2 | awk '$2 != 0 {printf "%s=%s ", $1, $2}'; }

# d: ipip ipip6 gue gue-ext gue6 gue-direct gue-direct6, and over IPv6 ipip-out6 ipip6-out6
# gue-out6 gue6-out6 (one each); e: 2 delivered + 1 dropped + 1 over IPv6; f: 1.
expected=(decap_ipip=4 decap_ipip6=1 decap_gue=3 decap_gue_direct=2 drop_ecn=1
	decap_ipip_out6=2 decap_ipip6_out6=1 decap_gue_out6=2)
if wait_for 5 counters_are "${expected[@]}"; then
	pass "h. counters after d-g: $(show_counters)"
else
	failed "h. counters after d-g: $(show_counters), want ${expected[*]}"
fi

if out=$(peer malformed --src-mac "$CLIENT_MAC" --dst-mac "$BACKEND_MAC"); then
	# {"sent": N, "want": {"malformed_outer": 4, ...}} -> malformed_outer=4 ...
	mapfile -t more < <(python3 -c 'import json, sys
for k, v in json.loads(sys.argv[1])["want"].items(): print(f"{k}={v}")' "$out")
	if wait_for 5 counters_are "${expected[@]}" "${more[@]}"; then
		pass "h. broken encapsulations counted ($out): $(show_counters)"
	else
		failed "h. broken encapsulations: $(show_counters), want ${expected[*]} ${more[*]}"
	fi
else
	failed "h. sending the broken frames: $out"
fi
if [ -z "$(grep -v '^$' "$tmp/server.log")" ]; then
	pass "h. the echo server logged nothing (no broken packet reached it as garbage)"
else
	failed "h. echo server: $(tail -n 5 "$tmp/server.log")"
fi

# ---- i. another GUE port, and a filter after rondo-decap's ----
if out=$(in_be "$decap" attach eth0 --gue-port 7777 2>&1) && [ "$(filters)" -eq 1 ] &&
	in_be "$decap" stats eth0 | head -1 | grep -q 'GUE port 7777'; then
	pass "i. attach --gue-port 7777: $out"
else
	failed "i. attach --gue-port 7777: $out"
fi
if out=$(peer send gue --gue-port 7777); then pass "i. GUE to 7777: $out"; else failed "i. GUE to 7777: $out"; fi
if out=$(peer send gue --no-reply --wait 1); then
	pass "i. GUE to 6080 is no longer decapsulated"
else
	failed "i. GUE to 6080 still answered: $out"
fi
# Someone else's filter at a later priority: the same object loaded by tc (its .rodata as
# built: GUE port 6080). rondo-decap passes what is not its own on to it (TC_ACT_UNSPEC):
# GUE to 6080 is now decapsulated by that filter.
must in_be tc filter add dev eth0 ingress prio 2 handle 1 bpf da obj "$build/bpf/rondo_decap.bpf.o" sec tc
if out=$(peer send gue); then
	pass "i. a filter at priority 2 still sees what rondo-decap passes (GUE to 6080 answered): $out"
else
	failed "i. the filter at priority 2 saw nothing: $out"
fi
# A new program has new counters; the 6080 datagrams were never rondo-decap's.
if wait_for 5 counters_are decap_gue=1; then
	pass "i. counters of the new program: $(show_counters)"
else
	failed "i. counters of the new program: $(show_counters), want decap_gue=1"
fi

# ---- j. detach ----
if out=$(in_be "$decap" detach eth0 2>&1) && [ "$(filters)" -eq 0 ] &&
	in_be tc filter show dev eth0 ingress | grep -q 'pref 2 .*handle 0x1 '; then
	pass "j. detach: $out; the priority-2 filter is still there"
else
	failed "j. detach: $out; left: $(in_be tc filter show dev eth0 ingress)"
fi
must in_be tc filter del dev eth0 ingress prio 2
if [ -z "$(in_be tc filter show dev eth0 ingress)" ]; then
	pass "j. tc filter show dev eth0 ingress is empty"
else
	failed "j. filters left: $(in_be tc filter show dev eth0 ingress)"
fi
if out=$(peer send ipip --no-reply --wait 1); then
	pass "j. after detach an IPIP packet gets no answer again"
else
	failed "j. IPIP answered after detach: $out"
fi
expect_rc "j. detach again" 0 "nothing attached on eth0" detach eth0
expect_rc "j. stats after detach" 1 "rondo-decap is not attached" stats eth0

echo "decap: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
