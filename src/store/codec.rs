//! Records to bytes and back: ids, keys and caption texts as JSON, vectors as safetensors.

use crate::records::{Caption, Records};
use crate::{Error, Result};
use safetensors::{tensor::TensorView, Dtype, SafeTensors};
use serde::{Deserialize, Serialize};
use std::path::Path;

#[cfg(target_endian = "big")]
compile_error!("the index format stores little-endian floats; big-endian targets are not supported");

#[derive(Serialize, Deserialize)]
struct RecordsFile {
    images: Vec<ImageEntry>,
}

#[derive(Serialize, Deserialize)]
struct ImageEntry {
    id: u64,
    key: Option<String>,
    captions: Vec<String>,
}

const IMAGE_VECTORS: &str = "image_vectors";
const CAPTION_VECTORS: &str = "caption_vectors";
const CAPTION_HAS_VECTOR: &str = "caption_has_vector";

pub(super) fn encode(r: &Records) -> (Vec<u8>, Vec<u8>) {
    let images = (0..r.len())
        .map(|row| ImageEntry {
            id: r.ids[row],
            key: r.keys[row].clone(),
            captions: r.captions[row].iter().map(|c| c.text.clone()).collect(),
        })
        .collect();
    let json = serde_json::to_vec(&RecordsFile { images }).expect("records serialise");

    let all: Vec<&Caption> = r.captions.iter().flatten().collect();
    let mut caption_vectors = Vec::with_capacity(all.len() * r.dim);
    let mut has_vector = Vec::with_capacity(all.len());
    for c in &all {
        match &c.vector {
            Some(v) => caption_vectors.extend_from_slice(v),
            None => caption_vectors.resize(caption_vectors.len() + r.dim, 0.0),
        }
        has_vector.push(c.vector.is_some() as u8);
    }
    let views = [
        (IMAGE_VECTORS, f32_view(&r.vectors, r.len(), r.dim)),
        (CAPTION_VECTORS, f32_view(&caption_vectors, all.len(), r.dim)),
        (CAPTION_HAS_VECTOR, TensorView::new(Dtype::U8, vec![all.len()], &has_vector).expect("valid view")),
    ];
    let tensors = safetensors::serialize(views, None).expect("safetensors serialise");
    (json, tensors)
}

pub(super) fn decode(path: &Path, dim: usize, json: &[u8], tensors: &[u8]) -> Result<Records> {
    let corrupt = |reason: String| Error::corrupt(path, reason);
    let file: RecordsFile = serde_json::from_slice(json).map_err(|e| corrupt(format!("records: {e}")))?;
    let st = SafeTensors::deserialize(tensors).map_err(|e| corrupt(e.to_string()))?;
    let n = file.images.len();
    let c: usize = file.images.iter().map(|i| i.captions.len()).sum();
    let image_vectors = read_f32(&st, IMAGE_VECTORS, n, dim).map_err(corrupt)?;
    let caption_vectors = read_f32(&st, CAPTION_VECTORS, c, dim).map_err(corrupt)?;
    let has_vector = read_tensor(&st, CAPTION_HAS_VECTOR, Dtype::U8, &[c]).map_err(corrupt)?;

    let mut records = Records::new(dim);
    records.reserve(n);
    let mut next_caption = 0;
    for (row, entry) in file.images.into_iter().enumerate() {
        if records.contains(entry.id) {
            return Err(corrupt(format!("image id {} appears twice", entry.id)));
        }
        let captions = entry
            .captions
            .into_iter()
            .map(|text| {
                let i = next_caption;
                next_caption += 1;
                let vector = (has_vector[i] != 0).then(|| caption_vectors[i * dim..(i + 1) * dim].to_vec());
                Caption { text, vector }
            })
            .collect();
        records.push(entry.id, entry.key, &image_vectors[row * dim..(row + 1) * dim], captions);
    }
    Ok(records)
}

fn f32_view(data: &[f32], rows: usize, dim: usize) -> TensorView<'_> {
    TensorView::new(Dtype::F32, vec![rows, dim], f32_bytes(data)).expect("valid view")
}

pub(crate) fn f32_bytes(data: &[f32]) -> &[u8] {
    // SAFETY: f32 has no padding and any byte pattern is a valid u8; the format is
    // little-endian, which the compile_error above guarantees for this target.
    unsafe { std::slice::from_raw_parts(data.as_ptr().cast::<u8>(), std::mem::size_of_val(data)) }
}

fn read_tensor<'a>(st: &'a SafeTensors, name: &str, dtype: Dtype, shape: &[usize]) -> std::result::Result<&'a [u8], String> {
    let t = st.tensor(name).map_err(|e| format!("{name}: {e}"))?;
    if t.dtype() != dtype || t.shape() != shape {
        return Err(format!("{name}: expected {dtype:?} {shape:?}, found {:?} {:?}", t.dtype(), t.shape()));
    }
    Ok(t.data())
}

pub(crate) fn read_f32(st: &SafeTensors, name: &str, rows: usize, dim: usize) -> std::result::Result<Vec<f32>, String> {
    let bytes = read_tensor(st, name, Dtype::F32, &[rows, dim])?;
    let v: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
    match v.iter().position(|x| !x.is_finite()) {
        Some(i) => Err(format!("{name}: non-finite value at element {i}")),
        None => Ok(v),
    }
}
