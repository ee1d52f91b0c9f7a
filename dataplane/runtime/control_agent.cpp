#include "dataplane/runtime/control_agent.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rte_lcore.h>
#include <rte_log.h>

#include <cerrno>
#include <cstring>
#include <random>

#include "dataplane/api/validate.h"
#include "dataplane/neigh/manager.h"
#include "dataplane/port/multicast.h"
#include "dataplane/runtime/flow_dir.h"
#include "dataplane/stats/counters.h"
#include "dataplane/stats/iface_counters.h"

namespace rondo::dp {
namespace {

api::Ack error_ack(const std::string& msg, uint64_t gen) { return api::Ack{false, gen, msg}; }

// Add one worker's counters of interface `id` to *out (relaxed loads: the worker writes them).
void add_iface_counters(const Pipeline& pipeline, uint16_t id, api::IfaceStats* out) {
  const IfaceCounters& c = pipeline.iface_counters()[id];
  out->rx_packets += read_counter(c.rx_packets);
  out->rx_bytes += read_counter(c.rx_bytes);
  out->tx_packets += read_counter(c.tx_packets);
  out->tx_bytes += read_counter(c.tx_bytes);
}

}  // namespace

ControlAgent::ControlAgent(std::string socket_path, Publisher* publisher,
                           std::vector<Worker*> workers, std::vector<PortInfo> ports)
    : publisher_(publisher),
      workers_(std::move(workers)),
      ports_(std::move(ports)),
      server_(
          ControlServerOptions{.path = std::move(socket_path)},
          [this](const api::MsgHeader& h, const std::vector<uint8_t>& payload,
                 std::vector<uint8_t>* reply) { return handle(h, payload, reply); },
          [this](const std::string& why) { return api::encode_ack(error_ack(why, generation_)); }) {
  std::random_device rd;
  instance_ = (static_cast<uint64_t>(rd()) << 32) | rd();
}

ControlAgent::~ControlAgent() = default;

bool ControlAgent::listen(std::string* err) { return server_.listen(err); }

void ControlAgent::run(const std::atomic<bool>& stop) {
  while (!stop.load(std::memory_order_relaxed)) server_.poll_once(std::chrono::milliseconds(200));
}

api::MsgType ControlAgent::handle(const api::MsgHeader& h, const std::vector<uint8_t>& payload,
                                  std::vector<uint8_t>* reply) {
  switch (static_cast<api::MsgType>(h.type)) {
    case api::MsgType::kHello: {
      api::DataplaneInfo info;
      info.pid = static_cast<uint32_t>(getpid());
      info.n_workers = static_cast<uint32_t>(workers_.size());
      info.n_ports = static_cast<uint32_t>(ports_.size());
      info.n_drop_reasons = kDropReasonCount;
      info.mtu = snapshot_params_.default_mtu;
      info.instance = instance_;
      info.generation = generation_;
      info.adopted_flows = start_.adopted;
      info.discarded_flows = start_.discarded;
      info.start_kind = start_.kind;
      info.gap_ms = start_.gap_ms;
      *reply = api::encode_info(info);
      return api::MsgType::kHelloReply;
    }
    case api::MsgType::kSetState: {
      std::string err;
      if (!apply_state(payload, false, &err)) {
        *reply = api::encode_ack(error_ack(err, generation_));
        return api::MsgType::kError;
      }
      *reply = api::encode_ack(api::Ack{true, generation_, "applied"});
      return api::MsgType::kSetStateReply;
    }
    case api::MsgType::kRestart:
      if (!restart_) {
        RTE_LOG(WARNING, USER1, "control: restart refused: %s\n", restart_refusal_.c_str());
        *reply = api::encode_ack(error_ack(restart_refusal_, generation_));
        return api::MsgType::kError;
      }
      // The reply is queued (and, a few bytes on a unix socket, written) when this returns;
      // the main loop stops after this round of requests.
      RTE_LOG(NOTICE, USER1, "control: restart asked for: stopping the workers, then exec\n");
      restart_();
      *reply = api::encode_ack(api::Ack{true, generation_, "restarting"});
      return api::MsgType::kRestartReply;
    case api::MsgType::kGetStats:
      *reply = api::encode_stats(collect_stats());
      return api::MsgType::kStatsReply;
    case api::MsgType::kInspect: {
      std::string err;
      auto req = api::decode_inspect_request(payload, &err);
      api::InspectReply out;
      if (req && !inspector_) err = "inspection is not available in this dataplane";
      if (!req || !inspector_ || !inspector_->handle(*req, &out, &err)) {
        *reply = api::encode_ack(error_ack(err, generation_));
        return api::MsgType::kError;
      }
      *reply = api::encode_inspect_reply(out);
      return api::MsgType::kInspectReply;
    }
    default:
      *reply = api::encode_ack(error_ack("unexpected message type " + std::to_string(h.type), generation_));
      return api::MsgType::kError;
  }
}

bool ControlAgent::apply_state(std::span<const uint8_t> bytes, bool from_file, std::string* err) {
  auto state = api::decode_state(bytes, err);
  if (state && (*err = api::validate_state(*state)).empty()) {
    // The rules only this process can check: its ports and --mtu.
    const auto problems = api::check_dataplane(*state, static_cast<uint32_t>(ports_.size()),
                                               snapshot_params_.default_mtu);
    if (!problems.empty()) *err = problems.front().to_string();
  }
  if (!state || !err->empty()) {
    RTE_LOG(WARNING, USER1, "control: rejected state%s: %s\n", from_file ? " file" : "", err->c_str());
    return false;
  }
  // Rules first: a reply that arrives before its worker sees the new snapshot is
  // still handled (the software path covers the gap).
  for (auto& nic : nic_steering_) {
    std::vector<uint32_t> ips;
    std::vector<Ip6> ips6;  // rules only where the device takes IPv6 patterns (probe)
    for (const api::Addr& ip : state->local_ips) {
      if (ip.is_v4())
        ips.push_back(htonl(ip.v4()));
      else
        ips6.push_back(Ip6::from(ip.b.data()));
    }
    std::string rule_err;
    if (!nic->apply(ips, PortOwnership(n_workers_), &rule_err, ips6))
      RTE_LOG(WARNING, USER1, "control: NIC steering rules: %s (software steering covers it)\n",
              rule_err.c_str());
  }
  // The Maglev tables of the maglev and sh VIPs are built here, on the main lcore,
  // while the workers forward with the previous snapshot.
  // So are the routes' rte_lpm (when some prefix is longer than /0).
  SnapshotParams params = snapshot_params_;
  if (!ports_.empty()) params.n_ports = static_cast<uint16_t>(ports_.size());
  auto snap = build_snapshot(*state, params);
  if (!snap->routes.lpm_error().empty())
    RTE_LOG(WARNING, USER1, "control: %zu routes are scanned per packet, not in an rte_lpm: %s\n",
            snap->routes.size(), snap->routes.lpm_error().c_str());
  // Before the snapshot goes out: each AF_XDP port's program passes what is answered on that
  // port (VIPs, local ips, the own addresses of its interfaces) to rondo.
  for (auto& f : xdp_filters_) {
    const PortAddrs ours = port_addrs(*snap, f->port());
    std::string xdp_err;
    if (!f->apply(ours.v4, ours.v6, &xdp_err))
      RTE_LOG(WARNING, USER1, "control: XDP address filter: %s\n", xdp_err.c_str());
  }
  // Before the snapshot goes out: the solicited-node groups of its IPv6 addresses reach the
  // ports by the time the neighbour manager answers for them (port/multicast.h): on each
  // port those of the addresses answered there (the union over its interfaces).
  for (const auto& port : ports_) {
    std::string mc_err;
    if (!apply_mc_list(port.id, port_addrs(*snap, port.id).v6, &mc_err))
      RTE_LOG(WARNING, USER1, "control: %s (IPv6 neighbours may not reach rondo)\n",
              mc_err.c_str());
  }
  // Names for the stats: the declared ones, or the implicit interfaces' port<N>.
  iface_names_.assign(snap->ifaces.size(), std::string());
  if (state->interfaces.empty())
    for (size_t id = 0; id < iface_names_.size(); ++id) iface_names_[id] = "port" + std::to_string(id);
  for (const auto& itf : state->interfaces) iface_names_[itf.id] = itf.name;
  publisher_->publish(std::move(snap));
  generation_ = state->generation;
  size_t n_backends = 0;
  for (const auto& v : state->vips) n_backends += v.backends.size();
  RTE_LOG(INFO, USER1, "control: applied generation %lu (%zu vips, %zu backends)%s\n",
          static_cast<unsigned long>(generation_), state->vips.size(), n_backends,
          from_file ? ", from the state file" : "");
  if (!from_file) save_state(bytes);
  return true;
}

// On the main lcore, after the snapshot is published: the workers forward with it already;
// a state of a few hundred KB costs a write and a rename here (flow_dir.h), never a packet.
void ControlAgent::save_state(std::span<const uint8_t> bytes) {
  std::string why;
  if (!state_file_.empty() && !replace_file(state_file_, bytes, &why))
    RTE_LOG(WARNING, USER1, "control: cannot keep the state (%s): a restart waits for the "
            "control plane\n", why.c_str());
}

bool ControlAgent::apply_state_file() {
  if (state_file_.empty()) return false;
  const int fd = ::open(state_file_.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) {
    if (errno != ENOENT)
      RTE_LOG(WARNING, USER1, "control: state file %s: %s; waiting for the control plane\n",
              state_file_.c_str(), std::strerror(errno));
    return false;
  }
  std::vector<uint8_t> bytes;
  struct stat st{};
  std::string why;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    why = "not a regular file";
  } else if (st.st_size > static_cast<off_t>(api::kMaxPayload)) {
    why = std::to_string(st.st_size) + " bytes, more than a state may be";
  } else {
    bytes.resize(static_cast<size_t>(st.st_size));
    const ssize_t n = ::pread(fd, bytes.data(), bytes.size(), 0);
    if (n != static_cast<ssize_t>(bytes.size())) why = "short read";
  }
  ::close(fd);
  if (why.empty() && apply_state(bytes, true, &why)) {
    RTE_LOG(NOTICE, USER1, "state: applied generation %lu from %s: forwarding before the control "
            "plane reconnects\n", static_cast<unsigned long>(generation_), state_file_.c_str());
    return true;
  }
  RTE_LOG(WARNING, USER1, "state: ignoring %s (%s); waiting for the control plane\n",
          state_file_.c_str(), why.c_str());
  return false;
}

