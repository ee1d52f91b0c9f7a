#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""End-to-end: rondo's dataplane on a bond of two ports (issue 9, item 3: an interface may be
a bond, edge hosts are dual-homed), active-backup, failing over and back under traffic.

Topology: tools/lib/topo.sh's (client, backends and br0, the "switch"), and instead of dp0
the dataplane runs on net_bonding0 (mode=1, primary net_tap0) over two net_tap members
whose kernel interfaces rtap0 and rtap1 are each cabled to a port of br0:

    rondo: net_bonding0 ─┬─ net_tap0 ═ rtap0 ──tc── bm0 ── bm0p ─┐
                         └─ net_tap1 ═ rtap1 ──tc── bm1 ── bm1p ─┴─ br0 ── client, backends

The "cable" is a veth whose far end (bmNp) is the switch port, joined to the tap by two tc
mirred redirects (bm_cable()). Why not rtapN in br0 directly: net_tap gives the kernel
interface the DPDK port's MAC, and the bonding PMD sets the bond's MAC on the member it
sends on, so br0 would hold our MAC as a local address of its own and keep the client's
frames to the VIP for itself. net_tap, not net_af_packet: af_packet's link is always up in
DPDK 22.11, so a bond over it never fails over.

Cutting a cable is the tap's link going down (the dataplane's side: the bond polls it every
10 ms) and the switch port going down (br0 forgets the MAC it learned there).

