//! Quickstart: index photos by file with a CLIP checkpoint, give each its file name as
//! its words, and search them.
//! usage: quickstart INDEX_DIR CLIP_DIR QUERY PHOTO...
use avg::{ImageSource, Index, IndexConfig, NewPhoto, SearchOptions};
use std::path::Path;

fn main() -> avg::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 4 {
        eprintln!("usage: quickstart INDEX_DIR CLIP_DIR QUERY PHOTO...");
        std::process::exit(2);
    }
    let (index_dir, clip_dir, query, paths) = (&args[0], &args[1], &args[2], &args[3..]);

    // The default shape (N 1024, M 4) holds libraries of any size; dim 0 takes the
    // encoder's.
    let config = IndexConfig { dim: 0, image_encoder: Some(clip_dir.into()), ..Default::default() };
    let index = Index::open(index_dir, Some(&config))?;

    // Each photo's id is its position and its key its path; one that cannot be read
    // is reported, not fatal.
    let photos: Vec<NewPhoto> = (0..)
        .zip(paths)
        .map(|(id, path)| NewPhoto { id, key: Some(path), source: ImageSource::File(Path::new(path)) })
        .collect();
    let results = index.add_photos(&photos, |_| true)?;
    let mut added = 0;
    for (photo, result) in photos.iter().zip(results) {
        if let Err(e) = result {
            eprintln!("skipped: {e}");
            continue;
        }
        // Its words: an app attaches a title, tags or an album name.
        let stem = Path::new(photo.key.unwrap_or_default()).file_stem().unwrap_or_default();
        index.attach_texts(photo.id, &[&stem.to_string_lossy()])?;
        added += 1;
    }
    index.save()?;
    println!("{added} photos added, {} in the index", index.image_count());

    // The default mode picks the route: the dense scan for a library this size.
    for hit in index.search(query, &SearchOptions::default(), None)? {
        println!("{:.3}  {}", hit.score, paths[hit.id as usize]);
    }
    Ok(())
}
