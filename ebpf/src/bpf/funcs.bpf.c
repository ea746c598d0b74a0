// SPDX-License-Identifier: GPL-2.0
// Traced kernel functions (or tracepoints): per probe, a call count, a log2 latency
// histogram and, optionally, the distribution of one integer argument (e.g. nr_pages), all
// aggregated in the kernel so that high call rates cost little and nothing is dropped.
//
// Modelled on libbpf-tools' funclatency.bpf.c: generic entry/exit programs per flavour
// (fentry/fexit, kprobe/kretprobe, tracepoint), the flavour chosen at load time by turning
// autoload off for the others, the attach target set at run time, configuration as
// `const volatile` values, and the histograms as globals that user space reads directly.
//
// One object serves up to SLOTS probes: every slot has its own copy of each program (the
// slot number a constant in it) and its own statistics, so that libbpf parses the kernel's
// BTF and creates the maps once per round, not once per probe. Per call, a timed probe makes one map lookup at entry and one at exit
// (one more each for the process filter and the argument); a counting probe (`timed` off)
// has no exit program at all.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define SLOTS 32
#define MAX_SLOTS 64
#define MAX_VALUES 16384
// Nested (recursive, or re-entered from an interrupt) calls of one function on one thread
// are timed each from its own entry, up to this depth; deeper ones are counted only.
#define MAX_DEPTH 16

// Only count processes in `tgids` (the traced command and its descendants).
const volatile bool filter_tgid = false;
// Per slot: which argument (0-based) to record, or -1 for none.
const volatile int arg_index[SLOTS] = {
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
};
// Per slot: time each call (entry and exit attached). Off, the probe only counts its calls
// and their argument: no exit program (a kretprobe is the dearest part of a kprobe pair),
// no per-thread map traffic. The suites' traced rounds want counts; `trace` and the pin
// latencies want times.
const volatile bool timed[SLOTS] = {};
// Per slot: count calls per kernel stack too (as bcc's stackcount does): which call paths
// made the calls, and the argument summed per path. Only in traced rounds. 0: no stacks;
// N: the stack of one call in N, the first, the N+1st, ... (perf record's sampling, by call
// count: taking a stack costs thousands of instructions, and the pin suite's grab round
// makes one call per page: 12 of its 14 s of guest time on 1 GiB of devdax 4K pages).
const volatile __u32 stack_every[SLOTS] = {};
// Per slot: which argument (0-based) is the call's struct vm_area_struct *, or -1. While
// user space names a range in `vma_range`, such a probe counts only the calls on a VMA that
// overlaps it, and the others in `outside_vmas`: the rmap suite's fork child zaps the whole
// helper process, and only the mapping under test is the operation's.
const volatile int vma_index[SLOTS] = {
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
};

struct slot_stats {
	__u64 calls;
	__u64 returns;
	__u64 total_ns;
	__u64 arg_sum;
	// Distinct argument values that did not fit `values` (they are still in arg_slots).
	__u64 values_dropped;
	__u64 latency_slots[MAX_SLOTS];
	__u64 arg_slots[MAX_SLOTS];
	// Calls left out for their VMA (see `vma_index`).
	__u64 outside_vmas;
};

struct slot_stats stats[SLOTS] = {};

// A thread's calls in progress of one probe: how deep, and each one's start time. One
// lookup at entry and one at exit (no insert or delete per call, as a start-time hash keyed
// by thread would need): an LRU map keeps the threads seen last and drops the others'. A
// nested entry (recursion, or an interrupt on the same thread) gets its own start slot, so
// it does not overwrite the start of the call it is nested in.
struct thread_calls {
	__u32 depth;
	__u32 pad;
	__u64 start[MAX_DEPTH];
};

struct thread_key {
	__u32 tid;
	__u32 slot;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct thread_key);
	__type(value, struct thread_calls);
} threads SEC(".maps");

// Exact argument values -> count: batch sizes must be seen exactly (512, not "256..511").
struct value_key {
	__u32 slot;
	__u32 pad;
	__u64 value;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_VALUES);
	__type(key, struct value_key);
	__type(value, __u64);
} values SEC(".maps");

// Kernel stacks by id (user space shrinks both maps to one entry when no slot wants them).
#define STACK_DEPTH 127
struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 1024);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, STACK_DEPTH * sizeof(__u64));
} stackmap SEC(".maps");

struct stack_key {
	__u32 slot;
	__s32 stack_id;
};

struct stack_count {
	__u64 calls;
	__u64 arg_sum;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct stack_key);
	__type(value, struct stack_count);
} stack_counts SEC(".maps");

// Shared by every object (user space reuses the first one's fd).
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, __u8);
} tgids SEC(".maps");

// The address range [start, end) whose VMAs are counted; end 0: every call is. Shared by
// every object, as `tgids` is.
struct vma_range {
	__u64 start;
	__u64 end;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vma_range);
} vma_range SEC(".maps");

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