Scenarios, in order:
  a. the bond: members are no ports of their own, active-backup sends on net_tap0
  b. a stream of HTTP requests (a new connection each, and a keep-alive connection beside)
     while net_tap0's cable is cut and then mended: 0 failed requests, the bond reports
     net_tap1 then net_tap0 again, the keep-alive connection keeps its backend; the longest
     request is the interruption, reported
  c. with no traffic, the cable cut and mended again: br0 learns our MAC on bm1p, then on bm0p
     again, from the gratuitous ARP the dataplane sends when the bond changes member (the
     bonding PMD sends none; a switch port going down only makes br0 forget the MAC)
  d. a second dataplane, 802.3ad over a tap (no dedicated queues), with --idle-sleep-us 60000:
     refused at start (its LACPDUs need a burst on the bond at least every 100 ms)
  e. two more dataplanes, each on an 802.3ad bond over two taps wired member to member: LACP
     reaches "distributing" on both members of both (the LACPDUs ride in the workers' bursts),
     and a member whose link goes down leaves the aggregate (no Linux LACP partner here: the
     kernel has no bonding module, so rondo is its own partner)

Needs root (exit 77 = skipped otherwise). Env: RONDO_BUILD, RONDO_SRC.
"""

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time

import harness
from harness import (HTTP_BACKENDS, ONE_WORKER_EAL, check_no_errors, fmt_counts, log,
                     reuse_note, tail, wait_until)

MEMBERS = ("net_tap0", "net_tap1")
BOND = "net_bonding0"


# --------------------------------------------------------------------------------------
# Client mode "stream": requests on new connections, and on one keep-alive connection.
# --------------------------------------------------------------------------------------

def client_stream(args):
    """Until the stop file appears: HTTP requests each on a new connection, and beside them
    requests on one keep-alive connection every 20 ms. Writes the counts to args.progress
    (atomically) as they go, so the harness can wait on them. Reports each kind's count,
    errors, longest request (s) and when it was (s after start)."""
    start = time.monotonic()
    lock = threading.Lock()
    st = {"new": 0, "ka": 0}
    errors = []
    worst = {"new": (0.0, 0.0), "ka": (0.0, 0.0)}
    ka_ports = []

    slow = []  # (kind, seconds taken, wall-clock start): requests over 100 ms

    def note(kind, t0):
        took = time.monotonic() - t0
        with lock:
            st[kind] += 1
            if took > worst[kind][0]:
                worst[kind] = (took, t0 - start)
            if took > 0.1:
                slow.append((kind, took, time.time() - took))

    def save():
        with lock:
            data = json.dumps(st)
        tmp = args.progress + ".tmp"
        with open(tmp, "w") as f:
            f.write(data)
        os.replace(tmp, args.progress)

    def keepalive():
        try:
            sock = harness.connect_vip(3.0)
        except OSError as e:
            errors.append(f"keep-alive connect: {harness.err_text(e)}")
            return
        with sock:
            sock.settimeout(5.0)
            while not stopped.is_set():
                t0 = time.monotonic()
                try:
                    ka_ports.append(harness.http_exchange(sock, "/", close=False))
                except OSError as e:
                    errors.append(f"keep-alive at {t0 - start:.2f}s: {harness.err_text(e)}")
                    return
                note("ka", t0)
                time.sleep(0.02)

    stopped = threading.Event()
    ka = threading.Thread(target=keepalive)
    ka.start()
    ports = []
    while not os.path.exists(args.stop_file):
        if time.monotonic() - start > args.max_seconds:
            errors.append(f"stop file never appeared within {args.max_seconds}s")
            break
        t0 = time.monotonic()
        try:
            ports.append(harness.one_request(timeout=5.0))
            note("new", t0)
        except OSError as e:
            errors.append(f"at {t0 - start:.2f}s: {harness.err_text(e)}")
        save()
        time.sleep(0.01)
    stopped.set()
    ka.join(10)
    save()
    return {"ports": ports, "ka_ports": ka_ports, "counts": st, "errors": errors,
            "worst": worst, "slow": slow, "seconds": time.monotonic() - start}


def _args_stream(p):
    p.add_argument("--stop-file", required=True)
    p.add_argument("--progress", required=True)
    p.add_argument("--max-seconds", type=float, default=60)


CLIENT_MODES = {"stream": (client_stream, _args_stream)}


# --------------------------------------------------------------------------------------
# The bond's topology and dataplane.
# --------------------------------------------------------------------------------------

def sh(*argv):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {r.returncode}: {r.stderr.strip()}")
    return r.stdout


def bm_cable(env, i):
    """Cable rtapI (the dataplane's member, once it runs) to switch port bmIp of br0: a veth
    bmI-bmIp, and tc redirects between rtapI and bmI both ways (a wire: no MAC learning, no
    local addresses)."""
    ns = env.ns_lb
    tap, wire, port = f"rtap{i}", f"bm{i}", f"bm{i}p"
    sh("ip", "-n", ns, "link", "add", "name", wire, "type", "veth", "peer", "name", port)
    for dev in (wire, port):
        sh("ip", "netns", "exec", ns, "ethtool", "-K", dev, "tx", "off", "rx", "off", "tso", "off",
           "gso", "off", "gro", "off")
    sh("ip", "-n", ns, "link", "set", port, "master", "br0", "up")
    sh("ip", "-n", ns, "link", "set", wire, "up")
    for a, b in ((tap, wire), (wire, tap)):
        sh("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", a, "clsact")
        sh("ip", "netns", "exec", ns, "tc", "filter", "add", "dev", a, "ingress", "protocol", "all",
           "u32", "match", "u32", "0", "0", "action", "mirred", "egress", "redirect", "dev", b)


def cable(env, i, up):
    """Cut (up=False) or mend cable i: the tap's link (what the dataplane sees) and the
    switch port (what br0 sees). Mended switch side first, so that the gratuitous ARP the
    dataplane sends when it takes the member back finds the port up."""
    state = "up" if up else "down"
    order = (f"bm{i}p", f"rtap{i}") if up else (f"rtap{i}", f"bm{i}p")
    for dev in order:
        sh("ip", "-n", env.ns_lb, "link", "set", dev, state)


def start_bond_dataplane(env):
    """The dataplane on net_bonding0 (active-backup, primary net_tap0) over net_tap0 and
    net_tap1 (kernel sides rtap0, rtap1 in the lb namespace); harness.start_dataplane with
    other --vdev arguments."""
    log(f"dataplane on {BOND} (mode 1) over {', '.join(MEMBERS)}")
    # The bond first: it is port 0, where the config's routes (none here) send by default.
    vdevs = [f"--vdev={BOND},mode=1," + ",".join(f"slave={m}" for m in MEMBERS) +
             f",primary={MEMBERS[0]}"]
    vdevs += [f"--vdev={m},iface=rtap{i}" for i, m in enumerate(MEMBERS)]
    dp = env.spawn("dataplane", env.ns_lb, [
        env.dataplane, *ONE_WORKER_EAL, "--no-huge", "-m", "512", "--no-pci",
        "--file-prefix", env.file_prefix, *vdevs, "--log-level=*:notice",
        "--", "--ctl-socket", env.sock, "--state-dir", os.path.join(env.tmp, "state"),
        "--idle-sleep-us", "50"])
    wait_until("the dataplane to print 'ready'", 30,
               lambda: "ready" in tail(env.logs["dataplane"], 1000), interval=0.2,
               alive=[("rondo-dataplane", dp)])
    return dp


def dp_log(env, since=0):
    with open(env.logs["dataplane"], errors="replace") as f:
        f.seek(since)
        return f.read()


def bond_lines(env, since=0):
    """The dataplane's "bond active-backup: ..." lines since log offset `since`."""
    return [l for l in dp_log(env, since).splitlines() if f"({BOND}): bond active-backup:" in l]


def sends_on(line):
    m = re.search(r"sends on (\d+) \((\S+)\)", line)
    return m.group(2) if m else None


def wait_sends_on(env, member, since, deadline_s, t0=None):
    """Wait for the dataplane to log that the bond sends on `member` (after log offset
    since); return how long it took since t0 (default: now), as seen from here (10 ms polls)."""
    t0 = time.monotonic() if t0 is None else t0
    wait_until(f"the bond to send on {member}", deadline_s,
               lambda: any(sends_on(l) == member for l in bond_lines(env, since)),
               interval=0.01, alive=[("rondo-dataplane", env.procs["dataplane"])])
    return time.monotonic() - t0


def setup(env):
    env.topology_up()
    env.start_backends(udp_ports=None)
    start_bond_dataplane(env)
    for i in range(len(MEMBERS)):
        bm_cable(env, i)
    env.write_config(vips=[{"name": "web", "port": harness.HTTP_PORT, "protocol": "tcp",
                            "backends": HTTP_BACKENDS}])
    log("control plane")
    env.start_controlplane()
    env.wait_vip()


# --------------------------------------------------------------------------------------
# Scenarios.
# --------------------------------------------------------------------------------------

def scenario_a_bond(env, totals):
    text = dp_log(env)
    members = re.findall(r"port (\d+): member of bond port (\d+)", text)
    assert len(members) == 2 and len({b for _, b in members}) == 1, f"members: {members}"
    bond_id = members[0][1]
    m = re.search(rf"port {bond_id} \({BOND}\): bond active-backup of (.*)", text)
    assert m and all(x in m.group(1) for x in MEMBERS), f"no bond line for port {bond_id}"
    ready = re.search(r"ready: (\d+) ports", text)
    assert ready and ready.group(1) == "1", f"the dataplane runs {ready and ready.group(1)} ports, not 1 (the bond)"
    lines = bond_lines(env)
    assert lines and sends_on(lines[-1]) == MEMBERS[0], f"bond lines: {lines}"
    return f"port {bond_id} = {BOND} of ports {', '.join(p for p, _ in members)}, sends on {MEMBERS[0]}"


def progress(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {"new": 0, "ka": 0}


def scenario_b_failover(env, totals):
    stop_file = os.path.join(env.tmp, "stream.stop")
    prog = os.path.join(env.tmp, "stream.progress")
    stream = env.client_popen("stream", "--stop-file", stop_file, "--progress", prog,
                              "--max-seconds", 50)
    phases = []

    def more_requests(n, what):
        # n more requests of each kind (new connection, keep-alive) since now.
        base = progress(prog)
        wait_until(f"{n} more requests {what}", 15,
                   lambda: all(progress(prog)[k] >= base[k] + n for k in ("new", "ka")),
                   interval=0.05, alive=[("the request stream", stream)])

    try:
        more_requests(20, "before the cut")
        since = os.path.getsize(env.logs["dataplane"])
        t_cut = time.monotonic()
        events = [("cut", time.time())]
        cable(env, 0, up=False)
        phases.append(f"failover {wait_sends_on(env, MEMBERS[1], since, 5, t_cut) * 1000:.0f} ms")
        more_requests(30, f"on {MEMBERS[1]}")
        since = os.path.getsize(env.logs["dataplane"])
        events.append(("mend", time.time()))
        t_mend = time.monotonic()
        cable(env, 0, up=True)
        phases.append(f"failback {wait_sends_on(env, MEMBERS[0], since, 5, t_mend) * 1000:.0f} ms")
        more_requests(30, f"back on {MEMBERS[0]}")
        cut_s = time.monotonic() - t_cut
    finally:
        open(stop_file, "w").close()
        out, err = stream.communicate(timeout=60)
    assert stream.returncode == 0, f"request stream exited {stream.returncode}: {err.strip()}"
    res = env.note_connects(json.loads(out))
    note = reuse_note(env, res, totals)
    check_no_errors(res, "requests across the failover and failback")
    assert len(set(res["ka_ports"])) == 1, f"the keep-alive connection changed backend: {fmt_counts(res['ka_ports'])}"
    worst_new, worst_ka = res["worst"]["new"], res["worst"]["ka"]

    def when(t):
        # The event a slow request started closest after (clocks of one machine).
        ev = [(t - at, name) for name, at in events if t >= at - 0.05]
        return f"{min(ev)[0] * 1000:+.0f} ms after the {min(ev)[1]}" if ev else "before the cut"
    slow = "; ".join(f"{'keep-alive' if k == 'ka' else 'new'} {took * 1000:.0f} ms, {when(t)}"
                     for k, took, t in res["slow"]) or "none"
    totals["tcp"] += len(res["ports"]) + len(res["ka_ports"])
    return (f"{len(res['ports'])} new-connection and {len(res['ka_ports'])} keep-alive requests, "
            f"0 failed, over {res['seconds']:.1f}s ({cut_s:.1f}s from the cut to the end); "
            f"{', '.join(phases)} (from the cable's first command to the bond's log line); longest request "
            f"{worst_new[0] * 1000:.0f} ms, keep-alive {worst_ka[0] * 1000:.0f} ms; requests "
            f"over 100 ms: {slow}; {fmt_counts(res['ports'])}{note}")


def our_mac(env):
    m = re.search(rf"port \d+: {BOND} \(net_bonding\) mac ([0-9a-f:]+)", dp_log(env))
    assert m, "no MAC in the dataplane's port line"
    return m.group(1)


def switch_ports_of(env, mac):
    """The br0 ports that its forwarding table has `mac` on (learned entries)."""
    fdb = sh("bridge", "-n", env.ns_lb, "fdb", "show", "br", "br0")
    return [l.split()[2] for l in fdb.splitlines() if l.startswith(mac + " ")]


def scenario_c_announced(env, totals):
    mac = our_mac(env)
    out = []
    # No traffic through rondo now: only the dataplane's own gratuitous ARP can teach br0
    # where our MAC went (the port that went down took its entries with it).
    for up, member, port in ((False, MEMBERS[1], "bm1p"), (True, MEMBERS[0], "bm0p")):
        since = os.path.getsize(env.logs["dataplane"])
        t0 = time.monotonic()
        cable(env, 0, up=up)
        wait_sends_on(env, member, since, 5)
        wait_until(f"br0 to learn {mac} on {port}", 2,
                   lambda: switch_ports_of(env, mac) == [port], interval=0.01)
        out.append(f"{'mended' if up else 'cut'}: on {port} after {(time.monotonic() - t0) * 1000:.0f} ms")
    return f"our MAC {mac}, with no traffic: " + "; ".join(out)


def scenario_d_lacp_needs_bursts(env, totals):
    # An 802.3ad bond over a tap (no rte_flow: no dedicated queues) sends its LACPDUs only
    # from inside the workers' bursts, which a worker sleeping 60 ms when idle cannot promise
    # every 100 ms: the dataplane must refuse to start, naming the bond and the option.
    prefix = f"{env.file_prefix}-lacp"
    env.extra_prefixes.append(prefix)
    argv = ["ip", "netns", "exec", env.ns_lb, env.dataplane, *ONE_WORKER_EAL, "--no-huge",
            "-m", "512", "--no-pci", "--file-prefix", prefix,
            "--vdev=net_bonding9,mode=4,slave=net_tap9", "--vdev=net_tap9,iface=rtap9",
            "--log-level=*:notice", "--", "--ctl-socket", os.path.join(env.tmp, "lacp.sock"),
            "--state-dir", os.path.join(env.tmp, "lacp-state"), "--idle-sleep-us", "60000"]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    out = r.stdout + r.stderr
    assert r.returncode != 0, f"the dataplane started (exit {r.returncode}):\n{out[-1500:]}"
    # net_tap validates the slow-frame rule, but on a kernel without the flower classifier
    # (as here) refuses it at start: either way, no dedicated queues.
    assert "802.3ad without dedicated queues (" in out, out[-1500:]
    m = re.search(r"port net_bonding9: 802\.3ad without dedicated queues needs .*", out)
    assert m and "--idle-sleep-us must be below 50000" in m.group(0), f"no refusal naming the bond:\n{out[-1500:]}"
    return f"exit {r.returncode}: {m.group(0)}"


def lacp_state(env, name, bond):
    """(active members, distributing members) of 802.3ad bond `bond` as dataplane `name`
    last logged them, by device name; None before its first line."""
    lines = [l for l in tail(env.logs[name], 2000).splitlines() if f"({bond}): bond 802.3ad:" in l]
    if not lines:
        return None
    m = re.search(r"members active: (.*?) \(were .*\); distributing: (.*?) \(were ", lines[-1])
    assert m, f"unexpected line: {lines[-1]}"
    return tuple(frozenset(re.findall(r"\((\S+)\)", g)) for g in m.groups())


def scenario_e_lacp(env, totals):
    # Two more dataplanes, each on an 802.3ad bond over two taps, the taps wired pairwise
    # (rtapaI to rtapbI): each is the other's LACP partner, through the real worker loop
    # (no dedicated queues on taps here: LACPDUs in the workers' bursts).
    sides = {}
    for side in "ab":
        name, bond = f"lacp-{side}", f"net_bonding_{side}"
        members = [f"net_tap_{side}{i}" for i in range(2)]
        prefix = f"{env.file_prefix}-{side}"
        env.extra_prefixes.append(prefix)
        env.spawn(name, env.ns_lb, [
            env.dataplane, *ONE_WORKER_EAL, "--no-huge", "-m", "512", "--no-pci", "--file-prefix",
            prefix, f"--vdev={bond},mode=4," + ",".join(f"slave={m}" for m in members),
            *[f"--vdev={m},iface=rtap{side}{i}" for i, m in enumerate(members)],
            "--log-level=*:notice", "--", "--ctl-socket", os.path.join(env.tmp, f"{name}.sock"),
            "--state-dir", os.path.join(env.tmp, f"{name}-state"), "--idle-sleep-us", "50"])
        sides[side] = (name, bond, frozenset(members))
    try:
        for name, _, _ in sides.values():
            wait_until(f"{name} to print 'ready'", 30, lambda: "ready" in tail(env.logs[name], 1000),
                       interval=0.1, alive=[(name, env.procs[name])])
            assert "802.3ad without dedicated queues (" in tail(env.logs[name], 1000), \
                f"{name}: no word of where its LACPDUs go"
        t0 = time.monotonic()
        for i in range(2):
            for a, b in ((f"rtapa{i}", f"rtapb{i}"), (f"rtapb{i}", f"rtapa{i}")):
                sh("ip", "netns", "exec", env.ns_lb, "tc", "qdisc", "add", "dev", a, "clsact")
                sh("ip", "netns", "exec", env.ns_lb, "tc", "filter", "add", "dev", a, "ingress",
                   "protocol", "all", "u32", "match", "u32", "0", "0", "action", "mirred", "egress",
                   "redirect", "dev", b)
        alive = [(n, env.procs[n]) for n, _, _ in sides.values()]
        # LACP's timers (a 2 s aggregation wait among them) bound this; 20 s is a deadline.
        for name, bond, members in sides.values():
            wait_until(f"{name}: LACP distributing on both members", 20,
                       lambda: (lacp_state(env, name, bond) or (None, None))[1] == members,
                       interval=0.05, alive=alive)
        converged = time.monotonic() - t0
        # A's second member loses its link: A takes it out at once (its link is polled).
        name, bond, members = sides["a"]
        t1 = time.monotonic()
        sh("ip", "-n", env.ns_lb, "link", "set", "rtapa1", "down")
        wait_until(f"{name}: net_tap_a1 out of the aggregate", 5,
                   lambda: lacp_state(env, name, bond) == ({"net_tap_a0"}, {"net_tap_a0"}),
                   interval=0.01, alive=alive)
        out = time.monotonic() - t1
    finally:
        for name, _, _ in sides.values():
            env.terminate(name)
    return (f"two dataplanes on 802.3ad bonds, wired member to member: both distributing on both "
            f"members {converged:.1f}s after the wiring; a member's link down: out of the "
            f"aggregate after {out * 1000:.0f} ms")


SCENARIOS = [
    ("a", "the bond: one port of two members, active-backup on net_tap0", scenario_a_bond),
    ("b", "requests while net_tap0's cable is cut and mended", scenario_b_failover),
    ("c", "the switch learns where our MAC went from the dataplane's announcements", scenario_c_announced),
    ("d", "802.3ad over a tap with a 60 ms idle sleep is refused", scenario_d_lacp_needs_bursts),
    ("e", "LACP between two dataplanes on 802.3ad bonds", scenario_e_lacp),
]

if __name__ == "__main__":
    sys.exit(harness.run("bond", __file__, SCENARIOS, setup, client_modes=CLIENT_MODES))
