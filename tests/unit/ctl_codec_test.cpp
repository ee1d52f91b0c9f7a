// The control protocol codec (dataplane/api/ctl.h): every message round-trips, and no
// malformed input (truncated, oversized counts, trailing bytes, bad headers) is accepted.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "dataplane/api/ctl.h"
#include "dataplane/api/validate.h"
#include "tests/common/lcore_stats.h"

namespace rondo::api {
namespace {

Addr ip(const char* s) {
  auto a = parse_addr(s);
  EXPECT_TRUE(a) << s;
  return a.value_or(Addr{});
}

State sample_state() {
  State s;
  s.generation = 42;
  s.timeouts = {1000, 2000, 3000, 4000};
  Vip web{.id = 0, .ip = ip("203.0.113.10"), .port = 80, .proto = Proto::kTcp};
  web.backends = {{.id = 0, .ip = ip("198.51.100.3"), .port = 3000, .weight = 1},
                  {.id = 1, .ip = ip("198.51.100.3"), .port = 3001, .weight = 7, .drained = true},
                  {.id = 2, .ip = ip("198.51.100.4"), .port = 3000, .weight = 0, .down = true}};
  Vip dns{.id = 1, .ip = ip("203.0.113.10"), .port = 53, .proto = Proto::kUdp};
  dns.backends = {{.id = 3, .ip = ip("198.51.100.5"), .port = 53}};
  Vip empty{.id = 2, .ip = ip("203.0.113.11"), .port = 443};
  web.syncookies = SynCookies::kAuto;
  web.proxy_protocol = ProxyProtocol::kV2;
  web.sched = Sched::kWeightedRoundRobin;
  dns.sched = Sched::kSourceHash;
  empty.sched = Sched::kMaglev;
  s.vips = {web, dns, empty};
  s.local_ips = {ip("198.51.100.100"), ip("198.51.100.101")};
  s.routes = {{.prefix = ip("0.0.0.0"), .prefix_len = 0, .iface = 0, .via = ip("198.51.100.1")},
              {.prefix = ip("10.0.0.0"), .prefix_len = 8, .iface = 1, .via = {}}};
  s.neighbours = {{.ip = ip("198.51.100.3"), .mac = {2, 0, 0, 0, 0, 3}, .iface = 0}};
  return s;
}

Stats sample_stats() {
  Stats s;
  s.generation = 7;
  s.drop_names = {"not_for_vip", "malformed_l3", "no_backend"};
  s.counters = test::lcore_counter_descs();
  s.lcores = {test::lcore_stats(1,
                                {{"rx_packets", 10}, {"tx_packets", 9}, {"rx_bytes", 1000},
                                 {"tx_bytes", 900}, {"busy_cycles", 123}, {"idle_cycles", 456},
                                 {"flows_active", 3}, {"flow_capacity", 1024}},
                                {1, 0, 0}),
              test::lcore_stats(2, {{"flow_capacity", 1024}}, {0, 0, 5})};
  s.backends = {{.id = 0, .packets = 5, .bytes = 500, .connections = 1, .active_flows = 1},
                {.id = 65535, .packets = UINT64_MAX},
                {.id = 7, .table_entries = 21846, .table_size = 65537}};
  s.ports = {{.port_id = 0, .name = "net_ring0", .ipackets = 1, .opackets = 2, .ibytes = 3,
              .obytes = 4, .imissed = 5, .ierrors = 6, .oerrors = 7, .rx_nombuf = 8},
             {.port_id = 1, .name = ""}};
  return s;
}

// Lcore counters travel with their descriptions; values that do not match them are a
// malformed message, never an out-of-range read on the control plane's side.
TEST(CtlCodec, LcoreCountersMustMatchTheirDescriptions) {
  Stats s = sample_stats();
  std::string err;
  auto ok = decode_stats(encode_stats(s), &err);
  ASSERT_TRUE(ok) << err;
  EXPECT_EQ(ok->value(ok->lcores[0], "rx_packets"), 10u);
  EXPECT_EQ(ok->value(ok->lcores[0], "no_such_counter"), 0u);
  s.lcores[1].counters.pop_back();
  EXPECT_FALSE(decode_stats(encode_stats(s), &err));
  EXPECT_EQ(err, "stats: lcore counters do not match their descriptions");
}

TEST(CtlCodec, StateRoundTrips) {
  const State s = sample_state();
  std::string err;
  auto d = decode_state(encode_state(s), &err);
  ASSERT_TRUE(d) << err;
  EXPECT_EQ(*d, s);
}

// Protocol 13: every address field carries 16 bytes, so an IPv6 value survives the codec
// wherever an address travels (the state, the inspect filter and the flow listing).
State v6_state() {
  State s;
  s.generation = 13;
  Vip web6{.id = 0, .ip = ip("2001:db8::10"), .port = 80};
  web6.backends = {{.id = 0, .ip = ip("2001:db8:100::3"), .port = 3000},
                   {.id = 1, .ip = ip("2001:db8:100::4"), .port = 3000, .weight = 3}};
  Vip nat46{.id = 1, .ip = ip("203.0.113.10"), .port = 8090};
  nat46.backends = {{.id = 2, .ip = ip("2001:db8:100::3"), .port = 3000}};
  s.vips = {web6, nat46};
  s.local_ips = {ip("198.51.100.100"), ip("2001:db8:100::100")};
  s.routes = {{.prefix = ip("::"), .prefix_len = 0, .iface = 0, .via = ip("fe80::1")},
              {.prefix = ip("2001:db8:200::"), .prefix_len = 48, .iface = 1, .via = ip("2001:db8:100::1")},
              {.prefix = ip("2001:db8:100::"), .prefix_len = 64, .iface = 0, .via = {}},
              {.prefix = ip("10.0.0.0"), .prefix_len = 8, .iface = 1, .via = ip("198.51.100.1")}};
  s.neighbours = {{.ip = ip("2001:db8:100::3"), .mac = {2, 0, 0, 0, 0, 3}, .iface = 0},
                  {.ip = ip("fe80::1"), .mac = {2, 0, 0, 0, 0, 1}, .iface = 0}};
  return s;
}

TEST(CtlCodec, Ipv6StateRoundTrips) {
  const State s = v6_state();
  std::string err;
  auto d = decode_state(encode_state(s), &err);
  ASSERT_TRUE(d) << err;
  EXPECT_EQ(*d, s);
  EXPECT_EQ(format_addr(d->vips[0].ip), "2001:db8::10");
  EXPECT_FALSE(d->vips[0].ip.is_v4());
  EXPECT_TRUE(d->vips[1].ip.is_v4());
  EXPECT_EQ(d->vips[1].ip.v4(), 0xcb00710au);
  EXPECT_TRUE(d->routes[2].via.is_zero());
  EXPECT_EQ(validate_state(s), "");
}

TEST(CtlCodec, AddressesAreSixteenRawBytesInNetworkOrder) {
  State s;
  s.local_ips = {ip("2001:db8::1"), ip("192.0.2.1")};
  const auto body = encode_state(s);
  // generation 8 + timeouts + vip count 4 + local ip count 4, then the addresses as they are.
  const size_t at = 8 + 4 * std::size(kTimeoutFields) + 4 + 4;
  ASSERT_EQ(body.size(), at + 2 * 16 + 4 + 4 + 4);  // then interface, route, neighbour counts
  const uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  const uint8_t v4[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1};
  EXPECT_EQ(std::memcmp(body.data() + at, v6, 16), 0);
  EXPECT_EQ(std::memcmp(body.data() + at + 16, v4, 16), 0);
}

TEST(CtlCodec, Ipv6FilterAndFlowInfoRoundTrip) {
  InspectRequest q;
  q.op = InspectOp::kFlows;
  q.filter = {.client_ip = ip("2001:db8:1::2"), .client_port = 40000, .vip_ip = ip("2001:db8::10"),
              .vip_port = 80, .proto = 6, .backend_ip = ip("2001:db8:100::3"), .backend_port = 3000,
              .local_ip = ip("2001:db8:100::100"), .local_port = 1025};
  std::string err;
  auto dq = decode_inspect_request(encode_inspect_request(q), &err);
  ASSERT_TRUE(dq) << err;
  EXPECT_EQ(*dq, q);

  InspectReply r;
  FlowInfo f;
  f.lcore = 1;
  f.proto = 6;
  f.client_ip = ip("2001:db8:1::2");
  f.vip_ip = ip("2001:db8::10");
  f.backend_ip = ip("198.51.100.3");  // NAT64: the backend side is IPv4
  f.local_ip = ip("198.51.100.100");
  f.client_port = 40000;
  f.vip_port = 80;
  f.backend_port = 3000;
  f.local_port = 1025;
  f.state = "established";
  r.flows = {f};
  auto dr = decode_inspect_reply(encode_inspect_reply(r), &err);
  ASSERT_TRUE(dr) << err;
  EXPECT_EQ(*dr, r);
  // Every truncation of the 16-byte addresses is refused.
  const auto bytes = encode_inspect_reply(r);
  for (size_t n = 0; n < bytes.size(); ++n)
    EXPECT_FALSE(decode_inspect_reply(std::span(bytes.data(), n), &err)) << n;
}

// A peer still on protocol 12 (4-byte addresses) is refused at the header, before its
// payload is read as 16-byte addresses.
TEST(CtlCodec, Protocol12FrameIsRefused) {
  EXPECT_EQ(kVersion, 14);
  auto f = frame(MsgType::kSetState, 1, encode_state(sample_state()));
  MsgHeader h;
  std::memcpy(&h, f.data(), sizeof h);
  h.version = 12;
  EXPECT_EQ(check_header(h), "unsupported protocol version 12 (want 14)");
}

TEST(Addr, Ipv4IsMappedAndKeepsHostOrderAccess) {
  const Addr a = Addr::from_v4(0xcb00710a);
  EXPECT_TRUE(a.is_v4());
  EXPECT_EQ(a.family(), Family::kV4);
  EXPECT_EQ(a.v4(), 0xcb00710au);
  EXPECT_EQ(a, ip("203.0.113.10"));
  const std::array<uint8_t, 16> want{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 203, 0, 113, 10};
  EXPECT_EQ(a.b, want);
  EXPECT_TRUE(Addr::from_v4(0).is_v4());  // 0.0.0.0 is not the unset address
  EXPECT_FALSE(Addr::from_v4(0).is_zero());
  EXPECT_FALSE(Addr{}.is_v4());
  EXPECT_EQ(Addr{}.v4(), 0u);
  EXPECT_EQ(ip("2001:db8::1").family(), Family::kV6);
  // Ordered as the bytes: every v4 address sorts inside ::ffff:0:0/96.
  EXPECT_LT(ip("::1"), ip("0.0.0.1"));
  EXPECT_LT(ip("10.0.0.1"), ip("10.0.0.2"));
  EXPECT_LT(ip("255.255.255.255"), ip("2001:db8::"));
}

TEST(Addr, FormatsAndParsesBothFamilies) {
  struct Case {
    const char* in;
    const char* out;  // RFC 5952: lower case, longest zero run compressed, no 1-field ::
  };
  for (const Case& c : {Case{"203.0.113.10", "203.0.113.10"}, Case{"2001:DB8::10", "2001:db8::10"},
                        Case{"2001:db8:0:0:0:0:2:1", "2001:db8::2:1"},
                        Case{"2001:0db8:0000:0000:0001:0000:0000:0001", "2001:db8::1:0:0:1"},
                        Case{"2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"},
                        Case{"fe80::1", "fe80::1"}, Case{"::", "::"}, Case{"::1", "::1"}}) {
    auto a = parse_addr(c.in);
    ASSERT_TRUE(a) << c.in;
    EXPECT_EQ(format_addr(*a), c.out) << c.in;
  }
  // The mapped range is how v4 is held: written as v6 it is refused, never silently v4.
  for (const char* bad : {"", "1.2.3", "256.1.1.1", "2001:db8::g", "2001:db8::1 ", "1:2:3:4:5:6:7:8:9",
                          "::ffff:192.0.2.1", "::ffff:c000:201", "[2001:db8::1]", "10.0.0.1/8"})
    EXPECT_FALSE(parse_addr(bad)) << bad;
}

TEST(Addr, EndpointsBracketIpv6) {
  EXPECT_EQ(format_endpoint(ip("2001:db8::10"), 80), "[2001:db8::10]:80");
  EXPECT_EQ(format_endpoint(ip("203.0.113.10"), 80), "203.0.113.10:80");
  auto e = parse_endpoint("[2001:db8::10]:8080");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->ip, ip("2001:db8::10"));
  EXPECT_EQ(e->port, 8080);
  e = parse_endpoint("198.51.100.3:0");
  ASSERT_TRUE(e);
  EXPECT_EQ(*e, (Endpoint{ip("198.51.100.3"), 0}));
  for (const char* bad : {"2001:db8::10:80", "[203.0.113.10]:80", "[2001:db8::10]", "[2001:db8::10]:",
                          "[2001:db8::10]:65536", "203.0.113.10", "203.0.113.10:8o", ":80",
                          "[::ffff:1.2.3.4]:80", "[2001:db8::10]:-1"})
    EXPECT_FALSE(parse_endpoint(bad)) << bad;
}

TEST(CtlCodec, EmptyStateRoundTrips) {
  const State s;
  std::string err;
  auto d = decode_state(encode_state(s), &err);
  ASSERT_TRUE(d) << err;
  EXPECT_EQ(*d, s);
}

TEST(CtlCodec, InfoRoundTrips) {
  const DataplaneInfo i{.pid = 1234, .n_workers = 2, .n_ports = 3, .n_drop_reasons = 9,
                        .instance = 0xfeedfacecafebeefull, .generation = 17,
                        .adopted_flows = 1'000'000, .discarded_flows = 3, .start_kind = 2,
                        .gap_ms = 412, .mtu = 9000};
  std::string err;
  auto d = decode_info(encode_info(i), &err);
  ASSERT_TRUE(d) << err;
  EXPECT_EQ(*d, i);
  // A start kind this build does not know is refused, not shown as something else.
  auto bad = encode_info(i);
  bad[bad.size() - 9] = 3;  // start_kind, before gap_ms and mtu
  EXPECT_FALSE(decode_info(bad, &err));
  EXPECT_EQ(err, "info: unknown start kind");
}

TEST(CtlCodec, AckRoundTrips) {
  for (const Ack& a : {Ack{true, 3, "applied"}, Ack{false, 0, ""},
                       Ack{false, 9, std::string("with\0nul", 8)}}) {
    std::string err;
    auto d = decode_ack(encode_ack(a), &err);
    ASSERT_TRUE(d) << err;
    EXPECT_EQ(*d, a);
  }
}

TEST(CtlCodec, StatsRoundTrips) {
  for (const Stats& s : {sample_stats(), Stats{}}) {
    std::string err;
    auto d = decode_stats(encode_stats(s), &err);
    ASSERT_TRUE(d) << err;
    EXPECT_EQ(*d, s);
  }
}

// Protocol 14: interfaces in the state (routes and neighbours name one), per-interface
// traffic in the stats. Every field survives, each truncation is refused, and a peer on 13
// (no interfaces on the wire) is refused at the header.
State iface_state() {
  State s = sample_state();
  Interface backends{.id = 0, .name = "backends", .port_id = 0, .vlan = 0, .mtu = 9000};
  backends.addresses = {{ip("198.51.100.254"), 24}};
  Interface clients{.id = 255, .name = "clients.v100", .port_id = 1, .vlan = 4094, .mtu = 0};
  clients.addresses = {{ip("192.0.2.1"), 24}, {ip("2001:db8:200::1"), 64}, {ip("192.0.2.9"), 32}};
  s.interfaces = {backends, clients, Interface{.id = 7, .name = "bare", .port_id = 7}};
  s.routes[1].iface = 255;
  s.neighbours[0].iface = 255;
  return s;
}

TEST(CtlCodec, InterfacesRoundTrip) {
  const State s = iface_state();
  std::string err;
  auto d = decode_state(encode_state(s), &err);
  ASSERT_TRUE(d) << err;
  EXPECT_EQ(*d, s);
  ASSERT_EQ(d->interfaces.size(), 3u);
  EXPECT_EQ(d->interfaces[1].name, "clients.v100");
  EXPECT_EQ(d->interfaces[1].vlan, 4094);
  EXPECT_EQ(d->interfaces[1].addresses[1].len, 64);
  EXPECT_EQ(format_addr(d->interfaces[1].addresses[1].addr), "2001:db8:200::1");
  EXPECT_EQ(d->routes[1].iface, 255);
  EXPECT_EQ(d->neighbours[0].iface, 255);
  const auto bytes = encode_state(s);
  for (size_t n = 0; n < bytes.size(); ++n) {
    const std::vector<uint8_t> prefix(bytes.begin(), bytes.begin() + n);
    EXPECT_FALSE(decode_state(prefix, &err)) << "prefix of " << n << " bytes accepted";
  }

  Stats st = sample_stats();
  st.interfaces = {{.id = 0, .name = "backends", .port_id = 0, .vlan = 0, .mtu = 9000,
                    .rx_packets = 1, .rx_bytes = 2, .tx_packets = 3, .tx_bytes = UINT64_MAX},
                   {.id = 255, .name = "clients.v100", .port_id = 1, .vlan = 4094, .mtu = 1500}};
  auto ds = decode_stats(encode_stats(st), &err);
  ASSERT_TRUE(ds) << err;
  EXPECT_EQ(*ds, st);
  const auto sbytes = encode_stats(st);
  for (size_t n = 0; n < sbytes.size(); ++n) {
    const std::vector<uint8_t> prefix(sbytes.begin(), sbytes.begin() + n);
    EXPECT_FALSE(decode_stats(prefix, &err)) << "prefix of " << n << " bytes accepted";
  }
}

TEST(CtlCodec, MoreThan256InterfacesAreRefused) {
  State s;
  for (uint16_t i = 0; i <= kMaxInterfaces; ++i) s.interfaces.push_back({.id = i, .name = "x"});
  std::string err;
  EXPECT_FALSE(decode_state(encode_state(s), &err));
  EXPECT_FALSE(err.empty());
  s.interfaces.pop_back();
  EXPECT_TRUE(decode_state(encode_state(s), &err)) << err;
}

TEST(CtlCodec, Protocol13FrameIsRefused) {
  auto f = frame(MsgType::kSetState, 1, encode_state(iface_state()));
  MsgHeader h;
  std::memcpy(&h, f.data(), sizeof h);
  EXPECT_EQ(check_header(h), "");
  h.version = 13;
  EXPECT_EQ(check_header(h), "unsupported protocol version 13 (want 14)");
}

TEST(CtlCodec, EveryTruncatedStateIsRejected) {
  const auto bytes = encode_state(sample_state());
  for (size_t n = 0; n < bytes.size(); ++n) {
    // A copy of exactly n bytes, so that a read past the end is an ASan error, not luck.
    const std::vector<uint8_t> prefix(bytes.begin(), bytes.begin() + n);
    std::string err;
    EXPECT_FALSE(decode_state(prefix, &err)) << "prefix of " << n << " bytes accepted";
    EXPECT_FALSE(err.empty());
  }
}

TEST(CtlCodec, EveryTruncatedStatsIsRejected) {
  const auto bytes = encode_stats(sample_stats());
  for (size_t n = 0; n < bytes.size(); ++n) {
    const std::vector<uint8_t> prefix(bytes.begin(), bytes.begin() + n);
    std::string err;
    EXPECT_FALSE(decode_stats(prefix, &err)) << "prefix of " << n << " bytes accepted";
  }
}

TEST(CtlCodec, EveryTruncatedInfoAndAckIsRejected) {
  const auto info = encode_info(DataplaneInfo{.pid = 1});
  for (size_t n = 0; n < info.size(); ++n)
    EXPECT_FALSE(decode_info(std::vector<uint8_t>(info.begin(), info.begin() + n), nullptr));
  const auto ack = encode_ack(Ack{true, 1, "applied"});
  for (size_t n = 0; n < ack.size(); ++n)
    EXPECT_FALSE(decode_ack(std::vector<uint8_t>(ack.begin(), ack.begin() + n), nullptr));
}

// generation + the timeouts, the fixed head of a state body.
constexpr size_t kStateHead = 8 + 4 * std::size(kTimeoutFields);

void put_u32(std::vector<uint8_t>* b, size_t off, uint32_t v) { std::memcpy(b->data() + off, &v, 4); }

TEST(CtlCodec, HugeCountIsRejectedWithoutAllocating) {
  auto bytes = encode_state(State{});
  put_u32(&bytes, kStateHead, 0xffffffffu);  // vip count
  std::string err;
  EXPECT_FALSE(decode_state(bytes, &err));
  EXPECT_EQ(err, "state: bad vip count");

  auto stats = encode_stats(Stats{});
  put_u32(&stats, 8, 0xfffffff0u);  // drop name count
  EXPECT_FALSE(decode_stats(stats, &err));

  // A string length larger than what is left.
  auto ack = encode_ack(Ack{false, 1, "x"});
  put_u32(&ack, 1 + 8, 0x7fffffffu);
  EXPECT_FALSE(decode_ack(ack, &err));
}

TEST(CtlCodec, HugeBackendCountInsideAVipIsRejected) {
  State s;
  s.vips = {Vip{.id = 0, .ip = Addr::from_v4(1), .port = 1}};
  auto bytes = encode_state(s);
  // vip count, then id, ip (16 bytes), port, proto, mode, sched, syncookies, proxy_protocol,
  // on_all_down, then the backend count.
  put_u32(&bytes, kStateHead + 4 + 4 + 16 + 2 + 6, 1u << 30);
  std::string err;
  EXPECT_FALSE(decode_state(bytes, &err));
}

TEST(CtlCodec, TrailingBytesAreRejected) {
  std::string err;
  auto state = encode_state(sample_state());
  state.push_back(0);
  EXPECT_FALSE(decode_state(state, &err));
  EXPECT_EQ(err, "state: trailing bytes");

  auto stats = encode_stats(sample_stats());
  stats.push_back(0);
  EXPECT_FALSE(decode_stats(stats, &err));
  auto info = encode_info(DataplaneInfo{});
  info.push_back(0);
  EXPECT_FALSE(decode_info(info, &err));
  auto ack = encode_ack(Ack{});
  ack.push_back(0);
  EXPECT_FALSE(decode_ack(ack, &err));
}

TEST(CtlCodec, BadEnumsAndBoolsAreRejected) {
  State s;
  s.vips = {Vip{.id = 0, .ip = Addr::from_v4(1), .port = 1}};
  s.vips[0].backends = {Backend{.id = 0, .ip = Addr::from_v4(2), .port = 2}};
  const auto good = encode_state(s);
  const size_t proto_off = kStateHead + 4 + 4 + 16 + 2;  // addresses: 16 bytes
  const size_t drained_off = proto_off + 6 + 4 + 4 + 16 + 2 + 2;
  ASSERT_TRUE(decode_state(good, nullptr));
  struct Case {
    size_t off;
    uint8_t value;
  };
  for (auto [off, value] : {Case{proto_off, 1}, Case{proto_off + 1, 0}, Case{proto_off + 1, 5},
                            Case{proto_off + 2, 0}, Case{proto_off + 3, 3}, Case{proto_off + 4, 2},
                            Case{proto_off + 5, 2},
                            Case{drained_off, 2}, Case{drained_off + 1, 0xff}}) {
    auto bad = good;
    bad[off] = value;
    EXPECT_FALSE(decode_state(bad, nullptr)) << "byte " << off << " = " << int(value);
  }
  auto ack = encode_ack(Ack{});
  ack[0] = 2;
  EXPECT_FALSE(decode_ack(ack, nullptr));

  // Every scheduler decodes; the value after the last one does not, and says which.
  uint8_t last = 0;
  for (const auto& n : kSchedNames) {
    auto b = good;
    b[proto_off + 2] = static_cast<uint8_t>(n.sched);
    auto d = decode_state(b, nullptr);
    ASSERT_TRUE(d) << n.name;
    EXPECT_EQ(d->vips[0].sched, n.sched);
    last = std::max(last, static_cast<uint8_t>(n.sched));
  }
  auto bad = good;
  bad[proto_off + 2] = static_cast<uint8_t>(last + 1);
  std::string err;
  EXPECT_FALSE(decode_state(bad, &err));
  EXPECT_EQ(err, "state: unknown scheduler " + std::to_string(last + 1));

  // The same for modes, and on_all_down's two values.
  last = 0;
  for (const auto& n : kModeNames) {
    auto b = good;
    b[proto_off + 1] = static_cast<uint8_t>(n.mode);
    auto d = decode_state(b, nullptr);
    ASSERT_TRUE(d) << n.name;
    EXPECT_EQ(d->vips[0].mode, n.mode);
    last = std::max(last, static_cast<uint8_t>(n.mode));
  }
  bad = good;
  bad[proto_off + 1] = static_cast<uint8_t>(last + 1);
  EXPECT_FALSE(decode_state(bad, &err));
  EXPECT_EQ(err, "state: unknown vip mode " + std::to_string(last + 1));
  bad = good;
  bad[proto_off + 5] = 1;
  auto open = decode_state(bad, nullptr);
  ASSERT_TRUE(open);
  EXPECT_EQ(open->vips[0].on_all_down, OnAllDown::kOpen);
}

TEST(CtlCodec, ValidationRefusesAnUnknownScheduler) {
  State s = sample_state();
  EXPECT_EQ(validate_state(s), "");
  s.vips[1].sched = static_cast<Sched>(99);
  EXPECT_EQ(validate_state(s), "vips[1].scheduler: 99 is not a scheduler");
}

TEST(CtlCodec, FrameCarriesHeaderAndPayload) {
  const std::vector<uint8_t> payload{1, 2, 3};
  auto f = frame(MsgType::kSetState, 99, payload);
  ASSERT_EQ(f.size(), sizeof(MsgHeader) + 3);
  MsgHeader h;
  std::memcpy(&h, f.data(), sizeof h);
  EXPECT_EQ(h.magic, kMagic);
  EXPECT_EQ(h.version, kVersion);
  EXPECT_EQ(h.type, static_cast<uint16_t>(MsgType::kSetState));
  EXPECT_EQ(h.length, 3u);
  EXPECT_EQ(h.seq, 99u);
  EXPECT_EQ(check_header(h), "");
  EXPECT_EQ(std::vector<uint8_t>(f.begin() + sizeof h, f.end()), payload);
  // "RNDO" on the wire.
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(f.data()), 4), "RNDO");
}

