#include "bpf/decap/decap.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "bpf/common/libbpf_util.h"

namespace rondo::decap {
namespace {

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  int get() const { return fd_; }

 private:
  int fd_;
};

using Object = std::unique_ptr<bpf_object, decltype(&bpf_object__close)>;
using Btf = std::unique_ptr<btf, decltype(&btf__free)>;

// rondo-decap's place on `ifindex`'s ingress hook.
bpf::TcPlace our_place(int ifindex) {
  return {.ifindex = ifindex, .hook = BPF_TC_INGRESS, .priority = kPriority, .handle = kHandle};
}

// The program at rondo-decap's place on the hook, 0 when the place (or the whole clsact
// qdisc) is empty. False with *err when the place holds a program that is not rondo_decap:
// rondo-decap never replaces or removes what someone else put there.
bool query(const bpf::TcPlace& place, uint32_t* prog_id, std::string* err) {
  const bpf_tc_hook hook = place.tc_hook();
  bpf_tc_opts opts = place.tc_opts();
  const int r = bpf_tc_query(&hook, &opts);
  // ENOENT: nothing at the place; EINVAL: the kernel found no clsact qdisc ("Parent Qdisc
  // doesn't exists") or no filter at all on the hook ("Cannot find specified filter chain").
  if (r == -ENOENT || r == -EINVAL) {
    *prog_id = 0;
    return true;
  }
  if (r < 0) {
    *err = "tc filter query: " + bpf::errstr(r);
    return false;
  }
  const Fd prog(bpf_prog_get_fd_by_id(opts.prog_id));
  bpf_prog_info info{};
  __u32 len = sizeof info;
  if (prog.get() < 0 || bpf_obj_get_info_by_fd(prog.get(), &info, &len) != 0) {
    *err = "program " + std::to_string(opts.prog_id) + ": " + std::strerror(errno);
    return false;
  }
  if (std::strcmp(info.name, kProgName) != 0) {
    char place[64];
    std::snprintf(place, sizeof place, "tc ingress priority %u handle 0x%x", kPriority, kHandle);
    *err = std::string(place) + " holds another program ('" + info.name + "', id " +
           std::to_string(opts.prog_id) + "): not touching it";
    return false;
  }
  *prog_id = opts.prog_id;
  return true;
}

// The ids of the maps program `prog_fd` uses.
std::vector<__u32> map_ids(int prog_fd) {
  bpf_prog_info info{};
  __u32 len = sizeof info;
  if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) != 0 || info.nr_map_ids == 0) return {};
  std::vector<__u32> ids(info.nr_map_ids);
  info = bpf_prog_info{};
  info.nr_map_ids = ids.size();
  info.map_ids = reinterpret_cast<__u64>(ids.data());
  len = sizeof info;
  if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) != 0) return {};
  ids.resize(info.nr_map_ids);
  return ids;
}

bool read_counters(int map_fd, Stats* out, std::string* err) {
  if (bpf::sum_percpu(map_fd, DECAP_COUNTERS, out->counters.data(), err)) return true;
  *err = "decap_stats: " + *err;
  return false;
}

// The GUE port the loaded program compares with: its .rodata map, laid out by the map's BTF.
bool read_gue_port(int map_fd, const bpf_map_info& info, Stats* out, std::string* err) {
  const Btf b(btf__load_from_kernel_by_id(info.btf_id), btf__free);
  const long off = b ? bpf::datasec_offset(b.get(), btf__type_by_id(b.get(), info.btf_value_type_id),
                                      "gue_port")
                     : -1;
  std::vector<unsigned char> value(info.value_size);
  const __u32 key = 0;
  if (off < 0 || static_cast<size_t>(off) + sizeof out->gue_port > value.size() ||
      bpf_map_lookup_elem(map_fd, &key, value.data()) != 0) {
    *err = "cannot read gue_port from the program's .rodata";
    return false;
  }
  std::memcpy(&out->gue_port, value.data() + off, sizeof out->gue_port);
  return true;
}

}  // namespace

bool attach(int ifindex, const std::string& object, uint16_t gue_port, std::string* err) {
  const Object obj(bpf_object__open_file(object.c_str(), nullptr), bpf_object__close);
  if (!obj) {
    *err = object + ": " + bpf::errstr(errno);
    return false;
  }
  // The program reads it as a constant (`const volatile __u16 gue_port`).
  if (!bpf::set_rodata(obj.get(), "gue_port", &gue_port, sizeof gue_port, err)) {
    *err = object + ": " + *err + " (not bpf/rondo_decap.bpf.o?)";
    return false;
  }
  if (const int loaded = bpf::load_with_warnings(obj.get()); loaded != 0) {
    *err = object + ": the kernel refused the program: " + bpf::errstr(loaded);
    return false;
  }
  const bpf_program* prog = bpf_object__find_program_by_name(obj.get(), kProgName);
  if (prog == nullptr) {
    *err = object + ": no program named " + kProgName;
    return false;
  }
  const bpf::TcPlace place = our_place(ifindex);
  uint32_t old = 0;
  return query(place, &old, err) && bpf::tc_attach(place, bpf_program__fd(prog), err);
}

bool detach(int ifindex, bool* removed, std::string* err) {
  const bpf::TcPlace place = our_place(ifindex);
  uint32_t id = 0;
  *removed = false;
  if (!query(place, &id, err)) return false;
  if (id == 0) return true;
  if (!bpf::tc_detach(place, err)) return false;
  *removed = true;
  return true;
}

bool read_stats(int ifindex, Stats* out, std::string* err) {
  if (!query(our_place(ifindex), &out->prog_id, err)) return false;
  if (out->prog_id == 0) {
    *err = "rondo-decap is not attached";
    return false;
  }
  const Fd prog(bpf_prog_get_fd_by_id(out->prog_id));
  if (prog.get() < 0) {
    *err = "program " + std::to_string(out->prog_id) + ": " + std::strerror(errno);
    return false;
  }
  bool counters = false, port = false;
  for (const __u32 id : map_ids(prog.get())) {
    const Fd map(bpf_map_get_fd_by_id(id));
    bpf_map_info info{};
    __u32 len = sizeof info;
    if (map.get() < 0 || bpf_obj_get_info_by_fd(map.get(), &info, &len) != 0) continue;
    if (std::strcmp(info.name, "decap_stats") == 0) {
      if (!read_counters(map.get(), out, err)) return false;
      counters = true;
    } else if (bpf::is_rodata(info.name)) {
      if (!read_gue_port(map.get(), info, out, err)) return false;
      port = true;
    }
  }
  if (!counters || !port) {
    *err = "program " + std::to_string(out->prog_id) + " has no decap_stats or .rodata map";
    return false;
  }
  return true;
}

}  // namespace rondo::decap
