// Inspection (dataplane/inspect): frame descriptions, flow filters and the flow reader's
// paging, the tracer (filters, its count and deadline, what it derives around the
// pipeline), drop samples (rate limit, bounds), and the inspect messages' codec.
// Plain bytes, no EAL: hz = 1000, so `now` is in milliseconds.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <vector>

#include "dataplane/api/ctl.h"
#include "dataplane/fwd/pipeline.h"
#include "dataplane/inspect/describe.h"
#include "dataplane/inspect/drop_sampler.h"
#include "dataplane/inspect/flows.h"
#include "dataplane/inspect/query.h"
#include "dataplane/inspect/trace.h"
#include "dataplane/neigh/manager.h"
#include "tests/common/packet_builder.h"
#include "tests/common/seed_topology.h"

namespace rondo::dp {
namespace {

using test::Frame;
using test::Mac;
using test::Pkt;
using test::ip4;

const Mac kOurMac{0x02, 0, 0, 0, 0, 0x01};
using test::seed::kBackend;
using test::seed::kClient;
using test::seed::kLocal;
using test::seed::kVip;

Pkt client_syn(uint16_t cport) {
  Pkt p;
  p.src_ip = kClient;
  p.dst_ip = kVip;
  p.sport = cport;
  p.dport = 80;
  p.tcp_flags = kTcpSyn;
  return p;
}

// ---- describe_frame ----

TEST(Describe, SaysWhatAnOperatorNeeds) {
  Pkt syn = client_syn(41234);
  syn.seq = 7;
  syn.window = 64240;
  const Frame f = test::build(syn);
  EXPECT_EQ(describe_frame(f.data(), static_cast<uint32_t>(f.size())),
            "198.51.100.2:41234 > 203.0.113.10:80 tcp [S] seq 7 ack 0 win 64240 len 0");
  Pkt udp = client_syn(5353);
  udp.proto = 17;
  udp.dport = 53;
  udp.payload = "abcd";
  udp.vlan = 42;
  const Frame u = test::build(udp);
  EXPECT_EQ(describe_frame(u.data(), static_cast<uint32_t>(u.size())),
            "vlan 42 198.51.100.2:5353 > 203.0.113.10:53 udp len 4");
  test::Arp arp;
  arp.sip = kClient;
  arp.tip = kVip;
  const Frame a = test::build(arp);
  EXPECT_EQ(describe_frame(a.data(), static_cast<uint32_t>(a.size())),
            "arp who-has 203.0.113.10 tell 198.51.100.2");
  EXPECT_EQ(hex_bytes(f.data(), 3), "020000");
  EXPECT_EQ(hex_bytes(f.data(), static_cast<uint32_t>(f.size()), 4).size(), 8u);
}

// A tag shows its VID, and its priority when the sender set one (PCP 0 says nothing); QinQ
// (refused by the parser) shows both tags, the 802.1ad one as s-vlan; a priority tag is VID 0.
TEST(Describe, TagsShowTheirVidAndPriority) {
  Pkt syn = client_syn(41234);
  syn.vlan = 0x6064;  // PCP 3, VID 100
  Frame f = test::build(syn);
  EXPECT_EQ(describe_frame(f.data(), static_cast<uint32_t>(f.size())),
            "vlan 100 pcp 3 198.51.100.2:41234 > 203.0.113.10:80 tcp [S] seq 1000 ack 0 win 65535 len 0");
  syn.vlan = 0xa000;  // a priority tag
  f = test::build(syn);
  EXPECT_EQ(describe_frame(f.data(), static_cast<uint32_t>(f.size())).substr(0, 16), "vlan 0 pcp 5 198");
  syn.vlan = 0x0064;
  Frame q = test::build(syn);
  const uint8_t s_tag[4] = {0x88, 0xa8, 0x00, 0xc8};
  q.insert(q.begin() + 12, s_tag, s_tag + 4);
  EXPECT_EQ(describe_frame(q.data(), static_cast<uint32_t>(q.size())).substr(0, 33),
            "s-vlan 200 vlan 100 198.51.100.2:");
  // Cut inside the second tag: said so, nothing read past the end.
  EXPECT_EQ(describe_frame(q.data(), 19), "s-vlan 200 truncated 802.1Q tag (19 bytes)");
}

TEST(Describe, EveryTruncationIsDescribedWithoutReadingPastTheEnd) {
  const Frame f = test::build(client_syn(1));
  for (size_t n = 0; n < f.size(); ++n) {
    const std::vector<uint8_t> prefix(f.begin(), f.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_FALSE(describe_frame(prefix.data(), static_cast<uint32_t>(n)).empty()) << n;
  }
  const std::vector<uint8_t> six(14, 0x86);
  EXPECT_EQ(describe_frame(six.data(), 14), "ethertype 0x8686, 14 bytes");
}

// IPv6 frames: addresses in RFC 5952 form, endpoints bracketed, extension headers counted,
// ICMPv6 by name; and never a read past the end.
TEST(Describe, Ipv6FramesInOneLine) {
  Pkt syn;
  syn.v6 = true;
  syn.src6 = test::ip6("2001:db8:100::2");
  syn.dst6 = test::ip6("2001:db8::10");
  syn.sport = 41234;
  syn.dport = 80;
  syn.seq = 7;
  syn.window = 64240;
  const Frame f = test::build(syn);
  EXPECT_EQ(describe_frame(f.data(), static_cast<uint32_t>(f.size())),
            "[2001:db8:100::2]:41234 > [2001:db8::10]:80 tcp [S] seq 7 ack 0 win 64240 len 0");

  Pkt udp = syn;
  udp.proto = 17;
  udp.dport = 53;
  udp.payload = "abcd";
  udp.ext = {test::ext_options(0), test::ext_options(60)};  // hop-by-hop, destination options
  udp.vlan = 42;
  const Frame u = test::build(udp);
  EXPECT_EQ(describe_frame(u.data(), static_cast<uint32_t>(u.size())),
            "vlan 42 [2001:db8:100::2]:41234 > [2001:db8::10]:53 udp len 4 ext 2");

  Pkt echo = syn;
  echo.proto = 58;
  echo.icmp_type = 128;
  echo.ttl = 63;
  const Frame e = test::build(echo);
  EXPECT_EQ(describe_frame(e.data(), static_cast<uint32_t>(e.size())),
            "2001:db8:100::2 > 2001:db8::10 icmp6 echo request (128/0) hlim 63 len " +
                std::to_string(e.size() - 14 - 40));

  Pkt frag = udp;
  frag.vlan.reset();
  frag.ext = {test::ext_fragment(185, true)};
  const Frame g = test::build(frag);
  EXPECT_EQ(describe_frame(g.data(), static_cast<uint32_t>(g.size())),
            "2001:db8:100::2 > 2001:db8::10 proto 17 fragment off 1480 + ext 1 hlim 64 len " +
                std::to_string(g.size() - 14 - 40));

  for (const Frame* fr : {&f, &u, &e, &g})
    for (size_t n = 0; n < fr->size(); ++n) {
      const std::vector<uint8_t> prefix(fr->begin(), fr->begin() + static_cast<std::ptrdiff_t>(n));
      EXPECT_FALSE(describe_frame(prefix.data(), static_cast<uint32_t>(n)).empty()) << n;
    }
}

// ---- the pipeline under inspection ----

class Inspect : public ::testing::Test {
 protected:
  void SetUp() override {
    PipelineParams pp;
    pp.flow_capacity = 512;
    pp.lport_lo = 40000;
    pp.lport_hi = 40999;
    pp.hz = 1000;
    pp.port_macs = {kOurMac};
    pp.flow_meters = true;
    pl_ = std::make_unique<Pipeline>(pp);
    NeighManagerParams np;
    np.hz = 1000;
    np.port_macs = {kOurMac};
    nm_ = std::make_unique<NeighManager>(np);
    snap_ = build_snapshot(state_);
    pl_->on_snapshot(*snap_, 0);
    nm_->on_snapshot(*snap_, 0);
    nm_->on_conf6(ndp_conf(*snap_), 0);  // the v6 static neighbours (Inspect6)
    map_ = nm_->next_hops_if_changed();
    pl_->set_next_hops(map_.get());
    map6_ = nm_->next_hops6_if_changed();
    pl_->set_next_hops6(map6_.get());
  }

  // A burst through the tracer and the pipeline, as the worker runs it.
  std::vector<Action> burst(std::vector<Frame>& frames, uint64_t now) {
    // Room around each frame as an mbuf has: NAT46 grows a frame by 20 bytes in front
    // (Action::prepend).
    constexpr size_t kRoom = 128;
    std::vector<std::vector<uint8_t>> bufs;
    std::vector<uint8_t*> ptrs;
    std::vector<uint32_t> lens;
    for (auto& f : frames) {
      bufs.emplace_back(kRoom + f.size() + kRoom);
      std::copy(f.begin(), f.end(), bufs.back().begin() + kRoom);
      lens.push_back(static_cast<uint32_t>(f.size()));
    }
    for (auto& b : bufs) ptrs.push_back(b.data() + kRoom);
    std::vector<Action> out(frames.size());
    const auto n = static_cast<uint32_t>(frames.size());
    const bool tracing = tracer_.armed();
    if (tracing) tracer_.before(*pl_, snap_.get(), ptrs.data(), lens.data(), n, 0, false, now);
    pl_->process_burst(snap_.get(), ptrs.data(), lens.data(), n, 0, now, false, out.data());
    if (tracing) tracer_.after(*pl_, ptrs.data(), lens.data(), out.data(), n);
    return out;
  }
  Action one(const Pkt& p, uint64_t now) {
    std::vector<Frame> f{test::build(p)};
    return burst(f, now)[0];
  }

  WorkerQuery ask(api::InspectOp op, const api::FlowFilter& filter, uint64_t now, uint32_t limit = 100,
                  uint32_t from = 0) {
    WorkerQuery q;
    q.req.op = op;
    q.req.filter = filter;
    q.limit = limit;
    q.from = from;
    serve_query(Inspected{pl_.get(), &tracer_, &drops_, 7, 1000}, &q, now);
    return q;
  }

  api::State state_ = test::seed::state();
  std::unique_ptr<Pipeline> pl_;
  std::unique_ptr<NeighManager> nm_;
  std::unique_ptr<Snapshot> snap_;
  std::unique_ptr<NextHopMap> map_;
  std::unique_ptr<NextHopMap6> map6_;
  Tracer tracer_;
  DropSampler drops_{1000};
};

TEST_F(Inspect, FlowShowByEitherSideWithItsTraffic) {
  ASSERT_EQ(one(client_syn(50000), 100).kind, Action::Kind::kTx);
  api::FlowFilter client{.client_ip = api::Addr::from_v4(kClient), .client_port = 50000, .vip_ip = api::Addr::from_v4(kVip), .vip_port = 80, .proto = 6};
  ASSERT_TRUE(exact_key(client));
  WorkerQuery q = ask(api::InspectOp::kFlows, client, 350);
  ASSERT_EQ(q.flows.size(), 1u);
  const api::FlowInfo& f = q.flows[0];
  // Found by hash, not by a scan: in each table (a NAT46 flow has a v4 client too).
  EXPECT_EQ(q.scan.scanned, 2u);
  EXPECT_EQ(f.lcore, 7u);
  EXPECT_EQ(f.state, "syn_sent");
  EXPECT_EQ(f.backend_ip, api::Addr::from_v4(kBackend));
  EXPECT_EQ(f.backend_port, 3000);
  EXPECT_EQ(f.local_ip, api::Addr::from_v4(kLocal));
  EXPECT_GE(f.local_port, 40000);
  EXPECT_TRUE(f.metered);
  EXPECT_EQ(f.age_ms, 250u);
  EXPECT_EQ(f.packets_in, 1u);
  EXPECT_EQ(f.bytes_in, test::build(client_syn(50000)).size());
  EXPECT_EQ(f.packets_out, 0u);
  EXPECT_GT(f.expires_ms, 0u);
  // The backend side names the same flow.
  api::FlowFilter backend{.proto = 6, .backend_ip = api::Addr::from_v4(kBackend), .backend_port = 3000, .local_ip = api::Addr::from_v4(kLocal),
                          .local_port = f.local_port};
  ASSERT_TRUE(exact_key(backend));
  q = ask(api::InspectOp::kFlows, backend, 350);
  ASSERT_EQ(q.flows.size(), 1u);
  EXPECT_EQ(q.flows[0].client_port, 50000);
  // A different port is another flow: none.
  client.client_port = 50001;
  EXPECT_TRUE(ask(api::InspectOp::kFlows, client, 350).flows.empty());
  // Without meters the traffic is not kept, and says so.
  PipelineParams pp;
  pp.flow_capacity = 64;
  EXPECT_EQ(Pipeline(pp).flows().meter(0), nullptr);
}

// Protocol 13 filters carry either family; these v4 flows match no IPv6 address, not even
// one whose last 32 bits are the v4 address (2001:db8::c633:6402 ends in 198.51.100.2).
TEST_F(Inspect, AnIpv6FilterMatchesNoIpv4Flow) {
  ASSERT_EQ(one(client_syn(50000), 100).kind, Action::Kind::kTx);
  api::Addr v6 = *api::parse_addr("2001:db8::c633:6402");
  ASSERT_EQ(v6.v4(), kClient);
  api::FlowFilter f{.client_ip = v6, .client_port = 50000, .vip_ip = api::Addr::from_v4(kVip), .vip_port = 80, .proto = 6};
  EXPECT_FALSE(exact_key(f));
  EXPECT_TRUE(ask(api::InspectOp::kFlows, f, 350).flows.empty());
  f.client_ip = api::Addr::from_v4(kClient);
  EXPECT_EQ(ask(api::InspectOp::kFlows, f, 350).flows.size(), 1u);
  EXPECT_TRUE(ask(api::InspectOp::kFlows, api::FlowFilter{.local_ip = *api::parse_addr("2001:db8:100::100")}, 350)
                  .flows.empty());
}

TEST_F(Inspect, ListingPagesThroughEveryFlowOnceAndIsBounded) {
  for (uint16_t p = 0; p < 200; ++p) ASSERT_EQ(one(client_syn(static_cast<uint16_t>(20000 + p)), 10).kind, Action::Kind::kTx);
  std::set<uint16_t> seen;
  uint32_t from = 0, pages = 0;
  for (;;) {
    WorkerQuery q = ask(api::InspectOp::kFlows, api::FlowFilter{.vip_ip = api::Addr::from_v4(kVip)}, 20, 64, from);
    EXPECT_LE(q.flows.size(), 64u);
    for (const auto& f : q.flows) EXPECT_TRUE(seen.insert(f.client_port).second) << f.client_port;
    ++pages;
    if (q.scan.next >= q.capacity) break;
    from = q.scan.next;
  }
  EXPECT_EQ(seen.size(), 200u);
  EXPECT_GE(pages, 4u);
  // The scan budget bounds one request whatever the limit.
  FlowScan s = scan_flows(pl_->flows(), api::FlowFilter{}, 0, 1000, 20, [](uint32_t) {}, 50);
  EXPECT_EQ(s.scanned, 50u);
  EXPECT_EQ(s.next, 50u);
  // Expired flows are not listed.
  EXPECT_TRUE(ask(api::InspectOp::kFlows, api::FlowFilter{}, 1'000'000).flows.empty());
}

TEST_F(Inspect, DeleteRemovesAFlowAndItsPort) {
  ASSERT_EQ(one(client_syn(50000), 10).kind, Action::Kind::kTx);
  ASSERT_EQ(one(client_syn(50001), 10).kind, Action::Kind::kTx);
  ASSERT_EQ(pl_->flows().size(), 2u);
  WorkerQuery q = ask(api::InspectOp::kFlowDelete, api::FlowFilter{.client_port = 50000}, 20);
  EXPECT_EQ(q.deleted, 1u);
  ASSERT_EQ(q.flows.size(), 1u);
  EXPECT_EQ(q.flows[0].client_port, 50000);
  EXPECT_EQ(pl_->flows().size(), 1u);
  // The deleted connection's next segment has no flow.
  Pkt ack = client_syn(50000);
  ack.tcp_flags = kTcpAck;
  const Action a = one(ack, 30);
  EXPECT_EQ(a.kind, Action::Kind::kDrop);
  EXPECT_EQ(a.reason, DropReason::kTcpNoFlow);
  // The backend's active-flow count went down with it.
  EXPECT_EQ(pl_->backend_counters()[0].active_flows, 0u);
}

TEST_F(Inspect, TraceRecordsOnlyWhatMatchesUpToItsCount) {
  tracer_.arm(api::FlowFilter{.client_port = 50000}, 2, 0, 10'000);
  std::vector<Frame> frames{test::build(client_syn(50001)), test::build(client_syn(50000))};
  burst(frames, 5);
  std::vector<TraceRaw> r = tracer_.take();
  ASSERT_EQ(r.size(), 1u);  // only the filter's client port
  EXPECT_EQ(r[0].kind, TraceKind::kClient);
  EXPECT_EQ(r[0].flow, TraceFlow::kNew);
  EXPECT_EQ(r[0].action.kind, Action::Kind::kTx);
  EXPECT_TRUE(r[0].has_flow);
  EXPECT_EQ(r[0].state, FlowState::kSynSent);
  EXPECT_EQ(ntohs(r[0].backend_port), 3001);  // 50001 took :3000
  EXPECT_EQ(describe_frame(r[0].post, r[0].out_len).rfind("198.51.100.100:", 0), 0u);
  EXPECT_TRUE(tracer_.armed());
  // Its SYN-ACK is matched through the flow (the reply has no client address in it).
  const Frame out(r[0].post, r[0].post + r[0].out_len);
  Pkt synack;
  synack.src_ip = kBackend;
  synack.dst_ip = kLocal;
  synack.sport = 3001;
  synack.dport = static_cast<uint16_t>(out[34] << 8 | out[35]);
  synack.tcp_flags = kTcpSyn | kTcpAck;
  synack.ack = 1001;
  EXPECT_EQ(one(synack, 6).kind, Action::Kind::kTx);
  r = tracer_.take();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].kind, TraceKind::kReply);
  EXPECT_EQ(r[0].flow, TraceFlow::kHit);
  EXPECT_EQ(r[0].state, FlowState::kSynRecv);
  // The count is spent: disarmed, nothing more recorded.
  EXPECT_FALSE(tracer_.armed());
  one(client_syn(50000), 7);
  EXPECT_TRUE(tracer_.take().empty());
}

// Each record names the interface the packet came in on: the seed state declares none, so
// port 0's implicit one (id 0) for untagged and priority-tagged frames, none for a VID.
TEST_F(Inspect, TraceNamesTheInterface) {
  tracer_.arm(api::FlowFilter{}, 10, 0, 10'000);
  Pkt tagged = client_syn(50001);
  tagged.vlan = 0x0064;
  Pkt priority = client_syn(50002);
  priority.vlan = 0xa000;
  std::vector<Frame> frames{test::build(client_syn(50000)), test::build(tagged), test::build(priority)};
  burst(frames, 5);
  const std::vector<TraceRaw> r = tracer_.take();
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].iface, 0);
  EXPECT_EQ(r[1].iface, kNoIface);
  EXPECT_EQ(r[1].action.reason, DropReason::kVlanMismatch);
  EXPECT_EQ(r[2].iface, 0);
}

TEST_F(Inspect, TraceStopsAtItsDeadlineAndNamesDrops) {
  tracer_.arm(api::FlowFilter{}, 100, 0, 50);
  Pkt nosvc = client_syn(50000);
  nosvc.dport = 81;
  EXPECT_EQ(one(nosvc, 10).reason, DropReason::kNoService);
  std::vector<TraceRaw> r = tracer_.take();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].action.kind, Action::Kind::kDrop);
  EXPECT_EQ(r[0].action.reason, DropReason::kNoService);
  EXPECT_FALSE(r[0].has_flow);
  EXPECT_TRUE(tracer_.live(49));
  one(client_syn(50000), 50);  // at the deadline
  EXPECT_TRUE(tracer_.take().empty());
  EXPECT_FALSE(tracer_.armed());
}

