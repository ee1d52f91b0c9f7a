// SipHash (Aumasson and Bernstein, "SipHash: a fast short-input PRF", 2012): the keyed hash
// for every table whose keys a sender chooses (flows, neighbours). Without the key an
// attacker cannot tell which keys share a bucket, so chosen tuples cannot fill one.
//
// Written from the paper: state v0..v3 from the key and "somepseudorandomlygeneratedbytes",
// c SipRounds per 8-byte little-endian message word (v3 ^= m before, v0 ^= m after), the
// last word carries the message length in its top byte, then v2 ^= 0xff and d SipRounds.
// The tests check it against the paper's SipHash-2-4 vectors and against SipHash-1-3
// vectors from an independent implementation.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace rondo::dp {

/// A 128-bit SipHash key. k0 holds key bytes 0-7, k1 bytes 8-15, both little-endian, as the
/// paper reads a 16-byte key.
struct HashKey {
  uint64_t k0 = 0;
  uint64_t k1 = 0;
  bool operator==(const HashKey&) const = default;
};

/// What a key derived from the deployment's secret is for (derive_hash_key). Each use gets
/// its own key, so one leaking (e.g. through timing) says nothing about the others.
enum class HashUse : uint64_t {
  kFlowTable = 1,
  kNeighbours = 2,
  kSynCookie = 3,  // reserved: SYN cookies
  kLocalPort = 4,  // reserved: local port choice
  kMaglev = 5,     // not from the secret: maglev_key derives it from the public seed
};

namespace sip {

struct State {
  uint64_t v0, v1, v2, v3;
};

inline State init(const HashKey& k) {
  return State{k.k0 ^ 0x736f6d6570736575ull, k.k1 ^ 0x646f72616e646f6dull,
               k.k0 ^ 0x6c7967656e657261ull, k.k1 ^ 0x7465646279746573ull};
}

inline void round(State& s) {
  s.v0 += s.v1;
  s.v1 = std::rotl(s.v1, 13);
  s.v1 ^= s.v0;
  s.v0 = std::rotl(s.v0, 32);
  s.v2 += s.v3;
  s.v3 = std::rotl(s.v3, 16);
  s.v3 ^= s.v2;
  s.v0 += s.v3;
  s.v3 = std::rotl(s.v3, 21);
  s.v3 ^= s.v0;
  s.v2 += s.v1;
  s.v1 = std::rotl(s.v1, 17);
  s.v1 ^= s.v2;
  s.v2 = std::rotl(s.v2, 32);
}

template <int C>
inline void absorb(State& s, uint64_t m) {
  s.v3 ^= m;
  for (int i = 0; i < C; i++) round(s);
  s.v0 ^= m;
}

template <int D>
inline uint64_t finish(State& s) {
  s.v2 ^= 0xff;
  for (int i = 0; i < D; i++) round(s);
  return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

/// n (<= 8) bytes at p as a little-endian number.
inline uint64_t load_le(const void* p, size_t n) {
  uint8_t b[8] = {};
  if (n != 0) std::memcpy(b, p, n);  // p may be null for an empty message
  uint64_t w;
  std::memcpy(&w, b, 8);
  if constexpr (std::endian::native == std::endian::big) w = __builtin_bswap64(w);
  return w;
}

}  // namespace sip

/// SipHash-C-D of len bytes at p (the general form; the tables use the fixed-size ones below).
template <int C, int D>
inline uint64_t siphash(const HashKey& key, const void* p, size_t len) {
  sip::State s = sip::init(key);
  const auto* b = static_cast<const uint8_t*>(p);
  size_t i = 0;
  for (; i + 8 <= len; i += 8) sip::absorb<C>(s, sip::load_le(b + i, 8));
  sip::absorb<C>(s, sip::load_le(b + i, len - i) | uint64_t{len & 0xff} << 56);
  return sip::finish<D>(s);
}

/// SipHash-1-3 of the 4 bytes of v as stored (v in network order: the address's bytes).
/// Four SipRounds: one block, three to finish.
inline uint64_t siphash13_u32(const HashKey& key, uint32_t v) {
  sip::State s = sip::init(key);
  sip::absorb<1>(s, sip::load_le(&v, 4) | uint64_t{4} << 56);
  return sip::finish<3>(s);
}

/// The key for one use, derived from the deployment's secret: SipHash-2-4 under the secret
/// of (use, 0) and (use, 1). SipHash is a PRF, so derived keys are independent of each
/// other and reveal nothing about the secret. Computed once at start.
inline HashKey derive_hash_key(const HashKey& secret, HashUse use) {
  const uint64_t in[2][2] = {{static_cast<uint64_t>(use), 0}, {static_cast<uint64_t>(use), 1}};
  return HashKey{siphash<2, 4>(secret, in[0], sizeof in[0]),
                 siphash<2, 4>(secret, in[1], sizeof in[1])};
}

}  // namespace rondo::dp
