#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""End-to-end: changing the pool under live traffic (issue 3).

The seed topology (harness.py; vip web 203.0.113.10:80/tcp -> 198.51.100.3:3000-3003,
one worker lcore) with HTTP health checks every 200 ms (fall 2, rise 2) and a 2 s
tcp_closing timeout. From set-up to the last scenario a client in the client namespace
runs the "traffic" mode: sequential short connections, one after the other, plus four
keep-alive connections (one per backend) that send a request every 0.5 s. It records
every request (start and end time on CLOCK_MONOTONIC, which all namespaces share,
answering backend or error) as JSON lines in a file the scenarios read.

Scenarios, in order (each builds on the one before):
  1. add a fifth backend (:3004): it gets new connections; no request fails
  2. drain :3001: no new connection from the moment `drain` returned; its keep-alive
     connection keeps working; `remove` without --force is refused (exit 1) while it is
     open; `drain --wait --timeout 30` returns 0 once the client closed it; `remove` works
  3. kill -9 :3002's server: health checks take it down within the configured time, no
     request that starts after that fails or goes to it; restarted, it comes back
  4. drain :3000, kill -9 the control plane, restart it: no request fails, and the state
     (added :3004, removed :3001, drained :3000, ids) is what it was
  5. stop the traffic: /metrics passes `promtool check metrics`, and
     rondo_backend_connections_total matches the connections the client made, per backend
  6. every metric and label the alert rules (deploy/prometheus) and the Grafana dashboard
     (deploy/grafana) query is in this live /metrics (tests/common/monitoring.py)

