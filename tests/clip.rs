//! CLIP in the library: preprocessing and both towers against the reference
//! implementation (values made by tests/data/clip_reference.py), checkpoint formats,
//! and photos that cannot be read.

mod common;

use avg::ffi::*;
use avg::{
    Clip, Error, GeneratorTrainConfig, ImageSource, Index, IndexConfig, NewCaption, NewPhoto, Preprocess, SearchMode,
    SearchOptions, Stage, TokenizerTrainConfig,
};
use base64::Engine;
use common::{clip_words, small_config, tiny_generator_config, write_clip, write_tiny_bert, ClipSizes};
use std::ffi::{CStr, CString};
use std::path::{Path, PathBuf};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

fn reference() -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(data().join("clip-reference.json")).unwrap()).unwrap()
}

/// Where the test leaves its checkpoint, for tests/data/clip_reference.py.
fn tiny() -> PathBuf {
    // Written once per process: tests run on parallel threads, and one rewriting the
    // files while another reads them made the reader fail at random.
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join("avg-clip-parity").join("tiny");
        write_clip(&dir, &ClipSizes::tiny(), 11);
        dir
    })
    .clone()
}

/// The reference photos: synthetic ones and one real COCO photo, all in tests/data/images.
fn photo(name: &str) -> PathBuf {
    data().join("images").join(name)
}

fn names(v: &serde_json::Value) -> Vec<String> {
    serde_json::from_value(v.clone()).unwrap()
}

fn worst(a: &[Vec<f32>], b: &serde_json::Value) -> f32 {
    let b: Vec<Vec<f32>> = serde_json::from_value(b.clone()).unwrap();
    assert_eq!(a.len(), b.len());
    a.iter().flatten().zip(b.iter().flatten()).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Equal up to float rounding (a batch and a single item take different matmul paths).
fn assert_close(a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len());
    assert!(a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5), "{a:?} != {b:?}");
}

#[test]
fn preprocessing_matches_the_reference_pixels() {
    let r = reference();
    let size = r["pixel_size"].as_u64().unwrap() as usize;
    let p = Preprocess::openai(size);
    let pixels = r["pixels"].as_object().unwrap();
    assert_eq!(pixels.len(), 5);
    for (name, want) in pixels {
        let want = base64::engine::general_purpose::STANDARD.decode(want.as_str().unwrap()).unwrap();
        let img = ImageSource::File(&photo(name)).decode().unwrap();
        let got = p.crop(&img).into_raw();
        assert_eq!(got.len(), want.len(), "{name}");
        let diffs: Vec<u8> = got.iter().zip(&want).map(|(a, b)| a.abs_diff(*b)).collect();
        let (max, mean) =
            (*diffs.iter().max().unwrap(), diffs.iter().map(|&d| d as f64).sum::<f64>() / diffs.len() as f64);
        let same = diffs.iter().filter(|&&d| d == 0).count() as f64 / diffs.len() as f64;
        eprintln!(
            "{name}: crop differs from the reference by at most {max}, mean {mean:.3}, {:.1}% identical",
            100.0 * same
        );
        if name.ends_with(".jpg") {
            // JPEG decoders round the inverse DCT and the chroma upsampling differently
            // (the reference uses libjpeg-turbo): real photos differ by up to 3 grey
            // levels, the synthetic noise of rotated.jpg by up to 7.
            assert!(max <= 8 && mean < 0.5, "{name}: crop differs from the reference by up to {max} (mean {mean})");
        } else {
            assert_eq!(max, 0, "{name}: crop differs from the reference by up to {max}");
        }
        // The tensor is the crop normalised.
        let t = p.pixels(&img);
        let plane = size * size;
        for (i, px) in got.chunks(3).enumerate() {
            for c in 0..3 {
                let want = (px[c] as f32 / 255.0 - p.image_mean[c]) / p.image_std[c];
                assert!((t[c * plane + i] - want).abs() < 1e-6);
            }
        }
    }
}

#[test]
fn exif_orientation_is_applied() {
    // Stored 90 x 60 with orientation 6 (rotate 90 degrees clockwise).
    let img = ImageSource::File(&photo("rotated.jpg")).decode().unwrap();
    assert_eq!(img.dimensions(), (60, 90));
}

