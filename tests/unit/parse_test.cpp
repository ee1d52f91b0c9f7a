// parse_frame: well-formed frames give the right kind, offsets, key and flags; every
// malformed frame is rejected with the DropReason it is counted under. Each frame is
// copied into a buffer of exactly its length, so a read past the end shows up under ASan.
#include "dataplane/pkt/parse.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/pkt/csum.h"
#include "tests/common/packet_builder.h"

namespace rondo::dp {
namespace {

using test::Arp;
using test::Frame;
using test::Pkt;
using test::ip4;
using test::put16;

const uint32_t kClient = ip4("198.51.100.2");
const uint32_t kVip = ip4("203.0.113.10");

struct Result {
  bool ok = false;
  Parsed p;
  DropReason why = DropReason::kCount;
};

// Parse the first n bytes of f from a heap buffer of exactly n bytes.
Result parse(const Frame& f, size_t n) {
  Result r;
  auto buf = std::make_unique<uint8_t[]>(n ? n : 1);
  if (n) std::memcpy(buf.get(), f.data(), n);
  r.ok = parse_frame(buf.get(), static_cast<uint32_t>(n), &r.p, &r.why);
  return r;
}
Result parse(const Frame& f) { return parse(f, f.size()); }

// Recompute the IPv4 header checksum of an untagged frame after a test edited the header.
void fix_ip_csum(Frame& f) {
  put16(f, 24, 0);
  put16(f, 24, test::fold(test::sum16(&f[14], (f[14] & 0x0f) * 4u)));
}

Pkt tcp(const std::string& payload = "") {
  Pkt p;
  p.src_ip = kClient;
  p.dst_ip = kVip;
  p.proto = 6;
  p.sport = 41000;
  p.dport = 80;
  p.tcp_flags = kTcpSyn | kTcpAck;
  p.ttl = 17;
  p.payload = payload;
  return p;
}

Pkt udp(const std::string& payload = "") {
  Pkt p = tcp(payload);
  p.proto = 17;
  p.sport = 5353;
  p.dport = 53;
  return p;
}

// Expected key of a packet built from pk (all fields network order, padding zero).
FlowKey key_of(const Pkt& pk) {
  FlowKey k;
  k.src_ip = htonl(pk.src_ip);
  k.dst_ip = htonl(pk.dst_ip);
  if (pk.proto == 6 || pk.proto == 17) {
    k.src_port = htons(pk.sport);
    k.dst_port = htons(pk.dport);
  }
  k.proto = pk.proto;
  return k;
}

// ---- well-formed frames ----

TEST(ParseTest, TcpSegment) {
  const Pkt pk = tcp("hello");
  const Result r = parse(test::build(pk));
  ASSERT_TRUE(r.ok) << static_cast<int>(r.why);
  EXPECT_EQ(r.p.kind, PktKind::kIpv4Tcp);
  EXPECT_FALSE(r.p.vlan);
  EXPECT_EQ(r.p.l3_off, 14);
  EXPECT_EQ(r.p.l4_off, 34);
  EXPECT_EQ(r.p.ip_len, 20 + 20 + 5);
  EXPECT_EQ(r.p.tcp_flags, kTcpSyn | kTcpAck);
  EXPECT_EQ(r.p.ttl, 17);
  EXPECT_EQ(r.p.key, key_of(pk));
}

TEST(ParseTest, TcpFlagsAreTheWholeFlagsByte) {
  for (uint8_t flags : {kTcpRst, uint8_t{0x18}, uint8_t{0x11}, uint8_t{0xd0}, uint8_t{0xfa}}) {
    Pkt pk = tcp();
    pk.tcp_flags = flags;
    const Result r = parse(test::build(pk));
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.p.tcp_flags, flags);
  }
}

TEST(ParseTest, UdpDatagram) {
  const Pkt pk = udp("query");
  const Result r = parse(test::build(pk));
  ASSERT_TRUE(r.ok) << static_cast<int>(r.why);
  EXPECT_EQ(r.p.kind, PktKind::kIpv4Udp);
  EXPECT_EQ(r.p.l3_off, 14);
  EXPECT_EQ(r.p.l4_off, 34);
  EXPECT_EQ(r.p.ip_len, 20 + 8 + 5);
  EXPECT_EQ(r.p.tcp_flags, 0);
  EXPECT_EQ(r.p.key, key_of(pk));
}

TEST(ParseTest, IcmpEcho) {
  Pkt pk = tcp();
  pk.proto = 1;
  const Result r = parse(test::build(pk));
  ASSERT_TRUE(r.ok) << static_cast<int>(r.why);
  EXPECT_EQ(r.p.kind, PktKind::kIpv4Icmp);
  EXPECT_EQ(r.p.l4_off, 34);
  EXPECT_EQ(r.p.ip_len, 28);
  EXPECT_EQ(r.p.key, key_of(pk));  // ports 0
  EXPECT_EQ(r.p.key.src_port, 0);
  EXPECT_EQ(r.p.key.dst_port, 0);
}

TEST(ParseTest, OtherIpProtocolIsWellFormed) {
  Pkt pk = tcp();
  pk.proto = 47;  // GRE: no L4 header known to the builder, the datagram is just the IP header
  const Result r = parse(test::build(pk));
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.p.kind, PktKind::kIpv4Other);
  EXPECT_EQ(r.p.key.proto, 47);
  EXPECT_EQ(r.p.key.src_ip, htonl(kClient));
}

