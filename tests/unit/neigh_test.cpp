// NeighTable: what an ARP frame may change, and a bound that an attacker cannot turn into
// a table full for good. NeighManager (the main lcore's): what it answers, learns, asks
// for and publishes.
#include "dataplane/neigh/neigh.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include "dataplane/neigh/manager.h"
#include "tests/common/packet_builder.h"

#include <cstring>
#include <map>
#include <random>

namespace rondo::dp {
namespace {

constexpr uint8_t kMacA[6] = {0x02, 0, 0, 0, 0, 0x0a};
constexpr uint8_t kMacB[6] = {0x02, 0, 0, 0, 0, 0x0b};
using L = NeighTable::Learned;

bool mac_is(const Neigh* n, const uint8_t mac[6]) { return n && std::memcmp(n->mac, mac, 6) == 0; }

TEST(NeighTable, ArpNeverCreatesAnEntry) {
  NeighTable t(16, 3, 100);
  EXPECT_EQ(t.learn(7, kMacA, 0, 1), L::kIgnored);
  EXPECT_EQ(t.find(7), nullptr);
  EXPECT_EQ(t.size(), 0u);
}

TEST(NeighTable, AskedForIsFilledUnsolicitedNeverChangesAMac) {
  NeighTable t(16, 3, 100);
  ASSERT_TRUE(t.want_request(7, 0, 1, 1));
  EXPECT_EQ(t.learn(7, kMacA, 0, 2), L::kFilled);
  EXPECT_TRUE(mac_is(t.find(7), kMacA));
  // Gratuitous, another MAC: refused. The same MAC: a refresh.
  EXPECT_EQ(t.learn(7, kMacB, 0, 3), L::kRefused);
  EXPECT_TRUE(mac_is(t.find(7), kMacA));
  EXPECT_EQ(t.learn(7, kMacA, 0, 4), L::kRefreshed);
  EXPECT_EQ(t.find(7)->updated, 4u);
  // Re-checked (a request outstanding): the answer may move it.
  ASSERT_TRUE(t.want_request(7, 0, 10, 1));
  EXPECT_EQ(t.learn(7, kMacB, 0, 11), L::kFilled);
  EXPECT_TRUE(mac_is(t.find(7), kMacB));
  // ...once: the request is answered.
  EXPECT_EQ(t.learn(7, kMacA, 0, 12), L::kRefused);
}

TEST(NeighTable, StaticEntriesAreNeverLearnedOver) {
  NeighTable t(16, 3, 100);
  Neigh e;
  std::memcpy(e.mac, kMacA, 6);
  t.set_static({{9, e}});
  EXPECT_EQ(t.learn(9, kMacB, 0, 1), L::kIgnored);
  EXPECT_TRUE(mac_is(t.find(9), kMacA));
  EXPECT_FALSE(t.want_request(9, 0, 2, 1));
}

// Issue 8, item 3: 4096 requests from random senders filled main's table for good. Now only
// wanted addresses get entries, and when the table is full a stale one makes room.
TEST(NeighTable, FullTableEvictsStaleEntriesNeverStaticOrFresh) {
  NeighTable t(8, /*incomplete*/ 3, /*reachable*/ 100);
  Neigh e;
  std::memcpy(e.mac, kMacA, 6);
  t.set_static({{1000, e}});
  for (uint32_t ip = 1; ip <= 7; ++ip) ASSERT_TRUE(t.want_request(ip, 0, 10, 1));
  ASSERT_EQ(t.size(), 8u);
  // Full, and every request is fresh: nothing may go.
  EXPECT_FALSE(t.want_request(50, 0, 11, 1));
  EXPECT_EQ(t.find(50), nullptr);
  // Entry 3 answered and stays in use; the other requests went unanswered for 3 ticks.
  ASSERT_EQ(t.learn(3, kMacB, 0, 12), L::kFilled);
  EXPECT_TRUE(t.want_request(50, 0, 14, 1));
  EXPECT_NE(t.find(50), nullptr);
  EXPECT_EQ(t.size(), 8u);
  EXPECT_EQ(t.evictions(), 1u);
  EXPECT_NE(t.find(1000), nullptr);
  EXPECT_TRUE(mac_is(t.find(3), kMacB));
  // A reachable entry goes only once it was not confirmed for 100 ticks.
  for (uint32_t ip = 60; ip < 70; ++ip) t.want_request(ip, 0, 20, 1);
  EXPECT_TRUE(mac_is(t.find(3), kMacB));
  for (uint32_t ip = 70; ip < 80; ++ip) t.want_request(ip, 0, 200, 1);
  EXPECT_EQ(t.find(3), nullptr);
  EXPECT_NE(t.find(1000), nullptr);
  EXPECT_LE(t.size(), 8u);
}

// Eviction closes the gap in the probe run: every entry left is still found, against a
// reference model, over many random inserts and evictions; with the default key and with a
// secret one (the slot hash is keyed: docs/security.md).
class NeighKeyed : public ::testing::TestWithParam<HashKey> {};

TEST_P(NeighKeyed, EvictionKeepsEveryOtherEntryFindable) {
  NeighTable t(64, 1, 1, GetParam());
  std::map<uint32_t, uint64_t> model;  // ip -> when requested
  std::mt19937 rng(7);
  for (uint64_t now = 10; now < 5000; ++now) {
    const uint32_t ip = rng() % 512 + 1;
    if (t.want_request(ip, 0, now, 1000000)) model[ip] = now;
    uint32_t present = 0;
    for (const auto& [k, v] : model) {
      const Neigh* n = t.find(k);
      if (n) {
        ++present;
        EXPECT_EQ(n->ip, k);
      }
    }
    ASSERT_EQ(present, t.size()) << "at " << now;
  }
  EXPECT_GT(t.evictions(), 1000u);
}
INSTANTIATE_TEST_SUITE_P(Keys, NeighKeyed,
                         ::testing::Values(HashKey{}, HashKey{0x243f6a8885a308d3ull, 0x13198a2e03707344ull}));

// ---- the manager ----

using test::Arp;
using test::Frame;
using test::ip4;
using test::Mac;

const Mac kOurMac{0x02, 0, 0, 0, 0, 0x01};
const Mac kHostMac{0x02, 0, 0, 0, 0, 0x02};
const Mac kEvilMac{0x02, 0xee, 0xee, 0xee, 0xee, 0xee};
const uint32_t kVip = ip4("203.0.113.10");
const uint32_t kLocal = ip4("198.51.100.100");
const uint32_t kBackend = ip4("198.51.100.3");
const uint32_t kGateway = ip4("198.51.100.1");
using V = NeighManager::Verdict::Kind;

// VIP :80 -> backend 198.51.100.3 (on-link on port 0); everything else via 198.51.100.1.
std::unique_ptr<Snapshot> snapshot() {
  api::State st;
  st.generation = 1;
  api::Vip v;
  v.id = 1;
  v.ip = api::Addr::from_v4(kVip);
  v.port = 80;
  api::Backend b;
  b.id = 1;
  b.ip = api::Addr::from_v4(kBackend);
  b.port = 3000;
  v.backends = {b};
  st.vips = {v};
  st.local_ips = {api::Addr::from_v4(kLocal)};
  api::Route link, dflt;
  link.prefix = api::Addr::from_v4(ip4("198.51.100.0"));
  link.prefix_len = 24;
  dflt.prefix = api::Addr::from_v4(0);  // 0.0.0.0/0 (a default api::Route is ::/0)
  dflt.via = api::Addr::from_v4(kGateway);
  st.routes = {link, dflt};
  return build_snapshot(st);
}

Arp arp(uint16_t op, uint32_t sip, const Mac& smac, uint32_t tip) {
  Arp a;
  a.eth_src = smac;
  a.eth_dst = op == 1 ? Mac{0xff, 0xff, 0xff, 0xff, 0xff, 0xff} : kOurMac;
  a.op = op;
  a.sha = smac;
  a.sip = sip;
  a.tip = tip;
  a.pad_to = 60;
  return a;
}

class Manager : public ::testing::Test {
 protected:
  Manager() {
    NeighManagerParams p;
    p.hz = 1000;
    p.port_macs = {kOurMac};
    p.capacity = 16;
    m_ = std::make_unique<NeighManager>(p);
    snap_ = snapshot();
  }
  ~Manager() override {
    // Every frame the manager took or made ends one way (counters.h).
    const LcoreCounters& c = m_->counters();
    uint64_t drops = 0;
    for (auto d : c.drops) drops += d;
    EXPECT_EQ(c.steered_in + c.originated, c.consumed + drops + c.steered_out);
  }
  NeighManager::Verdict feed(const Arp& a, uint64_t now) {
    Frame f = test::build(a);
    last_ = f;
    auto v = m_->handle_arp(snap_.get(), f.data(), static_cast<uint32_t>(f.size()), 0, now);
    last_ = f;
    return v;
  }
  std::vector<uint32_t> requested() {
    std::vector<uint32_t> ips;
    for (const auto& r : m_->requests()) ips.push_back(ntohl(r.target_ip));
    m_->requests().clear();
    return ips;
  }
  std::unique_ptr<NeighManager> m_;
  std::unique_ptr<Snapshot> snap_;
  Frame last_;
};

TEST_F(Manager, AsksForConfiguredNextHopsOnly) {
  m_->on_snapshot(*snap_, 0);
  // The default route's gateway and the backend: nothing else.
  EXPECT_EQ(requested(), (std::vector<uint32_t>{kGateway, kBackend}));
  EXPECT_EQ(m_->table().size(), 2u);
  // Re-asked once a second while unanswered, not more often.
  m_->tick(snap_.get(), 500);
  EXPECT_TRUE(requested().empty());
  m_->tick(snap_.get(), 1600);
  EXPECT_EQ(requested().size(), 2u);
}

TEST_F(Manager, AnswersForOurAddressesAndLearnsNothingFromRequests) {
  m_->on_snapshot(*snap_, 0);
  requested();
  for (uint32_t i = 0; i < 100; ++i) {  // an ARP storm from random senders at the VIP
    Mac mac{0x02, 0, 0, 0, static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i)};
    const auto v = feed(arp(1, ip4("198.51.100.0") + 150 + i % 100, mac, kVip), i);
    ASSERT_EQ(v.kind, V::kReply);
  }
  EXPECT_EQ(m_->table().size(), 2u);  // the two configured next hops, still
  EXPECT_EQ(m_->counters().arp_replies, 100u);
  // The reply itself.
  feed(arp(1, kBackend, kHostMac, kLocal), 200);
  Arp want = arp(2, kLocal, kOurMac, kBackend);
  want.eth_dst = kHostMac;
  want.tha = kHostMac;
  EXPECT_EQ(last_, test::build(want)) << test::hex(last_);
  // Not ours: not answered.
  EXPECT_EQ(feed(arp(1, kBackend, kHostMac, ip4("198.51.100.77")), 300).reason,
            DropReason::kArpNotForUs);
}

TEST_F(Manager, RefusesBadSendersAndUnsolicitedChanges) {
  m_->on_snapshot(*snap_, 0);
  requested();
  // Answer for the backend: learned.
  EXPECT_EQ(feed(arp(2, kBackend, kHostMac, kLocal), 1).kind, V::kConsumed);
  ASSERT_TRUE(mac_is(m_->table().find(htonl(kBackend)), kHostMac.data()));
  // Sender MAC broadcast, zero, or not the Ethernet source: dropped, nothing learned.
  for (const Mac& sha : {Mac{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, Mac{}, kEvilMac}) {
    Arp a = arp(2, kBackend, kHostMac, kLocal);
    a.sha = sha;
    const auto v = feed(a, 2);
    EXPECT_EQ(v.kind, V::kDrop);
    EXPECT_EQ(v.reason, DropReason::kArpBadSender);
  }
  // A well-formed gratuitous ARP from another MAC: taken in, but the entry stays.
  feed(arp(2, kBackend, kEvilMac, kLocal), 3);
  feed(arp(1, kBackend, kEvilMac, kBackend), 4);
  EXPECT_TRUE(mac_is(m_->table().find(htonl(kBackend)), kHostMac.data()));
}

TEST_F(Manager, PublishesWhenAnEntryChangesOnly) {
  auto first = m_->next_hops_if_changed();
  ASSERT_NE(first, nullptr);  // the first call always gives one (empty here)
  EXPECT_EQ(first->size(), 0u);
  m_->on_snapshot(*snap_, 0);
  requested();
  EXPECT_EQ(m_->next_hops_if_changed() != nullptr, true);  // static entries replaced
  EXPECT_EQ(m_->next_hops_if_changed(), nullptr);           // nothing since
  feed(arp(2, kBackend, kHostMac, kLocal), 1);
  auto map = m_->next_hops_if_changed();
  ASSERT_NE(map, nullptr);
  const NextHop* h = map->find(htonl(kBackend));
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(0, std::memcmp(h->mac, kHostMac.data(), 6));
  EXPECT_EQ(map->find(htonl(kGateway)), nullptr);  // asked, not answered: not published
  // The same MAC confirmed again changes nothing a worker sees.
  feed(arp(2, kBackend, kHostMac, kLocal), 2);
  EXPECT_EQ(m_->next_hops_if_changed(), nullptr);
}

TEST_F(Manager, WorkersQuestionsAreDeduplicatedAndRateLimited) {
  m_->on_snapshot(*snap_, 0);
  requested();
  const uint32_t peer = htonl(ip4("198.51.100.42"));  // an on-link client
  for (uint64_t now = 10; now < 1000; now += 10) m_->want(snap_.get(), peer, 0, now);
  EXPECT_EQ(requested(), (std::vector<uint32_t>{ip4("198.51.100.42")}));
  m_->want(snap_.get(), peer, 0, 1010);  // a second later: asked again
  EXPECT_EQ(requested().size(), 1u);
  // An address no route puts on the link (it is behind the gateway), or on another port:
  // never asked for, whatever a worker says.
  m_->want(snap_.get(), htonl(ip4("192.0.2.9")), 0, 2000);
  m_->want(snap_.get(), peer, 1, 3000);
  m_->want(snap_.get(), 0, 0, 3000);
  EXPECT_TRUE(requested().empty());
  // Resolved meanwhile: not asked again.
  feed(arp(2, ip4("198.51.100.42"), kHostMac, kLocal), 3001);
  m_->want(snap_.get(), peer, 0, 5000);
  EXPECT_TRUE(requested().empty());
}

TEST_F(Manager, CountsRequestsItBuilds) {
  m_->on_snapshot(*snap_, 0);
  uint8_t buf[64];
  for (const auto& r : m_->requests()) EXPECT_EQ(m_->build_request(r, buf), 60u);
  m_->requests().clear();
  EXPECT_EQ(m_->counters().arp_requests, 2u);
  EXPECT_EQ(m_->counters().originated, 2u);
  m_->handover_failed();  // a ring was full
  EXPECT_EQ(m_->counters().drops[static_cast<uint32_t>(DropReason::kArpQueueFull)], 1u);
  m_->tick(snap_.get(), 0);
  EXPECT_EQ(m_->counters().neigh_entries, 2u);
  EXPECT_EQ(m_->counters().neigh_capacity, 16u);
}

}  // namespace
}  // namespace rondo::dp
