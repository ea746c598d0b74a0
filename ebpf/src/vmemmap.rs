//! Whether a pfn has a struct page, asked of the kernel's vmemmap itself (see
//! `bpf/vmemmap.bpf.c`): the one method that says "yes" for ZONE_DEVICE pfns (devdax,
//! fsdax) and for RAM, and "no" for a PCI BAR, on every kernel foliobench runs on.
//! /proc/kpageflags says NOPAGE for both ZONE_DEVICE and no page at all.

use std::mem::MaybeUninit;

use anyhow::{bail, Context, Result};
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};

use crate::btf::KernelBtf;
use crate::symbols::data_address;

mod skel {
    include!(concat!(env!("OUT_DIR"), "/vmemmap.skel.rs"));
}
use skel::*;

/// Pfns asked per run of the program (its .bss arrays).
const MAX_PFNS: usize = 512;

/// For each pfn, whether its struct page can be read from the vmemmap. x86-64 only (the
/// vmemmap's place comes from the kernel variable `vmemmap_base`).
pub fn has_struct_page(pfns: &[u64]) -> Result<Vec<bool>> {
    crate::quiet_libbpf();
    let kallsyms = std::fs::read_to_string("/proc/kallsyms").context("reading /proc/kallsyms")?;
    let Some(base_addr) = data_address(&kallsyms, "vmemmap_base") else {
        bail!(
            "no vmemmap_base in /proc/kallsyms (not x86-64, or addresses hidden by kptr_restrict)"
        );
    };
    let page_size = KernelBtf::load()?
        .struct_size("page")
        .context("no struct page in the kernel's BTF")?;
    let mut storage = MaybeUninit::uninit();
    let mut open = VmemmapSkelBuilder::default()
        .open(&mut storage)
        .context("opening the vmemmap BPF object")?;
    let rodata = open
        .maps
        .rodata_data
        .as_deref_mut()
        .context("vmemmap object has no .rodata")?;
    rodata.target_tgid = std::process::id();
    rodata.vmemmap_base_addr = base_addr;
    rodata.struct_page_size = page_size;
    let mut skel = open.load().context("loading the vmemmap reader")?;
    skel.attach().context("attaching to sys_enter_getpid")?;
    let mut out = Vec::with_capacity(pfns.len());
    for chunk in pfns.chunks(MAX_PFNS) {
        out.extend(read_chunk(&mut skel, chunk)?);
    }
    Ok(out)
}

/// One run of the program over at most MAX_PFNS pfns.
fn read_chunk(skel: &mut VmemmapSkel<'_>, pfns: &[u64]) -> Result<Vec<bool>> {
    let bss = skel
        .maps
        .bss_data
        .as_deref_mut()
        .context("vmemmap object has no .bss")?;
    let runs = bss.runs;
    bss.pfns[..pfns.len()].copy_from_slice(pfns);
    bss.nr_pfns = pfns.len() as u32;
    // SAFETY: getpid has no arguments and cannot fail; called directly, not through a
    // libc that might answer from a cache without entering the kernel.
    unsafe { libc::syscall(libc::SYS_getpid) };
    let bss = skel
        .maps
        .bss_data
        .as_deref()
        .context("vmemmap object has no .bss")?;
    if bss.base_error != 0 {
        bail!("reading vmemmap_base failed ({})", bss.base_error);
    }
    if bss.runs == runs {
        bail!("the vmemmap reader did not run on getpid");
    }
    Ok(bss.results[..pfns.len()].iter().map(|&r| r == 0).collect())
}

#[cfg(test)]
mod tests {
    use crate::symbols::data_address;

    #[test]
    fn vmemmap_base_is_a_data_symbol_with_an_address() {
        let k = "ffffffff8f000000 T _text\nffffffff90a1b2c8 D vmemmap_base\n";
        assert_eq!(data_address(k, "vmemmap_base"), Some(0xffffffff90a1b2c8));
        assert_eq!(data_address(k, "_text"), None, "text, not data");
        let hidden = "0000000000000000 D vmemmap_base\n";
        assert_eq!(data_address(hidden, "vmemmap_base"), None);
    }
}
