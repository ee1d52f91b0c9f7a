#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Install what rondo needs to build and test, from Debian 12's archive only.
# Idempotent: checks each package with dpkg-query and installs only the missing
# ones ("apt-get update" once, and only if something is missing), so a warm machine
# returns in well under a second. Needs root only when something is missing.
set -euo pipefail

packages=(
	# build
	meson ninja-build pkg-config g++
	libdpdk-dev dpdk libbpf-dev libxdp-dev clang llvm
	prometheus-cpp-dev libboost-program-options-dev libyaml-cpp-dev nlohmann-json3-dev
	libgtest-dev libbenchmark-dev
	# sd_notify for the systemd units (deploy/), and systemd-analyze to verify them
	libsystemd-dev systemd
	# tools/fuzz: clang's libFuzzer and sanitizer runtimes (tools/test --sanitize uses g++'s)
	libclang-rt-14-dev
	# tools/bench: dpdk-testpmd (the io-forwarding ceiling) and perf (profiles)
	dpdk-dev linux-perf
	# e2e tests and the demo: namespaces, veth offloads, clients, backends
	iproute2 ethtool procps curl python3 nodejs
	# e2e seed x: nft drops one PROXY v2 header segment in the backends' namespace
	nftables
	# e2e capture: dpdk-dumpcap comes with "dpdk" (above), tcpdump reads its pcapng
	tcpdump
	# promtool, to check the metrics exposition and the alert rules (Debian ships it in
	# "prometheus"); python3-yaml reads the rules for the metric-name checks
	prometheus python3-yaml
	# e2e bgp: BIRD 2 as rondo's BGP speaker and as the router
	bird2
	# tools/package: dpkg-buildpackage with debhelper, man pages from --help
	dpkg-dev debhelper help2man
)

installed() {
	[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

missing=()
for p in "${packages[@]}"; do
	# Node.js may come from elsewhere than Debian's "nodejs" (a newer build on the
	# machine): any node >= 18 will do for tools/lib/backend.js.
	if [ "$p" = nodejs ] && command -v node >/dev/null 2>&1 &&
		[ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)" -ge 18 ]; then
		continue
	fi
	installed "$p" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: missing packages (${missing[*]}); run as root to install them" >&2
	exit 1
fi

echo "deps.sh: installing ${missing[*]}" >&2

# Installing "prometheus" or "bird2" must not start a server on this machine: a
# policy-rc.d that answers 101 ("action forbidden") keeps invoke-rc.d from starting
# any service. Put one in place only for the install, if the machine has none.
policy=/usr/sbin/policy-rc.d
cleanup_policy() { :; }
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	cleanup_policy() { rm -f -- "$policy"; }
fi
trap cleanup_policy EXIT

export DEBIAN_FRONTEND=noninteractive
apt_opts=(-q -o DPkg::Lock::Timeout=300)
apt-get "${apt_opts[@]}" update
apt-get "${apt_opts[@]}" install -y --no-install-recommends "${missing[@]}"

still=()
for p in "${missing[@]}"; do
	installed "$p" || still+=("$p")
done
if [ ${#still[@]} -ne 0 ]; then
	echo "deps.sh: still missing after install: ${still[*]}" >&2
	exit 1
fi
