// SYN cookies: the cookie itself (round trip, what rejects it, what it keeps), the sequence
// translation, and whole handshakes through the Pipeline on plain bytes: every frame the
// pipeline sends is compared with one built from scratch (all checksums computed in full).
// hz = 1000, so `now` is in milliseconds.
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


// ---- the cookie ----

TEST(SynCookie, RoundTripKeepsOptions) {
  const FlowKey k = key_of(ip4("198.51.100.2"), 40000, ip4("203.0.113.10"), 80);
  const SynOpts in{1460, 7, true};
  const uint32_t c = SynCookie::make(kKey, k, 123456789, 1000, in);
  SynOpts out;
  ASSERT_TRUE(SynCookie::check(kKey, k, 123456789, c, 1000, &out));
  EXPECT_EQ(out, in);
  // Accepted in the next slot too, and nowhere else.
  ASSERT_TRUE(SynCookie::check(kKey, k, 123456789, c, 1001, &out));
  EXPECT_FALSE(SynCookie::check(kKey, k, 123456789, c, 1002, &out));
  EXPECT_FALSE(SynCookie::check(kKey, k, 123456789, c, 999, &out));
}

TEST(SynCookie, OptionsRoundDownAndClamp) {
  const FlowKey k = key_of(ip4("198.51.100.2"), 40000, ip4("203.0.113.10"), 80);
  struct Case {
    SynOpts in, want;
  };
  const Case cases[] = {
      {{1460, SynOpts::kNoWscale, false}, {1460, SynOpts::kNoWscale, false}},
      {{1448, 0, true}, {1440, 0, true}},       // rounded down to the table
      {{9000, 14, false}, {8960, 14, false}},
      {{1219, 2, true}, {536, 2, true}},        // below the second entry: the minimum
      {{100, 15, false}, {536, 14, false}},     // scale above 14 is 14 (RFC 7323 2.3)
      {{536, 3, false}, {536, 3, false}},
  };
  for (const Case& c : cases) {
    const uint32_t ck = SynCookie::make(kKey, k, 1, 7, c.in);
    SynOpts out;
    ASSERT_TRUE(SynCookie::check(kKey, k, 1, ck, 7, &out));
    EXPECT_EQ(out, c.want) << c.in.mss << "/" << int(c.in.wscale);
  }
}

TEST(SynCookie, RejectsWrongKeyTupleIsnAndTampering) {
  const FlowKey k = key_of(ip4("198.51.100.2"), 40000, ip4("203.0.113.10"), 80);
  const uint32_t c = SynCookie::make(kKey, k, 555, 42, SynOpts{1460, 7, true});
  SynOpts out;
  ASSERT_TRUE(SynCookie::check(kKey, k, 555, c, 42, &out));
  HashKey other = kKey;
  other.k1 ^= 1;
  EXPECT_FALSE(SynCookie::check(other, k, 555, c, 42, &out));
  EXPECT_FALSE(SynCookie::check(kKey, k, 556, c, 42, &out));
  FlowKey k2 = k;
  k2.src_port = htons(40001);
  EXPECT_FALSE(SynCookie::check(kKey, k2, 555, c, 42, &out));
  k2 = k;
  k2.dst_ip = htonl(ip4("203.0.113.11"));
  EXPECT_FALSE(SynCookie::check(kKey, k2, 555, c, 42, &out));
  // Every single bit flipped: the option byte (a bigger MSS, SACK, scale) is covered by the
  // MAC, the slot bit points at a slot the MAC was not made in, the MAC bits are the MAC.
  for (int b = 0; b < 32; ++b)
    EXPECT_FALSE(SynCookie::check(kKey, k, 555, c ^ (1u << b), 42, &out)) << "bit " << b;
}

TEST(SynCookie, CookiesDifferAcrossTuplesAndSlots) {
  const FlowKey k = key_of(ip4("198.51.100.2"), 40000, ip4("203.0.113.10"), 80);
  const uint32_t a = SynCookie::make(kKey, k, 1, 1, SynOpts{});
  const uint32_t b = SynCookie::make(kKey, k, 1, 3, SynOpts{});
  const uint32_t c = SynCookie::make(kKey, k, 2, 1, SynOpts{});
  EXPECT_NE(a >> 9, b >> 9);
  EXPECT_NE(a >> 9, c >> 9);
}

