// ControlPlane against a fake dataplane and a temporary directory: start-up (seed, state
// file, edited config), API changes (validated, persisted, pushed), reload as a diff, drain
// and forced removal, health, rates, and the JSON API on top.
#include "tests/unit/cp_fixtures.h"
#include "controlplane/state/control_plane.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "controlplane/api/rpc.h"
#include "fake_dataplane.h"

namespace rondo::cp {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
using testing::FakeDataplane;
using testing::FakeDataplaneClient;

api::Addr ip(const char* s) {
  auto a = api::parse_addr(s);
  EXPECT_TRUE(a) << s;
  return a.value_or(api::Addr{});
}

// Built field by field: a designated initializer here trips GCC 12's
// -Wmaybe-uninitialized on HealthCheck::path.
VipSpec vip(const char* name, const char* address, uint16_t port,
            api::Proto proto = api::Proto::kTcp) {
  VipSpec v;
  v.name = name;
  v.ip = ip(address);
  v.port = port;
  v.proto = proto;
  return v;
}

constexpr const char* kConfig = test::kTwoVipsConfig;

class TempDir {
 public:
  TempDir() {
    char t[] = "/tmp/rondo-cp-XXXXXX";
    path_ = mkdtemp(t);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  void write(const std::string& name, const std::string& text) const {
    std::ofstream(file(name)) << text;
  }

 private:
  std::string path_;
};

class ControlPlaneTest : public ::testing::Test {
 protected:
  ControlPlaneTest() {
    dir_.write("rondo.yaml", kConfig);
    options_.config_path = dir_.file("rondo.yaml");
    options_.state_path = dir_.file("state.json");
    options_.apply_timeout = 0ms;  // no controller thread: sync() is called by the test
    options_.rate_window = 1000ms;
  }

  // A control plane as the daemon makes one; `dp_` stays the same "process".
  std::unique_ptr<ControlPlane> make() {
    auto cp = std::make_unique<ControlPlane>(std::make_unique<FakeDataplaneClient>(dp_), options_);
    auto started = cp->start();
    EXPECT_TRUE(started.ok) << (started.errors.empty() ? "" : started.errors[0]);
    return cp;
  }

  void sync(ControlPlane& cp, std::chrono::milliseconds dt = 500ms) {
    now_ += dt;
    cp.sync(now_);
  }

  const BackendSpec* backend(const ControlPlane& cp, const char* vip, const char* addr,
                             uint16_t port) {
    static thread_local ControlPlaneView v;
    v = cp.view();
    const VipSpec* vs = v.desired.find_vip(vip);
    return vs ? vs->find_backend(ip(addr), port) : nullptr;
  }

  TempDir dir_;
  ControlPlaneOptions options_;
  std::shared_ptr<FakeDataplane> dp_ = std::make_shared<FakeDataplane>();
  ControlPlane::Clock::time_point now_{};
};

// ---- start-up ----

TEST_F(ControlPlaneTest, FirstStartSeedsFromTheConfigAndSavesTheState) {
  auto cp = make();
  EXPECT_TRUE(std::filesystem::exists(options_.state_path));
  sync(*cp);
  ASSERT_EQ(dp_->pushes.size(), 1u);
  const auto& s = dp_->last();
  ASSERT_EQ(s.vips.size(), 2u);
  EXPECT_EQ(s.vips[0].id, 0u);
  EXPECT_EQ(s.vips[1].id, 1u);
  EXPECT_EQ(s.vips[1].backends[0].id, 3u);
  const auto v = cp->view();
  EXPECT_TRUE(v.dataplane_connected);
  EXPECT_TRUE(v.in_sync);
  EXPECT_EQ(v.generation, 1u);
  EXPECT_TRUE(v.last_push);
  EXPECT_EQ(v.pushes, 1u);
  ASSERT_TRUE(v.stats);
}

TEST_F(ControlPlaneTest, ApiChangesSurviveARestart) {
  {
    auto cp = make();
    ASSERT_TRUE(cp->add_backend("web", ip("198.51.100.3"), 3004, 2, "test").ok());
    ASSERT_TRUE(cp->set_drained("web", ip("198.51.100.3"), 3001, true, "test").ok());
  }
  auto cp = make();
  const auto* added = backend(*cp, "web", "198.51.100.3", 3004);
  ASSERT_TRUE(added);
  EXPECT_EQ(added->id, 4u);
  EXPECT_EQ(added->weight, 2);
  EXPECT_TRUE(backend(*cp, "web", "198.51.100.3", 3001)->drained);
  sync(*cp);
  EXPECT_TRUE(dp_->backend(1)->drained);
  EXPECT_EQ(dp_->backend(4)->port, 3004);
}

TEST_F(ControlPlaneTest, AConfigEditedWhileStoppedIsAppliedAtStartKeepingIds) {
  {
    auto cp = make();
    ASSERT_TRUE(cp->set_drained("web", ip("198.51.100.3"), 3001, true, "test").ok());
    ASSERT_TRUE(cp->remove_backend("web", ip("198.51.100.4"), 3000, true, "test").ok());
  }
  // dns moves first, web loses 3000 and gains 3005; 198.51.100.4:3000 comes back.
  dir_.write("rondo.yaml", R"(local_ips: [198.51.100.100]
vips:
  - name: dns
    address: 203.0.113.10
    port: 53
    protocol: udp
    backends:
      - {address: 198.51.100.5, port: 53}
  - name: web
    address: 203.0.113.10
    port: 80
    backends:
      - {address: 198.51.100.3, port: 3001}
      - {address: 198.51.100.3, port: 3005}
      - {address: 198.51.100.4, port: 3000}
)");
  auto cp = make();
  EXPECT_EQ(cp->view().desired.find_vip("dns")->id, 1u);
  EXPECT_FALSE(backend(*cp, "web", "198.51.100.3", 3000));
  const auto* kept = backend(*cp, "web", "198.51.100.3", 3001);
  EXPECT_EQ(kept->id, 1u);
  EXPECT_TRUE(kept->drained);  // the file says nothing about drain
  // New entries get ids never used before (2 was 198.51.100.4:3000's, removed earlier).
  EXPECT_EQ(backend(*cp, "web", "198.51.100.3", 3005)->id, 4u);
  EXPECT_EQ(backend(*cp, "web", "198.51.100.4", 3000)->id, 5u);
}

TEST_F(ControlPlaneTest, AnUnchangedConfigDoesNotUndoApiChangesAtStart) {
  { ASSERT_TRUE(make()->add_backend("web", ip("198.51.100.3"), 3004, 1, "test").ok()); }
  auto cp = make();
  EXPECT_TRUE(backend(*cp, "web", "198.51.100.3", 3004));
}

TEST_F(ControlPlaneTest, ABadConfigAtStartKeepsTheSavedState) {
  { ASSERT_TRUE(make()->add_backend("web", ip("198.51.100.3"), 3004, 1, "test").ok()); }
  dir_.write("rondo.yaml", "vips: [\n");
  auto cp = make();
  EXPECT_TRUE(backend(*cp, "web", "198.51.100.3", 3004));
}

TEST_F(ControlPlaneTest, StartFailsWithoutAUsableSource) {
  dir_.write("rondo.yaml", "vips: [\n");
  ControlPlane bad_config(std::make_unique<FakeDataplaneClient>(dp_), options_);
  auto r = bad_config.start();
  EXPECT_FALSE(r.ok);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].rfind(options_.config_path + ":2: YAML syntax error", 0), 0u) << r.errors[0];
  EXPECT_FALSE(std::filesystem::exists(options_.state_path));

