//! foliobench's results schema, and everything that turns results into output. Each suite's
//! module (memmap, pin, rmap, fsdax) holds its schema, checks, metric table and charts; the
//! leaf modules (check, metric, outcome, stats, units) serve them all. It never touches the
//! kernel.

pub mod check;
pub mod clock;
pub mod compare;
pub mod doctor;
pub mod effect;
pub mod facts;
pub mod fsdax;
pub mod geometry;
pub mod hugetlb;
pub mod matrix;
pub mod memmap;
pub mod metric;
pub mod outcome;
pub mod pages;
pub mod perf;
pub mod pin;
pub mod precision;
pub mod render;
pub mod results;
pub mod rmap;
pub mod scaling;
pub mod seed003;
pub mod stats;
pub mod suite;
pub mod summary;
pub mod trace;
pub mod units;

// The renderers' old paths, kept for the crates that use them.
pub use render::{chart, kcidb, report};
