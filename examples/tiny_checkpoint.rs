//! Writes the tiny random BERT checkpoint the tests use (vocabulary: the words of the
//! synthetic captions of `photo_app.c` and the Go tests) into DIR, and with a second
//! directory the tiny CLIP checkpoint of tests/clip.rs (projection 16) into it.
//!
//! usage: tiny_checkpoint DIR [CLIP_DIR]

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args.next().expect("usage: tiny_checkpoint DIR [CLIP_DIR]");
    common::write_tiny_bert(Path::new(&dir), &common::caption_words(60, 6), 5);
    if let Some(clip) = args.next() {
        common::write_clip(Path::new(&clip), &common::ClipSizes::tiny(), 11);
    }
}
