#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""End-to-end: direct server return (issue 10). rondo sends the client's packets to Linux
backends in the ipip, gue and l2dsr modes; the backends have the VIPs on lo and answer the
client themselves, over a link rondo is not on.

Namespaces rd-TAG-{cl,lb,b1,b2,b3} (one topology for every scenario; the harness's topo.sh
is not used):

  cl (client)                     lb (the rondo host)                 bN (backend N = 1, 2, 3)
  eth0 198.51.100.2/24 ── clp ─┐                                  ┌─ bNp ── eth0 198.51.100.1N/24
  203.0.113.0/24 dev eth0      ├─ br0 198.51.100.1/24 ─ dp0p ─ dp0 │     tc ingress: rondo-decap
                               └──────────────────────────────────┘     lo: 203.0.113.9-15 (VIPs)
  ret (bridge) 10.9.0.1/24 ── rN ───────────────────────────────────────── ret 10.9.0.1N/24
                                                                 198.51.100.2/32 via 10.9.0.1

The client reaches the VIPs on-link on eth0: rondo answers ARP for them (the backends,
arp_ignore=1 and arp_announce=2, do not), and its dataplane (net_af_packet on dp0, idle
backoff) sends each packet to a backend on the br0 segment: ipip and gue in an outer IPv4
(+ UDP 6080 + GUE) header to 198.51.100.1N, which rondo-decap strips at the backend's tc
ingress (this kernel has neither the ipip nor the fou module); l2dsr unchanged but for the
destination MAC, the backend's (ARP-resolved). Each backend answers from the VIP over its
route to the client, through `ret`, which does not touch the lb namespace (rp_filter off on
both ends: the paths are asymmetric). So rondo's port counts only the client's direction,
and the client gets its answers on ret and nothing but ARP on eth0: every DSR scenario
checks both, against the client's interface counters. A full-NAT VIP over the same
backends is the control: there the same counters see the answers pass through rondo.

