// FlowTable in a FlowStore file: a table written by a process killed with SIGKILL is adopted
// by another, byte for byte; corrupt records and stray bucket slots are dropped and counted,
// exactly; a header that does not match is refused with its reason; the adopted table works
// as a fresh one. Adoption time for 1M flows is printed (not asserted).
#include "dataplane/flow/table.h"
#include "tests/unit/store_test_util.h"

#include <gtest/gtest.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <system_error>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace rondo::dp {
namespace {

using Outcome = FlowAdoption::Outcome;
using store_test::write_and_kill;
using Status = FlowTable::InsertStatus;

constexpr HashKey kKey{0x0123456789abcdefull, 0xfedcba9876543210ull};
constexpr HashKey kOtherKey{0x1111111111111111ull, 0x2222222222222222ull};
constexpr uint64_t kNow = 1'000'000;
constexpr uint64_t kLife = 500'000;  // every flow expires at kNow + kLife + i

// Flow i's kind: TCP established (two keys), TCP embryonic (two keys), UDP (two keys),
// TCP one key (DSR).
enum Kind { kTcpEst, kTcpSyn, kUdp, kDsr };
Kind kind(uint32_t i) { return static_cast<Kind>(i % 4); }
uint8_t proto(uint32_t i) { return kind(i) == kUdp ? 17 : 6; }

FlowKey client_key(uint32_t i) {
  FlowKey k;
  k.src_ip = 0x0a000000 + i;
  k.dst_ip = 0xc0000201;
  k.src_port = static_cast<uint16_t>(1024 + i % 60000);
  k.dst_port = 80;
  k.proto = proto(i);
  return k;
}

// backend:80 -> local ip:port: the rev key is the local ip:port that must survive.
FlowKey backend_key(uint32_t i) {
  FlowKey k;
  k.src_ip = 0x0a010001 + i % 7;
  k.dst_ip = 0x0a020000 + (i >> 16);
  k.src_port = 80;
  k.dst_port = static_cast<uint16_t>(i);
  k.proto = proto(i);
  return k;
}

FlowState state_of(uint32_t i) {
  switch (kind(i)) {
    case kTcpSyn: return FlowState::kSynRecv;
    case kUdp: return FlowState::kUdp;
    default: return FlowState::kEstablished;
  }
}

TcpTrack track_of(uint32_t i) {
  TcpTrack t;
  t.dir[0] = TcpDir{i * 3, i * 5 + 1, 65535, 7, TcpDir::kWscale | TcpDir::kEstablished, 0};
  t.dir[1] = TcpDir{i * 11, i * 13 + 2, 29200, 9, TcpDir::kWscale, 0};
  t.set_seq_delta(0xdead0000u + i);
  return t;
}

void fill(FlowTable& t, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    const FlowKey f = client_key(i), r = backend_key(i);
    const FlowTable::InsertResult res =
        kind(i) == kDsr ? t.insert_one(f, t.probe(f), r, state_of(i), kNow + kLife + i, kNow)
                        : t.insert(f, r, state_of(i), kNow + kLife + i, kNow);
    ASSERT_EQ(res.status, Status::kOk) << i;
    Flow& fl = t.at(res.idx);
    fl.backend_id = i % 7 + 1;
    fl.vip_id = static_cast<uint16_t>(i % 3);
    fl.user = static_cast<uint8_t>(i);
    if (proto(i) == 6) t.tcp(res.idx) = track_of(i);
    t.count(res.idx, FlowDir::kForward, 100 + i);
  }
  t.age(kNow, 1);  // the writer's clock in the header
}

// Flow i is found by its client key (and its backend key unless one-key) with the contents
// fill() gave it, expiry shifted by `shift`.
void expect_flow(const FlowTable& t, uint32_t i, int64_t shift = 0) {
  const FlowTable::Hit h = t.find(client_key(i), 0);
  ASSERT_TRUE(h.found()) << i;
  EXPECT_EQ(h.dir, FlowDir::kForward);
  const Flow& f = t.at(h.idx);
  EXPECT_EQ(f.fwd, client_key(i));
  EXPECT_EQ(f.rev, backend_key(i)) << i;  // the local ip:port
  EXPECT_EQ(f.state, state_of(i));
  EXPECT_EQ(f.backend_id, i % 7 + 1);
  EXPECT_EQ(f.vip_id, i % 3);
  EXPECT_EQ(f.user, static_cast<uint8_t>(i));
  EXPECT_EQ(f.expires, static_cast<uint64_t>(static_cast<int64_t>(kNow + kLife + i) + shift));
  const FlowTable::Hit r = t.find(backend_key(i), 0);
  if (kind(i) == kDsr) {
    EXPECT_TRUE(t.one_key(h.idx));
    EXPECT_FALSE(r.found());
  } else {
    ASSERT_TRUE(r.found()) << i;
    EXPECT_EQ(r.idx, h.idx);
    EXPECT_EQ(r.dir, FlowDir::kReverse);
  }
  if (proto(i) == 6) {
    const TcpTrack want = track_of(i);
    EXPECT_EQ(std::memcmp(&t.tcp(h.idx), &want, sizeof want), 0) << i;
  }
  ASSERT_NE(t.meter(h.idx), nullptr);
  EXPECT_EQ(t.meter(h.idx)->bytes[0], 100 + i);
}