// ---- sequence translation ----

TEST(SeqXlate, ShiftsSeqAckAndSackWithChecksum) {
  Pkt p;
  p.src_ip = ip4("10.0.0.1");
  p.dst_ip = ip4("10.0.0.2");
  p.sport = 1;
  p.dport = 2;
  p.tcp_flags = kTcpAck;
  p.seq = 0xfffffff0u;  // wraps
  p.ack = 100;
  // NOP NOP SACK(2 blocks)
  p.tcp_options = {1, 1, 5, 18, 0, 0, 0, 200, 0, 0, 1, 44, 0xff, 0xff, 0xff, 0xf0, 0, 0, 0, 5};
  p.payload = "xyz";
  Frame f = test::build(p);
  tcp_seq_shift(f.data() + 34, 40, 0x20, 1000);
  Pkt want = p;
  want.seq = 0x10;
  want.ack = 1100;
  want.tcp_options = {1, 1, 5, 18, 0, 0, 0x04, 0xb0, 0, 0, 0x05, 0x14, 0, 0, 0x03, 0xd8, 0, 0, 0x03, 0xed};
  EXPECT_EQ(f, test::build(want)) << test::hex(f);
  // Without ACK set, the ack field and SACK blocks are not the segment's to shift.
  p.tcp_flags = kTcpSyn;
  f = test::build(p);
  tcp_seq_shift(f.data() + 34, 40, 0, 1000);
  EXPECT_EQ(f, test::build(p));
  tcp_set_window(f.data() + 34, 1234);
  p.window = 1234;
  EXPECT_EQ(f, test::build(p));
}

// ---- through the pipeline ----

// What rondo puts in its SYNs: MSS, NOP WS, NOP NOP SACK-permitted.
std::vector<uint8_t> proxy_opts(uint16_t mss, uint8_t ws) {
  return {2, 4, static_cast<uint8_t>(mss >> 8), static_cast<uint8_t>(mss), 1, 3, 3, ws, 1, 1, 4, 2};
}


uint32_t rd32(const Frame& f, size_t off) {
  return uint32_t{f[off]} << 24 | uint32_t{f[off + 1]} << 16 | uint32_t{f[off + 2]} << 8 | f[off + 3];
}

class SynProxyTest : public ::testing::Test {
 protected:
  void start(api::SynCookies mode, uint32_t embryonic_on = 8192, uint32_t rate_on = 100000) {
    PipelineParams pp;
    pp.flow_capacity = 64;
    pp.lport_lo = kLportLo;
    pp.lport_hi = kLportHi;
    pp.hz = 1000;
    pp.port_macs = {kOurMac};
    pp.hash_key = kKey;
    pp.syncookie_embryonic_on = embryonic_on;
    pp.syncookie_syn_rate_on = rate_on;
    pl_ = std::make_unique<Pipeline>(pp);
    NeighManagerParams np;
    np.hz = 1000;
    np.port_macs = {kOurMac};
    nm_ = std::make_unique<NeighManager>(np);
    snap_ = build_snapshot(cookie_state(mode));
    pl_->on_snapshot(*snap_, 0);
    nm_->on_snapshot(*snap_, 0);
    map_ = nm_->next_hops_if_changed();
    ASSERT_TRUE(map_);
    pl_->set_next_hops(map_.get());
  }

  // One frame through the pipeline, in a buffer with the room the pipeline may use; the
  // frame is cut to the length the action gives.
  Action run(Frame& f, uint64_t now) {
    const auto n = static_cast<uint32_t>(f.size());
    if (f.size() < SynProxy::kMaxHandshakeFrame) f.resize(SynProxy::kMaxHandshakeFrame, 0xee);
    const Action a = pl_->process(snap_.get(), f.data(), n, 0, now);
    f.resize(a.len != 0 ? a.len : n);
    return a;
  }