TEST(ParseTest, ArpRequest) {
  Arp a;
  a.eth_src = {2, 0, 0, 0, 0, 2};
  a.sha = a.eth_src;
  a.sip = kClient;
  a.tip = kVip;
  Result r = parse(test::build(a));
  ASSERT_TRUE(r.ok) << static_cast<int>(r.why);
  EXPECT_EQ(r.p.kind, PktKind::kArp);
  EXPECT_FALSE(r.p.vlan);
  EXPECT_EQ(r.p.l3_off, 14);

  a.vlan = 0x0064;
  a.pad_to = 64;
  r = parse(test::build(a));
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.p.kind, PktKind::kArp);
  EXPECT_TRUE(r.p.vlan);
  EXPECT_EQ(r.p.l3_off, 18);
}

TEST(ParseTest, VlanTaggedTcp) {
  Pkt pk = tcp("x");
  pk.vlan = 0x2064;  // PCP 1, VID 100
  const Result r = parse(test::build(pk));
  ASSERT_TRUE(r.ok) << static_cast<int>(r.why);
  EXPECT_TRUE(r.p.vlan);
  EXPECT_EQ(r.p.kind, PktKind::kIpv4Tcp);
  EXPECT_EQ(r.p.l3_off, 18);
  EXPECT_EQ(r.p.l4_off, 38);
  EXPECT_EQ(r.p.ip_len, 41);
  EXPECT_EQ(r.p.key, key_of(pk));
}

TEST(ParseTest, Ipv4OptionsMoveTheL4Header) {
  Pkt pk = tcp("abc");
  pk.ip_options = {0x94, 0x04, 0x00, 0x00};  // Router Alert: IHL 6
  Frame f = test::build(pk);
  ASSERT_EQ(f[14], 0x46);
  Result r = parse(f);
  ASSERT_TRUE(r.ok) << static_cast<int>(r.why);
  EXPECT_EQ(r.p.l4_off, 14 + 24);
  EXPECT_EQ(r.p.ip_len, 24 + 20 + 3);
  EXPECT_EQ(r.p.key, key_of(pk));  // ports read after the options, not at IHL 5
  EXPECT_EQ(r.p.tcp_flags, kTcpSyn | kTcpAck);

  pk = udp();
  pk.ip_options.assign(40, 0x01);  // NOPs: IHL 15, the largest
  f = test::build(pk);
  r = parse(f);
  ASSERT_TRUE(r.ok) << static_cast<int>(r.why);
  EXPECT_EQ(r.p.l4_off, 14 + 60);
  EXPECT_EQ(r.p.key, key_of(pk));
}

TEST(ParseTest, EthernetPaddingAfterTheDatagram) {
  Pkt pk = udp("a");  // 14 + 29 bytes, padded to the 60-byte minimum
  pk.pad_to = 60;
  Frame f = test::build(pk);
  ASSERT_EQ(f.size(), 60u);
  // Non-zero padding must not be taken for data either.
  for (size_t i = 14 + 29; i < f.size(); ++i) f[i] = 0xee;
  Result r = parse(f);
  ASSERT_TRUE(r.ok) << static_cast<int>(r.why);
  EXPECT_EQ(r.p.ip_len, 29);
  EXPECT_EQ(r.p.key, key_of(pk));

  Pkt t = tcp();
  t.pad_to = 64;
  r = parse(test::build(t));
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.p.ip_len, 40);
  EXPECT_EQ(r.p.kind, PktKind::kIpv4Tcp);
}