  dir_.write("state.json", "{\"format\": \"rondo-state/1\"}");
  dir_.write("rondo.yaml", kConfig);
  ControlPlane bad_state(std::make_unique<FakeDataplaneClient>(dp_), options_);
  r = bad_state.start();
  EXPECT_FALSE(r.ok);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_NE(r.errors[0].find("config_digest: missing"), std::string::npos) << r.errors[0];
}

TEST_F(ControlPlaneTest, OneControlPlanePerStateFile) {
  auto first = make();
  ControlPlane second(std::make_unique<FakeDataplaneClient>(dp_), options_);
  auto r = second.start();
  EXPECT_FALSE(r.ok);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0], "another control plane is running with " + options_.state_path);
  first.reset();
  ControlPlane third(std::make_unique<FakeDataplaneClient>(dp_), options_);
  EXPECT_TRUE(third.start().ok);
}

// ---- reload ----

TEST_F(ControlPlaneTest, ReloadAppliesTheFileAsADiff) {
  auto cp = make();
  sync(*cp);
  ASSERT_TRUE(cp->add_backend("web", ip("198.51.100.3"), 3009, 1, "test").ok());
  ASSERT_TRUE(cp->set_drained("web", ip("198.51.100.3"), 3000, true, "test").ok());
  dir_.write("rondo.yaml", R"(local_ips: [198.51.100.100]
vips:
  - name: web
    address: 203.0.113.10
    port: 80
    backends:
      - {address: 198.51.100.3, port: 3000}
      - {address: 198.51.100.3, port: 3001, weight: 3}
      - {address: 198.51.100.3, port: 3004}
)");
  auto r = cp->reload("test");
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.changes, (std::vector<std::string>{
                           "~ backend web 198.51.100.3:3001 weight 1 -> 3",
                           "+ backend web 198.51.100.3:3004 weight 1",
                           "- backend web 198.51.100.4:3000",
                           "- backend web 198.51.100.3:3009",
                           "- vip dns 203.0.113.10:53/udp",
                           "- backend dns 198.51.100.5:53",
                       }));
  const auto* b3000 = backend(*cp, "web", "198.51.100.3", 3000);
  EXPECT_EQ(b3000->id, 0u);
  EXPECT_TRUE(b3000->drained);
  EXPECT_EQ(backend(*cp, "web", "198.51.100.3", 3004)->id, 5u);  // 4 went to :3009
  sync(*cp);
  EXPECT_EQ(dp_->last().vips.size(), 1u);
  EXPECT_EQ(cp->view().reloads, 1u);

  // Same file again: nothing to do.
  r = cp->reload("test");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r.changes.empty());
}

TEST_F(ControlPlaneTest, ABadFileOnReloadChangesNothing) {
  auto cp = make();
  sync(*cp);
  const auto before = cp->view().desired;
  const auto pushes = dp_->pushes.size();
  dir_.write("rondo.yaml", R"(local_ips: [198.51.100.100]
vips:
  - name: web
    address: 203.0.113.10
    port: 80
    backends:
      - {address: 198.51.100.3, port: 70000}
)");
  auto r = cp->reload("test");
  EXPECT_EQ(r.status, Status::kBadConfig);
  EXPECT_EQ(r.error, options_.config_path + " is invalid (1 error); nothing changed");
  EXPECT_EQ(r.details, (std::vector<std::string>{
                           options_.config_path +
                           ":7: vips[0].backends[0].port: 70000 is not a port (1-65535)"}));
  EXPECT_EQ(cp->view().desired, before);
  sync(*cp);
  EXPECT_EQ(dp_->pushes.size(), pushes);
  EXPECT_EQ(cp->view().reload_failures, 1u);

  std::filesystem::remove(options_.config_path);
  r = cp->reload("test");
  EXPECT_EQ(r.status, Status::kBadConfig);
  EXPECT_EQ(r.details[0], options_.config_path + ": cannot open: No such file or directory");
}

TEST_F(ControlPlaneTest, ReorderedFileReloadsWithoutRenumbering) {
  auto cp = make();
  dir_.write("rondo.yaml", R"(local_ips: [198.51.100.100]
vips:
  - name: dns
    address: 203.0.113.10
    port: 53
    protocol: udp
    backends:
      - {address: 198.51.100.5, port: 53}
  - name: web
    address: 203.0.113.10
    port: 80
    backends:
      - {address: 198.51.100.4, port: 3000}
      - {address: 198.51.100.3, port: 3001}
      - {address: 198.51.100.3, port: 3000}
)");
  auto r = cp->reload("test");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r.changes.empty());
  sync(*cp);
  const auto& s = dp_->last();
  EXPECT_EQ(s.vips[0].id, 1u);  // dns
  EXPECT_EQ(s.vips[1].backends[0].id, 2u);
  EXPECT_EQ(s.vips[1].backends[2].id, 0u);
}

// ---- interfaces ----

constexpr const char* kVlanConfig = test::kVlanConfig;

