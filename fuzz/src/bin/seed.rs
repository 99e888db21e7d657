//! Writes the seed corpus of the fuzz targets under DIR (default `corpus`):
//! `cargo run --release --bin seed -- corpus`.

fn main() {
    let out = std::path::PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "corpus".into()));
    let scratch = tempfile::tempdir().unwrap();
    let path = scratch.path().join("index");
    drop(avg_fuzz::seed_index(&path, scratch.path()));
    let framed = avg_fuzz::frame(&avg_fuzz::read_dir(&path));
    std::fs::create_dir_all(out.join("open_index")).unwrap();
    // Mode bit 0 reseals the manifest; bits 1-3 turn the file picked by the second
    // byte into a link to /dev/zero, a pipe, a 3 GB sparse file or nothing.
    for mode in [0u8, 1, 3, 5, 7, 9] {
        for pick in [0u8, 1] {
            let name = format!("trained-{mode}-{pick}");
            std::fs::write(out.join("open_index").join(name), [&[mode, pick][..], &framed].concat()).unwrap();
        }
    }
    // c_inputs: one input per operation (the first byte picks it).
    std::fs::create_dir_all(out.join("c_inputs")).unwrap();
    let inputs: [&[u8]; 5] = [
        b"\x00cpu\x00\x00\x00\x00\x00\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00\x08\x02",
        b"\x01\x02\x04\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x02k1\x00\x00?\x00\x00\x00?\x00\x00\x00?\x00\x00\x00?\x00\x00\x00",
        b"\x02\x02\x00a photo\x00\xff\xfe\x00\x00\x00\x00\x00\x00\x00\x00\x00\x07",
        b"\x03\x00a photo of t1a\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x03\x04\x00\x04",
        b"\x04\x01\x00\x00\x00\x00\x00\x00\x00\x08",
    ];
    for (i, input) in inputs.iter().enumerate() {
        std::fs::write(out.join("c_inputs").join(format!("op{i}")), input).unwrap();
    }
    // photos: the test photos (PNG, grayscale PNG, lossless WebP, EXIF-rotated JPEG).
    std::fs::create_dir_all(out.join("photos")).unwrap();
    let images = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/images");
    for entry in std::fs::read_dir(images).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, out.join("photos").join(path.file_name().unwrap())).unwrap();
    }
    println!("seeds in {}", out.display());
}