#[test]
fn embeddings_match_the_reference_implementation() {
    let r = reference();
    let clip = Clip::load(tiny(), "cpu").unwrap();
    let texts = names(&r["texts"]);
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let t = clip.embed_texts(&texts).unwrap();
    let w = worst(&t, &r["text_embeddings"]);
    eprintln!("text embeddings: largest difference from the reference {w:.1e}");
    assert!(w < 1e-4, "text embeddings differ from the reference by up to {w}");
    // One at a time gives the same as in a padded batch.
    assert_close(&clip.embed_texts(&texts[1..2]).unwrap()[0], &t[1]);

    let paths: Vec<PathBuf> = names(&r["images"]).iter().map(|n| photo(n)).collect();
    let sources: Vec<ImageSource> = paths.iter().map(|p| ImageSource::File(p)).collect();
    let v: Vec<Vec<f32>> = clip.embed_images(&sources).unwrap().into_iter().map(Result::unwrap).collect();
    let w = worst(&v, &r["image_embeddings"]);
    eprintln!("image embeddings, all photos: largest difference from the reference {w:.1e}");
    // JPEG decoding differs from the reference's by a few grey levels (see above).
    assert!(w < 2e-2, "image embeddings differ from the reference by up to {w}");
    let png: Vec<usize> =
        paths.iter().enumerate().filter(|(_, p)| !p.to_string_lossy().ends_with(".jpg")).map(|(i, _)| i).collect();
    let exact = worst(
        &png.iter().map(|&i| v[i].clone()).collect::<Vec<_>>(),
        &serde_json::json!(png.iter().map(|&i| r["image_embeddings"][i].clone()).collect::<Vec<_>>()),
    );
    eprintln!("image embeddings, PNG and WebP photos: largest difference from the reference {exact:.1e}");
    assert!(exact < 1e-4, "embeddings of losslessly stored photos differ from the reference by up to {exact}");
}

#[test]
fn a_pytorch_checkpoint_loads_the_same_model() {
    let src = tiny();
    let dir = tempfile::tempdir().unwrap();
    for f in ["config.json", "tokenizer.json", "preprocessor_config.json"] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    std::fs::copy(data().join("clip-tiny-pytorch_model.bin"), dir.path().join("pytorch_model.bin")).unwrap();
    let (a, b) = (Clip::load(&src, "cpu").unwrap(), Clip::load(dir.path(), "cpu").unwrap());
    assert_eq!(a.embed_texts(&["a red car"]).unwrap(), b.embed_texts(&["a red car"]).unwrap());
    let photo = photo("rgba.png");
    let one = [ImageSource::File(&photo)];
    assert_eq!(a.embed_images(&one).unwrap()[0].as_ref().unwrap(), b.embed_images(&one).unwrap()[0].as_ref().unwrap());
}

#[test]
fn a_photo_that_cannot_be_read_fails_alone_with_its_path() {
    let clip = Clip::load(tiny(), "cpu").unwrap();
    let good = std::fs::read(photo("gray.png")).unwrap();
    let truncated = &good[..good.len() / 2];
    let missing = Path::new("/nonexistent/photo.jpg");
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("notes.jpg");
    std::fs::write(&bogus, "not a photo").unwrap();
    let sources = [
        ImageSource::Bytes(&good),
        ImageSource::Bytes(truncated),
        ImageSource::File(missing),
        ImageSource::File(&bogus),
        ImageSource::Bytes(&[]),
    ];
    let out = clip.embed_images(&sources).unwrap();
    assert_eq!(out[0].as_ref().unwrap().len(), 16);
    assert!(matches!(&out[1], Err(Error::InvalidImage(_))), "{:?}", out[1]);
    assert!(matches!(&out[2], Err(Error::Io { path, .. }) if path == missing), "{:?}", out[2]);
    assert!(matches!(&out[3], Err(Error::InvalidImage(m)) if m.contains("notes.jpg")), "{:?}", out[3]);
    assert!(matches!(&out[4], Err(Error::InvalidImage(_))), "{:?}", out[4]);
}

/// Replaces `path` by a named pipe (`fifo`), a link to `/dev/zero` (`zero`) or a sparse
/// file of 2 GiB (`sparse`): what a host walking a home directory can meet.
fn hostile(path: &Path, kind: &str) {
    let _ = std::fs::remove_file(path);
    match kind {
        "fifo" => assert!(std::process::Command::new("mkfifo").arg(path).status().unwrap().success()),
        "zero" => std::os::unix::fs::symlink("/dev/zero", path).unwrap(),
        _ => std::fs::File::create(path).unwrap().set_len(2 << 30).unwrap(),
    }
}

