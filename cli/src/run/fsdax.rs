//! `foliobench run --suite fsdax`: the file size checked, as the fsdax suite's plan (its
//! loop is `workloads::suites::fsdax`).

use anyhow::Result;
use foliobench_workloads::suites::fsdax::PMD;

use crate::exit::usage;
use crate::units::fmt_size;

/// The file size: whole PMDs.
pub fn check_size(size: u64) -> Result<u64> {
    if size == 0 || size % PMD != 0 {
        return Err(usage(format!(
            "--size {}: the fsdax suite maps its file in 2M pieces, so --size must be a \
             multiple of 2M (e.g. --size {})",
            fmt_size(size),
            fmt_size(size.div_ceil(PMD).max(1) * PMD)
        )));
    }
    Ok(size)
}
