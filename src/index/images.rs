//! Records and vokens: adding and removing images, captions and texts, and reading them.

use super::{not_tokenized, Index, Model};
use crate::quantizer::Quantizer;
use crate::records::{check_vector, ImageRecord, NewCaption, NewCodes, NewImage, Records};
use crate::vokens::VokenStats;
use crate::{limits, Result};
use candle_core::{Device, Tensor};
use std::sync::Arc;

/// An index's shape, counts and state, from [`Index::info`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexInfo {
    pub dim: usize,
    /// N.
    pub codebook_size: usize,
    /// M.
    pub voken_len: usize,
    pub images: usize,
    pub captions: usize,
    /// Attached texts, over all images.
    pub texts: usize,
    pub tokenizer_trained: bool,
    pub generator_trained: bool,
    /// A retrained tokenizer waits for its generator ([`Index::has_pending_tokenizer`]).
    pub pending_tokenizer: bool,
    /// An image encoder is open: photos can be added and query vectors computed.
    pub image_encoder_open: bool,
    /// The image encoder directory the index records (open or not), if any.
    pub image_encoder_dir: Option<String>,
    pub read_only: bool,
    /// Bytes of memory the image vectors take in the open form
    /// ([`crate::IndexConfig::vector_storage`]).
    pub vector_bytes: usize,
}

/// Images' codes and the tokenizer that gave them.
type Codes = (Vec<Vec<u32>>, Arc<Quantizer>);

impl Index {
    /// Adds images, all or none: a bad vector, a duplicate id or a bad key rejects the
    /// batch. Once a tokenizer is trained, new images get their vokens at once.
    pub fn add_images(&self, images: &[NewImage]) -> Result<()> {
        self.writable()?;
        // Quantise outside the lock; redo it under the lock only for a tokenizer that was
        // replaced meanwhile.
        let (tokenizer, pending) = {
            let st = self.state.read();
            (st.tokenizer.as_ref().map(|t| t.model.clone()), st.pending_tokenizer.as_ref().map(|t| t.model.clone()))
        };
        let codes = self.codes_with(tokenizer, images)?;
        let pending = self.codes_with(pending, images)?;
        let mut st = self.state.write();
        let codes = self.codes_again(st.tokenizer.as_ref(), codes, images)?;
        let pending = self.codes_again(st.pending_tokenizer.as_ref(), pending, images)?;
        st.records.add_images(images, NewCodes { serving: codes.as_deref(), pending: pending.as_deref() })
    }

    /// The codes `tokenizer` gives the images, with the tokenizer that gave them.
    fn codes_with(&self, tokenizer: Option<Arc<Quantizer>>, images: &[NewImage]) -> Result<Option<Codes>> {
        tokenizer.map(|t| Ok((self.quantize_images(&t, images)?, t))).transpose()
    }

    /// The codes of the tokenizer `now` installed: those computed before if they came
    /// from it, else computed again.
    fn codes_again(
        &self,
        now: Option<&Model<Quantizer>>,
        before: Option<Codes>,
        images: &[NewImage],
    ) -> Result<Option<Vec<Vec<u32>>>> {
        match (now, before) {
            (Some(n), Some((codes, t))) if Arc::ptr_eq(&n.model, &t) => Ok(Some(codes)),
            (Some(n), _) => self.quantize_images(&n.model, images).map(Some),
            (None, _) => Ok(None),
        }
    }

    fn quantize_images(&self, q: &Quantizer, images: &[NewImage]) -> Result<Vec<Vec<u32>>> {
        let d = self.config.dim;
        for img in images {
            check_vector(d, img.vector, || format!("vector of image {}", img.id))?;
        }
        let flat: Vec<f32> = images.iter().flat_map(|i| i.vector.iter().copied()).collect();
        encode_rows(q, &flat, d, &self.device)
    }

    /// Appends captions to an image. With an image encoder, captions given without a
    /// text vector get one from its text tower.
    pub fn add_captions(&self, image: u64, captions: &[NewCaption]) -> Result<()> {
        self.writable()?;
        let computed = self.embed_missing(captions)?;
        self.state.write().records.add_captions(image, &with_vectors(captions, &computed))
    }

    /// Attaches texts that describe an image (tags, an album or file name, the image's
    /// own caption, a query a user chose it with) for indexing: `train_generator`
    /// teaches the generator to write the image's vokens from each, so that an image is
    /// found by text even when it has no training captions. With an image encoder, each
    /// text also gets a vector from its text tower, and the dense scan (and every route
    /// that weighs the dot product) scores the image by the best of its vector's and its
    /// texts' similarities to the query: a photo titled "beach" is found by "beach".
    /// Unlike captions, texts never train the tokenizer's alignment.
    pub fn attach_texts(&self, image: u64, texts: &[&str]) -> Result<()> {
        self.writable()?;
        let texts: Vec<NewCaption> = texts.iter().map(|&text| NewCaption { text, vector: None }).collect();
        let computed = self.embed_missing(&texts)?;
        self.state.write().records.attach_texts(image, &with_vectors(&texts, &computed))
    }

