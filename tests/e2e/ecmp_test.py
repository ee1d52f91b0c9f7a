#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""End-to-end: three rondo instances behind a router's ECMP (issue 12, item 4).

Namespaces: a router R running BIRD (AS 65000, ECMP: `merge paths`, kernel
fib_multipath_hash_policy=1, an L4 hash); clients in C behind it (10.8.0.2); the four
backends in B behind it (10.9.0.2:3000-3003); three rondo hosts L1-L3, each cabled to R by
one veth (10.0.i.0/24): on it the host's kernel (10.0.i.1, BIRD AS 6500i, announcing the
VIP through rondo-controlplane --bird-include) and rondo's dataplane (af_packet on the same
interface, local ip 10.0.i.100, routes via R). R learns 203.0.113.10/32 from the three
and installs one route with three next hops; each next hop's MAC is the host's interface,
which is rondo's port: the kernel of the host ignores the VIP's packets, rondo takes them.

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
"""

import json
import os
import signal
import subprocess
import sys
import time

import harness
from harness import VIP

N = 3
ROUTE = f"{VIP}/32"
CLIENT = "10.8.0.2"
BACKEND = "10.9.0.2"


# ---- client mode: many keep-alive connections held open ----

def client_hold(args):
    """Open --count keep-alive connections (one request each), print their source ports,
    then, on each line read from stdin, make one more request on every connection; print
    which answered. EOF ends it."""
    socks = []
    for _ in range(args.count):
        s = harness.connect_vip(3.0)
        harness.http_exchange(s, "/", close=False)
        socks.append(s)
    print(json.dumps({"ports": [s.getsockname()[1] for s in socks]}), flush=True)
    rounds = []
    for _line in sys.stdin:
        ok = []
        for s in socks:
            try:
                s.settimeout(2.0)
                harness.http_exchange(s, "/", close=False)
                ok.append(True)
            except OSError:
                ok.append(False)
        rounds.append(ok)
        print(json.dumps({"ok": ok}), flush=True)
    return {"rounds": len(rounds)}


def _args_hold(p):
    p.add_argument("--count", type=int, default=12)


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
  ipv4 {{ import all; export none; }};
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
""" + "".join(f"      - {{address: {BACKEND}, port: {p}, weight: 1}}\n" for p in harness.HTTP_BACKENDS)


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
        "--state-dir", f"{tmp}/state{i}", "--idle-sleep-us", "200", "--flows-per-worker", "65536"])
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
    env.extra_namespaces = [env.ns_r, env.ns_c, env.ns_b, *env.ns_l]
    env.extra_prefixes = [f"rondo-{t}-{i}" for i in range(1, N + 1)]
    for ns in env.extra_namespaces:
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
    harness.log(f"topology: router {env.ns_r}, clients {env.ns_c}, backends {env.ns_b}, "
                f"{N} rondo hosts {' '.join(env.ns_l)}")
    for k, v in (("net.ipv4.ip_forward", 1), ("net.ipv4.fib_multipath_hash_policy", 1)):
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


def new_connections(env, i):
    """New connections instance i's dataplane counted (all backends)."""
    r = subprocess.run([env.dpstat, "--dataplane-socket", f"{env.tmp}/dp{i}.sock", "--json"],
                       capture_output=True, text=True, timeout=10)
    if r.returncode != 0:
        return None
    return sum(int(b["connections"]) for b in json.loads(r.stdout).get("backends", []))


def owner_of(env, ports):
    """Which instance holds each client port (by `rondoctl flow list` on each)."""
    owner = {}
    for i in range(1, N + 1):
        r = subprocess.run([env.rondoctl_bin, "--socket", f"{env.tmp}/api{i}.sock", "--json", "flow",
                            "list", "--client", CLIENT, "--limit", "100000"], capture_output=True,
                           text=True, timeout=30)
        if r.returncode != 0:
            continue
        for f in json.loads(r.stdout)["flows"]:
            port = int(f["client"].rsplit(":", 1)[1])
            if port in ports and f["state"] == "established":
                owner[port] = i
    return owner


