#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""End-to-end: three rondo instances behind a router's ECMP (issue 12, item 4; issue 10).

Namespaces: a router R running BIRD (AS 65000, ECMP: `merge paths`); clients in C behind it
(10.8.0.2); the four backends in B behind it (10.9.0.2:3000-3003); three rondo hosts L1-L3,
each cabled to R by one veth (10.0.i.0/24): on it the host's kernel (10.0.i.1, BIRD AS
6500i, announcing the VIP through rondo-controlplane --bird-include) and rondo's dataplane
(af_packet on the same interface, local ip 10.0.i.100, routes via R, --maglev-seed the same
on all three). R learns 203.0.113.10/32 from the three (its BGP sessions take only that
prefix) and installs one route with three next hops; each next hop's MAC is the host's
interface, which is rondo's port: the kernel of the host ignores the VIP's packets, rondo
takes them. R's kernel hashes the five-tuple of the headers (fib_multipath_hash_policy 3,
fields 0x37), as a router does. Not policy 1: that takes a forwarded packet's skb hash when
it has one, and coming over a veth that is the client socket's random txhash, which the
client picks anew at every retransmission timeout: a connection rehashed onto an instance
without its state moved again at its next RTO and often came back (b counted 0-2 broken on
instances 1-2 and 3-9 of 30 with policy 1; 1-10 and 11-19 of 30 with policy 3).

  a. new connections spread over all three instances (each takes some), none fails
  b. plain ECMP (BIRD's multipath route, hash-threshold): an instance leaving (its control
     plane withdraws, then its dataplane stops) and coming back; every new connection
     succeeds; the established connections the router rehashes onto another instance break
     there (it has no state for them): counted and reported, the known cost of plain ECMP
  c. the fix the fabric offers: R's BIRD stops programming the main table; its routes (kept
     in table 100) are copied there by deploy/bird/resilient-vip-routes as a resilient
     next-hop group (idle timer 3 s). Instance 3 leaves: established connections on the
     other two all still answer; it comes back while 30 established connections keep making
     requests: none breaks, and new connections reach instance 3 once idle buckets moved
  d. rondo's own fix, in the DSR modes: two ipip VIPs on all three hosts, 203.0.113.20
     (maglev) and 203.0.113.21 (rr), over the same three backends, each a namespace DK
     behind R (10.10.K.2:80, the VIP's port, answering ":K"; the VIPs on lo; rondo-decap on
     eth0; default route via R, so the answers go R -> C and never cross a rondo host). R
     routes both VIPs by a plain multipath route of its own (`ip route replace VIP/32
     nexthop via 10.0.1.1 nexthop via 10.0.2.1`), not BIRD. 30 keep-alive connections to
     each VIP are held over instances 1 and 2, then instance 3 is added to R's routes and
     every connection makes one more request. R's `ip route get` names the instance each
     connection goes to before and after (checked against rondo's flows before). maglev:
     every connection answers, none is reset, each from the backend that answered it first
     (the one its flow names), the instance R moved it to has a new flow to that backend and
     no other instance has, and the instances' midflow_flows grew by exactly what R moved to
     each (some to instance 3, or the test says to open more). rr, the contrast that proves
     the check can fail: exactly the connections R moved break (their segments dropped,
     tcp_no_flow); none is forwarded mid-flow. With a different --maglev-seed per host, the
     maglev check fails (tried by hand: 5 of 9 moved connections reset by a backend that had
     no socket).

Connections are held by the client mode "hold"; each round sends a request on every
connection first, then awaits the answers, 2 s for the whole round.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter

import harness
from harness import VIP

N = 3
ROUTE = f"{VIP}/32"
CLIENT = "10.8.0.2"
BACKEND = "10.9.0.2"
# Scenario d: two ipip VIPs over three DSR backends, each in a namespace of its own behind R
# (10.10.k.2, the VIPs on lo, rondo-decap on eth0, listening on the VIPs' port 80); every
# host the same pool and --maglev-seed. R routes them itself (a plain multipath route).
DSR_VIP = "203.0.113.20"  # maglev
RR_VIP = "203.0.113.21"   # rr: the contrast
DSR_BACKENDS = [f"10.10.{k}.2" for k in (1, 2, 3)]
SEED = 20261207


# ---- client mode: many keep-alive connections held open ----

def client_hold(args):
    """Open --count keep-alive connections to --vip:--vip-port (one request each), print
    their source ports and the backend that answered each (its port or --id), then, on each
    line read from stdin, make one more request on every connection: all sent first, then
    each answer awaited, --timeout for the whole round (a broken connection costs the round
    that once, not each). Print what each got: the backend, or "reset", "timeout", the
    error. EOF ends it."""
    socks, first = [], []
    for _ in range(args.count):
        s = socket.create_connection((args.vip, args.vip_port), timeout=3.0)
        first.append(harness.http_exchange(s, "/", close=False))
        socks.append(s)
    print(json.dumps({"ports": [s.getsockname()[1] for s in socks], "backends": first}),
          flush=True)
    rounds = 0
    for _line in sys.stdin:
        got = [None] * len(socks)
        for k, s in enumerate(socks):
            try:
                s.sendall(f"GET / HTTP/1.1\r\nHost: {args.vip}\r\n\r\n".encode())
            except OSError as e:
                got[k] = e
        deadline = time.monotonic() + args.timeout
        for k, s in enumerate(socks):
            if got[k] is None:
                try:
                    s.settimeout(max(0.01, deadline - time.monotonic()))
                    got[k] = harness.read_response(s)
                except OSError as e:
                    got[k] = e
            if isinstance(got[k], OSError):
                e = got[k]
                got[k] = ("reset" if isinstance(e, ConnectionResetError) else
                          "timeout" if isinstance(e, socket.timeout) else harness.err_text(e))
        rounds += 1
        print(json.dumps({"ok": [isinstance(g, int) for g in got], "got": got}), flush=True)
    return {"rounds": rounds}


def _args_hold(p):
    p.add_argument("--count", type=int, default=12)
    p.add_argument("--vip", default=VIP)
    p.add_argument("--vip-port", type=int, default=harness.HTTP_PORT)
    p.add_argument("--timeout", type=float, default=2.0)


# ---- topology ----

def sh(*args):
    r = subprocess.run(list(map(str, args)), capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))}: {r.stderr.strip()}")
    return r.stdout


