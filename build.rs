//! Records the facts of this build (target, enabled target features, rustc, profile) as
//! compile-time environment variables that `hnswx::build_info()` exposes and that benchmark
//! reports print.

use std::env;
use std::process::Command;

fn main() {
    let var = |k: &str| env::var(k).unwrap_or_else(|_| "unknown".to_string());
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let rustc_version = Command::new(&rustc)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".to_string());
    let mut features: Vec<String> = var("CARGO_CFG_TARGET_FEATURE").split(',').map(str::to_string).collect();
    features.sort();

    println!("cargo:rustc-env=HNSWX_BUILD_TARGET={}", var("TARGET"));
    println!("cargo:rustc-env=HNSWX_BUILD_TARGET_FEATURES={}", features.join(","));
    println!("cargo:rustc-env=HNSWX_BUILD_RUSTC={rustc_version}");
    println!("cargo:rustc-env=HNSWX_BUILD_PROFILE={}", var("PROFILE"));
    println!("cargo:rustc-env=HNSWX_BUILD_OPT_LEVEL={}", var("OPT_LEVEL"));
    println!(
        "cargo:rustc-env=HNSWX_BUILD_DEBUG_ASSERTIONS={}",
        env::var_os("CARGO_CFG_DEBUG_ASSERTIONS").is_some()
    );
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    println!("cargo:rerun-if-env-changed=RUSTC");
}