Needs root (exit 77 = skipped otherwise). Env: RONDO_BUILD, RONDO_SRC.
"""

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
import monitoring  # noqa: E402

import harness
from harness import (BACKEND_IP, HTTP_BACKENDS, HTTP_PORT, connect_vip, err_text, fmt_counts,
                     http_exchange, log, parse_metrics, wait_until)

HEALTH = {"type": "http", "path": "/", "interval_ms": 200, "timeout_ms": 200, "rise": 2, "fall": 2}
TCP_CLOSING_S = 2   # short, so that a drained backend's last flows end soon after the close
METRICS = "127.0.0.1:9842"  # in the lb namespace, like the control plane
NEW = 3004          # scenario 1 adds it
DRAINED = 3001      # scenario 2 drains and removes it
KILLED = 3002       # scenario 3 kills and restarts its server
CP_DRAINED = 3000   # scenario 4 drains it before killing the control plane
KA_COUNT = 4
KA_INTERVAL_S = 0.5


def addr(port):
    return f"{BACKEND_IP}:{port}"


# --------------------------------------------------------------------------------------
# Client mode "traffic": runs in the client namespace until told to stop.
# --------------------------------------------------------------------------------------

def client_traffic(args):
    """Records, one JSON object per line in args.records:
      {"k": "s", "n", "t0", "t1", "port"} or {..., "err", "connected"}   a short connection
      {"k": "ka_open", "id", "port", "t0", "t1"}                          a keep-alive opened
      {"k": "ka", "id", "port", "t0", "t1", "ok", "err"?}                 a request on it
      {"k": "ka_close", "id", "port", "t"}                                 closed by us
      {"k": "end", "t"}
    Commands on stdin, one per line: "close PORT" closes the keep-alive connection on
    backend PORT; "stop" (or end of input) stops everything."""
    out = open(args.records, "a", buffering=1)  # line-buffered: the harness reads as we go
    lock = threading.Lock()

    def rec(**kw):
        line = json.dumps(kw)
        with lock:
            out.write(line + "\n")

    # Opened one after the other before anything else: round robin (one worker) puts
    # them on consecutive backends, one each.
    kas = []
    for i in range(args.ka):
        t0 = time.monotonic()
        s = connect_vip(5.0)
        port = http_exchange(s, "/", close=False)
        kas.append({"id": i, "sock": s, "port": port})
        rec(k="ka_open", id=i, port=port, t0=t0, t1=time.monotonic())

    stop = threading.Event()
    cmds = queue.Queue()

    def read_stdin():
        for line in sys.stdin:
            words = line.split()
            if words == ["stop"]:
                break
            if words:
                cmds.put(words)
        stop.set()
        cmds.put(["wake"])

    def close_ka(ka):
        ka["sock"].close()
        ka["sock"] = None
        rec(k="ka_close", id=ka["id"], port=ka["port"], t=time.monotonic())

    def keepalive():
        due = time.monotonic()
        while not stop.is_set():
            try:
                words = cmds.get(timeout=max(0.0, due - time.monotonic()))
                if words[0] == "close":
                    for ka in kas:
                        if ka["port"] == int(words[1]) and ka["sock"]:
                            close_ka(ka)
                continue
            except queue.Empty:
                pass
            due += args.ka_interval
            for ka in kas:
                if not ka["sock"]:
                    continue
                t0 = time.monotonic()
                r = {"k": "ka", "id": ka["id"], "port": ka["port"], "t0": t0}
                try:
                    got = http_exchange(ka["sock"], "/", close=False)
                    r["ok"] = got == ka["port"]
                    if got != ka["port"]:
                        r["err"] = f"answered by :{got}, opened on :{ka['port']}"
                except OSError as e:
                    r.update(ok=False, err=err_text(e))
                    ka["sock"].close()  # a broken keep-alive connection is not retried
                    ka["sock"] = None
                r["t1"] = time.monotonic()
                rec(**r)
        for ka in kas:
            if ka["sock"]:
                close_ka(ka)

    threading.Thread(target=read_stdin, daemon=True).start()
    ka_thread = threading.Thread(target=keepalive)
    ka_thread.start()
    n = 0
    start = time.monotonic()
    while not stop.is_set():
        if time.monotonic() - start > args.max_seconds:
            rec(k="s", n=n, t0=time.monotonic(), t1=time.monotonic(),
                err=f"never told to stop within {args.max_seconds}s", connected=False)
            break
        t0 = time.monotonic()
        connected = False
        try:
            # The client closes first (TIME_WAIT on its side): no source port comes back
            # while rondo may still hold its flow.
            with connect_vip(3.0) as s:
                connected = True
                port = http_exchange(s, "/", close=False)
            rec(k="s", n=n, t0=t0, t1=time.monotonic(), port=port)
        except OSError as e:
            rec(k="s", n=n, t0=t0, t1=time.monotonic(), err=err_text(e), connected=connected)
        n += 1
        time.sleep(args.pause)
    stop.set()
    cmds.put(["wake"])
    ka_thread.join(30)
    rec(k="end", t=time.monotonic())
    harness.CONNECTS.clear()  # thousands of them; nobody needs them here
    return {"requests": n}


def _args_traffic(p):
    p.add_argument("--records", required=True)
    p.add_argument("--ka", type=int, default=KA_COUNT)
    p.add_argument("--ka-interval", type=float, default=KA_INTERVAL_S)
    p.add_argument("--pause", type=float, default=0.005)
    p.add_argument("--max-seconds", type=float, default=600)


CLIENT_MODES = {"traffic": (client_traffic, _args_traffic)}


# --------------------------------------------------------------------------------------
# Harness side.
# --------------------------------------------------------------------------------------

class Traffic:
    """The background client and what it recorded."""

    def __init__(self, env):
        self.path = os.path.join(env.tmp, "traffic.jsonl")
        self.proc = env.client_popen("traffic", "--records", self.path, stdin=subprocess.PIPE)
        self.result = None

    def send(self, command):
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def records(self):
        try:
            with open(self.path) as f:
                lines = f.read().split("\n")
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in lines[:-1]]  # the last one may be unfinished

    def shorts(self, t_from=0.0, t_to=float("inf")):
        return [r for r in self.records() if r["k"] == "s" and t_from <= r["t0"] < t_to]

    def ka(self, port=None, t_from=0.0, t_to=float("inf")):
        return [r for r in self.records() if r["k"] == "ka" and t_from <= r["t0"] < t_to
                and (port is None or r["port"] == port)]

    def wait(self, what, deadline_s, predicate):
        return wait_until(what, deadline_s, predicate, interval=0.05,
                          alive=[("the traffic client", self.proc)])

    def wait_shorts(self, what, deadline_s, t_from, n, port=None):
        """Wait until n short connections that started at t_from or later got answers
        (from backend `port`, if given)."""
        return self.wait(what, deadline_s, lambda: sum(
            1 for r in self.shorts(t_from) if "port" in r and (port is None or r["port"] == port)) >= n)

    def stop(self):
        self.send("stop")
        out, err = self.proc.communicate(timeout=60)
        if self.proc.returncode != 0:
            raise AssertionError(f"traffic client exited {self.proc.returncode}: {err.strip()[-2000:]}")
        self.result = json.loads(out)
        return self.result


def ok_ports(recs):
    return [r["port"] for r in recs if "port" in r]


def failures(recs):
    return [r for r in recs if "err" in r or r.get("ok") is False]


def window_text(shorts, kas):
    f = failures(shorts)
    kf = failures(kas)
    return (f"{len(shorts)} requests, {len(f)} failed, {fmt_counts(ok_ports(shorts))}; "
            f"keep-alive {len(kas)} requests, {len(kf)} failed")


def first_errors(recs, t_ref, n=3):
    return "; ".join(f"{r['t0'] - t_ref:+.2f}s..{r['t1'] - t_ref:+.2f}s {r.get('err')}"
                     for r in failures(recs)[:n])


def show(env):
    return env.rondoctl_json("show")


def web_backends(show_json):
    """{port: backend row of `rondoctl show --json`} of vip web."""
    vip = next(v for v in show_json["vips"] if v["name"] == "web")
    return {b["port"]: b for b in vip["backends"]}


def backend_row(env, port):
    return web_backends(show(env)).get(port)


def in_sync(show_json):
    st = show_json["status"]
    return st["dataplane_connected"] and st["in_sync"]


def wait_health(env, port, health, deadline_s):
    """Poll until backend `port` shows `health` and the dataplane has the generation
    that says so; returns the moment it was seen."""
    def seen():
        s = show(env)
        row = web_backends(s).get(port)
        return time.monotonic() if row and row["health"] == health and in_sync(s) else None
    return wait_until(f"backend :{port} to be {health}", deadline_s, seen, interval=0.05,
                      alive=[("controlplane", env.procs["controlplane"])])


def detection_bound_s(n):
    """Configured time for n checks in a row to decide, from the moment the backend
    changed: up to one interval before the first check starts, n intervals, the last
    check's timeout; plus 1 s for the push and our polling on two busy cores."""
    return (HEALTH["interval_ms"] * (n + 1) + HEALTH["timeout_ms"]) / 1000 + 1.0


