#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""End-to-end: the seed scenario with two worker lcores on a two-queue veth (issue 4).

The dataplane gets three lcores on the machine's two cores: `--lcores 0@0,1@1,2@1`
(EAL syntax lcore@cpu: main lcore 0 on cpu 0, workers 1 and 2 share cpu 1, and
--idle-sleep-us lets them take turns), and two queue pairs on dp0
(net_af_packet qpairs=2: the kernel fans frames out over the two sockets by flow hash).
A full-NAT reply that lands on the worker that does not own its local port is handed to
the owner over a ring (software steering: af_packet has no rte_flow).

Scenarios, in order:
  s. the dataplane runs 2 workers and reports "steering: software"
  a. 400 sequential HTTP connections: all answered, each backend >= 80, balanced per worker
  b. 50 concurrent connections: all answered, balanced per worker
  c. a keep-alive connection stays on its backend while 100 others come and go
  d. 20 UDP datagrams from 20 source ports: all answered, balanced per worker
  e. kill -9 the control plane during a request loop, restart it: no request fails
     (the seed's scenario e, as is)
  g. connections one after the other from one client port are each a new connection
  f. counters: both workers received packets, replies were steered between them, and
     every packet is accounted for (see scenario_f_counters)
  i. inspection across workers: `flow list` pages through both workers' tables, and a
     trace by backend address shows replies handed over (`steer`) and traced again on
     their owner (after f: its requests are not in f's accounting)

"Balanced per worker": round-robin cursors are per worker (and per vip), so each worker
gives every backend floor(n_w/4) or ceil(n_w/4) of its n_w connections; summed over
the 2 workers, backend counts differ by at most 2, whatever the split between workers.

A sniffer on dp0p (dp0's peer, in the lb namespace) counts what the dataplane sends for
scenario f. Needs root (exit 77 = skipped otherwise). Env: RONDO_BUILD, RONDO_SRC.
"""

import json
import os
import socket
import struct
import sys
from collections import Counter

import harness
from harness import (HTTP_BACKENDS, check_balanced, check_no_errors, fmt_counts, log,
                     reuse_note, tail, wait_until)
# The seed's scenarios, with the balance slack of per-worker round robin (env.skew).
from seed_test import (scenario_b_concurrent, scenario_c_longlived, scenario_d_udp,
                       scenario_e_controlplane_restart, scenario_g_port_reuse, tcp_connections)

WORKERS = 2
# Main lcore 0 on cpu 0 (control socket), workers 1 and 2 both on cpu 1.
EAL = ["--lcores", "0@0,1@1,2@1", "--main-lcore", "0"]
QPAIRS = 2
SKEW = WORKERS  # most that two backends' counts may differ by (see the docstring)


# --------------------------------------------------------------------------------------
# Client mode "sniff": count the frames the dataplane sends, from dp0's peer.
# --------------------------------------------------------------------------------------

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SOL_PACKET = 263
PACKET_STATISTICS = 6
SO_RCVBUFFORCE = 33  # not in Python's socket module


def client_sniff(args):
    """Count frames on dp0p (in the lb namespace) until the stop file appears. Frames
    dp0p receives came from dp0, i.e. from the dataplane ("from_dp"); frames it sends
    (PACKET_OUTGOING) go to dp0 ("to_dp"). Writes the counts to args.out (atomically)
    whenever they change, so the harness can read them while the dataplane runs."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 32 << 20)
    s.bind((args.iface, 0))
    s.settimeout(0.05)
    counts = {"from_dp": 0, "from_dp_arp_requests": 0, "to_dp": 0, "kernel_drops": 0}

    def save():
        # Reading PACKET_STATISTICS resets it: accumulate.
        _, drops = struct.unpack("II", s.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
        counts["kernel_drops"] += drops
        with open(args.out + ".tmp", "w") as f:
            json.dump(counts, f)
        os.rename(args.out + ".tmp", args.out)

    save()  # "ready": the socket is bound
    dirty = False
    while not os.path.exists(args.stop_file):
        try:
            frame, addr = s.recvfrom(65535)
        except socket.timeout:
            if dirty:
                save()
                dirty = False
            continue
        dirty = True
        if addr[2] == PACKET_OUTGOING:
            counts["to_dp"] += 1
            continue
        counts["from_dp"] += 1
        # Ethernet type ARP (no VLAN here), opcode 1 = request.
        if len(frame) >= 22 and frame[12:14] == b"\x08\x06" and frame[20:22] == b"\x00\x01":
            counts["from_dp_arp_requests"] += 1
    save()
    return counts


def _args_sniff(p):
    p.add_argument("--iface", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--stop-file", required=True)


CLIENT_MODES = {"sniff": (client_sniff, _args_sniff)}


# --------------------------------------------------------------------------------------
# Set-up and scenarios.
# --------------------------------------------------------------------------------------

def setup(env):
    env.skew = SKEW  # the seed's scenarios allow per-worker round robin's spread
    env.topology_up()
    # Before the dataplane starts, so that every frame it ever sends is counted.
    env.sniff_out = os.path.join(env.tmp, "sniff.json")
    env.sniff_stop = os.path.join(env.tmp, "sniff.stop")
    env.sniffer = env.client_popen("sniff", "--iface", "dp0p", "--out", env.sniff_out,
                                   "--stop-file", env.sniff_stop, ns=env.ns_lb)
    wait_until("the sniffer on dp0p to start", 10, lambda: os.path.exists(env.sniff_out),
               alive=[("sniffer", env.sniffer)])
    env.start_backends()
    env.start_dataplane(eal=EAL, qpairs=QPAIRS)
    env.write_config()
    log("control plane")
    env.start_controlplane()
    env.wait_vip()
    # TCP connections counted so far (the probe's): scenario f counts from here.
    env.base_tcp = tcp_connections(env)


def scenario_s_startup(env, totals):
    text = tail(env.logs["dataplane"], 1000)
    assert "steering: software" in text, \
        "the dataplane log has no 'steering: software' line (af_packet has no rte_flow)"
    assert f"{WORKERS} workers" in text, f"the dataplane log does not report {WORKERS} workers"
    info = env.dpstat_json()["dataplane"]
    assert int(info["workers"]) == WORKERS, f"dpstat reports {info['workers']} workers"
    # EAL names the worker lcores' threads (rte-worker-N in DPDK 22.11): both on cpu 1.
    pid = env.procs["dataplane"].pid  # ip netns exec execs the dataplane: same pid
    cpus = {}
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/comm") as f:
            comm = f.read().strip()
        with open(f"/proc/{pid}/task/{task}/status") as f:
            allowed = next(l.split(":")[1].strip() for l in f if l.startswith("Cpus_allowed_list"))
        if "worker" in comm:
            cpus[comm] = allowed
    assert len(cpus) == WORKERS and set(cpus.values()) == {"1"}, \
        f"worker threads and their cpus: {cpus} (want {WORKERS}, all on cpu 1)"
    line = next(l for l in text.splitlines() if "steering:" in l)
    return (f"{info['workers']} workers, threads {' '.join(f'{k}@cpu{v}' for k, v in sorted(cpus.items()))}; "
            f"{line.split('USER1: ')[-1].strip()}")


def scenario_a_sequential(env, totals):
    res = env.in_client("seq", "--count", 400)
    check_no_errors(res, "sequential connections")
    note = reuse_note(env, res, totals)
    totals["tcp"] += len(res["ports"])
    ports = res["ports"]
    assert len(ports) == 400, f"{len(ports)} answers for 400 connections"
    c = Counter(ports)
    low = [p for p in HTTP_BACKENDS if c[p] < 80]
    assert not low, f"backends below 80 of 400: {fmt_counts(ports)}{note}"
    spread = check_balanced(ports, HTTP_BACKENDS, "400 sequential connections", SKEW, note)
    return f"400/400 sequential connections answered, {fmt_counts(ports)} (spread {spread}){note}"


def read_sniff(env):
    with open(env.sniff_out) as f:
        return json.load(f)


def lcore_sums(stats):
    keys = ("rx_packets", "tx_packets", "consumed", "steered_out", "steered_in", "originated")
    sums = {k: sum(int(l[k]) for l in stats["lcores"]) for k in keys}
    drops = Counter()
    for l in stats["lcores"]:
        drops.update({k: int(v) for k, v in l["drops"].items()})
    sums["drops"] = sum(drops.values())
    return sums, drops


def quiet_counters(env):
    """Counters at rest: `rondoctl stats` (the control plane's poll of the dataplane, every
    500 ms) twice in a row with different fetch times and the same lcore counters, and the
    sniffer's counts unchanged over the same time. Returns (stats, sniff)."""
    prev = {}

    def settled():
        stats = env.rondoctl_json("stats")
        sniff = read_sniff(env)
        # Packet counters only: the cycle counters move all the time.
        key = json.dumps([{k: v for k, v in l.items() if not k.endswith("_cycles")}
                          for l in stats["lcores"]], sort_keys=True) + json.dumps(sniff, sort_keys=True)
        when = stats["status"]["stats_time"]
        if prev and prev["key"] == key and prev["when"] != when:
            return stats, sniff
        prev.update(key=key, when=when)
        return None
    return wait_until("the dataplane's counters to come to rest", 20, settled, interval=0.3)


def scenario_f_counters(env, totals):
    # rondo-dpstat --json (straight from the dataplane): per-lcore rx, per-backend counts.
    dp = env.dpstat_json()
    # Worker rows are the ones with a flow table; the main lcore's row (neighbours, ARP)
    # has none and receives nothing from a port.
    rx = {int(l["lcore_id"]): int(l["rx_packets"]) for l in dp["lcores"]
          if int(l.get("flow_capacity", 0)) > 0}
    assert len(rx) == WORKERS and all(v > 0 for v in rx.values()), \
        f"not every worker received packets: rx per lcore {rx}"
    by_id = {int(b["id"]): b for b in dp.get("backends", [])}
    conns = {i: int(by_id[i]["connections"]) if i in by_id else 0 for i in range(8)}
    tcp = sum(conns[i] for i in range(4))
    udp = sum(conns[i] for i in range(4, 8))
    # Exact: every connection a client made is one new flow on the worker its SYN landed
    # on (a reused source port meets a closing flow, which counts as new too).
    assert tcp - env.base_tcp == totals["tcp"], (
        f"dataplane counted {tcp - env.base_tcp} tcp connections, clients made {totals['tcp']}")
    assert udp == totals["udp"], f"dataplane counted {udp} udp flows, clients made {totals['udp']}"

    stats, sniff = quiet_counters(env)
    s, drops = lcore_sums(stats)
    per_lcore = "; ".join(
        f"lcore {l['lcore_id']}: rx {l['rx_packets']} tx {l['tx_packets']} "
        f"steered out {l['steered_out']} in {l['steered_in']} consumed {l['consumed']}"
        for l in stats["lcores"])
    assert any(int(l["steered_out"]) > 0 for l in stats["lcores"]), \
        f"no reply was handed to the other worker (software steering unused?): {per_lcore}"
    assert sniff["kernel_drops"] == 0, f"the sniffer on dp0p lost {sniff['kernel_drops']} frames"
    assert drops["steer_full"] == 0, f"hand-over ring full: {drops['steer_full']} drops"
    assert drops["arp_queue_full"] == 0, f"ARP ring full: {drops['arp_queue_full']} drops"
    # What one lcore hands over another takes over: replies between the workers, ARP frames
    # to the main lcore, the main lcore's ARP replies and requests to worker 0 for TX.
    assert s["steered_out"] == s["steered_in"], \
        f"frames handed over != frames taken over: {per_lcore}"
    # Everything the workers sent is on the wire, and the only frames sent without having
    # been received are the ARP requests the main lcore originates: it counts them
    # (originated), and the sniffer on the wire must agree.
    arp = s["originated"]
    assert arp == sniff["from_dp_arp_requests"], \
        f"the main lcore counted {arp} ARP requests made, dp0p saw {sniff['from_dp_arp_requests']}"
    assert s["tx_packets"] == sniff["from_dp"], \
        f"workers counted {s['tx_packets']} frames sent, dp0p received {sniff['from_dp']} from dp0"
    # Every frame an lcore receives (rx), takes over (steered_in) or makes (originated) ends
    # exactly one way: sent (tx), dropped (drops, by reason), consumed (an ARP reply for
    # us, on the main lcore), or handed over (steered_out; the taker counts it again in
    # steered_in and then ends it).
    lhs = s["rx_packets"] + s["steered_in"] + arp
    rhs = s["tx_packets"] + s["drops"] + s["consumed"] + s["steered_out"]
    drop_text = " ".join(f"{k}={v}" for k, v in sorted(drops.items()) if v) or "none"
    assert lhs == rhs, (
        f"packets unaccounted for: rx {s['rx_packets']} + steered_in {s['steered_in']} + "
        f"originated {arp} = {lhs} != tx {s['tx_packets']} + drops {s['drops']} + "
        f"consumed {s['consumed']} + steered_out {s['steered_out']} = {rhs} "
        f"(drops: {drop_text}; {per_lcore})")
    return (f"rx per lcore {rx}; {per_lcore}; drops: {drop_text}; originated (ARP requests) {arp}; "
            f"rx+steered_in+originated = tx+drops+consumed+steered_out = {lhs}; "
            f"tcp connections {tcp - env.base_tcp} (+{env.base_tcp} at set-up) = made by the "
            f"clients, udp flows {udp}")


def scenario_i_inspect(env, totals):
    import inspect_checks
    # By the backend's address: a reply that lands on the worker that does not own its flow
    # carries it (the client's address is only in the flow, on the owner).
    inspect_checks.api(env, {"cmd": "trace.start", "backend": harness.BACKEND_IP, "count": 400,
                             "seconds": 30})
    recs = []

    def steered_seen():
        res = env.in_client("seq", "--count", 10)
        check_no_errors(res, "requests during the trace")
        recs.extend(inspect_checks.api(env, {"cmd": "trace.read"})["packets"])
        return any(r["verdict"] == "steer" for r in recs) and any(r["steered"] for r in recs)

    harness.wait_until("a steered reply in the trace", 20, steered_seen, interval=0.2)
    recs.extend(inspect_checks.api(env, {"cmd": "trace.stop"})["packets"])
    lcores = {r["lcore"] for r in recs}
    handed = [r for r in recs if r["verdict"] == "steer"]
    taken = [r for r in recs if r["steered"]]
    assert all(r["kind"] == "reply" for r in handed + taken), "a steered packet that is not a reply"
    assert len(lcores) == 2, f"the trace saw lcores {sorted(lcores)}, not both workers"
    listed = env.rondoctl_json("flow", "list", "--vip", "web", "--limit", 100000)
    owners = {f["lcore"] for f in listed["flows"]}
    assert len(owners) == 2 and not listed["more"], \
        f"flow list --vip web: {len(listed['flows'])} flows on lcores {sorted(owners)}"
    return (f"trace: {len(recs)} packets on lcores {sorted(lcores)}, {len(handed)} replies "
            f"steered and {len(taken)} traced again on their owner; flow list: "
            f"{len(listed['flows'])} flows on lcores {sorted(owners)}")


SCENARIOS = [
    ("s", "two workers, software steering", scenario_s_startup),
    ("a", "sequential connections", scenario_a_sequential),
    ("b", "concurrent connections", scenario_b_concurrent),
    ("c", "long-lived connection", scenario_c_longlived),
    ("d", "udp", scenario_d_udp),
    ("e", "control plane kill -9/restart", scenario_e_controlplane_restart),
    ("g", "new connection on a just-used client port", scenario_g_port_reuse),
    ("f", "counters and steering", scenario_f_counters),  # it counts all of the above
    ("i", "inspection across workers", scenario_i_inspect),
]

if __name__ == "__main__":
    sys.exit(harness.run("two-workers", __file__, SCENARIOS, setup, client_modes=CLIENT_MODES))