TEST(CtlCodec, CheckHeaderRejectsBadHeaders) {
  const MsgHeader good{kMagic, kVersion, static_cast<uint16_t>(MsgType::kHello), 0, 1};
  EXPECT_EQ(check_header(good), "");
  auto h = good;
  h.magic = 0x12345678;
  EXPECT_EQ(check_header(h), "bad magic");
  h = good;
  h.version = kVersion + 1;
  EXPECT_EQ(check_header(h), "unsupported protocol version " + std::to_string(kVersion + 1) +
                                 " (want " + std::to_string(kVersion) + ")");
  h = good;
  h.type = 0;
  EXPECT_EQ(check_header(h), "unknown message type 0");
  h.type = static_cast<uint16_t>(MsgType::kRestartReply) + 1;
  EXPECT_EQ(check_header(h), "unknown message type 12");
  h = good;
  h.length = kMaxPayload;
  EXPECT_EQ(check_header(h), "");
  h.length = kMaxPayload + 1;
  EXPECT_EQ(check_header(h), "payload too large: " + std::to_string(kMaxPayload + 1));
}

class SocketPair : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds_), 0); }
  void TearDown() override {
    for (int fd : fds_)
      if (fd >= 0) close(fd);
  }
  int fds_[2] = {-1, -1};
};

