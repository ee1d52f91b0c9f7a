// rondoctl: every bad argument is a one-line usage error (exit 2) and sends nothing; good
// command lines become exact API requests; and the whole path (rondoctl -> API socket ->
// control plane -> fake dataplane) gives the documented output and exit codes.
#include "controlplane/cli/cli.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "controlplane/api/api_server.h"
#include "controlplane/state/control_plane.h"
#include "controlplane/api/rpc.h"
#include "fake_dataplane.h"

namespace rondo::cp {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

std::vector<std::string> words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

struct UsageCase {
  const char* line;
  const char* error;
};

void PrintTo(const UsageCase& c, std::ostream* os) { *os << c.line; }

class CliUsage : public ::testing::TestWithParam<UsageCase> {};

TEST_P(CliUsage, IsOneLineAndExitTwo) {
  auto r = parse_cli(words(GetParam().line));
  ASSERT_TRUE(std::holds_alternative<CliExit>(r)) << GetParam().line;
  const auto& e = std::get<CliExit>(r);
  EXPECT_EQ(e.code, kExitUsage);
  EXPECT_EQ(e.text, GetParam().error);
  EXPECT_EQ(e.text.find('\n'), std::string::npos);
}

const UsageCase kUsageCases[] = {
    {"", "rondoctl: missing command (rondoctl --help lists them)"},
    {"frobnicate", "rondoctl: frobnicate: unknown command \"frobnicate\" (rondoctl --help lists them)"},
    {"vip", "rondoctl: vip: missing subcommand (add, remove, list, drain, undrain)"},
    {"dataplane", "rondoctl: dataplane: missing subcommand (restart)"},
    {"dataplane restart now", "rondoctl: dataplane restart: unexpected argument \"now\" (expected no arguments)"},
    {"dataplane restart --no-wait --timeout 3",
     "rondoctl: dataplane restart: --timeout does not apply with --no-wait"},
    {"dataplane restart --timeout 0",
     "rondoctl: dataplane restart: --timeout: 0 is not a number of seconds (> 0)"},
    {"vip drain", "rondoctl: vip drain: missing arguments: expected NAME"},
    {"backend", "rondoctl: backend: missing subcommand (add, remove, drain, undrain, weight)"},
    {"vip explode web", "rondoctl: vip explode: unknown command \"vip explode\" (rondoctl --help lists them)"},
    {"--bogus show", "rondoctl: unrecognised option '--bogus'"},
    {"--socket", "rondoctl: the required argument for option '--socket' is missing"},
    {"vip add web", "rondoctl: vip add: missing arguments: expected NAME ADDRESS:PORT"},
    {"vip add web 203.0.113.10", "rondoctl: vip add: 203.0.113.10 is not ADDRESS:PORT (e.g. 198.51.100.3:3000 or [2001:db8::3]:3000)"},
    {"vip add web 203.0.113.300:80", "rondoctl: vip add: 203.0.113.300 is not an IP address"},
    {"vip add web 203.0.113.10:0", "rondoctl: vip add: 0 is not a port (1-65535)"},
    {"vip add web 203.0.113.10:65536", "rondoctl: vip add: 65536 is not a port (1-65535)"},
    {"vip add web 203.0.113.10:http", "rondoctl: vip add: http is not a port (1-65535)"},
    {"vip add web 127.0.0.1:80", "rondoctl: vip add: 127.0.0.1 is a loopback address"},
    {"vip add web 2001:db8::1:80", "rondoctl: vip add: 2001:db8::1:80: an IPv6 endpoint is written [ADDRESS]:PORT (e.g. [2001:db8::3]:3000)"},
    {"vip add web6 [2001:db8::10]", "rondoctl: vip add: [2001:db8::10] is not ADDRESS:PORT (e.g. 198.51.100.3:3000 or [2001:db8::3]:3000)"},
    {"vip add web6 [2001:db8::1x]:80", "rondoctl: vip add: 2001:db8::1x is not an IP address"},
    {"vip add web6 [::ffff:203.0.113.10]:80", "rondoctl: vip add: ::ffff:203.0.113.10 is an IPv4-mapped IPv6 address: write it as IPv4"},
    {"vip add web6 [ff02::1]:80", "rondoctl: vip add: ff02::1 is a multicast address (ff00::/8)"},
    {"vip add web6 [::]:80", "rondoctl: vip add: :: is the unspecified address (::), not a host address"},
    {"vip add web6 [2001:db8::10]:65536", "rondoctl: vip add: 65536 is not a port (1-65535)"},
    {"vip add web [203.0.113.10]:80", "rondoctl: vip add: [203.0.113.10]:80: brackets are for IPv6 addresses (write 203.0.113.10:PORT)"},
    {"backend add web6 2001:db8:100::3", "rondoctl: backend add: 2001:db8:100::3: an IPv6 endpoint is written [ADDRESS]:PORT (e.g. [2001:db8::3]:3000)"},
    {"vip add we/b 203.0.113.10:80", "rondoctl: vip add: vip name \"we/b\" is not a valid name (1-64 characters from A-Z a-z 0-9 _ - .)"},
    {"vip add web 203.0.113.10:80 --proto sctp", "rondoctl: vip add: --proto: sctp is not a protocol (tcp, udp)"},
    {"vip add web 203.0.113.10:80 --scheduler lcx", "rondoctl: vip add: --scheduler: lcx is not a scheduler (rr, wrr, maglev, sh, lc)"},
    {"vip add web 203.0.113.10:80 --proxy-protocol v1", "rondoctl: vip add: --proxy-protocol: v1 is not a PROXY protocol setting (off, v2)"},
    {"vip add web 203.0.113.10:80 --mode dsr", "rondoctl: vip add: --mode: dsr is not a mode (fullnat, ipip, gue, l2dsr)"},
    {"vip add web 203.0.113.10:80 --on-all-down fail", "rondoctl: vip add: --on-all-down: fail is not an on-all-down setting (drop, open)"},
    {"backend add web 198.51.100.3:80 --mode ipip", "rondoctl: backend add: unrecognised option '--mode'"},
    {"vip add web 203.0.113.10:80 --scheduler RR", "rondoctl: vip add: --scheduler: RR is not a scheduler (rr, wrr, maglev, sh, lc)"},
    {"vip add web 203.0.113.10:80 --scheduler", "rondoctl: vip add: the required argument for option '--scheduler' is missing"},
    {"vip add web 203.0.113.10:80 extra", "rondoctl: vip add: unexpected argument \"extra\" (expected NAME ADDRESS:PORT)"},
    {"vip remove", "rondoctl: vip remove: missing arguments: expected NAME"},
    {"vip list web", "rondoctl: vip list: unexpected argument \"web\" (expected no arguments)"},
    {"backend add web", "rondoctl: backend add: missing arguments: expected VIP ADDRESS:PORT"},
    {"backend add web 198.51.100.3:3004 --weight 70000", "rondoctl: backend add: 70000 is not a weight (0-65535)"},
    {"backend add web 198.51.100.3:3004 --weight x", "rondoctl: backend add: x is not a weight (0-65535)"},
    {"backend add web 198.51.100.3:3004 --weight -1", "rondoctl: backend add: -1: negative numbers are not valid here"},
    {"backend add web 198.51.100.3:3004 --wieght 2", "rondoctl: backend add: unrecognised option '--wieght'"},
    {"backend add web 198.51.100.3:3004 --force", "rondoctl: backend add: unrecognised option '--force'"},
    {"backend drain web 198.51.100.3:3001 --timeout 5", "rondoctl: backend drain: --timeout only applies with --wait"},
    {"backend drain web 198.51.100.3:3001 --wait --timeout 0", "rondoctl: backend drain: --timeout: 0 is not a number of seconds (> 0)"},
    {"backend drain web 198.51.100.3:3001 --wait --timeout soon", "rondoctl: backend drain: --timeout: soon is not a number of seconds (> 0)"},
    {"backend drain web 198.51.100.3:99999", "rondoctl: backend drain: 99999 is not a port (1-65535)"},
    {"backend undrain web", "rondoctl: backend undrain: missing arguments: expected VIP ADDRESS:PORT"},
    {"backend weight web 198.51.100.3:3001", "rondoctl: backend weight: missing arguments: expected VIP ADDRESS:PORT WEIGHT"},
    {"backend weight web 198.51.100.3:3001 3 4", "rondoctl: backend weight: unexpected argument \"4\" (expected VIP ADDRESS:PORT WEIGHT)"},
    {"backend weight web 198.51.100.3:3001 heavy", "rondoctl: backend weight: heavy is not a weight (0-65535)"},
    {"backend remove web 198.51.100.3.1:3001", "rondoctl: backend remove: 198.51.100.3.1 is not an IP address"},
    {"show web dns", "rondoctl: show: unexpected argument \"dns\" (expected [VIP])"},
    {"stats now", "rondoctl: stats: unexpected argument \"now\" (expected no arguments)"},
    {"reload --force", "rondoctl: reload: unrecognised option '--force'"},
    {"flow", "rondoctl: flow: missing subcommand (show, list, delete)"},
    {"flow show 198.51.100.2:40000", "rondoctl: flow show: expected CLIENT:PORT VIP:PORT/PROTO (or --backend-side BACKEND:PORT LOCAL:PORT/PROTO)"},
    {"flow show 198.51.100.2:40000 203.0.113.10:80", "rondoctl: flow show: 203.0.113.10:80: expected ADDRESS:PORT/PROTO (e.g. 203.0.113.10:80/tcp)"},
    {"flow show 198.51.100.2:40000 203.0.113.10:80/sctp", "rondoctl: flow show: sctp is not a protocol (tcp, udp)"},
    {"flow show 198.51.100.2 203.0.113.10:80/tcp", "rondoctl: flow show: 198.51.100.2 is not ADDRESS:PORT (e.g. 198.51.100.3:3000 or [2001:db8::3]:3000)"},
    {"flow show 198.51.100.2:1 203.0.113.10:80/tcp --vip web", "rondoctl: flow show: unrecognised option '--vip'"},
    {"flow delete", "rondoctl: flow delete: name the flows to delete (endpoints, or a filter such as --backend ADDRESS:PORT)"},
    {"flow delete --backend-side", "rondoctl: flow delete: --backend-side goes with two endpoints"},
    {"flow list --limit 0", "rondoctl: flow list: --limit: 0 is not a number from 1 to 1000000"},
    {"flow list --proto icmp", "rondoctl: flow list: --proto: icmp is not a protocol (tcp, udp)"},
    {"flow list --client 198.51.100.2:40000 198.51.100.2:40000 203.0.113.10:80/tcp", "rondoctl: flow list: --client and the endpoints name the same thing"},
    {"trace --count 0", "rondoctl: trace: --count: 0 is not a number from 1 to 10000"},
    {"trace --seconds 3601", "rondoctl: trace: --seconds: 3601 is not a number from 1 to 3600"},
    {"trace now", "rondoctl: trace: unexpected argument \"now\" (expected no arguments)"},
    {"drops --limit 3", "rondoctl: drops: unrecognised option '--limit'"},
};

INSTANTIATE_TEST_SUITE_P(Cases, CliUsage, ::testing::ValuesIn(kUsageCases),
                         [](const ::testing::TestParamInfo<UsageCase>& info) {
                           std::string name = std::to_string(info.index) + "_" + info.param.line;
                           for (char& c : name)
                             if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                           return name;
                         });

CliInvocation parsed(const std::string& line) {
  auto r = parse_cli(words(line));
  if (auto* e = std::get_if<CliExit>(&r)) {
    ADD_FAILURE() << line << ": " << e->text;
    return {};
  }
  return std::get<CliInvocation>(r);
}

TEST(Cli, GoodLinesBecomeExactRequests) {
  auto i = parsed("vip add web 203.0.113.10:80 --proto udp");
  EXPECT_EQ(i.request, json::parse(R"({"cmd": "vip.add", "name": "web", "address": "203.0.113.10",
      "port": 80, "protocol": "udp", "scheduler": "rr"})"));
  EXPECT_EQ(i.socket, kDefaultApiSocket);
  EXPECT_FALSE(i.json);
  for (const char* s : {"rr", "wrr", "maglev", "sh", "lc"}) {
    i = parsed(std::string("vip add web 203.0.113.10:80 --scheduler ") + s);
    EXPECT_EQ(i.request["scheduler"], s);
  }
  // Modes and on_all_down go out only when not the default, as proxy_protocol.
  for (const auto& n : api::kModeNames) {
    i = parsed(std::string("vip add web 203.0.113.10:80 --mode ") + n.name);
    EXPECT_EQ(i.request.value("mode", "fullnat"), n.name);
  }
  EXPECT_FALSE(parsed("vip add web 203.0.113.10:80 --mode fullnat").request.contains("mode"));
  i = parsed("vip add web 203.0.113.10:80 --mode l2dsr --on-all-down open --proxy-protocol off");
  EXPECT_EQ(i.request, json::parse(R"({"cmd": "vip.add", "name": "web", "address": "203.0.113.10",
      "port": 80, "protocol": "tcp", "scheduler": "rr", "mode": "l2dsr", "on_all_down": "open"})"));
  EXPECT_FALSE(parsed("vip add web 203.0.113.10:80 --on-all-down drop").request.contains("on_all_down"));

  i = parsed("--socket /tmp/x.sock backend add web 198.51.100.3:3004 --weight 0 --json");
  EXPECT_EQ(i.request, json::parse(R"({"cmd": "backend.add", "vip": "web",
      "address": "198.51.100.3", "port": 3004, "weight": 0})"));
  EXPECT_EQ(i.socket, "/tmp/x.sock");
  EXPECT_TRUE(i.json);

  i = parsed("--json backend drain web 198.51.100.3:3001 --wait --timeout 2.5");
  EXPECT_EQ(i.request["cmd"], "backend.drain");
  EXPECT_TRUE(i.json);
  EXPECT_TRUE(i.wait);
  EXPECT_EQ(i.timeout_s, 2.5);

  EXPECT_EQ(parsed("backend remove web 198.51.100.3:3001 --force").request["force"], true);
  EXPECT_EQ(parsed("backend remove web 198.51.100.3:3001").request["force"], false);
  EXPECT_EQ(parsed("vip remove web --force").request,
            json::parse(R"({"cmd": "vip.remove", "name": "web", "force": true})"));
  EXPECT_EQ(parsed("backend weight web 198.51.100.3:3001 65535").request["weight"], 65535);
  EXPECT_EQ(parsed("backend undrain web 198.51.100.3:3001").request["cmd"], "backend.undrain");
  EXPECT_EQ(parsed("show web").request, json::parse(R"({"cmd": "show", "vip": "web"})"));
  EXPECT_EQ(parsed("show").request, json::parse(R"({"cmd": "show"})"));
  EXPECT_EQ(parsed("stats").request, json::parse(R"({"cmd": "stats"})"));
  EXPECT_EQ(parsed("--socket=/s reload").socket, "/s");
  EXPECT_EQ(parsed("vip list").request, json::parse(R"({"cmd": "vip.list"})"));
  // IPv6 endpoints in brackets; the request carries the address in RFC 5952 form.
  EXPECT_EQ(parsed("vip add web6 [2001:DB8:0::10]:80").request,
            json::parse(R"({"cmd": "vip.add", "name": "web6", "address": "2001:db8::10",
                "port": 80, "protocol": "tcp", "scheduler": "rr"})"));
  EXPECT_EQ(parsed("backend add web6 [2001:db8:100::3]:3000").request,
            json::parse(R"({"cmd": "backend.add", "vip": "web6", "address": "2001:db8:100::3",
                "port": 3000, "weight": 1})"));
  EXPECT_EQ(parsed("backend drain web6 [2001:db8:100::3]:3000").request["address"], "2001:db8:100::3");
  EXPECT_FALSE(parsed("backend drain web 198.51.100.3:3001").timeout_s);
}

TEST(Cli, DataplaneRestartWaitsThirtySecondsUnlessTold) {
  auto i = parsed("dataplane restart");
  EXPECT_EQ(i.request, json::parse(R"({"cmd": "dataplane.restart"})"));
  EXPECT_TRUE(i.wait);
  EXPECT_EQ(i.timeout_s, 30.0);
  i = parsed("dataplane restart --timeout 5");
  EXPECT_EQ(i.timeout_s, 5.0);
  i = parsed("dataplane restart --no-wait");
  EXPECT_FALSE(i.wait);
}

TEST(Cli, ShowSaysHowTheDataplaneStarted) {
  setenv("TZ", "UTC", 1);
  tzset();
  json s = json::parse(R"({"dataplane": {"pid": 7, "since": 1700000000.5, "start_kind": "crash",
      "adopted_flows": 900, "discarded_flows": 3, "gap_ms": 2400}})");
  EXPECT_EQ(format_dataplane_start(s),
            "dataplane: pid 7, up since 2023-11-14 22:13:20 UTC, after a crash: 900 flows "
            "adopted, 3 discarded, gap 2400 ms\n");
  s["dataplane"]["start_kind"] = "fresh";
  EXPECT_EQ(format_dataplane_start(s),
            "dataplane: pid 7, up since 2023-11-14 22:13:20 UTC, started fresh: 900 flows "
            "adopted, 3 discarded, gap 2400 ms\n");
  s["dataplane"]["discarded_flows"] = 0;
  s["dataplane"]["since"] = nullptr;
  EXPECT_EQ(format_dataplane_start(s), "dataplane: pid 7, started fresh\n");
  EXPECT_EQ(format_dataplane_start(json::parse(R"({"dataplane": null})")), "");
}

