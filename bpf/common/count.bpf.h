// SPDX-License-Identifier: BSD-3-Clause
//
// One packet counted in slot `key` of a per-CPU array of __u64 (the loaders sum the CPUs,
// bpf/common/libbpf_util.h sum_percpu). A per-CPU slot has one writer: no atomics.
#pragma once

#include <linux/types.h>

#include <bpf/bpf_helpers.h>

static __always_inline void count_in(void *percpu_array, __u32 key)
{
	__u64 *v = bpf_map_lookup_elem(percpu_array, &key);

	if (v)
		*v += 1;
}