def seq(env, count):
    return env.in_ns(env.ns_c, "seq", "--count", count)


def hold(env, count):
    p = env.client_popen("hold", "--count", count, ns=env.ns_c, stdin=subprocess.PIPE)
    line = p.stdout.readline()
    if not line:
        raise AssertionError(f"the holding client failed: {p.stderr.read()[-500:]}")
    return p, json.loads(line)["ports"]


def ask(p):
    p.stdin.write("go\n")
    p.stdin.flush()
    return json.loads(p.stdout.readline())["ok"]


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
    p, ports = hold(env, 30)
    owner = owner_of(env, set(ports))
    assert len(owner) == len(ports), f"only {len(owner)} of {len(ports)} held connections found by flow list"
    took = stop_instance3(env, lambda: next_hops(env) == ["10.0.1.1", "10.0.2.1"])
    res = seq(env, 60)
    harness.check_no_errors(res, "new connections after instance 3 stopped")
    ok = ask(p)
    p.stdin.close()
    p.wait(10)
    on = {i: [k for k, pt in enumerate(ports) if owner[pt] == i] for i in (1, 2, 3)}
    moved = sum(1 for i in (1, 2) for k in on[i] if not ok[k])
    # Add it back with 30 connections held over the two.
    p, ports = hold(env, 30)
    t0 = time.monotonic()
    start_instance(env, 3)
    want = [f"10.0.{i}.1" for i in range(1, N + 1)]
    harness.wait_until("the router to add instance 3 back", 30, lambda: next_hops(env) == want, interval=0.05)
    back = time.monotonic() - t0
    ok2 = ask(p)
    p.stdin.close()
    p.wait(10)
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
    p, ports = hold(env, 30)
    owner = owner_of(env, set(ports))
    assert len(owner) == len(ports), f"only {len(owner)} of {len(ports)} held connections found by flow list"
    took = stop_instance3(env, lambda: len(group_members(env)) == 2)
    res = seq(env, 60)
    harness.check_no_errors(res, "new connections after instance 3 stopped")
    ok = ask(p)
    p.stdin.close()
    p.wait(10)
    survivors = [ok[k] for k, pt in enumerate(ports) if owner[pt] != 3]
    gone = sum(1 for pt in ports if owner[pt] == 3)
    assert all(survivors), (f"{survivors.count(False)} of {len(survivors)} established connections on "
                            f"instances 1-2 broke when instance 3 left, with a resilient group")
    # It comes back while 30 established connections keep making requests.
    before3 = new_connections(env, 3) or 0
    p, ports = hold(env, 30)
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
    p.stdin.close()
    p.wait(10)
    broken = sum(1 for k in range(len(ports)) if not all(rd[k] for rd in results))
    assert broken == 0, (f"{broken} of {len(ports)} established connections broke while instance 3 "
                         f"came back, with a resilient group")
    return (f"resilient group (64 buckets, idle timer 3 s): instance 3 left in {took:.2f}s: "
            f"{len(survivors)}/{len(survivors)} established connections on instances 1-2 still answer "
            f"(plain ECMP broke {totals['plain_removed']}), the {gone} on instance 3 went with it, 60/60 new "
            f"answered; it came back while 30 established connections made {len(results)} rounds of "
            f"requests: 0 broke (plain ECMP: {totals['plain_added']} of 30); new connections reach instance 3")


SCENARIOS = [
    ("a", "connections spread over three instances", scenario_a_spread),
    ("b", "plain ECMP: an instance leaves and comes back", scenario_b_plain),
    ("c", "resilient next-hop group: an instance leaves and comes back", scenario_c_resilient),
]

if __name__ == "__main__":
    sys.exit(harness.run("ecmp", __file__, SCENARIOS, setup,
                         client_modes={"hold": (client_hold, _args_hold)}))