TEST(Cli, InspectionLinesBecomeExactRequests) {
  EXPECT_EQ(parsed("flow show 198.51.100.2:40000 203.0.113.10:80/tcp").request,
            json::parse(R"({"cmd": "flow.list", "client": "198.51.100.2:40000",
                "vip": "203.0.113.10:80", "protocol": "tcp"})"));
  EXPECT_EQ(parsed("flow show --backend-side 198.51.100.3:3000 198.51.100.100:41000/udp").request,
            json::parse(R"({"cmd": "flow.list", "backend": "198.51.100.3:3000",
                "local": "198.51.100.100:41000", "protocol": "udp"})"));
  auto i = parsed("flow list --vip web --backend 198.51.100.3 --limit 2500");
  EXPECT_EQ(i.request, json::parse(R"({"cmd": "flow.list", "vip": "web",
      "backend": "198.51.100.3", "limit": 1000})"));
  EXPECT_EQ(i.max_flows, 2500u);
  EXPECT_EQ(parsed("flow list").request, json::parse(R"({"cmd": "flow.list", "limit": 100})"));
  EXPECT_EQ(parsed("flow delete --backend 198.51.100.3:3001").request,
            json::parse(R"({"cmd": "flow.delete", "backend": "198.51.100.3:3001"})"));
  i = parsed("trace --vip 203.0.113.10:80 --client 198.51.100.2 --count 5 --seconds 2");
  EXPECT_EQ(i.request, json::parse(R"({"cmd": "trace.start", "vip": "203.0.113.10:80",
      "client": "198.51.100.2", "count": 5, "seconds": 2})"));
  EXPECT_EQ(i.trace_count, 5u);
  EXPECT_EQ(parsed("flow show [2001:db8:100::2]:40000 [2001:0db8::10]:80/tcp").request,
            json::parse(R"({"cmd": "flow.list", "client": "[2001:db8:100::2]:40000",
                "vip": "[2001:db8::10]:80", "protocol": "tcp"})"));
  EXPECT_EQ(parsed("flow list --backend 2001:db8:100::3").request["backend"], "2001:db8:100::3");
  EXPECT_EQ(parsed("drops --reason no_service").request,
            json::parse(R"({"cmd": "drops", "reason": "no_service"})"));
}

