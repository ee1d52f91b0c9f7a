#include "dataplane/runtime/inspect_agent.h"

#include <arpa/inet.h>
#include <rte_cycles.h>

#include <algorithm>
#include <cstdio>

#include "dataplane/inspect/describe.h"

namespace rondo::dp {
namespace {

std::string_view kind_name(TraceKind k) {
  switch (k) {
    case TraceKind::kClient: return "client";
    case TraceKind::kReply: return "reply";
    case TraceKind::kArp: return "arp";
    case TraceKind::kIcmp: return "icmp";
    case TraceKind::kOther: break;
  }
  return "other";
}

std::string_view flow_name(TraceFlow f) {
  switch (f) {
    case TraceFlow::kHit: return "hit";
    case TraceFlow::kMiss: return "miss";
    case TraceFlow::kNew: return "new";
    case TraceFlow::kNone: break;
  }
  return "";
}

std::string_view verdict_name(Action::Kind k) {
  switch (k) {
    case Action::Kind::kTx: return "tx";
    case Action::Kind::kSteer: return "steer";
    case Action::Kind::kToMain: return "to_main";
    case Action::Kind::kConsumed: return "consumed";
    case Action::Kind::kFragment: return "reassembly";
    case Action::Kind::kDrop: break;
  }
  return "drop";
}

std::string endpoint(const api::Addr& ip, uint16_t port_net) {
  return api::format_endpoint(ip, ntohs(port_net));
}

}  // namespace

InspectAgent::InspectAgent(std::vector<InspectedWorker> workers, uint64_t hz)
    : workers_(std::move(workers)), hz_(hz), late_(workers_.size()) {}

InspectAgent::~InspectAgent() = default;

bool InspectAgent::ask(size_t w, std::unique_ptr<WorkerQuery> q, std::unique_ptr<WorkerQuery>* answer) {
  const InspectedWorker& iw = workers_[w];
  void* back;
  // A late answer to an earlier request: take it back now.
  if (late_[w]) {
    if (rte_ring_sc_dequeue(iw.from_worker, &back) != 0) return false;  // still not answered
    late_[w].reset();
  }
  WorkerQuery* raw = q.release();
  if (rte_ring_sp_enqueue(iw.to_worker, raw) != 0) {
    delete raw;
    return false;
  }
  const uint64_t deadline = rte_rdtsc() + hz_ * kWorkerDeadline.count() / 1000;
  while (rte_ring_sc_dequeue(iw.from_worker, &back) != 0) {
    if (rte_rdtsc() > deadline) {
      late_[w].reset(raw);
      return false;
    }
    rte_delay_us_sleep(20);
  }
  answer->reset(static_cast<WorkerQuery*>(back));
  return true;
}

api::TraceRecord InspectAgent::format(const TraceRaw& r, uint32_t lcore, uint64_t started) const {
  api::TraceRecord t;
  t.lcore = lcore;
  t.at_us = r.at > started && hz_ ? (r.at - started) * 1'000'000 / hz_ : 0;
  t.in_port = r.in_port;
  t.iface = r.iface;
  t.steered = r.steered;
  t.packet = describe_frame(r.pre, std::min(r.len, TraceRaw::kKeep));
  t.kind = kind_name(r.kind);
  t.flow = flow_name(r.flow);
  if (r.has_flow) {
    t.backend = endpoint(r.backend_ip, r.backend_port);
    t.state = flow_state_name(r.state);
  }
  t.verdict = verdict_name(r.action.kind);
  if (r.action.kind == Action::Kind::kDrop && r.action.reason < DropReason::kCount)
    t.reason = drop_reason_name(r.action.reason);
  if (r.action.kind == Action::Kind::kTx) {
    t.out = describe_frame(r.post, std::min(r.out_len, TraceRaw::kKeep));
    // Where it goes: the next hop's MAC (the frame's destination) on the output port.
    char mac[32];
    std::snprintf(mac, sizeof mac, " via %02x:%02x:%02x:%02x:%02x:%02x", r.post[0], r.post[1],
                  r.post[2], r.post[3], r.post[4], r.post[5]);
    t.out += mac;
  }
  if (r.action.kind == Action::Kind::kTx || r.action.kind == Action::Kind::kSteer)
    t.out_port = r.action.port;
  return t;
}

bool InspectAgent::handle(const api::InspectRequest& req, api::InspectReply* out, std::string* err) {
  auto fail = [&](size_t w) {
    *err = "worker " + std::to_string(w) + " (lcore " + std::to_string(workers_[w].lcore) +
           ") did not answer within " + std::to_string(kWorkerDeadline.count()) + " ms";
    return false;
  };
  const uint64_t now = rte_rdtsc();
  switch (req.op) {
    case api::InspectOp::kFlows:
    case api::InspectOp::kFlowDelete: {
      // cursor: worker << 32 | record index.
      size_t w = req.cursor >> 32;
      uint32_t from = static_cast<uint32_t>(req.cursor);
      out->next_cursor = 0;
      for (; w < workers_.size(); ++w, from = 0) {
        auto q = std::make_unique<WorkerQuery>();
        q->req = req;
        q->from = from;
        q->limit = req.limit - static_cast<uint32_t>(out->flows.size());
        std::unique_ptr<WorkerQuery> a;
        if (!ask(w, std::move(q), &a)) return fail(w);
        out->scanned += a->scan.scanned;
        out->deleted += a->deleted;
        for (auto& f : a->flows) out->flows.push_back(std::move(f));
        const bool table_done = a->scan.next >= a->capacity;
        if (!table_done) {
          // A full page, or the scan budget spent: go on from there next time.
          out->next_cursor = uint64_t{w} << 32 | a->scan.next;
          return true;
        }
        if (out->flows.size() >= req.limit) {
          if (w + 1 < workers_.size()) out->next_cursor = uint64_t{w + 1} << 32;
          return true;
        }
      }
      return true;
    }
    case api::InspectOp::kTraceStart:
    case api::InspectOp::kTraceRead:
    case api::InspectOp::kTraceStop:
    case api::InspectOp::kDrops:
      for (size_t w = 0; w < workers_.size(); ++w) {
        auto q = std::make_unique<WorkerQuery>();
        q->req = req;
        q->until = now + hz_ * req.seconds;
        std::unique_ptr<WorkerQuery> a;
        if (!ask(w, std::move(q), &a)) return fail(w);
        out->armed = out->armed || a->armed;
        for (const auto& r : a->trace) out->trace.push_back(format(r, workers_[w].lcore, a->trace_started));
        for (const auto& d : a->drops) {
          api::DropSample s;
          s.lcore = workers_[w].lcore;
          s.reason = drop_reason_name(d.reason);
          s.ago_ms = a->now > d.at && hz_ ? (a->now - d.at) * 1000 / hz_ : 0;
          s.in_port = d.in_port;
          s.len = d.len;
          s.packet = describe_frame(d.bytes, std::min(d.len, DropRaw::kKeep));
          s.hex = hex_bytes(d.bytes, std::min(d.len, DropRaw::kKeep));
          out->drops.push_back(std::move(s));
        }
      }
      std::stable_sort(out->trace.begin(), out->trace.end(),
                       [](const api::TraceRecord& a, const api::TraceRecord& b) { return a.at_us < b.at_us; });
      return true;
  }
  *err = "unknown inspect operation";
  return false;
}

}  // namespace rondo::dp
