// Quarantine and Quarantine6 (typed tests over both tuple types) in a QuarantineStore file:
// what a process killed with SIGKILL still held is held by the process that adopts the file, what had expired is not, and the ring goes on in
// order; the per-backend counts are rebuilt with for_each(); entries with impossible values
// are dropped and counted; a header that does not match is refused with its reason; a clock
// that restarted shifts the deadlines.
#include "dataplane/flow/port_pool.h"
#include "tests/unit/store_test_util.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <array>
#include <csignal>
#include <cstdio>
#include <cstddef>
#include <cstring>
#include <string>
#include <system_error>
#include <type_traits>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace rondo::dp {
namespace {

using Outcome = QuarantineAdoption::Outcome;
using store_test::write_and_kill;

constexpr HashKey kKey{0x0123456789abcdefull, 0xfedcba9876543210ull};
constexpr HashKey kOtherKey{0x1111111111111111ull, 0x2222222222222222ull};
constexpr uint64_t kNow = 1'000'000;
constexpr uint32_t kCap = 1024;
constexpr uint64_t kHold = 800;     // each tuple is held kHold ticks
constexpr uint32_t kAdds = 2500;    // add j at kNow + j: the ring wraps twice
constexpr uint32_t kBackends = 7;

// Every test runs over both tuple types (Quarantine, Quarantine6).
template <typename T>
constexpr bool kV6 = std::is_same_v<T, PortTuple6>;

// Tuple j, towards backend j % kBackends (v6: the same numbers in 2001:db8:: addresses).
template <typename T>
T tuple(uint32_t j) {
  if constexpr (kV6<T>) {
    T t{{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0xc6, 0x33, 0x64, 0x64},
        {0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0},
        htons(static_cast<uint16_t>(1024 + j)),
        htons(80)};
    const uint32_t b = htonl(0x0a000000 + j % kBackends);
    std::memcpy(t.backend_ip + 12, &b, 4);
    return t;
  } else {
    return T{htonl(0xc6336464), htonl(0x0a000000 + j % kBackends),
             htons(static_cast<uint16_t>(1024 + j)), htons(80)};
  }
}
uint32_t backend(uint32_t j) { return j % kBackends; }

// The owner's per-backend counts, kept as the Pipeline keeps backends_[id].quarantined.
struct Counts {
  std::array<int, kBackends> n{};
  uint32_t left = 0;
  static void leave(void* ctx, uint32_t id) {
    auto* c = static_cast<Counts*>(ctx);
    --c->n[id];
    ++c->left;
  }
};

// Adds tuples [from, to) at now = kNow + j, held kHold, counting them as the owner does.
template <typename T>
void fill(BasicQuarantine<T>& q, Counts& c, uint32_t from, uint32_t to) {
  for (uint32_t j = from; j < to; ++j) {
    ++c.n[backend(j)];
    q.add(tuple<T>(j), backend(j), kNow + j + kHold, kNow + j);
  }
}

struct StoreFile : store_test::StoreFile {
  explicit StoreFile(const char* name) : store_test::StoreFile("rondo-quarantine-", name) {}
};

// The file as the test sees it (QuarantineStoreHeader documents the format).
template <typename T>
struct RawEntry {
  T t;
  uint32_t backend_id, hash, zero;
  uint64_t until;
};
static_assert(sizeof(RawEntry<PortTuple>) == 32);
static_assert(sizeof(RawEntry<PortTuple6>) == 56);

template <typename T>
struct Mapped {
  void* p = nullptr;
  size_t n = 0;
  explicit Mapped(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDWR);
    struct stat st {};
    ::fstat(fd, &st);
    n = static_cast<size_t>(st.st_size);
    p = ::mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ::close(fd);
  }
  ~Mapped() { ::munmap(p, n); }
  QuarantineStoreHeader& hdr() { return *static_cast<QuarantineStoreHeader*>(p); }
  RawEntry<T>& at(uint32_t pos) {
    return reinterpret_cast<RawEntry<T>*>(static_cast<char*>(p) + hdr().ring_off)[pos];
  }
};

template <typename T>
BasicQuarantine<T> open_q(const StoreFile& s, Counts& c, uint64_t now, uint32_t cap = kCap,
                          const HashKey& key = kKey, bool adopt = true) {
  return BasicQuarantine<T>(cap, key, &Counts::leave, &c, QuarantineStore{s.path, adopt}, now);
}

// The owner learns its per-backend counts from the adopted entries.
template <typename T>
Counts count_adopted(const BasicQuarantine<T>& q) {
  Counts c;
  q.for_each([&](const T&, uint32_t id, uint64_t) { ++c.n[id]; });
  return c;
}

