//! Training the tokenizer through the public API.

mod common;

use avg::{Error, Index, Progress, SearchMode, SearchOptions, TokenizerTrainConfig};
use common::{small_config, Synthetic};
use std::collections::HashSet;

fn train_cfg() -> TokenizerTrainConfig {
    TokenizerTrainConfig { epochs: 8, batch_size: 64, hidden: 64, ..Default::default() }
}

fn trained(dir: &std::path::Path, data: &Synthetic, cfg: &TokenizerTrainConfig) -> (Index, Vec<Progress>) {
    let index = Index::open(dir, Some(&small_config(data.dim))).unwrap();
    data.fill(&index);
    let mut seen = Vec::new();
    index
        .train_tokenizer(cfg, |p| {
            seen.push(*p);
            true
        })
        .unwrap();
    (index, seen)
}

fn all_vokens(index: &Index) -> Vec<(u64, Vec<u32>)> {
    index.image_ids().into_iter().map(|id| (id, index.vokens(id).unwrap())).collect()
}

#[test]
fn loss_decreases_and_every_image_gets_a_unique_sequence() {
    let data = Synthetic::new(16, 300, 10, 0.5, 1);
    let dir = tempfile::tempdir().unwrap();
    let (index, seen) = trained(dir.path(), &data, &train_cfg());
    let epoch_mean = |e: usize| {
        let l: Vec<f32> = seen.iter().filter(|p| p.epoch == e).map(|p| p.loss).collect();
        l.iter().sum::<f32>() / l.len() as f32
    };
    assert!(epoch_mean(7) < 0.7 * epoch_mean(0), "loss {} -> {}", epoch_mean(0), epoch_mean(7));
    let vokens = all_vokens(&index);
    assert_eq!(vokens.len(), 300);
    assert!(vokens.iter().all(|(_, v)| v.len() == 4));
    let unique: HashSet<&Vec<u32>> = vokens.iter().map(|(_, v)| v).collect();
    assert_eq!(unique.len(), 300, "sequences are unique");
    let stats = index.tokenizer_stats().unwrap();
    assert_eq!(stats.usage_per_level.len(), 3);
    assert!(stats.usage_per_level.iter().all(|&u| u > 0.0 && u <= 1.0));
}

#[test]
fn reopening_gives_the_same_vokens_and_new_images_get_theirs() {
    let data = Synthetic::new(16, 200, 8, 0.5, 2);
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let (index, _) = trained(dir.path(), &data, &train_cfg());
        all_vokens(&index)
    };
    let index = Index::open(dir.path(), None).unwrap();
    assert_eq!(all_vokens(&index), before);
    // An image added after training gets its vokens from the stored tokenizer.
    let v = data.images[5].1.clone();
    index.add_images(&[avg::NewImage { id: 10_000, key: None, vector: &v }]).unwrap();
    let got = index.vokens(10_000).unwrap();
    assert_eq!(&got[..3], &index.quantize(&v).unwrap()[..]);
    assert_eq!(&got[..3], &before[5].1[..3], "the same vector gets the same M codes");
    assert_ne!(got, before[5].1, "but a different disambiguator");
    index.save().unwrap();
    drop(index);
    assert_eq!(Index::open(dir.path(), None).unwrap().vokens(10_000).unwrap(), got);
}

#[test]
fn the_quantizers_codes_and_the_dense_scan_answer_searches_with_no_generator() {
    let data = Synthetic::new(16, 200, 8, 0.5, 4);
    let dir = tempfile::tempdir().unwrap();
    let index = Index::open(dir.path(), Some(&small_config(data.dim))).unwrap();
    data.fill(&index);
    let opts = SearchOptions { mode: SearchMode::Quantizer, k: 5, ..Default::default() };
    let v = data.images[3].1.clone();
    assert!(matches!(index.search("x", &opts, Some(&v)), Err(Error::WrongState(_))));
    // The dense scan needs no training: it finds the best dot products, best first.
    let all = SearchOptions { mode: SearchMode::Dense, ..opts };
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    let mut want: Vec<(f32, u64)> = data.images.iter().map(|(id, w)| (dot(w, &v), *id)).collect();
    want.sort_by(|a, b| b.0.total_cmp(&a.0));
    let scanned = index.search("", &all, Some(&v)).unwrap();
    assert_eq!(scanned.iter().map(|h| h.id).collect::<Vec<_>>(), want[..5].iter().map(|w| w.1).collect::<Vec<_>>());
    assert!((scanned[0].score - want[0].0).abs() < 1e-5);
    assert!(matches!(index.search("", &all, None), Err(Error::InvalidArgument(_))));
    index.train_tokenizer(&train_cfg(), |_| true).unwrap();

    // The generator's codes need a generator; the quantiser's do not.
    let beam = SearchOptions { mode: SearchMode::Beam, ..Default::default() };
    assert!(matches!(index.search("x", &beam, None), Err(Error::WrongState(_))));
    // The default mode answers with the dense scan here (a vector, few images), and
    // without a vector asks for one (no generator to write codes from text).
    assert_eq!(index.search("x", &SearchOptions { k: 5, ..Default::default() }, Some(&v)).unwrap(), scanned);
    assert!(matches!(index.search("x", &SearchOptions::default(), None), Err(Error::InvalidArgument(_))));
    let top = |o: &SearchOptions, q: &[f32]| index.search("x", o, Some(q)).unwrap()[0];
    assert!(data.images.iter().all(|(id, q)| top(&opts, q).id == *id), "each image's own vector finds it first");
    // One beam, no widening, codes alone: the hits lie under the query's own quantisation.
    let narrow = SearchOptions { k: 1, beam_size: 1, min_candidates: 0, dense_weight: 0.0, ..opts };
    for (_, q) in &data.images {
        let hit = top(&narrow, q);
        assert_eq!(index.vokens(hit.id).unwrap()[..3], index.quantize(q).unwrap()[..]);
        assert!(hit.score <= 0.0, "minus a squared distance: {}", hit.score);
    }
    let hits = index.search("x", &opts, Some(&v)).unwrap();
    assert_eq!(hits.len(), 5);
    assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));

    let no_vector = index.search("x", &opts, None).unwrap_err();
    assert!(matches!(no_vector, Error::InvalidArgument(_)), "{no_vector}");
    let short = index.search("x", &opts, Some(&v[..8])).unwrap_err();
    assert!(matches!(short, Error::DimensionMismatch { .. }), "{short}");
    assert!(index.search_batch(&[], &opts, Some(&[])).unwrap().is_empty());

    // More like this photo: the nearest other images by its stored vector, itself left
    // out, by the dense scan and by the quantiser's codes; k hits either way.
    let like_3 = |mode| index.search_by_image(3, &SearchOptions { mode, k: 5, ..Default::default() }).unwrap();
    let want_others: Vec<u64> = want.iter().map(|w| w.1).filter(|&id| id != 3).take(5).collect();
    assert_eq!(like_3(SearchMode::Dense).iter().map(|h| h.id).collect::<Vec<_>>(), want_others);
    let by_codes = like_3(SearchMode::Quantizer);
    assert!(by_codes.len() == 5 && by_codes.iter().all(|h| h.id != 3), "{by_codes:?}");
    let beam = index.search_by_image(3, &SearchOptions { mode: SearchMode::Beam, ..Default::default() });
    assert!(matches!(beam, Err(Error::InvalidArgument(_))), "{beam:?}");
    assert!(matches!(index.search_by_image(999_999, &opts), Err(Error::UnknownId(999_999))));
    let no_encoder = index.search_by_photo(avg::ImageSource::Bytes(b"not a photo"), &opts);
    assert!(matches!(no_encoder, Err(Error::WrongState(_))), "{no_encoder:?}");
}

