//! Pin drivers: real kernel pin paths driven from user space.
//!
//! io_uring fixed-buffer registration pins each buffer with FOLL_LONGTERM
//! (`io_sqe_buffer_register` -> `io_pin_pages` -> `pin_user_pages_fast`) and
//! unregistration unpins it.

use std::time::{Duration, Instant};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum PinError {
    #[error("mmap of {0} bytes failed: {1}")]
    Mmap(usize, std::io::Error),
    #[error("io_uring setup failed: {0}")]
    Setup(std::io::Error),
    #[error("io_uring buffer registration refused by the kernel: {0}")]
    Register(std::io::Error),
    #[error("io_uring buffer unregistration failed: {0}")]
    Unregister(std::io::Error),
}

/// Anonymous memory, populated, unmapped on drop.
pub struct AnonMapping {
    ptr: *mut u8,
    len: usize,
}

impl AnonMapping {
    /// `thp`: ask for transparent huge pages (MADV_HUGEPAGE) before populating.
    pub fn new(len: usize, thp: bool) -> Result<AnonMapping, PinError> {
        // SAFETY: anonymous private mapping; checked for MAP_FAILED.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(PinError::Mmap(len, std::io::Error::last_os_error()));
        }
        let m = AnonMapping {
            ptr: ptr.cast(),
            len,
        };
        if thp {
            // SAFETY: advising our own mapping; failure (THP off) leaves base pages.
            unsafe { libc::madvise(ptr, len, libc::MADV_HUGEPAGE) };
        }
        // Fault every page in now: pins then measure pinning, not page faults.
        for off in (0..len).step_by(4096) {
            // SAFETY: off < len, inside the mapping.
            unsafe { m.ptr.add(off).write_volatile(1) };
        }
        Ok(m)
    }

    /// `n` equal consecutive pieces as iovecs.
    pub fn iovecs(&self, n: usize) -> Vec<libc::iovec> {
        let each = self.len / n;
        (0..n)
            .map(|i| libc::iovec {
                // SAFETY: i * each < len.
                iov_base: unsafe { self.ptr.add(i * each) }.cast(),
                iov_len: each,
            })
            .collect()
    }
}

impl Drop for AnonMapping {
    fn drop(&mut self) {
        // SAFETY: unmapping the mapping we created.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// One registration and unregistration.
#[derive(Debug, Clone, Copy)]
pub struct PinTiming {
    pub pin: Duration,
    pub unpin: Duration,
}

/// Registers `bufs` as io_uring fixed buffers (one long-term pin each) and unregisters
/// them, timing both.
pub fn io_uring_register(bufs: &[libc::iovec]) -> Result<PinTiming, PinError> {
    let ring = io_uring::IoUring::new(4).map_err(PinError::Setup)?;
    let sub = ring.submitter();
    let t = Instant::now();
    // SAFETY: the iovecs point into a live mapping that outlives the registration
    // (unregistered below before returning).
    unsafe { sub.register_buffers(bufs) }.map_err(PinError::Register)?;
    let pin = t.elapsed();
    let t = Instant::now();
    sub.unregister_buffers().map_err(PinError::Unregister)?;
    Ok(PinTiming {
        pin,
        unpin: t.elapsed(),
    })
}