api::Stats ControlAgent::collect_stats() const {
  api::Stats s;
  s.generation = generation_;
  for (const auto& def : kLcoreCounterTable)
    s.counters.push_back({def.name, def.metric, def.help, def.gauge});
  for (uint32_t r = 0; r < kDropReasonCount; ++r)
    s.drop_names.emplace_back(drop_reason_name(static_cast<DropReason>(r)));
  std::vector<api::BackendStats> sum(kBackendSlots);
  auto row = [&s](const LcoreCounters& c, uint32_t lcore) {
    api::LcoreStats l;
    l.lcore_id = lcore;
    for (const auto& def : kLcoreCounterTable) l.counters.push_back(read_counter(c.*def.member));
    for (const auto& d : c.drops) l.drops.push_back(read_counter(d));
    s.lcores.push_back(std::move(l));
  };
  // Every backend may have each (local ip, local port) pair once: the workers' shares of
  // the port range, times the local ips of the state in force.
  const Snapshot* snap = publisher_->current();
  uint64_t capacity = 0;
  for (const Worker* w : workers_) capacity += w->pipeline.port_share();
  capacity *= snap ? snap->local_ips.size() : 0;
  for (const Worker* w : workers_) {
    row(w->pipeline.counters(), w->setup.lcore);
    const BackendCounters* b = w->pipeline.backend_counters();
    for (uint32_t id = 0; id < kBackendSlots; ++id) {
      sum[id].packets += read_counter(b[id].packets);
      sum[id].bytes += read_counter(b[id].bytes);
      sum[id].connections += read_counter(b[id].connections);
      sum[id].active_flows += read_counter(b[id].active_flows);
      sum[id].quarantined += read_counter(b[id].quarantined);
    }
  }
  // The main lcore's row last (the workers' come first, in worker order).
  if (main_counters_) row(*main_counters_, main_lcore_);
  // Each backend's share of its VIP's Maglev table, counted when the snapshot was built.
  if (snap) {
    for (size_t i = 0; i < snap->backends.size(); ++i) {
      api::BackendStats& b = sum[snap->backends[i].id];
      b.table_entries = snap->table_shares[i].entries;
      b.table_size = snap->table_shares[i].size;
    }
  }
  for (uint32_t id = 0; id < kBackendSlots; ++id) {
    if (sum[id].connections == 0 && sum[id].packets == 0 && sum[id].table_size == 0) continue;
    sum[id].id = id;
    sum[id].port_capacity = capacity;
    s.backends.push_back(sum[id]);
  }
  for (const auto& p : ports_) s.ports.push_back(port_stats(p));
  // Every interface of the state in force, by id, with what the workers counted on it.
  if (snap) {
    for (uint16_t id = 0; id < snap->ifaces.size(); ++id) {
      const IfaceConf& c = snap->ifaces[id];
      if (!c.in_use) continue;
      api::IfaceStats i;
      i.id = id;
      i.name = id < iface_names_.size() ? iface_names_[id] : std::string();
      i.port_id = c.port;
      i.vlan = c.tagged ? static_cast<uint16_t>(ntohs(c.tci) & 0xfff) : 0;
      i.mtu = c.mtu;
      for (const Worker* w : workers_) add_iface_counters(w->pipeline, id, &i);
      s.interfaces.push_back(std::move(i));
    }
  }
  return s;
}

}  // namespace rondo::dp
