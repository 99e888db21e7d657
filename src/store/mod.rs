//! The index directory: `manifest.json` plus generation-numbered data files.
//!
//! A save writes the new generation's data files (each atomically), then replaces the
//! manifest atomically; only then are files of older generations deleted. A crash at
//! any point leaves a manifest whose files are all present and complete.

mod codec;
mod files;
mod manifest;

pub use manifest::{file_checksum, FORMAT_VERSION};
pub(crate) use manifest::{EncoderRecord, ModelEntry, Shape};

use crate::records::Records;
use crate::vectors::{SavedAt, VectorStorage};
use crate::{Error, Result};
use candle_core::{Device, Tensor};
use files::DirLock;
use manifest::{is_data_file, FileRef, Manifest, MANIFEST, MAX_MANIFEST_BYTES};
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

/// An open index directory, locked for the life of this value.
#[derive(Debug)]
pub(crate) struct Store {
    dir: PathBuf,
    _lock: DirLock,
    /// Opened read-only: never writes or deletes a file.
    read_only: bool,
}

/// What a store holds on disk.
pub(crate) struct Loaded {
    pub generation: u64,
    pub shape: Shape,
    pub records: Records,
    pub models: BTreeMap<String, LoadedModel>,
    pub image_encoder: Option<EncoderRecord>,
}

pub(crate) struct LoadedModel {
    pub entry: ModelEntry,
    pub tensors: HashMap<String, Tensor>,
}

/// A model to commit: unchanged since it was last saved, or new weights.
pub(crate) enum ModelSave {
    Keep(ModelEntry),
    Write { config: serde_json::Value, tensors: Vec<(String, Tensor)> },
}

/// The names of the models in the manifest.
pub(crate) const TOKENIZER: &str = "tokenizer";
pub(crate) const GENERATOR: &str = "generator";
/// A retrained tokenizer whose vokens wait for a generator trained on them.
pub(crate) const PENDING_TOKENIZER: &str = "pending_tokenizer";

impl Store {
    /// Locks `dir`, creating it when missing.
    pub(crate) fn open(dir: &Path) -> Result<Self> {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let lock = DirLock::acquire(dir)?;
        Ok(Store { dir: dir.to_path_buf(), _lock: lock, read_only: false })
    }

    /// Takes a shared lock on an existing index directory, for reading only.
    pub(crate) fn open_read_only(dir: &Path) -> Result<Self> {
        let lock = DirLock::acquire_shared(dir)?;
        Ok(Store { dir: dir.to_path_buf(), _lock: lock, read_only: true })
    }

    pub(crate) fn read_only(&self) -> bool {
        self.read_only
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads the committed state, model weights onto `device` and image vectors kept as
    /// `storage`; `None` for a directory that holds no index yet.
    pub(crate) fn load(&self, device: &Device, storage: VectorStorage) -> Result<Option<Loaded>> {
        let path = self.dir.join(MANIFEST);
        let bytes = match files::read_regular(&path, None, MAX_MANIFEST_BYTES) {
            Ok(b) => b,
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                // Data files without a manifest are a damaged index, never a new one: a
                // save into it would delete them.
                let orphans = self.data_files();
                if orphans.is_empty() {
                    return Ok(None);
                }
                return Err(Error::corrupt(
                    &path,
                    format!("missing, but the directory holds index data files ({})", orphans.join(", ")),
                ));
            }
            Err(e) => return Err(e),
        };
        let m = Manifest::parse(&path, &bytes)?;
        m.check_sizes(&path)?;
        if m.format_version < FORMAT_VERSION {
            crate::log::emit(crate::log::Level::Warn, || {
                format!(
                    "{} is in format {}: it opens as it is, and its next save writes format {FORMAT_VERSION}, \
                     which a libavg reading format {} at most cannot open",
                    self.dir.display(),
                    m.format_version,
                    FORMAT_VERSION - 1
                )
            });
        }
        let records_json = m.records.read_verified(&self.dir, m.format_version)?;
        let vectors = m.vectors.read_verified(&self.dir, m.format_version)?;
        let records = codec::decode(&self.dir.join(&m.vectors.file), &m.shape, &records_json, &vectors, storage)?;
        drop(vectors);
        let texts_agree = m.texts.is_none_or(|t| t == records.text_count());
        if records.len() != m.images || records.caption_count() != m.captions || !texts_agree {
            return Err(Error::corrupt(&path, "record counts disagree with the data files"));
        }
        for (vokens, name) in [(&records.vokens, TOKENIZER), (&records.pending_vokens, PENDING_TOKENIZER)] {
            if vokens.is_some() != m.models.contains_key(name) {
                return Err(Error::corrupt(&path, format!("vokens and {name} weights disagree")));
            }
        }
        if records.pending_vokens.is_some() && !m.models.contains_key(GENERATOR) {
            return Err(Error::corrupt(&path, "pending vokens without a generator serving"));
        }
        let mut models = BTreeMap::new();
        for (name, entry) in &m.models {
            let bytes = entry.weights.read_verified(&self.dir, m.format_version)?;
            let tensors = codec::decode_tensors(&self.dir.join(&entry.weights.file), &bytes, device)?;
            // A model the next save keeps is named with this format's checksum, whatever
            // the format it was read in (re-computed only for an older format).
            let weights = match m.format_version == FORMAT_VERSION {
                true => entry.weights.clone(),
                false => FileRef::describe(entry.weights.file.clone(), &bytes),
            };
            models.insert(name.clone(), LoadedModel { entry: ModelEntry { weights, ..entry.clone() }, tensors });
        }
        self.remove_stale(&m);
        Ok(Some(Loaded { generation: m.generation, shape: m.shape, records, models, image_encoder: m.image_encoder }))
    }

