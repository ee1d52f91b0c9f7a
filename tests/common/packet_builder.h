// Test frame builder: Ethernet (+VLAN) / ARP / IPv4 / IPv6 (+ extension headers) / TCP / UDP /
// ICMP / ICMPv6 (NDP included) with every checksum computed in full (never incrementally), so
// expected frames check the dataplane's incremental updates against a from-scratch computation.
#pragma once

#include <arpa/inet.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

namespace rondo::test {

using Mac = std::array<uint8_t, 6>;
using Frame = std::vector<uint8_t>;
using Ip16 = std::array<uint8_t, 16>;  // an IPv6 address, network order

inline uint32_t ip4(const char* s) {
  in_addr a{};
  inet_pton(AF_INET, s, &a);
  return ntohl(a.s_addr);
}

inline Ip16 ip6(const char* s) {
  Ip16 a{};
  inet_pton(AF_INET6, s, a.data());
  return a;
}

/// One IPv6 extension header as it sits in the packet. Its first byte (next header) is
/// written by build(); the rest is the test's: use the helpers below.
struct Ext6 {
  uint8_t type = 0;            // 0 hop-by-hop, 43 routing, 44 fragment, 60 destination options
  std::vector<uint8_t> bytes;  // the whole header, a multiple of 8 bytes; bytes[0] is overwritten
};

/// A hop-by-hop (0) or destination-options (60) header holding `options` (TLVs), padded
/// with PadN/Pad1 to a multiple of 8 bytes.
inline Ext6 ext_options(uint8_t type, std::vector<uint8_t> options = {}) {
  Ext6 e{type, {0, 0}};
  for (uint8_t b : options) e.bytes.push_back(b);  // (insert() trips GCC 12's -Warray-bounds)
  const size_t pad = (8 - e.bytes.size() % 8) % 8;
  if (pad == 1) {
    e.bytes.push_back(0);  // Pad1
  } else if (pad > 1) {
    e.bytes.push_back(1);  // PadN
    e.bytes.push_back(static_cast<uint8_t>(pad - 2));
    e.bytes.resize(e.bytes.size() + pad - 2, 0);
  }
  e.bytes[1] = static_cast<uint8_t>(e.bytes.size() / 8 - 1);
  return e;
}
/// A routing header of `routing_type` with `segments_left` and one address (24 bytes).
inline Ext6 ext_routing(uint8_t routing_type, uint8_t segments_left) {
  Ext6 e{43, std::vector<uint8_t>(24, 0)};
  e.bytes[1] = 2;
  e.bytes[2] = routing_type;
  e.bytes[3] = segments_left;
  return e;
}
/// A fragment header (8 bytes): offset in 8-byte units, the M flag, an identification.
inline Ext6 ext_fragment(uint16_t offset, bool more, uint32_t id = 0x1234) {
  Ext6 e{44, std::vector<uint8_t>(8, 0)};
  const uint16_t w = static_cast<uint16_t>(offset << 3 | (more ? 1 : 0));
  e.bytes[2] = static_cast<uint8_t>(w >> 8);
  e.bytes[3] = static_cast<uint8_t>(w);
  for (int i = 0; i < 4; ++i) e.bytes[4 + i] = static_cast<uint8_t>(id >> (24 - 8 * i));
  return e;
}

/// Full Internet checksum (RFC 1071) over bytes, starting from `sum`.
inline uint32_t sum16(const uint8_t* p, size_t n, uint32_t sum = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) sum += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  if (n & 1) sum += static_cast<uint32_t>(p[n - 1] << 8);
  return sum;
}
inline uint16_t fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum & 0xffff);
}

