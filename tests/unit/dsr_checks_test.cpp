// DSR backends checked through their tunnel (controlplane/health/dsr_checks.h): marks per
// backend, the plan's targets and map entries from a desired state, and DsrChecks keeping a
// (fake) map in step. The kernel side is tests/e2e/dsr_checks_test.py's.
#include "controlplane/health/dsr_checks.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "controlplane/health/dsr_tunnel.h"

namespace rondo::cp {
namespace {

constexpr uint32_t kBase = 0x52440000;
constexpr uint32_t kVip = 0xcb00710a;  // 203.0.113.10

// ---- marks ------------------------------------------------------------------------------

TEST(MarkAllocator, LowestFreeIndexAndStableWhileKept) {
  MarkAllocator m(kBase);
  auto a = m.assign({7, 3, 9}, nullptr);  // by id: 3, 7, 9
  EXPECT_EQ(a, (std::map<uint32_t, uint32_t>{{3, kBase}, {7, kBase + 1}, {9, kBase + 2}}));
  // 7 leaves, 5 comes: 5 takes 7's index; 3 and 9 keep theirs.
  a = m.assign({3, 9, 5}, nullptr);
  EXPECT_EQ(a, (std::map<uint32_t, uint32_t>{{3, kBase}, {5, kBase + 1}, {9, kBase + 2}}));
  // Duplicates are one backend.
  EXPECT_EQ(m.assign({3, 3}, nullptr), (std::map<uint32_t, uint32_t>{{3, kBase}}));
}

TEST(MarkAllocator, BeyondTheRangeUnmarked) {
  MarkAllocator m(kBase);
  std::vector<uint32_t> ids;
  for (uint32_t i = 0; i <= 0x10000; ++i) ids.push_back(i);
  std::vector<uint32_t> unmarked;
  const auto a = m.assign(ids, &unmarked);
  EXPECT_EQ(a.size(), 0x10000u);
  EXPECT_EQ(a.at(0xffff), kBase | 0xffff);
  EXPECT_EQ(unmarked, std::vector<uint32_t>{0x10000});
}

TEST(MarkBase, Validated) {
  EXPECT_EQ(validate_mark_base(kBase), "");
  EXPECT_NE(validate_mark_base(0), "");
  EXPECT_NE(validate_mark_base(kBase | 1).find("low 16 bits"), std::string::npos);
}

// ---- the plan ---------------------------------------------------------------------------

VipSpec vip(std::string name, api::Mode mode, uint16_t port, std::vector<BackendSpec> backends,
            HealthCheck::Type type = HealthCheck::Type::kHttp, uint16_t check_port = 0) {
  VipSpec v;
  v.name = std::move(name);
  v.ip = api::Addr::from_v4(kVip);
  v.port = port;
  v.mode = mode;
  v.health_check.type = type;
  v.health_check.port = check_port;
  v.backends = std::move(backends);
  return v;
}

BackendSpec backend(uint32_t id, uint32_t ip, uint16_t port) {
  BackendSpec b;
  b.id = id;
  b.ip = api::Addr::from_v4(ip);
  b.port = port;
  return b;
}

DesiredState every_mode() {
  DesiredState d;
  d.vips.push_back(vip("nat", api::Mode::kFullNat, 80, {backend(0, 0x0a000001, 8080)}));
  d.vips.push_back(vip("ipip", api::Mode::kIpip, 81, {backend(1, 0x0a000002, 81)}));
  d.vips.push_back(vip("gue", api::Mode::kGue, 82, {backend(2, 0x0a000003, 82)},
                       HealthCheck::Type::kTcp, 9000));
  d.vips.push_back(vip("l2", api::Mode::kL2Dsr, 83, {backend(3, 0x0a000004, 83)}));
  d.vips.push_back(
      vip("unchecked", api::Mode::kIpip, 84, {backend(4, 0x0a000005, 84)}, HealthCheck::Type::kNone));
  return d;
}

// A target in one line: "id ip:port mark via", so that a whole plan reads at a glance.
std::vector<std::string> lines(const std::vector<HealthChecker::Target>& ts) {
  std::vector<std::string> out;
  for (const auto& t : ts) {
    char buf[96];
    // IPv4 as 8 hex digits (every_mode() is all IPv4; v6_modes() is checked field by
    // field); "0" for no via.
    std::snprintf(buf, sizeof buf, "%u %08x:%u %08x %08x", t.backend_id, t.ip.v4(), t.port, t.mark,
                  t.via.v4());
    out.push_back(buf);
  }
  return out;
}

TEST(DsrPlan, DsrBackendsCheckTheVipThroughTheirMark) {
  MarkAllocator m(kBase);
  const CheckPlan p = DsrChecks::plan(every_mode(), /*tunnel=*/true, &m);
  EXPECT_EQ(lines(p.targets), (std::vector<std::string>{
                                  "0 0a000001:8080 00000000 00000000",  // fullnat: its own address
                                  "1 cb00710a:81 52440000 0a000002",     // VIP:port, via it
                                  "2 cb00710a:9000 52440001 0a000003",   // the check's port
                                  "3 cb00710a:83 52440002 0a000004",
                              }));
  ASSERT_EQ(p.entries.size(), 3u);
  EXPECT_EQ(p.entries[0], (TunnelEntry{.mark = kBase, .backend_ip = api::Addr::from_v4(0x0a000002),
                                       .mode = api::Mode::kIpip}));
  EXPECT_EQ(p.entries[1], (TunnelEntry{.mark = kBase + 1,
                                       .backend_ip = api::Addr::from_v4(0x0a000003),
                                       .mode = api::Mode::kGue, .gue_port = api::kGuePort}));
  EXPECT_EQ(p.entries[2].mode, api::Mode::kL2Dsr);
  EXPECT_TRUE(p.entries[2].src.is_zero());  // the checker's own address as the outer source
  // The specs are the VIPs' own.
  EXPECT_EQ(p.targets[1].spec.kind, HealthCheckSpec::Kind::kHttp);
  EXPECT_EQ(p.targets[2].spec.kind, HealthCheckSpec::Kind::kTcp);
  EXPECT_TRUE(p.notes.empty());
}

TEST(DsrPlan, WithoutTheTunnelEveryBackendOnItsOwnAddress) {
  MarkAllocator m(kBase);
  const CheckPlan p = DsrChecks::plan(every_mode(), /*tunnel=*/false, &m);
  EXPECT_EQ(lines(p.targets), (std::vector<std::string>{
                                  "0 0a000001:8080 00000000 00000000",
                                  "1 0a000002:81 00000000 00000000",
                                  "2 0a000003:9000 00000000 00000000",
                                  "3 0a000004:83 00000000 00000000",
                              }));
  EXPECT_TRUE(p.entries.empty());
  // The same as health_targets(), which knows nothing of modes.
  EXPECT_EQ(p.targets, health_targets(every_mode()));
}

// ---- IPv6 backends -----------------------------------------------------------------------

api::Addr v6(const char* text) {
  api::Addr a;
  EXPECT_EQ(inet_pton(AF_INET6, text, a.b.data()), 1) << text;
  return a;
}

BackendSpec backend6(uint32_t id, const char* ip, uint16_t port) {
  BackendSpec b;
  b.id = id;
  b.ip = v6(ip);
  b.port = port;
  return b;
}

// Every family v6 DSR has (docs/modes.md): 66 in ipip, gue and l2dsr, 46 in ipip and gue.
DesiredState v6_modes() {
  DesiredState d;
  auto add = [&](const char* name, api::Mode mode, uint16_t port, api::Addr vip_ip, BackendSpec b) {
    VipSpec v = vip(name, mode, port, {std::move(b)});
    v.ip = vip_ip;
    d.vips.push_back(std::move(v));
  };
  const api::Addr vip6 = v6("2001:db8::10");
  add("ipip66", api::Mode::kIpip, 90, vip6, backend6(10, "2001:db8:100::3", 90));
  add("gue66", api::Mode::kGue, 91, vip6, backend6(11, "2001:db8:100::4", 91));
  add("l2dsr66", api::Mode::kL2Dsr, 92, vip6, backend6(12, "2001:db8:100::5", 92));
  add("ipip46", api::Mode::kIpip, 93, api::Addr::from_v4(kVip), backend6(13, "2001:db8:100::6", 93));
  add("gue46", api::Mode::kGue, 94, api::Addr::from_v4(kVip), backend6(14, "2001:db8:100::7", 94));
  return d;
}

TEST(DsrPlan, Ipv6BackendsCheckTheVipThroughTheirTunnel) {
  MarkAllocator m(kBase);
  const CheckPlan p = DsrChecks::plan(v6_modes(), /*tunnel=*/true, &m);
  const char* backends[] = {"2001:db8:100::3", "2001:db8:100::4", "2001:db8:100::5",
                            "2001:db8:100::6", "2001:db8:100::7"};
  const api::Mode modes[] = {api::Mode::kIpip, api::Mode::kGue, api::Mode::kL2Dsr,
                             api::Mode::kIpip, api::Mode::kGue};
  ASSERT_EQ(p.targets.size(), 5u);
  ASSERT_EQ(p.entries.size(), 5u);
  for (size_t i = 0; i < 5; ++i) {
    SCOPED_TRACE(backends[i]);
    // The socket connects to the VIP in the VIP's family (IPv6 for 66, IPv4 for 46) ...
    EXPECT_EQ(p.targets[i].ip, i < 3 ? v6("2001:db8::10") : api::Addr::from_v4(kVip));
    EXPECT_EQ(p.targets[i].port, 90 + i);
    EXPECT_EQ(p.targets[i].mark, kBase + i);
    EXPECT_EQ(p.targets[i].via, v6(backends[i]));
    // ... and the program sends it to the IPv6 backend, from the checker's own address.
    EXPECT_EQ(p.entries[i], (TunnelEntry{.mark = kBase + static_cast<uint32_t>(i),
                                         .backend_ip = v6(backends[i]),
                                         .mode = modes[i]}));
  }
  EXPECT_TRUE(p.notes.empty());
}

// The map's value as rondo_hc_encap.bpf.c reads it (bpf/hc_encap/hc_encap.h): an IPv4
// address in the first word, an IPv6 one whole, both in network order; the family beside.
TEST(TunnelValue, Ipv4AndIpv6Layouts) {
  const hc_backend v4 = to_value({.mark = kBase, .backend_ip = api::Addr::from_v4(0x0a000002),
                                  .mode = api::Mode::kGue});
  const uint8_t want4[16] = {10, 0, 0, 2};
  EXPECT_EQ(std::memcmp(v4.addr, want4, 16), 0);
  const uint8_t zero[16] = {};
  EXPECT_EQ(std::memcmp(v4.src, zero, 16), 0);
  EXPECT_EQ(v4.family, HC_FAMILY_V4);
  EXPECT_EQ(v4.mode, HC_MODE_GUE);
  EXPECT_EQ(v4.gue_port, htons(6080));

  const hc_backend v6v = to_value({.mark = kBase, .backend_ip = v6("2001:db8:100::3"),
                                   .mode = api::Mode::kIpip, .src = v6("2001:db8:100::1")});
  const uint8_t want6[16] = {0x20, 0x01, 0x0d, 0xb8, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3};
  const uint8_t src6[16] = {0x20, 0x01, 0x0d, 0xb8, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  EXPECT_EQ(std::memcmp(v6v.addr, want6, 16), 0);
  EXPECT_EQ(std::memcmp(v6v.src, src6, 16), 0);
  EXPECT_EQ(v6v.family, HC_FAMILY_V6);
  EXPECT_EQ(v6v.mode, HC_MODE_IPIP);
  // The modes' values are api::Mode's.
  EXPECT_EQ(to_value({.backend_ip = v6("::1"), .mode = api::Mode::kL2Dsr}).mode, HC_MODE_L2DSR);
}

// ---- DsrChecks with a map ---------------------------------------------------------------

class FakeMap : public TunnelMap {
 public:
  bool sync(const std::vector<TunnelEntry>& entries, std::string* err) override {
    held = entries;
    ++syncs;
    if (fail) *err = "refused";
    return !fail;
  }
  std::vector<TunnelEntry> held;
  int syncs = 0;
  bool fail = false;
};

TEST(DsrChecks, KeepsTheMapInStep) {
  auto owned = std::make_unique<FakeMap>();
  FakeMap* map = owned.get();
  DsrChecks dsr(std::move(owned), kBase);
  EXPECT_TRUE(dsr.configured());
  DesiredState d = every_mode();
  EXPECT_EQ(dsr.apply(d).size(), 4u);
  EXPECT_EQ(map->held.size(), 3u);

  // The ipip backend leaves: its entry goes, the others keep their marks.
  d.vips[1].backends.clear();
  EXPECT_EQ(dsr.apply(d).size(), 3u);
  ASSERT_EQ(map->held.size(), 2u);
  EXPECT_EQ(map->held[0].mark, kBase + 1);
  EXPECT_EQ(map->held[1].mark, kBase + 2);
  // A new DSR backend takes the freed mark.
  d.vips[3].backends.push_back(backend(9, 0x0a000009, 83));
  dsr.apply(d);
  ASSERT_EQ(map->held.size(), 3u);
  EXPECT_EQ(map->held[0].mark, kBase);
  EXPECT_EQ(map->held[0].backend_ip, api::Addr::from_v4(0x0a000009));
}

TEST(DsrChecks, ARefusedMapStillChecks) {
  auto owned = std::make_unique<FakeMap>();
  owned->fail = true;
  DsrChecks dsr(std::move(owned), kBase);
  // The checks of DSR backends fail (the program drops unknown marks): they are not
  // silently moved to the backends' own addresses.
  const auto targets = dsr.apply(every_mode());
  ASSERT_EQ(targets.size(), 4u);
  EXPECT_NE(targets[1].mark, 0u);
}

TEST(DsrChecks, NotConfigured) {
  DsrChecks dsr(nullptr, kBase);
  EXPECT_FALSE(dsr.configured());
  EXPECT_EQ(dsr.apply(every_mode()), health_targets(every_mode()));
}

}  // namespace
}  // namespace rondo::cp
