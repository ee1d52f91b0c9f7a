#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""End-to-end NAT46 and NAT64 through full-NAT (issue 9, item 2): the seed scenario's shape,
small, with backends that listen in one family only.

Topology: tools/lib/topo.sh up TAG --v6 (as ipv6_test.py): the client 198.51.100.2 and
2001:db8:100::2, the backends' host 198.51.100.3 and 2001:db8:100::3, rondo on dp0 (one
worker: round robin is exact) with local ips 198.51.100.100 and 2001:db8:100::100.
  web46  203.0.113.10:80/tcp   -> [2001:db8:100::3]:3000-3003  (listening on that v6 address only)
  dns46  203.0.113.10:53/udp   -> [2001:db8:100::3]:4000-4003
  web64  [2001:db8::10]:80/tcp -> 198.51.100.3:3100-3103       (listening on that v4 address only)
  dns64  [2001:db8::10]:53/udp -> 198.51.100.3:4100-4103
A backend bound to one address of one family cannot answer the other family: every answer
through a VIP of the other family went through rondo's translation. Setup checks that, by
connecting from the client straight to each backend address in the family it does not serve
(refused).

Scenarios, for NAT46 then NAT64:
  a. 40 sequential connections: exactly 10 per backend, in strict rotation
  b. 20 concurrent connections (all open at once): exactly 5 per backend
  c. 20 UDP datagrams from 20 source ports: answered from the VIP, exactly 5 per backend
and last:
  d. rondo dropped nothing during a-c but what the hosts' own IPv6 chatter causes (MLD,
     neighbour solicitations for other addresses), and no ICMP was untranslatable

Needs root (exit 77 = skipped otherwise). Env: RONDO_BUILD (build dir), RONDO_SRC
(source dir). Everything it creates is removed at the end (see harness.py).
"""

import sys
from collections import Counter

import harness
from harness import (BACKEND_IP, BACKEND_IP6, HTTP_PORT, LOCAL_IP, LOCAL_IP6, UDP_PORT, VIP, VIP6,
                     check_no_errors, endpoint, fmt_counts, reuse_note)
from ipv6_test import counters, drops_text

# (VIP, backend address, HTTP ports, UDP ports) of each translation.
NAT = {
    "46": (VIP, BACKEND_IP6, [3000, 3001, 3002, 3003], [4000, 4001, 4002, 4003]),
    "64": (VIP6, BACKEND_IP, [3100, 3101, 3102, 3103], [4100, 4101, 4102, 4103]),
}
HARMLESS_DROPS = {"drop:ndp_ignored", "drop:ndp_not_for_us"}


def vips():
    out = []
    for nat, (vip, addr, http, udp) in NAT.items():
        out.append({"name": f"web{nat}", "address": vip, "port": HTTP_PORT, "protocol": "tcp",
                    "backends": [(addr, p) for p in http]})
        out.append({"name": f"dns{nat}", "address": vip, "port": UDP_PORT, "protocol": "udp",
                    "backends": [(addr, p) for p in udp]})
    return out


def start_backends(env):
    """backend.js bound to one address (--host): a v6 address is a v6-only socket."""
    for nat, (_, addr, http, udp) in NAT.items():
        harness.log(f"NAT{nat} backends on {addr} only: HTTP {','.join(map(str, http))}, "
                    f"UDP {','.join(map(str, udp))}")
        for h, u in zip(http, udp):
            env.spawn(f"backend-{h}", env.ns_be, [env.node, env.backend_js, "--http-port", str(h),
                                                  "--udp-port", str(u), "--host", addr])
        for h, u in zip(http, udp):
            env.wait_backend(h, u)


def check_one_family(env):
    """The client, straight to the backends' other-family address (no rondo): refused."""
    for nat, (_, addr, http, _) in NAT.items():
        other = BACKEND_IP if harness.is_v6(addr) else BACKEND_IP6
        probe = env.in_client("probe", "--deadline", 0, "--vip", other, "--vip-port", http[0])
        if probe["ok"]:
            raise AssertionError(f"NAT{nat}: {endpoint(other, http[0])} answered the client "
                                 f"directly: the backend is not bound to {addr} alone")