// ---- IPv6: the v6 table (flows6_), with NAT46 and NAT64 flows whose v4 side is kept
// IPv4-mapped there and reads as IPv4 ----

using test::seed::addr6;
using test::seed::kBackend6;
using test::seed::kClient6;
using test::seed::kLocal6;
using test::seed::kVip6;

class Inspect6 : public Inspect {
 protected:
  Inspect6() { state_ = test::seed::state6(/*with_nat64=*/true); }

  // web6: [client6]:cport > [vip6]:80; NAT64: the same to [vip6]:8091.
  static Pkt syn6(uint16_t cport, uint16_t vport = 80) {
    Pkt p = client_syn(cport);
    p.v6 = true;
    p.src6 = kClient6;
    p.dst6 = kVip6;
    p.dport = vport;
    return p;
  }
  // NAT46: client:cport > VIP:8090 (v4), to backend6.
  static Pkt syn46(uint16_t cport) {
    Pkt p = client_syn(cport);
    p.dport = 8090;
    return p;
  }
  static api::Addr v4(uint32_t host) { return api::Addr::from_v4(host); }
};

TEST_F(Inspect6, V6AndTranslatedFlowsAreListedShownAndRemoved) {
  ASSERT_EQ(one(syn6(50000), 100).kind, Action::Kind::kTx);
  ASSERT_EQ(one(syn46(50001), 100).kind, Action::Kind::kTx);
  ASSERT_EQ(one(syn6(50002, 8091), 100).kind, Action::Kind::kTx);  // NAT64
  ASSERT_EQ(one(client_syn(50003), 100).kind, Action::Kind::kTx);  // plain v4
  ASSERT_EQ(pl_->flows6().size(), 3u);
  ASSERT_EQ(pl_->flows().size(), 1u);

  // Everything, both tables, in one answer.
  WorkerQuery q = ask(api::InspectOp::kFlows, api::FlowFilter{}, 200);
  EXPECT_EQ(q.flows.size(), 4u);
  EXPECT_EQ(q.scan.next, q.capacity);
  EXPECT_EQ(q.capacity, pl_->flows().capacity() + pl_->flows6().capacity());

  // A v6 flow by its whole client side: one hash lookup in the v6 table, none in the v4 one.
  const api::FlowFilter web6{.client_ip = addr6(kClient6), .client_port = 50000,
                             .vip_ip = addr6(kVip6), .vip_port = 80, .proto = 6};
  ASSERT_FALSE(exact_key(web6));
  ASSERT_TRUE(exact_key6(web6));
  q = ask(api::InspectOp::kFlows, web6, 350);
  ASSERT_EQ(q.flows.size(), 1u);
  EXPECT_EQ(q.scan.scanned, 1u);
  const api::FlowInfo f = q.flows[0];
  EXPECT_EQ(f.state, "syn_sent");
  EXPECT_EQ(api::format_addr(f.client_ip), "2001:db8:100::2");
  EXPECT_EQ(f.backend_ip, addr6(kBackend6));
  EXPECT_GE(f.backend_port, 3000);
  EXPECT_LE(f.backend_port, 3003);
  EXPECT_EQ(f.local_ip, addr6(kLocal6));
  EXPECT_TRUE(f.metered);
  EXPECT_EQ(f.age_ms, 250u);
  EXPECT_EQ(f.bytes_in, test::build(syn6(50000)).size());
  // ... and by its backend side.
  const api::FlowFilter back6{.proto = 6, .backend_ip = addr6(kBackend6), .backend_port = f.backend_port,
                              .local_ip = addr6(kLocal6), .local_port = f.local_port};
  q = ask(api::InspectOp::kFlows, back6, 350);
  ASSERT_EQ(q.flows.size(), 1u);
  EXPECT_EQ(q.flows[0].client_port, 50000);

  // NAT46: an IPv4 filter finds its v4 side, which reads as IPv4; by hash, in both tables.
  const api::FlowFilter n46{.client_ip = v4(kClient), .client_port = 50001, .vip_ip = v4(kVip),
                            .vip_port = 8090, .proto = 6};
  q = ask(api::InspectOp::kFlows, n46, 350);
  ASSERT_EQ(q.flows.size(), 1u);
  EXPECT_EQ(q.scan.scanned, 2u);
  EXPECT_EQ(api::format_addr(q.flows[0].client_ip), "198.51.100.2");
  EXPECT_EQ(q.flows[0].vip_ip, v4(kVip));
  EXPECT_EQ(q.flows[0].backend_ip, addr6(kBackend6));
  EXPECT_EQ(q.flows[0].backend_port, 3000);
  EXPECT_EQ(q.flows[0].local_ip, addr6(kLocal6));
  q = ask(api::InspectOp::kFlows, api::FlowFilter{.vip_port = 8090}, 350);  // by a scan
  ASSERT_EQ(q.flows.size(), 1u);
  EXPECT_EQ(q.flows[0].client_port, 50001);

  // The v4 backend: the plain v4 flow and the NAT64 one (its backend side is IPv4).
  q = ask(api::InspectOp::kFlows, api::FlowFilter{.backend_ip = v4(kBackend)}, 350);
  ASSERT_EQ(q.flows.size(), 2u);
  std::set<uint16_t> ports{q.flows[0].client_port, q.flows[1].client_port};
  EXPECT_EQ(ports, (std::set<uint16_t>{50002, 50003}));
  for (const auto& x : q.flows) {
    if (x.client_port != 50002) continue;
    EXPECT_EQ(x.client_ip, addr6(kClient6));
    EXPECT_EQ(x.vip_port, 8091);
    EXPECT_EQ(x.backend_ip, v4(kBackend));
    EXPECT_EQ(x.local_ip, v4(kLocal));  // a v4 local ip, as NAT64 takes
  }

  // Remove by the v6 client: web6's and NAT64's flows go, the others stay.
  q = ask(api::InspectOp::kFlowDelete, api::FlowFilter{.client_ip = addr6(kClient6)}, 400);
  EXPECT_EQ(q.deleted, 2u);
  EXPECT_EQ(q.flows.size(), 2u);
  EXPECT_EQ(pl_->flows6().size(), 1u);
  EXPECT_EQ(pl_->flows().size(), 1u);
  EXPECT_TRUE(ask(api::InspectOp::kFlows, web6, 410).flows.empty());
  // The removed connection's next segment finds no flow.
  Pkt ack = syn6(50000);
  ack.tcp_flags = kTcpAck;
  const Action a = one(ack, 420);
  EXPECT_EQ(a.kind, Action::Kind::kDrop);
  EXPECT_EQ(a.reason, DropReason::kTcpNoFlow);
  // NAT46's by its v4 side.
  q = ask(api::InspectOp::kFlowDelete, n46, 430);
  EXPECT_EQ(q.deleted, 1u);
  EXPECT_EQ(pl_->flows6().size(), 0u);
}

