// NeighTable: what an ARP frame may change, and a bound that an attacker cannot turn into
// a table full for good. NeighManager (the main lcore's): what it answers, learns, asks
// for and publishes. Interfaces (VLANs): entries keyed by (interface, address), frames in
// and out with the interface's tag, answers on the wrong VLAN filling nothing.
#include "dataplane/neigh/neigh.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include "dataplane/neigh/manager.h"
#include "tests/common/iface_setup.h"
#include "tests/common/packet_builder.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
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

// Every frame the manager took or made ends one way (counters.h).
void expect_balanced(const LcoreCounters& c) {
  uint64_t drops = 0;
  for (auto d : c.drops) drops += d;
  EXPECT_EQ(c.steered_in + c.originated, c.consumed + drops + c.steered_out);
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
  ~Manager() override { expect_balanced(m_->counters()); }
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

// ---- interfaces (a port and an optional VLAN) ----
//
// The table is keyed by (interface, address): the same address on two interfaces is two
// entries, and an answer fills only the entry of the interface it came in on.

TEST(NeighTable6, TheSameLinkLocalOnTwoInterfacesIsTwoEntries) {
  NeighTable6 t(16, 3, 100);
  const Ip6 router = ip6("fe80::1");
  ASSERT_TRUE(t.want_request(0, router, 1, 1));
  ASSERT_TRUE(t.want_request(1, router, 1, 1));  // not "asked already": another entry
  EXPECT_EQ(t.size(), 2u);
  EXPECT_EQ(t.learn(0, router, kMacA, 2), L::kFilled);
  EXPECT_EQ(t.find(1, router)->state, NeighState::kIncomplete);  // the other link's untouched
  EXPECT_EQ(t.learn(1, router, kMacB, 3), L::kFilled);
  EXPECT_EQ(0, std::memcmp(t.find(0, router)->mac, kMacA, 6));
  EXPECT_EQ(0, std::memcmp(t.find(1, router)->mac, kMacB, 6));
  EXPECT_EQ(t.find(2, router), nullptr);
  // The workers' copy: two next hops, each on its interface.
  const NextHopMap6 map(t, HashKey{});
  EXPECT_EQ(map.size(), 2u);
  ASSERT_NE(map.find(0, router), nullptr);
  ASSERT_NE(map.find(1, router), nullptr);
  EXPECT_EQ(0, std::memcmp(map.find(0, router)->mac, kMacA, 6));
  EXPECT_EQ(0, std::memcmp(map.find(1, router)->mac, kMacB, 6));
  EXPECT_EQ(map.find(1, router)->iface, 1);
  EXPECT_EQ(map.find(2, router), nullptr);
}

TEST(NeighTable, AnAnswerOnAnotherInterfaceFillsNothingAndMovesNothing) {
  NeighTable t(16, 3, 100);
  ASSERT_TRUE(t.want_request(3, 7, 1, 1));
  EXPECT_EQ(t.learn(4, 7, kMacA, 2), L::kIgnored);  // asked on 3, answered on 4
  EXPECT_EQ(t.find(3, 7)->state, NeighState::kIncomplete);
  EXPECT_EQ(t.find(4, 7), nullptr);
  EXPECT_EQ(t.learn(3, 7, kMacB, 3), L::kFilled);
  // Re-checked on 3; an answer on 4 with another MAC neither fills nor moves it.
  ASSERT_TRUE(t.want_request(3, 7, 10, 1));
  EXPECT_EQ(t.learn(4, 7, kMacA, 11), L::kIgnored);
  EXPECT_TRUE(mac_is(t.find(3, 7), kMacB));
  EXPECT_EQ(t.find(3, 7)->iface, 3);
  EXPECT_EQ(t.find(4, 7), nullptr);
  // Static entries are their interface's too.
  Neigh e;
  std::memcpy(e.mac, kMacA, 6);
  e.iface = 5;
  t.set_static({{9, e}});
  EXPECT_TRUE(mac_is(t.find(5, 9), kMacA));
  EXPECT_EQ(t.find(3, 9), nullptr);
}

const Mac kOurMac2{0x02, 0, 0, 0, 0, 0x11};  // port 1
const Mac kClientMac{0x02, 0xc1, 0, 0, 0, 0x02};
const Mac kRouterA{0x02, 0xaa, 0, 0, 0, 0x01};
const Mac kRouterB{0x02, 0xbb, 0, 0, 0, 0x01};
const uint32_t kClientsAddr = ip4("192.0.2.1");     // interface 0's own address
const uint32_t kBackendsAddr = ip4("198.51.100.254");  // interface 1's
const uint32_t kClient = ip4("192.0.2.2");
const Ip6 kClientsAddr6 = ip6("2001:db8:200::1");
const Ip6 kClientV6 = ip6("2001:db8:200::2");
const Ip6 kRouter = ip6("fe80::1");
constexpr uint16_t kVid100 = 100, kVid200 = 200;
constexpr uint16_t kClients = 0, kBackends = 1, kStorage = 2, kSpare = 3;  // interface ids

api::Addr addr6(const Ip6& a) {
  api::Addr x;
  std::memcpy(x.b.data(), a.b, 16);
  return x;
}

// Port 0 carries three interfaces: clients (VLAN 100; 192.0.2.1/24, 2001:db8:200::1/64),
// backends (untagged; 198.51.100.254/24) and storage (VLAN 200, no address); port 1 one:
// spare (untagged, no address). The VIPs and the local ips are answered on all of them.
// Routes: 192.0.2.0/24 on clients, 198.51.100.0/24 on backends, 10.0.0.0/8 on storage, the
// rest via 198.51.100.1 on backends; for IPv6 2001:db8:200::/64 on clients, the rest via fe80::1 on clients and
// 2001:db8:300::/48 via fe80::1 on backends: two routers with one link-local address.
std::unique_ptr<Snapshot> vlan_snapshot(uint16_t clients_vid = kVid100) {
  api::State st;
  st.generation = 1;
  api::Vip v;
  v.id = 1;
  v.ip = api::Addr::from_v4(kVip);
  v.port = 80;
  v.backends = {{1, api::Addr::from_v4(kBackend), 3000, 1}};
  api::Vip v6;
  v6.id = 2;
  v6.ip = addr6(kVip6);
  v6.port = 80;
  v6.backends = {{2, addr6(kBackend6), 3000, 1}};
  st.vips = {v, v6};
  st.local_ips = {api::Addr::from_v4(kLocal), addr6(kLocal6)};
  auto route = [](api::Addr prefix, uint8_t len, uint16_t iface, api::Addr via = {}) {
    api::Route r;
    r.prefix = prefix;
    r.prefix_len = len;
    r.iface = iface;
    r.via = via;
    return r;
  };
  st.routes = {
      route(api::Addr::from_v4(ip4("192.0.2.0")), 24, kClients),
      route(api::Addr::from_v4(ip4("198.51.100.0")), 24, kBackends),
      route(api::Addr::from_v4(ip4("10.0.0.0")), 8, kStorage),
      route(api::Addr::from_v4(0), 0, kBackends, api::Addr::from_v4(kGateway)),
      route(addr6(ip6("2001:db8:200::")), 64, kClients),
      route(addr6(Ip6{}), 0, kClients, addr6(kRouter)),
      route(addr6(ip6("2001:db8:300::")), 48, kBackends, addr6(kRouter)),
  };
  SnapshotParams sp;
  sp.n_ports = 2;
  auto s = build_snapshot(st, sp);
  // The interfaces, set by hand (their builder is the control side's, state/snapshot.cpp).
  test::set_iface(*s, kClients, 0, clients_vid, {htonl(kClientsAddr)}, {kClientsAddr6});
  test::set_iface(*s, kBackends, 0, 0, {htonl(kBackendsAddr)});
  test::set_iface(*s, kStorage, 0, kVid200);
  test::set_iface(*s, kSpare, 1, 0);
  s->first_iface = kBackends;
  return s;
}

class Vlan : public ::testing::Test {
 protected:
  Vlan() {
    NeighManagerParams p;
    p.hz = 1000;
    p.port_macs = {kOurMac, kOurMac2};
    p.capacity = 64;
    m_ = std::make_unique<NeighManager>(p);
    snap_ = vlan_snapshot();
    m_->on_snapshot(*snap_, 0);
    m_->on_conf6(ndp_conf(*snap_), 0);
  }
  ~Vlan() override { expect_balanced(m_->counters()); }
  // A frame as a worker hands it over (tag and all), in a buffer with an mbuf's room.
  NeighManager::Verdict feed(const Frame& in, uint16_t port, uint64_t now) {
    Frame f = in;
    f.resize(256);
    const auto len = static_cast<uint32_t>(in.size());
    const auto v = m_->handle_frame(snap_.get(), f.data(), len, 256, port, now);
    f.resize(v.len ? v.len : len);
    last_ = f;
    return v;
  }
  static Arp request_for(uint32_t tip, std::optional<uint16_t> tci, uint32_t sip = kClient) {
    Arp a;
    a.eth_src = a.sha = kClientMac;
    a.vlan = tci;
    a.sip = sip;
    a.tip = tip;
    a.pad_to = tci ? 64 : 60;
    return a;
  }
  static Arp reply_to(const Arp& q, const Mac& mine, std::optional<uint16_t> tci) {
    Arp r = q;
    r.eth_dst = q.eth_src;
    r.eth_src = r.sha = mine;
    r.tha = q.sha;
    r.op = 2;
    r.sip = q.tip;
    r.tip = q.sip;
    r.vlan = tci;
    if (!q.vlan == !tci) return r;
    r.pad_to = tci ? q.pad_to + 4 : q.pad_to - 4;
    return r;
  }
  std::vector<ArpRequest> take_requests() {
    auto out = m_->requests();
    m_->requests().clear();
    return out;
  }
  std::vector<NsRequest> take_solicits() {
    auto out = m_->ns_requests();
    m_->ns_requests().clear();
    return out;
  }
  std::unique_ptr<NeighManager> m_;
  std::unique_ptr<Snapshot> snap_;
  Frame last_;
};

TEST_F(Vlan, TaggedRequestGetsATaggedReplyWithPcpZero) {
  // PCP 3 on the way in (TCI 0x6064); the reply carries VLAN 100 with PCP 0.
  const Arp q = request_for(kVip, 0x6064);
  const auto v = feed(test::build(q), 0, 1);
  ASSERT_EQ(v.kind, V::kReply) << drop_reason_name(v.reason);
  EXPECT_EQ(v.port, 0);
  EXPECT_EQ(last_, test::build(reply_to(q, kOurMac, 0x0064))) << test::hex(last_);
  EXPECT_EQ(last_.size(), 64u);
  // The same for a local ip (every interface), on VLAN 200 too.
  const Arp q2 = request_for(kLocal, 0x00c8);
  ASSERT_EQ(feed(test::build(q2), 0, 2).kind, V::kReply);
  EXPECT_EQ(last_, test::build(reply_to(q2, kOurMac, 0x00c8))) << test::hex(last_);
  // Untagged on port 0 is the backends interface: an untagged reply.
  const Arp q3 = request_for(kVip, std::nullopt, ip4("198.51.100.2"));
  ASSERT_EQ(feed(test::build(q3), 0, 3).kind, V::kReply);
  EXPECT_EQ(last_, test::build(reply_to(q3, kOurMac, std::nullopt))) << test::hex(last_);
  // Port 1's MAC on port 1.
  const auto v1 = feed(test::build(q3), 1, 4);
  ASSERT_EQ(v1.kind, V::kReply);
  EXPECT_EQ(v1.port, 1);
  EXPECT_EQ(last_, test::build(reply_to(q3, kOurMac2, std::nullopt))) << test::hex(last_);
  EXPECT_EQ(m_->counters().arp_replies, 4u);
}

TEST_F(Vlan, AnInterfaceAddressIsAnsweredOnItsInterfaceOnly) {
  // The clients interface's address on VLAN 100: answered, from that address.
  const Arp q = request_for(kClientsAddr, 0x0064);
  ASSERT_EQ(feed(test::build(q), 0, 1).kind, V::kReply);
  EXPECT_EQ(last_, test::build(reply_to(q, kOurMac, 0x0064))) << test::hex(last_);
  // Not on the backends interface (untagged), nor on VLAN 200, nor on port 1.
  EXPECT_EQ(feed(test::build(request_for(kClientsAddr, std::nullopt)), 0, 2).reason,
            DropReason::kArpNotForUs);
  EXPECT_EQ(feed(test::build(request_for(kClientsAddr, 0x00c8)), 0, 3).reason,
            DropReason::kArpNotForUs);
  EXPECT_EQ(feed(test::build(request_for(kClientsAddr, std::nullopt)), 1, 4).reason,
            DropReason::kArpNotForUs);
  // The backends interface's address: untagged on port 0 only.
  EXPECT_EQ(feed(test::build(request_for(kBackendsAddr, 0x0064)), 0, 5).reason,
            DropReason::kArpNotForUs);
  const Arp q2 = request_for(kBackendsAddr, std::nullopt, ip4("198.51.100.2"));
  ASSERT_EQ(feed(test::build(q2), 0, 6).kind, V::kReply);
  EXPECT_EQ(last_, test::build(reply_to(q2, kOurMac, std::nullopt))) << test::hex(last_);
  // A VLAN no interface has: not classified at all.
  EXPECT_EQ(feed(test::build(request_for(kVip, 0x012c)), 0, 7).reason, DropReason::kVlanMismatch);
  EXPECT_EQ(feed(test::build(request_for(kVip, 0x0064)), 1, 8).reason, DropReason::kVlanMismatch);
}

TEST_F(Vlan, PriorityTaggedRequestOnTheUntaggedInterfaceGetsAnUntaggedReply) {
  // VID 0 (802.1p priority only) is untagged: the backends interface; its reply has no tag
  // (4 bytes shorter).
  const Arp q = request_for(kVip, 0xa000, ip4("198.51.100.2"));
  const auto v = feed(test::build(q), 0, 1);
  ASSERT_EQ(v.kind, V::kReply) << drop_reason_name(v.reason);
  EXPECT_EQ(v.len, 60u);
  EXPECT_EQ(last_, test::build(reply_to(q, kOurMac, std::nullopt))) << test::hex(last_);
}

TEST_F(Vlan, RequestsComeFromTheInterfaceAddressWithItsTag) {
  // on_snapshot asked for the configured next hops: the gateway and the backend, both on
  // the backends interface, from its address.
  auto asked = take_requests();
  ASSERT_EQ(asked.size(), 2u);
  for (const auto& r : asked) {
    EXPECT_EQ(r.iface, kBackends);
    EXPECT_EQ(r.sender_ip, htonl(kBackendsAddr));
  }
  Frame f(NeighManager::kArpFrameMax, 0xee);
  ASSERT_EQ(m_->build_request(asked[0], f.data()), 60u);
  f.resize(60);
  Arp want;
  want.eth_src = want.sha = kOurMac;
  want.sip = kBackendsAddr;
  want.tip = kGateway;
  want.pad_to = 60;
  EXPECT_EQ(f, test::build(want)) << test::hex(f);
  // A worker's question about a client on the clients interface: a request tagged 100
  // (64 bytes: the same payload as untagged), from 192.0.2.1.
  m_->want(snap_.get(), htonl(kClient), kClients, 10);
  asked = take_requests();
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_EQ(m_->port_of(asked[0].iface), 0);
  f.assign(NeighManager::kArpFrameMax, 0xee);
  ASSERT_EQ(m_->build_request(asked[0], f.data()), 64u);
  want.vlan = 0x0064;
  want.sip = kClientsAddr;
  want.tip = kClient;
  want.pad_to = 64;
  EXPECT_EQ(f, test::build(want)) << test::hex(f);
  // The same address asked on another interface: no route puts it there, never asked.
  m_->want(snap_.get(), htonl(kClient), kBackends, 2000);
  m_->want(snap_.get(), htonl(kClient), kStorage, 2000);
  EXPECT_TRUE(take_requests().empty());
  // An interface without an IPv4 address asks from the first local ip, with its own tag.
  m_->want(snap_.get(), htonl(ip4("10.0.0.9")), kStorage, 3000);
  asked = take_requests();
  ASSERT_EQ(asked.size(), 1u);
  const ArpRequest storage = asked[0];
  EXPECT_EQ(storage.sender_ip, htonl(kLocal));
  f.assign(NeighManager::kArpFrameMax, 0xee);
  ASSERT_EQ(m_->build_request(storage, f.data()), 64u);
  want.vlan = 0x00c8;
  want.sip = kLocal;
  want.tip = ip4("10.0.0.9");
  EXPECT_EQ(f, test::build(want)) << test::hex(f);
  // An interface the snapshot does not have: nothing built, nothing counted.
  const uint64_t before = m_->counters().originated;
  EXPECT_EQ(m_->build_request(ArpRequest{77, htonl(kClient), htonl(kLocal)}, f.data()), 0u);
  EXPECT_EQ(m_->counters().originated, before);
}

TEST_F(Vlan, AnArpAnswerOnTheWrongVlanFillsNothing) {
  take_requests();
  m_->want(snap_.get(), htonl(kClient), kClients, 10);
  ASSERT_EQ(take_requests().size(), 1u);
  m_->next_hops_if_changed();
  // The answer, untagged (the backends interface) and on VLAN 200: to the local ip, so that
  // it is ours on every interface and reaches the table: nothing filled, nothing published.
  for (std::optional<uint16_t> tci : {std::optional<uint16_t>{}, std::optional<uint16_t>{0x00c8}}) {
    Arp a = request_for(kLocal, tci);
    a.op = 2;
    a.eth_dst = a.tha = kOurMac;
    EXPECT_EQ(feed(test::build(a), 0, 11).kind, V::kConsumed);
  }
  // To the clients interface's own address from the wrong VLAN: not even ours there.
  Arp a = request_for(kClientsAddr, std::nullopt);
  a.op = 2;
  a.eth_dst = a.tha = kOurMac;
  EXPECT_EQ(feed(test::build(a), 0, 12).reason, DropReason::kArpNotForUs);
  const Neigh* n = m_->table().find(kClients, htonl(kClient));
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->state, NeighState::kIncomplete);
  EXPECT_EQ(m_->table().find(kBackends, htonl(kClient)), nullptr);
  EXPECT_EQ(m_->table().find(kStorage, htonl(kClient)), nullptr);
  EXPECT_EQ(m_->next_hops_if_changed(), nullptr);
  // On VLAN 100: filled, published on the clients interface only.
  a.vlan = 0x0064;
  EXPECT_EQ(feed(test::build(a), 0, 13).kind, V::kConsumed);
  auto map = m_->next_hops_if_changed();
  ASSERT_NE(map, nullptr);
  ASSERT_NE(map->find(kClients, htonl(kClient)), nullptr);
  EXPECT_EQ(0, std::memcmp(map->find(kClients, htonl(kClient))->mac, kClientMac.data(), 6));
  EXPECT_EQ(map->find(kBackends, htonl(kClient)), nullptr);
}