#[test]
fn photo_files_that_would_block_or_never_end_are_refused_unread() {
    // Before, a pipe blocked the call for ever, /dev/zero grew without limit and a
    // sparse file was read in full before its format was guessed.
    let clip = Clip::load(tiny(), "cpu").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<PathBuf> = ["fifo", "zero", "sparse"]
        .iter()
        .map(|kind| {
            let p = dir.path().join(format!("{kind}.jpg"));
            hostile(&p, kind);
            p
        })
        .collect();
    let mut sources: Vec<ImageSource> = paths.iter().map(|p| ImageSource::File(p)).collect();
    let urandom = Path::new("/dev/urandom");
    sources.push(ImageSource::File(urandom));
    let out = clip.embed_images(&sources).unwrap();
    for (r, what) in out.iter().zip(["fifo", "zero", "sparse", "urandom"]) {
        let ok = match r {
            Err(Error::InvalidArgument(m)) => m.contains("not a regular file"),
            Err(Error::Limit(m)) => what == "sparse" && m.contains("sparse.jpg"),
            _ => false,
        };
        assert!(ok, "{what}: {r:?}");
    }
}

#[test]
fn checkpoint_files_that_would_block_or_never_end_are_refused() {
    for file in ["config.json", "tokenizer.json", "model.safetensors", "preprocessor_config.json"] {
        for kind in ["fifo", "zero", "sparse"] {
            let dir = tempfile::tempdir().unwrap();
            write_clip(dir.path(), &ClipSizes::tiny(), 3);
            hostile(&dir.path().join(file), kind);
            let sparse_json = kind == "sparse" && file.ends_with(".json");
            match Clip::load(dir.path(), "cpu") {
                Err(Error::InvalidArgument(m)) if m.contains("not a regular file") => {}
                Err(Error::Limit(m)) if sparse_json && m.contains(file) => {}
                // A sparse weights file is under the weights' cap; its header is read,
                // and accounts for none of its bytes.
                Err(Error::Corrupt { reason, .. }) if kind == "sparse" && reason.contains("not a safetensors") => {}
                r => panic!("{file} {kind}: {:?}", r.map(|_| ())),
            }
        }
    }
}

#[test]
fn a_broken_checkpoint_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    write_clip(dir.path(), &ClipSizes::tiny(), 3);
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap()).unwrap();
    config["vision_config"]["patch_size"] = 5.into(); // 32 is not a multiple of it
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    assert!(matches!(Clip::load(dir.path(), "cpu"), Err(Error::Model(_))));
    config["vision_config"]["patch_size"] = 16.into(); // fits the config, not the weights
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    assert!(matches!(Clip::load(dir.path(), "cpu"), Err(Error::Model(_))));
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    assert!(matches!(Clip::load(dir.path(), "cpu"), Err(Error::Io { .. })));
}

/// `n` different PNG photos cut from a real one.
fn photo_bytes(n: usize) -> Vec<Vec<u8>> {
    let base = ImageSource::File(&photo("000000000790.jpg")).decode().unwrap();
    (0..n)
        .map(|i| {
            let (x, y, w) = ((i * 37 % 300) as u32, (i * 23 % 150) as u32, 200 + (i % 5) as u32 * 20);
            let mut out = Vec::new();
            let crop = image::imageops::crop_imm(&base, x, y, w, 180).to_image();
            crop.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png).unwrap();
            out
        })
        .collect()
}

fn bytes_photos(photos: &[Vec<u8>], first_id: u64) -> Vec<NewPhoto<'_>> {
    photos
        .iter()
        .enumerate()
        .map(|(i, b)| NewPhoto { id: first_id + i as u64, key: None, source: ImageSource::Bytes(b) })
        .collect()
}