TEST_F(Inspect6, ListingPagesThroughBothTablesOnce) {
  for (uint16_t p = 0; p < 30; ++p) {
    ASSERT_EQ(one(client_syn(static_cast<uint16_t>(20000 + p)), 10).kind, Action::Kind::kTx);
    ASSERT_EQ(one(syn6(static_cast<uint16_t>(30000 + p)), 10).kind, Action::Kind::kTx);
  }
  std::set<uint16_t> seen;
  uint32_t from = 0, pages = 0;
  for (;;) {
    WorkerQuery q = ask(api::InspectOp::kFlows, api::FlowFilter{}, 20, 7, from);
    EXPECT_LE(q.flows.size(), 7u);
    for (const auto& f : q.flows) {
      EXPECT_EQ(f.client_ip.is_v4(), f.client_port < 30000) << f.client_port;
      EXPECT_TRUE(seen.insert(f.client_port).second) << f.client_port;
    }
    ++pages;
    ASSERT_LT(pages, 100u);
    if (q.scan.next >= q.capacity) break;
    from = q.scan.next;
  }
  EXPECT_EQ(seen.size(), 60u);
  EXPECT_GE(pages, 9u);
  // The budget is shared: spent in the v4 table, the v6 one is not begun.
  const uint32_t cap4 = pl_->flows().capacity();
  FlowScan s = scan_both(pl_->flows(), pl_->flows6(), api::FlowFilter{}, 0, 1000, 20,
                         [](FlowRef) {}, 50);
  EXPECT_EQ(s.scanned, 50u);
  EXPECT_EQ(s.next, 50u);
  s = scan_both(pl_->flows(), pl_->flows6(), api::FlowFilter{}, cap4 - 10, 1000, 20,
                [](FlowRef) {}, 50);
  EXPECT_EQ(s.scanned, 50u);
  EXPECT_EQ(s.next, cap4 + 40);
  // A v6 filter skips the v4 table.
  s = scan_both(pl_->flows(), pl_->flows6(), api::FlowFilter{.client_ip = addr6(kClient6)}, 0,
                1000, 20, [](FlowRef r) { EXPECT_TRUE(r.v6); }, 50);
  EXPECT_EQ(s.next, cap4 + 50);
}

