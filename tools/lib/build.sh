#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Configure (once) and build rondo in $RONDO_BUILD_DIR (default: <repo>/build).
# Extra arguments go to "meson setup" when the build directory is first configured.
set -euo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${RONDO_BUILD_DIR:-$src/build}

if [ ! -f "$build/build.ninja" ]; then
	meson setup "$build" "$src" "$@"
fi
# ninja's default job count (cores + 2) suits the 2-core machines this runs on.
ninja -C "$build"