TEST_F(ControlPlaneTest, InterfacesKeepTheirIdsAcrossReloadsAndRestarts) {
  dir_.write("rondo.yaml", kVlanConfig);
  {
    auto cp = make();
    sync(*cp);
    const auto& s = dp_->last();
    ASSERT_EQ(s.interfaces.size(), 2u);
    EXPECT_EQ(s.interfaces[0], (api::Interface{.id = 0, .name = "clients", .port_id = 0, .vlan = 100,
                                               .addresses = {{.addr = ip("192.0.2.1"), .len = 24}}}));
    EXPECT_EQ(s.interfaces[1].id, 1u);
    EXPECT_EQ(s.interfaces[1].mtu, 9000u);
    EXPECT_EQ(s.routes.at(0).iface, 0u);
    EXPECT_EQ(s.routes.at(1).iface, 1u);  // port 0: its untagged interface, backends
    EXPECT_EQ(s.neighbours.at(1).iface, 1u);

    // clients goes, uplink comes, backends moves to the front: backends keeps 1; uplink
    // gets 2, not clients' 0 (retired: one counter never names two interfaces at once).
    dir_.write("rondo.yaml", R"(local_ips: [198.51.100.100]
interfaces:
  - {name: backends, port: 0, mtu: 9000, addresses: [198.51.100.254/24]}
  - {name: uplink, port: 1, vlan: 7, addresses: [10.9.0.1/24]}
routes:
  - {prefix: 0.0.0.0/0, via: 10.9.0.254, interface: uplink}
neighbours:
  - {ip: 198.51.100.3, mac: "02:00:00:00:00:03", interface: backends}
vips:
  - name: web
    address: 203.0.113.10
    port: 80
    backends:
      - {address: 198.51.100.3, port: 3000}
)");
    auto r = cp->reload("test");
    ASSERT_TRUE(r.ok()) << r.error << (r.details.empty() ? "" : r.details[0]);
    EXPECT_EQ(r.changes, (std::vector<std::string>{
                             "+ interface uplink port 1 vlan 7 mtu default addresses [10.9.0.1/24]",
                             "- interface clients port 0 vlan 100",
                             "~ routes [0.0.0.0/0 via 192.0.2.254 interface clients, 10.0.0.0/8 "
                             "via 198.51.100.1 interface backends] -> [0.0.0.0/0 via 10.9.0.254 "
                             "interface uplink]",
                             "~ neighbours [192.0.2.254 02:00:00:00:00:fe interface clients, "
                             "198.51.100.3 02:00:00:00:00:03 interface backends] -> [198.51.100.3 "
                             "02:00:00:00:00:03 interface backends]",
                         }));
    sync(*cp);
    const auto& t = dp_->last();
    ASSERT_EQ(t.interfaces.size(), 2u);
    EXPECT_EQ(t.interfaces[0].name, "backends");
    EXPECT_EQ(t.interfaces[0].id, 1u);
    EXPECT_EQ(t.interfaces[1].id, 2u);
    EXPECT_EQ(t.routes.at(0).iface, 2u);
    EXPECT_EQ(t.neighbours.at(0).iface, 1u);
  }
  // A restart reads them back from the state file, ids and all.
  auto cp = make();
  const auto v = cp->view();
  EXPECT_EQ(v.desired.find_interface(std::string_view("backends"))->id, 1u);
  EXPECT_EQ(v.desired.find_interface(std::string_view("uplink"))->id, 2u);
  EXPECT_EQ(v.desired.routes.at(0).iface, 2u);
  sync(*cp);
  EXPECT_EQ(dp_->last().interfaces, cp->view().desired.interfaces);
}

TEST_F(ControlPlaneTest, ADeclaredInterfaceRowHasItsCountersAndTheDefaultMtu) {
  dir_.write("rondo.yaml", kVlanConfig);
  auto cp = make();
  // Before any stats: rows from the desired state, counters unknown.
  auto rows = interface_rows(cp->view());
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_FALSE(rows[0].counted);
  EXPECT_EQ(rows[0].iface.mtu, 0u);  // no dataplane yet: its --mtu is unknown
  dp_->stats.ports = {{.port_id = 0, .name = "net_af_packet0"}};
  dp_->stats.interfaces = {
      {.id = 0, .name = "clients", .port_id = 0, .vlan = 100, .mtu = 1500, .rx_packets = 5,
       .rx_bytes = 500, .tx_packets = 3, .tx_bytes = 300},
      // An id the dataplane still counts under another name (a state it has not taken):
      // not backends' counters.
      {.id = 1, .name = "old", .port_id = 0, .rx_packets = 99},
  };
  sync(*cp);
  rows = interface_rows(cp->view());
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_TRUE(rows[0].counted);
  EXPECT_FALSE(rows[0].implicit);
  EXPECT_EQ(rows[0].device, "net_af_packet0");
  EXPECT_EQ(rows[0].iface.mtu, 1500u);  // the dataplane's --mtu
  EXPECT_EQ(rows[0].iface.rx_packets, 5u);
  EXPECT_EQ(rows[0].iface.tx_bytes, 300u);
  EXPECT_EQ(rows[0].addresses.size(), 1u);
  EXPECT_EQ(rows[1].iface.mtu, 9000u);  // its own
  EXPECT_EQ(rows[1].iface.rx_packets, 0u);
}

TEST_F(ControlPlaneTest, WithoutDeclaredInterfacesTheRowsAreTheDataplanesOnePerPort) {
  auto cp = make();
  sync(*cp);
  // The dataplane reports nothing per interface (yet): one implicit row per port it has.
  auto rows = interface_rows(cp->view());
  ASSERT_EQ(rows.size(), 1u);  // FakeDataplane: 1 port
  EXPECT_EQ(rows[0].iface.name, "port0");
  EXPECT_TRUE(rows[0].implicit);
  EXPECT_EQ(rows[0].iface.mtu, 1500u);
  dp_->stats.interfaces = {{.id = 0, .name = "port0", .port_id = 0, .mtu = 1500, .rx_packets = 8},
                           {.id = 1, .name = "port1", .port_id = 1, .mtu = 1500, .tx_packets = 2}};
  sync(*cp);
  rows = interface_rows(cp->view());
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].iface.rx_packets, 8u);
  EXPECT_EQ(rows[1].iface.tx_packets, 2u);
  EXPECT_TRUE(rows[1].implicit);
}

// ---- API changes ----

TEST_F(ControlPlaneTest, ChangesArePushedWithANewGeneration) {
  auto cp = make();
  sync(*cp);
  auto r = cp->set_drained("web", ip("198.51.100.3"), 3001, true, "test");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.changes, std::vector<std::string>{"~ backend web 198.51.100.3:3001 drained"});
  sync(*cp);
  EXPECT_EQ(dp_->last().generation, 2u);
  EXPECT_TRUE(dp_->backend(1)->drained);

  // Idempotent: no change, a note, no push.
  r = cp->set_drained("web", ip("198.51.100.3"), 3001, true, "test");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r.changes.empty());
  EXPECT_EQ(r.note, "backend web 198.51.100.3:3001 is already drained");
  sync(*cp);
  EXPECT_EQ(dp_->pushes.size(), 2u);

  ASSERT_TRUE(cp->set_weight("web", ip("198.51.100.3"), 3001, 7, "test").ok());
  ASSERT_TRUE(cp->set_drained("web", ip("198.51.100.3"), 3001, false, "test").ok());
  sync(*cp);
  EXPECT_FALSE(dp_->backend(1)->drained);
  EXPECT_EQ(dp_->backend(1)->weight, 7);
}

