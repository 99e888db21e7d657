//! `Index`: an open index directory with its records and trained models, safe to share
//! across threads. This file holds its state, opening and saving; the operations live
//! beside it by concern: `images` (records and vokens), `photos` (the image encoder),
//! `train` (both trainings and indexing passes), `query` (search).

mod images;
mod pairs;
mod photos;
mod query;
mod train;

pub use images::IndexInfo;
pub use photos::NewPhoto;

use crate::encoders::Clip;
use crate::generator::{Generator, GeneratorConfig, SearchWeights};
use crate::quantizer::{Quantizer, QuantizerConfig};
use crate::records::Records;
use crate::store::{
    EncoderRecord, Loaded, LoadedModel, ModelEntry, ModelSave, Shape, Store, GENERATOR, PENDING_TOKENIZER, TOKENIZER,
};
use crate::vectors::{VectorStorage, Vectors};
use crate::{device, limits, Error, Result};
use candle_core::{Device, Tensor};
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The shape of an index, fixed when it is created, and the device it computes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexConfig {
    /// Length of every image and caption vector. 0 with an `image_encoder`: its
    /// `projection_dim`.
    pub dim: usize,
    /// N: the number of codes in the voken codebook.
    pub codebook_size: usize,
    /// M: vokens per image (each image's sequence has one more, its disambiguator).
    pub voken_len: usize,
    /// "cpu", "cuda" or "cuda:N". Chosen at each open; not part of the stored shape.
    pub device: String,
    /// A CLIP checkpoint directory (Hugging Face layout) whose towers turn photos,
    /// captions and queries into vectors inside the library; its `projection_dim` must
    /// be `dim`. Named at each open: the index records the first one's fingerprint and
    /// refuses a checkpoint of other bytes later (`Error::ConfigMismatch`), since its
    /// vectors would not be comparable. `None`: the host supplies every vector.
    pub image_encoder: Option<PathBuf>,
    /// How the generator that answers searches keeps its weights. Chosen at each open;
    /// not part of the stored shape (the index stores f32 weights).
    pub search_weights: SearchWeights,
    /// How image vectors are kept in memory for searching (f16 or int8: a half or a
    /// quarter of the memory and of a dense scan's reading). Chosen at each open; the
    /// index stores f32, and reads them back where exact values are needed.
    pub vector_storage: VectorStorage,
}

impl Default for IndexConfig {
    fn default() -> Self {
        IndexConfig {
            dim: 512,
            codebook_size: 1024,
            voken_len: 4,
            device: "cpu".into(),
            image_encoder: None,
            search_weights: SearchWeights::default(),
            vector_storage: VectorStorage::default(),
        }
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
        if self.dim != 0 || self.image_encoder.is_none() {
            positive("dim", self.dim, limits::MAX_DIM)?;
        }
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
    /// Gave `records.vokens`, the vokens searches use.
    tokenizer: Option<Model<Quantizer>>,
    /// A retrained tokenizer that gave `records.pending_vokens`. It replaces `tokenizer`
    /// once a generator is trained on its vokens; until then the old generator serves.
    pending_tokenizer: Option<Model<Quantizer>>,
    /// Trained on `records.vokens`.
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
    /// The image encoder the index records (saved with it): the open one, or the one
    /// recorded before when opened without.
    encoder: Option<EncoderRecord>,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index").field("path", &self.path()).field("config", &self.config).finish_non_exhaustive()
    }
}