  // Client SYN (Linux options) -> cookie SYN-ACK; returns the cookie.
  uint32_t syn(uint16_t cport, uint32_t isn, uint64_t now) {
    Pkt in = from_client(cport, kTcpSyn, isn, 0);
    in.tcp_options = kLinuxSynOpts;
    in.window = 64240;
    Frame f = test::build(in);
    const Action a = run(f, now);
    EXPECT_EQ(a.kind, Action::Kind::kTx) << drop_reason_name(a.reason);
    if (f.size() < 42) return 0;
    const uint32_t cookie = rd32(f, 38);
    Pkt want = made(true, cport, 0, kSynAck, cookie, isn + 1);
    want.tcp_options = proxy_opts(1460, 7);
    EXPECT_EQ(f, test::build(want)) << test::hex(f);
    return cookie;
  }

  std::unique_ptr<Pipeline> pl_;
  std::unique_ptr<NeighManager> nm_;
  std::unique_ptr<Snapshot> snap_;
  std::unique_ptr<NextHopMap> map_;
};

TEST_F(SynProxyTest, HandshakeAndTranslationByteForByte) {
  start(api::SynCookies::kOn);
  const uint16_t cport = 51000;
  const uint32_t isn = 0xfffffff0u;  // the client's numbers wrap during the test
  const uint32_t cookie = syn(cport, isn, 100);
  // The SYN kept nothing: no flow, so no local port either (a port is taken by the flow
  // that holds its tuple, and by nothing else).
  EXPECT_EQ(pl_->flows().size(), 0u);
  EXPECT_EQ(pl_->counters().flows_active, 0u);
  EXPECT_EQ(pl_->counters().syncookies_sent, 1u);

  // The client's ACK opens the flow: SYN to the backend with the cookie's options; its
  // payload is not carried.
  Pkt ack = from_client(cport, kTcpAck, isn + 1, cookie + 1);
  ack.window = 502;  // scaled by 2^7: 64256 bytes
  ack.payload = "early";
  Frame f = test::build(ack);
  Action a = run(f, 200);
  ASSERT_EQ(a.kind, Action::Kind::kTx) << drop_reason_name(a.reason);
  EXPECT_EQ(pl_->counters().syncookies_ok, 1u);
  EXPECT_EQ(pl_->flows().size(), 1u);
  ASSERT_GE(f.size(), 38u);
  const uint16_t lport = static_cast<uint16_t>(f[34] << 8 | f[35]);
  EXPECT_GE(lport, kLportLo);
  EXPECT_LE(lport, kLportHi);
  Pkt want = made(false, cport, lport, kTcpSyn, isn, 0);
  want.window = 64256;
  want.tcp_options = proxy_opts(1460, 7);
  EXPECT_EQ(f, test::build(want)) << test::hex(f);

  // The flow is half-open until the backend answers; client data is dropped meanwhile.
  {
    FlowKey k = key_of(kClient, cport, kVip, 80);
    const FlowTable::Hit h = pl_->flows().lookup(k, 200);
    ASSERT_TRUE(h.found());
    EXPECT_EQ(pl_->flows().at(h.idx).state, FlowState::kSynSent);
    EXPECT_EQ(pl_->flows().embryonic(), 1u);
    Pkt d = from_client(cport, kPshAck, isn + 1, cookie + 1);
    d.payload = "early";
    Frame g = test::build(d);
    EXPECT_EQ(run(g, 210).reason, DropReason::kTcpNoFlow);
  }

  // The backend's SYN-ACK is absorbed and answered with the ACK.
  const uint32_t bisn = 0x7ffffff0u;
  Pkt sa = from_backend(lport, kSynAck, bisn, isn + 1);
  sa.tcp_options = {2, 4, 0x05, 0xb4, 1, 3, 3, 9};  // the backend scales by 2^9
  sa.window = 29200;
  f = test::build(sa);
  a = run(f, 300);
  ASSERT_EQ(a.kind, Action::Kind::kTx) << drop_reason_name(a.reason);
  want = made(false, cport, lport, kTcpAck, isn + 1, bisn + 1);
  want.window = 502;  // the client's 64256 bytes in its own scale
  EXPECT_EQ(f, test::build(want)) << test::hex(f);
  {
    const FlowTable::Hit h = pl_->flows().lookup(key_of(kClient, cport, kVip, 80), 300);
    EXPECT_EQ(pl_->flows().at(h.idx).state, FlowState::kEstablished);
    EXPECT_EQ(pl_->flows().tcp(h.idx).seq_delta(), bisn - cookie);
  }

  // Client data: ack translated into the backend's space (window untouched: the backend
  // took the client's scale).
  Pkt c1 = from_client(cport, kPshAck, isn + 1, cookie + 1);
  c1.window = 502;
  c1.payload = "GET / HTTP/1.0\r\n\r\n";
  f = test::build(c1);
  a = run(f, 400);
  ASSERT_EQ(a.kind, Action::Kind::kTx) << drop_reason_name(a.reason);
  want = forwarded(c1, false, cport, lport);
  want.ack = bisn + 1;
  EXPECT_EQ(f, test::build(want)) << test::hex(f);

  // Backend data: sequence number into the client's space, window rescaled from 2^9 to the
  // 2^7 the client was told.
  Pkt b1 = from_backend(lport, kPshAck, bisn + 1, isn + 1 + 18);
  b1.window = 100;
  b1.payload = "HTTP/1.0 200 OK\r\n\r\n";
  f = test::build(b1);
  a = run(f, 500);
  ASSERT_EQ(a.kind, Action::Kind::kTx) << drop_reason_name(a.reason);
  want = forwarded(b1, true, cport, lport);
  want.seq = cookie + 1;
  want.window = 400;
  EXPECT_EQ(f, test::build(want)) << test::hex(f);

  // More backend data, then the client acknowledges the first and SACKs the second: ack and
  // SACK block go back into the backend's space.
  Pkt b2 = from_backend(lport, kPshAck, bisn + 1 + 19 + 100, isn + 1 + 18);
  b2.window = 100;
  b2.payload = std::string(50, 'x');
  f = test::build(b2);
  ASSERT_EQ(run(f, 510).kind, Action::Kind::kTx);
  EXPECT_EQ(rd32(f, 38), cookie + 1 + 19 + 100);

  Pkt c2 = from_client(cport, kTcpAck, isn + 1 + 18, cookie + 1 + 19);
  c2.window = 502;
  auto put = [](std::vector<uint8_t>& o, size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) o[at + i] = static_cast<uint8_t>(v >> (24 - 8 * i));
  };
  c2.tcp_options = {1, 1, 5, 10, 0, 0, 0, 0, 0, 0, 0, 0};
  put(c2.tcp_options, 4, cookie + 1 + 119);
  put(c2.tcp_options, 8, cookie + 1 + 169);
  f = test::build(c2);
  a = run(f, 520);
  ASSERT_EQ(a.kind, Action::Kind::kTx) << drop_reason_name(a.reason);
  want = forwarded(c2, false, cport, lport);
  want.ack = bisn + 1 + 19;
  put(want.tcp_options, 4, bisn + 1 + 119);
  put(want.tcp_options, 8, bisn + 1 + 169);
  EXPECT_EQ(f, test::build(want)) << test::hex(f);

  // The tracker works in the client's space: a backend RST at the wrong sequence number
  // (after translation) is out of the window and changes nothing.
  Pkt rst = from_backend(lport, kTcpRst | kTcpAck, bisn + 1 + 0x40000000u, isn + 19);
  f = test::build(rst);
  EXPECT_EQ(run(f, 530).reason, DropReason::kTcpOutOfWindow);
}