Backends: Node.js (tools/lib/backend.js) on :80 (tcp, any address) and 203.0.113.10:53
(udp), each saying its number N (--id 1N), as in DSR a backend's port is the VIP's port.

  a. full-NAT control (50 connections): the answers come back through rondo (its port and
     the client's eth0 count them)
  b-d. ipip, gue, l2dsr: a VIP added with `rondoctl vip add --mode M` over the three
     backends, round robin; curl gets an answer, then 400 sequential connections go
     134/133/133 in strict rotation, as rondo counted them per backend (rondoctl show);
     rondo's port received what the client sent on eth0 and sent it on, all of it
     encapsulated as the mode says (rondo-decap's ipip or gue count; l2dsr: neither), and
     the answers all came over ret (l2dsr: the client's ARP entry for the VIP is rondo's)
  e. wrr on a gue VIP, weights 3:1 over two backends: 400 connections give 300:100
  f. udp on an ipip VIP (:53): 30 datagrams from 30 source ports, 10 per backend, each
     answered from the VIP's address and port, over ret
  g. on_all_down: two ipip VIPs from the config file whose health check (tcp :9, where
     nothing listens) fails on every backend: `drop` answers no connection and counts
     no_backend drops; `open` serves 30 connections over the down backends, counted as
     fail_open_flows, their answers over ret
  h-k. IPv6 backends (docs/modes.md): ipip with an IPv6 VIP (IPv6 in IPv6), gue with an IPv6
     VIP (UDP/IPv6, checksummed), ipip with an IPv4 VIP (IPv4 in IPv6), l2dsr with an IPv6
     VIP (the backend's MAC by NDP): V6_CONNS connections each in strict rotation, rondo-decap
     counting the outer-IPv6 decapsulations (decap_ipip6_out6, decap_gue_out6,
     decap_ipip_out6; l2dsr none), the answers over ret, rondo's port seeing one direction
  l. packet too big: a 64 KB POST to an ipip VIP with IPv6 backends: the client's full-size
     segments (1500 bytes) do not fit once encapsulated (1540), rondo answers ICMPv6
     packet-too-big with 1460 (counted encap_too_big), the client's kernel lowers its path
     MTU to the VIP to 1460 and the POST completes

IPv6 (for h-k): the client's eth0 2001:db8:100::2/64 with the v6 VIPs 2001:db8::/64 on-link
(rondo answers their neighbour solicitations), each backend's eth0 2001:db8:100::N/64 (rondo
solicits it), its ret 2001:db8:9::N/64 and the route to the client over ret, the v6 VIPs on
every backend's lo; br0 without multicast snooping (rondo sends no MLD reports). The lb
namespace's kernel keeps IPv6 off; rondo's v6 local ip is 2001:db8:100::100.

Needs root (exit 77 = skipped otherwise). Env: RONDO_BUILD, RONDO_SRC (harness.py).
Everything it makes (namespaces with their links, tc filters and processes, the temp dir,
DPDK's files) goes at the end, also on failure (harness.Env.stop).
"""

import json
import os
import re
import subprocess
import sys
from collections import Counter

import harness
from harness import check_no_errors, fmt_counts, wait_until

CLIENT = "198.51.100.2"
LB_IP = "198.51.100.1"
LOCAL_IP = "198.51.100.100"  # rondo's full-NAT source (and the outer source of ipip/gue)
BACKENDS = [11, 12, 13]      # backend N: 198.51.100.N on br0, 10.9.0.N on ret; says ":N"
RET_IP = "10.9.0.1"          # the client's end of the return path
PORT = 80
UDP_PORT = harness.UDP_PORT  # 53: the harness's udp client mode sends there
GUE_PORT = 6080
CONNS = 400                  # per mode (the count; ~0.5 s each here)
# VIP addresses (all on every backend's lo; port 80, udp 53 on ipip's).
V_FULL, V_IPIP, V_GUE, V_L2, V_WRR, V_DROP, V_OPEN = (f"203.0.113.{i}" for i in range(9, 16))
# IPv6 (h-k): the client, rondo's v6 local ip (the outer source), the return link, the VIPs.
CLIENT6 = "2001:db8:100::2"
LOCAL_IP6 = "2001:db8:100::100"
RET_IP6 = "2001:db8:9::1"
V6_IPIP, V6_GUE, V6_L2 = (f"2001:db8::{i}" for i in (11, 12, 13))
V_IPIP46 = "203.0.113.16"    # an IPv4 VIP over IPv6 backends (ipip: IPv4 in IPv6)
V6_PMTU = "2001:db8::14"     # l: an ipip VIP that gets segments too big to encapsulate
V6_CONNS = 60                # per v6 scenario: 20 per backend
# Packets that may cross rondo's port or the client's eth0 besides the client's own
# (ARP requests and replies, a late FIN or ACK of the connection before the count).
SLACK = 20


def be_ip(n):
    return f"198.51.100.{n}"


def be_ip6(n):
    return f"2001:db8:100::{n}"


# ---- topology ----

def sh(*args):
    r = subprocess.run(list(map(str, args)), capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))}: {(r.stderr or r.stdout).strip()}")
    return r.stdout


def ns_sysctl(ns, *kv):
    sh("ip", "netns", "exec", ns, "sysctl", "-qw", *kv)


def bridge(ns, name, addr, addr6=None):
    # No multicast snooping: rondo sends no MLD reports, and a snooping bridge that has seen
    # the kernels' could stop flooding solicited-node groups to rondo's port.
    sh("ip", "-n", ns, "link", "add", name, "type", "bridge", "stp_state", 0, "forward_delay", 0,
       "mcast_snooping", 0)
    sh("ip", "-n", ns, "addr", "add", addr, "dev", name)
    if addr6:
        sh("ip", "-n", ns, "addr", "add", addr6, "dev", name, "nodad")
    sh("ip", "-n", ns, "link", "set", name, "up")


def veth(ns_a, a, ns_b, b, addr_b=None, master_a=None, addr6_b=None):
    """A veth pair a (in ns_a, enslaved to bridge master_a) -- b (in ns_b, addr_b), up,
    offloads off (an af_packet reader must not see partial checksums or GSO frames)."""
    sh("ip", "-n", ns_a, "link", "add", a, "type", "veth", "peer", "name", b, "netns", ns_b)
    for ns, dev in ((ns_a, a), (ns_b, b)):
        sh("ip", "netns", "exec", ns, "ethtool", "-K", dev, "tx", "off", "rx", "off", "tso", "off",
           "gso", "off", "gro", "off")
    if master_a:
        sh("ip", "-n", ns_a, "link", "set", a, "master", master_a)
    if addr_b:
        sh("ip", "-n", ns_b, "addr", "add", addr_b, "dev", b)
    if addr6_b:
        sh("ip", "-n", ns_b, "addr", "add", addr6_b, "dev", b, "nodad")
    sh("ip", "-n", ns_a, "link", "set", a, "up")
    sh("ip", "-n", ns_b, "link", "set", b, "up")


def find_decap(env):
    for root, _, files in os.walk(env.build):
        if "rondo-decap" in files and os.access(os.path.join(root, "rondo-decap"), os.X_OK):
            return os.path.join(root, "rondo-decap")
    raise AssertionError(f"no rondo-decap under {env.build}")


def setup(env):
    t = env.tag
    env.ns_lb, env.ns_cl = f"rd-{t}-lb", f"rd-{t}-cl"
    env.ns_b = {n: f"rd-{t}-b{i + 1}" for i, n in enumerate(BACKENDS)}
    env.ns_be = env.ns_b[BACKENDS[0]]
    env.extra_namespaces = [env.ns_cl, *env.ns_b.values(), env.ns_lb]
    for ns in env.extra_namespaces:
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        # The paths are asymmetric by design: no reverse-path filter anywhere. IPv6 only on
        # the client and the backends (h-k), quiet: no router solicitations, no DAD.
        ns_sysctl(ns, "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0")
        if ns == env.ns_lb:
            ns_sysctl(ns, "net.ipv6.conf.all.disable_ipv6=1",
                      "net.ipv6.conf.default.disable_ipv6=1")
        else:
            for conf in ("all", "default", "lo"):
                ns_sysctl(ns, f"net.ipv6.conf.{conf}.accept_ra=0",
                          f"net.ipv6.conf.{conf}.router_solicitations=0",
                          f"net.ipv6.conf.{conf}.accept_dad=0",
                          f"net.ipv6.conf.{conf}.disable_ipv6=0")
    harness.log(f"topology: client {env.ns_cl}, rondo host {env.ns_lb}, backends "
                f"{' '.join(env.ns_b.values())}")
    lb, cl = env.ns_lb, env.ns_cl
    bridge(lb, "br0", f"{LB_IP}/24")
    veth(lb, "dp0p", lb, "dp0", master_a="br0")
    veth(lb, "clp", cl, "eth0", f"{CLIENT}/24", master_a="br0", addr6_b=f"{CLIENT6}/64")
    sh("ip", "-n", cl, "route", "add", "203.0.113.0/24", "dev", "eth0")
    sh("ip", "-n", cl, "-6", "route", "add", "2001:db8::/64", "dev", "eth0")
    bridge(cl, "ret", f"{RET_IP}/24", f"{RET_IP6}/64")
    vips = [V_FULL, V_IPIP, V_GUE, V_L2, V_WRR, V_DROP, V_OPEN, V_IPIP46]
    for i, (n, ns) in enumerate(env.ns_b.items()):
        # arp_ignore=1: answer ARP only for addresses on the interface asked (not the VIPs
        # on lo); arp_announce=2: never use a VIP as the source of an ARP request.
        ns_sysctl(ns, "net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2")
        veth(lb, f"b{i + 1}p", ns, "eth0", f"{be_ip(n)}/24", master_a="br0",
             addr6_b=f"{be_ip6(n)}/64")
        veth(cl, f"r{i + 1}", ns, "ret", f"10.9.0.{n}/24", master_a="ret",
             addr6_b=f"2001:db8:9::{n}/64")
        for v in vips:
            sh("ip", "-n", ns, "addr", "add", f"{v}/32", "dev", "lo")
        for v in (V6_IPIP, V6_GUE, V6_L2, V6_PMTU):
            sh("ip", "-n", ns, "addr", "add", f"{v}/128", "dev", "lo")
        # Answers to the client leave over ret.
        sh("ip", "-n", ns, "route", "add", f"{CLIENT}/32", "via", RET_IP, "dev", "ret")
        sh("ip", "-n", ns, "-6", "route", "add", f"{CLIENT6}/128", "via", RET_IP6, "dev", "ret")
    # Backends, then the decapsulation on each one's eth0.
    harness.log(f"backends: {' '.join(f'{be_ip(n)}:{PORT}' for n in BACKENDS)} "
                f"(tcp :{PORT}, udp :{UDP_PORT}), each saying its number")
    # tcp on 0.0.0.0 (a connection answers from the VIP it was made to); udp bound to its VIP,
    # as docs/modes.md says (a socket on 0.0.0.0 would answer from the route's source).
    for n, ns in env.ns_b.items():
        js = [env.node, env.backend_js, "--id", str(n)]
        env.spawn(f"backend-{n}", ns, [*js, "--http-port", str(PORT)])
        env.spawn(f"backend-{n}-udp", ns, [*js, "--udp-port", str(UDP_PORT), "--host", V_IPIP])
    for n, ns in env.ns_b.items():
        wait_until(f"backend {n} to listen", 15,
                   lambda: env.ns_has_listener("tcp", PORT, ns) and
                   env.ns_has_listener("udp", UDP_PORT, ns),
                   alive=[(name, env.procs[name]) for name in (f"backend-{n}", f"backend-{n}-udp")])
    env.decap = find_decap(env)
    for ns in env.ns_b.values():
        sh("ip", "netns", "exec", ns, env.decap, "attach", "eth0", "--gue-port", GUE_PORT)
    env.start_dataplane()
    env.write_config(config(), local_ips=(LOCAL_IP, LOCAL_IP6))  # (checked: --check)
    harness.log("control plane")
    env.start_controlplane()
    wait_until("the control plane to be in sync with the dataplane", 20, lambda: in_sync(env),
               alive=[("controlplane", env.procs["controlplane"])])


def in_sync(env):
    r = env.rondoctl("--json", "status")
    return r.returncode == 0 and json.loads(r.stdout)["status"]["in_sync"]


def config():
    """The config file's VIPs: those of scenario g (health checks are config-only); every
    other VIP comes with rondoctl in its scenario."""
    health = {"type": "tcp", "port": 9, "interval_ms": 200, "timeout_ms": 100, "rise": 1,
              "fall": 1}
    return [{"name": f"down-{on}", "address": vip, "port": PORT, "mode": "ipip",
             "on_all_down": on, "health_check": health,
             "backends": [(be_ip(n), PORT) for n in BACKENDS]}
            for on, vip in (("drop", V_DROP), ("open", V_OPEN))]


# ---- measurements ----

def link_packets(env, ns):
    """{ifname: (rx packets, tx packets)} of namespace ns."""
    links = json.loads(sh("ip", "-n", ns, "-s", "-j", "link", "show"))
    return {l["ifname"]: (l["stats64"]["rx"]["packets"], l["stats64"]["tx"]["packets"])
            for l in links}


def lcore_sum(stats, name):
    return sum(int(lc.get(name, 0)) for lc in stats["lcores"])


def drop_sum(stats, reason):
    return sum(int(lc["drops"].get(reason, 0)) for lc in stats["lcores"])


def decap_stats(env, ns):
    """rondo-decap stats eth0 in namespace ns: {counter: value}."""
    out = sh("ip", "netns", "exec", ns, env.decap, "stats", "eth0")
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", out, re.M)}


def snapshot(env):
    st = env.dpstat_json()
    cl = link_packets(env, env.ns_cl)
    port = st["ports"][0]
    snap = {"dp_rx": int(port["ipackets"]), "dp_tx": int(port["opackets"]),
            "eth0_rx": cl["eth0"][0], "eth0_tx": cl["eth0"][1], "ret_rx": cl["ret"][0]}
    for kind in DECAP_KINDS:
        snap[kind] = 0
    for ns in env.ns_b.values():
        d = decap_stats(env, ns)
        for kind in DECAP_KINDS:
            snap[kind] += d[kind]
    return snap


# rondo-decap's counters of what it stripped: ipip and gue under IPv4, and under IPv6 (IPv6
# in IPv6, IPv4 in IPv6, GUE over IPv6).
DECAP_KINDS = ("decap_ipip", "decap_gue", "decap_ipip6_out6", "decap_ipip_out6", "decap_gue_out6")


def paths(before, after, mode, answers, decap=None):
    """Check which way the packets to a `mode` VIP and the at least `answers` packets back
    went, and how they reached the backends (what rondo-decap stripped: its counter `decap`,
    by default decap_ipip or decap_gue for those modes); return the summary."""
    d = {k: after[k] - before[k] for k in before}
    decap = decap or (f"decap_{mode}" if mode in ("ipip", "gue") else None)
    text = (f"client eth0 sent {d['eth0_tx']}, rondo's port received {d['dp_rx']} and sent "
            f"{d['dp_tx']}; the client received {d['eth0_rx']} on eth0, {d['ret_rx']} on ret; "
            f"the backends decapsulated " +
            ", ".join(f"{d[k]} {k[len('decap_'):]}" for k in DECAP_KINDS))
    # Every packet rondo sent (but its ARP/NDP) was encapsulated as the mode says, or not at all.
    for kind in DECAP_KINDS:
        n = d[kind]
        assert (abs(n - d["dp_tx"]) <= SLACK if kind == decap else n == 0), \
            f"{mode} VIP, {n} packets counted {kind}: {text}"
    if mode != "fullnat":
        assert d["dp_rx"] <= d["eth0_tx"] + SLACK and d["eth0_rx"] <= SLACK, \
            f"answers went through rondo: {text}"
        assert abs(d["dp_tx"] - d["dp_rx"]) <= SLACK, f"rondo did not pass on what it got: {text}"
        assert d["ret_rx"] >= answers, f"fewer than {answers} answers over ret: {text}"
    else:
        assert d["dp_rx"] >= d["eth0_tx"] + answers and d["eth0_rx"] >= answers, \
            f"full-NAT answers did not come back through rondo: {text}"
    return text


def backend_rows(env, vip):
    return env.rondoctl_json("show", vip)["vips"][0]["backends"]


def counted(env, vip, want):
    """Wait until rondo's per-backend new-connection counts for `vip` (rondoctl show, as
    the control plane last polled them) are `want` ({backend number: count})."""
    def got():
        rows = backend_rows(env, vip)
        return {int(r["address"].rsplit(".", 1)[1]): int(r["connections"] or 0) for r in rows}
    try:
        return wait_until(f"rondo's counts for {vip} to be {want}", 10, lambda: got() == want)
    except AssertionError:
        raise AssertionError(f"rondo counted {got()} new connections per backend for {vip}, "
                             f"the backends answered {want}")


def add_vip(env, name, vip, mode, backends=BACKENDS, weights=None, sched=None, proto="tcp"):
    """rondoctl vip add (--mode unless None: full-NAT) and backend add; for tcp, wait until
    curl gets an answer through it and return the backend that answered."""
    port = PORT if proto == "tcp" else UDP_PORT
    env.rondoctl_ok("vip", "add", name, f"{vip}:{port}", "--proto", proto,
                    *(["--mode", mode] if mode else []), *(["--scheduler", sched] if sched else []))
    for n in backends:
        env.rondoctl_ok("backend", "add", name, f"{be_ip(n)}:{port}",
                        *(["--weight", weights[n]] if weights else []))
    shown = env.rondoctl_json("show", name)["vips"][0]["mode"]
    assert shown == (mode or "fullnat"), f"rondoctl show {name}: mode {shown}"
    if proto != "tcp":
        return None

    def curl():
        r = subprocess.run(["ip", "netns", "exec", env.ns_cl, "curl", "-sS", "--max-time", "2",
                            f"http://{vip}/"], capture_output=True, text=True)
        m = harness.HTTP_BODY_RE.match(r.stdout.encode())
        return int(m.group(1)) if r.returncode == 0 and m else None
    return wait_until(f"curl http://{vip}/ to get an answer", 20, curl)


def sequential(env, vip, count=CONNS):
    res = env.in_client("seq", "--count", count, "--vip", vip, timeout=300)
    check_no_errors(res, f"connections to {vip}")
    assert len(res["ports"]) == count, f"{len(res['ports'])} answers for {count} connections"
    return res["ports"]


# ---- scenarios ----

def scenario_fullnat(env, totals):
    add_vip(env, "full", V_FULL, None)
    before = snapshot(env)
    order = sequential(env, V_FULL, 50)
    text = paths(before, snapshot(env), "fullnat", 3 * 50)
    return f"50 connections {fmt_counts(order)}; {text}"


def dsr_mode(mode, vip):
    def scenario(env, totals):
        first = add_vip(env, mode, vip, mode)
        before = snapshot(env)
        order = sequential(env, vip)
        after = snapshot(env)
        c = Counter(order)
        assert set(c) == set(BACKENDS) and max(c.values()) - min(c.values()) <= 1, \
            f"round robin is not even: {fmt_counts(order)}"
        bad = [i for i in range(3, len(order)) if order[i] != order[i - 3]]
        assert not bad, (f"rotation broken at connection {bad[0]}: "
                         f"{order[max(0, bad[0] - 4):bad[0] + 4]}")
        text = paths(before, after, mode, 3 * CONNS)
        want = Counter(order)
        want[first] += 1  # curl's connection
        counted(env, mode, dict(want))
        arp = ""
        if mode == "l2dsr":
            arp = "; " + arp_check(env, vip)
        return (f"{CONNS}/{CONNS} connections {fmt_counts(order)}, strict rotation, as rondo "
                f"counted them per backend; {text}{arp}")
    return scenario


def arp_check(env, vip):
    mac = json.loads(sh("ip", "-n", env.ns_lb, "-j", "link", "show", "dp0"))[0]["address"]
    out = sh("ip", "-n", env.ns_cl, "neigh", "show", vip, "dev", "eth0").split()
    got = out[out.index("lladdr") + 1] if "lladdr" in out else None
    assert got == mac, (f"the client's ARP entry for {vip} is {got}, not rondo's dp0 {mac}: "
                        f"a backend answered ARP for the VIP")
    return f"the client's ARP entry for {vip} is rondo's MAC {mac}"


def scenario_wrr(env, totals):
    a, b = BACKENDS[0], BACKENDS[1]
    add_vip(env, "wrr", V_WRR, "gue", backends=[a, b], weights={a: 3, b: 1}, sched="wrr")
    before = snapshot(env)
    order = sequential(env, V_WRR)
    text = paths(before, snapshot(env), "gue", 3 * CONNS)
    c = Counter(order)
    assert c[a] == 300 and c[b] == 100 and len(c) == 2, \
        f"wrr 3:1 is not exact: {fmt_counts(order)} (want :{a} 300, :{b} 100)"
    return f"{CONNS} connections (gue, wrr 3:1): {fmt_counts(order)}; {text}"


def scenario_udp(env, totals):
    add_vip(env, "dns", V_IPIP, "ipip", proto="udp")
    before = snapshot(env)
    res = env.in_client("udp", "--count", 30, "--vip", V_IPIP)
    after = snapshot(env)
    check_no_errors(res, "UDP datagrams")
    c = Counter(res["ports"])
    assert len(set(res["src_ports"])) == 30, "datagrams did not use 30 source ports"
    assert all(c[n] == 10 for n in BACKENDS), f"udp round robin: {fmt_counts(res['ports'])}"
    text = paths(before, after, "ipip", 30)
    return (f"30/30 datagrams (ipip) from 30 source ports answered from {V_IPIP}:{UDP_PORT} "
            f"({res['retries']} retries), {fmt_counts(res['ports'])}; {text}")


def scenario_all_down(env, totals):
    def all_down():
        return all(r["health"] == "down" for v in ("down-drop", "down-open")
                   for r in backend_rows(env, v))
    wait_until("every backend of down-drop and down-open to be down", 20, all_down)
    wait_until("the dataplane to have it", 10, lambda: in_sync(env))
    st = env.dpstat_json()
    drops0, open0 = drop_sum(st, "no_backend"), lcore_sum(st, "fail_open_flows")
    probe = env.in_client("probe", "--vip", V_DROP, "--deadline", 2)
    st = env.dpstat_json()
    drops = drop_sum(st, "no_backend") - drops0
    assert not probe["ok"], f"down-drop ({V_DROP}) answered with every backend down"
    assert drops >= probe["attempts"], \
        f"{probe['attempts']} connection attempts to down-drop, {drops} no_backend drops"
    assert lcore_sum(st, "fail_open_flows") == open0, "fail_open_flows grew for a drop VIP"
    before = snapshot(env)
    order = sequential(env, V_OPEN, 30)
    text = paths(before, snapshot(env), "ipip", 3 * 30)
    opened = lcore_sum(env.dpstat_json(), "fail_open_flows") - open0
    c = Counter(order)
    assert all(c[n] == 10 for n in BACKENDS), \
        f"fail open over the down backends: {fmt_counts(order)}"
    assert opened == 30, f"30 connections failed open, fail_open_flows grew by {opened}"
    return (f"all 6 backends down (health check :9): down-drop refused {probe['attempts']} "
            f"connection attempts ({drops} SYNs counted no_backend); down-open served 30/30 "
            f"{fmt_counts(order)}, fail_open_flows +{opened}; {text}")


def dsr6_mode(mode, vip, decap):
    """h-k: `mode` to the IPv6 backends from `vip` (IPv6, or IPv4 for IPv4 in IPv6)."""
    def scenario(env, totals):
        name = f"{mode}-{'v6' if harness.is_v6(vip) else '46'}"
        env.rondoctl_ok("vip", "add", name, harness.endpoint(vip, PORT), "--mode", mode)
        for n in BACKENDS:
            env.rondoctl_ok("backend", "add", name, harness.endpoint(be_ip6(n), PORT))

        def curl():
            r = subprocess.run(["ip", "netns", "exec", env.ns_cl, "curl", "-sS", "-g",
                                "--max-time", "2", f"http://{harness.url_host(vip)}/"],
                               capture_output=True, text=True)
            m = harness.HTTP_BODY_RE.match(r.stdout.encode())
            return int(m.group(1)) if r.returncode == 0 and m else None
        first = wait_until(f"curl http://{harness.url_host(vip)}/ to get an answer", 20, curl)
        before = snapshot(env)
        order = sequential(env, vip, V6_CONNS)
        after = snapshot(env)
        c = Counter(order)
        assert set(c) == set(BACKENDS) and max(c.values()) - min(c.values()) <= 1, \
            f"round robin is not even: {fmt_counts(order)}"
        bad = [i for i in range(3, len(order)) if order[i] != order[i - 3]]
        assert not bad, f"rotation broken at connection {bad[0]}"
        text = paths(before, after, mode, 3 * V6_CONNS, decap)
        # rondo's counts (rondoctl show, as the control plane last polled them) by address.
        want = {be_ip6(n): c[n] + (n == first) for n in BACKENDS}

        def got():
            rows = env.rondoctl_json("show", name)["vips"][0]["backends"]
            return {r["address"]: int(r["connections"] or 0) for r in rows}
        try:
            wait_until(f"rondo's counts for {name} to be {want}", 10, lambda: got() == want)
        except AssertionError:
            raise AssertionError(f"rondo counted {got()} connections per backend, the backends "
                                 f"answered {want}")
        return (f"{V6_CONNS}/{V6_CONNS} connections (first curl from :{first}) "
                f"{fmt_counts(order)}, strict rotation, as rondo counted them per backend; {text}")
    return scenario


def scenario_pmtu(env, totals):
    name = "pmtu-v6"
    env.rondoctl_ok("vip", "add", name, harness.endpoint(V6_PMTU, PORT), "--mode", "ipip")
    for n in BACKENDS:
        env.rondoctl_ok("backend", "add", name, harness.endpoint(be_ip6(n), PORT))
    body = os.path.join(env.tmp, "post.bin")
    with open(body, "wb") as f:
        f.write(b"x" * 65536)
    sh("ip", "netns", "exec", env.ns_cl, "ip", "-6", "route", "flush", "cache")
    too_big0 = drop_sum(env.dpstat_json(), "encap_too_big")

    def post():
        r = subprocess.run(["ip", "netns", "exec", env.ns_cl, "curl", "-sS", "-g", "--max-time",
                            "5", "--data-binary", f"@{body}",
                            f"http://{harness.url_host(V6_PMTU)}/"],
                           capture_output=True, text=True)
        m = harness.HTTP_BODY_RE.match(r.stdout.encode())
        return int(m.group(1)) if r.returncode == 0 and m else None
    served = wait_until(f"a 64 KB POST to {V6_PMTU} to be answered", 30, post)
    too_big = drop_sum(env.dpstat_json(), "encap_too_big") - too_big0
    route = sh("ip", "netns", "exec", env.ns_cl, "ip", "-6", "route", "get", V6_PMTU)
    assert too_big >= 1, f"no encap_too_big drop: did the segments fit? ({route.strip()})"
    assert re.search(r"\bmtu 1460\b", route), \
        f"the client's path MTU to {V6_PMTU} is not 1460: {route.strip()}"
    return (f"a 64 KB POST answered by :{served}; rondo dropped {too_big} segments as "
            f"encap_too_big and the client's kernel took the packet-too-big: "
            f"{' '.join(route.split())}")


SCENARIOS = [
    ("a", "full-NAT control: answers through rondo", scenario_fullnat),
    ("b", "ipip: round robin, answers bypass rondo", dsr_mode("ipip", V_IPIP)),
    ("c", "gue: round robin, answers bypass rondo", dsr_mode("gue", V_GUE)),
    ("d", "l2dsr: round robin, answers bypass rondo", dsr_mode("l2dsr", V_L2)),
    ("e", "wrr 3:1 (gue)", scenario_wrr),
    ("f", "udp (ipip)", scenario_udp),
    ("g", "on_all_down drop and open", scenario_all_down),
    ("h", "ipip, IPv6 in IPv6", dsr6_mode("ipip", V6_IPIP, "decap_ipip6_out6")),
    ("i", "gue over IPv6 (IPv6 inside)", dsr6_mode("gue", V6_GUE, "decap_gue_out6")),
    ("j", "ipip, IPv4 in IPv6", dsr6_mode("ipip", V_IPIP46, "decap_ipip_out6")),
    ("k", "l2dsr, IPv6", dsr6_mode("l2dsr", V6_L2, None)),
    ("l", "packet too big (ipip, IPv6)", scenario_pmtu),
]

if __name__ == "__main__":
    sys.exit(harness.run("dsr", __file__, SCENARIOS, setup))
