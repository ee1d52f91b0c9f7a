// The per-packet pipeline of one worker lcore: parse -> ICMP echo / VIP lookup ->
// flow lookup or schedule+insert -> rewrite -> next hop. It owns everything the lcore
// keeps between packets (flow tables, local ports, scheduler cursors, counters).
// IPv6 (docs: the v6 plan's decisions 2-5): v6 flows, and NAT46/NAT64 flows with their v4
// side IPv4-mapped, live in a table of their own (flows6_, FlowTable6), so the v4 key, record
// and lookups are as they were; the parser's branch is the only family test a v4 packet
// pays before its VIP lookup. The client handler is chosen per VIP (mode x families). ARP and
// the neighbour table are the main lcore's (neigh/manager.h): ARP frames are handed to it
// (kToMain), next hops are looked up in the NextHopMap it publishes, read-only and works on plain frame bytes, so unit tests and fuzzers drive it without
// DPDK running; the worker loop (runtime/worker.cpp) feeds it mbufs.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/flow/port_pool.h"
#include "dataplane/flow/table.h"
#include "dataplane/fwd/encap.h"
#include "dataplane/fwd/proxy_v2.h"
#include "dataplane/fwd/synproxy.h"
#include "dataplane/fwd/token_bucket.h"
#include "dataplane/fwd/too_big.h"
#include "dataplane/neigh/next_hops.h"
#include "dataplane/pkt/ip6.h"
#include "dataplane/pkt/mac.h"
#include "dataplane/pkt/parse.h"
#include "dataplane/sched/sched.h"
#include "dataplane/state/snapshot.h"
#include "dataplane/stats/counters.h"
#include "dataplane/stats/iface_counters.h"

namespace rondo::dp {

struct PipelineParams {
  uint32_t flow_capacity = 1u << 20;
  // The flow table's file (FlowStore, docs/hot-restart.md): a table left there by a previous
  // process is adopted. Empty: anonymous memory. `start_now`: the clock (ticks of `hz`) at
  // construction, the adopter's `now` (FlowTable's store constructor).
  std::string flow_store;
  uint64_t start_now = 0;
  // false: the files (flow table and quarantine) are reinitialised, not adopted (a flow dir
  // written by a process with another worker count, runtime/flow_dir.h).
  bool store_adopt = true;
  // The local-port quarantine's file (QuarantineStore), adopted likewise. Empty: anonymous.
  std::string quarantine_store;
  bool flow_meters = false;  // keep each flow's age and traffic (FlowMeter)
  uint16_t lport_lo = 1024;  // local port range (host order, inclusive), shared by all workers;
  uint16_t lport_hi = 65535;  // this worker uses the ports PortOwnership gives it
  // Tuples held in the local-port quarantine at most (0: a quarter of the flows, at least
  // 1024): beyond it the oldest is released early (counted). Each takes 40 bytes.
  uint32_t quarantine_capacity = 0;
  // The IPv6 flow table (FlowTable6: v6 flows, 192 bytes each) and its local-port
  // quarantine: capacity 0 is a quarter of flow_capacity, at least 1024 (--flows6); files
  // as flow_store and quarantine_store (empty: anonymous memory).
  uint32_t flow6_capacity = 0;
  std::string flow6_store;
  std::string quarantine6_store;
  // Where the local-port search order starts (port_pool.h). The dataplane draws it at random
  // at every start, so a restarted process does not replay its predecessor's ports.
  uint64_t port_seed = 0;
  uint32_t worker = 0;
  uint32_t n_workers = 1;
  uint64_t hz = 1000;  // ticks per second of the `now` values passed in
  std::vector<MacAddr> port_macs;  // indexed by port id
  // ICMP echo replies, per worker: a flood of requests must not turn rondo into an
  // amplifier or eat its TX queues. (ARP replies: the main lcore's budget, manager.h.)
  uint32_t reply_rate = 1000;  // per second
  uint32_t reply_burst = 64;
  // The deployment's secret (--state-dir/hash.key). The flow table's hash key
  // are derived from it (derive_hash_key), so every worker and every restart of the same
  // deployment place keys alike. The dataplane always sets it; tests may keep this fixed one.
  HashKey hash_key{};
  // SYN cookies for `auto` VIPs go on when the worker holds this many half-open flows or sees
  // this many SYNs a second, and off below half of both (SynGuard, docs/security.md).
  uint32_t syncookie_embryonic_on = 8192;
  uint32_t syncookie_syn_rate_on = 100000;
  // Flow ageing (FlowTable::sweep): every record looked at once per sweep, so a flow is
  // reclaimed at most this long after it expires, and at most this many records per loop
  // (a late loop's backlog is spread over the next ones rather than stalling one burst).
  uint32_t age_sweep_ms = 1000;
  uint32_t age_max_per_loop = 256;
  // The IP MTU of the egress (--mtu): a packet longer than this once rewritten (full-NAT,
  // NAT46/64, an ipip or gue encapsulation) is not sent; its sender gets ICMP
  // fragmentation-needed (DF set) or ICMPv6 packet too big with the MTU that fits
  // (fwd/egress_mtu.cpp). Frames are parsed against it too (kGsoFrame).
  uint32_t mtu = kEthernetMtu;
};

/// A frame the pipeline made itself (a PROXY v2 header segment, an RST when its flow gives
/// up), ready to send on `port`; the worker copies it into an mbuf (Pipeline::outbox).
/// Writers put the untagged frame at data() (L3 at data() + 14); writing the egress
/// interface's L2 may move its start 4 bytes earlier (a VLAN tag): the frame is then `len`
/// bytes from frame().
struct OutFrame {
  static constexpr uint32_t kSpare = 4;  // room for an 802.1Q tag in front of data()
  static constexpr uint32_t kCap = std::max({ProxyV2::kFrameLen + 6, 14 + kIcmpErrMax,
                                             14 + kTooBigMax6, 14 + kIcmp6ErrMax});
  uint16_t port = 0;
  uint16_t len = 0;       // bytes from frame()
  uint8_t off = kSpare;   // where the frame starts in buf: kSpare, or 0 when tagged
  uint8_t buf[kSpare + kCap];

