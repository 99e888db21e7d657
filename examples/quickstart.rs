//! Quickstart: index photos by file, learn them through their paths as texts, search.
//! usage: quickstart INDEX_DIR CLIP_DIR TEXT_MODEL_DIR PHOTO...   (CI runs it on tiny checkpoints)
use avg::{
    GeneratorTrainConfig, ImageSource, Index, IndexConfig, NewPhoto, SearchMode, SearchOptions, TokenizerTrainConfig,
};

fn main() -> avg::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (dir, clip, model, photos) = (&args[0], &args[1], &args[2], &args[3..]);
    let dim = avg::Clip::load(clip, "cpu")?.dim(); // the index dimension is the encoder's
    let config =
        IndexConfig { dim, codebook_size: 16, voken_len: 2, image_encoder: Some(clip.into()), ..Default::default() };
    let index = Index::open(dir, Some(&config))?;
    let new: Vec<NewPhoto> =
        (0..).zip(photos).map(|(id, p)| NewPhoto { id, key: Some(p), source: ImageSource::File(p.as_ref()) }).collect();
    for (photo, added) in new.iter().zip(index.add_photos(&new, |_| true)?) {
        let path = photo.key.unwrap_or_default(); // its path as its text (an app: title, tags)
        if let Err(e) = added.and_then(|()| index.attach_texts(photo.id, &[path])) {
            eprintln!("{path}: {e}"); // a photo that cannot be read is reported, not fatal
        }
    }
    index.train_tokenizer(&TokenizerTrainConfig { epochs: 5, ..Default::default() }, |_| true)?;
    let gen = GeneratorTrainConfig { model_dir: model.into(), epochs: 20, ..Default::default() };
    index.train_generator(&gen, |_| true)?;
    let opts = SearchOptions { mode: SearchMode::Fused, ..Default::default() }; // query vectors from CLIP
    for hit in index.search("rotated", &opts, None)? {
        println!("{:.3}  {}", hit.score, index.image(hit.id)?.key.unwrap_or_default());
    }
    Ok(())
}
