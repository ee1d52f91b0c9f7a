#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Health checks of DSR backends through their tunnel (issue 10; docs/modes.md, "Health
checks in the DSR modes"). The real rondo-controlplane runs in the lb namespace of
tools/lib/topo.sh (the lb host's kernel, where checks leave from) without a dataplane:
checks and the tc program need none.

  lb: br0 198.51.100.1; rhc0 (a veth, arp off, forwarding on; its peer unused), the device
      a fwmark rule routes the checks to, with bpf/rondo_hc_encap.bpf.o on its egress
      (attached by the control plane, --dsr-check-interface rhc0); no route to the VIP.
  be: eth0 198.51.100.3; the VIP 203.0.113.10 on lo; rondo-decap on eth0; Node backends
      :3000 (VIP ipip), :3001 (VIP gue), :3002 (VIP l2dsr), HTTP checks every 200 ms.

  a. every backend up: its check reached VIP:port through its tunnel (nothing else can:
     the lb host has no route to the VIP, and the backend's kernel has no ipip or fou)
  b. rondo-decap detached: the ipip and gue backends down, while their own address:port
     still answers; l2dsr (no tunnel) stays up; attached again: up
  c. the VIP off the backend's lo: every backend down, own addresses still answering;
     back: up
  d. the control plane stops: its filter is gone from rhc0
  e. without --dsr-check-interface: checked on their own address (up with the VIP still
     off lo), said once in the log and by rondoctl show
"""

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import BACKEND_IP, LB_IP, VIP, log, wait_until  # noqa: E402

PORTS = {"ipip": 3000, "gue": 3001, "l2dsr": 3002}
HEALTH = {"type": "http", "path": "/", "interval_ms": 200, "timeout_ms": 150, "rise": 2,
          "fall": 2}
MARK_BASE = "0x52440000"
TABLE = "52"
DEADLINE_S = 10


def sh(*argv):
    subprocess.run(argv, check=True)


def ns_run(ns, *argv, check=True):
    return subprocess.run(["ip", "netns", "exec", ns, *argv], check=check, capture_output=True,
                          text=True)


def health(env):
    """{mode: health} of the three VIPs' backends, from rondoctl show --json."""
    out = {}
    for v in env.rondoctl_json("show")["vips"]:
        for b in v["backends"]:
            out[v["name"]] = b["health"]
    return out


def wait_health(env, want, what):
    def seen():
        h = health(env)
        return h if all(h.get(m) == s for m, s in want.items()) else None
    return wait_until(what, DEADLINE_S, seen, interval=0.1,
                      alive=[("controlplane", env.procs["controlplane"])])


def own_address_answers(env, port):
    """A plain HTTP GET of BACKEND_IP:port from the lb namespace (no mark: not tunnelled)."""
    r = ns_run(env.ns_lb, sys.executable, "-c",
               "import socket,sys; s=socket.create_connection((sys.argv[1], int(sys.argv[2])), 2);"
               "s.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n'); print(s.recv(64).decode(errors='replace'))",
               BACKEND_IP, str(port), check=False)
    return r.returncode == 0 and r.stdout.startswith("HTTP/1.1 200")


def filter_on_rhc0(env):
    return ns_run(env.ns_lb, "tc", "filter", "show", "dev", "rhc0", "egress", check=False).stdout


def decap(env, *args):
    ns_run(env.ns_be, os.path.join(env.build, "bpf", "rondo-decap"), *args)


def decap_stats(env):
    out = ns_run(env.ns_be, os.path.join(env.build, "bpf", "rondo-decap"), "stats", "eth0").stdout
    return {k: int(v) for k, v in (line.split() for line in out.splitlines()[1:])}


def program_counters(log_path):
    """The counters the control plane logs on exit: {name: value}."""
    with open(log_path, errors="replace") as f:
        lines = [line for line in f if "DSR check packets:" in line]
    words = lines[-1].split("DSR check packets:")[1].split() if lines else []
    return dict(zip(words[::2], map(int, words[1::2])))


def start_controlplane(env, tunnel=True):
    env.cp_args = ["--dsr-check-interface", "rhc0", "--dsr-check-mark-base", MARK_BASE] \
        if tunnel else []
    proc = env.spawn("controlplane", env.ns_lb, [
        env.controlplane, "--config", env.config, "--state-file", env.state_file,
        "--dataplane-socket", env.sock, "--api-socket", env.api_sock, "--metrics-listen",
        "none", "--sync-interval-ms", "100", *env.cp_args])
    wait_until("the control plane's API socket", DEADLINE_S,
               lambda: env.rondoctl("show").returncode == 0, alive=[("controlplane", proc)])


def setup(env):
    if not os.path.exists(os.path.join(env.build, "bpf", "rondo_hc_encap.bpf.o")):
        raise AssertionError("no rondo_hc_encap.bpf.o (clang missing?)")
    env.topology_up()
    lb, be = env.ns_lb, env.ns_be
    # The checks' own way out: a device that only the fwmark rule routes to.
    sh("ip", "-n", lb, "link", "add", "rhc0", "type", "veth", "peer", "name", "rhc0p")
    sh("ip", "-n", lb, "link", "set", "rhc0", "arp", "off", "up")
    sh("ip", "-n", lb, "link", "set", "rhc0p", "up")
    ns_run(lb, "sysctl", "-qw", "net.ipv4.conf.rhc0.forwarding=1")
    sh("ip", "-n", lb, "rule", "add", "fwmark", f"{MARK_BASE}/0xffff0000", "lookup", TABLE)
    sh("ip", "-n", lb, "route", "add", "default", "dev", "rhc0", "src", LB_IP, "table", TABLE)
    # The backend as docs/modes.md sets it up for rondo-decap.
    sh("ip", "-n", be, "addr", "add", f"{VIP}/32", "dev", "lo")
    decap(env, "attach", "eth0")
    env.start_backends(http_ports=list(PORTS.values()), udp_ports=None)
    vips = [{"name": m, "port": p, "mode": m, "health_check": HEALTH, "backends": [p]}
            for m, p in PORTS.items()]
    with open(env.config, "w") as f:
        f.write(harness.yaml_config(vips, comment="dsr_checks: the lb namespace checks"))
    start_controlplane(env)


def scenario_a(env, totals):
    wait_health(env, {m: "up" for m in PORTS}, "every DSR backend up through its tunnel")
    assert "rondo_hc_encap" in filter_on_rhc0(env), filter_on_rhc0(env)
    stats = decap_stats(env)
    assert stats["decap_ipip"] > 0 and stats["decap_gue"] > 0, f"rondo-decap stats: {stats}"
    show = env.rondoctl_ok("show").stdout
    assert "note:" not in show, show
    r = ns_run(env.ns_lb, "ip", "route", "get", VIP, check=False)
    assert r.returncode != 0, f"the lb namespace has a route to the VIP: {r.stdout}"
    return "ipip, gue and l2dsr backends up; the lb host has no route to the VIP"


def scenario_b(env, totals):
    decap(env, "detach", "eth0")
    wait_health(env, {"ipip": "down", "gue": "down", "l2dsr": "up"},
                "ipip and gue down without rondo-decap")
    for m in ("ipip", "gue"):
        assert own_address_answers(env, PORTS[m]), f"{BACKEND_IP}:{PORTS[m]} does not answer"
    decap(env, "attach", "eth0")
    wait_health(env, {m: "up" for m in PORTS}, "every backend up with rondo-decap again")
    return "down with the tunnel broken (own address:port answering), up once it is back"


def scenario_c(env, totals):
    sh("ip", "-n", env.ns_be, "addr", "del", f"{VIP}/32", "dev", "lo")
    wait_health(env, {m: "down" for m in PORTS}, "every backend down without the VIP on lo")
    for m, p in PORTS.items():
        assert own_address_answers(env, p), f"{BACKEND_IP}:{p} does not answer"
    sh("ip", "-n", env.ns_be, "addr", "add", f"{VIP}/32", "dev", "lo")
    wait_health(env, {m: "up" for m in PORTS}, "every backend up with the VIP back")
    return "all three down without the VIP on lo (own addresses answering), up once it is back"


def scenario_d(env, totals):
    env.terminate("controlplane")
    out = filter_on_rhc0(env)
    assert "rondo_hc_encap" not in out, f"the filter stayed: {out}"
    c = program_counters(env.logs["controlplane"])
    assert all(c.get(k, 0) > 0 for k in ("encap_ipip", "encap_gue", "sent_l2dsr")), c
    assert all(c.get(k) == 0 for k in ("drop_no_entry", "drop_no_route", "drop_not_on_link")), c
    return "the control plane removed its filter on exit; its counters: " + \
        ", ".join(f"{k} {v}" for k, v in c.items() if v)


def scenario_e(env, totals):
    sh("ip", "-n", env.ns_be, "addr", "del", f"{VIP}/32", "dev", "lo")
    log_path = env.logs["controlplane"]
    start = os.path.getsize(log_path)
    start_controlplane(env, tunnel=False)
    wait_health(env, {m: "up" for m in PORTS}, "backends up, checked on their own address")
    time.sleep(0.5)  # a few more rounds of checks: the note must still be one line
    with open(log_path, errors="replace") as f:
        f.seek(start)
        notes = [line for line in f if "checked on their own address" in line]
    assert len(notes) == 1, f"expected one note in the log, got {notes}"
    show = env.rondoctl_ok("show").stdout
    assert "note: ipip, gue, l2dsr: DSR backends are health-checked on their own address" \
        in show, show
    return "without --dsr-check-interface: up on their own address with the VIP gone; " \
        "logged once, noted by rondoctl show"


SCENARIOS = [
    ("a", "DSR backends checked through their tunnel", scenario_a),
    ("b", "the tunnel broken, then back", scenario_b),
    ("c", "the VIP off lo, then back", scenario_c),
    ("d", "the filter goes with the control plane", scenario_d),
    ("e", "not configured: today's checks, said once", scenario_e),
]

if __name__ == "__main__":
    sys.exit(harness.run("dsr-checks", __file__, SCENARIOS, setup))
