//! Pin drivers: real kernel pin paths driven from user space, on a mapping of the memory
//! under test.
//!
//! - io_uring fixed-buffer registration pins each buffer with FOLL_LONGTERM
//!   (`io_sqe_buffer_register` -> `io_pin_pages` -> `pin_user_pages_fast`), and
//!   unregistration unpins it.
//! - O_DIRECT reads from a block device pin the destination with FOLL_PIN through GUP-fast
//!   (`iov_iter_extract_pages` -> `pin_user_pages_fast`); bio completion unpins it
//!   (`unpin_user_folio`).
//! - The kernel's own gup_test ioctls (CONFIG_GUP_TEST), timed by the kernel itself, so the
//!   figures line up with the kernel selftest's `gup_test`.
//! - AF_XDP UMEM registration pins with FOLL_LONGTERM through `pin_user_pages` on every
//!   kernel, file-backed memory included (`xdp_umem_pin_pages`).

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use crate::mapping::{Mapping, WorkloadError, PAGE};
use crate::unpreempted::Unpreempted;

/// io_uring refuses a fixed buffer longer than 1 GiB (`io_buffer_validate`).
pub const IO_URING_MAX_BUFFER: usize = 1 << 30;

/// One O_DIRECT transfer: 1 MiB, the 256 base pages one bio takes in one extraction
/// (BIO_MAX_VECS), so every transfer is one `pin_user_pages_fast` call of 256 pages.
///
/// Why: a longer transfer extracts pages again and again into one bio, each time as many as
/// its free segments, and the bio merges physically adjacent pages into one segment: how
/// many GUP calls and grabs a transfer made followed where the allocator had placed the
/// memory. Two boots of the main job pinned the same 1 GiB of anonymous THP with 6878 and
/// 8545 grabs (38.9 / 40.4 ms), in 1 GiB transfers.
pub const ODIRECT_TRANSFER: usize = 1 << 20;

/// One pin and one unpin of a whole mapping, timed from user space or by the kernel.
#[derive(Debug, Clone, Copy)]
pub struct PinTiming {
    pub pin: Duration,
    /// `None` where the driver cannot separate the unpin (O_DIRECT unpins at completion).
    pub unpin: Option<Duration>,
    pub pages: u64,
}

/// An io_uring instance for fixed-buffer pins. Made once, outside the timed and traced
/// rounds: the io-uring crate maps the rings with MAP_POPULATE, which itself goes through
/// GUP (`__mm_populate` -> `try_grab_folio`) and would be counted as pinning.
pub struct FixedBuffers {
    ring: io_uring::IoUring,
}

impl FixedBuffers {
    pub fn new() -> Result<FixedBuffers, WorkloadError> {
        Ok(FixedBuffers {
            ring: io_uring::IoUring::new(4).map_err(WorkloadError::Setup)?,
        })
    }

    /// Registers `bufs` as fixed buffers (one long-term pin each) and unregisters them,
    /// timing both.
    pub fn round(&self, bufs: &[libc::iovec]) -> Result<PinTiming, WorkloadError> {
        self.round_holding(bufs, &mut || {})
    }

    /// `round`, calling `held` between the timed registration and the timed
    /// unregistration, while the pins are held.
    pub fn round_holding(
        &self,
        bufs: &[libc::iovec],
        held: &mut dyn FnMut(),
    ) -> Result<PinTiming, WorkloadError> {
        let sub = self.ring.submitter();
        let pages = bufs.iter().map(|b| (b.iov_len / PAGE) as u64).sum();
        let _unpreempted = Unpreempted::enter();
        let t = Instant::now();
        // SAFETY: the iovecs point into a live mapping that outlives the registration
        // (unregistered below before returning; a failed registration pins nothing).
        unsafe { sub.register_buffers(bufs) }.map_err(|err| WorkloadError::Refused {
            what: "io_uring buffer registration (FOLL_LONGTERM)",
            err,
        })?;
        let pin = t.elapsed();
        held();
        let t = Instant::now();
        sub.unregister_buffers().map_err(|e| {
            WorkloadError::Failed(format!("io_uring buffer unregistration failed: {e}"))
        })?;
        Ok(PinTiming {
            pin,
            unpin: Some(t.elapsed()),
            pages,
        })
    }
}

