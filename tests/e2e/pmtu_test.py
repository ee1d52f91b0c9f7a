#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""End-to-end path MTU discovery through a router hop (issue 9, item 4).

Topology: tools/lib/topo.sh up TAG --v6 --router (harness.py, env.v6 and env.router): the
client 198.18.0.2 / 2001:db8:300::2 behind a router (rd-TAG-rt: 198.51.100.4 /
2001:db8:100::4 on the bridge, 198.18.0.1 / 2001:db8:300::1 towards the client) whose routes
to the client carry mtu 1400 (IPv4) and 1280 (IPv6); every link is 1500. rondo on dp0 (one
worker, --mtu 1500) with routes to the client's subnets via the router, full-NAT from
198.51.100.100 and 2001:db8:100::100:
  web   203.0.113.10:80/tcp   -> 198.51.100.3:3000
  web6  [2001:db8::10]:80/tcp -> [2001:db8:100::3]:3000

The client advertises an MSS of 1460 (1440 over IPv6), so the backend sends 1500-byte
segments; rondo forwards them to the router, whose kernel answers the VIP with ICMP
fragmentation-needed 1400 (ICMPv6 packet too big 1280). rondo must find the flow from the
quoted header, translate the error (outer and quoted addresses, ports, checksums) and send it
to the backend, whose kernel lowers its path MTU to rondo's local ip. Without that the
download stalls: the backend resends the same full-size segments, which the router drops.

Scenarios (each on a fresh path: the backend's route cache starts without an mtu):
  a. a 1 MB download through the v4 VIP arrives whole; the router sent fragmentation-needed,
     rondo's icmp_errors_forwarded rose, the backend's `ip route get 198.51.100.100` shows
     mtu 1400, and rondo dropped nothing while it ran
  b. the same through the v6 VIP: packet too big, `ip -6 route get 2001:db8:100::100` shows
     mtu 1280

Needs root (exit 77 = skipped otherwise). Env: RONDO_BUILD (build dir), RONDO_SRC
(source dir). Everything it creates is removed at the end (see harness.py).
"""

import re
import subprocess
import sys

import harness
from harness import BACKEND_IP, BACKEND_IP6, HTTP_PORT, LOCAL_IP, LOCAL_IP6, VIP, VIP6
from ipv6_test import counters
from jumbo_test import CLIENT_MODES, DOWNLOAD

ROUTER_IP = "198.51.100.4"
ROUTER_IP6 = "2001:db8:100::4"
CLIENT_NET = "198.18.0.0/24"
CLIENT_NET6 = "2001:db8:300::/64"
PATH_MTU = {VIP: 1400, VIP6: 1280}  # the router's route mtu towards the client (topo.sh)
BACKEND = 3000
VIPS = [
    {"name": "web", "address": VIP, "port": HTTP_PORT, "backends": [(BACKEND_IP, BACKEND)]},
    {"name": "web6", "address": VIP6, "port": HTTP_PORT, "backends": [(BACKEND_IP6, BACKEND)]},
]
ROUTES = [
    {"prefix": "198.51.100.0/24"},
    {"prefix": CLIENT_NET, "via": ROUTER_IP},
    {"prefix": "2001:db8:100::/64"},
    {"prefix": CLIENT_NET6, "via": ROUTER_IP6},
]
# Drops the hosts' kernels cause without anything being wrong: their MLD reports and
# neighbour solicitations reach rondo's port through the bridge.
HARMLESS_DROPS = {"drop:ndp_ignored", "drop:ndp_not_for_us"}


def sh(*argv):
    return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=30).stdout


def router_sent(env, v6):
    """How many fragmentation-needed (v4) / packet-too-big (v6) the router's kernel sent."""
    if v6:
        snmp = sh("ip", "netns", "exec", env.ns_rt, "cat", "/proc/net/snmp6")
        return int(re.search(r"^Icmp6OutPktTooBigs\s+(\d+)", snmp, re.M).group(1))
    # /proc/net/snmp has no per-code count: every destination unreachable the router sent.
    lines = [l.split() for l in sh("ip", "netns", "exec", env.ns_rt, "cat",
                                   "/proc/net/snmp").splitlines() if l.startswith("Icmp:")]
    return int(dict(zip(lines[0], lines[1]))["OutDestUnreachs"])


def backend_mtu(env, local):
    """The mtu of the backend's route to rondo's local ip (None: no mtu in the cache)."""
    route = sh("ip", "-n", env.ns_be, *(["-6"] if harness.is_v6(local) else []), "route", "get",
               local)
    m = re.search(r"\bmtu (\d+)", route)
    return (int(m.group(1)) if m else None), route.strip()


def setup(env):
    env.v6 = True
    env.router = True
    env.ns_rt = f"rd-{env.tag}-rt"
    env.topology_up()
    env.start_backends([BACKEND], [])
    env.start_dataplane(extra=["--mtu", "1500"])
    env.write_config(VIPS, local_ips=(LOCAL_IP, LOCAL_IP6), routes=ROUTES)
    harness.log("control plane")
    env.start_controlplane()
    env.wait_vip()
    env.wait_vip(VIP6)


def pmtu_download(env, vip, local):
    v6 = harness.is_v6(vip)
    sh("ip", "-n", env.ns_be, *(["-6"] if v6 else []), "route", "flush", "cache")
    mtu0, route0 = backend_mtu(env, local)
    assert mtu0 is None, f"the backend's route to {local} has an mtu before the download: {route0}"
    sent0, c0 = router_sent(env, v6), counters(env)
    res = env.in_client("download", "--bytes", DOWNLOAD, "--vip", vip, timeout=60)
    sent1, c1 = router_sent(env, v6), counters(env)
    fwd = c1["icmp_errors_forwarded"] - c0["icmp_errors_forwarded"]
    drops = {k[5:]: c1[k] - c0[k] for k in c1
             if k.startswith("drop:") and k not in HARMLESS_DROPS and c1[k] != c0[k]}
    what = "packet too big" if v6 else "fragmentation-needed"
    seen = (f"router sent {sent1 - sent0} {what}, rondo forwarded {fwd} ICMP error(s), "
            f"drops {drops or 'none'}")
    assert res["ok"], (f"the 1 MB download from {vip} failed: {res['error']} ({res['bytes']} "
                       f"bytes in {res['seconds']}s); {seen}")
    assert sent1 > sent0, f"{vip}: the router sent no {what}: the path is not narrower ({seen})"
    assert fwd > 0, f"{vip}: icmp_errors_forwarded did not move ({seen})"
    assert not drops, f"{vip}: rondo dropped packets during the download: {drops}"
    mtu, route = backend_mtu(env, local)
    assert mtu == PATH_MTU[vip], (f"the backend's route to {local} has mtu {mtu}, want "
                                  f"{PATH_MTU[vip]}: {route}")
    return (f"1 MB through {harness.endpoint(vip, HTTP_PORT)} in {res['seconds']}s; {seen}; "
            f"the backend's route to {local}: mtu {mtu}")


SCENARIOS = [
    ("a", "v4 download through a 1400-byte hop", lambda env, t: pmtu_download(env, VIP, LOCAL_IP)),
    ("b", "v6 download through a 1280-byte hop",
     lambda env, t: pmtu_download(env, VIP6, LOCAL_IP6)),
]

if __name__ == "__main__":
    sys.exit(harness.run("pmtu", __file__, SCENARIOS, setup, client_modes=CLIENT_MODES))
