#include "dataplane/inspect/describe.h"

#include <arpa/inet.h>

#include <cstdio>

namespace rondo::dp {
namespace {

uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t be32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}

std::string ip4(const uint8_t* p) {
  char b[16];
  std::snprintf(b, sizeof b, "%u.%u.%u.%u", p[0], p[1], p[2], p[3]);
  return b;
}

std::string ip6(const uint8_t* p) {
  char b[INET6_ADDRSTRLEN];
  inet_ntop(AF_INET6, p, b, sizeof b);
  return b;
}

std::string tcp_flags(uint8_t f) {
  std::string s;
  static constexpr struct {
    uint8_t bit;
    char c;
  } kFlags[] = {{0x02, 'S'}, {0x01, 'F'}, {0x04, 'R'}, {0x08, 'P'}, {0x20, 'U'}, {0x10, '.'}};
  for (const auto& x : kFlags)
    if (f & x.bit) s += x.c;
  return s.empty() ? "none" : s;
}

const char* icmp6_name(uint8_t type) {
  switch (type) {
    case 1: return "unreachable";
    case 2: return "packet too big";
    case 3: return "time exceeded";
    case 4: return "parameter problem";
    case 128: return "echo request";
    case 129: return "echo reply";
    case 133: return "router solicitation";
    case 134: return "router advertisement";
    case 135: return "neighbor solicitation";
    case 136: return "neighbor advertisement";
    case 143: return "mld report";
    default: return "type";
  }
}

// "[2001:db8::2]:40000 > [2001:db8::10]:80 tcp [S] ... len 0 ext 1": like IPv4's line,
// with the extension headers counted (RFC 8200 section 4: HBH, routing, fragment,
// destination options; the walk stops at anything else or at the end of the frame).
std::string describe_ipv6(const uint8_t* f, uint32_t len, uint32_t off) {
  char b[200];
  if (len < off + 40) return "ipv6, truncated (" + std::to_string(len) + " bytes)";
  const uint8_t* ip = f + off;
  const uint16_t payload = be16(ip + 4);
  const std::string src = ip6(ip + 8), dst = ip6(ip + 24);
  uint8_t nh = ip[6];
  uint32_t l4 = off + 40;
  unsigned ext = 0;
  std::string frag;
  while ((nh == 0 || nh == 43 || nh == 44 || nh == 60) && ext < 16) {
    if (len < l4 + 8) return src + " > " + dst + " ipv6, truncated extension header";
    ++ext;
    if (nh == 44) {
      const uint16_t fo = be16(f + l4 + 2);
      std::snprintf(b, sizeof b, " fragment off %u%s", (fo & 0xfff8u), fo & 1 ? " +" : "");
      frag = b;
    }
    const uint32_t hlen = nh == 44 ? 8u : (f[l4 + 1] + 1u) * 8u;
    nh = f[l4];
    l4 += hlen;
    if (!frag.empty()) break;  // a fragment is described as one, as for IPv4: no L4
  }
  const std::string ext_text = ext ? " ext " + std::to_string(ext) : "";
  std::snprintf(b, sizeof b, " hlim %u len %u", ip[7], payload);
  const std::string ip_tail = ext_text + b;
  if ((ip[0] >> 4) != 6) return src + " > " + dst + " ipv6, bad header" + ip_tail;
  if (!frag.empty()) return src + " > " + dst + " proto " + std::to_string(nh) + frag + ip_tail;
  const uint32_t l4_avail = len > l4 ? len - l4 : 0;
  const uint32_t l4_len = off + 40 + payload > l4 ? off + 40 + payload - l4 : 0;
  if (nh == 6) {
    if (l4_avail < 20) return src + " > " + dst + " tcp, truncated" + ip_tail;
    const uint8_t* t = f + l4;
    const uint32_t hlen = (t[12] >> 4) * 4u;
    std::snprintf(b, sizeof b, "]:%u > [%s]:%u tcp [%s] seq %u ack %u win %u len %u", be16(t),
                  dst.c_str(), be16(t + 2), tcp_flags(t[13]).c_str(), be32(t + 4), be32(t + 8),
                  be16(t + 14), l4_len > hlen ? l4_len - hlen : 0u);
    return "[" + src + b + ext_text;
  }
  if (nh == 17) {
    if (l4_avail < 8) return src + " > " + dst + " udp, truncated" + ip_tail;
    const uint8_t* u = f + l4;
    std::snprintf(b, sizeof b, "]:%u > [%s]:%u udp len %u", be16(u), dst.c_str(), be16(u + 2),
                  be16(u + 4) >= 8 ? be16(u + 4) - 8u : 0u);
    return "[" + src + b + ext_text;
  }
  if (nh == 58) {
    if (l4_avail < 4) return src + " > " + dst + " icmp6, truncated" + ip_tail;
    const uint8_t type6 = f[l4], code = f[l4 + 1];
    std::snprintf(b, sizeof b, " icmp6 %s (%u/%u)", icmp6_name(type6), type6, code);
    return src + " > " + dst + b + ip_tail;
  }
  return src + " > " + dst + " proto " + std::to_string(nh) + ip_tail;
}

}  // namespace

