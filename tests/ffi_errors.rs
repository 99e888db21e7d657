//! Bad input through the C ABI: each gets its documented status and a message.

use avg::ffi::*;
use std::ffi::{c_char, CStr};
use std::ptr::{null, null_mut};

const DIM: usize = 4;

struct Opened {
    _dir: tempfile::TempDir,
    path: std::ffi::CString,
    index: *mut AvgIndex,
}

impl Drop for Opened {
    fn drop(&mut self) {
        unsafe { avg_index_free(self.index) };
    }
}

fn config() -> AvgIndexConfig {
    AvgIndexConfig { dim: DIM, codebook_size: 16, voken_len: 2, ..Default::default() }
}

fn open() -> Opened {
    let dir = tempfile::tempdir().unwrap();
    let path = std::ffi::CString::new(dir.path().join("idx").to_str().unwrap()).unwrap();
    let mut index = null_mut();
    let st = unsafe { avg_index_open(path.as_ptr(), &config(), &mut index, null_mut()) };
    assert_eq!(st, AvgStatus::Ok);
    Opened { _dir: dir, path, index }
}

/// Runs a call with an error out-parameter; returns its status and message.
fn call(f: impl FnOnce(*mut *mut AvgError) -> AvgStatus) -> (AvgStatus, String) {
    let mut err = null_mut();
    let st = f(&mut err);
    if st == AvgStatus::Ok {
        assert!(err.is_null());
        return (st, String::new());
    }
    // SAFETY: `err` is the error object this call just returned.
    let (code, msg) =
        unsafe { (avg_error_code(err), CStr::from_ptr(avg_error_message(err)).to_str().unwrap().to_owned()) };
    assert_eq!(code, st);
    unsafe { avg_error_free(err) };
    (st, msg)
}

fn expect(f: impl FnOnce(*mut *mut AvgError) -> AvgStatus, status: AvgStatus, needle: &str) {
    let (st, msg) = call(f);
    assert_eq!(st, status, "message: {msg}");
    assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
}

#[test]
fn null_pointers_are_refused() {
    let o = open();
    let v = [0.0f32; DIM];
    let id = 1u64;
    unsafe {
        expect(|e| avg_index_open(null(), &config(), &mut null_mut(), e), AvgStatus::NullPointer, "path");
        expect(|e| avg_index_open(o.path.as_ptr(), &config(), null_mut(), e), AvgStatus::NullPointer, "out");
        expect(|e| avg_index_save(null(), e), AvgStatus::NullPointer, "index");
        expect(|e| avg_index_add_images(o.index, null(), null(), v.as_ptr(), 1, DIM, e), AvgStatus::NullPointer, "ids");
        expect(|e| avg_index_add_images(o.index, &id, null(), null(), 1, DIM, e), AvgStatus::NullPointer, "vectors");
        expect(|e| avg_index_image_count(o.index, null_mut(), e), AvgStatus::NullPointer, "count_out");
        expect(|e| avg_index_add_captions(o.index, 1, null(), null(), 1, DIM, e), AvgStatus::NullPointer, "texts");
        // The element is named by its place (the messages used to say a literal `[i]`).
        let texts = [c"fine".as_ptr(), null::<c_char>()];
        assert_eq!(call(|e| avg_index_add_images(o.index, &id, null(), v.as_ptr(), 1, DIM, e)).0, AvgStatus::Ok);
        expect(
            |e| avg_index_add_captions(o.index, 1, texts.as_ptr(), null(), 2, DIM, e),
            AvgStatus::NullPointer,
            "texts[1]",
        );
        expect(|e| avg_index_attach_texts(o.index, 1, texts.as_ptr(), 2, e), AvgStatus::NullPointer, "texts[1]");
        expect(|e| avg_index_image_vector(o.index, 1, null_mut(), DIM, e), AvgStatus::NullPointer, "out");
        // NULL error out-parameter: still a status, no crash.
        assert_eq!(avg_index_save(null(), null_mut()), AvgStatus::NullPointer);
        // Zero-length batches may pass NULL arrays.
        assert_eq!(call(|e| avg_index_add_images(o.index, null(), null(), null(), 0, DIM, e)).0, AvgStatus::Ok);
        assert_eq!(avg_error_code(null()), AvgStatus::InvalidArgument);
        assert_eq!(CStr::from_ptr(avg_error_message(null())).to_bytes(), b"");
        avg_error_free(null_mut());
        avg_index_free(null_mut());
    }
}

