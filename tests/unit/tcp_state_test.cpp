// The TCP tracker on its own (flow/tcp_state.h): states, the window check, option parsing.
// Segments are built as TcpSegment values; the pipeline tests drive the same code with frames.
#include "dataplane/flow/tcp_state.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace rondo::dp {
namespace {

constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kPsh = 0x08, kAck = 0x10;

TcpSegment seg(uint8_t flags, uint32_t seq, uint32_t ack, uint16_t win, uint32_t len = 0,
               uint8_t wscale = TcpSegment::kNoWscale) {
  TcpSegment s;
  s.flags = flags;
  s.seq = seq;
  s.ack = ack;
  s.win = win;
  s.len = len;
  s.wscale = wscale;
  return s;
}

// A connection as both endpoints see it: their next sequence numbers, and what the tracker
// said. send() builds each segment the way a real stack would (seq = next, ack = peer's next).
class Conn {
 public:
  Conn(uint32_t c_isn, uint32_t b_isn, uint8_t c_ws = TcpSegment::kNoWscale,
       uint8_t b_ws = TcpSegment::kNoWscale)
      : c_next_(c_isn + 1), b_next_(b_isn + 1) {
    tcp_track_syn(t_, seg(kSyn, c_isn, 0, 65535, 0, c_ws));
    EXPECT_EQ(tcp_track(t_, &state_, FlowDir::kReverse, seg(kSyn | kAck, b_isn, c_next_, 65535, 0, b_ws)),
              TcpVerdict::kOk);
    EXPECT_EQ(state_, FlowState::kSynRecv);
    EXPECT_EQ(client(kAck), TcpVerdict::kOk);
    EXPECT_EQ(state_, FlowState::kEstablished);
  }
  TcpVerdict client(uint8_t flags, uint32_t len = 0, uint16_t win = 65535) {
    return send(FlowDir::kForward, flags, len, win);
  }
  TcpVerdict backend(uint8_t flags, uint32_t len = 0, uint16_t win = 65535) {
    return send(FlowDir::kReverse, flags, len, win);
  }
  // A segment with explicit numbers, which moves nobody's next sequence number.
  TcpVerdict raw(FlowDir d, const TcpSegment& s) { return tcp_track(t_, &state_, d, s); }

  FlowState state() const { return state_; }
  uint32_t c_next() const { return c_next_; }
  uint32_t b_next() const { return b_next_; }
  const TcpTrack& track() const { return t_; }

 private:
  TcpVerdict send(FlowDir d, uint8_t flags, uint32_t len, uint16_t win) {
    uint32_t& mine = d == FlowDir::kForward ? c_next_ : b_next_;
    const uint32_t theirs = d == FlowDir::kForward ? b_next_ : c_next_;
    const TcpVerdict v = tcp_track(t_, &state_, d, seg(flags, mine, theirs, win, len));
    mine += len + ((flags & kFin) ? 1 : 0);
    return v;
  }
  TcpTrack t_;
  FlowState state_ = FlowState::kSynSent;
  uint32_t c_next_, b_next_;
};

TEST(TcpState, HandshakeDataAndOrderlyClose) {
  Conn c(1000, 5000);
  EXPECT_EQ(c.client(kPsh | kAck, 100), TcpVerdict::kOk);
  EXPECT_EQ(c.backend(kPsh | kAck, 1000), TcpVerdict::kOk);
  EXPECT_EQ(c.client(kAck), TcpVerdict::kOk);
  EXPECT_EQ(c.client(kFin | kAck), TcpVerdict::kOk);
  EXPECT_EQ(c.state(), FlowState::kHalfClosed);
  // Half-closed: the backend goes on sending, the client acknowledging.
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(c.backend(kPsh | kAck, 1448), TcpVerdict::kOk);
    EXPECT_EQ(c.client(kAck), TcpVerdict::kOk);
  }
  EXPECT_EQ(c.state(), FlowState::kHalfClosed);
  EXPECT_EQ(c.backend(kFin | kAck), TcpVerdict::kOk);
  EXPECT_EQ(c.state(), FlowState::kClosing);  // the backend's FIN is not acknowledged yet
  EXPECT_EQ(c.client(kAck), TcpVerdict::kOk);
  EXPECT_EQ(c.state(), FlowState::kTimeWait);
  // A retransmitted FIN in time-wait is still the connection's.
  EXPECT_EQ(c.raw(FlowDir::kReverse, seg(kFin | kAck, c.b_next() - 1, c.c_next(), 65535)),
            TcpVerdict::kOk);
  EXPECT_EQ(c.state(), FlowState::kTimeWait);
}