// Whether a call on `vma` (0 when the slot has no VMA argument) is in the range asked for.
static __always_inline bool on_vmas_asked(__u32 slot, __u64 vma)
{
	struct vm_area_struct *v = (struct vm_area_struct *)vma;
	struct vma_range *r;
	__u32 zero = 0;

	if (vma_index[slot & (SLOTS - 1)] < 0)
		return true;
	r = bpf_map_lookup_elem(&vma_range, &zero);
	if (!r || r->end == 0)
		return true;
	return BPF_CORE_READ(v, vm_start) < r->end && BPF_CORE_READ(v, vm_end) > r->start;
}

static __always_inline void record_arg(struct slot_stats *st, __u32 slot, __u64 v)
{
	struct value_key key = { .slot = slot, .value = v };
	__u64 one = 1, *n;
	__u32 b = log2_slot(v);

	if (b < MAX_SLOTS)
		__sync_fetch_and_add(&st->arg_slots[b], 1);
	__sync_fetch_and_add(&st->arg_sum, v);
	n = bpf_map_lookup_elem(&values, &key);
	if (n) {
		__sync_fetch_and_add(n, 1);
		return;
	}
	if (!bpf_map_update_elem(&values, &key, &one, BPF_NOEXIST))
		return;
	// Another CPU inserted it first (EEXIST), or the map is full.
	n = bpf_map_lookup_elem(&values, &key);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		__sync_fetch_and_add(&st->values_dropped, 1);
}

// One call on its kernel stack (a stack the map could not take counts under id < 0).
static __always_inline void record_stack(void *ctx, __u32 slot, __u64 arg)
{
	struct stack_key key = { .slot = slot };
	struct stack_count one = { .calls = 1, .arg_sum = arg }, *c;

	key.stack_id = bpf_get_stackid(ctx, &stackmap, 0);
	c = bpf_map_lookup_elem(&stack_counts, &key);
	if (!c) {
		if (!bpf_map_update_elem(&stack_counts, &key, &one, BPF_NOEXIST))
			return;
		c = bpf_map_lookup_elem(&stack_counts, &key);
		if (!c)
			return;
	}
	__sync_fetch_and_add(&c->calls, 1);
	__sync_fetch_and_add(&c->arg_sum, arg);
}

// The call just counted in `st`, on its stack, if the slot takes this call's stack: every
// call's, or one in `stack_every` (`calls` read after the increment: with one traced
// thread, the calls so far, this one included; the first call is always taken).
static __always_inline void sample_stack(void *ctx, struct slot_stats *st, __u32 slot, __u64 arg)
{
	__u32 every = stack_every[slot & (SLOTS - 1)];

	if (every == 1 || (every > 1 && (st->calls - 1) % every == 0))
		record_stack(ctx, slot, arg);
}

static __always_inline struct thread_calls *this_thread(struct thread_key *key)
{
	struct thread_calls *t = bpf_map_lookup_elem(&threads, key);

	if (t)
		return t;
	// A thread's first call (or first since the LRU dropped it): the zeroed entry is built
	// here only, not on every call's stack.
	{
		struct thread_calls none = {};

		bpf_map_update_elem(&threads, key, &none, BPF_NOEXIST);
	}
	return bpf_map_lookup_elem(&threads, key);
}

static __always_inline int on_entry(void *ctx, __u32 slot, __u64 arg, __u64 vma)
{
	struct slot_stats *st = &stats[slot & (SLOTS - 1)];
	struct thread_key key = { .slot = slot };
	struct thread_calls *t;
	__u32 depth;

	if (!traced())
		return 0;
	if (!on_vmas_asked(slot, vma)) {
		__sync_fetch_and_add(&st->outside_vmas, 1);
		return 0;
	}
	__sync_fetch_and_add(&st->calls, 1);
	if (arg_index[slot & (SLOTS - 1)] >= 0)
		record_arg(st, slot, arg);
	sample_stack(ctx, st, slot, arg);
	if (!timed[slot & (SLOTS - 1)])
		return 0;
	key.tid = (__u32)bpf_get_current_pid_tgid();
	t = this_thread(&key);
	if (!t)
		return 0;
	depth = t->depth++;
	if (depth < MAX_DEPTH)
		t->start[depth & (MAX_DEPTH - 1)] = bpf_ktime_get_ns();
	return 0;
}

