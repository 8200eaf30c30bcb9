// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Deliberately refused by the verifier: it dereferences a map lookup result without checking it
 * for NULL (a hash map: recent kernels know that constant-key array lookups cannot fail). Tests
 * use it to prove that a load failure yields a one-line cause and the verifier log.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

SEC("cgroup/connect4")
int unchecked_lookup(struct bpf_sock_addr *ctx)
{
	__u32 zero = 0;
	__u64 *count = bpf_map_lookup_elem(&counters, &zero);

	*count += 1;
	return 1;
}
