#include "dataplane/port/xdp_filter.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace rondo::dp {

std::unique_ptr<XdpAddressFilter> XdpAddressFilter::attach(uint32_t ifindex, std::string* why) {
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
  for (__u32 id : ids) {
    const int fd = bpf_map_get_fd_by_id(id);
    if (fd < 0) continue;
    bpf_map_info m{};
    __u32 mlen = sizeof m;
    if (bpf_obj_get_info_by_fd(fd, &m, &mlen) == 0 && std::strcmp(m.name, "rondo_addrs") == 0 &&
        m.key_size == 4)
      return std::unique_ptr<XdpAddressFilter>(new XdpAddressFilter(fd));
    close(fd);
  }
  *why = "the XDP program has no rondo_addrs map (not bpf/rondo_xdp.bpf.o): every frame goes to rondo";
  return nullptr;
}

XdpAddressFilter::~XdpAddressFilter() { close(map_fd_); }

bool XdpAddressFilter::apply(const std::vector<uint32_t>& addrs, std::string* err) {
  const std::set<uint32_t> want(addrs.begin(), addrs.end());
  const uint8_t one = 1;
  // Add before removing, so an address that stays is never missing for a moment.
  for (uint32_t a : want) {
    if (current_.count(a)) continue;
    if (bpf_map_update_elem(map_fd_, &a, &one, BPF_ANY) != 0) {
      *err = std::string("rondo_addrs update: ") + std::strerror(errno);
      return false;
    }
    current_.insert(a);
  }
  for (auto it = current_.begin(); it != current_.end();) {
    if (want.count(*it)) {
      ++it;
      continue;
    }
    uint32_t a = *it;
    bpf_map_delete_elem(map_fd_, &a);
    it = current_.erase(it);
  }
  return true;
}

}  // namespace rondo::dp
