// rondo-gen options (after the EAL arguments and "--").
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

namespace rondo::gen {

/// An IPv4 prefix, host byte order.
struct Ipv4Net {
  uint32_t base = 0;
  uint8_t len = 32;
  uint32_t mask() const { return len == 0 ? 0 : ~0u << (32 - len); }
  bool contains(uint32_t ip) const { return (ip & mask()) == base; }
  /// Number of addresses in the prefix (2^32 is reported as UINT32_MAX).
  uint32_t size() const { return len == 0 ? UINT32_MAX : 1u << (32 - len) ; }
};

enum class Mode : uint8_t {
  kTcp,       // TCP flows: SYN -> SYN-ACK -> ACK -> data [-> FIN, then a new connection]
  kUdp,       // UDP flows: data only
  kSynFlood,  // SYNs from random sources in --flood-net that never complete
  kMixed,     // kTcp flows plus a SYN flood at --flood-rate alongside
};

struct Options {
  Mode mode = Mode::kTcp;
  uint16_t port = 0;             // ethdev port id
  uint32_t flows = 1000;         // concurrent flows (connection slots)
  double rate = 0;               // primary packets (or connections) per second; 0: max
  double flood_rate = 0;         // kMixed: flood SYNs per second; 0: max
  double duration_s = 10;        // measure window
  bool warmup = false;           // establish every flow before measuring
  double warmup_timeout_s = 60;
  uint32_t size = 64;            // frame size on the wire, FCS included
  uint32_t vip_ip = 0;           // host order
  uint16_t vip_port = 80;
  Ipv4Net client_net;            // client addresses, taken in order
  uint16_t client_port_lo = 1024;
  uint16_t client_port_hi = 65535;
  Ipv4Net backend_net;           // packets to these addresses reach "the backends"
  Ipv4Net flood_net;             // spoofed SYN flood sources
  uint32_t gateway_ip = 0;       // also answered in ARP (the middle's next hop), 0: none
  std::array<uint8_t, 6> dst_mac{};  // the middle box's MAC
  bool dst_mac_set = false;
  int32_t data_per_conn = -1;    // -1: flows stay open; K >= 0: K data packets, then FIN
  bool echo = false;             // backends answer every data packet (reply path + RTT)
  bool dsr = false;              // backend replies go straight to the client, not on the wire
  uint16_t gue_port = 6080;      // UDP port of GUE-encapsulated DSR traffic
  uint32_t window = 512;         // packets in flight at most (both classes together)
  double syn_timeout_ms = 500;   // a SYN not answered by then is retried (tcp flows) or dropped
  uint32_t burst = 32;
  uint32_t mbufs = 32768;
  uint16_t rx_desc = 1024;
  uint16_t tx_desc = 1024;
  uint64_t seed = 1;
  bool json = false;
  bool progress = false;
  std::string exec_before;       // run (sh -c) with traffic paused, before the measure window
  std::string exec_after;        // ... and after it
};

/// Parse the application arguments; nullopt with *exit_code set on error or --help.
std::optional<Options> parse_options(int argc, char** argv, int* exit_code);

const char* mode_name(Mode m);

}  // namespace rondo::gen
