#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""End-to-end "seed scenario": rondo in front of four Node.js backends.

Topology and harness: tests/e2e/harness.py (namespaces rd-TAG-{cl,lb,be} from
tools/lib/topo.sh). VIP 203.0.113.10: tcp/80 -> 198.51.100.3:3000-3003, udp/53 ->
:4000-4003, round robin per connection; the dataplane runs one worker lcore, so round
robin is exact.

Scenarios, in order:
  a. 400 sequential HTTP connections: exactly 100 per backend
  b. 50 concurrent connections (all open at once): all answered, balanced
  c. a keep-alive connection stays on its backend while 100 others come and go
  d. 20 UDP datagrams from 20 source ports: all answered, 5 per backend
  e. kill -9 the control plane during a request loop, restart it: no request fails
  f. rondo-dpstat --json counted the connections per backend
  g. connections one after the other from the same client port (the kernel reuses a
     port at once when the server closed first) are each a new connection
  h-k. inspection: a packet trace, flow show/list/delete, recent drops, rondoctl trace
     (inspect_checks.py)
  w. weighted round-robin: a second VIP (tcp/81, added with rondoctl, scheduler wrr) over
     :3000 weight 3 and :3001 weight 1: 400 sequential connections give exactly 300:100,
     interleaved (:3001 every 4th connection, the cycle being :3000 :3000 :3001 :3000); last,
     so that it changes nothing the others count
  x. PROXY protocol v2: a third VIP (tcp/82, --proxy-protocol v2) over a backend that reads
     the header before anything else and then speaks first (a banner, as SMTP does): the
     client reads the banner without sending a byte, and the backend saw the client's own
     address and port and the VIP in the header; 20 connections. Then the first header
     segment is dropped once by an nftables rule in the backends' namespace: rondo resends it
     and the connection works

