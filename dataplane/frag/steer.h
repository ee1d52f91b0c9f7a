// Which worker reassembles a fragment. Fragments after the first carry no ports, so the
// flow's owner cannot be known from them: every fragment of a datagram goes to the worker
// chosen by a keyed hash of what they all share (source, destination, protocol,
// identification: the reassembly key of RFC 791 and RFC 8200 4.5). The reassembled datagram is
// then classified like any packet, and handed to its flow's owner from there.
#pragma once

#include <cstdint>

#include "dataplane/flow/key.h"
#include "dataplane/pkt/parse.h"

namespace rondo::dp {

/// The worker (of n) that reassembles the fragment p (kIpv4Frag or kIpv6Frag).
inline uint32_t frag_owner(const Parsed& p, uint32_t n_workers, const HashKey& key) {
  if (n_workers <= 1) return 0;
  uint64_t h;
  if (p.kind == PktKind::kIpv4Frag) {
    FlowKey k = p.key;  // ports are 0 in a fragment's key: the identification takes their place
    k.src_port = static_cast<uint16_t>(p.frag_id);
    k.dst_port = static_cast<uint16_t>(p.frag_id >> 16);
    h = flow_hash(k, key);
  } else {
    FlowKey6 k = p.key6;
    k.src_port = static_cast<uint16_t>(p.frag_id);
    k.dst_port = static_cast<uint16_t>(p.frag_id >> 16);
    h = flow_hash6(k, key);
  }
  return static_cast<uint32_t>((h >> 32) * n_workers >> 32);
}

}  // namespace rondo::dp
