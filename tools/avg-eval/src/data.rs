//! The caption data (Flickr8k, Flickr30K, nocaps): captions by image, the split's shuffle, and the sentence vectors of
//! every caption (cached in a safetensors file, so that reruns skip the encoder).

use crate::die;
use avg::TextEncoder;
use safetensors::{tensor::TensorView, Dtype, SafeTensors};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Instant;

/// (image name, its captions) in file order.
pub(crate) fn flickr8k(data: &Path) -> Vec<(String, Vec<String>)> {
    let path = data.join("flickr8k/Flickr8k.token.txt");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| die(&format!("{}: {e}", path.display())));
    let mut by_image: BTreeMap<String, Vec<(usize, String)>> = BTreeMap::new();
    for line in text.lines() {
        let Some((key, caption)) = line.split_once('\t') else { continue };
        let Some((name, k)) = key.split_once('#') else { continue };
        by_image.entry(name.to_owned()).or_default().push((k.parse().unwrap_or(0), caption.trim().to_owned()));
    }
    by_image
        .into_iter()
        .filter(|(_, c)| c.len() >= 2)
        .map(|(n, mut c)| {
            c.sort();
            (n, c.into_iter().map(|(_, t)| t).collect())
        })
        .collect()
}

pub(crate) fn flickr30k_test(data: &Path) -> Vec<(String, Vec<String>)> {
    let path = data.join("flickr30k-test/f30k_test.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| die(&format!("{}: {e}", path.display())));
    let map: BTreeMap<String, Vec<String>> = serde_json::from_str(&text).unwrap_or_else(|e| die(&format!("{e}")));
    // Each entry lists five captions and then the image's path.
    map.into_iter().map(|(n, c)| (n, c.into_iter().filter(|s| !s.ends_with(".jpg")).collect())).collect()
}

/// (image id, its captions) of a file in the nocaps layout: one JSON array of
/// `{"image_id": N, "captions": [...]}`, sorted by id. Images with fewer than `min`
/// captions are left out (a query needs captions the index never saw).
pub(crate) fn nocaps(path: &Path, min: usize) -> Vec<(String, Vec<String>)> {
    #[derive(serde::Deserialize)]
    struct Entry {
        image_id: u64,
        captions: Vec<String>,
    }
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| die(&format!("{}: {e}", path.display())));
    let mut entries: Vec<Entry> =
        serde_json::from_str(&text).unwrap_or_else(|e| die(&format!("{}: {e}", path.display())));
    entries.sort_by_key(|e| e.image_id);
    let all = entries.len();
    let kept: Vec<_> = entries
        .into_iter()
        .filter(|e| e.captions.len() >= min)
        .map(|e| (e.image_id.to_string(), e.captions.into_iter().map(|c| c.trim().to_owned()).collect()))
        .collect();
    if kept.len() < all {
        eprintln!("{}: {} of {all} images have fewer than {min} captions, left out", path.display(), all - kept.len());
    }
    kept
}

/// Removes from `images` every photo that is also in `others`, and says how many. Flickr30K
/// holds Flickr8k's photos with the same captions; both name a photo by its Flickr id
/// (`1000268201_693b08cb0e.jpg` in Flickr8k, `1000268201.jpg` in Flickr30K).
pub(crate) fn remove_same_photos(images: &mut Vec<(String, Vec<String>)>, others: &[(String, Vec<String>)]) -> usize {
    let flickr_id = |name: &str| name.split(['_', '.']).next().unwrap_or_default().to_owned();
    let ids: std::collections::HashSet<String> = others.iter().map(|(n, _)| flickr_id(n)).collect();
    let before = images.len();
    images.retain(|(n, _)| !ids.contains(&flickr_id(n)));
    before - images.len()
}

pub(crate) fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut s = seed;
    let mut next = || {
        s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    for i in (1..items.len()).rev() {
        items.swap(i, (next() % (i as u64 + 1)) as usize);
    }
}

