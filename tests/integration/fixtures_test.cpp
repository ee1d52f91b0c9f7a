// Integration: a real EAL (--no-huge), an in-process ring port, the real worker loop and
// control agent. The runner of the packet fixtures (fixtures/*.cpp, one file per feature; see
// fixtures/fixture.h): every case runs on a fresh dataplane with the seed scenario's state, its
// history first, then its input, whose verdict, drop counter and output frames must be what the
// case declares. After every case the mempool is back at its baseline: nothing leaked.
#include <gtest/gtest.h>

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "tests/common/packet_builder.h"
#include "tests/common/ring_dataplane.h"
#include "tests/common/seed_topology.h"
#include "tests/integration/fixtures/fixture.h"

namespace rondo {
namespace {

using dp::DropReason;
using test::Arp;
using test::Frame;
using test::Mac;
using test::Pkt;
using namespace test::fixtures;

api::State seed_v4() { return test::seed::with_dsr(test::seed::state()); }
api::State seed_v6() { return test::seed::state6(); }
api::State seed_nat64() { return test::seed::state6(true); }

struct Feature {
  const char* name;
  std::vector<Case> (*cases)(const Env&);
  api::State (*state)() = seed_v4;  // what the fresh dataplane of each case is given
  uint32_t mtu = 1500;              // its --mtu
};

void PrintTo(const Feature& f, std::ostream* os) { *os << f.name; }

const Feature kFeatures[] = {
    {"arp", arp_cases},         {"icmp", icmp_cases},         {"nat", nat_cases},
    {"udp", udp_cases},         {"neigh", neigh_cases},       {"tcp_state", tcp_state_cases},
    {"drops", drops_cases},     {"malformed", malformed_cases}, {"sanity", sanity_cases},
    {"dsr", dsr_cases},
    {"nat6", nat6_cases, seed_v6},       {"icmp6", icmp6_cases, seed_v6},
    {"ndp", ndp_cases, seed_v6},         {"ext6", ext6_cases, seed_v6},
    {"nat64", nat64_cases, seed_nat64},
    {"mtu", mtu_cases, seed_v6},         {"jumbo", jumbo_cases, seed_v6, 9000},
    {"dsr6", dsr6_cases, dsr6_state},
    {"frag", frag_cases},                {"frag6", frag6_cases, seed_v6},
    {"frag46", frag46_cases, seed_nat64},
    {"vlan", vlan_cases, vlan_state, 9000},  {"vlan_trunk", vlan_trunk_cases, vlan_trunk_state},
};

// One dataplane with the seed scenario's state, and the ARP request its snapshot makes for
// the late backend already sent (so a case starts with nothing pending).
class SeedDataplane {
 public:
  explicit SeedDataplane(const std::string& name, const api::State& state = seed_v4(),
                         uint32_t mtu = 1500)
      : dp_(name, 1, kLportLo, 1, 1024, mtu) {
    dp_.push(state);
    dp_.main_poll();
    dp_.poll(0);
    first_sent_ = dp_.sent(0);
  }
  test::RingDataplane& dp() { return dp_; }
  const std::vector<Frame>& first_sent() const { return first_sent_; }

  // Inject one frame, run the worker, the main lcore (ARP) and the worker again (it sends
  // what the main lcore made), collect what was transmitted.
  std::vector<Frame> run(const Frame& in) {
    dp_.inject(0, in);
    dp_.poll(0);
    dp_.main_poll();
    dp_.poll(0);
    return dp_.sent(0);
  }

  // Worker 0's counters, with the main lcore's drops and consumed frames added: a case's
  // verdict may be the worker's or (ARP) the neighbour manager's.
  dp::LcoreCounters counters() {
    dp::LcoreCounters c = dp_.worker(0).pipeline.counters();
    const dp::LcoreCounters& m = dp_.neigh().counters();
    c.consumed += m.consumed;
    for (uint32_t r = 0; r < dp::kDropReasonCount; ++r) c.drops[r] += m.drops[r];
    return c;
  }

