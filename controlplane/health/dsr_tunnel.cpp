#include "controlplane/health/dsr_tunnel.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <net/if.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <vector>

#include "bpf/common/libbpf_util.h"
#include "controlplane/log.h"

namespace rondo::cp {

namespace {

constexpr const char* kProgName = "rondo_hc_encap";

bpf::TcPlace our_place(int ifindex) {
  return {.ifindex = ifindex,
          .hook = BPF_TC_EGRESS,
          .priority = BpfTunnel::kPriority,
          .handle = BpfTunnel::kHandle};
}

std::string read_line(const std::string& path) {
  std::ifstream f(path);
  std::string s;
  std::getline(f, s);
  return s;
}

// An address as the map holds it: IPv4 in the first word (network order), IPv6 whole.
void to_words(const api::Addr& a, __u32 (&out)[4]) {
  if (a.is_v4())
    std::memcpy(out, a.b.data() + 12, 4);
  else
    std::memcpy(out, a.b.data(), 16);
}

}  // namespace

hc_backend to_value(const TunnelEntry& e) {
  hc_backend v{};
  to_words(e.backend_ip, v.addr);
  if (!e.src.is_zero()) to_words(e.src, v.src);
  v.gue_port = htons(e.gue_port);
  v.mode = static_cast<uint8_t>(e.mode);
  v.family = e.backend_ip.is_v4() ? HC_FAMILY_V4 : HC_FAMILY_V6;
  return v;
}

std::unique_ptr<BpfTunnel> BpfTunnel::attach(const std::string& ifname, const std::string& object,
                                             uint32_t mark_base, std::string* err) {
  const int ifindex = static_cast<int>(if_nametoindex(ifname.c_str()));
  if (ifindex == 0) {
    *err = ifname + ": " + std::strerror(errno);
    return nullptr;
  }
  // The program reads the frame's Ethernet header (ARPHRD_ETHER is 1).
  if (read_line("/sys/class/net/" + ifname + "/type") != "1") {
    *err = ifname + ": not an Ethernet device";
    return nullptr;
  }
  if (read_line("/proc/sys/net/ipv4/conf/" + ifname + "/forwarding") != "1") {
    *err = ifname + ": net.ipv4.conf." + ifname +
           ".forwarding is 0, and bpf_fib_lookup only routes from an interface that forwards "
           "(on a device of its own nothing arrives to forward): sysctl -w net.ipv4.conf." +
           ifname + ".forwarding=1";
    return nullptr;
  }
  // The IPv6 lookups (checks of IPv6 backends) need the same of IPv6; a host without IPv6
  // backends need not turn it on, so it is said, not refused.
  if (read_line("/proc/sys/net/ipv6/conf/" + ifname + "/forwarding") != "1")
    log_warn("health: net.ipv6.conf." + ifname +
             ".forwarding is 0: the checks of IPv6 DSR backends will fail (bpf_fib_lookup "
             "only routes from an interface that forwards): sysctl -w net.ipv6.conf." +
             ifname + ".forwarding=1");
  std::unique_ptr<BpfTunnel> t(new BpfTunnel);
  t->ifindex_ = ifindex;
  t->obj_ = bpf_object__open_file(object.c_str(), nullptr);
  if (t->obj_ == nullptr) {
    *err = object + ": " + bpf::errstr(errno);
    return nullptr;
  }
  if (!bpf::set_rodata(t->obj_, "mark_base", &mark_base, sizeof mark_base, err)) {
    *err = object + ": " + *err;
    return nullptr;
  }
  if (const int r = bpf::load_with_warnings(t->obj_); r != 0) {
    *err = object + ": the kernel refused the program: " + bpf::errstr(r);
    return nullptr;
  }
  const bpf_program* prog = bpf_object__find_program_by_name(t->obj_, kProgName);
  t->map_fd_ = bpf_object__find_map_fd_by_name(t->obj_, "hc_backends");
  t->stats_fd_ = bpf_object__find_map_fd_by_name(t->obj_, "hc_stats");
  if (prog == nullptr || t->map_fd_ < 0 || t->stats_fd_ < 0) {
    *err = object + ": no program " + kProgName + " with maps hc_backends and hc_stats";
    return nullptr;
  }
  if (!bpf::tc_attach(our_place(ifindex), bpf_program__fd(prog), err)) {
    *err = ifname + ": " + *err;
    return nullptr;
  }
  return t;
}

BpfTunnel::~BpfTunnel() {
  if (obj_ == nullptr) return;
  if (stats_fd_ >= 0) {
    // Attached only once every fd was found: remove exactly our filter, not the qdisc
    // (others may share it).
    std::string err;
    bpf::tc_detach(our_place(ifindex_), &err);
  }
  bpf_object__close(obj_);
}

bool BpfTunnel::sync(const std::vector<TunnelEntry>& entries, std::string* err) {
  std::map<uint32_t, TunnelEntry> wanted;
  for (const auto& e : entries) wanted.insert_or_assign(e.mark, e);
  bool ok = true;
  for (auto it = current_.begin(); it != current_.end();) {
    if (wanted.count(it->first)) {
      ++it;
      continue;
    }
    if (bpf_map_delete_elem(map_fd_, &it->first) != 0 && errno != ENOENT) {
      *err = "deleting a mark: " + std::string(std::strerror(errno));
      ok = false;
    }
    it = current_.erase(it);
  }
  for (const auto& [mark, e] : wanted) {
    auto it = current_.find(mark);
    if (it != current_.end() && it->second == e) continue;
    const hc_backend v = to_value(e);
    if (bpf_map_update_elem(map_fd_, &mark, &v, BPF_ANY) != 0) {
      *err = "writing a mark: " + std::string(std::strerror(errno));
      ok = false;
      continue;
    }
    current_.insert_or_assign(mark, e);
  }
  return ok;
}

std::array<uint64_t, HC_COUNTERS> BpfTunnel::counters() const {
  std::array<uint64_t, HC_COUNTERS> out{};
  std::string err;
  if (!bpf::sum_percpu(stats_fd_, HC_COUNTERS, out.data(), &err)) out.fill(0);
  return out;
}

}  // namespace rondo::cp
