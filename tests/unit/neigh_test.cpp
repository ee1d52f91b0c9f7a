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
  EXPECT_EQ(t.learn(0, 7, kMacA, 1), L::kIgnored);
  EXPECT_EQ(t.find(0, 7), nullptr);
  EXPECT_EQ(t.size(), 0u);
}

TEST(NeighTable, AskedForIsFilledUnsolicitedNeverChangesAMac) {
  NeighTable t(16, 3, 100);
  ASSERT_TRUE(t.want_request(0, 7, 1, 1));
  EXPECT_EQ(t.learn(0, 7, kMacA, 2), L::kFilled);
  EXPECT_TRUE(mac_is(t.find(0, 7), kMacA));
  // Gratuitous, another MAC: refused. The same MAC: a refresh.
  EXPECT_EQ(t.learn(0, 7, kMacB, 3), L::kRefused);
  EXPECT_TRUE(mac_is(t.find(0, 7), kMacA));
  EXPECT_EQ(t.learn(0, 7, kMacA, 4), L::kRefreshed);
  EXPECT_EQ(t.find(0, 7)->updated, 4u);
  // Re-checked (a request outstanding): the answer may move it.
  ASSERT_TRUE(t.want_request(0, 7, 10, 1));
  EXPECT_EQ(t.learn(0, 7, kMacB, 11), L::kFilled);
  EXPECT_TRUE(mac_is(t.find(0, 7), kMacB));
  // ...once: the request is answered.
  EXPECT_EQ(t.learn(0, 7, kMacA, 12), L::kRefused);
}

TEST(NeighTable, StaticEntriesAreNeverLearnedOver) {
  NeighTable t(16, 3, 100);
  Neigh e;
  std::memcpy(e.mac, kMacA, 6);
  t.set_static({{9, e}});
  EXPECT_EQ(t.learn(0, 9, kMacB, 1), L::kIgnored);
  EXPECT_TRUE(mac_is(t.find(0, 9), kMacA));
  EXPECT_FALSE(t.want_request(0, 9, 2, 1));
}