#[test]
fn an_index_with_an_encoder_takes_photos_and_text_and_answers_queries() {
    let dir = tempfile::tempdir().unwrap();
    let config = IndexConfig { image_encoder: Some(tiny()), ..small_config(16) };
    let index = Index::open(dir.path().join("index"), Some(&config)).unwrap();
    let photos = photo_bytes(24);
    let mut new = bytes_photos(&photos, 0);
    new.push(NewPhoto { id: 100, key: Some("lost"), source: ImageSource::File(Path::new("/nonexistent/a.jpg")) });
    new.push(NewPhoto { id: 3, key: None, source: ImageSource::Bytes(&photos[0]) });
    let mut reports = Vec::new();
    let results = index.add_photos(&new, |p| {
        reports.push((p.stage, p.step, p.steps_per_epoch));
        true
    });
    let results = results.unwrap();
    assert!(results[..24].iter().all(Result::is_ok), "{results:?}");
    assert!(matches!(results[24], Err(Error::Io { .. })), "{:?}", results[24]);
    assert!(matches!(results[25], Err(Error::DuplicateId(3))), "{:?}", results[25]);
    assert_eq!(reports, vec![(Stage::Images, 0, 1)]);
    assert_eq!(index.image_count(), 24);
    let clip = index.image_encoder().unwrap();
    let v = clip.embed_images(&[ImageSource::Bytes(&photos[5])]).unwrap().remove(0).unwrap();
    assert_close(&index.image(5).unwrap().vector, &v);

    // Search by photo: the same photo's bytes find it first (its own vector); by its
    // id, the others, nearest first; an unreadable photo is the call's error.
    let dense = SearchOptions { mode: SearchMode::Dense, k: 3, ..Default::default() };
    assert_eq!(index.search_by_photo(ImageSource::Bytes(&photos[5]), &dense).unwrap()[0].id, 5);
    let like_5 = index.search_by_image(5, &dense).unwrap();
    let mut want: Vec<(f32, u64)> = (0..24u64)
        .filter(|&id| id != 5)
        .map(|id| (index.image(id).unwrap().vector.iter().zip(&v).map(|(a, b)| a * b).sum(), id))
        .collect();
    want.sort_by(|a, b| b.0.total_cmp(&a.0));
    assert_eq!(like_5.iter().map(|h| h.id).collect::<Vec<_>>(), want[..3].iter().map(|w| w.1).collect::<Vec<_>>());
    let unreadable = index.search_by_photo(ImageSource::File(Path::new("/nonexistent/a.jpg")), &dense);
    assert!(matches!(unreadable, Err(Error::Io { .. })), "{unreadable:?}");

    // Captions given as text get the text tower's vectors; given vectors are kept.
    let words = clip_words();
    for i in 0..24 {
        let text = format!("{} {} {}", words[i], words[(i + 7) % words.len()], words[(i + 13) % words.len()]);
        index.add_captions(i as u64, &[NewCaption { text: &text, vector: None }]).unwrap();
    }
    let own = vec![0.25f32; 16];
    index.add_captions(0, &[NewCaption { text: "given", vector: Some(&own) }]).unwrap();
    let record = index.image(2).unwrap();
    assert_close(
        record.captions[0].vector.as_deref().unwrap(),
        &clip.embed_texts(&[&record.captions[0].text]).unwrap()[0],
    );
    assert_eq!(index.image(0).unwrap().captions[1].vector.as_deref(), Some(&own[..]));

    // Both stages train on them; a reranked search computes the query's vector.
    index
        .train_tokenizer(&TokenizerTrainConfig { epochs: 3, batch_size: 8, hidden: 16, ..Default::default() }, |_| true)
        .unwrap();
    let model = dir.path().join("bert");
    write_tiny_bert(&model, &words, 5);
    index
        .train_generator(&GeneratorTrainConfig { epochs: 2, dis: false, ..tiny_generator_config(&model) }, |_| true)
        .unwrap();
    let query = "a dog on grass";
    let hits = index
        .search(query, &SearchOptions { k: 5, beam_size: 8, mode: SearchMode::Rerank, ..Default::default() }, None)
        .unwrap();
    assert!(!hits.is_empty());
    let q = clip.embed_texts(&[query]).unwrap().remove(0);
    for h in &hits {
        let dot: f32 = index.image(h.id).unwrap().vector.iter().zip(&q).map(|(a, b)| a * b).sum();
        assert!((dot - h.score).abs() < 1e-5, "rerank score {} is not the dot product {dot}", h.score);
    }
    assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));

    // Stopping after the first batch of 32 keeps it; the rest are cancelled.
    let many: Vec<Vec<u8>> = (0..40).map(|i| photos[i % 24].clone()).collect();
    let results = index.add_photos(&bytes_photos(&many, 1000), |_| false).unwrap();
    assert!(results[..32].iter().all(Result::is_ok));
    assert!(results[32..].iter().all(|r| matches!(r, Err(Error::Cancelled))));
    assert_eq!(index.image_count(), 24 + 32);
    // New photos get vokens at once.
    assert!(index.vokens(1000).is_ok());
}

