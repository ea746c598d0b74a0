//! foliobench's BPF side: the probe catalog and its resolution on the running kernel, BTF
//! queries, the capability probe that finds out which BPF program types this kernel really
//! loads, attaches and runs, and the tracer (one funclatency-style object per probe;
//! `tracer::around` for a traced round).

pub mod btf;
pub mod capability;
pub mod catalog;
pub mod kernel;
pub mod symbols;
pub mod tracer;
pub mod vmemmap;

/// libbpf prints its own diagnostics to stderr; foliobench reports refusals itself.
/// FOLIOBENCH_LIBBPF_LOG=1 keeps libbpf's output (with the verifier log), for debugging.
pub(crate) fn quiet_libbpf() {
    if std::env::var_os("FOLIOBENCH_LIBBPF_LOG").is_none() {
        libbpf_rs::set_print(None);
    }
}
