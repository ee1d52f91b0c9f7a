#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Issue 12: the Debian package builds from the tree (tools/package: dpkg-buildpackage
# -us -uc), installs with dpkg -i, has its files where docs/deploy.md ("Package") says, its
# binaries answer --help and run the seed demo (tools/demo with RONDO_BIN_DIR=/usr/bin), and
# dpkg --purge removes it. Root only. The package is purged (and the group it made removed)
# on exit, also on failure: nothing stays installed on the machine that ran the test.
#
# It refuses to run where rondo is already installed, by a package or by hand (/etc/rondo,
# /var/lib/rondo, /usr/bin/rondo-*): installing over it and purging would destroy it.
set -uo pipefail

src=${RONDO_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
[ "$(id -u)" -eq 0 ] || { echo "package_test: needs root (dpkg -i); skipped"; exit 77; }

tmp=$(mktemp -d /tmp/rondo-package-test.XXXXXX)
installed=false
group_made=false

cleanup() {
	set +e
	if $installed; then
		dpkg --purge rondo >"$tmp/purge-on-exit.log" 2>&1 ||
			{ echo "package_test: dpkg --purge rondo failed on exit:"; cat "$tmp/purge-on-exit.log"; }
	fi
	if $group_made && getent group rondo >/dev/null; then
		delgroup --quiet --system rondo
	fi
	rm -rf -- "$tmp"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*"
	exit 1
}
step() { printf '[package] %s\n' "$*"; }

if dpkg-query -W -f='${db:Status-Status}' rondo 2>/dev/null | grep -qv '^not-installed$'; then
	fail "a rondo package is already on this machine ($(dpkg-query -W -f='${Version} ${db:Status-Status}' rondo)): dpkg --purge rondo first"
fi
for p in /etc/rondo /var/lib/rondo /usr/share/rondo /usr/bin/rondo-dataplane /usr/bin/rondo-controlplane \
	/usr/bin/rondoctl /usr/bin/rondo-dpstat /usr/bin/rondo-decap /usr/sbin/rondo-host-prep; do
	[ -e "$p" ] && fail "$p exists (rondo installed by hand?): the package would overwrite it and purge it"
done
getent group rondo >/dev/null || group_made=true

step "building (tools/package)"
start=$SECONDS
deb=$("$src/tools/package" "$tmp/out" 2>"$tmp/package.log" | tail -n 1) ||
	{ cat "$tmp/package.log"; fail "tools/package failed"; }
build_s=$((SECONDS - start))
[ -f "$deb" ] || fail "tools/package printed no .deb ($deb)"
step "built $(basename "$deb"), $(du -k "$deb" | cut -f1) KiB, in ${build_s} s"

# What is in the package, before installing it: the units of the tree, each one.
mapfile -t units < <(cd "$src/deploy" && ls -1 ./*.service | sed 's|^\./||')
((${#units[@]} > 0)) || fail "no deploy/*.service in the tree"

step "dpkg -i"
start=$SECONDS
installed=true # from here on, the trap purges
dpkg -i "$deb" >"$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; fail "dpkg -i failed"; }
step "installed in $((SECONDS - start)) s"
[ "$(dpkg-query -W -f='${db:Status-Status}' rondo)" = installed ] || fail "dpkg says rondo is not installed"

dpkg -L rondo >"$tmp/files"
expect=(
	/usr/bin/rondo-dataplane /usr/bin/rondo-controlplane /usr/bin/rondoctl /usr/bin/rondo-dpstat
	/usr/bin/rondo-decap
	/usr/share/rondo/rondo_xdp.bpf.o /usr/share/rondo/rondo_decap.bpf.o
	/usr/share/rondo/rondo_hc_encap.bpf.o
	/etc/rondo/rondo.yaml
	/usr/share/doc/rondo/examples/bird/bird.conf
	/usr/share/doc/rondo/examples/bird/resilient-vip-routes
	/usr/sbin/rondo-host-prep
	/usr/share/man/man8/rondo-host-prep.8.gz
	/usr/share/rondo/prometheus/rondo-alerts.yml
	/usr/share/rondo/prometheus/rondo-alerts.test.yml
	/usr/share/rondo/prometheus/prometheus.yml
	/usr/share/rondo/grafana/rondo-dashboard.json
	/usr/lib/tmpfiles.d/rondo.conf
	/usr/share/doc/rondo/copyright
)
for b in rondo-dataplane rondo-controlplane rondoctl rondo-dpstat rondo-decap; do
	expect+=("/usr/share/man/man1/$b.1.gz")
done
for u in "${units[@]}"; do
	expect+=("/lib/systemd/system/$u")
done
for f in "${expect[@]}"; do
	grep -qxF "$f" "$tmp/files" || fail "dpkg -L rondo has no $f"
	[ -e "$f" ] || fail "$f is listed but not on disk"
done
step "dpkg -L rondo: all ${#expect[@]} expected files, $(wc -l <"$tmp/files") paths in all"

dpkg-query -W -f='${Conffiles}\n' rondo | grep -q '^ /etc/rondo/rondo.yaml ' ||
	fail "/etc/rondo/rondo.yaml is not a conffile"

# The units run the installed binaries (deploy/ names /usr/local: the package rewrites it).
for u in "${units[@]}"; do
	exe=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "/lib/systemd/system/$u")
	[ -x "$exe" ] || fail "$u: ExecStart names $exe, which is not an installed executable"
	grep -q /usr/local "/lib/systemd/system/$u" && fail "$u still names /usr/local"
	if [ -d /run/systemd/system ] && systemctl is-enabled --quiet "$u" 2>/dev/null; then
		fail "$u was enabled on install"
	fi
done
step "units: ${units[*]} run /usr/bin binaries"

getent group rondo >/dev/null || fail "no group rondo after install"
[ -d /run/rondo ] && [ -d /var/lib/rondo ] || fail "/run/rondo or /var/lib/rondo missing after install"
step "group rondo ($(getent group rondo | cut -d: -f3)), /run/rondo and /var/lib/rondo exist"

for b in rondo-controlplane rondoctl rondo-dpstat rondo-decap; do
	"/usr/bin/$b" --help >"$tmp/help" 2>&1 || { cat "$tmp/help"; fail "$b --help failed"; }
	grep -q '^Usage: ' "$tmp/help" || fail "$b --help prints no usage"
done
# The EAL answers --help; rondo's own options must follow its.
/usr/bin/rondo-dataplane --help >"$tmp/help" 2>/dev/null || fail "rondo-dataplane --help failed"
grep -q -- '-l CORELIST' "$tmp/help" && grep -q -- '--ctl-socket' "$tmp/help" ||
	fail "rondo-dataplane --help lacks the EAL's or rondo's options"
for b in rondo-dataplane rondo-controlplane rondoctl rondo-dpstat rondo-decap; do
	zcat "/usr/share/man/man1/$b.1.gz" | grep -q '^\.SH' || fail "man page of $b is empty"
done
# rondo-decap finds its object where the package put it (meson's datadir, built in).
/usr/bin/rondo-decap --help | grep -q '/usr/share/rondo' || fail "rondo-decap does not look in /usr/share/rondo"
zcat /usr/share/man/man8/rondo-host-prep.8.gz | grep -q 'apply' || fail "man page of rondo-host-prep lacks --apply"
/usr/sbin/rondo-host-prep --help | grep -q -- '--apply' || fail "rondo-host-prep --help prints no --apply"
step "--help and man page of each binary"

/usr/bin/rondo-controlplane --config /etc/rondo/rondo.yaml --check >"$tmp/check" 2>&1 ||
	{ cat "$tmp/check"; fail "the installed /etc/rondo/rondo.yaml does not pass --check"; }

step "the seed demo with the installed binaries (tools/demo, RONDO_BIN_DIR=/usr/bin)"
start=$SECONDS
RONDO_BIN_DIR=/usr/bin RONDO_DEMO_TAG="pkg$$" "$src/tools/demo" >"$tmp/demo.log" 2>&1 ||
	{ tail -n 40 "$tmp/demo.log"; fail "tools/demo with the installed binaries failed"; }
grep -q '^\[demo\] binaries in /usr/bin' "$tmp/demo.log" || fail "the demo did not run /usr/bin's binaries"
answers=$(grep -cE '^ +[0-9]+  hello from backend :300[0-3]' "$tmp/demo.log")
[ "$answers" -eq 12 ] || { cat "$tmp/demo.log"; fail "the demo printed $answers HTTP answers, not 12"; }
for p in 3000 3001 3002 3003; do
	n=$(grep -cE "^ +[0-9]+  hello from backend :$p\$" "$tmp/demo.log")
	[ "$n" -eq 3 ] || fail "backend :$p answered $n of the 12 requests, not 3"
done
grep -q 'udp from backend' "$tmp/demo.log" || fail "no UDP answer in the demo"
step "demo: 12 HTTP answers, 3 per backend, and a UDP answer, in $((SECONDS - start)) s"

step "dpkg --purge rondo"
start=$SECONDS
dpkg --purge rondo >"$tmp/purge.log" 2>&1 || { cat "$tmp/purge.log"; fail "dpkg --purge failed"; }
installed=false
dpkg-query -W -f='${db:Status-Status}' rondo 2>/dev/null | grep -qv '^not-installed$' &&
	fail "rondo is still known to dpkg after --purge"
for f in "${expect[@]}" /etc/rondo /var/lib/rondo /usr/share/rondo; do
	[ -e "$f" ] && fail "$f is still there after dpkg --purge"
done
step "purged in $((SECONDS - start)) s: no file of the package is left, nor /etc/rondo or /var/lib/rondo"
echo "package_test: OK (build ${build_s} s)"