TEST_F(Vlan, AnInterfaceMovedToAnotherVlanForgetsWhatItLearned) {
  // The client on the clients interface (VLAN 100) and the gateway on the backends one
  // (untagged), both asked for and answered.
  take_requests();
  m_->want(snap_.get(), htonl(kClient), kClients, 10);
  ASSERT_EQ(take_requests().size(), 1u);
  Arp a = request_for(kLocal, 0x0064);
  a.op = 2;
  a.eth_dst = a.tha = kOurMac;
  ASSERT_EQ(feed(test::build(a), 0, 11).kind, V::kConsumed);
  Arp g;
  g.op = 2;
  g.eth_src = g.sha = kRouterA;
  g.eth_dst = g.tha = kOurMac;
  g.sip = kGateway;
  g.tip = kBackendsAddr;
  g.pad_to = 60;
  ASSERT_EQ(feed(test::build(g), 0, 12).kind, V::kConsumed);
  ASSERT_TRUE(mac_is(m_->table().find(kClients, htonl(kClient)), kClientMac.data()));
  ASSERT_TRUE(mac_is(m_->table().find(kBackends, htonl(kGateway)), kRouterA.data()));
  auto map = m_->next_hops_if_changed();
  ASSERT_NE(map, nullptr);
  ASSERT_NE(map->find(kClients, htonl(kClient)), nullptr);
  // (IPv6 goes the same way: table6_ is erased alongside; the table's own test below.)
  // A new snapshot: the clients interface is on VLAN 300 now, and a static neighbour
  // appears on it.
  auto next = vlan_snapshot(300);
  NeighConf st;
  st.ip = htonl(ip4("192.0.2.9"));
  std::memcpy(st.mac, kRouterB.data(), 6);
  st.iface = kClients;
  next->neighbours = {st};
  snap_ = std::move(next);
  m_->on_snapshot(*snap_, 20);
  m_->on_conf6(ndp_conf(*snap_), 20);
  take_requests();
  // What VLAN 100 said is gone, from the table and from the workers' map; the gateway
  // (its interface unchanged) stays; the static entry is the new snapshot's.
  EXPECT_EQ(m_->table().find(kClients, htonl(kClient)), nullptr);
  EXPECT_TRUE(mac_is(m_->table().find(kBackends, htonl(kGateway)), kRouterA.data()));
  EXPECT_TRUE(mac_is(m_->table().find(kClients, htonl(ip4("192.0.2.9"))), kRouterB.data()));
  map = m_->next_hops_if_changed();
  ASSERT_NE(map, nullptr);
  EXPECT_EQ(map->find(kClients, htonl(kClient)), nullptr);
  ASSERT_NE(map->find(kBackends, htonl(kGateway)), nullptr);
  EXPECT_EQ(0, std::memcmp(map->find(kBackends, htonl(kGateway))->mac, kRouterA.data(), 6));
  ASSERT_NE(map->find(kClients, htonl(ip4("192.0.2.9"))), nullptr);
  // The next lookup misses: the worker asks, and the request goes out tagged 300.
  m_->want(snap_.get(), htonl(kClient), kClients, 30);
  auto asked = take_requests();
  ASSERT_EQ(asked.size(), 1u);
  Frame f(NeighManager::kArpFrameMax, 0xee);
  ASSERT_EQ(m_->build_request(asked[0], f.data()), 64u);
  f.resize(64);
  Arp want;
  want.eth_src = want.sha = kOurMac;
  want.vlan = 300;
  want.sip = kClientsAddr;
  want.tip = kClient;
  want.pad_to = 64;
  EXPECT_EQ(f, test::build(want)) << test::hex(f);
  // A snapshot that changes nothing about the interfaces keeps what was learned.
  a.vlan = 300;
  ASSERT_EQ(feed(test::build(a), 0, 31).kind, V::kConsumed);
  ASSERT_TRUE(mac_is(m_->table().find(kClients, htonl(kClient)), kClientMac.data()));
  auto same = vlan_snapshot(300);
  same->neighbours = {st};
  snap_ = std::move(same);
  m_->on_snapshot(*snap_, 40);
  EXPECT_TRUE(mac_is(m_->table().find(kClients, htonl(kClient)), kClientMac.data()));
  EXPECT_TRUE(mac_is(m_->table().find(kBackends, htonl(kGateway)), kRouterA.data()));
}