#[test]
fn the_same_seed_gives_the_same_vokens() {
    let data = Synthetic::new(16, 150, 6, 0.5, 3);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let cfg = TokenizerTrainConfig { epochs: 3, ..train_cfg() };
    assert_eq!(all_vokens(&trained(a.path(), &data, &cfg).0), all_vokens(&trained(b.path(), &data, &cfg).0));
}

#[test]
fn stopping_from_the_callback_keeps_the_previous_state() {
    let data = Synthetic::new(16, 120, 6, 0.5, 4);
    let dir = tempfile::tempdir().unwrap();
    let (index, _) = trained(dir.path(), &data, &TokenizerTrainConfig { epochs: 2, ..train_cfg() });
    let before = all_vokens(&index);
    let mut calls = 0;
    let err = index
        .train_tokenizer(&TokenizerTrainConfig { seed: 99, ..train_cfg() }, |_| {
            calls += 1;
            calls < 3
        })
        .unwrap_err();
    assert!(matches!(err, Error::Cancelled));
    assert_eq!(all_vokens(&index), before);
    drop(index);
    assert_eq!(all_vokens(&Index::open(dir.path(), None).unwrap()), before);
}

#[test]
fn wrong_order_and_missing_caption_vectors_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let index = Index::open(dir.path(), Some(&small_config(4))).unwrap();
    assert!(matches!(index.vokens(1), Err(Error::WrongState(_))));
    assert!(matches!(index.train_tokenizer(&train_cfg(), |_| true), Err(Error::WrongState(_))));
    let v = [0.5f32; 4];
    index.add_images(&[avg::NewImage { id: 1, key: None, vector: &v }]).unwrap();
    index.add_captions(1, &[avg::NewCaption { text: "no vector", vector: None }]).unwrap();
    let err = index.train_tokenizer(&train_cfg(), |_| true).unwrap_err();
    assert!(err.to_string().contains("caption 0 of image 1 has no text vector"), "{err}");
    let bad = TokenizerTrainConfig { learning_rate: f64::NAN, ..train_cfg() };
    assert!(matches!(index.train_tokenizer(&bad, |_| true), Err(Error::InvalidArgument(_))));
    // Without alignment, captions need no vectors.
    index.train_tokenizer(&TokenizerTrainConfig { align: false, epochs: 1, ..train_cfg() }, |_| true).unwrap();
    assert_eq!(index.vokens(1).unwrap().len(), 4);
}

/// Mean length of the common prefix of the M codes over pairs of images of one topic.
fn same_topic_prefix(index: &Index, data: &Synthetic) -> f32 {
    let v = all_vokens(index);
    let (mut total, mut pairs) = (0usize, 0usize);
    for (i, (a, va)) in v.iter().enumerate() {
        for (b, vb) in &v[i + 1..] {
            if data.topic(*a) == data.topic(*b) {
                total += va[..3].iter().zip(&vb[..3]).take_while(|(x, y)| x == y).count();
                pairs += 1;
            }
        }
    }
    total as f32 / pairs as f32
}

#[test]
fn alignment_makes_images_with_close_captions_share_longer_prefixes() {
    // Image vectors carry noise as large as their topic; captions carry the topic only.
    let data = Synthetic::new(16, 240, 12, 1.2, 5);
    let cfg = TokenizerTrainConfig { epochs: 60, seed: 7, ..train_cfg() };
    let (on, off) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let with = same_topic_prefix(&trained(on.path(), &data, &cfg).0, &data);
    let without =
        same_topic_prefix(&trained(off.path(), &data, &TokenizerTrainConfig { align: false, ..cfg }).0, &data);
    eprintln!("same-topic common prefix: align on {with:.3}, off {without:.3}");
    assert!(with > 1.1 * without, "align on {with}, off {without}");
}
