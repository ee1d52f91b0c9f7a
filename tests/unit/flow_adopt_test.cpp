// FlowTable and FlowTable6 (typed tests over both key types) in a FlowStore file: a table
// written by a process killed with SIGKILL is adopted
// by another, byte for byte; corrupt records and stray bucket slots are dropped and counted,
// exactly; a header that does not match is refused with its reason; a file of another bucket
// count (main's sizing) is adopted with its key index rebuilt; the adopted table works
// as a fresh one. Adoption time for 1M flows is printed (not asserted).
#include "dataplane/flow/table.h"
#include "tests/unit/store_test_util.h"

#include <gtest/gtest.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <system_error>
#include <type_traits>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace rondo::dp {
namespace {

using Outcome = FlowAdoption::Outcome;
using store_test::write_and_kill;
using Status = FlowInsertStatus;

constexpr HashKey kKey{0x0123456789abcdefull, 0xfedcba9876543210ull};
constexpr HashKey kOtherKey{0x1111111111111111ull, 0x2222222222222222ull};
constexpr uint64_t kNow = 1'000'000;
constexpr uint64_t kLife = 500'000;  // every flow expires at kNow + kLife + i

// Flow i's kind: TCP established (two keys), TCP embryonic (two keys), UDP (two keys),
// TCP one key (DSR).
enum Kind { kTcpEst, kTcpSyn, kUdp, kDsr };
Kind kind(uint32_t i) { return static_cast<Kind>(i % 4); }
uint8_t proto(uint32_t i) { return kind(i) == kUdp ? 17 : 6; }

// Every test runs over both key types (FlowTable, FlowTable6): the keys of flow i differ
// only in their address width.
template <typename K>
constexpr bool kV6 = std::is_same_v<K, FlowKey6>;

// v4: the number itself; v6: 2001:db8:<net>::<the number in the low 32 bits>.
template <typename K>
void set_ip(K& k, bool src, uint16_t net, uint32_t v) {
  if constexpr (kV6<K>) {
    uint8_t(&a)[16] = src ? k.src_ip : k.dst_ip;
    const uint8_t prefix[6] = {0x20, 0x01, 0x0d, 0xb8, static_cast<uint8_t>(net >> 8),
                               static_cast<uint8_t>(net)};
    std::memset(a, 0, 16);
    std::memcpy(a, prefix, sizeof prefix);
    std::memcpy(a + 12, &v, 4);
  } else {
    (src ? k.src_ip : k.dst_ip) = v;
  }
}

template <typename K>
K client_key(uint32_t i) {
  K k;
  set_ip(k, true, 0x100, 0x0a000000 + i);
  set_ip(k, false, 0, 0xc0000201);
  k.src_port = static_cast<uint16_t>(1024 + i % 60000);
  k.dst_port = 80;
  k.proto = proto(i);
  return k;
}

// backend:80 -> local ip:port: the rev key is the local ip:port that must survive.
template <typename K>
K backend_key(uint32_t i) {
  K k;
  set_ip(k, true, 0x200, 0x0a010001 + i % 7);
  set_ip(k, false, 0x300, 0x0a020000 + (i >> 16));
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

template <typename K>
void fill(BasicFlowTable<K>& t, uint32_t n) {
  using Key = K;
  for (uint32_t i = 0; i < n; i++) {
    const Key f = client_key<Key>(i), r = backend_key<Key>(i);
    const FlowInsertResult res =
        kind(i) == kDsr ? t.insert_one(f, t.probe(f), r, state_of(i), kNow + kLife + i, kNow)
                        : t.insert(f, r, state_of(i), kNow + kLife + i, kNow);
    ASSERT_EQ(res.status, Status::kOk) << i;
    auto& fl = t.at(res.idx);
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
template <typename K>
void expect_flow(const BasicFlowTable<K>& t, uint32_t i, int64_t shift = 0) {
  using Key = K;
  const FlowHit h = t.find(client_key<Key>(i), 0);
  ASSERT_TRUE(h.found()) << i;
  EXPECT_EQ(h.dir, FlowDir::kForward);
  const auto& f = t.at(h.idx);
  EXPECT_EQ(f.fwd, client_key<Key>(i));
  EXPECT_EQ(f.rev, backend_key<Key>(i)) << i;  // the local ip:port
  EXPECT_EQ(f.state, state_of(i));
  EXPECT_EQ(f.backend_id, i % 7 + 1);
  EXPECT_EQ(f.vip_id, i % 3);
  EXPECT_EQ(f.user, static_cast<uint8_t>(i));
  EXPECT_EQ(f.expires, static_cast<uint64_t>(static_cast<int64_t>(kNow + kLife + i) + shift));
  const FlowHit r = t.find(backend_key<Key>(i), 0);
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
template <typename K>
void expect_no_leak(BasicFlowTable<K>& t, uint32_t first_new) {
  using Key = K;
  const uint32_t free_n = t.capacity() - t.size();
  for (uint32_t j = 0; j < free_n; j++) {
    Key f = client_key<Key>(first_new + j), r = backend_key<Key>(first_new + j);
    f.dst_port = 443;  // never one of fill()'s keys
    r.src_port = 443;
    const FlowInsertResult res = t.insert(f, r, FlowState::kEstablished, kNow + 1, kNow);
    ASSERT_EQ(res.status, Status::kOk) << j;
    ASSERT_EQ(res.reclaimed, Reclaim::kNone) << j;
  }
  EXPECT_EQ(t.size(), t.capacity());
}

struct StoreFile : store_test::StoreFile {
  explicit StoreFile(const char* name) : store_test::StoreFile("rondo-adopt-", name) {}
};

template <typename K>
BasicFlowTable<K> open_table(const StoreFile& s, uint32_t cap, uint64_t now = kNow,
                             const HashKey& key = kKey, bool meters = true) {
  return BasicFlowTable<K>(cap, key, nullptr, nullptr, meters, FlowStore{s.path}, now);
}

template <typename K>
class FlowAdoptTest : public testing::Test {};
struct KeyTypeNames {
  template <typename K>
  static std::string GetName(int) {
    return kV6<K> ? "v6" : "v4";
  }
};
using KeyTypes = testing::Types<FlowKey, FlowKey6>;
TYPED_TEST_SUITE(FlowAdoptTest, KeyTypes, KeyTypeNames);

TYPED_TEST(FlowAdoptTest, NewFileStartsEmpty) {
  using Key = TypeParam;
  using Table = BasicFlowTable<Key>;
  StoreFile s("new");
  Table t = open_table<Key>(s, 1024);
  EXPECT_EQ(t.adoption().outcome, Outcome::kCreated);
  EXPECT_EQ(t.adoption().writer_clock, 0u);  // nothing adopted: no writer
  EXPECT_EQ(t.size(), 0u);
  expect_no_leak(t, 0);
}

TYPED_TEST(FlowAdoptTest, AdoptsWhatAKilledProcessWrote) {
  using Key = TypeParam;
  using Table = BasicFlowTable<Key>;
  StoreFile s("kill9");
  constexpr uint32_t kCap = 8192, kN = 6000;
  ASSERT_NO_FATAL_FAILURE(write_and_kill([&] {
    Table t(kCap, kKey, nullptr, nullptr, true, FlowStore{s.path}, kNow);
    fill(t, kN);
    // A half-made flow too: inserted and erased before the kill leaves nothing behind.
    t.erase(t.insert(client_key<Key>(kN), backend_key<Key>(kN), FlowState::kSynSent, kNow + 5, kNow).idx);
  }));

  Table t = open_table<Key>(s, kCap, kNow + 10);  // a clock that went on: expiries kept
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
template <typename Key>
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
  using Rec = typename BasicFlowTable<Key>::Record;
  Rec& flow(uint32_t idx) { return reinterpret_cast<Rec*>(base + hdr().flows_off)[idx]; }
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

TYPED_TEST(FlowAdoptTest, DropsExactlyTheInconsistentRecords) {
  using Key = TypeParam;
  using Table = BasicFlowTable<Key>;
  StoreFile s("corrupt");
  constexpr uint32_t kCap = 4096, kN = 2000;
  uint32_t idx[kN];
  {
    Table t = open_table<Key>(s, kCap);
    fill(t, kN);
    for (uint32_t i = 0; i < kN; i++) idx[i] = t.find(client_key<Key>(i), 0).idx;
  }
  // Flows 0, 4, 8, 12, 16 are two-key TCP established; 3 is one-key.
  {
    Mapped<Key> m(s.path);
    // A key's bucket slot cleared: the record goes (1), its other slot is stray (1).
    m.clear_slot(m.flow(idx[0]).loc[0]);
    // A loc pointing elsewhere: the record goes (1), both its slots are stray (2).
    m.flow(idx[4]).loc[1] ^= 1;
    // A bad state byte: the record goes (1), both slots stray (2).
    reinterpret_cast<uint8_t&>(m.flow(idx[8]).state) = 0x7f;
    // An insert cut short after its first key (state is written last, so the record is still
    // free): half done (1), its one slot stray (1).
    m.clear_slot(m.flow(idx[12]).loc[1]);
    m.flow(idx[12]).loc[1] = Table::kNoLoc;
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
  Table t = open_table<Key>(s, kCap);
  const FlowAdoption& a = t.adoption();
  ASSERT_EQ(a.outcome, Outcome::kAdopted) << a.reason;
  EXPECT_EQ(a.discarded, 5u);  // 0, 4, 8, 16, 3
  EXPECT_EQ(a.half_done, 2u);  // 12, kCap - 1
  EXPECT_EQ(a.slots_cleared, 1u + 2 + 2 + 1 + 2 + 1 + 1 + 1);
  EXPECT_EQ(a.adopted, kN - 6);
  EXPECT_EQ(t.size(), kN - 6);
  for (uint32_t i = 0; i < kN; i++) {
    if (i == 0 || i == 3 || i == 4 || i == 8 || i == 12 || i == 16) {
      EXPECT_FALSE(t.find(client_key<Key>(i), 0).found()) << i;
      EXPECT_FALSE(t.find(backend_key<Key>(i), 0).found()) << i;
    } else {
      expect_flow(t, i);
    }
  }
  // The dropped flows' keys can be inserted again.
  EXPECT_EQ(t.insert(client_key<Key>(0), backend_key<Key>(0), FlowState::kSynSent, kNow + 9, kNow).status,
            Status::kOk);
  EXPECT_EQ(t.insert(client_key<Key>(12), backend_key<Key>(12), FlowState::kSynSent, kNow + 9, kNow).status,
            Status::kOk);
  expect_no_leak(t, kN + 1);
}

TYPED_TEST(FlowAdoptTest, RefusesAHeaderThatDoesNotMatch) {
  using Key = TypeParam;
  using Table = BasicFlowTable<Key>;
  StoreFile s("refuse");
  auto write_and = [&](auto&& change) {
    {
      Table t(1024, kKey, nullptr, nullptr, true, FlowStore{s.path, false}, kNow);
      fill(t, 100);
    }
    Mapped<Key> m(s.path);
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
      // Another bucket count is rebuilt from only when all else matches: not across another
      // layout version, nor when the arrays are not where that count puts them.
      {"layout version 99", 1024, kKey, true,
       [](FlowStoreHeader& h) {
         h.version = 99;
         h.n_buckets = 512;
       }},
      {"layout or size", 1024, kKey, true, [](FlowStoreHeader& h) { h.n_buckets += 100; }},
      // (and the file made again at this table's size, not at the size that count implies)
      {"layout or size", 1024, kKey, true, [](FlowStoreHeader& h) { h.n_buckets = 1u << 20; }},
      // One bucket cannot give a key two choices: (1024 + 2) / 3 = 342 is this table's.
      {"bucket count 1, this table's is 342", 1024, kKey, true,
       [](FlowStoreHeader& h) { h.n_buckets = 1; }},
  };
  for (const Case& c : cases) {
    write_and(c.change);
    Table t = open_table<Key>(s, c.cap, kNow, c.key, c.meters);
    EXPECT_EQ(t.adoption().outcome, Outcome::kRefused) << c.what;
    EXPECT_NE(t.adoption().reason.find(c.what), std::string::npos)
        << c.what << " / " << t.adoption().reason;
    EXPECT_EQ(t.size(), 0u);
    struct stat st {};
    ASSERT_EQ(::stat(s.path.c_str(), &st), 0);
    EXPECT_EQ(st.st_size, 2 << 20) << c.what;  // 1024 flows: one 2 MiB multiple
    expect_no_leak(t, 0);
  }
  // adopt off: started empty, not refused.
  write_and([](FlowStoreHeader&) {});
  Table t(1024, kKey, nullptr, nullptr, true, FlowStore{s.path, false}, kNow);
  EXPECT_EQ(t.adoption().outcome, Outcome::kCreated);
  EXPECT_EQ(t.size(), 0u);
}

TYPED_TEST(FlowAdoptTest, OneLiveTablePerFile) {
  using Key = TypeParam;
  using Table = BasicFlowTable<Key>;
  StoreFile s("lock");
  Table a = open_table<Key>(s, 1024);
  EXPECT_THROW(open_table<Key>(s, 1024), std::system_error);
}

struct Released {
  uint32_t n = 0;
  template <typename Rec>
  static void hook(void* ctx, const Rec&) {
    static_cast<Released*>(ctx)->n++;
  }
};

TYPED_TEST(FlowAdoptTest, AdoptedTableWorksAsAnyOther) {
  using Key = TypeParam;
  using Table = BasicFlowTable<Key>;
  StoreFile s("works");
  constexpr uint32_t kCap = 1024, kN = 800;
  {
    Table t = open_table<Key>(s, kCap);
    fill(t, kN);
  }
  // The adopter's clock restarted (behind the writer's): expiries are re-based on it.
  constexpr uint64_t kNew = 10;
  Released rel;
  Table t(kCap, kKey, &Released::hook<typename Table::Record>, &rel, true, FlowStore{s.path}, kNew);
  ASSERT_EQ(t.adoption().outcome, Outcome::kAdopted);
  const int64_t shift = -static_cast<int64_t>(kNow - kNew);
  EXPECT_EQ(t.adoption().expiry_shift, shift);
  for (uint32_t i = 0; i < kN; i++) expect_flow(t, i, shift);

  // Reclaim order rebuilt: the oldest embryonic (flow 1) goes first, then the next.
  Reclaim kind;
  ASSERT_TRUE(t.reclaim_one(&kind));
  EXPECT_EQ(kind, Reclaim::kEmbryonic);
  EXPECT_FALSE(t.find(client_key<Key>(1), 0).found());
  EXPECT_TRUE(t.find(client_key<Key>(5), 0).found());
  ASSERT_TRUE(t.reclaim_one(&kind));
  EXPECT_FALSE(t.find(client_key<Key>(5), 0).found());
  EXPECT_EQ(rel.n, 2u);

  // Erase, insert, update.
  t.erase(t.find(client_key<Key>(0), 0).idx);
  EXPECT_FALSE(t.find(backend_key<Key>(0), 0).found());
  const auto r = t.insert(client_key<Key>(0), backend_key<Key>(0), FlowState::kSynSent, kNew + 100, kNew);
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

// A file written with another bucket count: main sized the buckets capacity / 2 lines, this
// build capacity / 3 (docs/benchmarks.md), so a planned restart onto this build finds files
// of the old count. Such a file is written here from the format FlowStoreHeader documents,
// not by the table: the arrays one after another from the second 4 KiB page, each 4 KiB
// aligned (2 MiB when 2 MiB or more), the file a 2 MiB multiple; flow j of `specs` at record
// j, with fill()'s contents for its number i; each key in the emptier of its two buckets
// (first choice on a tie), as main placed them, with no moves.
struct FileLayout {
  size_t flows, buckets, tcp, meters, bytes;
};
FileLayout file_layout(size_t record_bytes, uint32_t cap, uint32_t n_buckets) {
  constexpr size_t kPage = 4096, kHuge = size_t{2} << 20;
  size_t off = kPage;
  auto place = [&off](size_t bytes) {
    const size_t align = bytes >= kHuge ? kHuge : kPage;
    off = (off + align - 1) / align * align;
    const size_t at = off;
    off += bytes;
    return at;
  };
  FileLayout l{};
  l.flows = place(cap * record_bytes);
  l.buckets = place(size_t{n_buckets} * 64);
  l.tcp = place(cap * sizeof(TcpTrack));
  l.meters = place(cap * sizeof(FlowMeter));
  l.bytes = (off + kHuge - 1) / kHuge * kHuge;
  return l;
}
// This build's count (table.h: capacity / 3 lines, rounded up).
uint32_t buckets_now(uint32_t cap) { return (cap + 2) / 3; }

// A key's two buckets and signature at a bucket count (table.h: bucket 1 from the hash's low
// 32 bits, bucket 2 from the high, by multiply-shift; the next bucket if they are equal; the
// signature is their XOR, never 0).
template <typename K>
FlowProbe probe_at(const K& k, uint32_t n_buckets) {
  uint64_t h;
  if constexpr (kV6<K>)
    h = flow_hash6(k, kKey);
  else
    h = flow_hash(k, kKey);
  const auto lo = static_cast<uint32_t>(h), hi = static_cast<uint32_t>(h >> 32);
  const auto b1 = static_cast<uint32_t>((uint64_t{lo} * n_buckets) >> 32);
  auto b2 = static_cast<uint32_t>((uint64_t{hi} * n_buckets) >> 32);
  if (b2 == b1) b2 = b1 + 1 == n_buckets ? 0 : b1 + 1;
  return FlowProbe{(lo ^ hi) != 0 ? lo ^ hi : 1, b1, b2};
}

// Flow number i (fill()'s contents) with this client key.
template <typename K>
struct Spec {
  uint32_t i;
  K fwd;
};
template <typename K>
std::vector<Spec<K>> specs_of(uint32_t n) {
  std::vector<Spec<K>> v;
  for (uint32_t i = 0; i < n; i++) v.push_back({i, client_key<K>(i)});
  return v;
}

template <typename K>
void write_with_buckets(const std::string& path, uint32_t cap, uint32_t n_buckets,
                        const std::vector<Spec<K>>& specs, uint32_t version = 1) {
  using Rec = typename BasicFlowTable<K>::Record;
  const FileLayout l = file_layout(sizeof(Rec), cap, n_buckets);
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(l.bytes)), 0);
  void* p = mmap(nullptr, l.bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  ASSERT_NE(p, MAP_FAILED);
  char* base = static_cast<char*>(p);
  auto* recs = reinterpret_cast<Rec*>(base + l.flows);
  auto* buckets = reinterpret_cast<BucketView*>(base + l.buckets);
  auto* tcp = reinterpret_cast<TcpTrack*>(base + l.tcp);
  auto* meters = reinterpret_cast<FlowMeter*>(base + l.meters);
  auto put = [&](const K& k, uint32_t ref) {
    const FlowProbe q = probe_at(k, n_buckets);
    auto empties = [&](uint32_t b) {
      uint32_t n = 0;
      for (uint32_t s = 0; s < 8; s++) n += buckets[b].sig[s] == 0;
      return n;
    };
    const uint32_t e1 = empties(q.b1), e2 = empties(q.b2);
    if (e1 == 0 && e2 == 0) return UINT32_MAX;
    const uint32_t b = e1 >= e2 ? q.b1 : q.b2;
    uint32_t s = 0;
    while (buckets[b].sig[s] != 0) s++;
    buckets[b].sig[s] = q.hash;
    buckets[b].ref[s] = ref;
    return b * 8 + s;
  };
  for (uint32_t j = 0; j < specs.size(); j++) {
    const uint32_t i = specs[j].i;
    Rec& f = recs[j];
    f.fwd = specs[j].fwd;
    f.rev = backend_key<K>(i);
    f.expires = kNow + kLife + i;
    f.backend_id = i % 7 + 1;
    f.vip_id = static_cast<uint16_t>(i % 3);
    f.user = static_cast<uint8_t>(i);
    f.state = state_of(i);
    f.lru_prev = f.lru_next = UINT32_MAX;  // adoption rebuilds the lists
    f.loc[0] = put(f.fwd, j * 2);
    f.loc[1] = kind(i) == kDsr ? BasicFlowTable<K>::kNoLoc : put(f.rev, j * 2 + 1);
    ASSERT_NE(f.loc[0], UINT32_MAX) << "the writer's buckets overflowed at flow " << i;
    if (kind(i) != kDsr) {
      ASSERT_NE(f.loc[1], UINT32_MAX) << "the writer's buckets overflowed at flow " << i;
    }
    if (proto(i) == 6) tcp[j] = track_of(i);
    meters[j] = FlowMeter{.created = kNow};
    meters[j].packets[0] = 1;
    meters[j].bytes[0] = 100 + i;
  }
  FlowStoreHeader h{};
  h.version = version;
  h.capacity = cap;
  h.n_buckets = n_buckets;
  h.meters = 1;
  h.key_fingerprint = key_fingerprint(kKey, "rondo flow table key fingerprint");
  h.clock = kNow;
  h.flows_off = l.flows;
  h.buckets_off = l.buckets;
  h.tcp_off = l.tcp;
  h.meters_off = l.meters;
  h.bytes = l.bytes;
  std::memcpy(h.magic, kV6<K> ? FlowStoreHeader::kMagic6 : FlowStoreHeader::kMagic, 8);
  std::memcpy(base, &h, sizeof h);
  munmap(base, l.bytes);
}

size_t file_size(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<size_t>(st.st_size) : 0;
}

// Adopted, not refused: the records kept at their indices (their trackers and meters with
// them, moved to this layout's offsets), the key index rebuilt at this build's count, every
// flow found by both its keys (the DSR ones by one). Erase works on the rebuilt index (each
// key's Flow::loc names its new slot), and the next process adopts the rewritten file as it
// is, no rebuild. Three files: the brief's example (3,000 flows, 1,500 buckets in the file,
// 1,000 here), main's sizing at a capacity where the file shrinks (the 2 MiB rounding), and
// fewer buckets than this build's (another sizing: the file grows).
TYPED_TEST(FlowAdoptTest, AFileWithAnotherBucketCountIsAdoptedWithItsIndexRebuilt) {
  using Key = TypeParam;
  using Table = BasicFlowTable<Key>;
  using Rec = typename Table::Record;
  struct Case {
    uint32_t cap, file_buckets, flows;
  };
  constexpr uint32_t kBig = 197120;  // both families' files change size here (checked below)
  const Case cases[] = {
      {3000, 1500, 3000},
      {kBig, (kBig * 2 + 3) / 4, kBig},
      {kBig, kBig / 4, kBig / 2},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::to_string(c.cap) + " flows, " + std::to_string(c.file_buckets) +
                 " buckets in the file");
    StoreFile s("rebuild");
    ASSERT_NO_FATAL_FAILURE(
        write_with_buckets<Key>(s.path, c.cap, c.file_buckets, specs_of<Key>(c.flows)));
    const FileLayout from = file_layout(sizeof(Rec), c.cap, c.file_buckets);
    const FileLayout to = file_layout(sizeof(Rec), c.cap, buckets_now(c.cap));
    ASSERT_NE(from.tcp, to.tcp) << "the trackers must move for the test to show they do";
    if (c.cap == kBig) {
      ASSERT_NE(from.bytes, to.bytes);
    }
    {
      Table t = open_table<Key>(s, c.cap, kNow + 10);
      const FlowAdoption& a = t.adoption();
      ASSERT_EQ(a.outcome, Outcome::kAdopted) << a.reason;
      EXPECT_EQ(a.rebuilt_from, c.file_buckets);
      EXPECT_EQ(a.adopted, c.flows);
      EXPECT_EQ(a.discarded, 0u);
      EXPECT_EQ(a.no_room, 0u);
      EXPECT_EQ(a.half_done, 0u);
      EXPECT_EQ(a.slots_cleared, 0u);
      const std::string want = "key index rebuilt (bucket count " +
                               std::to_string(c.file_buckets) + " in the file, " +
                               std::to_string(buckets_now(c.cap)) + " in this table): " +
                               std::to_string(c.flows) + " flows placed again, 0 without a slot";
      EXPECT_EQ(a.reason, want);
      std::printf("%s: %u flows adopted, index rebuilt, in %.1f ms\n", kV6<Key> ? "v6" : "v4",
                  a.adopted, a.micros / 1000.0);
      EXPECT_EQ(t.size(), c.flows);
      EXPECT_EQ(file_size(s.path), to.bytes);
      for (uint32_t i = 0; i < c.flows; i++) ASSERT_NO_FATAL_FAILURE(expect_flow(t, i));
      EXPECT_EQ(t.embryonic(), c.flows / 4);
      EXPECT_EQ(t.reclaimable(Reclaim::kIdleUdp), c.flows / 4);
      // Erase every even flow: both its keys gone, the odd ones all still there.
      for (uint32_t i = 0; i < c.flows; i += 2) t.erase(t.find(client_key<Key>(i), 0).idx);
      EXPECT_EQ(t.size(), c.flows / 2);
      for (uint32_t i = 0; i < c.flows; i++) {
        if (i % 2 == 0) {
          ASSERT_FALSE(t.find(client_key<Key>(i), 0).found()) << i;
          ASSERT_FALSE(t.find(backend_key<Key>(i), 0).found()) << i;
        } else {
          ASSERT_NO_FATAL_FAILURE(expect_flow(t, i));
        }
      }
    }
    // The file is now this build's: adopted as it is.
    Table t = open_table<Key>(s, c.cap, kNow + 20);
    const FlowAdoption& a = t.adoption();
    ASSERT_EQ(a.outcome, Outcome::kAdopted) << a.reason;
    EXPECT_EQ(a.rebuilt_from, 0u);
    EXPECT_EQ(a.reason, "");
    EXPECT_EQ(a.adopted, c.flows / 2);
    EXPECT_EQ(a.discarded + a.half_done + a.slots_cleared, 0u);
    for (uint32_t i = 1; i < c.flows; i += 2) ASSERT_NO_FATAL_FAILURE(expect_flow(t, i));
    expect_no_leak(t, c.flows + 1);
  }
}

// A flow whose key finds no slot in the rebuilt index is dropped and counted, the others
// kept. 17 one-key flows whose client keys have both their buckets among buckets 0 and 1 at
// this build's count (16 slots: they fit the file's 1,500 buckets, not 1,000), then 1,000
// flows of fill()'s. Exactly one of the 17 goes; the table then takes capacity - size new
// flows (its record was freed).
TYPED_TEST(FlowAdoptTest, AFlowTheRebuiltIndexHasNoRoomForIsDiscarded) {
  using Key = TypeParam;
  using Table = BasicFlowTable<Key>;
  constexpr uint32_t kCap = 3000, kN = 1000, kCrowd = 17;
  const uint32_t nb = buckets_now(kCap);
  std::vector<Spec<Key>> specs;
  // One-key (DSR) numbers far from fill()'s (their unindexed reverse keys differ too).
  for (uint32_t j = 10'000'000; specs.size() < kCrowd; j++) {
    const Key k = client_key<Key>(j);
    const FlowProbe q = probe_at(k, nb);
    if (q.b1 < 2 && q.b2 < 2) specs.push_back({uint32_t(1'000'003 + 4 * specs.size()), k});
  }
  std::vector<Spec<Key>> crowd = specs;
  for (const Spec<Key>& sp : specs_of<Key>(kN)) specs.push_back(sp);
  StoreFile s("noroom");
  ASSERT_NO_FATAL_FAILURE(write_with_buckets<Key>(s.path, kCap, 1500, specs));
  Table t = open_table<Key>(s, kCap, kNow + 10);
  const FlowAdoption& a = t.adoption();
  ASSERT_EQ(a.outcome, Outcome::kAdopted) << a.reason;
  EXPECT_EQ(a.no_room, 1u);
  EXPECT_EQ(a.discarded, 1u);
  EXPECT_EQ(a.adopted, kN + kCrowd - 1);
  EXPECT_NE(a.reason.find(std::to_string(kN + kCrowd - 1) + " flows placed again, 1 without a slot"),
            std::string::npos)
      << a.reason;
  uint32_t found = 0;
  for (const Spec<Key>& sp : crowd) found += t.find(sp.fwd, 0).found();
  EXPECT_EQ(found, kCrowd - 1);
  for (uint32_t i = 0; i < kN; i++) ASSERT_NO_FATAL_FAILURE(expect_flow(t, i));
  expect_no_leak(t, kN + 1);
}

// Another bucket count does not open the door to another layout version: still refused.
TYPED_TEST(FlowAdoptTest, AnotherVersionWithAnotherBucketCountIsRefused) {
  using Key = TypeParam;
  using Table = BasicFlowTable<Key>;
  StoreFile s("v2");
  ASSERT_NO_FATAL_FAILURE(write_with_buckets<Key>(s.path, 3000, 1500, specs_of<Key>(100), 2));
  Table t = open_table<Key>(s, 3000);
  EXPECT_EQ(t.adoption().outcome, Outcome::kRefused);
  EXPECT_NE(t.adoption().reason.find("layout version 2, this build reads 1"), std::string::npos)
      << t.adoption().reason;
  EXPECT_EQ(t.adoption().rebuilt_from, 0u);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_FALSE(t.find(client_key<Key>(0), 0).found());
}

// Not a timing assertion: the figure for docs/hot-restart.md.
TYPED_TEST(FlowAdoptTest, AdoptionTimeFor1MFlows) {
  using Key = TypeParam;
  using Table = BasicFlowTable<Key>;
  StoreFile s("1m");
  constexpr uint32_t kCap = 1u << 20, kN = 1'000'000;
  {
    Table t = open_table<Key>(s, kCap);
    fill(t, kN);
  }
  Table t = open_table<Key>(s, kCap);
  ASSERT_EQ(t.adoption().outcome, Outcome::kAdopted);
  EXPECT_EQ(t.adoption().adopted, kN);
  std::printf("adoption of %u flows (capacity %u, %zu MiB file): %.1f ms\n", kN, kCap,
              t.memory_bytes() >> 20, t.adoption().micros / 1000.0);
  for (uint32_t i = 0; i < kN; i += 997) expect_flow(t, i);
}

// The two tables' files differ in their magic only where the geometry could match: a v4
// file is never adopted as v6 and the other way round, whatever the capacity.
TEST(FlowAdoptFamilies, AV4FileIsNeverAdoptedAsV6NorTheOtherWay) {
  StoreFile s("family");
  {
    FlowTable t(1024, kKey, nullptr, nullptr, true, FlowStore{s.path}, kNow);
    fill(t, 100);
  }
  {
    FlowTable6 t6(1024, kKey, nullptr, nullptr, true, FlowStore{s.path}, kNow);
    EXPECT_EQ(t6.adoption().outcome, Outcome::kRefused);
    EXPECT_NE(t6.adoption().reason.find("not a v6 flow table (bad magic"), std::string::npos)
        << t6.adoption().reason;
    EXPECT_EQ(t6.size(), 0u);
    fill(t6, 100);
  }
  FlowTable t(1024, kKey, nullptr, nullptr, true, FlowStore{s.path}, kNow);
  EXPECT_EQ(t.adoption().outcome, Outcome::kRefused);
  EXPECT_NE(t.adoption().reason.find("not a flow table (bad magic"), std::string::npos)
      << t.adoption().reason;
  EXPECT_EQ(t.size(), 0u);
}

// The v4 file keeps the format main wrote before FlowTable6 existed (an upgrade adopts v4
// flows): magic RONDOFT1, version 1, the arrays where that version put them. The v6 file is
// marked RONDOFT6, its records 128 bytes.
TEST(FlowAdoptFamilies, HeadersNameTheirFamily) {
  StoreFile s4("hdr4"), s6("hdr6");
  constexpr uint32_t kCap = 1u << 16;  // arrays of 2 MiB or more are 2 MiB aligned
  { FlowTable t(kCap, kKey, nullptr, nullptr, false, FlowStore{s4.path}, kNow); }
  { FlowTable6 t(kCap, kKey, nullptr, nullptr, false, FlowStore{s6.path}, kNow); }
  Mapped<FlowKey> m4(s4.path);
  Mapped<FlowKey6> m6(s6.path);
  EXPECT_EQ(std::string(m4.hdr().magic, 8), "RONDOFT1");
  EXPECT_EQ(std::string(m6.hdr().magic, 8), "RONDOFT6");
  EXPECT_EQ(m4.hdr().version, 1u);
  EXPECT_EQ(m6.hdr().version, 1u);
  constexpr uint64_t kMiB2 = 2u << 20;
  // v4: header page, then 64 x 2^16 = 4 MiB of records from 2 MiB, 2 MiB of buckets, 2 MiB
  // of trackers.
  EXPECT_EQ(m4.hdr().flows_off, kMiB2);
  EXPECT_EQ(m4.hdr().buckets_off, kMiB2 + 64 * kCap);
  EXPECT_EQ(m4.hdr().tcp_off, m4.hdr().buckets_off + 64 * (kCap / 2));
  EXPECT_EQ(m4.hdr().bytes, m4.hdr().tcp_off + 32 * kCap);
  // v6: 128 x 2^16 = 8 MiB of records.
  EXPECT_EQ(m6.hdr().flows_off, kMiB2);
  EXPECT_EQ(m6.hdr().buckets_off, kMiB2 + 128 * kCap);
  EXPECT_EQ(m6.hdr().tcp_off, m6.hdr().buckets_off + 64 * (kCap / 2));
  EXPECT_EQ(m6.hdr().bytes, m6.hdr().tcp_off + 32 * kCap);
}

}  // namespace
}  // namespace rondo::dp