struct Pkt {
  Mac src_mac{0x02, 0, 0, 0, 0, 0x02};
  Mac dst_mac{0x02, 0, 0, 0, 0, 0x01};
  std::optional<uint16_t> vlan;  // 802.1Q TCI
  uint32_t src_ip = 0, dst_ip = 0;  // host order
  uint8_t ttl = 64;
  uint16_t ip_id = 0x1234;
  uint8_t proto = 6;  // 6 tcp, 17 udp, 1 icmp
  uint16_t sport = 0, dport = 0;
  uint8_t tcp_flags = 0x02;
  uint32_t seq = 1000, ack = 0;
  uint8_t icmp_type = 8;
  uint8_t icmp_code = 0;
  uint16_t icmp_id = 7, icmp_seq = 1;
  bool udp_zero_csum = false;
  std::string payload;
  // Less common shapes (the defaults give a plain DF datagram without options or padding).
  std::vector<uint8_t> ip_options;  // appended to the IPv4 header; size a multiple of 4
  uint16_t frag = 0x4000;           // flags and fragment offset word (0x4000: DF)
  size_t pad_to = 0;                // Ethernet padding (zeros) up to this frame length
  std::vector<uint8_t> tcp_options;  // appended to the TCP header; size a multiple of 4
  uint16_t window = 65535;           // TCP window field
  // IPv6 (v6 = true): src6/dst6 instead of src_ip/dst_ip, `ttl` is the hop limit, `proto` 58
  // is ICMPv6 (icmp_type 128 echo request; for errors icmp_id:icmp_seq are the 4 bytes after
  // the checksum, e.g. a packet-too-big MTU), extension headers in `ext` in order.
  bool v6 = false;
  Ip16 src6{}, dst6{};
  uint8_t traffic_class = 0;
  uint32_t flow_label = 0;
  std::vector<Ext6> ext;
};

inline void put16(Frame& f, size_t off, uint16_t v) {
  f[off] = static_cast<uint8_t>(v >> 8);
  f[off + 1] = static_cast<uint8_t>(v);
}
inline void put32(Frame& f, size_t off, uint32_t v) {
  put16(f, off, static_cast<uint16_t>(v >> 16));
  put16(f, off + 2, static_cast<uint16_t>(v));
}

inline size_t put_eth(Frame& f, const Mac& dst, const Mac& src, std::optional<uint16_t> vlan,
                      uint16_t type) {
  f.resize(vlan ? 18 : 14);
  std::memcpy(f.data(), dst.data(), 6);
  std::memcpy(f.data() + 6, src.data(), 6);
  if (vlan) {
    put16(f, 12, 0x8100);
    put16(f, 14, *vlan);
    put16(f, 16, type);
    return 18;
  }
  put16(f, 12, type);
  return 14;
}

/// The IPv6 pseudo-header's sum (RFC 8200 8.1): the addresses at `ip6` (a fixed header),
/// the upper-layer length (extension headers excluded) and the upper-layer protocol.
inline uint32_t pseudo6(const uint8_t* ip6hdr, uint32_t upper_len, uint8_t next_header) {
  uint32_t s = sum16(ip6hdr + 8, 32);
  s += upper_len >> 16;
  s += upper_len & 0xffff;
  s += next_header;
  return s;
}

Frame build6(const Pkt& p);

inline Frame build(const Pkt& p) {
  if (p.v6) return build6(p);
  Frame f;
  const size_t l3 = put_eth(f, p.dst_mac, p.src_mac, p.vlan, 0x0800);
  const size_t ihl = 20 + p.ip_options.size();
  size_t l4len = 0;
  if (p.proto == 6) l4len = 20 + p.tcp_options.size();
  else if (p.proto == 17) l4len = 8;
  else if (p.proto == 1) l4len = 8;
  const size_t total = ihl + l4len + p.payload.size();
  f.resize(l3 + total);
  f[l3] = static_cast<uint8_t>(0x40 | ihl / 4);
  put16(f, l3 + 2, static_cast<uint16_t>(total));
  put16(f, l3 + 4, p.ip_id);
  put16(f, l3 + 6, p.frag);
  f[l3 + 8] = p.ttl;
  f[l3 + 9] = p.proto;
  put32(f, l3 + 12, p.src_ip);
  put32(f, l3 + 16, p.dst_ip);
  if (!p.ip_options.empty()) std::memcpy(&f[l3 + 20], p.ip_options.data(), p.ip_options.size());
  put16(f, l3 + 10, fold(sum16(&f[l3], ihl)));

  const size_t l4 = l3 + ihl;
  if (!p.payload.empty()) std::memcpy(&f[l4 + l4len], p.payload.data(), p.payload.size());
  const size_t seglen = l4len + p.payload.size();
  auto pseudo = [&]() {
    uint32_t s = sum16(&f[l3 + 12], 8);
    s += p.proto;
    s += static_cast<uint32_t>(seglen);
    return s;
  };
  if (p.proto == 6) {
    put16(f, l4, p.sport);
    put16(f, l4 + 2, p.dport);
    put32(f, l4 + 4, p.seq);
    put32(f, l4 + 8, p.ack);
    f[l4 + 12] = static_cast<uint8_t>(l4len / 4 << 4);
    f[l4 + 13] = p.tcp_flags;
    put16(f, l4 + 14, p.window);
    if (!p.tcp_options.empty()) std::memcpy(&f[l4 + 20], p.tcp_options.data(), p.tcp_options.size());
    put16(f, l4 + 16, fold(sum16(&f[l4], seglen, pseudo())));
  } else if (p.proto == 17) {
    put16(f, l4, p.sport);
    put16(f, l4 + 2, p.dport);
    put16(f, l4 + 4, static_cast<uint16_t>(seglen));
    uint16_t c = fold(sum16(&f[l4], seglen, pseudo()));
    put16(f, l4 + 6, p.udp_zero_csum ? 0 : (c == 0 ? 0xffff : c));
  } else if (p.proto == 1) {
    f[l4] = p.icmp_type;
    f[l4 + 1] = p.icmp_code;
    put16(f, l4 + 4, p.icmp_id);
    put16(f, l4 + 6, p.icmp_seq);
    put16(f, l4 + 2, fold(sum16(&f[l4], seglen)));
  }
  if (f.size() < p.pad_to) f.resize(p.pad_to, 0);
  return f;
}

