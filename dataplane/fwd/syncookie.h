// SYN cookies (docs/security.md, "SYN cookies"): the initial sequence number rondo answers a
// client's SYN with, when it keeps nothing for the SYN, encodes all it must remember of it.
// The idea is D. J. Bernstein's (1996); Linux net/ipv4/syncookies.c is the classic encoding.
//
// A cookie is 32 bits:
//   bits 31..9  23 bits of a MAC: SipHash-2-4, under a key derived from the deployment's
//               secret (HashUse::kSynCookie), of the client's ip:port, the VIP's ip:port,
//               the client's ISN, the time slot and the option byte below;
//   bit  8      the low bit of the time slot the cookie was made in;
//   bits 7..0   the option byte: MSS index (3 bits, kMssTable), SACK-permitted (1 bit),
//               window scale (4 bits, 0..14; 15: the client offered none).
// A slot lasts kSlotSeconds. A cookie is accepted in the slot it was made in and the next one
// (64 to 128 s after the SYN): the slot bit says which of the two the MAC was made with, so
// verifying costs one MAC. The option byte travels in the clear but is covered by the MAC:
// changing it (or anything else) fails the check. A blind forger's ACK passes with odds of
// 2^-23 per try.
//
// What does not fit: the exact MSS (rounded down to the table; below 1220 it is 536), and
// TCP timestamps (the SYN-ACK offers none, so the connection runs without them).
#pragma once

#include <cstdint>
#include <cstring>

#include "dataplane/flow/key.h"
#include "dataplane/flow/siphash.h"

namespace rondo::dp {

/// What a cookie keeps of the client's SYN options.
struct SynOpts {
  static constexpr uint8_t kNoWscale = 0xff;
  uint16_t mss = 536;          // RFC 9293 3.7.1: the default without an MSS option
  uint8_t wscale = kNoWscale;  // the client's window scale, kNoWscale if it offered none
  bool sack = false;           // the client offered SACK-permitted
  bool operator==(const SynOpts&) const = default;
};

struct SynCookie {
  static constexpr uint32_t kSlotSeconds = 64;
  // MSS values a cookie can carry, ascending: common Ethernet values (1460 plain, 1440 and
  // 1400 with tunnels or options, 1360/1300/1220 for IPv6-over-IPv4 and VPNs), the minimum,
  // and 9000-byte jumbo frames.
  static constexpr uint16_t kMssTable[8] = {536, 1220, 1300, 1360, 1400, 1440, 1460, 8960};

  /// The time slot of `now` (ticks at `hz` per second).
  static uint32_t slot(uint64_t now, uint64_t hz) {
    return static_cast<uint32_t>(now / (hz * kSlotSeconds));
  }

  /// The option byte of `o`: the MSS rounded down to the table, scale clamped to 14 (RFC 7323).
  static uint8_t pack(const SynOpts& o) {
    uint8_t mi = 0;
    for (uint8_t i = 7; i > 0; --i)
      if (o.mss >= kMssTable[i]) {
        mi = i;
        break;
      }
    const uint8_t ws = o.wscale == SynOpts::kNoWscale ? 15 : (o.wscale > 14 ? 14 : o.wscale);
    return static_cast<uint8_t>(mi << 5 | (o.sack ? 1 : 0) << 4 | ws);
  }
  static SynOpts unpack(uint8_t b) {
    SynOpts o;
    o.mss = kMssTable[b >> 5];
    o.sack = (b >> 4) & 1;
    o.wscale = (b & 15) == 15 ? SynOpts::kNoWscale : (b & 15);
    return o;
  }

  /// The cookie for a client SYN (`k` as received: client -> VIP, network order).
  static uint32_t make(const HashKey& key, const FlowKey& k, uint32_t client_isn, uint32_t slot,
                       const SynOpts& o) {
    const uint8_t ob = pack(o);
    return (mac(key, k, client_isn, slot, ob) & ~0x1ffu) | (slot & 1) << 8 | ob;
  }

  /// Check a cookie the client returned (its ACK's ack - 1) against the tuple and the ISN
  /// (its ACK's seq - 1), in slot `now_slot`. True and *o filled when it is one rondo made in
  /// this slot or the one before.
  static bool check(const HashKey& key, const FlowKey& k, uint32_t client_isn, uint32_t cookie,
                    uint32_t now_slot, SynOpts* o) {
    const uint32_t slot = ((cookie >> 8) & 1) == (now_slot & 1) ? now_slot : now_slot - 1;
    const auto ob = static_cast<uint8_t>(cookie);
    if ((mac(key, k, client_isn, slot, ob) & ~0x1ffu) != (cookie & ~0x1ffu)) return false;
    *o = unpack(ob);
    return true;
  }

 private:
  static uint32_t mac(const HashKey& key, const FlowKey& k, uint32_t isn, uint32_t slot,
                      uint8_t ob) {
    // 24 bytes: addresses, ports, ISN, slot, option byte (the rest zero).
    uint8_t m[24] = {};
    std::memcpy(m, &k.src_ip, 4);
    std::memcpy(m + 4, &k.dst_ip, 4);
    std::memcpy(m + 8, &k.src_port, 2);
    std::memcpy(m + 10, &k.dst_port, 2);
    std::memcpy(m + 12, &isn, 4);
    std::memcpy(m + 16, &slot, 4);
    m[20] = ob;
    return static_cast<uint32_t>(siphash<2, 4>(key, m, sizeof m));
  }
};

}  // namespace rondo::dp
