// parse_frame: well-formed frames give the right kind, offsets, key and flags; every
// malformed frame is rejected with the DropReason it is counted under. Each frame is
// copied into a buffer of exactly its length, so a read past the end shows up under ASan.
#include "dataplane/pkt/parse.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <memory>
#include <optional>
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
  EXPECT_EQ(r.p.vid, 100);
  EXPECT_EQ(r.p.kind, PktKind::kIpv4Tcp);
  EXPECT_EQ(r.p.l3_off, 18);
  EXPECT_EQ(r.p.l4_off, 38);
  EXPECT_EQ(r.p.ip_len, 41);
  EXPECT_EQ(r.p.key, key_of(pk));
}

// The VID is the TCI's low 12 bits: the priority (PCP, 3 bits) and DEI (1 bit) above it
// name no interface. VID 0 is a priority tag: tagged bytes, the untagged interface's frame.
TEST(ParseTest, VidIsTheTagsLow12Bits) {
  struct Case {
    uint16_t tci;
    uint16_t vid;
  };
  for (Case c : {Case{0x0064, 100}, Case{0xe064, 100}, Case{0x1064, 100}, Case{0xffff, 4095},
                 Case{0x0001, 1}, Case{0xa000, 0}, Case{0x0000, 0}}) {
    Pkt pk = tcp("x");
    pk.vlan = c.tci;
    const Result r = parse(test::build(pk));
    ASSERT_TRUE(r.ok) << std::hex << c.tci;
    EXPECT_TRUE(r.p.vlan) << std::hex << c.tci;
    EXPECT_EQ(r.p.vid, c.vid) << std::hex << c.tci;
    EXPECT_EQ(r.p.l3_off, 18) << std::hex << c.tci;  // a priority tag is still 4 bytes
    EXPECT_EQ(r.p.key, key_of(pk));
  }
  Arp a;
  a.sip = kClient;
  a.tip = kVip;
  a.vlan = 0x60c8;  // PCP 3, VID 200
  a.pad_to = 64;
  Result r = parse(test::build(a));
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.p.vid, 200);
  // Untagged: no VID, even in a Parsed that held a tagged frame's.
  const Frame untagged = test::build(tcp("x"));
  ASSERT_TRUE(parse_frame(untagged.data(), static_cast<uint32_t>(untagged.size()), &r.p, &r.why));
  EXPECT_FALSE(r.p.vlan);
  EXPECT_EQ(r.p.vid, 0);
}

// QinQ (802.1ad: an S-tag 0x88a8 in front of a C-tag, or two 802.1Q tags) is refused whole,
// as is a lone S-tag: an interface is a port and one VID.
TEST(ParseTest, QinQIsUnsupported) {
  Pkt pk = tcp("x");
  pk.vlan = 0x0064;
  const Frame c_tagged = test::build(pk);
  for (uint16_t outer : {uint16_t{0x88a8}, uint16_t{0x8100}}) {
    Frame f = c_tagged;
    const uint8_t s_tag[4] = {static_cast<uint8_t>(outer >> 8), static_cast<uint8_t>(outer), 0x00, 0xc8};
    f.insert(f.begin() + 12, s_tag, s_tag + 4);  // outer tag (VID 200), then the C-tag
    Result r = parse(f);
    ASSERT_FALSE(r.ok) << std::hex << outer;
    EXPECT_EQ(r.why, DropReason::kUnsupportedL3) << std::hex << outer;
  }
  Frame s_only = c_tagged;
  put16(s_only, 12, 0x88a8);
  const Result r = parse(s_only);
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.why, DropReason::kUnsupportedL3);
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