TEST_F(ControlPlaneTest, OneGenerationPerInstalledChangeAndNoPushWithoutOne) {
  auto cp = make();
  sync(*cp);
  EXPECT_EQ(cp->view().generation, 1u);
  for (int i = 0; i < 5; ++i) sync(*cp);  // nothing changed: nothing rebuilt, nothing pushed
  EXPECT_EQ(dp_->pushes.size(), 1u);
  EXPECT_EQ(cp->view().generation, 1u);
  // A health change that reaches the dataplane is a change like any other.
  cp->set_health(1, Health::kDown);
  EXPECT_EQ(cp->view().generation, 2u);
  sync(*cp);
  ASSERT_EQ(dp_->pushes.size(), 2u);
  EXPECT_EQ(dp_->last().generation, 2u);
  EXPECT_TRUE(dp_->backend(1)->down);
  cp->set_health(1, Health::kDown);  // the same again: no new generation
  cp->set_health(2, Health::kUp);    // unknown -> up: nothing the dataplane sees
  sync(*cp);
  EXPECT_EQ(cp->view().generation, 2u);
  EXPECT_EQ(dp_->pushes.size(), 2u);
  EXPECT_TRUE(cp->view().in_sync);
}

TEST_F(ControlPlaneTest, BadRequestsAreRefusedAndChangeNothing) {
  auto cp = make();
  const auto before = cp->view().desired;
  struct Case {
    OpResult r;
    Status status;
    std::string error;
  };
  const Case cases[] = {
      {cp->add_backend("wbe", ip("198.51.100.3"), 3004, 1, "t"), Status::kNotFound, "no vip named wbe"},
      {cp->add_backend("web", ip("198.51.100.3"), 3000, 1, "t"), Status::kConflict,
       "198.51.100.3:3000 is already a backend of vip web"},
      {cp->add_backend("web", ip("127.0.0.1"), 3000, 1, "t"), Status::kInvalid,
       "vips[0].backends[3].address: 127.0.0.1 is a loopback address"},
      {cp->add_backend("web", ip("198.51.100.3"), 0, 1, "t"), Status::kInvalid, "vips[0].backends[3].port: 0 is not a port (1-65535)"},
      {cp->remove_backend("web", ip("198.51.100.9"), 1, true, "t"), Status::kNotFound,
       "vip web has no backend 198.51.100.9:1"},
      {cp->set_weight("dns", ip("198.51.100.3"), 3000, 1, "t"), Status::kNotFound,
       "vip dns has no backend 198.51.100.3:3000"},
      {cp->add_vip(vip("web", "203.0.113.11", 80), "t"), Status::kConflict,
       "vip web already exists"},
      {cp->add_vip(vip("web2", "203.0.113.10", 53, api::Proto::kUdp), "t"),
       Status::kConflict, "203.0.113.10:53/udp is already served by vip dns"},
      {cp->add_vip(vip("x", "198.51.100.100", 80), "t"), Status::kInvalid,
       "vips[2].address: 198.51.100.100 is also a local ip: return traffic and vip traffic would collide (see local_ips[0])"},
      {cp->add_vip(vip("bad name", "203.0.113.11", 80), "t"), Status::kInvalid,
       "vips[2].name: \"bad name\" is not a valid name (1-64 characters from A-Z a-z 0-9 _ - .)"},
      {cp->remove_vip("nope", true, "t"), Status::kNotFound, "no vip named nope"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(c.r.status, c.status) << c.error;
    EXPECT_EQ(c.r.error, c.error);
  }
  EXPECT_EQ(cp->view().desired, before);
}

TEST_F(ControlPlaneTest, AddAndRemoveVips) {
  auto cp = make();
  VipSpec api = vip("api", "203.0.113.11", 443);
  api.backends = {{.ip = ip("198.51.100.9"), .port = 8443, .weight = 2}};
  auto r = cp->add_vip(api, "t");
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.changes, (std::vector<std::string>{"+ vip api 203.0.113.11:443/tcp",
                                                  "+ backend api 198.51.100.9:8443 weight 2"}));
  EXPECT_EQ(cp->view().desired.find_vip("api")->id, 2u);
  EXPECT_EQ(cp->view().desired.find_vip("api")->backends[0].id, 4u);
  sync(*cp);
  dp_->set_backend(4, 3);
  sync(*cp);
  r = cp->remove_vip("api", false, "t");
  EXPECT_EQ(r.status, Status::kNeedsForce);
  EXPECT_EQ(r.error, "vip api still has 3 active flows; drain its backends first, or use --force");
  r = cp->remove_vip("api", true, "t");
  ASSERT_TRUE(r.ok());
  // Ids are not reused: a new vip gets 3, not 2.
  ASSERT_TRUE(cp->add_vip(vip("api", "203.0.113.11", 443), "t").ok());
  EXPECT_EQ(cp->view().desired.find_vip("api")->id, 3u);
}

TEST_F(ControlPlaneTest, RemovingABackendWithFlowsNeedsForce) {
  auto cp = make();
  // Not connected: flows unknown.
  auto r = cp->remove_backend("web", ip("198.51.100.3"), 3001, false, "t");
  EXPECT_EQ(r.status, Status::kNeedsForce);
  EXPECT_EQ(r.error, "active flows of backend web 198.51.100.3:3001 are unknown (dataplane not "
                     "connected); use --force to remove it anyway");
  sync(*cp);
  dp_->set_backend(1, 5);
  sync(*cp);
  EXPECT_EQ(cp->active_flows(1), 5u);
  r = cp->remove_backend("web", ip("198.51.100.3"), 3001, false, "t");
  EXPECT_EQ(r.status, Status::kNeedsForce);
  EXPECT_EQ(r.error, "backend web 198.51.100.3:3001 still has 5 active flows; drain it first "
                     "(rondoctl backend drain web 198.51.100.3:3001 --wait) or use --force");
  EXPECT_TRUE(backend(*cp, "web", "198.51.100.3", 3001));

  // Drain: flows fall to 0, then it goes without force.
  ASSERT_TRUE(cp->set_drained("web", ip("198.51.100.3"), 3001, true, "t").ok());
  dp_->set_backend(1, 0);
  sync(*cp);
  r = cp->remove_backend("web", ip("198.51.100.3"), 3001, false, "t");
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.changes, std::vector<std::string>{"- backend web 198.51.100.3:3001"});

  // A backend the dataplane never reported has no flows.
  EXPECT_TRUE(cp->remove_backend("web", ip("198.51.100.4"), 3000, false, "t").ok());
  // Re-adding gets a new id: old flows may still count under 1.
  ASSERT_TRUE(cp->add_backend("web", ip("198.51.100.3"), 3001, 1, "t").ok());
  EXPECT_EQ(backend(*cp, "web", "198.51.100.3", 3001)->id, 4u);
}