#[test]
fn a_photo_is_found_by_its_attached_words_through_the_dense_scan() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index");
    // dim 0: the encoder's.
    let config = IndexConfig { dim: 0, image_encoder: Some(tiny()), ..small_config(16) };
    let index = Index::open(&path, Some(&config)).unwrap();
    assert_eq!(index.config().dim, 16);
    let photos = photo_bytes(12);
    index.add_photos(&bytes_photos(&photos, 0), |_| true).unwrap();
    let words = clip_words();
    let dense = SearchOptions { mode: SearchMode::Dense, k: 12, ..Default::default() };
    let by_vector =
        |id: u64, q: &[f32]| -> f32 { index.image(id).unwrap().vector.iter().zip(q).map(|(a, b)| a * b).sum() };
    // Without words, scores are the image vectors' dot products.
    let q = index.image_encoder().unwrap().embed_texts(&["car"]).unwrap().remove(0);
    for h in index.search("car", &dense, None).unwrap() {
        assert!((h.score - by_vector(h.id, &q)).abs() < 1e-5);
    }
    for id in 0..12u64 {
        index.attach_texts(id, &[&words[id as usize]]).unwrap();
    }
    let car = words.iter().position(|w| w == "car").unwrap() as u64;
    for mode in [SearchMode::Dense, SearchMode::Auto] {
        let hits = index.search("car", &SearchOptions { mode, ..dense }, None).unwrap();
        assert_eq!(hits[0].id, car, "{hits:?}");
        // Every score is the best of the image's and its words' similarities.
        assert!(hits.iter().all(|h| h.score >= by_vector(h.id, &q) - 1e-5));
    }
    // Stored with the index: found so after a reopen, and the vectors are the text tower's.
    index.save().unwrap();
    drop(index);
    let index = Index::open(&path, None).unwrap();
    let info = index.info();
    assert_eq!((info.dim, info.images, info.texts, info.image_encoder_open), (16, 12, 12, true));
    assert_eq!(info.image_encoder_dir.as_deref(), tiny().to_str());
    assert_eq!(index.search("car", &dense, None).unwrap()[0].id, car);
    assert!(index.search("car", &dense, None).unwrap()[0].score > 0.999);
    index.remove_image(car).unwrap();
    assert!(index.search("car", &dense, None).unwrap().iter().all(|h| h.id != car));
    // dim 0 without an encoder names what is missing.
    let bare = IndexConfig { dim: 0, ..small_config(16) };
    let err = Index::open(dir.path().join("bare"), Some(&bare)).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)) && err.to_string().contains("dim"), "{err}");
}

#[test]
fn an_encoder_must_fit_the_index_and_is_needed_for_photos() {
    let dir = tempfile::tempdir().unwrap();
    let wrong = IndexConfig { image_encoder: Some(tiny()), ..small_config(8) };
    assert!(matches!(Index::open(dir.path().join("a"), Some(&wrong)), Err(Error::ConfigMismatch(_))));
    let index = Index::open(dir.path().join("b"), Some(&small_config(16))).unwrap();
    let photos = photo_bytes(1);
    assert!(matches!(index.add_photos(&bytes_photos(&photos, 0), |_| true), Err(Error::WrongState(_))));
    let missing = IndexConfig { image_encoder: Some(dir.path().join("none")), ..small_config(16) };
    assert!(matches!(Index::open(dir.path().join("c"), Some(&missing)), Err(Error::Io { .. })));
}

#[test]
fn an_index_refuses_an_image_encoder_other_than_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other-clip");
    write_clip(&other, &ClipSizes::tiny(), 12); // same shape, other weights
    let path = dir.path().join("index");
    let with = |clip: Option<PathBuf>| IndexConfig { image_encoder: clip, ..small_config(16) };
    let index = Index::open(&path, Some(&with(Some(tiny())))).unwrap();
    let photos = photo_bytes(2);
    index.add_photos(&bytes_photos(&photos, 0), |_| true).unwrap();
    index.save().unwrap();
    drop(index);
    let err = Index::open(&path, Some(&with(Some(other.clone())))).unwrap_err();
    assert!(matches!(err, Error::ConfigMismatch(_)) && err.to_string().contains("other-clip"), "{err}");
    // Opened with a config without an encoder (the host brings vectors) and saved, it
    // keeps the record.
    let index = Index::open(&path, Some(&with(None))).unwrap();
    assert!(index.image_encoder().is_none());
    index.save().unwrap();
    drop(index);
    assert!(matches!(Index::open(&path, Some(&with(Some(other)))), Err(Error::ConfigMismatch(_))));
    assert_eq!(Index::open(&path, Some(&with(Some(tiny())))).unwrap().image_count(), 2);
}