/// Sentence vectors, cached on disk by text so that sweeps embed each caption once.
pub(crate) fn embed_all(encoder: &TextEncoder, texts: &[&String], cache: &Path) -> HashMap<String, Vec<f32>> {
    let mut known = read_cache(cache);
    let todo: Vec<&str> = texts.iter().filter(|t| !known.contains_key(t.as_str())).map(|t| t.as_str()).collect();
    if !todo.is_empty() {
        let t0 = Instant::now();
        // The cache also holds other data sets' captions: count this run's new ones.
        for (i, chunk) in todo.chunks(1024).enumerate() {
            for (t, v) in chunk.iter().zip(encoder.embed(chunk).unwrap_or_else(|e| die(&e.to_string()))) {
                known.insert(t.to_string(), v);
            }
            eprintln!("embedded {}/{} uncached captions", i * 1024 + chunk.len(), todo.len());
        }
        eprintln!("embedding: {:.1} captions/s", todo.len() as f64 / t0.elapsed().as_secs_f64());
        write_cache(cache, &known).unwrap_or_else(|e| die(&format!("{}: {e}", cache.display())));
    }
    known
}

/// The cache of caption vectors: a safetensors file holding one f32 tensor, a row per
/// caption, with the captions (a JSON list, in row order) in its metadata. A missing or
/// unreadable cache is empty.
pub(crate) fn read_cache(path: &Path) -> HashMap<String, Vec<f32>> {
    let read = || -> Option<HashMap<String, Vec<f32>>> {
        let bytes = std::fs::read(path).ok()?;
        let (_, meta) = SafeTensors::read_metadata(&bytes).ok()?;
        let texts: Vec<String> = serde_json::from_str(meta.metadata().as_ref()?.get(CACHE_TEXTS)?).ok()?;
        let st = SafeTensors::deserialize(&bytes).ok()?;
        let t = st.tensor(CACHE_VECTORS).ok()?;
        let (&[rows, dim], Dtype::F32) = (t.shape(), t.dtype()) else { return None };
        let values: Vec<f32> = t.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        (rows == texts.len()).then(|| texts.into_iter().zip(values.chunks(dim.max(1)).map(<[f32]>::to_vec)).collect())
    };
    read().unwrap_or_default()
}

pub(crate) fn write_cache(path: &Path, known: &HashMap<String, Vec<f32>>) -> Result<(), String> {
    let dim = known.values().next().map_or(0, Vec::len);
    let (texts, bytes): (Vec<&String>, Vec<Vec<u8>>) =
        known.iter().map(|(t, v)| (t, v.iter().flat_map(|x| x.to_le_bytes()).collect())).unzip();
    let bytes = bytes.concat();
    let view = TensorView::new(Dtype::F32, vec![texts.len(), dim], &bytes).map_err(|e| e.to_string())?;
    let meta = HashMap::from([(CACHE_TEXTS.to_owned(), serde_json::to_string(&texts).unwrap())]);
    let out = safetensors::serialize([(CACHE_VECTORS, view)], Some(meta)).map_err(|e| e.to_string())?;
    std::fs::write(path, out).map_err(|e| e.to_string())
}

pub(crate) const CACHE_TEXTS: &str = "texts";
pub(crate) const CACHE_VECTORS: &str = "vectors";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedding_cache_reads_back_what_it_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.safetensors");
        assert!(read_cache(&path).is_empty(), "a missing cache is empty");
        let known = HashMap::from([("a dog".to_owned(), vec![1.0, -2.5, 3.0]), ("a cat".into(), vec![0.0, 0.5, 1e-7])]);
        write_cache(&path, &known).unwrap();
        assert_eq!(read_cache(&path), known);
        std::fs::write(&path, b"not safetensors").unwrap();
        assert!(read_cache(&path).is_empty(), "an unreadable cache is empty");
    }

    #[test]
    fn a_photo_of_both_data_sets_is_removed_by_its_flickr_id() {
        let photo = |name: &str| (name.to_owned(), vec!["a caption".to_owned()]);
        let mut f8k = vec![photo("1000268201_693b08cb0e.jpg"), photo("1001773457_577c3a7d70.jpg")];
        let f30k = [photo("1000268201.jpg"), photo("1016887272.jpg")];
        assert_eq!(remove_same_photos(&mut f8k, &f30k), 1);
        assert_eq!(f8k, vec![photo("1001773457_577c3a7d70.jpg")]);
    }
}
