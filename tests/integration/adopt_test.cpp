// Integration: a worker's flows outlive its process (--flow-dir, docs/hot-restart.md).
// Process A (a forked child) builds a Pipeline whose flow table lives in a file, opens N
// full-NAT TCP connections through it and is killed with SIGKILL. Process B builds a Pipeline
// on the same file: the next packet of every flow, both ways, goes to the same backend from the
// same local port, byte for byte what A would have sent (a replica of A in anonymous memory,
// fed the same packets, says what that is), and each backend's active_flows is its share of
// the flows. One record corrupted in the file is discarded and counted, and its local port is
// free again; the tuple of a flow A ended is still in the (adopted) local-port quarantine. Then the state file: a state the control agent applied is kept and applied again
// by the next agent; a damaged one is ignored. And kRestart is refused without --flow-dir.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <vector>

#include "dataplane/api/ctl.h"
#include "dataplane/flow/table.h"
#include "dataplane/fwd/pipeline.h"
#include "dataplane/neigh/manager.h"
#include "dataplane/runtime/control_agent.h"
#include "dataplane/runtime/flow_dir.h"
#include "dataplane/state/publisher.h"
#include "tests/common/handshake.h"
#include "tests/common/packet_builder.h"
#include "tests/common/ring_dataplane.h"
#include "tests/common/seed_topology.h"

namespace rondo {
namespace {

using dp::Action;
using dp::Pipeline;
using test::Frame;
using test::Mac;
using test::Pkt;
using namespace test::seed;

using dp::handshake::kOurMac;
constexpr uint32_t kFlows = 400;  // over the seed's 4 web backends, round-robin
constexpr uint16_t kFirstClientPort = 20000;
constexpr uint8_t kSyn = 0x02, kAck = 0x10, kPsh = 0x08;

// A temporary directory, on tmpfs when there is one (as --flow-dir should be).
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::string tmpl = (std::filesystem::exists("/dev/shm") ? "/dev/shm" : "/tmp") +
                       std::string("/rondo-adopt-XXXXXX");
    path = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

// One worker as the dataplane builds it, at `now` ms (hz 1000), its next hops from the seed's
// static neighbours.
struct Worker {
  std::unique_ptr<dp::Snapshot> snap;
  std::unique_ptr<dp::NeighManager> nm;
  std::unique_ptr<dp::NextHopMap> hops;
  std::unique_ptr<Pipeline> pl;