impl Index {
    /// Opens the index at `dir`, or creates it there when `config` is given and the
    /// directory holds none. With an existing index, a given config must match its
    /// shape (the device may differ); `None` opens whatever is there, on the CPU, with
    /// the image encoder it recorded where that directory still holds the same
    /// checkpoint (else without one, and a warning in the log).
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
        // dim 0: the image encoder's.
        let config = config
            .map(|c| IndexConfig { dim: clip.as_ref().filter(|_| c.dim == 0).map_or(c.dim, Clip::dim), ..c.clone() });
        let store = if read_only { Store::open_read_only(dir)? } else { Store::open(dir)? };
        match store.load(&device, config.as_ref().map_or(VectorStorage::default(), |c| c.vector_storage))? {
            Some(loaded) => Self::opened(store, loaded, config, device, clip),
            None if read_only => {
                Err(Error::InvalidArgument(format!("no index at {} to open read-only", dir.display())))
            }
            None => {
                let config = config.ok_or_else(|| {
                    Error::InvalidArgument(format!("no index at {} and no config to create one", dir.display()))
                })?;
                Self::created(store, config, device, clip)
            }
        }
    }

    /// A new index in an empty directory, committed at once.
    fn created(store: Store, config: IndexConfig, device: Device, clip: Option<Clip>) -> Result<Index> {
        photos::check_encoder(clip.as_ref(), config.dim)?;
        let encoder = clip.as_ref().map(|c| photos::record(c, &config));
        let records = Records::with_vectors(Vectors::new(config.dim, config.vector_storage));
        store.commit(1, config.shape(), &records, Vec::new(), encoder.as_ref())?;
        let state = RwLock::new(State { records, ..Default::default() });
        Ok(Index { store, config, device, state, saved: Mutex::new(1), clip, encoder })
    }

    /// An existing index, with the models it saved.
    fn opened(
        store: Store,
        loaded: Loaded,
        config: Option<IndexConfig>,
        device: Device,
        mut clip: Option<Clip>,
    ) -> Result<Index> {
        let (dir, s) = (store.dir(), loaded.shape);
        // Opened without a config: the image encoder the index recorded, where it is
        // still there and still the same checkpoint.
        if config.is_none() {
            clip = loaded.image_encoder.as_ref().and_then(|r| photos::recorded_encoder(dir, r, &device));
        }
        let config = match config {
            Some(c) if c.shape() != s => {
                return Err(Error::ConfigMismatch(format!(
                    "{} was created with {s:?}, opened with {:?}",
                    dir.display(),
                    c.shape()
                )))
            }
            Some(c) => c,
            None => IndexConfig {
                dim: s.dim,
                codebook_size: s.codebook_size,
                voken_len: s.voken_len,
                image_encoder: clip.as_ref().and(loaded.image_encoder.as_ref()).map(|r| r.dir.clone().into()),
                ..Default::default()
            },
        };
        photos::check_encoder(clip.as_ref(), s.dim)?;
        let encoder = photos::encoder_record(dir, &config, clip.as_ref(), loaded.image_encoder)?;
        let state = load_state(dir, &s, loaded.records, loaded.models, &device, config.search_weights)?;
        device.synchronize()?; // as in train_generator: uploads done before other threads read
        let saved = Mutex::new(loaded.generation);
        crate::log::emit(crate::log::Level::Info, || {
            let models = [("tokenizer", state.tokenizer.is_some()), ("generator", state.generator.is_some())];
            let trained: Vec<&str> = models.iter().filter(|m| m.1).map(|m| m.0).collect();
            let trained = if trained.is_empty() { "nothing".to_owned() } else { trained.join(" and ") };
            format!("opened {}: {} images, {trained} trained", dir.display(), state.records.len())
        });
        Ok(Index { store, config, device, state: RwLock::new(state), saved, clip, encoder })
    }

    /// Whether the index was opened with `open_read_only`.
    pub fn is_read_only(&self) -> bool {
        self.store.read_only()
    }

    /// The trained tokenizer now installed, if any.
    fn tokenizer_model(&self) -> Option<Arc<Quantizer>> {
        self.state.read().tokenizer.as_ref().map(|t| t.model.clone())
    }

    /// Whether a retrained tokenizer's vokens wait for a generator trained on them
    /// (searches meanwhile use the previous vokens and generator).
    pub fn has_pending_tokenizer(&self) -> bool {
        self.state.read().pending_tokenizer.is_some()
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

    /// Makes everything added and trained so far durable. Adds and reads go on
    /// meanwhile; what is added during the save goes into the next one.
    pub fn save(&self) -> Result<()> {
        self.writable()?;
        let mut saved = self.saved.lock();
        let (records, tokenizer, pending, generator) = {
            let st = self.state.read();
            (st.records.clone(), st.tokenizer.clone(), st.pending_tokenizer.clone(), st.generator.clone())
        };
        let mut models = Vec::new();
        for (name, t) in [(TOKENIZER, &tokenizer), (PENDING_TOKENIZER, &pending)] {
            if let Some(t) = t {
                models.push((name, model_save(&t.model.config, t.saved.as_ref(), || Ok(t.model.named_tensors()))?));
            }
        }
        if let Some(g) = &generator {
            models.push((GENERATOR, model_save(&g.model.config, g.saved.as_ref(), || g.model.named_tensors())?));
        }
        let (entries, vectors) =
            self.store.commit(*saved + 1, self.config.shape(), &records, models, self.encoder.as_ref())?;
        *saved += 1;
        let mut st = self.state.write();
        st.records.vectors.saved_to(&vectors, records.vectors.edits());
        mark_saved(&mut st.tokenizer, tokenizer, entries.get(TOKENIZER));
        mark_saved(&mut st.pending_tokenizer, pending, entries.get(PENDING_TOKENIZER));
        mark_saved(&mut st.generator, generator, entries.get(GENERATOR));
        Ok(())
    }
}

