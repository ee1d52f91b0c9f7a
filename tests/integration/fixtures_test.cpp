// Integration: a real EAL (--no-huge), an in-process ring port, the real worker loop and
// control agent. Table-driven fixtures, katran-style: {description, input frame, expected
// verdict, expected output frames}. The cases run in order against one dataplane (a flow
// opened by one case is used by the next). After every case the mempool is back at its
// baseline: nothing leaked.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/common/packet_builder.h"
#include "tests/common/ring_dataplane.h"
#include "tests/common/seed_topology.h"

namespace rondo {
namespace {

using dp::DropReason;
using test::Arp;
using test::Frame;
using test::ip4;
using test::Mac;
using test::Pkt;

using namespace test::seed;  // addresses and the state of the seed scenario
constexpr uint16_t kLportLo = 40000;

enum class Verdict { kTx, kDrop, kConsumed };

struct Case {
  std::string description;
  Frame input;
  Verdict verdict;
  std::vector<Frame> output;        // expected frames on the wire, in order (kTx)
  DropReason reason = DropReason::kCount;  // expected drop counter (kDrop)
};

class Fixture : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_TRUE(test::init_eal());
    // One local port: a port is unique per (local ip, backend), and every connection of the
    // scenario goes to another backend, so each takes kLportLo (the expected frames can
    // name it; with a wider range the keyed order would pick unpredictably).
    dp_ = new test::RingDataplane("fix", 1, kLportLo, 1);
  }
  static void TearDownTestSuite() { delete dp_; }

  static api::State seed_state() { return test::seed::state(); }

  static api::MsgType control(api::MsgType type, const std::vector<uint8_t>& body,
                              std::vector<uint8_t>* reply) {
    return dp_->control(type, body, reply);
  }
  static void push(const api::State& s) { dp_->push(s); }

  // Inject one frame, run the worker, the main lcore (ARP) and the worker again (it sends
  // what the main lcore made), collect what was transmitted.
  static std::vector<Frame> run(const Frame& in) {
    dp_->inject(0, in);
    dp_->poll(0);
    dp_->main_poll();
    dp_->poll(0);
    return dp_->sent(0);
  }

  // Worker 0's counters, with the main lcore's drops and consumed frames added: a case's
  // verdict may be the worker's or (ARP) the neighbour manager's.
  static dp::LcoreCounters counters() {
    dp::LcoreCounters c = dp_->worker(0).pipeline.counters();
    const dp::LcoreCounters& m = dp_->neigh().counters();
    c.consumed += m.consumed;
    for (uint32_t r = 0; r < dp::kDropReasonCount; ++r) c.drops[r] += m.drops[r];
    return c;
  }

  // The reasons whose counters moved between two samples, for failure messages.
  static std::string counted_reasons(const dp::LcoreCounters& before, const dp::LcoreCounters& after) {
    std::string out;
    for (uint32_t r = 0; r < dp::kDropReasonCount; ++r)
      if (after.drops[r] != before.drops[r])
        out += std::string(out.empty() ? "" : ", ") +
               std::string(dp::drop_reason_name(static_cast<dp::DropReason>(r)));
    return out.empty() ? "none" : out;
  }

  static void check(const Case& c) {
    SCOPED_TRACE(c.description);
    const auto before = counters();
    const unsigned baseline = rte_mempool_in_use_count(dp_->pool());
    const auto out = run(c.input);
    const auto after = counters();

    EXPECT_EQ(after.rx_packets, before.rx_packets + 1);
    uint64_t dropped = 0;
    for (uint32_t r = 0; r < dp::kDropReasonCount; ++r) dropped += after.drops[r] - before.drops[r];
    switch (c.verdict) {
      case Verdict::kTx:
        EXPECT_EQ(dropped, 0u);
        break;
      case Verdict::kDrop:
        EXPECT_EQ(after.drops[static_cast<uint32_t>(c.reason)],
                  before.drops[static_cast<uint32_t>(c.reason)] + 1)
            << "expected drop reason " << dp::drop_reason_name(c.reason) << ", counted "
            << counted_reasons(before, after);
        EXPECT_EQ(dropped, 1u);
        break;
      case Verdict::kConsumed:
        EXPECT_EQ(after.consumed, before.consumed + 1);
        EXPECT_EQ(dropped, 0u);
        break;
    }
    ASSERT_EQ(out.size(), c.output.size());
    for (size_t i = 0; i < out.size(); ++i)
      EXPECT_TRUE(out[i] == c.output[i]) << "frame " << i << " got\n"
                                     << test::hex(out[i]) << "\nwant\n"
                                     << test::hex(c.output[i]);
    EXPECT_EQ(rte_mempool_in_use_count(dp_->pool()), baseline) << "mbuf leak";
  }