TEST_F(SocketPair, SendAndReceiveAMessage) {
  const auto body = encode_state(sample_state());
  ASSERT_TRUE(send_msg(fds_[0], MsgType::kSetState, 5, body));
  MsgHeader h;
  std::vector<uint8_t> payload;
  std::string err;
  ASSERT_TRUE(recv_msg(fds_[1], &h, &payload, &err)) << err;
  EXPECT_EQ(h.type, static_cast<uint16_t>(MsgType::kSetState));
  EXPECT_EQ(h.seq, 5u);
  EXPECT_EQ(payload, body);
}

TEST_F(SocketPair, ReceiveRejectsABadHeader) {
  MsgHeader h{0xdeadbeef, kVersion, 1, 0, 0};
  ASSERT_EQ(write(fds_[0], &h, sizeof h), static_cast<ssize_t>(sizeof h));
  std::vector<uint8_t> payload;
  std::string err;
  EXPECT_FALSE(recv_msg(fds_[1], &h, &payload, &err));
  EXPECT_EQ(err, "bad magic");
}

TEST_F(SocketPair, ReceiveReportsEofMidMessage) {
  auto f = frame(MsgType::kHello, 1, std::vector<uint8_t>(10, 0));
  ASSERT_EQ(write(fds_[0], f.data(), f.size() - 1), static_cast<ssize_t>(f.size() - 1));
  close(fds_[0]);
  fds_[0] = -1;
  MsgHeader h;
  std::vector<uint8_t> payload;
  std::string err;
  EXPECT_FALSE(recv_msg(fds_[1], &h, &payload, &err));
  EXPECT_EQ(err, "connection closed mid-message");
  EXPECT_FALSE(recv_msg(fds_[1], &h, &payload, &err));
  EXPECT_EQ(err, "connection closed");
}

