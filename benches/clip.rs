//! Encoding speed of the image encoder: a ViT-B/32-sized CLIP (random weights; the
//! speed does not depend on them) on the real COCO photos of ../shared/data/coco-mini.
//! Prints photos/s decoded and preprocessed, photos/s encoded end to end (file to unit
//! vector, through `Index::add_photos`), and queries/s through the text tower, one at a
//! time and in batches of 64.
//!
//!     cargo bench --bench clip

#[path = "../tests/common/mod.rs"]
mod common;

use avg::{Clip, ImageSource, Index, IndexConfig, NewPhoto};
use std::path::{Path, PathBuf};
use std::time::Instant;

fn coco() -> (Vec<PathBuf>, Vec<String>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/coco-mini");
    let mut photos = Vec::new();
    let mut captions = Vec::new();
    for split in ["train2017", "val2017"] {
        let mut files: Vec<PathBuf> =
            std::fs::read_dir(root.join(split)).expect("../shared/data/coco-mini").map(|e| e.unwrap().path()).collect();
        files.sort();
        photos.extend(files);
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(root.join(format!("annotations/captions_{split}.json"))).unwrap())
                .unwrap();
        captions.extend(
            json["annotations"].as_array().unwrap().iter().map(|a| a["caption"].as_str().unwrap().trim().to_owned()),
        );
    }
    (photos, captions)
}

fn main() {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (photos, captions) = coco();
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("vit-b32");
    common::write_clip(&model, &common::ClipSizes::vit_b32(), 1);
    let clip = Clip::load(&model, "cpu").unwrap();
    println!("clip bench: ViT-B/32 sizes (random weights), {} COCO photos, {threads} threads", photos.len());

    let start = Instant::now();
    let prep = clip.preprocess();
    for p in &photos {
        std::hint::black_box(prep.pixels(&ImageSource::File(p).decode().unwrap()));
    }
    let n = photos.len();
    let one_thread = n as f64 / start.elapsed().as_secs_f64();
    println!("decode + preprocess, one thread: {one_thread:.1} photos/s");

    let index = Index::open(
        dir.path().join("index"),
        Some(&IndexConfig { image_encoder: Some(model.clone()), ..Default::default() }),
    )
    .unwrap();
    let new: Vec<NewPhoto> = photos
        .iter()
        .enumerate()
        .map(|(i, p)| NewPhoto { id: i as u64, key: None, source: ImageSource::File(p) })
        .collect();
    let start = Instant::now();
    let results = index.add_photos(&new, |_| true).unwrap();
    assert!(results.iter().all(Result::is_ok));
    let secs = start.elapsed().as_secs_f64();
    println!(
        "add_photos (decode, preprocess, ViT-B/32, batches of 32): {:.1} photos/s ({} photos in {secs:.1} s)",
        photos.len() as f64 / secs,
        photos.len()
    );

    let queries: Vec<&str> = captions.iter().take(200).map(String::as_str).collect();
    clip.embed_texts(&queries[..8]).unwrap(); // warm-up
    let mut lat: Vec<f64> = queries[..100]
        .iter()
        .map(|q| {
            let t = Instant::now();
            clip.embed_texts(&[q]).unwrap();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    lat.sort_by(f64::total_cmp);
    println!(
        "text tower, one query at a time: p50 {:.1} ms, p99 {:.1} ms, {:.1} queries/s",
        common::percentile(&lat, 0.5),
        common::percentile(&lat, 0.99),
        1e3 * lat.len() as f64 / lat.iter().sum::<f64>()
    );
    let start = Instant::now();
    clip.embed_texts(&queries).unwrap();
    println!("text tower, batches of 64: {:.1} queries/s", queries.len() as f64 / start.elapsed().as_secs_f64());
}
