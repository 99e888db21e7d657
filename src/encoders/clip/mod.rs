//! CLIP's two towers (Radford et al. 2021) in the Hugging Face layout: a vision
//! transformer over image patches and a causal text transformer, each projected into
//! the joint space and L2-normalised. Loads ViT-B/32, ViT-B/16, ViT-L/14 and
//! ViT-L/14-336 checkpoints (`config.json`, `model.safetensors` or `pytorch_model.bin`,
//! `tokenizer.json`, optionally `preprocessor_config.json`).

mod model;

use model::ClipConfig;

use super::image::{decode, decode_file, Preprocess};
use super::{model_config, padded_ids, read, read_json, text_tokenizer};
use crate::file::open_at_most;
use crate::limits::MAX_MODEL_WEIGHTS_BYTES;
use crate::{device, Error, Result};
use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::{linear_no_bias, Linear, VarBuilder};
use image::RgbImage;
use model::{TextTower, VisionTower};
use std::collections::HashMap;
use std::path::Path;

/// A photo to embed: a file, or the encoded bytes of one.
#[derive(Debug, Clone, Copy)]
pub enum ImageSource<'a> {
    File(&'a Path),
    Bytes(&'a [u8]),
}

impl ImageSource<'_> {
    pub fn decode(&self) -> Result<RgbImage> {
        match self {
            ImageSource::File(p) => decode_file(p),
            ImageSource::Bytes(b) => decode(b),
        }
    }
}

/// Images per forward pass of the vision tower.
const IMAGE_BATCH: usize = 16;
/// Texts per forward pass of the text tower.
const TEXT_BATCH: usize = 64;

/// CLIP's image and text encoders, loaded from a local checkpoint directory.
pub struct Clip {
    config: ClipConfig,
    text: TextTower,
    vision: VisionTower,
    text_projection: Linear,
    visual_projection: Linear,
    text_tokenizer: tokenizers::Tokenizer,
    preprocess: Preprocess,
    device: Device,
    fingerprint: String,
}

impl std::fmt::Debug for Clip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clip").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Clip {
    /// Loads a checkpoint directory on `device` ("cpu", "cuda:N").
    pub fn load(dir: impl AsRef<Path>, device: &str) -> Result<Self> {
        Self::load_on(dir.as_ref(), &device::open(device)?)
    }

    pub(crate) fn load_on(dir: &Path, device: &Device) -> Result<Self> {
        let config = ClipConfig::from_json(&model_config(dir)?)?;
        let prep_path = dir.join("preprocessor_config.json");
        let preprocess = if prep_path.exists() {
            Preprocess::from_json(&read_json(&prep_path)?, config.image_size)?
        } else {
            Preprocess::openai(config.image_size)
        };
        let text_tokenizer = text_tokenizer(&read(&dir.join("tokenizer.json"))?, config.max_position_embeddings)?;
        let vb = VarBuilder::from_tensors(weights(dir, device)?, DType::F32, device);
        let p = config.projection_dim;
        Ok(Clip {
            text: TextTower::new(vb.pp("text_model"), &config)?,
            vision: VisionTower::new(vb.pp("vision_model"), &config)?,
            text_projection: linear_no_bias(config.text.hidden_size, p, vb.pp("text_projection"))?,
            visual_projection: linear_no_bias(config.vision.hidden_size, p, vb.pp("visual_projection"))?,
            config,
            text_tokenizer,
            preprocess,
            device: device.clone(),
            fingerprint: fingerprint(dir)?,
        })
    }

    /// CRC-32 of the checkpoint's files (config, weights, tokenizer, preprocessing) in 8
    /// hex digits: an index records it, and opening the index with a checkpoint of other
    /// bytes is refused.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Length of the joint-space vectors (`projection_dim`).
    pub fn dim(&self) -> usize {
        self.config.projection_dim
    }

    pub fn preprocess(&self) -> &Preprocess {
        &self.preprocess
    }

    /// Unit-length text vectors, in order.
    pub fn embed_texts(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(TEXT_BATCH) {
            for t in chunk {
                crate::limits::check_text("text", t)?;
            }
            let (ids, lens, s) = padded_ids(&self.text_tokenizer, chunk, 0)?;
            let pooled: Vec<u32> = lens
                .iter()
                .enumerate()
                .map(|(row, &n)| (row * s + self.pooled_position(&ids[row * s..row * s + n])) as u32)
                .collect();
            if let Some(&bad) = ids.iter().find(|&&i| i as usize >= self.config.vocab_size) {
                return Err(Error::Model(format!(
                    "tokenizer.json gives id {bad}, beyond vocab_size {}",
                    self.config.vocab_size
                )));
            }
            let ids = Tensor::from_vec(ids, (chunk.len(), s), &self.device)?;
            let pooled = Tensor::from_vec(pooled, chunk.len(), &self.device)?;
            let x = self.text_projection.forward(&self.text.forward(&ids, &pooled)?)?;
            out.extend(unit_rows(&x)?);
        }
        Ok(out)
    }

    /// Where the reference reads a text's embedding: its end token (with the legacy
    /// id 2, the highest id), or the last token when there is none.
    fn pooled_position(&self, ids: &[u32]) -> usize {
        let eos = self.config.eos_token_id;
        let found = if eos == 2 {
            ids.iter().enumerate().rev().max_by_key(|(_, &id)| id).map(|(i, _)| i)
        } else {
            ids.iter().position(|&id| id == eos)
        };
        found.unwrap_or(ids.len().saturating_sub(1))
    }

    /// Unit-length image vectors of preprocessed pixel tensors (`Preprocess::pixels`).
    pub fn embed_pixels(&self, pixels: &[Vec<f32>]) -> Result<Vec<Vec<f32>>> {
        let side = self.config.image_size;
        let mut out = Vec::with_capacity(pixels.len());
        for chunk in pixels.chunks(IMAGE_BATCH) {
            if let Some(p) = chunk.iter().find(|p| p.len() != 3 * side * side) {
                return Err(Error::DimensionMismatch { expected: 3 * side * side, got: p.len() });
            }
            let flat: Vec<f32> = chunk.concat();
            let x = Tensor::from_vec(flat, (chunk.len(), 3, side, side), &self.device)?;
            out.extend(unit_rows(&self.visual_projection.forward(&self.vision.forward(&x)?)?)?);
        }
        Ok(out)
    }

    /// Decodes and preprocesses photos on all cores, then embeds the good ones in
    /// batches. One result per photo: a photo that cannot be read is an error for it
    /// alone. An error of the model itself fails the call.
    pub fn embed_images(&self, sources: &[ImageSource]) -> Result<Vec<Result<Vec<f32>>>> {
        let mut good = Vec::new();
        let decoded: Vec<Result<()>> = parallel_map(sources, |s| s.decode().map(|img| self.preprocess.pixels(&img)))
            .into_iter()
            .map(|p| p.map(|pixels| good.push(pixels)))
            .collect();
        let mut vectors = self.embed_pixels(&good)?.into_iter();
        Ok(decoded.into_iter().map(|d| d.map(|()| vectors.next().expect("one vector per good photo"))).collect())
    }
}

