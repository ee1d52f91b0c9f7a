// SYN proxy (docs/security.md, "SYN cookies"): under SYN cookies rondo answers a client's SYN
// itself and opens the backend connection only when the client's ACK proves it holds the
// cookie. dpvs' synproxy (src/ipvs/ip_vs_synproxy.c) is the reference design.
//
//   client                 rondo                              backend
//   SYN isn        ->      rewritten in place into
//                  <-      SYN-ACK seq=cookie ack=isn+1       (no flow, no local port)
//   ACK isn+1,cookie+1 ->  cookie checked; flow + local port;
//                          the ACK rewritten into          -> SYN isn (options from the cookie)
//                          absorbed: seq_delta = bisn - cookie <- SYN-ACK bisn, isn+1
//                          rewritten into the ACK          -> ACK isn+1, bisn+1
//   data           <->     sequence translation (seq_xlate.h) both ways
//
// This file holds the packet surgery and the "auto" switch; the pipeline calls them from
// small hooks (pipeline.cpp). Handshake segments are written afresh: a 20-byte IPv4 header
// (DF, TTL 64, no options) and a TCP header with only the options below, full checksums.
// A frame may grow (a SYN without options becomes a SYN-ACK with some): to at most
// kMaxHandshakeFrame bytes, which every frame buffer given to the pipeline has room for.
#pragma once

#include <cstdint>

#include "dataplane/flow/table.h"
#include "dataplane/flow/tcp_state.h"
#include "dataplane/fwd/syncookie.h"
#include "dataplane/pkt/parse.h"

namespace rondo::dp {

struct SynProxy {
  /// Largest frame a handshake rewrite produces: Ethernet 14 + IPv4 20 + TCP 20 + options 12,
  /// 4 more when the segment it replaces came with a VLAN tag (its L3 starts 18 bytes in).
  static constexpr uint32_t kMaxHandshakeFrame = 18 + 20 + 32;
  /// MSS rondo announces to the client in the cookie SYN-ACK. The backend's own MSS is not
  /// known yet (nor is the path MTU towards it); 1460 is Ethernet's.
  static constexpr uint16_t kMss = 1460;
  /// Window scale rondo announces to a client that offered scaling. Linux' usual value, so
  /// that most backends announce the same and windows pass untouched; when the backend's
  /// differs, its windows are rescaled on the way to the client (window_to_client).
  static constexpr uint8_t kWscale = 7;
  /// Window of the cookie SYN-ACK (unscaled, as in every SYN).
  static constexpr uint16_t kWindow = 65535;

  // Flow::user of a proxied flow: kProxied, kBackendWs when the backend's SYN-ACK offered
  // window scaling, and in the low 4 bits the scale it offered.
  static constexpr uint8_t kProxied = 0x80;
  static constexpr uint8_t kBackendWs = 0x40;
  // The cookie ACK carried a FIN (a client that closes at once): the ACK that completes the
  // backend's handshake carries it on, so the connection does not wait for a retransmission.
  static constexpr uint8_t kFinPending = 0x20;
  static bool proxied(uint8_t user) { return (user & kProxied) != 0; }
  // Bits of Flow::user that are not the SYN proxy's (ProxyV2::kFlowBit): kept as they are.
  static constexpr uint8_t kOtherBits = 0x10;

  /// Flow::user of the flow a cookie ACK opens: kProxied, and kFinPending when the ACK
  /// carried a FIN and no data. A FIN behind data sits after that data in sequence space;
  /// the data is not carried, so neither is that FIN (sent at the ACK's sequence number it
  /// would let the backend acknowledge a byte it never got): the client resends both.
  static uint8_t user_for_ack(const uint8_t* f, const Parsed& p);

  /// A handshake segment to write.
  struct Segment {
    uint32_t src_ip = 0, dst_ip = 0;      // network order
    uint16_t src_port = 0, dst_port = 0;  // network order
    uint32_t seq = 0, ack = 0;            // host order
    uint8_t flags = 0;
    uint16_t win = 0;
    // Options (SYN and SYN-ACK only): MSS when mss != 0, window scale unless kNoWscale,
    // SACK-permitted.
    uint16_t mss = 0;
    uint8_t wscale = SynOpts::kNoWscale;
    bool sack = false;
    // Data after the header (a PROXY v2 header segment, proxy_v2.h), copied in.
    const uint8_t* payload = nullptr;
    uint32_t payload_len = 0;

    /// A segment rondo sends on flow fl's backend side (local ip:port -> backend), or on its
    /// client side (VIP -> client); the rest is the caller's.
    static Segment to_backend(const Flow& fl) {
      return Segment{.src_ip = fl.rev.dst_ip, .dst_ip = fl.rev.src_ip,
                     .src_port = fl.rev.dst_port, .dst_port = fl.rev.src_port};
    }
    static Segment to_client(const Flow& fl) {
      return Segment{.src_ip = fl.fwd.dst_ip, .dst_ip = fl.fwd.src_ip,
                     .src_port = fl.fwd.dst_port, .dst_port = fl.fwd.src_port};
    }
  };

