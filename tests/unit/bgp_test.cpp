// BGP announcement through BIRD (controlplane/bgp/announcer.h): which VIP addresses may be
// announced, the file BIRD includes, and how the announcer drives birdc (a fake runner).
#include "controlplane/bgp/announcer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace rondo::cp {
namespace {

const api::Addr kVip = api::Addr::from_v4(0xcb00710a);   // 203.0.113.10
const api::Addr kVip2 = api::Addr::from_v4(0xcb007114);  // 203.0.113.20
const api::Addr kVip6 = *api::parse_addr("2001:db8::10");

ControlPlaneView serving_view() {
  ControlPlaneView v;
  v.dataplane_connected = true;
  v.dataplane = api::DataplaneInfo{.generation = 3};
  VipSpec web;
  web.name = "web";
  web.ip = kVip;
  web.port = 80;
  BackendSpec a, b;
  a.ip = b.ip = api::Addr::from_v4(0xc6336403);
  a.port = 3000;
  b.port = 3001;
  web.backends = {a, b};
  VipSpec dns = web;
  dns.name = "dns";
  dns.port = 53;
  dns.proto = api::Proto::kUdp;
  VipSpec api = web;
  api.name = "api";
  api.ip = kVip2;
  v.desired.vips = {web, dns, api};
  return v;
}

TEST(Bgp, AnnouncesAnAddressWhileOneOfItsVipsCanTakeConnections) {
  ControlPlaneView v = serving_view();
  EXPECT_EQ(vips_to_announce(v), (std::vector<api::Addr>{kVip, kVip2}));  // sorted, unique
  // All of api's backends down, drained or at weight 0: its address goes.
  v.desired.vips[2].backends[0].health = Health::kDown;
  v.desired.vips[2].backends[1].drained = true;
  EXPECT_EQ(vips_to_announce(v), (std::vector<api::Addr>{kVip}));
  v.desired.vips[2].backends[1].drained = false;
  v.desired.vips[2].backends[1].weight = 0;
  EXPECT_EQ(vips_to_announce(v), (std::vector<api::Addr>{kVip}));
  // web drained, dns still serving on the same address: still announced; both drained: not.
  v.desired.vips[0].drained = true;
  EXPECT_EQ(vips_to_announce(v), (std::vector<api::Addr>{kVip}));
  v.desired.vips[1].drained = true;
  EXPECT_TRUE(vips_to_announce(v).empty());
  // No dataplane, or one that forwards with no state of ours: nothing.
  v = serving_view();
  v.dataplane_connected = false;
  EXPECT_TRUE(vips_to_announce(v).empty());
  v = serving_view();
  v.dataplane->generation = 0;
  EXPECT_TRUE(vips_to_announce(v).empty());
  // Health unknown (no check configured) counts as able to serve.
  v = serving_view();
  EXPECT_EQ(v.desired.vips[0].backends[0].health, Health::kUnknown);
  EXPECT_FALSE(vips_to_announce(v).empty());
}

// ---- hold-down across dataplane restarts (a fake clock) ----

using namespace std::chrono_literals;

TEST(HoldDown, KeepsTheAnnouncementWhileTheDataplaneRestarts) {
  RestartHoldDown hold(10'000ms);
  RestartHoldDown::Clock::time_point t{};
  ControlPlaneView v = serving_view();
  EXPECT_EQ(hold.filter(v, t), (std::vector<api::Addr>{kVip, kVip2}));
  // The dataplane goes (restart or crash): held for up to 10 s.
  ControlPlaneView away = v;
  away.dataplane_connected = false;
  away.dataplane.reset();
  EXPECT_EQ(hold.filter(away, t + 1ms), (std::vector<api::Addr>{kVip, kVip2}));
  EXPECT_TRUE(hold.holding());
  EXPECT_EQ(hold.filter(away, t + 9'000ms), (std::vector<api::Addr>{kVip, kVip2}));
  // Back, connected but before the push (generation 0) still counts as away.
  ControlPlaneView back = v;
  back.dataplane->generation = 0;
  EXPECT_EQ(hold.filter(back, t + 9'500ms), (std::vector<api::Addr>{kVip, kVip2}));
  EXPECT_EQ(hold.filter(v, t + 9'600ms), (std::vector<api::Addr>{kVip, kVip2}));
  EXPECT_FALSE(hold.holding());
  // A second absence gets a fresh hold-down.
  EXPECT_EQ(hold.filter(away, t + 20'000ms), (std::vector<api::Addr>{kVip, kVip2}));
  EXPECT_EQ(hold.filter(away, t + 29'999ms), (std::vector<api::Addr>{kVip, kVip2}));
}

TEST(HoldDown, WithdrawsWhenItExpiresAndAnnouncesAgainWhenBack) {
  RestartHoldDown hold(10'000ms);
  RestartHoldDown::Clock::time_point t{};
  ControlPlaneView v = serving_view();
  hold.filter(v, t);
  ControlPlaneView away = v;
  away.dataplane_connected = false;
  EXPECT_FALSE(hold.filter(away, t + 100ms).empty());
  EXPECT_TRUE(hold.filter(away, t + 10'100ms).empty());
  EXPECT_FALSE(hold.holding());
  EXPECT_TRUE(hold.filter(away, t + 60'000ms).empty());
  EXPECT_EQ(hold.filter(v, t + 61'000ms), (std::vector<api::Addr>{kVip, kVip2}));
}

TEST(HoldDown, ZeroWithdrawsAtOnce) {
  RestartHoldDown hold(0ms);
  RestartHoldDown::Clock::time_point t{};
  ControlPlaneView v = serving_view();
  EXPECT_EQ(hold.filter(v, t), (std::vector<api::Addr>{kVip, kVip2}));
  v.dataplane_connected = false;
  EXPECT_TRUE(hold.filter(v, t).empty());
}

TEST(HoldDown, HoldsOnlyWhatWasAnnouncedAndStillServes) {
  RestartHoldDown hold(10'000ms);
  RestartHoldDown::Clock::time_point t{};
  // Never forwarding since the control plane started: nothing to hold.
  ControlPlaneView away = serving_view();
  away.dataplane_connected = false;
  EXPECT_TRUE(hold.filter(away, t).empty());
  EXPECT_FALSE(hold.holding());
  // Announced, then away; the operator drains api meanwhile: its address goes now.
  ControlPlaneView v = serving_view();
  hold.filter(v, t + 1s);
  away = v;
  away.dataplane_connected = false;
  EXPECT_EQ(hold.filter(away, t + 2s), (std::vector<api::Addr>{kVip, kVip2}));
  away.desired.vips[2].drained = true;
  EXPECT_EQ(hold.filter(away, t + 3s), (std::vector<api::Addr>{kVip}));
}

TEST(Bgp, IncludeFileIsOneStaticProtocolPerFamily) {
  const std::string text = bird_include({kVip, kVip2});
  EXPECT_NE(text.find("protocol static rondo_vips {\n  ipv4;\n  route 203.0.113.10/32 blackhole;\n"
                      "  route 203.0.113.20/32 blackhole;\n}\n"),
            std::string::npos)
      << text;
  // Both protocols always, empty or not: bird.conf's filter may name either.
  const std::string empty = bird_include({});
  EXPECT_NE(empty.find("protocol static rondo_vips {\n  ipv4;\n}\n"), std::string::npos);
  EXPECT_NE(empty.find("protocol static rondo_vips6 {\n  ipv6;\n}\n"), std::string::npos);
}

// IPv6 VIPs: announced by the same rules, as /128 routes in a static protocol of their
// own (rondo_vips6, channel ipv6) beside the IPv4 one; IPv4 sorts first.
TEST(Bgp, Ipv6VipsAreAnnouncedAsSlash128InTheirOwnProtocol) {
  ControlPlaneView v = serving_view();
  VipSpec web6 = v.desired.vips[0];
  web6.name = "web6";
  web6.ip = kVip6;
  for (auto& b : web6.backends) b.ip = *api::parse_addr("2001:db8:100::3");
  v.desired.vips.push_back(web6);
  EXPECT_EQ(vips_to_announce(v), (std::vector<api::Addr>{kVip, kVip2, kVip6}));
  v.desired.vips[3].backends[0].health = Health::kDown;
  v.desired.vips[3].backends[1].weight = 0;
  EXPECT_EQ(vips_to_announce(v), (std::vector<api::Addr>{kVip, kVip2}));

  const std::string text = bird_include({kVip, kVip6, *api::parse_addr("2001:db8::20")});
  const std::string header = bird_include({}).substr(0, bird_include({}).find("protocol"));
  EXPECT_EQ(text.substr(header.size()),
            "protocol static rondo_vips {\n"
            "  ipv4;\n"
            "  route 203.0.113.10/32 blackhole;\n"
            "}\n"
            "protocol static rondo_vips6 {\n"
            "  ipv6;\n"
            "  route 2001:db8::10/128 blackhole;\n"
            "  route 2001:db8::20/128 blackhole;\n"
            "}\n");
}

// BIRD itself reads the file (parse only, `bird -p`), when installed.
TEST(Bgp, BirdParsesTheIncludeFile) {
  if (::access("/usr/sbin/bird", X_OK) != 0) GTEST_SKIP() << "/usr/sbin/bird not installed";
  const std::string dir = std::filesystem::temp_directory_path() / ("rondo-bird-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/vips.conf") << bird_include({kVip, kVip6});
  std::ofstream(dir + "/bird.conf") << "router id 192.0.2.10;\nprotocol device { }\ninclude \"" << dir
                                    << "/vips.conf\";\n";
  std::string out;
  const int rc = run_command({"/usr/sbin/bird", "-p", "-c", dir + "/bird.conf"}, &out, std::chrono::seconds(10));
  EXPECT_EQ(rc, 0) << out;
  std::filesystem::remove_all(dir);
}

class Announce : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("rondo-bgp-test-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string read(const std::string& name) {
    std::ifstream f(dir_ / name);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
  }
  std::filesystem::path dir_;
};

TEST_F(Announce, RewritesTheFileAndReconfiguresOnlyOnChange) {
  std::vector<std::vector<std::string>> calls;
  std::string answer = "BIRD 2.0.12 ready.\nReading configuration from /etc/bird/bird.conf\nReconfigured\n";
  int rc = 0;
  Announcer a({.include_path = (dir_ / "vips.conf").string(), .birdc = "/usr/sbin/birdc",
               .bird_socket = "/run/x.ctl"},
              [&](const std::vector<std::string>& argv, std::string* out) {
                calls.push_back(argv);
                *out = answer;
                return rc;
              });
  ASSERT_TRUE(a.apply({kVip}));
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0], (std::vector<std::string>{"/usr/sbin/birdc", "-s", "/run/x.ctl", "configure"}));
  EXPECT_EQ(read("vips.conf"), bird_include({kVip}));
  EXPECT_FALSE(std::filesystem::exists(dir_ / "vips.conf.tmp"));
  ASSERT_TRUE(a.apply({kVip}));  // unchanged: BIRD is not bothered
  EXPECT_EQ(calls.size(), 1u);
  // BIRD refuses the configuration (exit 0, says so): not applied, tried again next time.
  answer = "BIRD 2.0.12 ready.\n/etc/bird/bird.conf:12:3 syntax error\n";
  EXPECT_FALSE(a.apply({}));
  EXPECT_EQ(a.announced(), (std::vector<api::Addr>{kVip}));
  EXPECT_FALSE(a.apply({}));
  EXPECT_EQ(calls.size(), 3u);
  // birdc cannot reach BIRD.
  answer = "Unable to connect to server control socket (/run/x.ctl): No such file or directory\n";
  rc = 1;
  EXPECT_FALSE(a.apply({}));
  answer = "Reconfigured\n";
  rc = 0;
  EXPECT_TRUE(a.apply({}));
  EXPECT_TRUE(a.announced().empty());
  EXPECT_EQ(read("vips.conf"), bird_include({}));
}

TEST(Bgp, RunCommandCapturesOutputAndKillsWhatHangs) {
  std::string out;
  EXPECT_EQ(run_command({"sh", "-c", "echo Reconfigured; exit 3"}, &out, std::chrono::seconds(5)), 3);
  EXPECT_EQ(out, "Reconfigured\n");
  out.clear();
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(run_command({"sleep", "10"}, &out, std::chrono::milliseconds(200)), -1);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  EXPECT_EQ(run_command({"/nonexistent/birdc"}, &out, std::chrono::seconds(5)), 127);
}

}  // namespace
}  // namespace rondo::cp
