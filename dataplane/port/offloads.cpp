#include "dataplane/port/offloads.h"

#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace rondo::dp {

bool offloads_on(uint32_t if_index, std::string* ifname, std::vector<std::string>* on, std::string* err) {
  char name[IF_NAMESIZE] = {};
  if (if_indextoname(if_index, name) == nullptr) {
    *err = "interface " + std::to_string(if_index) + ": " + std::strerror(errno);
    return false;
  }
  *ifname = name;
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *err = std::string("socket: ") + std::strerror(errno);
    return false;
  }
  static constexpr struct {
    uint32_t cmd;
    const char* name;
  } kOffloads[] = {
      {ETHTOOL_GRXCSUM, "rx-checksumming"},
      {ETHTOOL_GTXCSUM, "tx-checksumming"},
      {ETHTOOL_GTSO, "tcp-segmentation-offload"},
      {ETHTOOL_GGSO, "generic-segmentation-offload"},
      {ETHTOOL_GGRO, "generic-receive-offload"},
  };

  auto ask = [&](uint32_t cmd, uint32_t* value) {
    ethtool_value v{};
    v.cmd = cmd;
    ifreq ifr{};
    std::memcpy(ifr.ifr_name, name, sizeof name);
    ifr.ifr_data = reinterpret_cast<char*>(&v);
    if (ioctl(fd, SIOCETHTOOL, &ifr) != 0) return false;
    *value = v.data;
    return true;
  };
  for (const auto& o : kOffloads) {
    uint32_t v = 0;
    // A driver without the operation has nothing of that kind to turn off.
    if (ask(o.cmd, &v) && v) on->push_back(o.name);
  }
  uint32_t flags = 0;
  if (ask(ETHTOOL_GFLAGS, &flags) && (flags & ETH_FLAG_LRO)) on->push_back("large-receive-offload");
  close(fd);
  return true;
}

}  // namespace rondo::dp