TEST_F(ControlPlaneTest, UnsavableChangesAreRefused) {
  options_.state_path = dir_.file("state.json");
  auto cp = make();
  // Make the directory unwritable by replacing the state file's place with a directory
  // the temporary file cannot be created in.
  std::filesystem::create_directory(dir_.file("state.json.tmp"));
  auto r = cp->add_backend("web", ip("198.51.100.3"), 3004, 1, "t");
  EXPECT_EQ(r.status, Status::kFailed);
  EXPECT_EQ(r.error.rfind("cannot save the state: cannot create " + options_.state_path + ".tmp", 0), 0u)
      << r.error;
  EXPECT_FALSE(backend(*cp, "web", "198.51.100.3", 3004));
}

// ---- health, rates, reconnects ----

TEST_F(ControlPlaneTest, HealthDownIsPushedAsDown) {
  auto cp = make();
  sync(*cp);
  cp->set_health(2, Health::kUp);  // unknown -> up: nothing for the dataplane
  sync(*cp);
  EXPECT_EQ(dp_->pushes.size(), 1u);
  cp->set_health(2, Health::kDown);
  sync(*cp);
  ASSERT_EQ(dp_->pushes.size(), 2u);
  EXPECT_TRUE(dp_->backend(2)->down);
  EXPECT_EQ(cp->view().desired.find_vip("web")->backends[2].health, Health::kDown);
  cp->set_health(99, Health::kDown);  // unknown id: ignored
  cp->set_health(2, Health::kUp);
  sync(*cp);
  EXPECT_FALSE(dp_->backend(2)->down);
}

TEST_F(ControlPlaneTest, ObserverSeesEveryChange) {
  auto cp = make();
  int calls = 0;
  size_t backends = 0;
  cp->set_observer([&](const DesiredState& d) {
    ++calls;
    backends = d.backend_count();
  });
  ASSERT_TRUE(cp->add_backend("web", ip("198.51.100.3"), 3004, 1, "t").ok());
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(backends, 5u);
  cp->set_drained("web", ip("198.51.100.3"), 3004, false, "t");  // no change
  EXPECT_EQ(calls, 1);
}

TEST_F(ControlPlaneTest, RatesComeFromTwoSamplesAtLeastAWindowApart) {
  auto cp = make();
  dp_->set_backend(0, 4, 100, 1000, 100000);
  sync(*cp, 0ms);
  EXPECT_TRUE(cp->rates().empty());
  dp_->set_backend(0, 4, 150, 1500, 150000);
  sync(*cp, 500ms);  // too soon
  EXPECT_TRUE(cp->rates().empty());
  dp_->set_backend(0, 4, 300, 3000, 300000);
  sync(*cp, 1500ms);  // 2 s after the first sample
  auto rates = cp->rates();
  ASSERT_TRUE(rates.count(0));
  EXPECT_DOUBLE_EQ(rates[0].connections, 100.0);
  EXPECT_DOUBLE_EQ(rates[0].packets, 1000.0);
  EXPECT_DOUBLE_EQ(rates[0].bytes, 100000.0);
}

TEST_F(ControlPlaneTest, DataplaneRestartGetsTheFullStateAgain) {
  auto cp = make();
  sync(*cp);
  ASSERT_TRUE(cp->set_drained("web", ip("198.51.100.3"), 3001, true, "t").ok());
  sync(*cp);
  dp_->listening = false;  // dies
  sync(*cp);
  EXPECT_FALSE(cp->view().dataplane_connected);
  dp_->listening = true;  // a new process
  dp_->instance = 2;
  dp_->generation = 0;
  sync(*cp, 6000ms);
  EXPECT_TRUE(cp->view().in_sync);
  EXPECT_EQ(dp_->last().generation, 2u);
  EXPECT_TRUE(dp_->backend(1)->drained);
}

TEST_F(ControlPlaneTest, ChangesWaitForTheDataplaneWhenAControllerRuns) {
  options_.apply_timeout = 2000ms;
  options_.sync_interval = 50ms;
  auto cp = make();
  std::jthread controller([&](std::stop_token stop) { cp->run(stop); });
  // Wait for the first push.
  for (int i = 0; i < 200 && !cp->view().in_sync; ++i) std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(cp->view().in_sync);
  auto r = cp->add_backend("web", ip("198.51.100.3"), 3004, 1, "t");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r.applied);
  EXPECT_EQ(r.generation, 2u);
  controller.request_stop();
}

TEST_F(ControlPlaneTest, ARestartIsAskedByTheControllerThreadWhichReconnectsAtOnce) {
  options_.sync_interval = 2000ms;  // retries must not wait for it
  auto cp = make();
  std::jthread controller([&](std::stop_token stop) { cp->run(stop); });
  for (int i = 0; i < 200 && !cp->view().in_sync; ++i) std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(cp->view().in_sync);
  const auto asked = std::chrono::steady_clock::now();
  const RestartResult r = cp->restart_dataplane("t", 5000ms);
  ASSERT_TRUE(r.ok()) << r.error;
  ASSERT_TRUE(r.before);
  EXPECT_EQ(r.before->instance, 1u);
  ControlPlaneView v;
  for (int i = 0; i < 300; ++i) {
    v = cp->view();
    if (v.in_sync && v.dataplane && v.dataplane->instance == 2) break;
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_TRUE(v.in_sync);
  EXPECT_LT(std::chrono::steady_clock::now() - asked, 1000ms);
  EXPECT_EQ(v.dataplane->start_kind, 1);
  EXPECT_EQ(v.dataplane_restarts, (std::array<uint64_t, 3>{0, 1, 0}));
  EXPECT_FALSE(v.restart_expected);
  controller.request_stop();
  controller.join();
  EXPECT_EQ(dp_->pushes.size(), 2u);  // the new instance got the whole state
}

TEST_F(ControlPlaneTest, ChangesWhileDisconnectedSaySo) {
  dp_->listening = false;
  auto cp = make();
  sync(*cp);
  auto r = cp->add_backend("web", ip("198.51.100.3"), 3004, 1, "t");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r.applied);
  EXPECT_EQ(r.note, "saved; the dataplane is not connected and gets it when it connects");
}

// ---- the JSON API ----

class RpcTest : public ControlPlaneTest {
 protected:
  json call(ControlPlane& cp, const std::string& line) {
    return json::parse(handle_request(cp, line, "test"));
  }
};

