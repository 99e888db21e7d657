//! `include/avg.h` must be exactly what cbindgen generates from the source now.

use std::path::Path;

#[test]
fn committed_header_matches_the_source() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml")).unwrap();
    let mut generated = Vec::new();
    cbindgen::generate_with_config(root, config).unwrap().write(&mut generated);
    let path = root.join("include/avg.h");
    if std::env::var_os("AVG_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "include/avg.h is out of date; regenerate it with: AVG_BLESS=1 cargo test --release --test header"
    );
}
