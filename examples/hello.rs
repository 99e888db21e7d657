//! Hello, libavg: no model at all. Open an index, add 1,000 vectors, and search with a
//! query vector near image 123's: the default mode (`Auto`) answers with the exact
//! dense scan. Your vectors would come from an image encoder such as CLIP.
//! usage: hello INDEX_DIR
use avg::{Index, IndexConfig, NewImage, SearchOptions};

const DIM: usize = 64;

fn main() -> avg::Result<()> {
    let dir = std::env::args().nth(1).expect("usage: hello INDEX_DIR");
    let index = Index::open(&dir, Some(&IndexConfig { dim: DIM, ..Default::default() }))?;

    // 1,000 unit vectors, made up: a small xorshift generator keeps the example alone.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut random = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let unit = |v: Vec<f32>| {
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.into_iter().map(|x| x / norm).collect::<Vec<f32>>()
    };
    let vectors: Vec<Vec<f32>> = (0..1000).map(|_| unit((0..DIM).map(|_| random()).collect())).collect();
    let images: Vec<NewImage> =
        vectors.iter().enumerate().map(|(id, v)| NewImage { id: id as u64, key: None, vector: v }).collect();
    index.add_images(&images)?;
    index.save()?;

    // A query near image 123: its vector plus a little noise.
    let query = unit(vectors[123].iter().map(|x| x + 0.05 * random()).collect());
    let hits = index.search("", &SearchOptions::default(), Some(&query))?;
    for hit in &hits[..3] {
        println!("image {} score {:.3}", hit.id, hit.score);
    }
    assert_eq!(hits[0].id, 123, "the nearest image comes first");
    println!("found image 123 first");
    Ok(())
}
