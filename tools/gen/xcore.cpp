// rondo-xcore: how far apart two CPUs are, as the round trip of one cache line between
// them. tools/bench runs it before and after each run: on a VM the host may place the
// two vCPUs on cores that share a cache or on cores that don't, and every packet over
// memif crosses between the two cores (see docs/benchmarks.md, "Why runs were bimodal").
//
//   rondo-xcore [CPU_A CPU_B [ROUND_TRIPS]]     (default 0 1 20000)
//
// Prints the median and the best of 7 batches, in ns per round trip: "median best".
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

namespace {

struct alignas(64) Line {
  std::atomic<int> turn{0};  // 1: the peer's turn to answer, 0: the caller's
};

bool pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0;
}

bool parse(const char* s, long lo, long hi, long& out) {
  char* end = nullptr;
  out = std::strtol(s, &end, 10);
  return end != s && *end == '\0' && out >= lo && out <= hi;
}

}  // namespace

int main(int argc, char** argv) {
  long a = 0, b = 1, n = 20000;
  if (argc != 1 && argc != 3 && argc != 4) {
    std::fprintf(stderr, "usage: rondo-xcore [CPU_A CPU_B [ROUND_TRIPS]]\n");
    return 2;
  }
  if (argc >= 3 && (!parse(argv[1], 0, CPU_SETSIZE - 1, a) || !parse(argv[2], 0, CPU_SETSIZE - 1, b) || a == b)) {
    std::fprintf(stderr, "rondo-xcore: CPU_A and CPU_B must be two different CPU numbers\n");
    return 2;
  }
  if (argc == 4 && !parse(argv[3], 100, 100000000, n)) {
    std::fprintf(stderr, "rondo-xcore: ROUND_TRIPS must be 100-100000000\n");
    return 2;
  }
  constexpr int kBatches = 7;
  Line line;
  bool peer_pinned = true;
  std::thread peer([&] {
    peer_pinned = pin(static_cast<int>(b));
    for (long i = 0; i < n * kBatches; i++) {
      while (line.turn.load(std::memory_order_acquire) != 1) {
      }
      line.turn.store(0, std::memory_order_release);
    }
  });
  if (!pin(static_cast<int>(a))) {
    std::fprintf(stderr, "rondo-xcore: cannot run on CPU %ld\n", a);
    std::_Exit(1);  // the peer spins forever
  }
  std::array<double, kBatches> ns{};
  for (auto& batch : ns) {
    const auto t0 = std::chrono::steady_clock::now();
    for (long i = 0; i < n; i++) {
      line.turn.store(1, std::memory_order_release);
      while (line.turn.load(std::memory_order_acquire) != 0) {
      }
    }
    batch = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() /
            static_cast<double>(n);
  }
  peer.join();
  if (!peer_pinned) {
    std::fprintf(stderr, "rondo-xcore: cannot run on CPU %ld\n", b);
    return 1;
  }
  std::sort(ns.begin(), ns.end());
  std::printf("%.1f %.1f\n", ns[kBatches / 2], ns[0]);
  return 0;
}
