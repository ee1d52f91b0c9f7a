#include "bpf/decap/decap.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

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

// libbpf returns -errno, or its own codes (LIBBPF_ERRNO__*), which strerror does not know.
std::string errstr(int r) {
  char buf[128];
  libbpf_strerror(r < 0 ? r : -r, buf, sizeof buf);
  return buf;
}

// libbpf's warnings, while it loads the program: when the kernel refuses it, they hold the
// verifier's log, the one thing that says why. Elsewhere libbpf stays quiet (main()), since
// rondo-decap handles and reports every failure itself, on one line.
int print_warnings(enum libbpf_print_level level, const char* fmt, va_list ap) {
  return level == LIBBPF_WARN ? std::vfprintf(stderr, fmt, ap) : 0;
}

bool ends_with(const char* s, const char* tail) {
  const size_t n = std::strlen(s), m = std::strlen(tail);
  return n >= m && std::strcmp(s + n - m, tail) == 0;
}

bpf_tc_hook ingress_hook(int ifindex) {
  bpf_tc_hook h{};
  h.sz = sizeof h;
  h.ifindex = ifindex;
  h.attach_point = BPF_TC_INGRESS;
  return h;
}

bpf_tc_opts our_place() {
  bpf_tc_opts o{};
  o.sz = sizeof o;
  o.handle = kHandle;
  o.priority = kPriority;
  return o;
}

// Offset of variable `var` in the data section `sec` (its BTF_KIND_DATASEC type); -1 if none.
long datasec_offset(const btf* b, const btf_type* sec, const char* var) {
  if (sec == nullptr || !btf_is_datasec(sec)) return -1;
  const btf_var_secinfo* v = btf_var_secinfos(sec);
  for (int i = 0; i < btf_vlen(sec); ++i, ++v) {
    const btf_type* t = btf__type_by_id(b, v->type);
    if (t != nullptr && std::strcmp(btf__name_by_offset(b, t->name_off), var) == 0) return v->offset;
  }
  return -1;
}

// The program at rondo-decap's place on the hook, 0 when the place (or the whole clsact
// qdisc) is empty. False with *err when the place holds a program that is not rondo_decap:
// rondo-decap never replaces or removes what someone else put there.
bool query(const bpf_tc_hook& hook, uint32_t* prog_id, std::string* err) {
  bpf_tc_opts opts = our_place();
  const int r = bpf_tc_query(&hook, &opts);
  // ENOENT: nothing at the place; EINVAL: the kernel found no clsact qdisc ("Parent Qdisc
  // doesn't exists") or no filter at all on the hook ("Cannot find specified filter chain").
  if (r == -ENOENT || r == -EINVAL) {
    *prog_id = 0;
    return true;
  }
  if (r < 0) {
    *err = "tc filter query: " + errstr(r);
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

// Write the GUE port into the object's .rodata before it is loaded (the program reads it as
// a constant: `const volatile __u16 gue_port`).
bool set_gue_port(bpf_object* obj, uint16_t port, std::string* err) {
  bpf_map* rodata = nullptr;
  bpf_map* m;
  bpf_object__for_each_map(m, obj) {
    if (ends_with(bpf_map__name(m), ".rodata")) rodata = m;
  }
  const btf* b = bpf_object__btf(obj);
  size_t size = 0;
  const void* init = rodata != nullptr ? bpf_map__initial_value(rodata, &size) : nullptr;
  const int sec = b != nullptr ? btf__find_by_name_kind(b, ".rodata", BTF_KIND_DATASEC) : -1;
  const long off = sec > 0 ? datasec_offset(b, btf__type_by_id(b, sec), "gue_port") : -1;
  if (init == nullptr || off < 0 || static_cast<size_t>(off) + sizeof port > size) {
    *err = "the object has no gue_port in .rodata (not bpf/rondo_decap.bpf.o?)";
    return false;
  }
  std::vector<unsigned char> data(static_cast<const unsigned char*>(init),
                                  static_cast<const unsigned char*>(init) + size);
  std::memcpy(data.data() + off, &port, sizeof port);
  if (const int r = bpf_map__set_initial_value(rodata, data.data(), size); r != 0) {
    *err = "setting gue_port: " + errstr(r);
    return false;
  }
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
  const int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) {
    *err = "cannot count the CPUs: " + errstr(ncpu);
    return false;
  }
  std::vector<uint64_t> per_cpu(ncpu);
  for (__u32 key = 0; key < DECAP_COUNTERS; ++key) {
    if (bpf_map_lookup_elem(map_fd, &key, per_cpu.data()) != 0) {
      *err = std::string("decap_stats: ") + std::strerror(errno);
      return false;
    }
    for (uint64_t v : per_cpu) out->counters[key] += v;
  }
  return true;
}

// The GUE port the loaded program compares with: its .rodata map, laid out by the map's BTF.
bool read_gue_port(int map_fd, const bpf_map_info& info, Stats* out, std::string* err) {
  const Btf b(btf__load_from_kernel_by_id(info.btf_id), btf__free);
  const long off = b ? datasec_offset(b.get(), btf__type_by_id(b.get(), info.btf_value_type_id),
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
    *err = object + ": " + errstr(errno);
    return false;
  }
  if (!set_gue_port(obj.get(), gue_port, err)) {
    *err = object + ": " + *err;
    return false;
  }
  const libbpf_print_fn_t quiet = libbpf_set_print(print_warnings);
  const int loaded = bpf_object__load(obj.get());
  libbpf_set_print(quiet);
  if (loaded != 0) {
    *err = object + ": the kernel refused the program: " + errstr(loaded);
    return false;
  }
  const bpf_program* prog = bpf_object__find_program_by_name(obj.get(), kProgName);
  if (prog == nullptr) {
    *err = object + ": no program named " + kProgName;
    return false;
  }
  bpf_tc_hook hook = ingress_hook(ifindex);
  uint32_t old = 0;
  if (!query(hook, &old, err)) return false;
  if (const int r = bpf_tc_hook_create(&hook); r != 0 && r != -EEXIST) {
    *err = "creating the clsact qdisc: " + errstr(r);
    return false;
  }
  bpf_tc_opts opts = our_place();
  opts.prog_fd = bpf_program__fd(prog);
  opts.flags = BPF_TC_F_REPLACE;
  if (const int r = bpf_tc_attach(&hook, &opts); r != 0) {
    *err = "tc filter attach: " + errstr(r);
    return false;
  }
  return true;
}

bool detach(int ifindex, bool* removed, std::string* err) {
  const bpf_tc_hook hook = ingress_hook(ifindex);
  uint32_t id = 0;
  *removed = false;
  if (!query(hook, &id, err)) return false;
  if (id == 0) return true;
  const bpf_tc_opts opts = our_place();
  if (const int r = bpf_tc_detach(&hook, &opts); r != 0) {
    *err = "tc filter detach: " + errstr(r);
    return false;
  }
  *removed = true;
  return true;
}

bool read_stats(int ifindex, Stats* out, std::string* err) {
  const bpf_tc_hook hook = ingress_hook(ifindex);
  if (!query(hook, &out->prog_id, err)) return false;
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
    } else if (ends_with(info.name, ".rodata")) {
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
