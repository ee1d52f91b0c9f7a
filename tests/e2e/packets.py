# SPDX-License-Identifier: BSD-3-Clause
"""Packet builders for the e2e tests that craft their own packets (python3 standard library).

Addresses are bytes (socket.inet_pton); every builder returns bytes with correct
checksums unless told otherwise, so that a test breaks exactly one thing on purpose.
"""

import socket
import struct

IPPROTO_IPIP = 4
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_IPV6 = 41
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
TCP_SYN = 0x02
TCP_ACK = 0x10
IP_DF = 0x4000
IP_MF = 0x2000


def csum(data):
    """The Internet checksum (RFC 1071) of data."""
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def addr(text):
    """An IPv4 or IPv6 address as bytes."""
    return socket.inet_pton(socket.AF_INET6 if ":" in text else socket.AF_INET, text)


def ipv4(src, dst, proto, payload, tos=0, frag=IP_DF, ihl=5, total=None, check=None, ttl=64):
    """An IPv4 header (options, if ihl > 5, are zeros) and payload. total and check replace
    the computed total length and header checksum."""
    opts = b"\0" * (4 * max(ihl - 5, 0))
    total = 20 + len(opts) + len(payload) if total is None else total
    hdr = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, tos, total, 0x1234, frag, ttl, proto, 0,
                      src, dst) + opts
    check = csum(hdr) if check is None else check
    return hdr[:10] + struct.pack("!H", check) + hdr[12:] + payload


def ipv6(src, dst, nh, payload, tclass=0, hlim=64):
    return struct.pack("!IHBB16s16s", (6 << 28) | (tclass << 20), len(payload), nh, hlim,
                       src, dst) + payload


def _l4(src, dst, proto, seg, csum_at):
    """seg with its checksum (at byte csum_at) over the pseudo-header of src and dst."""
    if len(src) == 4:
        pseudo = src + dst + struct.pack("!BBH", 0, proto, len(seg))
    else:
        pseudo = src + dst + struct.pack("!IxxxB", len(seg), proto)
    c = csum(pseudo + seg)
    if proto == IPPROTO_UDP and c == 0:
        c = 0xffff  # a UDP checksum of 0 means "none" (RFC 768): send its other form
    return seg[:csum_at] + struct.pack("!H", c) + seg[csum_at + 2:]


def ip(src, dst, proto, payload, tos=0):
    """An IPv4 or IPv6 packet, by the length of the addresses."""
    if len(src) == 4:
        return ipv4(src, dst, proto, payload, tos=tos)
    return ipv6(src, dst, proto, payload, tclass=tos)


def udp(src, dst, sport, dport, data, tos=0):
    """A UDP datagram in an IPv4 or IPv6 packet."""
    seg = struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data
    return ip(src, dst, IPPROTO_UDP, _l4(src, dst, IPPROTO_UDP, seg, 6), tos)


def tcp(src, dst, sport, dport, seq, ack, flags, data=b"", tos=0):
    """A TCP segment (no options) in an IPv4 or IPv6 packet."""
    seg = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0) + data
    return ip(src, dst, IPPROTO_TCP, _l4(src, dst, IPPROTO_TCP, seg, 16), tos)


def eth(dst_mac, src_mac, ethertype, payload):
    return dst_mac + src_mac + struct.pack("!H", ethertype) + payload


def mac(text):
    return bytes(int(x, 16) for x in text.split(":"))
