// An Ethernet address as rondo passes it around (ports, next hops, the pipeline's params).
// Here, below both port/ and fwd/, so that port/ needs nothing from fwd/.
#pragma once

#include <array>
#include <cstdint>

namespace rondo::dp {

using MacAddr = std::array<uint8_t, 6>;

}  // namespace rondo::dp
