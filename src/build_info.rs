//! What this copy of hnswx was compiled for and with, as recorded by `build.rs`.

use std::fmt;

/// Facts of the build, for benchmark reports.
///
/// ```
/// let info = hnswx::build_info();
/// assert!(!info.target.is_empty());
/// println!("{info}");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildInfo {
    /// Target triple, e.g. `x86_64-unknown-linux-gnu`.
    pub target: &'static str,
    /// Target features enabled at compile time, comma-separated and sorted (run-time
    /// dispatch can still use more: see [`crate::kernels::Isa::detect`]).
    pub target_features: &'static str,
    /// `rustc --version` of the compiler that built hnswx.
    pub rustc: &'static str,
    /// Cargo profile (`debug` or `release`).
    pub profile: &'static str,
    /// Optimisation level (`0`–`3`, `s`, `z`).
    pub opt_level: &'static str,
    /// Whether debug assertions are compiled in.
    pub debug_assertions: bool,
}

/// The facts of this build.
pub fn build_info() -> BuildInfo {
    BuildInfo {
        target: env!("HNSWX_BUILD_TARGET"),
        target_features: env!("HNSWX_BUILD_TARGET_FEATURES"),
        rustc: env!("HNSWX_BUILD_RUSTC"),
        profile: env!("HNSWX_BUILD_PROFILE"),
        opt_level: env!("HNSWX_BUILD_OPT_LEVEL"),
        debug_assertions: matches!(env!("HNSWX_BUILD_DEBUG_ASSERTIONS"), "true"),
    }
}

impl fmt::Display for BuildInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "target:          {}", self.target)?;
        writeln!(f, "target features: {}", self.target_features)?;
        writeln!(f, "rustc:           {}", self.rustc)?;
        write!(
            f,
            "profile:         {} (opt-level {}, debug assertions {})",
            self.profile,
            self.opt_level,
            if self.debug_assertions { "on" } else { "off" }
        )
    }
}