  uint8_t* data() { return buf + kSpare; }
  const uint8_t* data() const { return buf + kSpare; }
  const uint8_t* frame() const { return buf + off; }
};

struct Action {
  // kSteer: the frame belongs to a flow another worker owns (a full-NAT reply whose
  // local port is in that worker's share); hand it over untouched. kToMain: an ARP frame
  // for one of our addresses; hand it to the main lcore (neighbour manager) untouched.
  // kFragment: a fragment to a VIP or local ip that this worker reassembles (frag/
  // reassembly.h); counted consumed here, the worker counts what becomes of it.
  enum class Kind : uint8_t { kDrop, kTx, kConsumed, kSteer, kToMain, kFragment };
  Kind kind = Kind::kDrop;
  DropReason reason = DropReason::kCount;
  uint16_t port = 0;  // kTx: output port; kSteer: the owning worker
  // kTx: the frame's new length when the pipeline changed it (a SYN cookie handshake
  // rewrites SYNs and ACKs into other segments), 0: unchanged. It never grows a frame past
  // SynProxy::kMaxHandshakeFrame bytes: every frame buffer must have room for that many.
  uint32_t len = 0;
  // kTx: bytes the frame grew by at its front (a DSR encapsulation wrote its outer headers
  // there, NAT46 a longer header, the egress interface a VLAN tag the frame came without);
  // the frame now starts that much before the buffer given to process(). Every frame buffer
  // has Pipeline::kHeadroom writable bytes before it.
  uint8_t prepend = 0;
  // kTx: the interface it leaves on (Snapshot::ifaces; `port` is that interface's): its
  // counters, and the MTU a reassembled datagram is cut to again. (A byte, in what was
  // padding: the action stays 12 bytes, returned in two registers.)
  uint8_t iface = 0;
  // kTx: bytes the frame lost at its front (NAT64: an IPv6 header and its extension headers
  // became a 20-byte IPv4 one; a VLAN tag the egress interface does not have); the frame now
  // starts that much after the buffer.
  uint16_t trim = 0;
};
static_assert(sizeof(Action) == 12 && api::kMaxInterfaces <= 256);

/// The length of a frame of `in_len` bytes after `a`: Action::len when the pipeline set it,
/// else in_len changed by what the start moved (writing the egress interface's L2 adds or
/// removes a 4-byte VLAN tag in front: prepend 4 or trim 4, len 0). Every consumer of an
/// Action (worker, fixtures, fuzzer, bench, tracer) takes the length from here.
inline uint32_t out_len(const Action& a, uint32_t in_len) {
  return a.len != 0 ? a.len : in_len + a.prepend - a.trim;
}
/// Where a frame given at `frame` starts after `a`.
inline uint8_t* out_start(const Action& a, uint8_t* frame) { return frame - a.prepend + a.trim; }
inline const uint8_t* out_start(const Action& a, const uint8_t* frame) {
  return frame - a.prepend + a.trim;
}
/// A frame whose end moved (a rewrite into another segment, a translation, an
/// encapsulation) ends at `end`: its length counted from its new start.
inline void ends_at(Action* a, const uint8_t* f, const uint8_t* end) {
  if (a->kind == Action::Kind::kTx) a->len = static_cast<uint32_t>(end - out_start(*a, f));
}

class Pipeline {
 public:
  /// Bytes before every frame the pipeline may write into (the worker checks the mbuf's
  /// headroom, which is 128 bytes for DPDK's default pools).
  static constexpr uint32_t kHeadroom = 64;

