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
#include "dataplane/fwd/icmp_xlate.h"
#include "dataplane/fwd/nat64.h"
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

uint16_t csum_at(const Frame& f, size_t off) {
  return static_cast<uint16_t>(f[off] << 8 | f[off + 1]);
}

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

// A packet-too-big from a router on the client's side, about a packet rondo sent the client
// (VIP:vport -> client:cport, with a destination-options header it forwarded): to the
// backend, about the packet the backend sent (backend:bport -> local:lport), from the local
// address.
TEST_P(IcmpError6Test, PacketTooBigFromClientSide) {
  const uint8_t proto = GetParam();
  const std::string sent = l3_bytes(v6pkt(proto, kVip, kVport, kClient, kCport, 63));
  const Pkt in = icmp6_error(2, 0, 1280, kRouter, kVip, 60, sent);
  Frame f = test::build(in);
  Icmp6Run r = quote(f, in);
  ASSERT_TRUE(r.quoted);
  EXPECT_EQ(r.q.answer, key6(kClient, kCport, kVip, kVport, proto));

  uint8_t* ip = f.data() + kEth;
  IcmpError6::translate(ip, ip + 40, static_cast<uint32_t>(f.size() - kEth - 40), r.q,
                        a6(kLocal), a6(kBackend), a6(kBackend), a6(kLocal), be16(kBport),
                        be16(kLport));
  const std::string backend_sent = l3_bytes(v6pkt(proto, kBackend, kBport, kLocal, kLport, 63));
  const Frame want = test::build(icmp6_error(2, 0, 1280, kLocal, kBackend, 59, backend_sent));
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

// --- NAT46 / NAT64 (RFC 7915) ------------------------------------------------------------------

const uint32_t kClient4 = test::ip4("198.51.100.2");
const uint32_t kVip4 = test::ip4("203.0.113.10");
const uint32_t kLocal4 = test::ip4("10.0.0.100");
const uint32_t kBackend4 = test::ip4("10.0.0.3");
const uint32_t kRouter4 = test::ip4("192.0.2.254");
constexpr size_t kHeadroom = 64;

uint32_t n32(uint32_t host) { return htonl(host); }

// A v4 packet of the flow (TOS 0x28, DF, the builder's identification).
Pkt v4pkt(uint8_t proto, uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport, uint8_t ttl) {
  Pkt p;
  p.proto = proto;
  p.src_ip = src;
  p.dst_ip = dst;
  p.sport = sport;
  p.dport = dport;
  p.ttl = ttl;
  p.tcp_flags = 0x18;
  p.seq = 0x01020304;
  p.ack = 0x0a0b0c0d;
  p.payload = "hello, rondo over v6";
  return p;
}
// The v6 packet a v4 one translates to (traffic class = TOS, flow label 0), no extension
// headers.
Pkt as_v6(Pkt p, const Ip16& src, uint16_t sport, const Ip16& dst, uint16_t dport, uint8_t hop) {
  p.v6 = true;
  p.src6 = src;
  p.dst6 = dst;
  p.sport = sport;
  p.dport = dport;
  p.ttl = hop;
  p.flow_label = 0;
  p.ext.clear();
  return p;
}

// A frame in a buffer with room in front (the mbuf's headroom) and behind.
struct Buf {
  std::vector<uint8_t> b;
  size_t len;
  explicit Buf(const Frame& f) : b(kHeadroom + f.size() + 64), len(f.size()) {
    std::memcpy(b.data() + kHeadroom, f.data(), f.size());
  }
  uint8_t* frame() { return b.data() + kHeadroom; }
  Frame out(const Xlated& x) const {
    if (!x.frame) return {};
    return Frame(x.frame, x.frame + x.len);
  }
};

class Xlate46Test : public ::testing::TestWithParam<uint8_t> {};

// v4 client -> VIP4 becomes local6:lport -> backend6:bport: the header is rebuilt (TOS to
// traffic class, TTL - 1), the frame grows 20 bytes at the front, L4 stays in place.
TEST_P(Xlate46Test, ClientToBackend6) {
  const uint8_t proto = GetParam();
  Pkt in = v4pkt(proto, kClient4, kCport, kVip4, kVport, 64);
  Buf buf(test::build(in));
  const Xlated x = Xlate46::header(buf.frame(), kEth, static_cast<uint32_t>(buf.len - kEth - 20),
                                   a6(kLocal), a6(kBackend), be16(kLport), be16(kBport));
  Pkt want = as_v6(in, kLocal, kLport, kBackend, kBport, 63);
  want.traffic_class = 0;
  EXPECT_EQ(test::hex(buf.out(x)), test::hex(test::build(want)));
  EXPECT_EQ(x.frame, buf.frame() - 20);
}

// With a TOS, IPv4 options (dropped: the frame grows 20 - 8), an 802.1Q tag (kept) and
// Ethernet padding (not carried over).
TEST_P(Xlate46Test, OptionsTosVlanPadding) {
  const uint8_t proto = GetParam();
  Pkt in = v4pkt(proto, kClient4, kCport, kVip4, kVport, 9);
  in.ip_options = {0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x00};  // NOPs, end of list
  in.vlan = 0x0064;
  in.payload = "x";
  in.pad_to = 80;
  const size_t l3 = 18;
  const uint32_t l4_len = proto == 6 ? 21 : 9;
  // The builder has no v4 TOS field: written by hand, the header checksum computed again.
  Buf buf(test::build(in));
  buf.frame()[l3 + 1] = 0xb8;  // EF
  buf.frame()[l3 + 10] = buf.frame()[l3 + 11] = 0;
  const uint16_t hc = test::fold(test::sum16(buf.frame() + l3, 28));
  buf.frame()[l3 + 10] = static_cast<uint8_t>(hc >> 8);
  buf.frame()[l3 + 11] = static_cast<uint8_t>(hc);
  const Xlated x = Xlate46::header(buf.frame(), l3, l4_len, a6(kLocal), a6(kBackend),
                                    be16(kLport), be16(kBport));
  Pkt want = as_v6(in, kLocal, kLport, kBackend, kBport, 8);
  want.traffic_class = 0xb8;
  want.pad_to = 0;
  EXPECT_EQ(test::hex(buf.out(x)), test::hex(test::build(want)));
  EXPECT_EQ(x.frame, buf.frame() - 12);
}

INSTANTIATE_TEST_SUITE_P(TcpUdp, Xlate46Test, ::testing::Values(uint8_t{6}, uint8_t{17}));

// A v4 UDP datagram without a checksum gets one computed in full: mandatory in v6 (RFC 7915
// 4.5, RFC 8200 8.1).
TEST(Xlate46, UdpWithoutChecksumGetsOne) {
  Pkt in = v4pkt(17, kClient4, kCport, kVip4, kVport, 64);
  in.udp_zero_csum = true;
  Buf buf(test::build(in));
  const Xlated x = Xlate46::header(buf.frame(), kEth, static_cast<uint32_t>(buf.len - kEth - 20),
                                   a6(kLocal), a6(kBackend), be16(kLport), be16(kBport));
  Pkt want = as_v6(in, kLocal, kLport, kBackend, kBport, 63);
  want.udp_zero_csum = false;
  EXPECT_EQ(test::hex(buf.out(x)), test::hex(test::build(want)));
}

// Payload bytes that make `p`'s UDP checksum come out as 0 (sent as 0xffff): the two first
// payload bytes (even offset) carry the checksum of the rest.
void make_udp_sum_zero(Pkt* p, size_t csum_off) {
  p->payload = std::string(2, '\0') + p->payload;
  const uint16_t fix = csum_at(test::build(*p), csum_off);
  p->payload[0] = static_cast<char>(fix >> 8);
  p->payload[1] = static_cast<char>(fix);
}

TEST(Xlate46, UdpChecksumZeroBecomesFfff) {
  Pkt want = as_v6(v4pkt(17, kClient4, kCport, kVip4, kVport, 64), kLocal, kLport, kBackend,
                   kBport, 63);
  make_udp_sum_zero(&want, kEth + 40 + 6);
  ASSERT_EQ(csum_at(test::build(want), kEth + 40 + 6), 0xffff);
  Pkt in = v4pkt(17, kClient4, kCport, kVip4, kVport, 64);
  in.payload = want.payload;
  Buf buf(test::build(in));
  const Xlated x = Xlate46::header(buf.frame(), kEth, static_cast<uint32_t>(buf.len - kEth - 20),
                                   a6(kLocal), a6(kBackend), be16(kLport), be16(kBport));
  EXPECT_EQ(test::hex(buf.out(x)), test::hex(test::build(want)));
}

class Xlate64Test : public ::testing::TestWithParam<uint8_t> {};

// v6 client (a destination-options header on the way) -> VIP6 becomes local4:lport ->
// backend4:bport: extension headers dropped, traffic class to TOS, hop limit - 1, no DF at
// this size and the caller's identification; the frame shrinks by 20 + 8 at the front.
TEST_P(Xlate64Test, ClientToBackend4) {
  const uint8_t proto = GetParam();
  const Pkt in = v6pkt(proto, kClient, kCport, kVip, kVport, 64);
  Buf buf(test::build(in));
  const uint32_t l4_off = static_cast<uint32_t>(kEth + 40 + ext_bytes(in));
  const Xlated x = Xlate64::header(buf.frame(), kEth, l4_off,
                                   static_cast<uint32_t>(buf.len - l4_off), proto, n32(kLocal4),
                                   n32(kBackend4), be16(kLport), be16(kBport), be16(0x4242));
  Pkt want = v4pkt(proto, kLocal4, kLport, kBackend4, kBport, 63);
  want.frag = 0;
  want.ip_id = 0x4242;
  Frame w = test::build(want);
  w[kEth + 1] = 0x28;  // TOS = the traffic class (the builder has no v4 TOS field)
  w[kEth + 10] = w[kEth + 11] = 0;
  test::put16(w, kEth + 10, test::fold(test::sum16(&w[kEth], 20)));
  EXPECT_EQ(test::hex(buf.out(x)), test::hex(w));
  EXPECT_EQ(x.frame, buf.frame() + 28);
}

INSTANTIATE_TEST_SUITE_P(TcpUdp, Xlate64Test, ::testing::Values(uint8_t{6}, uint8_t{17}));

TEST(Xlate64, UdpChecksumZeroBecomesFfff) {
  Pkt want = v4pkt(17, kLocal4, kLport, kBackend4, kBport, 63);
  want.frag = 0;
  want.ip_id = 7;
  make_udp_sum_zero(&want, kEth + 20 + 6);
  ASSERT_EQ(csum_at(test::build(want), kEth + 20 + 6), 0xffff);
  Pkt in = v6pkt(17, kClient, kCport, kVip, kVport, 64);
  in.traffic_class = 0;
  in.payload = want.payload;
  Buf buf(test::build(in));
  const uint32_t l4_off = static_cast<uint32_t>(kEth + 40 + ext_bytes(in));
  const Xlated x = Xlate64::header(buf.frame(), kEth, l4_off,
                                   static_cast<uint32_t>(buf.len - l4_off), 17, n32(kLocal4),
                                   n32(kBackend4), be16(kLport), be16(kBport), be16(7));
  EXPECT_EQ(test::hex(buf.out(x)), test::hex(test::build(want)));
}

// RFC 7915 5.1: DF only when the translated v4 packet is above 1260 bytes; below, the
// caller's identification (the v4 side may fragment it); with DF, identification 0.
TEST(Xlate64, DontFragmentAbove1260) {
  for (uint32_t total : {1259u, 1260u, 1261u}) {
    Pkt in = v6pkt(6, kClient, kCport, kVip, kVport, 64, false);
    in.traffic_class = 0;
    in.payload = std::string(total - 40, 'p');
    Buf buf(test::build(in));
    const uint32_t l4_off = kEth + 40;
    const Xlated x = Xlate64::header(buf.frame(), kEth, l4_off,
                                     static_cast<uint32_t>(buf.len - l4_off), 6, n32(kLocal4),
                                     n32(kBackend4), be16(kLport), be16(kBport), be16(0x0101));
    Pkt want = v4pkt(6, kLocal4, kLport, kBackend4, kBport, 63);
    want.payload = in.payload;
    const bool df = total > 1260;
    want.frag = df ? 0x4000 : 0;
    want.ip_id = df ? 0 : 0x0101;
    const Frame w = test::build(want);
    ASSERT_EQ(w.size(), kEth + total);
    EXPECT_EQ(test::hex(buf.out(x)), test::hex(w)) << total;
  }
}

// --- ICMP type/code tables (RFC 7915 4.2, 5.2), written out here from the RFC -----------

struct Row {
  uint8_t type, code, out_type, out_code;
};
// Every (type, code) that translates v4 -> v6; everything else is untranslatable.
const std::vector<Row> kRows46 = {
    {8, 0, 128, 0}, {0, 0, 129, 0},
    {3, 0, 1, 0},   {3, 1, 1, 0},   {3, 2, 4, 1},   {3, 3, 1, 4},   {3, 4, 2, 0},
    {3, 5, 1, 0},   {3, 6, 1, 0},   {3, 7, 1, 0},   {3, 8, 1, 0},   {3, 9, 1, 1},
    {3, 10, 1, 1},  {3, 11, 1, 0},  {3, 12, 1, 0},  {3, 13, 1, 1},  {3, 15, 1, 1},
    {11, 0, 3, 0},  {11, 1, 3, 1},  {12, 0, 4, 0},  {12, 2, 4, 0},
};
const std::vector<Row> kRows64 = {
    {128, 0, 8, 0}, {129, 0, 0, 0},
    {1, 0, 3, 1},   {1, 1, 3, 10},  {1, 2, 3, 1},   {1, 3, 3, 1},   {1, 4, 3, 3},
    {2, 0, 3, 4},   {3, 0, 11, 0},  {3, 1, 11, 1},  {4, 0, 12, 0},  {4, 1, 3, 2},
};

TEST(IcmpXlate, EveryRow46) {
  for (int t = 0; t < 256; ++t) {
    for (int c = 0; c < 256; ++c) {
      const Row* row = nullptr;
      for (const Row& r : kRows46)
        if (r.type == t && r.code == c) row = &r;
      IcmpXlate::Header out;
      // word: MTU 1400 for frag-needed, pointer 0 for parameter problem, id/seq for echo.
      const uint32_t word = t == 12 ? 0 : (t == 3 ? 1400 : 0x00070001);
      const bool ok = IcmpXlate::map46({static_cast<uint8_t>(t), static_cast<uint8_t>(c), word},
                                       1500, &out);
      ASSERT_EQ(ok, row != nullptr) << t << "/" << c;
      if (!row) continue;
      EXPECT_EQ(out.type, row->out_type) << t << "/" << c;
      EXPECT_EQ(out.code, row->out_code) << t << "/" << c;
      uint32_t want_word = 0;
      if (t == 8 || t == 0) want_word = 0x00070001;
      if (t == 3 && c == 4) want_word = 1420;
      if (t == 3 && c == 2) want_word = 6;  // points at the next header field
      EXPECT_EQ(out.word, want_word) << t << "/" << c;
    }
  }
}

TEST(IcmpXlate, EveryRow64) {
  for (int t = 0; t < 256; ++t) {
    for (int c = 0; c < 256; ++c) {
      const Row* row = nullptr;
      for (const Row& r : kRows64)
        if (r.type == t && r.code == c) row = &r;
      IcmpXlate::Header out;
      const uint32_t word = t == 4 ? 6 : (t == 2 ? 1400 : 0x00070001);
      const bool ok =
          IcmpXlate::map64({static_cast<uint8_t>(t), static_cast<uint8_t>(c), word}, &out);
      ASSERT_EQ(ok, row != nullptr) << t << "/" << c;
      if (!row) continue;
      EXPECT_EQ(out.type, row->out_type) << t << "/" << c;
      EXPECT_EQ(out.code, row->out_code) << t << "/" << c;
      uint32_t want_word = 0;
      if (t == 128 || t == 129) want_word = 0x00070001;
      if (t == 2) want_word = 1380;
      if (t == 4 && c == 0) want_word = 9u << 24;  // next header (6) -> protocol (9)
      EXPECT_EQ(out.word, want_word) << t << "/" << c;
    }
  }
}

// Parameter problem pointers, both ways (RFC 7915 figures 3 and 6).
TEST(IcmpXlate, Pointers) {
  const int want46[20] = {0, 1, 4, 4, -1, -1, -1, -1, 7, 6, -1, -1, 8, 8, 8, 8, 24, 24, 24, 24};
  for (uint32_t p = 0; p < 24; ++p) {
    IcmpXlate::Header out;
    const bool ok = IcmpXlate::map46({12, 0, p << 24}, 0, &out);
    const int w = p < 20 ? want46[p] : -1;
    ASSERT_EQ(ok, w >= 0) << p;
    if (ok) EXPECT_EQ(out.word, static_cast<uint32_t>(w)) << p;
  }
  for (uint32_t p = 0; p < 44; ++p) {
    int w = -1;
    if (p == 0 || p == 1) w = static_cast<int>(p);
    else if (p == 4 || p == 5) w = 2;
    else if (p == 6) w = 9;
    else if (p == 7) w = 8;
    else if (p >= 8 && p < 24) w = 12;
    else if (p >= 24 && p < 40) w = 16;
    IcmpXlate::Header out;
    const bool ok = IcmpXlate::map64({4, 0, p}, &out);
    ASSERT_EQ(ok, w >= 0) << p;
    if (ok) EXPECT_EQ(out.word, static_cast<uint32_t>(w) << 24) << p;
  }
}

// Frag-needed <-> packet too big: MTU +- 20; 1260 <-> 1280. An RFC 792 router's MTU 0:
// the largest RFC 1191 plateau below the quoted packet's length, at least 1280.
TEST(IcmpXlate, MtuAndPlateau) {
  IcmpXlate::Header out;
  ASSERT_TRUE(IcmpXlate::map46({3, 4, 1260}, 1500, &out));
  EXPECT_EQ(out.word, 1280u);
  ASSERT_TRUE(IcmpXlate::map64({2, 0, 1280}, &out));
  EXPECT_EQ(out.word, 1260u);
  ASSERT_TRUE(IcmpXlate::map64({2, 0, 9000}, &out));
  EXPECT_EQ(out.word, 8980u);
  ASSERT_TRUE(IcmpXlate::map64({2, 0, 100000}, &out));
  EXPECT_EQ(out.word, 0xffffu);
  const std::pair<uint32_t, uint32_t> plateau[] = {
      {1500, 1492}, {1493, 1492}, {1492, 1280}, {1400, 1280}, {576, 1280},
      {2002, 1492}, {2003, 2002}, {9000, 8166}, {65535, 32000}};
  for (auto [total, mtu] : plateau) {
    ASSERT_TRUE(IcmpXlate::map46({3, 4, 0}, total, &out));
    EXPECT_EQ(out.word, mtu) << total;
  }
}

// --- ICMP messages across families --------------------------------------------------------

// An ICMPv4 message from src to dst (TTL `ttl`): type/code, the word after the checksum,
// `quoted` after it.
Pkt icmp4(uint8_t type, uint8_t code, uint32_t word, uint32_t src, uint32_t dst, uint8_t ttl,
          const std::string& quoted) {
  Pkt p;
  p.proto = 1;
  p.src_ip = src;
  p.dst_ip = dst;
  p.ttl = ttl;
  p.icmp_type = type;
  p.icmp_code = code;
  p.icmp_id = static_cast<uint16_t>(word >> 16);
  p.icmp_seq = static_cast<uint16_t>(word);
  p.payload = quoted;
  return p;
}

// Set a built v4 frame's outer TOS/id/DF (the builder writes its own), checksum again.
void set_outer4(Frame& f, uint8_t tos, uint16_t id, bool df) {
  f[kEth + 1] = tos;
  test::put16(f, kEth + 4, id);
  test::put16(f, kEth + 6, df ? 0x4000 : 0);
  test::put16(f, kEth + 10, 0);
  test::put16(f, kEth + 10, test::fold(test::sum16(&f[kEth], 20)));
}

class IcmpXlateMsgTest : public ::testing::TestWithParam<uint8_t> {};

// NAT64 flow (v6 client, v4 backend): a router on the v4 side says frag-needed 1260 about
// the packet rondo sent the backend (local4:lport -> backend4:bport); the client gets packet
// too big 1280 from the VIP about the packet it sent (client6:cport -> VIP6:vport). The
// quoted packet grows 20 bytes as well: the frame grows 40 at the front.
TEST_P(IcmpXlateMsgTest, FragNeededToPacketTooBig) {
  const uint8_t proto = GetParam();
  const Pkt sent = v4pkt(proto, kLocal4, kLport, kBackend4, kBport, 63);
  const Pkt in = icmp4(3, 4, 1260, kRouter4, kLocal4, 60, l3_bytes(sent));
  Buf buf(test::build(in));
  const Xlated x = IcmpXlate::to_v6(buf.frame(), kEth, static_cast<uint32_t>(buf.len - kEth - 20),
                                    a6(kVip), a6(kClient), a6(kClient), a6(kVip), be16(kCport),
                                    be16(kVport));
  // The quoted v6 packet: the client's, with the hop limit and class the quote had.
  const std::string quoted6 = l3_bytes(as_v6(sent, kClient, kCport, kVip, kVport, 63));
  const Frame want = test::build(icmp6_error(2, 0, 1280, kVip, kClient, 59, quoted6));
  EXPECT_EQ(test::hex(buf.out(x)), test::hex(want));
  EXPECT_EQ(x.frame, buf.frame() - 40);
}

// NAT46 flow (v4 client, v6 backend): a router on the v6 side says packet too big 1280 about
// the packet rondo sent the backend (local6:lport -> backend6:bport, with a
// destination-options header); the client gets frag-needed 1260 from the VIP about the
// packet it sent (client4:cport -> VIP4:vport; identification 0, no DF at this size,
// options dropped).
TEST_P(IcmpXlateMsgTest, PacketTooBigToFragNeeded) {
  const uint8_t proto = GetParam();
  const Pkt sent = v6pkt(proto, kLocal, kLport, kBackend, kBport, 63);
  const Pkt in = icmp6_error(2, 0, 1280, kRouter, kLocal, 60, l3_bytes(sent), true);
  Buf buf(test::build(in));
  const uint32_t l4_off = static_cast<uint32_t>(kEth + 40 + ext_bytes(in));
  const Xlated x = IcmpXlate::to_v4(buf.frame(), kEth, l4_off,
                                    static_cast<uint32_t>(buf.len - l4_off), n32(kVip4),
                                    n32(kClient4), n32(kClient4), n32(kVip4), be16(kCport),
                                    be16(kVport), be16(0x0909));
  Pkt qsent = v4pkt(proto, kClient4, kCport, kVip4, kVport, 63);
  qsent.frag = 0;
  qsent.ip_id = 0;
  Frame q = test::build(qsent);
  set_outer4(q, 0x28, 0, false);  // the quote's TOS is its traffic class
  Frame want = test::build(
      icmp4(3, 4, 1260, kVip4, kClient4, 59, std::string(q.begin() + kEth, q.end())));
  set_outer4(want, 0, 0x0909, false);
  EXPECT_EQ(test::hex(buf.out(x)), test::hex(want));
}

// Time exceeded both ways (11 <-> 3), about packets sent to the clients.
TEST_P(IcmpXlateMsgTest, TimeExceeded) {
  const uint8_t proto = GetParam();
  {
    // v4 side (NAT46 client): about VIP4 -> client4; to the v6 backend, about backend6 ->
    // local6.
    const Pkt sent = v4pkt(proto, kVip4, kVport, kClient4, kCport, 1);
    const Pkt in = icmp4(11, 0, 0, kRouter4, kVip4, 64, l3_bytes(sent));
    Buf buf(test::build(in));
    const Xlated x =
        IcmpXlate::to_v6(buf.frame(), kEth, static_cast<uint32_t>(buf.len - kEth - 20),
                         a6(kLocal), a6(kBackend), a6(kBackend), a6(kLocal), be16(kBport),
                         be16(kLport));
    const std::string quoted6 = l3_bytes(as_v6(sent, kBackend, kBport, kLocal, kLport, 1));
    EXPECT_EQ(test::hex(buf.out(x)),
              test::hex(test::build(icmp6_error(3, 0, 0, kLocal, kBackend, 63, quoted6))));
  }
  {
    // v6 side (NAT64 client): about VIP6 -> client6; to the v4 backend, about backend4 ->
    // local4.
    Pkt sent = v6pkt(proto, kVip, kVport, kClient, kCport, 1, false);
    sent.traffic_class = 0;
    const Pkt in = icmp6_error(3, 0, 0, kRouter, kVip, 64, l3_bytes(sent));
    Buf buf(test::build(in));
    const Xlated x =
        IcmpXlate::to_v4(buf.frame(), kEth, kEth + 40, static_cast<uint32_t>(buf.len - kEth - 40),
                         n32(kLocal4), n32(kBackend4), n32(kBackend4), n32(kLocal4), be16(kBport),
                         be16(kLport), be16(0x0303));
    Pkt qsent = v4pkt(proto, kBackend4, kBport, kLocal4, kLport, 1);
    qsent.frag = 0;
    qsent.ip_id = 0;
    Frame want = test::build(icmp4(11, 0, 0, kLocal4, kBackend4, 63, l3_bytes(qsent)));
    set_outer4(want, 0, 0x0303, false);
    EXPECT_EQ(test::hex(buf.out(x)), test::hex(want));
  }
}

INSTANTIATE_TEST_SUITE_P(TcpUdp, IcmpXlateMsgTest, ::testing::Values(uint8_t{6}, uint8_t{17}));

// Frag-needed with MTU 0 quoting a 1500-byte packet: packet too big 1492 (plateau), and the
// translated error is cut to 1280 bytes (RFC 4443 2.4 c).
TEST(IcmpXlateMsg, PlateauAndCut) {
  Pkt sent = v4pkt(6, kLocal4, kLport, kBackend4, kBport, 63);
  sent.payload = std::string(1500 - 40, 'z');
  const Pkt in = icmp4(3, 4, 0, kRouter4, kLocal4, 60, l3_bytes(sent));
  Buf buf(test::build(in));
  const Xlated x = IcmpXlate::to_v6(buf.frame(), kEth, static_cast<uint32_t>(buf.len - kEth - 20),
                                    a6(kVip), a6(kClient), a6(kClient), a6(kVip), be16(kCport),
                                    be16(kVport));
  const std::string quoted6 =
      l3_bytes(as_v6(sent, kClient, kCport, kVip, kVport, 63), 1280 - 40 - 8);
  const Frame want = test::build(icmp6_error(2, 0, 1492, kVip, kClient, 59, quoted6));
  EXPECT_EQ(test::hex(buf.out(x)), test::hex(want));
  EXPECT_EQ(x.len, kEth + 1280);
}

// Echo: 8 <-> 128, 129 <-> 0; identifier, sequence and data kept.
TEST(IcmpXlateMsg, Echo) {
  {
    const Pkt in = icmp4(8, 0, 0x00070001, kClient4, kVip4, 64, "ping data");
    Buf buf(test::build(in));
    const Xlated x = IcmpXlate::to_v6(buf.frame(), kEth, static_cast<uint32_t>(buf.len - kEth - 20),
                                      a6(kLocal), a6(kBackend), {}, {}, 0, 0);
    EXPECT_EQ(test::hex(buf.out(x)),
              test::hex(test::build(icmp6_error(128, 0, 0x00070001, kLocal, kBackend, 63,
                                                "ping data"))));
  }
  {
    const Pkt in = icmp6_error(129, 0, 0x00070001, kBackend, kLocal, 64, "pong data", true);
    Buf buf(test::build(in));
    const uint32_t l4_off = static_cast<uint32_t>(kEth + 40 + ext_bytes(in));
    const Xlated x = IcmpXlate::to_v4(buf.frame(), kEth, l4_off,
                                      static_cast<uint32_t>(buf.len - l4_off), n32(kVip4),
                                      n32(kClient4), 0, 0, 0, 0, be16(0x0505));
    Frame want = test::build(icmp4(0, 0, 0x00070001, kVip4, kClient4, 63, "pong data"));
    set_outer4(want, 0, 0x0505, false);
    EXPECT_EQ(test::hex(buf.out(x)), test::hex(want));
  }
}

// Untranslatable: a redirect, an unrecognized-option parameter problem, an error quoting
// no TCP/UDP packet, an error quoting a truncated packet. Nothing is written.
TEST(IcmpXlateMsg, Untranslatable) {
  const std::string q4 = l3_bytes(v4pkt(6, kLocal4, kLport, kBackend4, kBport, 63));
  const std::string q6 = l3_bytes(v6pkt(6, kLocal, kLport, kBackend, kBport, 63, false));
  auto v4_refused = [](const Pkt& in) {
    Buf buf(test::build(in));
    const Buf before = buf;
    const Xlated x = IcmpXlate::to_v6(buf.frame(), kEth, static_cast<uint32_t>(buf.len - kEth - 20),
                                      a6(kVip), a6(kClient), a6(kClient), a6(kVip), 1, 2);
    return x.frame == nullptr && buf.b == before.b;
  };
  auto v6_refused = [](const Pkt& in) {
    Buf buf(test::build(in));
    const Buf before = buf;
    const Xlated x = IcmpXlate::to_v4(buf.frame(), kEth, kEth + 40,
                                      static_cast<uint32_t>(buf.len - kEth - 40), 1, 2, 2, 1, 1, 2,
                                      0);
    return x.frame == nullptr && buf.b == before.b;
  };
  EXPECT_FALSE(v4_refused(icmp4(3, 3, 0, kRouter4, kLocal4, 64, q4)));  // the control
  EXPECT_TRUE(v4_refused(icmp4(5, 1, 0, kRouter4, kLocal4, 64, q4)));
  EXPECT_TRUE(v4_refused(icmp4(3, 14, 0, kRouter4, kLocal4, 64, q4)));
  EXPECT_TRUE(v4_refused(icmp4(3, 3, 0, kRouter4, kLocal4, 64, q4.substr(0, 20 + 7))));
  EXPECT_TRUE(v4_refused(icmp4(3, 3, 0, kRouter4, kLocal4, 64,
                               l3_bytes(icmp4(8, 0, 0, kLocal4, kBackend4, 64, "")))));
  EXPECT_FALSE(v6_refused(icmp6_error(1, 4, 0, kRouter, kLocal, 64, q6)));  // the control
  EXPECT_TRUE(v6_refused(icmp6_error(4, 2, 40, kRouter, kLocal, 64, q6)));
  EXPECT_TRUE(v6_refused(icmp6_error(135, 0, 0, kRouter, kLocal, 64, q6)));
  EXPECT_TRUE(v6_refused(icmp6_error(1, 4, 0, kRouter, kLocal, 64, q6.substr(0, 40 + 7))));
  // A quote whose length field is shorter than its own headers: no wrapped length written.
  std::string short4 = q4;
  short4[2] = 0;
  short4[3] = 19;  // total 19 < its 20-byte header
  EXPECT_TRUE(v4_refused(icmp4(3, 3, 0, kRouter4, kLocal4, 64, short4)));
  const Pkt with_ext = v6pkt(6, kLocal, kLport, kBackend, kBport, 63, true);
  std::string ext6 = l3_bytes(with_ext);
  const auto ext_len = static_cast<uint32_t>(ext_bytes(with_ext));
  ASSERT_EQ(ext_len, 8u);
  EXPECT_FALSE(v6_refused(icmp6_error(1, 4, 0, kRouter, kLocal, 64, ext6)));  // the control
  ext6[4] = 0;
  ext6[5] = static_cast<char>(ext_len - 1);  // payload shorter than its extension headers
  EXPECT_TRUE(v6_refused(icmp6_error(1, 4, 0, kRouter, kLocal, 64, ext6)));
}

}  // namespace
}  // namespace rondo::dp