TEST(TcpState, FinsCrossingStillReachTimeWait) {
  Conn c(1, 2);
  EXPECT_EQ(c.client(kFin | kAck), TcpVerdict::kOk);
  // The backend's FIN left before the client's arrived: it acknowledges only up to the
  // client's FIN... and the tracker saw the client's FIN first, so its ack covers it.
  EXPECT_EQ(c.backend(kFin | kAck), TcpVerdict::kOk);
  EXPECT_EQ(c.state(), FlowState::kClosing);
  EXPECT_EQ(c.client(kAck), TcpVerdict::kOk);
  EXPECT_EQ(c.state(), FlowState::kTimeWait);
}

TEST(TcpState, OutOfWindowRstIsDroppedAndChangesNothing) {
  Conn c(1000, 5000);
  const TcpTrack before = c.track();
  // Blind RSTs: far ahead, far behind, and just past the right edge.
  for (uint32_t seq : {c.c_next() + 0x40000000u, c.c_next() - 0x40000000u, c.c_next() + 65535u + 1}) {
    EXPECT_EQ(c.raw(FlowDir::kForward, seg(kRst, seq, 0, 0)), TcpVerdict::kDrop) << seq;
    EXPECT_EQ(c.raw(FlowDir::kReverse, seg(kRst, c.b_next() + (seq - c.c_next()), 0, 0)), TcpVerdict::kDrop);
  }
  EXPECT_EQ(c.state(), FlowState::kEstablished);
  EXPECT_EQ(std::memcmp(&before, &c.track(), sizeof before), 0);
}

TEST(TcpState, InWindowRstPassesAndOnlyTheExactOneResets) {
  Conn c(1000, 5000);
  EXPECT_EQ(c.raw(FlowDir::kForward, seg(kRst, c.c_next() + 10, 0, 0)), TcpVerdict::kPass);
  EXPECT_EQ(c.state(), FlowState::kEstablished);
  EXPECT_EQ(c.raw(FlowDir::kReverse, seg(kRst | kAck, c.b_next() + 1, c.c_next(), 0)), TcpVerdict::kPass);
  EXPECT_EQ(c.state(), FlowState::kEstablished);
  EXPECT_EQ(c.raw(FlowDir::kReverse, seg(kRst | kAck, c.b_next(), c.c_next(), 0)), TcpVerdict::kOk);
  EXPECT_EQ(c.state(), FlowState::kReset);
  EXPECT_TRUE(tcp_syn_reopens(c.track(), c.state()));
}

TEST(TcpState, OutOfWindowFinIsDroppedOutOfWindowDataPasses) {
  Conn c(0xfffffff0u, 0x7ffffff0u);  // both sequence spaces wrap during the test
  EXPECT_EQ(c.raw(FlowDir::kForward, seg(kFin | kAck, c.c_next() + 0x10000000u, c.b_next(), 65535)),
            TcpVerdict::kDrop);
  EXPECT_EQ(c.raw(FlowDir::kReverse, seg(kFin | kAck, c.b_next(), c.c_next() + 5000, 65535)),
            TcpVerdict::kDrop);  // acknowledges bytes the client never sent
  EXPECT_EQ(c.state(), FlowState::kEstablished);
  EXPECT_EQ(c.raw(FlowDir::kForward, seg(kPsh | kAck, c.c_next() + 0x10000000u, c.b_next(), 65535, 10)),
            TcpVerdict::kPass);
  for (int i = 0; i < 40; ++i) EXPECT_EQ(c.client(kPsh | kAck, 1000), TcpVerdict::kOk) << i;
  EXPECT_EQ(c.backend(kAck), TcpVerdict::kOk);
  EXPECT_EQ(c.client(kFin | kAck), TcpVerdict::kOk);
  EXPECT_EQ(c.state(), FlowState::kHalfClosed);
}