TEST(NeighTable6, EraseIfaceForgetsThatInterfacesLearnedEntriesOnly) {
  NeighTable6 t(16);
  const Ip6 r = ip6("fe80::1");
  const uint8_t mac[6] = {2, 0, 0, 0, 0, 1};
  ASSERT_TRUE(t.want_request(1, r, 1, 1));
  ASSERT_TRUE(t.want_request(2, r, 1, 1));
  ASSERT_EQ(t.learn(1, r, mac, 2), NeighLearned::kFilled);
  ASSERT_EQ(t.learn(2, r, mac, 2), NeighLearned::kFilled);
  Neigh6 e;
  std::memcpy(e.mac, mac, 6);
  e.iface = 1;
  t.set_static({{ip6("fe80::2"), e}});
  const uint64_t v = t.version();
  EXPECT_EQ(t.erase_iface(1), 1u);
  EXPECT_GT(t.version(), v);
  EXPECT_EQ(t.find(1, r), nullptr);
  ASSERT_NE(t.find(2, r), nullptr);
  EXPECT_EQ(t.find(2, r)->state, NeighState::kReachable);
  ASSERT_NE(t.find(1, ip6("fe80::2")), nullptr);
  EXPECT_EQ(t.find(1, ip6("fe80::2"))->state, NeighState::kStatic);
  EXPECT_EQ(t.size(), 2u);
}

