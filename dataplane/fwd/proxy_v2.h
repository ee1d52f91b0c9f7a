// PROXY protocol v2 towards full-NAT backends (docs/controlplane.md, `proxy_protocol: v2`):
// the backend learns the client's address from a header at the start of the stream it
// receives (haproxy's doc/proxy-protocol.txt, section 2.2).
//
//   client                 rondo                                   backend
//   SYN isn        ->      forwarded                            -> SYN isn
//                  <-      forwarded                            <- SYN-ACK bisn, ack isn+1
//   ACK isn+1      ->      replaced by the header segment       -> seq isn+1, ack bisn+1,
//                          (side state: phase kSent)               28 bytes of header
//                                                               <- banner, ack isn+29
//                  <-      ack isn+1 (ack - 28; SACK edges too)
//   data seq s     ->      seq s + 28                           -> data
//
// When: on the client's handshake-completing ACK, not on the backend's SYN-ACK. The ACK proves
// the client's address (return routability), so a spoofed SYN never makes rondo complete a
// connection and write a header at a backend (with the SYN-ACK choice a SYN flood would
// become a flood of accepted connections, each running its server-speaks-first banner). The
// client's ACK never waits for data, so a server that speaks first (SMTP, MySQL) gets its
// connection one client round trip after its SYN-ACK, as it would without rondo. The
// header segment carries the ACK's acknowledgement and takes its place (a pure ACK is not
// forwarded as well), so the first segment the backend sees after its SYN-ACK has seq isn+1,
// which its own SYN cookies (cookie_v4_check uses seq - 1) need. Under rondo's SYN cookies
// the client's ACK came first; the header follows the ACK that completes the backend's
// handshake (SynProxy::absorb).
//
// Sequence spaces: the tracker (flow/tcp_state.h) stays in the client's view. Client ->
// backend: every segment after the SYN gets seq + kLen (after tracking). Backend -> client
// (before tracking): ack - kLen and SACK edges - kLen; an ack that does not cover the header
// yet (the SYN-ACK's isn+1, a banner sent before the header arrived) reads isn+1. This is the
// other direction from the SYN cookies' seq_delta (backend ISN vs the cookie), so the two
// combine without sharing a field.
//
// Resend: until the backend acknowledges seq isn+1+kLen, the header is sent again when a
// client segment or the worker's sweep (Pipeline::tick) finds it older than the RTO (200 ms,
// doubling), kMaxTries sends in all; then the flow is reset both ways and counted as
// proxy_header_lost.
//
// Side state: ProxyHdr, 16 bytes per flow, allocated for the whole flow table only once a
// VIP uses PROXY v2 (a flow takes 144 bytes instead of 128, 160 + 16 with flow meters).
#pragma once

#include <cstdint>
#include <cstring>

#include "dataplane/flow/tcp_state.h"
#include "dataplane/fwd/seq_xlate.h"
#include "dataplane/pkt/parse.h"
#include "dataplane/pkt/tcp_opts.h"

namespace rondo::dp {

/// One flow's header state.
struct ProxyHdr {
  enum Phase : uint8_t { kNone = 0, kAwait, kSent, kAcked };
  uint32_t seq = 0;      // the client's ISN + 1: where the header sits (host order)
  uint32_t ack = 0;      // the client's latest acknowledgement, in the backend's space
  uint32_t sent_ms = 0;  // when the header was last sent (wraps: compared as a difference)
  uint16_t win = 0;      // the client's latest window field, as sent to the backend
  uint8_t tries = 0;     // sends so far
  uint8_t phase = kNone;
};
static_assert(sizeof(ProxyHdr) == 16);

struct ProxyV2 {
  /// 12-byte signature, version/command, family/transport, length, then AF_INET's 12 bytes.
  static constexpr uint32_t kLen = 16 + 12;
  /// Flow::user bit of a flow whose backend stream starts with the header (next to the SYN
  /// proxy's bits, fwd/synproxy.h, which leave 0x10 free).
  static constexpr uint8_t kFlowBit = 0x10;
  static constexpr uint32_t kRtoMs = 200;
  static constexpr uint8_t kMaxTries = 5;
  /// Frame of a header segment: Ethernet 14 + IPv4 20 + TCP 20 + the header.
  static constexpr uint32_t kFrameLen = 14 + 20 + 20 + kLen;

  /// Write the header: from src (the client) to dst (the VIP), addresses and ports in network
  /// order as they sit in a packet.
  static void write(uint8_t* out, uint32_t src_ip, uint32_t dst_ip, uint16_t src_port,
                    uint16_t dst_port) {
    static constexpr uint8_t kSig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                         0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
    std::memcpy(out, kSig, 12);
    out[12] = 0x21;  // version 2, PROXY
    out[13] = 0x11;  // AF_INET, STREAM
    out[14] = 0;
    out[15] = 12;    // address block length, big endian
    std::memcpy(out + 16, &src_ip, 4);
    std::memcpy(out + 20, &dst_ip, 4);
    std::memcpy(out + 24, &src_port, 2);
    std::memcpy(out + 26, &dst_port, 2);
  }

  /// Translate a client -> backend segment (after tracking): seq + kLen, except on a SYN.
  static void to_backend(uint8_t* tcp) {
    if (!(tcp[13] & kTcpSyn)) tcp_seq_shift(tcp, tcp_hlen(tcp), kLen, 0, 0);
  }

  /// The acknowledgement the client gets for the backend's `ack` (host order).
  static uint32_t ack_to_client(uint32_t ack, uint32_t hdr_seq) {
    if (seq_leq(ack, hdr_seq)) return ack;               // the SYN-ACK's, or older
    if (seq_lt(ack, hdr_seq + kLen)) return hdr_seq;     // inside the header: nothing of the client's
    return ack - kLen;
  }

  /// Translate a backend -> client segment (before tracking): ack and SACK edges. Notes an
  /// ack that covers the header (phase kSent -> kAcked).
  static void to_client(uint8_t* tcp, ProxyHdr& h) {
    if (!(tcp[13] & kTcpAck)) return;
    const uint32_t ack = tcp_rd32(tcp + 8);
    if (h.phase == ProxyHdr::kSent && seq_geq(ack, h.seq + kLen)) h.phase = ProxyHdr::kAcked;
    tcp_seq_shift(tcp, tcp_hlen(tcp), 0, ack_to_client(ack, h.seq) - ack, 0u - kLen);
  }

  /// Remember what a header (re)send acknowledges and advertises: the client's segment as
  /// it leaves for the backend (after every translation).
  static void note_client(ProxyHdr& h, const uint8_t* tcp) {
    if (!(tcp[13] & kTcpAck)) return;
    h.ack = tcp_rd32(tcp + 8);
    h.win = tcp_rd16(tcp + 14);
  }

  enum class Resend : uint8_t { kWait, kResend, kGiveUp };
  /// Whether a header sent `h.tries` times, last at h.sent_ms, is due again at now_ms: after
  /// kRtoMs << (tries - 1); after the last try's wait, give up.
  static Resend resend_due(const ProxyHdr& h, uint32_t now_ms) {
    if (h.phase != ProxyHdr::kSent || h.tries == 0) return Resend::kWait;
    const uint32_t rto = kRtoMs << (h.tries - 1);
    if (now_ms - h.sent_ms < rto) return Resend::kWait;
    return h.tries >= kMaxTries ? Resend::kGiveUp : Resend::kResend;
  }
};

}  // namespace rondo::dp
