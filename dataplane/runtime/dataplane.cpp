#include "dataplane/runtime/dataplane.h"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_log.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_errno.h>

#include <time.h>

#include <algorithm>
#include <bitset>
#include <random>

#include "dataplane/flow/port_pool.h"
#include "dataplane/port/frame_size.h"
#include "dataplane/port/offloads.h"
#include "dataplane/runtime/state_dir.h"
#include "dataplane/runtime/watchdog.h"

namespace rondo::dp {
namespace {

struct BuildArgs {
  const WorkerSetup* setup;
  std::unique_ptr<Worker> worker;
  std::string error;
};

int build_worker(void* arg) {
  auto* a = static_cast<BuildArgs*>(arg);
  try {
    a->worker = std::make_unique<Worker>(*a->setup);
  } catch (const std::exception& e) {
    a->error = std::string("cannot allocate its flow table: ") + e.what() +
               (a->setup->pipeline.flow_store.empty() ? " (lower --flows-per-worker)" : "");
  }
  return 0;
}

// An af_packet or AF_XDP port whose interface keeps its offloads forwards nothing of a
// kernel peer's TCP (super-frames, partial checksums): say so at start, with the fix.
void warn_offloads(const PortInfo& p) {
  if (p.if_index == 0 || (p.driver != "net_af_packet" && p.driver != "net_af_xdp")) return;
  std::string ifname, err;
  std::vector<std::string> on;
  if (!offloads_on(p.if_index, &ifname, &on, &err)) {
    RTE_LOG(WARNING, USER1, "port %u: cannot read its interface's offloads: %s\n", p.id, err.c_str());
    return;
  }
  if (on.empty()) return;
  std::string list;
  for (const auto& o : on) list += (list.empty() ? "" : ", ") + o;
  RTE_LOG(WARNING, USER1,
          "port %u (%s): offloads on: %s. The kernel will hand this port GSO/GRO super-frames and "
          "segments with partial checksums, dropped as gso_frame and bad_l4_checksum. Turn them "
          "off: ethtool -K %s rx off tx off tso off gso off gro off lro off (and on a veth's peer "
          "end too), or deploy/rondo-host-prep --iface %s --apply\n",
          p.id, ifname.c_str(), list.c_str(), ifname.c_str(), ifname.c_str());
}

// What a flow costs, all arrays and the key buckets included (buckets hold a table's keys at
// 3/4 load: not a round number, so it is measured, not printed from a constant).
template <typename Table>
double bytes_per_flow(const Table& t) {
  return t.capacity() ? static_cast<double>(t.memory_bytes()) / t.capacity() : 0.0;
}

}  // namespace

Dataplane::~Dataplane() {
  agent_.reset();
  workers_.clear();
  capture_.reset();  // before the ports: no new dumpcap request may find them closed
  port_stop_all(ports_);
  neigh_.reset();
  load_.reset();
  for (rte_ring* r : rings_) rte_ring_free(r);
  publisher_.reset();
  if (pool_) rte_mempool_free(pool_);
}

bool Dataplane::init(std::string* err) {
  unsigned lcore;
  RTE_LCORE_FOREACH_WORKER(lcore) worker_lcores_.push_back(lcore);
  const auto n_workers = static_cast<uint16_t>(worker_lcores_.size());
  if (n_workers == 0) {
    *err = "no worker lcore: give at least two lcores (e.g. -l 0,1); the main lcore only serves control";
    return false;
  }
  if (opts_.test_stall_worker >= 0 && static_cast<size_t>(opts_.test_stall_worker) >= n_workers) {
    *err = "--test-stall-worker: no worker " + std::to_string(opts_.test_stall_worker) + " (there are " +
           std::to_string(n_workers) + ")";
    return false;
  }
  // A virtual device the driver refused leaves no port behind (EAL goes on without it):
  // name it here, with the driver's reason, rather than run without it.
  for (const auto& v : opts_.vdevs) {
    const std::string name = v.substr(0, v.find(','));
    uint16_t id;
    if (rte_eth_dev_get_port_by_name(name.c_str(), &id) != 0) {
      *err = "port " + name + " (" + v + ") failed to start: its driver refused it (the reason is in the log line above)";
      return false;
    }
  }
  // The secret first: a refused key file must stop the start before anything is allocated.
  HashKey secret;
  try {
    bool created = false;
    secret = load_or_create_hash_key(opts_.state_dir, &created);
    RTE_LOG(NOTICE, USER1, "hash secret: %s %s/%s\n", created ? "made" : "read",
            opts_.state_dir.c_str(), kHashKeyFile);
  } catch (const StateDirError& e) {
    *err = std::string("--state-dir: ") + e.what();
    return false;
  }
  if (!opts_.flow_dir.empty()) {
    std::string warning;
    if (!prepare_flow_dir(opts_.flow_dir, err, &warning)) {
      *err = "--flow-dir: " + *err;
      return false;
    }
    if (!warning.empty()) RTE_LOG(WARNING, USER1, "--flow-dir: %s\n", warning.c_str());
    // Read before the tables open their files: a planned restart left its stop time; a crash
    // left only the flow files, whose headers say when their writer last swept.
    stop_mark_ = take_stop_mark(opts_.flow_dir);
    // A local port's worker is decided by the worker count (PortOwnership): flows written
    // by a process with another count would be steered to workers that do not hold them.
    // Refused as a whole, with a fresh start: not re-hashed (docs/hot-restart.md).
    if (const auto prev = read_worker_count(opts_.flow_dir); prev && *prev != n_workers) {
      store_adopt_ = false;
      stop_mark_.reset();
      const unsigned removed = remove_worker_files(opts_.flow_dir, n_workers);
      RTE_LOG(WARNING, USER1,
              "--flow-dir %s: written by a dataplane with %u workers, this one has %u: a local "
              "port's worker depends on the worker count, so its flows and port quarantine are "
              "not adopted (connections through rondo reset); starting fresh%s\n",
              opts_.flow_dir.c_str(), *prev, n_workers,
              removed ? (" (" + std::to_string(removed) + " files of workers beyond " +
                         std::to_string(n_workers - 1) + " removed)").c_str() : "");
    }
    if (!write_worker_count(opts_.flow_dir, n_workers, err)) {
      *err = "--flow-dir: " + *err;
      return false;
    }
  }
  const uint16_t n_ports = rte_eth_dev_count_avail();
  if (n_ports == 0) {
    *err = "no ports: add a device (PCI, or e.g. --vdev=net_af_packet0,iface=eth1)";
    return false;
  }
  if (n_ports > kMaxPorts) {
    *err = "too many ports: " + std::to_string(n_ports) + " (at most " + std::to_string(kMaxPorts) + ")";
    return false;
  }

  // Everything that can hold an mbuf at once: every RX and TX descriptor ring full, every
  // worker's bursts in flight (rx, tx, steering buffers), every steering ring full, and
  // the mempool's per-lcore caches; then slack. Too few and RX starves under load.
  const uint32_t n_lcores = rte_lcore_count();
  const uint32_t in_rings = n_ports * n_workers * (opts_.rx_desc + opts_.tx_desc);
  const uint32_t in_bursts = n_workers * (n_ports + n_workers + 2u) * kBurst;
  const uint32_t in_steering = n_workers > 1 ? n_workers * (n_workers - 1u) * (kSteerRingSize - 1u) : 0;
  const uint32_t in_caches = n_lcores * kMbufCache;
  // The neighbour manager's rings: ARP frames from each worker, its frames to worker 0.
  const uint32_t in_neigh = n_workers * (NeighService::kArpRingSize - 1u) + NeighService::kTxRingSize - 1u;
  // Fragments each worker's reassembly table may hold at most (frag/reassembly.h).
  const uint32_t in_frag = n_workers * ReassemblyParams{}.max_datagrams * Reassembly::kMaxFragments;
  uint32_t mbufs = opts_.mbufs;
  if (mbufs == 0) mbufs = in_rings + in_bursts + in_steering + in_neigh + in_caches + 4096 + in_frag;
  RTE_LOG(NOTICE, USER1,
          "mbufs: %u (%s; descriptor rings %u, bursts %u, steering rings %u, neighbour rings %u, "
          "lcore caches %u, reassembly %u, slack 4096)\n",
          mbufs, opts_.mbufs ? "--mbufs" : "sized", in_rings, in_bursts, in_steering, in_neigh,
          in_caches, in_frag);
  if (opts_.mbufs && opts_.mbufs < in_rings + in_bursts + in_steering + in_neigh + in_caches)
    RTE_LOG(WARNING, USER1, "mbufs: --mbufs %u is below what can be held at once (%u): RX may starve\n",
            opts_.mbufs, in_rings + in_bursts + in_steering + in_neigh + in_caches);
  // Every mbuf holds a whole frame of the MTU (port/frame_size.h): no chained mbufs.
  FrameSizing fs;
  {
    std::vector<std::string> notes;
    if (!size_frames(opts_.mtu, opts_.vdevs, RTE_PKTMBUF_HEADROOM, &fs, err, &notes)) {
      *err = "--mtu " + std::to_string(opts_.mtu) + ": " + *err;
      return false;
    }
    for (const auto& n : notes) RTE_LOG(WARNING, USER1, "--mtu %u: %s\n", opts_.mtu, n.c_str());
    // RFC 8201 senders ignore a packet too big below 1280: IPv6 through rondo would blackhole.
    if (opts_.mtu < 1280)
      RTE_LOG(WARNING, USER1, "--mtu %u: IPv6 needs 1280; IPv6 senders ignore packet too big "
              "below it (docs/operations.md, MTU)\n", opts_.mtu);
  }
  pool_ = rte_pktmbuf_pool_create("rondo_mbufs", mbufs, kMbufCache, 0,
                                  static_cast<uint16_t>(fs.data_room),
                                  static_cast<int>(rte_socket_id()));
  if (!pool_) {
    *err = "cannot create mbuf pool of " + std::to_string(mbufs) + " mbufs of " +
           std::to_string(fs.data_room) + " bytes: " + rte_strerror(rte_errno) +
           " (more memory: -m or hugepages; a smaller --mtu or --mbufs)";
    return false;
  }
  RTE_LOG(NOTICE, USER1,
          "mbuf pool: %u mbufs of %u bytes (MTU %u, frames up to %u bytes): %.1f MiB\n", mbufs,
          fs.data_room, opts_.mtu, fs.frame,
          static_cast<double>(rte_mempool_calc_obj_size(pool_->elt_size, 0, nullptr)) *
              mbufs / (1024.0 * 1024.0));

  PortSetup ps;
  ps.n_queues = n_workers;
  ps.rx_desc = opts_.rx_desc;
  ps.tx_desc = opts_.tx_desc;
  ps.pool = pool_;
  ps.mtu = opts_.mtu;
  bond_prepare_members();
  for (const uint16_t pid : port_start_order()) {
    // A bond's member is driven by the bonding PMD: no queues or workers of its own.
    if (const auto bond = port_bond_of(pid)) {
      RTE_LOG(NOTICE, USER1, "port %u: member of bond port %u\n", pid, *bond);
      // The config's routes and neighbours name ports by id, port 0 when they name none.
      if (pid == 0)
        RTE_LOG(WARNING, USER1,
                "port 0 is a member of bond port %u: what the config sends on port 0 (all of it "
                "without routes) would bypass the bond; give the bond's --vdev first, or port: %u "
                "in its routes and neighbours\n", *bond, *bond);
      continue;
    }
    PortInfo info;
    if (!port_start(pid, ps, &info, err)) return false;
    RTE_LOG(NOTICE, USER1, "port %u: %s (%s) mac %02x:%02x:%02x:%02x:%02x:%02x, %u queues, %s\n",
            info.id, info.name.c_str(), info.driver.c_str(), info.mac[0], info.mac[1], info.mac[2],
            info.mac[3], info.mac[4], info.mac[5], info.n_queues,
            info.rss ? "RSS" : "no RSS");
    ports_.push_back(info);
    warn_offloads(info);
  }
  // After the ports: dumpcap names a port and its queues, which must exist by then.
  {
    std::string why;
    capture_ = CaptureServer::start(&why);
    if (capture_)
      RTE_LOG(NOTICE, USER1, "capture: dpdk-dumpcap --file-prefix=%s can attach (docs/operations.md)\n",
              capture_->file_prefix().c_str());
    else
      RTE_LOG(NOTICE, USER1, "capture: unavailable (%s)\n", why.c_str());
  }

  publisher_ = std::make_unique<Publisher>(n_workers);
  load_ = std::make_unique<LoadPublisher>(publisher_->qsbr(), rte_get_tsc_hz());
  {
    NeighManagerParams np;
    np.hz = rte_get_tsc_hz();
    np.reply_rate = opts_.reply_rate;
    np.hash_key = secret;
    for (const auto& p : ports_) {  // indexed by port id, which need not be dense
      if (np.port_macs.size() <= p.id) np.port_macs.resize(p.id + 1u);
      np.port_macs[p.id] = p.mac;
    }
    neigh_ = std::make_unique<NeighService>("rondo_neigh", n_workers, pool_, publisher_->qsbr(), np);
    if (!neigh_->ok(err)) return false;
  }
  // Software steering rings, one per ordered pair of workers (see WorkerSetup).
  std::vector<std::vector<rte_ring*>> rings(n_workers, std::vector<rte_ring*>(n_workers, nullptr));
  if (n_workers > 1) {
    for (uint16_t from = 0; from < n_workers; ++from)
      for (uint16_t to = 0; to < n_workers; ++to) {
        if (from == to) continue;
        const std::string name = "rondo_steer_" + std::to_string(from) + "_" + std::to_string(to);
        rte_ring* r = rte_ring_create(name.c_str(), kSteerRingSize, static_cast<int>(rte_socket_id()),
                                      RING_F_SP_ENQ | RING_F_SC_DEQ);
        if (!r) {
          *err = "cannot create steering ring " + name + ": " + rte_strerror(rte_errno);
          return false;
        }
        rings[from][to] = r;
        rings_.push_back(r);
      }
  }
  // Query rings (inspect/query.h): one each way per worker; one query in flight at a time,
  // plus one a worker may still owe from a request that timed out.
  std::vector<InspectedWorker> inspected;
  for (uint16_t i = 0; i < n_workers; ++i) {
    InspectedWorker iw{worker_lcores_[i], nullptr, nullptr};
    for (rte_ring** r : {&iw.to_worker, &iw.from_worker}) {
      const std::string name = std::string(r == &iw.to_worker ? "rondo_q_in_" : "rondo_q_out_") + std::to_string(i);
      *r = rte_ring_create(name.c_str(), 4, static_cast<int>(rte_socket_id()), RING_F_SP_ENQ | RING_F_SC_DEQ);
      if (!*r) {
        *err = "cannot create query ring " + name + ": " + rte_strerror(rte_errno);
        return false;
      }
      rings_.push_back(*r);
    }
    inspected.push_back(iw);
  }
  // 802.3ad bonds whose LACPDUs leave only inside a TX burst on the bond: every worker
  // bursts on them at each drain, empty if need be (without, an idle bond never agrees with
  // its partner); the bonding PMD asks for a burst at least every 100 ms.
  std::bitset<RTE_MAX_ETHPORTS> empty_burst_ports;  // port ids go up to RTE_MAX_ETHPORTS - 1
  for (const auto& p : ports_) {
    if (!p.bond || !p.bond->lacp_in_bursts) continue;
    empty_burst_ports.set(p.id);
    if (opts_.idle_sleep_us >= 50'000) {
      *err = "port " + p.name + ": 802.3ad without dedicated queues needs the workers to burst on "
             "it at least every 100 ms: --idle-sleep-us must be below 50000";
      return false;
    }
  }
  std::vector<Worker*> raw;
  for (uint16_t i = 0; i < n_workers; ++i) {
    WorkerSetup ws;
    ws.index = i;
    ws.lcore = worker_lcores_[i];
    ws.n_ports = n_ports;
    for (const auto& p : ports_) ws.rx.push_back(RxQueue{p.id, i});
    ws.publisher = publisher_.get();
    ws.arp_to_main = neigh_->arp_ring(i);
    ws.ask_to_main = neigh_->ask_ring(i);
    ws.from_main = neigh_->tx_ring(i);
    ws.next_hops = neigh_->next_hops();
    ws.next_hops6 = neigh_->next_hops6();
    ws.backend_load = load_->slot();
    ws.query_in = inspected[i].to_worker;
    ws.query_out = inspected[i].from_worker;
    ws.idle_sleep_us = opts_.idle_sleep_us;
    ws.empty_burst_ports = empty_burst_ports;
    ws.pool = pool_;
    if (opts_.test_stall_worker == static_cast<int>(i)) {
      ws.test_stall_after_tsc = std::max<uint64_t>(1, rte_get_tsc_hz() / 1000 * opts_.test_stall_after_ms);
      RTE_LOG(WARNING, USER1, "worker %u: --test-stall-worker: its loop stops %u ms after it starts (tests only)\n",
              i, opts_.test_stall_after_ms);
    }
    if (n_workers > 1) {
      ws.steer_out = rings[i];
      for (uint16_t from = 0; from < n_workers; ++from) ws.steer_in.push_back(rings[from][i]);
    }
    ws.pipeline.flow_capacity = opts_.flows_per_worker;
    ws.pipeline.flow6_capacity = opts_.flows6_per_worker;
    ws.pipeline.flow_meters = opts_.flow_meters;
    ws.pipeline.age_sweep_ms = opts_.age_sweep_ms;
    ws.pipeline.mtu = opts_.mtu;
    ws.pipeline.hz = rte_get_tsc_hz();
    ws.pipeline.lport_lo = opts_.lport_lo;
    ws.pipeline.lport_hi = opts_.lport_hi;
    ws.pipeline.worker = i;
    ws.pipeline.reply_rate = opts_.reply_rate;  // ICMP echo, per worker
    ws.pipeline.n_workers = n_workers;
    ws.pipeline.hash_key = secret;
    if (!opts_.flow_dir.empty()) {
      ws.pipeline.flow_store = flow_file(opts_.flow_dir, i);
      ws.pipeline.quarantine_store = quarantine_file(opts_.flow_dir, i);
      ws.pipeline.flow6_store = flow6_file(opts_.flow_dir, i);
      ws.pipeline.quarantine6_store = quarantine6_file(opts_.flow_dir, i);
      ws.pipeline.start_now = rte_rdtsc();
      ws.pipeline.store_adopt = store_adopt_;
    }
    // A fresh start of the local-port search order in every process (port_pool.h).
    ws.pipeline.port_seed = std::random_device{}() ^ uint64_t{std::random_device{}()} << 32 ^ rte_rdtsc();
    // Indexed by port id, which need not be dense (a port may have failed to probe).
    for (const auto& p : ports_) {
      if (ws.pipeline.port_macs.size() <= p.id) ws.pipeline.port_macs.resize(p.id + 1u);
      ws.pipeline.port_macs[p.id] = p.mac;
    }
    // Built on its own lcore: the flow table's pages are touched (zeroed) by the thread
    // that builds it, so they land on that lcore's NUMA node.
    BuildArgs args{&ws, nullptr, {}};
    rte_eal_remote_launch(build_worker, &args, worker_lcores_[i]);
    rte_eal_wait_lcore(worker_lcores_[i]);
    if (!args.worker) {
      *err = "worker " + std::to_string(i) + ": " + args.error;
      return false;
    }
    workers_.push_back(std::move(args.worker));
    raw.push_back(workers_.back().get());
    RTE_LOG(NOTICE, USER1,
            "worker %u on lcore %u: %u flows (%zu MiB, %.1f B each), local ports %u-%u with (port & %u) "
            "owned: %u per (local ip, backend); port quarantine %u tuples\n",
            i, worker_lcores_[i], opts_.flows_per_worker,
            workers_.back()->pipeline.flows().memory_bytes() >> 20,
            bytes_per_flow(workers_.back()->pipeline.flows()),
            ws.pipeline.lport_lo,
            ws.pipeline.lport_hi, PortOwnership(n_workers).mask(), workers_.back()->pipeline.port_share(),
            workers_.back()->pipeline.quarantine().capacity());
    RTE_LOG(NOTICE, USER1,
            "worker %u: IPv6 flows (v6, NAT46, NAT64): %u flows (%zu MiB, %.1f B each); port "
            "quarantine %u tuples\n",
            i, workers_.back()->pipeline.flows6().capacity(),
            workers_.back()->pipeline.flows6().memory_bytes() >> 20,
            bytes_per_flow(workers_.back()->pipeline.flows6()),
            workers_.back()->pipeline.quarantine6().capacity());
    if (!opts_.flow_dir.empty()) {
      const Pipeline& pl = workers_.back()->pipeline;
      const FlowAdoption& a = pl.adoption();
      static constexpr const char* kOutcome[] = {"created", "adopted", "refused"};
      RTE_LOG(NOTICE, USER1,
              "worker %u: flow table %s: %s%s%s; %u flows adopted, %u discarded, %u half-done "
              "inserts or erases, %u dropped by the pipeline (PROXY v2 state or bad backend "
              "id), %lu us%s\n",
              i, ws.pipeline.flow_store.c_str(), kOutcome[static_cast<int>(a.outcome)],
              a.reason.empty() ? "" : ": ", a.reason.c_str(), pl.adopted(), a.discarded,
              a.half_done, pl.adopt_dropped(), static_cast<unsigned long>(a.micros),
              a.expiry_shift ? " (the clock restarted: expiries shifted)" : "");
      const FlowAdoption& a6 = pl.adoption6();
      RTE_LOG(NOTICE, USER1,
              "worker %u: v6 flow table %s: %s%s%s; %u flows adopted, %u discarded, %u dropped "
              "by the pipeline (bad backend id), %lu us\n",
              i, ws.pipeline.flow6_store.c_str(), kOutcome[static_cast<int>(a6.outcome)],
              a6.reason.empty() ? "" : ": ", a6.reason.c_str(), a6.adopted - pl.adopt_dropped6(),
              a6.discarded, pl.adopt_dropped6(), static_cast<unsigned long>(a6.micros));
      const QuarantineAdoption& q = pl.quarantine().adoption();
      RTE_LOG(NOTICE, USER1,
              "worker %u: port quarantine %s: %s%s%s; %u tuples still held, %u discarded, %u "
              "expired, %lu us\n",
              i, ws.pipeline.quarantine_store.c_str(), kOutcome[static_cast<int>(q.outcome)],
              q.reason.empty() ? "" : ": ", q.reason.c_str(), q.adopted, q.discarded, q.expired,
              static_cast<unsigned long>(q.micros));
      if (a.outcome == FlowAdoption::Outcome::kAdopted) {
        any_adopted_ = true;
        writer_clock_ = std::max(writer_clock_.value_or(0), a.writer_clock);
      }
      adopted_ += pl.adopted();
      discarded_ += a.discarded + pl.adopt_dropped();
      const QuarantineAdoption& q6 = pl.quarantine6().adoption();
      RTE_LOG(NOTICE, USER1,
              "worker %u: v6 port quarantine %s: %s%s%s; %u tuples still held, %u discarded, "
              "%u expired, %lu us\n",
              i, ws.pipeline.quarantine6_store.c_str(), kOutcome[static_cast<int>(q6.outcome)],
              q6.reason.empty() ? "" : ": ", q6.reason.c_str(), q6.adopted, q6.discarded,
              q6.expired, static_cast<unsigned long>(q6.micros));
      if (a6.outcome == FlowAdoption::Outcome::kAdopted) {
        any_adopted_ = true;
        writer_clock_ = std::max(writer_clock_.value_or(0), a6.writer_clock);
      }
      adopted_ += a6.adopted - pl.adopt_dropped6();
      discarded_ += a6.discarded + pl.adopt_dropped6();
    }
  }
  // A clean stop of the previous process left where its port searches stood: go on from
  // there (its recent ports are behind, possibly in the backends' TIME_WAIT).
  if (auto order = take_port_order(opts_.state_dir)) {
    if (order->lo == opts_.lport_lo && order->hi == opts_.lport_hi &&
        order->workers.size() == workers_.size()) {
      for (size_t i = 0; i < workers_.size(); ++i)
        workers_[i]->pipeline.ports().set_counters(order->workers[i]);
      RTE_LOG(NOTICE, USER1, "local ports: going on where the previous process stopped (%s/%s)\n",
              opts_.state_dir.c_str(), kPortOrderFile);
    } else {
      RTE_LOG(NOTICE, USER1, "local ports: %s/%s is for another port range or worker count; "
              "starting at random\n", opts_.state_dir.c_str(), kPortOrderFile);
    }
  }
  std::vector<const BackendCounters*> counts;
  for (const Worker* w : raw) counts.push_back(w->pipeline.backend_counters());
  load_->set_workers(std::move(counts));
  agent_ = std::make_unique<ControlAgent>(opts_.ctl_socket, publisher_.get(), raw, ports_);
  agent_->use_main_counters(&neigh_->counters(), rte_get_main_lcore());
  agent_->use_snapshot_params(SnapshotParams{.maglev_seed = opts_.maglev_seed, .route_lpm = true,
                                             .n_ports = static_cast<uint16_t>(ports_.size()),
                                             .default_mtu = opts_.mtu});
  agent_->use_inspector(std::make_unique<InspectAgent>(std::move(inspected), rte_get_tsc_hz()));
  if (!opts_.flow_dir.empty()) agent_->use_state_file(opts_.flow_dir + "/" + kStateFile);
  // AF_XDP ports running bpf/rondo_xdp.bpf.o share the interface with the host kernel.
  std::vector<std::unique_ptr<XdpAddressFilter>> filters;
  for (const auto& p : ports_) {
    if (p.driver != "net_af_xdp") continue;
    std::string why;
    if (auto f = XdpAddressFilter::attach(p.if_index, p.id, eui64_link_local(p.mac), &why)) {
      RTE_LOG(NOTICE, USER1, "port %u: XDP program shares the interface: rondo's addresses to AF_XDP, the rest to the kernel\n", p.id);
      if (!why.empty()) RTE_LOG(WARNING, USER1, "port %u: %s\n", p.id, why.c_str());
      filters.push_back(std::move(f));
    } else {
      RTE_LOG(NOTICE, USER1, "port %u: %s\n", p.id, why.c_str());
    }
  }
  agent_->use_xdp_filters(std::move(filters));
  if (n_workers > 1) {
    // NIC steering only if every port can do it; otherwise the software path does it all.
    std::vector<std::unique_ptr<NicSteering>> nic;
    std::string why;
    for (const auto& p : ports_) {
      auto s = std::make_unique<NicSteering>(p.id);
      if (!s->probe(n_workers, &why)) {
        why = p.name + ": " + why;
        nic.clear();
        break;
      }
      nic.push_back(std::move(s));
    }
    if (!nic.empty()) {
      const bool v6 = std::all_of(nic.begin(), nic.end(), [](const auto& s) { return s->v6(); });
      agent_->use_nic_steering(std::move(nic), n_workers);
      RTE_LOG(NOTICE, USER1, "steering: NIC (rte_flow rules per local ip and port residue; IPv6 %s)\n",
              v6 ? "too" : "local ips in software");
    } else {
      RTE_LOG(NOTICE, USER1,
              "steering: software (replies handed to the owning worker over rings; %s)\n",
              why.c_str());
    }
  }
  // The last state the control plane applied, before the workers start: adopted flows
  // forward at once, not after the control plane's reconnect backoff (seconds).
  if (!opts_.flow_dir.empty()) agent_->apply_state_file();
  return agent_->listen(err);
}

bool Dataplane::run(std::atomic<bool>* stop) {
  if (!opts_.flow_dir.empty())
    agent_->use_restart([this, stop] {
      restart_ = true;
      stop->store(true, std::memory_order_relaxed);
    }, "");
  else
    agent_->use_restart(nullptr,
                        "restart needs --flow-dir: without it the flow tables are in anonymous "
                        "memory and a new process would start with none (every connection "
                        "through this host dropped); start the dataplane with --flow-dir on "
                        "tmpfs, or restart the service");
  std::vector<const Worker*> watched;
  for (const auto& w : workers_) watched.push_back(w.get());
  Watchdog watchdog(std::move(watched), rte_get_tsc_hz(), opts_.idle_sleep_us);
  for (size_t i = 0; i < workers_.size(); ++i) {
    workers_[i]->stop = stop;
    rte_eal_remote_launch(worker_main, workers_[i].get(), worker_lcores_[i]);
  }
  timespec launched{};
  clock_gettime(CLOCK_REALTIME, &launched);
  const uint64_t launched_tsc = rte_rdtsc();
  const int64_t launched_ns = launched.tv_sec * int64_t{1000000000} + launched.tv_nsec;
  report_start(launched_ns, launched_tsc);
  RTE_LOG(NOTICE, USER1, "ready: %zu ports, %zu workers, control socket %s (%.1f ms after main() began)\n",
          ports_.size(), workers_.size(), opts_.ctl_socket.c_str(),
          static_cast<double>(launched_ns - opts_.main_entered_ns) / 1e6);
  watchdog.ready("forwarding: " + std::to_string(ports_.size()) + " ports, " +
                     std::to_string(workers_.size()) + " workers, control socket " + opts_.ctl_socket,
                 rte_rdtsc());
  // The main lcore's loop: control requests, and the neighbour manager at least every
  // millisecond (ARP answers and next hops wait no longer than that); the lc counts every
  // kLoadRefreshMs. Bonds: their members, looked at every turn too (a few reads of the
  // bonding PMD's state), logged when they change and announced on every interface (VLAN) of
  // the bond, tagged as it is (gratuitous ARP, unsolicited NA: NeighService::announce): DPDK's
  // bonding PMD sends none, and a switch would go on sending our MAC's frames to the member
  // the bond no longer listens on (after a failback, until we happen to send on the new one).
  while (!stop->load(std::memory_order_relaxed)) {
    agent_->poll_once(std::chrono::milliseconds(1));
    for (auto& p : ports_)
      if (port_bond_watch(&p) && !p.bond->active.empty()) neigh_->announce(publisher_->current(), p.id);
    neigh_->poll(publisher_->current(), rte_rdtsc());
    load_->poll(publisher_->current(), rte_rdtsc());
    LcoreCounters& mc = neigh_->counters();
    mc.mbufs_in_use = rte_mempool_in_use_count(pool_);
    mc.mbufs_total = pool_->size;
    // Pings only while this loop runs and every worker's does: a stuck lcore stops them.
    watchdog.poll(rte_rdtsc());
  }
  if (restart_)
    watchdog.restarting();
  else
    watchdog.stopping();
  rte_eal_mp_wait_lcore();
  // The moment forwarding stopped, for the next process's gap (planned restart).
  timespec stopped{};
  clock_gettime(CLOCK_REALTIME, &stopped);
  const uint64_t stopped_tsc = rte_rdtsc();
  // The workers are stopped: their port searches can be read and kept for the next process.
  PortOrder order{opts_.lport_lo, opts_.lport_hi, {}};
  for (const auto& w : workers_) order.workers.push_back(w->pipeline.ports().counters());
  std::string err;
  if (!save_port_order(opts_.state_dir, order, &err))
    RTE_LOG(WARNING, USER1, "local ports: %s (the next process starts at random)\n", err.c_str());
  if (!restart_) return false;
  // Written last: its presence tells the next process the tables were left consistent by a
  // planned stop (start kind 1), not by a crash.
  if (!write_stop_mark(opts_.flow_dir,
                       StopMark{stopped.tv_sec * int64_t{1000000000} + stopped.tv_nsec, stopped_tsc},
                       &err))
    RTE_LOG(WARNING, USER1, "restart: %s (the next process will take it for a crash)\n", err.c_str());
  return true;
}

// How this process started, now that forwarding resumes: into the hello reply and the log.
void Dataplane::report_start(int64_t now_ns, uint64_t now_tsc) {
  if (opts_.flow_dir.empty()) return;
  uint8_t kind = api::kStartFresh;
  uint64_t gap_ns = 0;
  // Fresh unless some table was adopted (DataplaneInfo::start_kind): files refused (another
  // capacity, layout or key) start empty, whatever stopped the process before.
  if (any_adopted_) {
    if (stop_mark_) {
      kind = api::kStartPlanned;
      gap_ns = now_ns > stop_mark_->realtime_ns ? static_cast<uint64_t>(now_ns - stop_mark_->realtime_ns) : 0;
    } else if (writer_clock_) {
      // An upper bound: the dead process forwarded until some time after its last sweep
      // (a loop, at most, while it was alive), and the TSC goes on across processes of one
      // boot (a clock behind the writer's means a reboot: no estimate).
      kind = api::kStartCrash;
      if (now_tsc >= *writer_clock_)
        gap_ns = static_cast<uint64_t>(static_cast<double>(now_tsc - *writer_clock_) * 1e9 /
                                       static_cast<double>(rte_get_tsc_hz()));
    }
  }
  const auto gap_ms = static_cast<uint32_t>(std::min<uint64_t>(gap_ns / 1000000, UINT32_MAX));
  agent_->set_start_info(adopted_, discarded_, kind, gap_ms);
  if (kind == api::kStartFresh) {
    RTE_LOG(NOTICE, USER1, "start: fresh (nothing adopted from %s)\n", opts_.flow_dir.c_str());
    return;
  }
  RTE_LOG(NOTICE, USER1,
          "forwarding resumed %.1f ms after the previous process stopped (%s), %lu flows "
          "adopted, %lu discarded\n",
          static_cast<double>(gap_ns) / 1e6,
          kind == api::kStartPlanned ? "planned restart" : "crash; an upper bound, from its last ageing sweep",
          static_cast<unsigned long>(adopted_), static_cast<unsigned long>(discarded_));
}

}  // namespace rondo::dp