TEST_F(RpcTest, MalformedRequestsGetAnErrorAndChangeNothing) {
  auto cp = make();
  const auto before = cp->view().desired;
  const std::pair<std::string, std::string> cases[] = {
      {"not json", "malformed request (not JSON): "},
      {"[1,2]", "malformed request: expected a JSON object"},
      {"{}", "malformed request: \"cmd\" (a string) is missing"},
      {R"({"cmd": 7})", "malformed request: \"cmd\" (a string) is missing"},
      {R"({"cmd": "vip.explode"})", "unknown command \"vip.explode\""},
      {R"({"cmd": "backend.add", "vip": "web", "address": "198.51.100.3"})",
       "backend.add: field \"port\" is missing"},
      {R"({"cmd": "backend.add", "vip": "web", "address": "198.51.100.3", "port": 70000})",
       "70000 is not a port (1-65535) (backend.add: field \"port\")"},
      {R"({"cmd": "backend.add", "vip": "web", "address": "198.51.100.3", "port": "80"})",
       "\"80\" is not a port (1-65535) (backend.add: field \"port\")"},
      {R"({"cmd": "backend.add", "vip": "web", "address": "198.51.100.3", "port": -1})",
       "-1 is not a port (1-65535) (backend.add: field \"port\")"},
      {R"({"cmd": "backend.add", "vip": "web", "address": "198.51.100.300", "port": 80})",
       "198.51.100.300 is not an IP address"},
      {R"({"cmd": "backend.add", "vip": "web", "address": "2001:db8:100::zz", "port": 80})",
       "2001:db8:100::zz is not an IP address"},
      {R"({"cmd": "vip.add", "name": "x", "address": "::ffff:203.0.113.11", "port": 80})",
       "::ffff:203.0.113.11 is an IPv4-mapped IPv6 address: write it as IPv4"},
      {R"({"cmd": "vip.add", "name": "x", "address": "[2001:db8::11]", "port": 80})",
       "[2001:db8::11] is not an IP address"},
      // A role rule of validate_state's, reached through the API.
      {R"({"cmd": "vip.add", "name": "x", "address": "fe80::11", "port": 80})",
       "vips[2].address: fe80::11 is a link-local address (fe80::/10), which cannot be a vip"},
      // Bare IPv6 text is an address (no port can be told from it): 40000 is no group.
      {R"({"cmd": "flow.list", "client": "2001:db8:100::2:40000"})",
       "2001:db8:100::2:40000 is not an IP address"},
      {R"({"cmd": "flow.list", "vip": "[2001:db8::10]:0"})", "0 is not a port (1-65535)"},
      {R"({"cmd": "backend.add", "vip": "web", "address": "198.51.100.3", "port": 80, "weight": 65536})",
       "65536 is not a weight (0-65535) (backend.add: field \"weight\")"},
      {R"({"cmd": "backend.add", "vip": "web", "address": "198.51.100.3", "port": 80, "wieght": 2})",
       "unknown field \"wieght\" for backend.add"},
      {R"({"cmd": "backend.remove", "vip": "web", "address": "198.51.100.3", "port": 3000, "force": "yes"})",
       "backend.remove: field \"force\" must be true or false"},
      {R"({"cmd": "vip.add", "name": "x", "address": "203.0.113.11", "port": 80, "protocol": "sctp"})",
       "sctp is not a supported protocol (tcp, udp)"},
      {R"({"cmd": "vip.add", "name": 5, "address": "203.0.113.11", "port": 80})",
       "vip.add: field \"name\" must be a string"},
      {R"({"cmd": "vip.add", "name": "x", "address": "203.0.113.11", "port": 80, "mode": "dsr"})",
       "dsr is not a supported mode (fullnat, ipip, gue, l2dsr)"},
      {R"({"cmd": "vip.add", "name": "x", "address": "203.0.113.11", "port": 80, "mode": 2})",
       "vip.add: field \"mode\" must be a string"},
      {R"({"cmd": "vip.add", "name": "x", "address": "203.0.113.11", "port": 80, "on_all_down": "fail"})",
       "fail is not a supported on_all_down (drop, open)"},
  };
  for (const auto& [line, error] : cases) {
    const auto a = call(*cp, line);
    EXPECT_FALSE(a["ok"].get<bool>()) << line;
    EXPECT_EQ(a["code"], "invalid") << line;
    EXPECT_EQ(a["error"].get<std::string>().rfind(error, 0), 0u) << line << " -> " << a["error"];
  }
  EXPECT_EQ(cp->view().desired, before);
}

TEST_F(RpcTest, ChangesAndReads) {
  auto cp = make();
  sync(*cp);
  auto a = call(*cp, R"({"cmd": "backend.add", "vip": "web", "address": "198.51.100.3", "port": 3004, "weight": 2})");
  ASSERT_TRUE(a["ok"].get<bool>()) << a;
  EXPECT_EQ(a["changes"], json::array({"+ backend web 198.51.100.3:3004 weight 2"}));
  a = call(*cp, R"({"cmd": "backend.remove", "vip": "nope", "address": "198.51.100.3", "port": 3004})");
  EXPECT_EQ(a["code"], "not_found");

  dp_->set_backend(0, 7, 10, 100, 1000);
  sync(*cp);
  a = call(*cp, R"({"cmd": "show"})");
  ASSERT_TRUE(a["ok"].get<bool>());
  EXPECT_TRUE(a["status"]["dataplane_connected"].get<bool>());
  const auto& row = a["vips"][0]["backends"][0];
  EXPECT_EQ(row["address"], "198.51.100.3");
  EXPECT_EQ(row["active_flows"], 7);
  EXPECT_EQ(row["packets"], 100);
  EXPECT_EQ(row["health"], "unknown");
  EXPECT_EQ(a["vips"][0]["backends"][3]["active_flows"], 0);  // not reported: none
  // No Maglev table reported for it: null, not 0.
  EXPECT_TRUE(row["table_entries"].is_null());
  EXPECT_TRUE(row["table_size"].is_null());
  // The dataplane's count of a backend's table entries is passed on as it came.
  for (auto& b : dp_->stats.backends)
    if (b.id == 0) b.table_entries = 16384, b.table_size = 65537;
  sync(*cp);
  a = call(*cp, R"({"cmd": "show"})");
  EXPECT_EQ(a["vips"][0]["backends"][0]["table_entries"], 16384);
  EXPECT_EQ(a["vips"][0]["backends"][0]["table_size"], 65537);

  a = call(*cp, R"({"cmd": "backend.get", "vip": "web", "address": "198.51.100.3", "port": 3000})");
  EXPECT_EQ(a["backend"]["active_flows"], 7);
  a = call(*cp, R"({"cmd": "show", "vip": "dns"})");
  EXPECT_EQ(a["vips"].size(), 1u);
  a = call(*cp, R"({"cmd": "vip.list"})");
  EXPECT_EQ(a["vips"][1]["name"], "dns");
  a = call(*cp, R"({"cmd": "stats"})");
  ASSERT_TRUE(a["ok"].get<bool>()) << a;
  EXPECT_EQ(a["backends"][0]["vip"], "web");
  EXPECT_EQ(a["backends"][0]["backend"], "198.51.100.3:3000");
  a = call(*cp, R"({"cmd": "status"})");
  EXPECT_EQ(a["status"]["vips"], 2);
  EXPECT_EQ(a["status"]["interfaces"], 0);
  a = call(*cp, R"({"cmd": "reload"})");
  EXPECT_TRUE(a["ok"].get<bool>());
  EXPECT_EQ(a["changes"], json::array({"- backend web 198.51.100.3:3004"}));
}