  static Mac mac() { return dp_->mac(); }

  static inline test::RingDataplane* dp_ = nullptr;
};

// A client packet as sent to the VIP, and the same segment as it must leave rondo.
Pkt client_to_vip(uint16_t cport, uint8_t flags, const std::string& payload = "") {
  Pkt p;
  p.src_mac = kClientMac;
  p.src_ip = kClient;
  p.dst_ip = kVip;
  p.sport = cport;
  p.dport = 80;
  p.tcp_flags = flags;
  p.payload = payload;
  return p;
}

Pkt nat_to_backend(const Pkt& in, const Mac& ours, uint16_t lport, uint16_t bport,
                   const Mac& bmac = kBackendMac, uint32_t bip = kBackend) {
  Pkt p = in;
  p.src_mac = ours;
  p.dst_mac = bmac;
  p.src_ip = kLocal;
  p.dst_ip = bip;
  p.sport = lport;
  p.dport = bport;
  p.ttl = static_cast<uint8_t>(in.ttl - 1);
  return p;
}

Pkt backend_to_local(uint16_t bport, uint16_t lport, uint8_t flags, const std::string& payload = "") {
  Pkt p;
  p.src_mac = kBackendMac;
  p.src_ip = kBackend;
  p.dst_ip = kLocal;
  p.sport = bport;
  p.dport = lport;
  p.tcp_flags = flags;
  p.payload = payload;
  return p;
}

Pkt nat_to_client(const Pkt& in, const Mac& ours, uint16_t vport, uint16_t cport) {
  Pkt p = in;
  p.src_mac = ours;
  p.dst_mac = kClientMac;
  p.src_ip = kVip;
  p.dst_ip = kClient;
  p.sport = vport;
  p.dport = cport;
  p.ttl = static_cast<uint8_t>(in.ttl - 1);
  return p;
}

Frame mutate(Frame f, size_t off, uint8_t v) {
  f[off] = v;
  return f;
}

// The same, then the IPv4 header checksum made right again (untagged frames): the case is
// about the field, not about the checksum.
Frame mutate_ip(Frame f, size_t off, uint8_t v) {
  f[off] = v;
  test::put16(f, 24, 0);
  test::put16(f, 24, test::fold(test::sum16(&f[14], (f[14] & 0x0f) * 4u)));
  return f;
}

