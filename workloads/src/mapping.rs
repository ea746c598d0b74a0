//! A mapping of the memory under test (anonymous, a dax device, a file, a PCI BAR), and the
//! error every workload returns: the kernel refusing something is a result (`Refused`,
//! with the errno by name), not a crash.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::pagemap::{smaps_bytes, smaps_fields};

pub const PAGE: usize = 4096;

#[derive(Debug, Error)]
pub enum WorkloadError {
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

impl WorkloadError {
    /// The errno of a kernel refusal, by name (EOPNOTSUPP, EFAULT, ...).
    pub fn refusal(&self) -> Option<String> {
        match self {
            WorkloadError::Refused { err, .. } => Some(errno_name(err)),
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

fn mmap(len: usize, flags: libc::c_int, fd: libc::c_int) -> Result<*mut u8, WorkloadError> {
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
) -> Result<*mut u8, WorkloadError> {
    // SAFETY: a fresh mapping at an address of the kernel's choice, or (MAP_FIXED) over a
    // reservation of our own; checked for MAP_FAILED.
    let ptr = unsafe { libc::mmap(addr.cast(), len, prot, flags, fd, 0) };
    if ptr == libc::MAP_FAILED {
        return Err(WorkloadError::Mmap(len, io::Error::last_os_error()));
    }
    Ok(ptr.cast())
}

impl Mapping {
    /// Private anonymous memory. `thp`: MADV_HUGEPAGE, else MADV_NOHUGEPAGE, so the base-page
    /// row really is base pages whatever the system's THP default.
    /// The start is 2 MiB-aligned, so every large folio size up to the PMD can be had (a
    /// folio must lie naturally aligned inside the mapping).
    pub fn anonymous(len: usize, thp: bool) -> Result<Mapping, WorkloadError> {
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

    /// Private anonymous HugeTLB memory of `kb` pages (MAP_HUGETLB with the page size in the
    /// flags), from that size's pool; the kernel aligns it to the page size.
    pub fn hugetlb(len: usize, kb: u64) -> Result<Mapping, WorkloadError> {
        let shift = (kb * 1024).trailing_zeros() as libc::c_int;
        let flags = libc::MAP_PRIVATE
            | libc::MAP_ANONYMOUS
            | libc::MAP_HUGETLB
            | (shift << libc::MAP_HUGE_SHIFT);
        let ptr = mmap(len, flags, -1)?;
        Ok(Mapping {
            ptr,
            len,
            _file: None,
        })
    }

    /// A shared mapping of a dax device (`/dev/daxX.Y`) or a file on a dax filesystem.
    pub fn shared(file: File, len: usize) -> Result<Mapping, WorkloadError> {
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
    ) -> Result<Mapping, WorkloadError> {
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

    /// A shared mapping of a file at exactly `addr` (MAP_FIXED_NOREPLACE: never over a
    /// mapping of ours), so that where it lands does not follow address-space randomization;
    /// an error if anything is mapped there.
    pub fn shared_at(file: File, len: usize, addr: usize) -> Result<Mapping, WorkloadError> {
        let ptr = mmap_at(
            addr as *mut u8,
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_FIXED_NOREPLACE,
            file.as_raw_fd(),
        )?;
        let m = Mapping {
            ptr,
            len,
            _file: Some(file),
        };
        // A kernel older than 4.17 takes the flag as a hint and may map elsewhere.
        if ptr as usize != addr {
            return Err(WorkloadError::Mmap(
                len,
                io::Error::new(
                    io::ErrorKind::AddrNotAvailable,
                    format!("asked for {addr:#x}, mapped at {:#x}", ptr as usize),
                ),
            ));
        }
        Ok(m)
    }

    /// A read-only shared mapping (of device memory: nothing is ever written through it).
    pub fn read_only(file: File, len: usize) -> Result<Mapping, WorkloadError> {
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

    /// Where the mapping starts, for the kernel calls that take a user pointer.
    pub(crate) fn ptr(&self) -> *mut u8 {
        self.ptr
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

    /// Faults the whole mapping in for writing without touching its data, timed:
    /// MADV_POPULATE_WRITE (5.14+), one loop in the kernel rather than a user fault per
    /// page (1 GiB of anonymous 4K pages under emulation: 6.0-6.4 s against 7.3-12.6 s
    /// written page by page). Where the kernel refuses it, `touch`.
    pub fn populate(&self) -> Duration {
        // Not in the libc crate's Linux constants yet (uapi asm-generic/mman-common.h).
        const MADV_POPULATE_WRITE: libc::c_int = 23;
        let t = Instant::now();
        // SAFETY: advice on our own mapping, its whole length.
        let rc = unsafe { libc::madvise(self.ptr.cast(), self.len, MADV_POPULATE_WRITE) };
        if rc == 0 {
            t.elapsed()
        } else {
            self.touch()
        }
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
    /// One of smaps' byte fields (`Private_Hugetlb`, …) for this mapping.
    pub fn smaps_bytes(&self, field: &str) -> Option<u64> {
        let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
        smaps_bytes(&smaps_fields(&smaps, self.addr())?, field)
    }

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

#[cfg(test)]
mod tests {
    use super::*;

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
        let e = WorkloadError::Refused {
            what: "x",
            err: io::Error::from_raw_os_error(libc::EOPNOTSUPP),
        };
        assert_eq!(e.refusal().as_deref(), Some("EOPNOTSUPP"));
        assert!(e.to_string().contains("refused by the kernel (EOPNOTSUPP)"));
    }
}