TEST_F(RpcTest, VipAddTakesEveryModeAndOnAllDown) {
  auto cp = make();
  sync(*cp);
  uint16_t port = 8000;
  for (const auto& n : api::kModeNames) {
    const std::string name = std::string("v-") + n.name;
    auto a = call(*cp, R"({"cmd": "vip.add", "name": ")" + name +
                           R"(", "address": "203.0.113.11", "port": )" + std::to_string(++port) +
                           R"(, "mode": ")" + n.name + R"(", "on_all_down": "open"})");
    ASSERT_TRUE(a["ok"].get<bool>()) << a;
    const auto view = cp->view();  // the vip below points into it: keep it alive
    const VipSpec* v = view.desired.find_vip(name);
    ASSERT_NE(v, nullptr);
    EXPECT_EQ(v->mode, n.mode);
    EXPECT_EQ(v->on_all_down, api::OnAllDown::kOpen);
    sync(*cp);
    EXPECT_EQ(dp_->last().vips.back().mode, n.mode);
    EXPECT_EQ(dp_->last().vips.back().on_all_down, api::OnAllDown::kOpen);
  }
  // vip rows carry both; absent, they are fullnat and drop.
  auto a = call(*cp, R"({"cmd": "vip.list"})");
  EXPECT_EQ(a["vips"][0]["mode"], "fullnat");
  EXPECT_EQ(a["vips"][0]["on_all_down"], "drop");
  EXPECT_EQ(a["vips"][2]["mode"], "fullnat");
  EXPECT_EQ(a["vips"][5]["mode"], "l2dsr");
  EXPECT_EQ(a["vips"][5]["on_all_down"], "open");
  a = call(*cp, R"({"cmd": "show", "vip": "v-gue"})");
  EXPECT_EQ(a["vips"][0]["mode"], "gue");
  EXPECT_EQ(a["vips"][0]["on_all_down"], "open");
  // A DSR backend takes the vip's port (validate_test has every rule from every source).
  const auto before = cp->view().desired;
  a = call(*cp, R"({"cmd": "backend.add", "vip": "v-ipip", "address": "198.51.100.3", "port": 3000})");
  EXPECT_EQ(a["code"], "invalid");
  EXPECT_EQ(a["error"].get<std::string>().rfind(
                "vips[3].backends[0].port: 3000 is not the vip's port 8002: with direct server "
                "return the backend receives the client's packet addressed to 203.0.113.11:8002 "
                "unchanged",
                0),
            0u)
      << a;
  EXPECT_EQ(cp->view().desired, before);
  a = call(*cp, R"({"cmd": "backend.add", "vip": "v-ipip", "address": "198.51.100.3", "port": 8002})");
  EXPECT_TRUE(a["ok"].get<bool>()) << a;
}

