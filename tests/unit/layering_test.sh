#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# The dataplane's folders depend downwards only (docs/architecture.md, "Where each concept
# lives"). Each rule below names a folder and a folder it must not include; a line that does
# fails the test, with the file and line. Add a rule when a dependency is inverted.
set -euo pipefail

src=${RONDO_SRC:?RONDO_SRC must point at the source directory}
rules=(
	"dataplane/port dataplane/fwd"  # ports know frames and queues, not the pipeline
)
fail=0
for rule in "${rules[@]}"; do
	read -r folder forbidden <<<"$rule"
	[ -d "$src/$folder" ] || { echo "no folder $folder"; exit 1; }
	if hits=$(grep -rnE "^[[:space:]]*#[[:space:]]*include[[:space:]]*[<\"]$forbidden/" "$src/$folder"); then
		echo "$folder must not include $forbidden/:"
		echo "$hits" | sed "s|^$src/||"
		fail=1
	else
		echo "ok: $folder does not include $forbidden/"
	fi
done
exit $fail
