// Packet trace, the worker's side: once armed (by a query, on the worker itself), the next
// N packets that match a filter are recorded with what happened to them: the frame as
// received, its class (client, reply, ARP, ICMP), the flow before (hit / miss) and after
// (new, with the scheduler's backend), the verdict (tx / drop reason / steer / to_main) and
// the frame as sent.
//
// Cost: the worker asks armed() once per burst (one predictable branch while off); only an
// armed worker parses the burst a second time and looks its flows up (read-only, find()).
// The pipeline itself is not instrumented: the trace is derived from the frames, the
// actions and the flow table around it.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "dataplane/api/ctl.h"
#include "dataplane/flow/table.h"
#include "dataplane/fwd/pipeline.h"

namespace rondo::dp {

enum class TraceKind : uint8_t { kOther, kClient, kReply, kArp, kIcmp };
enum class TraceFlow : uint8_t { kNone, kHit, kMiss, kNew };

struct TraceRaw {
  static constexpr uint32_t kKeep = 128;  // bytes of each frame kept (headers)
  uint64_t at = 0;  // the burst's `now`
  uint16_t in_port = 0;
  uint16_t iface = kNoIface;  // the interface of (in_port, VID) in the snapshot
  bool steered = false;
  TraceKind kind = TraceKind::kOther;
  TraceFlow flow = TraceFlow::kNone;
  bool has_flow = false;  // after the packet: the flow below
  FlowState state = FlowState::kFree;
  api::Addr backend_ip;      // either family (a NAT46 flow's backend is IPv6)
  uint16_t backend_port = 0;  // network order
  Action action;
  uint32_t len = 0, out_len = 0;
  uint8_t pre[kKeep] = {}, post[kKeep] = {};
};

class Tracer {
 public:
  bool armed() const { return armed_; }
  /// Arm for the next `packets` matching packets until `until` (ticks); drops what an
  /// earlier trace left unread.
  void arm(const api::FlowFilter& q, uint32_t packets, uint64_t now, uint64_t until);
  void disarm() { armed_ = false; }
  /// Armed, and not past its deadline.
  bool live(uint64_t now) const { return armed_ && now < until_; }
  uint64_t started() const { return started_; }

  /// Before the pipeline runs a burst: record the frames that match.
  void before(const Pipeline& pl, const Snapshot* s, uint8_t* const* frames, const uint32_t* lens,
              uint32_t n, uint16_t in_port, bool steered, uint64_t now);
  /// After it: what became of them.
  void after(const Pipeline& pl, uint8_t* const* frames, const uint32_t* lens, const Action* actions,
             uint32_t n);

  /// The records so far (the tracer keeps none).
  std::vector<TraceRaw> take() { return std::exchange(records_, {}); }

  static constexpr uint32_t kMaxBurst = 64;

 private:
  bool armed_ = false;
  api::FlowFilter filter_;
  uint32_t left_ = 0;
  uint64_t until_ = 0;
  uint64_t started_ = 0;
  std::vector<TraceRaw> records_;
  // Per frame of the burst in progress: its record (or -1) and the key it was looked up by,
  // in the v4 table (FlowKey) or the v6 one (FlowKey6: v6 frames, and v4 frames of NAT46
  // and NAT64 flows, IPv4-mapped).
  int32_t slot_[kMaxBurst];
  bool in6_[kMaxBurst];
  FlowKey key_[kMaxBurst];
  FlowKey6 key6_[kMaxBurst];
};

}  // namespace rondo::dp