def setup(env):
    env.cp_args = ["--metrics-listen", METRICS]
    env.topology_up()
    env.start_backends(HTTP_BACKENDS, None)
    env.start_dataplane()
    env.write_config(vips=[{"name": "web", "port": HTTP_PORT, "protocol": "tcp",
                            "health_check": HEALTH, "backends": HTTP_BACKENDS}],
                     timeouts={"tcp_closing": TCP_CLOSING_S})
    log("control plane (HTTP health checks every 200 ms, fall 2, rise 2)")
    env.start_controlplane()
    env.wait_vip()
    wait_until("the four backends to be up", 10, lambda: all(
        b["health"] == "up" for b in web_backends(show(env)).values()), interval=0.1)
    # Connections counted before the traffic starts (the probe's): the base of scenario 5.
    ids = {p: b["id"] for p, b in web_backends(show(env)).items()}
    counted = {int(b["id"]): int(b["connections"]) for b in env.dpstat_json()["backends"]}
    env.base_connections = {p: counted.get(i, 0) for p, i in ids.items()}

    log(f"traffic: sequential short connections + {KA_COUNT} keep-alive connections")
    env.traffic = Traffic(env)
    t = env.traffic
    t.wait("the keep-alive connections and the first requests", 15,
           lambda: sum(1 for r in t.records() if r["k"] == "ka_open") == KA_COUNT and
           len(t.shorts()) >= 20)
    env.ka_ports = sorted(r["port"] for r in t.records() if r["k"] == "ka_open")
    if env.ka_ports != HTTP_BACKENDS:
        raise AssertionError(f"keep-alive connections went to {env.ka_ports}, want one on each "
                             f"of {HTTP_BACKENDS} (round robin, one worker)")
    env.t_traffic = min(r["t0"] for r in t.records())