def veth(ns_a, a, addr_a, ns_b, b, addr_b):
    sh("ip", "-n", ns_a, "link", "add", a, "type", "veth", "peer", "name", b, "netns", ns_b)
    for ns, dev, addr in ((ns_a, a, addr_a), (ns_b, b, addr_b)):
        sh("ip", "netns", "exec", ns, "ethtool", "-K", dev, "tx", "off", "rx", "off", "tso", "off",
           "gso", "off", "gro", "off")
        if addr:
            sh("ip", "-n", ns, "addr", "add", addr, "dev", dev)
        sh("ip", "-n", ns, "link", "set", dev, "up")


def bird_lb(i, include):
    return f"""log stderr all;
router id 10.0.{i}.1;
protocol device {{ scan time 1; }}
include "{include}";
filter rondo_export {{ if proto = "rondo_vips" && net.len = 32 then accept; reject; }}
protocol bgp upstream {{
  local 10.0.{i}.1 as {65000 + i};
  neighbor 10.0.{i}.254 as 65000;
  hold time 3; connect retry time 1; error wait time 1, 2;
  ipv4 {{ import none; export filter rondo_export; }};
}}
"""


def bird_router():
    peers = "".join(f"""protocol bgp l{i} {{
  local 10.0.{i}.254 as 65000;
  neighbor 10.0.{i}.1 as {65000 + i};
  hold time 3; connect retry time 1; error wait time 1, 2;
  ipv4 {{ import where net = {ROUTE}; export none; }};
}}
""" for i in range(1, N + 1))
    return f"""log stderr all;
router id 10.8.0.254;
protocol device {{ scan time 1; }}
protocol kernel kmain {{ merge paths on; ipv4 {{ export all; import none; }}; }}
ipv4 table t100;
protocol pipe {{ table master4; peer table t100; export all; import none; }}
protocol kernel k100 {{ kernel table 100; merge paths on; ipv4 {{ table t100; export all; import none; }}; }}
{peers}"""