static __always_inline int on_exit(__u32 slot)
{
	struct slot_stats *st = &stats[slot & (SLOTS - 1)];
	struct thread_key key = { .tid = (__u32)bpf_get_current_pid_tgid(), .slot = slot };
	struct thread_calls *t = bpf_map_lookup_elem(&threads, &key);
	__u64 delta;
	__u32 depth, b;

	// No entry seen on this thread (attached mid-call, or an untraced process).
	if (!t || t->depth == 0)
		return 0;
	depth = --t->depth;
	if (depth >= MAX_DEPTH)
		return 0;
	delta = bpf_ktime_get_ns() - t->start[depth & (MAX_DEPTH - 1)];
	b = log2_slot(delta);
	if (b < MAX_SLOTS)
		__sync_fetch_and_add(&st->latency_slots[b], 1);
	__sync_fetch_and_add(&st->total_ns, delta);
	__sync_fetch_and_add(&st->returns, 1);
	return 0;
}

// bpf_get_func_arg (5.17+) rather than ctx[arg_index]: clang folds a switch over ctx[N]
// into one load through a moved ctx pointer, which the verifier refuses.
static __always_inline int fentry_entry(__u64 *ctx, __u32 slot)
{
	int i = arg_index[slot & (SLOTS - 1)];
	int v = vma_index[slot & (SLOTS - 1)];
	__u64 a = 0, vma = 0;

	if (i >= 0)
		bpf_get_func_arg(ctx, i, &a);
	if (v >= 0)
		bpf_get_func_arg(ctx, v, &vma);
	return on_entry(ctx, slot, a, vma);
}

// All six argument registers are read at fixed offsets (each its own ctx load), then one
// is picked: the same folding as above would otherwise move the ctx pointer.
static __always_inline int kprobe_entry(struct pt_regs *ctx, __u32 slot)
{
	__u64 regs[6] = {
		PT_REGS_PARM1(ctx), PT_REGS_PARM2(ctx), PT_REGS_PARM3(ctx),
		PT_REGS_PARM4(ctx), PT_REGS_PARM5(ctx), PT_REGS_PARM6(ctx),
	};
	int i = arg_index[slot & (SLOTS - 1)];
	int v = vma_index[slot & (SLOTS - 1)];
	__u64 a = 0, vma = 0;

	if (i >= 0 && i < 6)
		a = regs[i];
	if (v >= 0 && v < 6)
		vma = regs[v];
	return on_entry(ctx, slot, a, vma);
}

// One tracepoint on its own (e.g. fs_dax/dax_pmd_fault_done): counted, and one 32-bit
// field of its record, at `arg_index` bytes in, recorded as the argument (a fault's result
// flags: NOPAGE against FALLBACK). The offset comes from tracefs' format, not from a
// struct in vmlinux.h, so one program serves every event.
static __always_inline int tp_event(void *ctx, __u32 slot)
{
	struct slot_stats *st = &stats[slot & (SLOTS - 1)];
	int i = arg_index[slot & (SLOTS - 1)];
	__u32 v = 0;

	if (!traced())
		return 0;
	__sync_fetch_and_add(&st->calls, 1);
	if (i >= 0) {
		bpf_probe_read_kernel(&v, sizeof(v), (char *)ctx + i);
		record_arg(st, slot, v);
	}
	sample_stack(ctx, st, slot, v);
	return 0;
}

// Each slot's programs; user space turns on those of the slot's flavour. A syscall
// tracepoint pair (sys_enter_X, sys_exit_X) times the syscall where no function inside it
// can be traced.
#define SLOT(n)                                                                 \
	SEC("fentry/placeholder")                                               \
	int fentry_entry_##n(__u64 *ctx) { return fentry_entry(ctx, n); }       \
	SEC("fexit/placeholder")                                                \
	int fexit_exit_##n(__u64 *ctx) { return on_exit(n); }                   \
	SEC("kprobe/placeholder")                                               \
	int kprobe_entry_##n(struct pt_regs *ctx) { return kprobe_entry(ctx, n); } \
	SEC("kretprobe/placeholder")                                            \
	int kretprobe_exit_##n(struct pt_regs *ctx) { return on_exit(n); }      \
	SEC("tracepoint/placeholder/enter")                                     \
	int tp_entry_##n(void *ctx) { return on_entry(ctx, n, 0, 0); }             \
	SEC("tracepoint/placeholder/exit")                                      \
	int tp_exit_##n(void *ctx) { return on_exit(n); }                       \
	SEC("tracepoint/placeholder/event")                                     \
	int tp_event_##n(void *ctx) { return tp_event(ctx, n); }

SLOT(0) SLOT(1) SLOT(2) SLOT(3) SLOT(4) SLOT(5) SLOT(6) SLOT(7)
SLOT(8) SLOT(9) SLOT(10) SLOT(11) SLOT(12) SLOT(13) SLOT(14) SLOT(15)
SLOT(16) SLOT(17) SLOT(18) SLOT(19) SLOT(20) SLOT(21) SLOT(22) SLOT(23)
SLOT(24) SLOT(25) SLOT(26) SLOT(27) SLOT(28) SLOT(29) SLOT(30) SLOT(31)

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
