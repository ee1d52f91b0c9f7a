// Pipeline on plain bytes, no EAL: the seed setup (VIP 203.0.113.10:80/tcp in front of
// 198.51.100.3:3000-3003, plus a UDP VIP :53), ten local ports, a small flow table.
// hz = 1000, so `now` is in milliseconds; nothing sleeps. Every frame goes through run(),
// which counts the verdicts, and TearDown checks them against the pipeline's counters.
// A NeighManager plays the main lcore: run() hands it the ARP frames the pipeline hands
// over, and the NextHopMap it publishes is what the pipeline's output() uses.
#include "dataplane/fwd/pipeline.h"
#include "dataplane/neigh/manager.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <array>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "tests/common/packet_builder.h"

namespace rondo::dp {
namespace {

using test::Arp;
using test::Frame;
using test::Mac;
using test::Pkt;
using test::ip4;

const Mac kOurMac{0x02, 0, 0, 0, 0, 0x01};      // builder's default destination
const Mac kClientMac{0x02, 0, 0, 0, 0, 0x02};   // builder's default source
const Mac kBackendMac{0x02, 0, 0, 0, 0, 0x03};
const Mac kBackend4Mac{0x02, 0, 0, 0, 0, 0x04};
const Mac kBroadcast{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

const uint32_t kVip = ip4("203.0.113.10");
const uint32_t kClient = ip4("198.51.100.2");
const uint32_t kBackend = ip4("198.51.100.3");
const uint32_t kBackend4 = ip4("198.51.100.4");  // not a static neighbour
const uint32_t kLocal = ip4("198.51.100.100");

constexpr uint16_t kLportLo = 40000, kLportHi = 40009;  // ten local ports
constexpr uint32_t kPorts = kLportHi - kLportLo + 1;
constexpr uint32_t kTcpBackendIds[4] = {10, 11, 12, 13};  // :3000..:3003
constexpr uint32_t kUdpBackendId = 20;                     // :5353
constexpr uint32_t kBackend4Id = 40;

// Timeouts of the test state, in ms (= ticks).
constexpr uint64_t kSynMs = 1000, kEstMs = 60000, kClosingMs = 2000, kUdpMs = 5000;
constexpr uint64_t kTimeWaitMs = 3000, kResetMs = 500;

constexpr uint8_t kSyn = kTcpSyn, kAck = kTcpAck, kFin = kTcpFin, kRst = kTcpRst;
constexpr uint8_t kSynAck = kTcpSyn | kTcpAck, kFinAck = kTcpFin | kTcpAck, kPsh = 0x08;

api::State base_state() {
  api::State st;
  st.generation = 1;
  st.timeouts.tcp_syn_ms = kSynMs;
  st.timeouts.tcp_established_ms = kEstMs;
  st.timeouts.tcp_closing_ms = kClosingMs;
  st.timeouts.tcp_time_wait_ms = kTimeWaitMs;
  st.timeouts.tcp_reset_ms = kResetMs;
  st.timeouts.udp_ms = kUdpMs;
  api::Vip web;
  web.id = 1;
  web.ip = api::Addr::from_v4(kVip);
  web.port = 80;
  web.proto = api::Proto::kTcp;
  for (uint16_t i = 0; i < 4; ++i) {
    api::Backend b;
    b.id = kTcpBackendIds[i];
    b.ip = api::Addr::from_v4(kBackend);
    b.port = static_cast<uint16_t>(3000 + i);
    web.backends.push_back(b);
  }
  api::Vip dns;
  dns.id = 2;
  dns.ip = api::Addr::from_v4(kVip);
  dns.port = 53;
  dns.proto = api::Proto::kUdp;
  api::Backend d;
  d.id = kUdpBackendId;
  d.ip = api::Addr::from_v4(kBackend);
  d.port = 5353;
  dns.backends.push_back(d);
  st.vips = {web, dns};
  st.local_ips = {api::Addr::from_v4(kLocal)};
  api::Neighbour nc, nb;
  nc.ip = api::Addr::from_v4(kClient);
  std::memcpy(nc.mac, kClientMac.data(), 6);
  nb.ip = api::Addr::from_v4(kBackend);
  std::memcpy(nb.mac, kBackendMac.data(), 6);
  st.neighbours = {nc, nb};
  return st;
}

// ---- packets ----

Pkt client_pkt(uint16_t cport, uint8_t flags, const std::string& payload = "",
               uint32_t client = kClient) {
  Pkt p;
  p.src_mac = kClientMac;
  p.dst_mac = kOurMac;
  p.src_ip = client;
  p.dst_ip = kVip;
  p.proto = 6;
  p.sport = cport;
  p.dport = 80;
  p.tcp_flags = flags;
  p.seq = 1000u + cport;
  p.payload = payload;
  return p;
}

Pkt client_udp(uint16_t cport, const std::string& payload) {
  Pkt p = client_pkt(cport, 0, payload);
  p.proto = 17;
  p.dport = 53;
  return p;
}

// What the pipeline sends to the backend for a client packet.
Pkt to_backend(Pkt p, uint16_t lport, uint16_t bport, uint32_t bip = kBackend,
               const Mac& bmac = kBackendMac) {
  p.src_mac = kOurMac;
  p.dst_mac = bmac;
  p.src_ip = kLocal;
  p.dst_ip = bip;
  p.sport = lport;
  p.dport = bport;
  p.ttl = static_cast<uint8_t>(p.ttl - 1);
  return p;
}

Pkt backend_pkt(uint16_t bport, uint16_t lport, uint8_t flags, const std::string& payload = "",
                uint8_t proto = 6) {
  Pkt p;
  p.src_mac = kBackendMac;
  p.dst_mac = kOurMac;
  p.src_ip = kBackend;
  p.dst_ip = kLocal;
  p.proto = proto;
  p.sport = bport;
  p.dport = lport;
  p.tcp_flags = flags;
  p.seq = 7000u + lport;
  p.ttl = 64;
  p.payload = payload;
  return p;
}

// What the pipeline sends to the client for a backend packet.
Pkt to_client(Pkt p, uint16_t vport, uint16_t cport, uint32_t client = kClient,
              const Mac& cmac = kClientMac) {
  p.src_mac = kOurMac;
  p.dst_mac = cmac;
  p.src_ip = kVip;
  p.dst_ip = client;
  p.sport = vport;
  p.dport = cport;
  p.ttl = static_cast<uint8_t>(p.ttl - 1);
  return p;
}

uint16_t be16(const Frame& f, size_t off) { return static_cast<uint16_t>(f[off] << 8 | f[off + 1]); }
uint16_t out_sport(const Frame& f) { return be16(f, 34); }
uint16_t out_dport(const Frame& f) { return be16(f, 36); }

// One client connection as the pipeline set it up.
struct Conn {
  uint16_t cport = 0;
  uint16_t lport = 0;  // local port towards the backend
  uint16_t bport = 0;  // backend port chosen
};

class PipelineTest : public ::testing::Test {
 protected:
  void SetUp() override { start(16); }
  void TearDown() override { check_counters(); }

  // A fresh pipeline (flow capacity `capacity`) configured with `st` at time 0.
  void start(uint32_t capacity, const api::State& st = base_state(), bool configure = true) {
    if (pl_) check_counters();
    PipelineParams pp;
    pp.flow_capacity = capacity;
    pp.lport_lo = kLportLo;
    pp.lport_hi = kLportHi;
    pp.hz = 1000;
    pp.port_macs = {kOurMac};
    pl_ = std::make_unique<Pipeline>(pp);
    NeighManagerParams np;
    np.hz = 1000;
    np.port_macs = {kOurMac};
    nm_ = std::make_unique<NeighManager>(np);
    maps_.clear();
    sync();
    tx_ = consumed_ = steered_ = rx_bytes_ = 0;
    drops_.fill(0);
    snap_ = nullptr;
    if (configure) apply(st, 0);
  }

  // Publish a new snapshot. Old ones stay alive, as they would until RCU frees them.
  void apply(const api::State& st, uint64_t now) {
    snaps_.push_back(build_snapshot(st));
    snap_ = snaps_.back().get();
    pl_->on_snapshot(*snap_, now);
    nm_->on_snapshot(*snap_, now);
    sync();
  }

  // What the main lcore's loop does between worker loops: take the worker's questions,
  // publish the next hops if they changed. Old maps stay alive, as they would until RCU
  // frees them.
  void sync(uint64_t now = 0) {
    for (const NeighAsk& a : pl_->neigh_asks()) nm_->want(snap_, a.ip, a.iface, now);
    pl_->neigh_asks().clear();
    if (auto m = nm_->next_hops_if_changed()) maps_.push_back(std::move(m));
    pl_->set_next_hops(maps_.back().get());
  }

  // The ARP requests the manager wants sent (and forget them).
  std::vector<ArpRequest> take_requests() {
    std::vector<ArpRequest> r = nm_->requests();
    nm_->requests().clear();
    return r;
  }

  // One frame through the pipeline; a frame handed to the main lcore goes through the
  // manager (main_ is its verdict; an answered request is rewritten in place).
  Action run(Frame& f, uint64_t now) {
    const Action a = pl_->process(snap_, f.data(), static_cast<uint32_t>(f.size()), 0, now);
    rx_bytes_ += f.size();
    switch (a.kind) {
      case Action::Kind::kTx: ++tx_; break;
      case Action::Kind::kConsumed:
      case Action::Kind::kFragment: ++consumed_; break;  // both counted consumed
      case Action::Kind::kSteer:
      case Action::Kind::kToMain: ++steered_; break;
      case Action::Kind::kDrop: ++drops_.at(static_cast<uint32_t>(a.reason)); break;
    }
    main_ = NeighManager::Verdict{};
    if (a.kind == Action::Kind::kToMain)
      main_ = nm_->handle_arp(snap_, f.data(), static_cast<uint32_t>(f.size()), 0, now);
    sync(now);
    return a;
  }

  void check_counters() {
    const LcoreCounters& c = pl_->counters();
    uint64_t drops = 0;
    for (uint32_t r = 0; r < kDropReasonCount; ++r) {
      drops += c.drops[r];
      EXPECT_EQ(c.drops[r], drops_[r]) << drop_reason_name(static_cast<DropReason>(r));
    }
    EXPECT_EQ(c.consumed, consumed_);
    EXPECT_EQ(c.steered_out, steered_);
    EXPECT_EQ(c.rx_packets, tx_ + drops + c.consumed + c.steered_out);
    EXPECT_EQ(c.rx_bytes, rx_bytes_);
  }

  // Send a frame that must be dropped for `why`; the frame must come back unchanged
  // apart from what the pipeline may legitimately have touched (nothing, for a drop
  // before any rewrite).
  void expect_drop(Frame f, uint64_t now, DropReason why) {
    const Action a = run(f, now);
    EXPECT_EQ(a.kind, Action::Kind::kDrop);
    EXPECT_EQ(a.reason, why) << "got " << drop_reason_name(a.reason) << ", want "
                             << drop_reason_name(why);
  }

  // Client SYN for a new flow: forwarded to some backend from some local port; checks the
  // whole output frame against one built from scratch and returns what was chosen.
  Conn open(uint16_t cport, uint64_t now) {
    const Pkt in = client_pkt(cport, kSyn);
    seq_[cport] = Seq{in.seq + 1, 0};
    Frame f = test::build(in);
    const Action a = run(f, now);
    EXPECT_EQ(a.kind, Action::Kind::kTx) << "SYN from " << cport << ": "
                                         << drop_reason_name(a.reason);
    EXPECT_EQ(a.port, 0);
    Conn c{cport, out_sport(f), out_dport(f)};
    EXPECT_GE(c.lport, kLportLo);
    EXPECT_LE(c.lport, kLportHi);
    EXPECT_EQ(f, test::build(to_backend(in, c.lport, c.bport))) << test::hex(f);
    return c;
  }

  // A client packet of an existing flow goes to its backend from its local port.
  void forward(const Conn& c, uint8_t flags, const std::string& payload, uint64_t now) {
    Pkt in = client_pkt(c.cport, flags, payload);
    number(&in, c, true);
    Frame f = test::build(in);
    const Action a = run(f, now);
    ASSERT_EQ(a.kind, Action::Kind::kTx) << "client " << c.cport << " flags " << int(flags)
                                         << ": " << drop_reason_name(a.reason);
    EXPECT_EQ(f, test::build(to_backend(in, c.lport, c.bport))) << test::hex(f);
  }

  // A backend packet of an existing flow goes back to the client, from VIP:80.
  void reply(const Conn& c, uint8_t flags, const std::string& payload, uint64_t now) {
    Pkt in = backend_pkt(c.bport, c.lport, flags, payload);
    number(&in, c, false);
    Frame f = test::build(in);
    const Action a = run(f, now);
    ASSERT_EQ(a.kind, Action::Kind::kTx) << "backend :" << c.bport << " -> :" << c.lport << ": "
                                         << drop_reason_name(a.reason);
    EXPECT_EQ(f, test::build(to_client(in, 80, c.cport))) << test::hex(f);
  }

  // SYN, SYN-ACK, ACK.
  Conn establish(uint16_t cport, uint64_t now) {
    const Conn c = open(cport, now);
    reply(c, kSynAck, "", now);
    forward(c, kAck, "", now);
    return c;
  }

  // Sequence numbers of the connections forward() and reply() send on, by client port: each
  // side's next sequence number, so that segments are what real endpoints would send (the
  // tracker checks them, flow/tcp_state.h).
  struct Seq {
    uint32_t client = 0, backend = 0;
  };
  void number(Pkt* p, const Conn& c, bool from_client) {
    Seq& q = seq_[c.cport];
    uint32_t& mine = from_client ? q.client : q.backend;
    const uint32_t theirs = from_client ? q.backend : q.client;
    if (p->tcp_flags & kSyn) {
      if (!from_client) mine = p->seq;  // the backend's ISN: builder's default
      else p->seq = mine - 1;
    } else {
      p->seq = mine;
    }
    if (p->tcp_flags & kAck) p->ack = theirs;
    const uint32_t len = static_cast<uint32_t>(p->payload.size()) + ((p->tcp_flags & kSyn) ? 1 : 0) +
                         ((p->tcp_flags & kFin) ? 1 : 0);
    if (p->tcp_flags & kSyn) mine = p->seq + len;
    else mine += len;
  }
  std::map<uint16_t, Seq> seq_;

  const BackendCounters& bc(uint32_t id) const { return pl_->backend_counters()[id]; }

  std::unique_ptr<Pipeline> pl_;
  std::unique_ptr<NeighManager> nm_;
  std::vector<std::unique_ptr<NextHopMap>> maps_;
  NeighManager::Verdict main_;
  std::vector<std::unique_ptr<Snapshot>> snaps_;
  const Snapshot* snap_ = nullptr;
  uint64_t tx_ = 0, consumed_ = 0, steered_ = 0, rx_bytes_ = 0;
  std::array<uint64_t, kDropReasonCount> drops_{};
};

// ---- scheduling and stickiness ----

TEST_F(PipelineTest, NewFlowsTakeTheBackendsInTurn) {
  EXPECT_TRUE(take_requests().empty());  // every next hop is a static neighbour
  std::vector<uint16_t> bports;
  std::set<std::pair<uint16_t, uint16_t>> tuples;
  for (uint16_t i = 0; i < 8; ++i) {
    const Conn c = open(static_cast<uint16_t>(50000 + i), 1 + i);
    bports.push_back(c.bport);
    tuples.insert({c.lport, c.bport});
  }
  EXPECT_EQ(bports, (std::vector<uint16_t>{3000, 3001, 3002, 3003, 3000, 3001, 3002, 3003}));
  EXPECT_EQ(tuples.size(), 8u);  // one (local port, backend) per flow
  EXPECT_EQ(pl_->flows().size(), 8u);
  EXPECT_EQ(pl_->flows().size(), 8u);
  const uint64_t syn_len = test::build(client_pkt(1, kSyn)).size();
  for (uint32_t id : kTcpBackendIds) {
    EXPECT_EQ(bc(id).connections, 2u) << id;
    EXPECT_EQ(bc(id).active_flows, 2u) << id;
    EXPECT_EQ(bc(id).packets, 2u) << id;
    EXPECT_EQ(bc(id).bytes, 2 * syn_len) << id;
  }
}

TEST_F(PipelineTest, EveryLaterPacketGoesToTheSameBackend) {
  std::vector<Conn> conns;
  for (uint16_t i = 0; i < 4; ++i) conns.push_back(open(static_cast<uint16_t>(51000 + i), 10));
  // Interleave the flows' packets so a mix-up between them would show.
  uint64_t t = 20;
  for (const Conn& c : conns) reply(c, kSynAck, "", t++);
  for (const Conn& c : conns) forward(c, kAck, "", t++);
  for (const Conn& c : conns) forward(c, kPsh | kAck, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", t++);
  for (const Conn& c : conns) reply(c, kPsh | kAck, "HTTP/1.1 200 OK\r\n\r\nhello", t++);
  for (const Conn& c : conns) forward(c, kAck, "", t++);
  for (const Conn& c : conns) forward(c, kFinAck, "", t++);
  for (const Conn& c : conns) reply(c, kFinAck, "", t++);
  for (const Conn& c : conns) forward(c, kAck, "", t++);
  for (uint32_t id : kTcpBackendIds) {
    EXPECT_EQ(bc(id).connections, 1u) << id;
    EXPECT_EQ(bc(id).packets, 9u) << id;  // 5 forward + 3 back + the SYN
  }
  // Later packets did not move the round-robin cursor: the next new flow takes :3000.
  EXPECT_EQ(open(52000, t).bport, 3000);
}

TEST_F(PipelineTest, SynRetransmitKeepsTheBackend) {
  const Conn a = open(53000, 1);
  const Conn b = open(53001, 2);
  ASSERT_NE(a.bport, b.bport);
  forward(a, kSyn, "", 3);  // retransmitted SYN: same flow, no new pick
  reply(a, kSynAck, "", 4);
  forward(a, kSyn, "", 5);  // even after the SYN-ACK was seen
  forward(a, kAck, "", 6);
  EXPECT_EQ(bc(kTcpBackendIds[0]).connections, 1u);
  EXPECT_EQ(bc(kTcpBackendIds[1]).connections, 1u);
  EXPECT_EQ(bc(kTcpBackendIds[2]).connections, 0u);
  EXPECT_EQ(open(53002, 7).bport, 3002);  // the cursor did not move for the retransmits
}

// A SYN on a flow that saw FIN or RST is the client reusing its port for a new
// connection: it is scheduled afresh and counted, and the old flow's local port is freed.
TEST_F(PipelineTest, SynOnAClosingFlowIsANewConnection) {
  const Conn old = establish(53100, 1);
  ASSERT_EQ(old.bport, 3000);
  forward(old, kRst, "", 2);
  EXPECT_EQ(pl_->flows().size(), 1u);

  const Conn again = open(53100, 3);
  EXPECT_EQ(again.bport, 3001);
  EXPECT_EQ(bc(kTcpBackendIds[0]).connections, 1u);
  EXPECT_EQ(bc(kTcpBackendIds[0]).active_flows, 0u);
  EXPECT_EQ(bc(kTcpBackendIds[1]).connections, 1u);
  EXPECT_EQ(bc(kTcpBackendIds[1]).active_flows, 1u);
  EXPECT_EQ(pl_->flows().size(), 1u);
  EXPECT_EQ(pl_->flows().size(), 1u);
  EXPECT_NE(again.lport, old.lport);  // FIFO: the port just freed is handed out last

  // The old backend's late segment belongs to nothing any more; the new flow works.
  expect_drop(test::build(backend_pkt(old.bport, old.lport, kAck)), 4, DropReason::kReplyNoFlow);
  reply(again, kSynAck, "", 5);
  forward(again, kAck, "", 6);
}

TEST_F(PipelineTest, DrainedBackendKeepsItsFlowsButGetsNoNewOnes) {
  const Conn old = establish(54000, 1);
  ASSERT_EQ(old.bport, 3000);

  api::State st = base_state();
  st.generation = 2;
  st.vips[0].backends[0].drained = true;
  apply(st, 10);

  std::map<uint16_t, int> per_port;
  for (uint16_t i = 0; i < 6; ++i) ++per_port[open(static_cast<uint16_t>(54100 + i), 11 + i).bport];
  EXPECT_EQ(per_port, (std::map<uint16_t, int>{{3001, 2}, {3002, 2}, {3003, 2}}));

  // The drained backend's flow still goes both ways, to :3000 from its local port.
  forward(old, kPsh | kAck, "still here", 20);
  reply(old, kPsh | kAck, "yes", 21);
  forward(old, kFinAck, "", 22);
  reply(old, kFinAck, "", 23);
  EXPECT_EQ(bc(kTcpBackendIds[0]).connections, 1u);
  EXPECT_EQ(bc(kTcpBackendIds[0]).active_flows, 1u);
}

TEST_F(PipelineTest, NoEligibleBackend) {
  api::State st = base_state();
  st.vips[0].backends[0].drained = true;
  st.vips[0].backends[1].down = true;
  st.vips[0].backends[2].weight = 0;
  st.vips[0].backends[3].drained = true;
  st.vips[1].backends.clear();
  apply(st, 0);
  expect_drop(test::build(client_pkt(55000, kSyn)), 1, DropReason::kNoBackend);
  expect_drop(test::build(client_udp(55001, "q")), 2, DropReason::kNoBackend);
  EXPECT_EQ(pl_->flows().size(), 0u);
  EXPECT_EQ(pl_->flows().size(), 0u);  // no local port taken for a flow that was not made
  for (uint32_t id : kTcpBackendIds) EXPECT_EQ(bc(id).connections, 0u);

  // One backend back up: new flows go there.
  st.vips[0].backends[1].down = false;
  apply(st, 3);
  EXPECT_EQ(open(55002, 4).bport, 3001);
}

TEST_F(PipelineTest, NonSynForAnUnknownFlow) {
  for (uint8_t flags : {kAck, uint8_t(kPsh | kAck), kFinAck, kRst, kSynAck})
    expect_drop(test::build(client_pkt(56000, flags, "x")), 1, DropReason::kTcpNoFlow);
  // Flag sets no stack sends are refused before any lookup.
  for (uint8_t flags : {uint8_t(kSyn | kRst), uint8_t{0}, uint8_t(kSyn | kFin)})
    expect_drop(test::build(client_pkt(56000, flags, "x")), 1, DropReason::kBadTcpFlags);
  // Backend traffic to a local port that belongs to no flow.
  expect_drop(test::build(backend_pkt(3000, 40003, kSynAck)), 2, DropReason::kReplyNoFlow);
  expect_drop(test::build(backend_pkt(5353, 40003, 0, "r", 17)), 2, DropReason::kReplyNoFlow);
  EXPECT_EQ(pl_->flows().size(), 0u);
  EXPECT_EQ(pl_->flows().size(), 0u);
}

// Packets that would create a flow are checked first: no flow, no port for land packets
// (source = one of our addresses) or a corrupt L4 checksum; established flows unaffected.
TEST_F(PipelineTest, SanityBeforeStateOnNewFlows) {
  Frame syn = test::build(client_pkt(56000, kSyn));
  syn[syn.size() - 3] ^= 0x10;  // urgent pointer bit: covered by the TCP checksum only
  expect_drop(syn, 1, DropReason::kBadL4Checksum);
  Frame dgram = test::build(client_udp(56001, "query"));
  dgram.back() ^= 0x01;
  expect_drop(dgram, 1, DropReason::kBadL4Checksum);
  for (uint32_t ours : {kVip, kLocal}) {
    test::Pkt land = client_pkt(56002, kSyn);
    land.src_ip = ours;
    expect_drop(test::build(land), 1, DropReason::kMartianSource);
  }
  EXPECT_EQ(pl_->flows().size(), 0u);
  EXPECT_EQ(pl_->flows().size(), 0u);
}

// ---- local ports ----
// A local port is unique per (local ip, backend): with the web VIP on one backend (:3000),
// that backend has the ten ports of the test range and nobody else competes for them.

api::State one_backend_state(uint32_t quarantine_ms = 1000) {
  api::State st = base_state();
  st.vips[0].backends.resize(1);
  st.timeouts.port_quarantine_ms = quarantine_ms;
  return st;
}

TEST_F(PipelineTest, LocalPortExhaustionQuarantineAndReturn) {
  start(16, one_backend_state());
  // Every local port towards :3000 held by an established flow: a new client gets
  // no_local_port, and nothing is reclaimed.
  std::set<uint16_t> lports;
  for (uint16_t i = 0; i < kPorts; ++i) lports.insert(establish(static_cast<uint16_t>(57000 + i), 100).lport);
  EXPECT_EQ(lports.size(), kPorts);
  EXPECT_EQ(*lports.begin(), kLportLo);
  EXPECT_EQ(*lports.rbegin(), kLportHi);
  expect_drop(test::build(client_pkt(57100, kSyn)), 101, DropReason::kNoLocalPort);
  EXPECT_EQ(pl_->flows().size(), kPorts);

  // One tick before the established timeout nothing has expired, however much is aged.
  const uint64_t expiry = 100 + kEstMs;
  pl_->tick(snap_, expiry - 1, 1000);
  expect_drop(test::build(client_pkt(57100, kSyn)), expiry - 1, DropReason::kNoLocalPort);
  EXPECT_EQ(bc(kTcpBackendIds[0]).active_flows, kPorts);

  // At the expiry the flows go, but their tuples had a connection the backend accepted:
  // they stay quarantined for port_quarantine (1 s here) and a new client is still refused.
  pl_->tick(snap_, expiry, 1000);
  EXPECT_EQ(pl_->flows().size(), 0u);
  EXPECT_EQ(pl_->quarantine().size(), kPorts);
  EXPECT_EQ(bc(kTcpBackendIds[0]).quarantined, kPorts);
  expect_drop(test::build(client_pkt(57100, kSyn)), expiry + 999, DropReason::kNoLocalPort);
  // After it, the ports come back.
  const Conn n = open(57100, expiry + 1000);
  EXPECT_TRUE(lports.count(n.lport));
  EXPECT_EQ(pl_->quarantine().size(), 0u);
  EXPECT_EQ(bc(kTcpBackendIds[0]).quarantined, 0u);
  EXPECT_EQ(bc(kTcpBackendIds[0]).active_flows, 1u);
  EXPECT_EQ(bc(kTcpBackendIds[0]).connections, kPorts + 1);
}

// Issue 8, item 10: a port is not handed out again for the same backend within the
// quarantine after its connection closed (the backend may hold it in TIME_WAIT), while
// another backend may use the same port at once.
TEST_F(PipelineTest, ClosedTupleIsQuarantinedForItsBackendOnly) {
  api::State st = base_state();
  st.vips[0].backends.resize(2);  // :3000 and :3001
  st.timeouts.port_quarantine_ms = 5000;
  start(64, st);
  // Twenty connections on ten local ports: each backend has the whole range.
  std::vector<Conn> to3000;
  for (uint16_t i = 0; i < 2 * kPorts; ++i) {
    const Conn c = establish(static_cast<uint16_t>(50000 + i), 10);
    if (c.bport == 3000) to3000.push_back(c);
  }
  ASSERT_EQ(to3000.size(), kPorts);
  EXPECT_EQ(pl_->flows().size(), 2 * kPorts);
  // :3000's connections close in full (FINs both ways, acknowledged); time-wait runs out.
  for (const Conn& c : to3000) {
    forward(c, kFinAck, "", 20);
    reply(c, kFinAck, "", 21);
    forward(c, kAck, "", 22);
  }
  const uint64_t gone = 22 + kTimeWaitMs;
  pl_->tick(snap_, gone, 1000);
  EXPECT_EQ(pl_->flows().size(), kPorts);
  EXPECT_EQ(pl_->quarantine().size(), kPorts);
  EXPECT_EQ(bc(kTcpBackendIds[0]).quarantined, kPorts);
  // Within the quarantine neither backend has a tuple to give (:3001's are all live).
  for (uint16_t i = 0; i < 4; ++i)
    expect_drop(test::build(client_pkt(static_cast<uint16_t>(51000 + i), kSyn)), gone + 4999,
                DropReason::kNoLocalPort);
  // After it, :3000 has its ten ports back (and :3001 still none): of two new clients, the
  // one scheduled to :3000 gets in.
  uint32_t in = 0;
  for (uint16_t i = 0; i < 2; ++i) {
    Frame f = test::build(client_pkt(static_cast<uint16_t>(51010 + i), kSyn));
    const Action a = run(f, gone + 5000);
    if (a.kind == Action::Kind::kTx) {
      ++in;
      EXPECT_EQ(out_dport(f), 3000);
    } else {
      EXPECT_EQ(a.reason, DropReason::kNoLocalPort);
    }
  }
  EXPECT_EQ(in, 1u);
  EXPECT_EQ(pl_->quarantine().size(), 0u);
}

// A closed flow gives its tuple up to a new client only if its handshake never completed:
// the tuple of one that did goes from the flow to the quarantine, so reclaiming it would
// free nothing usable and only cut the old connection's last FIN/ACK exchange short (the
// backend, left in LAST_ACK, could then outlive the quarantine on that tuple).
TEST_F(PipelineTest, ClosedFlowsOfCompletedConnectionsAreNotReclaimedForPorts) {
  start(64, one_backend_state());
  std::vector<Conn> done;
  for (uint16_t i = 0; i < kPorts; ++i) {
    const Conn c = establish(static_cast<uint16_t>(57000 + i), 10);
    forward(c, kFinAck, "", 20);
    reply(c, kFinAck, "", 21);  // closing: the client's last ACK is still to come
    done.push_back(c);
  }
  EXPECT_EQ(pl_->flows().reclaimable(Reclaim::kClosed), kPorts);
  expect_drop(test::build(client_pkt(57100, kSyn)), 30, DropReason::kNoLocalPort);
  EXPECT_EQ(pl_->counters().reclaimed_closed, 0u);
  EXPECT_EQ(pl_->flows().size(), kPorts);
  EXPECT_EQ(pl_->quarantine().size(), 0u);
  for (const Conn& c : done) forward(c, kAck, "", 31);  // every connection ends in full
}

// Issue 8, item 12: an id the control plane hands to another backend starts with fresh
// counters; a new state that keeps the backend keeps them.
TEST_F(PipelineTest, BackendCountersResetWhenTheIdIsReused) {
  start(16, one_backend_state());
  establish(57000, 1);
  EXPECT_EQ(bc(kTcpBackendIds[0]).connections, 1u);
  EXPECT_EQ(bc(kTcpBackendIds[0]).packets, 3u);
  api::State same = one_backend_state();
  same.generation = 2;
  apply(same, 2);
  EXPECT_EQ(bc(kTcpBackendIds[0]).connections, 1u);
  api::State other = one_backend_state();
  other.generation = 3;
  other.vips[0].backends[0].port = 3009;  // id 10 now names another backend
  apply(other, 3);
  EXPECT_EQ(bc(kTcpBackendIds[0]).connections, 0u);
  EXPECT_EQ(bc(kTcpBackendIds[0]).packets, 0u);
  EXPECT_EQ(bc(kTcpBackendIds[0]).active_flows, 1u);  // live state is not a counter
}

TEST_F(PipelineTest, HalfOpenFlowsGiveUpTheirPortsFirst) {
  api::State st = one_backend_state();
  st.timeouts.tcp_syn_ms = 5000;
  start(16, st);
  // A SYN flood holds every local port with half-open flows...
  std::vector<Conn> flood;
  for (uint16_t i = 0; i < kPorts; ++i) flood.push_back(open(static_cast<uint16_t>(57000 + i), 100 + i));
  // ...which might be real handshakes while they are fresh: their tuples are live at the
  // backend, so a new client is refused rather than given one (a collision)...
  expect_drop(test::build(client_pkt(57100, kSyn)), 200, DropReason::kNoLocalPort);
  EXPECT_EQ(pl_->counters().reclaimed_embryonic, 0u);
  // ...and once they have been quiet for a second, it gets in: the oldest half-open flow
  // gives its tuple up at once (it never reached the backend's accept queue, so it is not
  // quarantined).
  const Conn n = open(57100, 1200);
  EXPECT_EQ(n.lport, flood[0].lport);
  EXPECT_EQ(pl_->counters().reclaimed_embryonic, 1u);
  EXPECT_EQ(pl_->quarantine().size(), 0u);
  EXPECT_EQ(pl_->flows().size(), kPorts);
  expect_drop(test::build(client_pkt(57000, kAck)), 1201, DropReason::kTcpNoFlow);
}

// Issue 8, item 1: an off-path sender holds every local port towards a backend with
// spoofed SYN+FIN pairs (flows in closing state), or towards a UDP backend with random-port
// UDP. A real client still gets in: closed flows give their tuples up first (oldest closed
// first), UDP flows idle longest first; the established flow that saw traffic stays, and
// once only established flows are left a new client is refused. A flow only makes room for
// a connection to its own backend: reclaiming another backend's would free nothing usable.
TEST_F(PipelineTest, SpoofedClosingAndUdpFlowsGiveUpTheirPorts) {
  start(64, one_backend_state());
  const Conn est = establish(61000, 1);
  std::vector<Conn> closing;
  for (uint16_t i = 0; i < kPorts - 1; ++i) {
    const Conn c = open(static_cast<uint16_t>(62000 + 17 * i), 10 + i);
    forward(c, kFinAck, "", 10 + i);  // the spoofed FIN: never a SYN-ACK, never an ACK
    closing.push_back(c);
  }
  std::vector<Conn> udp;
  for (uint16_t i = 0; i < kPorts; ++i) {
    const uint16_t cport = static_cast<uint16_t>(63000 + 101 * i);
    Frame f = test::build(client_udp(cport, "x"));
    ASSERT_EQ(run(f, 20 + i).kind, Action::Kind::kTx);
    udp.push_back(Conn{cport, out_sport(f), 5353});
  }
  // The first UDP flow sees traffic again: the second is now the one idle longest.
  Frame again = test::build(client_udp(udp[0].cport, "y"));
  ASSERT_EQ(run(again, 40).kind, Action::Kind::kTx);
  EXPECT_EQ(pl_->flows().reclaimable(Reclaim::kClosed), kPorts - 1);
  EXPECT_EQ(pl_->flows().reclaimable(Reclaim::kIdleUdp), kPorts);
  forward(est, kPsh | kAck, "GET /", 40);

  // Real TCP clients take the closed flows' tuples, oldest closed first; no UDP flow is
  // touched for them.
  const LcoreCounters& c = pl_->counters();
  std::vector<Conn> fresh;
  for (uint16_t i = 0; i < kPorts - 1; ++i) {
    fresh.push_back(establish(static_cast<uint16_t>(64000 + i), 100 + i));
    EXPECT_EQ(fresh.back().lport, closing[i].lport) << i;
    EXPECT_EQ(c.reclaimed_closed, i + 1u);
  }
  EXPECT_EQ(c.reclaimed_udp, 0u);
  expect_drop(test::build(client_pkt(closing[0].cport, kAck)), 110, DropReason::kTcpNoFlow);
  // Only established flows towards :3000 now: a new TCP client is refused, nobody reclaimed.
  expect_drop(test::build(client_pkt(64100, kSyn)), 140, DropReason::kNoLocalPort);
  EXPECT_EQ(c.reclaimed_udp, 0u);

  // A new UDP client takes the UDP flow idle longest (the second), not the busier first.
  Frame q = test::build(client_udp(64200, "q"));
  ASSERT_EQ(run(q, 150).kind, Action::Kind::kTx);
  EXPECT_EQ(out_sport(q), udp[1].lport);
  EXPECT_EQ(c.reclaimed_udp, 1u);
  Frame busy = test::build(client_udp(udp[0].cport, "z"));
  ASSERT_EQ(run(busy, 152).kind, Action::Kind::kTx);
  EXPECT_EQ(out_sport(busy), udp[0].lport);  // still its flow, on its port
  EXPECT_EQ(c.reclaimed_embryonic, 0u);
  forward(est, kPsh | kAck, "more", 160);
  reply(est, kPsh | kAck, "200 OK", 161);
  for (const Conn& f : fresh) reply(f, kPsh | kAck, "hi", 162);
}

// The same attack against the flow table rather than the ports: the table fills first,
// and insert() reclaims in the same order (closed, then UDP), counted the same way.
TEST_F(PipelineTest, SpoofedClosingAndUdpFlowsGiveUpTheirTableRecords) {
  start(6);
  const Conn est = establish(61000, 1);
  const Conn spoofed = open(62000, 10);
  forward(spoofed, kFinAck, "", 11);
  std::vector<uint16_t> udp_lports;
  for (uint16_t i = 0; i < 4; ++i) {
    Frame f = test::build(client_udp(static_cast<uint16_t>(63000 + i), "x"));
    ASSERT_EQ(run(f, 20 + i).kind, Action::Kind::kTx);
    udp_lports.push_back(out_sport(f));
  }
  EXPECT_EQ(pl_->flows().size(), 6u);
  EXPECT_EQ(pl_->flows().size(), 6u);

  const LcoreCounters& c = pl_->counters();
  const Conn a = establish(64000, 100);
  EXPECT_EQ(c.reclaimed_closed, 1u);
  EXPECT_EQ(c.reclaimed_udp, 0u);
  expect_drop(test::build(backend_pkt(spoofed.bport, spoofed.lport, kAck)), 101,
              DropReason::kReplyNoFlow);
  const Conn b = establish(64001, 110);
  EXPECT_EQ(c.reclaimed_udp, 1u);
  expect_drop(test::build(backend_pkt(5353, udp_lports[0], 0, "late", 17)), 111,
              DropReason::kReplyNoFlow);
  EXPECT_EQ(c.reclaimed_embryonic, 0u);
  EXPECT_EQ(pl_->flows().size(), 6u);
  EXPECT_EQ(pl_->flows().size(), 6u);  // every reclaimed flow gave its port back
  for (const Conn& x : {est, a, b}) {
    forward(x, kPsh | kAck, "data", 120);
    reply(x, kPsh | kAck, "more", 121);
  }
}

// ---- flow table limits ----

TEST_F(PipelineTest, TableFullKeepsTheEstablishedFlows) {
  start(4);
  std::vector<Conn> conns;
  for (uint16_t i = 0; i < 4; ++i) conns.push_back(establish(static_cast<uint16_t>(58000 + i), 10 + i));
  expect_drop(test::build(client_pkt(58100, kSyn)), 20, DropReason::kTableFull);
  expect_drop(test::build(client_udp(58101, "q")), 21, DropReason::kTableFull);
  EXPECT_EQ(pl_->flows().size(), 4u);  // the port taken for the refused flows went back
  EXPECT_EQ(pl_->flows().size(), 4u);
  uint64_t t = 30;
  for (const Conn& c : conns) {
    forward(c, kPsh | kAck, "data", t++);
    reply(c, kPsh | kAck, "more data", t++);
  }
  uint64_t conns_total = 0;
  for (uint32_t id : kTcpBackendIds) conns_total += bc(id).connections;
  EXPECT_EQ(conns_total, 4u);
  EXPECT_EQ(bc(kUdpBackendId).connections, 0u);
}

TEST_F(PipelineTest, SynOnlyFlowsAreEvictedFirst) {
  start(4);
  const Conn e1 = establish(59000, 10);  // :3000
  const Conn e2 = establish(59001, 11);  // :3001
  const Conn s1 = open(59002, 20);       // :3002, SYN only
  const Conn s2 = open(59003, 30);       // :3003
  reply(s2, kSynAck, "", 31);            // still embryonic (SYN-RECEIVED)
  EXPECT_EQ(pl_->flows().size(), 4u);
  EXPECT_EQ(pl_->flows().embryonic(), 2u);

  // Full: the oldest embryonic flow (s1) makes room.
  const Conn n1 = open(59004, 40);
  EXPECT_EQ(bc(kTcpBackendIds[2]).active_flows, 0u);  // s1's backend
  expect_drop(test::build(client_pkt(s1.cport, kAck)), 41, DropReason::kTcpNoFlow);
  expect_drop(test::build(backend_pkt(s1.bport, s1.lport, kSynAck)), 41, DropReason::kReplyNoFlow);
  reply(s2, kSynAck, "", 42);  // s2 is still there (its SYN-ACK retransmitted)
  EXPECT_EQ(pl_->flows().size(), 4u);

  // Next: s2 (older than n1), even though it got further in the handshake.
  const Conn n2 = open(59005, 50);
  EXPECT_EQ(bc(kTcpBackendIds[3]).active_flows, 0u);
  expect_drop(test::build(client_pkt(s2.cport, kAck)), 51, DropReason::kTcpNoFlow);
  reply(n1, kSynAck, "", 52);

  // Complete n1 and n2: four established flows, nothing to evict.
  forward(n1, kAck, "", 53);
  reply(n2, kSynAck, "", 54);
  forward(n2, kAck, "", 55);
  EXPECT_EQ(pl_->flows().embryonic(), 0u);
  expect_drop(test::build(client_pkt(59006, kSyn)), 60, DropReason::kTableFull);
  for (const Conn& c : {e1, e2, n1, n2}) {
    forward(c, kPsh | kAck, "x", 61);
    reply(c, kPsh | kAck, "y", 62);
  }
  EXPECT_EQ(bc(kTcpBackendIds[0]).active_flows, 2u);  // e1, n1
  EXPECT_EQ(bc(kTcpBackendIds[1]).active_flows, 2u);  // e2, n2
  EXPECT_EQ(bc(kTcpBackendIds[2]).connections, 1u);
  EXPECT_EQ(bc(kTcpBackendIds[3]).connections, 1u);
  EXPECT_EQ(pl_->flows().size(), 4u);
}

// ---- TCP timeouts ----

TEST_F(PipelineTest, TcpTimeoutsFollowTheHandshake) {
  const Conn syn_only = open(60000, 0);          // expires at kSynMs
  const Conn est = establish(60001, 0);          // expires at kEstMs
  const Conn closing = establish(60002, 0);
  forward(closing, kFinAck, "", 0);              // half-closed: still alive
  reply(closing, kFinAck, "", 0);                // both FINs: expires at kClosingMs
  pl_->tick(snap_, kSynMs - 1, 100);
  EXPECT_EQ(pl_->flows().size(), 3u);
  pl_->tick(snap_, kSynMs, 100);
  EXPECT_EQ(pl_->flows().size(), 2u);
  expect_drop(test::build(client_pkt(syn_only.cport, kAck)), kSynMs, DropReason::kTcpNoFlow);
  pl_->tick(snap_, kClosingMs - 1, 100);
  EXPECT_EQ(pl_->flows().size(), 2u);
  pl_->tick(snap_, kClosingMs, 100);
  EXPECT_EQ(pl_->flows().size(), 1u);
  expect_drop(test::build(backend_pkt(closing.bport, closing.lport, kAck)), kClosingMs,
              DropReason::kReplyNoFlow);
  reply(est, kAck, "", kEstMs - 1);  // any packet refreshes the established timeout
  pl_->tick(snap_, 2 * kEstMs - 2, 100);
  EXPECT_EQ(pl_->flows().size(), 1u);
  pl_->tick(snap_, 2 * kEstMs - 1, 100);
  EXPECT_EQ(pl_->flows().size(), 0u);
  EXPECT_EQ(pl_->flows().size(), 0u);
  for (uint32_t id : kTcpBackendIds) EXPECT_EQ(bc(id).active_flows, 0u) << id;
}

// Issue 8, item 6: a FIN from the client is a half-close, not a close. The server may go
// on streaming for longer than tcp_closing (main at 0f445ba cut it off after 2 s here,
// reply_no_flow); the flow ends only after both FINs, or an RST.
TEST_F(PipelineTest, HalfCloseKeepsTheFlowUntilBothFins) {
  const Conn c = establish(60100, 0);
  forward(c, kFinAck, "", 10);  // the client is done sending
  for (uint64_t t = 1000; t <= 5 * kClosingMs; t += 1000) {
    pl_->tick(snap_, t, 100);
    reply(c, kPsh | kAck, "more data", t);  // forwarded (reply() checks the output frame)
    forward(c, kAck, "", t);                // the client still acknowledges
  }
  EXPECT_EQ(pl_->flows().size(), 1u);
  // A half-closed flow is alive: never reclaimed to make room.
  reply(c, kFinAck, "", 6 * kClosingMs);  // the server is done too
  forward(c, kAck, "", 6 * kClosingMs);   // both FINs acknowledged: time-wait
  pl_->tick(snap_, 6 * kClosingMs + kTimeWaitMs - 1, 100);
  EXPECT_EQ(pl_->flows().size(), 1u);
  pl_->tick(snap_, 6 * kClosingMs + kTimeWaitMs, 100);
  EXPECT_EQ(pl_->flows().size(), 0u);
  EXPECT_EQ(pl_->flows().size(), 0u);
}

// Issue 8, item 5: a forged RST or FIN with a guessable tuple but not the sequence numbers
// (main at 0f445ba cut the flow's timeout from 900 s to 10 s on any RST) is dropped as
// tcp_out_of_window, from either side, and the flow keeps its state and expiry. An RST
// inside the window goes to the endpoint (RFC 5961 is its job) and changes nothing either;
// only the exact one resets the flow.
TEST_F(PipelineTest, ForgedRstAndFinAreDroppedAndTheFlowLives) {
  const Conn c = establish(60300, 0);
  const Seq q = seq_[c.cport];
  auto forged_client = [&](uint8_t flags, uint32_t seq) {
    Pkt p = client_pkt(c.cport, flags);
    p.seq = seq;
    p.ack = (flags & kAck) ? q.backend : 0;
    return test::build(p);
  };
  auto forged_backend = [&](uint8_t flags, uint32_t seq) {
    Pkt p = backend_pkt(c.bport, c.lport, flags);
    p.seq = seq;
    p.ack = (flags & kAck) ? q.client : 0;
    return test::build(p);
  };
  for (uint32_t off : {0x40000000u, 0x80000000u, 0xc0000000u, 70000u}) {
    expect_drop(forged_client(kRst, q.client + off), 10, DropReason::kTcpOutOfWindow);
    expect_drop(forged_backend(kRst, q.backend + off), 10, DropReason::kTcpOutOfWindow);
    expect_drop(forged_client(kFinAck, q.client + off), 10, DropReason::kTcpOutOfWindow);
    expect_drop(forged_backend(kFinAck, q.backend + off), 10, DropReason::kTcpOutOfWindow);
  }
  // In the window but not exact: forwarded, the flow is still established (it outlives
  // the reset timeout and takes data).
  Frame near = forged_client(kRst, q.client + 100);
  EXPECT_EQ(run(near, 20).kind, Action::Kind::kTx);
  pl_->tick(snap_, 20 + kResetMs + kClosingMs, 100);
  EXPECT_EQ(pl_->flows().size(), 1u);
  forward(c, kPsh | kAck, "still here", 30);
  reply(c, kPsh | kAck, "and here", 31);
  EXPECT_EQ(pl_->flows().size(), 1u);
  // The exact one (what the endpoint itself would accept) resets: gone after tcp_reset.
  reply(c, kRst, "", 40);
  pl_->tick(snap_, 40 + kResetMs - 1, 100);
  EXPECT_EQ(pl_->flows().size(), 1u);
  pl_->tick(snap_, 40 + kResetMs, 100);
  EXPECT_EQ(pl_->flows().size(), 0u);
  EXPECT_EQ(pl_->flows().size(), 0u);
}

// The backend refusing the connection (RST+ACK acknowledging the SYN) ends the flow; an RST
// that does not acknowledge the SYN is not the backend's answer and is dropped.
TEST_F(PipelineTest, BackendRefusalEndsTheFlow) {
  const Conn c = open(60400, 0);
  Pkt bad = backend_pkt(c.bport, c.lport, kRst | kAck);
  bad.seq = 0;
  bad.ack = 12345;
  expect_drop(test::build(bad), 1, DropReason::kTcpOutOfWindow);
  Pkt refuse = bad;
  refuse.ack = client_pkt(c.cport, kSyn).seq + 1;
  Frame f = test::build(refuse);
  EXPECT_EQ(run(f, 2).kind, Action::Kind::kTx);  // the client learns it, too
  pl_->tick(snap_, 2 + kResetMs, 100);
  EXPECT_EQ(pl_->flows().size(), 0u);
}

// A FIN before the handshake completed (a spoofed SYN+FIN pair) still ends the flow: it
// must stay reclaimable, not turn into a half-closed flow.
TEST_F(PipelineTest, FinBeforeTheHandshakeCloses) {
  const Conn c = open(60200, 0);
  forward(c, kFinAck, "", 1);
  pl_->tick(snap_, 1 + kClosingMs, 100);
  EXPECT_EQ(pl_->flows().size(), 0u);
}

// ---- UDP ----

TEST_F(PipelineTest, UdpBothWaysAndTimeout) {
  const Pkt q = client_udp(5000, "query");
  Frame f = test::build(q);
  Action a = run(f, 0);
  ASSERT_EQ(a.kind, Action::Kind::kTx) << drop_reason_name(a.reason);
  const Conn c{5000, out_sport(f), 5353};
  EXPECT_EQ(f, test::build(to_backend(q, c.lport, 5353))) << test::hex(f);

  auto answer = [&](uint64_t now) {
    const Pkt r = backend_pkt(5353, c.lport, 0, "answer!", 17);
    Frame g = test::build(r);
    const Action b = run(g, now);
    EXPECT_EQ(b.kind, Action::Kind::kTx) << drop_reason_name(b.reason);
    EXPECT_EQ(g, test::build(to_client(r, 53, 5000))) << test::hex(g);
  };
  // Traffic keeps the flow at least kUdpMs more, and a refresh grants an eighth extra
  // (FlowTable::touch_idle: it is moved in the idle order at most that often).
  answer(kUdpMs - 1);  // refreshes: expires at 2 * kUdpMs - 1 + kUdpMs / 8

  Frame f2 = test::build(client_udp(5000, "again"));
  a = run(f2, 2 * kUdpMs - 2);
  ASSERT_EQ(a.kind, Action::Kind::kTx);
  EXPECT_EQ(out_sport(f2), c.lport);  // same flow, same local port
  EXPECT_EQ(bc(kUdpBackendId).connections, 1u);
  EXPECT_EQ(bc(kUdpBackendId).packets, 3u);

  // Quiet for the whole timeout (and the slack): the answer finds no flow.
  const uint64_t expiry = 2 * kUdpMs - 2 + kUdpMs + kUdpMs / 8;
  pl_->tick(snap_, expiry - 1, 100);
  EXPECT_EQ(pl_->flows().size(), 1u);
  expect_drop(test::build(backend_pkt(5353, c.lport, 0, "late", 17)), expiry,
              DropReason::kReplyNoFlow);
  EXPECT_EQ(bc(kUdpBackendId).active_flows, 0u);
  EXPECT_EQ(pl_->flows().size(), 0u);

  // A new datagram makes a new flow, which tick() ages out.
  Frame f3 = test::build(client_udp(5000, "new"));
  ASSERT_EQ(run(f3, expiry + 1).kind, Action::Kind::kTx);
  EXPECT_EQ(bc(kUdpBackendId).connections, 2u);
  EXPECT_EQ(bc(kUdpBackendId).active_flows, 1u);
  pl_->tick(snap_, expiry + 1 + kUdpMs - 1, 100);
  EXPECT_EQ(bc(kUdpBackendId).active_flows, 1u);
  pl_->tick(snap_, expiry + 1 + kUdpMs, 100);
  EXPECT_EQ(bc(kUdpBackendId).active_flows, 0u);
  EXPECT_EQ(pl_->flows().size(), 0u);
  EXPECT_EQ(pl_->counters().flows_active, 0u);
}

TEST_F(PipelineTest, UdpWithoutChecksumKeepsNone) {
  Pkt q = client_udp(5001, "odd");
  q.udp_zero_csum = true;
  Frame f = test::build(q);
  ASSERT_EQ(run(f, 0).kind, Action::Kind::kTx);
  const uint16_t lport = out_sport(f);
  EXPECT_EQ(f, test::build(to_backend(q, lport, 5353))) << test::hex(f);
  Pkt r = backend_pkt(5353, lport, 0, "", 17);
  r.udp_zero_csum = true;
  Frame g = test::build(r);
  ASSERT_EQ(run(g, 1).kind, Action::Kind::kTx);
  EXPECT_EQ(g, test::build(to_client(r, 53, 5001))) << test::hex(g);
}

// ---- ARP ----

Arp arp_request(uint32_t sip, const Mac& smac, uint32_t tip) {
  Arp a;
  a.eth_src = smac;
  a.eth_dst = kBroadcast;
  a.op = 1;
  a.sha = smac;
  a.sip = sip;
  a.tip = tip;
  a.pad_to = 60;
  return a;
}

// The pipeline only classifies ARP: a frame about one of our addresses goes to the main
// lcore untouched (the manager answers it there), anything else is not ours.
TEST_F(PipelineTest, ArpForOurAddressesGoesToTheMainLcore) {
  for (uint32_t ours : {kVip, kLocal}) {
    Frame f = test::build(arp_request(kClient, kClientMac, ours));
    const Frame before = f;
    const Action a = pl_->process(snap_, f.data(), static_cast<uint32_t>(f.size()), 0, 1);
    ++steered_;
    rx_bytes_ += f.size();
    ASSERT_EQ(a.kind, Action::Kind::kToMain) << drop_reason_name(a.reason);
    EXPECT_EQ(f, before) << "the worker does not touch an ARP frame";
  }
  EXPECT_EQ(pl_->counters().steered_out, 2u);
  // Someone else's address: not ours, dropped by the worker.
  expect_drop(test::build(arp_request(kClient, kClientMac, ip4("198.51.100.77"))), 2,
              DropReason::kArpNotForUs);
}

TEST_F(PipelineTest, ArpRequestForTheVipOrLocalIpIsAnswered) {
  for (uint32_t ours : {kVip, kLocal}) {
    Frame f = test::build(arp_request(kClient, kClientMac, ours));
    ASSERT_EQ(run(f, 1).kind, Action::Kind::kToMain);
    ASSERT_EQ(main_.kind, NeighManager::Verdict::Kind::kReply) << drop_reason_name(main_.reason);
    EXPECT_EQ(main_.port, 0);
    Arp want;
    want.eth_src = kOurMac;
    want.eth_dst = kClientMac;
    want.op = 2;
    want.sha = kOurMac;
    want.sip = ours;
    want.tha = kClientMac;
    want.tip = kClient;
    want.pad_to = 60;
    EXPECT_EQ(f, test::build(want)) << test::hex(f);
  }
  EXPECT_EQ(nm_->counters().arp_replies, 2u);
  // A reply to us is taken in by the manager (it may complete a neighbour entry).
  Arp rep = arp_request(kBackend, kBackendMac, kLocal);
  rep.op = 2;
  rep.eth_dst = kOurMac;
  Frame f = test::build(rep);
  EXPECT_EQ(run(f, 3).kind, Action::Kind::kToMain);
  EXPECT_EQ(main_.kind, NeighManager::Verdict::Kind::kConsumed);
}

// An ARP frame never creates a neighbour entry (a request storm from random senders
// must not fill the table): a client that asked for the VIP is still resolved by
// rondo's own request when a reply has to go to it.
TEST_F(PipelineTest, ArpFramesNeverCreateEntries) {
  const uint32_t host7 = ip4("198.51.100.7");
  const Mac mac7{0x02, 0, 0, 0, 0, 0x07};
  Frame f = test::build(arp_request(host7, mac7, kVip));
  run(f, 1);
  ASSERT_EQ(main_.kind, NeighManager::Verdict::Kind::kReply);  // answered...
  EXPECT_EQ(nm_->table().find(0, htonl(host7)), nullptr);          // ...not learned

  Pkt syn = client_pkt(61000, kSyn, "", host7);
  syn.src_mac = mac7;
  Frame s = test::build(syn);
  ASSERT_EQ(run(s, 2).kind, Action::Kind::kTx);
  Pkt back = backend_pkt(out_dport(s), out_sport(s), kSynAck);
  back.ack = syn.seq + 1;  // it answers the SYN (the tracker checks)
  Frame b = test::build(back);
  const Action a = run(b, 3);
  EXPECT_EQ(a.kind, Action::Kind::kDrop);
  EXPECT_EQ(a.reason, DropReason::kNeighUnresolved);
  // The worker asked the manager, which sends a request and remembers it.
  const auto reqs = take_requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].target_ip, htonl(host7));
  ASSERT_NE(nm_->table().find(0, htonl(host7)), nullptr);
  // The answer fills the entry, and the retransmitted SYN-ACK goes out.
  Arp rep = arp_request(host7, mac7, kLocal);
  rep.op = 2;
  rep.eth_dst = kOurMac;
  Frame r = test::build(rep);
  run(r, 4);
  EXPECT_EQ(main_.kind, NeighManager::Verdict::Kind::kConsumed);
  b = test::build(back);
  const Action again = run(b, 5);
  ASSERT_EQ(again.kind, Action::Kind::kTx) << drop_reason_name(again.reason);
  EXPECT_EQ(b, test::build(to_client(back, 80, 61000, host7, mac7))) << test::hex(b);
}

// ARP poisoning (issue 8, item 4): a sender MAC that is not a host's, or not the frame's
// own source, is neither answered nor learned; a gratuitous ARP does not move a backend.
TEST_F(PipelineTest, ArpPoisoningIsRefused) {
  const Mac evil{0x02, 0xee, 0xee, 0xee, 0xee, 0xee};
  const Mac bcast{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  // The backend's entry (static in the base state; learned entries: neigh_test).
  const Neigh* n = nm_->table().find(0, htonl(kBackend));
  ASSERT_NE(n, nullptr);
  ASSERT_TRUE(n->has_mac());
  const Mac before{n->mac[0], n->mac[1], n->mac[2], n->mac[3], n->mac[4], n->mac[5]};

  // Sender MAC broadcast (Ethernet source unicast), zero, or different from the source.
  for (const Mac& sha : {bcast, Mac{}, evil}) {
    Arp g = arp_request(kBackend, kBackendMac, kVip);
    g.sha = sha;
    Frame f = test::build(g);
    run(f, 10);
    EXPECT_EQ(main_.kind, NeighManager::Verdict::Kind::kDrop);
    EXPECT_EQ(main_.reason, DropReason::kArpBadSender);
  }
  // A well-formed gratuitous ARP (request or reply) moving the backend to another MAC.
  for (uint16_t op : {uint16_t{1}, uint16_t{2}}) {
    Arp g = arp_request(kBackend, evil, kBackend);
    g.op = op;
    g.eth_src = evil;
    Frame f = test::build(g);
    run(f, 11);
  }
  n = nm_->table().find(0, htonl(kBackend));
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(0, std::memcmp(n->mac, before.data(), 6));
  // Traffic still goes to the real backend.
  Frame syn = test::build(client_pkt(61001, kSyn));
  ASSERT_EQ(run(syn, 12).kind, Action::Kind::kTx);
  EXPECT_EQ(0, std::memcmp(syn.data(), before.data(), 6));
}

TEST_F(PipelineTest, UnresolvedNextHopIsAskedForOnceThenLearned) {
  api::State st = base_state();
  api::Vip v;
  v.id = 3;
  v.ip = api::Addr::from_v4(ip4("203.0.113.20"));
  v.port = 80;
  api::Backend b;
  b.id = kBackend4Id;
  b.ip = api::Addr::from_v4(kBackend4);
  b.port = 3000;
  v.backends = {b};
  st.vips.push_back(v);
  start(16, st);

  // The new snapshot already asks for the backend without a static entry, and only for it.
  auto reqs = take_requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].iface, 0);
  EXPECT_EQ(reqs[0].target_ip, htonl(kBackend4));
  EXPECT_EQ(reqs[0].sender_ip, htonl(kLocal));
  std::vector<uint8_t> buf(64, 0xaa);
  const uint32_t n = nm_->build_request(reqs[0], buf.data());
  Arp want;
  want.eth_src = kOurMac;
  want.eth_dst = kBroadcast;
  want.op = 1;
  want.sha = kOurMac;
  want.sip = kLocal;
  want.tip = kBackend4;
  want.pad_to = 60;
  ASSERT_EQ(n, 60u);
  EXPECT_EQ(Frame(buf.begin(), buf.begin() + n), test::build(want));