std::array<int, kBackends> expected_counts(uint32_t from, uint32_t to) {
  std::array<int, kBackends> n{};
  for (uint32_t j = from; j < to; ++j) ++n[backend(j)];
  return n;
}

template <typename T>
class QuarantineAdoptTest : public testing::Test {};
struct TupleNames {
  template <typename T>
  static std::string GetName(int) {
    return kV6<T> ? "v6" : "v4";
  }
};
using TupleTypes = testing::Types<PortTuple, PortTuple6>;
TYPED_TEST_SUITE(QuarantineAdoptTest, TupleTypes, TupleNames);

TYPED_TEST(QuarantineAdoptTest, NewFileStartsEmptyAndWorks) {
  using T = TypeParam;
  using Q = BasicQuarantine<T>;
  StoreFile s("new");
  Counts c;
  Q q = open_q<T>(s, c, kNow);
  EXPECT_EQ(q.adoption().outcome, Outcome::kCreated);
  EXPECT_EQ(q.size(), 0u);
  fill(q, c, 0, kAdds);
  EXPECT_EQ(q.size(), kHold);
  for (uint32_t j = 0; j < kAdds; ++j)
    EXPECT_EQ(q.holds(tuple<T>(j), kNow + kAdds - 1), j >= kAdds - kHold) << j;
  EXPECT_EQ(c.n, expected_counts(kAdds - kHold, kAdds));
}

TYPED_TEST(QuarantineAdoptTest, AdoptsWhatAKilledProcessHeld) {
  using T = TypeParam;
  using Q = BasicQuarantine<T>;
  StoreFile s("kill9");
  ASSERT_NO_FATAL_FAILURE(write_and_kill([&] {
    Counts c;
    Q q = open_q<T>(s, c, kNow);
    fill(q, c, 0, kAdds);
  }));

  // The writer's last add was tuple kAdds - 1 at kNow + kAdds - 1, holding [kAdds - kHold,
  // kAdds). 300 ticks later (the clock went on) the 300 oldest have expired.
  constexpr uint64_t kThen = kNow + kAdds - 1 + 300;
  constexpr uint32_t kFirst = kAdds - kHold + 300;
  Counts c;
  Q q = open_q<T>(s, c, kThen);
  const QuarantineAdoption& a = q.adoption();
  ASSERT_EQ(a.outcome, Outcome::kAdopted) << a.reason;
  EXPECT_EQ(a.adopted, kAdds - kFirst);
  EXPECT_EQ(a.expired, 300u);
  EXPECT_EQ(a.discarded, 0u);
  EXPECT_EQ(a.expiry_shift, 0);
  EXPECT_EQ(q.size(), kAdds - kFirst);
  for (uint32_t j = 0; j < kAdds; ++j) EXPECT_EQ(q.holds(tuple<T>(j), kThen), j >= kFirst) << j;

  // for_each: oldest first, each with its backend and deadline; the counts rebuilt.
  uint32_t next = kFirst;
  q.for_each([&](const T& t, uint32_t id, uint64_t until) {
    EXPECT_EQ(t, tuple<T>(next));
    EXPECT_EQ(id, backend(next));
    EXPECT_EQ(until, kNow + next + kHold);
    ++next;
  });
  EXPECT_EQ(next, kAdds);
  c = count_adopted(q);
  EXPECT_EQ(c.n, expected_counts(kFirst, kAdds));

  // Expiry goes on in order, through LeaveFn, and the ring takes new entries (wrapping).
  q.expire(kThen + 100);
  EXPECT_EQ(c.left, 100u);
  EXPECT_EQ(c.n, expected_counts(kFirst + 100, kAdds));
  EXPECT_FALSE(q.holds(tuple<T>(kFirst + 99), kThen + 100));
  EXPECT_TRUE(q.holds(tuple<T>(kFirst + 100), kThen + 100));
  fill(q, c, kAdds + 400, kAdds + 400 + kCap);  // at kNow + j: past kThen + 100
  EXPECT_EQ(q.size(), kHold);
  EXPECT_EQ(c.n, expected_counts(kAdds + 400 + kCap - kHold, kAdds + 400 + kCap));
  EXPECT_EQ(q.released_early(), 0u);
}

