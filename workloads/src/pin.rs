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

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::pagemap::{smaps_bytes, smaps_fields};

pub const PAGE: usize = 4096;
/// io_uring refuses a fixed buffer longer than 1 GiB (`io_buffer_validate`).
pub const IO_URING_MAX_BUFFER: usize = 1 << 30;

#[derive(Debug, Error)]
pub enum PinError {
    #[error("mmap of {0} bytes failed: {1}")]
    Mmap(usize, io::Error),
    #[error("{0}: {1}")]
    Open(String, io::Error),
    #[error("io_uring setup failed: {0}")]
    Setup(io::Error),
    /// The kernel refused to pin this memory: a result to record, not a crash.
    #[error("{what} refused by the kernel ({}): {err}", errno_name(.err))]
    Refused { what: &'static str, err: io::Error },
    #[error("{0}")]
    Failed(String),
}

impl PinError {
    /// The errno of a kernel refusal, by name (EOPNOTSUPP, EFAULT, ...).
    pub fn refusal(&self) -> Option<String> {
        match self {
            PinError::Refused { err, .. } => Some(errno_name(err)),
            _ => None,
        }
    }
}

/// `EOPNOTSUPP`, not "Operation not supported (os error 95)": the kernel's own name.
pub fn errno_name(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => format!("{:?}", nix::errno::Errno::from_raw(n)),
        None => e.to_string(),
    }
}

/// A mapping of the memory under test; unmapped on drop.
pub struct Mapping {
    ptr: *mut u8,
    len: usize,
    /// The device or file mapped (kept open for the mapping's life).
    _file: Option<File>,
}

fn mmap(len: usize, flags: libc::c_int, fd: libc::c_int) -> Result<*mut u8, PinError> {
    mmap_at(
        std::ptr::null_mut(),
        len,
        libc::PROT_READ | libc::PROT_WRITE,
        flags,
        fd,
    )
}

fn mmap_at(
    addr: *mut u8,
    len: usize,
    prot: libc::c_int,
    flags: libc::c_int,
    fd: libc::c_int,
) -> Result<*mut u8, PinError> {
    // SAFETY: a fresh mapping at an address of the kernel's choice, or (MAP_FIXED) over a
    // reservation of our own; checked for MAP_FAILED.
    let ptr = unsafe { libc::mmap(addr.cast(), len, prot, flags, fd, 0) };
    if ptr == libc::MAP_FAILED {
        return Err(PinError::Mmap(len, io::Error::last_os_error()));
    }
    Ok(ptr.cast())
}

impl Mapping {
    /// Private anonymous memory. `thp`: MADV_HUGEPAGE, else MADV_NOHUGEPAGE, so the base-page
    /// row really is base pages whatever the system's THP default.
    /// The start is 2 MiB-aligned, so every large folio size up to the PMD can be had (a
    /// folio must lie naturally aligned inside the mapping).
    pub fn anonymous(len: usize, thp: bool) -> Result<Mapping, PinError> {
        const ALIGN: usize = 2 << 20;
        let raw = mmap(len + ALIGN, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1)?;
        let head = (ALIGN - raw as usize % ALIGN) % ALIGN;
        // SAFETY: trimming our own fresh mapping to [raw+head, raw+head+len).
        let ptr = unsafe {
            if head > 0 {
                libc::munmap(raw.cast(), head);
            }
            libc::munmap(raw.add(head + len).cast(), ALIGN - head);
            raw.add(head)
        };
        let advice = if thp {
            libc::MADV_HUGEPAGE
        } else {
            libc::MADV_NOHUGEPAGE
        };
        // SAFETY: advising our own mapping; failure (THP compiled out) leaves base pages,
        // which `thp_bytes` then shows.
        unsafe { libc::madvise(ptr.cast(), len, advice) };
        Ok(Mapping {
            ptr,
            len,
            _file: None,
        })
    }

    /// A shared mapping of a dax device (`/dev/daxX.Y`) or a file on a dax filesystem.
    pub fn shared(file: File, len: usize) -> Result<Mapping, PinError> {
        let ptr = mmap(len, libc::MAP_SHARED, file.as_raw_fd())?;
        Ok(Mapping {
            ptr,
            len,
            _file: Some(file),
        })
    }