#[test]
fn an_index_opened_without_a_config_keeps_its_recorded_encoder() {
    // A NULL config used to drop the image encoder: photos were then refused.
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("clip");
    write_clip(&clip, &ClipSizes::tiny(), 3);
    let path = dir.path().join("index");
    let config = IndexConfig { image_encoder: Some(clip.clone()), ..small_config(16) };
    drop(Index::open(&path, Some(&config)).unwrap());
    let photos = photo_bytes(2);
    for open in [Index::open, Index::open_read_only] {
        let index = open(&path, None).unwrap();
        assert_eq!(index.image_encoder().map(|c| c.dim()), Some(16));
        assert_eq!(index.config().image_encoder.as_deref(), Some(clip.as_path()));
    }
    Index::open(&path, None).unwrap().add_photos(&bytes_photos(&photos, 0), |_| true).unwrap();
    // Gone or changed, it is left out (a warning) and the index still opens.
    std::fs::rename(&clip, dir.path().join("moved")).unwrap();
    let index = Index::open(&path, None).unwrap();
    assert!(index.image_encoder().is_none());
    assert!(matches!(index.add_photos(&bytes_photos(&photos, 5), |_| true), Err(Error::WrongState(_))));
}

fn message(e: *mut AvgError) -> String {
    let m = unsafe { CStr::from_ptr(avg_error_message(e)) }.to_str().unwrap().to_owned();
    unsafe { avg_error_free(e) };
    m
}