TEST_F(Inspect6, TraceFollowsV6AndNat46Flows) {
  tracer_.arm(api::FlowFilter{.client_ip = addr6(kClient6)}, 10, 0, 10'000);
  std::vector<Frame> frames{test::build(client_syn(50001)), test::build(syn6(50000))};
  burst(frames, 5);
  std::vector<TraceRaw> r = tracer_.take();
  ASSERT_EQ(r.size(), 1u);  // only the v6 client's
  EXPECT_EQ(r[0].kind, TraceKind::kClient);
  EXPECT_EQ(r[0].flow, TraceFlow::kNew);
  ASSERT_TRUE(r[0].has_flow);
  EXPECT_EQ(r[0].state, FlowState::kSynSent);
  EXPECT_EQ(r[0].backend_ip, addr6(kBackend6));
  EXPECT_EQ(describe_frame(r[0].pre, r[0].len).rfind("[2001:db8:100::2]:50000 > [2001:db8::10]:80", 0), 0u);
  EXPECT_EQ(describe_frame(r[0].post, r[0].out_len).rfind("[2001:db8:100::100]:", 0), 0u);
  // backend6's SYN-ACK to [local6]:port: a reply, matched through its flow.
  const Frame out(r[0].post, r[0].post + r[0].out_len);
  Pkt synack;
  synack.v6 = true;
  synack.src6 = kBackend6;
  synack.dst6 = kLocal6;
  synack.sport = static_cast<uint16_t>(out[14 + 42] << 8 | out[14 + 43]);  // the SYN's dport
  synack.dport = static_cast<uint16_t>(out[14 + 40] << 8 | out[14 + 41]);  // and its sport
  synack.tcp_flags = kTcpSyn | kTcpAck;
  synack.ack = 1001;
  EXPECT_EQ(one(synack, 6).kind, Action::Kind::kTx);
  r = tracer_.take();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].kind, TraceKind::kReply);
  EXPECT_EQ(r[0].flow, TraceFlow::kHit);
  EXPECT_EQ(r[0].state, FlowState::kSynRecv);

  // NAT46 under a v4 filter: the v4 client's SYN makes a flow in the v6 table.
  tracer_.arm(api::FlowFilter{.client_ip = v4(kClient), .vip_port = 8090}, 10, 10, 10'000);
  one(syn46(50005), 11);
  Pkt ack = syn46(50005);
  ack.tcp_flags = kTcpAck;
  one(ack, 12);
  one(client_syn(50006), 13);  // another VIP port: not traced
  r = tracer_.take();
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].kind, TraceKind::kClient);
  EXPECT_EQ(r[0].flow, TraceFlow::kNew);
  ASSERT_TRUE(r[0].has_flow);
  EXPECT_EQ(r[0].backend_ip, addr6(kBackend6));
  EXPECT_EQ(ntohs(r[0].backend_port), 3000);
  EXPECT_EQ(r[1].flow, TraceFlow::kHit);  // found IPv4-mapped in the v6 table
}

