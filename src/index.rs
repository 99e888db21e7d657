//! `Index`: an open index directory with its records and trained models, safe to share
//! across threads.

use crate::encoders::{Clip, ImageSource};
use crate::generator::{self, Generator, GeneratorConfig, GeneratorReport, GeneratorTrainConfig, NewGenerator};
use crate::progress::{Progress, Stage};
use crate::quantizer::{self, Quantizer, QuantizerConfig, TokenizerReport, TokenizerTrainConfig};
use crate::records::{check_vector, ImageRecord, NewCaption, NewImage, Records};
use crate::search::{beam, quantized, trie::Prefix, Hit, SearchOptions};
use crate::store::{ModelEntry, ModelSave, Shape, Store, GENERATOR, TOKENIZER};
use crate::vokens::{VokenStats, Vokens};
use crate::{device, limits, Error, Result};
use candle_core::{Device, Tensor};
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// The shape of an index, fixed when it is created, and the device it computes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexConfig {
    /// Length of every image and caption vector.
    pub dim: usize,
    /// N: the number of codes in the voken codebook.
    pub codebook_size: usize,
    /// M: vokens per image (each image's sequence has one more, its disambiguator).
    pub voken_len: usize,
    /// "cpu", "cuda" or "cuda:N". Chosen at each open; not part of the stored shape.
    pub device: String,
    /// A CLIP checkpoint directory (Hugging Face layout) whose towers turn photos,
    /// captions and queries into vectors inside the library; its `projection_dim` must
    /// be `dim`. Chosen at each open and not stored: open an index with the encoder
    /// its vectors came from. `None`: the host supplies every vector.
    pub image_encoder: Option<PathBuf>,
}

impl Default for IndexConfig {
    fn default() -> Self {
        IndexConfig { dim: 512, codebook_size: 1024, voken_len: 4, device: "cpu".into(), image_encoder: None }
    }
}

impl IndexConfig {
    fn shape(&self) -> Shape {
        Shape { dim: self.dim, codebook_size: self.codebook_size, voken_len: self.voken_len }
    }

    fn validate(&self) -> Result<()> {
        let positive = |what: &str, n: usize, max: usize| {
            if n == 0 {
                return Err(Error::InvalidArgument(format!("{what} must be at least 1")));
            }
            limits::cap(what, n, max)
        };
        positive("dim", self.dim, limits::MAX_DIM)?;
        positive("codebook_size", self.codebook_size, limits::MAX_CODEBOOK_SIZE)?;
        positive("voken_len", self.voken_len, limits::MAX_VOKEN_LEN)?;
        limits::check_tensor("the codebook", &[self.codebook_size, self.dim], "lower codebook_size or dim")?;
        device::validate(&self.device)
    }
}

/// A trained model and, once saved, the manifest entry of its weights.
struct Model<T> {
    model: Arc<T>,
    saved: Option<ModelEntry>,
}

impl<T> Clone for Model<T> {
    fn clone(&self) -> Self {
        Model { model: self.model.clone(), saved: self.saved.clone() }
    }
}

#[derive(Default)]
struct State {
    records: Records,
    tokenizer: Option<Model<Quantizer>>,
    /// Trained on the current vokens; dropped when the tokenizer is retrained.
    generator: Option<Model<Generator>>,
}

/// An open index. All methods take `&self`: reads share a lock, adds take it briefly for
/// writing, training runs off the lock and swaps its result in, saves are serialised
/// among themselves.
pub struct Index {
    store: Store,
    config: IndexConfig,
    device: Device,
    state: RwLock<State>,
    /// The generation of the last committed save; held while saving.
    saved: Mutex<u64>,
    clip: Option<Clip>,
}

/// A photo to add: its id, optional external key, and where its pixels come from.
#[derive(Debug, Clone, Copy)]
pub struct NewPhoto<'a> {
    pub id: u64,
    pub key: Option<&'a str>,
    pub source: ImageSource<'a>,
}

/// Photos decoded and embedded per step of `add_photos` (and per progress report).
const PHOTO_CHUNK: usize = 32;

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index").field("path", &self.path()).field("config", &self.config).finish_non_exhaustive()
    }
}

impl Index {
    /// Opens the index at `dir`, or creates it there when `config` is given and the
    /// directory holds none. With an existing index, a given config must match its
    /// shape (the device may differ); `None` opens whatever is there, on the CPU.
    pub fn open(dir: impl AsRef<Path>, config: Option<&IndexConfig>) -> Result<Index> {
        Self::open_with(dir.as_ref(), config, false)
    }