TEST(ValidateState, SampleIsValid) { EXPECT_EQ(validate_state(sample_state()), ""); }

TEST(ValidateState, CatchesDuplicateVipIds) {
  auto s = sample_state();
  s.vips[1].id = s.vips[0].id;
  EXPECT_EQ(validate_state(s), "vips[1].id: vip id 0 is used twice (see vips[0].id)");
}

TEST(ValidateState, CatchesDuplicateBackendIdsAcrossVips) {
  auto s = sample_state();
  s.vips[1].backends[0].id = 1;
  EXPECT_EQ(validate_state(s), "vips[1].backends[0].id: backend id 1 is used twice (see vips[0].backends[1].id)");
}

TEST(ValidateState, CatchesOutOfRangeIds) {
  auto s = sample_state();
  s.vips[2].id = kMaxVipId + 1;
  EXPECT_EQ(validate_state(s), "vips[2].id: 4096 is not a vip id (0-4095)");
  s = sample_state();
  s.vips[2].id = kMaxVipId;
  EXPECT_EQ(validate_state(s), "");
  s.vips[1].backends[0].id = kMaxBackendId + 1;
  EXPECT_EQ(validate_state(s), "vips[1].backends[0].id: 65536 is not a backend id (0-65535)");
  s.vips[1].backends[0].id = kMaxBackendId;
  EXPECT_EQ(validate_state(s), "");
}

