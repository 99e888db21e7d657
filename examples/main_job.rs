//! The whole job of a host, on the embedded default: index captioned items, train the
//! tokenizer and the generator, answer queries, print hits and recall.
//!
//! Items: the 159 captioned MS-COCO photos of `DATA/coco-mini` when present; otherwise
//! 150 items with captions this program makes from templates (said in the output).
//! No image encoder can be installed here, so this runs the text proxy: an item's first
//! caption, embedded by all-MiniLM-L6-v2, stands in for its photo vector; its last
//! caption is held out as the query; the others train.
//!
//! usage: main_job --model MINILM_DIR [--data DIR] [--index DIR]

use avg::{GeneratorTrainConfig, Index, IndexConfig, NewCaption, NewImage, SearchOptions, TextEncoder, TokenizerTrainConfig};
use std::path::{Path, PathBuf};
use std::time::Instant;

fn coco_mini(data: &Path) -> Option<Vec<(String, Vec<String>)>> {
    let mut items = std::collections::BTreeMap::<u64, (String, Vec<String>)>::new();
    for split in ["train2017", "val2017"] {
        let path = data.join(format!("coco-mini/annotations/captions_{split}.json"));
        let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
        for img in json["images"].as_array()? {
            let file = format!("coco-mini/{split}/{}", img["file_name"].as_str()?);
            items.insert(img["id"].as_u64()?, (file, Vec::new()));
        }
        for a in json["annotations"].as_array()? {
            if let Some(item) = items.get_mut(&a["image_id"].as_u64()?) {
                item.1.push(a["caption"].as_str()?.trim().to_owned());
            }
        }
    }
    Some(items.into_values().filter(|(_, c)| c.len() >= 5).collect())
}

/// 150 items whose five captions describe one scene in different words.
fn made_up() -> Vec<(String, Vec<String>)> {
    let animals = ["dog", "cat", "horse", "bird", "cow", "sheep"];
    let colours = ["black", "white", "brown", "grey", "spotted"];
    let places = ["on the beach", "in a field", "near a river", "in the snow", "on a street"];
    let mut items = Vec::new();
    for (i, a) in animals.iter().enumerate() {
        for (j, c) in colours.iter().enumerate() {
            for (k, p) in places.iter().enumerate() {
                items.push((
                    format!("made-up/{i}-{j}-{k}.jpg"),
                    vec![
                        format!("a {c} {a} standing {p}"),
                        format!("the {a} is {c} and it is {p}"),
                        format!("photo of a {c} {a} {p}"),
                        format!("{p} there is a {c} {a}"),
                        format!("a {a} that is {c}, {p}"),
                    ],
                ));
            }
        }
    }
    items
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn main() {
    let mut model = None;
    let mut data = PathBuf::from("../shared/data");
    let mut index_dir = PathBuf::from("target/main-job-index");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--model" => model = args.next().map(PathBuf::from),
            "--data" => data = args.next().map(PathBuf::from).expect("--data DIR"),
            "--index" => index_dir = args.next().map(PathBuf::from).expect("--index DIR"),
            _ => panic!("unknown argument {a}"),
        }
    }
    let model = model.expect("--model MINILM_DIR");
    let started = Instant::now();
    let items = match coco_mini(&data) {
        Some(items) => {
            println!("items: {} captioned MS-COCO photos from {}", items.len(), data.join("coco-mini").display());
            items
        }
        None => {
            println!("items: {} made-up items ({} has no coco-mini)", 150, data.display());
            made_up()
        }
    };

    let encoder = TextEncoder::load(&model, "cpu").expect("MiniLM checkpoint");
    let texts: Vec<&str> = items.iter().flat_map(|(_, c)| c[..5].iter().map(String::as_str)).collect();
    let vectors = encoder.embed(&texts).expect("embedding");
    let vec_of = |item: usize, k: usize| vectors[item * 5 + k].as_slice();

    let _ = std::fs::remove_dir_all(&index_dir);
    let config = IndexConfig { dim: encoder.dim(), codebook_size: 32, voken_len: 3, ..Default::default() };
    let index = Index::open(&index_dir, Some(&config)).expect("open index");
    for (i, (key, caps)) in items.iter().enumerate() {
        index.add_images(&[NewImage { id: i as u64, key: Some(key), vector: vec_of(i, 0) }]).unwrap();
        let train: Vec<NewCaption> = (1..4).map(|k| NewCaption { text: &caps[k], vector: Some(vec_of(i, k)) }).collect();
        index.add_captions(i as u64, &train).unwrap();
    }
    println!("indexed {} items with {} training captions", index.image_count(), index.caption_count());

    let t = Instant::now();
    let tok = index.train_tokenizer(&TokenizerTrainConfig { epochs: 30, batch_size: 64, ..Default::default() }, |_| true).unwrap();
    println!("tokenizer trained in {:.1} s: level usage {:?}, {} items share codes", t.elapsed().as_secs_f64(), tok.stats.usage_per_level, tok.stats.collided_images);
    let t = Instant::now();
    let cfg = GeneratorTrainConfig { model_dir: model.clone(), epochs: 30, batch_size: 32, learning_rate: 2e-3, decoder_d_model: 128, ..Default::default() };
    let gen = index
        .train_generator(&cfg, |p| {
            if p.step + 1 == p.steps_per_epoch && (p.epoch + 1) % 10 == 0 {
                println!("  generator epoch {}/{}: L_gen {:.3} L_dis {:.3}", p.epoch + 1, p.epochs, p.loss_gen, p.loss_dis);
            }
            true
        })
        .unwrap();
    println!("generator trained in {:.1} s (L_gen {:.3})", t.elapsed().as_secs_f64(), gen.loss_gen);

    // Held-out captions as queries.
    let queries: Vec<&str> = items.iter().map(|(_, c)| c[4].as_str()).collect();
    let opts = SearchOptions { k: 10, beam_size: 20, rerank: false };
    let t = Instant::now();
    let hits = index.search_batch(&queries, &opts, None).unwrap();
    let qps = queries.len() as f64 / t.elapsed().as_secs_f64();
    for (q, h) in queries.iter().zip(&hits).take(3) {
        println!("query {q:?}");
        for hit in h.iter().take(3) {
            println!("    {:>3}  {:.3}  {}", hit.id, hit.score, index.image(hit.id).unwrap().key.unwrap_or_default());
        }
    }
    let at = |k: usize| 100.0 * hits.iter().enumerate().filter(|(i, h)| h.iter().take(k).any(|x| x.id == *i as u64)).count() as f64 / items.len() as f64;
    println!("libavg recall on {} held-out captions: R@1 {:.1}  R@5 {:.1}  R@10 {:.1}  ({qps:.1} queries/s, beam 20)", items.len(), at(1), at(5), at(10));
    // For reference: exact cosine of the held-out caption's vector against every item's.
    let dense: Vec<usize> = (0..items.len())
        .map(|q| (0..items.len()).filter(|&j| dot(vec_of(j, 0), vec_of(q, 4)) > dot(vec_of(q, 0), vec_of(q, 4))).count())
        .collect();
    let dat = |k: usize| 100.0 * dense.iter().filter(|&&rank| rank < k).count() as f64 / items.len() as f64;
    println!("dense baseline (exact cosine):        R@1 {:.1}  R@5 {:.1}  R@10 {:.1}", dat(1), dat(5), dat(10));
    println!("whole job: {:.0} s; the index is in {}", started.elapsed().as_secs_f64(), index_dir.display());
}
