//! Records to bytes and back: ids, keys, captions and texts as JSON, vectors as safetensors.

use super::Shape;
use crate::records::{Caption, Records};
use crate::vectors::{SavedAt, VectorStorage, Vectors};
use crate::vokens::Vokens;
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
    /// Format 2; absent in format 1.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    texts: Vec<String>,
}

const IMAGE_VECTORS: &str = "image_vectors";
const CAPTION_VECTORS: &str = "caption_vectors";
const CAPTION_HAS_VECTOR: &str = "caption_has_vector";
/// Format 4; absent before (texts had no vectors).
const TEXT_VECTORS: &str = "text_vectors";
const TEXT_HAS_VECTOR: &str = "text_has_vector";
const VOKENS: &str = "vokens";
const PENDING_VOKENS: &str = "pending_vokens";

/// The records file, the vectors file, and the byte at which the vectors file's image
/// vectors start.
pub(super) fn encode(r: &Records) -> Result<(Vec<u8>, Vec<u8>, u64)> {
    let images = (0..r.len())
        .map(|row| ImageEntry {
            id: r.ids[row],
            key: r.keys[row].clone(),
            captions: r.captions[row].iter().map(|c| c.text.clone()).collect(),
            texts: r.texts(row).iter().map(|t| t.text.clone()).collect(),
        })
        .collect();
    let json = serde_json::to_vec(&RecordsFile { images }).expect("records serialise");

    let (caption_vectors, caption_flags) = flat_vectors(r.captions.iter().map(Vec::as_slice), r.dim);
    let (text_vectors, text_flags) = flat_vectors((0..r.len()).map(|row| r.texts(row)), r.dim);
    let image_vectors = r.vectors.originals()?;
    let mut views = vec![(IMAGE_VECTORS, view(Dtype::F32, &image_vectors, vec![r.len(), r.dim]))];
    for (names, vectors, flags) in [
        ((CAPTION_VECTORS, CAPTION_HAS_VECTOR), &caption_vectors, &caption_flags),
        ((TEXT_VECTORS, TEXT_HAS_VECTOR), &text_vectors, &text_flags),
    ] {
        views.push((names.0, view(Dtype::F32, vectors, vec![flags.len(), r.dim])));
        views.push((names.1, view(Dtype::U8, flags, vec![flags.len()])));
    }
    for (name, vokens) in [(VOKENS, &r.vokens), (PENDING_VOKENS, &r.pending_vokens)] {
        if let Some(v) = vokens {
            views.push((name, view(Dtype::U32, v.flat(), vec![r.len(), v.width()])));
        }
    }
    let tensors = safetensors::serialize(views, None).expect("safetensors serialise");
    let st = SafeTensors::deserialize(&tensors).expect("just serialised");
    let offset = data_offset(&tensors, st.tensor(IMAGE_VECTORS).expect("just serialised").data());
    Ok((json, tensors, offset))
}

/// Where `data`, a slice of `file`, starts in it.
fn data_offset(file: &[u8], data: &[u8]) -> u64 {
    (data.as_ptr() as usize - file.as_ptr() as usize) as u64
}

/// The records of a records file and its vectors file (`path`, read as `tensors`), the
/// image vectors kept as `storage`.
pub(super) fn decode(
    path: &Path,
    shape: &Shape,
    json: &[u8],
    tensors: &[u8],
    storage: VectorStorage,
) -> Result<Records> {
    let dim = shape.dim;
    let corrupt = |reason: String| Error::corrupt(path, reason);
    let file: RecordsFile = serde_json::from_slice(json).map_err(|e| corrupt(format!("records: {e}")))?;
    let st = SafeTensors::deserialize(tensors).map_err(|e| corrupt(e.to_string()))?;
    let n = file.images.len();
    let c: usize = file.images.iter().map(|i| i.captions.len()).sum();
    let t: usize = file.images.iter().map(|i| i.texts.len()).sum();
    let image_bytes = read_tensor(&st, IMAGE_VECTORS, Dtype::F32, &[n, dim]).map_err(corrupt)?;
    let saved = SavedAt { path: path.to_path_buf(), offset: data_offset(tensors, image_bytes) };
    let vectors = Vectors::from_saved(dim, storage, image_bytes, &saved).map_err(corrupt)?;
    let mut captions = StoredVectors::read(&st, (CAPTION_VECTORS, CAPTION_HAS_VECTOR), c, dim).map_err(corrupt)?;
    let mut texts = match st.names().contains(&TEXT_VECTORS) {
        true => StoredVectors::read(&st, (TEXT_VECTORS, TEXT_HAS_VECTOR), t, dim).map_err(corrupt)?,
        false => StoredVectors::none(),
    };

    let mut records = Records::with_vectors(vectors);
    records.reserve(n);
    for entry in file.images {
        if records.contains(entry.id) {
            return Err(corrupt(format!("image id {} appears twice", entry.id)));
        }
        let caption_list =
            entry.captions.into_iter().map(|text| captions.next(text)).collect::<std::result::Result<_, _>>();
        let text_list = entry.texts.into_iter().map(|text| texts.next(text)).collect::<std::result::Result<_, _>>();
        let (caption_list, text_list) = (caption_list.map_err(corrupt)?, text_list.map_err(corrupt)?);
        records.push(entry.id, entry.key, caption_list, text_list);
    }
    let read_vokens = |name: &str| -> Result<Option<Vokens>> {
        if !st.names().contains(&name) {
            return Ok(None);
        }
        let bytes = read_tensor(&st, name, Dtype::U32, &[n, shape.voken_len + 1]).map_err(corrupt)?;
        let codes = bytes.chunks_exact(4).map(|b| u32::from_le_bytes(b.try_into().unwrap())).collect();
        let v = Vokens::from_stored(shape.voken_len, shape.codebook_size, codes, &records.ids);
        v.map(Some).map_err(|e| corrupt(format!("{name}: {e}")))
    };
    records.vokens = read_vokens(VOKENS)?;
    records.pending_vokens = read_vokens(PENDING_VOKENS)?;
    Ok(records)
}