TEST(Cli, HelpExitsZero) {
  for (const char* line : {"--help", "-h", "show --help", "backend add --help"}) {
    auto r = parse_cli(words(line));
    ASSERT_TRUE(std::holds_alternative<CliExit>(r)) << line;
    EXPECT_EQ(std::get<CliExit>(r).code, kExitOk);
    EXPECT_NE(std::get<CliExit>(r).text.find("Exit codes:"), std::string::npos);
  }
}

TEST(Cli, FormatsBytes) {
  EXPECT_EQ(format_bytes(0), "0 B");
  EXPECT_EQ(format_bytes(1023), "1023 B");
  EXPECT_EQ(format_bytes(1536), "1.5 KiB");
  EXPECT_EQ(format_bytes(5.0 * 1024 * 1024 * 1024), "5.0 GiB");
}

TEST(Cli, UnreachableControlPlaneExitsOne) {
  auto inv = parsed("--socket /nonexistent/rondo.sock show");
  std::ostringstream out, err;
  EXPECT_EQ(run_cli(inv, out, err), kExitFailed);
  EXPECT_EQ(err.str(),
            "rondoctl: cannot reach the control plane at /nonexistent/rondo.sock: No such file or "
            "directory (is rondo-controlplane running?)\n");
}

// ---- the whole path, over a real socket ----