TYPED_TEST(QuarantineAdoptTest, ClockRestartShiftsDeadlines) {
  using T = TypeParam;
  using Q = BasicQuarantine<T>;
  StoreFile s("clock");
  {
    Counts c;
    Q q = open_q<T>(s, c, kNow);
    fill(q, c, 0, kAdds);
  }
  // The writer's clock was kNow + kAdds - 1; the adopter's restarted at 10. Each entry keeps
  // the time it had left then: tuple j until j + kHold - (kAdds - 1) + 10.
  constexpr uint64_t kNew = 10;
  constexpr int64_t kShift = int64_t{kNew} - int64_t{kNow + kAdds - 1};
  Counts c;
  Q q = open_q<T>(s, c, kNew);
  const QuarantineAdoption& a = q.adoption();
  ASSERT_EQ(a.outcome, Outcome::kAdopted) << a.reason;
  EXPECT_EQ(a.expiry_shift, kShift);
  EXPECT_EQ(a.adopted, kHold);
  EXPECT_EQ(a.expired, 0u);
  q.for_each([&](const T&, uint32_t, uint64_t until) { EXPECT_GT(until, kNew); });
  c = count_adopted(q);
  // 5 ticks later the 5 oldest go.
  q.expire(kNew + 5);
  EXPECT_EQ(c.left, 5u);
  EXPECT_EQ(q.size(), kHold - 5);
  EXPECT_FALSE(q.holds(tuple<T>(kAdds - kHold + 4), kNew + 5));
  EXPECT_TRUE(q.holds(tuple<T>(kAdds - kHold + 5), kNew + 5));
}

TYPED_TEST(QuarantineAdoptTest, DropsEntriesWithImpossibleValues) {
  using T = TypeParam;
  using Q = BasicQuarantine<T>;
  StoreFile s("corrupt");
  constexpr uint32_t kN = 100;
  {
    Counts c;
    Q q = open_q<T>(s, c, kNow);
    fill(q, c, 0, kN);  // at kNow + j, held to kNow + j + kHold: nothing expires
  }
  {
    Mapped<T> m(s.path);
    ASSERT_EQ(m.hdr().cursor.head, 0u);
    ASSERT_EQ(m.hdr().cursor.count, kN);
    m.at(10).backend_id = 65536;       // past api::kMaxBackendId
    m.at(20).hash ^= 1;                // not the tuple's hash
    m.at(30).t.local_port ^= 0x0100;   // the tuple changed under its hash
    // An add cut short: the entry written, the cursor not moved. Outside the ring: lost.
    m.at(kN) = RawEntry<T>{tuple<T>(kN), backend(kN), 0, 0, kNow + kN + kHold};
  }
  Counts c;
  Q q = open_q<T>(s, c, kNow + kN);
  const QuarantineAdoption& a = q.adoption();
  ASSERT_EQ(a.outcome, Outcome::kAdopted) << a.reason;
  EXPECT_EQ(a.discarded, 3u);
  EXPECT_EQ(a.expired, 0u);
  EXPECT_EQ(a.adopted, kN - 3);
  for (uint32_t j = 0; j <= kN; ++j)
    EXPECT_EQ(q.holds(tuple<T>(j), kNow + kN), j != 10 && j != 20 && j != 30 && j != kN) << j;
  T moved = tuple<T>(30);
  moved.local_port ^= 0x0100;
  EXPECT_FALSE(q.holds(moved, kNow + kN));
  c = count_adopted(q);
  auto want = expected_counts(0, kN);
  for (uint32_t j : {10u, 20u, 30u}) --want[backend(j)];
  EXPECT_EQ(c.n, want);
  // The kept entries expire in order, each once.
  q.expire(kNow + kN + kHold);
  EXPECT_EQ(q.size(), 0u);
  EXPECT_EQ(c.left, kN - 3);
  for (int n : c.n) EXPECT_EQ(n, 0);
}