// IPv6 through the API: a vip and backends added, refused by validate_state's family rule
// until a local ip of the backends' family exists; reads print RFC 5952 and [v6]:port.
TEST_F(RpcTest, Ipv6VipsAndBackends) {
  auto cp = make();
  sync(*cp);
  auto a = call(*cp, R"({"cmd": "vip.add", "name": "web6", "address": "2001:DB8::10", "port": 80})");
  ASSERT_TRUE(a["ok"].get<bool>()) << a;
  EXPECT_EQ(a["changes"], json::array({"+ vip web6 [2001:db8::10]:80/tcp"}));
  const auto before = cp->view().desired;
  a = call(*cp, R"({"cmd": "backend.add", "vip": "web6", "address": "2001:db8:100::3", "port": 3000})");
  EXPECT_EQ(a["code"], "invalid") << a;
  EXPECT_EQ(a["error"].get<std::string>().rfind(
                "vips[2].backends[0].address: 2001:db8:100::3 is IPv6 but no local ip is: full-NAT "
                "sends to a backend from a local ip of its family",
                0),
            0u)
      << a;
  EXPECT_EQ(cp->view().desired, before);
  // The file gains an IPv6 local ip (and keeps web6 out: a reload applies the file).
  dir_.write("rondo.yaml", std::string(R"(local_ips: [198.51.100.100, "2001:db8:100::100"]
vips:
  - name: web6
    address: "2001:db8::10"
    port: 80
    backends:
      - {address: "2001:db8:100::3", port: 3000}
)"));
  a = call(*cp, R"({"cmd": "reload"})");
  ASSERT_TRUE(a["ok"].get<bool>()) << a;
  a = call(*cp, R"({"cmd": "backend.add", "vip": "web6", "address": "2001:db8:100::4", "port": 3000, "weight": 3})");
  ASSERT_TRUE(a["ok"].get<bool>()) << a;
  EXPECT_EQ(a["changes"], json::array({"+ backend web6 [2001:db8:100::4]:3000 weight 3"}));
  sync(*cp);
  const auto& pushed = dp_->last();
  ASSERT_EQ(pushed.local_ips.size(), 2u);
  EXPECT_EQ(pushed.local_ips[1], ip("2001:db8:100::100"));
  ASSERT_EQ(pushed.vips.size(), 1u);
  EXPECT_EQ(pushed.vips[0].ip, ip("2001:db8::10"));
  ASSERT_EQ(pushed.vips[0].backends.size(), 2u);
  EXPECT_EQ(pushed.vips[0].backends[1].ip, ip("2001:db8:100::4"));
  const uint32_t id = pushed.vips[0].backends[1].id;
  dp_->set_backend(id, 2, 1, 10, 100);
  sync(*cp);
  a = call(*cp, R"({"cmd": "show", "vip": "web6"})");
  EXPECT_EQ(a["vips"][0]["address"], "2001:db8::10");
  EXPECT_EQ(a["vips"][0]["backends"][1]["address"], "2001:db8:100::4");
  a = call(*cp, R"({"cmd": "stats"})");
  ASSERT_TRUE(a["ok"].get<bool>()) << a;
  bool found = false;
  for (const auto& row : a["backends"])
    if (row["id"] == id) found = row["backend"] == "[2001:db8:100::4]:3000";
  EXPECT_TRUE(found) << a["backends"];
  a = call(*cp, R"({"cmd": "backend.get", "vip": "web6", "address": "2001:db8:100:0::4", "port": 3000})");
  EXPECT_EQ(a["backend"]["active_flows"], 2) << a;
  a = call(*cp, R"({"cmd": "backend.drain", "vip": "web6", "address": "2001:db8:100::4", "port": 3000})");
  EXPECT_TRUE(a["ok"].get<bool>()) << a;
  EXPECT_EQ(a["changes"], json::array({"~ backend web6 [2001:db8:100::4]:3000 drained"}));
}

// An inspection connection that records what it was asked and answers one IPv6 flow.
class InspectRecorder final : public DataplaneClient {
 public:
  explicit InspectRecorder(std::shared_ptr<std::vector<api::InspectRequest>> asked)
      : asked_(std::move(asked)) {}
  bool connect() override { return true; }
  void close() override {}
  bool connected() const override { return true; }
  std::optional<api::DataplaneInfo> hello() override { return api::DataplaneInfo{}; }
  api::Ack push(const api::State& s) override { return {true, s.generation, ""}; }
  std::optional<api::Stats> stats() override { return api::Stats{}; }
  std::optional<api::InspectReply> inspect(const api::InspectRequest& req) override {
    asked_->push_back(req);
    api::InspectReply r;
    r.flows.push_back({.lcore = 1, .proto = 6,
                       .client_ip = ip("2001:db8:100::2"), .vip_ip = ip("2001:db8::10"),
                       .backend_ip = ip("2001:db8:100::3"), .local_ip = ip("2001:db8:100::100"),
                       .client_port = 40554, .vip_port = 80, .backend_port = 3000,
                       .local_port = 41000, .state = "established"});
    return r;
  }
  std::string last_error() const override { return ""; }

 private:
  std::shared_ptr<std::vector<api::InspectRequest>> asked_;
};

// Flow filters take IPv6 addresses, bare or as [v6]:port, and flows come back as [v6]:port.
TEST_F(RpcTest, FlowFiltersAndListingsCarryIpv6) {
  auto asked = std::make_shared<std::vector<api::InspectRequest>>();
  options_.inspect_client = [asked] { return std::make_unique<InspectRecorder>(asked); };
  auto cp = make();
  sync(*cp);
  auto a = call(*cp, R"({"cmd": "flow.list", "client": "[2001:db8:100::2]:40554",
                         "vip": "[2001:db8::10]:80", "backend": "2001:DB8:100::3",
                         "local": "2001:db8:100::100", "protocol": "tcp"})");
  ASSERT_TRUE(a["ok"].get<bool>()) << a;
  ASSERT_EQ(asked->size(), 1u);
  const api::FlowFilter& f = asked->back().filter;
  EXPECT_EQ(f.client_ip, ip("2001:db8:100::2"));
  EXPECT_EQ(f.client_port, 40554);
  EXPECT_EQ(f.vip_ip, ip("2001:db8::10"));
  EXPECT_EQ(f.vip_port, 80);
  EXPECT_EQ(f.backend_ip, ip("2001:db8:100::3"));
  EXPECT_EQ(f.backend_port, 0);  // a bare address: any port
  EXPECT_EQ(f.local_ip, ip("2001:db8:100::100"));
  ASSERT_EQ(a["flows"].size(), 1u) << a;
  EXPECT_EQ(a["flows"][0]["client"], "[2001:db8:100::2]:40554");
  EXPECT_EQ(a["flows"][0]["vip"], "[2001:db8::10]:80");
  EXPECT_EQ(a["flows"][0]["backend"], "[2001:db8:100::3]:3000");
  EXPECT_EQ(a["flows"][0]["local"], "[2001:db8:100::100]:41000");
  // A vip filter that is an IPv6 address starting with a letter is an address, not a name.
  a = call(*cp, R"({"cmd": "flow.list", "vip": "fd00::10"})");
  ASSERT_TRUE(a["ok"].get<bool>()) << a;
  EXPECT_EQ(asked->back().filter.vip_ip, ip("fd00::10"));
}

TEST_F(RpcTest, ShowAndStatsListTheInterfaces) {
  dir_.write("rondo.yaml", kVlanConfig);
  auto cp = make();
  auto a = call(*cp, R"({"cmd": "show"})");
  ASSERT_TRUE(a["ok"].get<bool>()) << a;
  // No dataplane yet: the declared interfaces, counters and the default MTU unknown.
  EXPECT_EQ(a["interfaces"][0], json::parse(R"({"name": "clients", "id": 0, "port": 0,
      "device": null, "vlan": 100, "mtu": null, "addresses": ["192.0.2.1/24"], "implicit": false,
      "rx_packets": null, "rx_bytes": null, "tx_packets": null, "tx_bytes": null})"));
  dp_->stats.ports = {{.port_id = 0, .name = "net_af_packet0"}};
  dp_->stats.interfaces = {{.id = 1, .name = "backends", .port_id = 0, .mtu = 9000, .rx_packets = 4,
                            .rx_bytes = 400, .tx_packets = 6, .tx_bytes = 600}};
  sync(*cp);
  a = call(*cp, R"({"cmd": "show"})");
  EXPECT_EQ(a["interfaces"][0]["mtu"], 1500);
  EXPECT_EQ(a["interfaces"][0]["rx_packets"], 0);
  EXPECT_EQ(a["interfaces"][1], json::parse(R"({"name": "backends", "id": 1, "port": 0,
      "device": "net_af_packet0", "vlan": 0, "mtu": 9000, "addresses": ["198.51.100.254/24"],
      "implicit": false, "rx_packets": 4, "rx_bytes": 400, "tx_packets": 6, "tx_bytes": 600})"));
  a = call(*cp, R"({"cmd": "stats"})");
  ASSERT_TRUE(a["ok"].get<bool>()) << a;
  EXPECT_EQ(a["interfaces"][1]["tx_packets"], 6);
  a = call(*cp, R"({"cmd": "status"})");
  EXPECT_EQ(a["status"]["interfaces"], 2);
  EXPECT_EQ(a["status"]["dataplane"]["mtu"], 1500);
}

TEST_F(RpcTest, StatsNeedADataplane) {
  dp_->listening = false;
  auto cp = make();
  sync(*cp);
  auto a = call(*cp, R"({"cmd": "stats"})");
  EXPECT_EQ(a["code"], "unavailable");
  a = call(*cp, R"({"cmd": "show"})");
  EXPECT_TRUE(a["vips"][0]["backends"][0]["active_flows"].is_null());
}

}  // namespace
}  // namespace rondo::cp