// A client that closes at once sends FIN on the handshake's ACK: the cookie still opens the
// flow, and the FIN goes on with the ACK that completes the backend's handshake.
TEST_F(SynProxyTest, CookieAckWithFinOpensTheFlow) {
  start(api::SynCookies::kOn);
  const uint16_t cport = 51500;
  const uint32_t isn = 777;
  const uint32_t cookie = syn(cport, isn, 100);
  Frame f = test::build(from_client(cport, kTcpAck | kTcpFin, isn + 1, cookie + 1));
  const Action a = run(f, 150);
  ASSERT_EQ(a.kind, Action::Kind::kTx) << drop_reason_name(a.reason);
  EXPECT_EQ(pl_->counters().syncookies_ok, 1u);
  EXPECT_EQ(pl_->flows().size(), 1u);
  EXPECT_EQ(f[14 + 20 + 13], kTcpSyn);  // what left is the SYN to the backend, FIN-less
  // The backend's SYN-ACK is answered with ACK+FIN: the client's FIN goes on at once.
  const uint16_t lport = static_cast<uint16_t>(f[34] << 8 | f[35]);
  Pkt sa = from_backend(lport, kTcpSyn | kTcpAck, 5000, isn + 1);
  Frame g = test::build(sa);
  const Action b = run(g, 151);
  ASSERT_EQ(b.kind, Action::Kind::kTx) << drop_reason_name(b.reason);
  EXPECT_EQ(g[14 + 20 + 13], kTcpAck | kTcpFin);
  EXPECT_EQ(pl_->flows().at(0).state, FlowState::kHalfClosed);
}