TEST_F(Fixture, SeedScenarioPackets) {
  const Mac me = mac();
  push(seed_state());
  {
    // Taking in the snapshot, the main lcore asks for the one backend MAC that is not
    // static; worker 0 sends the request.
    dp_->main_poll();
    dp_->poll(0);
    const auto got = dp_->sent(0);
    ASSERT_EQ(got.size(), 1u) << "want exactly one ARP request, for the late backend";
    Arp want{me, kBroadcast, {}, 1, me, {}, kLocal, kLateBackend, 60};
    EXPECT_TRUE(got[0] == test::build(want)) << test::hex(got[0]);
  }
  constexpr uint8_t SYN = 0x02, ACK = 0x10, FIN = 0x01, RST = 0x04, PSH = 0x08;

  std::vector<Case> cases;
  // --- L2 / L3 housekeeping -------------------------------------------------------------
  {
    Arp req{kClientMac, kBroadcast, {}, 1, kClientMac, {}, kClient, kVip, 60};
    Arp rep{me, kClientMac, {}, 2, me, kClientMac, kVip, kClient, 60};
    rep.eth_dst = kClientMac;
    cases.push_back({"ARP request for the VIP is answered", test::build(req), Verdict::kTx, {test::build(rep)}});
    Arp req_local{kBackendMac, kBroadcast, {}, 1, kBackendMac, {}, kBackend, kLocal, 60};
    Arp rep_local{me, kBackendMac, {}, 2, me, kBackendMac, kLocal, kBackend, 60};
    cases.push_back({"ARP request for the local ip is answered", test::build(req_local), Verdict::kTx,
                     {test::build(rep_local)}});
    Arp other{kClientMac, kBroadcast, {}, 1, kClientMac, {}, kClient, ip4("198.51.100.77"), 60};
    cases.push_back({"ARP for someone else", test::build(other), Verdict::kDrop, {}, DropReason::kArpNotForUs});
  }
  {
    Pkt echo;
    echo.src_mac = kClientMac;
    echo.dst_mac = me;
    echo.src_ip = kClient;
    echo.dst_ip = kVip;
    echo.proto = 1;
    echo.payload = "ping-payload";
    Pkt reply = echo;
    reply.src_mac = me;
    reply.dst_mac = kClientMac;
    reply.src_ip = kVip;
    reply.dst_ip = kClient;
    reply.icmp_type = 0;
    cases.push_back({"ICMP echo to the VIP is answered", test::build(echo), Verdict::kTx, {test::build(reply)}});
    Pkt unreach = echo;
    unreach.icmp_type = 3;
    cases.push_back({"other ICMP to the VIP", test::build(unreach), Verdict::kDrop, {}, DropReason::kIcmpUnsupported});
  }

  // --- one TCP connection, full lifecycle ----------------------------------------------
  auto syn = client_to_vip(50000, SYN);
  syn.dst_mac = me;
  cases.push_back({"client SYN to VIP:80 goes to backend :3000 from local :40000", test::build(syn),
                   Verdict::kTx, {test::build(nat_to_backend(syn, me, kLportLo, 3000))}});
  // Sequence numbers as real endpoints send them (the tracker checks them): both ISNs are
  // the builder's 1000.
  auto synack = backend_to_local(3000, kLportLo, SYN | ACK);
  synack.dst_mac = me;
  synack.ack = syn.seq + 1;
  cases.push_back({"backend SYN-ACK goes back to the client from VIP:80", test::build(synack),
                   Verdict::kTx, {test::build(nat_to_client(synack, me, 80, 50000))}});
  auto ack = client_to_vip(50000, ACK | PSH, "GET / HTTP/1.1\r\n\r\n");
  ack.dst_mac = me;
  ack.seq = syn.seq + 1;
  ack.ack = synack.seq + 1;
  cases.push_back({"client data follows the flow", test::build(ack), Verdict::kTx,
                   {test::build(nat_to_backend(ack, me, kLportLo, 3000))}});
  auto data = backend_to_local(3000, kLportLo, ACK | PSH, "hello from backend :3000\n");
  data.dst_mac = me;
  data.seq = synack.seq + 1;
  data.ack = ack.seq + static_cast<uint32_t>(ack.payload.size());
  cases.push_back({"backend data goes back", test::build(data), Verdict::kTx,
                   {test::build(nat_to_client(data, me, 80, 50000))}});
  auto fin = client_to_vip(50000, FIN | ACK);
  fin.dst_mac = me;
  fin.seq = data.ack;
  fin.ack = data.seq + static_cast<uint32_t>(data.payload.size());
  cases.push_back({"client FIN follows the flow", test::build(fin), Verdict::kTx,
                   {test::build(nat_to_backend(fin, me, kLportLo, 3000))}});

  // --- a second connection takes the next backend; RST -------------------------------
  auto syn2 = client_to_vip(50001, SYN);
  syn2.dst_mac = me;
  cases.push_back({"second connection goes to backend :3001", test::build(syn2), Verdict::kTx,
                   {test::build(nat_to_backend(syn2, me, kLportLo, 3001))}});
  auto rst2 = client_to_vip(50001, RST);
  rst2.dst_mac = me;
  rst2.seq = syn2.seq + 1;  // the client gives up on its SYN
  cases.push_back({"client RST follows the flow", test::build(rst2), Verdict::kTx,
                   {test::build(nat_to_backend(rst2, me, kLportLo, 3001))}});
  auto syn3 = client_to_vip(50002, SYN);
  syn3.dst_mac = me;
  auto tagged = syn3;
  tagged.vlan = 100;
  cases.push_back({"VLAN-tagged SYN on a port without a VLAN", test::build(tagged), Verdict::kDrop,
                   {}, DropReason::kVlanMismatch});
  cases.push_back({"third connection goes to backend :3002", test::build(syn3), Verdict::kTx,
                   {test::build(nat_to_backend(syn3, me, kLportLo, 3002))}});

  // --- UDP both ways --------------------------------------------------------------------
  {
    Pkt q;
    q.src_mac = kClientMac;
    q.dst_mac = me;
    q.src_ip = kClient;
    q.dst_ip = kVip;
    q.proto = 17;
    q.sport = 5353;
    q.dport = 53;
    q.payload = "query";
    cases.push_back({"UDP to VIP:53 goes to backend :4000", test::build(q), Verdict::kTx,
                     {test::build(nat_to_backend(q, me, kLportLo, 4000))}});
    Pkt r;
    r.src_mac = kBackendMac;
    r.dst_mac = me;
    r.src_ip = kBackend;
    r.dst_ip = kLocal;
    r.proto = 17;
    r.sport = 4000;
    r.dport = kLportLo;
    r.payload = "answer!";
    cases.push_back({"UDP reply goes back to the client", test::build(r), Verdict::kTx,
                     {test::build(nat_to_client(r, me, 53, 5353))}});
    Pkt z = q;
    z.sport = 5354;
    z.udp_zero_csum = true;
    cases.push_back({"UDP without checksum stays without", test::build(z), Verdict::kTx,
                     {test::build(nat_to_backend(z, me, kLportLo, 4001))}});
  }

  // --- next hop resolution -------------------------------------------------------------
  {
    Pkt s;
    s.src_mac = kClientMac;
    s.dst_mac = me;
    s.src_ip = kClient;
    s.dst_ip = kVip2;
    s.sport = 51000;
    s.dport = 80;
    s.tcp_flags = SYN;
    // The snapshot already asked for the backend's MAC once; the first packet is dropped
    // while unresolved (no second request within the rate limit).
    cases.push_back({"SYN to a backend whose MAC is unknown", test::build(s), Verdict::kDrop, {},
                     DropReason::kNeighUnresolved});
    Arp rep{kLateMac, me, {}, 2, kLateMac, me, kLateBackend, kLocal, 60};
    cases.push_back({"ARP reply from the backend is learned", test::build(rep), Verdict::kConsumed, {}});
    Pkt out = nat_to_backend(s, me, kLportLo, 8080, kLateMac, kLateBackend);
    cases.push_back({"retransmitted SYN now goes out", test::build(s), Verdict::kTx, {test::build(out)}});
  }

  // --- a client reusing the port of a closing connection opens a new one ------------------
  {
    auto again = client_to_vip(50000, SYN);
    again.dst_mac = me;
    again.seq = 777;
    cases.push_back({"SYN from the port of a closing flow is a new connection on the next backend",
                     test::build(again), Verdict::kTx,
                     {test::build(nat_to_backend(again, me, kLportLo, 3003))}});
  }

  // --- not for us, no flow --------------------------------------------------------------
  {
    Pkt p = client_to_vip(50010, SYN);
    p.dst_mac = me;
    p.dst_ip = ip4("198.51.100.50");
    cases.push_back({"packet to a non-VIP address", test::build(p), Verdict::kDrop, {}, DropReason::kNotForVip});
    Pkt q = client_to_vip(50010, SYN);
    q.dst_mac = me;
    q.dport = 8443;
    cases.push_back({"VIP address, no such port", test::build(q), Verdict::kDrop, {}, DropReason::kNoService});
    Pkt a = client_to_vip(50011, ACK);
    a.dst_mac = me;
    cases.push_back({"ACK for an unknown flow", test::build(a), Verdict::kDrop, {}, DropReason::kTcpNoFlow});
    Pkt r = backend_to_local(3000, kLportLo + 50, ACK);
    r.dst_mac = me;
    cases.push_back({"reply to a local port without a flow", test::build(r), Verdict::kDrop, {},
                     DropReason::kReplyNoFlow});
    Pkt o = client_to_vip(50012, SYN);
    o.dst_mac = {0x02, 0x99, 0, 0, 0, 0x99};
    cases.push_back({"unicast frame for another MAC", test::build(o), Verdict::kDrop, {}, DropReason::kNotOurMac});
    Pkt t = client_to_vip(50013, SYN);
    t.dst_mac = me;
    t.ttl = 1;
    cases.push_back({"TTL 1", test::build(t), Verdict::kDrop, {}, DropReason::kTtlExceeded});
  }

  // --- malformed ------------------------------------------------------------------------
  {
    Pkt good = client_to_vip(50020, SYN);
    good.dst_mac = me;
    const Frame g = test::build(good);
    cases.push_back({"runt frame", Frame(g.begin(), g.begin() + 10), Verdict::kDrop, {}, DropReason::kMalformedL2});
    cases.push_back({"truncated IPv4 header", Frame(g.begin(), g.begin() + 14 + 12), Verdict::kDrop, {},
                     DropReason::kMalformedL3});
    cases.push_back({"IHL 4", mutate(g, 14, 0x44), Verdict::kDrop, {}, DropReason::kMalformedL3});
    cases.push_back({"total length beyond the frame", mutate(g, 16, 0x05), Verdict::kDrop, {},
                     DropReason::kMalformedL3});
    cases.push_back({"TCP data offset 4", mutate(g, 14 + 20 + 12, 0x40), Verdict::kDrop, {},
                     DropReason::kMalformedL4});
    Frame trunc_tcp = g;
    trunc_tcp.resize(14 + 20 + 10);
    trunc_tcp[16] = 0;
    trunc_tcp = mutate_ip(trunc_tcp, 17, 30);  // total length says 30: 10 bytes of TCP
    cases.push_back({"truncated TCP header", trunc_tcp, Verdict::kDrop, {}, DropReason::kMalformedL4});
    Pkt u;
    u.dst_mac = me;
    u.src_ip = kClient;
    u.dst_ip = kVip;
    u.proto = 17;
    u.sport = 1;
    u.dport = 53;
    cases.push_back({"UDP length 4", mutate(test::build(u), 14 + 20 + 5, 4), Verdict::kDrop, {},
                     DropReason::kMalformedL4});
    cases.push_back({"fragment", mutate_ip(g, 14 + 6, 0x20), Verdict::kDrop, {}, DropReason::kIpFragment});

    // Sanity before state: refused before any lookup, or before a flow is made.
    cases.push_back({"bad IPv4 header checksum", mutate(g, 14 + 10, g[14 + 10] ^ 0xff), Verdict::kDrop,
                     {}, DropReason::kBadIpChecksum});
    cases.push_back({"broadcast source", mutate_ip(mutate_ip(mutate_ip(mutate_ip(g, 26, 255), 27, 255), 28, 255), 29, 255),
                     Verdict::kDrop, {}, DropReason::kMartianSource});
    Pkt zero_port = good;
    zero_port.sport = 0;
    cases.push_back({"TCP source port 0", test::build(zero_port), Verdict::kDrop, {}, DropReason::kPortZero});
    Pkt synfin = good;
    synfin.tcp_flags = SYN | 0x01;
    cases.push_back({"SYN+FIN", test::build(synfin), Verdict::kDrop, {}, DropReason::kBadTcpFlags});
    cases.push_back({"SYN with a bad TCP checksum", mutate(g, 14 + 20 + 16, g[14 + 20 + 16] ^ 0x01),
                     Verdict::kDrop, {}, DropReason::kBadL4Checksum});
    Pkt land = good;
    land.src_ip = kVip;
    cases.push_back({"land: a SYN from the VIP to itself", test::build(land), Verdict::kDrop, {},
                     DropReason::kMartianSource});
    Frame v6 = g;
    v6[12] = 0x86;
    v6[13] = 0xdd;
    cases.push_back({"IPv6", v6, Verdict::kDrop, {}, DropReason::kUnsupportedL3});
    Frame vlan_runt(g.begin(), g.begin() + 12);
    vlan_runt.insert(vlan_runt.end(), {0x81, 0x00, 0x00});
    cases.push_back({"truncated VLAN tag", vlan_runt, Verdict::kDrop, {}, DropReason::kMalformedL2});
    Arp bad_arp{kClientMac, kBroadcast, {}, 1, kClientMac, {}, kClient, kVip, 60};
    cases.push_back({"ARP with hardware length 8", mutate(test::build(bad_arp), 14 + 4, 8), Verdict::kDrop, {},
                     DropReason::kMalformedArp});
  }

  for (const auto& c : cases) check(c);
}