TEST(DropSampler, KeepsTheNewestFewPerReasonAtItsRate) {
  DropSampler d(1000);  // one sample per reason per 100 ms
  const Frame f = test::build(client_syn(1));
  for (uint64_t t = 0; t < 100; ++t) d.offer(DropReason::kNoService, f.data(), static_cast<uint32_t>(f.size()), 0, t);
  EXPECT_EQ(d.samples().size(), 1u);  // a flood within 100 ms: one
  for (uint64_t t = 100; t <= 1000; t += 100)
    d.offer(DropReason::kNoService, f.data(), static_cast<uint32_t>(f.size()), 0, t);
  d.offer(DropReason::kTcpNoFlow, f.data(), 10, 3, 1000);
  auto all = d.samples();
  EXPECT_EQ(all.size(), DropSampler::kPerReason + 1);
  auto one = d.samples(static_cast<uint32_t>(DropReason::kNoService));
  ASSERT_EQ(one.size(), DropSampler::kPerReason);
  EXPECT_EQ(one[0].at, 1000u);  // newest first
  EXPECT_EQ(one[3].at, 700u);
  auto nf = d.samples(static_cast<uint32_t>(DropReason::kTcpNoFlow));
  ASSERT_EQ(nf.size(), 1u);
  EXPECT_EQ(nf[0].len, 10u);
  EXPECT_EQ(nf[0].in_port, 3);
}