TEST(ParseTest, FragmentsAreDescribed) {
  // MF alone (first fragment), an offset alone (last fragment), both (middle), with DF noise:
  // reported as fragments for the reassembly, addresses, protocol and identification set,
  // ports zero, the data not looked at (a TCP header of 20 bytes + 4 bytes of data: 24, a
  // multiple of 8 as every fragment but the last must carry).
  for (uint16_t frag : {uint16_t{0x2000}, uint16_t{0x0001}, uint16_t{0x1ffa}, uint16_t{0x2001},
                        uint16_t{0x00b9}, uint16_t{0x6000}, uint16_t{0x4001}}) {
    for (uint8_t proto : {uint8_t{6}, uint8_t{17}, uint8_t{1}}) {
      Pkt pk = tcp("abcd");
      pk.proto = 6;
      pk.frag = frag;
      Frame f = test::build(pk);
      f[14 + 9] = proto;  // the first fragment's header says what the datagram carries
      fix_ip_csum(f);
      const Result r = parse(f);
      ASSERT_TRUE(r.ok) << std::hex << frag << " " << static_cast<int>(r.why);
      EXPECT_EQ(r.p.kind, PktKind::kIpv4Frag);
      EXPECT_FALSE(is_ipv6(r.p.kind));
      EXPECT_EQ(r.p.key.src_ip, htonl(kClient));
      EXPECT_EQ(r.p.key.dst_ip, htonl(kVip));
      EXPECT_EQ(r.p.key.proto, proto);
      EXPECT_EQ(r.p.key.src_port, 0);
      EXPECT_EQ(r.p.key.dst_port, 0);
      EXPECT_EQ(r.p.frag_id, htonl(0x1234));
      EXPECT_EQ(r.p.l4_off, 14 + 20);
      EXPECT_EQ(r.p.ip_len, 20 + 24);
    }
  }
  // Not a multiple of 8 with more to come; past 65535 bytes of datagram; no data at all.
  Pkt pk = tcp("abc");
  pk.frag = 0x2000;
  EXPECT_EQ(parse(test::build(pk)).why, DropReason::kFragInvalid);
  pk.frag = 0x0001;  // the last fragment may be any length
  EXPECT_TRUE(parse(test::build(pk)).ok);
  pk = tcp("abcd");
  pk.frag = 0x1fff;  // 65528 + 24 > 65535 - 20
  EXPECT_EQ(parse(test::build(pk)).why, DropReason::kFragInvalid);
  pk.frag = 0x1ffc;  // 65504 + 24 + 20 = 65548
  EXPECT_EQ(parse(test::build(pk)).why, DropReason::kFragInvalid);
  pk.frag = 0x1ffa;  // 65488 + 24 + 20 = 65532
  EXPECT_TRUE(parse(test::build(pk)).ok);
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

TEST(ParseTest, OtherEthertypesAreUnsupported) {
  for (uint16_t type : {uint16_t{0x88cc}, uint16_t{0x8847}, uint16_t{0x86de}, uint16_t{0x0000}}) {
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

// ---- IPv6 ----
// Frames built here byte by byte (RFC 8200 layouts), checksums from scratch with test::sum16
// over a pseudo-header written out as bytes, never with the code under test.

namespace rondo::dp {
namespace {

using Ip16 = std::array<uint8_t, 16>;

Ip16 ip6(const char* s) {
  Ip16 a{};
  EXPECT_EQ(inet_pton(AF_INET6, s, a.data()), 1) << s;
  return a;
}

const Ip16 kClient6 = ip6("2001:db8:100::2");
const Ip16 kVip6 = ip6("2001:db8::10");

// One extension header, whole: byte 0 (its next header) is filled in by build6.
struct Hdr6 {
  uint8_t type;
  std::vector<uint8_t> bytes;
};

// A hop-by-hop (0) or destination options (60) header holding `tlvs`, padded with Pad1/PadN
// to a multiple of 8 bytes.
Hdr6 opts_hdr(uint8_t type, std::vector<uint8_t> tlvs) {
  std::vector<uint8_t> b{0, 0};
  b.insert(b.end(), tlvs.begin(), tlvs.end());
  const size_t pad = (8 - b.size() % 8) % 8;
  if (pad == 1) b.push_back(0);
  if (pad >= 2) {
    b.push_back(1);
    b.push_back(static_cast<uint8_t>(pad - 2));
    b.resize(b.size() + pad - 2, 0);
  }
  b[1] = static_cast<uint8_t>(b.size() / 8 - 1);
  return {type, b};
}
Hdr6 hbh(std::vector<uint8_t> tlvs = {}) { return opts_hdr(0, std::move(tlvs)); }
Hdr6 dest_opts(std::vector<uint8_t> tlvs = {}) { return opts_hdr(60, std::move(tlvs)); }

// A routing header (43) of 24 bytes: type, segments left, 4 reserved bytes, one address.
Hdr6 routing(uint8_t rtype, uint8_t segments_left) {
  std::vector<uint8_t> b(24, 0);
  b[1] = 2;
  b[2] = rtype;
  b[3] = segments_left;
  const Ip16 a = ip6("2001:db8::99");
  std::memcpy(&b[8], a.data(), 16);
  return {43, b};
}

// A fragment header (44): offset and M flag as given, identification 0x01020304.
Hdr6 fragment(uint16_t offset_and_m) {
  return {44, {0, 0, static_cast<uint8_t>(offset_and_m >> 8), static_cast<uint8_t>(offset_and_m),
               1, 2, 3, 4}};
}

struct Pkt6 {
  std::optional<uint16_t> vlan;
  Ip16 src = kClient6, dst = kVip6;
  uint8_t hop_limit = 61;
  uint8_t proto = 6;  // upper layer: 6 tcp, 17 udp, 58 icmpv6, anything else: payload only
  uint16_t sport = 41000, dport = 80;
  uint8_t tcp_flags = kTcpSyn;
  uint8_t icmp_type = 128, icmp_code = 0;
  bool udp_zero_csum = false;
  std::string payload;
  std::vector<Hdr6> ext;
  size_t pad_to = 0;
};

// The upper-layer checksum as RFC 8200 8.1 defines it: pseudo-header bytes (source,
// destination, 32-bit upper-layer length, 3 zero bytes, next header) then the packet.
uint16_t csum6_from_scratch(const Ip16& src, const Ip16& dst, uint8_t nh, const uint8_t* l4,
                            size_t n) {
  std::vector<uint8_t> ph(40, 0);
  std::memcpy(&ph[0], src.data(), 16);
  std::memcpy(&ph[16], dst.data(), 16);
  ph[32] = static_cast<uint8_t>(n >> 24);
  ph[33] = static_cast<uint8_t>(n >> 16);
  ph[34] = static_cast<uint8_t>(n >> 8);
  ph[35] = static_cast<uint8_t>(n);
  ph[39] = nh;
  return test::fold(test::sum16(l4, n, test::sum16(ph.data(), ph.size())));
}

Frame build6(const Pkt6& p) {
  Frame f;
  const size_t l3 = test::put_eth(f, {0x02, 0, 0, 0, 0, 0x01}, {0x02, 0, 0, 0, 0, 0x02}, p.vlan,
                                  0x86dd);
  // Upper-layer packet.
  Frame l4;
  if (p.proto == 6) {
    l4.resize(20);
    put16(l4, 0, p.sport);
    put16(l4, 2, p.dport);
    test::put32(l4, 4, 1000);
    l4[12] = 5 << 4;
    l4[13] = p.tcp_flags;
    put16(l4, 14, 65535);
  } else if (p.proto == 17) {
    l4.resize(8);
    put16(l4, 0, p.sport);
    put16(l4, 2, p.dport);
    put16(l4, 4, static_cast<uint16_t>(8 + p.payload.size()));
  } else if (p.proto == 58) {
    l4 = {p.icmp_type, p.icmp_code, 0, 0, 0, 7, 0, 1};  // echo: id 7, seq 1
  }
  l4.insert(l4.end(), p.payload.begin(), p.payload.end());
  const size_t csum_at = p.proto == 6 ? 16 : p.proto == 17 ? 6 : p.proto == 58 ? 2 : 0;
  if (csum_at) {
    uint16_t c = csum6_from_scratch(p.src, p.dst, p.proto, l4.data(), l4.size());
    if (p.proto == 17 && c == 0) c = 0xffff;
    if (p.udp_zero_csum) c = 0;
    put16(l4, csum_at, c);
  }
  // Extension headers, each naming the next.
  Frame ext;
  for (size_t i = 0; i < p.ext.size(); ++i) {
    Frame h(p.ext[i].bytes.begin(), p.ext[i].bytes.end());
    h[0] = i + 1 < p.ext.size() ? p.ext[i + 1].type : p.proto;
    ext.insert(ext.end(), h.begin(), h.end());
  }
  f.resize(l3 + 40);
  f[l3] = 0x60;
  f[l3 + 1] = 0x0a;  // traffic class and flow label: not looked at
  f[l3 + 3] = 0x42;
  put16(f, l3 + 4, static_cast<uint16_t>(ext.size() + l4.size()));
  f[l3 + 6] = p.ext.empty() ? p.proto : p.ext[0].type;
  f[l3 + 7] = p.hop_limit;
  std::memcpy(&f[l3 + 8], p.src.data(), 16);
  std::memcpy(&f[l3 + 24], p.dst.data(), 16);
  f.insert(f.end(), ext.begin(), ext.end());
  f.insert(f.end(), l4.begin(), l4.end());
  if (f.size() < p.pad_to) f.resize(p.pad_to, 0);
  return f;
}

Pkt6 tcp6(const std::string& payload = "") {
  Pkt6 p;
  p.payload = payload;
  return p;
}
Pkt6 udp6(const std::string& payload = "") {
  Pkt6 p;
  p.proto = 17;
  p.sport = 5353;
  p.dport = 53;
  p.payload = payload;
  return p;
}
Pkt6 icmp6(uint8_t type, const std::string& payload = "") {
  Pkt6 p;
  p.proto = 58;
  p.icmp_type = type;
  p.payload = payload;
  return p;
}

// Expected key of a packet built from pk (network order, padding zero).
FlowKey6 key6_of(const Pkt6& pk) {
  FlowKey6 k;
  std::memcpy(k.src_ip, pk.src.data(), 16);
  std::memcpy(k.dst_ip, pk.dst.data(), 16);
  if (pk.proto == 6 || pk.proto == 17) {
    k.src_port = htons(pk.sport);
    k.dst_port = htons(pk.dport);
  }
  k.proto = pk.proto;
  return k;
}

DropReason why6(const Pkt6& pk) {
  const Result r = parse(build6(pk));
  EXPECT_FALSE(r.ok);
  return r.ok ? DropReason::kCount : r.why;
}

// ---- well-formed IPv6 ----

TEST(Parse6, TcpSegment) {
  const Pkt6 pk = tcp6("hello");
  const Result r = parse(build6(pk));
  ASSERT_TRUE(r.ok) << static_cast<int>(r.why);
  EXPECT_EQ(r.p.kind, PktKind::kIpv6Tcp);
  EXPECT_TRUE(is_ipv6(r.p.kind));
  EXPECT_FALSE(r.p.vlan);
  EXPECT_EQ(r.p.l3_off, 14);
  EXPECT_EQ(r.p.l4_off, 14 + 40);
  EXPECT_EQ(r.p.ext_len, 0);
  EXPECT_EQ(r.p.ip_len, 40 + 20 + 5);
  EXPECT_EQ(r.p.l4_len(), 20u + 5);
  EXPECT_EQ(r.p.ttl, 61);
  EXPECT_EQ(r.p.tcp_flags, kTcpSyn);
  EXPECT_EQ(r.p.key6, key6_of(pk));
  EXPECT_EQ(r.p.key6.src_port, htons(41000));
  EXPECT_EQ(r.p.key6.dst_port, htons(80));
  EXPECT_EQ(r.p.key6.proto, 6);
  EXPECT_EQ(r.p.key, FlowKey{});  // the v4 key stays zero
}

TEST(Parse6, UdpDatagram) {
  const Pkt6 pk = udp6("query");
  const Result r = parse(build6(pk));
  ASSERT_TRUE(r.ok) << static_cast<int>(r.why);
  EXPECT_EQ(r.p.kind, PktKind::kIpv6Udp);
  EXPECT_EQ(r.p.l4_off, 54);
  EXPECT_EQ(r.p.ip_len, 40 + 8 + 5);
  EXPECT_EQ(r.p.l4_len(), 13u);
  EXPECT_EQ(r.p.tcp_flags, 0);
  EXPECT_EQ(r.p.key6, key6_of(pk));
}

TEST(Parse6, IcmpEcho) {
  const Pkt6 pk = icmp6(128, "ping");
  const Result r = parse(build6(pk));
  ASSERT_TRUE(r.ok) << static_cast<int>(r.why);
  EXPECT_EQ(r.p.kind, PktKind::kIpv6Icmp);
  EXPECT_EQ(r.p.l4_off, 54);
  EXPECT_EQ(r.p.l4_len(), 12u);
  EXPECT_EQ(r.p.key6, key6_of(pk));
  EXPECT_EQ(r.p.key6.src_port, 0);
  EXPECT_EQ(r.p.key6.dst_port, 0);
  EXPECT_EQ(r.p.key6.proto, 58);
  EXPECT_TRUE(parse(build6(icmp6(129))).ok);  // echo reply
}

TEST(Parse6, NeighbourSolicitationFromUnspecifiedIsAccepted) {
  // DAD (RFC 4862 5.4.2): from ::, to the target's solicited-node group, hop limit 255.
  Pkt6 pk = icmp6(135);
  pk.src = Ip16{};
  pk.dst = ip6("ff02::1:ff00:10");
  pk.hop_limit = 255;
  pk.payload = std::string(16, '\0');  // reserved 4 (the builder's id/seq) + target 16
  const Result r = parse(build6(pk));
  ASSERT_TRUE(r.ok) << static_cast<int>(r.why);
  EXPECT_EQ(r.p.kind, PktKind::kIpv6Icmp);
  EXPECT_EQ(r.p.ttl, 255);
  EXPECT_EQ(r.p.key6, key6_of(pk));
}

TEST(Parse6, LinkLocalIcmpIsAccepted) {
  for (uint8_t type : {uint8_t{135}, uint8_t{136}, uint8_t{1}, uint8_t{2}, uint8_t{128}}) {
    Pkt6 pk = icmp6(type, std::string(16, 'x'));
    pk.src = ip6("fe80::1");
    const Result r = parse(build6(pk));
    ASSERT_TRUE(r.ok) << int(type) << " " << static_cast<int>(r.why);
    EXPECT_EQ(r.p.kind, PktKind::kIpv6Icmp);
  }
}

TEST(Parse6, ExtensionHeadersAreWalked) {
  // HBH (Router Alert, type 5, and an unknown option with action bits 00) + destination
  // options (PadN) + routing type 2 with no segments left, then TCP.
  Pkt6 pk = tcp6("data");
  pk.ext = {hbh({0x05, 0x02, 0x00, 0x00, 0x1e, 0x01, 0xaa}), dest_opts({0x01, 0x02, 0, 0}),
            routing(2, 0)};
  const Frame f = build6(pk);
  const uint32_t ext = 16 + 8 + 24;
  ASSERT_EQ(pk.ext[0].bytes.size(), 16u);
  ASSERT_EQ(pk.ext[1].bytes.size(), 8u);
  Result r = parse(f);
  ASSERT_TRUE(r.ok) << static_cast<int>(r.why);
  EXPECT_EQ(r.p.kind, PktKind::kIpv6Tcp);
  EXPECT_EQ(r.p.ext_len, ext);
  EXPECT_EQ(r.p.l4_off, 14 + 40 + ext);
  EXPECT_EQ(r.p.ip_len, 40 + ext + 20 + 4);
  EXPECT_EQ(r.p.l4_len(), 24u);  // the upper-layer length, extension headers excluded
  EXPECT_EQ(r.p.key6, key6_of(pk));
  EXPECT_EQ(r.p.tcp_flags, kTcpSyn);

  // Each alone, and the other upper layers behind them.
  for (const Hdr6& h : {hbh(), dest_opts(), routing(3, 0), routing(4, 0), hbh({0x00})}) {
    for (Pkt6 q : {tcp6("a"), udp6("bb"), icmp6(128, "c")}) {
      q.ext = {h};
      r = parse(build6(q));
      ASSERT_TRUE(r.ok) << int(h.type) << "/" << int(q.proto) << ": " << static_cast<int>(r.why);
      EXPECT_EQ(r.p.ext_len, h.bytes.size());
      EXPECT_EQ(r.p.l4_off, 54 + h.bytes.size());
      EXPECT_EQ(r.p.key6, key6_of(q));
    }
  }
  // Destination options may come twice (before and after a routing header, RFC 8200 4.1).
  pk.ext = {hbh(), dest_opts(), routing(4, 0), dest_opts({0x3e, 0x00})};
  r = parse(build6(pk));
  ASSERT_TRUE(r.ok) << static_cast<int>(r.why);
  EXPECT_EQ(r.p.ext_len, 8 + 8 + 24 + 8);
}

TEST(Parse6, EightExtensionHeadersWithin256Bytes) {
  Pkt6 pk = udp6("x");
  pk.ext.assign(8, dest_opts());
  Result r = parse(build6(pk));
  ASSERT_TRUE(r.ok) << static_cast<int>(r.why);
  EXPECT_EQ(r.p.ext_len, 64);
  EXPECT_EQ(r.p.l4_off, 54 + 64);

  // 248 + 8 = 256 bytes: the last header ends exactly at the limit.
  pk.ext = {dest_opts(std::vector<uint8_t>(244, 0)), dest_opts()};
  ASSERT_EQ(pk.ext[0].bytes.size(), 248u);
  r = parse(build6(pk));
  ASSERT_TRUE(r.ok) << static_cast<int>(r.why);
  EXPECT_EQ(r.p.ext_len, 256);
  EXPECT_EQ(r.p.l4_off, 54 + 256);
  EXPECT_EQ(r.p.key6, key6_of(pk));
}

TEST(Parse6, OtherUpperLayersAreWellFormed) {
  // AH, ESP, no next header, GRE, IPv4-in-IPv6: the pipeline decides (as for IPv4's others).
  for (uint8_t proto : {uint8_t{51}, uint8_t{50}, uint8_t{59}, uint8_t{47}, uint8_t{4}}) {
    Pkt6 pk;
    pk.proto = proto;
    pk.payload = std::string(16, 'p');
    Result r = parse(build6(pk));
    ASSERT_TRUE(r.ok) << int(proto);
    EXPECT_EQ(r.p.kind, PktKind::kIpv6Other) << int(proto);
    EXPECT_EQ(r.p.key6.proto, proto);
    EXPECT_EQ(r.p.l4_off, 54);
    EXPECT_EQ(0, std::memcmp(r.p.key6.src_ip, kClient6.data(), 16));

    pk.ext = {dest_opts()};
    r = parse(build6(pk));
    ASSERT_TRUE(r.ok) << int(proto);
    EXPECT_EQ(r.p.kind, PktKind::kIpv6Other);
    EXPECT_EQ(r.p.key6.proto, proto);
    EXPECT_EQ(r.p.l4_off, 62);
  }
  // No next header with nothing after it: an empty payload.
  Pkt6 pk;
  pk.proto = 59;
  const Result r = parse(build6(pk));
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.p.ip_len, 40);
  EXPECT_EQ(r.p.l4_len(), 0u);
}

TEST(Parse6, VlanTagged) {
  Pkt6 pk = tcp6("xy");
  pk.vlan = 0x2064;
  pk.ext = {dest_opts()};
  const Result r = parse(build6(pk));
  ASSERT_TRUE(r.ok) << static_cast<int>(r.why);
  EXPECT_TRUE(r.p.vlan);
  EXPECT_EQ(r.p.vid, 100);
  EXPECT_EQ(r.p.kind, PktKind::kIpv6Tcp);
  EXPECT_EQ(r.p.l3_off, 18);
  EXPECT_EQ(r.p.l4_off, 18 + 40 + 8);
  EXPECT_EQ(r.p.ext_len, 8);
  EXPECT_EQ(r.p.ip_len, 40 + 8 + 22);
  EXPECT_EQ(r.p.key6, key6_of(pk));
}

TEST(Parse6, EthernetPaddingAfterTheDatagram) {
  Pkt6 pk = udp6("a");
  pk.pad_to = 90;
  Frame f = build6(pk);
  ASSERT_EQ(f.size(), 90u);
  for (size_t i = 14 + 49; i < f.size(); ++i) f[i] = 0xee;
  Result r = parse(f);
  ASSERT_TRUE(r.ok) << static_cast<int>(r.why);
  EXPECT_EQ(r.p.ip_len, 49);
  EXPECT_EQ(r.p.l4_len(), 9u);
  EXPECT_EQ(r.p.key6, key6_of(pk));

  Pkt6 t = tcp6();
  t.pad_to = 128;
  r = parse(build6(t));
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.p.ip_len, 60);
  EXPECT_EQ(r.p.kind, PktKind::kIpv6Tcp);
}

// ---- malformed IPv6 ----

TEST(Parse6, EveryPrefixOfAFrameWithExtensionHeaders) {
  Pkt6 pk = tcp6("0123456789");
  pk.ext = {hbh(), routing(4, 0), dest_opts()};
  for (bool tagged : {false, true}) {
    if (tagged) pk.vlan = 3;
    const Frame f = build6(pk);
    const size_t l2 = tagged ? 18 : 14;
    for (size_t n = 0; n < f.size(); ++n) {
      const Result r = parse(f, n);
      ASSERT_FALSE(r.ok) << "prefix " << n;
      EXPECT_EQ(r.why, n < l2 ? DropReason::kMalformedL2 : DropReason::kMalformedL3) << n;
    }
    EXPECT_TRUE(parse(f).ok);
  }
}

TEST(Parse6, VersionOtherThanSixInAnIpv6Ethertype) {
  for (uint8_t v = 0; v < 16; ++v) {
    if (v == 6) continue;
    Frame f = build6(tcp6());
    f[14] = static_cast<uint8_t>(v << 4 | (f[14] & 0x0f));
    const Result r = parse(f);
    ASSERT_FALSE(r.ok) << int(v);
    EXPECT_EQ(r.why, DropReason::kMalformedL3) << int(v);
  }
  // An IPv4 datagram under the IPv6 ethertype.
  Pkt pk = tcp();
  Frame f = test::build(pk);
  put16(f, 12, 0x86dd);
  const Result r = parse(f);
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.why, DropReason::kMalformedL3);
}

TEST(Parse6, PayloadLengthLargerThanTheFrame) {
  Frame f = build6(tcp6("abcd"));
  put16(f, 18, static_cast<uint16_t>(f.size() - 54 + 1));
  Result r = parse(f);
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.why, DropReason::kMalformedL3);
  put16(f, 18, 1460);  // a datagram of exactly an Ethernet MTU, cut: malformed
  r = parse(f);
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.why, DropReason::kMalformedL3);
  put16(f, 18, 1461);  // longer than an MTU and cut: a GSO super-frame, as for IPv4
  r = parse(f);
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.why, DropReason::kGsoFrame);
  put16(f, 18, static_cast<uint16_t>(f.size() - 54));
  EXPECT_TRUE(parse(f).ok);
}