// Free records: exactly capacity - size() new flows fit without making room.
void expect_no_leak(FlowTable& t, uint32_t first_new) {
  const uint32_t free_n = t.capacity() - t.size();
  for (uint32_t j = 0; j < free_n; j++) {
    FlowKey f = client_key(first_new + j), r = backend_key(first_new + j);
    f.dst_port = 443;  // never one of fill()'s keys
    r.src_port = 443;
    const FlowTable::InsertResult res = t.insert(f, r, FlowState::kEstablished, kNow + 1, kNow);
    ASSERT_EQ(res.status, Status::kOk) << j;
    ASSERT_EQ(res.reclaimed, Reclaim::kNone) << j;
  }
  EXPECT_EQ(t.size(), t.capacity());
}

struct StoreFile : store_test::StoreFile {
  explicit StoreFile(const char* name) : store_test::StoreFile("rondo-adopt-", name) {}
};

FlowTable open_table(const StoreFile& s, uint32_t cap, uint64_t now = kNow,
                     const HashKey& key = kKey, bool meters = true) {
  return FlowTable(cap, key, nullptr, nullptr, meters, FlowStore{s.path}, now);
}

TEST(FlowAdopt, NewFileStartsEmpty) {
  StoreFile s("new");
  FlowTable t = open_table(s, 1024);
  EXPECT_EQ(t.adoption().outcome, Outcome::kCreated);
  EXPECT_EQ(t.adoption().writer_clock, 0u);  // nothing adopted: no writer
  EXPECT_EQ(t.size(), 0u);
  expect_no_leak(t, 0);
}

TEST(FlowAdopt, AdoptsWhatAKilledProcessWrote) {
  StoreFile s("kill9");
  constexpr uint32_t kCap = 8192, kN = 6000;
  ASSERT_NO_FATAL_FAILURE(write_and_kill([&] {
    FlowTable t(kCap, kKey, nullptr, nullptr, true, FlowStore{s.path}, kNow);
    fill(t, kN);
    // A half-made flow too: inserted and erased before the kill leaves nothing behind.
    t.erase(t.insert(client_key(kN), backend_key(kN), FlowState::kSynSent, kNow + 5, kNow).idx);
  }));

  FlowTable t = open_table(s, kCap, kNow + 10);  // a clock that went on: expiries kept
  const FlowAdoption& a = t.adoption();
  EXPECT_EQ(a.outcome, Outcome::kAdopted) << a.reason;
  EXPECT_EQ(a.adopted, kN);
  EXPECT_EQ(a.discarded, 0u);
  EXPECT_EQ(a.half_done, 0u);
  EXPECT_EQ(a.slots_cleared, 0u);
  EXPECT_EQ(a.expiry_shift, 0);
  EXPECT_EQ(a.writer_clock, kNow);  // the crash's gap estimate starts there (runtime/dataplane.cpp)
  EXPECT_EQ(t.size(), kN);
  for (uint32_t i = 0; i < kN; i++) expect_flow(t, i);
  EXPECT_EQ(t.embryonic(), kN / 4);
  EXPECT_EQ(t.reclaimable(Reclaim::kIdleUdp), kN / 4);
  expect_no_leak(t, kN + 1);
}

