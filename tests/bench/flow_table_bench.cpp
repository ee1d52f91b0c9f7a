// FlowTable microbenchmarks: lookup hit/miss (one at a time, and in bursts with the bucket
// prefetch the worker does), insert+erase churn, UDP traffic keeping the idle order. The
// argument is the table capacity: 1k flows stay in L2, 16k in L3, 1M (~100 MB) measures the
// DRAM misses a busy lcore really sees.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <utility>
#include <vector>

#include "dataplane/flow/port_pool.h"
#include "dataplane/flow/table.h"

namespace rondo::dp {
namespace {

constexpr HashKey kKey{0x0123456789abcdefull, 0xfedcba9876543210ull};

// The keyed hash alone (SipHash-1-3 of a flow key), for the per-packet cost it adds.
void BM_FlowHash(benchmark::State& state) {
  FlowKey k{0x0a000001, 0xcb00710a, 1024, 80, 6};
  for (auto _ : state) {
    benchmark::DoNotOptimize(flow_hash(k, kKey));
    k.src_port++;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FlowHash);

struct Keys {
  std::vector<FlowKey> fwd, rev;
};

// n distinct flows with random addresses; field bijections keep them unique.
Keys make_keys(uint32_t n, uint32_t salt) {
  std::mt19937 rng(salt);
  Keys k;
  k.fwd.resize(n);
  k.rev.resize(n);
  for (uint32_t i = 0; i < n; i++) {
    uint32_t u = (i + salt * n) * 2654435761u;
    k.fwd[i] = FlowKey{u, static_cast<uint32_t>(rng()), static_cast<uint16_t>(rng()), 443, 6};
    k.rev[i] = FlowKey{static_cast<uint32_t>(rng()), u ^ 0x5a5a5a5a, 8080,
                       static_cast<uint16_t>(rng()), 6};
  }
  return k;
}

void fill(FlowTable& t, const Keys& k, uint32_t n, FlowState state = FlowState::kEstablished,
          uint64_t expires = UINT64_MAX) {
  for (uint32_t i = 0; i < n; i++)
    if (t.insert(k.fwd[i], k.rev[i], state, expires, 0).status !=
        FlowTable::InsertStatus::kOk)
      std::abort();
}

// Lookup order: random over both directions, so neither records nor buckets come in order.
// Copies, read sequentially: in the worker the key comes from a packet already in cache, so
// fetching it must not add a miss the table doesn't cause.
std::vector<FlowKey> shuffled(const Keys& k, uint32_t n) {
  std::vector<FlowKey> order;
  order.reserve(2 * n);
  for (uint32_t i = 0; i < n; i++) {
    order.push_back(k.fwd[i]);
    order.push_back(k.rev[i]);
  }
  std::shuffle(order.begin(), order.end(), std::mt19937(7));
  return order;
}

void report(benchmark::State& state, const FlowTable& t) {
  state.SetItemsProcessed(state.iterations());
  state.counters["bytes_per_flow"] =
      static_cast<double>(t.memory_bytes()) / static_cast<double>(t.capacity());
}

void BM_LookupHit(benchmark::State& state) {
  const auto cap = static_cast<uint32_t>(state.range(0));
  FlowTable t(cap, kKey, nullptr, nullptr);
  Keys k = make_keys(cap, 1);
  fill(t, k, cap);
  auto order = shuffled(k, cap);
  size_t i = 0;
  for (auto _ : state) {
    const FlowKey& key = order[i];
    if (++i == order.size()) i = 0;
    auto hit = t.lookup(key, 1);
    benchmark::DoNotOptimize(hit);
  }
  report(state, t);
}

void BM_LookupMiss(benchmark::State& state) {
  const auto cap = static_cast<uint32_t>(state.range(0));
  FlowTable t(cap, kKey, nullptr, nullptr);
  fill(t, make_keys(cap, 1), cap);
  Keys other = make_keys(cap, 2);
  uint32_t i = 0;
  for (auto _ : state) {
    const FlowKey& key = other.fwd[i];
    if (++i == cap) i = 0;
    auto hit = t.lookup(key, 1);
    benchmark::DoNotOptimize(hit);
  }
  report(state, t);
}

// As the worker does it: hash a burst, prefetch every key's buckets, then look them up.
void BM_LookupHitBurst32(benchmark::State& state) {
  constexpr size_t kBurst = 32;
  const auto cap = static_cast<uint32_t>(state.range(0));
  FlowTable t(cap, kKey, nullptr, nullptr);
  Keys k = make_keys(cap, 1);
  fill(t, k, cap);
  auto order = shuffled(k, cap);
  order.resize(order.size() / kBurst * kBurst);
  size_t i = 0;
  FlowTable::Probe probe[kBurst];
  for (auto _ : state) {
    const FlowKey* burst = &order[i];
    i += kBurst;
    if (i == order.size()) i = 0;
    for (size_t j = 0; j < kBurst; j++) {
      probe[j] = t.probe(burst[j]);
      t.prefetch(probe[j]);
    }
    for (size_t j = 0; j < kBurst; j++) {
      auto hit = t.lookup(burst[j], probe[j], 1);
      benchmark::DoNotOptimize(hit);
    }
  }
  report(state, t);
  state.SetItemsProcessed(state.iterations() * kBurst);
}

// Connection churn on a half-full table: one new flow in, one out.
void BM_InsertErase(benchmark::State& state) {
  const auto cap = static_cast<uint32_t>(state.range(0));
  FlowTable t(cap, kKey, nullptr, nullptr);
  fill(t, make_keys(cap, 1), cap / 2);
  Keys fresh = make_keys(cap, 3);
  uint32_t i = 0;
  for (auto _ : state) {
    auto r = t.insert(fresh.fwd[i], fresh.rev[i], FlowState::kSynSent, UINT64_MAX, 0);
    if (r.status != FlowTable::InsertStatus::kOk) {
      state.SkipWithError("insert failed");
      break;
    }
    t.erase(r.idx);
    if (++i == cap) i = 0;
  }
  report(state, t);
}

// A datagram of a random UDP flow: lookup, then touch_idle() as the pipeline does; one tick
// per packet, every flow once per pass, a new random order each pass (so a flow's list
// neighbours are not the flows just touched). Second argument 0: the timeout is long, so the
// expiry still covers it and nothing is written or moved (a busy flow's usual case). 1: the
// timeout is 2 * cap, so nearly every packet comes more than the timeout/8 slack after its
// flow's last and moves the flow to the back of the idle list, as a strict LRU would on
// every packet: the difference is the per-packet cost touch_idle() avoids.
void BM_UdpTouch(benchmark::State& state) {
  const auto cap = static_cast<uint32_t>(state.range(0));
  const bool moves = state.range(1) != 0;
  const uint64_t timeout = moves ? uint64_t{2} * cap : uint64_t{1} << 40;
  FlowTable t(cap, kKey, nullptr, nullptr);
  Keys k = make_keys(cap, 1);
  fill(t, k, cap, FlowState::kUdp, timeout + timeout / FlowTable::kIdleSlackDiv);
  std::vector<FlowKey> order(k.fwd);
  std::mt19937 rng(7);
  std::shuffle(order.begin(), order.end(), rng);
  size_t i = 0;
  uint64_t now = 1;
  for (auto _ : state) {
    const FlowKey& key = order[i];
    if (++i == order.size()) {
      state.PauseTiming();
      std::shuffle(order.begin(), order.end(), rng);
      i = 0;
      state.ResumeTiming();
    }
    auto hit = t.lookup(key, now);
    if (!hit.found()) {
      state.SkipWithError("flow expired");
      break;
    }
    t.touch_idle(hit.idx, now, timeout);
    ++now;
  }
  report(state, t);
}

// The worker loop's ageing, once per loop (Pipeline::tick), with est-1m's table: 1M
// established flows in a 2M table (tools/bench sizes it 2 x flows), none due. Argument 0:
// 0 = a fixed 64 records per loop (FlowTable::age, the worker before the sweep), 1 = the
// time-budgeted sweep (FlowTable::sweep: one round per second, at most 256 a loop).
// Argument 1: the loop's length in TSC ticks at 2.6 GHz, 10000 for a busy loop (a burst of
// 32 at about 300 cycles a packet: about 7.7 records a loop), 500 for an idle poll (0.4).
// age_step is not inlined and counts its calls, for callgrind's --toggle-collect: its
// instructions / calls (printed at exit) is the cost of one loop's ageing.
uint64_t age_steps = 0;
constexpr uint64_t kTscHz = 2'600'000'000;

__attribute__((noinline)) uint32_t age_step(FlowTable& t, uint64_t now, bool paced) {
  ++age_steps;
  return paced ? t.sweep(now) : t.age(now, 64);
}

void BM_AgeLoop(benchmark::State& state) {
  const bool paced = state.range(0) != 0;
  const auto loop_ticks = static_cast<uint64_t>(state.range(1));
  constexpr uint32_t kFlows = 1 << 20;
  FlowTable t(2 * kFlows, kKey, nullptr, nullptr);
  t.set_sweep(kTscHz, 256);
  fill(t, make_keys(kFlows, 1), kFlows);
  uint64_t now = kTscHz;
  t.sweep(now);
  const uint64_t swept0 = t.swept();
  for (auto _ : state) {
    now += loop_ticks;
    benchmark::DoNotOptimize(age_step(t, now, paced));
  }
  state.counters["records/loop"] =
      static_cast<double>(t.swept() - swept0) / static_cast<double>(state.iterations());
}

// The table's part of the new-connection path, alone: a full table of half-open flows
// (capacity 64k, as pipeline_bench's BM_NewFlow), and each step one new flow whose keys were
// just looked up and missed (insert_new), so the oldest half-open flow is reclaimed to make
// room: its two slots freed, two keys placed, a key moved when both of a key's buckets are
// full. churn_step is not inlined and counts its calls (callgrind's --toggle-collect:
// instructions / calls printed at exit). Counters: keys moved per new flow, bytes per flow.
uint64_t churn_steps = 0;

__attribute__((noinline)) FlowInsertResult churn_step(FlowTable& t, const FlowKey& f,
                                                       const FlowKey& b) {
  ++churn_steps;
  return t.insert_new(f, t.probe(f), b, t.probe(b), FlowState::kSynSent, UINT64_MAX, 0);
}

// i scrambled (SplitMix64's first steps): keys made on the fly, unique by i.
uint64_t mix(uint64_t i) {
  const uint64_t z = (i + 1) * 0x9e3779b97f4a7c15ull;
  return (z ^ (z >> 31)) * 0xbf58476d1ce4e5b9ull;
}

// Flow i's keys, random, made on the fly (no key arrays for 10M flows): unique by i.
std::pair<FlowKey, FlowKey> flow_keys(uint64_t i) {
  const uint64_t z = mix(i);
  const auto r = static_cast<uint32_t>(z >> 32);
  return {FlowKey{static_cast<uint32_t>(i), r, static_cast<uint16_t>(z), 443, 6},
          FlowKey{r ^ 0x5a5a5a5a, static_cast<uint32_t>(i), 8080, static_cast<uint16_t>(z >> 16), 6}};
}

void BM_NewFlowChurn(benchmark::State& state) {
  constexpr uint32_t kCap = 1 << 16;
  FlowTable t(kCap, kKey, nullptr, nullptr);
  uint64_t i = 0;
  for (; i < kCap; i++) {  // not through churn_step: callgrind counts the churn only
    auto [f, b] = flow_keys(i);
    if (t.insert(f, b, FlowState::kSynSent, UINT64_MAX, 0).status != FlowInsertStatus::kOk)
      std::abort();
  }
  const uint64_t moved0 = t.moved();
  for (auto _ : state) {
    auto [f, b] = flow_keys(i++);
    if (churn_step(t, f, b).status != FlowInsertStatus::kOk) {
      state.SkipWithError("insert failed");
      break;
    }
  }
  report(state, t);
  state.counters["moves/flow"] =
      static_cast<double>(t.moved() - moved0) / static_cast<double>(state.iterations());
}

// The load two choices reach: a table of range(0) flows filled until the first insert that
// finds no slot, with displacement off (range(1) = 0) or on (the default bound). Reports the
// fraction of slots filled then (load; capacity flows fill 3/4 of them) and flows placed.
void BM_FillLoad(benchmark::State& state) {
  const auto cap = static_cast<uint32_t>(state.range(0));
  for (auto _ : state) {
    FlowTable t(cap, kKey, nullptr, nullptr);
    if (state.range(1) == 0) t.set_displacement(0);
    uint64_t i = 0;
    for (; i < cap; i++) {
      auto [f, b] = flow_keys(i);
      if (t.insert(f, b, FlowState::kEstablished, UINT64_MAX, 0).status != FlowInsertStatus::kOk)
        break;
    }
    const size_t per_record = sizeof(Flow) + sizeof(TcpTrack);  // the rest is buckets
    const double slots = 8.0 * static_cast<double>(t.memory_bytes() - size_t{cap} * per_record) / 64;
    state.counters["load"] = 2.0 * static_cast<double>(t.size()) / slots;
    state.counters["flows"] = static_cast<double>(t.size());
    state.counters["moves/flow"] =
        static_cast<double>(t.moved()) / static_cast<double>(t.size());
    state.counters["bytes_per_flow"] = static_cast<double>(t.memory_bytes()) / cap;
  }
}

// The local-port quarantine under connection churn, as in cps: full (every add releases
// the oldest early) with range(0) tuples, each step the look-up alloc_local makes for a
// fresh port (a miss) and the add of a finished connection's tuple. One step a connection.
void BM_QuarantineChurn(benchmark::State& state) {
  const auto cap = static_cast<uint32_t>(state.range(0));
  Quarantine q(cap, kKey, nullptr, nullptr);
  auto tuple = [](uint64_t i) {
    const uint64_t z = mix(i);
    return PortTuple{0xc6126400u + static_cast<uint32_t>(i % 32), 0xc6120101u + static_cast<uint32_t>(z % 8),
                     static_cast<uint16_t>(1024 + (z >> 8) % 64512), 8080};
  };
  uint64_t i = 0;
  for (; i < cap; i++) q.add(tuple(i), 0, UINT64_MAX, 1);
  for (auto _ : state) {
    const PortTuple t = tuple(i++);
    benchmark::DoNotOptimize(q.holds(t, 1));
    q.add(t, 0, UINT64_MAX, 1);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["released_early"] = static_cast<double>(q.released_early());
}

BENCHMARK(BM_NewFlowChurn);
BENCHMARK(BM_QuarantineChurn)->Arg(1 << 16)->Arg(1 << 20);
BENCHMARK(BM_FillLoad)
    ->ArgsProduct({{1 << 16, 1 << 20, 10'000'000}, {0, 1}})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_LookupHit)->Arg(1 << 10)->Arg(1 << 14)->Arg(1 << 20);
BENCHMARK(BM_LookupMiss)->Arg(1 << 10)->Arg(1 << 14)->Arg(1 << 20);
BENCHMARK(BM_LookupHitBurst32)->Arg(1 << 10)->Arg(1 << 14)->Arg(1 << 20);
BENCHMARK(BM_InsertErase)->Arg(1 << 10)->Arg(1 << 14)->Arg(1 << 20);
BENCHMARK(BM_UdpTouch)->ArgsProduct({{1 << 10, 1 << 14, 1 << 20}, {0, 1}});
BENCHMARK(BM_AgeLoop)->ArgsProduct({{0, 1}, {10000, 500}});

}  // namespace
}  // namespace rondo::dp

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  if (rondo::dp::churn_steps)
    std::fprintf(stderr, "calls of churn_step: %lu\n",
                 static_cast<unsigned long>(rondo::dp::churn_steps));
  if (rondo::dp::age_steps)
    std::fprintf(stderr, "calls of age_step: %lu\n", static_cast<unsigned long>(rondo::dp::age_steps));
  return 0;
}