TEST(Parse6, TruncatedExtensionHeaderInsideAConsistentDatagram) {
  // The payload length agrees with the frame; the header claims more than the payload holds.
  Pkt6 pk;
  pk.proto = 59;
  pk.ext = {dest_opts()};
  Frame f = build6(pk);  // 8 bytes of payload: the destination options header
  ASSERT_EQ(f.size(), 62u);
  f[55] = 1;  // 16 bytes
  Result r = parse(f);
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.why, DropReason::kMalformedL3);
  // One byte of payload where a header is named: not even its length field.
  Frame g(f.begin(), f.begin() + 55);
  put16(g, 18, 1);
  r = parse(g);
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.why, DropReason::kMalformedL3);
  // The chain ends in the header named after the last one, which is cut.
  Pkt6 q = tcp6();
  q.ext = {dest_opts(), dest_opts()};
  f = build6(q);
  Frame h(f.begin(), f.begin() + 54 + 8 + 1);
  put16(h, 18, 9);
  r = parse(h);
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.why, DropReason::kMalformedL3);
}

TEST(Parse6, OptionOverrunningItsHeaderIsMalformed) {
  for (uint8_t type : {uint8_t{0}, uint8_t{60}}) {
    Pkt6 pk = udp6("z");
    pk.ext = {opts_hdr(type, {0x1e, 0x04, 1, 2, 3, 4})};  // fills the 8 bytes exactly
    Frame f = build6(pk);
    ASSERT_TRUE(parse(f).ok);
    f[54 + 3] = 5;  // one byte past the header
    Result r = parse(f);
    ASSERT_FALSE(r.ok) << int(type);
    EXPECT_EQ(r.why, DropReason::kMalformedL3) << int(type);
    f[54 + 3] = 4;
    f[54 + 2] = 1;  // PadN whose length runs out too (kept with PadN's type)
    f[54 + 3] = 0xff;
    r = parse(f);
    ASSERT_FALSE(r.ok) << int(type);
    EXPECT_EQ(r.why, DropReason::kMalformedL3) << int(type);
  }
  // An option type in the header's last byte, with no room for its length.
  Pkt6 pk = udp6("z");
  pk.ext = {dest_opts({0, 0, 0, 0, 0, 0x1e})};
  ASSERT_EQ(pk.ext[0].bytes.size(), 8u);
  const Result r = parse(build6(pk));
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.why, DropReason::kMalformedL3);
}