    /// A shared mapping of a file whose start is `offset` bytes past an `align`-aligned
    /// address (a PMD mapping of a dax file needs the virtual address aligned as the file
    /// offset is; an `offset` that is not a multiple of it denies that): a reservation of
    /// `len + 2 * align` bytes, the file mapped over it, the rest unmapped.
    pub fn shared_aligned(
        file: File,
        len: usize,
        align: usize,
        offset: usize,
    ) -> Result<Mapping, PinError> {
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
        let total = len + 2 * align;
        let raw = mmap_at(std::ptr::null_mut(), total, libc::PROT_NONE, flags, -1)?;
        let head = (align - raw as usize % align) % align + offset % align;
        // SAFETY: inside our own reservation [raw, raw+total): head + len < total.
        let at = unsafe { raw.add(head) };
        let ptr = match mmap_at(
            at,
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_FIXED,
            file.as_raw_fd(),
        ) {
            Ok(p) => p,
            Err(e) => {
                // SAFETY: releasing our own reservation.
                unsafe { libc::munmap(raw.cast(), total) };
                return Err(e);
            }
        };
        // SAFETY: trimming the reservation's unused head and tail.
        unsafe {
            if head > 0 {
                libc::munmap(raw.cast(), head);
            }
            libc::munmap(ptr.add(len).cast(), total - head - len);
        }
        Ok(Mapping {
            ptr,
            len,
            _file: Some(file),
        })
    }

    /// A read-only shared mapping (of device memory: nothing is ever written through it).
    pub fn read_only(file: File, len: usize) -> Result<Mapping, PinError> {
        let ptr = mmap_at(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            file.as_raw_fd(),
        )?;
        Ok(Mapping {
            ptr,
            len,
            _file: Some(file),
        })
    }

    /// Reads one byte every `step` bytes (read faults), timed.
    pub fn read_each(&self, step: usize) -> Duration {
        let t = Instant::now();
        let mut sum = 0u8;
        for off in (0..self.len).step_by(step.max(1)) {
            // SAFETY: off < len, inside the mapping, which is readable.
            sum = sum.wrapping_add(unsafe { self.ptr.add(off).read_volatile() });
        }
        std::hint::black_box(sum);
        t.elapsed()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn pages(&self) -> u64 {
        (self.len / PAGE) as u64
    }

    pub fn addr(&self) -> u64 {
        self.ptr as u64
    }

    /// Writes one byte in every base page: faults the whole mapping in, and makes the host
    /// back emulated pmem (its first touch costs host allocation), before anything is timed.
    pub fn touch(&self) -> Duration {
        self.write_each(PAGE)
    }

    /// Writes one byte every `step` bytes, timed.
    pub fn write_each(&self, step: usize) -> Duration {
        let t = Instant::now();
        for off in (0..self.len).step_by(step.max(1)) {
            // SAFETY: off < len, inside the mapping, which is writable.
            unsafe { self.ptr.add(off).write_volatile(1) };
        }
        t.elapsed()
    }

    /// Unmaps now (for timing munmap itself), with its error.
    pub fn unmap(mut self) -> io::Result<()> {
        // SAFETY: unmapping the mapping we created; len = 0 keeps drop from doing it again.
        let rc = unsafe { libc::munmap(self.ptr.cast(), self.len) };
        self.len = 0;
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Bytes of this mapping backed by transparent huge pages (AnonHugePages in smaps):
    /// whether THP really backs it.
    pub fn thp_bytes(&self) -> Option<u64> {
        let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
        smaps_anon_huge_bytes(&smaps, self.addr())
    }

    /// The mapping as consecutive iovecs of at most `max_each` bytes each.
    pub fn iovecs(&self, max_each: usize) -> Vec<libc::iovec> {
        let each = max_each.min(self.len).max(1);
        (0..self.len)
            .step_by(each)
            .map(|off| libc::iovec {
                // SAFETY: off < len.
                iov_base: unsafe { self.ptr.add(off) }.cast(),
                iov_len: each.min(self.len - off),
            })
            .collect()
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: unmapping the mapping we created.
            unsafe { libc::munmap(self.ptr.cast(), self.len) };
        }
    }
}

/// `AnonHugePages` of the mapping starting at `addr` in a /proc/PID/smaps text.
pub fn smaps_anon_huge_bytes(smaps: &str, addr: u64) -> Option<u64> {
    smaps_bytes(&smaps_fields(smaps, addr)?, "AnonHugePages")
}

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
    pub fn new() -> Result<FixedBuffers, PinError> {
        Ok(FixedBuffers {
            ring: io_uring::IoUring::new(4).map_err(PinError::Setup)?,
        })
    }