// The Ndp fixture's frames, with a tag.
Frame nd_frame(Nd n, std::optional<uint16_t> tci) {
  Frame f = build_nd(n);
  if (!tci) return f;
  const uint8_t tag[4] = {0x81, 0x00, static_cast<uint8_t>(*tci >> 8), static_cast<uint8_t>(*tci)};
  f.insert(f.begin() + 12, tag, tag + 4);
  return f;
}

TEST_F(Vlan, TaggedSolicitationGetsATaggedAdvertisement) {
  for (const Ip6& target : {kVip6, kLocal6, kClientsAddr6, kOurLinkLocal}) {
    Nd ns;
    ns.eth_src = ns.lla_mac = kClientMac;
    ns.src = kClientV6;
    ns.target = target;
    ns.dst = solicited_node(target);
    const MacAddr g = multicast_mac6(ns.dst);
    std::copy(g.begin(), g.end(), ns.eth_dst.begin());
    const auto v = feed(nd_frame(ns, 0x2064), 0, 1);  // PCP 1, VLAN 100
    ASSERT_EQ(v.kind, V::kReply) << drop_reason_name(v.reason);
    EXPECT_EQ(v.port, 0);
    EXPECT_EQ(v.len, 90u);
    test::Ndp na;  // the shared builder, with the tag (PCP 0)
    na.type = 136;
    na.vlan = 0x0064;
    na.eth_src = kOurMac;
    na.eth_dst = kClientMac;
    std::memcpy(na.src6.data(), target.b, 16);
    std::memcpy(na.target.data(), target.b, 16);
    std::memcpy(na.dst6.data(), kClientV6.b, 16);
    na.solicited = na.override_flag = true;
    na.lladdr = kOurMac;
    EXPECT_EQ(last_, test::build(na)) << test::hex(last_);
  }
  // The clients interface's address, untagged (the backends interface) or on VLAN 200: not
  // ours there. A VLAN nobody has: vlan_mismatch.
  Nd ns;
  ns.eth_src = ns.lla_mac = kClientMac;
  ns.src = kClientV6;
  ns.target = kClientsAddr6;
  ns.dst = solicited_node(kClientsAddr6);
  EXPECT_EQ(feed(nd_frame(ns, std::nullopt), 0, 2).reason, DropReason::kNdpNotForUs);
  EXPECT_EQ(feed(nd_frame(ns, 0x00c8), 0, 3).reason, DropReason::kNdpNotForUs);
  EXPECT_EQ(feed(nd_frame(ns, 0x0065), 0, 4).reason, DropReason::kVlanMismatch);
  // A buffer too short for the tagged advertisement (86 bytes would do untagged).
  Frame f = nd_frame(ns, 0x0064);
  const auto in_len = static_cast<uint32_t>(f.size());
  f.resize(89);
  EXPECT_EQ(m_->handle_frame(snap_.get(), f.data(), in_len, 89, 0, 5).reason, DropReason::kNoMbuf);
}

