//! foliobench's results schema, and everything that turns results into output.
//! It never touches the kernel.

pub mod doctor;
pub mod facts;
pub mod geometry;
pub mod pin;
pub mod results;
pub mod rmap;
pub mod trace;
