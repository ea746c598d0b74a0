// SPDX-License-Identifier: GPL-2.0
// One traced kernel function (or tracepoint pair): call count, log2 latency histogram and,
// optionally, the distribution of one integer argument (e.g. nr_pages), all aggregated in
// the kernel so that high call rates cost little and nothing is dropped.
//
// Modelled on libbpf-tools' funclatency.bpf.c: one generic entry/exit pair per flavour
// (fentry/fexit, kprobe/kretprobe, tracepoint), the flavour chosen at load time by turning
// autoload off for the others, the attach target set at run time, configuration as
// `const volatile` values, and the histograms as globals that user space reads directly.
// User space loads one instance of this object per traced function.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define MAX_SLOTS 64
#define MAX_VALUES 4096
// Nested (recursive, or re-entered from an interrupt) calls of one function on one thread
// are timed each from its own entry, up to this depth; deeper ones are counted only.
#define MAX_DEPTH 16

// Only count processes in `tgids` (the traced command and its descendants).
const volatile bool filter_tgid = false;
// Which argument (0-based) to record, or -1 for none.
const volatile int arg_index = -1;

__u64 calls = 0;
__u64 returns = 0;
__u64 total_ns = 0;
__u64 latency_slots[MAX_SLOTS] = {};
__u64 arg_slots[MAX_SLOTS] = {};
__u64 arg_sum = 0;
// Distinct argument values that did not fit `values` (they are still in arg_slots).
__u64 values_dropped = 0;

// A call's start time, by thread and nesting depth: a nested entry must not overwrite the
// start of the call it is nested in.
struct start_key {
	__u32 tid;
	__u32 depth;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct start_key);
	__type(value, __u64);
} starts SEC(".maps");

// Calls of this function running on a thread (absent: none).
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u32);
} depths SEC(".maps");

// Exact argument values -> count: batch sizes must be seen exactly (512, not "256..511").
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_VALUES);
	__type(key, __u64);
	__type(value, __u64);
} values SEC(".maps");

// Shared by every instance (user space reuses the first one's fd).
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, __u8);
} tgids SEC(".maps");

static __always_inline __u32 log2_slot(__u64 v)
{
	__u32 r = 0;

	// Bucket i holds [2^i, 2^(i+1)); 0 and 1 share bucket 0.
	while (v > 1 && r < MAX_SLOTS - 1) {
		v >>= 1;
		r++;
	}
	return r;
}

static __always_inline bool traced(void)
{
	__u32 tgid;

	if (!filter_tgid)
		return true;
	tgid = bpf_get_current_pid_tgid() >> 32;
	return bpf_map_lookup_elem(&tgids, &tgid) != NULL;
}

static __always_inline void record_arg(__u64 v)
{
	__u64 one = 1, *n;
	__u32 slot = log2_slot(v);

	if (slot < MAX_SLOTS)
		__sync_fetch_and_add(&arg_slots[slot], 1);
	__sync_fetch_and_add(&arg_sum, v);
	n = bpf_map_lookup_elem(&values, &v);
	if (n) {
		__sync_fetch_and_add(n, 1);
		return;
	}
	if (!bpf_map_update_elem(&values, &v, &one, BPF_NOEXIST))
		return;
	// Another CPU inserted it first (EEXIST), or the map is full.
	n = bpf_map_lookup_elem(&values, &v);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		__sync_fetch_and_add(&values_dropped, 1);
}

static __always_inline int on_entry(__u64 arg)
{
	struct start_key key;
	__u32 *d, depth = 0;
	__u64 ts;

	if (!traced())
		return 0;
	key.tid = (__u32)bpf_get_current_pid_tgid();
	d = bpf_map_lookup_elem(&depths, &key.tid);
	if (d)
		depth = *d;
	key.depth = depth;
	depth++;
	bpf_map_update_elem(&depths, &key.tid, &depth, BPF_ANY);
	__sync_fetch_and_add(&calls, 1);
	if (arg_index >= 0)
		record_arg(arg);
	if (key.depth < MAX_DEPTH) {
		ts = bpf_ktime_get_ns();
		bpf_map_update_elem(&starts, &key, &ts, BPF_ANY);
	}
	return 0;
}