    /// Opens an existing index for searching and reading only, under a shared lock:
    /// any number of read-only handles (in this process or others) may hold a directory
    /// at once, and no writing handle meanwhile (either side gets `Error::Locked`).
    /// Needs no write permission. Adds, removals, trainings and saves fail with
    /// `Error::WrongState`. `config`: as for `open` (it never creates an index).
    pub fn open_read_only(dir: impl AsRef<Path>, config: Option<&IndexConfig>) -> Result<Index> {
        Self::open_with(dir.as_ref(), config, true)
    }

    fn open_with(dir: &Path, config: Option<&IndexConfig>, read_only: bool) -> Result<Index> {
        if let Some(c) = config {
            c.validate()?;
        }
        let device = device::open(config.map_or("cpu", |c| &c.device))?;
        let clip = config.and_then(|c| c.image_encoder.as_deref()).map(|d| Clip::load_on(d, &device)).transpose()?;
        let store = if read_only { Store::open_read_only(dir)? } else { Store::open(dir)? };
        let Some(loaded) = store.load(&device)? else {
            if read_only {
                return Err(Error::InvalidArgument(format!("no index at {} to open read-only", dir.display())));
            }
            let config = config.ok_or_else(|| {
                Error::InvalidArgument(format!("no index at {} and no config to create one", dir.display()))
            })?;
            check_encoder(clip.as_ref(), config.dim)?;
            let records = Records::new(config.dim);
            store.commit(1, config.shape(), &records, Vec::new())?;
            let state = State { records, tokenizer: None, generator: None };
            return Ok(Index {
                store,
                config: config.clone(),
                device,
                state: RwLock::new(state),
                saved: Mutex::new(1),
                clip,
            });
        };
        let s = loaded.shape;
        let config = match config {
            Some(c) if c.shape() != s => {
                return Err(Error::ConfigMismatch(format!(
                    "{} was created with {s:?}, opened with {:?}",
                    dir.display(),
                    c.shape()
                )))
            }
            Some(c) => c.clone(),
            None => {
                IndexConfig { dim: s.dim, codebook_size: s.codebook_size, voken_len: s.voken_len, ..Default::default() }
            }
        };
        check_encoder(clip.as_ref(), s.dim)?;
        let mut models = loaded.models;
        let tokenizer = models
            .remove(TOKENIZER)
            .map(|m| {
                let bad = |e: String| Error::corrupt(dir.join("manifest.json"), format!("tokenizer: {e}"));
                let qc: QuantizerConfig =
                    serde_json::from_value(m.entry.config.clone()).map_err(|e| bad(e.to_string()))?;
                if (qc.dim, qc.codebook_size, qc.levels) != (s.dim, s.codebook_size, s.voken_len) {
                    return Err(bad(format!("{qc:?} does not fit the index shape {s:?}")));
                }
                let q = Quantizer::from_tensors(qc, m.tensors, &device).map_err(|e| bad(e.to_string()))?;
                Ok(Model { model: Arc::new(q), saved: Some(m.entry) })
            })
            .transpose()?;
        let generator = models
            .remove(GENERATOR)
            .map(|m| {
                let bad = |e: String| Error::corrupt(dir.join("manifest.json"), format!("generator: {e}"));
                let gc: GeneratorConfig =
                    serde_json::from_value(m.entry.config.clone()).map_err(|e| bad(e.to_string()))?;
                if (gc.codebook_size, gc.levels) != (s.codebook_size, s.voken_len) || tokenizer.is_none() {
                    return Err(bad("it does not fit the index's tokenizer".into()));
                }
                let g = Generator::from_saved(gc, m.tensors, &device).map_err(|e| bad(e.to_string()))?;
                Ok(Model { model: Arc::new(g), saved: Some(m.entry) })
            })
            .transpose()?;
        let state = State { records: loaded.records, tokenizer, generator };
        device.synchronize()?; // as in train_generator: uploads done before other threads read
        Ok(Index { store, config, device, state: RwLock::new(state), saved: Mutex::new(loaded.generation), clip })
    }

    /// Whether the index was opened with `open_read_only`.
    pub fn is_read_only(&self) -> bool {
        self.store.read_only()
    }

    /// The trained tokenizer now installed, if any.
    fn tokenizer_model(&self) -> Option<Arc<Quantizer>> {
        self.state.read().tokenizer.as_ref().map(|t| t.model.clone())
    }

