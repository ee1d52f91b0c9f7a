// rondo-decap's work on one interface: load bpf/rondo_decap.bpf.o with its GUE port, attach
// it to the interface's tc ingress hook (clsact), find it there again, read its counters,
// remove it. Nothing is kept between runs: the kernel holds the filter, and the filter's
// fixed place on the hook (kPriority, kHandle) is how a later run finds it.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "bpf/decap/counters.h"

namespace rondo::decap {

/// rondo-decap's place on the ingress hook. Priority 1 runs it before filters added with
/// tc's defaults (49152 and up), so they see the decapsulated packet; the handle tells it
/// apart from other filters at priority 1.
inline constexpr uint32_t kPriority = 1;
inline constexpr uint32_t kHandle = 0xdec;
/// The program's name in the kernel (its function name in rondo_decap.bpf.c).
inline constexpr const char* kProgName = "rondo_decap";

struct Stats {
  uint32_t prog_id = 0;
  uint16_t gue_port = 0;
  std::array<uint64_t, DECAP_COUNTERS> counters{};  // summed over the CPUs
};

/// Load `object` with `gue_port` written into it, then put it at rondo-decap's place on
/// `ifindex`'s ingress hook (creating clsact if missing), replacing an earlier rondo-decap.
/// The load comes first: a program the kernel refuses changes nothing. False with *err.
bool attach(int ifindex, const std::string& object, uint16_t gue_port, std::string* err);

/// Remove rondo-decap's filter from `ifindex`. *removed is false when there was none. The
/// clsact qdisc stays: other tc programs may share it, and empty it costs nothing.
bool detach(int ifindex, bool* removed, std::string* err);

/// The counters and GUE port of the program attached on `ifindex`. False with *err when
/// there is none.
bool read_stats(int ifindex, Stats* out, std::string* err);

}  // namespace rondo::decap