// Data and FIN on the cookie ACK (the ACK was lost and the client's next segment, a short
// request and its close, stands in for it): the data is not carried, so neither is the FIN.
// Sent at the ACK's sequence number it would make the backend acknowledge the request's
// first byte, which it never got. The client resends both.
TEST_F(SynProxyTest, FinBehindDataOnTheCookieAckWaitsForTheClient) {
  start(api::SynCookies::kOn);
  const uint16_t cport = 51600;
  const uint32_t isn = 4242;
  const uint32_t cookie = syn(cport, isn, 100);
  Pkt req = from_client(cport, kPshAck | kTcpFin, isn + 1, cookie + 1);
  req.window = 502;
  req.payload = "PING\r\n";
  Frame f = test::build(req);
  Action a = run(f, 150);
  ASSERT_EQ(a.kind, Action::Kind::kTx) << drop_reason_name(a.reason);
  EXPECT_EQ(pl_->counters().syncookies_ok, 1u);
  EXPECT_EQ(f[14 + 20 + 13], kTcpSyn);
  const uint16_t lport = static_cast<uint16_t>(f[34] << 8 | f[35]);
  const uint32_t bisn = 90000;
  Pkt sa = from_backend(lport, kSynAck, bisn, isn + 1);
  sa.tcp_options = {1, 3, 3, 7};
  Frame g = test::build(sa);
  a = run(g, 151);
  ASSERT_EQ(a.kind, Action::Kind::kTx) << drop_reason_name(a.reason);
  Pkt want = made(false, cport, lport, kTcpAck, isn + 1, bisn + 1);
  want.window = 502;
  EXPECT_EQ(g, test::build(want)) << test::hex(g);  // a plain ACK: no FIN at isn + 1
  const FlowTable::Hit h = pl_->flows().lookup(key_of(kClient, cport, kVip, 80), 151);
  ASSERT_TRUE(h.found());
  EXPECT_EQ(pl_->flows().at(h.idx).state, FlowState::kEstablished);
  // The client's retransmission, request and FIN, goes through translated.
  Frame r = test::build(req);
  a = run(r, 400);
  ASSERT_EQ(a.kind, Action::Kind::kTx) << drop_reason_name(a.reason);
  Pkt fwd = forwarded(req, false, cport, lport);
  fwd.ack = bisn + 1;
  EXPECT_EQ(r, test::build(fwd)) << test::hex(r);
  EXPECT_EQ(pl_->flows().at(h.idx).state, FlowState::kHalfClosed);
}

TEST_F(SynProxyTest, BadCookieIsDropped) {
  start(api::SynCookies::kOn);
  const uint32_t cookie = syn(52000, 1000, 100);
  for (uint32_t bad : {cookie ^ 0x80000000u, cookie ^ 0x100u, cookie + 1}) {
    Frame f = test::build(from_client(52000, kTcpAck, 1001, bad + 1));
    EXPECT_EQ(run(f, 200).reason, DropReason::kSynCookieInvalid);
  }
  // The right cookie from another client port, or after two slots, is no cookie either.
  Frame f = test::build(from_client(52001, kTcpAck, 1001, cookie + 1));
  EXPECT_EQ(run(f, 200).reason, DropReason::kSynCookieInvalid);
  f = test::build(from_client(52000, kTcpAck, 1001, cookie + 1));
  EXPECT_EQ(run(f, 100 + 2 * 64000).reason, DropReason::kSynCookieInvalid);
  EXPECT_EQ(pl_->counters().drops[static_cast<uint32_t>(DropReason::kSynCookieInvalid)], 5u);
  EXPECT_EQ(pl_->flows().size(), 0u);
  // Within the next slot it still opens the flow.
  f = test::build(from_client(52000, kTcpAck, 1001, cookie + 1));
  EXPECT_EQ(run(f, 64000 + 50).kind, Action::Kind::kTx);
  EXPECT_EQ(pl_->flows().size(), 1u);
}