    /// The trained generator now installed, if any.
    fn generator_model(&self) -> Option<Arc<Generator>> {
        self.state.read().generator.as_ref().map(|g| g.model.clone())
    }

    fn writable(&self) -> Result<()> {
        match self.store.read_only() {
            true => Err(Error::WrongState(format!("{} was opened read-only", self.path().display()))),
            false => Ok(()),
        }
    }

    pub fn config(&self) -> &IndexConfig {
        &self.config
    }

    pub fn path(&self) -> &Path {
        self.store.dir()
    }

    /// Adds images, all or none: a bad vector, a duplicate id or a bad key rejects the
    /// batch. Once a tokenizer is trained, new images get their vokens at once.
    pub fn add_images(&self, images: &[NewImage]) -> Result<()> {
        self.writable()?;
        // Quantise outside the lock; redo it under the lock only if the tokenizer was
        // replaced meanwhile.
        let tokenizer = self.tokenizer_model();
        let codes = match &tokenizer {
            Some(t) => Some(self.quantize_images(t, images)?),
            None => None,
        };
        let mut st = self.state.write();
        let current = st.tokenizer.as_ref().map(|t| t.model.clone());
        let codes = match (&current, &tokenizer) {
            (Some(c), Some(t)) if Arc::ptr_eq(c, t) => codes,
            (Some(c), _) => Some(self.quantize_images(c, images)?),
            (None, _) => None,
        };
        st.records.add_images(images, codes.as_deref())
    }

    fn quantize_images(&self, q: &Quantizer, images: &[NewImage]) -> Result<Vec<Vec<u32>>> {
        let d = self.config.dim;
        for img in images {
            check_vector(d, img.vector, || format!("vector of image {}", img.id))?;
        }
        let flat: Vec<f32> = images.iter().flat_map(|i| i.vector.iter().copied()).collect();
        encode_rows(q, &flat, d, &self.device)
    }

    /// The CLIP towers named in the config, if any.
    pub fn image_encoder(&self) -> Option<&Clip> {
        self.clip.as_ref()
    }

    fn encoder(&self) -> Result<&Clip> {
        self.clip.as_ref().ok_or_else(|| {
            Error::WrongState(
                "the index has no image encoder (open it with image_encoder set to a CLIP directory)".into(),
            )
        })
    }

    /// Adds photos, embedding them with the image encoder: decoding and preprocessing
    /// on all cores, the vision tower in batches. One result per photo, in order: a
    /// photo that cannot be read, or whose id is taken, fails alone and the rest go in.
    /// `progress` is called after every batch of 32 (stage `Images`, `step` counting
    /// batches); when it returns false the photos not yet reached fail with
    /// `Error::Cancelled` and those added stay. Should the model fail, the photos of that
    /// batch and after carry its error. The call itself fails only without an encoder or
    /// for a batch over the limit.
    pub fn add_photos(
        &self,
        photos: &[NewPhoto],
        mut progress: impl FnMut(&Progress) -> bool,
    ) -> Result<Vec<Result<()>>> {
        self.writable()?;
        let clip = self.encoder()?;
        limits::check_batch(photos.len())?;
        let start = Instant::now();
        let chunks = photos.len().div_ceil(PHOTO_CHUNK);
        let mut out: Vec<Result<()>> = Vec::with_capacity(photos.len());
        for (step, chunk) in photos.chunks(PHOTO_CHUNK).enumerate() {
            let sources: Vec<ImageSource> = chunk.iter().map(|p| p.source).collect();
            let vectors = match clip.embed_images(&sources) {
                Ok(v) => v,
                Err(e) => {
                    // The photos added so far stay; this batch and the rest carry the error.
                    let m = e.to_string();
                    out.resize_with(photos.len(), || Err(Error::Model(m.clone())));
                    return Ok(out);
                }
            };
            let images: Vec<NewImage> = chunk
                .iter()
                .zip(&vectors)
                .filter_map(|(p, v)| v.as_ref().ok().map(|v| NewImage { id: p.id, key: p.key, vector: v }))
                .collect();
            // All at once; if that is refused (a taken id), one by one to tell which.
            let mut added = match self.add_images(&images) {
                Ok(()) => images.iter().map(|_| Ok(())).collect(),
                Err(_) => images.iter().map(|i| self.add_images(std::slice::from_ref(i))).collect::<Vec<_>>(),
            }
            .into_iter();
            out.extend(
                vectors.into_iter().map(|v| v.and_then(|_| added.next().expect("one result per embedded photo"))),
            );
            let report = Progress {
                stage: Stage::Images,
                epochs: 1,
                step,
                steps_per_epoch: chunks,
                samples_per_second: out.len() as f32 / start.elapsed().as_secs_f32().max(1e-9),
                ..Default::default()
            };
            if !progress(&report) {
                break;
            }
        }
        out.resize_with(photos.len(), || Err(Error::Cancelled));
        Ok(out)
    }