constexpr const char* kConfig = R"(local_ips: [198.51.100.100, "2001:db8:100::100"]
vips:
  - name: web
    address: 203.0.113.10
    port: 80
    backends:
      - {address: 198.51.100.3, port: 3000}
      - {address: 198.51.100.3, port: 3001}
)";

class CliEndToEnd : public ::testing::Test {
 protected:
  CliEndToEnd() {
    char t[] = "/tmp/rondoctl-XXXXXX";
    dir_ = mkdtemp(t);
    std::ofstream(dir_ + "/rondo.yaml") << kConfig;
    ControlPlaneOptions o;
    o.config_path = dir_ + "/rondo.yaml";
    o.state_path = dir_ + "/state.json";
    o.apply_timeout = 0ms;
    cp_ = std::make_unique<ControlPlane>(std::make_unique<testing::FakeDataplaneClient>(dp_), o);
    EXPECT_TRUE(cp_->start().ok);
    server_ = std::make_unique<ApiServer>(
        ApiServerOptions{.path = dir_ + "/api.sock"},
        [this](std::string_view line, const std::string& origin) {
          return handle_request(*cp_, line, origin);
        });
    EXPECT_EQ(server_->start(), "");
    cp_->sync(now_);  // connect and push
  }
  ~CliEndToEnd() override {
    if (dataplane_.joinable()) {
      stop_ = true;
      dataplane_.join();
    }
    server_->stop();
    std::filesystem::remove_all(dir_);
  }

  // Run rondoctl with `line`; returns the exit code, output in out_ / err_.
  int run(const std::string& line) {
    out_.str("");
    err_.str("");
    auto r = parse_cli(words("--socket " + dir_ + "/api.sock " + line));
    if (auto* e = std::get_if<CliExit>(&r)) {
      err_ << e->text;
      return e->code;
    }
    return run_cli(std::get<CliInvocation>(r), out_, err_, 20ms);
  }

  std::string dir_;
  std::shared_ptr<testing::FakeDataplane> dp_ = std::make_shared<testing::FakeDataplane>();
  std::unique_ptr<ControlPlane> cp_;
  std::unique_ptr<ApiServer> server_;
  ControlPlane::Clock::time_point now_{};
  std::thread dataplane_;
  std::atomic<bool> stop_{false};
  std::ostringstream out_, err_;
};

