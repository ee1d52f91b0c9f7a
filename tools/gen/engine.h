// The generator's single loop, on one lcore and one RX/TX queue pair: receive first (and
// answer as the backends or the clients would, in place), then send new traffic within
// the rate and the in-flight window, then flush TX. Phases: warmup, pause, measure
// window, drain.
//
// The in-flight window: every packet the generator sends through the middle box comes
// back to it exactly once (a client packet as the backend receives it, a backend packet
// as the client receives it), so "sent - received" is what sits in the rings and buffers
// on the way. Keeping it under the smallest ring on the path means no ring on the path
// can overflow: loss is then what the middle box itself dropped. Flow packets and SYN
// flood packets are counted apart (Window, FloodWindow), as the middle box may drop
// flood packets by design; in mixed mode they split --window between them.
#pragma once

#include <rte_mbuf.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "tools/gen/flows.h"
#include "tools/gen/histogram.h"
#include "tools/gen/options.h"
#include "tools/gen/packet.h"

namespace rondo::gen {

enum class Ctr : uint8_t {
  kTxPackets,      // everything sent
  kTxBytes,
  kRxPackets,      // everything received
  kRxBytes,
  kSynTx,          // client side, sent
  kAckTx,
  kDataTx,
  kFinTx,
  kFloodTx,
  kSynAckTx,       // backend side, sent
  kEchoTx,
  kBackendSynRx,   // backend side, received ("forwarded" by the middle box)
  kBackendDataRx,
  kBackendAckRx,
  kBackendFinRx,
  kBackendFloodRx,
  kClientSynAckRx,  // client side, received
  kClientEchoRx,
  kClientStaleRx,   // for a connection the client gave up or does not know
  kFloodSynAckRx,
  kArpRx,
  kArpTx,
  kUnknownRx,
  kHandshakes,      // SYN-ACKs a client took (connection established)
  kSynTimeouts,
  kConnsClosed,     // connections the client closed (FIN sent)
  kTxDropped,       // the TX buffer was full: a response was dropped
  kWindowResets,    // in-flight count written off after a quiet spell (lost packets)
  kBusyCycles,      // loop iterations that received or sent something
  kIdleCycles,
  kLoops,
  kBlockedLoops,    // loops that wanted to send but the window or TX ring was full
  kBackendFinTx,    // backend side: a client's FIN answered with FIN+ACK (the server closes too)
  kClientFinRx,     // client side: the backend's FIN+ACK
  kCount
};
inline constexpr size_t kCtrCount = static_cast<size_t>(Ctr::kCount);
const char* ctr_name(Ctr c);

struct Counters {
  std::array<uint64_t, kCtrCount> v{};
  uint64_t& operator[](Ctr c) { return v[static_cast<size_t>(c)]; }
  uint64_t operator[](Ctr c) const { return v[static_cast<size_t>(c)]; }
  Counters operator-(const Counters& o) const {
    Counters d;
    for (size_t i = 0; i < kCtrCount; ++i) d.v[i] = v[i] - o.v[i];
    return d;
  }
};

struct Histograms {
  LatencyHistogram one_way;  // client data packet sent -> backend received (through the middle)
  LatencyHistogram rtt;      // client data sent -> backend echo received by the client
  LatencyHistogram connect;  // SYN sent -> SYN-ACK received by the client
};

struct RunResult {
  Counters window;           // over the measure window (packets: plus the drain after it)
  double window_s = 0;
  double warmup_s = 0;
  uint32_t established = 0;  // open tcp flows established when the window opened
  bool warmup_complete = true;
  Histograms hist;
  uint64_t hz = 0;
  bool interrupted = false;
  std::vector<double> slices_rx_pps;  // packets received per second in each half second of the window
  std::vector<std::string> warnings;
};

class Engine {
 public:
  Engine(const Options& o, rte_mempool* pool, const Mac& own_mac, uint64_t hz);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  /// Warm up, measure, drain; stops early (and says so) when *stop becomes true.
  RunResult run(const std::atomic<bool>& stop);

 private:
  enum class Traffic : uint8_t {
    kNone,   // answer what arrives, send nothing new
    kOpen,   // open tcp flows only (warmup)
    kPrime,  // udp: one packet per flow (warmup)
    kFull,   // the mode's traffic
  };

  // Paces a packet class at a rate; never owes more than a window's worth.
  class Pacer {
   public:
    void start(double rate, uint64_t now, uint64_t hz, uint32_t max_backlog);
    uint32_t allowance(uint64_t now, uint32_t want);
    void consumed(uint32_t n) { sent_ += n; }

   private:
    double ticks_per_pkt_ = 0;  // 0: unpaced
    uint64_t start_ = 0;
    double sent_ = 0;
    uint32_t max_backlog_ = 0;
  };