#[test]
fn wrong_dimensions_nan_and_duplicates_reject_the_whole_batch() {
    let o = open();
    let ids = [1u64, 2];
    let mut v = [0.5f32; 2 * DIM];
    unsafe {
        expect(
            |e| avg_index_add_images(o.index, ids.as_ptr(), null(), v.as_ptr(), 2, DIM - 1, e),
            AvgStatus::DimensionMismatch,
            "expected 4, got 3",
        );
        v[DIM + 2] = f32::NAN;
        expect(
            |e| avg_index_add_images(o.index, ids.as_ptr(), null(), v.as_ptr(), 2, DIM, e),
            AvgStatus::NonFinite,
            "image 2",
        );
        v[DIM + 2] = f32::INFINITY;
        expect(
            |e| avg_index_add_images(o.index, ids.as_ptr(), null(), v.as_ptr(), 2, DIM, e),
            AvgStatus::NonFinite,
            "position 2",
        );
        let mut n = usize::MAX;
        avg_index_image_count(o.index, &mut n, null_mut());
        assert_eq!(n, 0, "a rejected batch adds nothing");
        v[DIM + 2] = 0.0;
        assert_eq!(
            call(|e| avg_index_add_images(o.index, ids.as_ptr(), null(), v.as_ptr(), 2, DIM, e)).0,
            AvgStatus::Ok
        );
        expect(
            |e| avg_index_add_images(o.index, ids.as_ptr(), null(), v.as_ptr(), 1, DIM, e),
            AvgStatus::DuplicateId,
            "1",
        );
        let text = [c"a dog".as_ptr()];
        expect(|e| avg_index_add_captions(o.index, 99, text.as_ptr(), null(), 1, DIM, e), AvgStatus::UnknownId, "99");
        expect(
            |e| avg_index_add_captions(o.index, 1, text.as_ptr(), v.as_ptr(), 1, 3, e),
            AvgStatus::DimensionMismatch,
            "got 3",
        );
        expect(
            |e| avg_index_add_images(o.index, ids.as_ptr(), null(), v.as_ptr(), usize::MAX, DIM, e),
            AvgStatus::Limit,
            "batch size",
        );
        let mut out = [0f32; DIM];
        expect(|e| avg_index_image_vector(o.index, 1, out.as_mut_ptr(), 2, e), AvgStatus::DimensionMismatch, "got 2");
    }
}

#[test]
fn bad_utf8_is_refused_where_it_enters() {
    let o = open();
    let bad = b"caf\xe9\0";
    let bad_ptr = bad.as_ptr().cast::<c_char>();
    let v = [0.1f32; DIM];
    let id = 7u64;
    unsafe {
        expect(|e| avg_index_open(bad_ptr, &config(), &mut null_mut(), e), AvgStatus::InvalidUtf8, "path");
        let keys = [bad_ptr];
        expect(
            |e| avg_index_add_images(o.index, &id, keys.as_ptr(), v.as_ptr(), 1, DIM, e),
            AvgStatus::InvalidUtf8,
            "keys",
        );
        assert_eq!(call(|e| avg_index_add_images(o.index, &id, null(), v.as_ptr(), 1, DIM, e)).0, AvgStatus::Ok);
        expect(|e| avg_index_add_captions(o.index, 7, keys.as_ptr(), null(), 1, 0, e), AvgStatus::InvalidUtf8, "texts");
        let cfg = AvgIndexConfig { device: bad_ptr, ..config() };
        expect(|e| avg_index_open(o.path.as_ptr(), &cfg, &mut null_mut(), e), AvgStatus::InvalidUtf8, "device");
    }
}

#[test]
fn bad_configs_and_a_second_open_are_refused() {
    let o = open();
    unsafe {
        let mut h = null_mut();
        expect(|e| avg_index_open(o.path.as_ptr(), &config(), &mut h, e), AvgStatus::Locked, "locked");
        let zero = AvgIndexConfig { dim: 0, ..config() };
        expect(
            |e| avg_index_open(c"/tmp/x".as_ptr(), &zero, &mut h, e),
            AvgStatus::InvalidArgument,
            "dim must be at least 1",
        );
        let huge = AvgIndexConfig { voken_len: 1000, ..config() };
        expect(|e| avg_index_open(c"/tmp/x".as_ptr(), &huge, &mut h, e), AvgStatus::Limit, "voken_len");
        // Inside each documented limit, but a codebook of 4 GiB: refused, not an abort.
        let vast = AvgIndexConfig { dim: 16_384, codebook_size: 65_536, ..config() };
        expect(|e| avg_index_open(c"/tmp/x".as_ptr(), &vast, &mut h, e), AvgStatus::Limit, "codebook");
        let gpu = AvgIndexConfig { device: c"tpu".as_ptr(), ..config() };
        expect(|e| avg_index_open(c"/tmp/x".as_ptr(), &gpu, &mut h, e), AvgStatus::InvalidArgument, "tpu");
        #[cfg(not(feature = "cuda"))]
        {
            let dir = tempfile::tempdir().unwrap();
            let p = std::ffi::CString::new(dir.path().to_str().unwrap()).unwrap();
            let cuda = AvgIndexConfig { device: c"cuda:0".as_ptr(), ..config() };
            expect(|e| avg_index_open(p.as_ptr(), &cuda, &mut h, e), AvgStatus::Device, "without the `cuda` feature");
        }
        let missing = tempfile::tempdir().unwrap();
        let p = std::ffi::CString::new(missing.path().to_str().unwrap()).unwrap();
        expect(|e| avg_index_open(p.as_ptr(), null(), &mut h, e), AvgStatus::InvalidArgument, "no index");
        assert!(h.is_null());
    }
}

