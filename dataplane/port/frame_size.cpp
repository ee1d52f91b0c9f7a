#include "dataplane/port/frame_size.h"

#include <algorithm>
#include <charconv>

namespace rondo::dp {
namespace {

constexpr uint32_t kDefaultDataRoom = 2048;    // RTE_MBUF_DEFAULT_DATAROOM
constexpr uint32_t kAfPacketFramesz = 2048;    // net_af_packet's default framesz
// net_af_xdp (DPDK 22.11): one umem frame per packet, no multi-buffer; a frame of 4096
// bytes less XDP's 256 of headroom and the PMD's mbuf header leaves about 3.5 KB. veth
// refuses an XDP program above a similar MTU (drivers/net/veth.c, veth_xdp_set).
constexpr uint32_t kAfXdpMaxMtu = 3498;

bool starts_with(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }

// The value of `key=` among the comma-separated arguments of a --vdev string.
std::optional<std::string> vdev_arg(const std::string& vdev, const std::string& key) {
  size_t pos = vdev.find(',');
  while (pos != std::string::npos) {
    const size_t next = vdev.find(',', pos + 1);
    const std::string kv = vdev.substr(pos + 1, next == std::string::npos ? next : next - pos - 1);
    if (kv.size() > key.size() && kv.compare(0, key.size(), key) == 0 && kv[key.size()] == '=')
      return kv.substr(key.size() + 1);
    pos = next;
  }
  return std::nullopt;
}

std::string device_name(const std::string& vdev) { return vdev.substr(0, vdev.find(',')); }

}  // namespace

std::optional<uint32_t> af_packet_framesz(const std::string& vdev) {
  if (!starts_with(vdev, "net_af_packet") && !starts_with(vdev, "eth_af_packet"))
    return std::nullopt;
  const auto v = vdev_arg(vdev, "framesz");
  if (!v) return kAfPacketFramesz;
  uint32_t n = 0;
  const auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (ec != std::errc() || end != v->data() + v->size()) return std::nullopt;
  return n;
}

bool size_frames(uint32_t mtu, const std::vector<std::string>& vdevs, uint32_t headroom,
                 FrameSizing* out, std::string* err, std::vector<std::string>* notes) {
  out->frame = max_frame(mtu);
  uint32_t room = std::max(kDefaultDataRoom, out->frame);
  for (const std::string& v : vdevs) {
    if (const auto framesz = af_packet_framesz(v)) {
      // An untagged frame of the MTU must fit the ring's frames whole (the kernel cuts what
      // does not: parsed as gso_frame; a tag arrives as metadata, the PMD puts it back in the
      // mbuf), and a tagged one must fit them on TX (the PMD drops what does not). The RX
      // condition is the stricter (66 bytes in front against 32): checking both says so.
      if (af_packet_max_frame(*framesz) < mtu + 14 || af_packet_tx_max_frame(*framesz) < max_frame(mtu)) {
        // A multiple of 16 (TPACKET_ALIGNMENT) holding mtu + 14 at offset 66.
        const uint32_t need = (mtu + 14 + 66 + 15) / 16 * 16;
        *err = device_name(v) + ": framesz=" + std::to_string(*framesz) + " holds frames of " +
               std::to_string(af_packet_max_frame(*framesz)) + " bytes, --mtu " +
               std::to_string(mtu) + " makes frames of " + std::to_string(mtu + 14) +
               ": add framesz=" + std::to_string(need) + " (and a blocksz that is a multiple of "
               "the page size and at least framesz, e.g. " +
               std::to_string((need * 4 + 4095) / 4096 * 4096) + ")";
        return false;
      }
      room = std::max(room, af_packet_mbuf_need(*framesz));
    } else if (starts_with(v, "net_af_xdp") && mtu > kAfXdpMaxMtu) {
      notes->push_back(device_name(v) + ": DPDK 22.11's AF_XDP has no multi-buffer: frames "
                       "above about 3.5 KB are not received whatever --mtu says (and a veth "
                       "refuses XDP at an MTU above that)");
    }
  }
  // Whole cache lines, as DPDK's own sizes are; an mbuf's data room is 16 bits.
  out->data_room = (headroom + room + 63) / 64 * 64;
  if (out->data_room > 0xffff) {
    *err = "mbufs of " + std::to_string(out->data_room) + " bytes are over DPDK's 65535 (an "
           "af_packet framesz too large)";
    return false;
  }
  return true;
}

}  // namespace rondo::dp
