//! `HNSWX_KERNEL` selects the kernels.
//!
//! This test binary holds this one test only: changing the environment is unsound while other
//! threads may read it, and here no other test thread exists.

use hnswx_kernels::{from_env, Error, Isa, ENV_VAR};

#[test]
fn hnswx_kernel_selects_forces_or_fails_clearly() {
    let foreign = if cfg!(target_arch = "aarch64") {
        Isa::Avx2
    } else {
        Isa::Neon
    };
    std::env::remove_var(ENV_VAR);
    assert_eq!(from_env().unwrap().isa(), Isa::detect());
    for isa in [Isa::Scalar, Isa::Portable] {
        std::env::set_var(ENV_VAR, isa.name());
        assert_eq!(from_env().unwrap().isa(), isa);
    }
    std::env::set_var(ENV_VAR, "auto");
    assert_eq!(from_env().unwrap().isa(), Isa::detect());
    std::env::set_var(ENV_VAR, "bogus");
    assert_eq!(from_env().unwrap_err(), Error::UnknownKernel("bogus".into()));
    std::env::set_var(ENV_VAR, foreign.name());
    assert!(matches!(from_env().unwrap_err(), Error::Unsupported { isa, .. } if isa == foreign));
    std::env::remove_var(ENV_VAR);
}
