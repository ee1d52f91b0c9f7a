// PROXY protocol v2 (fwd/proxy_v2.h): the header's bytes, the translation both ways, the
// resend decision, and whole connections through the Pipeline on plain bytes (hz = 1000: `now`
// is in milliseconds). Frames are compared with ones built from scratch (full checksums).
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "dataplane/fwd/pipeline.h"
#include "dataplane/fwd/seq_xlate.h"
#include "dataplane/fwd/syncookie.h"
#include "dataplane/fwd/synproxy.h"
#include "dataplane/neigh/manager.h"
#include "dataplane/pkt/csum.h"
#include "tests/common/handshake.h"
#include "tests/common/packet_builder.h"

namespace rondo::dp {
namespace {

using test::Frame;
using test::Mac;
using test::Pkt;
using test::ip4;

using namespace handshake;

// ---- the header and the translation ----

TEST(ProxyV2, HeaderBytesPerSpec) {
  // proxy-protocol.txt 2.2: signature, 0x21 (v2, PROXY), 0x11 (TCP over IPv4), length 12,
  // source address, destination address, source port, destination port.
  uint8_t h[ProxyV2::kLen];
  ProxyV2::write(h, htonl(ip4("198.51.100.2")), htonl(ip4("203.0.113.10")), htons(51000), htons(80));
  const uint8_t want[] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49,
                          0x54, 0x0a, 0x21, 0x11, 0x00, 0x0c, 198,  51,   100,  2,
                          203,  0,    113,  10,   0xc7, 0x38, 0x00, 0x50};
  static_assert(sizeof(want) == ProxyV2::kLen);
  EXPECT_EQ(std::vector<uint8_t>(h, h + sizeof h), std::vector<uint8_t>(want, want + sizeof want));
}

TEST(ProxyV2, AckToClientClampsInsideTheHeader) {
  const uint32_t s = 0xfffffff0u;  // wraps
  EXPECT_EQ(ProxyV2::ack_to_client(s, s), s);            // the SYN-ACK's
  EXPECT_EQ(ProxyV2::ack_to_client(s - 5, s), s - 5);
  EXPECT_EQ(ProxyV2::ack_to_client(s + 1, s), s);        // part of the header
  EXPECT_EQ(ProxyV2::ack_to_client(s + 27, s), s);
  EXPECT_EQ(ProxyV2::ack_to_client(s + 28, s), s);       // the header, all of it
  EXPECT_EQ(ProxyV2::ack_to_client(s + 128, s), s + 100);
}

TEST(ProxyV2, TranslatesBothWaysWithSackAndChecksums) {
  auto put = [](std::vector<uint8_t>& o, size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) o[at + i] = static_cast<uint8_t>(v >> (24 - 8 * i));
  };
  const uint32_t hs = 1000;
  // Client -> backend: seq + 28; ack untouched. A SYN is not shifted.
  Pkt c = from_client(51000, kPshAck, hs + 10, 555);
  c.payload = "abc";
  Frame f = test::build(c);
  ProxyV2::to_backend(f.data() + 34);
  Pkt want = c;
  want.seq = hs + 38;
  EXPECT_EQ(f, test::build(want)) << test::hex(f);
  Pkt syn = from_client(51000, kTcpSyn, hs - 1, 0);
  f = test::build(syn);
  ProxyV2::to_backend(f.data() + 34);
  EXPECT_EQ(f, test::build(syn));
  // Backend -> client: ack and SACK edges - 28; the ack that covers the header marks it.
  ProxyHdr h;
  h.seq = hs;
  h.phase = ProxyHdr::kSent;
  Pkt b = from_backend(40000, kTcpAck, 7, hs + 28 + 10);
  b.tcp_options = {1, 1, 5, 10, 0, 0, 0, 0, 0, 0, 0, 0};
  put(b.tcp_options, 4, hs + 28 + 20);
  put(b.tcp_options, 8, hs + 28 + 30);
  f = test::build(b);
  ProxyV2::to_client(f.data() + 34, h);
  want = b;
  want.ack = hs + 10;
  put(want.tcp_options, 4, hs + 20);
  put(want.tcp_options, 8, hs + 30);
  EXPECT_EQ(f, test::build(want)) << test::hex(f);
  EXPECT_EQ(h.phase, ProxyHdr::kAcked);
  // Before the header arrives (a banner acknowledging the SYN only): ack as sent, SACK of the
  // client's data - 28, not acked.
  h.phase = ProxyHdr::kSent;
  b.ack = hs;
  f = test::build(b);
  ProxyV2::to_client(f.data() + 34, h);
  want.ack = hs;
  EXPECT_EQ(f, test::build(want)) << test::hex(f);
  EXPECT_EQ(h.phase, ProxyHdr::kSent);
}

