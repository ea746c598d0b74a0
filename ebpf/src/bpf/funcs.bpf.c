// SPDX-License-Identifier: GPL-2.0
// One traced kernel function (or tracepoint pair): call count, log2 latency histogram and,
// optionally, the distribution of one integer argument (e.g. nr_pages), all aggregated in
// the kernel so that high call rates cost little and nothing is dropped.
//
// Modelled on libbpf-tools' funclatency.bpf.c: one generic entry/exit pair per flavour
// (fentry/fexit, kprobe/kretprobe, tracepoint), the flavour chosen at load time by turning
// autoload off for the others, the attach target set at run time, configuration as
// `const volatile` values, and the histograms as globals that user space reads directly.
// User space loads one instance of this object per traced function. Per call, a timed probe
// makes one map lookup at entry and one at exit (two more when filtering by process or
// recording an argument); a counting probe (`timed` off) has no exit probe at all.
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
// Time each call (entry and exit attached). Off, the probe only counts its calls and their
// argument: no exit probe (a kretprobe is the dearest part of a kprobe pair), no per-thread
// map traffic. The suites' traced rounds want counts; only `trace` and the pin latencies
// want times.
const volatile bool timed = true;

__u64 calls = 0;
__u64 returns = 0;
__u64 total_ns = 0;
__u64 latency_slots[MAX_SLOTS] = {};
__u64 arg_slots[MAX_SLOTS] = {};
__u64 arg_sum = 0;
// Distinct argument values that did not fit `values` (they are still in arg_slots).
__u64 values_dropped = 0;

// A thread's calls of this function in progress: how deep, and each one's start time. One
// lookup at entry and one at exit (no insert or delete per call, as a start-time hash keyed
// by thread would need): an LRU map keeps the threads seen last and drops the others'. A
// nested entry (recursion, or an interrupt on the same thread) gets its own slot, so it
// does not overwrite the start of the call it is nested in.
struct thread_calls {
	__u32 depth;
	__u32 pad;
	__u64 start[MAX_DEPTH];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct thread_calls);
} threads SEC(".maps");

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

static __always_inline struct thread_calls *this_thread(__u32 tid)
{
	struct thread_calls *t = bpf_map_lookup_elem(&threads, &tid);
	struct thread_calls none = {};

	if (t)
		return t;
	// A thread's first call (or first since the LRU dropped it).
	bpf_map_update_elem(&threads, &tid, &none, BPF_NOEXIST);
	return bpf_map_lookup_elem(&threads, &tid);
}

static __always_inline int on_entry(__u64 arg)
{
	struct thread_calls *t;
	__u32 depth;

	if (!traced())
		return 0;
	__sync_fetch_and_add(&calls, 1);
	if (arg_index >= 0)
		record_arg(arg);
	if (!timed)
		return 0;
	t = this_thread((__u32)bpf_get_current_pid_tgid());
	if (!t)
		return 0;
	depth = t->depth++;
	if (depth < MAX_DEPTH)
		t->start[depth & (MAX_DEPTH - 1)] = bpf_ktime_get_ns();
	return 0;
}

static __always_inline int on_exit(void)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct thread_calls *t = bpf_map_lookup_elem(&threads, &tid);
	__u64 delta;
	__u32 depth, slot;

	// No entry seen on this thread (attached mid-call, or an untraced process).
	if (!t || t->depth == 0)
		return 0;
	depth = --t->depth;
	if (depth >= MAX_DEPTH)
		return 0;
	delta = bpf_ktime_get_ns() - t->start[depth & (MAX_DEPTH - 1)];
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