TEST(Parse6, MartianSourcesAreDropped) {
  for (const char* src : {"::1", "ff02::1", "ff05::2", "::ffff:198.51.100.2", "::ffff:0.0.0.0"}) {
    for (Pkt6 pk : {tcp6(), udp6("x"), icmp6(128), icmp6(135, std::string(16, 0))}) {
      pk.src = ip6(src);
      EXPECT_EQ(why6(pk), DropReason::kMartianSource) << src << " proto " << int(pk.proto);
    }
  }
  // The unspecified address: only a neighbour solicitation may come from it.
  for (Pkt6 pk : {tcp6(), udp6("x"), icmp6(128), icmp6(136, std::string(16, 0)), icmp6(1)}) {
    pk.src = Ip16{};
    EXPECT_EQ(why6(pk), DropReason::kMartianSource) << int(pk.proto) << "/" << int(pk.icmp_type);
  }
  for (const char* src : {"2001:db8::1", "::2", "::fffe:1:2", "fec0::1", "fc00::1", "64:ff9b::1"}) {
    Pkt6 pk = tcp6();
    pk.src = ip6(src);
    EXPECT_TRUE(parse(build6(pk)).ok) << src;
  }
}

TEST(Parse6, LinkLocalSourceOnlyForIcmp) {
  for (const char* src : {"fe80::1", "fe80::200:ff:fe00:2", "febf:ffff::1"}) {
    for (Pkt6 pk : {tcp6(), udp6("x")}) {
      pk.src = ip6(src);
      EXPECT_EQ(why6(pk), DropReason::kMartianSource) << src << " proto " << int(pk.proto);
    }
    Pkt6 other;
    other.proto = 47;
    other.src = ip6(src);
    EXPECT_EQ(why6(other), DropReason::kMartianSource) << src;
  }
  // fec0::/10 is not link-local.
  Pkt6 pk = tcp6();
  pk.src = ip6("fec0::1");
  EXPECT_TRUE(parse(build6(pk)).ok);
}

