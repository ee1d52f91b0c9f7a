// Local ports (flow/port_pool.h): PortOwnership (which worker owns a port), PortPicker (the
// keyed search order) and Quarantine (tuples not reused before a deadline).
#include "dataplane/flow/port_pool.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <vector>

namespace rondo::dp {
namespace {

const HashKey kKey{0x0123456789abcdefull, 0xfedcba9876543210ull};
const HashKey kOtherKey{1, 2};
const uint32_t kLip = htonl(0xc6336464), kB1 = htonl(0xc6336403), kB2 = htonl(0xc6336404);
const uint16_t kBport = htons(3000);

// Every port a picker hands out for one (local ip, backend), until it says no.
std::vector<uint16_t> drain(PortPicker& p, uint32_t lip, uint32_t bip, uint16_t bport,
                            std::set<uint16_t>& used) {
  std::vector<uint16_t> out;
  uint16_t port;
  while (p.pick(lip, bip, bport, [&](uint16_t c) { return used.count(ntohs(c)) > 0; }, &port)) {
    used.insert(ntohs(port));
    out.push_back(ntohs(port));
  }
  return out;
}

// Every port of the range belongs to exactly one worker, by its low bits, and each worker's
// picker hands out exactly its own.
TEST(PortOwnership, PickersPartitionTheRange) {
  for (uint32_t n = 1; n <= 8; n++) {
    SCOPED_TRACE(testing::Message() << "n=" << n);
    PortOwnership own(n);
    EXPECT_GE(uint32_t{own.mask()} + 1, n);
    EXPECT_LT(uint32_t{own.mask()} + 1, 2 * n);
    std::vector<int> seen(65536, 0);
    uint32_t total = 0;
    for (uint32_t w = 0; w < n; w++) {
      PortPicker picker(60000, 60999, own, w, kKey, w);
      total += picker.share();
      std::set<uint16_t> used;
      // Drained a few candidates at a time: kMaxTries bounds one search, not the range.
      for (int round = 0; round < 64; ++round)
        for (uint16_t p : drain(picker, kLip, kB1, kBport, used)) {
          EXPECT_EQ(own.owner(p), w) << p;
          seen[p]++;
        }
    }
    EXPECT_EQ(total, 1000u);
    for (uint32_t p = 60000; p <= 60999; p++) ASSERT_EQ(seen[p], 1) << p;
  }
}

TEST(PortOwnership, SingleWorkerOwnsEverything) {
  PortOwnership own(1);
  EXPECT_EQ(own.mask(), 0);
  for (uint32_t p = 0; p < 65536; p += 997) EXPECT_EQ(own.owner(static_cast<uint16_t>(p)), 0u);
}

// Issue 8, item 10: ports were handed out from 1024 upwards in FIFO order, the same in every
// process. Now the order depends on the secret, the backend and the process's seed.
TEST(PortPicker, OrderIsKeyedPerBackendAndPerProcess) {
  PortOwnership own(1);
  auto first = [&](const HashKey& key, uint64_t seed, uint32_t bip) {
    PortPicker p(1024, 65535, own, 0, key, seed);
    std::set<uint16_t> used;
    std::vector<uint16_t> out;
    for (int i = 0; i < 16; ++i) {
      uint16_t port = 0;
      EXPECT_TRUE(p.pick(kLip, bip, kBport, [&](uint16_t c) { return used.count(c) > 0; }, &port));
      used.insert(port);
      out.push_back(ntohs(port));
    }
    return out;
  };
  const auto a = first(kKey, 1, kB1);
  EXPECT_EQ(a, first(kKey, 1, kB1));        // deterministic for the same inputs
  EXPECT_NE(a, first(kOtherKey, 1, kB1));   // another deployment
  EXPECT_NE(a, first(kKey, 2, kB1));        // another process of the same deployment
  EXPECT_NE(a, first(kKey, 1, kB2));        // another backend
  // Not the old sequential order.
  std::vector<uint16_t> sequential(16);
  for (int i = 0; i < 16; ++i) sequential[i] = static_cast<uint16_t>(1024 + i);
  EXPECT_NE(a, sequential);
}

// A local port is unique per (local ip, backend), not per local ip: two backends each get the
// whole range.
TEST(PortPicker, EachBackendHasTheWholeRange) {
  PortOwnership own(1);
  PortPicker p(40000, 40009, own, 0, kKey, 7);
  std::set<uint16_t> used1, used2;
  std::vector<uint16_t> b1, b2;
  for (int round = 0; round < 4; ++round) {
    for (uint16_t x : drain(p, kLip, kB1, kBport, used1)) b1.push_back(x);
    for (uint16_t x : drain(p, kLip, kB2, kBport, used2)) b2.push_back(x);
  }
  EXPECT_EQ(b1.size(), 10u);
  EXPECT_EQ(b2.size(), 10u);
  EXPECT_EQ(std::set<uint16_t>(b1.begin(), b1.end()), std::set<uint16_t>(b2.begin(), b2.end()));
}

TEST(PortPicker, SearchIsBounded) {
  PortOwnership own(1);
  PortPicker p(1024, 65535, own, 0, kKey, 1);
  uint32_t asked = 0;
  uint16_t port = 0;
  EXPECT_FALSE(p.pick(kLip, kB1, kBport, [&](uint16_t) { return ++asked, true; }, &port));
  EXPECT_EQ(asked, PortPicker::kMaxTries);
  PortPicker empty(2000, 1999, own, 0, kKey, 1);
  EXPECT_EQ(empty.share(), 0u);
  EXPECT_FALSE(empty.pick(kLip, kB1, kBport, [](uint16_t) { return false; }, &port));
}

// ---- Quarantine ----

struct Left {
  std::vector<uint32_t> ids;
  static void fn(void* ctx, uint32_t id) { static_cast<Left*>(ctx)->ids.push_back(id); }
};

PortTuple tuple(uint16_t lport, uint32_t bip = kB1) { return PortTuple{kLip, bip, htons(lport), kBport}; }

TEST(Quarantine, HoldsUntilTheDeadlineThenLetsGo) {
  Left left;
  Quarantine q(8, kKey, &Left::fn, &left);
  q.add(tuple(1000), 5, 60, 0);
  q.add(tuple(1001), 6, 61, 1);
  EXPECT_TRUE(q.holds(tuple(1000), 59));
  EXPECT_FALSE(q.holds(tuple(1000, kB2), 59));  // the same port for another backend is free
  EXPECT_FALSE(q.holds(tuple(1002), 59));
  EXPECT_EQ(q.size(), 2u);
  EXPECT_FALSE(q.holds(tuple(1000), 60));
  EXPECT_TRUE(q.holds(tuple(1001), 60));
  EXPECT_EQ(left.ids, std::vector<uint32_t>{5});
  q.expire(61);
  EXPECT_EQ(q.size(), 0u);
  EXPECT_EQ(left.ids, (std::vector<uint32_t>{5, 6}));
  EXPECT_EQ(q.released_early(), 0u);
}

TEST(Quarantine, FullReleasesTheOldestEarlyAndCountsIt) {
  Left left;
  Quarantine q(4, kKey, &Left::fn, &left);
  for (uint16_t i = 0; i < 6; ++i) q.add(tuple(2000 + i), i, 100 + i, i);
  EXPECT_EQ(q.size(), 4u);
  EXPECT_EQ(q.released_early(), 2u);
  EXPECT_FALSE(q.holds(tuple(2000), 10));
  EXPECT_FALSE(q.holds(tuple(2001), 10));
  for (uint16_t i = 2; i < 6; ++i) EXPECT_TRUE(q.holds(tuple(2000 + i), 10)) << i;
}

// Many adds and expiries through a small ring: the index stays exact (backward-shift
// deletion keeps every live entry findable), against a plain model.
TEST(Quarantine, IndexStaysExactUnderChurn) {
  Quarantine q(64, kKey, nullptr, nullptr);
  std::vector<std::pair<PortTuple, uint64_t>> model;
  uint64_t now = 0;
  uint32_t x = 12345;
  for (int step = 0; step < 20000; ++step) {
    x = x * 1103515245 + 12345;
    now += x >> 30;  // 0-3 ticks per step
    const PortTuple t = tuple(static_cast<uint16_t>(1024 + (x >> 8) % 512), (x & 1) ? kB1 : kB2);
    const bool held = std::any_of(model.begin(), model.end(),
                                  [&](const auto& e) { return e.first == t && e.second > now; });
    ASSERT_EQ(q.holds(t, now), held) << step;
    std::erase_if(model, [&](const auto& e) { return e.second <= now; });
    if (!held) {
      q.add(t, 0, now + 50, now);
      model.emplace_back(t, now + 50);
      if (model.size() > 64) model.erase(model.begin());
    }
    ASSERT_EQ(q.size(), model.size()) << step;
  }
}

}  // namespace
}  // namespace rondo::dp