TEST(ProxyV2, ResendDecision) {
  ProxyHdr h;
  h.phase = ProxyHdr::kSent;
  h.tries = 1;
  h.sent_ms = 0xffffff00u;  // the clock wraps
  EXPECT_EQ(ProxyV2::resend_due(h, h.sent_ms + 199), ProxyV2::Resend::kWait);
  EXPECT_EQ(ProxyV2::resend_due(h, h.sent_ms + 200), ProxyV2::Resend::kResend);
  h.tries = 3;  // 800 ms after the third send
  EXPECT_EQ(ProxyV2::resend_due(h, h.sent_ms + 799), ProxyV2::Resend::kWait);
  EXPECT_EQ(ProxyV2::resend_due(h, h.sent_ms + 800), ProxyV2::Resend::kResend);
  h.tries = ProxyV2::kMaxTries;
  EXPECT_EQ(ProxyV2::resend_due(h, h.sent_ms + 3199), ProxyV2::Resend::kWait);
  EXPECT_EQ(ProxyV2::resend_due(h, h.sent_ms + 3200), ProxyV2::Resend::kGiveUp);
  h.phase = ProxyHdr::kAcked;
  EXPECT_EQ(ProxyV2::resend_due(h, h.sent_ms + 100000), ProxyV2::Resend::kWait);
}

// ---- through the pipeline ----

class ProxyV2Pipeline : public ::testing::Test {
 protected:
  void SetUp() override {
    PipelineParams pp;
    pp.flow_capacity = 64;
    pp.lport_lo = kLportLo;
    pp.lport_hi = kLportHi;
    pp.hz = 1000;
    pp.port_macs = {kOurMac};
    pp.hash_key = kKey;
    pl_ = std::make_unique<Pipeline>(pp);
    NeighManagerParams np;
    np.hz = 1000;
    np.port_macs = {kOurMac};
    nm_ = std::make_unique<NeighManager>(np);
    api::State st = cookie_state(api::SynCookies::kOff);
    st.vips[0].proxy_protocol = api::ProxyProtocol::kV2;
    snap_ = build_snapshot(st);
    pl_->on_snapshot(*snap_, 0);
    nm_->on_snapshot(*snap_, 0);
    map_ = nm_->next_hops_if_changed();
    ASSERT_TRUE(map_);
    pl_->set_next_hops(map_.get());
  }
  Action run(Frame& f, uint64_t now) {
    return pl_->process(snap_.get(), f.data(), static_cast<uint32_t>(f.size()), 0, now);
  }
  // The header segment rondo sends: local ip:port -> backend, seq isn+1, 28 bytes.
  Frame header_segment(uint16_t cport, uint16_t lport, uint32_t seq, uint32_t ack, uint16_t win) {
    Pkt p = made(false, cport, lport, kPshAck, seq, ack);
    p.window = win;
    uint8_t h[ProxyV2::kLen];
    ProxyV2::write(h, htonl(kClient), htonl(kVip), htons(cport), htons(80));
    p.payload.assign(reinterpret_cast<const char*>(h), sizeof h);
    return test::build(p);
  }
  Frame outbox(uint32_t i) {
    EXPECT_LT(i, pl_->outbox_size());
    const OutFrame& o = pl_->outbox()[i];
    return Frame(o.frame(), o.frame() + o.len);
  }
  std::unique_ptr<Pipeline> pl_;
  std::unique_ptr<NeighManager> nm_;
  std::unique_ptr<Snapshot> snap_;
  std::unique_ptr<NextHopMap> map_;
};

TEST_F(ProxyV2Pipeline, HeaderAfterHandshakeThenShiftedBothWays) {
  const uint16_t cport = 51000;
  const uint32_t isn = 0xfffffff0u, bisn = 0x7ffffff0u;
  Pkt syn = from_client(cport, kTcpSyn, isn, 0);
  syn.tcp_options = kLinuxSynOpts;
  Frame f = test::build(syn);
  ASSERT_EQ(run(f, 100).kind, Action::Kind::kTx);
  const uint16_t lport = static_cast<uint16_t>(f[34] << 8 | f[35]);
  EXPECT_EQ(f, test::build(forwarded(syn, false, cport, lport)));  // the SYN as it was
  // The backend's SYN-ACK reaches the client unchanged (its ack is isn+1); nothing is sent
  // to the backend yet: the client has not proven its address.
  Pkt sa = from_backend(lport, kSynAck, bisn, isn + 1);
  sa.tcp_options = {2, 4, 0x05, 0xb4, 1, 3, 3, 7};
  f = test::build(sa);
  ASSERT_EQ(run(f, 110).kind, Action::Kind::kTx);
  EXPECT_EQ(f, test::build(forwarded(sa, true, cport, lport)));
  EXPECT_EQ(pl_->outbox_size(), 0u);
  // The client's ACK: replaced by the header segment at seq isn+1, with its ack and window.
  Pkt ack = from_client(cport, kTcpAck, isn + 1, bisn + 1);
  ack.window = 502;
  f = test::build(ack);
  const uint64_t originated = pl_->counters().originated;
  EXPECT_EQ(run(f, 120).kind, Action::Kind::kConsumed);
  ASSERT_EQ(pl_->outbox_size(), 1u);
  EXPECT_EQ(outbox(0), header_segment(cport, lport, isn + 1, bisn + 1, 502)) << test::hex(outbox(0));
  EXPECT_EQ(pl_->outbox()[0].port, 0);
  EXPECT_EQ(pl_->counters().originated, originated + 1);
  pl_->clear_outbox();
  // A server that speaks first: its banner acknowledges the header; the client sees isn+1.
  Pkt banner = from_backend(lport, kPshAck, bisn + 1, isn + 1 + ProxyV2::kLen);
  banner.payload = "220 smtp ready\r\n";
  f = test::build(banner);
  ASSERT_EQ(run(f, 130).kind, Action::Kind::kTx);
  Pkt want = forwarded(banner, true, cport, lport);
  want.ack = isn + 1;
  EXPECT_EQ(f, test::build(want)) << test::hex(f);
  // Client data: seq + 28 at the backend.
  Pkt data = from_client(cport, kPshAck, isn + 1, bisn + 1 + 16);
  data.payload = "EHLO x\r\n";
  f = test::build(data);
  ASSERT_EQ(run(f, 140).kind, Action::Kind::kTx);
  want = forwarded(data, false, cport, lport);
  want.seq = isn + 1 + ProxyV2::kLen;
  EXPECT_EQ(f, test::build(want)) << test::hex(f);
  EXPECT_EQ(pl_->outbox_size(), 0u);  // acknowledged: nothing resent
  // The backend's ack of it: - 28.
  Pkt bak = from_backend(lport, kTcpAck, bisn + 17, isn + 1 + ProxyV2::kLen + 8);
  f = test::build(bak);
  ASSERT_EQ(run(f, 150).kind, Action::Kind::kTx);
  want = forwarded(bak, true, cport, lport);
  want.ack = isn + 1 + 8;
  EXPECT_EQ(f, test::build(want)) << test::hex(f);
}