  explicit Pipeline(const PipelineParams& p);
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  /// Take in a newly published snapshot: timeouts and local port pools.
  void on_snapshot(const Snapshot& s, uint64_t now);

  /// Process one frame in place (rewritten for output on kTx). s may be null before the
  /// first configuration arrives. Counts rx (or steered_in when `steered`: the frame came
  /// from another worker), drops, consumed and steered_out frames.
  Action process(const Snapshot* s, uint8_t* frame, uint32_t len, uint16_t in_port, uint64_t now,
                 bool steered = false);

  /// The same for n frames received together (a burst): parsing, hashing and the memory
  /// fetches of the flow lookups are overlapped across the burst. out[i] is frame i's action.
  void process_burst(const Snapshot* s, uint8_t* const* frames, const uint32_t* lens, uint32_t n,
                     uint16_t in_port, uint64_t now, bool steered, Action* out);

  /// Traffic per interface, indexed by interface id (the control agent sums the workers').
  const IfaceCounterArray& iface_counters() const { return ifc_; }

  /// The next hops to use from now on (the main lcore's NextHopMap, read once per loop);
  /// null: nothing is resolved.
  void set_next_hops(const NextHopMap* m) { next_hops_ = m; }
  /// The same for IPv6 next hops (the main lcore's NextHopMap6).
  void set_next_hops6(const NextHopMap6* m) { next_hops6_ = m; }

  /// Whether the frames of the bursts to come are datagrams reassembled from fragments
  /// (frag/reassembly.h): one longer than the egress MTU is not refused (egress_too_big),
  /// the worker sends it in fragments.
  void set_reassembled(bool on) { reassembled_ = on; }

  /// The lc scheduler's counts to use from now on (the main lcore's BackendLoad, read once
  /// per loop); null: none published (lc then counts this worker's own new flows only).
  void set_backend_load(const BackendLoad* l) { sched_.load = l; }

  /// The worker that owns a full-NAT local port (host order).
  uint32_t port_owner(uint16_t lport) const { return ownership_.owner(lport); }

  /// Housekeeping, called about once per loop: ages the flow records due since the last
  /// call (one sweep of the table per PipelineParams::age_sweep_ms, FlowTable::sweep).
  void tick(const Snapshot* s, uint64_t now);
  /// The same, ageing exactly `budget` records whatever the time (tests, fuzzing).
  void tick(const Snapshot* s, uint64_t now, uint32_t budget);

  /// Next hops to ask the main lcore for (each at most once a second, as far as this
  /// worker remembers); the caller passes them on and clears the list.
  std::vector<NeighAsk>& neigh_asks() { return asks_; }

  /// Count a frame that left on the wire (the pipeline does not see TX completions).
  void count_tx(uint32_t bytes) {
    ++counters_.tx_packets;
    counters_.tx_bytes += bytes;
  }
  void count_drop(DropReason r) { counters_.drop(r); }

  /// Remove a flow as expiry would (its local port, counters): an operator's delete.
  void remove_flow(uint32_t idx, uint64_t now) {
    now_ = now;
    flows_.remove(idx);
  }
  /// The same for a flow of the IPv6 table.
  void remove_flow6(uint32_t idx, uint64_t now) {
    now_ = now;
    flows6_.remove(idx);
  }

  /// Frames made since the last clear_outbox() (counted as originated), to send.
  const OutFrame* outbox() const { return out_.data(); }
  uint32_t outbox_size() const { return out_len_; }
  void clear_outbox() { out_len_ = 0; }
  /// The PROXY v2 state of flow idx (null unless a VIP has used PROXY v2).
  const ProxyHdr* proxy_hdr(uint32_t idx) const { return proxy_ ? &proxy_[idx] : nullptr; }

  const LcoreCounters& counters() const { return counters_; }
  LcoreCounters& counters() { return counters_; }
  const BackendCounters* backend_counters() const { return backends_.get(); }
  FlowTable& flows() { return flows_; }
  const FlowTable& flows() const { return flows_; }
  const Quarantine& quarantine() const { return quarantine_; }
  /// The IPv6 flow table and its quarantine (PipelineParams::flow6_capacity).
  FlowTable6& flows6() { return flows6_; }
  const FlowTable6& flows6() const { return flows6_; }
  const Quarantine6& quarantine6() const { return quarantine6_; }
  /// What the IPv6 flow table found in its file (PipelineParams::flow6_store).
  const FlowAdoption& adoption6() const { return flows6_.adoption(); }
  /// What the flow table found in its file (PipelineParams::flow_store).
  const FlowAdoption& adoption() const { return flows_.adoption(); }
  /// Flows the table adopted that the pipeline dropped at once (adopt_flows): counted in
  /// neither adoption().adopted's survivors nor its discarded.
  uint32_t adopt_dropped() const { return adopt_dropped_; }
  /// Flows kept after adoption: adoption().adopted - adopt_dropped().
  uint32_t adopted() const { return adoption().adopted - adopt_dropped_; }
  /// The same for the IPv6 table.
  uint32_t adopt_dropped6() const { return adopt_dropped6_; }
  /// Local ports this worker may hand out per (local ip, backend).
  uint32_t port_share() const { return ports_.share(); }
  PortPicker& ports() { return ports_; }

