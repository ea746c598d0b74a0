// Compiles the BPF C sources with clang and generates libbpf-rs skeletons for them.
//
// vmlinux.h is dumped from the build machine's own BTF (bpftool), as libbpf-tools does per
// arch; CO-RE relocates field offsets to the running kernel at load time, so the kernel
// that built foliobench need not be the one it runs on. FOLIOBENCH_VMLINUX_H overrides it.
use std::{
    env, fs,
    path::{Path, PathBuf},
    process::Command,
};

use libbpf_cargo::SkeletonBuilder;

const PROGS: &[&str] = &["capability", "funcs", "vmemmap"];

fn vmlinux_h(out: &Path) -> PathBuf {
    println!("cargo:rerun-if-env-changed=FOLIOBENCH_VMLINUX_H");
    let dir = out.join("vmlinux");
    fs::create_dir_all(&dir).expect("creating OUT_DIR/vmlinux");
    let header = dir.join("vmlinux.h");
    if let Some(given) = env::var_os("FOLIOBENCH_VMLINUX_H") {
        fs::copy(&given, &header).unwrap_or_else(|e| panic!("copying FOLIOBENCH_VMLINUX_H: {e}"));
        return dir;
    }
    if header.exists() {
        return dir;
    }
    let dump = Command::new("bpftool")
        .args(["btf", "dump", "file", "/sys/kernel/btf/vmlinux", "format", "c"])
        .output()
        .unwrap_or_else(|e| {
            panic!("running bpftool to dump vmlinux.h ({e}): install Debian's `bpftool`, or set FOLIOBENCH_VMLINUX_H")
        });
    if !dump.status.success() {
        panic!(
            "bpftool could not dump /sys/kernel/btf/vmlinux (kernel without BTF?); set FOLIOBENCH_VMLINUX_H: {}",
            String::from_utf8_lossy(&dump.stderr)
        );
    }
    fs::write(&header, dump.stdout).expect("writing vmlinux.h");
    dir
}

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let include = vmlinux_h(&out);
    for name in PROGS {
        let src = format!("src/bpf/{name}.bpf.c");
        SkeletonBuilder::new()
            .source(&src)
            .clang_args([
                "-Wall".into(),
                "-O2".into(),
                format!("-I{}", include.display()),
                "-Isrc/bpf".into(),
            ])
            .build_and_generate(out.join(format!("{name}.skel.rs")))
            .unwrap_or_else(|e| panic!("building {src}: {e:#}"));
        println!("cargo:rerun-if-changed={src}");
    }
    println!("cargo:rerun-if-changed=src/bpf");
}