/// The checkpoint's tensors: `model.safetensors`, else `pytorch_model.bin`.
/// See [`Clip::fingerprint`]; the weights are read again (from the page cache, at
/// gigabytes a second) rather than kept.
fn fingerprint(dir: &Path) -> Result<String> {
    let mut crc = crc32fast::Hasher::new();
    let files = ["config.json", "model.safetensors", "pytorch_model.bin", "tokenizer.json", "preprocessor_config.json"];
    for path in files.iter().map(|f| dir.join(f)).filter(|p| p.exists()) {
        let (mut file, _) = open_at_most(&path, MAX_MODEL_WEIGHTS_BYTES)?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            match std::io::Read::read(&mut file, &mut buf).map_err(|e| Error::io(&path, e))? {
                0 => break,
                n => crc.update(&buf[..n]),
            }
        }
    }
    Ok(format!("{:08x}", crc.finalize()))
}

fn weights(dir: &Path, device: &Device) -> Result<HashMap<String, Tensor>> {
    if dir.join("model.safetensors").exists() {
        return super::model_tensors(dir, device);
    }
    let path = dir.join("pytorch_model.bin");
    if !path.exists() {
        return Err(Error::io(
            &path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "neither model.safetensors nor pytorch_model.bin"),
        ));
    }
    // Candle reads it by path: refuse a pipe or device (which would block or never end)
    // and an oversized file first.
    open_at_most(&path, MAX_MODEL_WEIGHTS_BYTES)?;
    let tensors = candle_core::pickle::read_all(&path).map_err(|e| Error::corrupt(&path, e.to_string()))?;
    tensors.into_iter().map(|(n, t)| Ok((n, t.to_device(device)?))).collect()
}

/// Rows of `x` [B, D] scaled to unit length.
fn unit_rows(x: &Tensor) -> Result<Vec<Vec<f32>>> {
    let norm = x.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
    Ok(x.broadcast_div(&norm)?.to_vec2::<f32>()?)
}

/// `f` over `items` on all cores, results in order.
fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(items.len().max(1));
    let per = items.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = items.chunks(per).map(|c| s.spawn(|| c.iter().map(&f).collect::<Vec<R>>())).collect();
        handles.into_iter().flat_map(|h| h.join().expect("a preprocessing thread panicked")).collect()
    })
}
