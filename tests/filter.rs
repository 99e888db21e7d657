//! Filtered search: every route returns only allowed images, and k of them whenever k
//! are allowed; the dense scan's answer is the exact one among the allowed images.

mod common;

use avg::{Filter, GeneratorTrainConfig, Hit, Index, SearchMode, SearchOptions, TokenizerTrainConfig};
use common::{caption_text, caption_words, small_config, tiny_generator_config, write_tiny_bert, Synthetic};

const MODES: [SearchMode; 5] =
    [SearchMode::Dense, SearchMode::Quantizer, SearchMode::Fused, SearchMode::Beam, SearchMode::Rerank];

/// 60 images, a trained tokenizer and a briefly trained generator: the filter is a
/// constraint, so a model of any quality must keep it.
fn trained(dir: &std::path::Path) -> (Index, Synthetic) {
    let data = Synthetic::new(16, 60, 6, 0.5, 21);
    let model = dir.join("bert");
    write_tiny_bert(&model, &caption_words(60, 6), 5);
    let index = Index::open(dir.join("index"), Some(&small_config(16))).unwrap();
    data.fill_with_texts(&index);
    let tok = TokenizerTrainConfig { epochs: 5, batch_size: 64, hidden: 64, ..Default::default() };
    index.train_tokenizer(&tok, |_| true).unwrap();
    index.train_generator(&GeneratorTrainConfig { epochs: 5, ..tiny_generator_config(&model) }, |_| true).unwrap();
    (index, data)
}

fn ids(hits: &[Hit]) -> Vec<u64> {
    hits.iter().map(|h| h.id).collect()
}

/// The exact answer among `allowed`: the dot product, best first, ties by id.
fn exact(data: &Synthetic, query: &[f32], allowed: &[u64], k: usize) -> Vec<u64> {
    let mut scored: Vec<(f32, u64)> = data
        .images
        .iter()
        .filter(|(id, _)| allowed.contains(id))
        .map(|(id, v)| (v.iter().zip(query).map(|(a, b)| a * b).sum(), *id))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.into_iter().take(k).map(|(_, id)| id).collect()
}

#[test]
fn every_route_returns_only_allowed_images_and_k_of_them_when_k_are_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let (index, data) = trained(dir.path());
    // Seven allowed images spread over the topics, one unknown id and one repeated.
    let allowed = [3u64, 11, 18, 29, 30, 47, 58, 9999, 18];
    let known = [3u64, 11, 18, 29, 30, 47, 58];
    let query = &data.captions[18][0];
    let text = caption_text(data.topic(18), 18, 0);
    for mode in MODES {
        for k in [5, 10] {
            let opts = SearchOptions { k, beam_size: 10, mode, filter: Filter::Ids(&allowed), ..Default::default() };
            if matches!(mode, SearchMode::Beam | SearchMode::Rerank) && k > opts.beam_size {
                continue;
            }
            let hits = index.search(&text, &opts, Some(query)).unwrap();
            assert!(hits.iter().all(|h| known.contains(&h.id)), "{mode:?}: {:?}", ids(&hits));
            assert_eq!(hits.len(), k.min(known.len()), "{mode:?} k {k}: {:?}", ids(&hits));
            let mut unique = ids(&hits);
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(unique.len(), hits.len(), "{mode:?}: an image twice");
        }
    }
    // The dense scan is exact among the allowed images, for a few allowed (gathered)
    // and for most (scored in place).
    let most: Vec<u64> = (0..60).filter(|id| id % 4 != 1).collect();
    for allowed in [&known[..], &most[..]] {
        let opts = SearchOptions { k: 6, mode: SearchMode::Dense, filter: Filter::Ids(allowed), ..Default::default() };
        let hits = index.search("", &opts, Some(query)).unwrap();
        assert_eq!(ids(&hits), exact(&data, query, allowed, 6));
    }
}

