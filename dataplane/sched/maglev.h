// Weighted Maglev (Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load
// Balancer", NSDI 2016, section 3.4): a lookup table of prime size M in which every backend
// owns about weight/sum(weights) of the entries, built from a per-backend permutation of
// the entries. A pool change moves few entries (about 1/N when one of N backends goes),
// and the table depends only on the backends' address:port and weight and on the seed, so
// two dataplanes with the same pool and seed build the same table and, hashing a packet the
// same way (maglev_flow_hash), choose the same backend without talking to each other.
//
// Built by the control agent with each snapshot, never on the fast path; a pick is one
// table read.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "dataplane/flow/key.h"
#include "dataplane/flow/siphash.h"

namespace rondo::dp {

/// Entries of a table (prime: each backend's skip then visits every entry).
inline constexpr uint32_t kMaglevSize = 65537;
/// The seed when none is configured (--maglev-seed): hosts that should agree share it.
inline constexpr uint64_t kDefaultMaglevSeed = 0x726f6e646f2d6d67ull;  // "rondo-mg"

struct MaglevBackend {
  uint32_t ip = 0;    // network order
  uint16_t port = 0;  // network order
  uint16_t weight = 1;  // > 0
};

/// The SipHash key the seed stands for: the permutations, the 5-tuple hash (maglev) and the
/// source-address hash (sh) are all keyed with it. Not the flow table's secret: the point is
/// that every host computes the same hashes.
HashKey maglev_key(uint64_t seed);

/// Fill table[0, size) with indices into backends (size prime, > backends.size() > 0,
/// backends.size() <= 65536). The order of `backends` does not matter: the same set gives
/// the same backend in every entry.
void maglev_build(std::span<const MaglevBackend> backends, const HashKey& key, uint32_t size,
                  uint16_t* table);

/// The per-packet hash of a maglev VIP: SipHash-1-3 of the 5-tuple under the seed's key, so
/// that every host agrees (the flow table's hash is keyed with a per-host secret and would
/// not).
inline uint64_t maglev_flow_hash(const FlowKey& k, const HashKey& key) { return flow_hash(k, key); }

/// The per-packet hash of an sh VIP: the client's address only (network order).
inline uint64_t maglev_source_hash(uint32_t src_ip, const HashKey& key) {
  return siphash13_u32(key, src_ip);
}

}  // namespace rondo::dp
