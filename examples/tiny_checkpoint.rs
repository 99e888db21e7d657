//! Writes the tiny random BERT checkpoint the tests use (vocabulary: the words of the
//! synthetic captions of `photo_app.c` and the Go tests) into DIR.
//!
//! usage: tiny_checkpoint DIR

#[path = "../tests/common/mod.rs"]
mod common;

fn main() {
    let dir = std::env::args().nth(1).expect("usage: tiny_checkpoint DIR");
    common::write_tiny_bert(std::path::Path::new(&dir), &common::caption_words(60, 6), 5);
}
