#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""End-to-end interfaces (issue 9 item 3): rondo's clients on a VLAN, its backends untagged,
on one port.

Topology: tools/lib/topo.sh up TAG --v6 --vlan build/tests/e2e/vlan_tag_100.bpf.o
(harness.py, env.vlan_obj): the client is 192.0.2.2/24 and 2001:db8:200::2/64, and a tc
program on its eth0 tags every frame it sends with VLAN 100 and drops every frame that
does not arrive tagged 100 (then untags it). The backends 198.51.100.3 and 2001:db8:100::3
stay untagged on the same bridge, and their kernels drop tagged frames (no VLAN device). So
every answer that reaches the client left rondo tagged 100, and every packet that reaches a
backend left rondo untagged. rondo runs on dp0 (net_af_packet, one worker) with

  interfaces: clients  port 0, vlan 100, 192.0.2.1/24, 2001:db8:200::1/64
              backends port 0, untagged, 198.51.100.254/24, 2001:db8:100::254/64

no routes and no static neighbours (the interfaces' addresses make connected routes), the
seed VIPs (web 203.0.113.10:80 -> 198.51.100.3:3000-3003, dns :53 -> :4000-4003) and their v6
twins on [2001:db8::10], full-NAT from 198.51.100.100 and 2001:db8:100::100.

Setup first proves the tagger without rondo: the client's ARP request for the VIP reaches
dp0 tagged 100; ARP replies sent back on dp0 untagged or tagged 300 never reach the client's
neighbour table, one tagged 100 does.

Scenarios, in order:
  a1-a4. the seed scenario over the VLAN: 400 sequential connections exactly 100 per backend
     in strict rotation, 50 concurrent, a keep-alive connection among 100 others, 20 UDP
     datagrams 5 per backend (seed_test.py's checks)
  a5. rondo resolved the client itself: the client's kernel has 192.0.2.1 (rondo's address
     on the VLAN, the sender of rondo's ARP request) and the VIP at dp0's MAC
  b1. per-interface counters: rondo_interface_{rx,tx}_packets_total of clients and
     backends are at least what a1-a4's connections must have carried; promtool check
     metrics passes; rondoctl show lists both interfaces
  b2. no vlan_mismatch drop so far; a UDP datagram to the VIP tagged 300 (sent raw from
     the backends' namespace: no interface of port 0 has VLAN 300) adds exactly one
  c. IPv6 over the VLAN: the client's neighbour solicitation for [2001:db8::10] is answered
     (tagged), 400 sequential connections and 20 datagrams, as ipv6_test.py checks them
  d. per-interface MTU: every link at 9000, rondo at --mtu 9000 with clients at mtu 1500 and
     backends at 9000 (a restart): the backend's 9000-byte segments to the client do not fit
     the clients interface, rondo drops them (egress_too_big) and sends the backend
     fragmentation-needed 1500 (untagged: the backend's kernel takes it), the backend's path
     MTU to rondo's local ip becomes 1500 and a 1 MB download completes

Needs root (exit 77 = skipped otherwise) and the tagger object (clang; exit 77 without it).
Env: RONDO_BUILD (build dir), RONDO_SRC (source dir). Everything it creates is removed at
the end (see harness.py).
"""

import os
import re
import socket
import struct
import subprocess
import sys
import time

import harness
import ipv6_test
import jumbo_test
import packets as P
import seed_test
from harness import (BACKEND_IP, BACKEND_IP6, HTTP_BACKENDS, HTTP_PORT, LOCAL_IP, LOCAL_IP6,
                     SEED_VIPS, UDP_BACKENDS, UDP_PORT, VIP, VIP6, parse_metrics)

VID = 100          # the client's VLAN (the object topo.sh attaches is built for it)
OTHER_VID = 300    # no interface has it
CLIENT_IP = "192.0.2.2"  # topo.sh --vlan
CLIENT_IP6 = "2001:db8:200::2"
CLIENTS_ADDR, CLIENTS_ADDR6 = "192.0.2.1", "2001:db8:200::1"
METRICS = "127.0.0.1:9843"  # in the lb namespace, like the control plane


def interfaces(clients_mtu=None, backends_mtu=None):
    return [{"name": "clients", "port": 0, "vlan": VID, "mtu": clients_mtu,
             "addresses": [f"{CLIENTS_ADDR}/24", f"{CLIENTS_ADDR6}/64"]},
            {"name": "backends", "port": 0, "mtu": backends_mtu,
             "addresses": ["198.51.100.254/24", "2001:db8:100::254/64"]}]


V6_VIPS = [
    {"name": "web6", "address": VIP6, "port": HTTP_PORT, "protocol": "tcp",
     "backends": [(BACKEND_IP6, p) for p in HTTP_BACKENDS]},
    {"name": "dns6", "address": VIP6, "port": UDP_PORT, "protocol": "udp",
     "backends": [(BACKEND_IP6, p) for p in UDP_BACKENDS]},
]


# --------------------------------------------------------------------------------------
# Inside a namespace.
# --------------------------------------------------------------------------------------

SOL_PACKET, PACKET_AUXDATA, TP_STATUS_VLAN_VALID = 263, 8, 0x10
ETH_P_ALL, ETH_P_ARP, ETH_P_8021Q = 0x0003, 0x0806, 0x8100
ARP_REQUEST, ARP_REPLY = 1, 2
# The ARP replies of the tagger check: never an address anything here has.
MAC_UNTAGGED, MAC_OTHER_VID, MAC_GOOD = "02:00:5e:00:00:0a", "02:00:5e:00:00:0b", "02:00:5e:00:00:0c"


def vlan_header(vid, ethertype):
    return struct.pack("!HHH", ETH_P_8021Q, vid, ethertype)


def arp_reply_frame(to_mac, to_ip, from_mac, from_ip, vid):
    """An ARP reply "from_ip is at from_mac", tagged vid in the bytes (0: untagged)."""
    arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, ARP_REPLY, from_mac, from_ip,
                      to_mac, to_ip)
    l2 = to_mac + from_mac + (vlan_header(vid, ETH_P_ARP) if vid else struct.pack("!H", ETH_P_ARP))
    frame = l2 + arp
    return frame + b"\0" * max(0, 60 + (4 if vid else 0) - len(frame))


def neigh_entry(ns, addr):
    """The kernel's neighbour entry for addr in namespace ns: (lladdr or None, the line)."""
    r = subprocess.run(["ip", "-n", ns, "neigh", "show", addr], capture_output=True, text=True,
                       timeout=10)
    parts = r.stdout.split()
    return (parts[parts.index("lladdr") + 1] if "lladdr" in parts else None), r.stdout.strip()


def client_tagger_check(args):
    """In the lb namespace, before rondo runs, on dp0: make the client ARP for the VIP, read
    its request (where the tag is: the kernel hands it to a packet socket as PACKET_AUXDATA),
    answer untagged and tagged OTHER_VID (the client must ignore both), then tagged VID (the
    client must take it)."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind(("dp0", 0))
    s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    # A datagram to the VIP: the client's kernel has to resolve it (the VIP prefix is on-link).
    subprocess.run(["ip", "netns", "exec", args.client_ns, sys.executable, "-c",
                    "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM)"
                    f".sendto(b'x', ('{VIP}', 9))"], check=True, timeout=10)
    vip = socket.inet_aton(VIP)
    request, tag, errors = None, None, []
    end = time.monotonic() + 5
    while request is None and time.monotonic() < end:
        s.settimeout(max(0.01, end - time.monotonic()))
        try:
            data, anc, _, _ = s.recvmsg(2048, socket.CMSG_SPACE(32))
        except socket.timeout:
            break
        tci = None
        for lvl, typ, d in anc:
            if lvl == SOL_PACKET and typ == PACKET_AUXDATA:
                status, _, _, _, _, aux_tci, _ = struct.unpack("IIIHHHH", d[:24])
                if status & TP_STATUS_VLAN_VALID:
                    tci = aux_tci
        body = data[14:]
        if data[12:14] == struct.pack("!H", ETH_P_8021Q):  # a tag the kernel left in the bytes
            tci, body = struct.unpack("!H", data[14:16])[0], data[18:]
            if data[16:18] != struct.pack("!H", ETH_P_ARP):
                continue
        elif data[12:14] != struct.pack("!H", ETH_P_ARP):
            continue
        if struct.unpack("!H", body[6:8])[0] == ARP_REQUEST and body[24:28] == vip:
            request, tag = body, tci
    if request is None:
        return {"errors": ["no ARP request for the VIP from the client on dp0 within 5 s"]}
    sha, spa = request[8:14], request[14:18]
    if tag is None or tag & 0xfff != VID:
        errors.append(f"the client's ARP request reached dp0 with tci {tag}, want VLAN {VID}")
    for mac, vid in ((MAC_UNTAGGED, 0), (MAC_OTHER_VID, OTHER_VID)):
        s.send(arp_reply_frame(sha, spa, P.mac(mac), vip, vid))
    time.sleep(0.5)
    after_bad = neigh_entry(args.client_ns, VIP)
    if after_bad[0] in (MAC_UNTAGGED, MAC_OTHER_VID):
        errors.append(f"the client took an ARP reply it must have dropped: {after_bad[1]}")
    s.send(arp_reply_frame(sha, spa, P.mac(MAC_GOOD), vip, VID))
    after_good = after_bad
    end = time.monotonic() + 2
    while after_good[0] != MAC_GOOD and time.monotonic() < end:
        time.sleep(0.05)
        after_good = neigh_entry(args.client_ns, VIP)
    if after_good[0] != MAC_GOOD:
        errors.append(f"the client did not take the ARP reply tagged {VID}: {after_good[1]}")
    return {"tci": tag, "sender": socket.inet_ntoa(spa), "after_bad": after_bad[1],
            "after_good": after_good[1], "errors": errors}


def _args_tagger_check(p):
    p.add_argument("--client-ns", required=True)


def client_send_tagged(args):
    """In the backends' namespace: one UDP datagram to VIP:53 tagged --vid in the bytes, as a
    raw frame to --dst-mac (a packet socket: the kernel sends the bytes as they are)."""
    with open("/sys/class/net/eth0/address") as f:
        src_mac = P.mac(f.read().strip())
    ip = P.udp(P.addr(BACKEND_IP), P.addr(VIP), 40000, UDP_PORT, b"tagged on purpose")
    frame = P.mac(args.dst_mac) + src_mac + vlan_header(args.vid, P.ETH_P_IP) + ip
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind(("eth0", 0))
    s.send(frame)
    return {"sent": len(frame)}


def _args_send_tagged(p):
    p.add_argument("--dst-mac", required=True)
    p.add_argument("--vid", type=int, required=True)


CLIENT_MODES = dict(jumbo_test.CLIENT_MODES,
                    taggercheck=(client_tagger_check, _args_tagger_check),
                    sendtagged=(client_send_tagged, _args_send_tagged))


# --------------------------------------------------------------------------------------
# Test side.
# --------------------------------------------------------------------------------------

def tagger_object():
    build = os.environ.get("RONDO_BUILD") or os.path.join(
        os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "build")
    return os.path.join(build, "tests", "e2e", f"vlan_tag_{VID}.bpf.o")


def start_rondo(env, mtu=None, **config):
    """The dataplane (--mtu mtu: jumbo ring frames too), the config with the two interfaces
    (config: interfaces()'s mtus) and the control plane; waits for the v4 VIP."""
    extra, vdev = ([], "") if mtu is None else (["--mtu", str(mtu)], jumbo_test.AF_PACKET_JUMBO)
    env.start_dataplane(extra=extra, vdev_args=vdev)
    env.write_config(SEED_VIPS + V6_VIPS, local_ips=(LOCAL_IP, LOCAL_IP6),
                     interfaces=interfaces(**config))
    harness.log("control plane")
    env.start_controlplane()
    env.wait_vip()


def setup(env):
    env.v6 = True
    env.vlan_obj = tagger_object()
    env.topology_up()
    res = env.in_ns(env.ns_lb, "taggercheck", "--client-ns", env.ns_cl, timeout=30)
    if res["errors"]:
        raise AssertionError("topology: the tagger on the client's eth0 (without rondo): " +
                             "; ".join(res["errors"]))
    harness.log(f"tagger: the client's ARP request reached dp0 with tci {res['tci']} from "
                f"{res['sender']}; after replies untagged and tagged {OTHER_VID}: "
                f"'{res['after_bad']}'; after one tagged {VID}: '{res['after_good']}'")
    # Forget the check's fake answer: the client resolves the VIP again, from rondo.
    subprocess.run(["ip", "-n", env.ns_cl, "neigh", "flush", "dev", "eth0"], check=True)
    env.cp_args = ["--metrics-listen", METRICS]
    env.start_backends()
    start_rondo(env)


def dp0_mac(env):
    return ipv6_test.dp0_mac(env)


def scenario_a5_resolution(env, totals):
    mac = dp0_mac(env)
    got = {addr: neigh_entry(env.ns_cl, addr) for addr in (VIP, CLIENTS_ADDR)}
    assert got[VIP][0] == mac, (f"the client's neighbour entry for the VIP is "
                                f"'{got[VIP][1] or 'missing'}', want dp0's {mac}")
    # The client's kernel makes an entry for the sender of an ARP request aimed at it.
    assert got[CLIENTS_ADDR][0] == mac, (
        f"the client has no entry for {CLIENTS_ADDR} at {mac} ('{got[CLIENTS_ADDR][1] or 'none'}'): "
        f"rondo did not ARP for {CLIENT_IP} from its clients address, or not on VLAN {VID}")
    return (f"client: {VIP} at {mac} (rondo's answer, tagged {VID}); {CLIENTS_ADDR} at {mac} "
            f"(rondo's ARP request for {CLIENT_IP}, tagged {VID})")


def interface_series(m, name, iface):
    """The value of metric `name` whose interface label is iface (None if absent)."""
    vals = [v for (n, labels), v in m.items() if n == name and ("interface", iface) in labels]
    return vals[0] if vals else None


def scenario_b1_counters(env, totals):
    tcp = totals["tcp"]
    # Each of the clients' connections crossed both interfaces at least: from the client a
    # SYN, the request and a FIN (3), to it a SYN-ACK and the answer (2); the same to and from
    # the backend. The control plane polls the dataplane every 500 ms.
    want = {("clients", "rx"): 3 * tcp, ("clients", "tx"): 2 * tcp,
            ("backends", "tx"): 3 * tcp, ("backends", "rx"): 2 * tcp}

    def enough():
        text = env.scrape_metrics(METRICS)
        m = parse_metrics(text)
        got = {k: interface_series(m, f"rondo_interface_{k[1]}_packets_total", k[0]) for k in want}
        return (text, m, got) if all((got[k] or 0) >= want[k] for k in want) else None
    try:
        text, m, got = harness.wait_until("the interface counters", 10, enough, interval=0.5)
    except AssertionError:
        m = parse_metrics(env.scrape_metrics(METRICS))
        seen = sorted(f"{n}{{{','.join(f'{k}={v}' for k, v in sorted(lb))}}} {v}"
                      for (n, lb), v in m.items() if n.startswith("rondo_interface_"))
        raise AssertionError(f"per-interface packet counters below what {tcp} connections "
                             f"carried (want {want}); exported: {seen or 'no rondo_interface_*'}")
    info = {i: [dict(lb) for (n, lb), _ in m.items()
                if n == "rondo_interface_info" and ("interface", i) in lb]
            for i in ("clients", "backends")}
    assert info["clients"] and info["clients"][0].get("vlan") == str(VID), \
        f"rondo_interface_info of clients: {info['clients']}"
    assert info["backends"] and info["backends"][0].get("vlan") in ("0", ""), \
        f"rondo_interface_info of backends: {info['backends']}"
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, f"promtool check metrics failed: {(r.stdout + r.stderr).strip()[:2000]}"
    show = env.rondoctl_ok("show").stdout
    # The interfaces table: a row per interface, its name first.
    rows = {i: [line for line in show.splitlines() if line.split()[:1] == [i]]
            for i in ("clients", "backends")}
    assert rows["clients"] and rows["backends"], f"rondoctl show lists no interface rows:\n{show}"
    assert any(re.search(rf"\b{VID}\b", line) for line in rows["clients"]), \
        f"rondoctl show: the clients row has no VLAN {VID}: {rows['clients']}"
    shown = " ".join(f"{i}.{d}={int(got[(i, d)])}" for i, d in want)
    return (f"packets {shown} (>= 3/2 per connection of {tcp}); promtool ok; rondoctl show: "
            f"{rows['clients'][0].strip()} | {rows['backends'][0].strip()}")


def drop_count(env, reason):
    return ipv6_test.counters(env)["drop:" + reason]


def scenario_b2_vlan_mismatch(env, totals):
    before = drop_count(env, "vlan_mismatch")
    assert before == 0, (f"vlan_mismatch is {before} before any frame on another VLAN was "
                         f"sent: {ipv6_test.drops_text(ipv6_test.counters(env))}")
    env.in_ns(env.ns_be, "sendtagged", "--dst-mac", dp0_mac(env), "--vid", OTHER_VID)
    harness.wait_until("vlan_mismatch to move", 5, lambda: drop_count(env, "vlan_mismatch") or None)
    time.sleep(0.5)  # and no more than one
    after = drop_count(env, "vlan_mismatch")
    assert after == 1, f"vlan_mismatch {before} -> {after} for one frame tagged {OTHER_VID}"
    return f"vlan_mismatch 0 after a1-b1, 1 after one datagram tagged {OTHER_VID}"


def scenario_c_v6(env, totals):
    try:
        env.wait_vip(VIP6)
    except AssertionError as e:
        raise AssertionError(f"{e}; {ipv6_test.why_no_v6(env)}") from None
    mac, neigh = neigh_entry(env.ns_cl, VIP6)
    assert mac == dp0_mac(env), f"the client's neighbour entry for {VIP6}: '{neigh or 'none'}'"
    seq = ipv6_test.scenario_a_sequential(env, totals)
    udp = ipv6_test.scenario_d_udp(env, totals)
    return f"{VIP6} at {mac} (advertised tagged {VID}); {seq}; {udp}"


def scenario_d_mtu(env, totals):
    env.terminate("controlplane")
    env.terminate("dataplane")
    jumbo_test.set_mtus(env, jumbo_test.MTU)
    jumbo_test.sh("ip", "-n", env.ns_be, "route", "flush", "cache")
    start_rondo(env, mtu=jumbo_test.MTU, clients_mtu=1500, backends_mtu=jumbo_test.MTU)
    return jumbo_test.pmtud_download(env, VIP, LOCAL_IP)


SCENARIOS = [
    ("a1", "sequential round robin over VLAN 100", seed_test.scenario_a_sequential),
    ("a2", "concurrent connections over VLAN 100", seed_test.scenario_b_concurrent),
    ("a3", "long-lived connection over VLAN 100", seed_test.scenario_c_longlived),
    ("a4", "udp over VLAN 100", seed_test.scenario_d_udp),
    ("a5", "rondo resolves on the VLAN, from its address there", scenario_a5_resolution),
    ("b1", "per-interface counters, metrics, rondoctl show", scenario_b1_counters),
    ("b2", f"a frame tagged {OTHER_VID} is vlan_mismatch", scenario_b2_vlan_mismatch),
    ("c", "IPv6 over VLAN 100", scenario_c_v6),
    ("d", "per-interface MTU: clients 1500, backends 9000", scenario_d_mtu),
]
# In order: b1 counts what a1-a4 carried, b2 needs no frame on another VLAN before it, d
# restarts rondo with other MTUs.

if __name__ == "__main__":
    if os.geteuid() == 0 and "--client" not in sys.argv[1:2] and not os.path.exists(tagger_object()):
        print(f"vlan: skipped, no {tagger_object()} (clang missing?)")
        sys.exit(77)
    sys.exit(harness.run("vlan", __file__, SCENARIOS, setup, client_modes=CLIENT_MODES))
