// TCP connection tracking for full-NAT flows, where rondo sees both directions: the states
// of a connection and the sequence/window check that decides whether a segment belongs to
// it (docs/security.md, "TCP tracking").
//
// The window check follows the one Linux conntrack uses (tcp_in_window, after G. van Rooij,
// "Real Stateful TCP Packet Filtering in IP Filter"). Per direction rondo keeps the highest
// sequence number sent (end), the right edge the peer has allowed it (maxend: the peer's
// ack + window), the largest window it has advertised (maxwin, scaled) and its window
// scale. A segment from S to R, seq..end, acknowledging ack, is in the window when
//   seq <= S.maxend              it does not start beyond what R allowed S to send;
//   end >= S.end - R.maxwin      it is not older than one of R's windows;
//   ack <= R.end                 it acknowledges nothing R has not sent;
//   ack >= R.end - S.maxwin      and nothing older than one of S's windows.
// An off-path sender who does not know the sequence numbers (a forged RST or FIN) lands
// outside with odds of about window / 2^32.
//
// What the verdicts mean for the pipeline:
//   kOk          forward; the tracker has moved (state, edges);
//   kPass        forward, change nothing: an in-window RST that is not exactly the next
//                sequence number (the endpoint applies RFC 5961 and answers with a challenge
//                ACK), or a data segment outside the window (a retransmission older than
//                rondo remembers, or junk the endpoint will discard itself);
//   kDrop        drop as tcp_out_of_window: an RST or FIN outside the window, or a segment
//                that makes no sense in the state (the backend answering a SYN with
//                anything but SYN-ACK or RST).
// Only an RST whose sequence number is exactly the next expected one resets the flow, so a
// blind attacker cannot shorten a live flow's timeout.
#pragma once

#include <cstdint>

#include "dataplane/flow/table.h"

namespace rondo::dp {

/// Sequence-space comparisons (RFC 9293 3.4: modulo 2^32).
inline bool seq_lt(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) < 0; }
inline bool seq_leq(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) <= 0; }
inline bool seq_gt(uint32_t a, uint32_t b) { return seq_lt(b, a); }
inline bool seq_geq(uint32_t a, uint32_t b) { return seq_leq(b, a); }

/// What the tracker needs of one TCP segment (host order).
struct TcpSegment {
  uint32_t seq = 0;
  uint32_t ack = 0;
  uint32_t len = 0;      // payload bytes
  uint16_t win = 0;      // as sent (not scaled)
  uint8_t flags = 0;
  uint8_t wscale = kNoWscale;  // window scale option (SYN segments only)
  static constexpr uint8_t kNoWscale = 0xff;
};

/// Read a TCP segment's header (seq, ack, window, flags, payload length, and on a SYN the
/// window scale option). tcp points at the header, seg_len is header + payload; the parser
/// has checked the header length against seg_len. Malformed options are ignored (as an
/// endpoint would).
TcpSegment read_tcp_segment(const uint8_t* tcp, uint32_t seg_len);

// TcpDir and TcpTrack, the side-table record, are defined with the flow record (table.h).


enum class TcpVerdict : uint8_t { kOk, kPass, kDrop };

/// Start tracking a connection from the client's SYN (the flow is in kSynSent).
void tcp_track_syn(TcpTrack& t, const TcpSegment& syn);

/// Check a segment of an existing flow from `dir` and move the tracker and *state.
/// A SYN from the client on a flow that is over (see tcp_syn_reopens) is the caller's job.
TcpVerdict tcp_track(TcpTrack& t, FlowState* state, FlowDir dir, const TcpSegment& seg);

/// True once the handshake completed: the backend has (had) a full connection, so its
/// tuple may sit in the backend's TIME_WAIT after the flow ends.
inline bool tcp_was_established(const TcpTrack& t) { return (t.dir[0].flags & TcpDir::kEstablished) != 0; }

/// True when a client SYN on a flow in `state` starts a new connection on the same tuple
/// (the old one is reset, closed or in time-wait, or the client has half-closed it: a
/// client that sent FIN can send no more on that connection).
inline bool tcp_syn_reopens(const TcpTrack& t, FlowState state) {
  switch (state) {
    case FlowState::kClosing:
    case FlowState::kTimeWait:
    case FlowState::kReset: return true;
    case FlowState::kHalfClosed: return (t.dir[0].flags & TcpDir::kFin) != 0;
    default: return false;
  }
}

}  // namespace rondo::dp