  Pkt syn = client_pkt(62000, kSyn);
  syn.dst_ip = ip4("203.0.113.20");
  expect_drop(test::build(syn), 5000, DropReason::kNeighUnresolved);
  reqs = take_requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].target_ip, htonl(kBackend4));
  EXPECT_EQ(reqs[0].sender_ip, htonl(kLocal));
  // The client retransmits right away: still unresolved, and no second request yet.
  expect_drop(test::build(syn), 5001, DropReason::kNeighUnresolved);
  EXPECT_TRUE(take_requests().empty());

  // The backend answers our request.
  Arp rep;
  rep.eth_src = kBackend4Mac;
  rep.eth_dst = kOurMac;
  rep.op = 2;
  rep.sha = kBackend4Mac;
  rep.sip = kBackend4;
  rep.tha = kOurMac;
  rep.tip = kLocal;
  Frame r = test::build(rep);
  EXPECT_EQ(run(r, 5002).kind, Action::Kind::kToMain);
  EXPECT_EQ(main_.kind, NeighManager::Verdict::Kind::kConsumed);

  // The next retransmission goes out, on the flow the first SYN created.
  Frame f = test::build(syn);
  const Action a = run(f, 5003);
  ASSERT_EQ(a.kind, Action::Kind::kTx) << drop_reason_name(a.reason);
  const uint16_t lport = out_sport(f);
  EXPECT_EQ(f, test::build(to_backend(syn, lport, 3000, kBackend4, kBackend4Mac))) << test::hex(f);
  EXPECT_EQ(bc(kBackend4Id).connections, 1u);
  EXPECT_EQ(bc(kBackend4Id).packets, 3u);
  EXPECT_TRUE(take_requests().empty());
}