TEST_F(Vlan, TheSameLinkLocalRouterOnTwoInterfacesIsTwoEntries) {
  // Both routes' gateway is fe80::1, one on clients (VLAN 100), one on backends: two
  // solicitations, one per interface, each with its interface's tag.
  auto asked = take_solicits();
  std::vector<uint16_t> ifaces;
  for (const auto& r : asked)
    if (r.target == kRouter) ifaces.push_back(r.iface);
  std::sort(ifaces.begin(), ifaces.end());
  ASSERT_EQ(ifaces, (std::vector<uint16_t>{kClients, kBackends}));
  Frame f(NeighManager::kNdpFrameMax, 0xee);
  ASSERT_EQ(m_->build_ns(NsRequest{kClients, kRouter}, f.data()), 90u);
  test::Ndp ns;
  ns.vlan = 0x0064;
  ns.eth_src = kOurMac;
  ns.src6 = test::ip6("fe80::ff:fe00:1");
  ns.target = test::ip6("fe80::1");
  ns.lladdr = kOurMac;
  EXPECT_EQ(f, test::build(ns)) << test::hex(f);
  f.assign(NeighManager::kNdpFrameMax, 0xee);
  ASSERT_EQ(m_->build_ns(NsRequest{kBackends, kRouter}, f.data()), 86u);
  f.resize(86);
  ns.vlan.reset();
  EXPECT_EQ(f, test::build(ns)) << test::hex(f);
  m_->next_hops6_if_changed();
  // Router A answers on VLAN 100, router B untagged: each fills its own entry.
  auto advert = [](const Mac& mac) {
    Nd na;
    na.type = 136;
    na.eth_src = na.lla_mac = mac;
    na.eth_dst = kOurMac;
    na.src = na.target = kRouter;
    na.dst = kOurLinkLocal;
    na.flags = 0x60;
    return na;
  };
  EXPECT_EQ(feed(nd_frame(advert(kRouterA), 0x0064), 0, 1).kind, V::kConsumed);
  EXPECT_EQ(feed(nd_frame(advert(kRouterB), std::nullopt), 0, 2).kind, V::kConsumed);
  auto map = m_->next_hops6_if_changed();
  ASSERT_NE(map, nullptr);
  ASSERT_NE(map->find(kClients, kRouter), nullptr);
  ASSERT_NE(map->find(kBackends, kRouter), nullptr);
  EXPECT_EQ(0, std::memcmp(map->find(kClients, kRouter)->mac, kRouterA.data(), 6));
  EXPECT_EQ(0, std::memcmp(map->find(kBackends, kRouter)->mac, kRouterB.data(), 6));
  // Router A, unsolicited, untagged (override set): B's entry keeps B's MAC.
  EXPECT_EQ(feed(nd_frame(advert(kRouterA), std::nullopt), 0, 3).kind, V::kConsumed);
  EXPECT_EQ(m_->next_hops6_if_changed(), nullptr);
  EXPECT_EQ(0, std::memcmp(m_->table6().find(kBackends, kRouter)->mac, kRouterB.data(), 6));
}

