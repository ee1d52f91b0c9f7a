// One line for a frame, as an operator reads it ("198.51.100.2:41234 > 203.0.113.10:80 tcp
// [S] seq 1 ack 0 win 64240 len 0"), for traces and drop samples. Lenient: it describes
// what it can of any bytes (a truncated or malformed frame says where it stops), never
// reads past `len`, and is not the parser the fast path trusts (pkt/parse.h).
#pragma once

#include <cstdint>
#include <string>

namespace rondo::dp {

std::string describe_frame(const uint8_t* f, uint32_t len);

/// The first `max` bytes as lowercase hex, no separators.
std::string hex_bytes(const uint8_t* p, uint32_t len, uint32_t max = 128);

}  // namespace rondo::dp
