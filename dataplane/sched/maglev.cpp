#include "dataplane/sched/maglev.h"

#include <algorithm>
#include <cstring>
#include <numeric>

namespace rondo::dp {

HashKey maglev_key(uint64_t seed) { return derive_hash_key(HashKey{seed, 0}, HashUse::kMaglev); }

void maglev_build(std::span<const MaglevBackend> backends, const HashKey& key, uint32_t size,
                  uint16_t* table) {
  const uint32_t n = static_cast<uint32_t>(backends.size());
  // Turns are taken in address:port order, whatever order the pool was given in: two hosts
  // whose configs list the backends differently still fill the same entries the same way.
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0u);
  auto endpoint = [&](uint32_t i) {
    uint8_t b[6];
    std::memcpy(b, &backends[i].ip, 4);
    std::memcpy(b + 4, &backends[i].port, 2);
    return uint64_t{b[0]} << 40 | uint64_t{b[1]} << 32 | uint64_t{b[2]} << 24 |
           uint64_t{b[3]} << 16 | uint64_t{b[4]} << 8 | b[5];
  };
  std::sort(order.begin(), order.end(),
            [&](uint32_t a, uint32_t b) { return endpoint(a) < endpoint(b); });

  // Permutation of backend i: offset + j * skip (mod size), j = 0, 1, ...; both from the
  // hash of its address and port bytes as on the wire.
  std::vector<uint32_t> offset(n), skip(n), next(n, 0);
  std::vector<uint64_t> credit(n, 0);
  uint32_t wmax = 0;
  for (uint32_t i = 0; i < n; ++i) {
    uint8_t b[6];
    std::memcpy(b, &backends[i].ip, 4);
    std::memcpy(b + 4, &backends[i].port, 2);
    const uint64_t h = siphash<1, 3>(key, b, sizeof b);
    offset[i] = static_cast<uint32_t>((h & 0xffffffff) % size);
    skip[i] = static_cast<uint32_t>((h >> 32) % (size - 1)) + 1;
    wmax = std::max<uint32_t>(wmax, backends[i].weight);
  }

  // Weighted: each round, backend i earns its weight in credit and claims one entry (its
  // next free preferred one) per wmax of credit, so the heaviest claims one a round and the
  // shares follow the weights within an entry or two. Equal weights: the paper's loop.
  std::vector<bool> taken(size, false);
  uint32_t filled = 0;
  while (filled < size) {
    for (uint32_t i : order) {
      credit[i] += backends[i].weight;
      while (credit[i] >= wmax && filled < size) {
        credit[i] -= wmax;
        uint32_t c;
        do {
          c = static_cast<uint32_t>((offset[i] + uint64_t{next[i]} * skip[i]) % size);
          ++next[i];
        } while (taken[c]);
        taken[c] = true;
        table[c] = static_cast<uint16_t>(i);
        ++filled;
      }
      if (filled == size) break;
    }
  }
}

}  // namespace rondo::dp
