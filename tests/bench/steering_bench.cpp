// Software steering's hand-over between two workers on two cores, in process, no I/O: what
// a full-NAT reply that lands on the wrong worker costs (docs/benchmarks.md, "Scaling").
//   BM_SteerHandover/B: the benchmark thread plays the receiving worker: it writes a frame's
//                       first cache line (as the NIC's DMA and the parse would make it
//                       present in its cache) and enqueues the buffer on an SP/SC rte_ring of
//                       the dataplane's size in bursts of B; a second thread, pinned to the
//                       other core, plays the owner: it dequeues bursts and reads each
//                       frame's first line (the parse), which moves it between the cores.
//                       Reported: frames handed over per second, and TSC cycles per frame on
//                       the sending side (the receiving side runs in parallel).
// The ring lives in plain memory (rte_ring_init): no EAL, as the ring's code is the same.
#include <benchmark/benchmark.h>
#include <pthread.h>
#include <rte_ring.h>
#include <sched.h>
#include <x86intrin.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

namespace {

constexpr unsigned kRingSize = 1024;   // dataplane.cpp's kSteerRingSize
constexpr unsigned kBuffers = 4096;    // frames in flight at most: the ring plus bursts
constexpr size_t kFrame = 2048;        // an mbuf's data room

void pin(unsigned cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

void BM_SteerHandover(benchmark::State& state) {
  const unsigned burst = static_cast<unsigned>(state.range(0));
  const ssize_t sz = rte_ring_get_memsize(kRingSize);
  auto* ring = static_cast<rte_ring*>(std::aligned_alloc(64, static_cast<size_t>(sz)));
  rte_ring_init(ring, "steer", kRingSize, RING_F_SP_ENQ | RING_F_SC_DEQ);
  // Frames, and a free list going back from the owner to the receiver (as mbufs go back to
  // the pool after TX): a second SP/SC ring.
  auto* back = static_cast<rte_ring*>(std::aligned_alloc(64, static_cast<size_t>(rte_ring_get_memsize(kBuffers))));
  rte_ring_init(back, "back", kBuffers, RING_F_SP_ENQ | RING_F_SC_DEQ);
  std::vector<uint8_t*> frames(kBuffers);
  for (auto& f : frames) {
    f = static_cast<uint8_t*>(std::aligned_alloc(64, kFrame));
    std::memset(f, 0, kFrame);
  }
  std::vector<uint8_t*> free_list(frames);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> consumed{0};
  std::thread owner([&] {
    pin(1);
    void* got[64];
    uint64_t n = 0, sum = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      const unsigned k = rte_ring_sc_dequeue_burst(ring, got, burst, nullptr);
      for (unsigned i = 0; i < k; ++i) sum += static_cast<uint8_t*>(got[i])[13];  // the parse
      if (k) rte_ring_sp_enqueue_burst(back, got, k, nullptr);
      n += k;
    }
    benchmark::DoNotOptimize(sum);
    consumed.store(n);
  });
  pin(0);
  void* out[64];
  uint64_t sent = 0;
  const uint64_t t0 = __rdtsc();
  for (auto _ : state) {
    // Take back what the owner is done with, then hand over one burst.
    void* ret[64];
    unsigned r;
    while ((r = rte_ring_sc_dequeue_burst(back, ret, 64, nullptr)) > 0)
      for (unsigned i = 0; i < r; ++i) free_list.push_back(static_cast<uint8_t*>(ret[i]));
    unsigned k = 0;
    while (k < burst && !free_list.empty()) {
      uint8_t* f = free_list.back();
      free_list.pop_back();
      f[12] = 0x08;  // the receiving worker wrote/parsed the first line
      f[13] = static_cast<uint8_t>(sent + k);
      out[k++] = f;
    }
    unsigned done = rte_ring_sp_enqueue_burst(ring, out, k, nullptr);
    for (unsigned i = done; i < k; ++i) free_list.push_back(static_cast<uint8_t*>(out[i]));
    sent += done;
  }
  const uint64_t cycles = __rdtsc() - t0;
  stop = true;
  owner.join();
  state.counters["frames/s"] = benchmark::Counter(static_cast<double>(sent), benchmark::Counter::kIsRate);
  state.counters["cycles/frame"] = sent ? static_cast<double>(cycles) / static_cast<double>(sent) : 0;
  state.counters["received"] = static_cast<double>(consumed.load());
  for (auto* f : frames) std::free(f);
  std::free(back);
  std::free(ring);
}
BENCHMARK(BM_SteerHandover)->Arg(8)->Arg(32)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