 private:
  Action handle_icmp(const Snapshot& s, uint8_t* f, const Parsed& p, uint16_t iface, uint64_t now);
  // What stage 1 of process_burst learned about one frame. kToMain: ARP or NDP for one of
  // our addresses (the neighbour manager's). The *6 classes are IPv6 frames: their flows are
  // in flows6_ (probe6).
  struct Pending {
    enum class Cls : uint8_t {
      kDrop, kToMain, kIcmp, kClient, kReply, kSteer, kIcmp6, kClient6, kReply6, kFrag
    };
    Cls cls;
    DropReason why;
    uint16_t steer_to;
    uint16_t iface;  // the interface it came in on (Snapshot::iface_of)
    // One packet has one: classify writes probe for kClient/kReply (IPv4), classify6 probe6
    // for kClient6/kReply6, and each class's handlers read only its own.
    union {
      FlowTable::Probe probe;
      FlowTable6::Probe probe6;
    };
    const VipConf* vip;
    Parsed p;
  };
  // The v4 fast path's part of a Pending (its class, probe, vip and Parsed up to the v4 key)
  // fits in its first 64 bytes; the IPv6 fields of Parsed come after.
  static_assert(offsetof(Pending, p) + offsetof(Parsed, key) + sizeof(FlowKey) <= 64);
  static_assert(offsetof(Parsed, key) + sizeof(FlowKey) <= offsetof(Parsed, ext_len));
  static_assert(offsetof(Parsed, ext_len) < offsetof(Parsed, key6));
  static constexpr uint32_t kMaxBurst = 64;