// A flood of packets towards an unresolved next hop asks the main lcore once a second, not
// once a packet: the worker remembers what it asked.
TEST_F(PipelineTest, AWorkerAsksForANextHopAtMostOnceASecond) {
  pl_->set_next_hops(nullptr);  // nothing resolved
  uint32_t asks = 0;
  for (uint64_t now = 100; now < 3100; now += 10) {
    Frame f = test::build(client_pkt(50500, kSyn));  // retransmits of one SYN
    const Action a = pl_->process(snap_, f.data(), static_cast<uint32_t>(f.size()), 0, now);
    rx_bytes_ += f.size();
    ++drops_.at(static_cast<uint32_t>(a.reason));
    ASSERT_EQ(a.reason, DropReason::kNeighUnresolved);
    asks += static_cast<uint32_t>(pl_->neigh_asks().size());
    for (const NeighAsk& k : pl_->neigh_asks()) EXPECT_EQ(k.ip, htonl(kBackend));
    pl_->neigh_asks().clear();
  }
  EXPECT_EQ(asks, 3u);  // at 100, 1100, 2100
  sync();
}

// ---- bursts ----

// process_burst() overlaps the stages of up to 64 frames; the result must be the one of
// process() on each frame in turn: same actions, same bytes, same counters. A burst
// longer than 64, and frames that depend on earlier frames of the same burst (SYN then
// its retransmit, ARP reply then the SYN that needed it).
TEST_F(PipelineTest, BurstGivesTheSameResultsAsOneByOne) {
  api::State st = base_state();
  api::Vip v;
  v.id = 3;
  v.ip = api::Addr::from_v4(ip4("203.0.113.20"));
  v.port = 80;
  api::Backend b4;
  b4.id = kBackend4Id;
  b4.ip = api::Addr::from_v4(kBackend4);
  b4.port = 3000;
  v.backends = {b4};
  st.vips.push_back(v);
  start(16, st);
  PipelineParams pp;
  pp.flow_capacity = 16;
  pp.lport_lo = kLportLo;
  pp.lport_hi = kLportHi;
  pp.hz = 1000;
  pp.port_macs = {kOurMac};
  Pipeline burst(pp);
  burst.on_snapshot(*snap_, 0);
  burst.set_next_hops(maps_.back().get());  // the same next hops (the manager's)

  // Runs `frames` through the fixture's pipeline one by one and through `burst` at once.
  auto both = [&](const std::vector<Frame>& frames, uint64_t now) {
    std::vector<Frame> one = frames, many = frames;
    std::vector<Action> want;
    for (Frame& f : one) want.push_back(run(f, now));
    std::vector<uint8_t*> ptrs;
    std::vector<uint32_t> lens;
    for (Frame& f : many) {
      ptrs.push_back(f.data());
      lens.push_back(static_cast<uint32_t>(f.size()));
    }
    std::vector<Action> got(frames.size());
    burst.process_burst(snap_, ptrs.data(), lens.data(), static_cast<uint32_t>(frames.size()), 0,
                        now, false, got.data());
    for (size_t i = 0; i < frames.size(); ++i) {
      EXPECT_EQ(got[i].kind, want[i].kind) << "frame " << i;
      EXPECT_EQ(got[i].reason, want[i].reason) << "frame " << i;
      EXPECT_EQ(got[i].port, want[i].port) << "frame " << i;
      // (An ARP frame handed over was answered by the fixture's manager in `one`.)
      if (want[i].kind != Action::Kind::kToMain) {
        EXPECT_EQ(many[i], one[i]) << "frame " << i;
      }
    }
    return one;  // the outputs
  };

  Pkt far_syn = client_pkt(47000, kSyn);
  far_syn.dst_ip = ip4("203.0.113.20");

  std::vector<Frame> first;
  for (uint16_t i = 0; i < 8; ++i) first.push_back(test::build(client_pkt(46000 + i, kSyn)));
  first.push_back(test::build(client_pkt(46000, kSyn)));    // retransmit inside the burst
  first.push_back(test::build(client_udp(46100, "q")));
  first.push_back(test::build(far_syn));                     // neigh_unresolved, asked
  first.push_back(test::build(far_syn));                     // again: asked once only
  first.push_back(test::build(arp_request(kClient, kClientMac, kVip)));  // to the main lcore
  for (uint16_t i = 0; first.size() < 70; ++i) {             // more than one inner batch
    first.push_back(test::build(client_pkt(46200 + i, kAck)));  // tcp_no_flow
    Frame cut = test::build(client_pkt(46300, kSyn));
    cut.resize(20 + i % 30);
    first.push_back(cut);                                    // malformed
  }
  const std::vector<Frame> out = both(first, 5000);
  ASSERT_EQ(burst.neigh_asks().size(), 1u);
  EXPECT_EQ(burst.neigh_asks()[0].ip, htonl(kBackend4));

  // Second burst: the backends' SYN-ACKs, the clients' ACKs and data, all together.
  std::vector<Frame> second;
  for (uint16_t i = 0; i < 8; ++i) {
    const uint16_t lport = out_sport(out[i]), bport = out_dport(out[i]);
    // Sequence numbers as the endpoints would send them: the tracker checks them.
    Pkt synack = backend_pkt(bport, lport, kSynAck);
    const uint32_t c_next = client_pkt(46000 + i, kSyn).seq + 1, b_next = synack.seq + 1;
    synack.ack = c_next;
    Pkt ack = client_pkt(46000 + i, kAck);
    Pkt get = client_pkt(46000 + i, kPsh | kAck, "GET /");
    ack.seq = get.seq = c_next;
    ack.ack = get.ack = b_next;
    Pkt ok = backend_pkt(bport, lport, kPsh | kAck, "200 OK");
    ok.seq = b_next;
    ok.ack = c_next + 5;
    for (const Pkt* q : {&synack, &ack, &get, &ok}) second.push_back(test::build(*q));
  }
  both(second, 5001);

  const LcoreCounters& x = pl_->counters();
  const LcoreCounters& y = burst.counters();
  EXPECT_EQ(x.rx_packets, y.rx_packets);
  EXPECT_EQ(x.rx_bytes, y.rx_bytes);
  EXPECT_EQ(x.consumed, y.consumed);
  EXPECT_EQ(x.steered_out, y.steered_out);
  EXPECT_EQ(x.drops, y.drops);
  EXPECT_EQ(pl_->flows().size(), burst.flows().size());
  EXPECT_EQ(pl_->quarantine().size(), burst.quarantine().size());
  for (uint32_t id : {10u, 11u, 12u, 13u, kUdpBackendId, kBackend4Id}) {
    EXPECT_EQ(bc(id).connections, burst.backend_counters()[id].connections) << id;
    EXPECT_EQ(bc(id).packets, burst.backend_counters()[id].packets) << id;
  }
  // :3000 has flows 46000 and 46004: two SYNs and a retransmit, then four packets each.
  EXPECT_EQ(bc(kTcpBackendIds[0]).packets, 3u + 2 * 4);
}

