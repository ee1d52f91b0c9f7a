// Per-packet pipeline microbenchmarks, in process, no I/O: the cost of Pipeline::process on
// a burst of frames, in TSC cycles per packet.
//   BM_Established/N: client data packets of N live, established flows, in random order
//                     (N = 1k stays in cache; 1M is the DRAM-bound case).
//   BM_Routed/R:      BM_Established/1000 with R configured routes: R - 2 /24s that no packet
//                     matches, the backends' /16 on-link and a default route (R = 0: no
//                     routes, everything on-link, as in BM_Established). The routes are in an
//                     rte_lpm as in the dataplane, so main() starts an EAL (--no-huge).
//   BM_NewFlow:       SYNs of new flows into a full table (filled before the measure; every
//                     insert evicts the oldest embryonic flow and recycles its local port):
//                     the new-connection path.
//   BM_EstablishedVlan: BM_Established/1000 with interfaces (docs: the VLAN plan): the
//                     clients on VLAN 100 of the port, the backends untagged on it; every
//                     client packet comes in tagged (64 bytes) and leaves untagged (the
//                     frame's start moves 4 bytes: Action::trim).
//   BM_Copy:          the frame copy alone, which both include (subtract it).
//   BM_FlowMemory/N:  bytes of flow state per flow for an N-flow table (no packets).
//   BM_Modes/M:       BM_Established/1000 on a VIP of forwarding mode M (api::Mode's wire
//                     value: 1 fullnat, 2 ipip, 3 gue, 4 l2dsr). A DSR flow is established
//                     by the client's SYN and ACK alone (the backend answers the client
//                     directly); ipip and gue write their outer headers into the headroom.
// Every frame buffer has Pipeline::kHeadroom bytes in front of the frame, as an mbuf has.
//   BM_Meters/M:      BM_Established/1000 with flow meters off (M=0) and on (M=1).
//   BM_Established6/N: BM_Established for IPv6 clients of an IPv6 VIP with IPv6 backends
//                     (FlowTable6, FullNat6; 86-byte frames: 40-byte header, 6 data bytes).
//   BM_Modes6/M:      BM_Established6/1000 on an IPv6 VIP of mode M (as BM_Modes): ipip is
//                     IPv6 in IPv6, gue GUE over UDP/IPv6 with its checksum over the whole
//                     packet, l2dsr the MAC rewrite.
//   BM_Traced/T:      a burst as the worker runs it (runtime/worker.cpp: the tracer's check,
//                     then before/after around the pipeline): T=0 no trace armed, T=1 a trace
//                     armed whose filter matches nothing, T=2 one that records every packet;
//                     T=3 the pipeline alone (no tracer: the loop as it was before tracing).
//                     run_burst_as_worker and run_burst_untraced are not inlined, for
//                     callgrind's --toggle-collect (docs/benchmarks.md, "Tracing").
#include <benchmark/benchmark.h>
#include <rte_eal.h>
#include <unistd.h>
#include <x86intrin.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include <memory>
#include <random>
#include <vector>

#include "dataplane/fwd/pipeline.h"
#include "dataplane/inspect/trace.h"
#include "dataplane/neigh/manager.h"
#include "tests/common/packet_builder.h"