def setup(env):
    env.v6 = True
    env.topology_up()
    start_backends(env)
    check_one_family(env)
    env.start_dataplane()
    env.write_config(vips(), local_ips=(LOCAL_IP, LOCAL_IP6))
    harness.log("control plane")
    env.start_controlplane()
    env.wait_vip(VIP)
    env.wait_vip(VIP6)
    env.drops_at_start = counters(env)


def exact_share(res, backends, n, what, note=""):
    """res (a client mode's answer): no errors, n answers, exactly n/4 on each backend."""
    check_no_errors(res, what)
    c = Counter(res["ports"])
    assert len(res["ports"]) == n and set(c) == set(backends) and \
        all(c[p] == n // len(backends) for p in backends), \
        f"{what}: {len(res['ports'])}/{n} answered, {fmt_counts(res['ports'])} (want " \
        f"{n // len(backends)} on each of {backends}){note}"


def sequential(nat, env, totals):
    vip, _, http, _ = NAT[nat]
    n = 40
    res = env.in_client("seq", "--count", n, "--vip", vip)
    note = reuse_note(env, res, totals)
    exact_share(res, http, n, f"NAT{nat} sequential connections", note)
    order = res["ports"]
    bad = [i for i in range(1, n) if http.index(order[i]) != (http.index(order[i - 1]) + 1) % 4]
    assert not bad, f"rotation broken at connection {bad[0]}: {order[max(0, bad[0] - 4):bad[0] + 4]}"
    return f"{n}/{n} to {endpoint(vip, HTTP_PORT)}, {fmt_counts(order)}, strict rotation{note}"


def concurrent(nat, env, totals):
    vip, _, http, _ = NAT[nat]
    n = 20
    res = env.in_client("concurrent", "--count", n, "--vip", vip)
    assert res["open_at_once"] == n, f"only {res['open_at_once']} of {n} connections opened"
    note = reuse_note(env, res, totals)
    exact_share(res, http, n, f"NAT{nat} concurrent connections", note)
    return f"{n}/{n} open at once and answered, {fmt_counts(res['ports'])}{note}"


def udp(nat, env, totals):
    vip, _, _, ports = NAT[nat]
    n = 20
    res = env.in_client("udp", "--count", n, "--vip", vip)
    assert len(set(res["src_ports"])) == len(res["src_ports"]), \
        f"datagrams did not use {n} source ports: {res['src_ports']}"
    exact_share(res, ports, n, f"NAT{nat} UDP datagrams")
    return (f"{n}/{n} datagrams to {endpoint(vip, UDP_PORT)} answered from the VIP "
            f"({res['retries']} retries), {fmt_counts(res['ports'])}")


def scenario_d_drops(env, totals):
    c0, c1 = env.drops_at_start, counters(env)
    moved = {k[5:]: c1[k] - c0[k] for k in c1
             if k.startswith("drop:") and k not in HARMLESS_DROPS and c1[k] != c0[k]}
    assert not moved, f"rondo dropped packets during the scenarios: {moved}"
    return (f"no drops during a-c but the hosts' IPv6 chatter (all since start: "
            f"{drops_text(c1)})")


SCENARIOS = [
    (f"{key}{nat}", f"NAT{nat} {title}", lambda env, totals, fn=fn, nat=nat: fn(nat, env, totals))
    for nat in NAT
    for key, title, fn in (("a", "sequential round robin", sequential),
                           ("b", "concurrent connections", concurrent),
                           ("c", "udp", udp))
] + [("d", "no unexpected drops", scenario_d_drops)]

if __name__ == "__main__":
    sys.exit(harness.run("nat46", __file__, SCENARIOS, setup))