    /// Registers `bufs` as fixed buffers (one long-term pin each) and unregisters them,
    /// timing both.
    pub fn round(&self, bufs: &[libc::iovec]) -> Result<PinTiming, PinError> {
        let sub = self.ring.submitter();
        let pages = bufs.iter().map(|b| (b.iov_len / PAGE) as u64).sum();
        let t = Instant::now();
        // SAFETY: the iovecs point into a live mapping that outlives the registration
        // (unregistered below before returning; a failed registration pins nothing).
        unsafe { sub.register_buffers(bufs) }.map_err(|err| PinError::Refused {
            what: "io_uring buffer registration (FOLL_LONGTERM)",
            err,
        })?;
        let pin = t.elapsed();
        let t = Instant::now();
        sub.unregister_buffers()
            .map_err(|e| PinError::Failed(format!("io_uring buffer unregistration failed: {e}")))?;
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
) -> Result<PinTiming, PinError> {
    let t = Instant::now();
    let mut off = 0usize;
    while off < m.len {
        let n = chunk.min(m.len - off);
        let (fd, buf, at) = (dev.as_raw_fd(), m.ptr.wrapping_add(off), off as libc::off_t);
        // SAFETY: [ptr+off, ptr+off+n) lies inside the mapping, writable for a read.
        let done = unsafe {
            match dir {
                Direction::Read => libc::pread(fd, buf.cast(), n, at),
                Direction::Write => libc::pwrite(fd, buf.cast(), n, at),
            }
        };
        if done < 0 {
            return Err(PinError::Refused {
                what: match dir {
                    Direction::Read => "O_DIRECT read (FOLL_PIN)",
                    Direction::Write => "O_DIRECT write (FOLL_PIN, no FOLL_WRITE)",
                },
                err: io::Error::last_os_error(),
            });
        }
        if done == 0 {
            return Err(PinError::Failed(format!(
                "O_DIRECT {}: the block device ended at {off} bytes, before the mapping's {}",
                if dir == Direction::Read {
                    "read"
                } else {
                    "write"
                },
                m.len
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
) -> Result<PinTiming, PinError> {
    gup_test_with(dev, cmd, m, per_call, true)
}

/// gup_test with or without FOLL_WRITE (without: what a read-only mapping allows).
pub fn gup_test_with(
    dev: &File,
    cmd: GupTestCmd,
    m: &Mapping,
    per_call: u32,
    write: bool,
) -> Result<PinTiming, PinError> {
    let mut a = GupTestArgs {
        addr: m.addr(),
        size: m.len as u64,
        nr_pages_per_call: per_call,
        gup_flags: if write { FOLL_WRITE } else { 0 },
        ..Default::default()
    };
    let fd = dev.as_raw_fd();
    // SAFETY: `a` is a valid struct gup_test; the ioctl reads and writes only it, and pins
    // pages of our own live mapping, releasing them before it returns.
    let r = unsafe {
        match cmd {
            GupTestCmd::GupFast => gup_fast_benchmark(fd, &mut a),
            GupTestCmd::PinFast => pin_fast_benchmark(fd, &mut a),
            GupTestCmd::PinLongterm => pin_longterm_benchmark(fd, &mut a),
        }
    };
    r.map_err(|e| PinError::Refused {
        what: "gup_test ioctl",
        err: io::Error::from_raw_os_error(e as i32),
    })?;
    let pinned = a.size / PAGE as u64;
    if pinned < m.pages() {
        return Err(PinError::Refused {
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

    #[test]
    fn iovecs_cover_the_mapping_within_the_limit() {
        let m = Mapping::anonymous(5 * PAGE, false).unwrap();
        assert_eq!(m.addr() % (2 << 20), 0, "2 MiB-aligned");
        let v = m.iovecs(2 * PAGE);
        assert_eq!(
            v.iter().map(|i| i.iov_len).collect::<Vec<_>>(),
            [2 * PAGE, 2 * PAGE, PAGE]
        );
        assert_eq!(v[1].iov_base as u64, m.addr() + 2 * PAGE as u64);
        assert_eq!(m.iovecs(1 << 30).len(), 1);
    }

    #[test]
    fn thp_bytes_are_the_mappings_own() {
        let smaps = "7f0000000000-7f0040000000 rw-p 00000000 00:00 0 \n\
                     Size:            1048576 kB\n\
                     AnonHugePages:   1046528 kB\n\
                     VmFlags: rd wr mr mw me ac hg\n\
                     7f0040000000-7f0040200000 rw-p 00000000 00:00 0 \n\
                     AnonHugePages:      2048 kB\n";
        assert_eq!(
            smaps_anon_huge_bytes(smaps, 0x7f0000000000),
            Some(1046528 * 1024)
        );
        assert_eq!(
            smaps_anon_huge_bytes(smaps, 0x7f0040000000),
            Some(2048 * 1024)
        );
        assert_eq!(smaps_anon_huge_bytes(smaps, 0x1000), None);
        let m = Mapping::anonymous(4 * PAGE, false).unwrap();
        m.touch();
        assert_eq!(m.thp_bytes(), Some(0), "MADV_NOHUGEPAGE");
    }

    #[test]
    fn refusals_name_the_errno() {
        let e = PinError::Refused {
            what: "x",
            err: io::Error::from_raw_os_error(libc::EOPNOTSUPP),
        };
        assert_eq!(e.refusal().as_deref(), Some("EOPNOTSUPP"));
        assert!(e.to_string().contains("refused by the kernel (EOPNOTSUPP)"));
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
}