def scenario_1_add(env, totals):
    t = env.traffic
    env.start_backend(NEW)
    env.wait_backend(NEW)
    env.rondoctl_ok("backend", "add", "web", addr(NEW))
    t_add = time.monotonic()
    t.wait_shorts(f":{NEW} to get new connections", 10, t_add, 5, port=NEW)
    t_up = wait_health(env, NEW, "up", 10)
    t.wait_shorts("more traffic", 10, t_add, 50)
    t_end = time.monotonic()
    before, after = t.shorts(env.t_traffic, t_add), t.shorts(t_add, t_end)
    kas = t.ka(t_from=env.t_traffic, t_to=t_end)
    allr = before + after
    assert not failures(allr), f"{len(failures(allr))} requests failed: {first_errors(allr, t_add)}"
    assert not failures(kas), f"keep-alive requests failed: {first_errors(kas, t_add)}"
    assert NEW not in ok_ports(before), f":{NEW} answered before it was added"
    assert set(ok_ports(after)) == set(HTTP_BACKENDS + [NEW]), \
        f"after the add, connections went to {fmt_counts(ok_ports(after))}"
    first = min(r["t0"] for r in after if r.get("port") == NEW)
    return (f"add :{NEW}: {window_text(allr, kas)}; before the add {fmt_counts(ok_ports(before))}; "
            f"after {fmt_counts(ok_ports(after))}; first connection to :{NEW} "
            f"{first - t_add:.2f}s after `backend add` returned, health up after {t_up - t_add:.2f}s")


def scenario_2_drain(env, totals):
    t = env.traffic
    a = addr(DRAINED)
    env.rondoctl_ok("backend", "drain", "web", a)
    t_drain = time.monotonic()
    waiter = env.rondoctl_popen("backend", "drain", "web", a, "--wait", "--timeout", 30)
    t.wait("the drained backend's keep-alive connection to be used twice, and 40 new "
           "connections", 15,
           lambda: sum(1 for r in t.ka(DRAINED, t_drain) if r["ok"]) >= 2 and
           len(t.shorts(t_drain)) >= 40)
    # The short connections' flows end tcp_closing after their close; then only the
    # keep-alive connection's flow is left.
    wait_until(f":{DRAINED} to have just its keep-alive connection's flow", 15,
               lambda: backend_row(env, DRAINED)["active_flows"] == 1, interval=0.1)
    assert waiter.poll() is None, (f"`drain --wait` returned ({waiter.returncode}) while the "
                                   f"keep-alive connection was open: {waiter.communicate()}")
    r = env.rondoctl("backend", "remove", "web", a)
    assert r.returncode == 1, (f"`backend remove` without --force while a connection is open "
                               f"exited {r.returncode}, want 1: {(r.stdout + r.stderr).strip()}")
    refusal = r.stderr.strip()
    assert waiter.poll() is None, "`drain --wait` returned while the connection was open"
    t.send(f"close {DRAINED}")
    t_close = t.wait("the client to close its keep-alive connection", 10, lambda: next(
        (x["t"] for x in t.records() if x["k"] == "ka_close" and x["port"] == DRAINED), None))
    wait_until("`drain --wait` to return", 30, lambda: waiter.poll() is not None, interval=0.05)
    t_ret = time.monotonic()
    out, err = waiter.communicate()
    assert waiter.returncode == 0, f"`drain --wait --timeout 30` exited {waiter.returncode}: {err.strip()}"
    env.rondoctl_ok("backend", "remove", "web", a)
    t_end = time.monotonic()
    assert DRAINED not in web_backends(show(env)), f":{DRAINED} is still listed after remove"

    shorts = t.shorts(t_drain, t_end)
    kas = t.ka(t_from=t_drain, t_to=t_end)
    assert not failures(shorts), f"{len(failures(shorts))} requests failed: {first_errors(shorts, t_drain)}"
    assert not failures(kas), f"keep-alive requests failed: {first_errors(kas, t_drain)}"
    late = [r for r in shorts if r.get("port") == DRAINED]
    assert not late, (f"{len(late)} new connection(s) went to :{DRAINED} after `drain` returned, "
                      f"the first {late[0]['t0'] - t_drain:.3f}s after")
    ka_ok = [r for r in t.ka(DRAINED, t_drain) if r["ok"]]
    return (f"drain :{DRAINED}: {window_text(shorts, kas)}; none to :{DRAINED} after `drain` "
            f"returned; its keep-alive connection answered {len(ka_ok)} more requests until the "
            f"client closed it {t_close - t_drain:.1f}s later; `remove` before the close: exit 1 "
            f"({refusal}); `drain --wait` returned 0 {t_ret - t_close:.1f}s after the close; "
            f"`remove` then: exit 0")


