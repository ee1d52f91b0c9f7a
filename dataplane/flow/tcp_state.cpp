// TCP tracker: see tcp_state.h for the window check and what the verdicts mean.
#include "dataplane/flow/tcp_state.h"

#include <algorithm>

#include "dataplane/pkt/tcp_opts.h"

namespace rondo::dp {
namespace {

constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kAck = 0x10;
constexpr uint8_t kMaxWscale = 14;  // RFC 7323 2.3: larger values are taken as 14

// Sequence space the segment occupies: its payload, and one each for SYN and FIN.
inline uint32_t seg_end(const TcpSegment& s) {
  return s.seq + s.len + ((s.flags & kSyn) ? 1 : 0) + ((s.flags & kFin) ? 1 : 0);
}

// Window advertised by a segment, in bytes. Windows in SYN segments are never scaled.
inline uint32_t seg_win(const TcpSegment& s, const TcpDir& d) {
  return (s.flags & kSyn) ? s.win : uint32_t{s.win} << d.scale;
}

// The handshake's second half: the backend's SYN-ACK, which must acknowledge the client's SYN.
TcpVerdict take_syn_ack(TcpTrack& t, FlowState* state, const TcpSegment& seg) {
  TcpDir& c = t.dir[0];
  TcpDir& b = t.dir[1];
  if (!(seg.flags & kAck) || seg.ack != c.end) return TcpVerdict::kDrop;
  b.end = seg_end(seg);
  b.maxwin = std::max<uint32_t>(seg.win, 1);
  b.flags = seg.wscale != TcpSegment::kNoWscale ? TcpDir::kWscale : 0;
  // Scaling is on only if both SYNs offered it (RFC 7323 2.2); each side's windows are then
  // shifted by the scale it announced.
  if ((c.flags & TcpDir::kWscale) && (b.flags & TcpDir::kWscale)) {
    b.scale = std::min(seg.wscale, kMaxWscale);
  } else {
    c.scale = 0;
    b.scale = 0;
  }
  // The backend may send up to what the client's SYN window allows; the client up to what
  // this SYN-ACK allows.
  b.maxend = b.end + c.maxwin;
  if (seq_gt(seg.ack + b.maxwin, c.maxend)) c.maxend = seg.ack + b.maxwin;
  if (*state == FlowState::kSynSent) *state = FlowState::kSynRecv;
  return TcpVerdict::kOk;
}

}  // namespace

TcpSegment read_tcp_segment(const uint8_t* tcp, uint32_t seg_len) {
  TcpSegment s;
  s.seq = tcp_rd32(tcp + 4);
  s.ack = tcp_rd32(tcp + 8);
  const uint32_t hlen = tcp_hlen(tcp);
  s.flags = tcp[13];
  s.win = tcp_rd16(tcp + 14);
  s.len = seg_len > hlen ? seg_len - hlen : 0;
  if (!(s.flags & kSyn)) return s;
  tcp_for_each_option(tcp, hlen < seg_len ? hlen : seg_len, [&](uint8_t kind, uint32_t i, uint8_t len) {
    if (kind == kTcpOptWscale && len == 3) s.wscale = tcp[i + 2];
  });
  return s;
}

void tcp_track_syn(TcpTrack& t, const TcpSegment& syn) {
  t = TcpTrack{};
  TcpDir& c = t.dir[0];
  c.end = seg_end(syn);
  c.maxwin = std::max<uint32_t>(syn.win, 1);
  c.maxend = c.end;  // nothing may follow the SYN before the backend answers it
  if (syn.wscale != TcpSegment::kNoWscale) {
    c.flags = TcpDir::kWscale;
    c.scale = std::min(syn.wscale, kMaxWscale);
  }
}

TcpVerdict tcp_track(TcpTrack& t, FlowState* state, FlowDir dir, const TcpSegment& seg) {
  const uint32_t si = dir == FlowDir::kForward ? 0 : 1;
  TcpDir& s = t.dir[si];
  TcpDir& r = t.dir[si ^ 1];

  // Before the backend has answered, it may only accept (SYN-ACK) or refuse (RST that
  // acknowledges the SYN, RFC 9293 3.10.7.3); anything else from it is not this connection.
  if (*state == FlowState::kSynSent && dir == FlowDir::kReverse) {
    if (seg.flags & kRst) {
      if (!(seg.flags & kAck) || seg.ack != r.end) return TcpVerdict::kDrop;
      *state = FlowState::kReset;
      return TcpVerdict::kOk;
    }
    if ((seg.flags & (kSyn | kAck)) != (kSyn | kAck)) return TcpVerdict::kDrop;
    return take_syn_ack(t, state, seg);
  }
  // A client SYN while the backend has not answered: a retransmission, or a client that
  // started over with another ISN (RFC 9293 3.4.1: a restarted TCP need not wait). Either
  // way the SYN is what the backend will answer, so tracking starts again from it.
  if (*state == FlowState::kSynSent && dir == FlowDir::kForward &&
      (seg.flags & (kSyn | kAck)) == kSyn) {
    tcp_track_syn(t, seg);
    return TcpVerdict::kOk;
  }
  // A retransmitted SYN-ACK: the same checks as the first one, nothing moves.
  if ((seg.flags & kSyn) && dir == FlowDir::kReverse && *state == FlowState::kSynRecv)
    return seg.ack == r.end && seg_end(seg) == s.end ? TcpVerdict::kOk : TcpVerdict::kDrop;

  const uint32_t end = seg_end(seg);
  const uint32_t win = seg_win(seg, s);
  // The lower bounds need a window from the other side; while one side has said nothing
  // (a retransmitted SYN), only its own segments can be checked.
  const uint32_t r_maxwin = r.maxwin;
  const uint32_t ack = (seg.flags & kAck) ? seg.ack : r.end;

  if (seg.flags & kRst) {
    // RFC 5961 3.2 from the outside: an RST inside the window goes to the endpoint, which
    // resets only if the sequence number is exactly its RCV.NXT; rondo does the same with
    // the highest sequence number it has seen from the sender.
    const bool in = seq_leq(seg.seq, s.maxend) && seq_geq(seg.seq, s.end - r_maxwin);
    if (!in) return TcpVerdict::kDrop;
    if (seg.seq != s.end) return TcpVerdict::kPass;
    *state = FlowState::kReset;
    return TcpVerdict::kOk;
  }

  const bool in = seq_leq(seg.seq, s.maxend) && seq_geq(end, s.end - r_maxwin) &&
                  seq_leq(ack, r.end) &&
                  seq_geq(ack, r.end - std::max<uint32_t>(s.maxwin, 1));
  if (!in) return (seg.flags & kFin) ? TcpVerdict::kDrop : TcpVerdict::kPass;

  // Move the edges (tcp_in_window's update).
  s.maxwin = std::max(s.maxwin, win);
  if (seq_gt(end, s.end)) s.end = end;
  // A segment that runs past the right edge (a window probe) widens what was allowed.
  if (r.maxwin != 0 && seq_gt(end, s.maxend)) r.maxwin += end - s.maxend;
  if (seg.flags & kAck) {
    if (seq_geq(ack + win, r.maxend)) r.maxend = ack + win + (win == 0 ? 1 : 0);
    // The peer's FIN is acknowledged once the ack covers it (end counts the FIN).
    if ((r.flags & TcpDir::kFin) && ack == r.end) r.flags |= TcpDir::kFinAcked;
  }

  // The client's third ACK completes the handshake, and so does any later segment of the
  // client's that is in the window (the third ACK may be lost and data carry the ack).
  if (*state == FlowState::kSynRecv && dir == FlowDir::kForward && (seg.flags & kAck)) {
    *state = FlowState::kEstablished;
    t.dir[0].flags |= TcpDir::kEstablished;
  }

  if (seg.flags & kFin) {
    s.flags |= TcpDir::kFin;
    // Half-close (RFC 9293 3.6): after one side's FIN the other may go on sending for as long
    // as it likes, so the flow stays alive until the second FIN.
    if (flow_embryonic(*state)) *state = FlowState::kClosing;
    else if (*state == FlowState::kEstablished) *state = FlowState::kHalfClosed;
  }
  if ((s.flags & TcpDir::kFin) && (r.flags & TcpDir::kFin)) {
    const bool both_acked = (s.flags & r.flags & TcpDir::kFinAcked) != 0;
    if (*state == FlowState::kHalfClosed) *state = FlowState::kClosing;
    if (both_acked && *state == FlowState::kClosing) *state = FlowState::kTimeWait;
  }
  return TcpVerdict::kOk;
}

}  // namespace rondo::dp
