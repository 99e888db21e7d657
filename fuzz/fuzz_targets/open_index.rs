//! Opening an index directory made of the fuzzer's bytes (manifest, records, vectors and
//! model safetensors; framing in src/lib.rs). When the first byte is odd the manifest's
//! sizes and checksums are made to match, so mutations reach the parsers behind the
//! integrity check. Bits 1-3 of the first byte then turn one file (chosen by the second
//! byte; the manifest included) into a link to /dev/zero, a named pipe, a sparse 3 GB
//! file, nothing, or (5) a file the manifest says is 6 GiB and that has that size
//! (sparse). Opening must answer Ok or an error, never panic, abort or block, nor read a
//! size the manifest's counts cannot explain;
//! an index that opens must answer reads.
#![no_main]

use avg::{Index, SearchOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let Some((&pick, rest)) = rest.split_first() else { return };
    let dir = tempfile::tempdir().unwrap();
    let files = avg_fuzz::unframe(rest);
    for (name, bytes) in &files {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    if mode & 1 == 1 {
        avg_fuzz::reseal(dir.path());
    }
    if let Some((name, _)) = files.get(pick as usize % files.len().max(1)) {
        let path = dir.path().join(name);
        let _ = std::fs::remove_file(&path);
        match (mode >> 1) & 7 {
            1 => std::os::unix::fs::symlink("/dev/zero", &path).unwrap(),
            2 => assert!(std::process::Command::new("mkfifo").arg(&path).status().unwrap().success()),
            3 => std::fs::File::create(&path).unwrap().set_len(3 << 30).unwrap(),
            4 => {} // missing
            5 => avg_fuzz::forge_size(dir.path(), name, 6 << 30),
            _ => std::fs::write(&path, &files[pick as usize % files.len()].1).unwrap(),
        }
    }
    let Ok(index) = Index::open(dir.path(), None) else { return };
    for id in index.image_ids().into_iter().take(4) {
        index.image(id).unwrap();
        let _ = index.vokens(id);
    }
    let _ = index.tokenizer_stats();
    let _ = index.search("a photo", &SearchOptions { k: 2, beam_size: 2, ..Default::default() }, None);
});