  Worker(const std::string& store, uint64_t now) {
    dp::PipelineParams pp;
    pp.flow_capacity = 1024;
    pp.flow_meters = true;
    pp.lport_lo = 10000;
    pp.lport_hi = 60000;
    pp.hz = 1000;
    pp.port_macs = {kOurMac};
    pp.port_seed = 7;  // the same order in A and its replica
    pp.flow_store = store;
    pp.quarantine_store = store.empty() ? "" : store + ".quarantine";
    pp.start_now = now;
    pl = std::make_unique<Pipeline>(pp);
    snap = dp::build_snapshot(state(false));
    dp::NeighManagerParams np;
    np.hz = 1000;
    np.port_macs = {kOurMac};
    nm = std::make_unique<dp::NeighManager>(np);
    pl->on_snapshot(*snap, now);
    nm->on_snapshot(*snap, now);
    hops = nm->next_hops_if_changed();
    pl->set_next_hops(hops.get());
  }
  // One frame through; the frame as it leaves (empty if it does not).
  Frame run(const Pkt& p, uint64_t now) {
    Frame f = test::build(p);
    const Action a = pl->process(snap.get(), f.data(), static_cast<uint32_t>(f.size()), 0, now);
    if (a.kind != Action::Kind::kTx) return {};
    return f;
  }
};

uint16_t be16(const Frame& f, size_t off) { return static_cast<uint16_t>(f[off] << 8 | f[off + 1]); }

struct Conn {
  uint16_t cport, lport, bport;
  bool operator==(const Conn&) const = default;
};

// The handshake helpers' segments (tests/common/handshake.h: the same addresses as the seed's),
// with a payload, and from any backend port.
Pkt client(uint16_t cport, uint8_t flags, uint32_t seq, uint32_t ack, const std::string& data = "") {
  Pkt p = dp::handshake::from_client(cport, flags, seq, ack);
  p.payload = data;
  return p;
}
Pkt backend(const Conn& c, uint8_t flags, uint32_t seq, uint32_t ack, const std::string& data = "") {
  Pkt p = dp::handshake::from_backend(c.lport, flags, seq, ack);
  p.sport = c.bport;
  p.payload = data;
  return p;
}
uint32_t isn(uint16_t cport) { return 1000u + cport; }
constexpr uint32_t kBackendIsn = 7000;

// The handshake of connection i; what the pipeline chose for it.
Conn open(Worker& w, uint16_t cport, uint64_t now) {
  const Frame syn = w.run(client(cport, kSyn, isn(cport), 0), now);
  if (syn.size() < 38) return Conn{cport, 0, 0};
  Conn c{cport, be16(syn, 34), be16(syn, 36)};
  w.run(backend(c, kSyn | kAck, kBackendIsn, isn(cport) + 1), now);
  w.run(client(cport, kAck, isn(cport) + 1, kBackendIsn + 1), now);
  return c;
}
// The packets after the restart: client data, and the backend's answer.
Pkt next_client(const Conn& c) { return client(c.cport, kPsh | kAck, isn(c.cport) + 1, kBackendIsn + 1, "GET /"); }
Pkt next_backend(const Conn& c) {
  return backend(c, kPsh | kAck, kBackendIsn + 1, isn(c.cport) + 6, "HTTP/1.1 200");
}

TEST(Adopt, FlowsForwardAsBeforeAfterKill9) {
  TempDir dir;
  const std::string store = dp::flow_file(dir.path, 0);
  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {  // process A: open the connections, report them, wait for the kill
    ::close(pipefd[0]);
    Worker a(store, 1000);
    for (uint32_t i = 0; i < kFlows; ++i) {
      const Conn c = open(a, static_cast<uint16_t>(kFirstClientPort + i), 1000 + i);
      if (::write(pipefd[1], &c, sizeof c) != sizeof c) ::_exit(2);
    }
    // The first connection ends (an operator's delete): its tuple goes to the quarantine.
    const dp::FlowTable::Hit h =
        a.pl->flows().find(dp::handshake::key_of(kClient, kFirstClientPort, kVip, 80), 1000 + kFlows);
    if (!h.found()) ::_exit(3);
    a.pl->remove_flow(h.idx, 1000 + kFlows);
    ::close(pipefd[1]);
    for (;;) ::pause();
  }
  ::close(pipefd[1]);
  std::vector<Conn> conns;
  Conn c;
  while (conns.size() < kFlows && ::read(pipefd[0], &c, sizeof c) == sizeof c) conns.push_back(c);
  // The child closes its end only after the removal above: kill it once that is done, not
  // as soon as the last connection is read (under ASan at -O1 the kill came first).
  char eof;
  EXPECT_EQ(::read(pipefd[0], &eof, 1), 0);
  ::close(pipefd[0]);
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  ASSERT_EQ(conns.size(), kFlows);

  // The replica: A's packets again, in anonymous memory. Same choices, and its output for
  // the next packets is A's.
  Worker replica("", 1000);
  for (uint32_t i = 0; i < kFlows; ++i) {
    ASSERT_EQ(open(replica, conns[i].cport, 1000 + i), conns[i]) << "flow " << i;
    ASSERT_NE(conns[i].lport, 0);
  }
  const Conn& removed = conns[0];

  // Damage one record in the file: a state byte no build knows.
  dp::FlowStoreHeader hdr{};
  uint16_t damaged_cport = 0;
  {
    std::fstream f(store, std::ios::in | std::ios::out | std::ios::binary);
    f.read(reinterpret_cast<char*>(&hdr), sizeof hdr);
    for (uint32_t i = 0; i < hdr.capacity && !damaged_cport; ++i) {
      dp::Flow fl;
      f.seekg(static_cast<std::streamoff>(hdr.flows_off + i * sizeof fl));
      f.read(reinterpret_cast<char*>(&fl), sizeof fl);
      if (fl.state != dp::FlowState::kEstablished) continue;
      damaged_cport = ntohs(fl.fwd.src_port);
      const char bad = static_cast<char>(0xee);
      f.seekp(static_cast<std::streamoff>(hdr.flows_off + i * sizeof fl + offsetof(dp::Flow, state)));
      f.write(&bad, 1);
    }
    ASSERT_NE(damaged_cport, 0);
  }

  // Process B: the same file.
  const uint64_t now = 1000 + kFlows + 50;
  Worker b(store, now);
  const dp::FlowAdoption& ad = b.pl->adoption();
  ASSERT_EQ(ad.outcome, dp::FlowAdoption::Outcome::kAdopted) << ad.reason;
  EXPECT_EQ(ad.adopted, kFlows - 2);
  EXPECT_EQ(ad.discarded, 1u);
  EXPECT_EQ(b.pl->adopted(), kFlows - 2);
  EXPECT_EQ(b.pl->flows().size(), kFlows - 2);
  // The removed flow's tuple is still held (its backend may have it in TIME_WAIT).
  const dp::QuarantineAdoption& qa = b.pl->quarantine().adoption();
  ASSERT_EQ(qa.outcome, dp::QuarantineAdoption::Outcome::kAdopted) << qa.reason;
  EXPECT_EQ(qa.adopted, 1u);
  EXPECT_EQ(b.pl->quarantine().size(), 1u);

  std::map<uint32_t, uint32_t> per_backend;
  const Conn* damaged = nullptr;
  for (const Conn& k : conns) {
    if (k.cport == removed.cport) continue;
    if (k.cport == damaged_cport) {
      damaged = &k;
      EXPECT_TRUE(b.run(next_client(k), now).empty()) << "the discarded flow must not forward";
      continue;
    }
    ++per_backend[k.bport - 3000u];  // the seed's web backends: ids 0-3 on :3000-3003
    const Frame want_fwd = replica.run(next_client(k), now);
    ASSERT_FALSE(want_fwd.empty());
    EXPECT_EQ(b.run(next_client(k), now), want_fwd) << "client " << k.cport;
    const Frame want_rev = replica.run(next_backend(k), now);
    ASSERT_FALSE(want_rev.empty());
    EXPECT_EQ(b.run(next_backend(k), now), want_rev) << "client " << k.cport;
  }
  ASSERT_NE(damaged, nullptr);
  // Round-robin: kFlows / 4 each, less the discarded and the removed flows on theirs; the
  // removed flow's backend has its tuple quarantined.
  const dp::BackendCounters* bc = b.pl->backend_counters();
  for (uint32_t id = 0; id < 4; ++id) {
    const uint32_t want = kFlows / 4 - (damaged->bport - 3000u == id ? 1 : 0) -
                          (removed.bport - 3000u == id ? 1 : 0);
    EXPECT_EQ(per_backend[id], want);
    EXPECT_EQ(bc[id].active_flows, want) << "backend " << id;
    EXPECT_EQ(bc[id].quarantined, removed.bport - 3000u == id ? 1u : 0u) << "backend " << id;
  }
  // The discarded flow's tuple is nobody's now: the local port is free again, since the flow
  // table is the in-use index (a lookup of the reverse key finds nothing).
  dp::FlowKey rev;
  rev.src_ip = htonl(kBackend);
  rev.dst_ip = htonl(kLocal);
  rev.src_port = htons(damaged->bport);
  rev.dst_port = htons(damaged->lport);
  rev.proto = IPPROTO_TCP;
  EXPECT_FALSE(b.pl->flows().find(rev, now).found());
}

// ---- the state file and kRestart, through the control agent (EAL: its snapshots) ----

class StateFile : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(test::init_eal()); }
  struct Agent {
    std::unique_ptr<dp::Publisher> pub = std::make_unique<dp::Publisher>(1);
    std::unique_ptr<dp::ControlAgent> agent;
    explicit Agent(const std::string& sock) {
      dp::PortInfo port;
      agent = std::make_unique<dp::ControlAgent>(sock, pub.get(), std::vector<dp::Worker*>{},
                                                 std::vector<dp::PortInfo>{port});
    }
    api::MsgType send(api::MsgType t, const std::vector<uint8_t>& body, std::vector<uint8_t>* reply) {
      api::MsgHeader h{};
      h.type = static_cast<uint16_t>(t);
      h.length = static_cast<uint32_t>(body.size());
      return agent->handle(h, body, reply);
    }
    api::DataplaneInfo hello() {
      std::vector<uint8_t> reply;
      EXPECT_EQ(send(api::MsgType::kHello, {}, &reply), api::MsgType::kHelloReply);
      std::string err;
      return api::decode_info(reply, &err).value_or(api::DataplaneInfo{});
    }
  };
  TempDir dir;
  std::string file() const { return dir.path / dp::kStateFile; }
  std::string sock() const { return dir.path / "ctl.sock"; }
};

