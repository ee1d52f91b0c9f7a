#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Health checks of DSR backends through their tunnel (issue 10; docs/modes.md, "Health
checks in the DSR modes"), to IPv4 and IPv6 backends. The real rondo-controlplane runs in
the lb namespace of tools/lib/topo.sh --v6 (the lb host's kernel, where checks leave from)
without a dataplane: checks and the tc program need none.

  lb: br0 198.51.100.1 and 2001:db8:100::1; rhc0 (a veth, arp off, IPv4 and IPv6
      forwarding on; its peer unused), the device a fwmark rule per family routes the checks
      to, with bpf/rondo_hc_encap.bpf.o on its egress (attached by the control plane,
      --dsr-check-interface rhc0); no route to either VIP.
  be: eth0 198.51.100.3 and 2001:db8:100::3; the VIPs 203.0.113.10 and 2001:db8::10 on lo;
      rondo-decap on eth0; Node backends :3000-3007, one per VIP, HTTP checks every 200 ms:
      44 (v4 VIP, v4 backend) ipip, gue, l2dsr; 66 ipip (41 in IPv6), gue (over IPv6),
      l2dsr; 46 ipip (4 in IPv6), gue (IPv4 in GUE over IPv6).

  a. every backend up: its check reached VIP:port through its tunnel (nothing else can:
     the lb host has no route to the VIPs, and the backend's kernel has no ipip, fou or
     ip6_tunnel); rondo-decap counted each outer family
  b. rondo-decap detached: the ipip and gue backends of every family down, while their own
     address:port still answers; l2dsr (no tunnel) stays up; attached again: up
  c. the v6 VIP off the backend's lo: the 66 backends down, the others up; back: up. The v4
     VIP off lo: the 44 and 46 backends down, the 66 ones up; back: up
  d. the control plane stops: its filter is gone from rhc0, its counters saw every kind
  e. without --dsr-check-interface: checked on their own address (up with the VIPs still
     off lo), said once in the log and by rondoctl show
"""

import json
import os
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import BACKEND_IP, BACKEND_IP6, LB_IP, LOCAL_IP, LOCAL_IP6, VIP, VIP6, log, \
    wait_until  # noqa: E402

LB_IP6 = "2001:db8:100::1"  # br0's in topo.sh --v6: the checks' IPv6 source
# name: (mode, VIP, backend address, port): one backend per VIP, in each family DSR has.
VIPS = {
    "ipip": ("ipip", VIP, BACKEND_IP, 3000),
    "gue": ("gue", VIP, BACKEND_IP, 3001),
    "l2dsr": ("l2dsr", VIP, BACKEND_IP, 3002),
    "ipip66": ("ipip", VIP6, BACKEND_IP6, 3003),
    "gue66": ("gue", VIP6, BACKEND_IP6, 3004),
    "l2dsr66": ("l2dsr", VIP6, BACKEND_IP6, 3005),
    "ipip46": ("ipip", VIP, BACKEND_IP6, 3006),
    "gue46": ("gue", VIP, BACKEND_IP6, 3007),
}
TUNNELLED = [n for n, v in VIPS.items() if v[0] != "l2dsr"]
ON_VIP6 = [n for n, v in VIPS.items() if v[1] == VIP6]
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


def csum(data):
    """The Internet checksum's ones' complement sum of `data`, folded to 16 bits."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xffff) + (total >> 16)
    return total


def check_gue6(ip6):
    """One GUE-over-IPv6 check packet, as captured: its outer header's fields, and whether
    its UDP checksum is right for the packet once the inner TCP checksum is finished. On
    the wire here (veth) the inner checksum may still be the partial one the sending stack
    left to the device: it is computed here in full, as a NIC would, and the outer checksum
    checked against that packet (so the test does not depend on what the capture saw)."""
    plen, nh, hop = struct.unpack("!HBB", ip6[4:8])
    ip6 = ip6[:40 + plen]
    label = struct.unpack("!I", ip6[0:4])[0] & 0xfffff
    udp, inner = ip6[40:52], bytearray(ip6[52:])
    sport, uchk = struct.unpack("!H", udp[0:2])[0], struct.unpack("!H", udp[6:8])[0]
    proto = udp[9]  # the GUE header's proto
    if proto == 4:
        ihl = (inner[0] & 0x0f) * 4
        seg_len = struct.unpack("!H", inner[2:4])[0] - ihl
        pseudo = inner[12:20] + struct.pack("!BBH", 0, inner[9], seg_len)
    else:
        ihl, seg_len = 40, struct.unpack("!H", inner[4:6])[0]
        pseudo = inner[8:40] + struct.pack("!IxxxB", seg_len, inner[6])
    inner[ihl + 16:ihl + 18] = b"\0\0"
    tcp_chk = 0xffff - csum(pseudo + bytes(inner[ihl:ihl + seg_len]))
    inner[ihl + 16:ihl + 18] = struct.pack("!H", tcp_chk)
    outer_pseudo = ip6[8:40] + struct.pack("!IxxxB", plen, 17)
    want = 0xffff - csum(outer_pseudo + udp[:6] + b"\0\0" + udp[8:] + bytes(inner))
    return {"proto": proto, "hop_limit": hop, "next_header": nh, "label_is_sport": label == sport,
            "udp_checksum_ok": uchk == (want or 0xffff), "udp_checksum": uchk}


def capture_gue6_main():
    """In the backends' namespace: the first GUE-over-IPv6 packets of each inner family
    (GUE proto 41 and 4) arriving on eth0 (before rondo-decap, at tc ingress, strips them),
    checked by check_gue6; one JSON object {proto: result}, exit 1 if not both in 5 s."""
    # ETH_P_ALL: a tap, which sees frames before tc ingress (a socket of one EtherType gets
    # them after, decapsulated).
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    s.bind(("eth0", 0))
    s.settimeout(1)
    seen = {}
    deadline = time.monotonic() + 5
    while len(seen) < 2:
        if time.monotonic() > deadline:
            print(json.dumps(seen))
            return 1
        try:
            frame = s.recv(65535)
        except socket.timeout:
            continue
        ip6 = frame[14:]
        if frame[12:14] != b"\x86\xdd" or len(ip6) < 52 or ip6[6] != 17 or \
                struct.unpack("!H", ip6[42:44])[0] != 6080:
            continue
        r = check_gue6(ip6)
        seen.setdefault(str(r["proto"]), r)
    print(json.dumps(seen))
    return 0


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


def own_address_answers(env, name):
    """A plain HTTP GET of the backend's address:port from the lb namespace (no mark: not
    tunnelled)."""
    _, _, addr, port = VIPS[name]
    r = ns_run(env.ns_lb, sys.executable, "-c",
               "import socket,sys; s=socket.create_connection((sys.argv[1], int(sys.argv[2])), 2);"
               "s.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n'); print(s.recv(64).decode(errors='replace'))",
               addr, str(port), check=False)
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
    env.v6 = True
    env.topology_up()
    lb, be = env.ns_lb, env.ns_be
    # The checks' own way out: a device that only the fwmark rules route to. The lb
    # namespace has IPv6 off but on br0: on for rhc0 too.
    sh("ip", "-n", lb, "link", "add", "rhc0", "type", "veth", "peer", "name", "rhc0p")
    ns_run(lb, "sysctl", "-qw", "net.ipv6.conf.rhc0.disable_ipv6=0",
           "net.ipv6.conf.rhc0.accept_dad=0", "net.ipv6.conf.rhc0.forwarding=1",
           "net.ipv4.conf.rhc0.forwarding=1")
    sh("ip", "-n", lb, "link", "set", "rhc0", "arp", "off", "up")
    sh("ip", "-n", lb, "link", "set", "rhc0p", "up")
    for fam, src in (("-4", LB_IP), ("-6", LB_IP6)):
        sh("ip", "-n", lb, fam, "rule", "add", "fwmark", f"{MARK_BASE}/0xffff0000", "lookup", TABLE)
        sh("ip", "-n", lb, fam, "route", "add", "default", "dev", "rhc0", "src", src, "table", TABLE)
    # The backend as docs/modes.md sets it up for rondo-decap.
    sh("ip", "-n", be, "addr", "add", f"{VIP}/32", "dev", "lo")
    sh("ip", "-n", be, "addr", "add", f"{VIP6}/128", "dev", "lo")
    decap(env, "attach", "eth0")
    env.start_backends(http_ports=[v[3] for v in VIPS.values()], udp_ports=None)
    vips = [{"name": n, "address": a, "port": p, "mode": m, "health_check": HEALTH,
             "backends": [(b, p)]} for n, (m, a, b, p) in VIPS.items()]
    with open(env.config, "w") as f:
        # An IPv6 local ip: validation asks for one for ipip and gue VIPs with IPv6 backends.
        f.write(harness.yaml_config(vips, local_ips=(LOCAL_IP, LOCAL_IP6),
                                    comment="dsr_checks: the lb namespace checks"))
    start_controlplane(env)


def scenario_a(env, totals):
    wait_health(env, {n: "up" for n in VIPS}, "every DSR backend up through its tunnel")
    assert "rondo_hc_encap" in filter_on_rhc0(env), filter_on_rhc0(env)
    stats = decap_stats(env)
    # 44 ipip and gue; 66 ipip (IPv6 in IPv6) and 46 ipip (IPv4 in IPv6); gue over IPv6.
    for k in ("decap_ipip", "decap_gue", "decap_ipip6_out6", "decap_ipip_out6", "decap_gue_out6"):
        assert stats.get(k, 0) > 0, f"rondo-decap {k}: {stats}"
    show = env.rondoctl_ok("show").stdout
    assert "note:" not in show, show
    # The outer UDP checksum of GUE over IPv6 (gue66: proto 41, gue46: proto 4).
    r = ns_run(env.ns_be, sys.executable, os.path.abspath(__file__), "--capture-gue6", check=False)
    assert r.returncode == 0, f"capturing GUE over IPv6: {r.stdout} {r.stderr}"
    gue6 = json.loads(r.stdout)
    for proto in ("41", "4"):
        g = gue6[proto]
        assert g["udp_checksum_ok"] and g["hop_limit"] == 64 and g["next_header"] == 17 and \
            g["label_is_sport"], f"GUE over IPv6, proto {proto}: {g}"
    for vip in (VIP, VIP6):
        r = ns_run(env.ns_lb, "ip", "route", "get", vip, check=False)
        assert r.returncode != 0, f"the lb namespace has a route to {vip}: {r.stdout}"
    return "ipip, gue and l2dsr backends up in 44, 66 (and 46 but l2dsr); the lb host has " \
        "no route to the VIPs; GUE over IPv6's UDP checksums right (inner IPv6 and IPv4); " \
        "rondo-decap counted " + \
        ", ".join(f"{k} {v}" for k, v in stats.items() if k.startswith("decap_") and v)


def scenario_b(env, totals):
    decap(env, "detach", "eth0")
    wait_health(env, {n: "down" if n in TUNNELLED else "up" for n in VIPS},
                "ipip and gue down without rondo-decap, l2dsr up")
    for n in TUNNELLED:
        assert own_address_answers(env, n), f"{n}: its own address does not answer"
    decap(env, "attach", "eth0")
    wait_health(env, {n: "up" for n in VIPS}, "every backend up with rondo-decap again")
    return "ipip and gue (44, 66, 46) down with the tunnel broken (own address:port " \
        "answering), l2dsr up; all up once it is back"


def scenario_c(env, totals):
    for vip, plen, on_it in ((VIP6, 128, ON_VIP6), (VIP, 32, [n for n in VIPS if n not in ON_VIP6])):
        sh("ip", "-n", env.ns_be, "addr", "del", f"{vip}/{plen}", "dev", "lo")
        wait_health(env, {n: "down" if n in on_it else "up" for n in VIPS},
                    f"the backends of {vip} down without it on lo, the others up")
        for n in on_it:
            assert own_address_answers(env, n), f"{n}: its own address does not answer"
        sh("ip", "-n", env.ns_be, "addr", "add", f"{vip}/{plen}", "dev", "lo")
        wait_health(env, {n: "up" for n in VIPS}, f"every backend up with {vip} back")
    return "the v6 VIP off lo: the 66 backends down, the rest up; the v4 VIP off lo: the 44 " \
        "and 46 backends down, the 66 ones up (own addresses answering); up once back"


def scenario_d(env, totals):
    env.terminate("controlplane")
    out = filter_on_rhc0(env)
    assert "rondo_hc_encap" not in out, f"the filter stayed: {out}"
    c = program_counters(env.logs["controlplane"])
    sent = ("encap_ipip", "encap_gue", "sent_l2dsr", "encap_ipip6", "encap_gue6")
    assert all(c.get(k, 0) > 0 for k in sent), c
    drops = ("drop_no_entry", "drop_not_ip", "drop_no_route", "drop_adjust_failed",
             "drop_not_on_link", "drop_no_source", "drop_not_tcp")
    assert all(c.get(k) == 0 for k in drops), c
    return "the control plane removed its filter on exit; its counters: " + \
        ", ".join(f"{k} {v}" for k, v in c.items() if v)


def scenario_e(env, totals):
    sh("ip", "-n", env.ns_be, "addr", "del", f"{VIP}/32", "dev", "lo")
    sh("ip", "-n", env.ns_be, "addr", "del", f"{VIP6}/128", "dev", "lo")
    log_path = env.logs["controlplane"]
    start = os.path.getsize(log_path)
    start_controlplane(env, tunnel=False)
    wait_health(env, {n: "up" for n in VIPS}, "backends up, checked on their own address")
    time.sleep(0.5)  # a few more rounds of checks: the note must still be one line
    with open(log_path, errors="replace") as f:
        f.seek(start)
        notes = [line for line in f if "checked on their own address" in line]
    assert len(notes) == 1, f"expected one note in the log, got {notes}"
    show = env.rondoctl_ok("show").stdout
    want = "note: " + ", ".join(VIPS) + ": DSR backends are health-checked on their own address"
    assert want in show, show
    return "without --dsr-check-interface: up on their own address with the VIPs gone; " \
        "logged once, noted by rondoctl show"


SCENARIOS = [
    ("a", "DSR backends checked through their tunnel", scenario_a),
    ("b", "the tunnel broken, then back", scenario_b),
    ("c", "each VIP off lo, then back", scenario_c),
    ("d", "the filter goes with the control plane", scenario_d),
    ("e", "not configured: today's checks, said once", scenario_e),
]

if __name__ == "__main__":
    if sys.argv[1:] == ["--capture-gue6"]:
        sys.exit(capture_gue6_main())
    sys.exit(harness.run("dsr-checks", __file__, SCENARIOS, setup))
