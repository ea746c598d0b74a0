//! foliobench's side that drives the kernel: machine facts, pmem namespaces, workloads.
//! Nothing here formats output; it returns values that `reports` renders.

pub mod command;
pub mod kconfig;
pub mod memmap;
pub mod namespace;
pub mod pin;
pub mod pmem;
pub mod system;