TEST(Parse6, OptionsRondoMustNotSkip) {
  // Action bits 01 (discard), 10 and 11 (discard and send an ICMP error); the jumbo payload
  // option (0xc2) is 11. In either options header, wherever in it.
  for (uint8_t type : {uint8_t{0}, uint8_t{60}}) {
    for (uint8_t opt : {uint8_t{0x40}, uint8_t{0x7f}, uint8_t{0x80}, uint8_t{0xc2}, uint8_t{0xff},
                        uint8_t{0xde}}) {
      Pkt6 pk = tcp6();
      pk.ext = {opts_hdr(type, {0x01, 0x00, opt, 0x02, 0, 0})};
      EXPECT_EQ(why6(pk), DropReason::kIpv6BadOption) << int(type) << " opt " << int(opt);
      pk.ext = {opts_hdr(type, {opt, 0x04, 0, 0, 0, 0})};
      EXPECT_EQ(why6(pk), DropReason::kIpv6BadOption) << int(type) << " opt " << int(opt);
    }
  }
  // Behind another header too.
  Pkt6 pk = udp6("u");
  pk.ext = {hbh(), routing(4, 0), dest_opts({0x80, 0x00})};
  EXPECT_EQ(why6(pk), DropReason::kIpv6BadOption);
}

TEST(Parse6, RoutingHeaders) {
  for (uint8_t sl : {uint8_t{0}, uint8_t{1}, uint8_t{255}}) {
    Pkt6 pk = tcp6();
    pk.ext = {routing(0, sl)};
    EXPECT_EQ(why6(pk), DropReason::kIpv6RoutingType0) << int(sl);
  }
  for (uint8_t rtype : {uint8_t{2}, uint8_t{3}, uint8_t{4}, uint8_t{253}}) {
    for (uint8_t sl : {uint8_t{1}, uint8_t{2}, uint8_t{200}}) {
      Pkt6 pk = udp6("r");
      pk.ext = {dest_opts(), routing(rtype, sl)};
      EXPECT_EQ(why6(pk), DropReason::kIpv6RoutingHeader) << int(rtype) << "/" << int(sl);
    }
    Pkt6 pk = udp6("r");
    pk.ext = {routing(rtype, 0)};
    EXPECT_TRUE(parse(build6(pk)).ok) << int(rtype);
  }
}

