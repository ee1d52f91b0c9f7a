#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Both ends of tests/e2e/decap_test.sh, run inside its namespaces (ip netns exec).

  serve      the backend: a UDP echo server on VIP:PORT and [VIP6]:PORT that answers
             "tos=N " + the datagram (N: the TOS or traffic class it received, ECN bits
             included), and a TCP listener on VIP:PORT; creates --ready once bound.
  send CASE  the client: one (encapsulated) UDP datagram from CLIENT:sport to VIP:PORT, the
             way rondo sends it in its DSR modes, then wait (with a deadline) for the
             echo, which must come straight from the VIP. Prints one JSON line; exit 0 when
             the reply came (or, with --no-reply, when none came within --wait seconds).
  syn        the client: a TCP SYN to VIP:PORT inside IPIP; a raw TCP socket waits for the
             backend's SYN-ACK from the VIP.
  malformed  the client: broken encapsulations as raw Ethernet frames (AF_PACKET), each
             named with the counter of bpf/rondo_decap.bpf.c that must count it; prints
             {counter: expected increase}.

The outer header of `send` and `syn` is the kernel's (a raw IPPROTO_IPIP / IPPROTO_IPV6
socket, or a UDP socket to the GUE port), not this file's: only the inner packet and the
GUE header are built here (tests/e2e/packets.py).
"""

import argparse
import json
import os
import select
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import packets as P  # noqa: E402

IP_RECVTOS = getattr(socket, "IP_RECVTOS", 13)
IPV6_RECVTCLASS = getattr(socket, "IPV6_RECVTCLASS", 66)
IPV6_TCLASS = getattr(socket, "IPV6_TCLASS", 67)


def gue0(proto, ext_words=0):
    """GUE variant 0: version 0, C=0, hlen, proto, flags 0, then hlen zero words."""
    return struct.pack("!BBH", ext_words, proto, 0) + b"\0" * (4 * ext_words)


# CASE: (transport, inner family, GUE header or None, outer family). ipip: a raw socket of
# protocol 4 (inner IPv4) or 41 (inner IPv6) to the backend; gue: a UDP socket to
# backend:gue_port (over IPv6 the kernel computes the UDP checksum, as rondo does); plain: no
# encapsulation, the datagram straight to the VIP. Outer 6: to --backend6 over IPv6.
CASES = {
    "plain": ("plain", 4, None, 4),
    "plain6": ("plain", 6, None, 4),
    "ipip": ("ipip", 4, None, 4),
    "ipip6": ("ipip", 6, None, 4),
    "gue": ("gue", 4, gue0(P.IPPROTO_IPIP), 4),
    "gue-ext": ("gue", 4, gue0(P.IPPROTO_IPIP, ext_words=2), 4),
    "gue6": ("gue", 6, gue0(P.IPPROTO_IPV6), 4),
    "gue-direct": ("gue", 4, b"", 4),
    "gue-direct6": ("gue", 6, b"", 4),
    "ipip-out6": ("ipip", 4, None, 6),
    "ipip6-out6": ("ipip", 6, None, 6),
    "gue-out6": ("gue", 4, gue0(P.IPPROTO_IPIP), 6),
    "gue6-out6": ("gue", 6, gue0(P.IPPROTO_IPV6), 6),
}


def serve(a):
    socks = []
    for fam, vip, opt in ((socket.AF_INET, a.vip, (socket.IPPROTO_IP, IP_RECVTOS)),
                          (socket.AF_INET6, a.vip6, (socket.IPPROTO_IPV6, IPV6_RECVTCLASS))):
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.setsockopt(*opt, 1)
        s.bind((vip, a.port))
        socks.append(s)
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind((a.vip, a.port))
    tcp.listen(16)
    open(a.ready, "w").close()
    while True:
        for s in select.select(socks + [tcp], [], [])[0]:
            if s is tcp:
                s.accept()[0].close()
                continue
            data, anc, _, peer = s.recvmsg(2048, socket.CMSG_SPACE(4))
            tos = next((int.from_bytes(d, sys.byteorder) if len(d) == 4 else d[0]
                        for _, _, d in anc), -1)
            s.sendto(b"tos=%d " % tos + data, peer)


def send(a):
    transport, fam, gue, outer = CASES[a.case]
    ofam, backend = (socket.AF_INET6, a.backend6) if outer == 6 else (socket.AF_INET, a.backend)
    v6 = fam == 6
    client, vip = (a.client6, a.vip6) if v6 else (a.client, a.vip)
    data = b"decap %s %d" % (a.case.encode(), os.getpid())
    rx = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind((client, 0))
    sport = rx.getsockname()[1]
    inner = P.udp(P.addr(client), P.addr(vip), sport, a.port, data, tos=a.inner_tos)
    if transport == "plain":
        rx.sendto(data, (vip, a.port))
    elif transport == "ipip":
        tx = socket.socket(ofam, socket.SOCK_RAW, P.IPPROTO_IPV6 if v6 else P.IPPROTO_IPIP)
        if outer == 6:
            tx.setsockopt(socket.IPPROTO_IPV6, IPV6_TCLASS, a.outer_tos)
        else:
            tx.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, a.outer_tos)
        tx.sendto(inner, (backend, 0))
    else:
        tx = socket.socket(ofam, socket.SOCK_DGRAM)
        tx.sendto(gue + inner, (backend, a.gue_port))
    rx.settimeout(a.wait)
    try:
        reply, peer = rx.recvfrom(2048)
    except socket.timeout:
        return {"case": a.case, "reply": None}, a.no_reply
    want = b"tos=%d " % a.inner_tos_expected if a.inner_tos_expected >= 0 else b"tos="
    ok = (not a.no_reply and peer[0] == vip and peer[1] == a.port and reply.startswith(want)
          and reply.endswith(b" " + data))
    return {"case": a.case, "reply": reply.decode(), "from": f"{peer[0]}:{peer[1]}"}, ok


def syn(a):
    cap = socket.socket(socket.AF_INET, socket.SOCK_RAW, P.IPPROTO_TCP)
    sport, seq = 40000 + os.getpid() % 20000, 0x1234567
    inner = P.tcp(P.addr(a.client), P.addr(a.vip), sport, a.port, seq, 0, P.TCP_SYN)
    tx = socket.socket(socket.AF_INET, socket.SOCK_RAW, P.IPPROTO_IPIP)
    tx.sendto(inner, (a.backend, 0))
    deadline = time.monotonic() + a.wait
    vip = P.addr(a.vip)
    while (left := deadline - time.monotonic()) > 0:
        if not select.select([cap], [], [], left)[0]:
            break
        pkt = cap.recv(2048)
        hl = (pkt[0] & 0xf) * 4
        src = pkt[12:16]
        s, d, _, ack, _, flags = struct.unpack("!HHIIBB", pkt[hl:hl + 14])
        if src == vip and s == a.port and d == sport:
            ok = flags & (P.TCP_SYN | P.TCP_ACK) == P.TCP_SYN | P.TCP_ACK and ack == seq + 1
            return {"case": "syn", "synack_from": f"{a.vip}:{s}", "flags": flags,
                    "ack_ok": ack == seq + 1}, ok
    return {"case": "syn", "synack_from": None}, False


def malformed(a):
    """Send each broken frame once; return the counter increases they must cause."""
    me, be = P.mac(a.src_mac), P.mac(a.dst_mac)
    cl, bk, vip = P.addr(a.client), P.addr(a.backend), P.addr(a.vip)
    inner = P.udp(cl, vip, 9, a.port, b"never echoed")
    inner6 = P.udp(P.addr(a.client6), P.addr(a.vip6), 9, a.port, b"never echoed")

    def ipip(payload, **kw):
        return P.ipv4(cl, bk, P.IPPROTO_IPIP, payload, **kw)

    def gue(payload):
        seg = struct.pack("!HHHH", 50000, a.gue_port, 8 + len(payload), 0) + payload
        return P.ipv4(cl, bk, P.IPPROTO_UDP, seg)

    def gue_udp_len(payload, udp_len):
        seg = struct.pack("!HHHH", 50000, a.gue_port, udp_len, 0) + payload
        return P.ipv4(cl, bk, P.IPPROTO_UDP, seg)

    good = ipip(inner)
    cases = [
        # (what, counter or None for "passed, not counted", IPv4 packet, destination MAC)
        ("outer checksum wrong", "malformed_outer", ipip(inner, check=0xbad), be),
        ("outer IHL 4", "malformed_outer", bytes([0x44]) + good[1:], be),
        ("outer total length beyond the frame", "malformed_outer",
         ipip(inner, total=20 + len(inner) + 40), be),
        ("GUE: UDP length beyond the IP payload", "malformed_outer",
         gue_udp_len(gue0(P.IPPROTO_IPIP) + inner, 8 + 4 + len(inner) + 16), be),
        ("outer fragment (MF)", "pass_outer_fragment", ipip(inner, frag=P.IP_MF), be),
        ("GUE version 2", "malformed_gue", gue(b"\x80\x04\0\0" + inner), be),
        ("GUE control message", "malformed_gue", gue(b"\x20\x00\0\0" + inner), be),
        ("GUE protocol 17", "malformed_gue", gue(gue0(P.IPPROTO_UDP) + inner), be),
        ("GUE hlen beyond the packet", "malformed_gue", gue(b"\x1f\x04\0\0" + inner[:20]), be),
        ("GUE variant 1, IP version 5", "malformed_gue", gue(b"\x55" + inner[1:]), be),
        ("inner truncated", "malformed_inner", ipip(inner[:12]), be),
        ("protocol 4 around IPv6", "malformed_inner", ipip(inner6), be),
        ("inner longer than the outer", "malformed_inner",
         ipip(inner[:2] + struct.pack("!H", len(inner) + 8) + inner[4:10] + b"\0\0" + inner[12:]),
         be),
        # Well formed, but not for this host (another MAC): passed untouched, not counted.
        ("IPIP to another host's MAC", None, good, P.mac("02:00:00:00:dc:99")),
    ]
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((a.dev, 0))
    want = {}
    for what, counter, pkt, dst in cases:
        s.send(P.eth(dst, me, P.ETH_P_IP, pkt))
        if counter:
            want[counter] = want.get(counter, 0) + 1
    return {"sent": len(cases), "want": want}, True


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["serve", "send", "syn", "malformed"])
    p.add_argument("case", nargs="?", choices=sorted(CASES))
    p.add_argument("--vip", required=True)
    p.add_argument("--vip6")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--client")
    p.add_argument("--client6")
    p.add_argument("--backend")
    p.add_argument("--backend6")
    p.add_argument("--gue-port", type=int, default=6080)
    p.add_argument("--outer-tos", type=int, default=0)
    p.add_argument("--inner-tos", type=int, default=0)
    p.add_argument("--inner-tos-expected", type=int, default=-1,
                   help="the TOS the backend must have seen (default: any)")
    p.add_argument("--no-reply", action="store_true", help="pass when no reply comes")
    p.add_argument("--wait", type=float, default=3.0, help="seconds to wait for a reply")
    p.add_argument("--ready")
    p.add_argument("--dev", default="eth0")
    p.add_argument("--src-mac")
    p.add_argument("--dst-mac")
    a = p.parse_args()
    if a.mode == "serve":
        serve(a)
        return 0
    result, ok = {"send": send, "syn": syn, "malformed": malformed}[a.mode](a)
    print(json.dumps(result))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
