//! Builds the C examples with the system compiler against the built library and runs them.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The directory holding libavg.so: `<target>/<profile>/deps`, beside this test binary
/// (cargo builds the cdylib there for the tests; it is copied up only by `cargo build`).
fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().to_path_buf()
}

fn build_c(source: &str, out: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = lib_dir();
    let status = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-O1"])
        .arg(root.join("examples-c").join(source))
        .arg(format!("-I{}", root.join("include").display()))
        .arg(format!("-L{}", lib.display()))
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .args(["-lavg", "-lm", "-o"])
        .arg(out)
        .status()
        .expect("a C compiler (cc) on PATH");
    assert!(status.success(), "compiling {source} failed");
}

#[test]
fn roundtrip_example_reads_back_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("roundtrip");
    build_c("roundtrip.c", &exe);
    let out = Command::new(&exe).arg(dir.path().join("index")).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "roundtrip failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("duplicate add: status 6 (AVG_STATUS_DUPLICATE_ID): duplicate image id 1000"), "{stdout}");
    assert!(stdout.contains("reopened: 1000 images, 5000 captions, 0 mismatches"), "{stdout}");
}

#[test]
fn photo_app_example_does_the_whole_job() {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("photo_app");
    build_c("photo_app.c", &exe);
    let model = dir.path().join("bert");
    common::write_tiny_bert(&model, &common::caption_words(60, 6), 5);
    let out = Command::new(&exe).arg(dir.path().join("index")).arg(&model).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "photo_app failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("generator epoch 80/80"), "{stdout}");
    let right: usize = stdout.lines().find_map(|l| l.strip_prefix("top-1: ")).and_then(|l| l.split('/').next()).unwrap().parse().unwrap();
    assert!(right >= 40, "at least two thirds found first: {stdout}");
}