  /// The options of a SYN rondo keeps in a cookie (MSS, window scale, SACK-permitted).
  /// tcp points at the header, hlen is its length. Malformed options end the walk.
  static SynOpts read_options(const uint8_t* tcp, uint32_t hlen);

  /// Write `s` as IPv4 + TCP (+ payload) at frame + l3_off (the Ethernet header is the
  /// caller's), with full checksums. Returns the new frame length.
  static uint32_t write(uint8_t* frame, uint32_t l3_off, const Segment& s);

  // The steps, in the order a connection takes them. Frames are parsed (p) and, for TCP,
  // checked by the parser; each rewrite returns the new frame length.

  /// Rewrite the client's SYN in place into the cookie SYN-ACK (client <- VIP).
  static uint32_t answer_syn(uint8_t* f, const Parsed& p, const HashKey& key, uint32_t slot);

  /// Check the cookie a client's ACK returns (ack - 1, for the ISN seq - 1); *o: what it kept.
  static bool check_ack(const uint8_t* f, const Parsed& p, const HashKey& key, uint32_t slot,
                        SynOpts* o);

  /// Start the tracker of a flow the ACK opens, in the client's view of sequence space: as if
  /// the client's SYN (rebuilt from the ACK and the cookie), the cookie SYN-ACK and this ACK
  /// had been seen. Any payload in the ACK is not counted: it is not forwarded.
  static void track_init(TcpTrack& t, const uint8_t* f, const Parsed& p, const SynOpts& o);

  /// Rewrite the client's ACK in place into the SYN to the backend (local ip:port -> backend),
  /// with the client's ISN and the options the cookie kept. The ACK's payload is dropped (the
  /// client retransmits it once the connection is up).
  static uint32_t open_backend(uint8_t* f, const Parsed& p, const Flow& fl, const TcpTrack& t,
                               const SynOpts& o);

  /// What the backend's answer to the SYN becomes.
  enum class Absorb : uint8_t {
    kAck,    // its SYN-ACK: absorbed, the frame is now the ACK to the backend; established
    kReset,  // its RST (refused): sequence number set to what the client expects; forward
    kDrop,   // anything else
  };
  /// The backend's answer on a proxied flow still in kSynSent. kAck sets t.seq_delta() and the
  /// backend's window scale in fl.user, and *len.
  static Absorb absorb(uint8_t* f, const Parsed& p, Flow& fl, TcpTrack& t, uint32_t* len);

  /// Translate a backend -> client segment of a proxied flow (before tracking it): sequence
  /// number, and the window when the backend's scale is not the one the client was told.
  static void to_client(uint8_t* f, const Parsed& p, const Flow& fl, const TcpTrack& t);
  /// Translate a client -> backend segment (after tracking it): acknowledgement and SACK
  /// blocks, and the window when the backend refused the scaling the client believes in.
  static void to_backend(uint8_t* f, const Parsed& p, const Flow& fl, const TcpTrack& t);

  /// A window field rescaled from one shift to another, clamped to 16 bits.
  static uint16_t rescale(uint16_t win, uint8_t from, uint8_t to) {
    const uint64_t bytes = uint64_t{win} << from;
    const uint64_t w = bytes >> to;
    return w > 0xffff ? 0xffff : static_cast<uint16_t>(w);
  }
};

/// The `auto` switch of one worker: SYN cookies go on when the worker's embryonic flows or
/// its SYN rate reach a threshold and off when both are below half of it again, and not
/// before kMinOnSeconds (while cookies are on no embryonic flow is made, so their count falls
/// at once; the hold keeps a flood from turning cookies off and on every few seconds).
class SynGuard {
 public:
  static constexpr uint64_t kMinOnSeconds = 10;

  SynGuard(uint32_t embryonic_on, uint32_t syn_rate_on, uint64_t hz)
      : embryonic_on_(embryonic_on), rate_on_(syn_rate_on), hz_(hz) {}

  /// A SYN arrived at a VIP in `auto` mode. Returns whether cookies are on.
  bool on_syn(uint64_t now, uint32_t embryonic) {
    ++syns_;
    if (!active_ && (embryonic >= embryonic_on_ || syns_ >= rate_on_)) turn_on(now);
    return active_;
  }

  /// Called about once per loop: closes a one-second window of SYN counting and decides.
  void update(uint64_t now, uint32_t embryonic) {
    if (now - window_start_ < hz_) return;
    const uint64_t rate = syns_ * hz_ / (now - window_start_);
    window_start_ = now;
    syns_ = 0;
    if (!active_) {
      if (embryonic >= embryonic_on_ || rate >= rate_on_) turn_on(now);
    } else if (embryonic < embryonic_on_ / 2 && rate < rate_on_ / 2 &&
               now - on_since_ >= kMinOnSeconds * hz_) {
      active_ = false;
    }
  }

  bool active() const { return active_; }

 private:
  void turn_on(uint64_t now) {
    active_ = true;
    on_since_ = now;
  }

  uint32_t embryonic_on_;
  uint32_t rate_on_;
  uint64_t hz_;
  uint64_t window_start_ = 0;
  uint64_t syns_ = 0;
  uint64_t on_since_ = 0;
  bool active_ = false;
};

}  // namespace rondo::dp
