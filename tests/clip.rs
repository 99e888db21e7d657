//! CLIP in the library: preprocessing and both towers against the reference
//! implementation (values made by tests/data/clip_reference.py), checkpoint formats,
//! and photos that cannot be read.

mod common;

use avg::{Clip, Error, ImageSource, Preprocess};
use base64::Engine;
use common::{write_clip, ClipSizes};
use std::path::{Path, PathBuf};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

fn reference() -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(data().join("clip-reference.json")).unwrap()).unwrap()
}

/// Where the test leaves its checkpoint, for tests/data/clip_reference.py.
fn tiny() -> PathBuf {
    let dir = std::env::temp_dir().join("avg-clip-parity").join("tiny");
    write_clip(&dir, &ClipSizes::tiny(), 11);
    dir
}

/// The reference photos: synthetic ones in tests/data/images, real ones from coco-mini.
fn photo(name: &str) -> PathBuf {
    let own = data().join("images").join(name);
    if own.exists() {
        return own;
    }
    let real = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/coco-mini/train2017").join(name);
    assert!(real.exists(), "the real reference photos are read from {}", real.display());
    real
}

fn names(v: &serde_json::Value) -> Vec<String> {
    serde_json::from_value(v.clone()).unwrap()
}

fn worst(a: &[Vec<f32>], b: &serde_json::Value) -> f32 {
    let b: Vec<Vec<f32>> = serde_json::from_value(b.clone()).unwrap();
    assert_eq!(a.len(), b.len());
    a.iter().flatten().zip(b.iter().flatten()).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn preprocessing_matches_the_reference_pixels() {
    let r = reference();
    let size = r["pixel_size"].as_u64().unwrap() as usize;
    let p = Preprocess::openai(size);
    let pixels = r["pixels"].as_object().unwrap();
    assert_eq!(pixels.len(), 7);
    for (name, want) in pixels {
        let want = base64::engine::general_purpose::STANDARD.decode(want.as_str().unwrap()).unwrap();
        let img = ImageSource::File(&photo(name)).decode().unwrap();
        let got = p.crop(&img).into_raw();
        assert_eq!(got.len(), want.len(), "{name}");
        let diffs: Vec<u8> = got.iter().zip(&want).map(|(a, b)| a.abs_diff(*b)).collect();
        let (max, mean) = (*diffs.iter().max().unwrap(), diffs.iter().map(|&d| d as f64).sum::<f64>() / diffs.len() as f64);
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
    assert!(w < 1e-4, "text embeddings differ from the reference by up to {w}");
    // One at a time gives the same as in a padded batch.
    let single = clip.embed_texts(&texts[1..2]).unwrap();
    assert!(single[0].iter().zip(&t[1]).all(|(a, b)| (a - b).abs() < 1e-5));

    let paths: Vec<PathBuf> = names(&r["images"]).iter().map(|n| photo(n)).collect();
    let sources: Vec<ImageSource> = paths.iter().map(|p| ImageSource::File(p)).collect();
    let v: Vec<Vec<f32>> = clip.embed_images(&sources).unwrap().into_iter().map(Result::unwrap).collect();
    let w = worst(&v, &r["image_embeddings"]);
    // JPEG decoding differs from the reference's by a few grey levels (see above).
    assert!(w < 2e-2, "image embeddings differ from the reference by up to {w}");
    let png: Vec<usize> = paths.iter().enumerate().filter(|(_, p)| !p.to_string_lossy().ends_with(".jpg")).map(|(i, _)| i).collect();
    let exact = worst(&png.iter().map(|&i| v[i].clone()).collect::<Vec<_>>(), &serde_json::json!(png.iter().map(|&i| r["image_embeddings"][i].clone()).collect::<Vec<_>>()));
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
    let sources =
        [ImageSource::Bytes(&good), ImageSource::Bytes(truncated), ImageSource::File(missing), ImageSource::File(&bogus), ImageSource::Bytes(&[])];
    let out = clip.embed_images(&sources).unwrap();
    assert_eq!(out[0].as_ref().unwrap().len(), 16);
    assert!(matches!(&out[1], Err(Error::InvalidImage(_))), "{:?}", out[1]);
    assert!(matches!(&out[2], Err(Error::Io { path, .. }) if path == missing), "{:?}", out[2]);
    assert!(matches!(&out[3], Err(Error::InvalidImage(m)) if m.contains("notes.jpg")), "{:?}", out[3]);
    assert!(matches!(&out[4], Err(Error::InvalidImage(_))), "{:?}", out[4]);
}

#[test]
fn a_broken_checkpoint_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    write_clip(dir.path(), &ClipSizes::tiny(), 3);
    let mut config: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap()).unwrap();
    config["vision_config"]["patch_size"] = 5.into(); // 32 is not a multiple of it
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    assert!(matches!(Clip::load(dir.path(), "cpu"), Err(Error::Model(_))));
    config["vision_config"]["patch_size"] = 16.into(); // fits the config, not the weights
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    assert!(matches!(Clip::load(dir.path(), "cpu"), Err(Error::Model(_))));
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    assert!(matches!(Clip::load(dir.path(), "cpu"), Err(Error::Io { .. })));
}
