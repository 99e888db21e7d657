//! Photo decoding and preprocessing with the fuzzer's bytes (JPEG, PNG and WebP
//! headers, EXIF blocks, truncations), in three size classes chosen by the first byte:
//! the bytes as they are, the bytes as a photo file, and that file padded (sparse) past
//! the largest photo file read. Every input must give an image or an error, never a
//! crash, a hang or an allocation past the decoder limits; the padded file is refused
//! unread.
#![no_main]

use avg::limits::MAX_PHOTO_FILE_BYTES;
use avg::{Error, ImageSource};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&class, bytes)) = data.split_first() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("photo");
    let decoded = match class % 3 {
        0 => avg::decode_image(bytes),
        padded => {
            std::fs::write(&path, bytes).unwrap();
            if padded == 2 {
                std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(MAX_PHOTO_FILE_BYTES + 1).unwrap();
            }
            let decoded = ImageSource::File(&path).decode();
            assert!(padded == 1 || matches!(decoded, Err(Error::Limit(_))), "a padded file was read");
            decoded
        }
    };
    if let Ok(img) = decoded {
        let p = avg::Preprocess::openai(32);
        assert_eq!(p.pixels(&img).len(), 3 * 32 * 32);
    }
});
