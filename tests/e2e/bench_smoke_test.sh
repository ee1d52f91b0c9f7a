#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Smoke run of tools/bench: every scenario for ~2 seconds with small flow counts, over
# memif, against rondo and (if installed) dpdk-testpmd. Asserts only that numbers came
# out (Mpps > 0 for every scenario and middle box), never a rate: benchmarks do not fail
# on timing. Root only (hugepages); exit 77 (skipped) otherwise.
#
# Env: RONDO_BUILD (build dir), RONDO_SRC (source dir), as meson test sets them.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
	echo "bench smoke: needs root, skipped"
	exit 77
fi
src=${RONDO_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
build=${RONDO_BUILD:-$src/build}
tmp=$(mktemp -d /tmp/rondo-bench-smoke.XXXXXX)
trap 'rm -rf -- "$tmp"' EXIT

# rondo-xcore (the bench's placement probe): two positive round trips, and bad arguments refused.
read -r rt_median rt_best < <("$build/tools/gen/rondo-xcore" 0 1 200)
awk -v m="$rt_median" -v b="$rt_best" 'BEGIN { exit !(m > 0 && b > 0 && b <= m) }' ||
	{ echo "bench smoke: rondo-xcore printed '$rt_median $rt_best'"; exit 1; }
for bad in "0 0" "0" "0 1 5" "x 1"; do
	rc=0
	# shellcheck disable=SC2086 # the words are the arguments
	"$build/tools/gen/rondo-xcore" $bad >/dev/null 2>&1 || rc=$?
	[ "$rc" = 2 ] || { echo "bench smoke: rondo-xcore $bad exited $rc, not 2"; exit 1; }
done

RONDO_BUILD_DIR=$build "$src/tools/bench" --smoke --no-build --json "$tmp/results.json"

python3 - "$tmp/results.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
bad = []
for s in r["scenarios"]:
    for side in ("rondo", "testpmd"):
        v = s.get(side)
        if side == "testpmd" and v is None:
            continue  # dpdk-testpmd not installed: no ceiling, not a failure
        if not v or not v.get("mpps", 0) > 0:
            bad.append(f"{s['scenario']}/{side}")
        # rondo's port counters (dpstat, rondoctl stats, rondo_port_*) must see the traffic
        # too: on net_memif they once stayed 0 while the peer counted every packet.
        if side == "rondo" and v and not (v.get("port_ipackets", 0) > 0 and v.get("port_opackets", 0) > 0):
            bad.append(f"{s['scenario']}/rondo port counters")
        # Every run was probed for the placement of cores 0 and 1, before and after.
        for run in (s.get("runs") or {}).get(side) or []:
            x = (run or {}).get("xcore") or {}
            if not (x.get("before_ns", 0) > 0 and x.get("after_ns", 0) > 0):
                bad.append(f"{s['scenario']}/{side} placement probe")
if not r["scenarios"]:
    bad.append("no scenario ran")
if bad:
    print("bench smoke: no numbers for " + ", ".join(bad))
    sys.exit(1)
print(f"bench smoke: {len(r['scenarios'])} scenarios produced numbers")
PY