    /// Commits `records` and `models` as generation `generation`; returns the models'
    /// entries as now saved, and where the image vectors are.
    pub(crate) fn commit(
        &self,
        generation: u64,
        shape: Shape,
        records: &Records,
        models: Vec<(&str, ModelSave)>,
        image_encoder: Option<&EncoderRecord>,
    ) -> Result<(BTreeMap<String, ModelEntry>, SavedAt)> {
        if self.read_only {
            return Err(Error::WrongState(format!("{} was opened read-only", self.dir.display())));
        }
        let mut entries = BTreeMap::new();
        for (name, save) in models {
            let entry = match save {
                ModelSave::Keep(e) => e,
                ModelSave::Write { config, tensors } => {
                    let bytes = codec::encode_tensors(&tensors)?;
                    ModelEntry { config, weights: self.write_data(format!("{name}-{generation}.safetensors"), &bytes)? }
                }
            };
            entries.insert(name.to_owned(), entry);
        }
        let (records_json, vectors, offset) = codec::encode(records)?;
        let m = Manifest {
            format_version: FORMAT_VERSION,
            generation,
            shape,
            images: records.len(),
            captions: records.caption_count(),
            texts: Some(records.text_count()),
            records: self.write_data(format!("records-{generation}.json"), &records_json)?,
            vectors: self.write_data(format!("vectors-{generation}.safetensors"), &vectors)?,
            models: entries,
            image_encoder: image_encoder.cloned(),
        };
        files::write_atomic(&self.dir.join(MANIFEST), &m.to_bytes())?;
        self.remove_stale(&m);
        crate::log::emit(crate::log::Level::Info, || {
            format!(
                "saved {}: generation {generation}, {} images, {} captions",
                self.dir.display(),
                m.images,
                m.captions
            )
        });
        let saved = SavedAt { path: self.dir.join(&m.vectors.file), offset };
        Ok((m.models, saved))
    }

    fn write_data(&self, file: String, bytes: &[u8]) -> Result<FileRef> {
        files::write_atomic(&self.dir.join(&file), bytes)?;
        Ok(FileRef::describe(file, bytes))
    }

    /// Deletes data files no longer named by the manifest (older generations, temporary
    /// files of an interrupted save). Best effort: a file left behind costs only space.
    fn remove_stale(&self, m: &Manifest) {
        if self.read_only {
            return;
        }
        let live = m.files();
        for name in self.data_files() {
            if !live.contains(&name.as_str()) {
                let _ = fs::remove_file(self.dir.join(name));
            }
        }
    }

    /// The names of the data files in the directory (see `manifest::is_data_file`).
    fn data_files(&self) -> Vec<String> {
        let Ok(entries) = fs::read_dir(&self.dir) else { return Vec::new() };
        let mut names: Vec<String> =
            entries.flatten().filter_map(|e| e.file_name().into_string().ok()).filter(|n| is_data_file(n)).collect();
        names.sort();
        names
    }
}