/// N 65536 with M 32 fits every limit on its own, but a default generator training
/// step would hold 1.7e9 logits: refused up front with the knobs to turn.
#[test]
fn a_struct_size_this_library_does_not_know_is_refused() {
    let o = open();
    let path = o.path.as_ptr();
    let bad = |size: usize| {
        move |e| unsafe {
            let cfg = AvgIndexConfig { struct_size: size, ..config() };
            avg_index_open(path, &cfg, &mut null_mut(), e)
        }
    };
    expect(bad(0), AvgStatus::InvalidArgument, "struct_size 0");
    // A header from before `search_weights` gets its default; a value it does not name
    // is refused.
    let before_weights = std::mem::offset_of!(AvgIndexConfig, search_weights);
    let cfg = AvgIndexConfig { struct_size: before_weights, search_weights: 99, ..config() };
    let dir = tempfile::tempdir().unwrap();
    let p = std::ffi::CString::new(dir.path().to_str().unwrap()).unwrap();
    let mut h = null_mut();
    assert_eq!(unsafe { avg_index_open(p.as_ptr(), &cfg, &mut h, null_mut()) }, AvgStatus::Ok);
    unsafe { avg_index_free(h) };
    let cfg = AvgIndexConfig { search_weights: 3, ..config() };
    expect(
        move |e| unsafe { avg_index_open(path, &cfg, &mut null_mut(), e) },
        AvgStatus::InvalidArgument,
        "search_weights 3",
    );
    let cfg = AvgIndexConfig { vector_storage: 3, ..config() };
    expect(
        move |e| unsafe { avg_index_open(path, &cfg, &mut null_mut(), e) },
        AvgStatus::InvalidArgument,
        "vector_storage 3",
    );
    expect(bad(size_of::<AvgIndexConfig>() + 8), AvgStatus::InvalidArgument, "sizeof the struct");
    // A size that ends inside a field (no compiler's sizeof) used to be accepted, the
    // field half read.
    expect(bad(size_of::<AvgIndexConfig>() - 4), AvgStatus::InvalidArgument, "a multiple of 8");
    unsafe {
        // A zeroed struct, never given to its _default call, has struct_size 0.
        let gen = std::mem::zeroed::<AvgGeneratorTrainConfig>();
        expect(|e| avg_train_generator(o.index, &gen, None, null_mut(), e), AvgStatus::InvalidArgument, "struct_size");
        // A balance_images value the header does not name is refused; a header from
        // before the field gets the default (the call then fails for want of a tokenizer).
        let model_dir = c"/nonexistent-model".as_ptr();
        let unknown = AvgGeneratorTrainConfig { model_dir, balance_images: 3, ..Default::default() };
        let train = |g: AvgGeneratorTrainConfig| move |e| avg_train_generator(o.index, &g, None, null_mut(), e);
        expect(train(unknown), AvgStatus::InvalidArgument, "balance_images 3");
        let before = std::mem::offset_of!(AvgGeneratorTrainConfig, balance_images);
        expect(train(AvgGeneratorTrainConfig { struct_size: before, ..unknown }), AvgStatus::WrongState, "tokenizer");
        let tok = AvgTokenizerTrainConfig { struct_size: 1, ..Default::default() };
        expect(|e| avg_train_tokenizer(o.index, &tok, None, null_mut(), e), AvgStatus::InvalidArgument, "struct_size");
        let opts = AvgSearchOptions { struct_size: 7, ..Default::default() };
        let (mut hits, mut n) = ([AvgHit { id: 0, score: 0.0 }; 10], 0);
        let search = |e| avg_search(o.index, c"q".as_ptr(), &opts, hits.as_mut_ptr(), 10, &mut n, e);
        expect(search, AvgStatus::InvalidArgument, "struct_size 7");
        let mut small = std::mem::zeroed::<AvgSearchOptions>();
        let fill = |e| avg_search_options_default(&mut small, 8, e);
        expect(fill, AvgStatus::InvalidArgument, "struct_size 8");
        assert_eq!(small.struct_size, 0, "a refused size writes nothing");
    }
}

#[test]
fn a_training_step_too_large_to_allocate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = std::ffi::CString::new(dir.path().to_str().unwrap()).unwrap();
    let cfg = AvgIndexConfig { dim: 512, codebook_size: 65_536, voken_len: 32, ..config() };
    let mut index = null_mut();
    unsafe {
        assert_eq!(avg_index_open(path.as_ptr(), &cfg, &mut index, null_mut()), AvgStatus::Ok);
        let g = AvgGeneratorTrainConfig { model_dir: c"/nonexistent-model".as_ptr(), ..Default::default() };
        expect(|e| avg_train_generator(index, &g, None, null_mut(), e), AvgStatus::Limit, "lower batch_size");
        let t = AvgTokenizerTrainConfig { shared_codebook: false, ..Default::default() };
        expect(|e| avg_train_tokenizer(index, &t, None, null_mut(), e), AvgStatus::Limit, "shared codebook");
        avg_index_free(index);
    }
}

