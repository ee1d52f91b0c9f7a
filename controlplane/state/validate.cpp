#include "controlplane/state/validate.h"

#include <algorithm>
#include <map>

namespace rondo::cp {
namespace {

void check_health(const HealthCheck& hc, const std::string& f, std::vector<api::Problem>* out) {
  auto add = [&](const char* key, std::string message) {
    out->push_back({f + "." + key, std::move(message), {}});
  };
  const std::string period = " is not a period in milliseconds (" + std::to_string(kMinCheckMs) +
                             "-" + std::to_string(kMaxCheckMs) + ")";
  if (hc.interval_ms < kMinCheckMs || hc.interval_ms > kMaxCheckMs)
    add("interval_ms", std::to_string(hc.interval_ms) + period);
  const bool interval_ok = hc.interval_ms >= kMinCheckMs && hc.interval_ms <= kMaxCheckMs;
  if (hc.timeout_ms < kMinCheckMs || hc.timeout_ms > kMaxCheckMs)
    add("timeout_ms", std::to_string(hc.timeout_ms) + period);
  else if (interval_ok && hc.timeout_ms > hc.interval_ms)
    add("timeout_ms", "timeout_ms (" + std::to_string(hc.timeout_ms) +
                          ") must not exceed interval_ms (" + std::to_string(hc.interval_ms) + ")");
  const std::string count = " is not a count (1-" + std::to_string(kMaxCheckCount) + ")";
  if (hc.rise < 1 || hc.rise > kMaxCheckCount) add("rise", std::to_string(hc.rise) + count);
  if (hc.fall < 1 || hc.fall > kMaxCheckCount) add("fall", std::to_string(hc.fall) + count);
  if (hc.http_status < 100 || hc.http_status > 599)
    add("status", std::to_string(hc.http_status) + " is not an HTTP status (100-599)");
  // The path is pasted into the request line: no spaces, no CR/LF, no control bytes.
  const bool path_ok = !hc.path.empty() && hc.path[0] == '/' && hc.path.size() <= 1024 &&
                       std::none_of(hc.path.begin(), hc.path.end(), [](char c) {
                         return static_cast<unsigned char>(c) <= ' ' || c == 0x7f;
                       });
  if (!path_ok) {
    // Quoted back with control bytes masked: the message goes to logs and terminals.
    std::string shown = hc.path.substr(0, 64);
    for (char& c : shown)
      if (static_cast<unsigned char>(c) < ' ' || c == 0x7f) c = '?';
    add("path", "\"" + shown + (hc.path.size() > 64 ? "...\"" : "\"") +
                    " is not an HTTP path (starts with /, no spaces or control characters, at "
                    "most 1024 bytes)");
  }
}

}  // namespace

std::vector<api::Problem> validate(const DesiredState& d) {
  std::vector<api::Problem> out;
  std::map<std::string, std::string, std::less<>> names;
  for (size_t i = 0; i < d.vips.size(); ++i) {
    const VipSpec& v = d.vips[i];
    const std::string f = "vips[" + std::to_string(i) + "]";
    if (auto why = check_name(v.name); !why.empty()) {
      out.push_back({f + ".name", why, {}});
    } else if (auto [first, fresh] = names.emplace(v.name, f + ".name"); !fresh) {
      out.push_back({f + ".name", v.name + " is already the name of another vip", first->second});
    }
    check_health(v.health_check, f + ".health_check", &out);
  }
  auto rules = api::check_state(to_api(d));
  out.insert(out.end(), rules.begin(), rules.end());
  return out;
}

}  // namespace rondo::cp