TEST_F(StateFile, AppliedStateIsKeptAndAppliedAgain) {
  api::State st = state(false);
  st.generation = 42;
  const std::vector<uint8_t> bytes = api::encode_state(st);
  {
    Agent a(sock());
    a.agent->use_state_file(file());
    std::vector<uint8_t> reply;
    ASSERT_EQ(a.send(api::MsgType::kSetState, bytes, &reply), api::MsgType::kSetStateReply);
  }
  std::ifstream in(file(), std::ios::binary);
  const std::vector<uint8_t> kept{std::istreambuf_iterator<char>(in), {}};
  EXPECT_EQ(kept, bytes);

  Agent b(sock());
  b.agent->use_state_file(file());
  ASSERT_TRUE(b.agent->apply_state_file());
  ASSERT_NE(b.pub->current(), nullptr);
  EXPECT_EQ(b.pub->current()->generation, 42u);
  EXPECT_EQ(b.hello().generation, 42u);
  // Applied from the file, not written back (it is the same state).
  EXPECT_FALSE(std::filesystem::exists(file() + ".tmp"));
}

TEST_F(StateFile, DamagedStateIsIgnored) {
  std::vector<uint8_t> bytes = api::encode_state(state(false));
  bytes.resize(bytes.size() / 2);  // cut short
  std::ofstream(file(), std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                                static_cast<std::streamsize>(bytes.size()));
  Agent a(sock());
  a.agent->use_state_file(file());
  EXPECT_FALSE(a.agent->apply_state_file());
  EXPECT_EQ(a.pub->current(), nullptr);
  EXPECT_EQ(a.hello().generation, 0u);
  // No file at all: the same, quietly.
  std::filesystem::remove(file());
  EXPECT_FALSE(a.agent->apply_state_file());
}