TEST(ValidateState, CatchesZeroPortsAndAddresses) {
  auto s = sample_state();
  s.vips[0].port = 0;
  EXPECT_EQ(validate_state(s), "vips[0].port: 0 is not a port (1-65535)");
  s = sample_state();
  s.vips[0].ip = ip("0.0.0.0");
  EXPECT_EQ(validate_state(s), "vips[0].address: 0.0.0.0 is in 0.0.0.0/8, not a host address");
  s = sample_state();
  s.vips[0].backends[1].port = 0;
  EXPECT_EQ(validate_state(s),
            "vips[0].backends[1].port: 0 is not a port (1-65535)");
}

TEST(ValidateState, CatchesDuplicateVips) {
  auto s = sample_state();
  s.vips[2].ip = s.vips[0].ip;
  s.vips[2].port = s.vips[0].port;
  EXPECT_EQ(validate_state(s), "vips[2].address: 203.0.113.10:80/tcp is already served by another vip (see vips[0].address)");
  s.vips[2].proto = Proto::kUdp;  // same address and port, other protocol: a different vip
  EXPECT_EQ(validate_state(s), "");
}

TEST(ValidateState, CatchesSynCookiesOnUdp) {
  auto s = sample_state();
  s.vips[1].syncookies = SynCookies::kOn;
  EXPECT_EQ(validate_state(s), "vips[1].syncookies: SYN cookies apply to tcp vips only");
  s.vips[1].syncookies = SynCookies::kOff;
  EXPECT_EQ(validate_state(s), "");
}