#[test]
fn the_c_api_adds_photos_with_a_status_and_an_error_each() {
    let dir = tempfile::tempdir().unwrap();
    let encoder = CString::new(tiny().to_str().unwrap()).unwrap();
    let path = CString::new(dir.path().join("index").to_str().unwrap()).unwrap();
    let bogus = dir.path().join("notes.png");
    std::fs::write(&bogus, "not a photo").unwrap();
    let files: Vec<CString> = [photo("rgba.png"), photo("lossless.webp"), PathBuf::from("/nonexistent/b.jpg"), bogus]
        .iter()
        .map(|p| CString::new(p.to_str().unwrap()).unwrap())
        .collect();
    unsafe {
        let mut config = std::mem::zeroed::<AvgIndexConfig>();
        assert_eq!(
            avg_index_config_default(&mut config, size_of::<AvgIndexConfig>(), std::ptr::null_mut()),
            AvgStatus::Ok
        );
        config.dim = 16;
        let mut plain = std::ptr::null_mut();
        assert_eq!(avg_index_open(path.as_ptr(), &config, &mut plain, std::ptr::null_mut()), AvgStatus::Ok);
        let ids = [1u64, 2, 3, 4];
        let ptrs: Vec<*const std::ffi::c_char> = files.iter().map(|f| f.as_ptr()).collect();
        let mut statuses = [AvgStatus::Panic; 4];
        let mut errors = [std::ptr::null_mut(); 4];
        let mut added = 99usize;
        let mut err = std::ptr::null_mut();
        let add = |index, statuses: *mut AvgStatus, errors: *mut *mut AvgError, added: *mut usize, err| {
            avg_index_add_image_files(
                index,
                ids.as_ptr(),
                std::ptr::null(),
                ptrs.as_ptr(),
                4,
                statuses,
                errors,
                added,
                None,
                std::ptr::null_mut(),
                err,
            )
        };
        assert_eq!(add(plain, statuses.as_mut_ptr(), errors.as_mut_ptr(), &mut added, &mut err), AvgStatus::WrongState);
        assert!(message(err).contains("image encoder"));
        avg_index_free(plain);

        config.image_encoder_dir = encoder.as_ptr();
        let mut index = std::ptr::null_mut();
        assert_eq!(avg_index_open(path.as_ptr(), &config, &mut index, std::ptr::null_mut()), AvgStatus::Ok);
        assert_eq!(
            add(index, std::ptr::null_mut(), errors.as_mut_ptr(), &mut added, std::ptr::null_mut()),
            AvgStatus::NullPointer
        );
        assert_eq!(
            add(index, statuses.as_mut_ptr(), errors.as_mut_ptr(), &mut added, std::ptr::null_mut()),
            AvgStatus::Ok
        );
        assert_eq!(statuses, [AvgStatus::Ok, AvgStatus::Ok, AvgStatus::Io, AvgStatus::InvalidImage]);
        assert_eq!(added, 2);
        assert!(errors[..2].iter().all(|e| e.is_null()));
        assert!(message(errors[2]).contains("/nonexistent/b.jpg"));
        assert!(message(errors[3]).contains("notes.png"));

        // Bytes; without item errors; the second is cut short.
        let good = std::fs::read(photo("gray.png")).unwrap();
        let data = [good.as_ptr(), good.as_ptr()];
        let lens = [good.len(), good.len() / 3];
        let keys = [c"gray".as_ptr(), std::ptr::null()];
        let mut two = [AvgStatus::Panic; 2];
        let st = avg_index_add_image_bytes(
            index,
            [10u64, 11].as_ptr(),
            keys.as_ptr(),
            data.as_ptr(),
            lens.as_ptr(),
            2,
            two.as_mut_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            None,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        );
        assert_eq!((st, two), (AvgStatus::Ok, [AvgStatus::Ok, AvgStatus::InvalidImage]));
        let mut count = 0;
        avg_index_image_count(index, &mut count, std::ptr::null_mut());
        assert_eq!(count, 3);

        // A stop from the callback is the call's status too.
        unsafe extern "C" fn stop(_: *mut std::ffi::c_void, p: *const AvgProgress) -> bool {
            assert_eq!((*p).stage, AvgStage::Images);
            false
        }
        let ids: Vec<u64> = (100..140).collect();
        let data: Vec<*const u8> = vec![good.as_ptr(); 40];
        let lens = vec![good.len(); 40];
        let mut forty = vec![AvgStatus::Panic; 40];
        let st = avg_index_add_image_bytes(
            index,
            ids.as_ptr(),
            std::ptr::null(),
            data.as_ptr(),
            lens.as_ptr(),
            40,
            forty.as_mut_ptr(),
            std::ptr::null_mut(),
            &mut added,
            Some(stop),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        );
        assert_eq!((st, added), (AvgStatus::Cancelled, 32));
        assert!(forty[32..].iter().all(|&s| s == AvgStatus::Cancelled));

        // The grouped call: files, then bytes; both sources, or a wrong size, refused.
        let file = [files[0].as_ptr()];
        let key_200 = [c"two hundred".as_ptr()];
        let mut one = [AvgStatus::Panic];
        let mut batch = AvgPhotoBatch {
            count: 1,
            ids: &200,
            keys: key_200.as_ptr(),
            paths: file.as_ptr(),
            statuses: one.as_mut_ptr(),
            ..Default::default()
        };
        assert_eq!(avg_index_add_photos(index, &mut batch, std::ptr::null_mut()), AvgStatus::Ok);
        assert_eq!((one, batch.added), ([AvgStatus::Ok], 1));
        let mut err = std::ptr::null_mut();
        let mut both = AvgPhotoBatch { ids: &201, data: data.as_ptr(), lens: lens.as_ptr(), ..batch };
        assert_eq!(avg_index_add_photos(index, &mut both, &mut err), AvgStatus::InvalidArgument);
        assert!(message(err).contains("not both"));
        let mut bytes = AvgPhotoBatch { paths: std::ptr::null(), ..both };
        assert_eq!(avg_index_add_photos(index, &mut bytes, std::ptr::null_mut()), AvgStatus::Ok);
        let mut short = AvgPhotoBatch { struct_size: 8, ..bytes };
        assert_eq!(avg_index_add_photos(index, &mut short, std::ptr::null_mut()), AvgStatus::InvalidArgument);
        assert_eq!(avg_index_add_photos(index, std::ptr::null_mut(), std::ptr::null_mut()), AvgStatus::NullPointer);
        let mut key = [0 as std::ffi::c_char; 32];
        let mut len = 0;
        avg_index_image_key(index, 200, key.as_mut_ptr(), 32, &mut len, std::ptr::null_mut());
        assert_eq!(std::ffi::CStr::from_ptr(key.as_ptr()), c"two hundred");
        avg_index_image_count(index, &mut count, std::ptr::null_mut());
        assert_eq!(count, 3 + 32 + 2);
        avg_index_free(index);
    }
}
