//! Quickstart: index photos by file, learn them through their file names, search.
//! usage: quickstart CLIP_DIR TEXT_MODEL_DIR PHOTO...   (CI runs it on tiny checkpoints)
use avg::{GeneratorTrainConfig, ImageSource, Index, IndexConfig, NewPhoto, SearchOptions, TokenizerTrainConfig};
use std::path::Path;

fn main() -> avg::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (clip, model, photos) = (&args[0], &args[1], &args[2..]);
    let dim = avg::Clip::load(clip, "cpu")?.dim(); // the index dimension is the encoder's
    let config =
        IndexConfig { dim, codebook_size: 16, voken_len: 2, image_encoder: Some(clip.into()), ..Default::default() };
    let dir = std::env::temp_dir().join("avg-quickstart");
    let _ = std::fs::remove_dir_all(&dir);
    let index = Index::open(&dir, Some(&config))?;
    let new: Vec<NewPhoto> = photos
        .iter()
        .enumerate()
        .map(|(i, p)| NewPhoto { id: i as u64, key: Some(p), source: ImageSource::File(Path::new(p)) })
        .collect();
    for (i, result) in index.add_photos(&new, |_| true)?.into_iter().enumerate() {
        let name = Path::new(&photos[i]).file_stem().unwrap_or_default().to_string_lossy().replace(['_', '-'], " ");
        match result {
            Ok(()) => index.attach_texts(i as u64, &[&name])?, // what a user would type
            Err(e) => eprintln!("{}: {e}", photos[i]),
        }
    }
    index.train_tokenizer(&TokenizerTrainConfig { epochs: 5, ..Default::default() }, |_| true)?;
    let gen = GeneratorTrainConfig { model_dir: model.into(), epochs: 20, ..Default::default() };
    index.train_generator(&gen, |_| true)?;
    let opts = SearchOptions { fused: true, ..Default::default() }; // query vectors from CLIP
    for hit in index.search("rotated", &opts, None)? {
        println!("{:.3}  {}", hit.score, index.image(hit.id)?.key.unwrap_or_default());
    }
    Ok(())
}