#[test]
fn a_predicate_filters_as_its_list_does_and_an_empty_list_allows_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (index, data) = trained(dir.path());
    let query = &data.captions[7][0];
    let even: Vec<u64> = (0..60).filter(|id| id % 2 == 0).collect();
    let is_even = |id: u64| id.is_multiple_of(2);
    for mode in MODES {
        let opts = |filter| SearchOptions { k: 8, beam_size: 10, mode, filter, ..Default::default() };
        let by_list = index.search("a photo", &opts(Filter::Ids(&even)), Some(query)).unwrap();
        let by_predicate = index.search("a photo", &opts(Filter::Predicate(&is_even)), Some(query)).unwrap();
        assert_eq!(by_list, by_predicate, "{mode:?}");
        assert_eq!(by_list.len(), 8, "{mode:?}");
        let none = index.search("a photo", &opts(Filter::Ids(&[])), Some(query)).unwrap();
        assert!(none.is_empty(), "{mode:?}: {none:?}");
    }
    // More like this photo, among the allowed: the photo itself is left out.
    let opts = SearchOptions { k: 5, mode: SearchMode::Dense, filter: Filter::Ids(&even), ..Default::default() };
    let hits = index.search_by_image(4, &opts).unwrap();
    assert_eq!(hits.len(), 5);
    assert!(hits.iter().all(|h| h.id % 2 == 0 && h.id != 4), "{hits:?}");
}

#[test]
fn the_c_api_filters_by_list_and_by_predicate() {
    use avg::ffi::*;
    let dir = tempfile::tempdir().unwrap();
    let data = Synthetic::new(16, 60, 6, 0.5, 21);
    let path = std::ffi::CString::new(dir.path().join("index").to_str().unwrap()).unwrap();
    {
        let index = Index::open(dir.path().join("index"), Some(&small_config(16))).unwrap();
        data.fill_with_texts(&index);
        index.save().unwrap();
    }
    unsafe extern "C" fn multiple_of_three(user_data: *mut std::ffi::c_void, id: u64) -> bool {
        *user_data.cast::<usize>() += 1;
        id.is_multiple_of(3)
    }
    unsafe {
        let mut index = std::ptr::null_mut();
        assert_eq!(avg_index_open(path.as_ptr(), std::ptr::null(), &mut index, std::ptr::null_mut()), AvgStatus::Ok);
        let mut options = std::mem::zeroed::<AvgSearchOptions>();
        avg_search_options_default(&mut options, size_of::<AvgSearchOptions>(), std::ptr::null_mut());
        options.mode = AVG_SEARCH_MODE_DENSE;
        options.query_vectors = data.captions[9][0].as_ptr();
        options.dim = 16;
        let mut hits = [AvgHit { id: 0, score: 0.0 }; 10];
        let mut n = 0;
        let mut search = |options: &AvgSearchOptions, err| {
            let st = avg_search(index, c"".as_ptr(), options, hits.as_mut_ptr(), 10, &mut n, err);
            (st, hits[..n].iter().map(|h| h.id).collect::<Vec<_>>())
        };
        let allowed = [9u64, 12, 40, 41];
        let listed = AvgSearchOptions { allow_ids: allowed.as_ptr(), allow_count: 4, ..options };
        let (st, found) = search(&listed, std::ptr::null_mut());
        assert_eq!(st, AvgStatus::Ok);
        assert_eq!(found[0], 9);
        let mut sorted = found.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, allowed);
        let (_, none) = search(&AvgSearchOptions { allow_count: 0, ..listed }, std::ptr::null_mut());
        assert!(none.is_empty());

        let mut calls = 0usize;
        let by_predicate =
            AvgSearchOptions { allow_fn: Some(multiple_of_three), allow_user_data: (&raw mut calls).cast(), ..options };
        let (st, found) = search(&by_predicate, std::ptr::null_mut());
        assert_eq!((st, found.len()), (AvgStatus::Ok, 10));
        assert!(found.iter().all(|id| id % 3 == 0), "{found:?}");
        assert_eq!(calls, 60, "once per image");
        let mut err = std::ptr::null_mut();
        let both = AvgSearchOptions { allow_ids: allowed.as_ptr(), allow_count: 4, ..by_predicate };
        assert_eq!(search(&both, &mut err).0, AvgStatus::InvalidArgument);
        assert!(std::ffi::CStr::from_ptr(avg_error_message(err)).to_str().unwrap().contains("not both"));
        avg_error_free(err);
        avg_index_free(index);
    }
}