TEST(Parse6, FragmentsAreDescribed) {
  // M with offset 0 (first), offset alone (last), both (middle): a fragment, its next header
  // the key's protocol, l4_off past the fragment header; "f" + UDP header = 9 bytes is fine
  // for a last fragment only.
  for (uint16_t om : {uint16_t{0x0001}, uint16_t{0x0008}, uint16_t{0x0009}}) {
    for (bool before : {false, true}) {
      Pkt6 pk = udp6((om & 1) ? "fragment" : "f");
      pk.ext = before ? std::vector<Hdr6>{hbh(), dest_opts(), fragment(om)}
                      : std::vector<Hdr6>{fragment(om)};
      const uint16_t ext = before ? 8 + 8 + 8 : 8;
      const Result r = parse(build6(pk));
      ASSERT_TRUE(r.ok) << om << " " << static_cast<int>(r.why);
      EXPECT_EQ(r.p.kind, PktKind::kIpv6Frag);
      EXPECT_TRUE(is_ipv6(r.p.kind));
      EXPECT_EQ(r.p.ext_len, ext);
      EXPECT_EQ(r.p.l4_off, 14 + 40 + ext);
      EXPECT_EQ(r.p.key6.proto, 17);
      EXPECT_EQ(r.p.key6.src_port, 0);
      EXPECT_EQ(0, std::memcmp(r.p.key6.dst_ip, kVip6.data(), 16));
      EXPECT_EQ(r.p.frag_id, htonl(0x01020304));
    }
  }
  // An atomic fragment (offset 0, no M; RFC 6946) is the whole datagram.
  Pkt6 pk = udp6("f");
  pk.ext = {fragment(0)};
  Result r = parse(build6(pk));
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.p.kind, PktKind::kIpv6Udp);
  EXPECT_EQ(r.p.l4_off, 14 + 40 + 8);
  // More to come but not a multiple of 8 bytes.
  pk.ext = {fragment(0x0001)};
  EXPECT_EQ(why6(pk), DropReason::kFragInvalid);
}