// ---- codec ----

api::InspectReply sample_reply() {
  api::InspectReply r;
  r.next_cursor = uint64_t{1} << 32 | 77;
  r.scanned = 65536;
  r.deleted = 2;
  r.armed = true;
  api::FlowInfo f;
  f.lcore = 3;
  f.proto = 6;
  f.client_ip = api::Addr::from_v4(kClient);
  f.client_port = 1;
  f.state = "established";
  f.metered = true;
  f.bytes_out = 12345;
  r.flows = {f, f};
  api::TraceRecord t;
  t.packet = "198.51.100.2:1 > 203.0.113.10:80 tcp [S]";
  t.kind = "client";
  t.verdict = "drop";
  t.reason = "no_service";
  r.trace = {t};
  api::DropSample d;
  d.reason = "no_service";
  d.hex = "00ff";
  r.drops = {d};
  return r;
}

TEST(InspectCodec, RoundTripsAndRefusesEveryTruncation) {
  api::InspectRequest q;
  q.op = api::InspectOp::kTraceStart;
  q.filter.client_ip = api::Addr::from_v4(kClient);
  q.filter.proto = 17;
  q.limit = 10;
  q.seconds = 5;
  std::string err;
  auto back = api::decode_inspect_request(api::encode_inspect_request(q), &err);
  ASSERT_TRUE(back) << err;
  EXPECT_EQ(*back, q);
  const auto bytes = api::encode_inspect_reply(sample_reply());
  auto r = api::decode_inspect_reply(bytes, &err);
  ASSERT_TRUE(r) << err;
  EXPECT_EQ(*r, sample_reply());
  for (size_t n = 0; n < bytes.size(); ++n) {
    const std::vector<uint8_t> prefix(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_FALSE(api::decode_inspect_reply(prefix, &err)) << n;
  }
  const auto qb = api::encode_inspect_request(q);
  for (size_t n = 0; n < qb.size(); ++n) {
    const std::vector<uint8_t> prefix(qb.begin(), qb.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_FALSE(api::decode_inspect_request(prefix, &err)) << n;
  }
}

TEST(InspectCodec, RefusesWhatNoOperatorCouldHaveAsked) {
  auto refused = [](api::InspectRequest q) {
    std::string err;
    return !api::decode_inspect_request(api::encode_inspect_request(q), &err) && !err.empty();
  };
  api::InspectRequest ok;
  EXPECT_FALSE(refused(ok));
  api::InspectRequest q = ok;
  q.op = static_cast<api::InspectOp>(0);
  EXPECT_TRUE(refused(q));
  q = ok;
  q.op = static_cast<api::InspectOp>(7);
  EXPECT_TRUE(refused(q));
  q = ok;
  q.filter.proto = 1;
  EXPECT_TRUE(refused(q));
  q = ok;
  q.limit = api::kMaxFlowPage + 1;
  EXPECT_TRUE(refused(q));
  q = ok;
  q.limit = 0;
  EXPECT_TRUE(refused(q));
  q = ok;
  q.op = api::InspectOp::kTraceStart;
  q.limit = 10;
  q.seconds = 0;
  EXPECT_TRUE(refused(q));
  q.seconds = api::kMaxTraceSeconds + 1;
  EXPECT_TRUE(refused(q));
  q.seconds = 1;
  q.limit = api::kMaxTracePackets + 1;
  EXPECT_TRUE(refused(q));
}

}  // namespace
}  // namespace rondo::dp