#[test]
fn a_truncated_manifest_is_reported_as_corrupt() {
    let mut o = open();
    unsafe {
        avg_index_save(o.index, null_mut());
        avg_index_free(o.index);
    }
    o.index = null_mut();
    let dir = std::path::PathBuf::from(o.path.to_str().unwrap());
    let manifest = dir.join("manifest.json");
    let bytes = std::fs::read(&manifest).unwrap();
    std::fs::write(&manifest, &bytes[..bytes.len() / 2]).unwrap();
    let mut h = null_mut();
    unsafe {
        expect(|e| avg_index_open(o.path.as_ptr(), null(), &mut h, e), AvgStatus::Corrupt, "manifest.json");
    }
    assert!(h.is_null());
}

#[test]
fn strings_come_back_with_their_length_and_a_retry_size() {
    let o = open();
    let v = [0.0f32; DIM];
    let id = 3u64;
    let keys = [c"photos/ünïcode.jpg".as_ptr()];
    unsafe {
        assert_eq!(call(|e| avg_index_add_images(o.index, &id, keys.as_ptr(), v.as_ptr(), 1, DIM, e)).0, AvgStatus::Ok);
        let mut len = 0;
        expect(|e| avg_index_image_key(o.index, 3, null_mut(), 0, &mut len, e), AvgStatus::BufferTooSmall, "need 21");
        assert_eq!(len, 20);
        let mut buf = vec![0 as c_char; len + 1];
        assert_eq!(
            call(|e| avg_index_image_key(o.index, 3, buf.as_mut_ptr(), buf.len(), &mut len, e)).0,
            AvgStatus::Ok
        );
        assert_eq!(CStr::from_ptr(buf.as_ptr()).to_str().unwrap(), "photos/ünïcode.jpg");
        let mut n = 0;
        expect(|e| avg_index_image_ids(o.index, null_mut(), 0, &mut n, e), AvgStatus::BufferTooSmall, "need 1");
        assert_eq!(n, 1);
        expect(
            |e| avg_index_caption_text(o.index, 3, 0, buf.as_mut_ptr(), buf.len(), &mut len, e),
            AvgStatus::InvalidArgument,
            "it has 0",
        );
    }
}

/// A refused call's status; its message must say something.
fn refused(f: impl FnOnce(*mut *mut AvgError) -> AvgStatus) -> AvgStatus {
    let (st, msg) = call(f);
    assert!(st == AvgStatus::Ok || !msg.is_empty(), "{st:?} without a message");
    st
}