TEST(ParseTest, DfAloneIsNotAFragment) {
  for (uint16_t frag : {uint16_t{0}, uint16_t{0x4000}}) {
    Pkt pk = tcp();
    pk.frag = frag;
    EXPECT_TRUE(parse(test::build(pk)).ok) << frag;
  }
}

// ---- truncation ----

// Every prefix of a valid TCP frame: nothing but the whole frame parses, and the reason is
// malformed_l2 while the Ethernet header is cut, malformed_l3 after that (the IPv4 total
// length then claims more than the frame holds, whichever header the cut falls in).
TEST(ParseTest, EveryPrefixOfATcpFrame) {
  const Frame f = test::build(tcp("0123456789"));
  for (size_t n = 0; n <= f.size(); ++n) {
    const Result r = parse(f, n);
    if (n == f.size()) {
      EXPECT_TRUE(r.ok);
      continue;
    }
    ASSERT_FALSE(r.ok) << "prefix " << n;
    const DropReason want = n < 14 ? DropReason::kMalformedL2 : DropReason::kMalformedL3;
    EXPECT_EQ(r.why, want) << "prefix " << n;
  }
}

TEST(ParseTest, EveryPrefixOfAVlanTcpFrame) {
  Pkt pk = tcp("xy");
  pk.vlan = 7;
  const Frame f = test::build(pk);
  for (size_t n = 0; n < f.size(); ++n) {
    const Result r = parse(f, n);
    ASSERT_FALSE(r.ok) << "prefix " << n;
    const DropReason want = n < 18 ? DropReason::kMalformedL2 : DropReason::kMalformedL3;
    EXPECT_EQ(r.why, want) << "prefix " << n;
  }
  EXPECT_TRUE(parse(f).ok);
}

TEST(ParseTest, EveryPrefixOfAnArpFrame) {
  Arp a;
  a.sip = kClient;
  a.tip = kVip;
  const Frame f = test::build(a);
  for (size_t n = 0; n < f.size(); ++n) {
    const Result r = parse(f, n);
    ASSERT_FALSE(r.ok) << "prefix " << n;
    EXPECT_EQ(r.why, n < 14 ? DropReason::kMalformedL2 : DropReason::kMalformedArp) << n;
  }
  EXPECT_TRUE(parse(f).ok);
}

// An L4 header cut short with an IPv4 total length that agrees (a consistent, short
// datagram): malformed_l4 for every length below the fixed header.
TEST(ParseTest, ShortL4HeaderInsideAConsistentDatagram) {
  struct Case {
    uint8_t proto;
    size_t hdr;
  };
  for (Case c : {Case{6, 20}, Case{17, 8}, Case{1, 8}}) {
    Pkt pk = tcp();
    pk.proto = c.proto;
    const Frame full = test::build(pk);
    for (size_t k = 0; k < c.hdr; ++k) {
      Frame f(full.begin(), full.begin() + 34 + k);
      put16(f, 16, static_cast<uint16_t>(20 + k));
      fix_ip_csum(f);
      const Result r = parse(f);
      ASSERT_FALSE(r.ok) << "proto " << int(c.proto) << " l4 bytes " << k;
      EXPECT_EQ(r.why, DropReason::kMalformedL4) << "proto " << int(c.proto) << " l4 bytes " << k;
    }
  }
}

// ---- bad IPv4 headers ----

TEST(ParseTest, IhlBelowFive) {
  for (uint8_t ihl = 0; ihl < 5; ++ihl) {
    Frame f = test::build(tcp());
    f[14] = static_cast<uint8_t>(0x40 | ihl);
    const Result r = parse(f);
    ASSERT_FALSE(r.ok) << int(ihl);
    EXPECT_EQ(r.why, DropReason::kMalformedL3) << int(ihl);
  }
}