// Window scaling: with both SYNs offering it, a receiver advertising 1024 << 7 lets the
// sender have 128 KiB in flight. Without it, the same segments run past the right edge.
TEST(TcpState, WindowScalingIsHonoured) {
  for (bool scaled : {true, false}) {
    const uint8_t ws = scaled ? 7 : TcpSegment::kNoWscale;
    Conn c(1, 1, ws, ws);
    EXPECT_EQ(c.client(kAck, 0, 1024), TcpVerdict::kOk);  // 1024 << 7 = 128 KiB when scaled
    uint32_t ok = 0;
    for (int i = 0; i < 80; ++i) ok += c.backend(kPsh | kAck, 1448, 1024) == TcpVerdict::kOk;
    // 80 * 1448 = 115,840 bytes unacknowledged: inside 128 KiB, far outside 1024 bytes.
    if (scaled) EXPECT_EQ(ok, 80u);
    else EXPECT_LT(ok, 80u);
    // A FIN at the end of that is judged by the same window.
    EXPECT_EQ(c.backend(kFin | kAck, 0, 1024), scaled ? TcpVerdict::kOk : TcpVerdict::kDrop);
  }
}

TEST(TcpState, OnlyOneSideOfferingScalingMeansNoScaling) {
  Conn c(1, 1, 7, TcpSegment::kNoWscale);
  EXPECT_EQ(c.track().dir[0].scale, 0);
  EXPECT_EQ(c.track().dir[1].scale, 0);
}

TEST(TcpState, BackendMayOnlyAcceptOrRefuseTheSyn) {
  TcpTrack t;
  tcp_track_syn(t, seg(kSyn, 100, 0, 65535));
  FlowState st = FlowState::kSynSent;
  EXPECT_EQ(tcp_track(t, &st, FlowDir::kReverse, seg(kAck, 9, 101, 65535)), TcpVerdict::kDrop);
  EXPECT_EQ(tcp_track(t, &st, FlowDir::kReverse, seg(kSyn | kAck, 9, 555, 65535)), TcpVerdict::kDrop);
  EXPECT_EQ(tcp_track(t, &st, FlowDir::kReverse, seg(kRst | kAck, 0, 555, 0)), TcpVerdict::kDrop);
  EXPECT_EQ(tcp_track(t, &st, FlowDir::kReverse, seg(kRst, 0, 0, 0)), TcpVerdict::kDrop);
  EXPECT_EQ(st, FlowState::kSynSent);
  // A retransmitted SYN is fine; so is one with another ISN (a client that started over),
  // which is then what the backend's answer must acknowledge.
  EXPECT_EQ(tcp_track(t, &st, FlowDir::kForward, seg(kSyn, 100, 0, 65535)), TcpVerdict::kOk);
  EXPECT_EQ(tcp_track(t, &st, FlowDir::kForward, seg(kSyn, 7777, 0, 65535)), TcpVerdict::kOk);
  EXPECT_EQ(tcp_track(t, &st, FlowDir::kReverse, seg(kRst | kAck, 0, 101, 0)), TcpVerdict::kDrop);
  EXPECT_EQ(tcp_track(t, &st, FlowDir::kForward, seg(kSyn, 100, 0, 65535)), TcpVerdict::kOk);
  // Connection refused: RST+ACK acknowledging the SYN.
  EXPECT_EQ(tcp_track(t, &st, FlowDir::kReverse, seg(kRst | kAck, 0, 101, 0)), TcpVerdict::kOk);
  EXPECT_EQ(st, FlowState::kReset);
}

// The third ACK lost, and the server speaks first (SMTP): the client's next segment
// acknowledges the banner too, and completes the handshake all the same.
TEST(TcpState, HandshakeCompletesWithoutTheThirdAck) {
  TcpTrack t;
  tcp_track_syn(t, seg(kSyn, 100, 0, 65535));
  FlowState st = FlowState::kSynSent;
  EXPECT_EQ(tcp_track(t, &st, FlowDir::kReverse, seg(kSyn | kAck, 500, 101, 65535)), TcpVerdict::kOk);
  EXPECT_EQ(tcp_track(t, &st, FlowDir::kReverse, seg(kPsh | kAck, 501, 101, 65535, 40)), TcpVerdict::kOk);
  EXPECT_EQ(st, FlowState::kSynRecv);
  EXPECT_EQ(tcp_track(t, &st, FlowDir::kForward, seg(kPsh | kAck, 101, 541, 65535, 10)), TcpVerdict::kOk);
  EXPECT_EQ(st, FlowState::kEstablished);
}