TEST_F(Vlan, AnAdvertisementOnTheWrongVlanFillsNothing) {
  take_solicits();
  m_->want6(kClientV6, kClients, 10);
  ASSERT_EQ(take_solicits().size(), 1u);
  m_->next_hops6_if_changed();
  Nd na;
  na.type = 136;
  na.eth_src = na.lla_mac = kClientMac;
  na.eth_dst = kOurMac;
  na.src = na.target = kClientV6;
  na.dst = kOurLinkLocal;
  na.flags = 0x60;
  EXPECT_EQ(feed(nd_frame(na, std::nullopt), 0, 11).kind, V::kConsumed);
  EXPECT_EQ(feed(nd_frame(na, 0x00c8), 0, 12).kind, V::kConsumed);
  EXPECT_EQ(m_->table6().find(kClients, kClientV6)->state, NeighState::kIncomplete);
  EXPECT_EQ(m_->table6().find(kBackends, kClientV6), nullptr);
  EXPECT_EQ(m_->next_hops6_if_changed(), nullptr);
  EXPECT_EQ(feed(nd_frame(na, 0x0064), 0, 13).kind, V::kConsumed);
  auto map = m_->next_hops6_if_changed();
  ASSERT_NE(map, nullptr);
  EXPECT_NE(map->find(kClients, kClientV6), nullptr);
  EXPECT_EQ(map->find(kBackends, kClientV6), nullptr);
}