def config(i):
    return f"""# ecmp_test instance {i}
timeouts: {{tcp_syn: 10, tcp_established: 900, tcp_closing: 10, udp: 30}}
local_ips: [10.0.{i}.100]
routes:
  - prefix: 0.0.0.0/0
    via: 10.0.{i}.254
vips:
  - name: web
    address: {VIP}
    port: 80
    protocol: tcp
    mode: fullnat
    scheduler: rr
    backends:
""" + "".join(f"      - {{address: {BACKEND}, port: {p}, weight: 1}}\n" for p in harness.HTTP_BACKENDS) + \
        "".join(f"""  - name: dsr-{sched}
    address: {vip}
    port: 80
    protocol: tcp
    mode: ipip
    scheduler: {sched}
    backends:
""" + "".join(f"      - {{address: {b}, port: 80, weight: 1}}\n" for b in DSR_BACKENDS)
                for sched, vip in (("maglev", DSR_VIP), ("rr", RR_VIP)))


def next_hops(env):
    """R's next hops for the VIP (the addresses of the hosts announcing it)."""
    out = subprocess.run(["ip", "-n", env.ns_r, "route", "show", ROUTE], capture_output=True,
                         text=True).stdout
    return sorted(w for i, w in enumerate(out.split()) if i > 0 and out.split()[i - 1] == "via")


def start_instance(env, i):
    ns = env.ns_l[i - 1]
    tmp = env.tmp
    dp = env.spawn(f"dataplane{i}", ns, [
        env.dataplane, "-l", "0,1", "--main-lcore", "0", "--no-huge", "-m", "256", "--no-pci",
        "--file-prefix", f"rondo-{env.tag}-{i}", f"--vdev=net_af_packet0,iface=e{i},qpairs=1",
        "--log-level=*:notice", "--", "--ctl-socket", f"{tmp}/dp{i}.sock",
        "--state-dir", f"{tmp}/state{i}", "--idle-sleep-us", "200", "--flows-per-worker", "65536",
        "--maglev-seed", str(SEED)])
    harness.wait_until(f"dataplane {i} to print 'ready'", 30,
                       lambda: "ready" in harness.tail(env.logs[f"dataplane{i}"], 1000),
                       alive=[(f"dataplane{i}", dp)])
    env.spawn(f"controlplane{i}", ns, [
        env.controlplane, "--config", f"{tmp}/rondo{i}.yaml", "--dataplane-socket", f"{tmp}/dp{i}.sock",
        "--state-file", f"{tmp}/state{i}.json", "--api-socket", f"{tmp}/api{i}.sock",
        "--metrics-listen", "none", "--bird-include", f"{tmp}/vips{i}.conf",
        "--bird-socket", f"{tmp}/bird{i}.ctl", "--bgp-withdraw-wait-ms", "1000"])


