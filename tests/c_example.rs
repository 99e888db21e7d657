//! Builds the C examples with the system compiler against the built library and runs them.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// A directory laid out as an installed libavg: `libavg.so` for the linker and only
/// `libavg.so.<AVG_ABI_VERSION>` for the loader, both links to the cdylib cargo built for
/// the tests (in `<target>/<profile>/deps`, beside this test binary). An example runs
/// only if the library's soname names the header's ABI version.
fn lib_dir() -> PathBuf {
    let deps = std::env::current_exe().unwrap().parent().unwrap().to_path_buf();
    let dir = deps.with_file_name("c-example-lib");
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["libavg.so".to_owned(), format!("libavg.so.{}", avg::ffi::AVG_ABI_VERSION)] {
        // Tests run in parallel: another may have made the link already.
        match std::os::unix::fs::symlink(deps.join("libavg.so"), dir.join(name)) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => panic!("linking libavg.so: {e}"),
            _ => {}
        }
    }
    dir
}

/// Compiles an example with the system C compiler (or C++ compiler for `.cpp`).
fn build_c(source: &str, out: &Path) {
    build(&Path::new("examples-c").join(source), out)
}

/// Compiles `source` (relative to the repository) against the header and the library.
fn build(source: &Path, out: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let source = source.to_str().unwrap();
    let lib = lib_dir();
    let (compiler, std) = if source.ends_with(".cpp") { ("CXX", "-std=c++17") } else { ("CC", "-std=c11") };
    let default = if compiler == "CXX" { "c++" } else { "cc" };
    let status = Command::new(std::env::var(compiler).unwrap_or_else(|_| default.into()))
        .args([std, "-Wall", "-Wextra", "-Werror", "-O1"])
        .arg(root.join(source))
        .arg(format!("-I{}", root.join("include").display()))
        .arg(format!("-I{}", root.join("bindings/cpp").display()))
        .arg(format!("-L{}", lib.display()))
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .args(["-lavg", "-lm", "-o"])
        .arg(out)
        .status()
        .expect("a C and a C++ compiler (cc, c++) on PATH");
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

/// Builds and runs a whole-job example; returns its output after checking top-1.
fn run_photo_app(source: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("photo_app");
    build_c(source, &exe);
    let model = dir.path().join("bert");
    common::write_tiny_bert(&model, &common::caption_words(60, 6), 5);
    let out = Command::new(&exe).arg(dir.path().join("index")).arg(&model).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{source} failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    let right: usize = stdout
        .lines()
        .find_map(|l| l.strip_prefix("top-1: "))
        .and_then(|l| l.split('/').next())
        .unwrap()
        .parse()
        .unwrap();
    assert!(right >= 40, "at least two thirds found first: {stdout}");
    stdout
}

#[test]
fn photo_app_example_does_the_whole_job() {
    let stdout = run_photo_app("photo_app.c");
    assert!(stdout.contains("generator epoch 80/80"), "{stdout}");
    assert!(stdout.contains("found by their own vectors, quantiser's codes: 60/60"), "{stdout}");
    assert!(stdout.contains("found by their own vectors, dense scan: 60/60"), "{stdout}");
}

#[test]
fn cpp_photo_app_example_does_the_whole_job() {
    let stdout = run_photo_app("photo_app.cpp");
    assert!(stdout.contains("duplicate add throws: status 6: duplicate image id 0"), "{stdout}");
    assert!(stdout.contains("generator trained for 80 epochs"), "{stdout}");
    let top1 = stdout.lines().find_map(|l| l.strip_prefix("top-1: ")).unwrap();
    assert!(stdout.contains(&format!("top-1 with one search thread: {top1}")), "{stdout}");
    assert!(stdout.contains(&format!("top-1 in one batch: {top1}")), "{stdout}");
    assert!(stdout.contains("image 1000: key holiday/beach.jpg, 61 images"), "{stdout}");
    assert!(stdout.contains("read back bit for bit, removed: 60 images"), "{stdout}");
    // A save at creation, after the tokenizer and after each of the 80 epochs.
    assert!(stdout.contains("log: 82 saves heard"), "{stdout}");
}

#[test]
fn photo_files_example_adds_photos_through_the_image_encoder() {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("photo_files");
    build_c("photo_files.c", &exe);
    let clip = dir.path().join("clip");
    common::write_clip(&clip, &common::ClipSizes::tiny(), 11);
    let images = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/images");
    let out = Command::new(&exe)
        .arg(dir.path().join("index"))
        .arg(&clip)
        .arg("16")
        .args([images.join("rgba.png"), images.join("nowhere.jpg"), images.join("rotated.jpg")])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "photo_files failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("batch 1/1"), "{stdout}");
    assert!(
        stdout.contains("photo 1: added, text \"rgba\"") && stdout.contains("photo 3: added, text \"rotated\""),
        "{stdout}"
    );
    assert!(stdout.contains("photo 2: status 8: I/O error on ") && stdout.contains("nowhere.jpg"), "{stdout}");
    assert!(stdout.contains("2 of 3 photos added"), "{stdout}");
}

#[test]
fn a_stopped_cpp_photo_add_returns_every_result() {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("stopped_photo_add");
    build(Path::new("tests/cpp/stopped_photo_add.cpp"), &exe);
    let clip = dir.path().join("clip");
    common::write_clip(&clip, &common::ClipSizes::tiny(), 11);
    let photo = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/images/rgba.png");
    let out = Command::new(&exe).arg(dir.path().join("index")).arg(&clip).arg(photo).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    // The first batch of 32 went in before the callback said stop.
    assert!(stdout.contains("40 results: 32 added, 8 cancelled, 32 in the index"), "{stdout}");
    assert!(stdout.contains(&format!("info: dim 16, 32 images, encoder open at {}", clip.display())), "{stdout}");
    // 16 int8 values, a scale, a place, and the f32 vector held until a save: 16 + 4 + 8 + 64.
    assert!(stdout.contains("vector bytes per image: 92"), "{stdout}");
    assert!(stdout.contains("near-duplicates: 1 group(s), the first of 32"), "{stdout}");
}