TEST_F(SynProxyTest, BackendRefusalReachesTheClientAtItsSequenceNumber) {
  start(api::SynCookies::kOn);
  const uint32_t cookie = syn(53000, 5000, 100);
  Frame f = test::build(from_client(53000, kTcpAck, 5001, cookie + 1));
  ASSERT_EQ(run(f, 200).kind, Action::Kind::kTx);
  const uint16_t lport = static_cast<uint16_t>(f[34] << 8 | f[35]);
  Pkt rst = from_backend(lport, kTcpRst | kTcpAck, 0, 5001);
  f = test::build(rst);
  ASSERT_EQ(run(f, 300).kind, Action::Kind::kTx);
  Pkt want = forwarded(rst, true, 53000, lport);
  want.seq = cookie + 1;
  EXPECT_EQ(f, test::build(want)) << test::hex(f);
}

TEST_F(SynProxyTest, UnansweredBackendLeavesNoQuarantinedTuple) {
  start(api::SynCookies::kOn);
  const uint32_t cookie = syn(53500, 9000, 100);
  Frame f = test::build(from_client(53500, kTcpAck, 9001, cookie + 1));
  ASSERT_EQ(run(f, 200).kind, Action::Kind::kTx);
  EXPECT_EQ(pl_->flows().size(), 1u);
  // The backend never answers: the flow expires as half-open, and since the backend never
  // had a connection its tuple is not quarantined.
  pl_->tick(snap_.get(), 200 + kSynMs + 1, 64);
  EXPECT_EQ(pl_->flows().size(), 0u);
  EXPECT_EQ(pl_->counters().quarantined_tuples, 0u);
}

TEST_F(SynProxyTest, ClientWithoutOptionsGetsMssOnly) {
  start(api::SynCookies::kOn);
  Pkt in = from_client(54000, kTcpSyn, 77, 0);  // no options: the frame grows
  Frame f = test::build(in);
  ASSERT_EQ(run(f, 100).kind, Action::Kind::kTx);
  Pkt want = made(true, 54000, 0, kSynAck, rd32(f, 38), 78);
  want.tcp_options = {2, 4, 0x05, 0xb4};
  EXPECT_EQ(f, test::build(want)) << test::hex(f);
  const uint32_t cookie = rd32(f, 38);
  f = test::build(from_client(54000, kTcpAck, 78, cookie + 1));
  ASSERT_EQ(run(f, 200).kind, Action::Kind::kTx);
  const uint16_t lport = static_cast<uint16_t>(f[34] << 8 | f[35]);
  want = made(false, 54000, lport, kTcpSyn, 77, 0);
  want.tcp_options = {2, 4, 0x02, 0x18};  // 536: the default MSS
  EXPECT_EQ(f, test::build(want)) << test::hex(f);
}

TEST_F(SynProxyTest, OffVipForwardsSynsAndDropsStrayAcksAsBefore) {
  start(api::SynCookies::kOff);
  Frame f = test::build(from_client(55000, kTcpAck, 1, 1));
  EXPECT_EQ(run(f, 100).reason, DropReason::kTcpNoFlow);
  f = test::build(from_client(55000, kTcpSyn, 1, 0));
  ASSERT_EQ(run(f, 100).kind, Action::Kind::kTx);
  EXPECT_EQ(pl_->flows().size(), 1u);
  EXPECT_EQ(pl_->counters().syncookies_sent, 0u);
}

