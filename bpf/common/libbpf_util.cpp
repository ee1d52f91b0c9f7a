#include "bpf/common/libbpf_util.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <cerrno>

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <vector>

namespace rondo::bpf {

namespace {

int print_warnings(enum libbpf_print_level level, const char* fmt, va_list ap) {
  return level == LIBBPF_WARN ? std::vfprintf(stderr, fmt, ap) : 0;
}

}  // namespace

bool is_rodata(const char* name) {
  const size_t n = std::strlen(name), m = std::strlen(".rodata");
  return n >= m && std::strcmp(name + n - m, ".rodata") == 0;
}

std::string errstr(int r) {
  char buf[128];
  libbpf_strerror(r < 0 ? r : -r, buf, sizeof buf);
  return buf;
}

long datasec_offset(const btf* b, const btf_type* sec, const char* var) {
  if (sec == nullptr || !btf_is_datasec(sec)) return -1;
  const btf_var_secinfo* v = btf_var_secinfos(sec);
  for (int i = 0; i < btf_vlen(sec); ++i, ++v) {
    const btf_type* t = btf__type_by_id(b, v->type);
    if (t != nullptr && std::strcmp(btf__name_by_offset(b, t->name_off), var) == 0) return v->offset;
  }
  return -1;
}

bool set_rodata(bpf_object* obj, const char* var, const void* value, size_t size,
                std::string* err) {
  bpf_map* rodata = nullptr;
  bpf_map* m;
  bpf_object__for_each_map(m, obj) {
    if (is_rodata(bpf_map__name(m))) rodata = m;
  }
  const btf* b = bpf_object__btf(obj);
  size_t total = 0;
  const void* init = rodata != nullptr ? bpf_map__initial_value(rodata, &total) : nullptr;
  const int sec = b != nullptr ? btf__find_by_name_kind(b, ".rodata", BTF_KIND_DATASEC) : -1;
  const long off = sec > 0 ? datasec_offset(b, btf__type_by_id(b, sec), var) : -1;
  if (init == nullptr || off < 0 || static_cast<size_t>(off) + size > total) {
    *err = std::string("the object has no ") + var + " in .rodata";
    return false;
  }
  std::vector<unsigned char> data(static_cast<const unsigned char*>(init),
                                  static_cast<const unsigned char*>(init) + total);
  std::memcpy(data.data() + off, value, size);
  if (const int r = bpf_map__set_initial_value(rodata, data.data(), total); r != 0) {
    *err = std::string("setting ") + var + ": " + errstr(r);
    return false;
  }
  return true;
}

int load_with_warnings(bpf_object* obj) {
  const libbpf_print_fn_t before = libbpf_set_print(print_warnings);
  const int r = bpf_object__load(obj);
  libbpf_set_print(before);
  return r;
}

bpf_tc_hook TcPlace::tc_hook() const {
  bpf_tc_hook h{};
  h.sz = sizeof h;
  h.ifindex = ifindex;
  h.attach_point = hook;
  return h;
}

bpf_tc_opts TcPlace::tc_opts() const {
  bpf_tc_opts o{};
  o.sz = sizeof o;
  o.handle = handle;
  o.priority = priority;
  return o;
}

bool tc_attach(const TcPlace& place, int prog_fd, std::string* err) {
  bpf_tc_hook hook = place.tc_hook();
  if (const int r = bpf_tc_hook_create(&hook); r != 0 && r != -EEXIST) {
    *err = "creating the clsact qdisc: " + errstr(r);
    return false;
  }
  bpf_tc_opts opts = place.tc_opts();
  opts.prog_fd = prog_fd;
  opts.flags = BPF_TC_F_REPLACE;
  if (const int r = bpf_tc_attach(&hook, &opts); r != 0) {
    *err = std::string("tc filter attach") +
           (place.hook == BPF_TC_EGRESS ? " (egress): " : ": ") + errstr(r);
    return false;
  }
  return true;
}

bool tc_detach(const TcPlace& place, std::string* err) {
  const bpf_tc_hook hook = place.tc_hook();
  const bpf_tc_opts opts = place.tc_opts();
  if (const int r = bpf_tc_detach(&hook, &opts); r != 0) {
    *err = "tc filter detach: " + errstr(r);
    return false;
  }
  return true;
}

bool sum_percpu(int map_fd, uint32_t n, uint64_t* out, std::string* err) {
  const int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) {
    *err = "cannot count the CPUs: " + errstr(ncpu);
    return false;
  }
  std::vector<uint64_t> per_cpu(ncpu);
  for (uint32_t key = 0; key < n; ++key) {
    if (bpf_map_lookup_elem(map_fd, &key, per_cpu.data()) != 0) {
      *err = std::strerror(errno);
      return false;
    }
    for (uint64_t v : per_cpu) out[key] += v;
  }
  return true;
}

}  // namespace rondo::bpf