def scenario_3_health(env, totals):
    t = env.traffic
    t_kill = time.monotonic()
    env.terminate(f"backend-{KILLED}", sig=signal.SIGKILL)
    t_down = wait_health(env, KILLED, "down", 10)
    bound = detection_bound_s(HEALTH["fall"])
    assert t_down - t_kill <= bound, (f":{KILLED} was marked down {t_down - t_kill:.2f}s after its "
                                      f"server died; configured: within {bound:.1f}s")
    t.wait_shorts("40 connections after the backend went down", 15, t_down, 40)
    env.start_backend(KILLED)
    env.wait_backend(KILLED)
    t_restart = time.monotonic()
    t_up = wait_health(env, KILLED, "up", 10)
    bound_up = detection_bound_s(HEALTH["rise"])
    assert t_up - t_restart <= bound_up, (f":{KILLED} was marked up {t_up - t_restart:.2f}s after "
                                          f"its server came back; configured: within {bound_up:.1f}s")
    t.wait_shorts(f":{KILLED} to get connections again", 10, t_up, 3, port=KILLED)
    t_end = time.monotonic()

    # Requests in flight at the kill, or started before the health checks took the
    # backend down, may fail: rondo still sends new connections to the dead server.
    in_flight = [r for r in t.shorts(0, t_down) if r["t1"] >= t_kill]
    after = t.shorts(t_down, t_end)
    lost = failures(in_flight)
    env.kill_window = (t_kill, t_down)
    assert not failures(after), (f"{len(failures(after))} requests that started after :{KILLED} was "
                                 f"marked down failed: {first_errors(after, t_down)}")
    dead = [r for r in t.shorts(t_down, t_restart) if r.get("port") == KILLED]
    assert not dead, f"{len(dead)} connection(s) went to :{KILLED} while it was down"
    kas = t.ka(t_from=t_kill, t_to=t_end)
    other_ka = [r for r in kas if r["port"] != KILLED]
    assert not failures(other_ka), f"keep-alive requests failed: {first_errors(other_ka, t_kill)}"
    ka_killed = failures(t.ka(KILLED, t_kill))
    back = [r for r in after if r["t0"] >= t_up and r.get("port") == KILLED]
    return (f"kill :{KILLED}: marked down {t_down - t_kill:.2f}s after the kill (bound {bound:.1f}s); "
            f"{len(in_flight)} requests in flight at the kill or started before it was down, "
            f"{len(lost)} of them failed"
            f"{' (' + first_errors(lost, t_kill, 2) + ')' if lost else ''}; "
            f"after: {window_text(after, other_ka)}; its keep-alive connection: "
            f"{len(ka_killed)} failed request (expected: the server died); restarted: up after "
            f"{t_up - t_restart:.2f}s (bound {bound_up:.1f}s), {len(back)} new connections to it, "
            f"the first {min(r['t0'] for r in back) - t_up:.2f}s after")


def state_of(show_json):
    return {p: {"id": b["id"], "weight": b["weight"], "drained": b["drained"]}
            for p, b in web_backends(show_json).items()}