// ---- other drops and ICMP ----

TEST_F(PipelineTest, FramesForAnotherMacAreDropped) {
  Pkt p = client_pkt(63000, kSyn);
  p.dst_mac = {0x02, 0, 0, 0, 0, 0x99};
  expect_drop(test::build(p), 1, DropReason::kNotOurMac);
  Arp a = arp_request(kClient, kClientMac, kVip);
  a.eth_dst = {0x02, 0, 0, 0, 0, 0x99};
  expect_drop(test::build(a), 1, DropReason::kNotOurMac);
  EXPECT_EQ(pl_->flows().size(), 0u);
}

TEST_F(PipelineTest, NoStateBeforeTheFirstSnapshot) {
  start(16, base_state(), /*configure=*/false);
  ASSERT_EQ(snap_, nullptr);
  expect_drop(test::build(client_pkt(64000, kSyn)), 1, DropReason::kNoState);
  expect_drop(test::build(arp_request(kClient, kClientMac, kVip)), 1, DropReason::kNoState);
  pl_->tick(nullptr, 2);  // housekeeping without a configuration is harmless
  apply(base_state(), 3);
  open(64000, 4);
}

TEST_F(PipelineTest, OtherDropReasons) {
  Pkt p = client_pkt(65000, kSyn);
  p.ttl = 1;
  expect_drop(test::build(p), 1, DropReason::kTtlExceeded);
  p.ttl = 0;
  expect_drop(test::build(p), 1, DropReason::kTtlExceeded);
  p = client_pkt(65000, kSyn);
  p.dst_ip = ip4("192.0.2.1");
  expect_drop(test::build(p), 1, DropReason::kNotForVip);
  p = client_pkt(65000, kSyn);
  p.dport = 81;
  expect_drop(test::build(p), 1, DropReason::kNoService);
  p = client_udp(65000, "x");
  p.dport = 80;
  expect_drop(test::build(p), 1, DropReason::kNoService);
  p = client_pkt(65000, 0);
  p.proto = 47;
  expect_drop(test::build(p), 1, DropReason::kUnsupportedL4);
  Frame cut = test::build(client_pkt(65000, kSyn));
  cut.resize(40);
  expect_drop(cut, 1, DropReason::kMalformedL3);
  // A fragment to an address that is not ours (fragments to a VIP are reassembled).
  p = client_pkt(65000, kSyn);
  p.frag = 0x2000;
  p.payload = "abcd";  // 24 bytes of data: a fragment as it may be
  p.dst_ip = 0x0a0000fe;
  expect_drop(test::build(p), 1, DropReason::kIpFragment);
  // A backend reply with TTL 1 is dropped too, and the flow stays.
  const Conn c = open(65001, 2);
  Pkt r = backend_pkt(c.bport, c.lport, kSynAck);
  r.ttl = 1;
  expect_drop(test::build(r), 3, DropReason::kTtlExceeded);
  reply(c, kSynAck, "", 4);
  EXPECT_EQ(pl_->flows().size(), 1u);
}

