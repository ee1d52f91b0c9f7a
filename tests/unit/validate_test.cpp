// One validation of desired state, whatever its source. Each case is a hole that main at
// 0f445ba let through one source or another; every source that can express it (the config
// file, the API, the state file, the dataplane's own check) must refuse it with the same
// message. Also: hostile JSON (deep nesting) gets an error, never a crash.
#include "controlplane/state/validate.h"

#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "controlplane/api/rpc.h"
#include "controlplane/config/config.h"
#include "controlplane/json_input.h"
#include "controlplane/state/state_file.h"
#include "dataplane/api/validate.h"
#include "fake_dataplane.h"
#include "tests/unit/cp_fixtures.h"

namespace rondo::cp {
namespace {

using json = nlohmann::json;

uint32_t ip(const char* s) {
  uint32_t v = 0;
  EXPECT_TRUE(api::parse_ipv4(s, &v)) << s;
  return v;
}

DesiredState good_state() {
  auto r = parse_config_model(test::kTwoVipsConfig, "good.yaml");
  EXPECT_TRUE(std::holds_alternative<DesiredState>(r));
  auto d = std::get<DesiredState>(r);
  assign_fresh_ids(&d);
  return d;
}

struct Hole {
  const char* what;
  std::string field;    // as validate() names it
  std::string message;  // the same from every source
  // The config file: replace `from` by `to` in the good file.
  std::string from, to;
  // The state file (and the dataplane): the same change made to the state.
  std::function<void(DesiredState&)> change;
  // The API: a request making the change, or "" when no command can express it.
  std::string request;
  bool dataplane = false;  // a rule on what the dataplane gets (api::check_state) too
};

const std::string kWebPort = "    port: 80\n    backends:\n";

const Hole kHoles[] = {
    {"health check interval 0 (a connect loop)", "vips[0].health_check.interval_ms",
     "0 is not a period in milliseconds (10-3600000)", kWebPort,
     "    port: 80\n    health_check: {type: tcp, interval_ms: 0, timeout_ms: 10}\n    backends:\n",
     [](DesiredState& d) {
       d.vips[0].health_check.type = HealthCheck::Type::kTcp;
       d.vips[0].health_check.interval_ms = 0;
       d.vips[0].health_check.timeout_ms = 10;
     },
     ""},
    {"health check timeout 0 (everything down)", "vips[0].health_check.timeout_ms",
     "0 is not a period in milliseconds (10-3600000)", kWebPort,
     "    port: 80\n    health_check: {type: tcp, timeout_ms: 0}\n    backends:\n",
     [](DesiredState& d) {
       d.vips[0].health_check.type = HealthCheck::Type::kTcp;
       d.vips[0].health_check.timeout_ms = 0;
     },
     ""},
    {"CR/LF in the HTTP path (pasted into the request)", "vips[0].health_check.path",
     "\"/x??Host: evil\" is not an HTTP path (starts with /, no spaces or control characters, at "
     "most 1024 bytes)",
     kWebPort,
     "    port: 80\n    health_check: {type: http, path: \"/x\\r\\nHost: evil\"}\n    backends:\n",
     [](DesiredState& d) {
       d.vips[0].health_check.type = HealthCheck::Type::kHttp;
       d.vips[0].health_check.path = "/x\r\nHost: evil";
     },
     ""},
    {"vip equal to a local ip", "vips[2].address",
     "198.51.100.100 is also a local ip: return traffic and vip traffic would collide",
     "      - {address: 198.51.100.5, port: 53}\n",
     "      - {address: 198.51.100.5, port: 53}\n  - name: x\n    address: 198.51.100.100\n"
     "    port: 80\n    backends: []\n",
     [](DesiredState& d) {
       VipSpec v;
       v.name = "x";
       v.ip = ip("198.51.100.100");
       v.port = 80;
       d.vips.push_back(v);
     },
     R"({"cmd": "vip.add", "name": "x", "address": "198.51.100.100", "port": 80})", true},
    {"duplicate local ip", "local_ips[1]", "198.51.100.100 is listed twice",
     "local_ips: [198.51.100.100]", "local_ips: [198.51.100.100, 198.51.100.100]",
     [](DesiredState& d) { d.local_ips.push_back(ip("198.51.100.100")); }, "", true},
    {"0.0.0.0 as a local ip", "local_ips[0]", "0.0.0.0 is in 0.0.0.0/8, not a host address",
     "local_ips: [198.51.100.100]", "local_ips: [0.0.0.0]",
     [](DesiredState& d) { d.local_ips[0] = 0; }, "", true},
    {"backend equal to a vip", "vips[0].backends[3].address",
     "203.0.113.10 is a vip address: rondo would forward to itself",
     "      - {address: 198.51.100.4, port: 3000}\n",
     "      - {address: 198.51.100.4, port: 3000}\n      - {address: 203.0.113.10, port: 3009}\n",
     [](DesiredState& d) { d.vips[0].backends.push_back({.ip = ip("203.0.113.10"), .port = 3009}); },
     R"({"cmd": "backend.add", "vip": "web", "address": "203.0.113.10", "port": 3009})", true},
    {"backend equal to a local ip", "vips[0].backends[3].address",
     "198.51.100.100 is a local ip: rondo would forward to itself",
     "      - {address: 198.51.100.4, port: 3000}\n",
     "      - {address: 198.51.100.4, port: 3000}\n      - {address: 198.51.100.100, port: 3009}\n",
     [](DesiredState& d) { d.vips[0].backends.push_back({.ip = ip("198.51.100.100"), .port = 3009}); },
     R"({"cmd": "backend.add", "vip": "web", "address": "198.51.100.100", "port": 3009})", true},
};

class Holes : public ::testing::TestWithParam<Hole> {};

void PrintTo(const Hole& h, std::ostream* os) { *os << h.what; }

TEST_P(Holes, ValidateNamesFieldAndMessage) {
  const Hole& h = GetParam();
  DesiredState d = good_state();
  h.change(d);
  assign_fresh_ids(&d);
  const auto problems = validate(d);
  ASSERT_FALSE(problems.empty());
  EXPECT_EQ(problems.front().field, h.field);
  EXPECT_EQ(problems.front().message, h.message);
  EXPECT_TRUE(validate(good_state()).empty());
}

TEST_P(Holes, ConfigFileRefusesItWithTheSameMessage) {
  const Hole& h = GetParam();
  std::string text = test::kTwoVipsConfig;
  const auto at = text.find(h.from);
  ASSERT_NE(at, std::string::npos);
  text.replace(at, h.from.size(), h.to);
  auto r = parse_config_model(text, "rondo.yaml");
  ASSERT_TRUE(std::holds_alternative<std::vector<ConfigError>>(r)) << text;
  const auto& errors = std::get<std::vector<ConfigError>>(r);
  bool found = false;
  for (const auto& e : errors) {
    found |= e.field == h.field && e.message.rfind(h.message, 0) == 0 && e.line > 0;
  }
  EXPECT_TRUE(found) << errors.front().to_string();
}

TEST_P(Holes, StateFileRefusesItWithTheSameMessage) {
  const Hole& h = GetParam();
  PersistedState s;
  s.desired = good_state();
  h.change(s.desired);
  assign_fresh_ids(&s.desired);
  auto r = decode_state_file(encode_state_file(s));
  ASSERT_TRUE(std::holds_alternative<std::string>(r));
  EXPECT_EQ(std::get<std::string>(r).rfind(h.field + ": " + h.message, 0), 0u)
      << std::get<std::string>(r);
}

TEST_P(Holes, DataplaneRefusesWhatItChecks) {
  const Hole& h = GetParam();
  if (!h.dataplane) GTEST_SKIP() << "a control-plane-only field";
  DesiredState d = good_state();
  h.change(d);
  assign_fresh_ids(&d);
  EXPECT_EQ(api::validate_state(to_api(d)).rfind(h.field + ": " + h.message, 0), 0u)
      << api::validate_state(to_api(d));
}


TEST_P(Holes, ApiRefusesItWithTheSameMessageAndChangesNothing) {
  const Hole& h = GetParam();
  if (h.request.empty()) GTEST_SKIP() << "no API command sets this field";
  auto dp = std::make_shared<testing::FakeDataplane>();
  auto path = std::string("/tmp/rondo-validate-XXXXXX");
  ASSERT_NE(mkdtemp(path.data()), nullptr);
  const std::string config = path + "/rondo.yaml";
  FILE* f = std::fopen(config.c_str(), "w");
  std::fputs(test::kTwoVipsConfig, f);
  std::fclose(f);
  ControlPlaneOptions o;
  o.config_path = config;
  o.apply_timeout = std::chrono::milliseconds(0);
  ControlPlane cp(std::make_unique<testing::FakeDataplaneClient>(dp), o);
  ASSERT_TRUE(cp.start().ok);
  const auto before = cp.view().desired;
  const json reply = json::parse(handle_request(cp, h.request, "test"));
  EXPECT_EQ(reply["ok"], false);
  EXPECT_EQ(reply["code"], "invalid");
  EXPECT_EQ(reply["error"].get<std::string>().rfind(h.field + ": " + h.message, 0), 0u) << reply;
  EXPECT_EQ(cp.view().desired, before);
  std::remove(config.c_str());
  ::rmdir(path.c_str());
}

INSTANTIATE_TEST_SUITE_P(Item2, Holes, ::testing::ValuesIn(kHoles));

// ---- hostile JSON ----

std::string nested(size_t levels) { return std::string(levels, '[') + std::string(levels, ']'); }

TEST(JsonInput, DepthIsCheckedWithoutRecursion) {
  EXPECT_EQ(check_json_depth(nested(kMaxJsonDepth)), "");
  EXPECT_NE(check_json_depth(nested(kMaxJsonDepth + 1)), "");
  EXPECT_NE(check_json_depth(nested(500'000)), "");
  // Brackets inside strings (escaped quotes too) do not count.
  EXPECT_EQ(check_json_depth(R"({"a": "[[[[\"[[[[", "b": [1]})", 2), "");
  EXPECT_NE(check_json_depth(R"({"a": [[1]]})", 2), "");
}

TEST(JsonInput, ErrorsDescribeValuesWithoutDumpingThem) {
  EXPECT_EQ(describe_json(json::parse(nested(10))), "a list");
  EXPECT_EQ(describe_json(json::parse(R"({"x": 1})")), "an object");
  EXPECT_EQ(describe_json(json("80")), "\"80\"");
  EXPECT_EQ(describe_json(json(std::string(100, 'a'))), "a string of 100 bytes");
  EXPECT_EQ(describe_json(json(-3)), "-3");
}

TEST(JsonInput, DeeplyNestedApiLineGetsAnErrorAndTheServerKeepsServing) {
  auto dp = std::make_shared<testing::FakeDataplane>();
  ControlPlaneOptions o;
  o.apply_timeout = std::chrono::milliseconds(0);
  auto path = std::string("/tmp/rondo-validate-XXXXXX");
  ASSERT_NE(mkdtemp(path.data()), nullptr);
  o.config_path = path + "/rondo.yaml";
  FILE* f = std::fopen(o.config_path.c_str(), "w");
  std::fputs(test::kTwoVipsConfig, f);
  std::fclose(f);
  ControlPlane cp(std::make_unique<testing::FakeDataplaneClient>(dp), o);
  ASSERT_TRUE(cp.start().ok);
  // 500k levels of the wrong type for "port", under the 1 MiB line limit: main at 0f445ba
  // dumped it into the error message and overflowed the stack.
  const std::string line = R"({"cmd": "backend.add", "vip": "web", "address": "198.51.100.3", "port": )" +
                           nested(500'000) + "}";
  ASSERT_LT(line.size(), 1u << 20);
  const json reply = json::parse(handle_request(cp, line, "test"));
  EXPECT_EQ(reply["ok"], false);
  EXPECT_EQ(reply["code"], "invalid");
  EXPECT_NE(reply["error"].get<std::string>().find("nested deeper than"), std::string::npos);
  // Shallow, but the wrong type: the error names the field and the type, not the value.
  const json typed = json::parse(handle_request(
      cp, R"({"cmd": "backend.add", "vip": "web", "address": "198.51.100.3", "port": [[1]]})", "t"));
  EXPECT_EQ(typed["error"], "a list is not a port (1-65535) (backend.add: field \"port\")");
  const json status = json::parse(handle_request(cp, R"({"cmd": "status"})", "test"));
  EXPECT_EQ(status["ok"], true);
  std::remove(o.config_path.c_str());
  ::rmdir(path.c_str());
}

TEST(JsonInput, DeeplyNestedStateFileIsRefused) {
  auto r = decode_state_file(R"({"format": "rondo-state/1", "vips": )" + nested(500'000) + "}");
  ASSERT_TRUE(std::holds_alternative<std::string>(r));
  EXPECT_NE(std::get<std::string>(r).find("nested deeper than"), std::string::npos);
}

}  // namespace
}  // namespace rondo::cp