/// The entry points not exercised above: NULL handles and out-parameters, invalid
/// arguments, and calls before the state they need (no crash, a status and a message).
/// CI runs this file under valgrind.
#[test]
fn every_other_entry_point_refuses_null_bad_and_early_calls() {
    use AvgStatus::*;
    let o = open();
    let v = [0.5f32, -0.5, 0.25, 1.0];
    let id = 1u64;
    let text = c"a photo";
    let bad_utf8 = [0xffu8 as c_char, 0];
    let mut hits = [AvgHit { id: 0, score: 0.0 }; 4];
    let (mut n, mut count, mut has) = (0usize, 0usize, false);
    let mut vokens = [0u32; 4];
    let mut out = [0f32; DIM];
    unsafe {
        assert!(!CStr::from_ptr(avg_version()).to_bytes().is_empty());
        assert_eq!(refused(|e| avg_index_config_default(null_mut(), size_of::<AvgIndexConfig>(), e)), NullPointer);
        let mut ro = null_mut();
        assert_eq!(refused(|e| avg_index_open_read_only(null(), null(), &mut ro, e)), NullPointer);
        assert_eq!(refused(|e| avg_index_open_read_only(o.path.as_ptr(), null(), null_mut(), e)), NullPointer);

        // Near-duplicates: NULL handle and out, a threshold outside (0, 1]; NULL groups read as none.
        let mut groups = null_mut();
        assert_eq!(refused(|e| avg_index_near_duplicates(null(), 0.9, &mut groups, e)), NullPointer);
        assert_eq!(refused(|e| avg_index_near_duplicates(o.index, 0.9, null_mut(), e)), NullPointer);
        for bad in [0.0, -0.5, 1.5, f32::NAN] {
            assert_eq!(refused(|e| avg_index_near_duplicates(o.index, bad, &mut groups, e)), InvalidArgument);
        }
        assert_eq!(refused(|e| avg_index_near_duplicates(o.index, 0.9, &mut groups, e)), Ok);
        assert_eq!(avg_groups_count(groups), 0);
        let mut len = 7;
        assert!(avg_groups_get(groups, 0, &mut len).is_null() && len == 0);
        assert!(avg_groups_get(null(), 0, null_mut()).is_null());
        assert_eq!(avg_groups_count(null()), 0);
        avg_groups_free(groups);
        avg_groups_free(null_mut());
        assert_eq!(refused(|e| avg_index_open_read_only(o.path.as_ptr(), null(), &mut ro, e)), Locked); // o writes it
        assert_eq!(refused(|e| avg_index_open_read_only(c"/nonexistent-index".as_ptr(), null(), &mut ro, e)), Io);
        assert!(ro.is_null());
        assert_eq!(refused(|e| avg_search_options_default(null_mut(), size_of::<AvgSearchOptions>(), e)), NullPointer);
        let tsize = size_of::<AvgTokenizerTrainConfig>();
        assert_eq!(refused(|e| avg_tokenizer_train_config_default(null_mut(), tsize, e)), NullPointer);
        let gsize = size_of::<AvgGeneratorTrainConfig>();
        assert_eq!(refused(|e| avg_generator_train_config_default(null_mut(), gsize, e)), NullPointer);
        let mut opts = std::mem::zeroed::<AvgSearchOptions>();
        assert_eq!(refused(|e| avg_search_options_default(&mut opts, size_of::<AvgSearchOptions>(), e)), Ok);
        assert_eq!(opts.struct_size, size_of::<AvgSearchOptions>());
        let mut tcfg = std::mem::zeroed::<AvgTokenizerTrainConfig>();
        assert_eq!(refused(|e| avg_tokenizer_train_config_default(&mut tcfg, tsize, e)), Ok);
        let mut gcfg = std::mem::zeroed::<AvgGeneratorTrainConfig>();
        assert_eq!(refused(|e| avg_generator_train_config_default(&mut gcfg, gsize, e)), Ok);

        // Search: NULL handle, query and outputs; bad UTF-8; zero k; before training.
        assert_eq!(refused(|e| avg_search(null(), text.as_ptr(), &opts, hits.as_mut_ptr(), 4, &mut n, e)), NullPointer);
        assert_eq!(refused(|e| avg_search(o.index, null(), &opts, hits.as_mut_ptr(), 4, &mut n, e)), NullPointer);
        assert_eq!(refused(|e| avg_search(o.index, text.as_ptr(), &opts, null_mut(), 4, &mut n, e)), NullPointer);
        assert_eq!(
            refused(|e| avg_search(o.index, bad_utf8.as_ptr(), &opts, hits.as_mut_ptr(), 4, &mut n, e)),
            InvalidUtf8
        );
        let zero_k = AvgSearchOptions { k: 0, ..opts };
        assert_eq!(
            refused(|e| avg_search(o.index, text.as_ptr(), &zero_k, hits.as_mut_ptr(), 4, &mut n, e)),
            InvalidArgument
        );
        // The defaults (auto) without a query vector nor a generator: a vector is asked for.
        assert_eq!(
            refused(|e| avg_search(o.index, text.as_ptr(), null(), hits.as_mut_ptr(), 4, &mut n, e)),
            InvalidArgument
        );
        let beam = AvgSearchOptions { mode: AVG_SEARCH_MODE_BEAM, ..opts };
        assert_eq!(refused(|e| avg_search(o.index, text.as_ptr(), &beam, hits.as_mut_ptr(), 4, &mut n, e)), WrongState);
        // Given query vectors are read even without rerank (a generator with a vector
        // slot takes them): a wrong dim is refused, not silently dropped.
        let with_vectors = AvgSearchOptions { query_vectors: v.as_ptr(), dim: DIM + 1, ..opts };
        assert_eq!(
            refused(|e| avg_search(o.index, text.as_ptr(), &with_vectors, hits.as_mut_ptr(), 4, &mut n, e)),
            DimensionMismatch
        );
        // Fused ranking reads query vectors, which no image encoder computes here.
        let fused = AvgSearchOptions { mode: AVG_SEARCH_MODE_FUSED, ..opts };
        assert_eq!(
            refused(|e| avg_search(o.index, text.as_ptr(), &fused, hits.as_mut_ptr(), 4, &mut n, e)),
            InvalidArgument
        );
        // Mode: a value the header does not name is refused. A header from before it
        // names the route with `candidates`, `fused` and `rerank` (an unknown candidates
        // value refused); one from before `candidates` gets plain beam search. The
        // quantiser's codes need a tokenizer.
        let mut search = |o2: &AvgSearchOptions| {
            refused(|e| avg_search(o.index, text.as_ptr(), o2, hits.as_mut_ptr(), 4, &mut n, e))
        };
        assert_eq!(search(&AvgSearchOptions { mode: 6, ..opts }), InvalidArgument);
        let before_mode = std::mem::offset_of!(AvgSearchOptions, mode);
        let unknown = AvgSearchOptions { struct_size: before_mode, candidates: 3, ..opts };
        assert_eq!(search(&unknown), InvalidArgument);
        let older = AvgSearchOptions { struct_size: std::mem::offset_of!(AvgSearchOptions, candidates), ..unknown };
        assert_eq!(search(&older), WrongState);
        let quantizer =
            AvgSearchOptions { mode: AVG_SEARCH_MODE_QUANTIZER, query_vectors: v.as_ptr(), dim: DIM, ..opts };
        assert_eq!(search(&quantizer), WrongState);
        let old_quantizer =
            AvgSearchOptions { struct_size: before_mode, candidates: AVG_CANDIDATES_QUANTIZER, ..quantizer };
        assert_eq!(search(&old_quantizer), WrongState);
        // The dense scan needs no training, and takes any k; so does auto, with a vector.
        for dense in [
            AvgSearchOptions { mode: AVG_SEARCH_MODE_DENSE, k: 1000, ..quantizer },
            AvgSearchOptions { mode: AVG_SEARCH_MODE_AUTO, k: 1000, ..quantizer },
            AvgSearchOptions { struct_size: before_mode, candidates: AVG_CANDIDATES_ALL, ..quantizer },
        ] {
            assert_eq!(search(&dense), Ok);
        }
        // By image and by photo: NULLs, an unknown id, no image encoder, Beam refused
        // (before the id is looked up).
        let mut by_image = |id, o2: *const AvgSearchOptions, out: *mut AvgHit| {
            refused(|e| avg_search_by_image(o.index, id, o2, out, 4, &mut n, e))
        };
        assert_eq!(by_image(12345, null(), hits.as_mut_ptr()), UnknownId);
        assert_eq!(by_image(id, null(), null_mut()), NullPointer);
        assert_eq!(by_image(id, &beam, hits.as_mut_ptr()), InvalidArgument);
        assert_eq!(refused(|e| avg_search_by_image(null(), id, null(), hits.as_mut_ptr(), 4, &mut n, e)), NullPointer);
        let mut file = |p: *const c_char| {
            refused(|e| avg_search_by_photo_file(o.index, p, null(), hits.as_mut_ptr(), 4, &mut n, e))
        };
        assert_eq!(file(null()), NullPointer);
        assert_eq!(file(c"/nonexistent.jpg".as_ptr()), WrongState);
        let mut bytes = |d: *const u8, len| {
            refused(|e| avg_search_by_photo_bytes(o.index, d, len, null(), hits.as_mut_ptr(), 4, &mut n, e))
        };
        assert_eq!(bytes(null(), 3), NullPointer);
        assert_eq!(bytes(b"abc".as_ptr(), 3), WrongState);
        let queries = [text.as_ptr(), null()];
        let one = AvgSearchOptions { k: 1, ..beam };
        assert_eq!(
            refused(|e| avg_search_batch(null(), queries.as_ptr(), 1, &one, hits.as_mut_ptr(), &mut n, e)),
            NullPointer
        );
        assert_eq!(refused(|e| avg_search_batch(o.index, null(), 1, &one, hits.as_mut_ptr(), &mut n, e)), NullPointer);
        assert_eq!(
            refused(|e| avg_search_batch(o.index, queries.as_ptr(), 2, &one, hits.as_mut_ptr(), &mut n, e)),
            NullPointer
        );
        assert_eq!(
            refused(|e| avg_search_batch(o.index, queries.as_ptr(), 1, &one, null_mut(), &mut n, e)),
            NullPointer
        );
        assert_eq!(
            refused(|e| avg_search_batch(o.index, queries.as_ptr(), 1, &one, hits.as_mut_ptr(), null_mut(), e)),
            NullPointer
        );
        assert_eq!(
            refused(|e| avg_search_batch(o.index, queries.as_ptr(), 1, &one, hits.as_mut_ptr(), &mut n, e)),
            WrongState
        );
        // k above the beam (for the beam's modes) or above any index's size (for every
        // mode): refused by both calls before anything is written (a batch with k = 1e9
        // used to write past `out`, and k = 2^62 to overlap queries' hits).
        let two = [text.as_ptr(), text.as_ptr()];
        let dense = AvgSearchOptions { mode: AVG_SEARCH_MODE_DENSE, query_vectors: v.as_ptr(), dim: DIM, ..opts };
        for (k, mode_opts, status) in [
            (opts.beam_size + 1, beam, InvalidArgument),
            (1_000_000_000, beam, Limit),
            (1 << 62, beam, Limit),
            (1 << 62, dense, Limit),
        ] {
            let big = AvgSearchOptions { k, ..mode_opts };
            assert_eq!(refused(|e| avg_search(o.index, text.as_ptr(), &big, hits.as_mut_ptr(), 4, &mut n, e)), status);
            assert_eq!(
                refused(|e| avg_search_batch(o.index, two.as_ptr(), 2, &big, hits.as_mut_ptr(), &mut n, e)),
                status
            );
        }

        // Training: NULL handle, invalid configs, nothing to train on, wrong order; the
        // same with the malloc tuning off (a call that takes nothing and cannot fail).
        avg_set_heap_tuning(false);
        assert_eq!(refused(|e| avg_train_tokenizer(null(), &tcfg, None, null_mut(), e)), NullPointer);
        let no_epochs = AvgTokenizerTrainConfig { epochs: 0, ..tcfg };
        assert_eq!(refused(|e| avg_train_tokenizer(o.index, &no_epochs, None, null_mut(), e)), InvalidArgument);
        assert_ne!(refused(|e| avg_train_tokenizer(o.index, &tcfg, None, null_mut(), e)), Ok); // no images yet
        assert_eq!(refused(|e| avg_train_generator(null(), &gcfg, None, null_mut(), e)), NullPointer);
        assert_eq!(refused(|e| avg_train_generator(o.index, null(), None, null_mut(), e)), NullPointer);
        assert_eq!(refused(|e| avg_train_generator(o.index, &gcfg, None, null_mut(), e)), NullPointer); // model_dir unset
        let gcfg = AvgGeneratorTrainConfig { model_dir: c"/nonexistent-model".as_ptr(), ..gcfg };
        assert_eq!(refused(|e| avg_train_generator(o.index, &gcfg, None, null_mut(), e)), WrongState); // no tokenizer
        avg_set_heap_tuning(true);

        // Photos: NULL handle and arrays, bad UTF-8 paths, no image encoder configured.
        let path = [c"/nonexistent.jpg".as_ptr()];
        let bad_path = [bad_utf8.as_ptr()];
        let mut st = [Panic];
        let files = |index, ids, paths, statuses, e| {
            avg_index_add_image_files(
                index,
                ids,
                null(),
                paths,
                1,
                statuses,
                null_mut(),
                null_mut(),
                None,
                null_mut(),
                e,
            )
        };
        assert_eq!(refused(|e| files(null(), &id, path.as_ptr(), st.as_mut_ptr(), e)), NullPointer);
        assert_eq!(refused(|e| files(o.index, null(), path.as_ptr(), st.as_mut_ptr(), e)), NullPointer);
        assert_eq!(refused(|e| files(o.index, &id, null(), st.as_mut_ptr(), e)), NullPointer);
        assert_eq!(refused(|e| files(o.index, &id, bad_path.as_ptr(), st.as_mut_ptr(), e)), InvalidUtf8);
        assert_eq!(refused(|e| files(o.index, &id, path.as_ptr(), st.as_mut_ptr(), e)), WrongState);
        let bytes = [b"\x89PNG".as_ptr()];
        let statuses = st.as_mut_ptr();
        let bytes_call = |data, lens, e| {
            avg_index_add_image_bytes(
                o.index,
                &id,
                null(),
                data,
                lens,
                1,
                statuses,
                null_mut(),
                null_mut(),
                None,
                null_mut(),
                e,
            )
        };
        assert_eq!(refused(|e| bytes_call(null(), &4, e)), NullPointer);
        assert_eq!(refused(|e| bytes_call(bytes.as_ptr(), null(), e)), NullPointer);
        assert_eq!(refused(|e| bytes_call([null()].as_ptr(), &4, e)), NullPointer);
        assert_eq!(refused(|e| bytes_call(bytes.as_ptr(), &4, e)), WrongState);
        assert_eq!(st, [Panic]); // untouched when the call fails as a whole

        // Reads of one image and of the tokenizer: NULL outputs, unknown ids, too early.
        assert_eq!(refused(|e| avg_index_add_images(o.index, &id, null(), v.as_ptr(), 1, DIM, e)), Ok);
        assert_eq!(
            refused(|e| avg_index_add_captions(o.index, id, [text.as_ptr()].as_ptr(), v.as_ptr(), 1, DIM, e)),
            Ok
        );
        assert_eq!(refused(|e| avg_index_caption_count(null(), &mut count, e)), NullPointer);
        assert_eq!(refused(|e| avg_index_caption_count(o.index, null_mut(), e)), NullPointer);
        assert_eq!(refused(|e| avg_index_caption_count(o.index, &mut count, e)), Ok);
        assert_eq!(count, 1);
        assert_eq!(refused(|e| avg_index_image_caption_count(o.index, 99, &mut count, e)), UnknownId);
        assert_eq!(refused(|e| avg_index_image_caption_count(o.index, id, null_mut(), e)), NullPointer);
        assert_eq!(refused(|e| avg_index_caption_vector(o.index, id, 0, null_mut(), DIM, &mut has, e)), NullPointer);
        assert_eq!(
            refused(|e| avg_index_caption_vector(o.index, id, 0, out.as_mut_ptr(), DIM + 1, &mut has, e)),
            DimensionMismatch
        );
        assert_eq!(
            refused(|e| avg_index_caption_vector(o.index, id, 5, out.as_mut_ptr(), DIM, &mut has, e)),
            InvalidArgument
        );
        assert_eq!(
            refused(|e| avg_index_caption_vector(o.index, 99, 0, out.as_mut_ptr(), DIM, &mut has, e)),
            UnknownId
        );
        assert_eq!(refused(|e| avg_index_caption_vector(o.index, id, 0, out.as_mut_ptr(), DIM, &mut has, e)), Ok);
        assert!(has && out == v);
        assert_eq!(refused(|e| avg_index_image_vokens(o.index, id, vokens.as_mut_ptr(), 4, &mut n, e)), WrongState);
        assert_eq!(refused(|e| avg_index_image_vokens(o.index, 99, vokens.as_mut_ptr(), 4, &mut n, e)), WrongState);
        assert_eq!(
            refused(|e| avg_index_image_vokens(o.index, id, vokens.as_mut_ptr(), 4, null_mut(), e)),
            NullPointer
        );
        let mut stats = std::mem::zeroed::<AvgTokenizerStats>();
        let ssize = size_of::<AvgTokenizerStats>();
        assert_eq!(refused(|e| avg_index_tokenizer_stats(o.index, &mut stats, ssize, e)), WrongState);
        assert_eq!(refused(|e| avg_index_tokenizer_stats(o.index, null_mut(), ssize, e)), NullPointer);
        // The index's info: the shape and counts, nothing trained, no encoder; a size
        // short of the first version's is refused, as for every growable struct.
        let mut info = std::mem::zeroed::<AvgIndexInfo>();
        let isize = size_of::<AvgIndexInfo>();
        assert_eq!(refused(|e| avg_index_info(null(), &mut info, isize, e)), NullPointer);
        assert_eq!(refused(|e| avg_index_info(o.index, null_mut(), isize, e)), NullPointer);
        assert_eq!(refused(|e| avg_index_info(o.index, &mut info, 4, e)), InvalidArgument);
        assert_eq!(refused(|e| avg_index_info(o.index, &mut info, isize, e)), Ok);
        assert_eq!((info.struct_size, info.dim, info.codebook_size, info.voken_len), (isize, DIM, 16, 2));
        assert_eq!((info.images, info.captions, info.texts), (1, 1, 0));
        assert!(!info.tokenizer_trained && !info.generator_trained && !info.image_encoder_open && !info.read_only);
        let (mut dir, mut len) = ([1 as c_char; 8], 99);
        assert_eq!(refused(|e| avg_index_image_encoder_dir(o.index, dir.as_mut_ptr(), 8, &mut len, e)), Ok);
        assert_eq!((len, dir[0]), (0, 0), "no encoder recorded");
        let mut pending = true;
        assert_eq!(refused(|e| avg_index_has_pending_tokenizer(null(), &mut pending, e)), NullPointer);
        assert_eq!(refused(|e| avg_index_has_pending_tokenizer(o.index, null_mut(), e)), NullPointer);
        assert_eq!(refused(|e| avg_index_has_pending_tokenizer(o.index, &mut pending, e)), Ok);
        assert!(!pending);
        assert_eq!(refused(|e| avg_index_remove_image(null(), id, e)), NullPointer);
        assert_eq!(refused(|e| avg_index_remove_image(o.index, 99, e)), UnknownId);
        assert_eq!(refused(|e| avg_index_remove_image(o.index, id, e)), Ok);
        assert_eq!(refused(|e| avg_index_remove_image(o.index, id, e)), UnknownId);
    }
}