 private:
  test::RingDataplane dp_;
  std::vector<Frame> first_sent_;
};

// The reasons whose counters moved between two samples, for failure messages.
std::string counted_reasons(const dp::LcoreCounters& before, const dp::LcoreCounters& after) {
  std::string out;
  for (uint32_t r = 0; r < dp::kDropReasonCount; ++r)
    if (after.drops[r] != before.drops[r])
      out += std::string(out.empty() ? "" : ", ") +
             std::string(dp::drop_reason_name(static_cast<dp::DropReason>(r)));
  return out.empty() ? "none" : out;
}

void check(SeedDataplane& s, const Case& c) {
  SCOPED_TRACE(c.description);
  // Taken before the history: frames it leaves held (fragments waiting for the rest of their
  // datagram) must be let go by the input too.
  const unsigned baseline = rte_mempool_in_use_count(s.dp().pool());
  for (const auto& g : c.given) s.run(g);
  const auto before = s.counters();
  const auto out = s.run(c.input);
  const auto after = s.counters();

  EXPECT_EQ(after.rx_packets, before.rx_packets + 1);
  uint64_t dropped = 0;
  for (uint32_t r = 0; r < dp::kDropReasonCount; ++r) dropped += after.drops[r] - before.drops[r];
  switch (c.verdict) {
    case Verdict::kTx:
      EXPECT_EQ(dropped, 0u) << "counted " << counted_reasons(before, after);
      break;
    case Verdict::kDrop:
      EXPECT_EQ(after.drops[static_cast<uint32_t>(c.reason)],
                before.drops[static_cast<uint32_t>(c.reason)] + 1)
          << "expected drop reason " << dp::drop_reason_name(c.reason) << ", counted "
          << counted_reasons(before, after);
      EXPECT_EQ(dropped, 1u) << "counted " << counted_reasons(before, after);
      break;
    case Verdict::kConsumed:
      EXPECT_EQ(after.consumed, before.consumed + 1);
      EXPECT_EQ(dropped, 0u);
      break;
  }
  ASSERT_EQ(out.size(), c.output.size());
  for (size_t i = 0; i < out.size(); ++i)
    EXPECT_TRUE(out[i] == c.output[i]) << "frame " << i << " got\n"
                                       << test::hex(out[i]) << "\nwant\n"
                                       << test::hex(c.output[i]);
  EXPECT_EQ(rte_mempool_in_use_count(s.dp().pool()), baseline) << "mbuf leak";
}

class Fixtures : public ::testing::TestWithParam<Feature> {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(test::init_eal()); }
};

// Every case of a feature, each on its own dataplane (its MAC is the case's Env).
TEST_P(Fixtures, Feature) {
  const Feature& f = GetParam();
  static int made = 0;
  size_t n = 1;
  for (size_t i = 0; i < n; ++i) {
    SeedDataplane s("fx" + std::to_string(made++), f.state(), f.mtu);
    const auto cases = f.cases(Env{s.dp().mac()});
    n = cases.size();
    ASSERT_GT(n, 0u);
    check(s, cases[i]);
  }
}

INSTANTIATE_TEST_SUITE_P(Packets, Fixtures, ::testing::ValuesIn(kFeatures),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(FixtureCases, EveryFeatureHasCases) {
  ASSERT_TRUE(test::init_eal());
  size_t total = 0;
  for (const auto& f : kFeatures) total += f.cases(Env{}).size();
  // 44 when the fixtures were split by feature; a case removed must be removed on purpose.
  EXPECT_GE(total, 44u);
}

// Taking in the snapshot, the main lcore asks for the one backend MAC that is not static;
// worker 0 sends the request.
TEST(SeedSnapshot, AsksForTheLateBackend) {
  ASSERT_TRUE(test::init_eal());
  SeedDataplane s("fxarp");
  const Mac me = s.dp().mac();
  ASSERT_EQ(s.first_sent().size(), 1u) << "want exactly one ARP request, for the late backend";
  Arp want{me, kBroadcast, {}, 1, me, {}, kLocal, kLateBackend, 60};
  EXPECT_TRUE(s.first_sent()[0] == test::build(want)) << test::hex(s.first_sent()[0]);
}

// NAT64 flows outlive their VIP: with the last NAT64 VIP removed (a second snapshot), the v4
// backend's reply of a live flow is still looked for in the v6 table and goes to the client.
TEST(Nat64Removed, ALiveFlowsRepliesStillGoThrough) {
  ASSERT_TRUE(test::init_eal());
  SeedDataplane s("fxnat64gone", seed_nat64());
  const Env env{s.dp().mac()};
  constexpr uint16_t kNat64Port = 8091;
  auto conn = connection6(env, 50000, 3000);
  for (Pkt& p : conn) {
    if (p.src6 == kClient6) p.dport = kNat64Port;
    else p.v6 = false;  // the backend's: IPv4, to the v4 local ip
  }
  for (size_t i = 0; i < 3; ++i) ASSERT_EQ(s.run(test::build(conn[i])).size(), 1u) << i;
  api::State gone = test::seed::state6(true);
  gone.generation = 2;
  ASSERT_EQ(gone.vips.back().port, kNat64Port);
  gone.vips.pop_back();
  s.dp().push(gone);
  s.dp().main_poll();
  s.dp().poll(0);
  s.dp().sent(0);
  const auto out = s.run(test::build(conn[3]));
  ASSERT_EQ(out.size(), 1u) << "counted " << counted_reasons({}, s.counters());
  EXPECT_TRUE(out[0] == Rewrite::to_client6(kNat64Port, 50000).apply(conn[3], env))
      << test::hex(out[0]);
}

// The IP data of `whole` (Ethernet header l2 bytes: 18 when tagged) cut into IPv4 fragments
// of `piece` bytes (the rest in a last one), each with the whole frame's headers.
std::vector<Frame> fragments4(const Frame& whole, size_t l2, size_t piece) {
  const size_t ihl = (whole[l2] & 0x0f) * 4u;
  const size_t data = whole.size() - l2 - ihl;
  std::vector<Frame> out;
  for (size_t at = 0; at < data; at += piece) {
    const size_t n = std::min(piece, data - at);
    Frame f(whole.begin(), whole.begin() + static_cast<long>(l2 + ihl));
    f.insert(f.end(), whole.begin() + static_cast<long>(l2 + ihl + at),
             whole.begin() + static_cast<long>(l2 + ihl + at + n));
    test::put16(f, l2 + 2, static_cast<uint16_t>(ihl + n));
    test::put16(f, l2 + 6, static_cast<uint16_t>((at + n < data ? 0x2000 : 0) | at / 8));
    test::put16(f, l2 + 10, 0);
    test::put16(f, l2 + 10, test::fold(test::sum16(&f[l2], ihl)));
    out.push_back(std::move(f));
  }
  return out;
}

uint16_t be16(const Frame& f, size_t off) { return static_cast<uint16_t>(f[off] << 8 | f[off + 1]); }

// Interfaces and fragments (seed::state_vlan(): clients on VLAN 100 at MTU 1500, the backends
// untagged at MTU 9000, --mtu 9000). A client's datagram that came in tagged fragments is
// reassembled and leaves whole to the backend, untagged (it fits 9000); the backend's
// 3,000-byte answer, in untagged fragments, is reassembled and leaves for the client cut
// again at the clients VLAN's MTU, every fragment tagged 100 (PCP 0).
TEST(VlanFragments, ReassembledAndCutAgainWithTheTag) {
  ASSERT_TRUE(test::init_eal());
  SeedDataplane s("fxvlanfrag", test::seed::state_vlan(), 9000);
  const Env env{s.dp().mac()};
  Pkt q;
  q.src_mac = kClientMac;
  q.dst_mac = env.me;
  q.vlan = kClientsVid;
  q.src_ip = kClientV4;
  q.dst_ip = kVip;
  q.proto = 17;
  q.sport = 5353;
  q.dport = 53;
  q.frag = 0;
  q.ip_id = 0x5151;
  q.payload = std::string(2000, 'q');
  const auto in = fragments4(test::build(q), 18, 1480);
  ASSERT_EQ(in.size(), 2u);
  EXPECT_TRUE(s.run(in[0]).empty());
  auto out = s.run(in[1]);
  ASSERT_EQ(out.size(), 1u) << "counted " << counted_reasons({}, s.counters());
  // Whole and untagged: Ethernet, then IPv4 of 20 + 8 + 2000 bytes to a backend.
  EXPECT_EQ(be16(out[0], 12), 0x0800);
  EXPECT_EQ(be16(out[0], 14 + 2), 20u + 8 + 2000);
  EXPECT_EQ(be16(out[0], 14 + 6) & 0x3fff, 0);  // not a fragment
  const uint16_t lport = be16(out[0], 14 + 20);  // the local port the flow took

  Pkt r;
  r.src_mac = kBackendMac;
  r.dst_mac = env.me;
  r.src_ip = kBackend;
  r.dst_ip = kLocal;
  r.proto = 17;
  r.sport = be16(out[0], 14 + 22);
  r.dport = lport;
  r.frag = 0;
  r.ip_id = 0x6262;
  r.payload = std::string(3000, 'r');
  const auto back = fragments4(test::build(r), 14, 1480);
  ASSERT_EQ(back.size(), 3u);
  EXPECT_TRUE(s.run(back[0]).empty());
  EXPECT_TRUE(s.run(back[1]).empty());
  const uint64_t refragmented = s.counters().frag_refragmented;
  out = s.run(back[2]);
  ASSERT_GE(out.size(), 3u) << "counted " << counted_reasons({}, s.counters());
  EXPECT_EQ(s.counters().frag_refragmented, refragmented + 1);
  size_t at = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    SCOPED_TRACE(i);
    const Frame& f = out[i];
    ASSERT_GE(f.size(), 18u + 20);
    EXPECT_EQ(be16(f, 12), 0x8100);
    EXPECT_EQ(be16(f, 14), kClientsVid);  // TCI: VID 100, PCP 0
    EXPECT_EQ(be16(f, 16), 0x0800);
    EXPECT_TRUE(std::equal(f.begin(), f.begin() + 6, kClientMac.begin()));
    const uint16_t ip_len = be16(f, 18 + 2);
    EXPECT_LE(ip_len, kClientsMtu);
    EXPECT_EQ(test::fold(test::sum16(&f[18], 20)), 0) << "IPv4 header checksum";
    uint32_t dst;
    std::memcpy(&dst, &f[18 + 16], 4);
    EXPECT_EQ(ntohl(dst), kClientV4);
    const uint16_t fo = be16(f, 18 + 6);
    EXPECT_EQ((fo & 0x1fffu) * 8u, at);
    EXPECT_EQ((fo & 0x2000) != 0, i + 1 < out.size()) << "MF on all but the last";
    at += ip_len - 20u;
  }
  EXPECT_EQ(at, 8u + 3000);  // the UDP datagram, all of it
}

class Fixture : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_TRUE(test::init_eal());
    seed_ = new SeedDataplane("fix");
    dp_ = &seed_->dp();
  }
  static void TearDownTestSuite() { delete seed_; }
  static api::State seed_state() { return test::seed::state(); }
  static api::MsgType control(api::MsgType type, const std::vector<uint8_t>& body,
                              std::vector<uint8_t>* reply) {
    return dp_->control(type, body, reply);
  }
  static void push(const api::State& s) { dp_->push(s); }
  static std::vector<Frame> run(const Frame& in) { return seed_->run(in); }
  static Mac mac() { return dp_->mac(); }

  static inline SeedDataplane* seed_ = nullptr;
  static inline test::RingDataplane* dp_ = nullptr;
};

