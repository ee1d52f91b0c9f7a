// An in-process dataplane for integration tests: EAL with --no-huge, one ethdev made of
// rte_rings (one RX and one TX ring per worker), the real Worker/Publisher/ControlAgent.
// The test thread plays every worker in turn (worker_poll) and the main lcore's neighbour
// manager (main_poll), so each test is deterministic; workers go RCU-offline while the test
// publishes a state or next hops.
#pragma once

#include <gtest/gtest.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_lcore.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/api/ctl.h"
#include "dataplane/neigh/service.h"
#include "dataplane/port/frame_size.h"
#include "dataplane/port/port.h"
#include "dataplane/runtime/control_agent.h"
#include "dataplane/runtime/inspect_agent.h"
#include "dataplane/runtime/worker.h"
#include "dataplane/state/publisher.h"
#include "tests/common/packet_builder.h"

namespace rondo::test {

inline bool init_eal() {
  static bool done = [] {
    std::string prefix = "rondo-it-" + std::to_string(getpid());
    std::vector<std::string> args = {"rondo_integration", "--no-huge", "-m", "512", "--no-pci",
                                     "--no-shconf", "-l", "0", "--file-prefix", prefix,
                                     "--log-level", "*:error"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    // EAL leaves its runtime directory behind; remove it when the test process ends.
    std::atexit([] {
      std::filesystem::remove_all("/var/run/dpdk/rondo-it-" + std::to_string(getpid()));
    });
    return rte_eal_init(static_cast<int>(argv.size()), argv.data()) >= 0;
  }();
  return done;
}

class RingDataplane {
 public:
  // lport range [lo, lo + n_ports - 1], shared by the workers by port ownership.
  // `mtu`: the dataplane's --mtu (the pipeline's egress MTU, mbufs that hold a whole frame).
  RingDataplane(const std::string& name, uint16_t n_workers, uint16_t lport_lo, uint16_t n_lports,
                uint32_t flows = 1024, uint32_t mtu = 1500)
      : n_(n_workers) {
    dp::FrameSizing fs;
    std::string ferr;
    std::vector<std::string> notes;
    EXPECT_TRUE(dp::size_frames(mtu, {}, RTE_PKTMBUF_HEADROOM, &fs, &ferr, &notes)) << ferr;
    pool_ = rte_pktmbuf_pool_create((name + "_pool").c_str(), 4095, 0, 0,
                                    static_cast<uint16_t>(fs.data_room), 0);
    EXPECT_NE(pool_, nullptr);
    for (uint16_t q = 0; q < n_; ++q) {
      rx_.push_back(rte_ring_create((name + "_rx" + std::to_string(q)).c_str(), 1024, 0,
                                    RING_F_SP_ENQ | RING_F_SC_DEQ));
      tx_.push_back(rte_ring_create((name + "_tx" + std::to_string(q)).c_str(), 1024, 0,
                                    RING_F_SP_ENQ | RING_F_SC_DEQ));
    }
    const int port = rte_eth_from_rings((name + "_port").c_str(), rx_.data(), n_, tx_.data(), n_, 0);
    EXPECT_GE(port, 0);
    dp::PortSetup ps;
    ps.pool = pool_;
    ps.n_queues = n_;
    ps.rx_desc = ps.tx_desc = 128;
    ps.mtu = mtu;  // net_ring cannot set one (ENOTSUP): logged and kept
    std::string err;
    EXPECT_TRUE(dp::port_start(static_cast<uint16_t>(port), ps, &info_, &err)) << err;

    publisher_ = std::make_unique<dp::Publisher>(n_);
    dp::NeighManagerParams np;
    np.hz = rte_get_tsc_hz();
    np.port_macs.push_back(info_.mac);
    neigh_ = std::make_unique<dp::NeighService>(name + "_n", n_, pool_, publisher_->qsbr(), np);
    std::string nerr;
    EXPECT_TRUE(neigh_->ok(&nerr)) << nerr;
    std::vector<std::vector<rte_ring*>> steer(n_, std::vector<rte_ring*>(n_, nullptr));
    if (n_ > 1)
      for (uint16_t a = 0; a < n_; ++a)
        for (uint16_t b = 0; b < n_; ++b)
          if (a != b)
            steer[a][b] = steer_rings_.emplace_back(rte_ring_create(
                (name + "_s" + std::to_string(a) + std::to_string(b)).c_str(), 1024, 0,
                RING_F_SP_ENQ | RING_F_SC_DEQ));
    // Query rings, as the dataplane makes them (runtime/dataplane.cpp).
    std::vector<dp::InspectedWorker> inspected;
    for (uint16_t i = 0; i < n_; ++i) {
      dp::InspectedWorker iw{i, nullptr, nullptr};
      iw.to_worker = query_rings_.emplace_back(rte_ring_create(
          (name + "_qi" + std::to_string(i)).c_str(), 4, 0, RING_F_SP_ENQ | RING_F_SC_DEQ));
      iw.from_worker = query_rings_.emplace_back(rte_ring_create(
          (name + "_qo" + std::to_string(i)).c_str(), 4, 0, RING_F_SP_ENQ | RING_F_SC_DEQ));
      inspected.push_back(iw);
    }
    std::vector<dp::Worker*> raw;
    for (uint16_t i = 0; i < n_; ++i) {
      dp::WorkerSetup ws;
      ws.lcore = i;
      ws.query_in = inspected[i].to_worker;
      ws.query_out = inspected[i].from_worker;
      ws.index = i;
      ws.n_ports = 1;
      ws.pool = pool_;  // for the frames the pipeline makes (ICMP errors, PROXY v2 headers)
      ws.rx.push_back({info_.id, i});
      ws.publisher = publisher_.get();
      ws.arp_to_main = neigh_->arp_ring(i);
      ws.ask_to_main = neigh_->ask_ring(i);
      ws.from_main = neigh_->tx_ring(i);
      ws.next_hops = neigh_->next_hops();
      ws.next_hops6 = neigh_->next_hops6();
      ws.pipeline.flow_capacity = flows;
      ws.pipeline.lport_lo = lport_lo;
      ws.pipeline.lport_hi = static_cast<uint16_t>(lport_lo + n_lports - 1);
      ws.pipeline.worker = i;
      ws.pipeline.n_workers = n_;
      ws.pipeline.hz = rte_get_tsc_hz();
      ws.pipeline.port_macs.push_back(info_.mac);
      ws.pipeline.mtu = mtu;
      if (n_ > 1) {
        ws.steer_out = steer[i];
        for (uint16_t a = 0; a < n_; ++a) ws.steer_in.push_back(steer[a][i]);
      }
      workers_.push_back(std::make_unique<dp::Worker>(ws));
      dp::worker_online(workers_.back().get());
      raw.push_back(workers_.back().get());
    }
    agent_ = std::make_unique<dp::ControlAgent>("/tmp/" + name + "-" + std::to_string(getpid()) + ".sock",
                                                publisher_.get(), raw, std::vector<dp::PortInfo>{info_});
    agent_->use_main_counters(&neigh_->counters(), rte_get_main_lcore());
    agent_->use_snapshot_params(dp::SnapshotParams{.route_lpm = true, .n_ports = 1, .default_mtu = mtu});
    agent_->use_inspector(std::make_unique<dp::InspectAgent>(std::move(inspected), rte_get_tsc_hz()));
  }

  ~RingDataplane() {
    agent_.reset();
    for (auto& w : workers_) dp::worker_offline(w.get());
    workers_.clear();
    dp::port_stop_all({info_});
    neigh_.reset();
    for (auto* r : steer_rings_) rte_ring_free(r);
    for (auto* r : query_rings_) rte_ring_free(r);
    for (auto* r : rx_) rte_ring_free(r);
    for (auto* r : tx_) rte_ring_free(r);
    publisher_.reset();
    rte_mempool_free(pool_);
  }

  /// Send a request to the control agent as the control plane would.
  api::MsgType control(api::MsgType type, const std::vector<uint8_t>& body, std::vector<uint8_t>* reply) {
    api::MsgHeader h{api::kMagic, api::kVersion, static_cast<uint16_t>(type),
                     static_cast<uint32_t>(body.size()), 1};
    for (uint16_t i = 0; i < n_; ++i) rte_rcu_qsbr_thread_offline(publisher_->qsbr(), i);
    auto t = agent_->handle(h, body, reply);
    for (uint16_t i = 0; i < n_; ++i) rte_rcu_qsbr_thread_online(publisher_->qsbr(), i);
    return t;
  }

  void push(const api::State& s) {
    std::vector<uint8_t> reply;
    ASSERT_EQ(control(api::MsgType::kSetState, api::encode_state(s), &reply), api::MsgType::kSetStateReply);
  }

  /// Put a frame on RX queue q (as if the NIC had steered it there).
  void inject(uint16_t q, const Frame& f) {
    rte_mbuf* m = rte_pktmbuf_alloc(pool_);
    ASSERT_NE(m, nullptr);
    char* d = rte_pktmbuf_append(m, static_cast<uint16_t>(f.size()));
    ASSERT_NE(d, nullptr) << "a frame of " << f.size() << " bytes in an mbuf of "
                          << rte_pktmbuf_tailroom(m) << " (the dataplane's mtu)";
    std::memcpy(d, f.data(), f.size());
    ASSERT_EQ(rte_ring_enqueue(rx_[q], m), 0);
  }

  /// Put an mbuf made by the test (from pool(): flags, headroom as a PMD would leave them)
  /// on RX queue q.
  void inject_mbuf(uint16_t q, rte_mbuf* m) { ASSERT_EQ(rte_ring_enqueue(rx_[q], m), 0); }

  /// Poll worker i once and flush its TX buffers.
  void poll(uint16_t i) {
    dp::worker_poll(workers_[i].get());
    dp::worker_flush(workers_[i].get());
  }

  /// One turn of the main lcore's neighbour manager (workers offline meanwhile: it may
  /// publish next hops, which waits for them).
  void main_poll() {
    for (uint16_t i = 0; i < n_; ++i) rte_rcu_qsbr_thread_offline(publisher_->qsbr(), i);
    neigh_->poll(publisher_->current(), rte_rdtsc());
    for (uint16_t i = 0; i < n_; ++i) rte_rcu_qsbr_thread_online(publisher_->qsbr(), i);
  }

  /// Poll every worker and the main lcore until nothing moves any more.
  void settle() {
    for (int round = 0; round < 8; ++round) {
      for (uint16_t i = 0; i < n_; ++i) poll(i);
      main_poll();
    }
    for (uint16_t i = 0; i < n_; ++i) poll(i);
  }

  /// Frames worker i transmitted (its TX queue), oldest first.
  std::vector<Frame> sent(uint16_t i) {
    std::vector<Frame> out;
    void* obj;
    while (rte_ring_dequeue(tx_[i], &obj) == 0) {
      auto* m = static_cast<rte_mbuf*>(obj);
      auto* d = rte_pktmbuf_mtod(m, uint8_t*);
      out.emplace_back(d, d + rte_pktmbuf_data_len(m));
      rte_pktmbuf_free(m);
    }
    return out;
  }

  Mac mac() const {
    Mac m;
    std::memcpy(m.data(), info_.mac.data(), 6);
    return m;
  }
  dp::Worker& worker(uint16_t i) { return *workers_[i]; }
  dp::Publisher& publisher() { return *publisher_; }
  dp::ControlAgent& agent() { return *agent_; }
  dp::NeighService& neigh() { return *neigh_; }
  rte_mempool* pool() { return pool_; }
  uint16_t workers() const { return n_; }

 private:
  uint16_t n_;
  rte_mempool* pool_ = nullptr;
  std::vector<rte_ring*> rx_, tx_, steer_rings_, query_rings_;
  dp::PortInfo info_;
  std::unique_ptr<dp::Publisher> publisher_;
  std::unique_ptr<dp::NeighService> neigh_;
  std::vector<std::unique_ptr<dp::Worker>> workers_;
  std::unique_ptr<dp::ControlAgent> agent_;
};

}  // namespace rondo::test