TYPED_TEST(QuarantineAdoptTest, RefusesAHeaderThatDoesNotMatch) {
  using T = TypeParam;
  using Q = BasicQuarantine<T>;
  StoreFile s("refuse");
  auto write_and = [&](auto&& change) {
    {
      Counts c;
      Q q = open_q<T>(s, c, kNow, kCap, kKey, false);
      fill(q, c, 0, 100);
    }
    Mapped<T> m(s.path);
    change(m.hdr());
  };
  struct Case {
    const char* what;
    uint32_t cap;
    HashKey key;
    void (*change)(QuarantineStoreHeader&);
  };
  const Case cases[] = {
      {"layout version 99, this build reads 1", kCap, kKey,
       [](QuarantineStoreHeader& h) { h.version = 99; }},
      {"bad magic", kCap, kKey, [](QuarantineStoreHeader& h) { h.magic[0] = 0; }},
      {"capacity 1024, this quarantine's is 2048", 2048, kKey, [](QuarantineStoreHeader&) {}},
      {"a different local-port hash key", kCap, kOtherKey, [](QuarantineStoreHeader&) {}},
      {"layout or size", kCap, kKey, [](QuarantineStoreHeader& h) { h.ring_off += 4096; }},
      {"cursor out of range (head 1024, count 0)", kCap, kKey,
       [](QuarantineStoreHeader& h) { h.cursor = QuarantineCursor{kCap, 0}; }},
      {"cursor out of range (head 0, count 1025)", kCap, kKey,
       [](QuarantineStoreHeader& h) { h.cursor = QuarantineCursor{0, kCap + 1}; }},
  };
  for (const Case& k : cases) {
    write_and(k.change);
    Counts c;
    Q q = open_q<T>(s, c, kNow, k.cap, k.key);
    EXPECT_EQ(q.adoption().outcome, Outcome::kRefused) << k.what;
    EXPECT_NE(q.adoption().reason.find(k.what), std::string::npos)
        << k.what << " / " << q.adoption().reason;
    EXPECT_EQ(q.size(), 0u);
    EXPECT_FALSE(q.holds(tuple<T>(50), kNow));
    // Started on a reinitialised file: it works, and its file is adoptable.
    fill(q, c, 0, 10);
    EXPECT_TRUE(q.holds(tuple<T>(5), kNow + 10));
  }
  // adopt off: started empty, not refused.
  write_and([](QuarantineStoreHeader&) {});
  Counts c;
  Q q = open_q<T>(s, c, kNow, kCap, kKey, false);
  EXPECT_EQ(q.adoption().outcome, Outcome::kCreated);
  EXPECT_EQ(q.size(), 0u);
}

TYPED_TEST(QuarantineAdoptTest, OneLiveQuarantinePerFile) {
  using T = TypeParam;
  using Q = BasicQuarantine<T>;
  StoreFile s("lock");
  Counts c;
  Q a = open_q<T>(s, c, kNow);
  try {
    Q b = open_q<T>(s, c, kNow);
    ADD_FAILURE() << "a second quarantine opened a locked file";
  } catch (const std::system_error& e) {
    EXPECT_NE(std::string(e.what()).find("in use by another quarantine"), std::string::npos)
        << e.what();
  }
}

TYPED_TEST(QuarantineAdoptTest, FileIsCloseOnExec) {
  using T = TypeParam;
  using Q = BasicQuarantine<T>;
  StoreFile s("cloexec");
  Counts c;
  Q q = open_q<T>(s, c, kNow);
  // The descriptor that names the file: FD_CLOEXEC, so an execv()ed dataplane does not
  // inherit the lock.
  bool found = false;
  for (int fd = 3; fd < 1024; ++fd) {
    char link[64], target[512];
    std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    const ssize_t n = readlink(link, target, sizeof target - 1);
    if (n <= 0) continue;
    target[n] = 0;
    if (s.path != target) continue;
    found = true;
    EXPECT_NE(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
  }
  EXPECT_TRUE(found);
}

// A v4 quarantine's file is never adopted as a v6 one, nor the other way round: the magic
// names the tuple type (RONDOPQ1, RONDOPQ6).
TEST(QuarantineAdoptFamilies, AV4FileIsNeverAdoptedAsV6NorTheOtherWay) {
  StoreFile s("family");
  {
    Counts c;
    Quarantine q = open_q<PortTuple>(s, c, kNow);
    fill(q, c, 0, 100);
  }
  {
    Mapped<PortTuple> m(s.path);
    EXPECT_EQ(std::string(m.hdr().magic, 8), "RONDOPQ1");
    EXPECT_EQ(m.hdr().version, 1u);
  }
  {
    Counts c;
    Quarantine6 q6 = open_q<PortTuple6>(s, c, kNow);
    EXPECT_EQ(q6.adoption().outcome, Outcome::kRefused);
    EXPECT_NE(q6.adoption().reason.find("not a v6 local-port quarantine (bad magic"),
              std::string::npos)
        << q6.adoption().reason;
    EXPECT_EQ(q6.size(), 0u);
    fill(q6, c, 0, 100);
  }
  {
    Mapped<PortTuple6> m(s.path);
    EXPECT_EQ(std::string(m.hdr().magic, 8), "RONDOPQ6");
  }
  Counts c;
  Quarantine q = open_q<PortTuple>(s, c, kNow);
  EXPECT_EQ(q.adoption().outcome, Outcome::kRefused);
  EXPECT_NE(q.adoption().reason.find("not a local-port quarantine (bad magic"),
            std::string::npos)
      << q.adoption().reason;
}

}  // namespace
}  // namespace rondo::dp
