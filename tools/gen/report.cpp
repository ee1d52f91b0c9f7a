#include "tools/gen/report.h"

#include <cinttypes>
#include <cstdio>
#include <vector>

#include "dataplane/api/ctl.h"

namespace rondo::gen {
namespace {

struct Latency {
  uint64_t count = 0;
  double p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0;  // microseconds
};

Latency latency(const LatencyHistogram& h, uint64_t hz) {
  const double us = 1e6 / static_cast<double>(hz);
  Latency l;
  l.count = h.count();
  l.p50 = static_cast<double>(h.quantile(0.50)) * us;
  l.p90 = static_cast<double>(h.quantile(0.90)) * us;
  l.p99 = static_cast<double>(h.quantile(0.99)) * us;
  l.p999 = static_cast<double>(h.quantile(0.999)) * us;
  l.max = static_cast<double>(h.max()) * us;
  return l;
}

// What the numbers mean depends on the mode: the "primary" packets are what --rate paces.
struct Summary {
  double window_s = 0;
  double tx_pps = 0, rx_pps = 0;
  const char* offered_what = "";
  double offered_pps = 0;    // primary packets sent per second
  double forwarded_pps = 0;  // primary packets the backends received per second
  double loss_pct = 0;       // primary packets that never reached a backend
  double handshakes_per_s = 0;
  double flood_pps = 0, flood_forwarded_pps = 0;
  double busy_pct = 0, headroom_pct = 0, blocked_pct = 0;
  Latency one_way, rtt, connect;
};

double pct(uint64_t part, uint64_t whole) {
  return whole ? 100.0 * static_cast<double>(part) / static_cast<double>(whole) : 0.0;
}

Summary summarize(const Options& o, const RunResult& r) {
  const Counters& c = r.window;
  Summary s;
  s.window_s = r.window_s;
  const double w = r.window_s > 0 ? r.window_s : 1;
  auto rate = [w](uint64_t n) { return static_cast<double>(n) / w; };
  s.tx_pps = rate(c[Ctr::kTxPackets]);
  s.rx_pps = rate(c[Ctr::kRxPackets]);
  uint64_t sent = 0, arrived = 0;
  if (o.mode == Mode::kSynFlood) {
    s.offered_what = "flood SYNs";
    sent = c[Ctr::kFloodTx];
    arrived = c[Ctr::kBackendFloodRx];
  } else if ((o.mode == Mode::kTcp || o.mode == Mode::kMixed) && o.data_per_conn >= 0) {
    s.offered_what = "connections (SYNs)";
    sent = c[Ctr::kSynTx];
    arrived = c[Ctr::kBackendSynRx];
  } else {
    s.offered_what = "data packets";
    sent = c[Ctr::kDataTx];
    arrived = c[Ctr::kBackendDataRx];
  }
  s.offered_pps = rate(sent);
  s.forwarded_pps = rate(arrived);
  s.loss_pct = sent > arrived ? pct(sent - arrived, sent) : 0.0;
  s.handshakes_per_s = rate(c[Ctr::kHandshakes]);
  s.flood_pps = rate(c[Ctr::kFloodTx]);
  s.flood_forwarded_pps = rate(c[Ctr::kBackendFloodRx]);
  s.busy_pct = pct(c[Ctr::kBusyCycles], c[Ctr::kBusyCycles] + c[Ctr::kIdleCycles]);
  s.headroom_pct = 100.0 - s.busy_pct;
  s.blocked_pct = pct(c[Ctr::kBlockedLoops], c[Ctr::kLoops]);
  s.one_way = latency(r.hist.one_way, r.hz);
  s.rtt = latency(r.hist.rtt, r.hz);
  s.connect = latency(r.hist.connect, r.hz);
  return s;
}

void text_latency(const char* name, const Latency& l) {
  if (l.count == 0) return;
  std::printf("  %-9s p50 %8.1f  p90 %8.1f  p99 %8.1f  p99.9 %8.1f  max %9.1f us  (%" PRIu64 " samples)\n",
              name, l.p50, l.p90, l.p99, l.p999, l.max, l.count);
}

std::string json_latency(const Latency& l) {
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "{\"count\":%" PRIu64 ",\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f}",
                l.count, l.p50, l.p90, l.p99, l.p999, l.max);
  return buf;
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (unsigned char ch : s) {
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += static_cast<char>(ch);
    } else if (ch < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", ch);
      out += b;
    } else {
      out += static_cast<char>(ch);
    }
  }
  return out + "\"";
}

std::string num(double v) {
  char b[64];
  std::snprintf(b, sizeof b, "%.3f", v);
  return b;
}

}  // namespace

