// The XDP address filter (bpf/rondo_xdp.bpf.c, fed by port/xdp_filter.h): the program is
// loaded from the build and run on frames with BPF_PROG_TEST_RUN, its maps filled by
// XdpAddressFilter as the control agent fills them. A frame for rondo is redirected to the
// queue's AF_XDP socket; there is none here, so the program is loaded with
// no_socket_action = XDP_DROP: XDP_DROP means "to rondo", XDP_PASS "to the host".
// Needs root (CAP_BPF) and the object (clang): skipped otherwise.
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "dataplane/port/multicast.h"
#include "dataplane/port/xdp_filter.h"
#include "tests/common/iface_setup.h"
#include "tests/common/packet_builder.h"

namespace rondo::dp {
namespace {

using test::Frame;
using test::Ip16;
using test::Pkt;

const char* kVip = "203.0.113.10";
const char* kLocal = "198.51.100.100";
const char* kVip6 = "2001:db8::10";
const char* kLocal6 = "2001:db8:100::100";
const char* kHost6 = "2001:db8:100::254";  // the host kernel's own address on the link
const char* kLinkLocal = "fe80::ff:fe00:1";   // EUI-64 of 02:00:00:00:00:01

Ip6 ip6(const char* s) {
  const Ip16 a = test::ip6(s);
  return Ip6::from(a.data());
}
uint32_t ip4_net(const char* s) { return htonl(test::ip4(s)); }

constexpr uint32_t kToRondo = XDP_DROP, kToHost = XDP_PASS;

class XdpFilter : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* build = std::getenv("RONDO_BUILD");
    const std::string path = std::string(build ? build : "build") + "/bpf/rondo_xdp.bpf.o";
    if (access(path.c_str(), R_OK) != 0) GTEST_SKIP() << "no " << path << " (clang missing?)";
    if (geteuid() != 0) GTEST_SKIP() << "needs root to load an XDP program";
    obj_ = bpf_object__open_file(path.c_str(), nullptr);
    ASSERT_TRUE(obj_ != nullptr) << path;
    set_rodata_u32("no_socket_action", XDP_DROP);
    if (bpf_object__load(obj_) != 0) GTEST_SKIP() << "cannot load " << path << ": " << std::strerror(errno);
    prog_ = bpf_program__fd(bpf_object__find_program_by_name(obj_, "rondo_xdp"));
    const int fd4 = bpf_map__fd(bpf_object__find_map_by_name(obj_, "rondo_addrs"));
    const int fd6 = bpf_map__fd(bpf_object__find_map_by_name(obj_, "rondo_addrs6"));
    ASSERT_GE(fd4, 0);
    ASSERT_GE(fd6, 0);
    filter_ = XdpAddressFilter::over(dup(fd4), dup(fd6), ip6(kLinkLocal));
    std::string err;
    ASSERT_TRUE(filter_->apply({ip4_net(kVip), ip4_net(kLocal)}, {ip6(kVip6), ip6(kLocal6)}, &err)) << err;
  }
  void TearDown() override {
    filter_.reset();
    if (obj_) bpf_object__close(obj_);
  }

  // A const volatile global of the object's .rodata, found through its BTF.
  void set_rodata_u32(const char* name, uint32_t v) {
    bpf_map* rodata = nullptr;
    bpf_map* m;
    bpf_object__for_each_map(m, obj_)
      if (std::strstr(bpf_map__name(m), ".rodata")) rodata = m;
    ASSERT_TRUE(rodata != nullptr);
    size_t size = 0;
    // libbpf returns the mmapped initial value, writable until load (const in its header).
    auto* data = static_cast<uint8_t*>(const_cast<void*>(bpf_map__initial_value(rodata, &size)));
    const btf* b = bpf_object__btf(obj_);
    const int sec = btf__find_by_name_kind(b, ".rodata", BTF_KIND_DATASEC);
    ASSERT_GT(sec, 0);
    const btf_type* t = btf__type_by_id(b, static_cast<uint32_t>(sec));
    const auto* vars = reinterpret_cast<const btf_var_secinfo*>(t + 1);
    for (uint16_t i = 0; i < BTF_INFO_VLEN(t->info); ++i) {
      const btf_type* var = btf__type_by_id(b, vars[i].type);
      if (std::strcmp(btf__name_by_offset(b, var->name_off), name) != 0) continue;
      ASSERT_LE(vars[i].offset + 4, size);
      std::memcpy(data + vars[i].offset, &v, 4);
      return;
    }
    FAIL() << name << " not in .rodata";
  }

  uint32_t run(const Frame& f) {
    bpf_test_run_opts o{};
    o.sz = sizeof o;
    o.data_in = f.data();
    o.data_size_in = static_cast<uint32_t>(f.size());
    o.repeat = 1;
    EXPECT_EQ(bpf_prog_test_run_opts(prog_, &o), 0) << std::strerror(errno);
    return o.retval;
  }

