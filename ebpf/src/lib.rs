//! foliobench's BPF side: the probe catalog, BTF queries, and the capability probe that
//! finds out which BPF program types this kernel really loads, attaches and runs.

pub mod btf;
pub mod capability;
pub mod catalog;
pub mod symbols;
