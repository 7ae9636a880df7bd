//! The checked-in header `include/hnswx.h` must be what cbindgen generates from `src/lib.rs`
//! today. cbindgen runs in-process (a dev-dependency), so CI installs nothing.
//! `HNSWX_BLESS=1 cargo test -p hnswx-c --test header` rewrites the file.

use std::path::Path;

#[test]
fn header_is_up_to_date() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("capi/cbindgen.toml parses");
    // `with_src` parses the one file of the crate without calling `cargo metadata`, so the
    // test neither needs the network nor waits on cargo's locks.
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(dir.join("src/lib.rs"))
        .generate()
        .expect("cbindgen generates the header");
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    let generated = String::from_utf8(generated).expect("the header is UTF-8");
    let path = dir.join("include/hnswx.h");
    if std::env::var_os("HNSWX_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write include/hnswx.h");
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "capi/include/hnswx.h is stale: regenerate it with\n    HNSWX_BLESS=1 cargo test -p hnswx-c --test header\nand commit it"
    );
}
