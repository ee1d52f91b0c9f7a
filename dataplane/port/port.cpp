#include "dataplane/port/port.h"

#include <rte_eth_bond.h>
#include <rte_eth_bond_8023ad.h>
#include <rte_ethdev.h>
#include <rte_errno.h>
#include <rte_log.h>

#include <cstring>

namespace rondo::dp {
namespace {

bool fail(std::string* err, const std::string& name, const char* what, int rc) {
  *err = "port " + name + ": " + what + ": " + rte_strerror(rc < 0 ? -rc : rc);
  return false;
}

constexpr char kBondDriver[] = "net_bonding";

bool is_bond(uint16_t port_id) {
  rte_eth_dev_info dev{};
  return rte_eth_dev_info_get(port_id, &dev) == 0 && dev.driver_name &&
         std::strcmp(dev.driver_name, kBondDriver) == 0;
}

std::string port_name(uint16_t port_id) {
  char name[RTE_ETH_NAME_MAX_LEN] = "?";
  rte_eth_dev_get_name_by_port(port_id, name);
  return name;
}

// "0 (net_tap0), 1 (net_tap1)", or "none".
std::string member_list(const std::vector<uint16_t>& ports) {
  std::string out;
  for (uint16_t p : ports) out += (out.empty() ? "" : ", ") + std::to_string(p) + " (" + port_name(p) + ")";
  return out.empty() ? "none" : out;
}

const char* mode_name(uint8_t mode) {
  switch (mode) {
    case BONDING_MODE_ROUND_ROBIN: return "round-robin";
    case BONDING_MODE_ACTIVE_BACKUP: return "active-backup";
    case BONDING_MODE_BALANCE: return "balance";
    case BONDING_MODE_BROADCAST: return "broadcast";
    case BONDING_MODE_8023AD: return "802.3ad";
    case BONDING_MODE_TLB: return "tlb";
    case BONDING_MODE_ALB: return "alb";
    default: return "?";
  }
}

std::vector<uint16_t> bond_members(uint16_t bond_id, bool active_only) {
  uint16_t ids[RTE_MAX_ETHPORTS];
  const int n = active_only ? rte_eth_bond_active_slaves_get(bond_id, ids, RTE_MAX_ETHPORTS)
                            : rte_eth_bond_slaves_get(bond_id, ids, RTE_MAX_ETHPORTS);
  return n > 0 ? std::vector<uint16_t>(ids, ids + n) : std::vector<uint16_t>{};
}

// Members whose LACP actor state is "distributing" (802.3ad: the member carries traffic).
std::vector<uint16_t> distributing(const BondInfo& b, uint16_t bond_id) {
  std::vector<uint16_t> out;
  for (uint16_t m : b.members) {
    struct rte_eth_bond_8023ad_slave_info si{};
    if (rte_eth_bond_8023ad_slave_info(bond_id, m, &si) == 0 && (si.actor_state & STATE_DISTRIBUTING))
      out.push_back(m);
  }
  return out;
}

void lacp_in_bursts(uint16_t port_id, const std::string& name, BondInfo* b, const char* why);

// After the bond's configure (which added its members), before its queues: the bond's
// shape, and for 802.3ad where its LACPDUs go.
bool bond_configured(uint16_t port_id, PortInfo* info, std::string* err) {
  BondInfo b;
  const int mode = rte_eth_bond_mode_get(port_id);
  if (mode < 0) return fail(err, info->name, "cannot read its bonding mode", mode);
  b.mode = static_cast<uint8_t>(mode);
  b.members = bond_members(port_id, false);
  if (b.members.empty()) {
    *err = "port " + info->name + ": bond without members (give them as slave=<device> in its --vdev)";
    return false;
  }
  if (b.mode == BONDING_MODE_8023AD) {
    // Dedicated queues: a queue pair per member with an rte_flow rule for the slow
    // protocol frames, which the PMD serves itself. Only where every member can filter
    // (real NICs); otherwise LACPDUs ride in the workers' bursts on the bond.
    if (rte_eth_bond_8023ad_dedicated_queues_enable(port_id) != 0)
      lacp_in_bursts(port_id, info->name, &b, "a member cannot filter slow frames");
  }
  info->bond = std::move(b);
  return true;
}

// A bond whose LACPDUs go through the workers' bursts (BondInfo::lacp_in_bursts).
void lacp_in_bursts(uint16_t port_id, const std::string& name, BondInfo* b, const char* why) {
  b->lacp_in_bursts = true;
  RTE_LOG(NOTICE, USER1,
          "port %u (%s): 802.3ad without dedicated queues (%s): LACPDUs go through the workers' "
          "bursts, at least every 100 ms\n", port_id, name.c_str(), why);
}

}  // namespace

void bond_prepare_members() {
  uint16_t pid;
  RTE_ETH_FOREACH_DEV(pid) {
    rte_eth_dev_info dev{};
    if (rte_eth_dev_info_get(pid, &dev) != 0 || !dev.driver_name || !dev.dev_flags) continue;
    if (std::strcmp(dev.driver_name, "net_tap") != 0 || !(*dev.dev_flags & RTE_ETH_DEV_INTR_LSC))
      continue;
    // net_tap (22.11, and upstream still) sets RTE_ETH_DEV_INTR_LSC, but its netlink handler
    // only refreshes the link and never raises the event: the bonding PMD trusts the flag,
    // waits for an event that never comes, and never fails over. Without the flag the bond
    // polls the member's link every lsc_poll_period_ms (10 ms by default), and net_tap reads
    // it from its kernel interface (IFF_UP and IFF_RUNNING). dev_flags points into the
    // port's data, set at probe and read by the bond when it takes the member (at configure):
    // nothing runs concurrently this early.
    *const_cast<uint32_t*>(dev.dev_flags) &= ~RTE_ETH_DEV_INTR_LSC;
    RTE_LOG(INFO, USER1, "port %u: net_tap's link is polled by a bond (the PMD raises no link events)\n", pid);
  }
}

std::vector<uint16_t> port_start_order() {
  std::vector<uint16_t> bonds, others;
  uint16_t pid;
  RTE_ETH_FOREACH_DEV(pid) (is_bond(pid) ? bonds : others).push_back(pid);
  bonds.insert(bonds.end(), others.begin(), others.end());
  return bonds;
}

std::optional<uint16_t> port_bond_of(uint16_t port_id) {
  uint16_t pid;
  RTE_ETH_FOREACH_DEV(pid) {
    if (pid == port_id || !is_bond(pid)) continue;
    for (uint16_t m : bond_members(pid, false))
      if (m == port_id) return pid;
  }
  return std::nullopt;
}

bool port_bond_watch(PortInfo* p) {
  if (!p->bond) return false;
  BondInfo& b = *p->bond;
  std::vector<uint16_t> active = bond_members(p->id, true);
  const int primary = rte_eth_bond_primary_get(p->id);
  std::vector<uint16_t> dist;
  if (b.mode == BONDING_MODE_8023AD) dist = distributing(b, p->id);
  const uint16_t prim = primary < 0 ? BondInfo::kNone : static_cast<uint16_t>(primary);
  if (active == b.active && prim == b.primary && dist == b.distributing) return false;
  std::string what = "members active: " + member_list(active) + " (were " + member_list(b.active) + ")";
  if (b.mode == BONDING_MODE_ACTIVE_BACKUP)
    what += "; sends on " + (prim == BondInfo::kNone ? std::string("none") : member_list({prim}));
  if (b.mode == BONDING_MODE_8023AD)
    what += "; distributing: " + member_list(dist) + " (were " + member_list(b.distributing) + ")";
  RTE_LOG(NOTICE, USER1, "port %u (%s): bond %s: %s\n", p->id, p->name.c_str(), mode_name(b.mode),
          what.c_str());
  b.active = std::move(active);
  b.primary = prim;
  b.distributing = std::move(dist);
  return true;
}

bool port_start(uint16_t port_id, const PortSetup& setup, PortInfo* info, std::string* err) {
  char name[RTE_ETH_NAME_MAX_LEN] = "?";
  rte_eth_dev_get_name_by_port(port_id, name);
  info->id = port_id;
  info->name = name;

  rte_eth_dev_info dev{};
  if (int rc = rte_eth_dev_info_get(port_id, &dev); rc != 0)
    return fail(err, info->name, "cannot read device info", rc);
  info->driver = dev.driver_name ? dev.driver_name : "?";
  info->if_index = dev.if_index;
  if (setup.n_queues > dev.max_rx_queues || setup.n_queues > dev.max_tx_queues) {
    *err = "port " + info->name + ": needs " + std::to_string(setup.n_queues) +
           " rx/tx queues (one per worker), device has " + std::to_string(dev.max_rx_queues) +
           "/" + std::to_string(dev.max_tx_queues) + " (net_af_packet: qpairs=N)";
    return false;
  }

  rte_eth_conf conf{};
  // RSS spreads client flows over the workers' queues; without it (virtual devices) one
  // queue per worker still works, and software steering hands packets to their owner.
  const uint64_t want_rss = RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP;
  if (setup.n_queues > 1 && (dev.flow_type_rss_offloads & want_rss)) {
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    conf.rx_adv_conf.rss_conf.rss_hf = dev.flow_type_rss_offloads & want_rss;
    info->rss = true;
  }
  if (int rc = rte_eth_dev_configure(port_id, setup.n_queues, setup.n_queues, &conf); rc != 0)
    return fail(err, info->name, "configure failed", rc);
  if (info->driver == kBondDriver && !bond_configured(port_id, info, err)) return false;

  uint16_t rx_desc = setup.rx_desc, tx_desc = setup.tx_desc;
  rte_eth_dev_adjust_nb_rx_tx_desc(port_id, &rx_desc, &tx_desc);
  const int socket = rte_eth_dev_socket_id(port_id);
  for (uint16_t q = 0; q < setup.n_queues; ++q) {
    if (int rc = rte_eth_rx_queue_setup(port_id, q, rx_desc, socket, nullptr, setup.pool); rc != 0)
      return fail(err, info->name, "rx queue setup failed", rc);
    if (int rc = rte_eth_tx_queue_setup(port_id, q, tx_desc, socket, nullptr); rc != 0)
      return fail(err, info->name, "tx queue setup failed", rc);
  }
  if (int rc = rte_eth_dev_start(port_id); rc != 0) {
    // 802.3ad with dedicated queues: a member whose rte_flow validated the slow-frame rule
    // may still refuse to create it (net_tap on a kernel without the flower classifier),
    // and the bond does not start. Once more without them (the members are reconfigured).
    if (!info->bond || info->bond->mode != BONDING_MODE_8023AD || info->bond->lacp_in_bursts ||
        rte_eth_bond_8023ad_dedicated_queues_disable(port_id) != 0 ||
        (rc = rte_eth_dev_start(port_id)) != 0)
      return fail(err, info->name, "start failed", rc);
    lacp_in_bursts(port_id, info->name, &*info->bond, "a member refused the slow-frame rule at start");
  }
  // Not promiscuous: VIP traffic and ARP replies are addressed to our MAC. Devices that
  // see every frame anyway (af_packet) are covered by the pipeline's own MAC check.

  rte_ether_addr mac;
  if (int rc = rte_eth_macaddr_get(port_id, &mac); rc != 0)
    return fail(err, info->name, "cannot read MAC address", rc);
  std::memcpy(info->mac.data(), mac.addr_bytes, 6);
  info->n_queues = setup.n_queues;
  if (info->bond)
    RTE_LOG(NOTICE, USER1, "port %u (%s): bond %s of %s\n", port_id, info->name.c_str(),
            mode_name(info->bond->mode), member_list(info->bond->members).c_str());
  return true;
}

void port_stop_all(const std::vector<PortInfo>& ports) {
  for (const auto& p : ports) {
    rte_eth_dev_stop(p.id);
    rte_eth_dev_close(p.id);
  }
}

api::PortStats port_stats(const PortInfo& p) {
  api::PortStats out;
  out.port_id = p.id;
  out.name = p.name;
  rte_eth_stats st{};
  if (rte_eth_stats_get(p.id, &st) == 0) {
    out.ipackets = st.ipackets;
    out.opackets = st.opackets;
    out.ibytes = st.ibytes;
    out.obytes = st.obytes;
    out.imissed = st.imissed;
    out.ierrors = st.ierrors;
    out.oerrors = st.oerrors;
    out.rx_nombuf = st.rx_nombuf;
  }
  return out;
}

}  // namespace rondo::dp