  static Pkt tcp6(const char* src, const char* dst) {
    Pkt p;
    p.v6 = true;
    p.src6 = test::ip6(src);
    p.dst6 = test::ip6(dst);
    p.sport = 40000;
    p.dport = 80;
    return p;
  }
  // A neighbour solicitation for `target` to its solicited-node group.
  static test::Ndp ns(const char* target) {
    test::Ndp n;
    n.eth_src = {0x02, 0, 0, 0, 0, 0x02};
    n.src6 = test::ip6("2001:db8:100::2");
    n.target = test::ip6(target);
    n.lladdr = n.eth_src;
    return n;
  }

  bpf_object* obj_ = nullptr;
  int prog_ = -1;
  std::unique_ptr<XdpAddressFilter> filter_;
};

TEST_F(XdpFilter, Ipv4AsBefore) {
  Pkt p;
  p.src_ip = test::ip4("198.51.100.2");
  p.dst_ip = test::ip4(kVip);
  p.dport = 80;
  EXPECT_EQ(run(test::build(p)), kToRondo);
  p.dst_ip = test::ip4("198.51.100.254");  // the host's
  EXPECT_EQ(run(test::build(p)), kToHost);
  test::Arp a;
  a.sip = test::ip4("198.51.100.2");
  a.tip = test::ip4(kLocal);
  EXPECT_EQ(run(test::build(a)), kToRondo);
  a.tip = test::ip4("198.51.100.254");
  EXPECT_EQ(run(test::build(a)), kToHost);
  EXPECT_EQ(filter_->size(), 2u);
}

TEST_F(XdpFilter, Ipv6ToOurAddressesGoesToRondoTheRestToTheHost) {
  EXPECT_EQ(run(test::build(tcp6("2001:db8:100::2", kVip6))), kToRondo);
  EXPECT_EQ(run(test::build(tcp6("2001:db8:100::3", kLocal6))), kToRondo);
  Pkt tagged = tcp6("2001:db8:100::2", kVip6);
  tagged.vlan = 42;
  EXPECT_EQ(run(test::build(tagged)), kToRondo);
  EXPECT_EQ(run(test::build(tcp6("2001:db8:100::2", kHost6))), kToHost);
  // rondo's link-local address is the host's too (same MAC): only NDP goes to rondo.
  EXPECT_EQ(run(test::build(tcp6("fe80::1", kLinkLocal))), kToHost);
  // 2 VIP/local ips + the link-local.
  EXPECT_EQ(filter_->size6(), 3u);
  // A truncated IPv6 header: the host's to judge.
  Frame cut = test::build(tcp6("2001:db8:100::2", kVip6));
  cut.resize(14 + 39);
  EXPECT_EQ(run(cut), kToHost);
}

TEST_F(XdpFilter, NeighbourDiscoveryForOurAddressesReachesRondo) {
  // A solicitation to the solicited-node group of a VIP, of a local ip, of the link-local.
  EXPECT_EQ(run(test::build(ns(kVip6))), kToRondo);
  EXPECT_EQ(run(test::build(ns(kLocal6))), kToRondo);
  EXPECT_EQ(run(test::build(ns(kLinkLocal))), kToRondo);
  // Unicast (neighbour unreachability detection) to our address.
  test::Ndp nud = ns(kVip6);
  nud.dst6 = test::ip6(kVip6);
  nud.eth_dst = {0x02, 0, 0, 0, 0, 0x01};
  EXPECT_EQ(run(test::build(nud)), kToRondo);
  // An advertisement answering rondo's solicitation (sent from the link-local address).
  test::Ndp na;
  na.type = 136;
  na.eth_src = {0x02, 0, 0, 0, 0, 0x03};
  na.eth_dst = {0x02, 0, 0, 0, 0, 0x01};
  na.src6 = na.target = test::ip6("2001:db8:100::3");
  na.dst6 = test::ip6(kLinkLocal);
  na.solicited = true;
  na.lladdr = na.eth_src;
  EXPECT_EQ(run(test::build(na)), kToRondo);
  // The host's: a solicitation for its own address, and other multicast (an unsolicited
  // advertisement to all nodes, an MLD report, a router advertisement).
  EXPECT_EQ(run(test::build(ns(kHost6))), kToHost);
  na.dst6 = test::ip6("ff02::1");
  na.eth_dst = {};
  na.solicited = false;
  EXPECT_EQ(run(test::build(na)), kToHost);
  Pkt mld = tcp6("fe80::2", "ff02::16");
  mld.proto = 58;
  mld.icmp_type = 143;
  mld.dst_mac = {0x33, 0x33, 0, 0, 0, 0x16};
  EXPECT_EQ(run(test::build(mld)), kToHost);
  test::Ndp ra;
  ra.type = 134;
  ra.eth_src = {0x02, 0, 0, 0, 0, 0x09};
  ra.src6 = test::ip6("fe80::9");
  ra.dst6 = test::ip6("ff02::1");
  EXPECT_EQ(run(test::build(ra)), kToHost);
}