TEST_F(SynProxyTest, AutoGoesOnUnderAFloodAndOffAfter) {
  start(api::SynCookies::kAuto, /*embryonic_on=*/4, /*rate_on=*/1000);
  // Stray ACKs are tcp_no_flow while no cookie was sent.
  Frame f = test::build(from_client(56000, kTcpAck, 1, 1));
  EXPECT_EQ(run(f, 10).reason, DropReason::kTcpNoFlow);
  // A flood of SYNs no backend answers: four half-open flows, then cookies.
  for (uint16_t i = 0; i < 4; ++i) {
    f = test::build(from_client(static_cast<uint16_t>(56000 + i), kTcpSyn, 1, 0));
    ASSERT_EQ(run(f, 20).kind, Action::Kind::kTx);
  }
  EXPECT_EQ(pl_->flows().embryonic(), 4u);
  EXPECT_EQ(pl_->counters().syncookies_active, 0u);
  for (uint16_t i = 4; i < 40; ++i) {
    f = test::build(from_client(static_cast<uint16_t>(56000 + i), kTcpSyn, 1, 0));
    ASSERT_EQ(run(f, 30).kind, Action::Kind::kTx);
    EXPECT_EQ(f[47], kSynAck);  // answered by rondo
  }
  EXPECT_EQ(pl_->counters().syncookies_sent, 36u);
  EXPECT_EQ(pl_->counters().syncookies_active, 1u);
  EXPECT_EQ(pl_->flows().size(), 4u);
  // Now a stray ACK is checked as a cookie.
  f = test::build(from_client(56100, kTcpAck, 1, 1));
  EXPECT_EQ(run(f, 40).reason, DropReason::kSynCookieInvalid);
  // The half-open flows expire; cookies stay on for the hold time, then go off.
  for (uint64_t t = 1000; t <= 9000; t += 1000) {
    pl_->tick(snap_.get(), t + kSynMs, 64);
    EXPECT_EQ(pl_->counters().syncookies_active, 1u) << t;
  }
  EXPECT_EQ(pl_->flows().embryonic(), 0u);
  pl_->tick(snap_.get(), 10500, 64);
  pl_->tick(snap_.get(), 11600, 64);
  EXPECT_EQ(pl_->counters().syncookies_active, 0u);
  f = test::build(from_client(57000, kTcpSyn, 1, 0));
  ASSERT_EQ(run(f, 11700).kind, Action::Kind::kTx);
  EXPECT_EQ(f[47], kTcpSyn);  // forwarded to the backend again
  EXPECT_EQ(pl_->flows().size(), 1u);
}

// syncookies_active: 1 while some VIP answers SYNs with cookies. An `on` VIP always does;
// the `auto` switch counts only when a VIP follows it.
TEST_F(SynProxyTest, ActiveGaugeSaysWhetherAnyVipAnswersWithCookies) {
  start(api::SynCookies::kOn);
  pl_->tick(snap_.get(), 10, 64);
  EXPECT_EQ(pl_->counters().syncookies_active, 1u);

  start(api::SynCookies::kOff, /*embryonic_on=*/2, /*rate_on=*/1000);
  for (uint16_t i = 0; i < 4; ++i) {
    Frame f = test::build(from_client(static_cast<uint16_t>(59000 + i), kTcpSyn, 1, 0));
    ASSERT_EQ(run(f, 20).kind, Action::Kind::kTx);
  }
  pl_->tick(snap_.get(), 1500, 0);  // the switch sees 4 half-open flows: on, for no VIP
  EXPECT_EQ(pl_->counters().syncookies_active, 0u);
  EXPECT_EQ(pl_->counters().syncookies_sent, 0u);

  // The same set-up with the VIP on `auto`: the switch is what the gauge shows.
  snap_ = build_snapshot(cookie_state(api::SynCookies::kAuto));
  pl_->on_snapshot(*snap_, 1600);
  pl_->tick(snap_.get(), 1600, 0);
  EXPECT_EQ(pl_->counters().syncookies_active, 1u);
}

TEST_F(SynProxyTest, AutoGoesOnAtTheSynRate) {
  start(api::SynCookies::kAuto, /*embryonic_on=*/1000000, /*rate_on=*/8);
  Frame f;
  uint32_t cookies = 0;
  for (uint16_t i = 0; i < 10; ++i) {
    f = test::build(from_client(static_cast<uint16_t>(58000 + i), kTcpSyn, 1, 0));
    ASSERT_EQ(run(f, 100 + i).kind, Action::Kind::kTx);
    cookies += f[47] == kSynAck;
  }
  // Flows for the first seven; the eighth SYN in the second reaches the rate.
  EXPECT_EQ(cookies, 3u);
  EXPECT_EQ(pl_->flows().size(), 7u);
}

}  // namespace
}  // namespace rondo::dp