/// IPv6 frame: fixed header, `p.ext` in order, then TCP / UDP / ICMPv6 (58) / anything else
/// (an empty upper layer with `proto` as its next header).
inline Frame build6(const Pkt& p) {
  Frame f;
  const size_t l3 = put_eth(f, p.dst_mac, p.src_mac, p.vlan, 0x86dd);
  size_t ext_len = 0;
  for (const Ext6& e : p.ext) ext_len += e.bytes.size();
  size_t l4len = 0;
  if (p.proto == 6) l4len = 20 + p.tcp_options.size();
  else if (p.proto == 17) l4len = 8;
  else if (p.proto == 58) l4len = 8;
  const size_t seglen = l4len + p.payload.size();
  f.resize(l3 + 40 + ext_len + seglen);
  put32(f, l3, 6u << 28 | uint32_t{p.traffic_class} << 20 | (p.flow_label & 0xfffff));
  put16(f, l3 + 4, static_cast<uint16_t>(ext_len + seglen));
  f[l3 + 6] = p.ext.empty() ? p.proto : p.ext[0].type;
  f[l3 + 7] = p.ttl;
  std::memcpy(&f[l3 + 8], p.src6.data(), 16);
  std::memcpy(&f[l3 + 24], p.dst6.data(), 16);
  size_t off = l3 + 40;
  for (size_t i = 0; i < p.ext.size(); ++i) {
    std::memcpy(&f[off], p.ext[i].bytes.data(), p.ext[i].bytes.size());
    f[off] = i + 1 < p.ext.size() ? p.ext[i + 1].type : p.proto;
    off += p.ext[i].bytes.size();
  }
  const size_t l4 = off;
  if (!p.payload.empty()) std::memcpy(&f[l4 + l4len], p.payload.data(), p.payload.size());
  const uint32_t pseudo = pseudo6(&f[l3], static_cast<uint32_t>(seglen), p.proto);
  if (p.proto == 6) {
    put16(f, l4, p.sport);
    put16(f, l4 + 2, p.dport);
    put32(f, l4 + 4, p.seq);
    put32(f, l4 + 8, p.ack);
    f[l4 + 12] = static_cast<uint8_t>(l4len / 4 << 4);
    f[l4 + 13] = p.tcp_flags;
    put16(f, l4 + 14, p.window);
    if (!p.tcp_options.empty()) std::memcpy(&f[l4 + 20], p.tcp_options.data(), p.tcp_options.size());
    put16(f, l4 + 16, fold(sum16(&f[l4], seglen, pseudo)));
  } else if (p.proto == 17) {
    put16(f, l4, p.sport);
    put16(f, l4 + 2, p.dport);
    put16(f, l4 + 4, static_cast<uint16_t>(seglen));
    uint16_t c = fold(sum16(&f[l4], seglen, pseudo));
    put16(f, l4 + 6, p.udp_zero_csum ? 0 : (c == 0 ? 0xffff : c));
  } else if (p.proto == 58) {
    f[l4] = p.icmp_type;
    f[l4 + 1] = p.icmp_code;
    put16(f, l4 + 4, p.icmp_id);
    put16(f, l4 + 6, p.icmp_seq);
    put16(f, l4 + 2, fold(sum16(&f[l4], seglen, pseudo)));
  }
  if (f.size() < p.pad_to) f.resize(p.pad_to, 0);
  return f;
}