#[test]
fn a_log_callback_hears_opens_and_saves_until_it_is_removed() {
    unsafe extern "C" fn collect(user_data: *mut std::ffi::c_void, level: AvgLogLevel, message: *const c_char) {
        let got = &*(user_data as *const std::sync::Mutex<Vec<(AvgLogLevel, String)>>);
        got.lock().unwrap().push((level, CStr::from_ptr(message).to_str().unwrap().to_owned()));
    }
    let got = std::sync::Mutex::new(Vec::new());
    let user_data = &got as *const _ as *mut std::ffi::c_void;
    let o = open();
    unsafe {
        avg_set_log_callback(Some(collect), AvgLogLevel::Info, user_data);
        assert_eq!(avg_index_save(o.index, null_mut()), AvgStatus::Ok);
        avg_set_log_callback(None, AvgLogLevel::Debug, null_mut());
        // Other tests run meanwhile: only this index's lines are looked at.
        let path = CStr::from_ptr(o.path.as_ptr()).to_str().unwrap().to_owned();
        let ours =
            |got: &[(AvgLogLevel, String)]| got.iter().filter(|(_, m)| m.contains(&path)).cloned().collect::<Vec<_>>();
        let heard = ours(&got.lock().unwrap());
        assert!(heard.iter().any(|(l, m)| *l == AvgLogLevel::Info && m.starts_with("saved ")), "{heard:?}");
        assert_eq!(avg_index_save(o.index, null_mut()), AvgStatus::Ok);
        assert_eq!(ours(&got.lock().unwrap()).len(), heard.len(), "nothing after the callback is removed");
    }
}
