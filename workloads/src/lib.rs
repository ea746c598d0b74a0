//! foliobench's side that drives the kernel: machine facts, pmem namespaces, mappings, pin
//! drivers and rmap operations, and in `suites` each suite's loop (plan in, its part of the
//! results out). Nothing here formats output; it returns values that `reports` renders.

pub mod blockdev;
pub mod command;
pub mod error;
pub mod fsdax;
pub mod hugetlb;
pub mod kconfig;
pub mod mapping;
pub mod namespace;
pub mod page_lists;
pub mod pagemap;
pub mod perf;
pub mod pfnmap;
pub mod pin;
pub mod pmem;
pub mod rmap;
pub mod rmap_round;
pub mod saved;
pub mod suites;
pub mod system;
pub mod thp;
pub mod unpreempted;
