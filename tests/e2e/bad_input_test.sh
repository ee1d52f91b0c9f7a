#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Bad input at the edges of the processes: each case must fail with a clear one-line
# message that names what is wrong, with the documented exit code, and change nothing.
#   - rondo-dataplane: a port whose device cannot start (no such interface) -> 1, names it;
#     an unknown option -> 2; a bad --local-ports range -> 2; a hash secret others can
#     read (--state-dir) -> 1, names the file and the fix
#   - rondo-controlplane --check: a config with an error -> 1, file:line: field
#   - rondo-controlplane: a bad config at start -> 1, nothing pushed (no dataplane needed)
#   - rondoctl: a bad address -> 2 (nothing sent)
set -uo pipefail

build=${RONDO_BUILD:?RONDO_BUILD must point at the build directory}
[ "$(id -u)" -eq 0 ] || { echo "bad_input_test: needs root (DPDK, af_packet); skipped"; exit 77; }

tmp=$(mktemp -d /tmp/rondo-bad.XXXXXX)
prefix=rondo-bad-$$
cleanup() {
	rm -rf -- "$tmp" "/var/run/dpdk/$prefix"
	rm -f -- /dev/hugepages/"$prefix"map_* 2>/dev/null
}
trap cleanup EXIT

passed=0 failed=0
# expect NAME WANT_RC WANT_TEXT COMMAND...: run it, check the exit code and that the
# output contains WANT_TEXT.
expect() {
	local name=$1 want_rc=$2 want_text=$3 out rc
	shift 3
	out=$("$@" 2>&1)
	rc=$?
	if [ "$rc" -eq "$want_rc" ] && grep -qF -- "$want_text" <<<"$out"; then
		echo "PASS $name (exit $rc): $(grep -F -- "$want_text" <<<"$out" | head -1)"
		passed=$((passed + 1))
	else
		echo "FAIL $name: exit $rc (want $want_rc), output lacks '$want_text':"
		sed 's/^/    /' <<<"$out" | tail -n 15
		failed=$((failed + 1))
	fi
}

eal=(-l 0,1 --no-huge -m 256 --no-pci --file-prefix "$prefix" --log-level='*:notice')
expect "dataplane: port that cannot start" 1 \
	"port net_af_packet0 (net_af_packet0,iface=rondo-nosuch0) failed to start" \
	timeout 60 "$build/dataplane/rondo-dataplane" "${eal[@]}" --vdev=net_af_packet0,iface=rondo-nosuch0 \
	-- --ctl-socket "$tmp/dp.sock" --state-dir "$tmp/state"
expect "dataplane: unknown option" 2 "unrecognised option '--bogus'" \
	timeout 60 "$build/dataplane/rondo-dataplane" "${eal[@]}" --vdev=net_null0 -- --bogus
expect "dataplane: bad local port range" 2 "--local-ports: '70000-1' is not a range" \
	timeout 60 "$build/dataplane/rondo-dataplane" "${eal[@]}" --vdev=net_null0 -- --local-ports 70000-1
mkdir -m 0700 "$tmp/leaky" && head -c 16 /dev/urandom >"$tmp/leaky/hash.key" && chmod 0644 "$tmp/leaky/hash.key"
expect "dataplane: hash secret readable by others" 1 "hash.key: mode 0644 lets group or others at the flow-hash secret" \
	timeout 60 "$build/dataplane/rondo-dataplane" "${eal[@]}" --vdev=net_null0 \
	-- --ctl-socket "$tmp/dp.sock" --state-dir "$tmp/leaky"
[ -e "$tmp/dp.sock" ] && { echo "FAIL: a refused dataplane left its control socket"; failed=$((failed + 1)); }

cat >"$tmp/bad.yaml" <<'YAML'
local_ips: [198.51.100.100]
vips:
  - name: web
    address: 203.0.113.10
    port: 80
    backends:
      - address: 198.51.100.3
        port: 70000
YAML
expect "controlplane --check: bad port" 1 "bad.yaml:8: vips[0].backends[0].port" \
	"$build/controlplane/rondo-controlplane" --config "$tmp/bad.yaml" --check
expect "controlplane: bad config at start" 1 "bad.yaml:8: vips[0].backends[0].port" \
	timeout 20 "$build/controlplane/rondo-controlplane" --config "$tmp/bad.yaml" \
	--state-file "$tmp/state.json" --api-socket "$tmp/api.sock" \
	--dataplane-socket "$tmp/dp.sock" --metrics-listen none
[ -e "$tmp/state.json" ] && { echo "FAIL: a refused config was written to the state file"; failed=$((failed + 1)); }
expect "rondoctl: bad address" 2 "300.1.2.3" \
	"$build/controlplane/rondoctl" --socket "$tmp/api.sock" backend add web 300.1.2.3:80

echo "bad input: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