  // Flow packets in flight through the middle box (see the file comment). When none has
  // come back for reset_ticks, the count is written off: the middle box dropped them.
  struct Window {
    uint32_t size = 0;
    uint64_t reset_ticks = 0;
    uint32_t in_flight = 0;
    uint64_t last_rx = 0;  // TSC of the last packet of the class received
    uint32_t room() const { return in_flight >= size ? 0 : size - in_flight; }
    void sent(uint64_t now) {
      if (in_flight == 0) last_rx = now;  // the quiet-spell clock starts now
      ++in_flight;
    }
    void back(uint64_t now) {
      if (in_flight) --in_flight;
      last_rx = now;
    }
    bool quiet(uint64_t now) const { return now > last_rx + reset_ticks; }  // last_rx may be > now
  };
  // Flood packets in flight. The middle box may drop flood SYNs as a matter of course
  // (table full, no local port), so nothing waits for them: each carries its send epoch
  // (1 ms) in the low bits of its sequence number (the backend's SYN-ACK acknowledges
  // it), and whatever has not come back kExpire epochs later is written off.
  struct FloodWindow {
    static constexpr uint32_t kEpochs = 64;  // power of two, > kExpire
    static constexpr uint32_t kExpire = 16;
    uint32_t size = 0;
    uint64_t epoch_ticks = 1;
    uint64_t epoch = 0;
    uint32_t in_flight = 0;
    std::array<uint32_t, kEpochs> out{};  // in flight, by epoch tag
    uint32_t room() const { return in_flight >= size ? 0 : size - in_flight; }
    uint32_t tag() const { return static_cast<uint32_t>(epoch) & (kEpochs - 1); }
    void advance(uint64_t now);
    void sent(uint32_t tag) {
      ++out[tag];
      ++in_flight;
    }
    void back(uint32_t tag) {
      if (out[tag] == 0) return;  // already written off
      --out[tag];
      --in_flight;
    }
  };
  enum class Track : uint8_t { kNone, kFlows };

  void poll(Traffic t);
  uint32_t receive();
  bool ours(uint32_t ip) const;
  void handle(rte_mbuf* m, uint64_t now);
  void on_backend(rte_mbuf* m, Rx& rx, uint64_t now);
  void on_client(rte_mbuf* m, Rx& rx, uint64_t now);
  void close_backend_side(rte_mbuf* m, Rx& rx, uint64_t now);
  void respond(rte_mbuf* m, Rx& rx, uint64_t now);
  uint32_t send(uint64_t now, Traffic t);
  uint32_t send_syns(uint64_t now, uint32_t max);
  uint32_t send_data(uint64_t now, uint32_t max, bool prime);
  uint32_t send_flood(uint64_t now, uint32_t max);
  void send_conn_data(uint32_t slot, uint32_t ack_be, uint64_t now);
  void close_conn(uint32_t slot);
  void check_syn_timeouts(uint64_t now);
  void queue_tx(rte_mbuf* m, Track track);
  void flush_tx();
  void free_later(rte_mbuf* m);
  void flush_free();
  uint32_t alloc(rte_mbuf** out, uint32_t n);
  void run_until(Traffic t, const std::atomic<bool>& stop, uint64_t deadline, const char* phase,
                 bool (Engine::*done)(uint64_t now) const);
  bool all_established(uint64_t now) const;
  bool primed(uint64_t now) const;
  bool drained(uint64_t now) const;
  bool never(uint64_t) const { return false; }
  void progress(uint64_t now, const char* phase);
  void slice(uint64_t now);  // closes a half second of the measure window
  void run_hook(const std::string& cmd, const char* what, RunResult* r);

  Options opts_;
  rte_mempool* pool_;
  Mac own_mac_;
  Mac peer_mac_;
  uint64_t hz_;
  bool open_flows_;    // tcp flows that stay open
  bool connections_;   // tcp connections that close after --data-per-conn and reopen
  FlowMix flows_;
  Fifo<uint32_t> to_open_;  // slots waiting to send their SYN
  Template syn_, data_, data_fin_, flood_syn_;
  Pacer primary_pace_, flood_pace_;
  uint64_t syn_timeout_ticks_;
  Window win_;    // tcp/udp flow packets
  FloodWindow flood_;  // SYN flood packets and the backends' answers to them
  uint32_t data_cursor_ = 0;
  uint32_t prime_sent_ = 0;
  uint32_t timeout_hand_ = 0;
  uint32_t established_ = 0;
  uint32_t syn_sent_ = 0;  // slots in kSynSent: the timeout scan runs only when there are some
  uint64_t now_ = 0;       // TSC at the start of the current loop
  uint64_t rng_;

  std::vector<rte_mbuf*> tx_;  // pending TX, sent in order
  uint32_t tx_len_ = 0;
  std::array<rte_mbuf*, 256> free_{};
  uint32_t free_len_ = 0;

  Counters c_;
  Histograms hist_;
  uint64_t progress_next_ = 0;
  uint64_t phase_start_ = 0;
  Counters progress_base_;
  uint64_t progress_tsc_ = 0;
  // The measure window cut in half seconds (RunResult::slices_rx_pps): whether a run held
  // one speed throughout (tools/bench retries runs that did not).
  std::vector<double>* slices_ = nullptr;  // set during the measure phase only
  uint64_t slice_next_ = 0;
  uint64_t slice_tsc_ = 0;
  uint64_t slice_base_rx_ = 0;
  bool tty_ = false;
};

}  // namespace rondo::gen
