#include "controlplane/health/dsr_checks.h"

#include <algorithm>
#include <cstdio>
#include <set>
#include <utility>

#include "controlplane/log.h"

namespace rondo::cp {

namespace {

constexpr uint32_t kMarks = ~HC_MARK_MASK + 1;  // 65,536

std::string hex(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

}  // namespace

std::map<uint32_t, uint32_t> MarkAllocator::assign(const std::vector<uint32_t>& backend_ids,
                                                   std::vector<uint32_t>* unmarked) {
  const std::set<uint32_t> wanted(backend_ids.begin(), backend_ids.end());
  std::erase_if(by_backend_, [&](const auto& kv) { return !wanted.count(kv.first); });
  std::set<uint32_t> used;
  for (const auto& [id, index] : by_backend_) used.insert(index);
  uint32_t next = 0;  // every index below it is used
  std::map<uint32_t, uint32_t> out;
  for (uint32_t id : wanted) {
    auto it = by_backend_.find(id);
    if (it == by_backend_.end()) {
      while (next < kMarks && used.count(next)) ++next;
      if (next == kMarks) {
        if (unmarked) unmarked->push_back(id);
        continue;
      }
      used.insert(next);
      it = by_backend_.emplace(id, next).first;
    }
    out.emplace(id, base_ | it->second);
  }
  return out;
}

std::string validate_mark_base(uint32_t base) {
  if (base == 0) return "the mark base must not be 0 (every unmarked packet has mark 0)";
  if (base & ~HC_MARK_MASK)
    return "the mark base must have its low 16 bits clear (the marks are base .. base + "
           "0xffff), e.g. " + hex(HC_MARK_BASE_DEFAULT);
  return {};
}

CheckPlan DsrChecks::plan(const DesiredState& desired, bool tunnel, MarkAllocator* marks) {
  CheckPlan out;
  std::vector<uint32_t> dsr_ids;
  if (tunnel) {
    for (const auto& vip : desired.vips)
      if (api::is_dsr(vip.mode) && vip.health_check.type != HealthCheck::Type::kNone)
        for (const auto& b : vip.backends) dsr_ids.push_back(b.id);
  }
  std::vector<uint32_t> unmarked;
  const std::map<uint32_t, uint32_t> mark_of =
      tunnel ? marks->assign(dsr_ids, &unmarked) : std::map<uint32_t, uint32_t>{};
  for (uint32_t id : unmarked)
    out.notes.push_back("health: backend " + std::to_string(id) +
                        " has no mark left (65,536 DSR backends checked at most): checked on "
                        "its own address");

  for (const auto& vip : desired.vips) {
    const HealthCheck& hc = vip.health_check;
    if (hc.type == HealthCheck::Type::kNone) continue;
    const HealthCheckSpec spec = spec_of(hc);
    for (const auto& b : vip.backends) {
      const uint16_t port = hc.port ? hc.port : b.port;
      auto it = mark_of.find(b.id);
      if (!api::is_dsr(vip.mode) || it == mark_of.end()) {
        out.targets.push_back({.backend_id = b.id, .ip = b.ip, .port = port, .spec = spec});
        continue;
      }
      // VIP:port, as a client connects; the backend answers from the VIP on its lo.
      out.targets.push_back({.backend_id = b.id,
                             .ip = vip.ip,
                             .port = hc.port ? hc.port : vip.port,
                             .spec = spec,
                             .mark = it->second,
                             .via = b.ip});
      out.entries.push_back({.mark = it->second, .backend_ip = b.ip, .mode = vip.mode});
    }
  }
  std::sort(out.entries.begin(), out.entries.end(),
            [](const TunnelEntry& a, const TunnelEntry& b) { return a.mark < b.mark; });
  return out;
}

DsrChecks::DsrChecks(std::unique_ptr<TunnelMap> map, uint32_t mark_base)
    : map_(std::move(map)), marks_(mark_base) {}

std::vector<HealthChecker::Target> DsrChecks::apply(const DesiredState& desired) {
  std::lock_guard lock(mu_);
  CheckPlan p = plan(desired, map_ != nullptr, &marks_);
  for (const auto& note : p.notes) log_warn(note);
  if (map_) {
    if (std::string err; !map_->sync(p.entries, &err))
      log_error("health: the DSR check map: " + err + " (those checks fail until it is fixed)");
    return std::move(p.targets);
  }
  if (!told_unconfigured_) {
    std::string names;
    for (const auto& vip : desired.vips)
      if (api::is_dsr(vip.mode) && vip.health_check.type != HealthCheck::Type::kNone)
        names += (names.empty() ? "" : ", ") + vip.name;
    if (!names.empty()) {
      log_warn("health: the backends of DSR VIPs (" + names +
               ") are checked on their own address, not through their tunnel to the VIP (no "
               "--dsr-check-interface; docs/modes.md, \"Health checks in the DSR modes\")");
      told_unconfigured_ = true;
    }
  }
  return std::move(p.targets);
}

}  // namespace rondo::cp