  // What every frame of a burst shares, worked out once for it.
  struct Burst {
    const Snapshot* s;
    // The port's interfaces (decision 4 of the VLAN plan); null when there is no snapshot or
    // the port is not one of the snapshot's and this pipeline's (classify's slow path).
    const PortIfaces* pi;
    const uint8_t* mac;  // the port's MAC (pi set)
    uint16_t in_port;
    bool steered;
    // Count the frames on their interface (not when another worker handed them over, or
    // they are datagrams reassembled from fragments: counted when they came in).
    bool count_rx;
  };
  void classify(const Burst& b, const uint8_t* f, uint32_t len, Pending* pd);
  // The IPv6 part of classify (out of line: the v4 path pays one kind test for it, after its
  // own VIP lookup).
  void classify6(const Snapshot& s, const uint8_t* f, uint16_t in_port, bool steered, Pending* pd);
  // A fragment (kIpv4Frag, kIpv6Frag) to one of our addresses: reassembled here, or handed to
  // the worker frag_owner() names (frag/steer.h).
  void classify_frag(bool ours, bool steered, Pending* pd);
  Action handle_client(const Snapshot& s, const VipConf& vip, uint8_t* f, uint32_t len,
                       const Parsed& p, const FlowTable::Probe& probe, uint64_t now);
  // A client packet of a DSR VIP (encap.h: the mode's rewrite). One-sided flow state: the
  // client key only, the backend's answers never come this way (docs/modes.md).
  template <class Encap>
  Action handle_dsr(const Snapshot& s, const VipConf& vip, uint8_t* f, uint32_t len,
                    const Parsed& p, const FlowTable::Probe& probe, uint64_t now);
  // The client handler of each mode and address families, indexed by VipConf::handler
  // (client_handler(mode, families), chosen when the snapshot is built): one indirect call
  // per packet, no switch on the mode or the family. Combinations validation refuses (a v6
  // vip's DSR to v4 backends, l2dsr from a v4 vip to v6 backends) have client_refused.
  // (Plain function pointers, not pointers to members: GCC's UBSan mis-instruments a call
  // through a member-pointer array, and they cost the same.)
  using ClientFn = Action (*)(Pipeline&, const Snapshot&, uint8_t*, uint32_t, const Pending&,
                              uint64_t);
  static const ClientFn kClientFns[std::size(api::kModeNames) * kFamilies];
  static Action client_fullnat(Pipeline& pl, const Snapshot& s, uint8_t* f, uint32_t len,
                               const Pending& pd, uint64_t now) {
    return pl.handle_client(s, *pd.vip, f, len, pd.p, pd.probe, now);
  }
  static Action client_fullnat6(Pipeline& pl, const Snapshot& s, uint8_t* f, uint32_t len,
                                const Pending& pd, uint64_t now) {
    return pl.handle_fullnat6<true, true>(s, *pd.vip, f, len, pd.p, pd.p.key6, pd.probe6, now);
  }
  // NAT46: an IPv4 client's packet (classified as IPv4, its v4 probe unused), its flow in
  // flows6_ under the IPv4-mapped key. NAT64: an IPv6 client's packet to IPv4 backends.
  static Action client_fullnat46(Pipeline& pl, const Snapshot& s, uint8_t* f, uint32_t len,
                                 const Pending& pd, uint64_t now) {
    const FlowKey6 key = mapped_key(pd.p.key);
    return pl.handle_fullnat6<false, true>(s, *pd.vip, f, len, pd.p, key, pl.flows6_.probe(key),
                                           now);
  }
  static Action client_fullnat64(Pipeline& pl, const Snapshot& s, uint8_t* f, uint32_t len,
                                 const Pending& pd, uint64_t now) {
    return pl.handle_fullnat6<true, false>(s, *pd.vip, f, len, pd.p, pd.p.key6, pd.probe6, now);
  }
  /// A v4 flow key written IPv4-mapped (the key of a NAT46 flow's client side or a NAT64
  /// flow's backend side in flows6_).
  static FlowKey6 mapped_key(const FlowKey& k);
  template <class Encap>
  static Action client_dsr(Pipeline& pl, const Snapshot& s, uint8_t* f, uint32_t len,
                           const Pending& pd, uint64_t now) {
    return pl.handle_dsr<Encap>(s, *pd.vip, f, len, pd.p, pd.probe, now);
  }
  // DSR to IPv6 backends (fwd/dsr6.cpp): an IPv6 client's packet (kCli6) or a v4 vip's, in
  // an IPv6 outer header (Ipip6Encap, Gue6Encap) or with the backend's MAC (L2Encap6).
  template <class Encap, bool kCli6>
  static Action client_dsr6(Pipeline& pl, const Snapshot& s, uint8_t* f, uint32_t len,
                            const Pending& pd, uint64_t now);
  static Action client_refused(Pipeline& pl, const Snapshot&, uint8_t*, uint32_t, const Pending&,
                               uint64_t) {
    return pl.drop_refused();
  }
  Action drop_refused();
  // Full-NAT of the flows kept in flows6_, a client's packet: v6 -> v6 (kCli6, kBe6), NAT46
  // (v4 client, v6 backends) and NAT64 (v6 client, v4 backends); `key` is the client's key in
  // the table (IPv4-mapped for a v4 client). No SYN cookies, no PROXY v2 (validation).
  template <bool kCli6, bool kBe6>
  Action handle_fullnat6(const Snapshot& s, const VipConf& vip, uint8_t* f, uint32_t len,
                         const Parsed& p, const FlowKey6& key, const FlowTable6::Probe& probe,
                         uint64_t now);
  // A backend's reply of a flow in flows6_: from a v6 backend (handle_reply6), or from a v4
  // one (NAT64: handle_reply64, when the v4 table has no flow and the snapshot has NAT64).
  Action handle_reply6(const Snapshot& s, uint8_t* f, uint32_t len, const Parsed& p,
                       const FlowTable6::Probe& probe, uint64_t now);
  Action handle_reply64(const Snapshot& s, uint8_t* f, uint32_t len, const Parsed& p, uint64_t now);
  template <bool kBe6>
  Action reply6(const Snapshot& s, uint8_t* f, uint32_t len, const Parsed& p, const FlowKey6& key,
                const FlowTable6::Probe& probe, uint64_t now);
  // The packet of flow fl at f (TCP/UDP of family kFrom6) rewritten towards the flow's
  // client (to_client) or backend, in that end's family, and routed.
  template <bool kFrom6>
  Action nat_out(const Snapshot& s, uint8_t* f, const Parsed& p, const Flow6& fl, bool to_client,
                 uint64_t now);
  // A v4 local ip and port for a NAT64 flow to backend rev->src (IPv4-mapped in rev): free in
  // both tables and both quarantines.
  bool alloc_local64(const Snapshot& s, FlowKey6* rev, FlowTable6::Probe* rev_probe, uint64_t now);
  // ICMPv6 to a VIP or local ip: echo answered (the replies_ budget), errors about a flow
  // (fwd/icmp_error6.h) translated and sent to its other end.
  Action echo_back(const Snapshot& s, uint8_t* f, const Parsed& p, uint8_t reply_type,
                   uint16_t iface);
  Action handle_icmp6(const Snapshot& s, uint8_t* f, const Parsed& p, uint16_t iface,
                      uint64_t now);
  Action handle_icmp_error6(const Snapshot& s, uint8_t* f, const Parsed& p, uint64_t now);
  // An ICMPv4 error about a flow in flows6_ (NAT46's client side, NAT64's backend side; `key`
  // its quoted packet's answer, IPv4-mapped): translated to ICMPv6 for the other end.
  Action icmp_error46(const Snapshot& s, uint8_t* f, const Parsed& p, const FlowKey6& key,
                      uint64_t now);
  // output()'s twin for an IPv6 destination.
  Action output6(const Snapshot& s, uint8_t* f, uint8_t* l3, const Ip6& dst, uint64_t now);
  bool alloc_local6(const Snapshot& s, FlowKey6* rev, FlowTable6::Probe* rev_probe, uint64_t now);
  void ask_neigh6(const Ip6& ip, uint16_t iface, uint64_t now);
  static void on_release6(void* ctx, const Flow6& f);
  static FlowTable6 make_flows6(const PipelineParams& p, Pipeline* self);
  static Quarantine6 make_quarantine6(const PipelineParams& p, Pipeline* self);
  // Put the mode's outer headers in front of the IPv4 packet at f + l3_off (ip_len bytes)
  // and send it to flow fl's backend (ipip, gue).
  template <class Encap>
  Action encapsulate(const Snapshot& s, uint8_t* f, uint32_t l3_off, uint32_t ip_len,
                     const Flow& fl, uint64_t now);
  // ICMP errors (fwd/icmp_error.h): found by the flow they quote, sent on to its other end;
  // a DSR flow's go to the backend in the VIP's encapsulation (relay_dsr).
  Action handle_icmp_error(const Snapshot& s, uint8_t* f, const Parsed& p, uint64_t now);
  template <class Encap>
  Action relay_dsr(const Snapshot& s, uint8_t* f, const Parsed& p, const Flow& fl, uint64_t now);
  // A DSR flow's TCP state from the client's segments alone (docs/modes.md).
  void track_dsr(uint32_t idx, uint8_t flags, uint64_t now) { track_dsr_in(flows_, idx, flags, now); }
  template <class Table>
  void track_dsr_in(Table& t, uint32_t idx, uint8_t flags, uint64_t now);
  // handle_dsr's twin for a v6 backend (fwd/dsr6.cpp): the flow in flows6_ under `key` (the
  // client's, IPv4-mapped for a v4 vip), one-sided; the packet encapsulated in IPv6
  // (encapsulate6) or sent to the backend's MAC.
  template <class Encap, bool kCli6>
  Action handle_dsr6(const Snapshot& s, const VipConf& vip, uint8_t* f, uint32_t len,
                     const Parsed& p, const FlowKey6& key, const FlowTable6::Probe& probe,
                     uint64_t now);
  template <class Encap>
  Action encapsulate6(const Snapshot& s, uint8_t* f, uint32_t l3_off, uint32_t ip_len,
                      const Flow6& fl, uint64_t now);
  // An ICMP or ICMPv6 error about DSR flow idx of flows6_ (it quotes the backend's packet to
  // the client): to the backend unchanged, in the VIP's encapsulation, as relay_dsr does.
  Action relay_dsr6(const Snapshot& s, uint8_t* f, const Parsed& p, uint32_t idx, uint64_t now);
  template <class Encap>
  Action relay_dsr6_in(const Snapshot& s, uint8_t* f, const Parsed& p, const Flow6& fl,
                       uint64_t now);
  // ICMPv6 packet-too-big to the IPv6 client of a packet that does not fit the egress MTU once
  // encapsulated (`mtu`: what fits before encapsulation); send_frame's twin.
  void send_too_big6(const Snapshot& s, const uint8_t* f, const Parsed& p, uint32_t mtu,
                     uint64_t now);
  bool send_frame6(const Snapshot& s, OutFrame* o, uint32_t len, const Ip6& dst, uint64_t now);
  // ICMP fragmentation-needed to the client of a packet that does not fit the egress MTU
  // once encapsulated (`mtu`: what fits before encapsulation).
  void send_too_big(const Snapshot& s, const uint8_t* f, const Parsed& p, uint16_t mtu,
                    uint64_t now);
  // A packet longer than the egress MTU (fwd/egress_mtu.cpp): dropped as egress_too_big;
  // an IPv4 one with DF set gets fragmentation-needed back (too_big4), an IPv6 one packet
  // too big reporting `mtu` (too_big6), within the replies_ budget.
  Action too_big4(const Snapshot& s, const uint8_t* f, const Parsed& p, uint32_t mtu,
                  uint64_t now);
  // The MTU of the interface the route to dst leaves on (UINT32_MAX without a route: output
  // counts that). Out of line: the fast path asks only for packets longer than the smallest
  // interface MTU (Snapshot::min_mtu, decision 8 of the VLAN plan).
  uint32_t egress_mtu(const Snapshot& s, uint32_t dst) const;
  uint32_t egress_mtu6(const Snapshot& s, const Ip6& dst) const;
  // Whether an IPv4 packet of n bytes is longer than the egress towards dst allows: that
  // MTU when it is, else 0. A reassembled datagram never is: the worker cuts it to the
  // interface's MTU.
  uint32_t too_long(const Snapshot& s, uint32_t n, uint32_t dst) const {
    if (__builtin_expect(n <= s.min_mtu || reassembled_, 1)) return 0;
    const uint32_t mtu = egress_mtu(s, dst);
    return n > mtu ? mtu : 0;
  }
  uint32_t too_long6(const Snapshot& s, uint32_t n, const Ip6& dst) const {
    if (__builtin_expect(n <= s.min_mtu || reassembled_, 1)) return 0;
    const uint32_t mtu = egress_mtu6(s, dst);
    return n > mtu ? mtu : 0;
  }
  Action too_big6(const Snapshot& s, const uint8_t* f, const Parsed& p, uint32_t mtu,
                  uint64_t now);
  Action handle_reply(const Snapshot& s, uint8_t* f, uint32_t len, const Parsed& p,
                      const FlowTable::Probe& probe, uint64_t now);
  // Send the packet whose IP header is at l3 towards dst_ip: the route's interface, its next
  // hop's MAC, and that interface's Ethernet header (with its 802.1Q tag when it has one)
  // written in front of l3 (put_l2); the ethertype in front of l3 is the caller's. The
  // action's prepend or trim say where the frame starts from f, the buffer process() was
  // given; `len` is the caller's (0: the frame keeps its end, out_len).
  Action output(const Snapshot& s, uint8_t* f, uint8_t* l3, uint32_t dst_ip, uint64_t now);
  // Run a segment of an existing TCP flow through its tracker (flow/tcp_state.h) and move
  // the flow's state and expiry. false: the segment is out of the window, drop it.
  bool track_tcp(uint32_t idx, FlowDir dir, const uint8_t* f, const Parsed& p, uint64_t now) {
    return track_tcp_in(flows_, idx, dir, f, p, now);
  }
  template <class Table>
  bool track_tcp_in(Table& t, uint32_t idx, FlowDir dir, const uint8_t* f, const Parsed& p,
                    uint64_t now);
  uint64_t tcp_timeout(FlowState st) const;
  // A local ip and port for a connection to backend b (addresses and ports in rev).
  bool alloc_local(const Snapshot& s, FlowKey* rev, FlowTable::Probe* rev_probe, uint64_t now);
  static void on_quarantine_leave(void* ctx, uint32_t backend_id);
  void ask_neigh(uint32_t ip, uint16_t iface, uint64_t now);
  static void on_release(void* ctx, const Flow& f);
  static FlowTable make_flows(const PipelineParams& p, Pipeline* self);
  static Quarantine make_quarantine(const PipelineParams& p, Pipeline* self);
  // After adoption: rebuild what this process derives from its flows (adopt_flows in .cpp).
  void adopt_flows();
  // SYN cookies (synproxy.h): whether a SYN to `vip` is answered with a cookie now, and
  // whether an ACK without a flow may carry one.
  bool cookies_for_syn(const VipConf& vip, uint64_t now);
  bool cookies_checked(const VipConf& vip, uint64_t now) const;
  // PROXY v2 (proxy_v2.h): send flow idx's header segment to its backend (into the outbox);
  // reset the flow both ways when the header is never acknowledged; the timer's sweep.
  void proxy_send(const Snapshot& s, uint32_t idx, uint64_t now);
  void proxy_give_up(const Snapshot& s, uint32_t idx, uint64_t now);
  // A sent header's timer: resend when due; true when it gave up (the flow is reset).
  bool proxy_timer(const Snapshot& s, uint32_t idx, uint64_t now);
  // Write seg into the outbox as a frame towards dst_ip; false if it could not go (outbox
  // full, or no route or neighbour: counted).
  bool emit(const Snapshot& s, const SynProxy::Segment& seg, uint32_t dst_ip, uint64_t now);
  // Flows of PROXY v2 VIPs whose header's resend timer is looked at per loop (tick(s, now)).
  static constexpr uint32_t kProxySweepPerLoop = 256;
  void proxy_sweep(const Snapshot& s, uint64_t now, uint32_t budget);
  OutFrame* out_frame();
  // Keep frame o (`len` bytes from data()) in the outbox as output's action a says (its port,
  // its interface's L2 in front of data()), counted on that interface; when a is a drop, take
  // it back (false).
  bool queue_frame(OutFrame* o, const Action& a, uint32_t len);
  // Route frame o (IPv4 at data + 14, `len` bytes in all) towards dst_ip and keep it in the
  // outbox; false (and taken back) when it cannot go.
  bool send_frame(const Snapshot& s, OutFrame* o, uint32_t len, uint32_t dst_ip, uint64_t now);
  uint32_t ms(uint64_t now) const { return static_cast<uint32_t>(now / ms_div_); }
  // Count one packet of `len` bytes of flow idx, its backend's and the flow's meter.
  const Flow& count_packet(uint32_t idx, FlowDir d, uint32_t len) { return count_in(flows_, idx, d, len); }
  template <class Table>
  const typename Table::Record& count_in(Table& t, uint32_t idx, FlowDir d, uint32_t len) {
    const auto& fl = t.at(idx);
    BackendCounters& bc = backends_[fl.backend_id];
    ++bc.packets;
    bc.bytes += len;
    t.count(idx, d, len);
    return fl;
  }
  // Count a flow reclaimed to make room for a new one (FlowTable::reclaim_one), by class.
  void count_reclaim(Reclaim kind);
  // tick()'s work after ageing: the quarantine, the gauges, the SYN-cookie switch.
  void housekeep(const Snapshot* s, uint64_t now);