/// Which way an O_DIRECT transfer goes, and so how the mapping is pinned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The block device into the mapping: its pages are pinned FOLL_PIN | FOLL_WRITE.
    Read,
    /// The mapping to the block device: pinned without FOLL_WRITE (a read-only mapping
    /// can be pinned this way).
    Write,
}

/// Transfers the whole mapping from or to the block device `dev` (opened O_DIRECT), in
/// transfers of at most `chunk` bytes. Each one pins its part of the mapping and unpins it
/// at completion.
pub fn odirect(
    dev: &File,
    m: &Mapping,
    chunk: usize,
    dir: Direction,
) -> Result<PinTiming, WorkloadError> {
    let _unpreempted = Unpreempted::enter();
    let t = Instant::now();
    let mut off = 0usize;
    while off < m.len() {
        let n = chunk.min(m.len() - off);
        let (fd, buf, at) = (
            dev.as_raw_fd(),
            m.ptr().wrapping_add(off),
            off as libc::off_t,
        );
        // SAFETY: [ptr+off, ptr+off+n) lies inside the mapping, writable for a read.
        let done = unsafe {
            match dir {
                Direction::Read => libc::pread(fd, buf.cast(), n, at),
                Direction::Write => libc::pwrite(fd, buf.cast(), n, at),
            }
        };
        if done < 0 {
            return Err(WorkloadError::Refused {
                what: match dir {
                    Direction::Read => "O_DIRECT read (FOLL_PIN)",
                    Direction::Write => "O_DIRECT write (FOLL_PIN, no FOLL_WRITE)",
                },
                err: io::Error::last_os_error(),
            });
        }
        if done == 0 {
            return Err(WorkloadError::Failed(format!(
                "O_DIRECT {}: the block device ended at {off} bytes, before the mapping's {}",
                if dir == Direction::Read {
                    "read"
                } else {
                    "write"
                },
                m.len()
            )));
        }
        off += done as usize;
    }
    Ok(PinTiming {
        pin: t.elapsed(),
        unpin: None,
        pages: m.pages(),
    })
}

/// A new AF_XDP socket.
fn xdp_socket() -> io::Result<std::os::fd::OwnedFd> {
    // SAFETY: plain socket(2).
    let fd = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just returned by socket(2) and is owned by nothing else.
    Ok(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// Whether an AF_XDP socket can be made here, or why not.
pub fn xdp_sockets() -> Result<(), String> {
    xdp_socket().map(drop).map_err(|e| {
        format!("no AF_XDP socket: {e} (a kernel without CONFIG_XDP_SOCKETS, or no CAP_NET_RAW)")
    })
}

/// Registers the whole mapping as an AF_XDP socket's UMEM (setsockopt XDP_UMEM_REG), timed:
/// `xdp_umem_reg` pins it with FOLL_LONGTERM through `pin_user_pages` (slow GUP: no GUP-fast
/// attempt), then vmaps it. A long-term pin on every kernel with CONFIG_XDP_SOCKETS (4.18+),
/// with no network device, and of file-backed memory too: devdax on 6.1, where io_uring
/// refuses it. Closing the socket unpins after an RCU grace period, outside this thread, so
/// the unpin is not timed.
pub fn xdp_umem(m: &Mapping) -> Result<PinTiming, WorkloadError> {
    let sock = xdp_socket().map_err(WorkloadError::Setup)?;
    // The v1 layout (no flags): accepted by every kernel since 4.18.
    let reg = libc::xdp_umem_reg_v1 {
        addr: m.addr(),
        len: m.len() as u64,
        chunk_size: PAGE as u32,
        headroom: 0,
    };
    let unpreempted = Unpreempted::enter();
    let t = Instant::now();
    // SAFETY: `reg` is a valid xdp_umem_reg_v1 of the size passed; the UMEM points into a
    // live mapping, unpinned when the socket is released (dropped below).
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_XDP,
            libc::XDP_UMEM_REG,
            (&reg as *const libc::xdp_umem_reg_v1).cast(),
            std::mem::size_of::<libc::xdp_umem_reg_v1>() as libc::socklen_t,
        )
    };
    let pin = t.elapsed();
    drop(unpreempted);
    if r < 0 {
        return Err(WorkloadError::Refused {
            what: "AF_XDP UMEM registration (FOLL_LONGTERM)",
            err: io::Error::last_os_error(),
        });
    }
    drop(sock);
    Ok(PinTiming {
        pin,
        unpin: None,
        pages: m.pages(),
    })
}