namespace rondo::dp {
uint64_t bursts_as_worker = 0;
uint64_t bursts_run = 0;
bool eal_running = false;  // set by main(): routes go into an rte_lpm
namespace {

using test::Frame;
using test::ip4;
using test::Mac;
using test::Pkt;

const Mac kOurMac{0x02, 0, 0, 0, 0, 0x01};
const Mac kGenMac{0x02, 0, 0, 0, 0, 0x02};
constexpr uint32_t kBurst = 32;
constexpr uint64_t kHz = 1'000'000'000;  // `now` in ns; nothing ages during a run

constexpr uint16_t kClientsVid = 100;

api::State bench_state(uint32_t n_local_ips, uint32_t n_routes = 0,
                       api::Mode mode = api::Mode::kFullNat, bool vlan = false) {
  api::State s;
  s.generation = 1;
  api::Vip v;
  v.ip = api::Addr::from_v4(ip4("203.0.113.10"));
  v.port = 80;
  v.mode = mode;
  // DSR does not translate the client's packet: its backends listen on the VIP's port.
  const uint16_t bport = mode == api::Mode::kFullNat ? 8080 : 80;
  for (uint16_t i = 0; i < 4; ++i) v.backends.push_back({i, api::Addr::from_v4(ip4("198.18.1.1") + i), bport, 1});
  s.vips = {v};
  for (uint32_t i = 0; i < n_local_ips; ++i) s.local_ips.push_back(api::Addr::from_v4(ip4("198.18.100.1") + i));
  // Everything on-link; one static neighbour entry per backend and per client /24 host.
  for (uint16_t i = 0; i < 4; ++i) {
    api::Neighbour n{api::Addr::from_v4(ip4("198.18.1.1") + i), {}, 0};
    std::memcpy(n.mac, kGenMac.data(), 6);
    s.neighbours.push_back(n);
  }
  for (uint32_t i = 0; i < 256; ++i) {
    api::Neighbour n{api::Addr::from_v4(ip4("198.19.0.0") + i), {}, 0};
    std::memcpy(n.mac, kGenMac.data(), 6);
    s.neighbours.push_back(n);
  }
  if (n_routes >= 2) {
    for (uint32_t i = 0; i + 2 < n_routes; ++i)
      s.routes.push_back({api::Addr::from_v4(ip4("10.0.0.0") + (i << 8)), 24, 0, {}});
    s.routes.push_back({api::Addr::from_v4(ip4("198.18.0.0")), 16, 0, {}});
    s.routes.push_back({api::Addr::from_v4(0), 0, 0, api::Addr::from_v4(ip4("198.18.1.1"))});
  }
  if (vlan) {
    // Interface 0: the backends, untagged; interface 1: the clients, on VLAN 100 of the same
    // port. Each side's addresses are routed (on-link) to its interface, its neighbours
    // learned there.
    api::Interface backends, clients;
    backends.id = 0;
    backends.name = "backends";
    clients.id = 1;
    clients.name = "clients";
    clients.vlan = kClientsVid;
    s.interfaces = {backends, clients};
    s.routes = {{api::Addr::from_v4(ip4("198.19.0.0")), 24, 1, {}},
                {api::Addr::from_v4(ip4("198.18.0.0")), 16, 0, {}}};
    for (api::Neighbour& n : s.neighbours)
      n.iface = (n.ip.v4() >> 8) == (ip4("198.19.0.0") >> 8) ? 1 : 0;
  }
  s.timeouts.tcp_syn_ms = s.timeouts.tcp_established_ms = 3'600'000;
  return s;
}

struct Bench {
  std::unique_ptr<Snapshot> snap;
  std::unique_ptr<Pipeline> pipe;
  std::unique_ptr<NextHopMap> next_hops;  // as the main lcore's manager publishes them

  bool vlan = false;  // the clients are on VLAN 100 (bench_state)