TEST_F(CliEndToEnd, ChangesPrintTheirDiffAndExitZero) {
  EXPECT_EQ(run("backend add web 198.51.100.3:3004 --weight 2"), kExitOk);
  EXPECT_EQ(out_.str(), "+ backend web 198.51.100.3:3004 weight 2\n");
  EXPECT_EQ(run("backend weight web 198.51.100.3:3004 5"), kExitOk);
  EXPECT_EQ(out_.str(), "~ backend web 198.51.100.3:3004 weight 2 -> 5\n");
  EXPECT_EQ(run("backend weight web 198.51.100.3:3004 5"), kExitOk);
  EXPECT_EQ(err_.str(), "rondoctl: note: backend web 198.51.100.3:3004 already has weight 5\n");
  EXPECT_EQ(run("vip add api 203.0.113.11:443"), kExitOk);
  EXPECT_EQ(out_.str(), "+ vip api 203.0.113.11:443/tcp\n");
  EXPECT_EQ(run("--json vip list"), kExitOk);
  auto j = json::parse(out_.str());
  EXPECT_EQ(j["vips"].size(), 2u);
}

// An IPv6 vip and backends through rondoctl, the API and the control plane: diffs, the
// table and the vip list print [v6]:port; validation's family rules come back as refusals.
TEST_F(CliEndToEnd, Ipv6VipAndBackends) {
  EXPECT_EQ(run("vip add web6 [2001:db8::10]:80"), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(), "+ vip web6 [2001:db8::10]:80/tcp\n");
  EXPECT_EQ(run("backend add web6 [2001:db8:100::3]:3000"), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(), "+ backend web6 [2001:db8:100::3]:3000 weight 1\n");
  EXPECT_EQ(run("backend add web6 [2001:db8:100:0:0:0:0:3]:3000"), kExitFailed);
  EXPECT_EQ(err_.str(), "rondoctl: backend add: [2001:db8:100::3]:3000 is already a backend of vip web6\n");
  // One family of backends per vip (validate_state's rule, not rondoctl's: an invalid
  // request, exit 2).
  EXPECT_EQ(run("backend add web6 198.51.100.3:3000"), kExitUsage);
  EXPECT_NE(err_.str().find("198.51.100.3 is IPv4 but the vip's first backend is IPv6"), std::string::npos)
      << err_.str();
  EXPECT_EQ(run("backend weight web6 [2001:db8:100::3]:3000 4"), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(), "~ backend web6 [2001:db8:100::3]:3000 weight 1 -> 4\n");
  cp_->sync(now_ += 500ms);
  EXPECT_EQ(run("vip list"), kExitOk);
  EXPECT_NE(out_.str().find("web6  [2001:db8::10]:80"), std::string::npos) << out_.str();
  EXPECT_EQ(run("show web6"), kExitOk);
  EXPECT_NE(out_.str().find("web6 [2001:db8::10]:80/tcp  fullnat  rr     [2001:db8:100::3]:3000"),
            std::string::npos)
      << out_.str();
  EXPECT_EQ(run("--json vip list"), kExitOk);
  const auto j = json::parse(out_.str());
  ASSERT_EQ(j["vips"].size(), 2u);
  EXPECT_EQ(j["vips"][1]["address"], "2001:db8::10");
  // What the dataplane is told: the 16 bytes of the address.
  const api::State pushed = dp_->last();
  ASSERT_EQ(pushed.vips.size(), 2u);
  EXPECT_EQ(pushed.vips[1].ip, api::parse_addr("2001:db8::10"));
  ASSERT_EQ(pushed.vips[1].backends.size(), 1u);
  EXPECT_EQ(pushed.vips[1].backends[0].ip, api::parse_addr("2001:db8:100::3"));
  EXPECT_EQ(pushed.vips[1].backends[0].weight, 4);
  EXPECT_EQ(run("backend remove web6 [2001:db8:100::3]:3000"), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(), "- backend web6 [2001:db8:100::3]:3000\n");
}

TEST_F(CliEndToEnd, RefusalsExitOneWithOneLine) {
  EXPECT_EQ(run("backend add wbe 198.51.100.3:3004"), kExitFailed);
  EXPECT_EQ(err_.str(), "rondoctl: backend add: no vip named wbe\n");
  EXPECT_EQ(run("backend add web 198.51.100.3:3000"), kExitFailed);
  EXPECT_EQ(err_.str(), "rondoctl: backend add: 198.51.100.3:3000 is already a backend of vip web\n");
  EXPECT_EQ(run("vip add web 203.0.113.12:80"), kExitFailed);
  EXPECT_EQ(err_.str(), "rondoctl: vip add: vip web already exists\n");
  dp_->set_backend(1, 2);
  cp_->sync(now_ += 500ms);
  EXPECT_EQ(run("backend remove web 198.51.100.3:3001"), kExitFailed);
  EXPECT_EQ(err_.str(),
            "rondoctl: backend remove: backend web 198.51.100.3:3001 still has 2 active flows; "
            "drain it first (rondoctl backend drain web 198.51.100.3:3001 --wait) or use --force\n");
  EXPECT_EQ(run("backend remove web 198.51.100.3:3001 --force"), kExitOk);
  EXPECT_EQ(out_.str(), "- backend web 198.51.100.3:3001\n");
  // Usage errors never reach the server.
  EXPECT_EQ(run("backend add web 198.51.100.3:70000"), kExitUsage);
}

TEST_F(CliEndToEnd, ReloadOfABadFileExitsOneAndListsTheErrors) {
  std::ofstream(dir_ + "/rondo.yaml")
      << "local_ips: [198.51.100.100]\nvips:\n  - name: web\n    port: 99999\n";
  EXPECT_EQ(run("reload"), kExitFailed);
  EXPECT_EQ(err_.str(), dir_ + "/rondo.yaml:3: vips[0].address: required field is missing\n" +
                            dir_ + "/rondo.yaml:3: vips[0].backends: required field is missing\n" +
                            dir_ + "/rondo.yaml:4: vips[0].port: 99999 is not a port (1-65535)\n" +
                            "rondoctl: reload: " + dir_ +
                            "/rondo.yaml is invalid (3 errors); nothing changed\n");
}

