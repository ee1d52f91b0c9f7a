// Test frame builder: Ethernet (+VLAN) / ARP / IPv4 / TCP / UDP / ICMP with every checksum
// computed in full (never incrementally), so expected frames check the dataplane's
// incremental updates against a from-scratch computation.
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

inline uint32_t ip4(const char* s) {
  in_addr a{};
  inet_pton(AF_INET, s, &a);
  return ntohl(a.s_addr);
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

inline Frame build(const Pkt& p) {
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
