#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Issue 8, item 10: local ports and the backends' TIME_WAIT.

Every connection here asks "Connection: close", so the backend closes first and keeps the
connection's tuple (rondo's local ip:port, its own ip:port) in TIME_WAIT for 60 s. A load
balancer that hands the same local port to the same backend again within that time gets
the backend's ACK instead of a SYN-ACK (rondo's tracker drops it as tcp_out_of_window; a
client that saw it would reset), then a SYN retransmit one second later.

  a. default port range, ~20 s of new connections from 8 client threads: no error, no
     SYN retransmit, no tcp_out_of_window, connections counted = requests;
  c. the dataplane restarted cleanly, ~10 s more: the quarantine is not carried over, but
     where the port searches stood is (state dir, ports.order), so no collision either
     (without it, 80 of ~120 connections collided here: a random start landed inside the
     stretch scenario a had just used);
  b. the dataplane restarted with 64 local ports: each backend has 64 tuples per 60 s
     quarantine, far fewer than the clients ask for. Connections beyond that are refused
     (no_local_port, rondoctl show warns), never a TIME_WAIT collision: no
     tcp_out_of_window, no client error but timeouts of refused SYNs.
"""

import errno
import os
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

NARROW = "40000-40063"  # 64 local ports: one quarantine period holds 64 per backend
FRESH_LOCAL_IP = "198.51.100.101"


# ---- client side (runs in the client namespace) ----

def client_churn(args):
    """New connections, one request each with Connection: close, from several threads
    for a while; counts successes and failures by kind."""
    ok, errors, samples = 0, {}, []
    lock = threading.Lock()
    stop_at = time.monotonic() + args.seconds

    def worker():
        nonlocal ok
        while time.monotonic() < stop_at:
            kind = None
            try:
                with socket.create_connection((harness.VIP, harness.HTTP_PORT), timeout=2.0) as s:
                    harness.http_exchange(s, "/", close=True)
                    s.settimeout(2.0)
                    while s.recv(4096):  # the server's FIN first: its TIME_WAIT
                        pass
            except socket.timeout:
                kind = "timeout"
            except OSError as e:
                kind = {errno.ECONNRESET: "reset", errno.ECONNREFUSED: "refused",
                        errno.ETIMEDOUT: "timeout", errno.EPIPE: "reset"}.get(e.errno, "other")
                if kind == "other":
                    kind = f"other:{harness.err_text(e)}"
            except ConnectionError as e:  # bad HTTP answer
                kind = f"http:{e}"
            with lock:
                if kind is None:
                    ok += 1
                else:
                    errors[kind] = errors.get(kind, 0) + 1
                    if len(samples) < 5:
                        samples.append(kind)

    threads = [threading.Thread(target=worker) for _ in range(args.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"ok": ok, "errors": errors, "samples": samples, "seconds": args.seconds}


def _args_churn(p):
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--threads", type=int, default=8)


# ---- test side ----

def nstat(env, ns):
    """Absolute TCP counters of a namespace's kernel (nothing reset, no history kept)."""
    r = subprocess.run(["ip", "netns", "exec", ns, "nstat", "-asz", "TcpOutRsts",
                        "TcpExtTCPSynRetrans"], capture_output=True, text=True, timeout=10)
    out = {}
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1].isdigit():
            out[parts[0]] = int(parts[1])
    return out


def rondo_counts(env):
    stats = env.dpstat_json()
    drops = {}
    for lc in stats.get("lcores", []):
        for k, v in lc.get("drops", {}).items():
            drops[k] = drops.get(k, 0) + int(v)
    conns = sum(int(b["connections"]) for b in stats.get("backends", []))
    return drops, conns


def churn(env, seconds):
    """Run the clients; return (client result, deltas of drops, connections, client TCP counters)."""
    d0, c0 = rondo_counts(env)
    n0 = nstat(env, env.ns_cl)
    res = env.in_client("churn", "--seconds", seconds, timeout=seconds + 60)
    # The last flows' packets are in: their counters settle before they are read.
    time.sleep(0.2)
    d1, c1 = rondo_counts(env)
    n1 = nstat(env, env.ns_cl)
    drops = {k: d1.get(k, 0) - d0.get(k, 0) for k in d1}
    tcp = {k: n1.get(k, 0) - n0.get(k, 0) for k in n1}
    return res, drops, c1 - c0, tcp


def restart_dataplane(env, extra=()):
    env.terminate("dataplane")
    env.start_dataplane(extra=extra)
    env.wait_vip()