/// `struct gup_test` of mm/gup_test.h (6.12; unchanged since 5.11's GUP_TEST).
#[repr(C)]
#[derive(Debug, Default)]
pub struct GupTestArgs {
    pub get_delta_usec: u64,
    pub put_delta_usec: u64,
    pub addr: u64,
    pub size: u64,
    pub nr_pages_per_call: u32,
    pub gup_flags: u32,
    pub test_flags: u32,
    pub which_pages: [u32; 8],
}

/// The gup_test benchmarks, by the selftest's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GupTestCmd {
    /// get_user_pages_fast (FOLL_GET: a reference, not a pin).
    GupFast = 1,
    /// pin_user_pages_fast (FOLL_PIN).
    PinFast = 2,
    /// pin_user_pages with FOLL_LONGTERM.
    PinLongterm = 3,
}

/// FOLL_WRITE, as the selftest's `-w`.
const FOLL_WRITE: u32 = 0x01;

nix::ioctl_readwrite!(gup_fast_benchmark, b'g', 1, GupTestArgs);
nix::ioctl_readwrite!(pin_fast_benchmark, b'g', 2, GupTestArgs);
nix::ioctl_readwrite!(pin_longterm_benchmark, b'g', 3, GupTestArgs);

/// Runs one gup_test benchmark over the mapping, `per_call` pages per GUP call, with
/// FOLL_WRITE. The kernel times the get and the put itself (in µs). gup_test does not
/// return the errno of a failed pin: it stops and reports how far it got, so a refusal is
/// "pinned 0 of N pages".
pub fn gup_test(
    dev: &File,
    cmd: GupTestCmd,
    m: &Mapping,
    per_call: u32,
) -> Result<PinTiming, WorkloadError> {
    gup_test_with(dev, cmd, m, per_call, true)
}

/// gup_test with or without FOLL_WRITE (without: what a read-only mapping allows).
pub fn gup_test_with(
    dev: &File,
    cmd: GupTestCmd,
    m: &Mapping,
    per_call: u32,
    write: bool,
) -> Result<PinTiming, WorkloadError> {
    let mut a = GupTestArgs {
        addr: m.addr(),
        size: m.len() as u64,
        nr_pages_per_call: per_call,
        gup_flags: if write { FOLL_WRITE } else { 0 },
        ..Default::default()
    };
    let fd = dev.as_raw_fd();
    let unpreempted = Unpreempted::enter();
    // SAFETY: `a` is a valid struct gup_test; the ioctl reads and writes only it, and pins
    // pages of our own live mapping, releasing them before it returns.
    let r = unsafe {
        match cmd {
            GupTestCmd::GupFast => gup_fast_benchmark(fd, &mut a),
            GupTestCmd::PinFast => pin_fast_benchmark(fd, &mut a),
            GupTestCmd::PinLongterm => pin_longterm_benchmark(fd, &mut a),
        }
    };
    drop(unpreempted);
    r.map_err(|e| WorkloadError::Refused {
        what: "gup_test ioctl",
        err: io::Error::from_raw_os_error(e as i32),
    })?;
    let pinned = a.size / PAGE as u64;
    if pinned < m.pages() {
        return Err(WorkloadError::Refused {
            what: "gup_test",
            err: io::Error::other(format!(
                "pinned {pinned} of {} pages (gup_test does not return the errno)",
                m.pages()
            )),
        });
    }
    Ok(PinTiming {
        pin: Duration::from_micros(a.get_delta_usec),
        unpin: Some(Duration::from_micros(a.put_delta_usec)),
        pages: pinned,
    })
}

/// Pages per GUP call for gup_test, as the selftest's `-n 512` in the kernel's README.
pub const GUP_TEST_PAGES_PER_CALL: u32 = 512;

