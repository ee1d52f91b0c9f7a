// SYN proxy packet surgery: see synproxy.h.
#include "dataplane/fwd/synproxy.h"

#include <cstring>

#include "dataplane/fwd/seq_xlate.h"
#include "dataplane/pkt/csum.h"

namespace rondo::dp {
namespace {

constexpr uint8_t kTtl = 64;

inline void wr16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
inline void wr32(uint8_t* p, uint32_t v) {
  wr16(p, static_cast<uint16_t>(v >> 16));
  wr16(p + 2, static_cast<uint16_t>(v));
}

// The scale the backend uses for its windows (0 when it refused scaling).
inline uint8_t backend_scale(const Flow& fl) {
  return (fl.user & SynProxy::kBackendWs) ? (fl.user & 0x0f) : 0;
}

}  // namespace

SynOpts SynProxy::read_options(const uint8_t* tcp, uint32_t hlen) {
  SynOpts o;
  tcp_for_each_option(tcp, hlen, [&](uint8_t kind, uint32_t i, uint8_t len) {
    if (kind == kTcpOptMss && len == 4) o.mss = tcp_rd16(tcp + i + 2);
    else if (kind == kTcpOptWscale && len == 3) o.wscale = tcp[i + 2];
    else if (kind == kTcpOptSackPerm && len == 2) o.sack = true;
  });
  return o;
}

uint32_t SynProxy::write(uint8_t* frame, uint32_t l3_off, const Segment& s) {
  // Options first (their size sets the header length), each padded with NOPs to 32 bits.
  uint8_t opt[12];
  uint32_t ol = 0;
  if (s.mss != 0) {
    opt[ol++] = kTcpOptMss;
    opt[ol++] = 4;
    wr16(opt + ol, s.mss);
    ol += 2;
  }
  if (s.wscale != SynOpts::kNoWscale) {
    opt[ol++] = kTcpOptNop;
    opt[ol++] = kTcpOptWscale;
    opt[ol++] = 3;
    opt[ol++] = s.wscale;
  }
  if (s.sack) {
    opt[ol++] = kTcpOptNop;
    opt[ol++] = kTcpOptNop;
    opt[ol++] = kTcpOptSackPerm;
    opt[ol++] = 2;
  }
  const uint32_t thl = 20 + ol;

  uint8_t* ip = frame + l3_off;
  Ipv4Fields h;  // ID 0: DF is set, nothing will be reassembled (RFC 6864)
  h.df = true;
  h.ttl = kTtl;
  h.proto = 6;
  h.src = s.src_ip;
  h.dst = s.dst_ip;
  write_ipv4_header(ip, static_cast<uint16_t>(20 + thl + s.payload_len), h);

  uint8_t* t = ip + 20;
  std::memcpy(t, &s.src_port, 2);
  std::memcpy(t + 2, &s.dst_port, 2);
  wr32(t + 4, s.seq);
  wr32(t + 8, s.ack);
  t[12] = static_cast<uint8_t>(thl / 4 << 4);
  t[13] = s.flags;
  wr16(t + 14, s.win);
  wr16(t + 16, 0);
  wr16(t + 18, 0);
  std::memcpy(t + 20, opt, ol);
  if (s.payload_len != 0) std::memcpy(t + thl, s.payload, s.payload_len);
  const uint32_t tl = thl + s.payload_len;
  const uint64_t sum = csum_sum(ip + 12, 8) + 6 + tl + csum_sum(t, tl);
  csum_put(t + 16, sum);
  return l3_off + 20 + tl;
}

}  // namespace rondo::dp

