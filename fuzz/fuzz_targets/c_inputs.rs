//! The C ABI's input parsing with the fuzzer's bytes: index configs (device strings
//! included), batches of ids, keys and vectors (any float bits), caption texts (any
//! bytes), queries and search options, and tokenizer training configs. Adds go to a
//! fresh index each time; searches to one small trained index. Every call must return
//! a status, never panic across the boundary or touch memory it was not given.
#![no_main]

use avg::ffi::*;
use libfuzzer_sys::fuzz_target;
use std::ffi::c_char;
use std::ptr::{null, null_mut};
use std::sync::OnceLock;

const DIM: usize = 4;

struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        let Some((&b, rest)) = self.0.split_first() else { return 0 };
        self.0 = rest;
        b
    }
    fn u64(&mut self) -> u64 {
        (0..8).fold(0, |acc, _| acc << 8 | self.u8() as u64)
    }
    fn f32(&mut self) -> f32 {
        f32::from_bits((0..4).fold(0, |acc, _| acc << 8 | self.u8() as u32))
    }
    /// A NUL-terminated string of the next bytes up to a NUL (any other bytes allowed).
    fn cstr(&mut self) -> Vec<u8> {
        let n = self.0.iter().position(|&b| b == 0).unwrap_or(self.0.len()).min(64);
        let mut s = self.0[..n].to_vec();
        self.0 = &self.0[(n + 1).min(self.0.len())..];
        s.push(0);
        s
    }
}

/// An index in a fresh directory (kept alive by the returned guard).
fn fresh() -> (tempfile::TempDir, *mut AvgIndex) {
    let dir = tempfile::tempdir().unwrap();
    let path = std::ffi::CString::new(dir.path().join("i").to_str().unwrap()).unwrap();
    let cfg = AvgIndexConfig { dim: DIM, codebook_size: 4, voken_len: 2, ..Default::default() };
    let mut index = null_mut();
    assert_eq!(unsafe { avg_index_open(path.as_ptr(), &cfg, &mut index, null_mut()) }, AvgStatus::Ok);
    (dir, index)
}

/// Twelve images with captions, a trained tokenizer and generator (tiny BERT), opened
/// through the C ABI once and shared by every search input.
fn trained() -> *const AvgIndex {
    static INDEX: OnceLock<(tempfile::TempDir, usize)> = OnceLock::new();
    INDEX
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("i");
            drop(avg_fuzz::seed_index(&path, dir.path()));
            let path = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
            let mut index = null_mut();
            assert_eq!(unsafe { avg_index_open(path.as_ptr(), null(), &mut index, null_mut()) }, AvgStatus::Ok);
            (dir, index as usize)
        })
        .1 as *const AvgIndex
}

/// Mostly the struct's own size; otherwise any size up to it (a larger one would read
/// past the struct, which a host's header could never make).
fn struct_size<T>(b: &mut Bytes) -> usize {
    match b.u8() & 1 {
        0 => std::mem::size_of::<T>(),
        _ => b.u64() as usize % (std::mem::size_of::<T>() + 1),
    }
}