/// A pin driver with what it needs open.
pub enum Driver<'a> {
    IoUring(&'a FixedBuffers),
    /// The O_DIRECT source device, opened with O_DIRECT.
    Odirect(&'a File),
    /// /sys/kernel/debug/gup_test, and the benchmark.
    GupTest(&'a File, GupTestCmd),
    /// An AF_XDP socket per round, its UMEM the mapping.
    XdpUmem,
}

impl Driver<'_> {
    /// Pins and unpins the whole mapping once.
    pub fn round(&self, m: &Mapping) -> Result<PinTiming, WorkloadError> {
        match self {
            Driver::IoUring(ring) => ring.round(&m.iovecs(IO_URING_MAX_BUFFER)),
            Driver::Odirect(dev) => odirect(dev, m, ODIRECT_TRANSFER, Direction::Read),
            Driver::GupTest(dev, cmd) => gup_test(dev, *cmd, m, GUP_TEST_PAGES_PER_CALL),
            Driver::XdpUmem => xdp_umem(m),
        }
    }

    /// For io_uring, the pins the kernel counts as held while the registration holds them:
    /// nr_foll_pin_acquired - nr_foll_pin_released then, less before the round (the leak
    /// check's positive control: a pin not yet released is seen). None for the other
    /// drivers, whose pins are released before the call that took them returns.
    pub fn held_pins(&self, m: &Mapping) -> Option<Result<i64, WorkloadError>> {
        let Driver::IoUring(ring) = self else {
            return None;
        };
        let net = |p: Option<(i64, i64)>| p.map(|(a, r)| a - r);
        let before = net(crate::system::foll_pins());
        let mut during = None;
        let done = ring.round_holding(&m.iovecs(IO_URING_MAX_BUFFER), &mut || {
            during = net(crate::system::foll_pins());
        });
        Some(done.and_then(|_| {
            before
                .zip(during)
                .map(|(b, d)| d - b)
                .ok_or_else(|| WorkloadError::Failed("no nr_foll_pin_* in /proc/vmstat".into()))
        }))
    }

    /// Pins and unpins a read-only mapping once, each driver as far as it can without
    /// FOLL_WRITE: io_uring always asks for it; O_DIRECT writes *from* the mapping to
    /// `odirect_out` (opened for writing); gup_test without FOLL_WRITE.
    pub fn round_read_only(
        &self,
        m: &Mapping,
        odirect_out: Option<&File>,
    ) -> Result<PinTiming, WorkloadError> {
        match self {
            // Both always ask for FOLL_WRITE.
            Driver::IoUring(ring) => ring.round(&m.iovecs(IO_URING_MAX_BUFFER)),
            Driver::XdpUmem => xdp_umem(m),
            Driver::Odirect(_) => match odirect_out {
                Some(out) => odirect(out, m, ODIRECT_TRANSFER, Direction::Write),
                None => Err(WorkloadError::Failed(
                    "no block device opened for O_DIRECT writes".into(),
                )),
            },
            Driver::GupTest(dev, cmd) => {
                gup_test_with(dev, *cmd, m, GUP_TEST_PAGES_PER_CALL, false)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ioctl numbers encode the struct's size: 80 bytes, as the kernel's.
    #[test]
    fn gup_test_struct_matches_the_kernel() {
        assert_eq!(std::mem::size_of::<GupTestArgs>(), 80);
        // _IOWR('g', 2, struct gup_test) as the selftest computes it.
        let pin_fast = nix::request_code_readwrite!(b'g', 2, 80);
        assert_eq!(pin_fast, 0xc050_6702);
    }

    /// Anonymous memory pins on any kernel with io_uring (also on the host).
    #[test]
    fn io_uring_pins_anonymous_memory_when_io_uring_is_allowed() {
        let m = Mapping::anonymous(16 * PAGE, false).unwrap();
        m.touch();
        let ring = match FixedBuffers::new() {
            Ok(r) => r,
            // Some sandboxes disable io_uring (kernel.io_uring_disabled): that is setup.
            Err(e) => return eprintln!("io_uring unavailable here: {e}"),
        };
        for _ in 0..2 {
            let t = ring.round(&m.iovecs(IO_URING_MAX_BUFFER)).unwrap();
            assert_eq!(t.pages, 16);
            assert!(t.unpin.is_some());
        }
    }

    /// AF_XDP UMEM registration pins anonymous memory wherever AF_XDP sockets exist (as
    /// root: the pinned pages are charged to RLIMIT_MEMLOCK otherwise).
    #[test]
    fn xdp_umem_pins_anonymous_memory() {
        let m = Mapping::anonymous(16 * PAGE, false).unwrap();
        m.touch();
        match xdp_umem(&m) {
            Ok(t) => {
                assert_eq!(t.pages, 16);
                assert!(t.unpin.is_none(), "released after an RCU grace period");
            }
            Err(WorkloadError::Setup(e)) => eprintln!("no AF_XDP sockets here: {e}"),
            Err(e) => panic!("{e}"),
        }
    }
}
