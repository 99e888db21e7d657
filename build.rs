//! Gives the shared library the soname `libavg.so.<AVG_ABI_VERSION>`, so that a binary
//! linked against one C ABI never loads a libavg with another. The version is read from
//! src/ffi/mod.rs, where the header's `AVG_ABI_VERSION` is declared.

fn main() {
    println!("cargo:rerun-if-changed=src/ffi/mod.rs");
    let source = std::fs::read_to_string("src/ffi/mod.rs").expect("src/ffi/mod.rs is readable");
    let abi = source
        .lines()
        .find_map(|l| l.strip_prefix("pub const AVG_ABI_VERSION: u32 = ")?.strip_suffix(';'))
        .expect("src/ffi/mod.rs declares `pub const AVG_ABI_VERSION: u32 = N;`");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libavg.so.{abi}");
    }
}
