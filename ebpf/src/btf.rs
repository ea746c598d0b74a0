//! Kernel type information from BTF: `sizeof(struct page)` and whether a function has a
//! BTF entry (the precondition for fentry). Read from the kernel, never hard-coded.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;

use anyhow::{bail, Context, Result};
use libbpf_rs::libbpf_sys;

const VMLINUX: &str = "/sys/kernel/btf/vmlinux";
const BTF_DIR: &str = "/sys/kernel/btf";

/// One parsed BTF blob: vmlinux, or a module's split BTF on top of vmlinux.
/// libbpf-rs has no wrapper for split BTF, so this owns the libbpf pointer itself.
struct RawBtf(NonNull<libbpf_sys::btf>);

impl RawBtf {
    fn parse(path: &Path, base: Option<&RawBtf>) -> Result<RawBtf> {
        let c = CString::new(path.as_os_str().as_encoded_bytes())?;
        // SAFETY: c is a valid C string; base, when given, outlives the split BTF
        // because KernelBtf keeps vmlinux alive as long as any module BTF.
        let ptr = unsafe {
            match base {
                Some(b) => libbpf_sys::btf__parse_split(c.as_ptr(), b.0.as_ptr()),
                None => libbpf_sys::btf__parse(c.as_ptr(), std::ptr::null_mut()),
            }
        };
        // libbpf returns NULL (or an encoded error pointer in old modes) on failure.
        match NonNull::new(ptr) {
            Some(p) if (p.as_ptr() as isize) > 0 || (p.as_ptr() as isize) < -4095 => Ok(RawBtf(p)),
            _ => bail!(
                "cannot parse BTF {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            ),
        }
    }

    fn find(&self, name: &str, kind: u32) -> Option<u32> {
        let c = CString::new(name).ok()?;
        // SAFETY: self.0 is a live btf; c is a valid C string.
        let id = unsafe { libbpf_sys::btf__find_by_name_kind(self.0.as_ptr(), c.as_ptr(), kind) };
        (id > 0).then_some(id as u32)
    }

    /// The names of a function's parameters, in order, from its FUNC_PROTO.
    fn params(&self, func: &str) -> Option<Vec<String>> {
        let id = self.find(func, libbpf_sys::BTF_KIND_FUNC)?;
        let bp = self.0.as_ptr();
        // SAFETY: ids come from this btf; libbpf returns NULL for bad ids. A FUNC's type
        // is its FUNC_PROTO, whose vlen (low 16 bits of info) btf_param entries follow
        // the btf_type in memory, as libbpf's btf_params() reads them.
        unsafe {
            let func_t = libbpf_sys::btf__type_by_id(bp, id).as_ref()?;
            let proto_id = func_t.__bindgen_anon_1.type_;
            let proto = libbpf_sys::btf__type_by_id(bp, proto_id);
            let proto_t = proto.as_ref()?;
            if (proto_t.info >> 24) & 0x1f != libbpf_sys::BTF_KIND_FUNC_PROTO {
                return None;
            }
            let vlen = (proto_t.info & 0xffff) as usize;
            let first = proto.add(1) as *const libbpf_sys::btf_param;
            (0..vlen)
                .map(|i| {
                    let p = &*first.add(i);
                    let name = libbpf_sys::btf__name_by_offset(bp, p.name_off);
                    Some(if name.is_null() {
                        String::new()
                    } else {
                        std::ffi::CStr::from_ptr(name)
                            .to_string_lossy()
                            .into_owned()
                    })
                })
                .collect()
        }
    }

    fn size_of(&self, id: u32) -> Option<u64> {
        // SAFETY: id came from find() on this btf.
        let s = unsafe { libbpf_sys::btf__resolve_size(self.0.as_ptr(), id) };
        (s >= 0).then_some(s as u64)
    }
}

impl Drop for RawBtf {
    fn drop(&mut self) {
        // SAFETY: we own the pointer; btf__free tolerates split BTF.
        unsafe { libbpf_sys::btf__free(self.0.as_ptr()) }
    }
}

/// The running kernel's BTF: vmlinux plus every loaded module's.
pub struct KernelBtf {
    // Modules first so they drop before the base they split from.
    modules: Vec<(String, RawBtf)>,
    vmlinux: RawBtf,
}

/// Where a function's BTF entry lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BtfHome {
    Vmlinux,
    Module(String),
}

impl KernelBtf {
    pub fn available() -> bool {
        Path::new(VMLINUX).exists()
    }

    pub fn load() -> Result<KernelBtf> {
        let vmlinux = RawBtf::parse(Path::new(VMLINUX), None)
            .with_context(|| format!("{VMLINUX} (kernel built without CONFIG_DEBUG_INFO_BTF?)"))?;
        let mut modules = Vec::new();
        if let Ok(dir) = std::fs::read_dir(BTF_DIR) {
            let mut paths: Vec<PathBuf> = dir.flatten().map(|e| e.path()).collect();
            paths.sort();
            for p in paths {
                let name = p
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                if name == "vmlinux" {
                    continue;
                }
                // A module whose BTF does not parse is skipped: its functions then
                // show up as "no BTF", which is what fentry would see too.
                if let Ok(b) = RawBtf::parse(&p, Some(&vmlinux)) {
                    modules.push((name, b));
                }
            }
        }
        Ok(KernelBtf { modules, vmlinux })
    }

    /// `sizeof(struct <name>)` as this kernel was built.
    pub fn struct_size(&self, name: &str) -> Option<u64> {
        let id = self.vmlinux.find(name, libbpf_sys::BTF_KIND_STRUCT)?;
        self.vmlinux.size_of(id)
    }

    /// The position of the first parameter of `func` whose name is one of `names`.
    /// Read from BTF, so it follows the running kernel's signature, not a remembered one.
    pub fn param_index(&self, func: &str, names: &[&str]) -> Option<(usize, String)> {
        let params = std::iter::once(&self.vmlinux)
            .chain(self.modules.iter().map(|(_, b)| b))
            .find_map(|b| b.params(func))?;
        names.iter().find_map(|want| {
            params
                .iter()
                .position(|p| p == want)
                .map(|i| (i, want.to_string()))
        })
    }

    /// Where the BTF entry (`BTF_KIND_FUNC`) of a function is, if it has one.
    pub fn function(&self, name: &str) -> Option<BtfHome> {
        if self.vmlinux.find(name, libbpf_sys::BTF_KIND_FUNC).is_some() {
            return Some(BtfHome::Vmlinux);
        }
        self.modules
            .iter()
            .find(|(_, b)| b.find(name, libbpf_sys::BTF_KIND_FUNC).is_some())
            .map(|(m, _)| BtfHome::Module(m.clone()))
    }
}