def scenario_a_default_range(env, totals):
    res, drops, counted, tcp = churn(env, 20)
    totals["requests"] += res["ok"]
    rate = res["ok"] / res["seconds"]
    seen = {k: v for k, v in drops.items() if v}
    assert not res["errors"], (f"client errors: {res['errors']} in {res['ok']} requests; rondo "
                               f"drops {seen}; client TCP {tcp}")
    assert res["ok"] > 0, "no request succeeded"
    assert drops.get("tcp_out_of_window", 0) == 0, \
        f"backend answers to SYNs dropped (TIME_WAIT collisions): {drops['tcp_out_of_window']}"
    # (Client RSTs are reported, not asserted: a late retransmission reaching a socket the
    # client already closed is answered with one, collision or not.)
    assert tcp.get("TcpExtTCPSynRetrans", 0) == 0, \
        f"the clients retransmitted {tcp['TcpExtTCPSynRetrans']} SYNs"
    assert counted == res["ok"], f"rondo counted {counted} connections for {res['ok']} requests"
    return (f"{res['ok']} connections in {res['seconds']:.0f}s ({rate:.0f}/s), 0 errors, "
            f"0 SYN retransmits, 0 tcp_out_of_window, {tcp.get('TcpOutRsts', 0)} client RSTs; "
            f"rondo counted {counted}")


def scenario_c_after_restart(env, totals):
    # The backends still hold scenario a's tuples in TIME_WAIT; the new process has no
    # quarantine (adopting it belongs with hot restart) but starts its port order elsewhere.
    # A clean stop (SIGTERM) leaves where the port searches stood in the state directory;
    # the new process goes on from there, past the ports scenario a left in TIME_WAIT.
    restart_dataplane(env)
    res, drops, counted, tcp = churn(env, 10)
    collisions = drops.get("tcp_out_of_window", 0)
    summary = (f"after a dataplane restart: {res['ok']} connections, errors "
               f"{res['errors'] or 'none'}, collisions (tcp_out_of_window) {collisions}, client "
               f"RSTs {tcp.get('TcpOutRsts', 0)}, SYN retransmits "
               f"{tcp.get('TcpExtTCPSynRetrans', 0)}")
    assert res["ok"] > 0 and not res["errors"] and collisions == 0, summary
    return summary


def scenario_b_narrow_range(env, totals):
    # A local ip the backends have not seen: none of its tuples is in their TIME_WAIT from
    # the scenarios before (a restart forgets the quarantine; that is scenario c's business).
    env.terminate("dataplane")
    env.start_dataplane(extra=["--local-ports", NARROW])
    with open(env.config, "w") as f:
        f.write(harness.yaml_config(harness.SEED_VIPS, local_ips=(FRESH_LOCAL_IP,)))
    before = env.rondoctl_json("status")["status"]["generation"]
    env.rondoctl_ok("reload")

    def applied():
        st = env.rondoctl_json("status")["status"]
        return st["generation"] > before and st["in_sync"]

    harness.wait_until("the dataplane to take the new local ip", 20, applied, interval=0.3)
    env.wait_vip()
    res, drops, counted, tcp = churn(env, 15)
    refused = drops.get("no_local_port", 0)
    # 4 backends x 64 tuples, each quarantined 60 s after its connection: no more can complete.
    assert res["ok"] <= 4 * 64, f"{res['ok']} connections completed with 4 x 64 tuples"
    assert refused > 0, f"no no_local_port drop: {drops}"
    assert drops.get("tcp_out_of_window", 0) == 0, \
        f"TIME_WAIT collisions: {drops['tcp_out_of_window']} backend answers dropped"
    bad = {k: v for k, v in res["errors"].items() if k != "timeout"}
    assert not bad, f"clients saw failures other than timeouts (refused SYNs): {bad}"
    # A refused SYN takes no flow: every connection rondo counted is a request answered.
    assert counted == res["ok"], f"rondo counted {counted} connections for {res['ok']} requests"
    # The control plane polls counters every second or so: wait for the warning.
    show = {}

    def warned():
        show["text"] = env.rondoctl_ok("show").stdout
        return show["text"].count("local ports free") >= 4

    harness.wait_until("rondoctl show to warn about local ports", 15, warned, interval=0.5)
    line = next(l for l in show["text"].splitlines() if "local ports free" in l)
    return (f"{res['ok']} connections completed (<= 4 backends x 64 tuples, rondo counted "
            f"{counted}), {refused} SYNs "
            f"refused as no_local_port, client errors {res['errors']}, 0 tcp_out_of_window, "
            f"{tcp.get('TcpOutRsts', 0)} client RSTs; rondoctl show: '{line}'")


def setup(env):
    env.topology_up()
    env.start_backends()
    env.start_dataplane()
    env.write_config()
    env.start_controlplane()
    env.wait_vip()


SCENARIOS = [
    ("a", "default port range: no TIME_WAIT collision", scenario_a_default_range),
    ("c", "right after a clean dataplane restart: no collision", scenario_c_after_restart),
    ("b", "narrow port range: refused beyond capacity, never a collision", scenario_b_narrow_range),
]

if __name__ == "__main__":
    sys.exit(harness.run("port-reuse", __file__, SCENARIOS, setup,
                         client_modes={"churn": (client_churn, _args_churn)}))