  Bench(uint32_t capacity, uint32_t n_local_ips, bool meters = false, uint32_t n_routes = 0,
        api::Mode mode = api::Mode::kFullNat, bool vlan = false)
      : vlan(vlan) {
    PipelineParams p;
    p.flow_capacity = capacity;
    p.flow_meters = meters;
    p.hz = kHz;
    p.port_macs = {kOurMac};
    SnapshotParams sp;
    sp.route_lpm = eal_running;
    snap = build_snapshot(bench_state(n_local_ips, n_routes, mode, vlan), sp);
    pipe = std::make_unique<Pipeline>(p);
    pipe->on_snapshot(*snap, 1);
    NeighManagerParams np;
    np.hz = kHz;
    np.port_macs = {kOurMac};
    NeighManager nm(np);
    nm.on_snapshot(*snap, 1);
    next_hops = nm.next_hops_if_changed();
    pipe->set_next_hops(next_hops.get());
  }
};

Pkt client(uint32_t i, uint8_t flags, bool vlan = false) {
  Pkt p;
  if (vlan) p.vlan = kClientsVid;  // 64 bytes with the tag
  p.src_mac = kGenMac;
  p.dst_mac = kOurMac;
  p.src_ip = ip4("198.19.0.0") + (i & 0xff);  // 256 clients on-link
  p.dst_ip = ip4("203.0.113.10");
  p.sport = static_cast<uint16_t>(1024 + (i >> 8));
  p.dport = 80;
  p.tcp_flags = flags;
  p.payload = std::string(6, 'x');  // 64-byte frame with 4-byte FCS
  // Sequence numbers the tracker accepts: the client's ISN is 1000, the backend's 5000; every
  // later segment resends the first bytes (a retransmission, in the window).
  p.seq = flags & 0x02 ? 1000 : 1001;
  p.ack = flags & 0x10 ? 5001 : 0;
  return p;
}

// A frame's buffer: the headroom the pipeline may write in front of it (an encapsulation's
// outer headers, a VLAN tag: Action::prepend), then a 64-byte frame, cache-line aligned.
struct alignas(64) Slot {
  uint8_t head[Pipeline::kHeadroom];
  uint8_t frame[64];
};

// Run one frame through the pipeline in `slot`; abort unless it is sent. Returns where the
// frame starts once sent (out_start).
const uint8_t* send_one(Bench& b, Slot& slot, const Frame& f, uint64_t now) {
  std::memcpy(slot.frame, f.data(), f.size());
  const Action a =
      b.pipe->process(b.snap.get(), slot.frame, static_cast<uint32_t>(f.size()), 0, now);
  if (a.kind != Action::Kind::kTx) std::abort();
  return out_start(a, slot.frame);
}

// Bring flow i to established: SYN, backend SYN-ACK, client ACK.
void establish(Bench& b, uint32_t i) {
  Slot slot;
  // The rewritten SYN (untagged, to the backends) tells us the backend and local address:
  // answer from there.
  const uint8_t* syn = send_one(b, slot, test::build(client(i, 0x02, b.vlan)), 2);
  Pkt sa;
  sa.src_mac = kGenMac;
  sa.dst_mac = kOurMac;
  sa.src_ip = static_cast<uint32_t>(syn[30] << 24 | syn[31] << 16 | syn[32] << 8 | syn[33]);
  sa.dst_ip = static_cast<uint32_t>(syn[26] << 24 | syn[27] << 16 | syn[28] << 8 | syn[29]);
  sa.sport = static_cast<uint16_t>(syn[36] << 8 | syn[37]);
  sa.dport = static_cast<uint16_t>(syn[34] << 8 | syn[35]);
  sa.tcp_flags = 0x12;
  sa.seq = 5000;
  sa.ack = 1000 + 1 + 6;  // the SYN and its 6 bytes
  send_one(b, slot, test::build(sa), 3);
  send_one(b, slot, test::build(client(i, 0x10, b.vlan)), 4);
}

// Bring DSR flow i to established: the client's SYN, then its ACK (the backend answers the
// client directly, never through rondo).
void establish_dsr(Bench& b, uint32_t i) {
  Slot slot;
  for (uint8_t flags : {uint8_t{0x02}, uint8_t{0x10}}) send_one(b, slot, test::build(client(i, flags)), 2);
}

// One burst of BM_Established, BM_Modes or BM_NewFlow. Not inlined, and counted (printed at exit), for
// callgrind's --toggle-collect: its instructions / (bursts * 32) is the instruction count per
// packet (docs/benchmarks.md, "The new-connection path").
__attribute__((noinline)) void run_burst(Bench& b, uint8_t* const* f, const uint32_t* l, Action* a) {
  b.pipe->process_burst(b.snap.get(), f, l, kBurst, 0, 5, false, a);
  ++bursts_run;
}

void report(benchmark::State& state, uint64_t cycles, uint64_t packets) {
  state.SetItemsProcessed(static_cast<int64_t>(packets));
  state.counters["cycles_per_pkt"] = packets ? static_cast<double>(cycles) / static_cast<double>(packets) : 0;
}

void established(benchmark::State& state, uint32_t n, uint32_t n_routes,
                 api::Mode mode = api::Mode::kFullNat, bool vlan = false) {
  Bench b(n + n / 8, (n * 2) / 60000 + 1, false, n_routes, mode, vlan);
  const uint32_t flen = vlan ? 64 : 60;
  if (n_routes) state.SetLabel(b.snap->routes.uses_lpm() ? "rte_lpm" : "scan");
  for (uint32_t i = 0; i < n; ++i) {
    if (mode == api::Mode::kFullNat)
      establish(b, i);
    else
      establish_dsr(b, i);
  }
  // Random flow order, templates prebuilt; a burst is copied in, then processed.
  std::vector<Frame> templates;
  std::mt19937 rng(1);
  const uint32_t n_templates = std::min<uint32_t>(n, 1u << 16);
  for (uint32_t t = 0; t < n_templates; ++t)
    templates.push_back(test::build(client(rng() % n, 0x18, vlan)));
  std::vector<Slot> burst(kBurst);
  std::vector<uint8_t*> ptrs;
  for (auto& f : burst) ptrs.push_back(f.frame);
  std::vector<uint32_t> lens(kBurst, flen);
  std::vector<Action> actions(kBurst);
  uint64_t cycles = 0, packets = 0, next = 0;
  for (auto _ : state) {
    for (uint32_t k = 0; k < kBurst; ++k, ++next)
      std::memcpy(burst[k].frame, templates[next % n_templates].data(), flen);
    const uint64_t t0 = __rdtsc();
    run_burst(b, ptrs.data(), lens.data(), actions.data());
    benchmark::DoNotOptimize(actions.data());
    cycles += __rdtsc() - t0;
    packets += kBurst;
  }
  if (b.pipe->flows().size() != n) state.SkipWithError("flows lost");
  for (auto d : b.pipe->counters().drops)
    if (d) state.SkipWithError("drops during the run");
  report(state, cycles, packets);
}

void BM_Established(benchmark::State& state) {
  established(state, static_cast<uint32_t>(state.range(0)), 0);
}
BENCHMARK(BM_Established)->Arg(1000)->Arg(100'000)->Arg(1'000'000)->Unit(benchmark::kNanosecond);

void BM_EstablishedVlan(benchmark::State& state) {
  established(state, static_cast<uint32_t>(state.range(0)), 0, api::Mode::kFullNat, true);
}
BENCHMARK(BM_EstablishedVlan)->Arg(1000)->Unit(benchmark::kNanosecond);

// ---- IPv6: the same scenario with v6 addresses (2001:db8::/32).
test::Ip16 v6_of(uint32_t v4) {
  test::Ip16 a = test::ip6("2001:db8::");
  a[12] = static_cast<uint8_t>(v4 >> 24);
  a[13] = static_cast<uint8_t>(v4 >> 16);
  a[14] = static_cast<uint8_t>(v4 >> 8);
  a[15] = static_cast<uint8_t>(v4);
  return a;
}
api::Addr addr_of(const test::Ip16& a) {
  api::Addr x;
  std::memcpy(x.b.data(), a.data(), 16);
  return x;
}

// bench_state's with every address mapped into 2001:db8::/96.
api::State bench_state6(uint32_t n_local_ips, api::Mode mode = api::Mode::kFullNat) {
  api::State s = bench_state(n_local_ips, 0, mode);
  auto to6 = [](api::Addr& a) { a = addr_of(v6_of(a.v4())); };
  for (auto& v : s.vips) {
    to6(v.ip);
    for (auto& b : v.backends) to6(b.ip);
  }
  for (auto& l : s.local_ips) to6(l);
  for (auto& n : s.neighbours) to6(n.ip);
  return s;
}

struct Bench6 {
  std::unique_ptr<Snapshot> snap;
  std::unique_ptr<Pipeline> pipe;
  std::unique_ptr<NextHopMap6> next_hops;

  Bench6(uint32_t capacity, uint32_t n_local_ips, api::Mode mode = api::Mode::kFullNat) {
    PipelineParams p;
    p.flow_capacity = 64;
    p.flow6_capacity = capacity;
    p.hz = kHz;
    p.port_macs = {kOurMac};
    snap = build_snapshot(bench_state6(n_local_ips, mode));
    pipe = std::make_unique<Pipeline>(p);
    pipe->on_snapshot(*snap, 1);
    NeighManagerParams np;
    np.hz = kHz;
    np.port_macs = {kOurMac};
    NeighManager nm(np);
    nm.on_conf6(ndp_conf(*snap), 1);
    next_hops = nm.next_hops6_if_changed();
    pipe->set_next_hops6(next_hops.get());
  }
};

Pkt client6(uint32_t i, uint8_t flags) {
  Pkt p = client(i, flags);
  p.v6 = true;
  p.src6 = v6_of(p.src_ip);
  p.dst6 = v6_of(p.dst_ip);
  return p;
}

constexpr uint32_t kFrame6 = 14 + 40 + 20 + 6;

void establish6(Bench6& b, uint32_t i) {
  Frame syn = test::build(client6(i, 0x02));
  if (b.pipe->process(b.snap.get(), syn.data(), kFrame6, 0, 2).kind != Action::Kind::kTx)
    std::abort();
  Pkt sa = client6(i, 0x12);  // the answer, from where the rewritten SYN went
  std::memcpy(sa.src6.data(), &syn[14 + 24], 16);
  std::memcpy(sa.dst6.data(), &syn[14 + 8], 16);
  sa.sport = static_cast<uint16_t>(syn[56] << 8 | syn[57]);
  sa.dport = static_cast<uint16_t>(syn[54] << 8 | syn[55]);
  sa.payload.clear();
  sa.seq = 5000;
  sa.ack = 1000 + 1 + 6;
  Frame f = test::build(sa);
  if (b.pipe->process(b.snap.get(), f.data(), static_cast<uint32_t>(f.size()), 0, 3).kind !=
      Action::Kind::kTx)
    std::abort();
  Frame ack = test::build(client6(i, 0x10));
  if (b.pipe->process(b.snap.get(), ack.data(), kFrame6, 0, 4).kind != Action::Kind::kTx)
    std::abort();
}

struct alignas(64) Slot6 {
  uint8_t head[Pipeline::kHeadroom];
  uint8_t frame[128];
};

// One burst of BM_Established6 or BM_Modes6, as run_burst (callgrind's --toggle-collect).
__attribute__((noinline)) void run_burst6(Bench6& b, uint8_t* const* f, const uint32_t* l,
                                          Action* a) {
  b.pipe->process_burst(b.snap.get(), f, l, kBurst, 0, 5, false, a);
  ++bursts_run;
}

// Bring IPv6 DSR flow i to established: the client's SYN, then its ACK.
void establish_dsr6(Bench6& b, uint32_t i) {
  Slot6 slot;
  for (uint8_t flags : {uint8_t{0x02}, uint8_t{0x10}}) {
    const Frame f = test::build(client6(i, flags));
    std::memcpy(slot.frame, f.data(), f.size());
    if (b.pipe->process(b.snap.get(), slot.frame, static_cast<uint32_t>(f.size()), 0, 2).kind !=
        Action::Kind::kTx)
      std::abort();
  }
}

void established6(benchmark::State& state, uint32_t n, api::Mode mode) {
  Bench6 b(n + n / 8, (n * 2) / 60000 + 1, mode);
  for (uint32_t i = 0; i < n; ++i) {
    if (mode == api::Mode::kFullNat)
      establish6(b, i);
    else
      establish_dsr6(b, i);
  }
  std::vector<Frame> templates;
  std::mt19937 rng(1);
  const uint32_t n_templates = std::min<uint32_t>(n, 1u << 16);
  for (uint32_t t = 0; t < n_templates; ++t) templates.push_back(test::build(client6(rng() % n, 0x18)));
  std::vector<Slot6> burst(kBurst);
  std::vector<uint8_t*> ptrs;
  for (auto& f : burst) ptrs.push_back(f.frame);
  std::vector<uint32_t> lens(kBurst, kFrame6);
  std::vector<Action> actions(kBurst);
  uint64_t cycles = 0, packets = 0, next = 0;
  for (auto _ : state) {
    for (uint32_t k = 0; k < kBurst; ++k, ++next)
      std::memcpy(burst[k].frame, templates[next % n_templates].data(), kFrame6);
    const uint64_t t0 = __rdtsc();
    run_burst6(b, ptrs.data(), lens.data(), actions.data());
    benchmark::DoNotOptimize(actions.data());
    cycles += __rdtsc() - t0;
    packets += kBurst;
  }
  if (b.pipe->flows6().size() != n) state.SkipWithError("flows lost");
  for (auto d : b.pipe->counters().drops)
    if (d) state.SkipWithError("drops during the run");
  report(state, cycles, packets);
}

void BM_Established6(benchmark::State& state) {
  established6(state, static_cast<uint32_t>(state.range(0)), api::Mode::kFullNat);
}
BENCHMARK(BM_Established6)->Arg(1000)->Arg(100'000)->Unit(benchmark::kNanosecond);

void BM_Modes6(benchmark::State& state) {
  const auto mode = static_cast<api::Mode>(state.range(0));
  for (const api::ModeName& m : api::kModeNames)
    if (m.mode == mode) state.SetLabel(m.name);
  established6(state, 1000, mode);
}
BENCHMARK(BM_Modes6)->DenseRange(1, 4)->Unit(benchmark::kNanosecond);

void BM_Routed(benchmark::State& state) {
  established(state, 1000, static_cast<uint32_t>(state.range(0)));
}
BENCHMARK(BM_Routed)->Arg(0)->Arg(16)->Arg(256)->Unit(benchmark::kNanosecond);

void BM_Modes(benchmark::State& state) {
  const auto mode = static_cast<api::Mode>(state.range(0));
  for (const api::ModeName& m : api::kModeNames)
    if (m.mode == mode) state.SetLabel(m.name);
  established(state, 1000, 0, mode);
}
BENCHMARK(BM_Modes)->DenseRange(1, 4)->Unit(benchmark::kNanosecond);

void BM_NewFlow(benchmark::State& state) {
  const uint32_t capacity = 1u << 16;
  Bench b(capacity, 2);
  std::vector<Slot> burst(kBurst);
  std::vector<uint8_t*> ptrs;
  for (auto& f : burst) ptrs.push_back(f.frame);
  std::vector<uint32_t> lens(kBurst, 60);
  std::vector<Action> actions(kBurst);
  // 256 clients × 64k ports: unique 5-tuples for the whole run.
  uint32_t next = 0;
  // Fill the table first (not measured), so that every measured burst evicts: the same work
  // per packet however many iterations the run takes (callgrind's counts stay comparable).
  for (; next < capacity; ++next) {
    Frame f = test::build(client(next, 0x02));
    b.pipe->process(b.snap.get(), f.data(), static_cast<uint32_t>(f.size()), 0, 5);
  }
  uint64_t cycles = 0, packets = 0;
  for (auto _ : state) {
    for (uint32_t k = 0; k < kBurst; ++k) {
      Frame f = test::build(client(next++ % (256u * 64000u), 0x02));
      std::memcpy(burst[k].frame, f.data(), 60);
    }
    const uint64_t t0 = __rdtsc();
    run_burst(b, ptrs.data(), lens.data(), actions.data());
    benchmark::DoNotOptimize(actions.data());
    cycles += __rdtsc() - t0;
    packets += kBurst;
  }
  uint64_t dropped = 0;
  for (auto d : b.pipe->counters().drops) dropped += d;
  state.counters["dropped"] = static_cast<double>(dropped);
  report(state, cycles, packets);
}
BENCHMARK(BM_NewFlow)->Unit(benchmark::kNanosecond);

void BM_Copy(benchmark::State& state) {
  std::vector<Frame> templates;
  for (uint32_t t = 0; t < 1024; ++t) templates.push_back(test::build(client(t, 0x18)));
  std::vector<Slot> burst(kBurst);
  uint64_t cycles = 0, packets = 0, next = 0;
  for (auto _ : state) {
    const uint64_t t0 = __rdtsc();
    for (uint32_t k = 0; k < kBurst; ++k, ++next)
      std::memcpy(burst[k].frame, templates[next % 1024].data(), 60);
    benchmark::DoNotOptimize(burst.data());
    cycles += __rdtsc() - t0;
    packets += kBurst;
  }
  report(state, cycles, packets);
}
BENCHMARK(BM_Copy)->Unit(benchmark::kNanosecond);

// Established traffic over 1k flows, each burst through `run` (the pipeline, or the worker's
// sequence around it).
template <typename Run>
void established_1k(benchmark::State& state, Bench& b, Run&& run) {
  const uint32_t n = 1000;
  for (uint32_t i = 0; i < n; ++i) establish(b, i);
  std::vector<Frame> templates;
  std::mt19937 rng(1);
  for (uint32_t t = 0; t < n; ++t) templates.push_back(test::build(client(rng() % n, 0x18)));
  std::vector<Slot> burst(kBurst);
  std::vector<uint8_t*> ptrs;
  for (auto& f : burst) ptrs.push_back(f.frame);
  std::vector<uint32_t> lens(kBurst, 60);
  std::vector<Action> actions(kBurst);
  uint64_t cycles = 0, packets = 0, next = 0;
  for (auto _ : state) {
    for (uint32_t k = 0; k < kBurst; ++k, ++next)
      std::memcpy(burst[k].frame, templates[next % n].data(), 60);
    const uint64_t t0 = __rdtsc();
    run(ptrs.data(), lens.data(), actions.data());
    benchmark::DoNotOptimize(actions.data());
    cycles += __rdtsc() - t0;
    packets += kBurst;
  }
  for (auto d : b.pipe->counters().drops)
    if (d) state.SkipWithError("drops during the run");
  report(state, cycles, packets);
}

void BM_Meters(benchmark::State& state) {
  Bench b(1125, 1, state.range(0) != 0);
  established_1k(state, b, [&](uint8_t* const* f, const uint32_t* l, Action* a) {
    b.pipe->process_burst(b.snap.get(), f, l, kBurst, 0, 5, false, a);
  });
}
BENCHMARK(BM_Meters)->Arg(0)->Arg(1)->Unit(benchmark::kNanosecond);

// Bursts run through run_burst_as_worker in this process (every run of every benchmark),
// printed at exit: callgrind's instruction count over it, divided by 32 per burst, is the
// instruction count per packet.

// What runtime/worker.cpp's run_burst does around the pipeline.
__attribute__((noinline)) void run_burst_as_worker(Bench& b, Tracer& tracer, uint8_t* const* f,
                                                   const uint32_t* l, Action* a) {
  const bool tracing = tracer.armed();
  if (__builtin_expect(tracing, 0)) tracer.before(*b.pipe, b.snap.get(), f, l, kBurst, 0, false, 5);
  b.pipe->process_burst(b.snap.get(), f, l, kBurst, 0, 5, false, a);
  if (__builtin_expect(tracing, 0)) tracer.after(*b.pipe, f, l, a, kBurst);
  ++bursts_as_worker;
}

// The same without the tracer (the loop before tracing existed): the baseline of mode 0.
__attribute__((noinline)) void run_burst_untraced(Bench& b, uint8_t* const* f, const uint32_t* l,
                                                  Action* a) {
  b.pipe->process_burst(b.snap.get(), f, l, kBurst, 0, 5, false, a);
  ++bursts_as_worker;
}

void BM_Traced(benchmark::State& state) {
  const auto mode = state.range(0);
  Bench b(1125, 1, true);
  Tracer tracer;
  // Armed for as long as the run lasts; mode 1's filter (a client port no flow has) never
  // matches, mode 2's (none) matches everything: the records are dropped every burst.
  api::FlowFilter nothing;
  nothing.client_port = 1;
  if (mode == 1) tracer.arm(nothing, 1, 0, UINT64_MAX);
  established_1k(state, b, [&](uint8_t* const* f, const uint32_t* l, Action* a) {
    if (mode == 2) tracer.arm(api::FlowFilter{}, kBurst, 0, UINT64_MAX);
    if (mode == 3)
      run_burst_untraced(b, f, l, a);
    else
      run_burst_as_worker(b, tracer, f, l, a);
  });
}
BENCHMARK(BM_Traced)->Arg(0)->Arg(1)->Arg(2)->Arg(3)->Unit(benchmark::kNanosecond);

void BM_FlowMemory(benchmark::State& state) {
  const auto n = static_cast<uint32_t>(state.range(0));
  for (auto _ : state) {
    FlowTable t(n, HashKey{1, 2}, [](void*, const Flow&) {}, nullptr);
    state.counters["bytes_per_flow"] = static_cast<double>(t.memory_bytes()) / n;
    state.counters["MiB"] = static_cast<double>(t.memory_bytes()) / (1 << 20);
  }
}
BENCHMARK(BM_FlowMemory)->Arg(1'000'000)->Arg(10'000'000)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace rondo::dp

int main(int argc, char** argv) {
  // rte_lpm needs EAL memory: a small EAL of its own, no hugepages, nothing shared.
  const std::string prefix = "rondo-bench-" + std::to_string(getpid());
  std::vector<std::string> eal = {"pipeline_bench", "--no-huge", "-m", "256", "--no-pci",
                                  "--no-shconf", "-l", "0", "--file-prefix", prefix,
                                  "--log-level", "*:error"};
  std::vector<char*> eal_argv;
  for (auto& a : eal) eal_argv.push_back(a.data());
  rondo::dp::eal_running = rte_eal_init(static_cast<int>(eal_argv.size()), eal_argv.data()) >= 0;
  if (!rondo::dp::eal_running) std::fprintf(stderr, "no EAL: routes are scanned, not in an rte_lpm\n");
  std::atexit([] {
    std::filesystem::remove_all("/var/run/dpdk/rondo-bench-" + std::to_string(getpid()));
  });
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  if (rondo::dp::bursts_run)
    std::fprintf(stderr, "bursts through run_burst: %lu\n",
                 static_cast<unsigned long>(rondo::dp::bursts_run));
  if (rondo::dp::bursts_as_worker)
    std::fprintf(stderr, "bursts through run_burst_as_worker: %lu\n",
                 static_cast<unsigned long>(rondo::dp::bursts_as_worker));
  return 0;
}
