//! Compiles the kernel programs (src/bpf/sensor.bpf.c) with clang and generates their Rust
//! skeleton. The object for the other supported architecture is compiled too, and thrown
//! away, so that a change that breaks arm64 (or x86_64) fails every build.

use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

const SOURCE: &str = "src/bpf/sensor.bpf.c";

fn bpf_arch(target_arch: &str) -> Option<&'static str> {
    match target_arch {
        "x86_64" => Some("x86"),
        "aarch64" => Some("arm64"),
        _ => None,
    }
}

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let target_arch = env::var("CARGO_CFG_TARGET_ARCH").expect("cargo sets the target arch");
    let arch = bpf_arch(&target_arch)
        .unwrap_or_else(|| panic!("the sensor supports x86_64 and aarch64, not {target_arch}"));

    if let Err(e) = SkeletonBuilder::new()
        .source(SOURCE)
        .clang_args([
            format!("-D__TARGET_ARCH_{arch}"),
            "-Wall".into(),
            "-Werror".into(),
        ])
        .build_and_generate(out.join("sensor.skel.rs"))
    {
        panic!("building {SOURCE} for {arch} failed (needs clang; see hack/agent-tools.sh): {e:#}");
    }

    for other in ["x86", "arm64"].into_iter().filter(|a| *a != arch) {
        if let Err(e) = SkeletonBuilder::new()
            .source(SOURCE)
            .obj(out.join(format!("sensor-{other}.o")))
            .clang_args([
                format!("-D__TARGET_ARCH_{other}"),
                "-Wall".into(),
                "-Werror".into(),
            ])
            .build()
        {
            panic!("building {SOURCE} for {other} failed: {e:#}");
        }
    }
    println!("cargo:rerun-if-changed=src/bpf");
}