TEST_F(StateFile, RestartNeedsFlowDirAndIsAcknowledged) {
  Agent a(sock());
  a.agent->use_restart(nullptr, "restart needs --flow-dir: test");
  std::vector<uint8_t> reply;
  ASSERT_EQ(a.send(api::MsgType::kRestart, {}, &reply), api::MsgType::kError);
  std::string err;
  auto ack = api::decode_ack(reply, &err);
  ASSERT_TRUE(ack) << err;
  EXPECT_FALSE(ack->ok);
  EXPECT_EQ(ack->message, "restart needs --flow-dir: test");

  bool asked = false;
  a.agent->use_restart([&] { asked = true; }, "");
  ASSERT_EQ(a.send(api::MsgType::kRestart, {}, &reply), api::MsgType::kRestartReply);
  ack = api::decode_ack(reply, &err);
  ASSERT_TRUE(ack) << err;
  EXPECT_TRUE(ack->ok);
  EXPECT_TRUE(asked);

  a.agent->set_start_info(5, 1, 1, 120);
  const api::DataplaneInfo info = a.hello();
  EXPECT_EQ(info.adopted_flows, 5u);
  EXPECT_EQ(info.discarded_flows, 1u);
  EXPECT_EQ(info.start_kind, 1);
  EXPECT_EQ(info.gap_ms, 120u);
}

TEST(FlowDir, StopMarkIsTakenOnce) {
  TempDir dir;
  std::string err;
  ASSERT_TRUE(dp::write_stop_mark(dir.path, dp::StopMark{123456789012345, 42}, &err)) << err;
  const auto m = dp::take_stop_mark(dir.path);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->realtime_ns, 123456789012345);
  EXPECT_EQ(m->tsc, 42u);
  EXPECT_FALSE(dp::take_stop_mark(dir.path));
}

}  // namespace
}  // namespace rondo