// Layout of the file as the test sees it (FlowStoreHeader documents it).
struct BucketView {
  uint32_t sig[8];
  uint32_t ref[8];
};
struct Mapped {
  int fd;
  size_t bytes;
  char* base;
  explicit Mapped(const std::string& path) {
    fd = ::open(path.c_str(), O_RDWR);
    struct stat st {};
    ::fstat(fd, &st);
    bytes = static_cast<size_t>(st.st_size);
    base = static_cast<char*>(mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
  }
  ~Mapped() {
    munmap(base, bytes);
    ::close(fd);
  }
  FlowStoreHeader& hdr() { return *reinterpret_cast<FlowStoreHeader*>(base); }
  Flow& flow(uint32_t idx) { return reinterpret_cast<Flow*>(base + hdr().flows_off)[idx]; }
  BucketView& bucket(uint32_t b) {
    return reinterpret_cast<BucketView*>(base + hdr().buckets_off)[b];
  }
  void clear_slot(uint32_t loc) {
    bucket(loc / 8).sig[loc % 8] = 0;
    bucket(loc / 8).ref[loc % 8] = 0;
  }
  // An empty slot anywhere: its location.
  uint32_t empty_slot() {
    for (uint32_t b = 0; b < hdr().n_buckets; b++)
      for (uint32_t s = 0; s < 8; s++)
        if (bucket(b).sig[s] == 0) return b * 8 + s;
    return UINT32_MAX;
  }
};

TEST(FlowAdopt, DropsExactlyTheInconsistentRecords) {
  StoreFile s("corrupt");
  constexpr uint32_t kCap = 4096, kN = 2000;
  uint32_t idx[kN];
  {
    FlowTable t = open_table(s, kCap);
    fill(t, kN);
    for (uint32_t i = 0; i < kN; i++) idx[i] = t.find(client_key(i), 0).idx;
  }
  // Flows 0, 4, 8, 12, 16 are two-key TCP established; 3 is one-key.
  {
    Mapped m(s.path);
    // A key's bucket slot cleared: the record goes (1), its other slot is stray (1).
    m.clear_slot(m.flow(idx[0]).loc[0]);
    // A loc pointing elsewhere: the record goes (1), both its slots are stray (2).
    m.flow(idx[4]).loc[1] ^= 1;
    // A bad state byte: the record goes (1), both slots stray (2).
    reinterpret_cast<uint8_t&>(m.flow(idx[8]).state) = 0x7f;
    // An insert cut short after its first key (state is written last, so the record is still
    // free): half done (1), its one slot stray (1).
    m.clear_slot(m.flow(idx[12]).loc[1]);
    m.flow(idx[12]).loc[1] = FlowTable::kNoLoc;
    m.flow(idx[12]).state = FlowState::kFree;
    // A slot with the wrong signature: the record goes (1), both slots stray (2).
    m.bucket(m.flow(idx[16]).loc[0] / 8).sig[m.flow(idx[16]).loc[0] % 8] ^= 0x5a5a;
    // A slot naming a free record: half done (1), stray (1). fill() used records 0..kN-1.
    const uint32_t e1 = m.empty_slot();
    m.bucket(e1 / 8).sig[e1 % 8] = 0x1234;
    m.bucket(e1 / 8).ref[e1 % 8] = (kCap - 1) * 2;
    // A slot naming no record at all: stray (1).
    const uint32_t e2 = m.empty_slot();
    m.bucket(e2 / 8).sig[e2 % 8] = 0x4321;
    m.bucket(e2 / 8).ref[e2 % 8] = (kCap + 5) * 2 + 1;
    // A one-key flow's loc[1] set (it claims a reverse key that is not there): goes (1), its
    // one slot stray (1).
    m.flow(idx[3]).loc[1] = 0;
  }
  FlowTable t = open_table(s, kCap);
  const FlowAdoption& a = t.adoption();
  ASSERT_EQ(a.outcome, Outcome::kAdopted) << a.reason;
  EXPECT_EQ(a.discarded, 5u);  // 0, 4, 8, 16, 3
  EXPECT_EQ(a.half_done, 2u);  // 12, kCap - 1
  EXPECT_EQ(a.slots_cleared, 1u + 2 + 2 + 1 + 2 + 1 + 1 + 1);
  EXPECT_EQ(a.adopted, kN - 6);
  EXPECT_EQ(t.size(), kN - 6);
  for (uint32_t i = 0; i < kN; i++) {
    if (i == 0 || i == 3 || i == 4 || i == 8 || i == 12 || i == 16) {
      EXPECT_FALSE(t.find(client_key(i), 0).found()) << i;
      EXPECT_FALSE(t.find(backend_key(i), 0).found()) << i;
    } else {
      expect_flow(t, i);
    }
  }
  // The dropped flows' keys can be inserted again.
  EXPECT_EQ(t.insert(client_key(0), backend_key(0), FlowState::kSynSent, kNow + 9, kNow).status,
            Status::kOk);
  EXPECT_EQ(t.insert(client_key(12), backend_key(12), FlowState::kSynSent, kNow + 9, kNow).status,
            Status::kOk);
  expect_no_leak(t, kN + 1);
}

TEST(FlowAdopt, RefusesAHeaderThatDoesNotMatch) {
  StoreFile s("refuse");
  auto write_and = [&](auto&& change) {
    {
      FlowTable t(1024, kKey, nullptr, nullptr, true, FlowStore{s.path, false}, kNow);
      fill(t, 100);
    }
    Mapped m(s.path);
    change(m.hdr());
  };
  struct Case {
    const char* what;
    uint32_t cap;
    HashKey key;
    bool meters;
    void (*change)(FlowStoreHeader&);
  };
  const Case cases[] = {
      {"layout version 99", 1024, kKey, true, [](FlowStoreHeader& h) { h.version = 99; }},
      {"bad magic", 1024, kKey, true, [](FlowStoreHeader& h) { h.magic[0] = 0; }},
      {"capacity 1024, this table's is 2048", 2048, kKey, true, [](FlowStoreHeader&) {}},
      {"different flow hash key", 1024, kOtherKey, true, [](FlowStoreHeader&) {}},
      {"flow meters on, this table's off", 1024, kKey, false, [](FlowStoreHeader&) {}},
      {"layout or size", 1024, kKey, true, [](FlowStoreHeader& h) { h.tcp_off += 4096; }},
  };
  for (const Case& c : cases) {
    write_and(c.change);
    FlowTable t = open_table(s, c.cap, kNow, c.key, c.meters);
    EXPECT_EQ(t.adoption().outcome, Outcome::kRefused) << c.what;
    EXPECT_NE(t.adoption().reason.find(c.what), std::string::npos)
        << c.what << " / " << t.adoption().reason;
    EXPECT_EQ(t.size(), 0u);
    expect_no_leak(t, 0);
  }
  // adopt off: started empty, not refused.
  write_and([](FlowStoreHeader&) {});
  FlowTable t(1024, kKey, nullptr, nullptr, true, FlowStore{s.path, false}, kNow);
  EXPECT_EQ(t.adoption().outcome, Outcome::kCreated);
  EXPECT_EQ(t.size(), 0u);
}

TEST(FlowAdopt, OneLiveTablePerFile) {
  StoreFile s("lock");
  FlowTable a = open_table(s, 1024);
  EXPECT_THROW(open_table(s, 1024), std::system_error);
}

struct Released {
  uint32_t n = 0;
  static void hook(void* ctx, const Flow&) { static_cast<Released*>(ctx)->n++; }
};

TEST(FlowAdopt, AdoptedTableWorksAsAnyOther) {
  StoreFile s("works");
  constexpr uint32_t kCap = 1024, kN = 800;
  {
    FlowTable t = open_table(s, kCap);
    fill(t, kN);
  }
  // The adopter's clock restarted (behind the writer's): expiries are re-based on it.
  constexpr uint64_t kNew = 10;
  Released rel;
  FlowTable t(kCap, kKey, &Released::hook, &rel, true, FlowStore{s.path}, kNew);
  ASSERT_EQ(t.adoption().outcome, Outcome::kAdopted);
  const int64_t shift = -static_cast<int64_t>(kNow - kNew);
  EXPECT_EQ(t.adoption().expiry_shift, shift);
  for (uint32_t i = 0; i < kN; i++) expect_flow(t, i, shift);

  // Reclaim order rebuilt: the oldest embryonic (flow 1) goes first, then the next.
  Reclaim kind;
  ASSERT_TRUE(t.reclaim_one(&kind));
  EXPECT_EQ(kind, Reclaim::kEmbryonic);
  EXPECT_FALSE(t.find(client_key(1), 0).found());
  EXPECT_TRUE(t.find(client_key(5), 0).found());
  ASSERT_TRUE(t.reclaim_one(&kind));
  EXPECT_FALSE(t.find(client_key(5), 0).found());
  EXPECT_EQ(rel.n, 2u);

  // Erase, insert, update.
  t.erase(t.find(client_key(0), 0).idx);
  EXPECT_FALSE(t.find(backend_key(0), 0).found());
  const auto r = t.insert(client_key(0), backend_key(0), FlowState::kSynSent, kNew + 100, kNew);
  ASSERT_EQ(r.status, Status::kOk);
  t.update(r.idx, FlowState::kEstablished, kNew + kLife + kN + 100);
  EXPECT_EQ(t.size(), kN - 2);

  // Ageing: everything fill() made expires by kNew + kLife + kN; the flow above lives on.
  const uint64_t later = kNew + kLife + kN;
  const uint32_t aged = t.age(later, kCap);
  EXPECT_EQ(aged, kN - 3);
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(rel.n, 2u + aged);
  expect_no_leak(t, kN + 1);
}

// Not a timing assertion: the figure for docs/hot-restart.md.
TEST(FlowAdopt, AdoptionTimeFor1MFlows) {
  StoreFile s("1m");
  constexpr uint32_t kCap = 1u << 20, kN = 1'000'000;
  {
    FlowTable t = open_table(s, kCap);
    fill(t, kN);
  }
  FlowTable t = open_table(s, kCap);
  ASSERT_EQ(t.adoption().outcome, Outcome::kAdopted);
  EXPECT_EQ(t.adoption().adopted, kN);
  std::printf("adoption of %u flows (capacity %u, %zu MiB file): %.1f ms\n", kN, kCap,
              t.memory_bytes() >> 20, t.adoption().micros / 1000.0);
  for (uint32_t i = 0; i < kN; i += 997) expect_flow(t, i);
}

}  // namespace
}  // namespace rondo::dp