  PipelineParams params_;
  uint32_t n_ports_;  // params_.port_macs.size()
  PortOwnership ownership_;
  LcoreCounters counters_;
  FlowTable flows_;
  SchedState sched_;
  std::unique_ptr<BackendCounters[]> backends_;  // indexed by backend id
  PortPicker ports_;
  Quarantine quarantine_;
  uint32_t local_cursor_ = 0;
  // IPv6 flows, their local-port quarantine and cursor (the port picker is shared: a v6
  // tuple never equals a v4 one).
  FlowTable6 flows6_;
  Quarantine6 quarantine6_;
  uint32_t local_cursor6_ = 0;
  // NAT64 flows (a v4-mapped reverse key) in flows6_, and until when a tuple of one may sit
  // in quarantine6_: while either holds, v4 replies and local ports are looked for in the v6
  // table too, whether or not the snapshot still has a NAT64 VIP (nat64_live).
  uint32_t mapped6_ = 0;
  uint64_t mapped_q6_until_ = 0;
  bool nat64_live(const Snapshot& s, uint64_t now) const {
    return s.nat64 || mapped6_ != 0 || now < mapped_q6_until_;
  }
  std::vector<Ip6> link_local6_;  // each port's EUI-64 link-local address (NDP targets)
  uint64_t now_ = 0;  // of the frame or tick being handled (release hooks have no clock)
  // What each backend id stood for (ip << 16 | port, with bit 48 set once known): an id the
  // control plane reuses for another backend starts with fresh counters.
  std::unique_ptr<uint64_t[]> backend_ident_;
  const NextHopMap* next_hops_ = nullptr;
  const NextHopMap6* next_hops6_ = nullptr;
  std::vector<NeighAsk> asks_;
  // Next hops asked for lately (direct-mapped; a collision only costs one more ask, which
  // the manager deduplicates): a flood towards an unresolved next hop asks once a second.
  struct Asked {
    uint32_t ip = 0;
    uint16_t iface = 0;
    uint64_t at = 0;
  };
  std::array<Asked, 256> asked_{};
  struct Asked6 {
    Ip6 ip;
    uint16_t iface = 0;
    uint64_t at = 0;
  };
  std::array<Asked6, 64> asked6_{};
  // Timeouts of the current snapshot, in ticks.
  uint64_t t_syn_ = 0, t_est_ = 0, t_closing_ = 0, t_time_wait_ = 0, t_reset_ = 0, t_udp_ = 0;
  uint64_t t_quarantine_ = 0;
  TokenBucket replies_;  // ICMP echo replies
  HashKey cookie_key_;   // derived from the secret: HashUse::kSynCookie
  SynGuard syn_guard_;   // the `auto` switch
  uint64_t last_cookie_ = 0;  // when this worker last sent a cookie (`auto` VIPs check ACKs
  bool sent_cookie_ = false;  // only while cookies it sent may still come back)
  bool vip_cookies_on_ = false;    // the snapshot has a VIP with `syncookies: on`
  bool vip_cookies_auto_ = false;  // ... with `auto` (syncookies_active: either answers now)
  // PROXY v2: one ProxyHdr per flow record, allocated when a snapshot first has a VIP with
  // PROXY v2 (and kept: flows outlive the VIP's setting); the sweep's position.
  std::unique_ptr<ProxyHdr[]> proxy_;
  uint32_t proxy_cursor_ = 0;
  uint64_t ms_div_ = 1;  // ticks per millisecond (at least 1)
  static constexpr uint32_t kOutMax = 64;
  std::array<OutFrame, kOutMax> out_;
  uint32_t out_len_ = 0;
  uint32_t adopt_dropped_ = 0;
  uint32_t adopt_dropped6_ = 0;
  uint16_t ip_id_ = 0;  // identification of the IPv4 packets NAT64 makes (RFC 7915 5.1)
  HashKey frag_key_;    // frag_owner()'s (the flow table's use of the secret)
  bool reassembled_ = false;  // set_reassembled()
  IfaceCounterArray ifc_{};   // per interface id: rx in classify, tx in process_burst
};

}  // namespace rondo::dp