TEST_F(Vlan, AnnouncementsCarryTheInterfaceTag) {
  Frame f(NeighManager::kNdpFrameMax, 0xee);
  ASSERT_EQ(m_->build_unsolicited_na(NsRequest{kClients, kClientsAddr6}, f.data()), 90u);
  test::Ndp na;
  na.type = 136;
  na.vlan = 0x0064;
  na.eth_src = kOurMac;
  std::memcpy(na.src6.data(), kClientsAddr6.b, 16);
  std::memcpy(na.target.data(), kClientsAddr6.b, 16);
  na.dst6 = test::ip6("ff02::1");
  na.override_flag = true;
  na.lladdr = kOurMac;
  EXPECT_EQ(f, test::build(na)) << test::hex(f);
  // Port 1's interface: port 1's MAC, untagged.
  f.assign(NeighManager::kNdpFrameMax, 0xee);
  ASSERT_EQ(m_->build_unsolicited_na(NsRequest{kSpare, kVip6}, f.data()), 86u);
  f.resize(86);
  na.vlan.reset();
  na.eth_src = kOurMac2;
  na.lladdr = kOurMac2;
  std::memcpy(na.src6.data(), kVip6.b, 16);
  std::memcpy(na.target.data(), kVip6.b, 16);
  EXPECT_EQ(f, test::build(na)) << test::hex(f);
}

}  // namespace
}  // namespace rondo::dp