def scenario_4_controlplane_restart(env, totals):
    t = env.traffic
    env.rondoctl_ok("backend", "drain", "web", addr(CP_DRAINED))
    t_drain = time.monotonic()
    before = state_of(show(env))
    want = {p: False for p in (3002, 3003, NEW)}
    want[CP_DRAINED] = True
    assert {p: b["drained"] for p, b in before.items()} == want, f"state before the kill: {before}"

    cp = env.procs.pop("controlplane")
    t_kill = time.monotonic()
    cp.kill()
    cp.wait(10)
    # Traffic with no control plane at all: 3 s and 30 connections at least.
    t.wait("3 s of traffic without the control plane", 15,
           lambda: time.monotonic() - t_kill >= 3 and len(t.shorts(t_kill)) >= 30)
    assert env.procs["dataplane"].poll() is None, "the dataplane exited with the control plane"
    t_restart = time.monotonic()
    env.start_controlplane()
    def restored():
        r = env.rondoctl("--json", "show")  # refused until the new instance listens
        s = json.loads(r.stdout) if r.returncode == 0 else None
        return s if s and in_sync(s) and all(
            b["health"] == "up" for b in web_backends(s).values()) else None
    try:
        after_json = wait_until("the restarted control plane to be in sync, all backends up", 15,
                                restored, interval=0.1,
                                alive=[("controlplane", env.procs["controlplane"])])
    except AssertionError as e:
        raise AssertionError(f"{e}; last show: {env.rondoctl('--json', 'show').stdout.strip()}")
    t_ok = time.monotonic()
    after = state_of(after_json)
    t.wait_shorts("30 connections after the restart", 15, t_ok, 30)
    t_end = time.monotonic()

    assert after == before, f"state after the restart {after} != before the kill {before}"
    shorts = t.shorts(t_drain, t_end)
    kas = t.ka(t_from=t_drain, t_to=t_end)
    assert not failures(shorts), f"{len(failures(shorts))} requests failed: {first_errors(shorts, t_kill)}"
    assert not failures(kas), f"keep-alive requests failed: {first_errors(kas, t_kill)}"
    late = [r for r in shorts if r.get("port") == CP_DRAINED]
    assert not late, f"{len(late)} new connection(s) went to drained :{CP_DRAINED}"
    ka_drained = [r for r in kas if r["port"] == CP_DRAINED and r["ok"]]
    assert ka_drained, f"the keep-alive connection on drained :{CP_DRAINED} was not used"
    down = t.shorts(t_kill, t_restart)
    state = " ".join(f":{p}(id {b['id']}{', drained' if b['drained'] else ''})"
                     for p, b in sorted(after.items()))
    return (f"drain :{CP_DRAINED} then kill -9 the control plane: {window_text(shorts, kas)} "
            f"({len(down)} of them during the {t_restart - t_kill:.1f}s without a control plane); "
            f"restarted, in sync with all backends up after {t_ok - t_restart:.1f}s; state kept: "
            f"{state}; :{DRAINED} stays removed; the drained backend's keep-alive connection "
            f"answered {len(ka_drained)} requests")


def backend_metric(m, name, port):
    return m.get((name, frozenset({("backend", addr(port)), ("vip", "web")})))


