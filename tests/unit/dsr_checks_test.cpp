// DSR backends checked through their tunnel (controlplane/health/dsr_checks.h): marks per
// backend, the plan's targets and map entries from a desired state, and DsrChecks keeping a
// (fake) map in step. The kernel side is tests/e2e/dsr_checks_test.py's.
#include "controlplane/health/dsr_checks.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

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
    // IPv4 as 8 hex digits (the plan is all IPv4: DSR is, for now); "0" for no via.
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
  EXPECT_EQ(p.entries[0], (TunnelEntry{.mark = kBase, .backend_ip = 0x0a000002,
                                       .mode = api::Mode::kIpip}));
  EXPECT_EQ(p.entries[1], (TunnelEntry{.mark = kBase + 1, .backend_ip = 0x0a000003,
                                       .mode = api::Mode::kGue, .gue_port = api::kGuePort}));
  EXPECT_EQ(p.entries[2].mode, api::Mode::kL2Dsr);
  EXPECT_EQ(p.entries[2].src, 0u);  // the checker's own address as the outer source
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
  EXPECT_EQ(map->held[0].backend_ip, 0x0a000009u);
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
