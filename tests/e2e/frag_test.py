#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""End-to-end: UDP datagrams longer than the MTU through the VIP (issue 9, item 5).

The client sends 8 KB UDP datagrams to VIP:53 and [VIP6]:53; its kernel fragments them at
the veth MTU (1500). rondo reassembles each (frag/reassembly.h), runs it through the flow
like any packet and, the datagram being longer than --mtu, sends it to the backend in
fragments again; the backend's kernel reassembles it, backend.js echoes it ("udp from
backend :PORT " + the payload, 8 KB and more), its kernel fragments the answer to rondo's
local ip, and rondo reassembles, rewrites and re-fragments it to the client, whose kernel
reassembles it. Every answer must come from the VIP, byte for byte.

Scenarios:
  a. 10 datagrams of 8192 bytes to VIP:53, each from its own source port
  b. the same to [VIP6]:53 (topo.sh --v6)
  c. counters: every datagram was reassembled and re-fragmented both ways, no fragment timed
     out or was refused

Needs root (exit 77 = skipped otherwise). Env: RONDO_BUILD, RONDO_SRC.
"""

import os
import socket
import sys

import harness
from harness import (LOCAL_IP, LOCAL_IP6, SEED_VIPS, UDP_PORT, UDP_REPLY_RE, VIP, VIP6,
                     check_no_errors, log)
from ipv6_test import V6_VIPS

COUNT = 10
SIZE = 8192


# --------------------------------------------------------------------------------------
# Client mode "bigudp": large datagrams, answers checked byte for byte.
# --------------------------------------------------------------------------------------

def client_bigudp(args):
    vip = args.vip
    errors = []
    answered = 0
    retries = 0
    for i in range(args.count):
        s = socket.socket(harness.family(vip), socket.SOCK_DGRAM)
        s.settimeout(2.0)
        s.bind(("::" if harness.is_v6(vip) else "0.0.0.0", 0))
        # Distinct bytes per datagram and position: a misplaced fragment shows.
        head = f"big {i} {os.getpid()} ".encode()
        payload = (head + bytes((j * 7 + i) % 251 for j in range(args.size)))[:args.size]
        try:
            for _ in range(3):
                s.sendto(payload, (vip, UDP_PORT))
                try:
                    data, peer = s.recvfrom(65535)
                except socket.timeout:
                    retries += 1
                    continue
                m = UDP_REPLY_RE.match(data)
                if peer[:2] != (vip, UDP_PORT):
                    errors.append(f"datagram {i}: answer from {peer}, not the VIP")
                elif not m or m.group(2) != payload:
                    errors.append(f"datagram {i}: answer of {len(data)} bytes is not the echo")
                else:
                    answered += 1
                break
            else:
                errors.append(f"datagram {i}: no answer after 3 tries")
        finally:
            s.close()
    return {"answered": answered, "errors": errors, "retries": retries}


def _args_bigudp(p):
    p.add_argument("--vip", default=VIP)
    p.add_argument("--count", type=int, default=COUNT)
    p.add_argument("--size", type=int, default=SIZE)


CLIENT_MODES = {"bigudp": (client_bigudp, _args_bigudp)}


# --------------------------------------------------------------------------------------
# Set-up and scenarios.
# --------------------------------------------------------------------------------------

def start_dataplane_afxdp(env):
    """harness.start_dataplane's process on net_af_xdp instead of net_af_packet: DPDK's
    af_packet PMD opens its sockets with PACKET_FANOUT_FLAG_DEFRAG, so the lb host's kernel
    reassembles fragments before rondo sees them (and an 8 KB datagram does not fit its 2 KB
    frames: gso_frame). AF_XDP takes the frames at the driver, fragments and all. The PMD's
    own XDP program (no libxdp dispatcher) sends every frame of the queue to rondo."""
    memory = ["--no-huge", "-m", "512"]
    log(f"dataplane ({' '.join(harness.ONE_WORKER_EAL + memory)}, net_af_xdp on dp0)")
    dp = env.spawn("dataplane", env.ns_lb, [
        "env", "LIBXDP_SKIP_DISPATCHER=1",
        env.dataplane, *harness.ONE_WORKER_EAL, *memory, "--no-pci", "--file-prefix",
        env.file_prefix, "--vdev=net_af_xdp0,iface=dp0,start_queue=0,queue_count=1",
        "--log-level=*:notice", "--", "--ctl-socket", env.sock, "--state-dir",
        os.path.join(env.tmp, "state"), "--idle-sleep-us", "50"])
    harness.wait_until("the dataplane to print 'ready'", 30,
                       lambda: "ready:" in harness.tail(env.logs["dataplane"], 1000), interval=0.2,
                       alive=[("rondo-dataplane", dp)])
    return dp


def setup(env):
    env.v6 = True
    env.topology_up()
    env.start_backends()
    start_dataplane_afxdp(env)
    env.write_config(SEED_VIPS + V6_VIPS, local_ips=(LOCAL_IP, LOCAL_IP6))
    harness.log("control plane")
    env.start_controlplane()
    env.wait_vip()
    env.wait_vip(VIP6)


def big_udp(env, totals, vip):
    res = env.in_client("bigudp", "--vip", vip, "--count", COUNT, "--size", SIZE)
    check_no_errors(res, f"{SIZE}-byte datagrams to {vip}")
    assert res["answered"] == COUNT, f"{res['answered']}/{COUNT} answered"
    totals["datagrams"] += COUNT + res["retries"]
    return f"{COUNT}/{COUNT} datagrams of {SIZE} bytes echoed byte for byte ({res['retries']} retries)"


def scenario_a_v4(env, totals):
    return big_udp(env, totals, VIP)


def scenario_b_v6(env, totals):
    totals["v6"] = 1
    return big_udp(env, totals, VIP6)


def lcore_sum(dp, name):
    return sum(int(l.get(name, 0)) for l in dp["lcores"])


def drop_count(dp, reason):
    n = 0
    for l in dp["lcores"]:
        d = l.get("drops", {})
        if isinstance(d, dict):
            n += int(d.get(reason, 0))
        else:  # a list of {reason, count}
            n += sum(int(x.get("count", 0)) for x in d if x.get("reason") == reason)
    return n


def scenario_c_counters(env, totals):
    dp = env.dpstat_json()
    got = {k: lcore_sum(dp, k) for k in ("frag_received", "frag_reassembled", "frag_timeouts",
                                         "frag_discarded", "frag_refragmented")}
    drops = {r: drop_count(dp, r) for r in ("frag_table_full", "frag_invalid", "frag_too_big",
                                            "frag_duplicate", "ip_fragment")}
    log(f"counters {got}, drops {drops}")
    runs = 2 if totals["v6"] else 1
    assert got["frag_reassembled"] >= 2 * runs * COUNT, (
        f"{got['frag_reassembled']} datagrams reassembled for {runs * COUNT} requests and their "
        f"answers")
    # 8 KB at 1500: 6 fragments each way (8200 / 1480 rounded up), both ways.
    assert got["frag_received"] >= 6 * got["frag_reassembled"], got
    assert got["frag_refragmented"] == got["frag_reassembled"], (
        f"every reassembled datagram is longer than the MTU and leaves in fragments: {got}")
    assert got["frag_timeouts"] == 0 and got["frag_discarded"] == 0, got
    assert all(v == 0 for v in drops.values()), f"fragment drops: {drops}"
    return (f"{got['frag_received']} fragments in, {got['frag_reassembled']} datagrams reassembled "
            f"and re-fragmented, no timeout or drop")


SCENARIOS = [
    ("a", "8 KB UDP datagrams through VIP:53, fragmented both ways", scenario_a_v4),
    ("b", "8 KB UDP datagrams through [VIP6]:53, fragmented both ways", scenario_b_v6),
    ("c", "reassembly counters", scenario_c_counters),
]

if __name__ == "__main__":
    sys.exit(harness.run("frag", __file__, SCENARIOS, setup, client_modes=CLIENT_MODES))