TEST_F(ProxyV2Pipeline, LostHeaderIsResentThenTheFlowIsReset) {
  const uint16_t cport = 51001;
  const uint32_t isn = 5000, bisn = 9000;
  Frame f = test::build(from_client(cport, kTcpSyn, isn, 0));
  ASSERT_EQ(run(f, 100).kind, Action::Kind::kTx);
  const uint16_t lport = static_cast<uint16_t>(f[34] << 8 | f[35]);
  f = test::build(from_backend(lport, kSynAck, bisn, isn + 1));
  ASSERT_EQ(run(f, 110).kind, Action::Kind::kTx);
  Pkt ack = from_client(cport, kTcpAck, isn + 1, bisn + 1);
  f = test::build(ack);
  EXPECT_EQ(run(f, 120).kind, Action::Kind::kConsumed);
  const Frame first = outbox(0);
  pl_->clear_outbox();
  // Client data before the RTO: forwarded (shifted), no resend yet.
  Pkt data = from_client(cport, kPshAck, isn + 1, bisn + 1);
  data.payload = "hi";
  f = test::build(data);
  ASSERT_EQ(run(f, 200).kind, Action::Kind::kTx);
  EXPECT_EQ(pl_->outbox_size(), 0u);
  // After 200 ms the client's next segment brings the same header segment again.
  f = test::build(data);
  ASSERT_EQ(run(f, 320).kind, Action::Kind::kTx);
  ASSERT_EQ(pl_->outbox_size(), 1u);
  EXPECT_EQ(outbox(0), first);
  pl_->clear_outbox();
  // The timer finds it too (400 ms later), without client traffic.
  pl_->tick(snap_.get(), 719);
  EXPECT_EQ(pl_->outbox_size(), 0u);
  pl_->tick(snap_.get(), 720);
  ASSERT_EQ(pl_->outbox_size(), 1u);
  EXPECT_EQ(outbox(0), first);
  pl_->clear_outbox();
  pl_->tick(snap_.get(), 720 + 800);
  pl_->clear_outbox();
  pl_->tick(snap_.get(), 1520 + 1600);  // the fifth send
  pl_->clear_outbox();
  // 3.2 s after the last try: the flow is reset both ways and counted.
  const uint64_t lost = pl_->counters().drops[static_cast<size_t>(DropReason::kProxyHeaderLost)];
  pl_->tick(snap_.get(), 3120 + 3200);
  EXPECT_EQ(pl_->counters().drops[static_cast<size_t>(DropReason::kProxyHeaderLost)], lost + 1);
  ASSERT_EQ(pl_->outbox_size(), 2u);
  Pkt rb = made(false, cport, lport, kTcpRst | kTcpAck, isn + 1, bisn + 1);
  rb.window = 0;
  EXPECT_EQ(outbox(0), test::build(rb)) << test::hex(outbox(0));
  Pkt rc = made(true, cport, lport, kTcpRst | kTcpAck, bisn + 1, isn + 1 + 2);
  rc.window = 0;
  EXPECT_EQ(outbox(1), test::build(rc)) << test::hex(outbox(1));
  const FlowTable::Hit h = pl_->flows().lookup(key_of(kClient, cport, kVip, 80), 6400);
  ASSERT_TRUE(h.found());
  EXPECT_EQ(pl_->flows().at(h.idx).state, FlowState::kReset);
}

}  // namespace
}  // namespace rondo::dp