TEST(ParseTest, VersionOtherThanFourInAnIpv4Ethertype) {
  for (uint8_t v = 0; v < 16; ++v) {
    if (v == 4) continue;
    Frame f = test::build(tcp());
    f[14] = static_cast<uint8_t>(v << 4 | 5);
    const Result r = parse(f);
    ASSERT_FALSE(r.ok) << int(v);
    EXPECT_EQ(r.why, DropReason::kMalformedL3) << int(v);
  }
}

TEST(ParseTest, TotalLengthLargerThanTheFrame) {
  Frame f = test::build(tcp("abcd"));
  put16(f, 16, static_cast<uint16_t>(f.size() - 14 + 1));
  Result r = parse(f);
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.why, DropReason::kMalformedL3);

  put16(f, 16, 1500);  // as long as an Ethernet MTU allows, and cut: malformed
  r = parse(f);
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.why, DropReason::kMalformedL3);

  // Longer than an MTU allows and cut: what an af_packet reader gets of a GSO super-frame.
  put16(f, 16, 1501);
  r = parse(f);
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.why, DropReason::kGsoFrame);
  put16(f, 16, 0xffff);
  r = parse(f);
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.why, DropReason::kGsoFrame);

  put16(f, 16, static_cast<uint16_t>(f.size() - 14));  // exactly the frame: fine
  EXPECT_TRUE(parse(f).ok);
}

TEST(ParseTest, GsoSuperFrameCutByTheReaderIsNamed) {
  // Two MSS-sized segments merged (2,948 bytes of TCP payload), cut at 2,048 bytes as an
  // af_packet ring with 2 KiB frames keeps it.
  Frame f = test::build(tcp(std::string(2 * 1448 + 52, 'x')));
  ASSERT_GT(f.size(), 2048u);
  Result r = parse(f, 2048);
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.why, DropReason::kGsoFrame);
  EXPECT_TRUE(parse(f).ok);  // whole, it is a (jumbo) datagram like any other
}

TEST(ParseTest, TotalLengthSmallerThanTheHeader) {
  for (uint16_t total : {uint16_t{0}, uint16_t{1}, uint16_t{19}}) {
    Frame f = test::build(tcp());
    put16(f, 16, total);
    const Result r = parse(f);
    ASSERT_FALSE(r.ok) << total;
    EXPECT_EQ(r.why, DropReason::kMalformedL3) << total;
  }
  Pkt pk = tcp();
  pk.ip_options = {1, 1, 1, 1};  // IHL 6 (24 bytes) with a total length of 20..23
  for (uint16_t total = 20; total < 24; ++total) {
    Frame f = test::build(pk);
    put16(f, 16, total);
    const Result r = parse(f);
    ASSERT_FALSE(r.ok) << total;
    EXPECT_EQ(r.why, DropReason::kMalformedL3) << total;
  }
}

TEST(ParseTest, FragmentsAreRejected) {
  // MF alone (first fragment), an offset alone (last fragment), both (middle), with DF noise.
  for (uint16_t frag : {uint16_t{0x2000}, uint16_t{0x0001}, uint16_t{0x1fff}, uint16_t{0x2001},
                        uint16_t{0x00b9}, uint16_t{0x6000}, uint16_t{0x4001}}) {
    for (uint8_t proto : {uint8_t{6}, uint8_t{17}, uint8_t{1}}) {
      Pkt pk = tcp();
      pk.proto = proto;
      pk.frag = frag;
      const Result r = parse(test::build(pk));
      ASSERT_FALSE(r.ok) << std::hex << frag;
      EXPECT_EQ(r.why, DropReason::kIpFragment) << std::hex << frag;
    }
  }
}

// ---- bad L4 headers ----

TEST(ParseTest, TcpDataOffsetBelowFive) {
  for (uint8_t doff = 0; doff < 5; ++doff) {
    Frame f = test::build(tcp("payload-of-some-length"));
    f[34 + 12] = static_cast<uint8_t>(doff << 4);
    const Result r = parse(f);
    ASSERT_FALSE(r.ok) << int(doff);
    EXPECT_EQ(r.why, DropReason::kMalformedL4) << int(doff);
  }
}

