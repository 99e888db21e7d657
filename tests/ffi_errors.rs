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
    AvgIndexConfig { dim: DIM, codebook_size: 16, voken_len: 2, device: c"cpu".as_ptr() }
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
    assert_eq!(avg_error_code(err), st);
    let msg = unsafe { CStr::from_ptr(avg_error_message(err)) }.to_str().unwrap().to_owned();
    avg_error_free(err);
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
        let texts = [null::<c_char>()];
        assert_eq!(call(|e| avg_index_add_images(o.index, &id, null(), v.as_ptr(), 1, DIM, e)).0, AvgStatus::Ok);
        expect(|e| avg_index_add_captions(o.index, 1, texts.as_ptr(), null(), 1, DIM, e), AvgStatus::NullPointer, "texts[i]");
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
        expect(|e| avg_index_add_images(o.index, ids.as_ptr(), null(), v.as_ptr(), 2, DIM, e), AvgStatus::NonFinite, "position 2");
        let mut n = usize::MAX;
        avg_index_image_count(o.index, &mut n, null_mut());
        assert_eq!(n, 0, "a rejected batch adds nothing");
        v[DIM + 2] = 0.0;
        assert_eq!(call(|e| avg_index_add_images(o.index, ids.as_ptr(), null(), v.as_ptr(), 2, DIM, e)).0, AvgStatus::Ok);
        expect(|e| avg_index_add_images(o.index, ids.as_ptr(), null(), v.as_ptr(), 1, DIM, e), AvgStatus::DuplicateId, "1");
        let text = [c"a dog".as_ptr()];
        expect(|e| avg_index_add_captions(o.index, 99, text.as_ptr(), null(), 1, DIM, e), AvgStatus::UnknownId, "99");
        expect(|e| avg_index_add_captions(o.index, 1, text.as_ptr(), v.as_ptr(), 1, 3, e), AvgStatus::DimensionMismatch, "got 3");
        expect(|e| avg_index_add_images(o.index, ids.as_ptr(), null(), v.as_ptr(), usize::MAX, DIM, e), AvgStatus::Limit, "batch size");
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
        expect(|e| avg_index_add_images(o.index, &id, keys.as_ptr(), v.as_ptr(), 1, DIM, e), AvgStatus::InvalidUtf8, "keys");
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
        expect(|e| avg_index_open(c"/tmp/x".as_ptr(), &zero, &mut h, e), AvgStatus::InvalidArgument, "dim must be at least 1");
        let huge = AvgIndexConfig { voken_len: 1000, ..config() };
        expect(|e| avg_index_open(c"/tmp/x".as_ptr(), &huge, &mut h, e), AvgStatus::Limit, "voken_len");
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
        assert_eq!(call(|e| avg_index_image_key(o.index, 3, buf.as_mut_ptr(), buf.len(), &mut len, e)).0, AvgStatus::Ok);
        assert_eq!(CStr::from_ptr(buf.as_ptr()).to_str().unwrap(), "photos/ünïcode.jpg");
        let mut n = 0;
        expect(|e| avg_index_image_ids(o.index, null_mut(), 0, &mut n, e), AvgStatus::BufferTooSmall, "need 1");
        assert_eq!(n, 1);
        expect(|e| avg_index_caption_text(o.index, 3, 0, buf.as_mut_ptr(), buf.len(), &mut len, e), AvgStatus::InvalidArgument, "it has 0");
    }
}