def scenario_5_metrics(env, totals):
    t = env.traffic
    t.stop()
    recs = t.records()
    assert recs and recs[-1]["k"] == "end", "the traffic client did not finish its records"
    # Connections the client made, per backend: answered short ones, the keep-alive ones,
    # and the ones refused by the killed server before it was marked down (scenario 3:
    # rondo had scheduled them to it, the only backend that refused anything).
    made = Counter(env.base_connections)
    made.update(r["port"] for r in recs if r["k"] == "s" and "port" in r)
    made.update(r["port"] for r in recs if r["k"] == "ka_open")
    failed = [r for r in recs if r["k"] == "s" and "err" in r]
    made[KILLED] += len(failed)
    t_kill, t_down = getattr(env, "kill_window", (0, float("inf")))
    outside = [r for r in failed if not (r["t1"] >= t_kill and r["t0"] < t_down)]
    assert not outside, (f"{len(outside)} failed requests outside scenario 3's window (kill at "
                         f"+0s, down at +{t_down - t_kill:.2f}s): {first_errors(outside, t_kill)}")

    # The control plane polls the dataplane every 500 ms: wait for a poll after the end.
    prev = {}

    def settled():
        text = env.scrape_metrics(METRICS)
        m = parse_metrics(text)
        conns = {p: backend_metric(m, "rondo_backend_connections_total", p) for p in made}
        when = m.get(("rondo_controlplane_stats_timestamp_seconds", frozenset()))
        if prev and prev["conns"] == conns and prev["when"] != when:
            return text, m
        prev.update(conns=conns, when=when)
        return None
    text, m = wait_until("the exported counters to come to rest", 15, settled, interval=0.3)
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, f"promtool check metrics failed: {(r.stdout + r.stderr).strip()[:2000]}"

    present = [p for p in (CP_DRAINED, KILLED, 3003, NEW)]
    got = {p: backend_metric(m, "rondo_backend_connections_total", p) for p in present}
    want = {p: made[p] for p in present}
    shown = " ".join(f":{p} {int(got[p]) if got[p] is not None else None}/{want[p]}" for p in present)
    assert got == {p: float(v) for p, v in want.items()}, \
        f"rondo_backend_connections_total (exported/made) differs: {shown}"
    assert backend_metric(m, "rondo_backend_connections_total", DRAINED) is None, \
        f"removed :{DRAINED} is still exported"
    drained = {p: backend_metric(m, "rondo_backend_drained", p) for p in present}
    assert drained == {p: float(p == CP_DRAINED) for p in present}, f"rondo_backend_drained: {drained}"
    up = {p: backend_metric(m, "rondo_backend_up", p) for p in present}
    assert all(v == 1.0 for v in up.values()), f"rondo_backend_up: {up}"

    shorts = [r for r in recs if r["k"] == "s"]
    kas = [r for r in recs if r["k"] == "ka"]
    vip_total = m.get(("rondo_vip_connections_total", frozenset({("vip", "web")})))
    return (f"promtool check metrics: ok ({len(m)} series); rondo_backend_connections_total "
            f"exported/made by the client: {shown} (made = {sum(env.base_connections.values())} "
            f"counted at set-up + answered short + keep-alive + {len(failed)} failed in the kill "
            f"window); rondo_vip_connections_total{{vip=web}} {vip_total:.0f}; whole run: "
            f"{len(shorts)} requests, {len(failures(shorts))} failed (all in scenario 3's "
            f"window), {fmt_counts(ok_ports(shorts))}; keep-alive {len(kas)} requests, "
            f"{len(failures(kas))} failed")


def scenario_6_alerts_and_dashboard(env, totals):
    # After scenarios 1-5 every family is there: connected and in sync, stats fetched,
    # fullnat backends (local ports), drops by reason, the ports.
    fams = monitoring.parse_exposition(env.scrape_metrics(METRICS))
    queries = monitoring.all_queries()
    found = monitoring.problems(queries, fams)
    assert not found, (f"{len(found)} name(s) the rules or the dashboard query are not in "
                       f"/metrics: " + "; ".join(found))
    names = set().union(*(m for _, m, _ in queries))
    labels = set().union(*(lbl for _, _, lbl in queries))
    return (f"{len(queries)} queries (alert rules and dashboard) name {len(names)} metrics "
            f"({len(names & monitoring.PROMETHEUS_SERIES)} of them Prometheus' own: "
            f"{', '.join(sorted(names & monitoring.PROMETHEUS_SERIES))}) and {len(labels)} labels; "
            f"all in the live /metrics ({len(fams)} names)")


SCENARIOS = [
    ("1", "add a backend", scenario_1_add),
    ("2", "drain and remove a backend", scenario_2_drain),
    ("3", "health checks: a backend dies and comes back", scenario_3_health),
    ("4", "control plane kill -9/restart keeps the state", scenario_4_controlplane_restart),
    ("5", "metrics", scenario_5_metrics),
    ("6", "alert rules and dashboard query only exported metrics", scenario_6_alerts_and_dashboard),
]

if __name__ == "__main__":
    sys.exit(harness.run("pool-changes", __file__, SCENARIOS, setup, client_modes=CLIENT_MODES))
