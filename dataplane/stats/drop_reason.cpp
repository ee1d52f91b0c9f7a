#include "dataplane/stats/drop_reason.h"

#include <array>

namespace rondo::dp {
namespace {

constexpr std::array<std::string_view, kDropReasonCount> kNames = {
    "malformed_l2",     "malformed_arp",  "malformed_l3", "malformed_l4",  "unsupported_l3",
    "unsupported_l4",   "ip_fragment",    "ttl_exceeded", "not_for_vip",   "no_service",
    "icmp_unsupported", "arp_not_for_us", "no_state",     "no_backend",    "no_local_port",
    "table_full",       "tcp_no_flow",    "reply_no_flow", "neigh_unresolved", "no_route",
    "tx_full",          "multi_segment",    "not_our_mac",
    "steer_full",       "bad_ip_checksum",  "martian_source", "port_zero",
    "bad_tcp_flags",    "bad_l4_checksum",  "bad_source_mac", "rate_limited",
    "arp_bad_sender",   "tcp_out_of_window", "vlan_mismatch", "syncookie_invalid",
    "arp_queue_full",   "gso_frame",        "proxy_header_lost", "no_mbuf",
    "encap_too_big",    "no_headroom",      "icmp_no_flow",
    "ipv6_ext_chain",   "ipv6_bad_option",  "ipv6_routing_type0", "ipv6_routing_header",
    "ndp_invalid",      "ndp_not_for_us",   "ndp_ignored",  "icmp_untranslatable",
    "egress_too_big",
    "frag_table_full",  "frag_invalid",     "frag_too_big",  "frag_duplicate",
};

}  // namespace

std::string_view drop_reason_name(DropReason r) {
  auto i = static_cast<uint32_t>(r);
  return i < kNames.size() ? kNames[i] : "unknown";
}

}  // namespace rondo::dp
