#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# deploy/rondo-{dataplane,controlplane}.service pass `systemd-analyze verify`, and say what
# docs/deploy.md promises (verify cannot know that): Type=notify with a watchdog,
# Restart=always, a memory cap, and the control plane ordered after the dataplane without
# being bound to it (it must survive the dataplane's restarts).
#
# verify checks that each ExecStart binary exists; the units name the installed paths
# (/usr/local/bin), so it runs on copies whose ExecStart names this build's binaries
# instead, in a temp dir (verify looks for units named in Wants=/After= next to the files it
# is given first, then in the host's unit dirs: dev-hugepages.mount, network-online.target).
# Without a running systemd (no PID 1 needed). Any message about a rondo unit fails the
# test: verify exits 0 on unknown keys and bad values, it only warns.
set -euo pipefail

build=${RONDO_BUILD:?RONDO_BUILD must point at the build directory}
src=${RONDO_SRC:?RONDO_SRC must point at the source directory}
command -v systemd-analyze >/dev/null || { echo "systemd-analyze missing (apt-get install systemd); skipped"; exit 77; }

tmp=$(mktemp -d /tmp/rondo-units.XXXXXX)
cleanup() { rm -rf -- "$tmp"; }
trap cleanup EXIT

failed=0
fail() {
	echo "FAIL $*"
	failed=$((failed + 1))
}

for unit in rondo-dataplane.service rondo-controlplane.service; do
	sed -e "s|/usr/local/bin/rondo-dataplane|$build/dataplane/rondo-dataplane|" \
		-e "s|/usr/local/bin/rondo-controlplane|$build/controlplane/rondo-controlplane|" \
		"$src/deploy/$unit" >"$tmp/$unit"
	grep -q "^ExecStart=$build/" "$tmp/$unit" || fail "$unit: ExecStart does not name /usr/local/bin/rondo-*"
done
for bin in dataplane/rondo-dataplane controlplane/rondo-controlplane; do
	[ -x "$build/$bin" ] || fail "$build/$bin is not built"
done

rc=0
out=$(systemd-analyze verify "$tmp"/rondo-dataplane.service "$tmp"/rondo-controlplane.service 2>&1) || rc=$?
ours=$(grep -F 'rondo-' <<<"$out" || true)
if [ "$rc" -ne 0 ] || [ -n "$ours" ]; then
	fail "systemd-analyze verify (exit $rc):"
	sed 's/^/    /' <<<"$out"
else
	echo "PASS systemd-analyze verify: both units clean"
	# Messages about the host's own units are not ours to fix: shown, not failed.
	[ -z "$out" ] || sed 's/^/    host: /' <<<"$out"
fi

# value UNIT KEY: the last value of KEY= in UNIT (later assignments win, as in systemd).
value() { sed -n "s/^$2=//p" "$src/deploy/$1" | tail -n 1; }
# has UNIT KEY WORD: WORD is in KEY='s list (every KEY= line: list settings add up).
has() { sed -n "s/^$2=//p" "$src/deploy/$1" | tr ' ' '\n' | grep -qxF -- "$3"; }

for unit in rondo-dataplane.service rondo-controlplane.service; do
	[ "$(value $unit Type)" = notify ] || fail "$unit: Type=$(value $unit Type), want notify"
	[ -n "$(value $unit WatchdogSec)" ] || fail "$unit: no WatchdogSec"
	[ "$(value $unit Restart)" = always ] || fail "$unit: Restart=$(value $unit Restart), want always"
	[ -n "$(value $unit MemoryMax)" ] || fail "$unit: no MemoryMax"
	[ "$(value $unit NotifyAccess)" = main ] || fail "$unit: NotifyAccess=$(value $unit NotifyAccess), want main"
done
cp=rondo-controlplane.service
has $cp After rondo-dataplane.service || fail "$cp: not After=rondo-dataplane.service"
has $cp Wants rondo-dataplane.service || fail "$cp: does not Want rondo-dataplane.service"
for key in Requires BindsTo PartOf Requisite; do
	if has $cp $key rondo-dataplane.service; then
		fail "$cp: $key=rondo-dataplane.service would stop or restart it with the dataplane"
	fi
done
# Both keep /run/rondo (the sockets) when one of them stops.
for unit in rondo-dataplane.service rondo-controlplane.service; do
	[ "$(value $unit RuntimeDirectoryPreserve)" = yes ] || fail "$unit: RuntimeDirectoryPreserve is not yes"
done
[ "$failed" -eq 0 ] && echo "PASS unit settings: Type=notify, WatchdogSec, Restart=always, MemoryMax; control plane After=/Wants= the dataplane, not bound to it"
[ "$failed" -eq 0 ]