TEST(Parse6, ExtensionChainLimits) {
  // Nine headers, each 8 bytes (72 in all, well within 256 bytes).
  Pkt6 pk = tcp6();
  pk.ext.assign(9, dest_opts());
  EXPECT_EQ(why6(pk), DropReason::kIpv6ExtChain);
  pk.ext.assign(20, dest_opts());
  EXPECT_EQ(why6(pk), DropReason::kIpv6ExtChain);
  // Two headers whose second ends past the first 256 bytes (248 + 16).
  pk.ext = {dest_opts(std::vector<uint8_t>(244, 0)), dest_opts(std::vector<uint8_t>(10, 0))};
  ASSERT_EQ(pk.ext[1].bytes.size(), 16u);
  EXPECT_EQ(why6(pk), DropReason::kIpv6ExtChain);
  // One header of 2,048 bytes (hdr ext len 255).
  pk.ext = {dest_opts(std::vector<uint8_t>(2040, 0))};
  ASSERT_EQ(pk.ext[0].bytes.size(), 2048u);
  EXPECT_EQ(why6(pk), DropReason::kIpv6ExtChain);
  // A hop-by-hop header anywhere but first.
  pk.ext = {dest_opts(), hbh()};
  EXPECT_EQ(why6(pk), DropReason::kIpv6ExtChain);
  pk.ext = {hbh(), hbh()};
  EXPECT_EQ(why6(pk), DropReason::kIpv6ExtChain);
}

TEST(Parse6, ShortUpperLayerHeaders) {
  struct Case {
    uint8_t proto;
    uint8_t icmp_type;
    size_t need;
  };
  for (Case c : {Case{6, 0, 20}, Case{17, 0, 8}, Case{58, 128, 8}, Case{58, 129, 8},
                 Case{58, 1, 4}, Case{58, 135, 4}}) {
    Pkt6 pk;
    pk.proto = c.proto;
    pk.icmp_type = c.icmp_type;
    pk.ext = {dest_opts()};
    const Frame full = build6(pk);
    for (size_t k = 0; k < c.need; ++k) {
      Frame f(full.begin(), full.begin() + 62 + k);
      put16(f, 18, static_cast<uint16_t>(8 + k));
      const Result r = parse(f);
      ASSERT_FALSE(r.ok) << int(c.proto) << "/" << int(c.icmp_type) << " l4 bytes " << k;
      EXPECT_EQ(r.why, DropReason::kMalformedL4) << int(c.proto) << " l4 bytes " << k;
    }
    if (c.proto == 58) {  // exactly the minimum
      Frame f(full.begin(), full.begin() + 62 + c.need);
      put16(f, 18, static_cast<uint16_t>(8 + c.need));
      EXPECT_TRUE(parse(f).ok) << int(c.icmp_type);
    }
  }
}

TEST(Parse6, TcpDataOffset) {
  for (uint8_t doff = 0; doff < 16; ++doff) {
    Pkt6 pk = tcp6("12345678");
    pk.ext = {hbh()};
    Frame f = build6(pk);
    f[62 + 12] = static_cast<uint8_t>(doff << 4);
    const Result r = parse(f);
    if (doff >= 5 && doff <= 7) {
      EXPECT_TRUE(r.ok) << int(doff);
    } else {
      ASSERT_FALSE(r.ok) << int(doff);
      EXPECT_EQ(r.why, DropReason::kMalformedL4) << int(doff);
    }
  }
}

TEST(Parse6, UdpLengthIsTheUpperLayerLength) {
  Pkt6 pk = udp6("abc");  // 11 bytes
  pk.ext = {dest_opts()};
  for (uint16_t ulen : {uint16_t{0}, uint16_t{7}, uint16_t{8}, uint16_t{10}, uint16_t{12},
                        uint16_t{19}, uint16_t{0xffff}}) {
    Frame f = build6(pk);
    put16(f, 62 + 4, ulen);
    const Result r = parse(f);
    ASSERT_FALSE(r.ok) << ulen;
    EXPECT_EQ(r.why, DropReason::kMalformedL4) << ulen;
  }
  // Ethernet padding is not UDP payload.
  pk.pad_to = 100;
  Frame f = build6(pk);
  ASSERT_TRUE(parse(f).ok);
  put16(f, 62 + 4, 12);
  const Result r = parse(f);
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.why, DropReason::kMalformedL4);
}

TEST(Parse6, PortZeroIsDropped) {
  for (Pkt6 pk : {tcp6(), udp6("x")}) {
    for (int which = 0; which < 2; ++which) {
      Pkt6 q = pk;
      (which ? q.sport : q.dport) = 0;
      EXPECT_EQ(why6(q), DropReason::kPortZero) << int(q.proto) << " " << which;
    }
  }
}

TEST(Parse6, NonsenseTcpFlagsAreDropped) {
  for (uint8_t flags : {uint8_t{0x03}, uint8_t{0x06}, uint8_t{0x00}, kTcpFin, uint8_t{0x29}}) {
    Pkt6 pk = tcp6();
    pk.tcp_flags = flags;
    EXPECT_EQ(why6(pk), DropReason::kBadTcpFlags) << std::hex << int(flags);
  }
  for (uint8_t flags : {kTcpAck, uint8_t{kTcpSyn | kTcpAck}, kTcpRst, uint8_t{kTcpFin | kTcpAck}}) {
    Pkt6 pk = tcp6();
    pk.tcp_flags = flags;
    const Result r = parse(build6(pk));
    ASSERT_TRUE(r.ok) << std::hex << int(flags);
    EXPECT_EQ(r.p.tcp_flags, flags);
  }
}

TEST(Parse6, UdpChecksumZeroIsRefused) {
  Pkt6 pk = udp6("none");
  pk.udp_zero_csum = true;
  EXPECT_EQ(why6(pk), DropReason::kBadL4Checksum);
  pk.ext = {dest_opts()};
  EXPECT_EQ(why6(pk), DropReason::kBadL4Checksum);
}

