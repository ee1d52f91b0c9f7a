// Reassembly (frag/reassembly.h) on its own, with a real EAL and mempool and a clock the test
// moves: a datagram that never completes is freed at its timeout (counted, every mbuf back in
// the pool), a full table refuses a new datagram (frag_table_full) and takes one again once
// the old ones expire, the reassembled frame is one mbuf holding the datagram (with its
// offset-0 fragment's Ethernet header, whichever fragment completed it), and fragments of one
// key from two interfaces make no datagram (frag_invalid).
#include <gtest/gtest.h>
#include <rte_mbuf.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "dataplane/frag/reassembly.h"
#include "tests/common/packet_builder.h"
#include "tests/common/ring_dataplane.h"
#include "tests/common/seed_topology.h"

namespace rondo {
namespace {

using dp::DropReason;
using test::Frame;
using test::Pkt;

constexpr uint64_t kHz = 1'000'000;  // the test's clock: microseconds
constexpr uint32_t kTimeoutMs = 2000;

// A UDP datagram (id `id`) from 198.51.100.2 to 203.0.113.10.
Pkt query(uint16_t id) {
  Pkt p;
  p.src_ip = 0xc6336402;
  p.dst_ip = 0xcb00710a;
  p.proto = 17;
  p.sport = 5353;
  p.dport = 53;
  p.ip_id = id;
  return p;
}

// A fragment of query(id): `at` bytes in, `len` bytes of data, more to come or not.
Frame fragment(uint16_t id, uint16_t at, uint16_t len, bool more) {
  Pkt p = query(id);
  p.payload = std::string(len - 8, 'q');  // the UDP header is part of the data
  Frame f = test::build(p);
  test::put16(f, 14 + 6, static_cast<uint16_t>((more ? 0x2000 : 0) | at / 8));
  test::put16(f, 14 + 10, 0);
  test::put16(f, 14 + 10, test::fold(test::sum16(&f[14], 20)));
  return f;
}

class FragTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_TRUE(test::init_eal());
    pool_ = rte_pktmbuf_pool_create("frag_test_pool", 1023, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
    ASSERT_NE(pool_, nullptr);
  }
  rte_mbuf* mbuf(const Frame& f) {
    rte_mbuf* m = rte_pktmbuf_alloc(pool_);
    std::memcpy(rte_pktmbuf_append(m, static_cast<uint16_t>(f.size())), f.data(), f.size());
    return m;
  }
  static inline rte_mempool* pool_ = nullptr;
};

dp::ReassemblyParams params(uint32_t max_datagrams) {
  dp::ReassemblyParams p;
  p.max_datagrams = max_datagrams;
  p.timeout_ms = kTimeoutMs;
  p.buffers = 8;
  p.hz = kHz;
  return p;
}

TEST_F(FragTest, IncompleteDatagramTimesOutAndFreesItsMbufs) {
  dp::LcoreCounters c;
  dp::Reassembly r(params(16), &c);
  ASSERT_TRUE(r.ok());
  const unsigned baseline = rte_mempool_in_use_count(pool_);
  DropReason why;
  const uint64_t t0 = 5 * kHz;
  EXPECT_EQ(r.add(mbuf(fragment(1, 0, 16, true)), t0, &why), nullptr);
  EXPECT_EQ(why, DropReason::kCount);
  EXPECT_EQ(r.add(mbuf(fragment(1, 32, 16, false)), t0 + 1, &why), nullptr);  // [16, 32) never comes
  EXPECT_EQ(why, DropReason::kCount);
  EXPECT_EQ(rte_mempool_in_use_count(pool_), baseline + 2);
  EXPECT_EQ(c.frag_received, 2u);
  r.expire(t0 + kTimeoutMs * kHz / 1000 - 1);  // not yet
  EXPECT_EQ(c.frag_timeouts, 0u);
  EXPECT_EQ(rte_mempool_in_use_count(pool_), baseline + 2);
  r.expire(t0 + kTimeoutMs * kHz / 1000 + 1);
  EXPECT_EQ(c.frag_timeouts, 2u);
  EXPECT_EQ(c.frag_reassembled, 0u);
  EXPECT_EQ(rte_mempool_in_use_count(pool_), baseline) << "mbuf leak";
  EXPECT_EQ(r.buffers_in_use(), 0u);
}

TEST_F(FragTest, FullTableRefusesANewDatagramUntilTheOldOnesExpire) {
  dp::LcoreCounters c;
  dp::Reassembly r(params(2), &c);
  ASSERT_TRUE(r.ok());
  const unsigned baseline = rte_mempool_in_use_count(pool_);
  DropReason why;
  const uint64_t t0 = 9 * kHz;
  for (uint16_t id = 1; id <= 2; ++id) {
    EXPECT_EQ(r.add(mbuf(fragment(id, 0, 16, true)), t0, &why), nullptr);
    EXPECT_EQ(why, DropReason::kCount) << id;
  }
  EXPECT_EQ(r.add(mbuf(fragment(3, 0, 16, true)), t0, &why), nullptr);
  EXPECT_EQ(why, DropReason::kFragTableFull);
  EXPECT_EQ(c.frag_received, 2u);  // a refused fragment is its drop reason only
  EXPECT_EQ(rte_mempool_in_use_count(pool_), baseline + 2);  // the refused one is freed
  // A fragment of a datagram in progress still finds its entry, and completes it.
  rte_mbuf* d = r.add(mbuf(fragment(2, 16, 16, false)), t0, &why);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(why, DropReason::kCount);
  EXPECT_EQ(d->nb_segs, 1);
  EXPECT_TRUE(r.reassembled(d));
  ASSERT_EQ(rte_pktmbuf_data_len(d), 14u + 20 + 32);
  const uint8_t* ip = rte_pktmbuf_mtod(d, const uint8_t*) + 14;
  EXPECT_EQ(ip[2] << 8 | ip[3], 20 + 32);  // total length of the whole datagram
  EXPECT_EQ(ip[6] << 8 | ip[7], 0);        // neither MF nor an offset
  EXPECT_EQ(test::fold(test::sum16(ip, 20)), 0) << "header checksum";
  rte_pktmbuf_free(d);
  EXPECT_EQ(c.frag_reassembled, 1u);
  // After the timeout the stale entry makes room again.
  r.expire(t0 + 3 * kHz);
  EXPECT_EQ(c.frag_timeouts, 1u);
  EXPECT_EQ(r.add(mbuf(fragment(3, 0, 16, true)), t0 + 3 * kHz, &why), nullptr);
  EXPECT_EQ(why, DropReason::kCount);
  r.expire(t0 + 6 * kHz);
  EXPECT_EQ(rte_mempool_in_use_count(pool_), baseline) << "mbuf leak";
  EXPECT_EQ(r.buffers_in_use(), 0u);
}

TEST_F(FragTest, TooManyFragmentsBreakTheDatagram) {
  dp::LcoreCounters c;
  dp::Reassembly r(params(4), &c);
  ASSERT_TRUE(r.ok());
  const unsigned baseline = rte_mempool_in_use_count(pool_);
  DropReason why = DropReason::kCount;
  // First, then middles of 8 bytes: of the kMaxFragments slots one is kept for the last
  // fragment, so the kMaxFragments-th fragment without it is one too many.
  uint16_t at = 0;
  uint32_t n = 0;
  for (; n < dp::Reassembly::kMaxFragments + 1 && why == DropReason::kCount; ++n, at += 8)
    EXPECT_EQ(r.add(mbuf(fragment(7, at, 8, true)), 100, &why), nullptr);
  EXPECT_EQ(why, DropReason::kFragInvalid);
  EXPECT_EQ(n, dp::Reassembly::kMaxFragments);
  EXPECT_EQ(c.frag_discarded, n - 1);
  EXPECT_EQ(rte_mempool_in_use_count(pool_), baseline) << "mbuf leak";
}

// The whole IPv4 frame cut into fragments of `size` bytes of data (the last one the rest).
std::vector<Frame> cut4(const Frame& whole, size_t size) {
  const size_t hdr = 14 + 20;
  std::vector<Frame> out;
  for (size_t at = 0; at < whole.size() - hdr; at += size) {
    const size_t n = std::min(size, whole.size() - hdr - at);
    Frame f(whole.begin(), whole.begin() + hdr);
    f.insert(f.end(), whole.begin() + static_cast<long>(hdr + at),
             whole.begin() + static_cast<long>(hdr + at + n));
    test::put16(f, 14 + 2, static_cast<uint16_t>(20 + n));
    const bool more = hdr + at + n < whole.size();
    test::put16(f, 14 + 6, static_cast<uint16_t>((more ? 0x2000 : 0) | at / 8));
    test::put16(f, 14 + 10, 0);
    test::put16(f, 14 + 10, test::fold(test::sum16(&f[14], 20)));
    out.push_back(std::move(f));
  }
  return out;
}

uint16_t be16_at(const Frame& f, size_t off) { return static_cast<uint16_t>(f[off] << 8 | f[off + 1]); }
uint32_t be32_at(const Frame& f, size_t off) {
  return static_cast<uint32_t>(be16_at(f, off)) << 16 | be16_at(f, off + 2);
}

// The frame with an 802.1Q tag `tci` after its MAC addresses.
Frame with_tag(Frame f, uint16_t tci) {
  const uint8_t tag[4] = {0x81, 0x00, static_cast<uint8_t>(tci >> 8), static_cast<uint8_t>(tci)};
  f.insert(f.begin() + 12, tag, tag + 4);
  return f;
}

// A priority-tagged first fragment (VID 0: the untagged interface's) and an untagged last
// one: the datagram is the first fragment's frame, tag included, whole, its IPv4 header
// checksum right (at 18 bytes in, whichever fragment completed it). Built here as a whole
// priority-tagged datagram without DF (the fragments' flags hold MF alone).
TEST_F(FragTest, PriorityTaggedFirstFragmentMakesTheDatagramsHeader) {
  dp::LcoreCounters c;
  dp::Reassembly r(params(4), &c);
  ASSERT_TRUE(r.ok());
  for (const bool first_last : {false, true}) {
    SCOPED_TRACE(first_last ? "first fragment last" : "first fragment first");
    Pkt p = query(first_last ? 0x1235 : 0x1234);  // another datagram (not a duplicate's key)
    p.frag = 0;
    p.payload = std::string(1000, 'z');
    const std::vector<Frame> f = cut4(test::build(p), 512);
    ASSERT_EQ(f.size(), 2u);
    p.vlan = 0xa000;  // PCP 5, VID 0
    const Frame want = test::build(p);
    const unsigned baseline = rte_mempool_in_use_count(pool_);
    DropReason why = DropReason::kCount;
    const Frame first = with_tag(f[0], 0xa000);
    EXPECT_EQ(r.add(mbuf(first_last ? f[1] : first), 100, &why), nullptr);
    rte_mbuf* d = r.add(mbuf(first_last ? first : f[1]), 100, &why);
    ASSERT_NE(d, nullptr) << dp::drop_reason_name(why);
    const Frame got(rte_pktmbuf_mtod(d, const uint8_t*),
                    rte_pktmbuf_mtod(d, const uint8_t*) + rte_pktmbuf_data_len(d));
    EXPECT_TRUE(got == want) << "got\n" << test::hex(got) << "\nwant\n" << test::hex(want);
    rte_pktmbuf_free(d);
    EXPECT_EQ(rte_mempool_in_use_count(pool_), baseline) << "mbuf leak";
  }
}

// rte_ip_frag keys a datagram by addresses and identification only: fragments of one key on
// two VLANs, or on two ports, are not one datagram. The one that completes it is refused
// (frag_invalid) and the other discarded, every mbuf back.
TEST_F(FragTest, FragmentsOfTwoInterfacesAreNotOneDatagram) {
  dp::LcoreCounters c;
  dp::Reassembly r(params(4), &c);
  ASSERT_TRUE(r.ok());
  const unsigned baseline = rte_mempool_in_use_count(pool_);
  struct Mix {
    const char* what;
    uint16_t tci0, tci1, port0, port1;  // tci 0xffff: untagged
  };
  const Mix mixes[] = {{"VLAN 100 and VLAN 200", 100, 200, 0, 0},
                       {"VLAN 100 and untagged", 100, 0xffff, 0, 0},
                       {"priority tag and VLAN 100", 0x2000, 100, 0, 0},
                       {"untagged on port 0 and port 1", 0xffff, 0xffff, 0, 1}};
  uint16_t id = 40;
  for (const Mix& x : mixes) {
    SCOPED_TRACE(x.what);
    const Frame a = fragment(id, 0, 512, true), b = fragment(id, 512, 64, false);
    ++id;
    rte_mbuf* ma = mbuf(x.tci0 == 0xffff ? a : with_tag(a, x.tci0));
    rte_mbuf* mb = mbuf(x.tci1 == 0xffff ? b : with_tag(b, x.tci1));
    ma->port = x.port0;
    mb->port = x.port1;
    const uint64_t discarded = c.frag_discarded;
    DropReason why = DropReason::kCount;
    EXPECT_EQ(r.add(ma, 100, &why), nullptr);
    EXPECT_EQ(why, DropReason::kCount);
    EXPECT_EQ(r.add(mb, 100, &why), nullptr);
    EXPECT_EQ(why, DropReason::kFragInvalid);
    EXPECT_EQ(c.frag_discarded, discarded + 1);
  }
  EXPECT_EQ(c.frag_reassembled, 0u);
  EXPECT_EQ(rte_mempool_in_use_count(pool_), baseline) << "mbuf leak";
}

// Two workers: the fragments of a query land on both queues (as RSS spreads fragments, which
// carry no ports), the backend's fragmented answer lands on the worker that does not own its
// local port. Each datagram is reassembled once, on the worker frag_owner() names, and then
// handed to its flow's owner like any packet: one datagram out each way, bytes intact, and
// the counters add up.
TEST_F(FragTest, FragmentsOnTwoWorkersMakeOneDatagramEachWay) {
  using namespace test::seed;
  test::RingDataplane dp("fragsteer", 2, 40000, 64);
  const test::Mac me = dp.mac();
  dp.push(test::seed::state());
  dp.settle();
  for (uint16_t w = 0; w < 2; ++w) dp.sent(w);
  const unsigned baseline = rte_mempool_in_use_count(dp.pool());
  std::string data(1200, 'x');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>('A' + i % 53);

  Pkt q;
  q.src_mac = kClientMac;
  q.dst_mac = me;
  q.src_ip = kClient;
  q.dst_ip = kVip;
  q.proto = 17;
  q.sport = 5353;
  q.dport = 53;
  q.frag = 0;
  q.ip_id = 0x5151;
  q.payload = data;
  const std::vector<Frame> qf = cut4(test::build(q), 408);
  ASSERT_EQ(qf.size(), 3u);
  for (size_t i = 0; i < qf.size(); ++i) dp.inject(static_cast<uint16_t>(i % 2), qf[i]);
  dp.settle();
  std::vector<Frame> out;
  uint16_t from = 0;
  for (uint16_t w = 0; w < 2; ++w)
    for (const Frame& f : dp.sent(w)) {
      out.push_back(f);
      from = w;
    }
  ASSERT_EQ(out.size(), 1u) << "one datagram to the backend";
  const Frame& fw = out[0];
  ASSERT_EQ(fw.size(), 14u + 20 + 8 + data.size());
  EXPECT_EQ(be32_at(fw, 14 + 12), kLocal);
  EXPECT_EQ(be32_at(fw, 14 + 16), kBackend);
  EXPECT_EQ(be16_at(fw, 14 + 6), 0) << "whole, not a fragment";
  const uint16_t lport = be16_at(fw, 34);
  EXPECT_EQ(be16_at(fw, 36), 4000);
  EXPECT_EQ(std::string(fw.begin() + 42, fw.end()), data);
  EXPECT_EQ(dp.worker(from).pipeline.port_owner(lport), from);

  // Answers, fragmented, on the other worker's queue. Reassembled where frag_owner() says
  // (some on the flow's owner, some not: those are handed over whole), and sent from the
  // owner in fragments: 2400 bytes + 8 of UDP are longer than the MTU.
  constexpr int kAnswers = 6;
  for (int a = 0; a < kAnswers; ++a) {
    Pkt r;
    r.src_mac = kBackendMac;
    r.dst_mac = me;
    r.src_ip = kBackend;
    r.dst_ip = kLocal;
    r.proto = 17;
    r.sport = 4000;
    r.dport = lport;
    r.frag = 0;
    r.ip_id = static_cast<uint16_t>(0x6161 + a);
    r.payload = data + data;
    r.payload[0] = static_cast<char>('0' + a);
    for (const Frame& f : cut4(test::build(r), 1480)) dp.inject(static_cast<uint16_t>(1 - from), f);
    dp.settle();
    out.clear();
    for (uint16_t w = 0; w < 2; ++w)
      for (const Frame& f : dp.sent(w)) {
        out.push_back(f);
        EXPECT_EQ(w, from) << "the answer leaves from its flow's owner";
      }
    ASSERT_EQ(out.size(), 2u) << "answer " << a;
    std::string got;
    for (const Frame& f : out) {
      EXPECT_EQ(be32_at(f, 14 + 12), kVip);
      EXPECT_EQ(be32_at(f, 14 + 16), kClient);
      EXPECT_EQ(test::fold(test::sum16(&f[14], 20)), 0);
      got.append(f.begin() + 34, f.end());
    }
    EXPECT_EQ(be16_at(out[0], 14 + 6), 0x2000);
    EXPECT_EQ(be16_at(out[1], 14 + 6), 1480 / 8);
    ASSERT_EQ(got.size(), 8 + r.payload.size());
    EXPECT_EQ(be16_at(Frame(got.begin(), got.begin() + 8), 0), 53);
    EXPECT_EQ(be16_at(Frame(got.begin(), got.begin() + 8), 2), 5353);
    EXPECT_EQ(got.substr(8), r.payload);
  }
  // Some answers were reassembled on the worker that does not own the flow and handed over.
  EXPECT_GT(dp.worker(static_cast<uint16_t>(1 - from)).pipeline.counters().frag_reassembled, 0u);
  EXPECT_EQ(dp.worker(from).pipeline.counters().frag_refragmented, static_cast<uint64_t>(kAnswers));

  // Over every lcore, the main lcore's row included (its frames are sent by worker 0).
  uint64_t rx = 0, tx = 0, drops = 0, consumed = 0, so = 0, si = 0, made = 0, whole = 0;
  for (uint16_t w = 0; w < 3; ++w) {
    const dp::LcoreCounters& c = w < 2 ? dp.worker(w).pipeline.counters() : dp.neigh().counters();
    rx += c.rx_packets;
    tx += c.tx_packets;
    consumed += c.consumed;
    so += c.steered_out;
    si += c.steered_in;
    made += c.originated;
    whole += c.frag_reassembled;
    for (auto d : c.drops) drops += d;
  }
  EXPECT_EQ(drops, 0u);
  EXPECT_EQ(whole, 1u + kAnswers);
  EXPECT_EQ(rx, qf.size() + 2 * kAnswers);
  EXPECT_EQ(so, si);
  EXPECT_EQ(rx + si + made, tx + drops + consumed + so);
  EXPECT_EQ(rte_mempool_in_use_count(dp.pool()), baseline) << "mbuf leak";
  EXPECT_EQ(dp.worker(0).frag.buffers_in_use() + dp.worker(1).frag.buffers_in_use(), 0u);
}

}  // namespace
}  // namespace rondo