TEST(ValidateState, CatchesProxyProtocolOnUdp) {
  auto s = sample_state();
  s.vips[1].proxy_protocol = ProxyProtocol::kV2;
  EXPECT_EQ(validate_state(s), "vips[1].proxy_protocol: PROXY protocol applies to tcp vips only");
  s.vips[1].proxy_protocol = ProxyProtocol::kOff;
  EXPECT_EQ(validate_state(s), "");
}

TEST(ValidateState, CatchesMissingLocalIp) {
  auto s = sample_state();
  s.local_ips.clear();
  EXPECT_EQ(validate_state(s), "local_ips: at least one local ip is needed: full-NAT uses it as the source address");
  s.vips.clear();
  EXPECT_EQ(validate_state(s), "");
}

TEST(ValidateState, CatchesBadRoutesAndTimeouts) {
  auto s = sample_state();
  s.routes[1].prefix_len = 33;
  EXPECT_EQ(validate_state(s), "routes[1].prefix: 10.0.0.0/33: prefix length must be 0-32");
  s = sample_state();
  s.timeouts.udp_ms = 0;
  EXPECT_EQ(validate_state(s), "timeouts.udp: 0 is not a timeout in seconds (1-4294967)");
}

TEST(Ipv4, ParsesAndFormats) {
  uint32_t v = 0;
  ASSERT_TRUE(parse_ipv4("203.0.113.10", &v));
  EXPECT_EQ(v, 0xcb00710au);
  EXPECT_EQ(format_ipv4(v), "203.0.113.10");
  for (const char* bad : {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "a.b.c.d", "1.2.3.4 ", "::1"})
    EXPECT_FALSE(parse_ipv4(bad, &v)) << bad;
}

}  // namespace
}  // namespace rondo::api