/// A saved model rebuilt by `build` from its stored config and tensors; a config that
/// does not parse or that `build` refuses makes the index corrupt.
fn load_model<C: serde::de::DeserializeOwned, T>(
    dir: &Path,
    what: &str,
    m: LoadedModel,
    build: impl FnOnce(C, HashMap<String, Tensor>) -> std::result::Result<T, String>,
) -> Result<Model<T>> {
    let bad = |e: String| Error::corrupt(dir.join("manifest.json"), format!("{what}: {e}"));
    let config = serde_json::from_value(m.entry.config.clone()).map_err(|e| bad(e.to_string()))?;
    Ok(Model { model: Arc::new(build(config, m.tensors).map_err(bad)?), saved: Some(m.entry) })
}

/// Records the saved entry of a model, unless it was replaced during the save.
fn mark_saved<T>(current: &mut Option<Model<T>>, saved: Option<Model<T>>, entry: Option<&ModelEntry>) {
    if let (Some(cur), Some(s)) = (current.as_mut(), saved) {
        if Arc::ptr_eq(&cur.model, &s.model) {
            cur.saved = entry.cloned();
        }
    }
}

/// The records and the saved models of an index of shape `s`, rebuilt on `device`.
fn load_state(
    dir: &Path,
    s: &Shape,
    records: Records,
    mut models: std::collections::BTreeMap<String, LoadedModel>,
    device: &Device,
    weights: SearchWeights,
) -> Result<State> {
    let mut tokenizer = |name: &str| {
        models
            .remove(name)
            .map(|m| {
                load_model(dir, name, m, |qc: QuantizerConfig, tensors| {
                    if (qc.dim, qc.codebook_size, qc.voken_len) != (s.dim, s.codebook_size, s.voken_len) {
                        return Err(format!("{qc:?} does not fit the index shape {s:?}"));
                    }
                    Quantizer::from_tensors(qc, tensors, device).map_err(|e| e.to_string())
                })
            })
            .transpose()
    };
    let (tokenizer, pending_tokenizer) = (tokenizer(TOKENIZER)?, tokenizer(PENDING_TOKENIZER)?);
    let generator = models
        .remove(GENERATOR)
        .map(|m| {
            load_model(dir, "generator", m, |gc: GeneratorConfig, tensors| {
                if (gc.codebook_size, gc.voken_len) != (s.codebook_size, s.voken_len) || tokenizer.is_none() {
                    return Err("it does not fit the index's tokenizer".into());
                }
                Generator::from_saved(gc, tensors, device, weights).map_err(|e| e.to_string())
            })
        })
        .transpose()?;
    Ok(State { records, tokenizer, pending_tokenizer, generator })
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
