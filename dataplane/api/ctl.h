// rondo control protocol: the messages between rondo-controlplane (client) and
// rondo-dataplane (server) over a local unix stream socket.
//
// Wire format (all integers little-endian, as both ends run on the same host):
//   frame   = MsgHeader | payload[header.length]
//   payload = a message body encoded by the encode_* functions below.
// Every decode_* function validates counts and lengths against the payload size and
// returns std::nullopt with a reason instead of reading past the end: a malformed
// message is answered with kError and changes nothing.
#pragma once

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace rondo::api {

inline constexpr uint32_t kMagic = 0x4f444e52;  // "RNDO" read as little-endian bytes
// 2: consumed/steered counters; 3: originated; 4: lcore counters described on the wire;
// 7: per-VIP syncookies; 8: inspect (flows, trace, drop samples); 9: backends' Maglev table
// entries in the stats; 10: per-VIP proxy_protocol; 11: DSR modes and per-VIP on_all_down;
// 13: every address is 16 bytes (api::Addr), IPv6 in the state, the filter and flow listings;
// 14: interfaces (a port + an optional VLAN): State::interfaces, routes and neighbours name an
// interface, Stats::interfaces, DataplaneInfo::mtu, TraceRecord::iface
inline constexpr uint16_t kVersion = 14;
inline constexpr uint32_t kMaxPayload = 16u << 20;
inline constexpr uint32_t kMaxBackendId = 65535;  // ids index per-lcore counter arrays
inline constexpr uint32_t kMaxVipId = 4095;
inline constexpr uint32_t kMaxInterfaces = 256;  // ids 0-255 index per-lcore counter arrays

enum class MsgType : uint16_t {
  kHello = 1,       // cp -> dp: empty body
  kHelloReply = 2,  // dp -> cp: DataplaneInfo
  kSetState = 3,    // cp -> dp: State (the whole desired state, replaces the previous one)
  kSetStateReply = 4,  // dp -> cp: Ack
  kGetStats = 5,    // cp -> dp: empty body
  kStatsReply = 6,  // dp -> cp: Stats
  kError = 7,       // dp -> cp: Ack with ok = false
  kInspect = 8,     // cp -> dp: InspectRequest (flows, trace, drop samples)
  kInspectReply = 9,  // dp -> cp: InspectReply
  kRestart = 10,    // cp -> dp: empty body. Stop forwarding, keep the flows (--flow-dir), exec
                    // the binary again (docs/operations.md, "Restart and upgrade")
  kRestartReply = 11,  // dp -> cp: Ack, sent before the process stops
};

#pragma pack(push, 1)
struct MsgHeader {
  uint32_t magic;
  uint16_t version;
  uint16_t type;    // MsgType
  uint32_t length;  // payload bytes after this header
  uint32_t seq;     // echoed in the reply
};
#pragma pack(pop)
static_assert(sizeof(MsgHeader) == 16);

enum class Proto : uint8_t { kTcp = 6, kUdp = 17 };
// Forwarding modes (docs/modes.md). Wire values; a new mode takes the next one.
//   fullnat: DNAT to the backend + SNAT to a local ip:port; replies come back through rondo.
//   ipip:    the client's packet in an outer IPv4 header to the backend (IPPROTO_IPIP);
//            the backend decapsulates and answers the client directly from the VIP.
//   gue:     the same in UDP + a GUE header (variant 0, proto 4) to port 6080 (Linux fou).
//   l2dsr:   the client's packet unchanged but for the destination MAC (the backend's, which
//            must be on-link); the backend has the VIP on its loopback.
enum class Mode : uint8_t { kFullNat = 1, kIpip = 2, kGue = 3, kL2Dsr = 4 };
/// Every mode by its config name (the one list config, state file, API and rondoctl walk).
struct ModeName {
  Mode mode;
  const char* name;
};
inline constexpr ModeName kModeNames[] = {
    {Mode::kFullNat, "fullnat"},
    {Mode::kIpip, "ipip"},
    {Mode::kGue, "gue"},
    {Mode::kL2Dsr, "l2dsr"},
};
inline bool known_mode(uint8_t v) {
  for (const auto& m : kModeNames)
    if (static_cast<uint8_t>(m.mode) == v) return true;
  return false;
}
/// Direct server return: replies do not cross rondo (every mode but full-NAT).
inline bool is_dsr(Mode m) { return m != Mode::kFullNat; }
/// The UDP port GUE packets are sent to (Linux: `ip fou add port 6080 gue`).
inline constexpr uint16_t kGuePort = 6080;
// What a VIP does with a new connection when none of its backends is eligible because all
// are down (failed health checks): drop it (no_backend), or fail open: schedule it over the
// backends that are down (not the drained ones, nor weight 0), counted (fail_open_flows).
enum class OnAllDown : uint8_t { kDrop = 0, kOpen = 1 };
// Wire values; a new scheduler takes the next one (docs/controlplane.md, "Schedulers").
enum class Sched : uint8_t {
  kRoundRobin = 1,
  kWeightedRoundRobin = 2,
  kMaglev = 3,
  kSourceHash = 4,
  kLeastConn = 5,
};
// A new value changes no byte of the format (kVersion stays): a dataplane that does not know
// it refuses the state naming it ("state: unknown scheduler N") and keeps the one it has.
/// Every scheduler by its config name: the one list the codec, validation, the config file,
/// the state file, the API and rondoctl walk. A new scheduler is a value above and a row here.
struct SchedName {
  Sched sched;
  const char* name;
};
inline constexpr SchedName kSchedNames[] = {
    {Sched::kRoundRobin, "rr"},
    {Sched::kWeightedRoundRobin, "wrr"},
    {Sched::kMaglev, "maglev"},
    {Sched::kSourceHash, "sh"},
    {Sched::kLeastConn, "lc"},
};
/// Whether v is the wire value of a scheduler this build knows.
inline bool known_sched(uint8_t v) {
  for (const auto& s : kSchedNames)
    if (static_cast<uint8_t>(s.sched) == v) return true;
  return false;
}
// SYN cookies for a TCP VIP (docs/security.md, "SYN cookies"): never, always, or when the
// worker sees a SYN flood.
enum class SynCookies : uint8_t { kOff = 0, kOn = 1, kAuto = 2 };
// PROXY protocol for a full-NAT TCP VIP (dataplane/fwd/proxy_v2.h): none, or a v2 header at the
// start of every backend-bound stream.
enum class ProxyProtocol : uint8_t { kOff = 0, kV2 = 1 };

/// Address family of an Addr.
enum class Family : uint8_t { kV4 = 4, kV6 = 6 };

/// An IPv4 or IPv6 address: 16 bytes in network order, IPv4 written IPv4-mapped
/// (::ffff:a.b.c.d, RFC 4291 2.5.5.2). The mapped range therefore *is* IPv4 here: an IPv6
/// address inside ::ffff:0:0/96 cannot be expressed (parse_addr refuses it written as v6).
/// All zero (::, the default) means "none" where a field allows it (Route::via, FlowFilter).
/// On the wire: the 16 bytes as they are.
struct Addr {
  std::array<uint8_t, 16> b{};

  // Not an aggregate on purpose: `Addr a = {some_uint32}` would brace-elide into b[0].
  constexpr Addr() = default;
  explicit constexpr Addr(const std::array<uint8_t, 16>& bytes) : b(bytes) {}

  /// The IPv4-mapped address of `host` (host byte order).
  static constexpr Addr from_v4(uint32_t host) {
    Addr a;
    a.b[10] = a.b[11] = 0xff;
    a.b[12] = static_cast<uint8_t>(host >> 24);
    a.b[13] = static_cast<uint8_t>(host >> 16);
    a.b[14] = static_cast<uint8_t>(host >> 8);
    a.b[15] = static_cast<uint8_t>(host);
    return a;
  }
  /// Whether this is an IPv4 address (::ffff:0:0/96).
  constexpr bool is_v4() const {
    for (int i = 0; i < 10; ++i)
      if (b[i] != 0) return false;
    return b[10] == 0xff && b[11] == 0xff;
  }
  constexpr Family family() const { return is_v4() ? Family::kV4 : Family::kV6; }
  /// The last 4 bytes in host order: the IPv4 address if is_v4(); 0 for the unset address.
  constexpr uint32_t v4() const {
    return uint32_t{b[12]} << 24 | uint32_t{b[13]} << 16 | uint32_t{b[14]} << 8 | b[15];
  }
  /// All zero (::): "none" (no next hop, any address in a filter).
  constexpr bool is_zero() const {
    for (uint8_t x : b)
      if (x != 0) return false;
    return true;
  }
  constexpr auto operator<=>(const Addr&) const = default;
  constexpr bool operator==(const Addr&) const = default;
};
static_assert(sizeof(Addr) == 16);

/// Text form: dotted quad for IPv4, RFC 5952 for IPv6 (inet_ntop), "::" for the unset address.
std::string format_addr(const Addr& a);
/// Either family's text form. IPv6 text inside ::ffff:0:0/96 is refused (write it as IPv4);
/// nullopt on anything that is not an address.
std::optional<Addr> parse_addr(std::string_view s);
/// "10.0.0.1:80", "[2001:db8::10]:80" (RFC 5952 section 6).
std::string format_endpoint(const Addr& a, uint16_t port);
struct Endpoint {
  Addr ip;
  uint16_t port = 0;
  bool operator==(const Endpoint&) const = default;
};
/// "a.b.c.d:port" or "[v6]:port", port 0-65535; nullopt on anything else (a bare v6 address
/// with a port is ambiguous and refused).
std::optional<Endpoint> parse_endpoint(std::string_view s);

// Addresses are api::Addr (either family); ports in host order.
struct Backend {
  uint32_t id = 0;  // stable across snapshots; flows and counters refer to it
  Addr ip;
  uint16_t port = 0;
  uint16_t weight = 1;
  bool drained = false;  // no new flows; existing flows keep going
  bool down = false;     // failed health check: no new flows
  bool operator==(const Backend&) const = default;
};

struct Vip {
  uint32_t id = 0;  // stable across snapshots; per-lcore scheduler state refers to it
  Addr ip;
  uint16_t port = 0;
  Proto proto = Proto::kTcp;
  Mode mode = Mode::kFullNat;
  Sched sched = Sched::kRoundRobin;
  SynCookies syncookies = SynCookies::kOff;
  ProxyProtocol proxy_protocol = ProxyProtocol::kOff;
  OnAllDown on_all_down = OnAllDown::kDrop;
  std::vector<Backend> backends;
  bool operator==(const Vip&) const = default;
};

/// An address with a prefix length (an interface's address and its subnet).
struct Prefix {
  Addr addr;
  uint8_t len = 0;  // 0-32 (IPv4), 0-128 (IPv6)
  bool operator==(const Prefix&) const = default;
};

/// A port plus an optional 802.1Q VLAN: what routes and neighbours name. No interfaces in the
/// state = the implicit ones: one untagged interface per port, id = port id, mtu --mtu.
struct Interface {
  uint16_t id = 0;  // 0 to kMaxInterfaces - 1, stable by name (per-interface counters)
  std::string name;
  uint16_t port_id = 0;
  uint16_t vlan = 0;  // 0: untagged; 1-4094: the VID
  uint32_t mtu = 0;   // 0: the dataplane's --mtu
  std::vector<Prefix> addresses;
  bool operator==(const Interface&) const = default;
};

struct Route {
  Addr prefix;             // its family is the route's
  uint8_t prefix_len = 0;  // 0-32 (IPv4), 0-128 (IPv6)
  uint16_t iface = 0;      // Interface::id (implicit interfaces: the port id)
  Addr via;  // unset (::): destinations are on-link; else the prefix's family (v6: may be fe80::/10)
  bool operator==(const Route&) const = default;
};

struct Neighbour {
  Addr ip;
  uint8_t mac[6] = {};
  uint16_t iface = 0;  // Interface::id (implicit interfaces: the port id)
  bool operator==(const Neighbour&) const = default;
};

struct Timeouts {
  uint32_t tcp_syn_ms = 10'000;          // SYN seen, handshake not finished
  uint32_t tcp_established_ms = 900'000;
  uint32_t tcp_closing_ms = 10'000;      // FINs from both sides, not both acknowledged
  uint32_t udp_ms = 30'000;
  uint32_t tcp_time_wait_ms = 10'000;    // both FINs acknowledged (late retransmissions)
  uint32_t tcp_reset_ms = 2'000;         // an RST with exactly the expected sequence number
  // Not a flow timeout: how long a (local ip:port, backend ip:port) tuple is not reused after
  // its connection ended. Longer than the backends' TIME_WAIT (60 s on Linux).
  uint32_t port_quarantine_ms = 60'000;
  bool operator==(const Timeouts&) const = default;
};

/// Every timeout, by its config name (the state file and the API add "_ms"). The one list
/// the codec, validation, the config parser, the state file and diffs walk: a new timeout is
/// a member above and a row here.
struct TimeoutField {
  const char* name;
  uint32_t Timeouts::*ms;
};
inline constexpr TimeoutField kTimeoutFields[] = {
    {"tcp_syn", &Timeouts::tcp_syn_ms},
    {"tcp_established", &Timeouts::tcp_established_ms},
    {"tcp_closing", &Timeouts::tcp_closing_ms},
    {"tcp_time_wait", &Timeouts::tcp_time_wait_ms},
    {"tcp_reset", &Timeouts::tcp_reset_ms},
    {"udp", &Timeouts::udp_ms},
    {"port_quarantine", &Timeouts::port_quarantine_ms},
};

struct State {
  uint64_t generation = 0;
  std::vector<Vip> vips;
  std::vector<Addr> local_ips;  // full-NAT source addresses owned by the dataplane
  std::vector<Interface> interfaces;  // empty: one untagged interface per port (id = port)
  std::vector<Route> routes;        // empty: everything is on-link on the first interface
  std::vector<Neighbour> neighbours;  // static entries; the rest is learned by ARP
  Timeouts timeouts;
  bool operator==(const State&) const = default;
};

/// DataplaneInfo::start_kind by value, as the API, the metrics' `kind` label and the logs
/// name it: the one list (the codec refuses a value past it).
inline constexpr const char* kStartKindNames[] = {"fresh", "planned", "crash"};
inline constexpr uint8_t kStartFresh = 0, kStartPlanned = 1, kStartCrash = 2;

struct DataplaneInfo {
  uint32_t pid = 0;
  uint32_t n_workers = 0;
  uint32_t n_ports = 0;
  uint32_t n_drop_reasons = 0;
  uint64_t instance = 0;  // random per process start: a new value means the dataplane restarted
  uint64_t generation = 0;  // generation of the state it forwards with (0: none yet)
  // What this process took over at start from the one before it (--flow-dir,
  // docs/operations.md "Restart and upgrade"): flows adopted and discarded over all workers,
  // and how it started: 0 fresh (no files, or files refused), 1 after a planned restart
  // (`rondoctl dataplane restart`), 2 after a crash (the previous process did not stop cleanly).
  uint64_t adopted_flows = 0;
  uint64_t discarded_flows = 0;
  uint8_t start_kind = 0;  // index of kStartKindNames
  // Time without forwarding, from the previous process's last forwarding to this one's
  // first (planned restart: measured; crash: an upper bound from the previous process's last
  // ageing sweep). 0 on a fresh start.
  uint32_t gap_ms = 0;
  uint32_t mtu = 0;  // --mtu: the ports' MTU and every interface's default
  bool operator==(const DataplaneInfo&) const = default;
};

struct Ack {
  bool ok = true;
  uint64_t generation = 0;
  std::string message;
  bool operator==(const Ack&) const = default;
};

/// A per-lcore counter as the dataplane describes it (its table: dataplane/stats/counters.h).
/// Readers render every counter from its description, so adding one is one line there.
struct CounterDesc {
  std::string name;    // key in JSON and text output, e.g. "rx_packets"
  std::string metric;  // Prometheus family, e.g. "rondo_lcore_rx_packets_total"
  std::string help;
  bool gauge = false;  // false: a counter (only grows)
  bool operator==(const CounterDesc&) const = default;
};

struct LcoreStats {
  uint32_t lcore_id = 0;
  std::vector<uint64_t> counters;  // indexed like Stats::counters
  std::vector<uint64_t> drops;     // indexed by rondo::dp::DropReason (Stats::drop_names)
  bool operator==(const LcoreStats&) const = default;
};

struct BackendStats {
  uint32_t id = 0;
  uint64_t packets = 0;  // both directions
  uint64_t bytes = 0;
  uint64_t connections = 0;  // new flows scheduled to it
  uint64_t active_flows = 0;
  uint64_t quarantined = 0;    // tuples of its ended connections not reusable yet
  uint64_t port_capacity = 0;  // (local ip, local port) pairs it may have at once, all workers
  // maglev and sh VIPs: entries of the VIP's lookup table the backend owns in the snapshot in
  // force, and the table's size (0: the backend's VIP has no table).
  uint64_t table_entries = 0;
  uint64_t table_size = 0;
  bool operator==(const BackendStats&) const = default;
};

struct PortStats {
  uint16_t port_id = 0;
  std::string name;
  uint64_t ipackets = 0, opackets = 0, ibytes = 0, obytes = 0;
  uint64_t imissed = 0, ierrors = 0, oerrors = 0, rx_nombuf = 0;
  bool operator==(const PortStats&) const = default;
};

/// One interface's traffic, summed over lcores (rx: classified to it; tx: queued on it).
struct IfaceStats {
  uint16_t id = 0;
  std::string name;
  uint16_t port_id = 0;
  uint16_t vlan = 0;
  uint32_t mtu = 0;
  uint64_t rx_packets = 0, rx_bytes = 0, tx_packets = 0, tx_bytes = 0;
  bool operator==(const IfaceStats&) const = default;
};

struct Stats {
  uint64_t generation = 0;
  std::vector<CounterDesc> counters;    // what LcoreStats::counters hold, in order
  std::vector<std::string> drop_names;  // names of LcoreStats::drops, in order
  std::vector<LcoreStats> lcores;
  // Summed over lcores; only ids that were seen or that own entries of a Maglev table.
  std::vector<BackendStats> backends;
  std::vector<PortStats> ports;
  std::vector<IfaceStats> interfaces;
  bool operator==(const Stats&) const = default;

  /// The value of lcore counter `name` in `l`; 0 if this dataplane has no such counter.
  uint64_t value(const LcoreStats& l, std::string_view name) const;
};

// ---- Inspection (docs/operations.md, "Debugging a flow"): what the workers hold and do.

enum class InspectOp : uint8_t {
  kFlows = 1,       // list the flows matching `filter`, a page from `cursor`
  kFlowDelete = 2,  // remove the flows matching `filter` (a page's worth from `cursor`)
  kTraceStart = 3,  // arm a trace in every worker: the next `limit` packets matching
  kTraceRead = 4,   // take the trace records collected so far (and whether it is still armed)
  kTraceStop = 5,   // disarm, and take what is left
  kDrops = 6,       // the recent dropped packets the workers sampled (all reasons, or `reason`)
};
inline constexpr uint32_t kMaxFlowPage = 1000;
inline constexpr uint32_t kMaxTracePackets = 10000;
inline constexpr uint32_t kMaxTraceSeconds = 3600;

/// Which flows (or traced packets) a request is about: every non-zero field must match;
/// zero (an unset Addr) means any. Client and vip are the client side's key (client -> vip),
/// backend and local the backend side's (backend -> local ip:port). Ports in host order.
struct FlowFilter {
  Addr client_ip;
  uint16_t client_port = 0;
  Addr vip_ip;
  uint16_t vip_port = 0;
  uint8_t proto = 0;  // 6, 17, or 0
  Addr backend_ip;
  uint16_t backend_port = 0;
  Addr local_ip;
  uint16_t local_port = 0;
  bool operator==(const FlowFilter&) const = default;
};

struct InspectRequest {
  InspectOp op = InspectOp::kFlows;
  FlowFilter filter;
  uint32_t limit = 100;  // flows: page size; trace: packets; drops: samples per reason
  uint64_t cursor = 0;   // flows: 0 at first, then InspectReply::next_cursor
  uint32_t seconds = 0;  // trace: how long it stays armed
  uint32_t reason = UINT32_MAX;  // drops: a drop reason index, or UINT32_MAX for all
  bool operator==(const InspectRequest&) const = default;
};

struct FlowInfo {
  uint32_t lcore = 0;  // the worker that owns it
  uint8_t proto = 0;
  Addr client_ip, vip_ip, backend_ip, local_ip;
  uint16_t client_port = 0, vip_port = 0, backend_port = 0, local_port = 0;
  uint32_t backend_id = 0, vip_id = 0;
  std::string state;         // "established", "syn_sent", ...
  uint64_t age_ms = 0;       // since it was created (0 without flow meters)
  uint64_t expires_ms = 0;   // until it expires unless traffic keeps it
  bool metered = false;      // the counts below are kept (--flow-meters)
  uint64_t packets_in = 0, bytes_in = 0;    // client -> backend
  uint64_t packets_out = 0, bytes_out = 0;  // backend -> client
  bool operator==(const FlowInfo&) const = default;
};

/// One traced packet: what it was, and what each step made of it.
struct TraceRecord {
  uint32_t lcore = 0;
  uint64_t at_us = 0;  // since the trace was armed
  uint16_t in_port = 0;
  bool steered = false;  // handed over by another worker
  std::string packet;    // the frame as received, one line
  std::string kind;      // client, reply, arp, icmp, other
  std::string flow;      // new, hit, miss, "" (not a flow packet)
  std::string backend;   // the flow's backend ip:port (new: the scheduler's choice), or ""
  std::string state;     // the flow's state after the packet, or ""
  std::string verdict;   // tx, drop, steer, to_main, consumed
  std::string reason;    // drop: the named reason
  std::string out;       // tx: the frame as sent (rewritten), one line
  uint16_t out_port = 0;  // tx: port; steer: the owning worker
  uint16_t iface = 0;     // the interface the packet came in on (classify's answer)
  bool operator==(const TraceRecord&) const = default;
};

/// One dropped packet a worker kept as an example of its reason.
struct DropSample {
  uint32_t lcore = 0;
  std::string reason;
  uint64_t ago_ms = 0;
  uint16_t in_port = 0;
  uint32_t len = 0;
  std::string packet;  // one line
  std::string hex;     // the first bytes kept (up to 128), hex
  bool operator==(const DropSample&) const = default;
};

struct InspectReply {
  std::vector<FlowInfo> flows;
  uint64_t next_cursor = 0;  // flows/delete: where the next page starts; 0: nothing after
  uint64_t scanned = 0;      // flow records looked at
  uint64_t deleted = 0;
  bool armed = false;        // trace: still armed in some worker
  std::vector<TraceRecord> trace;
  std::vector<DropSample> drops;
  bool operator==(const InspectReply&) const = default;
};

std::vector<uint8_t> encode_inspect_request(const InspectRequest& r);
std::optional<InspectRequest> decode_inspect_request(std::span<const uint8_t> p, std::string* err);
std::vector<uint8_t> encode_inspect_reply(const InspectReply& r);
std::optional<InspectReply> decode_inspect_reply(std::span<const uint8_t> p, std::string* err);

/// Build a frame: header (with magic, version, type, seq) followed by the payload.
std::vector<uint8_t> frame(MsgType type, uint32_t seq, std::span<const uint8_t> payload);
/// Check a received header; returns an error text, or empty if it is acceptable.
std::string check_header(const MsgHeader& h);

std::vector<uint8_t> encode_state(const State& s);
std::optional<State> decode_state(std::span<const uint8_t> p, std::string* err);
// The semantic checks a decoded State must pass are in validate.h (check_state).

std::vector<uint8_t> encode_info(const DataplaneInfo& i);
std::optional<DataplaneInfo> decode_info(std::span<const uint8_t> p, std::string* err);

std::vector<uint8_t> encode_ack(const Ack& a);
std::optional<Ack> decode_ack(std::span<const uint8_t> p, std::string* err);

std::vector<uint8_t> encode_stats(const Stats& s);
std::optional<Stats> decode_stats(std::span<const uint8_t> p, std::string* err);

/// Blocking helpers on a connected stream socket. They return false on EOF or error.
bool send_msg(int fd, MsgType type, uint32_t seq, std::span<const uint8_t> payload);
/// Read one frame. On a bad header, *err is set and false is returned.
bool recv_msg(int fd, MsgHeader* h, std::vector<uint8_t>* payload, std::string* err);

std::string format_ipv4(uint32_t ip_host_order);
/// Parse dotted quad into host order; false on anything else.
bool parse_ipv4(const std::string& s, uint32_t* ip_host_order);

}  // namespace rondo::api
