//! Compressed vector storage: searches read f16 or int8 vectors, and nothing given is
//! lost: `image`, saves and trainings see the f32 vectors exactly, through adds,
//! removals, saves and reopenings.

mod common;

use avg::{Index, IndexConfig, NewImage, SearchMode, SearchOptions, TokenizerTrainConfig, VectorStorage};
use common::{small_config, Lcg};

const DIM: usize = 48;

fn config(storage: VectorStorage) -> IndexConfig {
    IndexConfig { vector_storage: storage, ..small_config(DIM) }
}

fn vectors(n: u64, seed: u64) -> Vec<(u64, Vec<f32>)> {
    let mut rng = Lcg(seed);
    (0..n).map(|i| (i, rng.vector(DIM, 1.0))).collect()
}

fn add(index: &Index, images: &[(u64, Vec<f32>)]) {
    let new: Vec<NewImage> = images.iter().map(|(id, v)| NewImage { id: *id, key: None, vector: v }).collect();
    index.add_images(&new).unwrap();
}

/// Every image's stored vector is exactly the one given.
fn assert_exact(index: &Index, images: &[(u64, Vec<f32>)]) {
    assert_eq!(index.image_count(), images.len());
    for (id, v) in images {
        assert_eq!(&index.image(*id).unwrap().vector, v, "image {id}");
    }
}

#[test]
fn compressed_handles_keep_every_vector_exactly_through_adds_removals_and_saves() {
    for storage in [VectorStorage::F16, VectorStorage::Int8] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index");
        let mut all = vectors(300, 3);
        let index = Index::open(&path, Some(&config(storage))).unwrap();
        add(&index, &all[..200]);
        assert_exact(&index, &all[..200]);
        index.save().unwrap();
        // Rows from the file and rows held since the save, mixed by removals (each
        // moves the last row into its place).
        add(&index, &all[200..]);
        for id in [0u64, 150, 250, 299] {
            index.remove_image(id).unwrap();
        }
        all.retain(|(id, _)| ![0, 150, 250, 299].contains(id));
        assert_exact(&index, &all);
        index.save().unwrap();
        assert_exact(&index, &all);
        let more = vectors(20, 9).into_iter().map(|(id, v)| (id + 1000, v)).collect::<Vec<_>>();
        add(&index, &more);
        all.extend(more);
        index.save().unwrap();
        drop(index);
        // Every form reads back the f32 the compressed handle wrote.
        for reopen in [VectorStorage::F32, storage] {
            assert_exact(&Index::open(&path, Some(&config(reopen))).unwrap(), &all);
        }
        assert_exact(&Index::open_read_only(&path, Some(&config(storage))).unwrap(), &all);
    }
}

#[test]
fn compressed_dense_scans_find_the_f32_answer_with_close_scores() {
    let dir = tempfile::tempdir().unwrap();
    let images = vectors(500, 5);
    let f32_index = Index::open(dir.path().join("f32"), Some(&config(VectorStorage::F32))).unwrap();
    add(&f32_index, &images);
    f32_index.save().unwrap();
    drop(f32_index);
    let opts = SearchOptions { k: 10, mode: SearchMode::Dense, ..Default::default() };
    let queries = vectors(20, 77);
    let open = |storage| Index::open_read_only(dir.path().join("f32"), Some(&config(storage))).unwrap();
    let exact = open(VectorStorage::F32);
    let f32_bytes = exact.info().vector_bytes;
    assert_eq!(f32_bytes, 500 * DIM * 4);
    for (storage, tolerance, share) in [(VectorStorage::F16, 2e-3, 2), (VectorStorage::Int8, 3e-2, 4)] {
        let index = open(storage);
        // The kept form and where each original is (8 bytes a row) beside the scales.
        assert!(
            index.info().vector_bytes <= f32_bytes / share + 500 * 12,
            "{storage:?}: {}",
            index.info().vector_bytes
        );
        let (mut same_first, mut overlap) = (0, 0);
        for (_, q) in &queries {
            let want = exact.search("", &opts, Some(q)).unwrap();
            let got = index.search("", &opts, Some(q)).unwrap();
            same_first += usize::from(want[0].id == got[0].id);
            overlap += got.iter().filter(|h| want.iter().any(|w| w.id == h.id)).count();
            for h in &got {
                let v = &images[h.id as usize].1;
                let score: f32 = v.iter().zip(q).map(|(a, b)| a * b).sum();
                let norm = (v.iter().map(|x| x * x).sum::<f32>() * q.iter().map(|x| x * x).sum::<f32>()).sqrt();
                assert!((h.score - score).abs() <= tolerance * norm, "{storage:?}: {} vs {score}", h.score);
            }
        }
        assert!(same_first >= 18, "{storage:?}: the first hit agreed {same_first} times of 20");
        assert!(overlap >= 180, "{storage:?}: {overlap} of 200 hits in common");
        // By image: the query is the indexed image's exact vector, itself left out.
        let by_image = index.search_by_image(7, &opts).unwrap();
        assert!(by_image.iter().all(|h| h.id != 7));
        assert_eq!(by_image.len(), 10);
    }
}

#[test]
fn a_tokenizer_trained_on_a_compressed_handle_sees_the_exact_vectors() {
    let images = vectors(200, 11);
    let tok = TokenizerTrainConfig { epochs: 3, align: false, batch_size: 64, hidden: 64, ..Default::default() };
    let codes = |storage| {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::open(dir.path().join("index"), Some(&config(storage))).unwrap();
        add(&index, &images[..150]);
        index.save().unwrap();
        add(&index, &images[150..]);
        index.train_tokenizer(&tok, |_| true).unwrap();
        images.iter().map(|(id, _)| index.vokens(*id).unwrap()).collect::<Vec<_>>()
    };
    let exact = codes(VectorStorage::F32);
    assert_eq!(codes(VectorStorage::Int8), exact);
    assert_eq!(codes(VectorStorage::F16), exact);
}
