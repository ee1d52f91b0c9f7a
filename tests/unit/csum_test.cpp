// Incremental checksums (RFC 1624) against a full recomputation, and FullNat::rewrite
// against a frame built from scratch with the new addresses, ports and TTL. Randomized
// with fixed seeds, so a failure reproduces.
#include "dataplane/pkt/csum.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "dataplane/fwd/fullnat.h"
#include "tests/common/packet_builder.h"

namespace rondo::dp {
namespace {

using test::Frame;
using test::Pkt;

constexpr size_t kCsumOff = 10;  // IPv4 header checksum

uint16_t load16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
uint32_t load32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// Full RFC 1071 checksum of an IPv4 header, checksum field taken as zero (network order).
uint16_t full_ip_csum(const uint8_t* h) {
  uint8_t copy[20];
  std::memcpy(copy, h, 20);
  copy[kCsumOff] = copy[kCsumOff + 1] = 0;
  return htons(test::fold(test::sum16(copy, 20)));
}

// A random IPv4-like header (version/IHL byte fixed, so the data is never all zero) with a
// correct checksum.
std::array<uint8_t, 20> random_header(std::mt19937& rng) {
  std::array<uint8_t, 20> h;
  for (auto& b : h) b = static_cast<uint8_t>(rng());
  h[0] = 0x45;
  const uint16_t c = full_ip_csum(h.data());
  std::memcpy(&h[kCsumOff], &c, 2);
  return h;
}

// Replacement values: plain random, with 0x0000 and 0xffff (both spellings of zero in
// one's complement) much more often than chance would give them.
uint16_t random16(std::mt19937& rng) {
  switch (rng() % 6) {
    case 0: return 0x0000;
    case 1: return 0xffff;
    default: return static_cast<uint16_t>(rng());
  }
}
uint32_t random32(std::mt19937& rng) {
  return static_cast<uint32_t>(random16(rng)) << 16 | random16(rng);
}

TEST(CsumTest, Replace16MatchesFullRecomputation) {
  std::mt19937 rng(1624);
  for (int iter = 0; iter < 20000; ++iter) {
    auto h = random_header(rng);
    // Several successive replacements, each applied incrementally to the previous result.
    const int n = 1 + static_cast<int>(rng() % 4);
    for (int j = 0; j < n; ++j) {
      size_t off;
      do off = 2 * (rng() % 10); while (off == kCsumOff);
      const uint16_t from = load16(&h[off]);
      const uint16_t to = random16(rng);
      std::memcpy(&h[off], &to, 2);
      const uint16_t got = csum_replace16(load16(&h[kCsumOff]), from, to);
      std::memcpy(&h[kCsumOff], &got, 2);
      ASSERT_EQ(got, full_ip_csum(h.data())) << "iteration " << iter << " offset " << off;
    }
  }
}

TEST(CsumTest, Replace32MatchesFullRecomputation) {
  std::mt19937 rng(791);
  // Any 2-aligned 32-bit field that does not overlap the checksum (addresses at 12 and 16).
  const size_t offs[] = {0, 2, 4, 6, 12, 14, 16};
  for (int iter = 0; iter < 20000; ++iter) {
    auto h = random_header(rng);
    const int n = 1 + static_cast<int>(rng() % 3);
    for (int j = 0; j < n; ++j) {
      const size_t off = offs[rng() % std::size(offs)];
      const uint32_t from = load32(&h[off]);
      const uint32_t to = random32(rng);
      std::memcpy(&h[off], &to, 4);
      const uint16_t got = csum_replace32(load16(&h[kCsumOff]), from, to);
      std::memcpy(&h[kCsumOff], &got, 2);
      ASSERT_EQ(got, full_ip_csum(h.data())) << "iteration " << iter << " offset " << off;
    }
  }
}

// Replacements that make the data sum to 0xffff, so the correct checksum is 0x0000, and
// replacements starting from such a header.
TEST(CsumTest, ResultZeroAndStartingFromZero) {
  std::mt19937 rng(4242);
  int zero_results = 0;
  for (int iter = 0; iter < 5000; ++iter) {
    auto h = random_header(rng);
    const size_t off = 12 + 2 * (rng() % 4);  // a word inside the addresses
    // The value that makes the one's complement sum of the header 0xffff.
    uint8_t tmp[20];
    std::memcpy(tmp, h.data(), 20);
    tmp[kCsumOff] = tmp[kCsumOff + 1] = 0;
    tmp[off] = tmp[off + 1] = 0;
    const uint16_t rest = static_cast<uint16_t>(~test::fold(test::sum16(tmp, 20)));  // folded sum
    const uint16_t fill = htons(static_cast<uint16_t>(~rest));
    const uint16_t from = load16(&h[off]);
    std::memcpy(&h[off], &fill, 2);
    uint16_t got = csum_replace16(load16(&h[kCsumOff]), from, fill);
    ASSERT_EQ(full_ip_csum(h.data()), 0x0000) << iter;
    ASSERT_EQ(got, 0x0000) << iter;
    ++zero_results;
    std::memcpy(&h[kCsumOff], &got, 2);

    // From a checksum of 0x0000, move another word and the address pair.
    size_t off2;
    do off2 = 2 * (rng() % 10); while (off2 == kCsumOff || off2 == off);
    const uint16_t from2 = load16(&h[off2]);
    const uint16_t to2 = random16(rng);
    std::memcpy(&h[off2], &to2, 2);
    got = csum_replace16(got, from2, to2);
    ASSERT_EQ(got, full_ip_csum(h.data())) << iter;
    std::memcpy(&h[kCsumOff], &got, 2);
    const uint32_t from3 = load32(&h[12]);
    const uint32_t to3 = random32(rng);
    std::memcpy(&h[12], &to3, 4);
    got = csum_replace32(got, from3, to3);
    ASSERT_EQ(got, full_ip_csum(h.data())) << iter;
  }
  EXPECT_EQ(zero_results, 5000);
}

TEST(CsumTest, NoChangeKeepsTheChecksum) {
  std::mt19937 rng(5);
  for (int iter = 0; iter < 1000; ++iter) {
    const auto h = random_header(rng);
    const uint16_t c = load16(&h[kCsumOff]);
    const uint16_t w = load16(&h[4]);
    const uint32_t a = load32(&h[12]);
    EXPECT_EQ(csum_replace16(c, w, w), c);
    EXPECT_EQ(csum_replace32(c, a, a), c);
  }
}

// ---- FullNat::rewrite ----

struct NatCase {
  uint8_t proto;
  std::string payload;
};

// Rewrite `in` with the addresses/ports of `out` (host order in the Pkt) in place.
void rewrite(Frame& f, const Pkt& out) {
  const size_t l3 = out.vlan ? 18 : 14;
  FullNat::rewrite(f.data() + l3, f.data() + l3 + 20, out.proto, htonl(out.src_ip),
                   htonl(out.dst_ip), htons(out.sport), htons(out.dport));
}

std::string random_payload(std::mt19937& rng, size_t n) {
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

TEST(FullNatTest, RewriteEqualsAFrameBuiltFromScratch) {
  std::mt19937 rng(3000);
  const size_t sizes[] = {0, 1, 2, 3, 7, 64, 101, 1001, 1452};
  int iters = 0;
  for (uint8_t proto : {uint8_t{6}, uint8_t{17}}) {
    for (size_t n : sizes) {
      for (int rep = 0; rep < 300; ++rep, ++iters) {
        Pkt in;
        in.proto = proto;
        in.src_ip = rng();
        in.dst_ip = rng();
        in.sport = static_cast<uint16_t>(rng());
        in.dport = static_cast<uint16_t>(rng());
        in.ttl = static_cast<uint8_t>(2 + rng() % 254);
        in.ip_id = static_cast<uint16_t>(rng());
        in.tcp_flags = static_cast<uint8_t>(rng());
        in.seq = rng();
        in.ack = rng();
        in.payload = random_payload(rng, n);
        if (rep % 7 == 0) in.vlan = static_cast<uint16_t>(rng() & 0xfff);

        Pkt out = in;
        out.src_ip = random32(rng);
        out.dst_ip = random32(rng);
        out.sport = random16(rng);
        out.dport = random16(rng);
        out.ttl = static_cast<uint8_t>(in.ttl - 1);

        Frame f = test::build(in);
        rewrite(f, out);
        const Frame want = test::build(out);
        ASSERT_EQ(f, want) << "proto " << int(proto) << " payload " << n << " rep " << rep << "\n"
                           << test::hex(f) << "\nwant\n" << test::hex(want);
      }
    }
  }
  EXPECT_EQ(iters, 2 * 9 * 300);
}

// The rewrite the pipeline does, both directions, with the addresses of the seed setup.
TEST(FullNatTest, ClientToBackendAndBack) {
  for (const NatCase& c : {NatCase{6, ""}, NatCase{6, "GET / HTTP/1.1\r\n\r\n"},
                           NatCase{17, ""}, NatCase{17, "odd"}}) {
    Pkt client;
    client.proto = c.proto;
    client.src_ip = test::ip4("198.51.100.2");
    client.dst_ip = test::ip4("203.0.113.10");
    client.sport = 51234;
    client.dport = 80;
    client.payload = c.payload;
    Pkt to_backend = client;
    to_backend.src_ip = test::ip4("198.51.100.100");
    to_backend.dst_ip = test::ip4("198.51.100.3");
    to_backend.sport = 40000;
    to_backend.dport = 3000;
    to_backend.ttl = 63;

    Frame f = test::build(client);
    rewrite(f, to_backend);
    EXPECT_EQ(f, test::build(to_backend)) << test::hex(f);

    Pkt reply = to_backend;
    std::swap(reply.src_ip, reply.dst_ip);
    std::swap(reply.sport, reply.dport);
    reply.ttl = 64;
    Pkt to_client = client;
    std::swap(to_client.src_ip, to_client.dst_ip);
    std::swap(to_client.sport, to_client.dport);
    to_client.ttl = 63;
    f = test::build(reply);
    rewrite(f, to_client);
    EXPECT_EQ(f, test::build(to_client)) << test::hex(f);
  }
}

TEST(FullNatTest, UdpChecksumZeroStaysZero) {
  std::mt19937 rng(768);
  for (int rep = 0; rep < 500; ++rep) {
    Pkt in;
    in.proto = 17;
    in.udp_zero_csum = true;
    in.src_ip = rng();
    in.dst_ip = rng();
    in.sport = static_cast<uint16_t>(rng());
    in.dport = static_cast<uint16_t>(rng());
    in.payload = random_payload(rng, rng() % 40);
    Pkt out = in;
    out.src_ip = rng();
    out.dst_ip = rng();
    out.sport = static_cast<uint16_t>(rng());
    out.dport = static_cast<uint16_t>(rng());
    out.ttl = 63;

    Frame f = test::build(in);
    ASSERT_EQ(f[14 + 20 + 6], 0);
    ASSERT_EQ(f[14 + 20 + 7], 0);
    rewrite(f, out);
    ASSERT_EQ(f, test::build(out)) << test::hex(f);  // IPv4 checksum right, UDP's still 0
  }
}

// A datagram whose new checksum computes to 0 must carry 0xffff (RFC 768), not 0.
TEST(FullNatTest, UdpComputedZeroIsSentAsFfff) {
  std::mt19937 rng(65535);
  for (int rep = 0; rep < 200; ++rep) {
    Pkt in;
    in.proto = 17;
    in.src_ip = rng();
    in.dst_ip = rng();
    in.sport = static_cast<uint16_t>(rng());
    in.dport = static_cast<uint16_t>(rng());
    in.payload = std::string(2, '\0') + random_payload(rng, rng() % 30);
    Pkt out = in;
    out.src_ip = rng();
    out.dst_ip = rng();
    out.sport = static_cast<uint16_t>(rng());
    out.dport = static_cast<uint16_t>(rng());
    out.ttl = 63;

    // Choose the first two payload bytes so that the outgoing datagram sums to 0xffff.
    Frame probe = test::build(out);
    uint16_t c = static_cast<uint16_t>(probe[40] << 8 | probe[41]);
    // A checksum of c says the rest sums to ~c; the payload word ~(~c) = c completes 0xffff,
    // unless the builder already turned a computed 0 into 0xffff.
    if (c == 0xffff) c = 0;
    out.payload[0] = in.payload[0] = static_cast<char>(c >> 8);
    out.payload[1] = in.payload[1] = static_cast<char>(c & 0xff);
    const Frame want = test::build(out);
    ASSERT_EQ(want[40], 0xff);
    ASSERT_EQ(want[41], 0xff);

    Frame f = test::build(in);
    rewrite(f, out);
    ASSERT_EQ(f, want) << rep << "\n" << test::hex(f);
  }
}

TEST(FullNatTest, TtlDecrementsByOne) {
  for (uint8_t ttl : {uint8_t{2}, uint8_t{64}, uint8_t{128}, uint8_t{255}}) {
    Pkt in;
    in.proto = 6;
    in.src_ip = 1;
    in.dst_ip = 2;
    in.ttl = ttl;
    Frame f = test::build(in);
    Pkt out = in;
    out.ttl = static_cast<uint8_t>(ttl - 1);
    rewrite(f, out);  // addresses unchanged: only the TTL and the IPv4 checksum move
    EXPECT_EQ(f[14 + 8], ttl - 1);
    EXPECT_EQ(f, test::build(out));
  }
}

}  // namespace
}  // namespace rondo::dp
