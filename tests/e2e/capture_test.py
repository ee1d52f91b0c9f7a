#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""End-to-end: dpdk-dumpcap captures rondo's RX and TX into a pcapng file (issue 13).

The seed topology (harness.py), with the dataplane on hugepages: dpdk-dumpcap is a DPDK
secondary process and maps the primary's memory, which --no-huge memory cannot give it.
The run reserves 2 MiB hugepages (mounting hugetlbfs if needed) and puts the count and
the mount back at the end, and removes the dataplane's hugepage files and EAL runtime dir
(harness.Env.stop), also on failure.

Scenarios, in order:
  s. the dataplane says dumpcap can attach, with its file prefix
  a. dpdk-dumpcap on the dataplane's port while 12 HTTP requests go through the VIP (as
     tools/demo sends them): tcpdump reads the file; it holds, for each of the 12
     connections, the client's SYN to the VIP and the backend's SYN-ACK to the local IP
     (RX), and the rewritten SYN from the local IP to the backend and the SYN-ACK from the
     VIP to the client (TX), each backend's share as the client saw it; dumpcap dropped
     nothing
  b. once dumpcap has stopped, requests still go through (its callbacks are gone)

Needs root (exit 77 = skipped otherwise) and dpdk-dumpcap (Debian package dpdk) and
tcpdump. Env: RONDO_BUILD, RONDO_SRC.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter

import harness
from harness import (BACKEND_IP, CLIENT_IP, HTTP_BACKENDS, HTTP_PORT, LOCAL_IP, VIP,
                     check_no_errors, fmt_counts, log, wait_until)

REQUESTS = 12
# The dataplane takes ~13 pages (mbuf pool, rings); dumpcap's ring and mbufs (4,096 of
# ~2.3 KiB) are allocated in the same memory. 64 pages (128 MiB) leave room for both.
HUGEPAGES = 64
PORT = "net_af_packet0"  # the harness's only port; dumpcap takes a name or a port id

# tcpdump -nn's line for a TCP segment: "IP a.b.c.d.sport > e.f.g.h.dport: Flags [S], ..."
SEGMENT_RE = re.compile(r" IP (\d+\.\d+\.\d+\.\d+)\.(\d+) > (\d+\.\d+\.\d+\.\d+)\.(\d+): "
                        r"Flags \[([^\]]*)\]")
REPORT_RE = re.compile(r"Packets received/dropped on interface '([^']*)': (\d+)/(\d+)")