/// Texts' vectors as stored: one row per text (zeros where it has none) and a flag.
fn flat_vectors<'a>(texts: impl Iterator<Item = &'a [Caption]>, dim: usize) -> (Vec<f32>, Vec<u8>) {
    let all: Vec<&Caption> = texts.flatten().collect();
    let mut vectors = Vec::with_capacity(all.len() * dim);
    for c in &all {
        match &c.vector {
            Some(v) => vectors.extend_from_slice(v),
            None => vectors.resize(vectors.len() + dim, 0.0),
        }
    }
    (vectors, all.iter().map(|c| c.vector.is_some() as u8).collect())
}

/// Stored texts' vectors, handed out in storage order: decoded only for the texts
/// flagged as having one (rows of zeros stand for the rest).
struct StoredVectors<'a> {
    bytes: &'a [u8],
    flags: &'a [u8],
    name: &'a str,
    dim: usize,
    next: usize,
}

impl<'a> StoredVectors<'a> {
    fn read(st: &'a SafeTensors, names: (&'a str, &str), rows: usize, dim: usize) -> std::result::Result<Self, String> {
        let bytes = read_tensor(st, names.0, Dtype::F32, &[rows, dim])?;
        let flags = read_tensor(st, names.1, Dtype::U8, &[rows])?;
        Ok(StoredVectors { bytes, flags, name: names.0, dim, next: 0 })
    }

    /// Texts stored before they had vectors.
    fn none() -> Self {
        StoredVectors { bytes: &[], flags: &[], name: "", dim: 0, next: 0 }
    }

    fn next(&mut self, text: String) -> std::result::Result<Caption, String> {
        let i = self.next;
        self.next += 1;
        if self.flags.get(i).is_none_or(|&f| f == 0) {
            return Ok(Caption { text, vector: None });
        }
        let mut v = vec![0f32; self.dim];
        crate::vectors::decode_row(&self.bytes[i * self.dim * 4..(i + 1) * self.dim * 4], &mut v)
            .map_err(|at| format!("{}: non-finite value in row {i} at element {at}", self.name))?;
        Ok(Caption { text, vector: Some(v) })
    }
}

/// Plain numbers that are stored as their little-endian bytes.
pub(super) trait Plain: Copy {}
impl Plain for f32 {}
impl Plain for u32 {}
impl Plain for u8 {}
impl Plain for i64 {}

fn view<T: Plain>(dtype: Dtype, data: &[T], shape: Vec<usize>) -> TensorView<'_> {
    TensorView::new(dtype, shape, le_bytes(data)).expect("shape matches data")
}

pub(super) fn le_bytes<T: Plain>(data: &[T]) -> &[u8] {
    // SAFETY: `Plain` types have no padding and any byte pattern is a valid u8; the
    // format is little-endian, which the compile_error above guarantees for this target.
    unsafe { std::slice::from_raw_parts(data.as_ptr().cast::<u8>(), std::mem::size_of_val(data)) }
}

/// Model weights (any device) as a safetensors file: bytes stay U8, integers I64 (ids),
/// the rest is F32.
pub(super) fn encode_tensors(tensors: &[(String, candle_core::Tensor)]) -> Result<Vec<u8>> {
    enum Host {
        F32(Vec<f32>),
        U8(Vec<u8>),
        I64(Vec<i64>),
    }
    let host: Vec<(&str, Host, Vec<usize>)> = tensors
        .iter()
        .map(|(n, t)| {
            let flat = t.flatten_all()?;
            let data = match t.dtype() {
                candle_core::DType::U8 => Host::U8(flat.to_vec1::<u8>()?),
                candle_core::DType::I64 => Host::I64(flat.to_vec1::<i64>()?),
                _ => Host::F32(flat.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()?),
            };
            Ok((n.as_str(), data, t.dims().to_vec()))
        })
        .collect::<Result<_>>()?;
    let views = host.iter().map(|(n, data, s)| {
        let v = match data {
            Host::F32(v) => view(Dtype::F32, v, s.clone()),
            Host::U8(v) => view(Dtype::U8, v, s.clone()),
            Host::I64(v) => view(Dtype::I64, v, s.clone()),
        };
        (*n, v)
    });
    Ok(safetensors::serialize(views, None).expect("safetensors serialise"))
}

pub(super) fn decode_tensors(
    path: &Path,
    bytes: &[u8],
    device: &candle_core::Device,
) -> Result<std::collections::HashMap<String, candle_core::Tensor>> {
    candle_core::safetensors::load_buffer(bytes, device).map_err(|e| Error::corrupt(path, e.to_string()))
}

fn read_tensor<'a>(
    st: &'a SafeTensors,
    name: &str,
    dtype: Dtype,
    shape: &[usize],
) -> std::result::Result<&'a [u8], String> {
    let t = st.tensor(name).map_err(|e| format!("{name}: {e}"))?;
    if t.dtype() != dtype || t.shape() != shape {
        return Err(format!("{name}: expected {dtype:?} {shape:?}, found {:?} {:?}", t.dtype(), t.shape()));
    }
    Ok(t.data())
}