    /// Appends captions to an image. With an image encoder, captions given without a
    /// text vector get one from its text tower.
    pub fn add_captions(&self, image: u64, captions: &[NewCaption]) -> Result<()> {
        self.writable()?;
        let computed = match &self.clip {
            Some(clip) if captions.iter().any(|c| c.vector.is_none()) => {
                let texts: Vec<&str> = captions.iter().filter(|c| c.vector.is_none()).map(|c| c.text).collect();
                limits::check_batch(texts.len())?;
                clip.embed_texts(&texts)?
            }
            _ => Vec::new(),
        };
        let mut computed = computed.iter();
        let captions: Vec<NewCaption> = captions
            .iter()
            .map(|c| match c.vector {
                None if self.clip.is_some() => NewCaption { text: c.text, vector: computed.next().map(Vec::as_slice) },
                _ => *c,
            })
            .collect();
        self.state.write().records.add_captions(image, &captions)
    }

    /// Attaches texts that describe an image (tags, an album or file name, the image's
    /// own caption) for indexing: `train_generator` teaches the generator to write the
    /// image's vokens from each, so that an image is found by text even when it has no
    /// training captions. Unlike captions, texts never train the tokenizer's alignment.
    pub fn attach_texts(&self, image: u64, texts: &[&str]) -> Result<()> {
        self.writable()?;
        self.state.write().records.attach_texts(image, texts)
    }