void print_text(const Options& o, const RunResult& r, const PortSummary& p) {
  const Summary s = summarize(o, r);
  const Counters& c = r.window;
  std::printf("rondo-gen: mode %s, %u flows, %u-byte frames, port %s (%s) -> %s\n", mode_name(o.mode),
              o.flows, o.size, p.name.c_str(), p.mac.c_str(),
              (api::format_ipv4(o.vip_ip) + ":" + std::to_string(o.vip_port)).c_str());
  if (o.warmup)
    std::printf("warmup: %.2f s%s\n", r.warmup_s,
                r.established ? (", " + std::to_string(r.established) + " flows established").c_str() : "");
  std::printf("window: %.3f s%s\n", s.window_s, r.interrupted ? " (interrupted)" : "");
  std::printf("  sent      %12.0f pps (all packets)     received %12.0f pps (all packets)\n", s.tx_pps, s.rx_pps);
  std::printf("  offered   %12.0f pps %-18s forwarded %11.0f pps   loss %.4f%%\n", s.offered_pps,
              s.offered_what, s.forwarded_pps, s.loss_pct);
  if (c[Ctr::kHandshakes] || c[Ctr::kSynTx])
    std::printf("  handshakes %11.0f /s   (in the window: %" PRIu64 " done, %" PRIu64 " SYNs timed out, %" PRIu64
                " connections closed)\n",
                s.handshakes_per_s, c[Ctr::kHandshakes], c[Ctr::kSynTimeouts], c[Ctr::kConnsClosed]);
  if (c[Ctr::kFloodTx])
    std::printf("  flood     %12.0f SYN/s   reached backends %.0f /s   SYN-ACKs back %.0f /s\n", s.flood_pps,
                s.flood_forwarded_pps, static_cast<double>(c[Ctr::kFloodSynAckRx]) / (s.window_s > 0 ? s.window_s : 1));
  std::printf("latency (us):\n");
  text_latency("one-way", s.one_way);
  text_latency("rtt", s.rtt);
  text_latency("connect", s.connect);
  std::printf("generator: busy %.1f%%, headroom %.1f%%, window/ring full in %.1f%% of loops\n", s.busy_pct,
              s.headroom_pct, s.blocked_pct);
  std::printf("port: imissed %" PRIu64 ", ierrors %" PRIu64 ", oerrors %" PRIu64 ", rx_nombuf %" PRIu64 "\n",
              p.imissed, p.ierrors, p.oerrors, p.rx_nombuf);
  if (c[Ctr::kUnknownRx] || c[Ctr::kClientStaleRx] || c[Ctr::kTxDropped])
    std::printf("unexpected: unknown %" PRIu64 ", stale %" PRIu64 ", tx dropped %" PRIu64 "\n",
                c[Ctr::kUnknownRx], c[Ctr::kClientStaleRx], c[Ctr::kTxDropped]);
  for (const auto& w : r.warnings) std::printf("warning: %s\n", w.c_str());
}

void print_json(const Options& o, const RunResult& r, const PortSummary& p) {
  const Summary s = summarize(o, r);
  std::string counters;
  for (size_t i = 0; i < kCtrCount; ++i) {
    if (i) counters += ',';
    counters += json_string(ctr_name(static_cast<Ctr>(i))) + ":" + std::to_string(r.window.v[i]);
  }
  std::string warnings;
  for (size_t i = 0; i < r.warnings.size(); ++i) {
    if (i) warnings += ',';
    warnings += json_string(r.warnings[i]);
  }
  std::string out = "{";
  out += "\"mode\":" + json_string(mode_name(o.mode));
  out += ",\"flows\":" + std::to_string(o.flows);
  out += ",\"size\":" + std::to_string(o.size);
  out += ",\"data_per_conn\":" + std::to_string(o.data_per_conn);
  out += ",\"rate\":" + num(o.rate);
  out += ",\"port\":{\"name\":" + json_string(p.name) + ",\"mac\":" + json_string(p.mac) +
         ",\"imissed\":" + std::to_string(p.imissed) + ",\"ierrors\":" + std::to_string(p.ierrors) +
         ",\"oerrors\":" + std::to_string(p.oerrors) + ",\"rx_nombuf\":" + std::to_string(p.rx_nombuf) + "}";
  out += ",\"warmup_s\":" + num(r.warmup_s);
  out += ",\"warmup_complete\":" + std::string(r.warmup_complete ? "true" : "false");
  out += ",\"established\":" + std::to_string(r.established);
  out += ",\"window_s\":" + num(s.window_s);
  out += ",\"interrupted\":" + std::string(r.interrupted ? "true" : "false");
  std::string slices;
  for (double pps : r.slices_rx_pps) {
    if (!slices.empty()) slices += ',';
    slices += num(pps);
  }
  out += ",\"slices_rx_pps\":[" + slices + "]";
  out += ",\"tx_pps\":" + num(s.tx_pps);
  out += ",\"rx_pps\":" + num(s.rx_pps);
  out += ",\"offered\":" + json_string(s.offered_what);
  out += ",\"offered_pps\":" + num(s.offered_pps);
  out += ",\"forwarded_pps\":" + num(s.forwarded_pps);
  out += ",\"loss_pct\":" + num(s.loss_pct);
  out += ",\"handshakes_per_s\":" + num(s.handshakes_per_s);
  out += ",\"flood_pps\":" + num(s.flood_pps);
  out += ",\"flood_forwarded_pps\":" + num(s.flood_forwarded_pps);
  out += ",\"latency_us\":{\"one_way\":" + json_latency(s.one_way) + ",\"rtt\":" + json_latency(s.rtt) +
         ",\"connect\":" + json_latency(s.connect) + "}";
  out += ",\"generator\":{\"busy_pct\":" + num(s.busy_pct) + ",\"headroom_pct\":" + num(s.headroom_pct) +
         ",\"blocked_pct\":" + num(s.blocked_pct) + ",\"tsc_hz\":" + std::to_string(r.hz) + "}";
  out += ",\"counters\":{" + counters + "}";
  out += ",\"warnings\":[" + warnings + "]";
  out += "}";
  std::printf("%s\n", out.c_str());
}

}  // namespace rondo::gen