TEST_F(CliEndToEnd, ShowIsATable) {
  dp_->set_backend(0, 3, 40, 400, 4096);
  cp_->sync(now_ += 500ms);
  EXPECT_EQ(run("backend drain web 198.51.100.3:3001"), kExitOk);
  cp_->sync(now_ += 500ms);
  EXPECT_EQ(run("show"), kExitOk);
  const std::string text = out_.str();
  EXPECT_NE(text.find("generation 2, dataplane connected (pid 42, 2 workers), in sync"), std::string::npos) << text;
  EXPECT_NE(text.find("VIP                      MODE     SCHED  BACKEND            WEIGHT  HEALTH   STATE    FLOWS  CONN/S  PACKETS    BYTES"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("web 203.0.113.10:80/tcp  fullnat  rr     198.51.100.3:3000       1  unknown  active       3"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("198.51.100.3:3001       1  unknown  drained      0"), std::string::npos) << text;
  EXPECT_EQ(run("stats"), kExitOk);
  EXPECT_NE(out_.str().find("web  198.51.100.3:3000   0      3"), std::string::npos) << out_.str();
  EXPECT_EQ(run("status"), kExitOk);
  EXPECT_NE(out_.str().find("state file:    " + dir_ + "/state.json"), std::string::npos);
}

TEST_F(CliEndToEnd, DrainWaitPrintsTheCountAsItFalls) {
  dp_->set_backend(1, 3);
  cp_->sync(now_ += 500ms);
  // The "dataplane": one flow ends every 150 ms; the control plane polls it as its
  // controller thread would. Only this thread touches dp_ from here on.
  dataplane_ = std::thread([this] {
    uint64_t flows = 3;
    auto t = now_;
    while (!stop_) {
      std::this_thread::sleep_for(150ms);
      if (flows > 0) dp_->set_backend(1, --flows);
      cp_->sync(t += 500ms);
    }
  });
  EXPECT_EQ(run("backend drain web 198.51.100.3:3001 --wait --timeout 10"), kExitOk);
  EXPECT_EQ(out_.str(),
            "~ backend web 198.51.100.3:3001 drained\n"
            "backend web 198.51.100.3:3001: 3 active flows\n"
            "backend web 198.51.100.3:3001: 2 active flows\n"
            "backend web 198.51.100.3:3001: 1 active flow\n"
            "backend web 198.51.100.3:3001: 0 active flows\n"
            "backend web 198.51.100.3:3001 is drained: no active flows left\n");
}

TEST_F(CliEndToEnd, DrainWaitTimesOut) {
  dp_->set_backend(1, 4);
  cp_->sync(now_ += 500ms);
  EXPECT_EQ(run("backend drain web 198.51.100.3:3001 --wait --timeout 0.2"), kExitFailed);
  EXPECT_EQ(out_.str(),
            "~ backend web 198.51.100.3:3001 drained\n"
            "backend web 198.51.100.3:3001: 4 active flows\n");
  EXPECT_EQ(err_.str(),
            "rondoctl: backend drain: timeout after 0.2 s: backend web 198.51.100.3:3001 still "
            "has 4 active flows\n");
}

class CliRestart : public CliEndToEnd {
 protected:
  // The controller thread, on a fake clock: 50 ms per step, so that every step is a retry.
  void run_controller() {
    dataplane_ = std::thread([this] {
      auto t = now_;
      while (!stop_) {
        std::this_thread::sleep_for(10ms);
        cp_->sync(t += 50ms);
      }
    });
  }
};

TEST_F(CliRestart, WaitsForTheNewInstanceAndSaysWhatItTookOver) {
  run_controller();
  EXPECT_EQ(run("dataplane restart"), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(),
            "dataplane pid 42 is restarting: restarting: 1000 flows kept in /fake/flows\n"
            "dataplane restarted: pid 42, planned restart, 1000 flows adopted (0 discarded), "
            "forwarding resumed after 120 ms\n");
  EXPECT_EQ(dp_->restarts_asked, 1);
  EXPECT_EQ(dp_->instance, 2u);
  EXPECT_EQ(run("show"), kExitOk);
  EXPECT_NE(out_.str().find(", after a planned restart: 1000 flows adopted, 0 discarded, gap 120 ms\n"),
            std::string::npos)
      << out_.str();
  EXPECT_EQ(run("--json show"), kExitOk);
  const json st = json::parse(out_.str())["status"];
  EXPECT_EQ(st["dataplane"]["start_kind"], "planned");
  EXPECT_EQ(st["dataplane"]["adopted_flows"], 1000);
  EXPECT_EQ(st["dataplane"]["gap_ms"], 120);
  EXPECT_TRUE(st["dataplane"]["since"].is_number());
  EXPECT_EQ(st["dataplane_restarts"], json::parse(R"({"fresh": 0, "planned": 1, "crash": 0})"));
}

TEST_F(CliRestart, NoWaitReturnsOnceAccepted) {
  run_controller();
  EXPECT_EQ(run("dataplane restart --no-wait"), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(), "dataplane pid 42 is restarting: restarting: 1000 flows kept in /fake/flows\n");
}

TEST_F(CliRestart, RefusalIsRelayed) {
  dp_->refuse_restart = "started without --flow-dir: its flows would be lost";
  run_controller();
  EXPECT_EQ(run("dataplane restart"), kExitFailed);
  EXPECT_EQ(out_.str(), "");
  EXPECT_EQ(err_.str(),
            "rondoctl: dataplane restart: the dataplane refused to restart: started without "
            "--flow-dir: its flows would be lost\n");
  EXPECT_EQ(dp_->instance, 1u);
}

TEST_F(CliRestart, ANewProcessThatDoesNotComeBackTimesOut) {
  dp_->comes_back = false;
  run_controller();
  EXPECT_EQ(run("dataplane restart --timeout 0.3"), kExitFailed);
  EXPECT_EQ(err_.str(),
            "rondoctl: dataplane restart: timeout after 0.3 s: the dataplane has not reconnected "
            "(rondoctl status; journalctl -u rondo-dataplane)\n");
}

TEST_F(CliRestart, AnUnreadableAnswerIsAFailure) {
  dp_->garbled_restart_reply = true;
  run_controller();
  EXPECT_EQ(run("dataplane restart"), kExitFailed);
  EXPECT_EQ(err_.str(),
            "rondoctl: dataplane restart: no answer to the restart request (restart: ack: "
            "truncated); the dataplane may be restarting\n");
}

TEST_F(CliRestart, NothingToRestartWithoutADataplane) {
  dp_->listening = false;
  cp_->sync(now_ += 500ms);
  EXPECT_EQ(run("dataplane restart"), kExitFailed);
  EXPECT_EQ(err_.str(),
            "rondoctl: dataplane restart: the dataplane is not connected (nothing to restart)\n");
  EXPECT_EQ(dp_->restarts_asked, 0);
}

TEST_F(CliEndToEnd, SocketIsGroupOnly) {
  struct stat st {};
  ASSERT_EQ(::stat((dir_ + "/api.sock").c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  // A second server on the same path refuses to start; the first keeps serving.
  ApiServer second(ApiServerOptions{.path = dir_ + "/api.sock"},
                   [](std::string_view, const std::string&) { return std::string("{}"); });
  EXPECT_EQ(second.start().rfind("another control plane is already listening on " + dir_ + "/api.sock", 0), 0u);
  EXPECT_EQ(run("status"), kExitOk);
}

TEST_F(CliEndToEnd, GarbageOnTheSocketGetsAnErrorLine) {
  ApiClient c(dir_ + "/api.sock");
  ASSERT_TRUE(c.connect());
  // Not via call(): send raw bytes that are not JSON.
  auto a = c.call(json("just a string"));
  ASSERT_TRUE(a);
  EXPECT_EQ((*a)["ok"], false);
  EXPECT_EQ((*a)["error"], "malformed request: expected a JSON object");
}

}  // namespace
}  // namespace rondo::cp

namespace rondo::cp {
namespace {

// One backend row of `show`'s answer (198.51.100.3:port, idle), with `extra` fields.
json backend_row(int port, json extra = json::object()) {
  json b = {{"address", "198.51.100.3"}, {"port", port},    {"weight", 1},
            {"health", "up"},             {"drained", false}, {"active_flows", 0},
            {"connections_per_s", 0.0},   {"packets", 0},     {"bytes", 0}};
  b.update(extra);
  return b;
}

// One vip row of `show`'s answer (`name` on 203.0.113.10:port/tcp), with `extra` fields.
json vip_row(const char* name, int port, json backends, json extra = json::object()) {
  json v = {{"name", name},       {"address", "203.0.113.10"}, {"port", port},
            {"protocol", "tcp"}, {"backends", backends}};
  v.update(extra);
  return v;
}

// `show`'s answer with these vips, the dataplane not connected.
json show_answer(json vips) {
  return {{"status", {{"generation", 1}, {"dataplane_connected", false}}}, {"vips", vips}};
}

// `rondoctl show` starts with the interfaces: port and its device, VLAN ("-": untagged),
// MTU, addresses, packets and bytes each way ("-": not known); `stats` ends with them.
TEST(Cli, ShowStartsWithTheInterfaces) {
  json a = show_answer(json::array({vip_row("web", 80, json::array({backend_row(3000)}))}));
  a["interfaces"] = json::parse(R"([
      {"name": "clients", "id": 0, "port": 0, "device": "net_af_packet0", "vlan": 100,
       "mtu": 1500, "addresses": ["192.0.2.1/24", "2001:db8:200::1/64"], "implicit": false,
       "rx_packets": 12, "rx_bytes": 1234, "tx_packets": 7, "tx_bytes": 2048},
      {"name": "backends", "id": 1, "port": 0, "device": null, "vlan": 0, "mtu": 9000,
       "addresses": [], "implicit": false, "rx_packets": null, "rx_bytes": null,
       "tx_packets": null, "tx_bytes": null}])");
  const std::string table =
      "INTERFACE  PORT                VLAN   MTU  ADDRESSES                        RX_PACKETS  "
      "RX_BYTES  TX_PACKETS  TX_BYTES\n"
      "clients    0 (net_af_packet0)   100  1500  192.0.2.1/24,2001:db8:200::1/64          12   "
      "1.2 KiB           7   2.0 KiB\n"
      "backends   0                      -  9000  -                                         -     "
      "    -           -         -\n";
  const std::string out = format_show(a);
  const auto at = out.find(table);
  ASSERT_NE(at, std::string::npos) << out;
  EXPECT_LT(at, out.find("VIP ")) << out;  // first, before the vips
  // Without interfaces in the answer (an older control plane): no table, nothing else moves.
  a.erase("interfaces");
  EXPECT_EQ(format_show(a).find("INTERFACE"), std::string::npos);

  json st = {{"status", {{"generation", 1}, {"dataplane_connected", false}}},
             {"counters", json::array()}, {"lcores", json::array()}, {"drops", json::object()},
             {"backends", json::array()}, {"ports", json::array()}};
  st["interfaces"] = json::parse(R"([{"name": "port0", "id": 0, "port": 0, "device": "net_null0",
      "vlan": 0, "mtu": 1500, "addresses": [], "implicit": true, "rx_packets": 3, "rx_bytes": 180,
      "tx_packets": 2, "tx_bytes": 120}])");
  const std::string stats = format_stats(st);
  EXPECT_NE(stats.find("port0      0 (net_null0)     -  1500  -                   3     180 B     "
                       "      2     120 B\n"),
            std::string::npos)
      << stats;
}

// `rondoctl show` warns when a backend is short of local ports (issue 8: under 10% free), and
// only then.
TEST(Cli, ShowWarnsWhenABackendRunsShortOfLocalPorts) {
  auto answer = [](uint64_t free, uint64_t all) {
    const json b = backend_row(
        3000, {{"active_flows", all - free}, {"local_ports_free", free}, {"local_ports", all}});
    return show_answer(json::array({vip_row("web", 80, json::array({b}))}));
  };
  const std::string low = format_show(answer(6000, 64512));
  EXPECT_NE(low.find("warning: web backend 198.51.100.3:3000: 6000 of 64512 local ports free"),
            std::string::npos)
      << low;
  EXPECT_EQ(format_show(answer(6452, 64512)).find("warning"), std::string::npos);
}

// `rondoctl show` warns when health checks have every backend of a VIP that could take a new
// connection down, saying what the VIP does then (on_all_down); drained and weight-0
// backends do not count; one backend up or unknown is enough for no warning. `vip list`
// has the setting in ALL_DOWN.
TEST(Cli, ShowSaysWhatAVipDoesWhenEveryBackendIsDown) {
  auto answer = [](const char* on_all_down, json backends) {
    return show_answer(json::array({vip_row(
        "web", 80, backends, {{"mode", "l2dsr"}, {"scheduler", "rr"}, {"on_all_down", on_all_down}})}));
  };
  const auto down = json::array({backend_row(80, {{"health", "down"}}),
                                 backend_row(81, {{"drained", true}}),
                                 backend_row(82, {{"health", "unknown"}, {"weight", 0}})});
  std::string out = format_show(answer("drop", down));
  EXPECT_NE(out.find("web 203.0.113.10:80/tcp  l2dsr  rr"), std::string::npos) << out;
  EXPECT_NE(out.find("warning: web: every backend is down (health checks): new connections are "
                     "dropped (on_all_down: drop)\n"),
            std::string::npos)
      << out;
  out = format_show(answer("open", down));
  EXPECT_NE(out.find("warning: web: every backend is down (health checks): new connections "
                     "still go to them (on_all_down: open)\n"),
            std::string::npos)
      << out;
  for (const char* other : {"up", "unknown"}) {
    auto some = down;
    some.push_back(backend_row(83, {{"health", other}}));
    EXPECT_EQ(format_show(answer("open", some)).find("warning"), std::string::npos) << other;
  }
  EXPECT_EQ(format_show(answer("drop", json::array())).find("warning"), std::string::npos);

  const json list = {{"vips",
                      {{{"name", "web"},
                        {"address", "203.0.113.10"},
                        {"port", 80},
                        {"protocol", "tcp"},
                        {"scheduler", "rr"},
                        {"mode", "ipip"},
                        {"on_all_down", "open"},
                        {"backends", 2},
                        {"health_check", "none"},
                        {"id", 0}}}}};
  out = format_vip_list(list);
  EXPECT_NE(out.find("NAME  ADDRESS          PROTO  SCHED  MODE  BACKENDS  HEALTH_CHECK  ALL_DOWN  ID"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("web   203.0.113.10:80  tcp    rr     ipip         2  none          open       0"),
            std::string::npos)
      << out;
}

// `rondoctl show` says, in one line naming them, when DSR VIPs with health checks have their
// backends checked on their own address (no --dsr-check-interface); not with the tunnel, not
// for fullnat VIPs or VIPs without checks.
TEST(Cli, ShowSaysWhenDsrBackendsAreCheckedOnTheirOwnAddress) {
  auto answer = [](const char* dsr_checks) {
    json a = show_answer(json::array(
        {vip_row("web", 80, json::array({backend_row(80)}),
                 {{"mode", "ipip"}, {"health_check", "http / expect 200 every 2000 ms"}}),
         vip_row("l2", 81, json::array({backend_row(81)}),
                 {{"mode", "l2dsr"}, {"health_check", "tcp every 2000 ms"}}),
         vip_row("nat", 82, json::array({backend_row(82)}),
                 {{"mode", "fullnat"}, {"health_check", "tcp every 2000 ms"}}),
         vip_row("quiet", 83, json::array({backend_row(83)}),
                 {{"mode", "gue"}, {"health_check", "none"}})}));
    a["status"]["dsr_checks"] = dsr_checks;
    return format_show(a);
  };
  const std::string out = answer("own_address");
  EXPECT_NE(out.find("note: web, l2: DSR backends are health-checked on their own address, not "
                     "through their tunnel to the VIP (rondo-controlplane --dsr-check-interface; "
                     "docs/modes.md)\n"),
            std::string::npos)
      << out;
  EXPECT_EQ(answer("tunnel").find("note:"), std::string::npos);
}

// `rondoctl show` gives each backend of a maglev or sh VIP its share of the table (TABLE%), as
// the dataplane counted it, and "-" for a VIP without a table.
TEST(Cli, ShowHasEachBackendsShareOfTheMaglevTable) {
  auto backend = [](int port, json entries, json size) {
    return backend_row(port, {{"table_entries", entries}, {"table_size", size}});
  };
  const json a = show_answer(json::array(
      {vip_row("hash", 80,
               json::array({backend(3000, 43691, 65537), backend(3001, 21846, 65537),
                            backend(3002, 0, 65537)}),
               {{"scheduler", "maglev"}}),
       vip_row("web", 81, json::array({backend(3000, nullptr, nullptr)}), {{"scheduler", "rr"}})}));
  const std::string out = format_show(a);
  std::istringstream lines(out);
  std::string line;
  std::vector<std::string> rows;
  while (std::getline(lines, line)) rows.push_back(line);
  auto last_cell = [](const std::string& l) { return l.substr(l.find_last_of(' ') + 1); };
  auto row_of = [&](const std::string& what) {
    for (const auto& l : rows)
      if (l.find(what) != std::string::npos) return l;
    ADD_FAILURE() << what << " not in\n" << out;
    return std::string();
  };
  EXPECT_EQ(last_cell(row_of("BACKEND")), "TABLE%") << out;
  EXPECT_EQ(last_cell(row_of("198.51.100.3:3000 ")), "66.67") << out;  // the maglev VIP's, first
  EXPECT_EQ(last_cell(row_of("198.51.100.3:3001")), "33.33") << out;
  EXPECT_EQ(last_cell(row_of("198.51.100.3:3002")), "0.00") << out;
  EXPECT_EQ(last_cell(row_of("web ")), "-") << out;
}

}  // namespace
}  // namespace rondo::cp
