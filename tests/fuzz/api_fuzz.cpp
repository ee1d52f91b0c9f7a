// libFuzzer target: the control plane's JSON API (controlplane/api/rpc.h), the text any
// local user in the API group can send.
//
// Each input is a session of request lines (split at '\n', at most 32) against a fresh,
// started ControlPlane (so a failure reproduces from its input alone): seeded from the
// two-vip config of the unit tests, no state file, the fake dataplane of the unit tests
// behind it and apply_timeout 0, so no request waits. sync() runs between requests, as
// the controller thread would, so changes reach the fake dataplane and `stats` has counters.
//
// Besides "no crash, no memory error, no uncaught exception", every answer must be one
// line of valid JSON: an object whose "ok" is a boolean.
//
// The control plane logs every change on stderr: run it with -close_fd_mask=2 (tools/fuzz
// does) to keep the fuzzer's own output readable.
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "controlplane/api/rpc.h"
#include "controlplane/state/control_plane.h"
#include "tests/unit/cp_fixtures.h"
#include "tests/unit/fake_dataplane.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using namespace rondo::cp;
using namespace std::chrono_literals;

std::string g_config;  // path of the config file (reload reads it again)

void check_answer(const std::string& answer) {
  FUZZ_CHECK(answer.find('\n') == std::string::npos);
  const auto j = nlohmann::json::parse(answer, nullptr, /*allow_exceptions=*/false);
  FUZZ_CHECK(!j.is_discarded());
  FUZZ_CHECK(j.is_object());
  const auto ok = j.find("ok");
  FUZZ_CHECK(ok != j.end() && ok->is_boolean());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  char dir[] = "/tmp/rondo-api-fuzz.XXXXXX";
  if (!mkdtemp(dir)) {
    std::perror("mkdtemp");
    std::abort();
  }
  g_config = std::string(dir) + "/rondo.yaml";
  std::ofstream(g_config) << rondo::cp::test::kTwoVipsConfig;
  // The directory is removed when the fuzzer exits, however it exits.
  static const struct Cleanup {
    std::string d;
    ~Cleanup() { std::filesystem::remove_all(d); }
  } cleanup{dir};
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto dp = std::make_shared<testing::FakeDataplane>();
  ControlPlaneOptions options;
  options.config_path = g_config;
  options.apply_timeout = 0ms;
  ControlPlane cp(std::make_unique<testing::FakeDataplaneClient>(dp), options);
  FUZZ_CHECK(cp.start().ok);
  auto now = ControlPlane::Clock::time_point{};
  cp.sync(now);
  dp->set_backend(1, 3, 10, 100, 10000);  // counters for `stats`, `show` and remove

  std::string_view in(reinterpret_cast<const char*>(data), size);
  for (int n = 0; n < 32 && !in.empty(); ++n) {
    const size_t eol = in.find('\n');
    const std::string_view line = in.substr(0, eol);
    in.remove_prefix(eol == std::string_view::npos ? in.size() : eol + 1);
    check_answer(handle_request(cp, line, "fuzz"));
    now += 600ms;
    cp.sync(now);
  }
  return 0;
}
