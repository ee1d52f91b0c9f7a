// IPv6 translators on plain bytes: FullNat6::rewrite and IcmpError6::{quote, translate}
// (and the NAT46/NAT64 header and ICMP translators). Every translated frame is compared byte
// for byte with a frame the test builder makes from scratch out of the case's own fields, with
// every checksum computed in full (tests/common/packet_builder.h), never by the code under test.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "dataplane/fwd/fullnat6.h"
#include "dataplane/fwd/icmp_error6.h"
#include "tests/common/packet_builder.h"

namespace rondo::dp {
namespace {

using test::Frame;
using test::Ip16;
using test::Pkt;

constexpr size_t kEth = 14;

const Ip16 kClient = test::ip6("2001:db8:100::2");
const Ip16 kVip = test::ip6("2001:db8::10");
const Ip16 kLocal = test::ip6("2001:db8:100::100");
const Ip16 kBackend = test::ip6("2001:db8:100::3");
const Ip16 kRouter = test::ip6("2001:db8:ffff::1");
constexpr uint16_t kCport = 40000, kVport = 80, kLport = 1025, kBport = 3000;

Ip6 a6(const Ip16& a) { return Ip6::from(a.data()); }
uint16_t be16(uint16_t v) { return htons(v); }

// A v6 packet of the flow, from src:sport to dst:dport, with a destination-options header
// between the fixed header and L4 (so the checksum's upper-layer length differs from the
// payload length).
Pkt v6pkt(uint8_t proto, const Ip16& src, uint16_t sport, const Ip16& dst, uint16_t dport,
          uint8_t hop_limit, bool dest_opts = true) {
  Pkt p;
  p.v6 = true;
  p.proto = proto;
  p.src6 = src;
  p.dst6 = dst;
  p.sport = sport;
  p.dport = dport;
  p.ttl = hop_limit;
  p.traffic_class = 0x28;
  p.flow_label = 0x12345;
  p.tcp_flags = 0x18;
  p.seq = 0x01020304;
  p.ack = 0x0a0b0c0d;
  p.payload = "hello, rondo over v6";
  if (dest_opts) p.ext.push_back(test::ext_options(60, {0x1e, 2, 0xaa, 0xbb}));  // unknown, skip
  return p;
}

size_t ext_bytes(const Pkt& p) {
  size_t n = 0;
  for (const auto& e : p.ext) n += e.bytes.size();
  return n;
}

void rewrite(Frame& f, const Pkt& in, const Ip16& src, uint16_t sport, const Ip16& dst,
             uint16_t dport) {
  uint8_t* ip = f.data() + kEth;
  FullNat6::rewrite(ip, ip + 40 + ext_bytes(in), in.proto, a6(src), a6(dst), be16(sport),
                    be16(dport));
}

uint16_t csum_at(const Frame& f, size_t off) { return static_cast<uint16_t>(f[off] << 8 | f[off + 1]); }

// --- FullNat6::rewrite ---------------------------------------------------------------------

class FullNat6Test : public ::testing::TestWithParam<uint8_t> {};

TEST_P(FullNat6Test, ClientToBackend) {
  const uint8_t proto = GetParam();
  const Pkt in = v6pkt(proto, kClient, kCport, kVip, kVport, 64);
  Frame f = test::build(in);
  rewrite(f, in, kLocal, kLport, kBackend, kBport);
  const Frame want = test::build(v6pkt(proto, kLocal, kLport, kBackend, kBport, 63));
  EXPECT_EQ(test::hex(f), test::hex(want));
}

TEST_P(FullNat6Test, BackendToClient) {
  const uint8_t proto = GetParam();
  const Pkt in = v6pkt(proto, kBackend, kBport, kLocal, kLport, 64);
  Frame f = test::build(in);
  rewrite(f, in, kVip, kVport, kClient, kCport);
  const Frame want = test::build(v6pkt(proto, kVip, kVport, kClient, kCport, 63));
  EXPECT_EQ(test::hex(f), test::hex(want));
}

TEST_P(FullNat6Test, NoExtensionHeaders) {
  const uint8_t proto = GetParam();
  const Pkt in = v6pkt(proto, kClient, kCport, kVip, kVport, 2, false);
  Frame f = test::build(in);
  rewrite(f, in, kLocal, kLport, kBackend, kBport);
  const Frame want = test::build(v6pkt(proto, kLocal, kLport, kBackend, kBport, 1, false));
  EXPECT_EQ(test::hex(f), test::hex(want));
}

INSTANTIATE_TEST_SUITE_P(TcpUdp, FullNat6Test, ::testing::Values(uint8_t{6}, uint8_t{17}));

// The rewritten datagram's checksum comes out as zero: v6 forbids 0 (RFC 8200 8.1), so it is
// sent as 0xffff, as a from-scratch computation writes it.
TEST(FullNat6, UdpChecksumZeroBecomesFfff) {
  Pkt out = v6pkt(17, kLocal, kLport, kBackend, kBport, 63);
  out.payload = std::string(2, '\0') + out.payload;
  // Two payload bytes (at an even offset) that make the output's sum 0xffff: the checksum
  // over the rest, in those bytes.
  const size_t csum = kEth + 40 + ext_bytes(out) + 6;
  const uint16_t fix = csum_at(test::build(out), csum);
  out.payload[0] = static_cast<char>(fix >> 8);
  out.payload[1] = static_cast<char>(fix);
  const Frame want = test::build(out);
  ASSERT_EQ(csum_at(want, csum), 0xffff);

  Pkt in = v6pkt(17, kClient, kCport, kVip, kVport, 64);
  in.payload = out.payload;
  Frame f = test::build(in);
  ASSERT_NE(csum_at(f, csum), 0xffff);
  rewrite(f, in, kLocal, kLport, kBackend, kBport);
  EXPECT_EQ(test::hex(f), test::hex(want));
}

// --- IcmpError6 ----------------------------------------------------------------------------

// The IPv6 packet of `p` without its Ethernet header, cut to `keep` bytes (0: all).
std::string l3_bytes(const Pkt& p, size_t keep = 0) {
  const Frame f = test::build(p);
  std::string s(f.begin() + kEth, f.end());
  if (keep) s.resize(keep);
  return s;
}

// An ICMPv6 error (type/code, the 4 bytes after the checksum) from `src` to `dst`, quoting
// `quoted` (an IPv6 packet).
Pkt icmp6_error(uint8_t type, uint8_t code, uint32_t word, const Ip16& src, const Ip16& dst,
                uint8_t hop_limit, const std::string& quoted, bool dest_opts = false) {
  Pkt p;
  p.v6 = true;
  p.proto = 58;
  p.src6 = src;
  p.dst6 = dst;
  p.ttl = hop_limit;
  p.icmp_type = type;
  p.icmp_code = code;
  p.icmp_id = static_cast<uint16_t>(word >> 16);
  p.icmp_seq = static_cast<uint16_t>(word);
  p.payload = quoted;
  if (dest_opts) p.ext.push_back(test::ext_options(60));
  return p;
}

struct Icmp6Run {
  bool quoted;
  IcmpError6::Quote q;
};

Icmp6Run quote(Frame& f, const Pkt& in) {
  Icmp6Run r{};
  uint8_t* icmp = f.data() + kEth + 40 + ext_bytes(in);
  const uint32_t len = static_cast<uint32_t>(f.size() - kEth - 40 - ext_bytes(in));
  r.quoted = IcmpError6::quote(icmp, len, &r.q);
  return r;
}

FlowKey6 key6(const Ip16& src, uint16_t sport, const Ip16& dst, uint16_t dport, uint8_t proto) {
  FlowKey6 k;
  std::memcpy(k.src_ip, src.data(), 16);
  std::memcpy(k.dst_ip, dst.data(), 16);
  k.src_port = be16(sport);
  k.dst_port = be16(dport);
  k.proto = proto;
  return k;
}

class IcmpError6Test : public ::testing::TestWithParam<uint8_t> {};

// A packet-too-big from a router on the backend's side, about a packet rondo sent the backend
// (local:lport -> backend:bport): to the client, about the packet the client sent
// (client:cport -> VIP:vport), from the VIP. The error itself carries a destination-options
// header (its ICMPv6 checksum's upper-layer length is not the payload length).
TEST_P(IcmpError6Test, PacketTooBigFromBackendSide) {
  const uint8_t proto = GetParam();
  const std::string sent = l3_bytes(v6pkt(proto, kLocal, kLport, kBackend, kBport, 63));
  const Pkt in = icmp6_error(2, 0, 1400, kRouter, kLocal, 60, sent, true);
  Frame f = test::build(in);
  Icmp6Run r = quote(f, in);
  ASSERT_TRUE(r.quoted);
  EXPECT_EQ(r.q.answer, key6(kBackend, kBport, kLocal, kLport, proto));

  uint8_t* ip = f.data() + kEth;
  uint8_t* icmp = ip + 40 + ext_bytes(in);
  IcmpError6::translate(ip, icmp, static_cast<uint32_t>(f.data() + f.size() - icmp), r.q,
                        a6(kVip), a6(kClient), a6(kClient), a6(kVip), be16(kCport), be16(kVport));
  const std::string client_sent = l3_bytes(v6pkt(proto, kClient, kCport, kVip, kVport, 63));
  const Frame want = test::build(icmp6_error(2, 0, 1400, kVip, kClient, 59, client_sent, true));
  EXPECT_EQ(test::hex(f), test::hex(want));
}

// Time exceeded from a router on the client's side, about a packet rondo sent the client
// (VIP:vport -> client:cport): to the backend, about the packet the backend sent
// (backend:bport -> local:lport), from the local address.
TEST_P(IcmpError6Test, TimeExceededFromClientSide) {
  const uint8_t proto = GetParam();
  const std::string sent = l3_bytes(v6pkt(proto, kVip, kVport, kClient, kCport, 1));
  const Pkt in = icmp6_error(3, 0, 0, kRouter, kVip, 64, sent);
  Frame f = test::build(in);
  Icmp6Run r = quote(f, in);
  ASSERT_TRUE(r.quoted);
  EXPECT_EQ(r.q.answer, key6(kClient, kCport, kVip, kVport, proto));

  uint8_t* ip = f.data() + kEth;
  uint8_t* icmp = ip + 40;
  IcmpError6::translate(ip, icmp, static_cast<uint32_t>(f.size() - kEth - 40), r.q, a6(kLocal),
                        a6(kBackend), a6(kBackend), a6(kLocal), be16(kBport), be16(kLport));
  const std::string backend_sent = l3_bytes(v6pkt(proto, kBackend, kBport, kLocal, kLport, 1));
  const Frame want = test::build(icmp6_error(3, 0, 0, kLocal, kBackend, 63, backend_sent));
  EXPECT_EQ(test::hex(f), test::hex(want));
}

// Destination unreachable (port unreachable) quoting only the first 12 bytes of the TCP
// header or the 8 of UDP, without extension headers: the ports change; a TCP checksum that is
// not quoted is not touched.
TEST_P(IcmpError6Test, ShortQuote) {
  const uint8_t proto = GetParam();
  const size_t keep = 40 + (proto == 6 ? 12 : 8);
  const std::string sent =
      l3_bytes(v6pkt(proto, kLocal, kLport, kBackend, kBport, 63, false), keep);
  const Pkt in = icmp6_error(1, 4, 0, kBackend, kLocal, 64, sent);
  Frame f = test::build(in);
  Icmp6Run r = quote(f, in);
  ASSERT_TRUE(r.quoted);
  EXPECT_EQ(r.q.l4_avail, keep - 40);
  uint8_t* ip = f.data() + kEth;
  IcmpError6::translate(ip, ip + 40, static_cast<uint32_t>(f.size() - kEth - 40), r.q, a6(kVip),
                        a6(kClient), a6(kClient), a6(kVip), be16(kCport), be16(kVport));
  // The quoted payload length still says what the whole packet had: built whole, then cut.
  const std::string client_sent =
      l3_bytes(v6pkt(proto, kClient, kCport, kVip, kVport, 63, false), keep);
  const Frame want = test::build(icmp6_error(1, 4, 0, kVip, kClient, 63, client_sent));
  EXPECT_EQ(test::hex(f), test::hex(want));
}

INSTANTIATE_TEST_SUITE_P(TcpUdp, IcmpError6Test, ::testing::Values(uint8_t{6}, uint8_t{17}));

TEST(IcmpError6, IsError) {
  for (int t = 0; t < 256; ++t)
    EXPECT_EQ(IcmpError6::is_error(static_cast<uint8_t>(t)), t >= 1 && t <= 4) << t;
}

// Quotes rondo cannot take a flow key from are refused: fewer than 8 L4 bytes (with or
// without extension headers before them), a truncated extension header, a later fragment,
// not IPv6, not TCP/UDP.
TEST(IcmpError6, RefusedQuotes) {
  const Pkt sent = v6pkt(6, kLocal, kLport, kBackend, kBport, 63);  // 8 B of dest options
  auto refused = [](const std::string& quoted) {
    const Pkt in = icmp6_error(2, 0, 1280, kRouter, kLocal, 64, quoted);
    Frame f = test::build(in);
    return !quote(f, in).quoted;
  };
  EXPECT_FALSE(refused(l3_bytes(sent, 40 + 8 + 8)));  // exactly enough
  EXPECT_TRUE(refused(l3_bytes(sent, 40 + 8 + 7)));   // one L4 byte short
  EXPECT_TRUE(refused(l3_bytes(sent, 40 + 4)));       // extension header cut
  EXPECT_TRUE(refused(l3_bytes(sent, 39)));           // fixed header cut
  EXPECT_TRUE(refused(""));

  Pkt frag = v6pkt(17, kLocal, kLport, kBackend, kBport, 63, false);
  frag.ext.push_back(test::ext_fragment(0, true));
  EXPECT_FALSE(refused(l3_bytes(frag)));  // the first fragment has the ports
  frag.ext[0] = test::ext_fragment(4, false);
  EXPECT_TRUE(refused(l3_bytes(frag)));

  Pkt icmp = icmp6_error(128, 0, 0, kLocal, kBackend, 64, "ping");
  EXPECT_TRUE(refused(l3_bytes(icmp)));

  Pkt v4;
  v4.proto = 6;
  v4.src_ip = test::ip4("192.0.2.1");
  v4.dst_ip = test::ip4("192.0.2.2");
  EXPECT_TRUE(refused(l3_bytes(v4)));
}

}  // namespace
}  // namespace rondo::dp