// The shared test builder's IPv6 frames (what fixtures feed the pipeline) parse as built.
TEST(Parse6, SharedBuilderFrames) {
  Pkt pk;
  pk.v6 = true;
  pk.src6 = kClient6;
  pk.dst6 = kVip6;
  pk.proto = 6;
  pk.sport = 41000;
  pk.dport = 80;
  pk.tcp_flags = kTcpSyn;
  pk.ttl = 33;
  pk.payload = "abc";
  pk.ext = {test::ext_options(0), test::ext_options(60, {0x1e, 0x00}), test::ext_routing(4, 0)};
  Frame f = test::build(pk);
  Result r = parse(f);
  ASSERT_TRUE(r.ok) << static_cast<int>(r.why);
  EXPECT_EQ(r.p.kind, PktKind::kIpv6Tcp);
  EXPECT_EQ(r.p.ext_len, 8 + 8 + 24);
  EXPECT_EQ(r.p.l4_off, 14 + 40 + 40);
  EXPECT_EQ(r.p.l4_len(), 23u);
  EXPECT_EQ(r.p.ttl, 33);
  EXPECT_EQ(0, std::memcmp(r.p.key6.dst_ip, kVip6.data(), 16));
  EXPECT_EQ(r.p.key6.dst_port, htons(80));
  EXPECT_TRUE(l4_csum_ok6(&f[14], &f[r.p.l4_off], r.p.l4_len(), 6));

  pk.ext = {test::ext_fragment(0, true)};  // a first fragment of 23 bytes: not a multiple of 8
  EXPECT_EQ(parse(test::build(pk)).why, DropReason::kFragInvalid);
  pk.payload = "abcd";  // 24
  pk.ext = {test::ext_fragment(0, true)};
  EXPECT_EQ(parse(test::build(pk)).p.kind, PktKind::kIpv6Frag);

  // DAD: an NS from :: to the solicited-node group, no SLLAO; and one from a link-local
  // address with SLLAO.
  test::Ndp ns;
  ns.eth_src = {0x02, 0, 0, 0, 0, 0x02};
  ns.target = kVip6;
  f = test::build(ns);
  r = parse(f);
  ASSERT_TRUE(r.ok) << static_cast<int>(r.why);
  EXPECT_EQ(r.p.kind, PktKind::kIpv6Icmp);
  EXPECT_EQ(r.p.l4_len(), 24u);
  EXPECT_TRUE(l4_csum_ok6(&f[14], &f[54], r.p.l4_len(), 58));
  ns.src6 = ip6("fe80::2");
  ns.lladdr = ns.eth_src;
  r = parse(test::build(ns));
  ASSERT_TRUE(r.ok) << static_cast<int>(r.why);
  EXPECT_EQ(r.p.l4_len(), 32u);
  // An NA from :: is no DAD message.
  ns.type = 136;
  ns.src6 = Ip16{};
  ns.dst6 = ip6("ff02::1");
  EXPECT_EQ(parse(test::build(ns)).why, DropReason::kMartianSource);
}

// ---- checksums ----

TEST(Csum6, PseudoHeaderSum) {
  // Against the pseudo-header written out as 40 bytes, lengths of 16 and 32 bits.
  const Ip16 src = ip6("2001:db8:100::2"), dst = ip6("fe80::abcd:ef01:2345:6789");
  for (uint32_t len : {0u, 20u, 1480u, 65535u, 65536u, 0x12345u, 0xfffffffeu}) {
    for (uint8_t nh : {uint8_t{6}, uint8_t{17}, uint8_t{58}}) {
      std::vector<uint8_t> ph(40, 0);
      std::memcpy(&ph[0], src.data(), 16);
      std::memcpy(&ph[16], dst.data(), 16);
      for (int i = 0; i < 4; ++i) ph[32 + i] = static_cast<uint8_t>(len >> (24 - 8 * i));
      ph[39] = nh;
      const uint16_t want = test::fold(test::sum16(ph.data(), ph.size()));
      EXPECT_EQ(static_cast<uint16_t>(~csum_fold64(csum_pseudo6(src.data(), dst.data(), len, nh))),
                want)
          << len << "/" << int(nh);
    }
  }
}

TEST(Csum6, L4ChecksumVerification) {
  for (Pkt6 pk : {tcp6("hello"), udp6("query"), udp6("odd"), icmp6(128, "ping"),
                  icmp6(135, std::string(16, 1))}) {
    for (bool with_ext : {false, true}) {
      if (with_ext) pk.ext = {hbh(), dest_opts({0x1e, 0x00}), routing(4, 0)};
      Frame f = build6(pk);
      const Result r = parse(f);
      ASSERT_TRUE(r.ok) << static_cast<int>(r.why);
      const uint8_t* ip = &f[14];
      const uint8_t* l4 = &f[r.p.l4_off];
      // The upper-layer length, not the payload length, when extension headers are there.
      EXPECT_EQ(r.p.l4_len(), f.size() - r.p.l4_off);
      EXPECT_TRUE(l4_csum_ok6(ip, l4, r.p.l4_len(), pk.proto)) << int(pk.proto) << with_ext;
      if (with_ext) {  // the pseudo-header shortcut (payload length) gets it wrong
        const uint64_t wrong = csum_pseudo6(ip + 8, ip + 24, r.p.ip_len - 40u, pk.proto) +
                               csum_sum(l4, r.p.l4_len());
        EXPECT_NE(csum_fold64(wrong), 0xffff);
      }
      f.back() ^= 0x40;  // one payload bit
      EXPECT_FALSE(l4_csum_ok6(ip, l4, r.p.l4_len(), pk.proto));
      f.back() ^= 0x40;
      f[14 + 8 + 15] ^= 0x01;  // the pseudo-header's source address
      EXPECT_FALSE(l4_csum_ok6(ip, l4, r.p.l4_len(), pk.proto));
      f[14 + 8 + 15] ^= 0x01;
      f[14 + 24 + 3] ^= 0x10;  // its destination address
      EXPECT_FALSE(l4_csum_ok6(ip, l4, r.p.l4_len(), pk.proto));
    }
  }
  // UDP without a checksum: fine in IPv4, never in IPv6.
  Pkt6 pk = udp6("none");
  pk.udp_zero_csum = true;
  const Frame f = build6(pk);
  EXPECT_FALSE(l4_csum_ok6(&f[14], &f[54], static_cast<uint32_t>(f.size() - 54), 17));
}

}  // namespace
}  // namespace rondo::dp
