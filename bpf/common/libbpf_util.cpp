#include "bpf/common/libbpf_util.h"

#include <bpf/btf.h>
#include <bpf/libbpf.h>

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

}  // namespace rondo::bpf