def setup(env):
    t = env.tag
    env.ns_r, env.ns_c, env.ns_b = f"rd-{t}-r", f"rd-{t}-c", f"rd-{t}-b"
    env.ns_l = [f"rd-{t}-l{i}" for i in range(1, N + 1)]
    env.ns_d = [f"rd-{t}-d{k}" for k in range(1, len(DSR_BACKENDS) + 1)]
    env.extra_namespaces = [env.ns_r, env.ns_c, env.ns_b, *env.ns_l, *env.ns_d]
    env.extra_prefixes = [f"rondo-{t}-{i}" for i in range(1, N + 1)]
    for ns in env.extra_namespaces:
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
    harness.log(f"topology: router {env.ns_r}, clients {env.ns_c}, backends {env.ns_b}, "
                f"{N} rondo hosts {' '.join(env.ns_l)}")
    # The five-tuple of the headers (source and destination address and port, protocol), not
    # policy 1's skb hash: over a veth that is the client socket's txhash (the docstring).
    for k, v in (("net.ipv4.ip_forward", 1), ("net.ipv4.fib_multipath_hash_policy", 3),
                 ("net.ipv4.fib_multipath_hash_fields", "0x0037")):
        sh("ip", "netns", "exec", env.ns_r, "sysctl", "-qw", f"{k}={v}")
    veth(env.ns_r, "rc", "10.8.0.254/24", env.ns_c, "eth0", f"{CLIENT}/24")
    sh("ip", "-n", env.ns_c, "route", "add", "default", "via", "10.8.0.254")
    veth(env.ns_r, "rb", "10.9.0.254/24", env.ns_b, "eth0", f"{BACKEND}/24")
    sh("ip", "-n", env.ns_b, "route", "add", "default", "via", "10.9.0.254")
    for i in range(1, N + 1):
        veth(env.ns_r, f"r{i}", f"10.0.{i}.254/24", env.ns_l[i - 1], f"e{i}", f"10.0.{i}.1/24")
    # Backends in B (the harness starts them in its "backends" namespace).
    env.ns_be = env.ns_b
    env.start_backends(udp_ports=None)
    dsr_backends(env)
    # BIRD: the router, then each host's.
    with open(f"{env.tmp}/bird-r.conf", "w") as f:
        f.write(bird_router())
    env.spawn("bird-r", env.ns_r, ["bird", "-f", "-c", f"{env.tmp}/bird-r.conf", "-s",
                                    f"{env.tmp}/bird-r.ctl", "-P", f"{env.tmp}/bird-r.pid"])
    for i in range(1, N + 1):
        with open(f"{env.tmp}/vips{i}.conf", "w") as f:
            f.write("protocol static rondo_vips { ipv4; }\n")
        with open(f"{env.tmp}/bird{i}.conf", "w") as f:
            f.write(bird_lb(i, f"{env.tmp}/vips{i}.conf"))
        with open(f"{env.tmp}/rondo{i}.yaml", "w") as f:
            f.write(config(i))
        env.spawn(f"bird{i}", env.ns_l[i - 1], ["bird", "-f", "-c", f"{env.tmp}/bird{i}.conf", "-s",
                                                f"{env.tmp}/bird{i}.ctl", "-P", f"{env.tmp}/bird{i}.pid"])
    for i in range(1, N + 1):
        start_instance(env, i)
    want = [f"10.0.{i}.1" for i in range(1, N + 1)]
    harness.wait_until(f"the router's route to {ROUTE} via {' '.join(want)}", 30,
                       lambda: next_hops(env) == want, interval=0.1)
    harness.log(f"router: {ROUTE} via {' '.join(next_hops(env))}")


