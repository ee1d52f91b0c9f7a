// The flow mix: client address:port pairs, and the client side of every flow ("slot").
//
// A slot is one client connection at a time. Open flows (tcp, udp: --data-per-conn -1)
// keep the pair of their slot index for the whole run. Connections (--data-per-conn K)
// take the next pair from a running counter each time they open, so a pair comes back
// only after the whole space has been used. A slot's generation goes up every time it
// (re)opens, and is part of the TCP initial sequence number (see packet.h), so a late
// answer to an abandoned connection is recognised and ignored.
#pragma once

#include <rte_byteorder.h>

#include <cstdint>
#include <vector>

#include "tools/gen/options.h"

namespace rondo::gen {

/// client_net hosts (first host first) x client ports: index -> (address, port).
class TupleSpace {
 public:
  TupleSpace(const Ipv4Net& net, uint16_t port_lo, uint16_t port_hi)
      : first_host_(net.base + 1),
        hosts_(net.size() - 2),
        port_lo_(port_lo),
        ports_(static_cast<uint32_t>(port_hi - port_lo + 1)) {}

  uint64_t size() const { return static_cast<uint64_t>(hosts_) * ports_; }
  /// Address and port (network order) of pair t (taken modulo size()).
  void at(uint64_t t, uint32_t* ip_be, uint16_t* port_be) const {
    t %= size();
    *ip_be = rte_cpu_to_be_32(first_host_ + static_cast<uint32_t>(t / ports_));
    *port_be = rte_cpu_to_be_16(static_cast<uint16_t>(port_lo_ + t % ports_));
  }

 private:
  uint32_t first_host_;
  uint32_t hosts_;
  uint16_t port_lo_;
  uint32_t ports_;
};

enum class SlotState : uint8_t { kIdle, kSynSent, kEstablished };

struct Slot {
  uint32_t ip_be = 0;
  uint16_t port_be = 0;
  uint16_t generation = 0;
  SlotState state = SlotState::kIdle;
  uint64_t syn_tsc = 0;  // when the current SYN left
};

/// A fixed-capacity FIFO of T (no allocation after construction).
template <typename T>
class Fifo {
 public:
  explicit Fifo(uint32_t capacity) : items_(capacity ? capacity : 1) {}
  bool empty() const { return count_ == 0; }
  uint32_t size() const { return count_; }
  bool push(const T& v) {
    if (count_ == items_.size()) return false;
    items_[(head_ + count_) % items_.size()] = v;
    ++count_;
    return true;
  }
  const T& front() const { return items_[head_]; }
  void pop() {
    head_ = (head_ + 1) % static_cast<uint32_t>(items_.size());
    --count_;
  }

 private:
  std::vector<T> items_;
  uint32_t head_ = 0;
  uint32_t count_ = 0;
};

class FlowMix {
 public:
  FlowMix(const Options& o);

  uint32_t n_slots() const { return static_cast<uint32_t>(slots_.size()); }
  Slot& slot(uint32_t i) { return slots_[i]; }
  const Slot& slot(uint32_t i) const { return slots_[i]; }

  /// Give slot i its pair for the next connection (open flows: always the same one).
  void assign(uint32_t i) {
    Slot& s = slots_[i];
    ++s.generation;
    s.state = SlotState::kIdle;
    tuples_.at(persistent_ ? i : next_tuple_++, &s.ip_be, &s.port_be);
  }

  /// The client's initial sequence number for slot i's current connection (host order).
  uint32_t isn(uint32_t i) const {
    return (static_cast<uint32_t>(slots_[i].generation) << slot_bits_) | i;
  }
  /// The slot a client ISN names, if that connection is still the slot's current one.
  bool slot_of_isn(uint32_t isn, uint32_t* i) const {
    const uint32_t idx = isn & slot_mask_;
    if (idx >= slots_.size()) return false;
    const uint32_t gen_bits = 32 - slot_bits_;
    const uint32_t gen_mask = gen_bits >= 32 ? ~0u : (1u << gen_bits) - 1;
    if ((isn >> slot_bits_) != (slots_[idx].generation & gen_mask)) return false;
    *i = idx;
    return true;
  }

 private:
  bool persistent_;
  TupleSpace tuples_;
  uint64_t next_tuple_ = 0;
  uint32_t slot_bits_;
  uint32_t slot_mask_;
  std::vector<Slot> slots_;
};

}  // namespace rondo::gen