TEST(TcpState, FinBeforeTheHandshakeCompletesCloses) {
  TcpTrack t;
  tcp_track_syn(t, seg(kSyn, 100, 0, 65535));
  FlowState st = FlowState::kSynSent;
  EXPECT_EQ(tcp_track(t, &st, FlowDir::kForward, seg(kFin, 101, 0, 65535)), TcpVerdict::kOk);
  EXPECT_EQ(st, FlowState::kClosing);
  EXPECT_TRUE(tcp_syn_reopens(t, st));
}

TEST(TcpState, SynReopensOnlyWhatIsOver) {
  Conn c(1, 1);
  EXPECT_FALSE(tcp_syn_reopens(c.track(), c.state()));
  c.backend(kFin | kAck);  // the server half-closed: the client may still send
  EXPECT_FALSE(tcp_syn_reopens(c.track(), c.state()));
  c.client(kFin | kAck);
  EXPECT_TRUE(tcp_syn_reopens(c.track(), c.state()));
}

// ---- reading segments ----

std::vector<uint8_t> header(uint8_t flags, std::vector<uint8_t> opts, size_t payload = 0) {
  while (opts.size() % 4) opts.push_back(0);
  std::vector<uint8_t> h(20 + opts.size() + payload, 0);
  h[4] = 0x01, h[7] = 0x02;   // seq 0x01000002
  h[8] = 0xaa, h[11] = 0xbb;  // ack 0xaa0000bb
  h[12] = static_cast<uint8_t>((20 + opts.size()) / 4 << 4);
  h[13] = flags;
  h[14] = 0x12, h[15] = 0x34;
  std::copy(opts.begin(), opts.end(), h.begin() + 20);
  return h;
}

TEST(TcpState, ReadsHeaderAndWindowScale) {
  // MSS 1460, NOP, WS 7, SACK-permitted.
  auto h = header(kSyn, {2, 4, 0x05, 0xb4, 1, 3, 3, 7, 4, 2});
  TcpSegment s = read_tcp_segment(h.data(), static_cast<uint32_t>(h.size()));
  EXPECT_EQ(s.seq, 0x01000002u);
  EXPECT_EQ(s.ack, 0xaa0000bbu);
  EXPECT_EQ(s.win, 0x1234);
  EXPECT_EQ(s.len, 0u);
  EXPECT_EQ(s.wscale, 7);
  h = header(kAck, {}, 33);
  s = read_tcp_segment(h.data(), static_cast<uint32_t>(h.size()));
  EXPECT_EQ(s.len, 33u);
  EXPECT_EQ(s.wscale, TcpSegment::kNoWscale);  // only SYNs carry it
}

TEST(TcpState, MalformedOptionsAreIgnored) {
  for (const std::vector<uint8_t>& opts : std::vector<std::vector<uint8_t>>{
           {3, 0, 7},          // length 0
           {3, 1, 7},          // length 1
           {2, 40, 1, 1},      // runs past the header
           {3, 4, 7, 0},       // wrong length for WS
           {0, 3, 3, 7},       // END first
           {1, 1, 1, 1, 1, 3}, // WS cut off by the end of the header
       }) {
    auto h = header(kSyn, opts);
    const TcpSegment s = read_tcp_segment(h.data(), static_cast<uint32_t>(h.size()));
    EXPECT_EQ(s.wscale, TcpSegment::kNoWscale) << int(opts[0]) << " " << int(opts[1]);
  }
  // A scale above 14 is taken as 14 (RFC 7323 2.3).
  TcpTrack t;
  tcp_track_syn(t, seg(kSyn, 1, 0, 100, 0, 200));
  EXPECT_EQ(t.dir[0].scale, 14);
}

}  // namespace
}  // namespace rondo::dp
