#include "dataplane/port/steering.h"

#include <netinet/in.h>
#include <rte_byteorder.h>
#include <rte_flow.h>

#include <algorithm>
#include <cstring>

namespace rondo::dp {
namespace {

// The pieces of one rte_flow rule, kept together so the pointers inside stay valid.
struct FlowSpec {
  rte_flow_attr attr{};
  rte_flow_item_ipv4 ip_spec{}, ip_mask{};
  rte_flow_item_ipv6 ip6_spec{}, ip6_mask{};
  rte_flow_item_tcp tcp_spec{}, tcp_mask{};
  rte_flow_item_udp udp_spec{}, udp_mask{};
  rte_flow_action_queue queue{};
  rte_flow_item pattern[4]{};
  rte_flow_action actions[2]{};

  explicit FlowSpec(const SteeringRule& r) {
    attr.ingress = 1;
    pattern[0].type = RTE_FLOW_ITEM_TYPE_ETH;
    if (r.v6) {
      std::memcpy(ip6_spec.hdr.dst_addr, r.local_ip6.b, 16);
      std::memset(ip6_mask.hdr.dst_addr, 0xff, 16);
      pattern[1].type = RTE_FLOW_ITEM_TYPE_IPV6;
      pattern[1].spec = &ip6_spec;
      pattern[1].mask = &ip6_mask;
    } else {
      ip_spec.hdr.dst_addr = r.local_ip;
      ip_mask.hdr.dst_addr = RTE_BE32(0xffffffff);
      pattern[1].type = RTE_FLOW_ITEM_TYPE_IPV4;
      pattern[1].spec = &ip_spec;
      pattern[1].mask = &ip_mask;
    }
    if (r.proto == IPPROTO_TCP) {
      tcp_spec.hdr.dst_port = rte_cpu_to_be_16(r.port_spec);
      tcp_mask.hdr.dst_port = rte_cpu_to_be_16(r.port_mask);
      pattern[2].type = RTE_FLOW_ITEM_TYPE_TCP;
      pattern[2].spec = &tcp_spec;
      pattern[2].mask = &tcp_mask;
    } else {
      udp_spec.hdr.dst_port = rte_cpu_to_be_16(r.port_spec);
      udp_mask.hdr.dst_port = rte_cpu_to_be_16(r.port_mask);
      pattern[2].type = RTE_FLOW_ITEM_TYPE_UDP;
      pattern[2].spec = &udp_spec;
      pattern[2].mask = &udp_mask;
    }
    pattern[3].type = RTE_FLOW_ITEM_TYPE_END;
    queue.index = r.queue;
    actions[0].type = RTE_FLOW_ACTION_TYPE_QUEUE;
    actions[0].conf = &queue;
    actions[1].type = RTE_FLOW_ACTION_TYPE_END;
  }
};

}  // namespace

std::vector<SteeringRule> steering_rules(const std::vector<uint32_t>& local_ips,
                                         const PortOwnership& own,
                                         const std::vector<Ip6>& local_ips6) {
  std::vector<SteeringRule> out;
  auto add = [&](SteeringRule base) {
    for (uint8_t proto : {uint8_t{IPPROTO_TCP}, uint8_t{IPPROTO_UDP}})
      for (uint32_t r = 0; r <= own.mask(); ++r) {
        base.proto = proto;
        base.port_spec = static_cast<uint16_t>(r);
        base.port_mask = own.mask();
        base.queue = static_cast<uint16_t>(own.owner(static_cast<uint16_t>(r)));
        out.push_back(base);
      }
  };
  for (uint32_t ip : local_ips) add(SteeringRule{.local_ip = ip});
  for (const Ip6& ip : local_ips6) add(SteeringRule{.v6 = true, .local_ip6 = ip});
  return out;
}

NicSteering::~NicSteering() {
  for (auto& [rule, flow] : rules_) {
    rte_flow_error e;
    rte_flow_destroy(port_id_, flow, &e);
  }
}

bool NicSteering::probe(uint16_t n_queues, std::string* why) {
  // A representative rule: a documentation address (RFC 5737; RFC 3849 for IPv6), the
  // last queue.
  PortOwnership own(n_queues);
  SteeringRule r{.local_ip = RTE_BE32(0xc0000201), .proto = IPPROTO_TCP, .port_spec = 0,
                 .port_mask = own.mask(), .queue = static_cast<uint16_t>(n_queues - 1)};
  auto valid = [&](const SteeringRule& rule, rte_flow_error* e) {
    FlowSpec f(rule);
    return rte_flow_validate(port_id_, &f.attr, f.pattern, f.actions, e) == 0;
  };
  rte_flow_error e{};
  if (!valid(r, &e)) {
    *why = e.message ? e.message : "rte_flow not supported";
    return false;
  }
  r.v6 = true;
  r.local_ip6.b[0] = 0x20;
  r.local_ip6.b[1] = 0x01;
  r.local_ip6.b[2] = 0x0d;
  r.local_ip6.b[3] = 0xb8;  // 2001:db8::1
  r.local_ip6.b[15] = 1;
  v6_ = valid(r, &e);
  return true;
}

bool NicSteering::apply(const std::vector<uint32_t>& local_ips, const PortOwnership& own,
                        std::string* err, const std::vector<Ip6>& local_ips6) {
  const auto want = steering_rules(local_ips, own, v6_ ? local_ips6 : std::vector<Ip6>{});
  rte_flow_error e{};
  // Remove rules no longer wanted.
  for (auto it = rules_.begin(); it != rules_.end();) {
    if (std::find(want.begin(), want.end(), it->first) == want.end()) {
      rte_flow_destroy(port_id_, it->second, &e);
      it = rules_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& r : want) {
    if (std::any_of(rules_.begin(), rules_.end(), [&](const auto& p) { return p.first == r; }))
      continue;
    FlowSpec f(r);
    rte_flow* flow = rte_flow_create(port_id_, &f.attr, f.pattern, f.actions, &e);
    if (!flow) {
      *err = std::string("rte_flow_create: ") + (e.message ? e.message : "failed");
      return false;
    }
    rules_.emplace_back(r, flow);
  }
  return true;
}

}  // namespace rondo::dp
