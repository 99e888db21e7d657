//! Opening an index directory made of the fuzzer's bytes (manifest, records, vectors and
//! model safetensors; framing in src/lib.rs). When the first byte is odd the manifest's
//! sizes and checksums are made to match, so mutations reach the parsers behind the
//! integrity check. Opening must answer Ok or an error, never panic or abort; an index
//! that opens must answer reads.
#![no_main]

use avg::{Index, SearchOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in avg_fuzz::unframe(rest) {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    if mode & 1 == 1 {
        avg_fuzz::reseal(dir.path());
    }
    let Ok(index) = Index::open(dir.path(), None) else { return };
    for id in index.image_ids().into_iter().take(4) {
        index.image(id).unwrap();
        let _ = index.vokens(id);
    }
    let _ = index.tokenizer_stats();
    let _ = index.search("a photo", &SearchOptions { k: 3, beam_size: 2, rerank: false }, None);
});