def cpu_seconds(pid):
    """User + system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def segments(pcap):
    """(src, sport, dst, dport, flags) of every TCP segment in a capture, read by tcpdump."""
    r = subprocess.run(["tcpdump", "-r", pcap, "-nn", "tcp"], capture_output=True,
                       text=True, timeout=30)
    if r.returncode != 0:
        raise AssertionError(f"tcpdump -r {pcap} exited {r.returncode}: {r.stderr.strip()}")
    out = []
    for line in r.stdout.splitlines():
        m = SEGMENT_RE.search(line)
        if m:
            out.append((m.group(1), int(m.group(2)), m.group(3), int(m.group(4)), m.group(5)))
    return out


def scenario_s_announced(env, totals):
    want = f"capture: dpdk-dumpcap --file-prefix={env.file_prefix} can attach"
    text = harness.tail(env.logs["dataplane"], 1000)
    assert want in text, f"the dataplane's log lacks '{want}'"
    return f"dataplane log: '{want}'"


def scenario_a_capture(env, totals):
    pcap = os.path.join(env.tmp, "capture.pcapng")
    # -p: rondo's ports are not promiscuous and dumpcap must not make them so (it would
    # turn promiscuous mode off again at exit, whatever it was). -a duration: a bound, in
    # case the SIGINT below never comes.
    dumpcap = env.spawn("dumpcap", env.ns_lb, [
        env.dumpcap, f"--file-prefix={env.file_prefix}", "-i", PORT, "-p",
        "-a", "duration:60", "-w", pcap])
    # "Packets captured:" is printed once the dataplane has installed its RX/TX callbacks.
    wait_until("dpdk-dumpcap to start capturing", 15,
               lambda: "Packets captured" in harness.tail(env.logs["dumpcap"]),
               alive=[("dpdk-dumpcap", dumpcap)])
    cpu0, t0 = cpu_seconds(dumpcap.pid), time.monotonic()
    res = env.in_client("seq", "--count", REQUESTS)
    time.sleep(0.2)  # the last segments (the backends' FINs) through the ring to the file
    cpu = (cpu_seconds(dumpcap.pid) - cpu0) / (time.monotonic() - t0)
    dumpcap.send_signal(signal.SIGINT)
    try:
        dumpcap.wait(10)
    except subprocess.TimeoutExpired:
        raise AssertionError("dpdk-dumpcap did not stop within 10s of SIGINT")
    env.procs.pop("dumpcap")
    check_no_errors(res, f"{REQUESTS} requests")
    assert dumpcap.returncode == 0, f"dpdk-dumpcap exited {dumpcap.returncode}"
    report = REPORT_RE.search(harness.tail(env.logs["dumpcap"]))
    assert report, "dpdk-dumpcap printed no 'Packets received/dropped' line"
    received, dropped = int(report.group(2)), int(report.group(3))
    assert dropped == 0, f"dpdk-dumpcap dropped {dropped} of {received + dropped} packets"

    segs = segments(pcap)
    # rondo rewrites both directions (full-NAT), so the addresses say which side of the
    # port a segment was on: client<->VIP and backend->local IP come in (RX), local
    # IP->backend and VIP->client go out (TX). One per connection: its own source port.
    rx_syn = {sp for s, sp, d, dp, f in segs
              if (s, d, dp, f) == (CLIENT_IP, VIP, HTTP_PORT, "S")}
    tx_syn = {(sp, dp) for s, sp, d, dp, f in segs
              if (s, d, f) == (LOCAL_IP, BACKEND_IP, "S") and dp in HTTP_BACKENDS}
    rx_synack = {(sp, dp) for s, sp, d, dp, f in segs
                 if (s, d, f) == (BACKEND_IP, LOCAL_IP, "S.") and sp in HTTP_BACKENDS}
    tx_synack = {dp for s, sp, d, dp, f in segs
                 if (s, sp, d, f) == (VIP, HTTP_PORT, CLIENT_IP, "S.")}
    counts = (f"RX: {len(rx_syn)} SYN client->VIP, {len(rx_synack)} SYN-ACK backend->local ip; "
              f"TX: {len(tx_syn)} SYN local ip->backend, {len(tx_synack)} SYN-ACK VIP->client")
    assert len(rx_syn) == len(tx_syn) == len(rx_synack) == len(tx_synack) == REQUESTS, \
        f"{REQUESTS} connections, but the capture holds {counts}"
    assert rx_syn == tx_synack, "the SYN-ACKs to the client went to other ports than its SYNs"
    to_backends = [dp for _, dp in tx_syn]
    assert Counter(to_backends) == Counter(res["ports"]), (
        f"SYNs to backends in the capture: {fmt_counts(to_backends)}; answers the client got: "
        f"{fmt_counts(res['ports'])}")
    totals["tcp"] += len(res["ports"])
    return (f"{REQUESTS}/{REQUESTS} answered; {len(segs)} TCP segments in the file, {counts}; "
            f"SYNs to backends {fmt_counts(to_backends)}; dumpcap {received} received, "
            f"0 dropped, {cpu:.0%} of a core while capturing")


def scenario_b_after(env, totals):
    res = env.in_client("seq", "--count", 4)
    check_no_errors(res, "requests after the capture")
    totals["tcp"] += len(res["ports"])
    return f"4/4 answered after dumpcap stopped: {fmt_counts(res['ports'])}"


SCENARIOS = [
    ("s", "the dataplane serves dpdk-dumpcap", scenario_s_announced),
    ("a", "capture of 12 requests, both directions", scenario_a_capture),
    ("b", "forwarding after the capture", scenario_b_after),
]


def setup(env):
    env.dumpcap = shutil.which("dpdk-dumpcap")
    for name, path in (("dpdk-dumpcap (Debian package dpdk)", env.dumpcap),
                       ("tcpdump", shutil.which("tcpdump"))):
        if not path:
            raise AssertionError(f"{name} is not installed (tools/lib/deps.sh)")
    env.start_seed(hugepages=HUGEPAGES)


if __name__ == "__main__":
    sys.exit(harness.run("capture", __file__, SCENARIOS, setup))