/// The solicited-node multicast group of `a` (ff02::1:ffXX:XXXX) and its Ethernet address.
inline Ip16 solicited_node(const Ip16& a) {
  Ip16 g = ip6("ff02::1:ff00:0");
  g[13] = a[13];
  g[14] = a[14];
  g[15] = a[15];
  return g;
}
inline Mac multicast_mac(const Ip16& g) { return {0x33, 0x33, g[12], g[13], g[14], g[15]}; }

/// An NDP message (RFC 4861 4.3, 4.4): a neighbour solicitation (type 135) or advertisement
/// (136) for `target`, with a source (1) or target (2) link-layer address option when set.
/// `eth_dst`/`dst6` default to the target's solicited-node group for an NS.
struct Ndp {
  uint8_t type = 135;
  Mac eth_src{}, eth_dst{};  // eth_dst zero: derived from dst6
  std::optional<uint16_t> vlan;
  Ip16 src6{}, dst6{};       // dst6 zero: the target's solicited-node group
  Ip16 target{};
  uint8_t hop_limit = 255;
  uint8_t code = 0;
  bool router = false, solicited = false, override_flag = false;  // NA flags
  std::optional<Mac> lladdr;  // SLLAO on an NS, TLLAO on an NA
};

inline Frame build(const Ndp& n) {
  const Ip16 dst = n.dst6 == Ip16{} ? solicited_node(n.target) : n.dst6;
  const Mac eth_dst = n.eth_dst == Mac{} ? multicast_mac(dst) : n.eth_dst;
  Frame f;
  const size_t l3 = put_eth(f, eth_dst, n.eth_src, n.vlan, 0x86dd);
  const size_t l4len = 24 + (n.lladdr ? 8 : 0);
  f.resize(l3 + 40 + l4len);
  put32(f, l3, 6u << 28);
  put16(f, l3 + 4, static_cast<uint16_t>(l4len));
  f[l3 + 6] = 58;
  f[l3 + 7] = n.hop_limit;
  std::memcpy(&f[l3 + 8], n.src6.data(), 16);
  std::memcpy(&f[l3 + 24], dst.data(), 16);
  const size_t l4 = l3 + 40;
  f[l4] = n.type;
  f[l4 + 1] = n.code;
  if (n.type == 136)
    f[l4 + 4] = static_cast<uint8_t>((n.router ? 0x80 : 0) | (n.solicited ? 0x40 : 0) |
                                     (n.override_flag ? 0x20 : 0));
  std::memcpy(&f[l4 + 8], n.target.data(), 16);
  if (n.lladdr) {
    f[l4 + 24] = n.type == 135 ? 1 : 2;
    f[l4 + 25] = 1;  // length in units of 8 bytes
    std::memcpy(&f[l4 + 26], n.lladdr->data(), 6);
  }
  put16(f, l4 + 2, fold(sum16(&f[l4], l4len, pseudo6(&f[l3], static_cast<uint32_t>(l4len), 58))));
  return f;
}

struct Arp {
  Mac eth_src{}, eth_dst{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  std::optional<uint16_t> vlan;
  uint16_t op = 1;  // 1 request, 2 reply
  Mac sha{}, tha{};
  uint32_t sip = 0, tip = 0;  // host order
  size_t pad_to = 0;          // Ethernet minimum frame padding (60), 0 for none
};

inline Frame build(const Arp& a) {
  Frame f;
  const size_t l3 = put_eth(f, a.eth_dst, a.eth_src, a.vlan, 0x0806);
  f.resize(l3 + 28);
  put16(f, l3, 1);
  put16(f, l3 + 2, 0x0800);
  f[l3 + 4] = 6;
  f[l3 + 5] = 4;
  put16(f, l3 + 6, a.op);
  std::memcpy(&f[l3 + 8], a.sha.data(), 6);
  put32(f, l3 + 14, a.sip);
  std::memcpy(&f[l3 + 18], a.tha.data(), 6);
  put32(f, l3 + 24, a.tip);
  if (f.size() < a.pad_to) f.resize(a.pad_to, 0);
  return f;
}

/// Hex dump for test failure messages.
inline std::string hex(const Frame& f) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < f.size(); ++i) {
    if (i && i % 16 == 0) s += '\n';
    else if (i) s += ' ';
    s += d[f[i] >> 4];
    s += d[f[i] & 15];
  }
  return s;
}

}  // namespace rondo::test
