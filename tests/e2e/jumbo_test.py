#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""End-to-end jumbo frames and rondo's own path MTU discovery answers (issue 9, item 3).

Topology: tools/lib/topo.sh up TAG --v6 (harness.py), then MTU 9000 on every link (the
client's and the backends' eth0, their bridge ports, br0, dp0 and its peer): the hosts'
kernels send 9000-byte frames and advertise an MSS of 8960 (8940 over IPv6). rondo runs on
dp0 (net_af_packet with framesz=9216,blocksz=36864: ring frames that hold a 9014-byte
frame), one worker, the seed VIPs (web 203.0.113.10:80 -> 198.51.100.3:3000-3003) and web6
([2001:db8::10]:80 -> [2001:db8:100::3]:3000-3003), full-NAT from 198.51.100.100 and
2001:db8:100::100.

Scenarios, in order (b after a: b leaves a path MTU of 1500 in the backend's route cache):
  a. rondo --mtu 9000: a 1 MB download through each VIP (v4, then v6) arrives whole (length,
     and every 4 KiB block's index), and the frames crossed at jumbo size: the port's bytes
     per frame received and sent during each download are above 1514 (the largest standard
     frame), and nothing was dropped as egress_too_big.
  b. rondo --mtu 1500, the hosts still at 9000: the backend's first 9000-byte segments do not
     fit rondo's egress; rondo drops them (egress_too_big) and tells the backend: ICMP
     fragmentation-needed 1500 over IPv4 (they carry DF), ICMPv6 packet too big 1500 over
     IPv6. The backend's kernel lowers its path MTU to rondo's local ip (ip route get shows
     mtu 1500) and the same 1 MB downloads complete, v4 and v6.

Needs root (exit 77 = skipped otherwise). Env: RONDO_BUILD (build dir), RONDO_SRC
(source dir). Everything it creates is removed at the end (see harness.py).
"""

import re
import socket
import struct
import subprocess
import sys
import time

import harness
from harness import (BACKEND_IP6, HTTP_BACKENDS, HTTP_PORT, LOCAL_IP, LOCAL_IP6, SEED_VIPS, VIP,
                     VIP6)

MTU = 9000
DOWNLOAD = 1 << 20
BLOCK = 4096  # backend.js /bytes: every 4 KiB block starts with its index (8 bytes, LE)
AF_PACKET_JUMBO = ",framesz=9216,blocksz=36864"
STANDARD_FRAME = 1514  # the largest untagged frame of MTU 1500
WEB6 = {"name": "web6", "address": VIP6, "port": HTTP_PORT, "protocol": "tcp",
        "backends": [(BACKEND_IP6, p) for p in HTTP_BACKENDS]}


# --------------------------------------------------------------------------------------
# Client side (runs in the client namespace: jumbo_test.py --client download ...).
# --------------------------------------------------------------------------------------

def client_download(args):
    """GET /bytes?n=N through the VIP; check the length and each block's index."""
    t0 = time.monotonic()
    got, error = 0, None
    try:
        with socket.create_connection((harness.VIP, harness.HTTP_PORT), timeout=10) as s:
            host = harness.url_host(harness.VIP)
            s.sendall(f"GET /bytes?n={args.bytes} HTTP/1.1\r\nHost: {host}\r\n"
                      f"Connection: close\r\n\r\n".encode())
            length, _, body = harness.read_head(s)
            data = bytearray(body)
            while len(data) < length:
                chunk = s.recv(1 << 16)
                if not chunk:
                    raise ConnectionError(f"closed after {len(data)} of {length} bytes")
                data += chunk
            got = len(data)
            if length != args.bytes:
                raise ValueError(f"Content-Length {length}, asked for {args.bytes}")
            for k in range(0, got, BLOCK):
                if data[k:k + 8] != struct.pack("<Q", k // BLOCK)[:min(8, got - k)]:
                    raise ValueError(f"block {k // BLOCK} does not start with its index")
    except (OSError, ValueError) as e:
        error = harness.err_text(e)
    return {"ok": error is None and got == args.bytes, "bytes": got, "error": error,
            "seconds": round(time.monotonic() - t0, 3)}


def _args_download(p):
    p.add_argument("--bytes", type=int, default=DOWNLOAD)
    p.add_argument("--vip", default=VIP)


CLIENT_MODES = {"download": (client_download, _args_download)}


# --------------------------------------------------------------------------------------
# Test side.
# --------------------------------------------------------------------------------------

def sh(*argv):
    return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=30).stdout


def set_mtus(env, mtu):
    """Every link of the topology at `mtu`: the bridge's ports before the bridge."""
    for ns, dev in ((env.ns_cl, "eth0"), (env.ns_be, "eth0"), (env.ns_lb, "clp"),
                    (env.ns_lb, "bep"), (env.ns_lb, "dp0p"), (env.ns_lb, "dp0"),
                    (env.ns_lb, "br0")):
        sh("ip", "-n", ns, "link", "set", "dev", dev, "mtu", str(mtu))


def port_totals(env):
    """dp0's ethdev counters: (ipackets, ibytes, opackets, obytes)."""
    p = env.dpstat_json()["ports"][0]
    return tuple(int(p[k]) for k in ("ipackets", "ibytes", "opackets", "obytes"))


def drop_count(env, reason):
    return sum(int(lc.get("drops", {}).get(reason, 0)) for lc in env.dpstat_json()["lcores"])


def start_rondo(env, mtu):
    env.start_dataplane(extra=["--mtu", str(mtu)], vdev_args=AF_PACKET_JUMBO)
    env.start_controlplane()
    env.wait_vip()
    env.wait_vip(VIP6)


def stop_rondo(env):
    env.terminate("controlplane")
    env.terminate("dataplane")


def download(env, vip):
    res = env.in_client("download", "--bytes", DOWNLOAD, "--vip", vip, timeout=60)
    assert res["ok"], f"the 1 MB download from {vip} failed: {res['error']} ({res['bytes']} bytes)"
    return res


def setup(env):
    env.v6 = True
    env.topology_up()
    set_mtus(env, MTU)
    env.start_backends()
    env.write_config(SEED_VIPS + [WEB6], local_ips=(LOCAL_IP, LOCAL_IP6))


def jumbo_download(env, vip):
    """A download through vip whose frames must cross at jumbo size; a summary."""
    before, tb0 = port_totals(env), drop_count(env, "egress_too_big")
    res = download(env, vip)
    after, tb1 = port_totals(env), drop_count(env, "egress_too_big")
    ip, ib, op, ob = (a - b for a, b in zip(after, before))
    rx_avg, tx_avg = ib / max(ip, 1), ob / max(op, 1)
    # The download's data crossed twice (in from the backend, out to the client): with frames
    # of at most 1514 bytes neither average could be above 1514.
    assert rx_avg > STANDARD_FRAME and tx_avg > STANDARD_FRAME, (
        f"{vip}: no jumbo frames: {ib} bytes in {ip} frames received ({rx_avg:.0f} per frame), "
        f"{ob} in {op} sent ({tx_avg:.0f})")
    assert tb1 == tb0, f"{vip}: egress_too_big moved by {tb1 - tb0} at --mtu {MTU}"
    return (f"{vip}: 1 MB in {res['seconds']}s, dp0 received {ip} frames / {ib} bytes "
            f"({rx_avg:.0f} per frame), sent {op} / {ob} ({tx_avg:.0f})")


def scenario_a_jumbo(env, totals):
    start_rondo(env, MTU)
    pool = [l for l in harness.tail(env.logs["dataplane"], 200).splitlines() if "mbuf pool" in l]
    v4, v6 = jumbo_download(env, VIP), jumbo_download(env, VIP6)
    return f"{v4}; {v6}; {pool[-1].split('USER1: ')[-1] if pool else 'no pool line'}"


def pmtud_download(env, vip, local):
    """A download through vip that needs rondo's ICMP error to the backend; a summary."""
    tb0 = drop_count(env, "egress_too_big")
    res = download(env, vip)
    tb1 = drop_count(env, "egress_too_big")
    assert tb1 > tb0, f"{vip}: egress_too_big did not move: the backend never sent a jumbo frame"
    route = sh("ip", "-n", env.ns_be, "route", "get", local)
    m = re.search(r"\bmtu (\d+)", route)
    assert m and int(m.group(1)) == 1500, (
        f"the backend did not learn rondo's MTU: ip route get {local}: {route.strip()}")
    return (f"{vip}: 1 MB in {res['seconds']}s, egress_too_big +{tb1 - tb0}, the backend's "
            f"route to {local}: mtu {m.group(1)}")


def scenario_b_mismatch(env, totals):
    stop_rondo(env)
    # Whatever the hosts learnt before (nothing, after a): start from the links' MTU.
    sh("ip", "-n", env.ns_be, "route", "flush", "cache")
    sh("ip", "-n", env.ns_be, "-6", "route", "flush", "cache")
    start_rondo(env, 1500)
    return f"{pmtud_download(env, VIP, LOCAL_IP)}; {pmtud_download(env, VIP6, LOCAL_IP6)}"


SCENARIOS = [
    ("a", f"jumbo frames at --mtu {MTU}", scenario_a_jumbo),
    ("b", "rondo at --mtu 1500 between hosts at 9000: path MTU discovery", scenario_b_mismatch),
]

if __name__ == "__main__":
    sys.exit(harness.run("jumbo", __file__, SCENARIOS, setup, client_modes=CLIENT_MODES))