TEST(ParseTest, TcpDataOffsetBeyondTheSegment) {
  // 20 header bytes + 8 payload bytes: data offset 7 (28 bytes) fits, 8 (32) does not.
  for (uint8_t doff = 5; doff < 16; ++doff) {
    Frame f = test::build(tcp("12345678"));
    f[34 + 12] = static_cast<uint8_t>(doff << 4);
    const Result r = parse(f);
    if (doff <= 7) {
      EXPECT_TRUE(r.ok) << int(doff);
    } else {
      ASSERT_FALSE(r.ok) << int(doff);
      EXPECT_EQ(r.why, DropReason::kMalformedL4) << int(doff);
    }
  }
  // The segment ends at the IPv4 total length, not at the end of the (padded) frame.
  Pkt pk = tcp();
  pk.pad_to = 80;
  Frame f = test::build(pk);
  f[34 + 12] = 6 << 4;
  const Result r = parse(f);
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.why, DropReason::kMalformedL4);
}

TEST(ParseTest, UdpLengthBelowEight) {
  for (uint16_t ulen = 0; ulen < 8; ++ulen) {
    Frame f = test::build(udp("abc"));
    put16(f, 34 + 4, ulen);
    const Result r = parse(f);
    ASSERT_FALSE(r.ok) << ulen;
    EXPECT_EQ(r.why, DropReason::kMalformedL4) << ulen;
  }
}

TEST(ParseTest, UdpLengthBeyondTheSegment) {
  Frame f = test::build(udp("abc"));  // segment: 11 bytes
  put16(f, 34 + 4, 12);
  Result r = parse(f);
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.why, DropReason::kMalformedL4);
  put16(f, 34 + 4, 0xffff);
  r = parse(f);
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.why, DropReason::kMalformedL4);

  // Padding after the datagram does not count as UDP payload.
  Pkt pk = udp("abc");
  pk.pad_to = 60;
  f = test::build(pk);
  put16(f, 34 + 4, 12);
  r = parse(f);
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.why, DropReason::kMalformedL4);
}

// ---- other ethertypes, ARP, VLAN ----

TEST(ParseTest, Ipv6AndOtherEthertypesAreUnsupported) {
  for (uint16_t type : {uint16_t{0x86dd}, uint16_t{0x88cc}, uint16_t{0x8847}, uint16_t{0x0000}}) {
    Frame f = test::build(tcp());
    put16(f, 12, type);
    Result r = parse(f);
    ASSERT_FALSE(r.ok) << std::hex << type;
    EXPECT_EQ(r.why, DropReason::kUnsupportedL3) << std::hex << type;

    Pkt pk = tcp();
    pk.vlan = 5;
    f = test::build(pk);
    put16(f, 16, type);  // inner ethertype
    r = parse(f);
    ASSERT_FALSE(r.ok) << std::hex << type;
    EXPECT_EQ(r.why, DropReason::kUnsupportedL3) << std::hex << type;
  }
  // Only one tag is handled: a second 802.1Q tag is an unknown inner ethertype.
  Pkt pk = tcp();
  pk.vlan = 5;
  Frame f = test::build(pk);
  put16(f, 16, 0x8100);
  const Result r = parse(f);
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.why, DropReason::kUnsupportedL3);
}

TEST(ParseTest, BadArp) {
  Arp a;
  a.sip = kClient;
  a.tip = kVip;
  struct Case {
    const char* what;
    size_t off;  // from the start of the ARP header
    uint8_t value;
  };
  for (Case c : {Case{"hlen 8", 4, 8}, Case{"hlen 0", 4, 0}, Case{"plen 16", 5, 16},
                 Case{"hardware 6", 1, 6}, Case{"protocol 0x8600", 2, 0x86}}) {
    Frame f = test::build(a);
    f[14 + c.off] = c.value;
    const Result r = parse(f);
    ASSERT_FALSE(r.ok) << c.what;
    EXPECT_EQ(r.why, DropReason::kMalformedArp) << c.what;
  }
}

TEST(ParseTest, TruncatedVlanTag) {
  Pkt pk = tcp();
  pk.vlan = 9;
  const Frame f = test::build(pk);
  for (size_t n = 14; n < 18; ++n) {
    const Result r = parse(f, n);
    ASSERT_FALSE(r.ok) << n;
    EXPECT_EQ(r.why, DropReason::kMalformedL2) << n;
  }
}

}  // namespace
}  // namespace rondo::dp

