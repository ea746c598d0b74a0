// SPDX-License-Identifier: GPL-2.0
// The smallest program of each flavour foliobench uses (fentry, kprobe, tracepoint).
// `foliobench doctor` loads and attaches each one, makes the traced call itself and
// checks that the program ran: loading alone proves nothing about attach or firing.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

// Set by user space before load: only calls from this process count.
const volatile __u32 target_tgid = 0;

// Indexed by flavour: 0 fentry, 1 kprobe, 2 tracepoint. A global array that user space
// reads straight from .bss, as libbpf-tools' funclatency does with its histogram.
__u64 hits[3] = {};

static __always_inline int hit(int flavour)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (tgid == target_tgid)
		__sync_fetch_and_add(&hits[flavour], 1);
	return 0;
}

// The attach target of the fentry and kprobe programs is set at run time.
SEC("fentry/placeholder")
int probe_fentry(void *ctx)
{
	return hit(0);
}

SEC("kprobe/placeholder")
int probe_kprobe(void *ctx)
{
	return hit(1);
}

SEC("tracepoint/syscalls/sys_enter_read")
int probe_tracepoint(void *ctx)
{
	return hit(2);
}

char LICENSE[] SEC("license") = "GPL";
