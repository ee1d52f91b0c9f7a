// Shared by the SYN-proxy and PROXY v2 tests: one full-NAT VIP (203.0.113.10:80 -> one
// backend :3000 through local IP 198.51.100.100, ports 40000-40009), its state, and the
// frames of a handshake as the client, the backend and rondo send them (plain bytes).
#pragma once

#include <arpa/inet.h>

#include <cstring>
#include <vector>

#include "dataplane/api/ctl.h"
#include "dataplane/flow/key.h"
#include "dataplane/flow/siphash.h"
#include "dataplane/pkt/parse.h"
#include "tests/common/packet_builder.h"

namespace rondo::dp::handshake {

using test::Frame;
using test::Mac;
using test::Pkt;
using test::ip4;

inline const HashKey kKey{0x0123456789abcdefull, 0xfedcba9876543210ull};

inline FlowKey key_of(uint32_t client, uint16_t cport, uint32_t vip, uint16_t vport) {
  FlowKey k;
  k.src_ip = htonl(client);
  k.dst_ip = htonl(vip);
  k.src_port = htons(cport);
  k.dst_port = htons(vport);
  k.proto = 6;
  return k;
}
inline const Mac kOurMac{0x02, 0, 0, 0, 0, 0x01};
inline const Mac kClientMac{0x02, 0, 0, 0, 0, 0x02};
inline const Mac kBackendMac{0x02, 0, 0, 0, 0, 0x03};
inline const uint32_t kVip = ip4("203.0.113.10");
inline const uint32_t kClient = ip4("198.51.100.2");
inline const uint32_t kBackend = ip4("198.51.100.3");
inline const uint32_t kLocal = ip4("198.51.100.100");
constexpr uint16_t kLportLo = 40000, kLportHi = 40009;
constexpr uint16_t kBport = 3000;
constexpr uint64_t kSynMs = 1000;
constexpr uint8_t kSynAck = kTcpSyn | kTcpAck, kPshAck = kTcpPsh | kTcpAck;

// The options of a Linux client SYN: MSS 1460, SACK-permitted, timestamps, NOP, WS 7.
inline const std::vector<uint8_t> kLinuxSynOpts = {2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1,
                                            0, 0, 0, 0, 1, 3, 3, 7};
inline api::State cookie_state(api::SynCookies mode) {
  api::State st;
  st.generation = 1;
  st.timeouts.tcp_syn_ms = kSynMs;
  st.timeouts.tcp_established_ms = 60000;
  st.timeouts.tcp_closing_ms = 2000;
  st.timeouts.tcp_time_wait_ms = 3000;
  st.timeouts.tcp_reset_ms = 500;
  st.timeouts.udp_ms = 5000;
  api::Vip web;
  web.id = 1;
  web.ip = api::Addr::from_v4(kVip);
  web.port = 80;
  web.syncookies = mode;
  api::Backend b;
  b.id = 10;
  b.ip = api::Addr::from_v4(kBackend);
  b.port = kBport;
  web.backends.push_back(b);
  st.vips = {web};
  st.local_ips = {api::Addr::from_v4(kLocal)};
  api::Neighbour nc, nb;
  nc.ip = api::Addr::from_v4(kClient);
  std::memcpy(nc.mac, kClientMac.data(), 6);
  nb.ip = api::Addr::from_v4(kBackend);
  std::memcpy(nb.mac, kBackendMac.data(), 6);
  st.neighbours = {nc, nb};
  return st;
}

inline Pkt from_client(uint16_t cport, uint8_t flags, uint32_t seq, uint32_t ack) {
  Pkt p;
  p.src_mac = kClientMac;
  p.dst_mac = kOurMac;
  p.src_ip = kClient;
  p.dst_ip = kVip;
  p.sport = cport;
  p.dport = 80;
  p.tcp_flags = flags;
  p.seq = seq;
  p.ack = ack;
  return p;
}
inline Pkt from_backend(uint16_t lport, uint8_t flags, uint32_t seq, uint32_t ack) {
  Pkt p;
  p.src_mac = kBackendMac;
  p.dst_mac = kOurMac;
  p.src_ip = kBackend;
  p.dst_ip = kLocal;
  p.sport = kBport;
  p.dport = lport;
  p.tcp_flags = flags;
  p.seq = seq;
  p.ack = ack;
  return p;
}
// A handshake segment as rondo writes it, to the client or to the backend.
inline Pkt made(bool to_client, uint16_t cport, uint16_t lport, uint8_t flags, uint32_t seq, uint32_t ack) {
  Pkt p;
  p.src_mac = kOurMac;
  p.dst_mac = to_client ? kClientMac : kBackendMac;
  p.src_ip = to_client ? kVip : kLocal;
  p.dst_ip = to_client ? kClient : kBackend;
  p.sport = to_client ? 80 : lport;
  p.dport = to_client ? cport : kBport;
  p.tcp_flags = flags;
  p.seq = seq;
  p.ack = ack;
  p.ip_id = 0;
  return p;
}
// A forwarded packet: full-NAT addresses, TTL one less.
inline Pkt forwarded(Pkt p, bool to_client, uint16_t cport, uint16_t lport) {
  p.src_mac = kOurMac;
  p.dst_mac = to_client ? kClientMac : kBackendMac;
  p.src_ip = to_client ? kVip : kLocal;
  p.dst_ip = to_client ? kClient : kBackend;
  p.sport = to_client ? 80 : lport;
  p.dport = to_client ? cport : kBport;
  p.ttl = static_cast<uint8_t>(p.ttl - 1);
  return p;
}

}  // namespace rondo::dp::handshake
