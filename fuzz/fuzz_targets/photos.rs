//! Photo decoding and preprocessing with the fuzzer's bytes (JPEG, PNG and WebP
//! headers, EXIF blocks, truncations): every input must give an image or an error,
//! never a crash, a hang or an allocation past the decoder limits.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(img) = avg::decode_image(data) {
        let p = avg::Preprocess::openai(32);
        assert_eq!(p.pixels(&img).len(), 3 * 32 * 32);
    }
});
