#include "dataplane/port/xdp_filter.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iterator>

namespace rondo::dp {

std::unique_ptr<XdpAddressFilter> XdpAddressFilter::attach(uint32_t ifindex, uint16_t port,
                                                           const Ip6& link_local, std::string* why) {
  __u32 prog_id = 0;
  if (ifindex == 0 || bpf_xdp_query_id(static_cast<int>(ifindex), 0, &prog_id) != 0 || prog_id == 0) {
    *why = "no XDP program on the interface";
    return nullptr;
  }
  const int prog_fd = bpf_prog_get_fd_by_id(prog_id);
  if (prog_fd < 0) {
    *why = std::string("cannot open the XDP program: ") + std::strerror(errno);
    return nullptr;
  }
  // First ask how many maps the program uses, then for their ids.
  bpf_prog_info info{};
  __u32 len = sizeof info;
  std::vector<__u32> ids;
  if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) == 0 && info.nr_map_ids > 0) {
    ids.resize(info.nr_map_ids);
    const __u32 n = info.nr_map_ids;
    info = bpf_prog_info{};
    info.nr_map_ids = n;
    info.map_ids = reinterpret_cast<__u64>(ids.data());
    len = sizeof info;
    if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) != 0) ids.clear();
  }
  close(prog_fd);
  int fd4 = -1, fd6 = -1;
  for (__u32 id : ids) {
    const int fd = bpf_map_get_fd_by_id(id);
    if (fd < 0) continue;
    bpf_map_info m{};
    __u32 mlen = sizeof m;
    const bool got = bpf_obj_get_info_by_fd(fd, &m, &mlen) == 0;
    if (got && fd4 < 0 && std::strcmp(m.name, "rondo_addrs") == 0 && m.key_size == 4) {
      fd4 = fd;
    } else if (got && fd6 < 0 && std::strcmp(m.name, "rondo_addrs6") == 0 && m.key_size == 16) {
      fd6 = fd;
    } else {
      close(fd);
    }
  }
  if (fd4 < 0) {
    if (fd6 >= 0) close(fd6);
    *why = "the XDP program has no rondo_addrs map (not bpf/rondo_xdp.bpf.o): every frame goes to rondo";
    return nullptr;
  }
  if (fd6 < 0) *why = "the XDP program has no rondo_addrs6 map (an older bpf/rondo_xdp.bpf.o): IPv6 goes to the kernel";
  return over(fd4, fd6, link_local, port);
}

std::unique_ptr<XdpAddressFilter> XdpAddressFilter::over(int map_fd, int map6_fd, const Ip6& link_local,
                                                         uint16_t port) {
  return std::unique_ptr<XdpAddressFilter>(new XdpAddressFilter(map_fd, map6_fd, link_local, port));
}

XdpAddressFilter::~XdpAddressFilter() {
  close(map_fd_);
  if (map6_fd_ >= 0) close(map6_fd_);
}

namespace {

// Make one map hold exactly `want` (key -> value), adding before removing so that an
// address that stays is never missing for a moment. Keys are Key; values one byte.
template <typename Key>
bool sync_map(int fd, const std::set<std::pair<Key, uint8_t>>& want,
              std::set<std::pair<Key, uint8_t>>* current, const char* name, std::string* err) {
  for (const auto& kv : want) {
    if (current->count(kv)) continue;
    if (bpf_map_update_elem(fd, &kv.first, &kv.second, BPF_ANY) != 0) {
      *err = std::string(name) + " update: " + std::strerror(errno);
      return false;
    }
    // The same key with another value was overwritten: forget the old pair.
    for (auto it = current->begin(); it != current->end();)
      it = it->first == kv.first ? current->erase(it) : std::next(it);
    current->insert(kv);
  }
  for (auto it = current->begin(); it != current->end();) {
    if (want.count(*it)) {
      ++it;
      continue;
    }
    Key k = it->first;
    bpf_map_delete_elem(fd, &k);
    it = current->erase(it);
  }
  return true;
}

}  // namespace

bool XdpAddressFilter::apply(const std::vector<uint32_t>& addrs, const std::vector<Ip6>& addrs6,
                             std::string* err) {
  std::set<std::pair<uint32_t, uint8_t>> want;
  for (uint32_t a : addrs) want.emplace(a, uint8_t{1});  // the value is unused
  if (!sync_map(map_fd_, want, &current_, "rondo_addrs", err)) return false;
  if (map6_fd_ < 0) return true;
  std::set<std::pair<Ip6, uint8_t>> want6;
  std::set<Ip6> all;
  for (const Ip6& a : addrs6) {
    want6.emplace(a, kAll);
    all.insert(a);
  }
  // The link-local address only while rondo has IPv6 addresses: the host derives the same
  // one from the same MAC, and the advertisements to it then go to rondo, not the host.
  if (!addrs6.empty() && !link_local_.is_zero() && !all.count(link_local_))
    want6.emplace(link_local_, kNdpOnly);
  return sync_map(map6_fd_, want6, &current6_, "rondo_addrs6", err);
}

void detach_stale_xdp(const std::vector<std::string>& vdevs, std::vector<std::string>* log) {
  for (const std::string& v : vdevs) {
    if (v.rfind("net_af_xdp", 0) != 0) continue;
    const size_t at = v.find(",iface=");
    if (at == std::string::npos) continue;
    const std::string iface = v.substr(at + 7, v.find(',', at + 7) - (at + 7));
    const int ifindex = static_cast<int>(if_nametoindex(iface.c_str()));
    if (ifindex == 0) continue;  // the PMD will say what is wrong with it
    bpf_xdp_query_opts q{};
    q.sz = sizeof q;
    if (bpf_xdp_query(ifindex, 0, &q) != 0 || q.prog_id == 0) continue;  // nothing attached
    std::string name = "?";
    if (const int fd = bpf_prog_get_fd_by_id(q.prog_id); fd >= 0) {
      bpf_prog_info info{};
      uint32_t len = sizeof info;
      if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0) name = info.name;
      ::close(fd);
    }
    const std::string what = iface + ": XDP program " + std::to_string(q.prog_id) + " (" + name + ")";
    if (name != "rondo_xdp") {
      log->push_back(what + " is attached and is not rondo's: left alone (the port may fail to start)");
      continue;
    }
    const uint32_t mode = q.attach_mode == XDP_ATTACHED_SKB ? XDP_FLAGS_SKB_MODE
                          : q.attach_mode == XDP_ATTACHED_HW ? XDP_FLAGS_HW_MODE
                                                             : XDP_FLAGS_DRV_MODE;
    const int rc = bpf_xdp_detach(ifindex, mode, nullptr);
    log->push_back(what + (rc == 0 ? " left by a previous process that did not stop cleanly: detached"
                                   : " left by a previous process: cannot detach it: " +
                                         std::string(std::strerror(-rc))));
  }
}

}  // namespace rondo::dp