namespace rondo::dp {
namespace {

// ---- sanity before state: what no lookup may ever see ----

TEST(ParseSanity, BadIpv4HeaderChecksumIsDropped) {
  Frame f = test::build(tcp());
  ASSERT_TRUE(parse(f).ok);
  f[24] ^= 0x01;
  const Result r = parse(f);
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.why, DropReason::kBadIpChecksum);
  // With options too: the whole header counts.
  Pkt pk = tcp();
  pk.ip_options = {1, 1, 1, 0};  // NOP NOP NOP EOL
  f = test::build(pk);
  ASSERT_TRUE(parse(f).ok);
  f[14 + 22] ^= 0x80;
  EXPECT_EQ(parse(f).why, DropReason::kBadIpChecksum);
}

TEST(ParseSanity, MartianSourcesAreDropped) {
  for (const char* src : {"0.0.0.0", "0.1.2.3", "127.0.0.1", "224.0.0.1", "239.255.255.250",
                          "240.0.0.1", "255.255.255.255"}) {
    for (Pkt pk : {tcp(), udp("x")}) {
      pk.src_ip = test::ip4(src);
      const Result r = parse(test::build(pk));
      ASSERT_FALSE(r.ok) << src;
      EXPECT_EQ(r.why, DropReason::kMartianSource) << src;
    }
  }
  for (const char* src : {"1.0.0.1", "126.255.255.255", "128.0.0.1", "223.255.255.254"}) {
    Pkt pk = tcp();
    pk.src_ip = test::ip4(src);
    EXPECT_TRUE(parse(test::build(pk)).ok) << src;
  }
}

TEST(ParseSanity, PortZeroIsDropped) {
  for (Pkt pk : {tcp(), udp("x")}) {
    for (int which = 0; which < 2; ++which) {
      Pkt q = pk;
      (which ? q.sport : q.dport) = 0;
      const Result r = parse(test::build(q));
      ASSERT_FALSE(r.ok);
      EXPECT_EQ(r.why, DropReason::kPortZero);
    }
  }
}

TEST(ParseSanity, NonsenseTcpFlagsAreDropped) {
  // SYN+FIN, SYN+RST, SYN+FIN+ACK, no flags, FIN alone, FIN+PSH+URG (xmas), PSH alone.
  for (uint8_t flags : {uint8_t{0x03}, uint8_t{0x06}, uint8_t{0x13}, uint8_t{0x00},
                        kTcpFin, uint8_t{0x29}, uint8_t{0x08}, uint8_t{0xff}}) {
    Pkt pk = tcp();
    pk.tcp_flags = flags;
    const Result r = parse(test::build(pk));
    ASSERT_FALSE(r.ok) << std::hex << int(flags);
    EXPECT_EQ(r.why, DropReason::kBadTcpFlags) << std::hex << int(flags);
  }
  for (uint8_t flags : {kTcpSyn, uint8_t{kTcpSyn | kTcpAck}, kTcpAck, kTcpRst,
                        uint8_t{kTcpRst | kTcpAck}, uint8_t{kTcpFin | kTcpAck}}) {
    Pkt pk = tcp();
    pk.tcp_flags = flags;
    EXPECT_TRUE(parse(test::build(pk)).ok) << std::hex << int(flags);
  }
}

TEST(ParseSanity, L4ChecksumVerification) {
  for (Pkt pk : {tcp("hello"), udp("query"), udp("odd")}) {
    Frame f = test::build(pk);
    const uint8_t* ip = &f[14];
    const uint32_t l4_len = static_cast<uint32_t>(f.size() - 34);
    EXPECT_TRUE(l4_csum_ok(ip, ip + 20, l4_len, pk.proto));
    f.back() ^= 0x40;  // one payload bit
    EXPECT_FALSE(l4_csum_ok(ip, ip + 20, l4_len, pk.proto));
    f.back() ^= 0x40;
    f[14 + 12] ^= 0x01;  // the pseudo-header's source address
    EXPECT_FALSE(l4_csum_ok(ip, ip + 20, l4_len, pk.proto));
  }
  Pkt pk = udp("none");
  pk.udp_zero_csum = true;  // IPv4 UDP may send no checksum
  Frame f = test::build(pk);
  EXPECT_TRUE(l4_csum_ok(&f[14], &f[34], static_cast<uint32_t>(f.size() - 34), 17));
}

}  // namespace
}  // namespace rondo::dp
