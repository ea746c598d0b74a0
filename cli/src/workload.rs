//! `foliobench workload`: run one kernel workload by itself and print what it did, for
//! tracing it (`foliobench trace -- foliobench workload ...`) or timing it by hand.

use anyhow::Result;
use foliobench_workloads::mapping::Mapping;
use foliobench_workloads::pin::{FixedBuffers, IO_URING_MAX_BUFFER};

use crate::exit::{env, usage, Code};
use crate::units::{fmt_size, parse_size};

#[derive(Debug, clap::Subcommand)]
pub enum Workload {
    /// Long-term pins: register anonymous memory as io_uring fixed buffers, then unregister.
    IoUringPin {
        /// Size of each buffer.
        #[arg(long, default_value = "8M")]
        size: String,
        /// Buffers per registration.
        #[arg(long, default_value_t = 1)]
        buffers: usize,
        /// Registrations.
        #[arg(long, default_value_t = 1)]
        repeat: usize,
        /// madvise(MADV_HUGEPAGE) the memory first.
        #[arg(long)]
        thp: bool,
    },
}

pub fn run(w: Workload) -> Result<Code> {
    match w {
        Workload::IoUringPin {
            size,
            buffers,
            repeat,
            thp,
        } => {
            let each = parse_size("--size", &size)? as usize;
            if each == 0 || each % 4096 != 0 {
                return Err(usage(format!(
                    "--size {size}: must be a positive multiple of 4K"
                )));
            }
            if buffers == 0 || repeat == 0 {
                return Err(usage("--buffers and --repeat must be at least 1"));
            }
            if each > IO_URING_MAX_BUFFER {
                return Err(usage(format!(
                    "--size {size}: io_uring takes buffers of at most 1G"
                )));
            }
            let mem = Mapping::anonymous(each * buffers, thp).map_err(|e| env(e.to_string()))?;
            mem.touch();
            let iov = mem.iovecs(each);
            let ring = FixedBuffers::new().map_err(|e| env(e.to_string()))?;
            for i in 0..repeat {
                let t = ring.round(&iov).map_err(|e| env(e.to_string()))?;
                println!(
                    "io_uring-pin {}: {buffers} buffers x {} ({} pages each): pinned in {:?}, unpinned in {:?}",
                    i + 1,
                    fmt_size(each as u64),
                    each / 4096,
                    t.pin,
                    t.unpin.unwrap_or_default()
                );
            }
            Ok(Code::Ok)
        }
    }
}