// Issue 8, item 3: 4096 requests from random senders filled main's table for good. Now only
// wanted addresses get entries, and when the table is full a stale one makes room.
TEST(NeighTable, FullTableEvictsStaleEntriesNeverStaticOrFresh) {
  NeighTable t(8, /*incomplete*/ 3, /*reachable*/ 100);
  Neigh e;
  std::memcpy(e.mac, kMacA, 6);
  t.set_static({{1000, e}});
  for (uint32_t ip = 1; ip <= 7; ++ip) ASSERT_TRUE(t.want_request(0, ip, 10, 1));
  ASSERT_EQ(t.size(), 8u);
  // Full, and every request is fresh: nothing may go.
  EXPECT_FALSE(t.want_request(0, 50, 11, 1));
  EXPECT_EQ(t.find(0, 50), nullptr);
  // Entry 3 answered and stays in use; the other requests went unanswered for 3 ticks.
  ASSERT_EQ(t.learn(0, 3, kMacB, 12), L::kFilled);
  EXPECT_TRUE(t.want_request(0, 50, 14, 1));
  EXPECT_NE(t.find(0, 50), nullptr);
  EXPECT_EQ(t.size(), 8u);
  EXPECT_EQ(t.evictions(), 1u);
  EXPECT_NE(t.find(0, 1000), nullptr);
  EXPECT_TRUE(mac_is(t.find(0, 3), kMacB));
  // A reachable entry goes only once it was not confirmed for 100 ticks.
  for (uint32_t ip = 60; ip < 70; ++ip) t.want_request(0, ip, 20, 1);
  EXPECT_TRUE(mac_is(t.find(0, 3), kMacB));
  for (uint32_t ip = 70; ip < 80; ++ip) t.want_request(0, ip, 200, 1);
  EXPECT_EQ(t.find(0, 3), nullptr);
  EXPECT_NE(t.find(0, 1000), nullptr);
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
    if (t.want_request(0, ip, now, 1000000)) model[ip] = now;
    uint32_t present = 0;
    for (const auto& [k, v] : model) {
      const Neigh* n = t.find(0, k);
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
  ASSERT_TRUE(mac_is(m_->table().find(0, htonl(kBackend)), kHostMac.data()));
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
  EXPECT_TRUE(mac_is(m_->table().find(0, htonl(kBackend)), kHostMac.data()));
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
  const NextHop* h = map->find(0, htonl(kBackend));
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(0, std::memcmp(h->mac, kHostMac.data(), 6));
  EXPECT_EQ(map->find(0, htonl(kGateway)), nullptr);  // asked, not answered: not published
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

// ---- NDP (RFC 4861) ----
//
// Frames are built here, byte by byte, with the checksum computed from scratch over a
// pseudo-header assembled as bytes: nothing is taken from the code under test.

Ip6 ip6(const char* s) {
  Ip6 a;
  EXPECT_EQ(inet_pton(AF_INET6, s, a.b), 1) << s;
  return a;
}

const Ip6 kVip6 = ip6("2001:db8::10");
const Ip6 kLocal6 = ip6("2001:db8:100::100");
const Ip6 kClient6 = ip6("2001:db8:100::2");
const Ip6 kBackend6 = ip6("2001:db8:100::3");
// kOurMac 02:00:00:00:00:01 -> modified EUI-64 0000:00ff:fe00:0001 (U/L bit flipped).
const Ip6 kOurLinkLocal = ip6("fe80::ff:fe00:1");
const Ip6 kAllNodes = ip6("ff02::1");

uint16_t ref_icmp6_csum(const Ip6& src, const Ip6& dst, const std::vector<uint8_t>& msg) {
  std::vector<uint8_t> b(src.b, src.b + 16);
  b.insert(b.end(), dst.b, dst.b + 16);
  const uint32_t len = static_cast<uint32_t>(msg.size());
  for (int sh : {24, 16, 8, 0}) b.push_back(static_cast<uint8_t>(len >> sh));
  b.insert(b.end(), {0, 0, 0, 58});
  b.insert(b.end(), msg.begin(), msg.end());
  if (b.size() % 2) b.push_back(0);
  uint32_t sum = 0;
  for (size_t i = 0; i < b.size(); i += 2) sum += static_cast<uint32_t>(b[i] << 8 | b[i + 1]);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

struct Nd {
  Mac eth_src = kHostMac;
  Mac eth_dst = {0x33, 0x33, 0xff, 0, 0, 0x10};
  Ip6 src = kClient6, dst = ip6("ff02::1:ff00:10");
  uint8_t hop = 255;
  uint8_t type = 135;
  uint8_t code = 0;
  uint8_t flags = 0;  // NA: R S O in the top bits
  Ip6 target = kVip6;
  bool lla = true;    // NS: source link-layer option; NA: target link-layer option
  Mac lla_mac = kHostMac;
  std::vector<uint8_t> extra_opts;  // appended as is
  int csum_fix = 0;                 // added to the checksum (a wrong one)
};

Frame build_nd(const Nd& n) {
  std::vector<uint8_t> m = {n.type, n.code, 0, 0, n.flags, 0, 0, 0};
  m.insert(m.end(), n.target.b, n.target.b + 16);
  if (n.lla) {
    m.push_back(n.type == 135 ? 1 : 2);
    m.push_back(1);
    m.insert(m.end(), n.lla_mac.begin(), n.lla_mac.end());
  }
  m.insert(m.end(), n.extra_opts.begin(), n.extra_opts.end());
  const auto c = static_cast<uint16_t>(ref_icmp6_csum(n.src, n.dst, m) + n.csum_fix);
  m[2] = static_cast<uint8_t>(c >> 8);
  m[3] = static_cast<uint8_t>(c);
  Frame f(n.eth_dst.begin(), n.eth_dst.end());
  f.insert(f.end(), n.eth_src.begin(), n.eth_src.end());
  f.insert(f.end(), {0x86, 0xdd, 0x60, 0, 0, 0, static_cast<uint8_t>(m.size() >> 8),
                     static_cast<uint8_t>(m.size()), 58, n.hop});
  f.insert(f.end(), n.src.b, n.src.b + 16);
  f.insert(f.end(), n.dst.b, n.dst.b + 16);
  f.insert(f.end(), m.begin(), m.end());
  return f;
}

class Ndp : public Manager {
 protected:
  Ndp() {
    m_->on_snapshot(*snap_, 0);
    requested();
    NdpConf c;
    c.own = {kVip6, kLocal6};
    c.backends = {kBackend6};  // no v6 routes: on-link on port 0
    m_->on_conf6(c, 0);
  }
  NeighManager::Verdict feed6(const Nd& n, uint64_t now) {
    Frame f = build_nd(n);
    const auto in_len = static_cast<uint32_t>(f.size());
    f.resize(256);  // room for the advertisement, as an mbuf has
    auto v = m_->handle_frame(snap_.get(), f.data(), in_len, static_cast<uint32_t>(f.size()), 0, now);
    f.resize(v.len ? v.len : in_len);
    last_ = f;
    return v;
  }
  std::vector<Ip6> solicited() {
    std::vector<Ip6> out;
    for (const auto& r : m_->ns_requests()) out.push_back(r.target);
    m_->ns_requests().clear();
    return out;
  }
  uint64_t drops(DropReason r) { return m_->counters().drops[static_cast<uint32_t>(r)]; }
};

TEST_F(Ndp, SolicitationForOurAddressGetsTheAdvertisement) {
  solicited();
  for (const Ip6& target : {kVip6, kLocal6, kOurLinkLocal}) {
    Nd ns;
    ns.target = target;
    ns.dst = ip6("ff02::1:ff00:0");
    std::memcpy(ns.dst.b + 13, target.b + 13, 3);
    ns.eth_dst = {0x33, 0x33, 0xff, target.b[13], target.b[14], target.b[15]};
    const auto v = feed6(ns, 1);
    ASSERT_EQ(v.kind, V::kReply) << drop_reason_name(v.reason);
    EXPECT_EQ(v.port, 0);
    // To the solicitation's source, from the target, S=1 O=1, our MAC as the target's.
    Nd na;
    na.type = 136;
    na.eth_src = kOurMac;
    na.eth_dst = kHostMac;
    na.src = target;
    na.dst = kClient6;
    na.flags = 0x60;
    na.target = target;
    na.lla_mac = kOurMac;
    EXPECT_EQ(last_, build_nd(na)) << test::hex(last_);
    EXPECT_EQ(v.len, 86u);
    // The shared test builder's frame is the same.
    test::Ndp shared;
    shared.type = 136;
    shared.eth_src = kOurMac;
    shared.eth_dst = kHostMac;
    std::memcpy(shared.src6.data(), target.b, 16);
    std::memcpy(shared.target.data(), target.b, 16);
    shared.dst6 = test::ip6("2001:db8:100::2");
    shared.solicited = shared.override_flag = true;
    shared.lladdr = kOurMac;
    EXPECT_EQ(last_, test::build(shared));
  }
  EXPECT_EQ(m_->counters().ndp_adverts, 3u);
  // A solicitation for our address creates no entry for its sender (not asked for).
  EXPECT_EQ(m_->table6().find(0, kClient6), nullptr);
}

TEST_F(Ndp, DuplicateAddressDetectionIsAnsweredToAllNodes) {
  Nd ns;
  ns.src = Ip6{};
  ns.lla = false;
  ASSERT_EQ(feed6(ns, 1).kind, V::kReply);
  Nd na;
  na.type = 136;
  na.eth_src = kOurMac;
  na.eth_dst = {0x33, 0x33, 0, 0, 0, 1};
  na.src = kVip6;
  na.dst = kAllNodes;
  na.flags = 0x20;  // S=0, O=1
  na.lla_mac = kOurMac;
  EXPECT_EQ(last_, build_nd(na)) << test::hex(last_);
}

TEST_F(Ndp, InvalidMessagesAreDropped) {
  struct C {
    const char* what;
    Nd nd;
  };
  std::vector<C> cases;
  auto add = [&](const char* what, auto edit) {
    Nd n;
    edit(n);
    cases.push_back({what, n});
  };
  add("hop limit 254", [](Nd& n) { n.hop = 254; });
  add("code 1", [](Nd& n) { n.code = 1; });
  add("bad checksum", [](Nd& n) { n.csum_fix = 1; });
  add("multicast target", [](Nd& n) { n.target = ip6("ff02::1"); });
  add("option of length 0", [](Nd& n) { n.extra_opts = {14, 0, 0, 0, 0, 0, 0, 0}; });
  add("option past the end", [](Nd& n) { n.extra_opts = {14, 2, 0, 0, 0, 0, 0, 0}; });
  add("DAD with a source link-layer option", [](Nd& n) { n.src = Ip6{}; });
  add("DAD to a unicast address", [](Nd& n) {
    n.src = Ip6{};
    n.lla = false;
    n.dst = kVip6;
  });
  add("multicast source", [](Nd& n) { n.src = ip6("ff02::2"); });
  add("link-layer option not the Ethernet source", [](Nd& n) { n.lla_mac = kEvilMac; });
  add("NA to a multicast group with S=1", [](Nd& n) {
    n.type = 136;
    n.flags = 0x40;
    n.dst = kAllNodes;
    n.target = kClient6;
  });
  for (const auto& c : cases) {
    const auto v = feed6(c.nd, 1);
    EXPECT_EQ(v.kind, V::kDrop) << c.what;
    EXPECT_EQ(v.reason, DropReason::kNdpInvalid) << c.what << ": " << drop_reason_name(v.reason);
  }
  EXPECT_EQ(drops(DropReason::kNdpInvalid), cases.size());
  // An ICMPv6 message of 23 bytes (the target cut short).
  Frame f = build_nd(Nd{});
  f[14 + 5] = 23;
  f.resize(14 + 40 + 23);
  f.resize(256);
  const auto v = m_->handle_frame(snap_.get(), f.data(), 14 + 40 + 23, 256, 0, 1);
  EXPECT_EQ(v.reason, DropReason::kNdpInvalid);
  EXPECT_EQ(m_->counters().ndp_adverts, 0u);
}

TEST_F(Ndp, SolicitationForAnotherAddressIsNotAnswered) {
  Nd ns;
  ns.target = ip6("2001:db8::11");
  ns.dst = ip6("ff02::1:ff00:11");
  const auto v = feed6(ns, 1);
  EXPECT_EQ(v.kind, V::kDrop);
  EXPECT_EQ(v.reason, DropReason::kNdpNotForUs);
  // Another port's link-local address is not ours on this link either.
  ns.target = ip6("fe80::ff:fe00:2");
  EXPECT_EQ(feed6(ns, 2).reason, DropReason::kNdpNotForUs);
}

TEST_F(Ndp, RouterAndMulticastListenerMessagesAreIgnored) {
  for (uint8_t type : {133, 134, 137, 130, 131, 132, 143}) {
    Nd n;
    n.type = type;
    n.lla = false;
    const auto v = feed6(n, 1);
    EXPECT_EQ(v.reason, DropReason::kNdpIgnored) << int{type};
  }
  EXPECT_EQ(drops(DropReason::kNdpIgnored), 7u);
}

TEST_F(Ndp, SolicitedAdvertisementFillsUnsolicitedNeverChangesAMac) {
  // The backend was asked for (on_conf6): its advertisement fills the entry.
  EXPECT_EQ(solicited(), std::vector<Ip6>{kBackend6});
  Nd na;
  na.type = 136;
  na.eth_dst = kOurMac;
  na.src = kBackend6;
  na.dst = kOurLinkLocal;
  na.flags = 0x60;
  na.target = kBackend6;
  EXPECT_EQ(feed6(na, 5).kind, V::kConsumed);
  const Neigh6* n = m_->table6().find(0, kBackend6);
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(0, std::memcmp(n->mac, kHostMac.data(), 6));
  auto map = m_->next_hops6_if_changed();
  ASSERT_NE(map, nullptr);
  const NextHop6* h = map->find(0, kBackend6);
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(0, std::memcmp(h->mac, kHostMac.data(), 6));
  EXPECT_EQ(map->find(0, kClient6), nullptr);
  // Unsolicited (override set, even "solicited" claimed), another MAC: refused.
  na.eth_src = kEvilMac;
  na.lla_mac = kEvilMac;
  EXPECT_EQ(feed6(na, 6).kind, V::kConsumed);
  EXPECT_EQ(0, std::memcmp(m_->table6().find(0, kBackend6)->mac, kHostMac.data(), 6));
  EXPECT_EQ(m_->next_hops6_if_changed(), nullptr);
  // An advertisement for an address nobody asked for creates nothing.
  na.src = na.target = kClient6;
  feed6(na, 7);
  EXPECT_EQ(m_->table6().find(0, kClient6), nullptr);
}

TEST_F(Ndp, ResolvingSendsASolicitationToTheSolicitedNodeGroup) {
  const auto asked = solicited();
  ASSERT_EQ(asked, std::vector<Ip6>{kBackend6});
  Frame f(NeighManager::kNdpFrameLen);
  ASSERT_EQ(m_->build_ns(NsRequest{0, kBackend6}, f.data()), 86u);
  Nd ns;
  ns.eth_src = kOurMac;
  ns.eth_dst = {0x33, 0x33, 0xff, 0x00, 0x00, 0x03};
  ns.src = kOurLinkLocal;
  ns.dst = ip6("ff02::1:ff00:3");
  ns.target = kBackend6;
  ns.lla_mac = kOurMac;
  EXPECT_EQ(f, build_nd(ns)) << test::hex(f);
  test::Ndp shared;  // the shared test builder's frame: the same
  shared.eth_src = kOurMac;
  shared.src6 = test::ip6("fe80::ff:fe00:1");
  shared.target = test::ip6("2001:db8:100::3");
  shared.lladdr = kOurMac;
  EXPECT_EQ(f, test::build(shared));
  // The checksum field verifies from scratch.
  std::vector<uint8_t> msg(f.begin() + 54, f.end());
  const uint16_t stored = static_cast<uint16_t>(msg[2] << 8 | msg[3]);
  msg[2] = msg[3] = 0;
  EXPECT_EQ(stored, ref_icmp6_csum(kOurLinkLocal, ip6("ff02::1:ff00:3"), msg));
  EXPECT_EQ(m_->counters().ndp_solicits, 1u);
  EXPECT_EQ(m_->counters().originated, 1u);
}

// After a bond's failover, NeighService::announce queues one per v6 address: an
// unsolicited advertisement (RFC 4861 7.2.6) to all nodes, S=0 O=1, hop limit 255, the
// target link-layer option, the checksum over the whole message.
TEST_F(Ndp, UnsolicitedAdvertisementAnnouncesOurAddressToAllNodes) {
  Frame f(NeighManager::kNdpFrameLen, 0xee);  // every byte written
  ASSERT_EQ(m_->build_unsolicited_na(NsRequest{0, kVip6}, f.data()), 86u);
  const Frame want = {
      0x33, 0x33, 0x00, 0x00, 0x00, 0x01,  // all-nodes MAC (RFC 2464 7)
      0x02, 0x00, 0x00, 0x00, 0x00, 0x01,  // ours
      0x86, 0xdd,
      0x60, 0x00, 0x00, 0x00, 0x00, 32, 58, 255,  // payload 32, ICMPv6, hop limit 255
      0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,  // from the VIP
      0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,        // to ff02::1
      136, 0, 0x00, 0x00,  // NA, code 0, checksum (below)
      0x20, 0, 0, 0,       // R=0 S=0 O=1
      0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,  // target
      2, 1, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01,                       // TLLAO: our MAC
  };
  ASSERT_EQ(f.size(), want.size());
  // Everything but the checksum, byte for byte.
  Frame got = f;
  got[56] = got[57] = 0;
  EXPECT_EQ(got, want) << test::hex(f);
  // The checksum from scratch: pseudo-header (src, dst, length 32, next header 58) + message.
  const std::vector<uint8_t> msg(want.begin() + 54, want.end());
  const uint16_t stored = static_cast<uint16_t>(f[56] << 8 | f[57]);
  EXPECT_EQ(stored, ref_icmp6_csum(kVip6, kAllNodes, msg));
  EXPECT_NE(stored, 0);
  // The test builders agree.
  Nd na;
  na.type = 136;
  na.eth_src = kOurMac;
  na.eth_dst = {0x33, 0x33, 0, 0, 0, 1};
  na.src = kVip6;
  na.dst = kAllNodes;
  na.flags = 0x20;
  na.lla_mac = kOurMac;
  EXPECT_EQ(f, build_nd(na));
  test::Ndp shared;
  shared.type = 136;
  shared.eth_src = kOurMac;
  shared.src6 = shared.target = test::ip6("2001:db8::10");
  shared.dst6 = test::ip6("ff02::1");
  shared.override_flag = true;
  shared.lladdr = kOurMac;
  EXPECT_EQ(f, test::build(shared));
  // The local ip the same way.
  ASSERT_EQ(m_->build_unsolicited_na(NsRequest{0, kLocal6}, f.data()), 86u);
  na.src = na.target = kLocal6;
  EXPECT_EQ(f, build_nd(na)) << test::hex(f);
  EXPECT_EQ(m_->counters().ndp_adverts, 2u);
  EXPECT_EQ(m_->counters().originated, 2u);
}

TEST_F(Ndp, WorkersQuestionsOnlyForOnLinkAddressesOrGateways) {
  solicited();
  m_->want6(kClient6, 0, 10);  // on-link (no routes: everything on port 0)
  EXPECT_EQ(solicited(), std::vector<Ip6>{kClient6});
  m_->want6(kClient6, 0, 20);  // within a second: not again
  m_->want6(kClient6, 1, 2000);  // another port
  m_->want6(ip6("ff02::1"), 0, 2000);
  m_->want6(Ip6{}, 0, 2000);
  EXPECT_TRUE(solicited().empty());
  // With routes: a /64 on-link on port 0, the rest via a link-local gateway on port 0.
  NdpConf c;
  c.own = {kVip6};
  RouteConf6 link, dflt;
  link.prefix = ip6("2001:db8:100::");
  link.len = 64;
  dflt.via = ip6("fe80::1");
  c.routes = {link, dflt};
  m_->on_conf6(c, 3000);
  EXPECT_EQ(solicited(), std::vector<Ip6>{ip6("fe80::1")});
  m_->want6(ip6("2001:db8:200::9"), 0, 5000);  // behind the gateway: never asked for
  EXPECT_TRUE(solicited().empty());
  m_->want6(ip6("2001:db8:100::9"), 0, 5000);
  EXPECT_EQ(solicited(), std::vector<Ip6>{ip6("2001:db8:100::9")});
  m_->want6(ip6("fe80::1"), 0, 9000);  // the gateway, unanswered for a while
  EXPECT_EQ(solicited(), std::vector<Ip6>{ip6("fe80::1")});
}

// An IPv6 backend has no IPv4 address (BackendConf::ip 0): it is NDP's, never an ARP for
// 0.0.0.0 (which an on-link default route would otherwise give it).
TEST_F(Manager, AsksNothingForAnIpv6Backend) {
  api::State st;
  st.generation = 1;
  api::Vip v;
  v.id = 1;
  v.ip = api::Addr::from_v4(kVip);
  v.port = 80;
  api::Backend b;
  b.id = 1;
  std::memcpy(b.ip.b.data(), kBackend6.b, 16);
  b.port = 3000;
  v.backends = {b};
  st.vips = {v};
  st.local_ips = {api::Addr::from_v4(kLocal)};
  api::Route dflt;
  dflt.prefix = api::Addr::from_v4(0);  // 0.0.0.0/0 on-link
  st.routes = {dflt};
  const auto snap = build_snapshot(st);
  ASSERT_EQ(snap->backends.size(), 1u);
  m_->on_snapshot(*snap, 0);
  EXPECT_EQ(requested(), std::vector<uint32_t>{});
  m_->tick(snap.get(), 1600);
  EXPECT_EQ(requested(), std::vector<uint32_t>{});
}

TEST(NeighTable6, SameRulesAsArp) {
  NeighTable6 t(16, 3, 100);
  const Ip6 a = ip6("2001:db8::7");
  EXPECT_EQ(t.learn(0, a, kMacA, 1), L::kIgnored);  // never created by a frame
  ASSERT_TRUE(t.want_request(0, a, 1, 1));
  EXPECT_EQ(t.learn(0, a, kMacA, 2), L::kFilled);
  EXPECT_EQ(t.learn(0, a, kMacB, 3), L::kRefused);
  EXPECT_EQ(t.learn(0, a, kMacA, 4), L::kRefreshed);
  // Addresses differing only in their high bytes are different entries.
  const Ip6 b = ip6("2001:db9::7");
  EXPECT_EQ(t.find(0, b), nullptr);
}

}  // namespace
}  // namespace rondo::dp