TEST_F(XdpFilter, MapsFollowTheConfiguration) {
  std::string err;
  // The VIP6 goes, a new local ip comes; the v4 VIP goes.
  ASSERT_TRUE(filter_->apply({ip4_net(kLocal)}, {ip6(kLocal6), ip6("2001:db8:100::101")}, &err)) << err;
  EXPECT_EQ(run(test::build(tcp6("2001:db8:100::2", kVip6))), kToHost);
  EXPECT_EQ(run(test::build(ns(kVip6))), kToHost);
  EXPECT_EQ(run(test::build(tcp6("2001:db8:100::2", "2001:db8:100::101"))), kToRondo);
  EXPECT_EQ(filter_->size(), 1u);
  EXPECT_EQ(filter_->size6(), 3u);
  // A local ip that is the link-local address itself: everything to it goes to rondo.
  ASSERT_TRUE(filter_->apply({}, {ip6(kLinkLocal)}, &err)) << err;
  EXPECT_EQ(run(test::build(tcp6("fe80::1", kLinkLocal))), kToRondo);
  EXPECT_EQ(filter_->size6(), 1u);
  ASSERT_TRUE(filter_->apply({}, {ip6(kLocal6)}, &err)) << err;
  EXPECT_EQ(run(test::build(tcp6("fe80::1", kLinkLocal))), kToHost);
  EXPECT_EQ(run(test::build(ns(kLinkLocal))), kToRondo);  // NDP for it still
  // No IPv6 address at all: the link-local address is the host's alone, NDP included.
  ASSERT_TRUE(filter_->apply({ip4_net(kVip)}, {}, &err)) << err;
  EXPECT_EQ(filter_->size6(), 0u);
  EXPECT_EQ(run(test::build(ns(kLinkLocal))), kToHost);
  EXPECT_EQ(run(test::build(ns(kLocal6))), kToHost);
}

// Interfaces: the maps hold what the port answers for (port/multicast.h port_addrs), the
// own addresses of its interfaces (every VLAN of it) included, another port's not.
TEST_F(XdpFilter, InterfaceAddressesOfThePortReachRondoOnTheirVlan) {
  api::State st;
  st.generation = 1;
  api::Vip v4, v6;
  v4.id = 1;
  v4.ip = api::Addr::from_v4(test::ip4(kVip));
  v4.port = 80;
  v6.id = 2;
  const Ip16 vip6 = test::ip6(kVip6);
  std::memcpy(v6.ip.b.data(), vip6.data(), 16);
  v6.port = 80;
  st.vips = {v4, v6};
  api::Addr l6;
  const Ip16 local6 = test::ip6(kLocal6);
  std::memcpy(l6.b.data(), local6.data(), 16);
  st.local_ips = {api::Addr::from_v4(test::ip4(kLocal)), l6};
  SnapshotParams sp;
  sp.n_ports = 2;
  auto s = build_snapshot(st, sp);
  // Port 0: VLAN 100 with 192.0.2.1 and 2001:db8:200::1; port 1: 192.0.2.129, 2001:db8:300::1
  // (set by hand: the builder of declared interfaces is the control side's).
  test::set_iface(*s, 0, 0, 100, {ip4_net("192.0.2.1")}, {ip6("2001:db8:200::1")});
  test::set_iface(*s, 1, 1, 0, {ip4_net("192.0.2.129")}, {ip6("2001:db8:300::1")});
  const PortAddrs pa = port_addrs(*s, filter_->port());
  std::string err;
  ASSERT_TRUE(filter_->apply(pa.v4, pa.v6, &err)) << err;
  EXPECT_EQ(filter_->size(), 3u);   // VIP, local ip, 192.0.2.1
  EXPECT_EQ(filter_->size6(), 4u);  // VIP, local ip, 2001:db8:200::1, the link-local (NDP)

  // ARP for the interface's address on VLAN 100; echo (anything) to it; NS for its v6 one.
  test::Arp a;
  a.vlan = 100;
  a.sip = test::ip4("192.0.2.2");
  a.tip = test::ip4("192.0.2.1");
  EXPECT_EQ(run(test::build(a)), kToRondo);
  Pkt p;
  p.vlan = 100;
  p.src_ip = test::ip4("192.0.2.2");
  p.dst_ip = test::ip4("192.0.2.1");
  p.proto = 1;
  EXPECT_EQ(run(test::build(p)), kToRondo);
  test::Ndp n = ns("2001:db8:200::1");
  n.vlan = 100;
  EXPECT_EQ(run(test::build(n)), kToRondo);
  Pkt t6 = tcp6("2001:db8:200::2", "2001:db8:200::1");
  t6.vlan = 100;
  EXPECT_EQ(run(test::build(t6)), kToRondo);
  // Port 1's addresses are not this port's: the host's here.
  a.tip = test::ip4("192.0.2.129");
  EXPECT_EQ(run(test::build(a)), kToHost);
  EXPECT_EQ(run(test::build(ns("2001:db8:300::1"))), kToHost);
  // The VIP, untagged or on the VLAN, as before.
  Pkt vip;
  vip.vlan = 100;
  vip.src_ip = test::ip4("192.0.2.2");
  vip.dst_ip = test::ip4(kVip);
  vip.dport = 80;
  EXPECT_EQ(run(test::build(vip)), kToRondo);
}

}  // namespace
}  // namespace rondo::dp
