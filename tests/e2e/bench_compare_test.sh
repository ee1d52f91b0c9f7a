#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# tools/bench --compare: bad input is refused with a clear error and a non-zero exit before
# anything is built or run (any user); then (root only: hugepages) one build against itself,
# est-1k and cps, one 1 s run each: a table row per scenario whose B/A ratios parse and lie
# in a loose range (the same binary on both sides; runs on this VM differ by up to ~2x, so
# nothing tighter is asserted: benchmarks do not fail on timing).
#
# Env: RONDO_BUILD (build dir), RONDO_SRC (source dir), as meson test sets them.
set -euo pipefail

src=${RONDO_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
build=${RONDO_BUILD:-$src/build}
tmp=$(mktemp -d /tmp/rondo-bench-compare.XXXXXX)
trap 'rm -rf -- "$tmp"' EXIT

# expect_refused WHAT PATTERN ARGS...: tools/bench exits non-zero, says PATTERN, changes nothing.
expect_refused() {
	local what=$1 pattern=$2 rc=0 before after
	shift 2
	before=$(ls -A "$src/build-compare" 2>/dev/null || true)
	"$src/tools/bench" "$@" >"$tmp/out" 2>&1 || rc=$?
	after=$(ls -A "$src/build-compare" 2>/dev/null || true)
	if [ "$rc" -eq 0 ] || ! grep -q -- "$pattern" "$tmp/out" || [ "$before" != "$after" ]; then
		echo "bench compare: $what: expected a refusal saying '$pattern' (exit $rc, build-compare changed: $([ "$before" != "$after" ] && echo yes || echo no)):"
		cat "$tmp/out"
		exit 1
	fi
	echo "bench compare: $what refused: $(head -1 "$tmp/out")"
}
expect_refused "an unknown revision" "'no-such-revision-1234' is neither a build directory nor a git revision" \
	--compare no-such-revision-1234 "$build" --no-build
expect_refused "a directory that is not a build directory" "$tmp is not a build directory" \
	--compare "$build" "$tmp" --no-build
expect_refused "--compare with one argument" "takes two arguments" --compare "$build"

if [ "$(id -u)" -ne 0 ]; then
	echo "bench compare: the run needs root, skipped"
	exit 77
fi

RONDO_BUILD_DIR=$build "$src/tools/bench" --compare "$build" "$build" --no-build --smoke --duration 1 --reps 1 \
	--scenarios est-1k,cps --json "$tmp/compare.json" >"$tmp/table" 2>"$tmp/log" || {
	cat "$tmp/log" "$tmp/table"
	exit 1
}
cat "$tmp/table"

python3 - "$tmp/table" "$tmp/compare.json" <<'PY'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
rows = {}
hdr = None
for l in lines:
    if not l.startswith("| "):
        continue
    cells = [c.strip() for c in l.strip("|").split("|")]
    if cells[0] == "scenario":
        hdr = cells
        continue
    rows.setdefault(cells[0], []).append(dict(zip(hdr, cells)))
bad = []
for scenario in ("est-1k", "cps"):
    figures = {r["figure"]: r for r in rows.get(scenario, [])}
    for need in ("Mpps", "cyc/pkt") + (("Mconn/s",) if scenario == "cps" else ()):
        if need not in figures:
            bad.append(f"{scenario}: no {need} row")
            continue
        for col in ("B/A median", "B/A best", "B/A pairs"):
            try:
                v = float(figures[need][col])
            except (KeyError, ValueError):
                bad.append(f"{scenario} {need}: {col} is not a number: {figures[need].get(col)!r}")
                continue
            if not 0.2 <= v <= 5:
                bad.append(f"{scenario} {need}: {col} {v} outside 0.2-5 for one build against itself")
r = json.load(open(sys.argv[2]))
if set(r.get("compare", {})) != {"A", "B"}:
    bad.append("the JSON names no A and B")
if bad:
    print("bench compare: " + "; ".join(bad))
    sys.exit(1)
print(f"bench compare: {sum(len(v) for v in rows.values())} rows, ratios in range")
PY
