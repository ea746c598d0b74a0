//! Any string as a geometry or pin memory: refused with a message or parsed, never a panic;
//! what parses prints back to a string that parses to the same value.
#![no_main]

use foliobench_reports::geometry::Geometry;
use foliobench_reports::pin::PinMemory;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|s: &str| {
    if let Ok(g) = s.parse::<Geometry>() {
        assert_eq!(g.to_string().parse::<Geometry>().ok(), Some(g), "{s:?}");
    }
    if let Ok(m) = s.parse::<PinMemory>() {
        assert_eq!(m.to_string().parse::<PinMemory>().ok(), Some(m), "{s:?}");
    }
});