TEST_F(PipelineTest, IcmpEchoToTheVipIsAnswered) {
  Pkt echo = client_pkt(0, 0);
  echo.proto = 1;
  echo.icmp_type = 8;
  echo.ttl = 9;
  echo.payload = "ping payload, odd";
  Frame f = test::build(echo);
  const Action a = run(f, 1);
  ASSERT_EQ(a.kind, Action::Kind::kTx) << drop_reason_name(a.reason);
  Pkt want = echo;
  want.icmp_type = 0;
  want.src_ip = kVip;
  want.dst_ip = kClient;
  want.src_mac = kOurMac;
  want.dst_mac = kClientMac;
  want.ttl = 64;
  EXPECT_EQ(f, test::build(want)) << test::hex(f);

  echo.icmp_type = 3;  // unreachable: not answered
  expect_drop(test::build(echo), 2, DropReason::kIcmpUnsupported);
}

// Replies rondo makes itself are budgeted (reply_rate 1000/s, burst 64): ICMP echo per
// worker, ARP on the main lcore for the whole dataplane. A request flood gets 64 answers
// at once, then one per millisecond, the rest counted.
TEST_F(PipelineTest, EchoAndArpFloodsAreRateLimited) {
  Pkt echo = client_pkt(0, 0);
  echo.proto = 1;
  echo.icmp_type = 8;
  const Frame ping = test::build(echo);
  const Frame who_has = test::build(arp_request(kClient, kClientMac, kVip));
  uint32_t answered = 0, limited = 0, arp_answered = 0, arp_limited = 0;
  for (int i = 0; i < 400; ++i) {
    Frame f = i % 2 ? ping : who_has;
    const Action a = run(f, 10);  // all at the same instant
    if (a.kind == Action::Kind::kTx) ++answered;
    if (a.kind == Action::Kind::kDrop && a.reason == DropReason::kRateLimited) ++limited;
    arp_answered += main_.kind == NeighManager::Verdict::Kind::kReply;
    arp_limited += main_.kind == NeighManager::Verdict::Kind::kDrop &&
                   main_.reason == DropReason::kRateLimited;
  }
  EXPECT_EQ(answered, 64u);
  EXPECT_EQ(limited, 136u);
  EXPECT_EQ(arp_answered, 64u);
  EXPECT_EQ(arp_limited, 136u);
  EXPECT_EQ(nm_->counters().drops[static_cast<uint32_t>(DropReason::kRateLimited)], 136u);
  // The budget comes back at the sustained rate: 5 more after 5 ms.
  answered = 0;
  for (int i = 0; i < 20; ++i) {
    Frame f = ping;
    answered += run(f, 10 + 5).kind == Action::Kind::kTx;
  }
  EXPECT_GE(answered, 5u);
  EXPECT_LE(answered, 6u);
}

// A group address as the Ethernet source: an ARP or ping answered to it would be broadcast.
TEST_F(PipelineTest, MulticastSourceMacIsDropped) {
  Pkt echo = client_pkt(0, 0);
  echo.proto = 1;
  echo.icmp_type = 8;
  echo.src_mac = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  expect_drop(test::build(echo), 1, DropReason::kBadSourceMac);
  Pkt syn = client_pkt(56000, kSyn);
  syn.src_mac = {0x01, 0x00, 0x5e, 0x00, 0x00, 0x01};
  expect_drop(test::build(syn), 1, DropReason::kBadSourceMac);
}

}  // namespace
}  // namespace rondo::dp
