//! Shared by the fuzz targets and the seed writer: an index directory as one byte
//! string, and the manifest fix-up that lets mutated files past the integrity check.

use std::path::Path;

/// Files as `[name length u8][name][length u32 LE][bytes]`, repeated.
pub fn frame(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, bytes) in files {
        out.push(name.len() as u8);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(bytes);
    }
    out
}

/// The inverse of `frame`, lenient: a short tail ends the list, names that could
/// leave the directory or hold odd characters are dropped.
pub fn unframe(mut data: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    while let Some((&n, rest)) = data.split_first() {
        if rest.len() < n as usize + 4 {
            break;
        }
        let (name, rest) = rest.split_at(n as usize);
        let len = u32::from_le_bytes(rest[..4].try_into().unwrap()) as usize;
        let rest = &rest[4..];
        let (bytes, rest) = rest.split_at(len.min(rest.len()));
        data = rest;
        let ok =
            !name.is_empty() && name[0] != b'.' && name.iter().all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(c));
        if ok {
            files.push((String::from_utf8(name.to_vec()).unwrap(), bytes.to_vec()));
        }
    }
    files
}

pub fn read_dir(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| (e.file_name().into_string().unwrap(), std::fs::read(e.path()).unwrap()))
        .collect();
    files.sort();
    files
}

/// Rewrites the sizes and checksums in `dir/manifest.json` for the files it names that
/// exist; a manifest that is not JSON stays as it is.
pub fn reseal(dir: &Path) {
    let path = dir.join("manifest.json");
    let Ok(Ok(mut m)) = std::fs::read(&path).map(|b| serde_json::from_slice::<serde_json::Value>(&b)) else { return };
    let fix = |r: &mut serde_json::Value| {
        let Some(file) = r.get("file").and_then(|f| f.as_str()) else { return };
        let Ok(bytes) = std::fs::read(dir.join(file)) else { return };
        r["bytes"] = bytes.len().into();
        r["checksum"] = avg::file_checksum(&bytes).into();
    };
    for key in ["records", "vectors"] {
        if let Some(r) = m.get_mut(key) {
            fix(r);
        }
    }
    if let Some(models) = m.get_mut("models").and_then(|v| v.as_object_mut()) {
        for entry in models.values_mut() {
            if let Some(w) = entry.get_mut("weights") {
                fix(w);
            }
        }
    }
    std::fs::write(&path, serde_json::to_vec(&m).unwrap()).unwrap();
}

/// Makes `dir/name` a sparse file of `size` bytes and the manifest (if JSON) say so.
pub fn forge_size(dir: &Path, name: &str, size: u64) {
    std::fs::File::create(dir.join(name)).unwrap().set_len(size).unwrap();
    let path = dir.join("manifest.json");
    let Ok(Ok(mut m)) = std::fs::read(&path).map(|b| serde_json::from_slice::<serde_json::Value>(&b)) else { return };
    let mut refs: Vec<&mut serde_json::Value> = Vec::new();
    if let Some(o) = m.as_object_mut() {
        for (key, v) in o.iter_mut() {
            match key.as_str() {
                "records" | "vectors" => refs.push(v),
                "models" => refs.extend(
                    v.as_object_mut().into_iter().flat_map(|o| o.values_mut()).filter_map(|e| e.get_mut("weights")),
                ),
                _ => {}
            }
        }
    }
    for r in refs.into_iter().filter(|r| r.get("file").and_then(|f| f.as_str()) == Some(name)) {
        r["bytes"] = size.into();
    }
    std::fs::write(&path, serde_json::to_vec(&m).unwrap()).unwrap();
}

#[path = "../../tests/common/mod.rs"]
mod common;

/// A small complete index at `path`: 12 images of dimension 4 with two captions each,
/// a trained tokenizer (N 4, M 2) and a generator trained for two epochs on a tiny BERT
/// written under `scratch`.
pub fn seed_index(path: &Path, scratch: &Path) -> avg::Index {
    let data = common::Synthetic::new(4, 12, 3, 0.5, 7);
    let model = scratch.join("bert");
    common::write_tiny_bert(&model, &common::caption_words(12, 3), 1);
    let config = avg::IndexConfig { dim: 4, codebook_size: 4, voken_len: 2, ..Default::default() };
    let index = avg::Index::open(path, Some(&config)).unwrap();
    data.fill_with_texts(&index);
    index
        .train_tokenizer(
            &avg::TokenizerTrainConfig { epochs: 2, batch_size: 8, hidden: 8, ..Default::default() },
            |_| true,
        )
        .unwrap();
    let cfg = avg::GeneratorTrainConfig {
        model_dir: model,
        epochs: 2,
        batch_size: 8,
        decoder_layers: 1,
        decoder_d_model: 16,
        beam_size: 2,
        ..Default::default()
    };
    index.train_generator(&cfg, |_| true).unwrap();
    index
}