static __always_inline int on_exit(void)
{
	struct start_key key;
	__u64 *start, delta;
	__u32 *d, slot;

	key.tid = (__u32)bpf_get_current_pid_tgid();
	d = bpf_map_lookup_elem(&depths, &key.tid);
	if (!d || *d == 0)
		return 0;
	key.depth = *d - 1;
	if (key.depth == 0)
		bpf_map_delete_elem(&depths, &key.tid);
	else
		*d = key.depth;
	start = bpf_map_lookup_elem(&starts, &key);
	if (!start)
		return 0;
	delta = bpf_ktime_get_ns() - *start;
	bpf_map_delete_elem(&starts, &key);
	slot = log2_slot(delta);
	if (slot < MAX_SLOTS)
		__sync_fetch_and_add(&latency_slots[slot], 1);
	__sync_fetch_and_add(&total_ns, delta);
	__sync_fetch_and_add(&returns, 1);
	return 0;
}

// bpf_get_func_arg (5.17+) rather than ctx[arg_index]: clang folds a switch over ctx[N]
// into one load through a moved ctx pointer, which the verifier refuses.
SEC("fentry/placeholder")
int fentry_entry(__u64 *ctx)
{
	__u64 a = 0;

	if (arg_index >= 0)
		bpf_get_func_arg(ctx, arg_index, &a);
	return on_entry(a);
}

SEC("fexit/placeholder")
int fexit_exit(__u64 *ctx)
{
	return on_exit();
}

// All six argument registers are read at fixed offsets (each its own ctx load), then one
// is picked: the same folding as above would otherwise move the ctx pointer.
SEC("kprobe/placeholder")
int kprobe_entry(struct pt_regs *ctx)
{
	__u64 regs[6] = {
		PT_REGS_PARM1(ctx), PT_REGS_PARM2(ctx), PT_REGS_PARM3(ctx),
		PT_REGS_PARM4(ctx), PT_REGS_PARM5(ctx), PT_REGS_PARM6(ctx),
	};
	__u64 a = 0;

	if (arg_index >= 0 && arg_index < 6)
		a = regs[arg_index];
	return on_entry(a);
}

SEC("kretprobe/placeholder")
int kretprobe_exit(struct pt_regs *ctx)
{
	return on_exit();
}

// A tracepoint pair (e.g. syscalls/sys_enter_X, sys_exit_X): where no function can be
// traced, what remains is the latency of the syscall around it.
SEC("tracepoint/placeholder/enter")
int tp_entry(void *ctx)
{
	return on_entry(0);
}

SEC("tracepoint/placeholder/exit")
int tp_exit(void *ctx)
{
	return on_exit();
}

// One tracepoint on its own (e.g. fs_dax/dax_pmd_fault_done): counted, and one 32-bit
// field of its record, at `arg_index` bytes in, recorded as the argument (a fault's result
// flags: NOPAGE against FALLBACK). The offset comes from tracefs' format, not from a
// struct in vmlinux.h, so one program serves every event.
SEC("tracepoint/placeholder/event")
int tp_event(void *ctx)
{
	__u32 v = 0;

	if (!traced())
		return 0;
	__sync_fetch_and_add(&calls, 1);
	if (arg_index >= 0) {
		bpf_probe_read_kernel(&v, sizeof(v), (char *)ctx + arg_index);
		record_arg(v);
	}
	return 0;
}

// Children of a traced process are traced too (fork workloads, shells running commands).
SEC("tracepoint/sched/sched_process_fork")
int follow_fork(struct trace_event_raw_sched_process_fork *ctx)
{
	__u32 parent = bpf_get_current_pid_tgid() >> 32;
	__u32 child = BPF_CORE_READ(ctx, child_pid);
	__u8 one = 1;

	if (bpf_map_lookup_elem(&tgids, &parent))
		bpf_map_update_elem(&tgids, &child, &one, BPF_ANY);
	return 0;
}

// A traced process that is gone leaves the filter, so that a recycled pid is not traced:
// at sched_process_free, after its exit has zapped its memory (the fork workloads count that
// zap). Every key of `tgids` is some task's pid (a leader's is its tgid).
SEC("tracepoint/sched/sched_process_free")
int forget_freed(struct trace_event_raw_sched_process_template *ctx)
{
	__u32 pid = BPF_CORE_READ(ctx, pid);

	bpf_map_delete_elem(&tgids, &pid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
