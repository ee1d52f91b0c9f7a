#include "tools/gen/flows.h"

#include <algorithm>
#include <bit>

namespace rondo::gen {

FlowMix::FlowMix(const Options& o)
    : persistent_(o.data_per_conn < 0 || o.mode == Mode::kUdp),
      tuples_(o.client_net, o.client_port_lo, o.client_port_hi),
      slot_bits_(std::max(1u, static_cast<uint32_t>(std::bit_width(o.flows - 1u)))),
      slot_mask_((1u << slot_bits_) - 1),
      slots_(o.flows) {
  for (uint32_t i = 0; i < n_slots(); ++i) assign(i);
}

}  // namespace rondo::gen
