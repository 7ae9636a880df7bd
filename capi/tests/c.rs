//! Compiles `examples/c/main.c` (and `main.cpp`) with the system compilers against the static
//! library and runs them: the C ABI tested from C.
//!
//! Where the library comes from: cargo builds this package's library target once, with all
//! of its crate types (rlib, staticlib, cdylib), before it builds any integration test that
//! links the rlib; the artifacts land in the profile's folder (`target/debug` or
//! `target/release`, or under `CARGO_TARGET_DIR`), which is the parent of the `deps/` folder
//! holding this test binary. So `cargo test` in a fresh clone always finds an up-to-date
//! `libhnswx_c.a` next to it, with no nested `cargo build` (which would wait forever on the
//! build-directory lock that the running `cargo test` holds).
//!
//! Skipped, with a note, only when no C compiler (`$CC`, else `cc`) for this architecture can
//! be run (C++: `$CXX`, else `c++`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The folder this test binary was built into (`target/<profile>/deps`) and its parent.
fn static_lib() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let deps = exe.parent().expect("the test binary's folder");
    let candidates = [
        deps.parent().map(|p| p.join("libhnswx_c.a")),
        Some(deps.join("libhnswx_c.a")),
    ];
    candidates
        .iter()
        .flatten()
        .find(|p| p.is_file())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "libhnswx_c.a not found next to {}: is crate-type staticlib set?",
                exe.display()
            )
        })
}

fn tool(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_string())
}

fn runs(compiler: &str) -> bool {
    Command::new(compiler)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A fresh scratch folder, removed with its contents when dropped.
fn scratch(name: &str) -> tempfile::TempDir {
    let prefix = format!("hnswx-capi-{name}-");
    tempfile::Builder::new().prefix(&prefix).tempdir().unwrap()
}

/// Compiles `source` with `compiler` and `flags`, links the static library, runs the program
/// with `dir` as its argument and asserts it exits 0.
fn compile_and_run(compiler: &str, flags: &[&str], source: &Path, dir: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let exe = dir.join("program");
    let out = Command::new(compiler)
        .args(flags)
        .arg("-I")
        .arg(root.join("include"))
        .arg(source)
        .arg(static_lib())
        .args(["-lpthread", "-ldl", "-lm", "-o"])
        .arg(&exe)
        .output()
        .expect("the compiler runs");
    assert!(
        out.status.success(),
        "{compiler} failed on {}:\n{}",
        source.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let run = Command::new(&exe).arg(dir).output().expect("the program runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    println!("{stdout}");
    assert!(
        run.status.success(),
        "{} exited with {}:\nstdout:\n{stdout}\nstderr:\n{stderr}",
        source.display(),
        run.status
    );
}

#[test]
fn c_example_builds_and_passes() {
    let cc = tool("CC", "cc");
    if !runs(&cc) {
        println!(
            "note: skipped: no C compiler ({cc}) for {} can be run here",
            std::env::consts::ARCH
        );
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/c/main.c");
    let flags = ["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O1"];
    compile_and_run(&cc, &flags, &root, scratch("c").path());
}

#[test]
fn cpp_example_builds_and_passes() {
    let cxx = tool("CXX", "c++");
    if !runs(&cxx) {
        println!(
            "note: skipped: no C++ compiler ({cxx}) for {} can be run here",
            std::env::consts::ARCH
        );
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/c/main.cpp");
    let flags = ["-std=c++17", "-Wall", "-Wextra", "-Werror", "-O1"];
    compile_and_run(&cxx, &flags, &root, scratch("cpp").path());
}