namespace rondo::dp {
namespace {

// A pair's search walks the range without ever jumping back: after a full quarantine
// period of ports handed out one by one (each then held), the next is still found. (With a
// 16-bit counter that wrapped, the search jumped 1,024 ports back, onto held ones.)
TEST(PortPicker, LongRunsNeverRevisitRecentPorts) {
  PortOwnership own(1);
  for (uint64_t seed : {0ull, 1ull, 0xfffeull, 0xffffffffull, 12345ull}) {
    PortPicker p(1024, 65535, own, 0, kKey, seed);
    std::vector<uint8_t> held(65536, 0);
    for (int n = 0; n < 60000; ++n) {
      uint16_t port = 0;
      ASSERT_TRUE(p.pick(kLip, kB1, kBport, [&](uint16_t c) { return held[ntohs(c)] != 0; }, &port))
          << "seed " << seed << " pick " << n;
      held[ntohs(port)] = 1;
    }
  }
}

// v4's order of local ports must not change with the v6 variant beside it (a restarted
// process and the seed aside, an upgrade keeps handing out ports as before). These numbers
// were printed by main's PortPicker at 4f6fddd, before pick6 existed, for these inputs.
TEST(PortPicker, V4OrderIsTheOneBeforeV6) {
  struct Case {
    uint32_t workers, worker;
    uint64_t seed;
    std::vector<uint16_t> want;
  };
  const Case cases[] = {
      {1, 0, 1, {50074, 50075, 50076, 50077, 50078, 50079, 50080, 50081, 50082, 50083, 50084, 50085}},
      {4, 2, 0xfeed,
       {18166, 18170, 18174, 18178, 18182, 18186, 18190, 18194, 18198, 18202, 18206, 18210}},
  };
  for (const Case& c : cases) {
    PortOwnership own(c.workers);
    PortPicker p(1024, 65535, own, c.worker, kKey, c.seed);
    std::set<uint16_t> used;
    std::vector<uint16_t> got;
    for (size_t i = 0; i < c.want.size(); ++i) {
      uint16_t port = 0;
      ASSERT_TRUE(p.pick(kLip, kB1, kBport, [&](uint16_t x) { return used.count(x) > 0; }, &port));
      used.insert(port);
      got.push_back(ntohs(port));
    }
    EXPECT_EQ(got, c.want) << "workers " << c.workers;
  }
  // The first port for eight backends: eight hashes of the 10-byte input.
  const std::vector<uint16_t> want_first = {50074, 3490, 35418, 6530, 9592, 9005, 43674, 41418};
  std::vector<uint16_t> first;
  for (uint32_t b = 0; b < 8; ++b) {
    PortPicker p(1024, 65535, PortOwnership(1), 0, kKey, 1);
    uint16_t port = 0;
    ASSERT_TRUE(p.pick(kLip, htonl(0xc6336403 + b), htons(static_cast<uint16_t>(3000 + b)),
                       [](uint16_t) { return false; }, &port));
    first.push_back(ntohs(port));
  }
  EXPECT_EQ(first, want_first);
}

// ---- v6 (pick6, Quarantine6) ----

const uint8_t kLip6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00};
const uint8_t kB61[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x03};
const uint8_t kB62[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x04};

std::vector<uint16_t> drain6(PortPicker& p, const uint8_t (&lip)[16], const uint8_t (&bip)[16],
                             uint16_t bport, std::set<uint16_t>& used) {
  std::vector<uint16_t> out;
  uint16_t port;
  while (p.pick6(lip, bip, bport, [&](uint16_t c) { return used.count(ntohs(c)) > 0; }, &port)) {
    used.insert(ntohs(port));
    out.push_back(ntohs(port));
  }
  return out;
}

// As for v4: each worker hands out exactly its own ports, every port of the range once.
TEST(PortPicker6, PickersPartitionTheRange) {
  for (uint32_t n : {1u, 3u, 4u}) {
    SCOPED_TRACE(testing::Message() << "n=" << n);
    PortOwnership own(n);
    std::vector<int> seen(65536, 0);
    for (uint32_t w = 0; w < n; w++) {
      PortPicker picker(50000, 50999, own, w, kKey, w + 10);
      std::set<uint16_t> used;
      for (int round = 0; round < 64; ++round)
        for (uint16_t p : drain6(picker, kLip6, kB61, kBport, used)) {
          EXPECT_EQ(own.owner(p), w) << p;
          seen[p]++;
        }
    }
    for (uint32_t p = 50000; p <= 50999; p++) ASSERT_EQ(seen[p], 1) << p;
  }
}

// The order is keyed by every byte of the pair: the backend's last byte, its port, the local
// ip's first byte, the secret and the process's seed each give another order.
TEST(PortPicker6, OrderIsKeyedByTheWholePair) {
  PortOwnership own(1);
  auto first = [&](const HashKey& key, uint64_t seed, const uint8_t (&lip)[16],
                   const uint8_t (&bip)[16], uint16_t bport) {
    PortPicker p(1024, 65535, own, 0, key, seed);
    std::set<uint16_t> used;
    std::vector<uint16_t> out;
    for (int i = 0; i < 16; ++i) {
      uint16_t port = 0;
      EXPECT_TRUE(p.pick6(lip, bip, bport, [&](uint16_t c) { return used.count(c) > 0; }, &port));
      used.insert(port);
      out.push_back(ntohs(port));
    }
    return out;
  };
  uint8_t other_lip[16];
  std::memcpy(other_lip, kLip6, 16);
  other_lip[0] ^= 0x80;
  const auto a = first(kKey, 1, kLip6, kB61, kBport);
  EXPECT_EQ(a, first(kKey, 1, kLip6, kB61, kBport));
  EXPECT_NE(a, first(kOtherKey, 1, kLip6, kB61, kBport));
  EXPECT_NE(a, first(kKey, 2, kLip6, kB61, kBport));
  EXPECT_NE(a, first(kKey, 1, kLip6, kB62, kBport));
  EXPECT_NE(a, first(kKey, 1, kLip6, kB61, htons(3001)));
  EXPECT_NE(a, first(kKey, 1, other_lip, kB61, kBport));
}

// Each v6 backend has the whole range too, and the search is bounded as v4's.
TEST(PortPicker6, EachBackendHasTheWholeRangeAndTheSearchIsBounded) {
  PortOwnership own(1);
  PortPicker p(40000, 40009, own, 0, kKey, 7);
  std::set<uint16_t> used1, used2;
  std::vector<uint16_t> b1, b2;
  for (int round = 0; round < 4; ++round) {
    for (uint16_t x : drain6(p, kLip6, kB61, kBport, used1)) b1.push_back(x);
    for (uint16_t x : drain6(p, kLip6, kB62, kBport, used2)) b2.push_back(x);
  }
  EXPECT_EQ(b1.size(), 10u);
  EXPECT_EQ(std::set<uint16_t>(b1.begin(), b1.end()), std::set<uint16_t>(b2.begin(), b2.end()));
  PortPicker wide(1024, 65535, own, 0, kKey, 1);
  uint32_t asked = 0;
  uint16_t port = 0;
  EXPECT_FALSE(wide.pick6(kLip6, kB61, kBport, [&](uint16_t) { return ++asked, true; }, &port));
  EXPECT_EQ(asked, PortPicker::kMaxTries);
}

PortTuple6 tuple6(uint16_t lport, const uint8_t (&bip)[16] = kB61) {
  PortTuple6 t;
  std::memcpy(t.local_ip, kLip6, 16);
  std::memcpy(t.backend_ip, bip, 16);
  t.local_port = htons(lport);
  t.backend_port = kBport;
  return t;
}

TEST(Quarantine6, HoldsUntilTheDeadlineThenLetsGo) {
  static_assert(sizeof(PortTuple6) == 36);
  Left left;
  Quarantine6 q(4, kKey, &Left::fn, &left);
  q.add(tuple6(1000), 5, 60, 0);
  q.add(tuple6(1001), 6, 61, 1);
  EXPECT_TRUE(q.holds(tuple6(1000), 59));
  EXPECT_FALSE(q.holds(tuple6(1000, kB62), 59));  // the same port for another backend
  EXPECT_FALSE(q.holds(tuple6(1002), 59));
  EXPECT_FALSE(q.holds(tuple6(1000), 60));
  EXPECT_EQ(left.ids, std::vector<uint32_t>{5});
  // Full: the oldest goes early, counted.
  for (uint16_t i = 0; i < 5; ++i) q.add(tuple6(2000 + i), 7, 100 + i, 2 + i);
  EXPECT_EQ(q.size(), 4u);
  EXPECT_EQ(q.released_early(), 2u);  // 1001, then 2000
  EXPECT_FALSE(q.holds(tuple6(2000), 10));
  for (uint16_t i = 1; i < 5; ++i) EXPECT_TRUE(q.holds(tuple6(2000 + i), 10)) << i;
}

}  // namespace
}  // namespace rondo::dp