def dsr_backends(env):
    """Scenario d's backends: namespace dK (10.10.K.2) on a veth to R, default route via R, so
    its answers to the client go R -> C and never cross a rondo host. R's reverse-path filter
    off: they come from the VIPs, which R routes towards the rondo hosts."""
    sh("ip", "netns", "exec", env.ns_r, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0")
    decap = os.path.join(env.build, "bpf", "rondo-decap")
    for k, (ns, addr) in enumerate(zip(env.ns_d, DSR_BACKENDS), 1):
        veth(env.ns_r, f"d{k}", f"10.10.{k}.254/24", ns, "eth0", f"{addr}/24")
        sh("ip", "netns", "exec", env.ns_r, "sysctl", "-qw", f"net.ipv4.conf.d{k}.rp_filter=0")
        sh("ip", "-n", ns, "route", "add", "default", "via", f"10.10.{k}.254")
        for vip in (DSR_VIP, RR_VIP):
            sh("ip", "-n", ns, "addr", "add", f"{vip}/32", "dev", "lo")
        sh("ip", "netns", "exec", ns, decap, "attach", "eth0")
        env.spawn(f"dsr-backend{k}", ns,
                  [env.node, env.backend_js, "--http-port", "80", "--id", str(k)])
    for k, ns in enumerate(env.ns_d, 1):
        harness.wait_until(f"DSR backend {k} to listen", 15,
                           lambda: env.ns_has_listener("tcp", 80, ns),
                           alive=[(f"dsr-backend{k}", env.procs[f"dsr-backend{k}"])])
    harness.log(f"DSR backends: {' '.join(f'{a}:80' for a in DSR_BACKENDS)} (ipip by rondo-decap, "
                f"{DSR_VIP} and {RR_VIP} on lo)")


def dpstat(env, i):
    """Instance i's dataplane counters (rondo-dpstat --json), None if it does not answer."""
    r = subprocess.run([env.dpstat, "--dataplane-socket", f"{env.tmp}/dp{i}.sock", "--json"],
                       capture_output=True, text=True, timeout=10)
    return json.loads(r.stdout) if r.returncode == 0 else None


def new_connections(env, i):
    """New connections instance i's dataplane counted (all backends)."""
    st = dpstat(env, i)
    return None if st is None else sum(int(b["connections"]) for b in st.get("backends", []))


def flows_of(env, ports, vip=None):
    """{client port: {instance: backend}}: the established flows of `ports` in each instance
    (`rondoctl flow list`), of one VIP (address:port) or of all."""
    flows = {}
    for i in range(1, N + 1):
        r = subprocess.run([env.rondoctl_bin, "--socket", f"{env.tmp}/api{i}.sock", "--json", "flow",
                            "list", "--client", CLIENT, *(["--vip", vip] if vip else []),
                            "--limit", "100000"], capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            continue
        for f in json.loads(r.stdout)["flows"]:
            port = int(f["client"].rsplit(":", 1)[1])
            if port in ports and f["state"] == "established":
                flows.setdefault(port, {})[i] = f["backend"]
    return flows


def owner_of(env, ports):
    """Which instance holds each client port (full-NAT: one flow in one instance)."""
    return {port: max(on) for port, on in flows_of(env, ports).items()}


def seq(env, count):
    return env.in_ns(env.ns_c, "seq", "--count", count)


def hold(env, count, vip=VIP):
    p = env.client_popen("hold", "--count", count, "--vip", vip, ns=env.ns_c, stdin=subprocess.PIPE)
    line = p.stdout.readline()
    if not line:
        raise AssertionError(f"the holding client failed: {p.stderr.read()[-500:]}")
    held = json.loads(line)
    return p, held["ports"], held["backends"]


def ask(p, what="ok"):
    """One round of requests on the held connections: [True/False] (what="ok"), or what each
    got (what="got": the backend that answered, or "reset", "timeout", an error)."""
    p.stdin.write("go\n")
    p.stdin.flush()
    return json.loads(p.stdout.readline())[what]


def release(p):
    p.stdin.close()
    p.wait(10)


def scenario_a_spread(env, totals):
    before = [new_connections(env, i) for i in range(1, N + 1)]
    res = seq(env, 90)
    harness.check_no_errors(res, "new connections through the router")
    got = [new_connections(env, i) - b for i, b in zip(range(1, N + 1), before)]
    assert sum(got) == 90 and all(g > 0 for g in got), \
        f"90 connections went {got} over the three instances (want all > 0, sum 90)"
    return f"90 new connections, none failed: {got[0]} / {got[1]} / {got[2]} over instances 1 / 2 / 3"


def stop_instance3(env, what):
    """SIGTERM instance 3's control plane (it withdraws, then exits), wait for the router to
    drop it (by `what`), stop its dataplane. Returns the seconds to withdraw."""
    t0 = time.monotonic()
    env.procs["controlplane3"].send_signal(signal.SIGTERM)
    harness.wait_until("the router to drop instance 3", 15, what, interval=0.05)
    took = time.monotonic() - t0
    env.terminate("controlplane3")
    env.terminate("dataplane3")
    return took


def scenario_b_plain(env, totals):
    # Stop instance 3 with 30 connections held over the three.
    p, ports, _ = hold(env, 30)
    owner = owner_of(env, set(ports))
    assert len(owner) == len(ports), f"only {len(owner)} of {len(ports)} held connections found by flow list"
    took = stop_instance3(env, lambda: next_hops(env) == ["10.0.1.1", "10.0.2.1"])
    res = seq(env, 60)
    harness.check_no_errors(res, "new connections after instance 3 stopped")
    ok = ask(p)
    release(p)
    on = {i: [k for k, pt in enumerate(ports) if owner[pt] == i] for i in (1, 2, 3)}
    moved = sum(1 for i in (1, 2) for k in on[i] if not ok[k])
    # Add it back with 30 connections held over the two.
    p, ports, _ = hold(env, 30)
    t0 = time.monotonic()
    start_instance(env, 3)
    want = [f"10.0.{i}.1" for i in range(1, N + 1)]
    harness.wait_until("the router to add instance 3 back", 30, lambda: next_hops(env) == want, interval=0.05)
    back = time.monotonic() - t0
    ok2 = ask(p)
    release(p)
    res = seq(env, 60)
    harness.check_no_errors(res, "new connections after instance 3 came back")
    totals["plain_removed"] = moved
    totals["plain_added"] = ok2.count(False)
    return (f"plain ECMP: instance 3 withdrawn in {took:.2f}s, 60/60 new connections answered; of the "
            f"{len(on[1]) + len(on[2])} established connections on instances 1-2, {moved} broke (the router "
            f"rehashed them between the survivors), the {len(on[3])} on instance 3 went with it; instance 3 "
            f"back in {back:.2f}s: {ok2.count(False)} of 30 established connections broke; 60/60 new answered")


def group_members(env):
    """The members of the resilient group the VIP's main-table route uses ([] if none)."""
    out = subprocess.run(["ip", "-n", env.ns_r, "route", "show", ROUTE], capture_output=True,
                         text=True).stdout
    if "nhid" not in out:
        return []
    gid = out.split("nhid", 1)[1].split()[0]
    g = subprocess.run(["ip", "-n", env.ns_r, "nexthop", "show", "id", gid], capture_output=True,
                       text=True).stdout
    if "resilient" not in g or "group" not in g:
        return []
    return g.split("group", 1)[1].split()[0].split("/")


def scenario_c_resilient(env, totals):
    import threading
    r = subprocess.run(["birdc", "-s", f"{env.tmp}/bird-r.ctl", "disable", "kmain"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0 and "disabled" in r.stdout, f"birdc disable kmain: {r.stdout}{r.stderr}"
    env.spawn("resilient", env.ns_r, [os.path.join(env.src, "deploy", "bird", "resilient-vip-routes"),
                                      "--watch", "0.2", "--idle-timer", "3"])
    harness.wait_until("the VIP route as a resilient group of 3", 15, lambda: len(group_members(env)) == 3,
                       interval=0.1)
    # One instance leaves: only its connections go.
    p, ports, _ = hold(env, 30)
    owner = owner_of(env, set(ports))
    assert len(owner) == len(ports), f"only {len(owner)} of {len(ports)} held connections found by flow list"
    took = stop_instance3(env, lambda: len(group_members(env)) == 2)
    res = seq(env, 60)
    harness.check_no_errors(res, "new connections after instance 3 stopped")
    ok = ask(p)
    release(p)
    survivors = [ok[k] for k, pt in enumerate(ports) if owner[pt] != 3]
    gone = sum(1 for pt in ports if owner[pt] == 3)
    assert all(survivors), (f"{survivors.count(False)} of {len(survivors)} established connections on "
                            f"instances 1-2 broke when instance 3 left, with a resilient group")
    # It comes back while 30 established connections keep making requests.
    before3 = new_connections(env, 3) or 0
    p, ports, _ = hold(env, 30)
    results, stop = [], threading.Event()

    def busy():  # every held connection makes a request about every 0.3 s
        while not stop.is_set():
            results.append(ask(p))
            time.sleep(0.3)

    t = threading.Thread(target=busy)
    t.start()
    try:
        start_instance(env, 3)
        harness.wait_until("the group to take instance 3 back", 30, lambda: len(group_members(env)) == 3,
                           interval=0.05)
        # Past the idle timer, unused buckets move to instance 3: new connections reach it.
        def reaches_3():
            res = seq(env, 10)
            harness.check_no_errors(res, "new connections with the resilient group")
            return (new_connections(env, 3) or 0) > before3
        harness.wait_until("new connections to reach instance 3", 30, reaches_3, interval=0.5)
    finally:
        stop.set()
        t.join(30)
    results.append(ask(p))
    release(p)
    broken = sum(1 for k in range(len(ports)) if not all(rd[k] for rd in results))
    assert broken == 0, (f"{broken} of {len(ports)} established connections broke while instance 3 "
                         f"came back, with a resilient group")
    return (f"resilient group (64 buckets, idle timer 3 s): instance 3 left in {took:.2f}s: "
            f"{len(survivors)}/{len(survivors)} established connections on instances 1-2 still answer "
            f"(plain ECMP broke {totals['plain_removed']}), the {gone} on instance 3 went with it, 60/60 new "
            f"answered; it came back while 30 established connections made {len(results)} rounds of "
            f"requests: 0 broke (plain ECMP: {totals['plain_added']} of 30); new connections reach instance 3")


# ---- d: DSR with a maglev VIP behind a plain multipath route ----

D_CONNECTIONS = 30


def dsr_route(env, hosts):
    """R's route to each DSR VIP, a plain Linux multipath route (hash-threshold): one next hop
    per host in `hosts`."""
    hops = [w for i in hosts for w in ("nexthop", "via", f"10.0.{i}.1")]
    for vip in (DSR_VIP, RR_VIP):
        sh("ip", "-n", env.ns_r, "route", "replace", f"{vip}/32", *hops)


def routed_to(env, vip, ports):
    """{client port: instance}: where R's route to vip sends a TCP segment from CLIENT:port to
    vip:80 coming in on its client link (`ip route get` hashes the five-tuple as forwarding
    does, with fib_multipath_hash_policy 3)."""
    out = {}
    for port in ports:
        r = sh("ip", "-n", env.ns_r, "route", "get", vip, "from", CLIENT, "iif", "rc", "ipproto",
               "tcp", "sport", port, "dport", 80).split()
        out[port] = int(r[r.index("via") + 1].split(".")[2])
    return out


def lcore_counts(env):
    """[(midflow_flows, tcp_no_flow drops)] of instances 1-3, summed over their lcores."""
    out = []
    for i in range(1, N + 1):
        lcores = dpstat(env, i)["lcores"]
        out.append((sum(int(lc.get("midflow_flows", 0)) for lc in lcores),
                    sum(int(lc["drops"].get("tcp_no_flow", 0)) for lc in lcores)))
    return out


def in_sync(env, i):
    r = subprocess.run([env.rondoctl_bin, "--socket", f"{env.tmp}/api{i}.sock", "--json", "status"],
                       capture_output=True, text=True, timeout=10)
    return r.returncode == 0 and json.loads(r.stdout)["status"]["in_sync"]


def scenario_d_dsr(env, totals):
    if "controlplane3" not in env.procs or "dataplane3" not in env.procs:  # c stopped half-way
        env.terminate("controlplane3")
        env.terminate("dataplane3")
        start_instance(env, 3)
    harness.wait_until("the three control planes to be in sync", 20,
                       lambda: all(in_sync(env, i) for i in range(1, N + 1)))
    dsr_route(env, [1, 2])
    pm, ports, first = hold(env, D_CONNECTIONS, DSR_VIP)
    pr, rr_ports, _ = hold(env, D_CONNECTIONS, RR_VIP)
    # Where they are: one flow each, on instance 1 or 2, where R's route says, to the
    # backend that answered (backend K says ":K").
    before = flows_of(env, set(ports), f"{DSR_VIP}:80")
    rr_before = flows_of(env, set(rr_ports), f"{RR_VIP}:80")
    for vip, flows, want in ((DSR_VIP, before, ports), (RR_VIP, rr_before, rr_ports)):
        routed = routed_to(env, vip, want)
        assert sorted(flows) == sorted(want) and all(list(flows[p]) == [routed[p]] for p in want), \
            (f"{vip}: the {len(want)} held connections have flows {flows}; R routes them to "
             f"{routed} (want one flow each, where R sends it)")
    wrong = [(p, b, before[p]) for p, b in zip(ports, first)
             if list(before[p].values()) != [f"{DSR_BACKENDS[b - 1]}:80"]]
    assert not wrong, f"connections answered by another backend than rondo's flow names: {wrong[:5]}"
    c0 = lcore_counts(env)
    # Instance 3 joins R's route: hash-threshold ECMP computes every next hop afresh.
    dsr_route(env, [1, 2, 3])
    moved = {p: i for p, i in routed_to(env, DSR_VIP, ports).items() if i not in before[p]}
    rr_moved = {p for p, i in routed_to(env, RR_VIP, rr_ports).items() if i not in rr_before[p]}
    to = Counter(moved.values())
    assert to[3] > 0, f"R moved none of {len(ports)} connections to instance 3 ({dict(to)}): open more"
    got = ask(pm, "got")
    c1 = lcore_counts(env)
    after = flows_of(env, set(ports), f"{DSR_VIP}:80")
    bad = [(p, b, g) for p, b, g in zip(ports, first, got) if g != b]
    assert not bad, (f"{len(bad)} of {len(ports)} maglev connections failed or changed backend once "
                     f"instance 3 joined R's route ({len(moved)} moved): (port, backend, then) "
                     f"{bad[:5]}")
    # The instance R moved a connection to, and only that one, has a new flow for it, to the
    # backend the old instance's flow names.
    new_on = {p: sorted(set(after.get(p, {})) - set(before[p])) for p in ports}
    assert all(new_on[p] == ([moved[p]] if p in moved else []) for p in ports), \
        (f"new flows {[(p, new_on[p]) for p in ports if new_on[p]]} are not where R moved the "
         f"connections: {moved}")
    split = [(p, after[p]) for p in moved if len(set(after[p].values())) != 1]
    assert not split, f"moved connections with another backend on their new instance: {split[:5]}"
    midflow = [c1[i][0] - c0[i][0] for i in range(N)]
    assert midflow == [to[1], to[2], to[3]], \
        f"midflow_flows grew by {midflow} on instances 1-3; R moved {dict(to)} there"
    # The contrast: an rr VIP cannot agree on a backend without the flow; its new instance
    # drops the moved connections' segments.
    rr_got = ask(pr, "got")
    c2 = lcore_counts(env)
    release(pm)
    release(pr)
    rr_broke = {p for p, g in zip(rr_ports, rr_got) if not isinstance(g, int)}
    no_flow = sum(c2[i][1] - c1[i][1] for i in range(N))
    assert rr_moved and rr_broke == rr_moved, \
        (f"rr: R moved {len(rr_moved)}, {len(rr_broke)} broke, want the same ones (moved but "
         f"answered: {sorted(rr_moved - rr_broke)[:5]}, broke but stayed: "
         f"{sorted(rr_broke - rr_moved)[:5]})")
    assert no_flow >= len(rr_broke) and [c[0] for c in c2] == [c[0] for c in c1], \
        (f"rr: {len(rr_broke)} broke, tcp_no_flow +{no_flow}, midflow_flows "
         f"{[c[0] for c in c1]} -> {[c[0] for c in c2]} (want each dropped, none forwarded)")
    kinds = Counter(g for g in rr_got if not isinstance(g, int))
    on = Counter(next(iter(f)) for f in before.values())
    return (f"maglev ipip VIP, {len(ports)} held connections ({on[1]} / {on[2]} on instances 1 / 2, "
            f"backends {harness.fmt_counts(first)}); instance 3 added to R's multipath route: R moved "
            f"{len(moved)} ({to[2]} to 2, {to[3]} to 3); {len(ports)}/{len(ports)} answered on the "
            f"same connection by the same backend (the new flow names it too), 0 reset; "
            f"midflow_flows +{midflow[0]} / +{midflow[1]} / +{midflow[2]}. rr contrast: R moved "
            f"{len(rr_moved)} of {len(rr_ports)}, the same {len(rr_broke)} broke "
            f"({', '.join(f'{n} {k}' for k, n in kinds.items())}; tcp_no_flow +{no_flow})")


SCENARIOS = [
    ("a", "connections spread over three instances", scenario_a_spread),
    ("b", "plain ECMP: an instance leaves and comes back", scenario_b_plain),
    ("c", "resilient next-hop group: an instance leaves and comes back", scenario_c_resilient),
    ("d", "DSR, maglev: a host joins a plain multipath route", scenario_d_dsr),
]

if __name__ == "__main__":
    sys.exit(harness.run("ecmp", __file__, SCENARIOS, setup,
                         client_modes={"hold": (client_hold, _args_hold)}))
