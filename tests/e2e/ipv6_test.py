#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""End-to-end IPv6 (issue 9): the seed scenario over v6, dual stack, ICMPv6 echo and NDP.

Topology: tools/lib/topo.sh up TAG --v6 (harness.py, env.v6): the client 198.51.100.2 and
2001:db8:100::2, the backends 198.51.100.3 and 2001:db8:100::3 (Node.js, listening on ::),
rondo on dp0 with no IPv6 in the lb namespace's kernel. One dataplane (one worker, so round
robin is exact per VIP) and one control plane serve, at once:
  web   203.0.113.10:80/tcp   -> 198.51.100.3:3000-3003
  dns   203.0.113.10:53/udp   -> 198.51.100.3:4000-4003
  web6  [2001:db8::10]:80/tcp -> [2001:db8:100::3]:3000-3003
  dns6  [2001:db8::10]:53/udp -> [2001:db8:100::3]:4000-4003
full-NAT from 198.51.100.100 and 2001:db8:100::100. No static neighbours and no routes:
everything is on-link, so rondo answers the client's neighbour solicitations for the v6 VIP
and solicits the backend's address itself.

Setup first proves the topology without rondo (the client's ICMPv6 echo to the backend's
address is answered by the backend's kernel), so that a failure later is rondo's.

Scenarios, in order:
  a. 400 sequential connections to [2001:db8::10]:80: exactly 100 per backend, strict rotation
  b. 50 concurrent v6 connections (all open at once): all answered, 12 or 13 per backend
  c. a v6 keep-alive connection stays on its backend while 40 others come and go
  d. 20 UDP datagrams to [2001:db8::10]:53 from 20 source ports: 5 per backend :4000-4003
  e. dual stack: 100 v4 and 100 v6 connections at the same time, 25 per backend for each
     VIP; the dataplane counted each of them on its VIP's backend
  f. ICMPv6 echo to the VIP and to the local ip6 answered (a raw socket: there is no ping
     binary); NDP worked: the client's neighbour entry for the VIP is dp0's MAC, the
     dataplane counted its advertisements (ndp_adverts) and solicitations (ndp_solicits),
     and dropped nothing as malformed_*, ndp_invalid or unsupported_l3 (kernel MLD reports
     show as ndp_ignored: allowed, reported)
  g. `rondoctl flow list` shows the v6 flows (by VIP, by client), `flow show` by key
  h. health checks over IPv6 (from br0's 2001:db8:100::1): a listening backend up, a closed
     port down

Needs root (exit 77 = skipped otherwise). Env: RONDO_BUILD (build dir), RONDO_SRC
(source dir). Everything it creates is removed at the end (see harness.py).
"""

import json
import os
import socket
import struct
import subprocess
import sys
import time
from collections import Counter

import harness
from harness import (BACKEND_IP6, CLIENT_IP6, HTTP_BACKENDS, HTTP_PORT, LOCAL_IP, LOCAL_IP6,
                     SEED_VIPS, UDP_BACKENDS, UDP_PORT, VIP, VIP6, check_balanced, check_no_errors,
                     endpoint, fmt_counts, reuse_note)

V6_VIPS = [
    {"name": "web6", "address": VIP6, "port": HTTP_PORT, "protocol": "tcp",
     "backends": [(BACKEND_IP6, p) for p in HTTP_BACKENDS]},
    {"name": "dns6", "address": VIP6, "port": UDP_PORT, "protocol": "udp",
     "backends": [(BACKEND_IP6, p) for p in UDP_BACKENDS]},
    # Health checks over IPv6 (from br0's 2001:db8:100::1): a backend that listens and one
    # that does not (nothing on 3009).
    {"name": "hc6", "address": VIP6, "port": 8081, "protocol": "tcp",
     "health_check": {"type": "tcp", "interval_ms": 200, "timeout_ms": 100, "rise": 1,
                      "fall": 1},
     "backends": [(BACKEND_IP6, HTTP_BACKENDS[0]), (BACKEND_IP6, 3009)]},
]
HC_DEADLINE_S = 20

ICMP6_ECHO_REQUEST = 128
ICMP6_ECHO_REPLY = 129


# --------------------------------------------------------------------------------------
# Client side (inside a namespace).
# --------------------------------------------------------------------------------------

def client_echo6(args):
    """ICMPv6 echo requests to --dst, one at a time (each tried up to 3 times, 1 s apart);
    a reply counts if it comes from --dst with our identifier, the sequence number and the
    payload sent. The kernel fills in the request's checksum (IPPROTO_ICMPV6 raw sockets
    always do) and drops replies whose checksum does not verify."""
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    ident = os.getpid() & 0xffff
    replies, retries, errors = 0, 0, []
    for seq in range(args.count):
        payload = f"rondo ipv6 e2e {seq} {os.getpid()}".encode()
        req = struct.pack("!BBHHH", ICMP6_ECHO_REQUEST, 0, 0, ident, seq) + payload
        for attempt in range(3):
            s.sendto(req, (args.dst, 0))
            got = None
            end = time.monotonic() + 1.0
            while got is None and time.monotonic() < end:
                s.settimeout(max(0.01, end - time.monotonic()))
                try:
                    data, peer = s.recvfrom(2048)
                except socket.timeout:
                    break
                if len(data) < 8:
                    continue
                typ, code, _, rid, rseq = struct.unpack("!BBHHH", data[:8])
                # Other ICMPv6 (neighbour discovery, other pings) reaches a raw socket too.
                if typ != ICMP6_ECHO_REPLY or rid != ident or rseq != seq:
                    continue
                got = (peer[0], code, data[8:])
            if got is None:
                retries += 1
                continue
            src, code, body = got
            if src != args.dst:
                errors.append(f"echo {seq}: reply from {src}, not {args.dst}")
            elif code != 0 or body != payload:
                errors.append(f"echo {seq}: code {code}, payload {body!r}, sent {payload!r}")
            else:
                replies += 1
            break
        else:
            errors.append(f"echo {seq}: no reply after 3 tries")
    s.close()
    return {"replies": replies, "retries": retries, "errors": errors}


def _args_echo6(p):
    p.add_argument("--dst", required=True)
    p.add_argument("--count", type=int, default=5)


CLIENT_MODES = {"echo6": (client_echo6, _args_echo6)}


# --------------------------------------------------------------------------------------
# Test side.
# --------------------------------------------------------------------------------------

def counters(env):
    """rondo-dpstat's lcore counters summed over the lcores; drops as "drop:<reason>"."""
    c = Counter()
    for lc in env.dpstat_json().get("lcores", []):
        for k, v in lc.items():
            if isinstance(v, (int, float)) and k != "lcore":
                c[k] += int(v)
        for k, v in lc.get("drops", {}).items():
            c["drop:" + k] += int(v)
    return c


def drops_text(c):
    return " ".join(f"{k[5:]}={v}" for k, v in sorted(c.items())
                    if k.startswith("drop:") and v) or "none"


def client_neigh(env, addr):
    """The client kernel's neighbour entry for addr: (lladdr or None, state words)."""
    r = subprocess.run(["ip", "-n", env.ns_cl, "-6", "neigh", "show", addr],
                       capture_output=True, text=True, timeout=10)
    parts = r.stdout.split()
    mac = parts[parts.index("lladdr") + 1] if "lladdr" in parts else None
    return mac, r.stdout.strip()


def dp0_mac(env):
    r = subprocess.run(["ip", "-n", env.ns_lb, "-j", "link", "show", "dp0"],
                       capture_output=True, text=True, timeout=10, check=True)
    return json.loads(r.stdout)[0]["address"]


def why_no_v6(env):
    """What the dataplane and the client saw, when the v6 VIP does not answer."""
    try:
        c = counters(env)
        seen = f"dataplane drops: {drops_text(c)}; ndp_adverts={c['ndp_adverts']}"
        if c["drop:unsupported_l3"]:
            seen += (f" (unsupported_l3 {c['drop:unsupported_l3']}: this dataplane does not "
                     f"parse IPv6)")
    except Exception as e:  # the dataplane is gone: its log is shown at the end
        seen = f"rondo-dpstat failed: {e}"
    _, neigh = client_neigh(env, VIP6)
    return f"{seen}; the client's neighbour entry for {VIP6}: {neigh or 'none'}"


def setup(env):
    env.v6 = True
    env.topology_up()
    # The topology alone: the client reaches the backends' v6 address through br0.
    echo = env.in_client("echo6", "--dst", BACKEND_IP6, "--count", 1, timeout=30)
    if echo["replies"] != 1:
        raise AssertionError(f"topology: no ICMPv6 echo reply from {BACKEND_IP6} to the client "
                             f"(without rondo): {'; '.join(echo['errors'])}")
    env.start_backends()
    env.start_dataplane()
    env.write_config(SEED_VIPS + V6_VIPS, local_ips=(LOCAL_IP, LOCAL_IP6))
    harness.log("control plane")
    env.start_controlplane()
    env.wait_vip()
    try:
        env.wait_vip(VIP6)
    except AssertionError as e:
        raise AssertionError(f"{e}; {why_no_v6(env)}") from None


def v6(*args):
    """A client mode's arguments, aimed at the v6 VIP."""
    return (*args, "--vip", VIP6)


def scenario_a_sequential(env, totals):
    res = env.in_client(*v6("seq", "--count", 400))
    check_no_errors(res, "sequential v6 connections")
    note = reuse_note(env, res, totals)
    order = res["ports"]
    c = Counter(order)
    assert len(order) == 400, f"{len(order)} answers for 400 connections"
    assert all(c[p] == 100 for p in HTTP_BACKENDS) and len(c) == 4, \
        f"round robin is not exact: {fmt_counts(order)} (want 100 each){note}"
    bad = [i for i in range(1, len(order))
           if HTTP_BACKENDS.index(order[i]) != (HTTP_BACKENDS.index(order[i - 1]) + 1) % 4]
    assert not bad, (f"rotation broken at connection {bad[0]}: "
                     f"{order[max(0, bad[0] - 4):bad[0] + 4]}{note}")
    return (f"400/400 connections to {endpoint(VIP6, HTTP_PORT)} answered, {fmt_counts(order)}, "
            f"strict rotation{note}")


def scenario_b_concurrent(env, totals):
    res = env.in_client(*v6("concurrent", "--count", 50))
    check_no_errors(res, "concurrent v6 connections")
    note = reuse_note(env, res, totals)
    assert res["open_at_once"] == 50, f"only {res['open_at_once']} of 50 connections opened"
    assert len(res["ports"]) == 50, f"{len(res['ports'])} answers for 50 connections"
    spread = check_balanced(res["ports"], HTTP_BACKENDS, "50 concurrent v6 connections", 1, note)
    return (f"50/50 concurrent v6 connections (all open at once) answered, "
            f"{fmt_counts(res['ports'])} (spread {spread}){note}")


def scenario_c_keepalive(env, totals):
    short, every = 40, 10
    res = env.in_client(*v6("longlived", "--short", short, "--every", every, "--slow-ms", 1500))
    check_no_errors(res, "v6 keep-alive scenario")
    note = reuse_note(env, res, totals)
    ka = res["ka_ports"]
    want = 2 + short // every  # before, one every `every` short connections, after
    assert len(ka) == want, f"{len(ka)} answers on the keep-alive connection, want {want}"
    assert len(set(ka)) == 1, f"keep-alive connection moved between backends: {ka}"
    assert len(res["short_ports"]) == short, f"{len(res['short_ports'])} answers for {short} short"
    check_balanced(res["short_ports"], HTTP_BACKENDS, f"{short} short v6 connections", 0, note)
    assert res["slow_port"] in HTTP_BACKENDS, f"/slow request answered by {res['slow_port']}"
    return (f"keep-alive v6 connection: {want}/{want} requests all on :{ka[0]}; /slow held 1.5s "
            f"on :{res['slow_port']}; {short} short {fmt_counts(res['short_ports'])}{note}")


def scenario_d_udp(env, totals):
    res = env.in_client(*v6("udp", "--count", 20))
    check_no_errors(res, "v6 UDP datagrams")
    c = Counter(res["ports"])
    assert len(res["ports"]) == 20, f"{len(res['ports'])} UDP answers for 20 datagrams"
    assert len(set(res["src_ports"])) == 20, "datagrams did not use 20 source ports"
    assert all(c[p] == 5 for p in UDP_BACKENDS) and len(c) == 4, \
        f"20 v6 UDP flows not 5 per backend: {fmt_counts(res['ports'])}"
    return (f"20/20 datagrams to {endpoint(VIP6, UDP_PORT)} from 20 source ports answered "
            f"({res['retries']} retries), {fmt_counts(res['ports'])}")


def vip_connections(env, name):
    """{backend port: connections the dataplane counted} of one vip (ids from rondoctl)."""
    vip = next(v for v in env.rondoctl_json("show")["vips"] if v["name"] == name)
    ids = {int(b["id"]): int(b["port"]) for b in vip["backends"]}
    return {ids[int(b["id"])]: int(b["connections"])
            for b in env.dpstat_json().get("backends", []) if int(b["id"]) in ids}


def scenario_e_dual_stack(env, totals):
    n = 100
    before = {name: vip_connections(env, name) for name in ("web", "web6")}
    clients = {fam: env.client_popen("seq", "--count", n, "--vip", vip)
               for fam, vip in (("v4", VIP), ("v6", VIP6))}
    res = {}
    for fam, p in clients.items():
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, f"{fam} client exited {p.returncode}: {err.strip()}"
        # (no reuse note: the two clients run at once and share source port numbers, each
        # towards its own VIP, which is no reuse of a 5-tuple)
        res[fam] = env.note_connects(json.loads(out))
    for fam, r in res.items():
        check_no_errors(r, f"{fam} connections (dual stack)")
        c = Counter(r["ports"])
        assert len(r["ports"]) == n and all(c[p] == n // 4 for p in HTTP_BACKENDS), \
            (f"{fam}: {len(r['ports'])}/{n} answered, {fmt_counts(r['ports'])} "
             f"(want {n // 4} each)")
    counted = {}
    for name in ("web", "web6"):
        after = vip_connections(env, name)
        counted[name] = {p: after.get(p, 0) - before[name].get(p, 0) for p in HTTP_BACKENDS}
    shown = "; ".join(f"{name}: " + " ".join(f":{p}={d}" for p, d in sorted(per.items()))
                      for name, per in counted.items())
    # Every client connection is a new flow on its own VIP's backend, none on the other's.
    assert all(d == n // 4 for per in counted.values() for d in per.values()), \
        f"the dataplane counted {shown}, want {n // 4} on each backend of each vip"
    return (f"{n} v4 and {n} v6 connections at once: v4 {fmt_counts(res['v4']['ports'])}, "
            f"v6 {fmt_counts(res['v6']['ports'])}; dataplane counted {shown}")


def scenario_g_flow_list(env, totals):
    """`rondoctl flow list` and `flow show` reach the v6 flow table: 4 fresh UDP flows."""
    res = env.in_client(*v6("udp", "--count", 4))
    check_no_errors(res, "v6 UDP datagrams for flow list")
    listed = env.rondoctl_json("flow", "list", "--vip", "dns6", "--limit", 100000)["flows"]
    assert listed, "flow list --vip dns6 found no flow (the v6 table is not walked?)"
    f = listed[0]
    assert f["client"].startswith(f"[{CLIENT_IP6}]:") and \
        f["backend"].startswith(f"[{BACKEND_IP6}]:") and \
        f["local"].startswith(f"[{LOCAL_IP6}]:") and f["vip_name"] == "dns6", f"flow list: {f}"
    by_client = env.rondoctl_json("flow", "list", "--client", CLIENT_IP6, "--limit", 100000)["flows"]
    assert len(by_client) >= len(listed), \
        f"flow list --client {CLIENT_IP6}: {len(by_client)} flows, --vip dns6 {len(listed)}"
    key = [f["client"], f"[{VIP6}]:{UDP_PORT}/udp"]
    shown = env.rondoctl_json("flow", "show", *key)["flows"]
    assert len(shown) == 1 and shown[0]["backend"] == f["backend"], \
        f"flow show {' '.join(key)}: {shown}"
    return (f"flow list --vip dns6: {len(listed)} v6 flows ({f['client']} -> {f['backend']} via "
            f"{f['local']}, {f['state']}); --client {CLIENT_IP6}: {len(by_client)}; flow show "
            f"by its key finds it")


def scenario_f_icmp6_ndp(env, totals):
    answered = {}
    for dst in (VIP6, LOCAL_IP6):
        r = env.in_client("echo6", "--dst", dst, "--count", 5, timeout=60)
        answered[dst] = r
    failed = [f"{dst}: {r['replies']}/5 ({'; '.join(r['errors'][:3])})"
              for dst, r in answered.items() if r["replies"] != 5]
    assert not failed, "ICMPv6 echo not answered: " + ", ".join(failed)
    mac, neigh = client_neigh(env, VIP6)
    want_mac = dp0_mac(env)
    assert mac == want_mac, (f"the client's neighbour entry for {VIP6} is {neigh or 'missing'}, "
                             f"want lladdr {want_mac} (dp0, rondo's port)")
    c = counters(env)
    # The client solicited the VIP (rondo advertised), and rondo, with no static neighbour
    # for 2001:db8:100::3, solicited the backend before its first v6 flow could leave.
    assert c["ndp_adverts"] > 0, f"ndp_adverts is 0: rondo advertised nothing ({drops_text(c)})"
    assert c["ndp_solicits"] > 0, "ndp_solicits is 0: rondo never solicited the backend"
    bad = {k[5:]: v for k, v in c.items() if v and (
        k.startswith("drop:malformed_") or k in ("drop:ndp_invalid", "drop:unsupported_l3"))}
    assert not bad, f"drops that kernel v6 traffic must not cause: {bad} (all: {drops_text(c)})"
    retries = sum(r["retries"] for r in answered.values())
    return (f"5/5 echo replies from {VIP6} and from {LOCAL_IP6} ({retries} retries); client's "
            f"neighbour {VIP6} = {mac} (dp0); ndp_adverts={c['ndp_adverts']} "
            f"ndp_solicits={c['ndp_solicits']}; ndp_ignored={c['drop:ndp_ignored']} "
            f"ndp_not_for_us={c['drop:ndp_not_for_us']} (kernel MLD/NS, allowed); "
            f"drops: {drops_text(c)}")


def scenario_h_health6(env, totals):
    def seen():
        h = {}
        for v in env.rondoctl_json("show")["vips"]:
            if v["name"] == "hc6":
                h = {b["port"]: b["health"] for b in v["backends"]}
        return h if h == {HTTP_BACKENDS[0]: "up", 3009: "down"} else None
    h = harness.wait_until("hc6's backends checked over IPv6", HC_DEADLINE_S, seen,
                           interval=0.2, alive=[("controlplane", env.procs["controlplane"])])
    return f"hc6 over IPv6: {h}"


SCENARIOS = [
    ("a", "v6 sequential round robin", scenario_a_sequential),
    ("b", "v6 concurrent connections", scenario_b_concurrent),
    ("c", "v6 keep-alive connection", scenario_c_keepalive),
    ("d", "v6 udp", scenario_d_udp),
    ("e", "dual stack", scenario_e_dual_stack),
    ("g", "rondoctl flow list of v6 flows", scenario_g_flow_list),
    ("f", "ICMPv6 echo and NDP", scenario_f_icmp6_ndp),
    ("h", "health checks over IPv6", scenario_h_health6),
]
# In order: (f) reads counters after everything else ran.

if __name__ == "__main__":
    sys.exit(harness.run("ipv6", __file__, SCENARIOS, setup, client_modes=CLIENT_MODES))
