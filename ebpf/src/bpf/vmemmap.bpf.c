// SPDX-License-Identifier: GPL-2.0
// Whether a pfn has a struct page: reads the pfn's struct page where the kernel keeps it
// (x86-64 vmemmap: vmemmap_base + pfn * sizeof(struct page)). The vmemmap is mapped only
// where struct pages were allocated (boot sections of RAM, memremap_pages() for device
// memory), so the read succeeds for RAM and ZONE_DEVICE pfns alike and faults for a pfn with
// none (a PCI BAR). /proc/kpageflags cannot tell these apart: it goes through
// pfn_to_online_page(), which is NULL for ZONE_DEVICE as for no page at all.
//
// Runs once, on foliobench's own getpid() (a syscall tracepoint), over the pfns user space
// wrote to .bss; results go back through .bss.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#define MAX_PFNS 512

const volatile __u32 target_tgid = 0;
// Address of the kernel variable vmemmap_base (KASLR moves the vmemmap), from kallsyms.
const volatile __u64 vmemmap_base_addr = 0;
// sizeof(struct page), from BTF.
const volatile __u64 struct_page_size = 64;

__u64 pfns[MAX_PFNS] = {};
__u32 nr_pfns = 0;
// Per pfn: 0 when its struct page could be read, else the read's error.
__s64 results[MAX_PFNS] = {};
__u64 vmemmap = 0;
__s64 base_error = 0;
__u32 runs = 0;

SEC("tracepoint/syscalls/sys_enter_getpid")
int read_struct_pages(void *ctx)
{
	__u64 flags;
	__u32 i;

	if ((bpf_get_current_pid_tgid() >> 32) != target_tgid)
		return 0;
	base_error = bpf_probe_read_kernel(&vmemmap, sizeof(vmemmap), (void *)vmemmap_base_addr);
	if (base_error)
		return 0;
	for (i = 0; i < MAX_PFNS; i++) {
		if (i >= nr_pfns)
			break;
		results[i] = bpf_probe_read_kernel(&flags, sizeof(flags),
						   (void *)(vmemmap + pfns[i] * struct_page_size));
	}
	__sync_fetch_and_add(&runs, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