namespace rondo::dp {

uint32_t SynProxy::answer_syn(uint8_t* f, const Parsed& p, const HashKey& key, uint32_t slot) {
  const uint8_t* tcp = f + p.l4_off;
  const SynOpts o = read_options(tcp, tcp_hlen(tcp));
  const uint32_t isn = tcp_rd32(tcp + 4);
  Segment s;
  s.src_ip = p.key.dst_ip;
  s.dst_ip = p.key.src_ip;
  s.src_port = p.key.dst_port;
  s.dst_port = p.key.src_port;
  s.seq = SynCookie::make(key, p.key, isn, slot, o);
  s.ack = isn + 1;
  s.flags = kTcpSyn | kTcpAck;
  s.win = kWindow;
  s.mss = kMss;
  // Scaling and SACK only if the client offered them (RFC 7323 1.3, RFC 2018 2).
  s.wscale = o.wscale != SynOpts::kNoWscale ? kWscale : SynOpts::kNoWscale;
  s.sack = o.sack;
  return write(f, p.l3_off, s);
}

uint8_t SynProxy::user_for_ack(const uint8_t* f, const Parsed& p) {
  const uint8_t* tcp = f + p.l4_off;
  const bool fin = (tcp[13] & kTcpFin) != 0 && p.l4_len() == tcp_hlen(tcp);
  return static_cast<uint8_t>(kProxied | (fin ? kFinPending : 0));
}

bool SynProxy::check_ack(const uint8_t* f, const Parsed& p, const HashKey& key, uint32_t slot,
                         SynOpts* o) {
  const uint8_t* tcp = f + p.l4_off;
  return SynCookie::check(key, p.key, tcp_rd32(tcp + 4) - 1, tcp_rd32(tcp + 8) - 1, slot, o);
}

void SynProxy::track_init(TcpTrack& t, const uint8_t* f, const Parsed& p, const SynOpts& o) {
  TcpSegment ack = read_tcp_segment(f + p.l4_off, p.l4_len());
  ack.len = 0;
  ack.flags = kTcpAck;
  // The client's SYN: its ISN and scale are in the cookie; its window is not (the ACK's,
  // which is no smaller once scaled, stands in for it).
  TcpSegment syn;
  syn.seq = ack.seq - 1;
  syn.win = ack.win;
  syn.flags = kTcpSyn;
  syn.wscale = o.wscale;
  tcp_track_syn(t, syn);
  TcpSegment sa;
  sa.seq = ack.ack - 1;
  sa.ack = ack.seq;
  sa.win = kWindow;
  sa.flags = kTcpSyn | kTcpAck;
  sa.wscale = o.wscale != SynOpts::kNoWscale ? kWscale : TcpSegment::kNoWscale;
  FlowState st = FlowState::kSynSent;
  tcp_track(t, &st, FlowDir::kReverse, sa);
  tcp_track(t, &st, FlowDir::kForward, ack);
  // The handshake the tracker saw is the client's with rondo; the backend's connection is
  // complete only when its SYN-ACK is absorbed (absorb). Until then its tuple is free again
  // the moment the flow ends (no port quarantine).
  t.dir[0].flags &= static_cast<uint8_t>(~TcpDir::kEstablished);
}

uint32_t SynProxy::open_backend(uint8_t* f, const Parsed& p, const Flow& fl, const TcpTrack& t,
                                const SynOpts& o) {
  const uint8_t* tcp = f + p.l4_off;
  Segment s = Segment::to_backend(fl);
  s.seq = tcp_rd32(tcp + 4) - 1;
  s.flags = kTcpSyn;
  // A SYN's window is never scaled: the client's window in bytes, as far as 16 bits go.
  s.win = rescale(tcp_rd16(tcp + 14), t.dir[0].scale, 0);
  s.mss = o.mss;
  s.wscale = o.wscale;
  s.sack = o.sack;
  return write(f, p.l3_off, s);
}

SynProxy::Absorb SynProxy::absorb(uint8_t* f, const Parsed& p, Flow& fl, TcpTrack& t,
                                  uint32_t* len) {
  uint8_t* tcp = f + p.l4_off;
  const TcpSegment seg = read_tcp_segment(tcp, p.l4_len());
  const uint32_t isn1 = t.dir[0].end;      // the client's ISN + 1
  const uint32_t cookie1 = t.dir[1].end;   // the cookie + 1
  if (!(seg.flags & kTcpAck) || seg.ack != isn1) return Absorb::kDrop;
  if (seg.flags & kTcpRst) {
    // The backend refused: the client, which believes the connection is up, takes the RST
    // only at the sequence number it expects.
    tcp_seq_shift(tcp, tcp_hlen(tcp), cookie1 - seg.seq, 0);
    return Absorb::kReset;
  }
  if (!(seg.flags & kTcpSyn)) return Absorb::kDrop;
  t.set_seq_delta(seg.seq - (cookie1 - 1));
  t.dir[0].flags |= TcpDir::kEstablished;
  const bool fin = (fl.user & kFinPending) != 0;
  fl.user = static_cast<uint8_t>(kProxied | (fl.user & kOtherBits));
  if (seg.wscale != TcpSegment::kNoWscale)
    fl.user |= kBackendWs | (seg.wscale > 14 ? 14 : seg.wscale);
  Segment s = Segment::to_backend(fl);
  s.seq = isn1;
  s.ack = seg.seq + 1;
  s.flags = kTcpAck;
  if (fin) {
    // The client's FIN, held since its cookie ACK: sent now, and tracked as sent.
    s.flags |= kTcpFin;
    t.dir[0].end = isn1 + 1;
    t.dir[0].flags |= TcpDir::kFin;
  }
  // The client's largest window so far, in the scale the backend reads it with.
  const uint8_t shift = (fl.user & kBackendWs) ? t.dir[0].scale : 0;
  const uint32_t w = t.dir[0].maxwin >> shift;
  s.win = w > 0xffff ? 0xffff : static_cast<uint16_t>(w);
  *len = write(f, p.l3_off, s);
  return Absorb::kAck;
}

void SynProxy::to_client(uint8_t* f, const Parsed& p, const Flow& fl, const TcpTrack& t) {
  uint8_t* tcp = f + p.l4_off;
  if (const uint32_t d = t.seq_delta(); d != 0) tcp_seq_shift(tcp, tcp_hlen(tcp), 0u - d, 0);
  const uint8_t from = backend_scale(fl), to = t.dir[1].scale;
  if (from != to && !(tcp[13] & kTcpSyn)) tcp_set_window(tcp, rescale(tcp_rd16(tcp + 14), from, to));
}

void SynProxy::to_backend(uint8_t* f, const Parsed& p, const Flow& fl, const TcpTrack& t) {
  uint8_t* tcp = f + p.l4_off;
  if (const uint32_t d = t.seq_delta(); d != 0) tcp_seq_shift(tcp, tcp_hlen(tcp), 0, d);
  // The backend reads the client's windows with the client's scale, unless it refused scaling.
  const uint8_t from = t.dir[0].scale, to = (fl.user & kBackendWs) ? from : 0;
  if (from != to && !(tcp[13] & kTcpSyn)) tcp_set_window(tcp, rescale(tcp_rd16(tcp + 14), from, to));
}

}  // namespace rondo::dp