Needs root (exit 77 = skipped otherwise). Env: RONDO_BUILD (build dir), RONDO_SRC
(source dir). Everything it creates is removed at the end (see harness.py).
"""

import json
import os
import sys
import time
from collections import Counter

import harness
import inspect_checks
from harness import (HTTP_BACKENDS, UDP_BACKENDS, check_balanced, check_no_errors, fmt_counts,
                     reuse_note)


# --------------------------------------------------------------------------------------
# Scenarios. Each returns its summary line; an AssertionError fails it.
# --------------------------------------------------------------------------------------

def scenario_a_sequential(env, totals):
    res = env.in_client("seq", "--count", 400)
    check_no_errors(res, "sequential connections")
    note = reuse_note(env, res, totals)
    c = Counter(res["ports"])
    totals["tcp"] += len(res["ports"])
    assert len(res["ports"]) == 400, f"{len(res['ports'])} answers for 400 connections"
    assert set(c) == set(HTTP_BACKENDS), f"backends seen: {fmt_counts(res['ports'])}"
    assert all(c[p] == 100 for p in HTTP_BACKENDS), \
        f"round robin is not exact: {fmt_counts(res['ports'])} (want 100 each){note}"
    # Per-connection round robin: consecutive connections go to consecutive backends.
    order = res["ports"]
    bad = [i for i in range(1, len(order))
           if HTTP_BACKENDS.index(order[i]) != (HTTP_BACKENDS.index(order[i - 1]) + 1) % 4]
    assert not bad, (f"rotation broken at connection {bad[0]}: "
                     f"{order[max(0, bad[0] - 4):bad[0] + 4]}{note}")
    return f"400/400 sequential connections answered, {fmt_counts(order)}, strict rotation{note}"


def skew(env):
    """How far apart two backends' counts may be beyond the exact share: 0 with one worker
    (round robin is exact); a test with several workers sets env.skew (each worker rotates
    on its own)."""
    return getattr(env, "skew", 0)


def tcp_connections(env):
    # Backend ids are positions in the config (harness.SEED_VIPS): web's are 0-3.
    return sum(int(b["connections"]) for b in env.dpstat_json().get("backends", [])
               if int(b["id"]) < 4)


def scenario_b_concurrent(env, totals):
    res = env.in_client("concurrent", "--count", 50)
    check_no_errors(res, "concurrent connections")
    note = reuse_note(env, res, totals)
    totals["tcp"] += len(res["ports"])
    assert res["open_at_once"] == 50, f"only {res['open_at_once']} of 50 connections opened"
    assert len(res["ports"]) == 50, f"{len(res['ports'])} answers for 50 connections"
    # 50 over 4 backends cannot be exact: 12 or 13 each.
    spread = check_balanced(res["ports"], HTTP_BACKENDS, "50 concurrent connections",
                            max(1, skew(env)), note)
    return (f"50/50 concurrent connections (all open at once) answered, "
            f"{fmt_counts(res['ports'])} (spread {spread}){note}")


def scenario_c_longlived(env, totals):
    res = env.in_client("longlived", "--short", 100, "--every", 10, "--slow-ms", 2500)
    check_no_errors(res, "long-lived scenario")
    note = reuse_note(env, res, totals)
    totals["tcp"] += len(res["short_ports"]) + 2
    ka = res["ka_ports"]
    assert len(ka) == 12, f"{len(ka)} answers on the keep-alive connection, want 12"
    assert len(set(ka)) == 1, f"keep-alive connection moved between backends: {ka}"
    assert len(res["short_ports"]) == 100, f"{len(res['short_ports'])} answers for 100 short"
    check_balanced(res["short_ports"], HTTP_BACKENDS, "100 short connections", skew(env), note)
    assert res["slow_port"] in HTTP_BACKENDS, f"/slow request answered by {res['slow_port']}"
    return (f"keep-alive connection: 12/12 requests (before, 10 during, after) all on :{ka[0]}; "
            f"/slow connection held 2.5s on :{res['slow_port']}; "
            f"100 short connections {fmt_counts(res['short_ports'])}{note}")


def scenario_d_udp(env, totals):
    res = env.in_client("udp", "--count", 20)
    check_no_errors(res, "UDP datagrams")
    totals["udp"] += len(res["ports"])
    assert len(res["ports"]) == 20, f"{len(res['ports'])} UDP answers for 20 datagrams"
    assert len(set(res["src_ports"])) == 20, "datagrams did not use 20 source ports"
    spread = check_balanced(res["ports"], UDP_BACKENDS, "20 UDP flows", skew(env))
    return (f"20/20 UDP datagrams from 20 source ports answered ({res['retries']} retries), "
            f"{fmt_counts(res['ports'])} (spread {spread})")


def dataplane_generation(env):
    try:
        return env.dpstat_json().get("generation")
    except Exception:
        return None


def scenario_e_controlplane_restart(env, totals):
    dp = env.procs["dataplane"]
    stop_file = os.path.join(env.tmp, "loop.stop")
    gen_before = dataplane_generation(env)
    loop = env.client_popen("loop", "--stop-file", stop_file, "--max-seconds", 60)
    try:
        time.sleep(1.0)  # the loop runs with the control plane up
        cp = env.procs["controlplane"]
        assert cp.poll() is None, "control plane died before the kill"
        cp.kill()  # SIGKILL: no goodbye to the dataplane
        cp.wait(10)
        del env.procs["controlplane"]
        time.sleep(3.0)  # ~3 s of traffic with no control plane at all
        assert dp.poll() is None, "dataplane exited while the control plane was down"
        log_size = os.path.getsize(env.logs["controlplane"])
        env.start_controlplane()
        # The new instance finds the dataplane (and re-pushes only if its state differs):
        # wait for it to say so, but only report it, as the log wording is not an API.
        end = time.monotonic() + 10
        reconnected = False
        while not reconnected and time.monotonic() < end:
            with open(env.logs["controlplane"], errors="replace") as f:
                f.seek(log_size)
                reconnected = "connected to dataplane" in f.read()
            if not reconnected:
                time.sleep(0.1)
        gen_after = dataplane_generation(env)
        time.sleep(2.0)  # and traffic goes on after the restart
        assert env.procs["controlplane"].poll() is None, "restarted control plane exited"
    finally:
        open(stop_file, "w").close()
        out, err = loop.communicate(timeout=60)
    assert loop.returncode == 0, f"request loop exited {loop.returncode}: {err.strip()}"
    res = env.note_connects(json.loads(out))
    note = reuse_note(env, res, totals)
    totals["tcp"] += len(res["ports"])
    check_no_errors(res, "requests across the control-plane kill/restart")
    assert len(res["ports"]) >= 20, f"only {len(res['ports'])} requests in {res['seconds']:.1f}s"
    assert dp.poll() is None, "dataplane exited"
    gen_note = (f"generation {gen_before} -> {gen_after}" if gen_after != gen_before
                else f"generation unchanged ({gen_before})")
    gen_note += ("; the new control plane reconnected" if reconnected
                 else "; no 'connected to dataplane' in the new control plane's log")
    return (f"{len(res['ports'])}/{len(res['ports'])} requests ok over {res['seconds']:.1f}s with the "
            f"control plane killed (-9) for 3s and restarted; {gen_note}; "
            f"{fmt_counts(res['ports'])}{note}")


def scenario_f_dpstat(env, totals):
    # Backend ids are positions over all vips in config order (deploy/rondo.yaml):
    # web's backends are ids 0-3 (:3000-3003), dns's are ids 4-7 (:4000-4003).
    stats = env.dpstat_json()
    by_id = {int(b["id"]): b for b in stats.get("backends", [])}
    conns = {i: int(by_id[i]["connections"]) if i in by_id else 0 for i in range(8)}
    shown = " ".join(f"id{i}={conns[i]}" for i in range(8))
    assert all(conns[i] > 0 for i in range(8)), f"backends without connections: {shown}"
    tcp = sum(conns[i] for i in range(4))
    udp = sum(conns[i] for i in range(4, 8))
    reused = (f" ({totals['reused']} of them reused a client source port within "
              f"{env.reuse_window_s}s)" if totals["reused"] else "")
    assert tcp >= totals["tcp"], (f"dataplane counted {tcp} tcp connections, the clients made "
                                  f"at least {totals['tcp']}{reused}")
    assert all(conns[i] == 5 for i in range(4, 8)), \
        f"dataplane's udp flow counts are not 5 per backend: {shown}"
    workers = stats.get("dataplane", {}).get("workers")
    drops = Counter()
    for lc in stats.get("lcores", []):
        drops.update({k: int(v) for k, v in lc.get("drops", {}).items()})
    drop_text = " ".join(f"{k}={v}" for k, v in sorted(drops.items()) if v) or "none"
    # Kernel clients and servers (window scaling, SACK, timestamps, delayed ACKs): the TCP
    # tracker must find every one of their segments in the window.
    assert drops["tcp_out_of_window"] == 0, f"real TCP traffic dropped as out of window: {drop_text}"
    return (f"dpstat ({workers} worker(s)): tcp connections {tcp} (clients made >= {totals['tcp']}), "
            f"udp flows {udp}; per backend {shown}; drops: {drop_text}")


def scenario_g_port_reuse(env, totals):
    # With several workers one 5-tuple always lands on one worker and takes four
    # consecutive turns of its rotation: the same strictness applies.
    before = tcp_connections(env)
    res = env.in_client("sameport", "--count", 4, "--port", harness.SAME_PORT)
    check_no_errors(res, "connections from one source port")
    totals["tcp"] += len(res["ports"])
    counted = tcp_connections(env) - before
    assert len(set(res["ports"])) == 4 and counted == 4, (
        f"4 connections one after the other from client port {harness.SAME_PORT} went to "
        f"{' '.join(f':{p}' for p in res['ports'])} and the dataplane counted {counted} new "
        f"connection(s): a SYN that meets the previous connection's (closing) flow must start "
        f"a new flow (next backend in turn), not reuse the old one")
    return (f"4 connections from one client source port (reused at once) went to "
            f"{' '.join(f':{p}' for p in res['ports'])}; dataplane counted {counted} new")


WRR_PORT = 81  # after (j), which needs :81 to be a port no VIP serves


def scenario_w_weighted(env, totals):
    vip = f"{harness.VIP}:{WRR_PORT}"
    env.rondoctl_ok("vip", "add", "weighted", vip, "--scheduler", "wrr")
    env.rondoctl_ok("backend", "add", "weighted", f"{harness.BACKEND_IP}:3000", "--weight", "3")
    env.rondoctl_ok("backend", "add", "weighted", f"{harness.BACKEND_IP}:3001", "--weight", "1")
    shown = env.rondoctl_json("show", "weighted")["vips"][0]
    assert shown["scheduler"] == "wrr", f"rondoctl show: scheduler {shown['scheduler']}"
    assert " wrr " in env.rondoctl_ok("show", "weighted").stdout
    # The dataplane has it once a connection is answered (the probe retries, 20 s deadline).
    probe = env.in_client("probe", "--vip-port", WRR_PORT)
    assert probe["ok"], f"vip {vip} never answered: {probe.get('error')}"
    res = env.in_client("seq", "--count", 400, "--vip-port", WRR_PORT)
    check_no_errors(res, "wrr connections")
    note = reuse_note(env, res, totals)
    c = Counter(res["ports"])
    assert len(res["ports"]) == 400, f"{len(res['ports'])} answers for 400 connections"
    assert c[3000] == 300 and c[3001] == 100 and len(c) == 2, \
        f"wrr 3:1 is not exact: {fmt_counts(res['ports'])} (want :3000 300, :3001 100){note}"
    # Smooth: the cycle is :3000 :3000 :3001 :3000, so :3001 comes every 4th connection.
    order = res["ports"]
    b_at = [k for k, p in enumerate(order) if p == 3001]
    gaps = {j - i for i, j in zip(b_at, b_at[1:])}
    assert gaps == {4}, f":3001 every {sorted(gaps)} connections, want every 4th{note}"
    return f"400/400 connections to {vip} (wrr 3:1): {fmt_counts(order)}, :3001 every 4th{note}"


PROXY_PORT = 82         # the VIP port of scenario x
PROXY_BACKEND = 3010   # its backend's port
PP2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def client_proxy_server(args):
    """Backend side of scenario x (runs until killed): for each connection, read the
    PROXY v2 header (before anything else: it arrives without the client sending), send a
    banner, read one line, answer with the addresses the header carried, close."""
    import socket
    import struct
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", args.port))
    srv.listen(64)

    def read_exact(c, n):
        b = b""
        while len(b) < n:
            chunk = c.recv(n - len(b))
            if not chunk:
                raise OSError("closed")
            b += chunk
        return b

    while True:
        c, _ = srv.accept()
        try:
            c.settimeout(10)
            head = read_exact(c, 16)
            if head[:12] != PP2_SIG or head[12] != 0x21 or head[13] != 0x11:
                c.sendall(b"500 no PROXY v2 header: " + head.hex().encode() + b"\r\n")
                continue
            body = read_exact(c, struct.unpack("!H", head[14:16])[0])
            src, dst = socket.inet_ntoa(body[0:4]), socket.inet_ntoa(body[4:8])
            sport, dport = struct.unpack("!HH", body[8:12])
            c.sendall(b"220 banner first\r\n")
            line = b""
            while not line.endswith(b"\n"):
                chunk = c.recv(100)
                if not chunk:
                    break
                line += chunk
            c.sendall(f"250 {src}:{sport} {dst}:{dport}\r\n".encode())
        except OSError:
            pass
        finally:
            c.close()


def _args_proxy_server(p):
    p.add_argument("--port", type=int, default=PROXY_BACKEND)


def client_proxy_talk(args):
    """Client side of scenario x: --count connections; on each, read the banner without
    sending anything, send one line, read the answer."""
    import socket
    out = []
    for _ in range(args.count):
        s = socket.create_connection((harness.VIP, PROXY_PORT), timeout=args.timeout)
        try:
            f = s.makefile("rb")
            banner = f.readline().decode().strip()
            s.sendall(b"WHO\r\n")
            answer = f.readline().decode().strip()
            out.append({"port": s.getsockname()[1], "banner": banner, "answer": answer})
        except OSError as e:
            out.append({"port": s.getsockname()[1], "error": str(e)})
        finally:
            s.close()
    return {"conns": out}


def _args_proxy_talk(p):
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--timeout", type=float, default=5.0)


def nft_be(env, *args):
    import subprocess
    r = subprocess.run(["ip", "netns", "exec", env.ns_be, "nft", *args], capture_output=True, text=True)
    assert r.returncode == 0, f"nft {' '.join(args)}: {r.stderr.strip()}"
    return r.stdout


def scenario_x_proxy_v2(env, totals):
    env.spawn("proxy-backend", env.ns_be, [sys.executable, env.script, "--client", "proxyserver"])
    harness.wait_until("the PROXY v2 backend to listen", 10, lambda: env.ns_has_listener("tcp", PROXY_BACKEND))
    vip = f"{harness.VIP}:{PROXY_PORT}"
    env.rondoctl_ok("vip", "add", "proxied", vip, "--proxy-protocol", "v2")
    env.rondoctl_ok("backend", "add", "proxied", f"{harness.BACKEND_IP}:{PROXY_BACKEND}")

    def answered():  # the dataplane has the VIP once a connection is answered
        try:
            c = env.in_client("proxytalk", "--timeout", 2)["conns"][0]
        except AssertionError:
            return None
        return c if "answer" in c else None
    harness.wait_until(f"vip {vip} to answer", 20, answered)
    conns = env.in_client("proxytalk", "--count", 20)["conns"]
    for c in conns:
        assert "error" not in c, f"connection from :{c['port']} failed: {c['error']}"
        assert c["banner"] == "220 banner first", f"banner {c['banner']!r} (from :{c['port']})"
        want = f"250 {harness.CLIENT_IP}:{c['port']} {vip}"
        assert c["answer"] == want, f"the backend saw {c['answer']!r}, want {want!r}"
    # Lose the first header segment once: rondo resends it.
    nft_be(env, "add", "table", "inet", "rondo_x")
    nft_be(env, "add", "chain", "inet", "rondo_x", "in", "{ type filter hook input priority 0 ; }")
    nft_be(env, "add", "set", "inet", "rondo_x", "seen", "{ type inet_service ; flags dynamic ; }")
    # The first PROXY v2 segment from each client port is dropped (its port goes in the set).
    nft_be(env, "add", "rule", "inet", "rondo_x", "in", "tcp", "dport", str(PROXY_BACKEND),
           "@ih,0,32", "0x0d0a0d0a", "tcp", "sport", "!=", "@seen",
           "add", "@seen", "{", "tcp", "sport", "}", "counter", "drop")
    try:
        t0 = time.monotonic()
        lost = env.in_client("proxytalk", "--count", 3, "--timeout", 10)["conns"]
        took = time.monotonic() - t0
        dropped = nft_be(env, "list", "chain", "inet", "rondo_x", "in")
    finally:
        nft_be(env, "delete", "table", "inet", "rondo_x")
    assert "counter packets 3 " in dropped, f"the nftables rule did not drop 3 header segments:\n{dropped}"
    for c in lost:
        assert "error" not in c, f"connection from :{c['port']} failed after its header was dropped: {c['error']}"
        want = f"250 {harness.CLIENT_IP}:{c['port']} {vip}"
        assert c["banner"] == "220 banner first" and c["answer"] == want, f"after a lost header: {c}"
    env.terminate("proxy-backend")
    return (f"20/20 connections: banner read before the client sent anything, the backend saw "
            f"{harness.CLIENT_IP}:<client port> and {vip} in the header; 3 connections whose first "
            f"header segment was dropped (nftables) worked through rondo's resend in {took:.1f}s")


SCENARIOS = [
    ("a", "sequential round robin", scenario_a_sequential),
    ("b", "concurrent connections", scenario_b_concurrent),
    ("c", "long-lived connection", scenario_c_longlived),
    ("d", "udp", scenario_d_udp),
    ("e", "control plane kill -9/restart", scenario_e_controlplane_restart),
    ("f", "dataplane counters", scenario_f_dpstat),
    ("g", "new connection on a just-used client port", scenario_g_port_reuse),
    *inspect_checks.SCENARIOS,
    ("w", "weighted round-robin 3:1", scenario_w_weighted),
    ("x", "PROXY protocol v2", scenario_x_proxy_v2),
]
# In order: (e) restarts the control plane, (f) counts what (a)-(e) did.

if __name__ == "__main__":
    sys.exit(harness.run("seed", __file__, SCENARIOS, lambda env: env.start_seed(),
                         client_modes=dict(inspect_checks.CLIENT_MODES,
                         proxyserver=(client_proxy_server, _args_proxy_server),
                         proxytalk=(client_proxy_talk, _args_proxy_talk))))