    /// Removes an image, its captions and its texts.
    pub fn remove_image(&self, image: u64) -> Result<()> {
        self.writable()?;
        self.state.write().records.remove(image)
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

    /// The voken sequence of an image: M codes and its disambiguator.
    pub fn vokens(&self, image: u64) -> Result<Vec<u32>> {
        let st = self.state.read();
        let v = st.records.vokens.as_ref().ok_or_else(not_tokenized)?;
        Ok(v.row(st.records.row(image)?).to_vec())
    }

    /// Codebook usage and collisions of the current vokens.
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

    /// Trains the tokenizer on the images and captions now in the index, gives every
    /// image its vokens and saves the index. `progress` is called after every step and
    /// may return false to stop: the call then fails with `Error::Cancelled` and the
    /// index keeps its previous tokenizer and vokens. Searches and adds go on meanwhile;
    /// images added during training get their vokens from the new tokenizer.
    ///
    /// On glibc, training changes malloc's settings for the process while it runs, so
    /// that freed tensors are reused instead of handed back to the kernel and faulted in
    /// again every step; when the last training ends, the memory goes back to the system.
    /// The same holds for `train_generator`.
    pub fn train_tokenizer(
        &self,
        cfg: &TokenizerTrainConfig,
        mut progress: impl FnMut(&Progress) -> bool,
    ) -> Result<TokenizerReport> {
        self.writable()?;
        cfg.validate()?;
        let c = &self.config;
        let books = if cfg.shared_codebook { 1 } else { c.voken_len };
        limits::check_tensor("the codebooks", &[books, c.codebook_size, c.dim], "use a shared codebook or lower N")?;
        let _heap = crate::heap::retain();
        let data = self.with_records(|r| training_set(r, cfg.align))?;
        let (model, mut report) =
            quantizer::train(&data, c.codebook_size, c.voken_len, cfg, &self.device, &mut progress)?;
        let model = Arc::new(model);
        let (ids, vectors) = self.with_records(|r| (r.ids.clone(), r.vectors.clone()));
        let mut codes: HashMap<u64, Vec<u32>> =
            ids.into_iter().zip(encode_rows(&model, &vectors, c.dim, &self.device)?).collect();
        {
            let mut st = self.state.write();
            let r = &mut st.records;
            let mut vokens = Vokens::new(c.voken_len, c.codebook_size);
            for row in 0..r.len() {
                let code = match codes.remove(&r.ids[row]) {
                    Some(code) => code,
                    None => encode_rows(&model, r.vector(row), c.dim, &self.device)?.remove(0),
                };
                vokens.check_room(std::slice::from_ref(&code))?;
                vokens.push(&code, r.ids[row]);
            }
            report.stats = vokens.stats();
            r.vokens = Some(vokens);
            st.tokenizer = Some(Model { model, saved: None });
            st.generator = None;
        }
        self.save()?;
        Ok(report)
    }

    /// Trains the generator on every caption and attached text in the index, paired with
    /// its image's vokens (the tokenizer must be trained). After each epoch the model so far
    /// answers searches and is saved; `progress` may return false to stop, and the call
    /// then fails with `Error::Cancelled`, leaving the last completed epoch's model (or
    /// the previous generator, before the first epoch ends). Should the tokenizer be
    /// retrained meanwhile, the call fails with `Error::WrongState` at the end of the
    /// epoch and installs nothing: a generator only ever serves the vokens it learned.
    pub fn train_generator(
        &self,
        cfg: &GeneratorTrainConfig,
        mut progress: impl FnMut(&Progress) -> bool,
    ) -> Result<GeneratorReport> {
        self.writable()?;
        cfg.validate()?;
        // The step's voken logits: every caption's M+1 positions over 2N vokens, for
        // L_gen and, with L_dis, for each of its beam + 1 candidates.
        let candidates = if cfg.dis { (cfg.dis_fraction * (cfg.beam_size + 1) as f32).ceil() as usize } else { 0 };
        let c = &self.config;
        limits::check_tensor(
            "a training step's voken logits",
            &[cfg.batch_size, 1 + candidates, c.voken_len + 1, 2 * c.codebook_size],
            "lower batch_size, beam_size or dis_fraction",
        )?;
        let _heap = crate::heap::retain();
        let base = match cfg.incremental {
            true => Some(self.generator_model().ok_or_else(|| {
                Error::WrongState("an indexing pass needs a trained generator (train without incremental first)".into())
            })?),
            false => None,
        };
        // The architecture of the model being trained decides whether pairs carry vectors.
        let with_vectors = base.as_ref().map_or(cfg.index_vectors, |b| b.reads_vectors());
        let (examples, owners, vokens, codebook, tokenizer) = {
            let st = self.state.read();
            let r = &st.records;
            let (Some(v), Some(t)) = (&r.vokens, &st.tokenizer) else { return Err(not_tokenized()) };
            let mut examples = Vec::with_capacity(r.caption_count() + r.text_count());
            let mut owners = Vec::with_capacity(examples.capacity());
            for row in 0..r.len() {
                let vokens = v.local(v.row(row));
                let example = |text: &str, vector: Option<&[f32]>| generator::Example {
                    text: text.to_owned(),
                    vector: vector.filter(|_| with_vectors).map(<[f32]>::to_vec),
                    vokens: vokens.clone(),
                };
                examples.extend(r.captions[row].iter().map(|c| example(&c.text, c.vector.as_deref())));
                let texts = if cfg.index_texts { r.texts[row].as_slice() } else { &[] };
                examples.extend(texts.iter().map(|t| example(t, None)));
                if with_vectors && r.captions[row].is_empty() && texts.is_empty() {
                    // An image with no text at all is learned from its own vector.
                    examples.push(example("", Some(r.vector(row))));
                }
                owners.resize(examples.len(), r.ids[row]);
            }
            let codebook =
                if cfg.init_from_codebook && base.is_none() { Some(t.model.codebook_embeddings()?) } else { None };
            (examples, owners, v.clone(), codebook, t.model.clone())
        };
        let (examples, learned, new_images) = match &base {
            None => {
                let n = images_in(&owners);
                (examples, owners, n)
            }
            Some(b) => match replay_set(b.learned(), examples, &owners, cfg) {
                Some(set) => set,
                None => return Ok(GeneratorReport::default()),
            },
        };
        let mut g = match &base {
            Some(b) => b.trainable_copy()?,
            None => Generator::from_pretrained(
                &NewGenerator {
                    model_dir: &cfg.model_dir,
                    codebook_size: c.codebook_size,
                    levels: c.voken_len,
                    codebook,
                    decoder_layers: cfg.decoder_layers,
                    decoder_d_model: cfg.decoder_d_model,
                    max_text_tokens: cfg.max_text_tokens,
                    seed: cfg.seed,
                    vector_dim: cfg.index_vectors.then_some(c.dim),
                },
                &self.device,
            )?,
        };
        g.set_learned(learned);
        let candidates =
            |g: &Generator, enc: &generator::Encoded| beam::sequences(g, vokens.trie(), enc, cfg.beam_size);
        let install = |g: &Generator| -> Result<()> {
            let snapshot = g.frozen(true)?;
            // Candle queues CUDA work on the calling thread's stream: finish the copies
            // before searches on other threads read them.
            self.device.synchronize()?;
            let mut st = self.state.write();
            // A tokenizer retrained meanwhile gave the images other vokens: this model
            // answers for the old ones and must never serve or be saved beside the new.
            if !st.tokenizer.as_ref().is_some_and(|t| Arc::ptr_eq(&t.model, &tokenizer)) {
                return Err(Error::WrongState(
                    "the tokenizer was retrained while the generator trained; the generator was not installed \
                     (train it again for the new vokens)"
                        .into(),
                ));
            }
            st.generator = Some(Model { model: Arc::new(snapshot), saved: None });
            drop(st);
            self.save()
        };
        // A full training installs every epoch's model; an indexing pass only its end, so
        // that a stopped pass leaves the previous model serving.
        let mut checkpoint = |g: &Generator| if base.is_none() { install(g) } else { Ok(()) };
        let mut report = generator::train(&g, &examples, cfg, &candidates, &mut progress, &mut checkpoint)?;
        if base.is_some() {
            install(&g)?;
        }
        report.new_images = new_images;
        Ok(report)
    }

    /// Answers a text query: beam search over the vokens of the indexed images, best
    /// first. `query_vector` (the query's text vector, of the index dimension) is needed
    /// only for `rerank`, and not even then with an image encoder, which computes it. Safe to call from many threads, also while images are added.
    pub fn search(&self, query: &str, opts: &SearchOptions, query_vector: Option<&[f32]>) -> Result<Vec<Hit>> {
        let vectors = query_vector.map(|v| vec![v]);
        Ok(self.search_batch(&[query], opts, vectors.as_deref())?.remove(0))
    }

    /// `search` for many queries at once (one encoder and decoder pass per step for all).
    pub fn search_batch(
        &self,
        queries: &[&str],
        opts: &SearchOptions,
        query_vectors: Option<&[&[f32]]>,
    ) -> Result<Vec<Vec<Hit>>> {
        opts.validate()?;
        limits::check_batch(queries.len())?;
        for q in queries {
            limits::check_text("query", q)?;
        }
        let dense = opts.ranks_by_vectors();
        // An argument error comes before any state error: nothing can supply the vectors.
        if dense && query_vectors.is_none() && self.clip.is_none() {
            return Err(missing_query_vectors());
        }
        let current = || {
            self.generator_model().ok_or_else(|| {
                Error::WrongState("the generator has not been trained yet (call train_generator first)".into())
            })
        };
        let mut g = current()?;
        // Query vectors: the host's, else the image encoder's text tower's when the
        // ranking or the generator reads them.
        let computed = match (dense || g.reads_vectors(), query_vectors, &self.clip) {
            (true, None, Some(clip)) if !queries.is_empty() => Some(clip.embed_texts(queries)?),
            _ => None,
        };
        let computed: Option<Vec<&[f32]>> = computed.as_ref().map(|c| c.iter().map(Vec::as_slice).collect());
        let query_vectors = query_vectors.or(computed.as_deref());
        if let Some(vs) = query_vectors {
            if vs.len() != queries.len() {
                return Err(Error::InvalidArgument(format!(
                    "{} queries but {} query vectors",
                    queries.len(),
                    vs.len()
                )));
            }
            for v in vs {
                check_vector(self.config.dim, v, || "query vector".into())?;
            }
        } else if dense {
            return Err(missing_query_vectors());
        }
        if queries.is_empty() {
            return Ok(Vec::new());
        }
        let slots: Vec<Option<&[f32]>> = match query_vectors {
            Some(vs) => vs.iter().map(|v| Some(*v)).collect(),
            None => vec![None; queries.len()],
        };
        // Encode outside the lock; search under it with the same generator (a training
        // may have swapped in another meanwhile: then encode again).
        let (st, enc) = loop {
            let enc = g.encode(queries, &slots)?;
            let st = self.state.read();
            match &st.generator {
                Some(now) if Arc::ptr_eq(&now.model, &g) => break (st, enc),
                _ => {
                    drop(st);
                    g = current()?;
                }
            }
        };
        let vokens = st.records.vokens.as_ref().ok_or_else(not_tokenized)?;
        let vectors = query_vectors.filter(|_| dense);
        if opts.fused {
            let prefixes = beam::search_codes(&g, vokens.trie(), &enc, opts.beam_size, opts.min_candidates)?;
            return Ok(fused_hits(&st.records, vokens, prefixes, opts, vectors));
        }
        let found = beam::search(&g, vokens.trie(), &enc, opts.beam_size)?;
        Ok(found
            .into_iter()
            .enumerate()
            .map(|(q, f)| {
                let mut hits: Vec<Hit> = f.iter().map(|x| Hit { id: x.id, score: x.score }).collect();
                if let Some(vs) = vectors {
                    hits.iter_mut().for_each(|h| h.score = similarity(&st.records, h.id, vs[q]));
                    hits.sort_by(|a, b| b.score.total_cmp(&a.score));
                }
                hits.truncate(opts.k);
                hits
            })
            .collect())
    }

    /// The no-training reference (a diagnostic): the tokenizer's own quantisation of
    /// each query vector walks the trie of indexed codes, keeping the `beam_size`
    /// prefixes nearest the query; the hits are every image under them, scored as a
    /// fused search scores them with minus the squared distance in place of the
    /// generator's log-probability. `opts.fused` is implied; no generator is needed.
    pub fn search_by_quantization(&self, query_vectors: &[&[f32]], opts: &SearchOptions) -> Result<Vec<Vec<Hit>>> {
        opts.validate()?;
        limits::check_batch(query_vectors.len())?;
        for v in query_vectors {
            check_vector(self.config.dim, v, || "query vector".into())?;
        }
        let q = self.tokenizer_model().ok_or_else(not_tokenized)?;
        let flat: Vec<f32> = query_vectors.iter().flat_map(|v| v.iter().copied()).collect();
        let x = Tensor::from_vec(flat, (query_vectors.len(), self.config.dim), &self.device)?;
        let view = q.host_view(&x)?;
        let st = self.state.read();
        let vokens = st.records.vokens.as_ref().ok_or_else(not_tokenized)?;
        let prefixes = view
            .latents
            .iter()
            .map(|z| quantized::nearest_prefixes(vokens.trie(), &view.books, z, opts.beam_size, opts.min_candidates))
            .collect();
        let vectors = (opts.dense_weight > 0.0).then_some(query_vectors);
        Ok(fused_hits(&st.records, vokens, prefixes, opts, vectors))
    }

    /// Makes everything added and trained so far durable. Adds and reads go on
    /// meanwhile; what is added during the save goes into the next one.
    pub fn save(&self) -> Result<()> {
        self.writable()?;
        let mut saved = self.saved.lock();
        let (records, tokenizer, generator) = {
            let st = self.state.read();
            (st.records.clone(), st.tokenizer.clone(), st.generator.clone())
        };
        let mut models = Vec::new();
        if let Some(t) = &tokenizer {
            models.push((TOKENIZER, model_save(&t.model.config, t.saved.as_ref(), || Ok(t.model.named_tensors()))?));
        }
        if let Some(g) = &generator {
            models.push((GENERATOR, model_save(&g.model.config, g.saved.as_ref(), || g.model.named_tensors())?));
        }
        let entries = self.store.commit(*saved + 1, self.config.shape(), &records, models)?;
        *saved += 1;
        let mut st = self.state.write();
        mark_saved(&mut st.tokenizer, tokenizer, entries.get(TOKENIZER));
        mark_saved(&mut st.generator, generator, entries.get(GENERATOR));
        Ok(())
    }
}

/// The number of distinct ids in `owners` (each image's examples are consecutive).
fn images_in(owners: &[u64]) -> usize {
    owners.windows(2).filter(|w| w[0] != w[1]).count() + usize::from(!owners.is_empty())
}

/// An indexing pass's pairs: those of images the base generator has not learned, and as
/// many of the learned ones again (at least a batch), drawn at random, replayed so that
/// they are not forgotten. With the ids learned afterwards and the number of new images;
/// `None` when every image is learned already.
fn replay_set(
    learned: &[u64],
    examples: Vec<generator::Example>,
    owners: &[u64],
    cfg: &GeneratorTrainConfig,
) -> Option<(Vec<generator::Example>, Vec<u64>, usize)> {
    let known = |id: &u64| learned.binary_search(id).is_ok();
    let (mut fresh, mut old) = (Vec::new(), Vec::new());
    let mut new_ids = Vec::new();
    for (e, id) in examples.into_iter().zip(owners) {
        if known(id) {
            old.push(e);
        } else {
            fresh.push(e);
            new_ids.push(*id);
        }
    }
    if fresh.is_empty() {
        return None;
    }
    let new_images = images_in(&new_ids);
    let mut rng = crate::rng::Rng::new(cfg.seed ^ 0x1d3a);
    rng.shuffle(&mut old);
    old.truncate(fresh.len().max(cfg.batch_size));
    fresh.extend(old);
    let learned = learned.iter().copied().chain(new_ids).collect();
    Some((fresh, learned, new_images))
}

/// Every image under each query's code prefixes, scored `prefix score + dense_weight *
/// (query vector . image vector)`, best `k` first.
fn fused_hits(
    records: &Records,
    vokens: &Vokens,
    prefixes: Vec<Vec<Prefix>>,
    opts: &SearchOptions,
    vectors: Option<&[&[f32]]>,
) -> Vec<Vec<Hit>> {
    prefixes
        .into_iter()
        .enumerate()
        .map(|(q, prefixes)| {
            let mut hits: Vec<Hit> = prefixes
                .into_iter()
                .flat_map(|p| vokens.trie().images_under(p).into_iter().map(move |id| Hit { id, score: p.score }))
                .collect();
            if let Some(vs) = vectors {
                hits.iter_mut().for_each(|h| h.score += opts.dense_weight * similarity(records, h.id, vs[q]));
            }
            hits.sort_by(|a, b| b.score.total_cmp(&a.score));
            hits.truncate(opts.k);
            hits
        })
        .collect()
}

fn missing_query_vectors() -> Error {
    Error::InvalidArgument(
        "rerank and fused search with a dense weight need query vectors: given, or computed by the index's \
         image encoder"
            .into(),
    )
}

/// The dot product of an indexed image's vector with `v` (0 for an id no longer there).
fn similarity(records: &Records, id: u64, v: &[f32]) -> f32 {
    records.row(id).map_or(0.0, |row| records.vector(row).iter().zip(v).map(|(a, b)| a * b).sum())
}

/// Records the saved entry of a model, unless it was replaced during the save.
fn mark_saved<T>(current: &mut Option<Model<T>>, saved: Option<Model<T>>, entry: Option<&ModelEntry>) {
    if let (Some(cur), Some(s)) = (current.as_mut(), saved) {
        if Arc::ptr_eq(&cur.model, &s.model) {
            cur.saved = entry.cloned();
        }
    }
}

/// The encoder's joint space must be the index's vector space.
fn check_encoder(clip: Option<&Clip>, dim: usize) -> Result<()> {
    match clip {
        Some(c) if c.dim() != dim => Err(Error::ConfigMismatch(format!(
            "the image encoder's projection_dim is {}, the index dim {dim}",
            c.dim()
        ))),
        _ => Ok(()),
    }
}

fn not_tokenized() -> Error {
    Error::WrongState("the tokenizer has not been trained yet (call train_tokenizer first)".into())
}

fn model_save<C: serde::Serialize>(
    config: &C,
    saved: Option<&ModelEntry>,
    tensors: impl FnOnce() -> Result<Vec<(String, Tensor)>>,
) -> Result<ModelSave> {
    Ok(match saved {
        Some(e) => ModelSave::Keep(e.clone()),
        None => ModelSave::Write {
            config: serde_json::to_value(config).map_err(|e| Error::Model(e.to_string()))?,
            tensors: tensors()?,
        },
    })
}

/// M codes of each row of `vectors` (row-major, `dim` wide), in batches.
fn encode_rows(q: &Quantizer, vectors: &[f32], dim: usize, device: &Device) -> Result<Vec<Vec<u32>>> {
    let mut out = Vec::with_capacity(vectors.len() / dim);
    for chunk in vectors.chunks(4096 * dim) {
        let x = Tensor::from_slice(chunk, (chunk.len() / dim, dim), device)?;
        out.extend(q.encode(&x)?);
    }
    Ok(out)
}

/// Every caption paired with its image; images without captions appear alone. With
/// alignment on, every caption must have a text vector.
fn training_set(r: &Records, align: bool) -> Result<quantizer::TrainingSet> {
    let mut pairs = Vec::with_capacity(r.caption_count() + r.len());
    for row in 0..r.len() {
        if r.captions[row].is_empty() {
            pairs.push((row, None));
        }
        for (i, c) in r.captions[row].iter().enumerate() {
            if align && c.vector.is_none() {
                return Err(Error::InvalidArgument(format!(
                    "caption {i} of image {} has no text vector, which the alignment loss needs \
                     (add captions with vectors, or train with align off)",
                    r.ids[row]
                )));
            }
            pairs.push((row, c.vector.clone()));
        }
    }
    Ok(quantizer::TrainingSet { dim: r.dim, images: r.vectors.clone(), pairs })
}