TEST_F(Fixture, RejectsBadStateAndKeepsForwarding) {
  const Mac me = mac();
  push(seed_state());
  std::vector<uint8_t> reply;
  // Truncated body.
  auto body = api::encode_state(seed_state());
  body.resize(body.size() - 3);
  EXPECT_EQ(control(api::MsgType::kSetState, body, &reply), api::MsgType::kError);
  std::string err;
  auto ack = api::decode_ack(reply, &err);
  ASSERT_TRUE(ack.has_value()) << err;
  EXPECT_FALSE(ack->ok);
  // Semantically invalid: duplicate backend id.
  api::State bad = seed_state();
  bad.generation = 99;
  bad.vips[1].backends[0].id = 0;
  EXPECT_EQ(control(api::MsgType::kSetState, api::encode_state(bad), &reply), api::MsgType::kError);
  ack = api::decode_ack(reply, &err);
  ASSERT_TRUE(ack.has_value());
  EXPECT_NE(ack->message.find("backend id 0 is used twice"), std::string::npos) << ack->message;

  // Still forwarding with generation 1's state.
  EXPECT_EQ(dp_->publisher().current()->generation, 1u);
  // (An echo request: the scenario's connections hold the one local port of every backend.)
  Pkt echo;
  echo.src_mac = kClientMac;
  echo.dst_mac = me;
  echo.src_ip = kClient;
  echo.dst_ip = kVip;
  echo.proto = 1;
  const auto out = run(test::build(echo));
  ASSERT_EQ(out.size(), 1u);

  // The stats reply names every drop reason and counts what this worker saw.
  EXPECT_EQ(control(api::MsgType::kGetStats, {}, &reply), api::MsgType::kStatsReply);
  auto st = api::decode_stats(reply, &err);
  ASSERT_TRUE(st.has_value()) << err;
  ASSERT_EQ(st->lcores.size(), 2u);  // the worker, then the main lcore (neighbours)
  EXPECT_EQ(st->value(st->lcores[1], "neigh_capacity"), 4096u);
  EXPECT_GT(st->value(st->lcores[1], "arp_requests"), 0u);
  EXPECT_EQ(st->drop_names.size(), dp::kDropReasonCount);
  EXPECT_EQ(st->value(st->lcores[0], "rx_packets"), dp_->worker(0).pipeline.counters().rx_packets);
  ASSERT_EQ(st->ports.size(), 1u);
  EXPECT_GT(st->ports[0].ipackets, 0u);
  for (const auto& b : st->backends) EXPECT_EQ(b.table_size, 0u) << b.id;  // rr: no table

  // A maglev VIP: every backend of it is in the stats with its share of the table, counted
  // when the snapshot was built, whether it has had traffic or not.
  api::State hashed = seed_state();
  hashed.generation = 2;
  hashed.vips[0].sched = api::Sched::kMaglev;
  EXPECT_EQ(control(api::MsgType::kSetState, api::encode_state(hashed), &reply),
            api::MsgType::kSetStateReply);
  EXPECT_EQ(control(api::MsgType::kGetStats, {}, &reply), api::MsgType::kStatsReply);
  st = api::decode_stats(reply, &err);
  ASSERT_TRUE(st.has_value()) << err;
  uint64_t entries = 0;
  size_t seen = 0;
  for (const auto& vb : hashed.vips[0].backends)
    for (const auto& b : st->backends)
      if (b.id == vb.id) {
        ++seen;
        EXPECT_EQ(b.table_size, dp::kMaglevSize) << b.id;
        EXPECT_GT(b.table_entries, 0u) << b.id;
        entries += b.table_entries;
      }
  EXPECT_EQ(seen, hashed.vips[0].backends.size());
  EXPECT_EQ(entries, dp::kMaglevSize);
}

}  // namespace
}  // namespace rondo