TEST_F(Fixture, RejectsBadStateAndKeepsForwarding) {
  const Mac me = mac();
  push(seed_state());
  std::vector<uint8_t> reply;
  // Truncated body.
  auto body = api::encode_state(seed_state());
  body.resize(body.size() - 3);
  EXPECT_EQ(control(api::MsgType::kSetState, body, &reply), api::MsgType::kError);
  std::string err;
  auto ack = api::decode_ack(reply, &err);
  ASSERT_TRUE(ack.has_value()) << err;
  EXPECT_FALSE(ack->ok);
  // Semantically invalid: duplicate backend id.
  api::State bad = seed_state();
  bad.generation = 99;
  bad.vips[1].backends[0].id = 0;
  EXPECT_EQ(control(api::MsgType::kSetState, api::encode_state(bad), &reply), api::MsgType::kError);
  ack = api::decode_ack(reply, &err);
  ASSERT_TRUE(ack.has_value());
  EXPECT_NE(ack->message.find("backend id 0 is used twice"), std::string::npos) << ack->message;

  // Still forwarding with generation 1's state.
  EXPECT_EQ(dp_->publisher().current()->generation, 1u);
  // (An echo request: the scenario's connections hold the one local port of every backend.)
  Pkt echo;
  echo.src_mac = kClientMac;
  echo.dst_mac = me;
  echo.src_ip = kClient;
  echo.dst_ip = kVip;
  echo.proto = 1;
  const auto out = run(test::build(echo));
  ASSERT_EQ(out.size(), 1u);

  // The stats reply names every drop reason and counts what this worker saw.
  EXPECT_EQ(control(api::MsgType::kGetStats, {}, &reply), api::MsgType::kStatsReply);
  auto st = api::decode_stats(reply, &err);
  ASSERT_TRUE(st.has_value()) << err;
  ASSERT_EQ(st->lcores.size(), 2u);  // the worker, then the main lcore (neighbours)
  EXPECT_EQ(st->value(st->lcores[1], "neigh_capacity"), 4096u);
  EXPECT_GT(st->value(st->lcores[1], "arp_requests"), 0u);
  EXPECT_EQ(st->drop_names.size(), dp::kDropReasonCount);
  EXPECT_EQ(st->value(st->lcores[0], "rx_packets"), dp_->worker(0).pipeline.counters().rx_packets);
  ASSERT_EQ(st->ports.size(), 1u);
  EXPECT_GT(st->ports[0].ipackets, 0u);
  for (const auto& b : st->backends) EXPECT_EQ(b.table_size, 0u) << b.id;  // rr: no table

  // A maglev VIP: every backend of it is in the stats with its share of the table, counted
  // when the snapshot was built, whether it has had traffic or not.
  api::State hashed = seed_state();
  hashed.generation = 2;
  hashed.vips[0].sched = api::Sched::kMaglev;
  EXPECT_EQ(control(api::MsgType::kSetState, api::encode_state(hashed), &reply),
            api::MsgType::kSetStateReply);
  EXPECT_EQ(control(api::MsgType::kGetStats, {}, &reply), api::MsgType::kStatsReply);
  st = api::decode_stats(reply, &err);
  ASSERT_TRUE(st.has_value()) << err;
  uint64_t entries = 0;
  size_t seen = 0;
  for (const auto& vb : hashed.vips[0].backends)
    for (const auto& b : st->backends)
      if (b.id == vb.id) {
        ++seen;
        EXPECT_EQ(b.table_size, dp::kMaglevSize) << b.id;
        EXPECT_GT(b.table_entries, 0u) << b.id;
        entries += b.table_entries;
      }
  EXPECT_EQ(seen, hashed.vips[0].backends.size());
  EXPECT_EQ(entries, dp::kMaglevSize);
}

}  // namespace
}  // namespace rondo
