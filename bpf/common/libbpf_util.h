// What rondo's BPF loaders (rondo-decap, the control plane's DSR checks) do alike with
// libbpf: name its errors, write a constant into an object before it is loaded, load with
// the verifier's log on stderr.
#pragma once

#include <bpf/libbpf.h>

#include <cstddef>
#include <cstdint>
#include <string>

struct bpf_object;
struct btf;
struct btf_type;

namespace rondo::bpf {

/// libbpf's error for a return value r (-errno, or LIBBPF_ERRNO__*, which strerror does
/// not know).
std::string errstr(int r);

/// Offset of variable `var` in the data section `sec` (a BTF_KIND_DATASEC type); -1 if none.
long datasec_offset(const btf* b, const btf_type* sec, const char* var);

/// Write `size` bytes at `value` into `var` of the not yet loaded object's .rodata (a
/// `const volatile` global of the program). False with *err when it has no such variable.
bool set_rodata(bpf_object* obj, const char* var, const void* value, size_t size,
                std::string* err);

/// Whether a map name is an object's .rodata (libbpf names it "<object prefix>.rodata").
bool is_rodata(const char* map_name);

/// bpf_object__load, with libbpf's warnings on stderr meanwhile: when the kernel refuses
/// the program, they hold the verifier's log, the one thing that says why.
int load_with_warnings(bpf_object* obj);

/// A loader's fixed place on an interface's tc hook: how a later run finds its filter again,
/// and what it replaces or removes (never another one's).
struct TcPlace {
  int ifindex = 0;
  bpf_tc_attach_point hook = BPF_TC_INGRESS;
  uint32_t priority = 0;
  uint32_t handle = 0;
  bpf_tc_hook tc_hook() const;
  bpf_tc_opts tc_opts() const;
};

/// Put program `prog_fd` at `place` (creating the clsact qdisc if missing), replacing what
/// was there. False with *err.
bool tc_attach(const TcPlace& place, int prog_fd, std::string* err);

/// Remove the filter at `place`; the clsact qdisc stays (others may share it). False with
/// *err.
bool tc_detach(const TcPlace& place, std::string* err);

/// Sum per-CPU array `map_fd`'s slots 0 .. n-1 over the CPUs into out[0 .. n-1] (added to
/// what is there). False with *err.
bool sum_percpu(int map_fd, uint32_t n, uint64_t* out, std::string* err);

}  // namespace rondo::bpf