unsafe fn search(b: &mut Bytes) {
    let index = trained();
    let count = (b.u8() % 4) as usize;
    let texts: Vec<Vec<u8>> = (0..count.max(1)).map(|_| b.cstr()).collect();
    let vectors: Vec<f32> = (0..count.max(1) * DIM).map(|_| b.f32()).collect();
    // k of any size: a batch must refuse k above the beam before it writes a hit.
    let k = if b.u8() & 1 == 1 { b.u64() as usize } else { (b.u8() % 12) as usize };
    let opts = AvgSearchOptions {
        struct_size: struct_size::<AvgSearchOptions>(b),
        k,
        beam_size: (b.u8() % 12) as usize,
        rerank: b.u8() & 1 == 1,
        query_vectors: vectors.as_ptr(),
        dim: (b.u8() % 6) as usize,
        fused: b.u8() & 1 == 1,
        dense_weight: b.f32(),
        // Any size: backoff is bounded by the images indexed, not by the option.
        min_candidates: if b.u8() & 1 == 1 { b.u64() as usize } else { b.u8() as usize },
        // Any value: the three routes, and unknown ones to refuse (read only where
        // struct_size ends before `mode`).
        candidates: (b.u8() % 4) as u64,
        // Any value: the six modes, and unknown ones to refuse.
        mode: (b.u8() % 8) as u64,
    };
    let mut hits = [AvgHit { id: 0, score: 0.0 }; 64];
    let mut counts = [0usize; 4];
    let mut n = 0;
    let mut err = null_mut();
    if count == 0 {
        avg_search(
            index,
            texts[0].as_ptr() as *const c_char,
            &opts,
            hits.as_mut_ptr(),
            (b.u8() % 8) as usize,
            &mut n,
            &mut err,
        );
    } else {
        let ptrs: Vec<*const c_char> = texts.iter().map(|t| t.as_ptr() as *const c_char).collect();
        // Room for count * min(k, beam) hits: all a search that is not refused can write.
        let room = opts.k.min(opts.beam_size).checked_mul(count).is_some_and(|n| n <= hits.len());
        let out = if room { hits.as_mut_ptr() } else { null_mut() };
        avg_search_batch(index, ptrs.as_ptr(), count, &opts, out, counts.as_mut_ptr(), &mut err);
    }
    avg_error_free(err);
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes(data);
    let mut err = null_mut();
    unsafe {
        match b.u8() % 5 {
            0 => {
                let dir = tempfile::tempdir().unwrap();
                let path = std::ffi::CString::new(dir.path().join("i").to_str().unwrap()).unwrap();
                let device = b.cstr();
                let cfg = AvgIndexConfig {
                    struct_size: struct_size::<AvgIndexConfig>(&mut b),
                    dim: b.u64() as usize % 20_000,
                    codebook_size: b.u64() as usize % 70_000,
                    voken_len: b.u8() as usize,
                    device: device.as_ptr() as *const c_char,
                    image_encoder_dir: null(),
                    search_weights: b.u8() as u64 % 4,
                };
                let mut index = null_mut();
                avg_index_open(path.as_ptr(), &cfg, &mut index, &mut err);
                avg_index_free(index);
            }
            1 => {
                let (_dir, index) = fresh();
                let count = (b.u8() % 8) as usize;
                let dim = (b.u8() % 6) as usize;
                let ids: Vec<u64> = (0..count).map(|_| b.u64() % 16).collect();
                let keys: Vec<Vec<u8>> = (0..count).map(|_| b.cstr()).collect();
                let key_ptrs: Vec<*const c_char> =
                    keys.iter().map(|k| if k.len() > 1 { k.as_ptr() as *const c_char } else { null() }).collect();
                let vectors: Vec<f32> = (0..count * dim).map(|_| b.f32()).collect();
                avg_index_add_images(index, ids.as_ptr(), key_ptrs.as_ptr(), vectors.as_ptr(), count, dim, &mut err);
                avg_index_free(index);
            }
            2 => {
                let (_dir, index) = fresh();
                let v = [0.5f32; DIM];
                avg_index_add_images(index, &7, null(), v.as_ptr(), 1, DIM, null_mut());
                let count = (b.u8() % 6) as usize;
                let dim = (b.u8() % 6) as usize;
                let texts: Vec<Vec<u8>> = (0..count).map(|_| b.cstr()).collect();
                let ptrs: Vec<*const c_char> = texts.iter().map(|t| t.as_ptr() as *const c_char).collect();
                let vectors: Vec<f32> = (0..count * dim).map(|_| b.f32()).collect();
                let vectors = if b.u8() & 1 == 1 { vectors.as_ptr() } else { null() };
                avg_index_add_captions(index, b.u64() % 9, ptrs.as_ptr(), vectors, count, dim, &mut err);
                avg_index_free(index);
            }
            3 => search(&mut b),
            _ => {
                let (_dir, index) = fresh();
                let v: Vec<f32> = (0..8 * DIM).map(|i| (i as f32 * 0.37).sin()).collect();
                let ids: Vec<u64> = (0..8).collect();
                avg_index_add_images(index, ids.as_ptr(), null(), v.as_ptr(), 8, DIM, null_mut());
                let cfg = AvgTokenizerTrainConfig {
                    struct_size: struct_size::<AvgTokenizerTrainConfig>(&mut b),
                    epochs: (b.u8() % 3) as usize,
                    batch_size: b.u64() as usize,
                    learning_rate: b.f32() as f64,
                    recon_weight: b.f32(),
                    commit_weight: b.f32(),
                    align: false,
                    align_weight: b.f32(),
                    shared_codebook: b.u8() & 1 == 1,
                    hidden: (b.u8() % 16) as usize,
                    kmeans_iterations: (b.u8() % 4) as usize,
                    seed: b.u64(),
                };
                avg_train_tokenizer(index, &cfg, None, null_mut(), &mut err);
                avg_index_free(index);
            }
        }
        avg_error_free(err);
    }
});