std::string describe_frame(const uint8_t* f, uint32_t len) {
  char b[160];
  if (len < 14) return "truncated ethernet (" + std::to_string(len) + " bytes)";
  uint32_t off = 14;
  uint16_t type = be16(f + 12);
  std::string out;
  // Tags as the interface sees them: the VID, and the priority when a sender set one. QinQ
  // (an 802.1ad S-tag, or two 802.1Q tags: refused by the parser) shows both, outer first.
  for (int tags = 0; tags < 2 && (type == 0x8100 || type == 0x88a8); ++tags) {
    if (len < off + 4) return out + "truncated 802.1Q tag (" + std::to_string(len) + " bytes)";
    const uint16_t tci = be16(f + off);
    std::snprintf(b, sizeof b, "%svlan %u ", type == 0x88a8 ? "s-" : "", tci & 0x0fffu);
    out += b;
    if (tci >> 13) out += "pcp " + std::to_string(tci >> 13) + " ";
    type = be16(f + off + 2);
    off += 4;
  }
  if (type == 0x0806) {
    if (len < off + 28) return out + "arp, truncated (" + std::to_string(len) + " bytes)";
    const uint8_t* a = f + off;
    const uint16_t op = be16(a + 6);
    if (op == 1) return out + "arp who-has " + ip4(a + 24) + " tell " + ip4(a + 14);
    if (op == 2) {
      std::snprintf(b, sizeof b, " is-at %02x:%02x:%02x:%02x:%02x:%02x", a[8], a[9], a[10], a[11],
                    a[12], a[13]);
      return out + "arp reply " + ip4(a + 14) + b;
    }
    return out + "arp op " + std::to_string(op);
  }
  if (type == 0x86dd) return out + describe_ipv6(f, len, off);
  if (type != 0x0800) {
    std::snprintf(b, sizeof b, "ethertype 0x%04x, %u bytes", type, len);
    return out + b;
  }
  if (len < off + 20) return out + "ipv4, truncated (" + std::to_string(len) + " bytes)";
  const uint8_t* ip = f + off;
  const uint32_t ihl = (ip[0] & 0x0f) * 4u;
  const uint8_t proto = ip[9];
  const uint16_t total = be16(ip + 2);
  const uint16_t frag = be16(ip + 6);
  const std::string src = ip4(ip + 12), dst = ip4(ip + 16);
  std::snprintf(b, sizeof b, " ttl %u len %u", ip[8], total);
  const std::string ip_tail = b;
  if ((ip[0] >> 4) != 4 || ihl < 20) return out + src + " > " + dst + " ipv4, bad header" + ip_tail;
  if (frag & 0x3fff) {
    std::snprintf(b, sizeof b, " fragment off %u%s", (frag & 0x1fff) * 8u, frag & 0x2000 ? " +" : "");
    return out + src + " > " + dst + " proto " + std::to_string(proto) + b + ip_tail;
  }
  const uint32_t l4 = off + ihl;
  const uint32_t l4_avail = len > l4 ? len - l4 : 0;
  if (proto == 6) {
    if (l4_avail < 20) return out + src + " > " + dst + " tcp, truncated" + ip_tail;
    const uint8_t* t = f + l4;
    const uint32_t hlen = (t[12] >> 4) * 4u;
    const uint32_t data = total > ihl + hlen ? total - ihl - hlen : 0;
    std::snprintf(b, sizeof b, ":%u > %s:%u tcp [%s] seq %u ack %u win %u len %u", be16(t),
                  dst.c_str(), be16(t + 2), tcp_flags(t[13]).c_str(), be32(t + 4), be32(t + 8),
                  be16(t + 14), data);
    return out + src + b;
  }
  if (proto == 17) {
    if (l4_avail < 8) return out + src + " > " + dst + " udp, truncated" + ip_tail;
    const uint8_t* u = f + l4;
    std::snprintf(b, sizeof b, ":%u > %s:%u udp len %u", be16(u), dst.c_str(), be16(u + 2),
                  be16(u + 4) >= 8 ? be16(u + 4) - 8u : 0u);
    return out + src + b;
  }
  if (proto == 1) {
    if (l4_avail < 4) return out + src + " > " + dst + " icmp, truncated" + ip_tail;
    const uint8_t type4 = f[l4], code = f[l4 + 1];
    const char* name = type4 == 8 ? "echo request" : type4 == 0 ? "echo reply" : type4 == 3 ? "unreachable" : type4 == 11 ? "time exceeded" : "type";
    std::snprintf(b, sizeof b, " icmp %s (%u/%u)", name, type4, code);
    return out + src + " > " + dst + b + ip_tail;
  }
  return out + src + " > " + dst + " proto " + std::to_string(proto) + ip_tail;
}

std::string hex_bytes(const uint8_t* p, uint32_t len, uint32_t max) {
  static constexpr char kDigits[] = "0123456789abcdef";
  const uint32_t n = len < max ? len : max;
  std::string s(n * 2, '0');
  for (uint32_t i = 0; i < n; ++i) {
    s[2 * i] = kDigits[p[i] >> 4];
    s[2 * i + 1] = kDigits[p[i] & 15];
  }
  return s;
}

}  // namespace rondo::dp