    /// The image encoder's text vectors of the texts given without one (none without an
    /// encoder). Computed outside the lock.
    fn embed_missing(&self, texts: &[NewCaption]) -> Result<Vec<Vec<f32>>> {
        match &self.clip {
            Some(clip) if texts.iter().any(|c| c.vector.is_none()) => {
                let missing: Vec<&str> = texts.iter().filter(|c| c.vector.is_none()).map(|c| c.text).collect();
                limits::check_batch(missing.len())?;
                clip.embed_texts(&missing)
            }
            _ => Ok(Vec::new()),
        }
    }

    /// Removes an image, its captions and its texts.
    pub fn remove_image(&self, image: u64) -> Result<()> {
        self.writable()?;
        self.state.write().records.remove(image)
    }

    /// What the index holds and what it can do now, in one read.
    pub fn info(&self) -> IndexInfo {
        let st = self.state.read();
        IndexInfo {
            dim: self.config.dim,
            codebook_size: self.config.codebook_size,
            voken_len: self.config.voken_len,
            images: st.records.len(),
            captions: st.records.caption_count(),
            texts: st.records.text_count(),
            tokenizer_trained: st.tokenizer.is_some(),
            generator_trained: st.generator.is_some(),
            pending_tokenizer: st.pending_tokenizer.is_some(),
            image_encoder_open: self.clip.is_some(),
            image_encoder_dir: self.image_encoder_dir().map(str::to_owned),
            read_only: self.is_read_only(),
            vector_bytes: st.records.vectors.bytes(),
        }
    }

    /// The image encoder directory the index records (open or not), if any.
    pub fn image_encoder_dir(&self) -> Option<&str> {
        self.encoder.as_ref().map(|e| e.dir.as_str())
    }

    pub fn image_count(&self) -> usize {
        self.state.read().records.len()
    }

    pub fn caption_count(&self) -> usize {
        self.state.read().records.caption_count()
    }

    /// Image ids in storage order.
    pub fn image_ids(&self) -> Vec<u64> {
        self.state.read().records.ids.clone()
    }

    pub fn contains(&self, image: u64) -> bool {
        self.state.read().records.contains(image)
    }

    /// A copy of one image's record.
    pub fn image(&self, image: u64) -> Result<ImageRecord> {
        self.state.read().records.record(image)
    }

    /// Runs `f` on the records without copying them.
    pub(crate) fn with_records<T>(&self, f: impl FnOnce(&Records) -> T) -> T {
        f(&self.state.read().records)
    }

    /// The voken sequence of an image that searches use: M codes and its disambiguator.
    pub fn vokens(&self, image: u64) -> Result<Vec<u32>> {
        let st = self.state.read();
        let v = st.records.vokens.as_ref().ok_or_else(not_tokenized)?;
        Ok(v.row(st.records.row(image)?).to_vec())
    }

    /// Codebook usage and collisions of the vokens searches use.
    pub fn tokenizer_stats(&self) -> Result<VokenStats> {
        let st = self.state.read();
        Ok(st.records.vokens.as_ref().ok_or_else(not_tokenized)?.stats())
    }

    /// The M codes the trained tokenizer gives a vector (without a disambiguator).
    pub fn quantize(&self, vector: &[f32]) -> Result<Vec<u32>> {
        let q = self.tokenizer_model().ok_or_else(not_tokenized)?;
        check_vector(self.config.dim, vector, || "vector to quantise".into())?;
        Ok(encode_rows(&q, vector, self.config.dim, &self.device)?.remove(0))
    }
}

/// M codes of each row of `vectors` (row-major, `dim` wide), in batches.
pub(super) fn encode_rows(q: &Quantizer, vectors: &[f32], dim: usize, device: &Device) -> Result<Vec<Vec<u32>>> {
    let mut out = Vec::with_capacity(vectors.len() / dim);
    for chunk in vectors.chunks(4096 * dim) {
        let x = Tensor::from_slice(chunk, (chunk.len() / dim, dim), device)?;
        out.extend(q.encode(&x)?);
    }
    Ok(out)
}

/// `texts` with the vectors `embed_missing` computed for those given without one.
fn with_vectors<'a>(texts: &[NewCaption<'a>], computed: &'a [Vec<f32>]) -> Vec<NewCaption<'a>> {
    let mut computed = computed.iter();
    texts
        .iter()
        .map(|t| match t.vector {
            None => NewCaption { text: t.text, vector: computed.next().map(Vec::as_slice) },
            Some(_) => *t,
        })
        .collect()
}
